"""Faults a long run meets: a Chroma server that is down, stops answering or dies, and a process
that makes and closes envs by the thousand."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import httpx
import pytest

from agemem_gym.env import AgeMemEnv
from agemem_gym.errors import StoreUnavailableError
from agemem_gym.memory.ltm import LongTermMemory
from agemem_gym.policies.scripted import OraclePolicy
from benchmarks.episode_log import EpisodeLog
from benchmarks.runner import RunConfig, run

needs_chroma = pytest.mark.skipif(shutil.which("chroma") is None, reason="needs the chroma CLI")
ADD = ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "The user likes '
       'green tea."}}]</tool_call>')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """``chroma run`` on 127.0.0.1 in its own process group, so it can be stopped or killed."""

    def __init__(self, path, port: int | None = None):
        self.path, self.port = path, port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> ChromaServer:
        self.process = subprocess.Popen(
            ["chroma", "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/api/v2/heartbeat", timeout=0.5).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError("chroma run did not answer within 60 s")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def server(tmp_path):
    chroma = ChromaServer(tmp_path / "chroma").start()
    yield chroma
    chroma.kill()


def _errors_within(seconds: float, fn):
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as e:
        fn()
    elapsed = time.monotonic() - start
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    return str(e.value), elapsed


@needs_chroma
def test_a_server_that_stops_answering_gives_a_clear_error_in_bounded_time(server):
    env = AgeMemEnv("assistant", num_facts=3, num_distractors=1, memory_store=server.url,
                    store_timeout=1.0, store_retries=1)
    env.reset(seed=0)
    assert env.step(ADD)[4]["tool_results"][0]["ok"]
    server.signal(signal.SIGSTOP)
    try:
        message, elapsed = _errors_within(6.0, lambda: env.step(ADD))
        assert elapsed >= 2.0  # two tries of one second each, not an instant give-up
        assert message.startswith(f"the memory store at {server.url} did not answer add (2 tries in ")
        assert "ReadTimeout" in message and "raise store_timeout / store_retries" in message
    finally:
        server.signal(signal.SIGCONT)
    env.close()


@needs_chroma
def test_a_server_that_comes_back_within_the_retries_loses_nothing(server):
    ltm = LongTermMemory(store=server.url, namespace="r", store_timeout=1.0, store_retries=3)
    ltm.add("The user's dog is named Mochi.")
    server.signal(signal.SIGSTOP)
    subprocess.Popen(["sh", "-c", f"sleep 1.5; kill -CONT -{server.process.pid}"])
    second = ltm.add("The user lives in Porto.")  # retried until the server answers again
    found = ltm.retrieve("where does the user live", 2)
    assert [e.id for e in found][0] == second and len(found) == 2
    ltm.close()


@needs_chroma
def test_a_server_that_is_down_or_dies_gives_a_clear_error_fast(server, tmp_path):
    ltm = LongTermMemory(store=server.url, namespace="d", store_timeout=1.0, store_retries=1)
    ltm.add("kept")
    server.kill()
    message, _ = _errors_within(5.0, lambda: ltm.retrieve("kept", 1))
    assert "did not answer query (2 tries in" in message and "ConnectError" in message
    ltm.close()  # closing against a dead server neither hangs nor raises
    down = f"http://127.0.0.1:{_free_port()}"
    message, _ = _errors_within(5.0, lambda: AgeMemEnv(
        "assistant", memory_store=down, store_timeout=1.0, store_retries=1).reset(seed=0))
    assert message.startswith(f"the memory store at {down} did not answer connect (2 tries in ")


class _KillsServer(OraclePolicy):
    """The oracle, and the server it uses dies after ``after`` responses."""

    def __init__(self, server: ChromaServer, after: int):
        super().__init__()
        self.server, self.after, self.calls = server, after, 0

    def act(self, observation, info):
        self.calls += 1
        if self.calls == self.after:
            self.server.kill()
        return super().act(observation, info)


@needs_chroma
def test_a_run_whose_server_dies_stops_keeps_finished_episodes_and_resumes(server, tmp_path):
    out = tmp_path / "run"
    config = RunConfig(env="assistant", agent="oracle", out=out, episodes=4, progress=False,
                       env_options={"num_facts": 3, "num_distractors": 1,
                                    "memory_store": server.url, "store_timeout": 1.0,
                                    "store_retries": 1})
    policy = _KillsServer(server, after=25)
    with pytest.raises(StoreUnavailableError):
        run(config, policy)
    finished = EpisodeLog(out / "episodes.jsonl").records
    assert 1 <= len(finished) < 4
    assert not (out / ".lock").exists()
    server.start()  # the same data folder and port
    records = run(config)
    assert [r["episode_id"] for r in records] == [f"assistant-{i:05d}" for i in range(4)]
    assert records[: len(finished)] == finished


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def _cycles(first: int, last: int) -> None:
    for i in range(first, last):
        env = AgeMemEnv("assistant", num_facts=3, num_distractors=1)
        env.reset(seed=i)
        env.step(ADD)
        env.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
@pytest.mark.parametrize("cycles", [300, pytest.param(1_000, marks=pytest.mark.slow)])
def test_env_create_close_cycles_stay_flat(cycles):
    _cycles(0, 100)  # warm-up: imports, caches, the allocator's first arenas
    start = _rss_mb()
    _cycles(100, cycles)
    # a collection per env kept ~2.5 MB each: 300 cycles grew a process from 126 to 887 MB
    assert _rss_mb() - start < 40


def _call(name: str, **arguments) -> str:
    import json

    return f"<tool_call>{json.dumps([{'name': name, 'arguments': arguments}])}</tool_call>"


@pytest.mark.parametrize(
    ("response", "counted", "says"),
    [
        (_call("Add_memory", content="x", metadata={"": 1}), "tool_errors", "a metadata key is empty"),
        (_call("Add_memory", content="x", metadata={"$and": 1}), "tool_errors",
         "the metadata key '$and' is reserved"),
        ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "x", "metadata": '
         '{"topic": "\\ud800"}}}]</tool_call>', "format_errors", "unpaired surrogate"),
        ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "x", "memory_type": '
         '"\\ud800"}}]</tool_call>', "format_errors", "unpaired surrogate"),
        ("<tool_call>" + "[" * 2000 + "</tool_call>", "format_errors", "nests 2000 levels deep"),
        ('<tool_call>[{"name": "Retrieve_memory", "arguments": {"query": "x", "top_k": '
         + "9" * 4_400 + "}}]</tool_call>", "format_errors", "an integer has 4,400 digits"),
        ("<answer>go \ud800 north</answer>", "format_errors", "unpaired surrogate (U+D800)"),
    ],
)
def test_what_crashed_a_run_is_answered_in_the_next_observation_and_counted(response, counted,
                                                                           says):
    env = AgeMemEnv("assistant", num_facts=3, num_distractors=1)
    env.reset(seed=0)
    observation, _, _, _, info = env.step(response)
    assert info["counts"][counted] == 1
    assert says in observation[-1]["content"]
    assert "\ud800" not in "".join(m["content"] for m in observation)  # shown back as U+FFFD
    env.close()


def test_the_same_seed_gives_the_same_trajectory_on_a_fresh_or_a_reused_env():
    same = _call("Add_memory", content="The user likes green tea.")
    script = [same, same, same, same, _call("Retrieve_memory", query="green tea", top_k=2)]

    def play(env, seed):
        observations = [env.reset(seed=seed)[0]]
        observations += [env.step(text)[0] for text in script]
        return observations

    reused = AgeMemEnv("assistant", num_facts=3, num_distractors=1)
    play(reused, 7)
    play(reused, 8)
    fresh = AgeMemEnv("assistant", num_facts=3, num_distractors=1)
    trajectory = play(fresh, 3)
    assert play(reused, 3) == trajectory
    found = trajectory[-1][-1]["content"]
    first_two = [e.id for e in fresh.ltm.entries()[:2]]
    assert found.index(first_two[0]) < found.index(first_two[1])  # ties in insertion order
    fresh.close()
    reused.close()
