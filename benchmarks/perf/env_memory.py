"""Process memory over many env create/close cycles, and time to an error with a stopped server.

1. Resident memory (``VmRSS``) every ``--every`` cycles while ``--cycles`` envs are made, reset,
   given one ``Add_memory`` and closed: the pooled store (one long-lived chromadb client, emptied
   collections reused), beside a fresh chromadb collection per memory, created and deleted (the
   scheme before the pool), in a separate process each.
2. With ``--chroma``: seconds from a ``SIGSTOP``-ped Chroma server to ``StoreUnavailableError``
   at the default ``store_timeout`` / ``store_retries`` and at 1 s / 1 retry.

Usage: python benchmarks/perf/env_memory.py [--cycles 1000] [--every 100] [--chroma]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def _curve(scheme: str, cycles: int, every: int) -> list[tuple[int, float]]:
    from agemem_gym import AgeMemEnv
    from agemem_gym.memory import ltm as ltm_module
    from agemem_gym.memory.store import make_chroma_client

    if scheme == "fresh-collection":  # every memory makes and deletes its own collection
        client = make_chroma_client(None)
        original = ltm_module.LongTermMemory.__init__

        def with_client(self, *args, **kwargs):
            kwargs["client"] = client
            original(self, *args, **kwargs)

        ltm_module.LongTermMemory.__init__ = with_client
    add = ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "The user likes '
           'green tea."}}]</tool_call>')
    points = []
    for i in range(1, cycles + 1):
        env = AgeMemEnv("assistant", num_facts=3, num_distractors=1)
        env.reset(seed=i)
        env.step(add)
        env.close()
        if i == 1 or i % every == 0:
            points.append((i, round(_rss_mb(), 1)))
    return points


def _stopped_server_seconds() -> dict[str, float]:
    import httpx

    from agemem_gym.errors import StoreUnavailableError
    from agemem_gym.memory import LongTermMemory

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(["chroma", "run", "--path", tempfile.mkdtemp(), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):
            try:
                httpx.get(f"{url}/api/v2/heartbeat", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        results = {}
        for label, kwargs in [("default", {}), ("1s-1retry", {"store_timeout": 1.0,
                                                             "store_retries": 1})]:
            ltm = LongTermMemory(store=url, namespace=label, **kwargs)
            ltm.add("kept")
            os.killpg(server.pid, signal.SIGSTOP)
            start = time.monotonic()
            try:
                ltm.add("lost")
            except StoreUnavailableError:
                results[label] = round(time.monotonic() - start, 2)
            os.killpg(server.pid, signal.SIGCONT)
        return results
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--chroma", action="store_true", help="also time a stopped server")
    parser.add_argument("--scheme", help=argparse.SUPPRESS)  # one measurement, in a child
    args = parser.parse_args()
    if args.scheme:
        print(json.dumps(_curve(args.scheme, args.cycles, args.every)))
        return
    for scheme in ("pooled", "fresh-collection"):
        out = subprocess.run([sys.executable, __file__, "--scheme", scheme, "--cycles",
                              str(args.cycles), "--every", str(args.every)],
                             capture_output=True, text=True, check=True).stdout
        points = json.loads(out.strip().splitlines()[-1])
        first, last = points[0][1], points[-1][1]
        curve = ", ".join(f"{i}: {mb}" for i, mb in points)
        print(f"{scheme:>16}: RSS MB after cycle {curve}  (growth {last - first:+.1f} MB, "
              f"{(last - first) / max(1, points[-1][0] - 1) * 1024:.1f} KB/cycle)")
    if args.chroma:
        for label, seconds in _stopped_server_seconds().items():
            print(f"stopped server -> StoreUnavailableError ({label}): {seconds} s")


if __name__ == "__main__":
    main()
