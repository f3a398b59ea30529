"""Benchmarks: one table, looked up by name so nothing heavy is imported until used.

A new benchmark is a module (or a folder) under ``agemem_gym/tasks/`` with a
:class:`TaskSource` subclass, plus one :class:`Benchmark` line in :data:`BENCHMARKS`; its
Gymnasium id (``AgeMem/<env_name>-v0``) is registered from that line.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from agemem_gym.errors import ConfigError, MissingExtraError, UnknownNameError
from agemem_gym.tasks.base import (
    Engine,
    EngineStep,
    Fact,
    NoTrainingDataError,
    TaskInstance,
    TaskSource,
)


@dataclass(frozen=True)
class Benchmark:
    """One line of the benchmark table.

    Attributes:
        name: the short name (``tasks=``, ``--env``).
        env_name: the ``<Name>`` of its Gymnasium id ``AgeMem/<Name>-v0``.
        source: ``"module:Class"`` of its :class:`TaskSource`.
        extra: the optional extra that provides its engine or data loader (None: core).
    """

    name: str
    env_name: str
    source: str
    extra: str | None = None


#: Every benchmark, by name, in the order tables list them.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("assistant", "Assistant", "agemem_gym.tasks.assistant:AssistantTasks"),
        Benchmark("hotpotqa", "HotpotQA", "agemem_gym.tasks.hotpotqa:HotpotQATasks"),
        Benchmark("babyai", "BabyAI", "agemem_gym.tasks.babyai:BabyAITasks", "babyai"),
        Benchmark("pddl", "PDDL", "agemem_gym.tasks.pddl:PDDLTasks", "pddl"),
        Benchmark("sciworld", "SciWorld", "agemem_gym.tasks.sciworld:SciWorldTasks", "sciworld"),
        Benchmark("alfworld", "ALFWorld", "agemem_gym.tasks.alfworld:ALFWorldTasks", "alfworld"),
    )
}
#: benchmark name -> ("module:Class", extra): a view of :data:`BENCHMARKS`.
TASK_SOURCES: dict[str, tuple[str, str | None]] = {
    name: (b.source, b.extra) for name, b in BENCHMARKS.items()
}
#: Option names of earlier versions -> today's name (for the "did you mean" hint).
RENAMED_OPTIONS = {"n_distractors": "num_distractors", "step_limit": "max_steps"}


def source_class(name: str) -> type[TaskSource]:
    """The :class:`TaskSource` class of benchmark ``name`` (imports its module).

    Raises:
        UnknownNameError: ``name`` is not a benchmark.
        MissingExtraError: its optional extra is not installed.
    """
    if name not in BENCHMARKS:
        raise UnknownNameError("benchmark", name, BENCHMARKS)
    benchmark = BENCHMARKS[name]
    module_name, class_name = benchmark.source.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if benchmark.extra is None:
            raise
        raise MissingExtraError(f"benchmark {name!r}", benchmark.extra) from e
    return getattr(module, class_name)


def source_options(name: str) -> list[str]:
    """The options benchmark ``name`` takes (its task source's keyword arguments)."""
    parameters = inspect.signature(source_class(name).__init__).parameters
    return [p for p in parameters if p != "self"]


def check_options(name: str, options: dict[str, Any]) -> None:
    """Reject option names benchmark ``name`` does not know, with a "did you mean".

    Raises:
        ConfigError: naming the unknown option, the closest valid one and every valid name
            (the benchmark's options and the env's, :class:`~agemem_gym.config.EnvConfig`).
    """
    valid = source_options(name)
    unknown = [key for key in options if key not in valid]
    if not unknown:
        return
    from agemem_gym.config import EnvConfig  # the env's settings, named in the message

    env_options = sorted(EnvConfig.__dataclass_fields__)
    key = unknown[0]
    close = RENAMED_OPTIONS.get(key) or next(
        iter(difflib.get_close_matches(key, valid + env_options, n=1)), None
    )
    hint = f" Did you mean {close!r}?" if close else ""
    raise ConfigError(
        f"unknown option {key!r} for benchmark {name!r}.{hint} Benchmark options: "
        f"{', '.join(sorted(valid))}. Env options: {', '.join(env_options)}."
    )


def training_split(name: str, options: dict[str, Any]) -> str:
    """Where training tasks of benchmark ``name`` come from with ``options`` (env and benchmark
    options mixed, as ``gym.make`` takes them), in words; builds the source to check.

    Raises:
        NoTrainingDataError: the benchmark has no training tasks at hand (says what to pass).
        ConfigError: an unknown option.
    """
    from agemem_gym.config import EnvConfig

    mine = {k: v for k, v in options.items() if k not in EnvConfig.__dataclass_fields__}
    source = make_task_source(name, **mine)
    try:
        return source.training_split()
    finally:
        source.close()


def make_task_source(name: str, **kwargs: Any) -> TaskSource:
    """Build the benchmark ``name`` with its own options (``data=``, difficulty, ...).

    >>> make_task_source("assistant", num_facts=3).name
    'assistant'
    """
    check_options(name, kwargs)
    return source_class(name)(**kwargs)


__all__ = [
    "BENCHMARKS",
    "TASK_SOURCES",
    "Benchmark",
    "Engine",
    "EngineStep",
    "Fact",
    "NoTrainingDataError",
    "TaskInstance",
    "TaskSource",
    "check_options",
    "make_task_source",
    "source_options",
    "training_split",
]
