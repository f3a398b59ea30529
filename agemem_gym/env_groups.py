"""Where the envs of a run live: in this process, in worker processes, or on Ray actors.

:func:`~agemem_gym.rollout.play_episodes` drives an :class:`EnvGroup`: it resets and steps
several slots at once, so worker processes and Ray actors step their engines in parallel while
the policy batches its generation across every running episode in the driver. A slot's
:class:`~agemem_gym.port.EpisodeHandle` works the same everywhere: for a remote slot the port's
calls travel to the worker and back.

- :class:`LocalEnvs`: the given envs, stepped one after the other (the default).
- :class:`ProcessEnvs`: one env per worker process (``spawn``, so nothing of the parent's
  chromadb or JVM state is inherited), built from an :class:`EnvFactory`.
- :class:`~agemem_gym.ray_envs.RayEnvs`: one env per Ray actor, on any Ray cluster.

Example:
    >>> from agemem_gym.policies import OraclePolicy
    >>> from agemem_gym.rollout import play_episodes
    >>> factory = EnvFactory("assistant", {"num_facts": 3, "num_distractors": 1, "privileged_info": True})
    >>> with ProcessEnvs(factory, workers=2) as group:
    ...     done = list(play_episodes(group, OraclePolicy(), [{"seed": i, "options": {"task_index": i}}
    ...                                                      for i in range(3)]))
    >>> sorted(d.index for d in done), {d.info["metrics"]["score"] for d in done}
    ([0, 1, 2], {1.0})
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym

from agemem_gym.env import AgeMemEnv
from agemem_gym.errors import AgeMemError
from agemem_gym.port import EpisodeHandle, MemoryPort
from agemem_gym.spaces import Observation

#: what ``env.step`` returns
StepResult = tuple[Observation, float, bool, bool, dict[str, Any]]


class WorkerError(AgeMemError, RuntimeError):
    """A worker raised; the message carries its traceback."""


class WorkerLost(AgeMemError, RuntimeError):
    """A worker died (killed, out of memory, its node gone); its slot has a fresh worker now and
    the episode it was playing must be played again."""

    def __init__(self, slot: int, reason: str):
        super().__init__(f"the worker of slot {slot} was lost ({reason}); it was replaced")
        self.slot = slot


@dataclass(frozen=True)
class EnvFactory:
    """How a worker builds its env: a benchmark name and picklable options (LLM judges and
    summarizers as ``{"model": ...}`` specs, so each worker loads its own)."""

    benchmark: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def make(self) -> AgeMemEnv:
        return AgeMemEnv(self.benchmark, **dict(self.options))


class EnvGroup(Protocol):
    """Slots that each hold one env; several slots reset and step at once."""

    def __len__(self) -> int: ...

    def reset(self, starts: Mapping[int, dict[str, Any]]) -> dict[int, tuple[Observation, dict[str, Any]]]:
        """Reset each slot with its keyword arguments; a lost worker's slot maps to WorkerLost."""
        ...

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult | WorkerLost]:
        """Step each slot with its action; a lost worker's slot maps to WorkerLost."""
        ...

    def handle(self, slot: int) -> EpisodeHandle:
        """The running episode's handle in ``slot``."""
        ...

    def close(self) -> None: ...


class LocalEnvs:
    """The given envs in this process, stepped one after the other."""

    def __init__(self, envs: Sequence[gym.Env[Observation, str]]):
        self.envs = list(envs)

    def __len__(self) -> int:
        return len(self.envs)

    def reset(self, starts: Mapping[int, dict[str, Any]]) -> dict[int, Any]:
        return {slot: self.envs[slot].reset(**start) for slot, start in starts.items()}

    def step(self, actions: Mapping[int, str]) -> dict[int, Any]:
        return {slot: self.envs[slot].step(action) for slot, action in actions.items()}

    def handle(self, slot: int) -> EpisodeHandle:
        unwrapped = self.envs[slot].unwrapped
        if not isinstance(unwrapped, AgeMemEnv):
            raise TypeError(f"play_episodes drives AgeMem envs, got {type(unwrapped).__name__}")
        return unwrapped.episode_handle

    def close(self) -> None:
        """The caller owns the envs it passed in."""


