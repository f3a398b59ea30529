"""What a benchmark supplies to the env: task instances and, for interactive ones, an engine.

A benchmark is one module (or folder) under ``agemem_gym/tasks/`` with a :class:`TaskSource`
subclass and a line in ``agemem_gym/tasks/__init__.py``. The env drives every benchmark through
the same three stages; the source only says *what* is told in each stage and how an answer is
scored.

Two pools of tasks: :meth:`TaskSource.get` indexes the evaluation set; :meth:`TaskSource.sample`
draws a training task, never one of the evaluation set (the env uses it when ``reset`` names no
task, and so do the trainers). A benchmark without training data at hand raises
:class:`NoTrainingDataError` there, naming what to pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from agemem_gym.errors import NoTrainingDataError

FactOp = Literal["add", "update", "delete", "none"]


@dataclass(frozen=True)
class Fact:
    """One stage-1 user turn and the memory operation it calls for.

    Attributes:
        message: what the user says in this turn (casual wording).
        content: the canonical fact an ideal memory would hold after this turn ("" for ``none``).
        key: what the fact is about; an ``update`` or ``delete`` names the key of an earlier fact.
        op: ``add`` a new fact, ``update`` an earlier one with the same key, ``delete`` (retract)
            it, or ``none`` for small talk that needs no memory.
    """

    message: str
    content: str = ""
    key: str = ""
    op: FactOp = "add"


@dataclass(frozen=True)
class TaskInstance:
    """One episode's worth of ground truth, shared by every benchmark.

    Attributes:
        task_id: stable id within the benchmark (used for episode ids and resume).
        query: the stage-3 message: the question, or the interactive task's goal.
        answers: acceptable answers (QA); empty for interactive tasks.
        stage1: the stage-1 turns in order, one :class:`Fact` each.
        distractors: the stage-2 user messages, one per turn.
        supporting_facts: canonical facts that should be in long-term memory after stage 1
            (the *current* truth: superseded and retracted facts are not listed).
        key_items: named entities, dates, places of the query that must stay in the context
            (preservation reward).
        category: the benchmark's category for breakdowns (ALFWorld task type, PDDL domain,
            ScienceWorld task name, BabyAI level); None for QA.
        metadata: benchmark-specific fields (level name, domain, difficulty, ...).
    """

    task_id: str
    query: str
    answers: tuple[str, ...] = ()
    stage1: tuple[Fact, ...] = ()
    distractors: tuple[str, ...] = ()
    supporting_facts: tuple[str, ...] = ()
    key_items: tuple[str, ...] = ()
    category: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineStep:
    """The result of one stage-3 action in an interactive engine."""

    observation: str
    done: bool = False
    success: bool = False
    progress: float = 0.0
    valid: bool = True


class Engine(ABC):
    """An interactive environment driven by text actions in stage 3.

    Implementations own their subprocesses (a JVM, a planner) and must leave none behind after
    :meth:`close`.
    """

    max_steps: int = 30
    #: Whether a success counts as progress 1 (AgentBoard's BabyAI keeps the pattern score).
    success_sets_full_progress: bool = True

    @abstractmethod
    def reset(self, task: TaskInstance) -> str:
        """Start ``task`` and return the first observation text."""

    @abstractmethod
    def step(self, action: str) -> EngineStep:
        """Apply one text action. Invalid actions are reported, never raised."""

    @abstractmethod
    def valid_actions(self) -> list[str]:
        """The actions that are valid in the current state."""

    def expert_action(self) -> str | None:
        """An expert's next action (for the oracle policy), or None when there is none."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release processes and files."""


class TaskSource(ABC):
    """A benchmark: an indexed evaluation set of task instances, scoring, and an optional engine.

    Subclasses set ``name`` and implement :meth:`__len__` and :meth:`get`. QA benchmarks
    implement :meth:`score`; interactive ones return an engine from :meth:`make_engine`.
    """

    name: str = "task"
    #: Benchmark-specific guidance appended to the system prompt (e.g. what an action looks like).
    instructions: str = ""
    #: Default N_max (rounds) and T_max (context tokens) for this benchmark; the env's config
    #: may override them.
    max_rounds: int = 100
    token_budget: int = 8192

    @abstractmethod
    def __len__(self) -> int:
        """Number of tasks in the evaluation set."""

    @abstractmethod
    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        """Task ``index`` of the evaluation set; ``rng`` seeds the wording of its messages."""

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task drawn with ``rng``: never one of the evaluation set.

        Used when ``reset`` names no task, and by the trainers.

        Raises:
            NoTrainingDataError: the benchmark has no training tasks at hand.
        """
        raise NoTrainingDataError(self.training_split())

    def training_split(self) -> str:
        """Where :meth:`sample` draws from, in words (training runs record it).

        Raises:
            NoTrainingDataError: there are no training tasks; the message says what to pass.
        """
        raise NoTrainingDataError(f"{type(self).__name__} has no training tasks.")

    def score(self, task: TaskInstance, answer: str) -> dict[str, float]:
        """Score a final QA answer: a dict with at least ``score`` in [0, 1] and ``success``."""
        raise NotImplementedError(f"{type(self).__name__} is interactive; it has no QA score")

    def make_engine(self) -> Engine | None:
        """The stage-3 engine, or None for a QA benchmark."""
        return None

    @property
    def interactive(self) -> bool:
        """Whether stage 3 runs an engine (the source overrides :meth:`make_engine`)."""
        return type(self).make_engine is not TaskSource.make_engine

    @property
    def task_metric(self) -> str:
        """Name of the primary metric (``score``'s meaning), for tables."""
        return "score"

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or caches."""
