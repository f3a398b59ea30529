"""Registers one Gymnasium id per benchmark: ``AgeMem/<Name>-v0``.

The ids come from the benchmark table (:data:`agemem_gym.tasks.BENCHMARKS`); entry points are
strings, so registering imports no engine. This module imports nothing from the package root.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

from agemem_gym.tasks import BENCHMARKS

#: Applied by ``gym.make`` outside its ``TimeLimit``: a step cap still ends the episode with the
#: trajectory reward and all its parts (:class:`~agemem_gym.wrappers.FinishOnTruncation`).
_FINISH_ON_TRUNCATION = WrapperSpec("FinishOnTruncation", "agemem_gym.wrappers:FinishOnTruncation", {})


def env_id(benchmark: str, version: int = 0) -> str:
    """The Gymnasium id of a benchmark: ``env_id("assistant") == "AgeMem/Assistant-v0"``.

    A task source outside the table (a user's own) is named by its ``name``.
    """
    known = BENCHMARKS.get(benchmark)
    return f"AgeMem/{known.env_name if known else benchmark}-v{version}"


def register_envs() -> list[str]:
    """Register every benchmark of the table; return the ids."""
    ids = []
    for benchmark in BENCHMARKS:
        ident = env_id(benchmark)
        if ident not in gym.registry:
            gym.register(id=ident, entry_point="agemem_gym.env:AgeMemEnv",
                         kwargs={"tasks": benchmark}, disable_env_checker=False,
                         additional_wrappers=(_FINISH_ON_TRUNCATION,))
        ids.append(ident)
    return ids