class RemotePort(MemoryPort):
    """A :class:`MemoryPort` whose calls run in the worker that holds the env."""

    def __init__(self, remote: Callable[[str, tuple[Any, ...], dict[str, Any]], Any]):
        self._remote = remote

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("add", args, kwargs)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("update", args, kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("delete", args, kwargs)

    def retrieve(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("retrieve", args, kwargs)

    def entries(self) -> Any:
        return self._remote("entries", (), {})

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("encode", args, kwargs)

    def insert_context(self, *args: Any, **kwargs: Any) -> None:
        self._remote("insert_context", args, kwargs)

    def replace_context(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote("replace_context", args, kwargs)

    def record_llm(self, *args: Any, **kwargs: Any) -> None:
        self._remote("record_llm", args, kwargs)


def serve(env: AgeMemEnv, command: str, payload: Any) -> Any:
    """Run one command on a worker's env (shared by process and Ray workers)."""
    if command == "reset":
        return env.reset(**payload)
    if command == "step":
        return env.step(payload)
    if command == "port":
        method, args, kwargs = payload
        return getattr(env.episode_handle.port, method)(*args, **kwargs)
    if command == "handle":
        handle = env.episode_handle
        return handle.key, handle.task_id, handle.benchmark
    raise ValueError(f"unknown worker command {command!r}")


class WorkerEnvs:
    """What process and Ray workers share: slots answered by :func:`serve` in a worker, a port
    that forwards to it. Subclasses send a command to several slots at once (``_send_all``)."""

    def _send_all(self, command: str, payloads: Mapping[int, Any]) -> dict[int, Any]:
        raise NotImplementedError

    def reset(self, starts: Mapping[int, dict[str, Any]]) -> dict[int, Any]:
        return self._send_all("reset", starts)

    def step(self, actions: Mapping[int, str]) -> dict[int, Any]:
        return self._send_all("step", actions)

    def call(self, slot: int, command: str, payload: Any) -> Any:
        """One command to one slot; a lost worker raises :class:`WorkerLost`."""
        result = self._send_all(command, {slot: payload})[slot]
        if isinstance(result, WorkerLost):
            raise result
        return result

    def handle(self, slot: int) -> EpisodeHandle:
        key, task_id, benchmark = self.call(slot, "handle", None)
        port = RemotePort(lambda method, args, kwargs: self.call(slot, "port", (method, args, kwargs)))
        return EpisodeHandle(key, port, task_id, benchmark)


def _worker(factory: EnvFactory, connection: Any) -> None:
    env = factory.make()
    try:
        while True:
            command, payload = connection.recv()
            if command == "close":
                break
            try:
                connection.send(("ok", serve(env, command, payload)))
            except Exception:  # noqa: BLE001 - the driver re-raises it with this traceback
                connection.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        env.close()


class ProcessEnvs(WorkerEnvs):
    """One env per worker process; slots reset and step in parallel.

    Args:
        factory: builds each worker's env.
        workers: how many worker processes (and slots).
    """

    def __init__(self, factory: EnvFactory, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.factory = factory
        self._context = mp.get_context("spawn")
        self._workers: list[tuple[Any, Any]] = [self._start() for _ in range(workers)]

    def _start(self) -> tuple[Any, Any]:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(self.factory, child), daemon=True)
        process.start()
        child.close()
        return process, parent

    def __len__(self) -> int:
        return len(self._workers)

    def __enter__(self) -> ProcessEnvs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send_all(self, command: str, payloads: Mapping[int, Any]) -> dict[int, Any]:
        lost: dict[int, WorkerLost] = {}
        for slot, payload in payloads.items():
            try:
                self._workers[slot][1].send((command, payload))
            except (BrokenPipeError, OSError):
                lost[slot] = self._replace(slot, "its pipe broke")
        results: dict[int, Any] = dict(lost)
        for slot in payloads:
            if slot not in lost:
                results[slot] = self._receive(slot)
        return results

    def _receive(self, slot: int) -> Any:
        try:
            status, value = self._workers[slot][1].recv()
        except (EOFError, ConnectionResetError, OSError):
            return self._replace(slot, "it exited")
        if status == "error":
            raise WorkerError(f"worker of slot {slot} failed:\n{value}")
        return value

    def _replace(self, slot: int, reason: str) -> WorkerLost:
        process, connection = self._workers[slot]
        connection.close()
        process.join(timeout=1)
        self._workers[slot] = self._start()
        return WorkerLost(slot, reason)

    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [process.pid for process, _ in self._workers]

    def close(self) -> None:
        for _, connection in self._workers:
            with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker needs no goodbye
                connection.send(("close", None))
        for process, connection in self._workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
            connection.close()
        self._workers = []


def as_group(envs: EnvGroup | Iterable[gym.Env[Observation, str]]) -> EnvGroup:
    """``envs`` as an :class:`EnvGroup` (a list of envs becomes :class:`LocalEnvs`)."""
    if isinstance(envs, (LocalEnvs, WorkerEnvs)):
        return envs
    return LocalEnvs(list(envs))  # type: ignore[arg-type]
