"""Envs on Ray actors: the same :class:`~agemem_gym.env_groups.EnvGroup` past one machine.

Each slot is one actor holding one env, placed by Ray on any node of the cluster with a free
CPU. The driver keeps the policy (a served model through ``--backend openai``, or a local one)
and writes every record itself, so a run on Ray resumes exactly like a local one. A lost actor
(killed, its node gone) is replaced and its episode played again from the start; records are
written only for finished episodes, so nothing is lost or counted twice.

Long-term memory lives in each actor's env (an embedded chromadb), or in a shared Chroma
server when the env options name one (``memory_store="http://host:8000"``).

Needs the ``[ray]`` extra. Example (a local cluster of two CPUs)::

    from agemem_gym.env_groups import EnvFactory
    from agemem_gym.ray_envs import RayEnvs
    group = RayEnvs(EnvFactory("alfworld", {"data": "..."}), workers=2, address="local")
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from agemem_gym.env_groups import EnvFactory, WorkerEnvs, WorkerError, WorkerLost, serve
from agemem_gym.errors import MissingExtraError

logger = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError("running envs on Ray", "ray") from e
    return ray


class _EnvActor:
    """One env inside a Ray actor."""

    def __init__(self, factory: EnvFactory):
        self.env = factory.make()

    def run(self, command: str, payload: Any) -> Any:
        return serve(self.env, command, payload)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.env.close()


class RayEnvs(WorkerEnvs):
    """One env per Ray actor; slots reset and step in parallel across the cluster.

    Args:
        factory: builds each actor's env (its options must pickle).
        workers: how many actors (and slots).
        address: the cluster to join (``ray.init(address=...)``): ``"auto"``, ``"ray://host:10001"``,
            or ``"local"`` / None for a cluster started in this process. Ignored when Ray is
            already initialised.
        cpus_per_worker: CPUs Ray reserves for each actor.
    """

    def __init__(self, factory: EnvFactory, workers: int, *, address: str | None = None,
                 cpus_per_worker: float = 1.0):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=None if address in (None, "local") else address,
                     include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        self._ray = ray
        self.factory = factory
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if cpus < workers * cpus_per_worker:  # every slot steps at once: the unplaced ones would block
            logger.warning("%d Ray actors of %g CPU each need %g CPUs, the cluster has %g: the run "
                           "waits until the cluster grows (add nodes, or use fewer slots)",
                           workers, cpus_per_worker, workers * cpus_per_worker, cpus)
        self._actor = ray.remote(num_cpus=cpus_per_worker)(_EnvActor)
        self._actors = [self._actor.remote(factory) for _ in range(workers)]

    def __len__(self) -> int:
        return len(self._actors)

    def __enter__(self) -> RayEnvs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send_all(self, command: str, payloads: Mapping[int, Any]) -> dict[int, Any]:
        refs = {slot: self._actors[slot].run.remote(command, payload) for slot, payload in payloads.items()}
        results: dict[int, Any] = {}
        for slot, ref in refs.items():
            try:
                results[slot] = self._ray.get(ref)
            except self._ray.exceptions.RayActorError as e:
                results[slot] = self._replace(slot, type(e).__name__)
            except self._ray.exceptions.RayTaskError as e:
                raise WorkerError(f"actor of slot {slot} failed:\n{e}") from e
        return results

    def _replace(self, slot: int, reason: str) -> WorkerLost:
        self._ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._actor.remote(self.factory)
        return WorkerLost(slot, reason)

    def pids(self) -> list[int]:
        """The actors' process ids (on their nodes)."""
        return [int(p) for p in self._ray.get([a.pid.remote() for a in self._actors])]

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):  # an actor already gone has nothing to close
                self._ray.get(actor.close.remote(), timeout=30)
            self._ray.kill(actor, no_restart=True)
        self._actors = []
