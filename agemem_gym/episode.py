"""The bookkeeping of one episode."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.tasks.base import TaskInstance


@dataclass
class EpisodeState:
    """Everything the env measures during one episode: where it is, what happened, what it
    cost. The env turns it into the final reward and ``info``."""

    task: TaskInstance
    stage_index: int = 0
    turn: int = 0
    steps_in_turn: int = 0
    rounds: int = 0
    done: bool = False
    answer: str | None = None
    tokens_at_answer: int = 0
    max_tokens: int = 0
    budget_exceeded: bool = False
    reduced_before_budget: bool = False
    maintenance: bool = False
    rounds_exceeded: bool = False
    engine_steps: int = 0
    success: bool = False
    progress: float = 0.0
    stage1_entries: list[Any] | None = None
    retrieved: dict[str, str] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    tool_calls: collections.Counter[str] = field(default_factory=collections.Counter)
    trace: list[dict[str, Any]] = field(default_factory=list)
