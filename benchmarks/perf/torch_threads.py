"""Greedy generation with the tiny model at each torch thread count, as ratios to one thread.

Why the default thread count (agemem_gym/llm/_threads.py) is "free cores", not torch's "all
physical cores": with other processes on the cores, torch's threads wait for each other. Each
count runs in a fresh process (torch fixes some thread pools at first use). Prints seconds per
generation call and the ratio to one thread, plus the load average and the count the default
rule picks now.

    python benchmarks/perf/torch_threads.py [--max-threads 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = """
import json, sys, time, torch
from agemem_gym.llm.transformers_backend import TransformersBackend
llm = TransformersBackend(sys.argv[1], device="cpu", threads=int(sys.argv[2]))
prompts = [[{"role": "user", "content": "Where does my sister live? " * 8}]] * 4
llm.generate(prompts, max_new_tokens=4)  # warm-up
times = []
for _ in range(int(sys.argv[3])):
    began = time.perf_counter()
    llm.generate(prompts, max_new_tokens=32)
    times.append(time.perf_counter() - began)
print(json.dumps({"threads": torch.get_num_threads(), "seconds": min(times)}))
"""


def measure(max_threads: int, repeats: int) -> list[dict[str, float]]:
    """Best-of-``repeats`` seconds of one batched generation call per thread count."""
    from agemem_gym.llm.tiny_model import build_tiny_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(tmp, num_layers=3, hidden_size=128, intermediate_size=384))
        for threads in range(1, max_threads + 1):
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "AGEMEM_THREADS")}
            done = subprocess.run([sys.executable, "-c", _CHILD, model, str(threads), str(repeats)],
                                  capture_output=True, text=True, check=True, env=env)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    from agemem_gym.llm._threads import free_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, default rule picks {free_cores()}")
    rows = measure(args.max_threads, args.repeats)
    base = rows[0]["seconds"]
    for row in rows:
        print(f"threads {row['threads']:>2}: {row['seconds']:.3f} s/call  ({row['seconds'] / base:.2f}x one thread)")


if __name__ == "__main__":
    main()
