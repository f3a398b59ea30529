"""The bookkeeping of one episode."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.llm.base import Usage
from agemem_gym.port import COST_ROLES, IncomingMessage
from agemem_gym.tasks.base import TaskInstance
from agemem_gym.trace import Trace


@dataclass
class EpisodeState:
    """Everything the env measures during one episode: where it is, what happened, what it
    cost. The env turns it into the final reward, ``info`` and the episode's result."""

    task: TaskInstance
    key: str = ""
    seed: int | None = None
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
    stage3_rounds: int = 0
    success: bool = False
    progress: float = 0.0
    stage1_entries: list[Any] | None = None
    retrieved: dict[str, str] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    tool_calls: collections.Counter[str] = field(default_factory=collections.Counter)
    tool_calls_by_source: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    tool_calls_by_stage: dict[int, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    cost: dict[str, Usage] = field(default_factory=lambda: {role: Usage() for role in COST_ROLES})
    failure_reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    trace: Trace = field(default_factory=Trace)
    incoming: IncomingMessage | None = None
    memory_check: list[dict[str, Any]] = field(default_factory=list)
    tool_message_results: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)

    def count_tool(self, name: str, source: str, stage: int) -> None:
        self.tool_calls[name] += 1
        self.tool_calls_by_source[source][name] += 1
        self.tool_calls_by_stage[stage][name] += 1
        self.counts["tool_calls"] += 1
