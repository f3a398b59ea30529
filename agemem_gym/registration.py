"""Registers one Gymnasium id per benchmark: ``AgeMem/<Name>-v0``.

Entry points are strings, so registering imports no engine. This module imports nothing from
the package root.
"""

from __future__ import annotations

import gymnasium as gym

from agemem_gym.tasks import TASK_SOURCES

#: benchmark name -> the <Name> of its env id
ENV_NAMES: dict[str, str] = {
    "assistant": "Assistant",
    "hotpotqa": "HotpotQA",
    "babyai": "BabyAI",
    "pddl": "PDDL",
    "sciworld": "SciWorld",
    "alfworld": "ALFWorld",
}


def env_id(benchmark: str, version: int = 0) -> str:
    """The Gymnasium id of a benchmark: ``env_id("assistant") == "AgeMem/Assistant-v0"``."""
    return f"AgeMem/{ENV_NAMES.get(benchmark, benchmark)}-v{version}"


def register_envs() -> list[str]:
    """Register every benchmark that has a task source; return the ids."""
    ids = []
    for benchmark in TASK_SOURCES:
        ident = env_id(benchmark)
        if ident not in gym.registry:
            gym.register(id=ident, entry_point="agemem_gym.env:AgeMemEnv",
                         kwargs={"tasks": benchmark}, disable_env_checker=False)
        ids.append(ident)
    return ids
