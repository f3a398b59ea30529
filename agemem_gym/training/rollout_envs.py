"""Where the trainer's rollout envs live: in the trainer's process, in worker processes, or on
Ray actors (:mod:`agemem_gym.env_groups`).

Whatever the place, the trainer keeps two things for itself: the policy (generation stays
batched in the driver) and the training tasks' :class:`~agemem_gym.tasks.TaskSource`, which
draws every step's tasks with the trainer's seeded generator. Each drawn
:class:`~agemem_gym.tasks.TaskInstance` reaches its slot in ``env.reset(options={"task": ...})``,
so a worker never samples on its own and the same seed gives the same episodes everywhere.

Example:
    >>> import numpy as np
    >>> envs = make_rollout_envs("assistant", {"num_facts": 3, "num_distractors": 1}, slots=2)
    >>> task = envs.source.sample(np.random.default_rng(0))  # drawn here, played in slot 0
    >>> _ = envs.group.reset({0: {"seed": 1, "options": {"task": task}}})
    >>> len(envs), envs.group.handle(0).task_id == task.task_id
    (2, True)
    >>> envs.close()
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.config import EnvConfig, check_choice
from agemem_gym.env import AgeMemEnv
from agemem_gym.env_groups import EnvFactory, EnvGroup, LocalEnvs, ProcessEnvs
from agemem_gym.protocols import apply_protocol
from agemem_gym.tasks import TaskSource, make_task_source

#: Where the rollout envs step: ``local`` (this process, in turn), ``processes`` (one worker
#: process per slot, in parallel), ``ray`` (one Ray actor per slot, anywhere on the cluster).
WORKERS = ("local", "processes", "ray")


@dataclass
class RolloutEnvs:
    """The slots a training phase plays in, and the source its tasks are drawn from."""

    group: EnvGroup
    """One slot per episode of a step."""
    source: TaskSource
    """Draws the training tasks, in this process."""
    owned: list[AgeMemEnv] = field(default_factory=list)
    """Envs of this process that :meth:`close` closes."""
    owns_source: bool = False
    """Whether :meth:`close` closes ``source`` (it was built for this object alone)."""

    @classmethod
    def of(cls, envs: Sequence[AgeMemEnv]) -> RolloutEnvs:
        """The caller's own envs (it closes them): the first one's source draws the tasks."""
        return cls(LocalEnvs(envs), envs[0].source)

    def __len__(self) -> int:
        return len(self.group)

    def close(self) -> None:
        """Stop the workers (processes or actors) and close what this object built."""
        try:
            self.group.close()
        finally:
            for env in self.owned:
                env.close()
            if self.owns_source:
                with contextlib.suppress(Exception):  # nothing left to lose on a source's close
                    self.source.close()
            self.owned = []


def make_rollout_envs(benchmark: str, options: dict[str, Any], slots: int, workers: str = "local",
                      ray_address: str | None = None) -> RolloutEnvs:
    """``slots`` envs of ``benchmark`` built with ``options`` (which must pickle unless
    ``workers`` is ``local``), where ``workers`` says (:data:`WORKERS`)."""
    if check_choice("workers", workers, WORKERS) == "local":
        envs = [AgeMemEnv(benchmark, **options) for _ in range(slots)]
        return RolloutEnvs(LocalEnvs(envs), envs[0].source, owned=envs)
    _, source_options = EnvConfig.split(apply_protocol(benchmark, options))
    source = make_task_source(benchmark, **source_options)
    try:
        factory = EnvFactory(benchmark, options)
        if workers == "ray":
            from agemem_gym.ray_envs import RayEnvs

            group: EnvGroup = RayEnvs(factory, slots, address=ray_address)
        else:
            group = ProcessEnvs(factory, slots)
    except BaseException:
        source.close()
        raise
    return RolloutEnvs(group, source, owns_source=True)
