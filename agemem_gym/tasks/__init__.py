"""Benchmarks: one module each, looked up by name so nothing heavy is imported until used."""

from __future__ import annotations

import importlib
from typing import Any

from agemem_gym.errors import MissingExtraError, UnknownNameError
from agemem_gym.tasks.base import Engine, EngineStep, Fact, TaskInstance, TaskSource

#: benchmark name -> ("module:Class", optional extra that provides its engine or data loader)
TASK_SOURCES: dict[str, tuple[str, str | None]] = {
    "assistant": ("agemem_gym.tasks.assistant:AssistantTasks", None),
    "hotpotqa": ("agemem_gym.tasks.hotpotqa:HotpotQATasks", None),
    "babyai": ("agemem_gym.tasks.babyai:BabyAITasks", "babyai"),
    "pddl": ("agemem_gym.tasks.pddl:PDDLTasks", "pddl"),
    "sciworld": ("agemem_gym.tasks.sciworld:SciWorldTasks", "sciworld"),
    "alfworld": ("agemem_gym.tasks.alfworld:ALFWorldTasks", "alfworld"),
}


def make_task_source(name: str, **kwargs: Any) -> TaskSource:
    """Build the benchmark ``name`` with its own options (``data=``, difficulty, ...).

    >>> make_task_source("assistant", num_facts=3).name
    'assistant'
    """
    if name not in TASK_SOURCES:
        raise UnknownNameError("benchmark", name, TASK_SOURCES)
    path, extra = TASK_SOURCES[name]
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if extra is None:
            raise
        raise MissingExtraError(f"benchmark {name!r}", extra) from e
    return getattr(module, class_name)(**kwargs)


__all__ = [
    "TASK_SOURCES",
    "Engine",
    "EngineStep",
    "Fact",
    "TaskInstance",
    "TaskSource",
    "make_task_source",
]
