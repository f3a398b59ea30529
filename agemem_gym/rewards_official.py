"""The reward of the authors' released HotpotQA code (the ``official`` protocol's preset).

Restated from the release (``memory_reward/my_reward.py``, weights from
``train_hotpotQA.py``); ../shared/OFFICIAL.md section 4 compares it with the paper's reward:

``R = 0.5 * J_or_0 + 0.15 * ctx + 0.15 * mem + 0.2 * tool + penalties``, clipped to [-1, 1],
where a missing answer adds an unweighted -1, and every term is read from the **final
context only** (stage 2 and 3; stage-1 writes are never rewarded):

- ctx = mean of compression ``max(0, 1 - (chars / 4) / T_max)``, preventive (an assistant
  message naming ``Summary_context`` or ``Clear_context`` survives and the context did not
  overflow) and preservation (a user message not starting with ``[`` survives, and at least half
  of the first one's words longer than three letters still appear in the context);
- mem = mean of storage, maintenance (an update or delete result survives) and relevance. With
  no LLM judge, storage is ``0.3 *`` the share of surviving ``Add_memory`` calls longer than 50
  characters that say important/key/remember/note, and relevance is 0.5 when a retrieval result
  is followed by an assistant message (0.2 otherwise, 0 without retrieval); an LLM judge
  replaces both with its scores, as the release does with qwen-max;
- tool = ``clip(scale + presence + efficiency, -0.5, 1)``: scale 0.2 when tool mentions per
  stage-3 round are in [0.3, 2], -0.1 above 3; presence 0.2 for a retrieval, 0.2 for a
  summary or clear, 0.1 for an add; efficiency ``0.2 * (1 - rounds / max_rounds)``;
- penalties: -1 when stage 3 used all ``max_rounds`` rounds, -0.5 when the final context
  overflows T_max.

Example (a correct answer in one round, 2,560 tokens of context, no tools; OFFICIAL.md's
first scenario):
    >>> messages = [("system", "s" * 10), ("user", "Where was Ada born?"), ("assistant", "x" * (10240 - 28))]
    >>> stats = FinalContext.from_messages(messages, {})
    >>> round(official_reward(stats, task_score=1.0, answered=True, rounds=1)["total"], 4)
    0.6164
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

WEIGHTS = {"task": 0.5, "context": 0.15, "memory": 0.15, "tool": 0.2}
MAX_ROUNDS = 5
TOKEN_BUDGET = 8192
_COUNTED_TOOLS = ("Summary_context", "Clear_context", "Retrieve_memory", "Add_memory",
                  "Update_memory", "Delete_memory")
_GOOD_WORDS = ("important", "key", "remember", "note")


@dataclass(frozen=True)
class FinalContext:
    """What the released reward reads off the final context.

    ``results`` maps a tool message's index in ``messages`` to the names of the tools whose
    results it carries and whether each succeeded.
    """

    messages: tuple[tuple[str, str], ...]
    results: dict[int, list[tuple[str, bool]]] = field(default_factory=dict)
    added: tuple[str, ...] = ()
    retrieved: tuple[str, ...] = ()

    @classmethod
    def from_messages(cls, messages: Sequence[tuple[str, str]], results: dict[int, list[tuple[str, bool]]],
                      added: Sequence[str] = (), retrieved: Sequence[str] = ()) -> FinalContext:
        return cls(tuple(messages), dict(results), tuple(added), tuple(retrieved))

    @property
    def tokens(self) -> float:
        return sum(len(content) for _, content in self.messages) / 4

    def tool_mentions(self) -> dict[str, int]:
        """Per tool, the assistant messages that name it (the release counts substrings)."""
        return {name: sum(name in c for r, c in self.messages if r == "assistant") for name in _COUNTED_TOOLS}

    def result_at(self, index: int, *names: str) -> bool:
        """Whether the message at ``index`` carries a successful result of one of ``names``."""
        return any(n in names and ok for n, ok in self.results.get(index, []))

    def has_result(self, *names: str) -> int:
        """How many messages carry a successful result of one of ``names``."""
        return sum(self.result_at(i, *names) for i in range(len(self.messages)))


def _context_term(ctx: FinalContext, budget: int) -> tuple[float, dict[str, float]]:
    overflow = ctx.tokens > budget
    compression = max(0.0, 1.0 - ctx.tokens / budget)
    mentions = ctx.tool_mentions()
    preventive = float((mentions["Summary_context"] + mentions["Clear_context"]) > 0 and not overflow)
    user = [c for r, c in ctx.messages if r == "user" and not c.startswith("[")]
    preserved = bool(user)
    if user:
        words = [w.lower() for w in re.findall(r"\b\w+\b", user[0]) if len(w) > 3]
        text = " ".join(c.lower() for _, c in ctx.messages)
        preserved = not words or sum(w in text for w in words) / len(words) >= 0.5
    parts = {"context/compression": compression, "context/preventive": preventive,
             "context/preservation": float(preserved)}
    return sum(parts.values()) / 3, parts


def _memory_term(ctx: FinalContext, judge: Judged | None) -> tuple[float, dict[str, float]]:
    maintenance = float(ctx.has_result("Update_memory", "Delete_memory") > 0)
    added = ctx.has_result("Add_memory")
    good = sum(r == "assistant" and "Add_memory" in c and len(c) > 50 and any(w in c.lower() for w in _GOOD_WORDS)
               for r, c in ctx.messages)
    storage = 0.3 * good / added if added else 0.0
    retrievals = [i for i in range(len(ctx.messages)) if ctx.result_at(i, "Retrieve_memory")]
    used = any(i + 1 < len(ctx.messages) and ctx.messages[i + 1][0] == "assistant" for i in retrievals)
    relevance = (0.5 if used else 0.2) if retrievals else 0.0
    if judge is not None:
        if ctx.retrieved:
            relevance = judge.relevance(list(ctx.retrieved[:10]))
        if ctx.added and added:
            storage = judge.storage(list(ctx.added[:10]))
    parts = {"memory/storage": storage, "memory/maintenance": maintenance, "memory/relevance": relevance}
    return sum(parts.values()) / 3, parts


def _tool_term(ctx: FinalContext, rounds: int, max_rounds: int) -> float:
    mentions = ctx.tool_mentions()
    ratio = sum(mentions.values()) / max(1, rounds)
    scale = 0.2 if 0.3 <= ratio <= 2.0 else (-0.1 if ratio > 3.0 else 0.0)
    presence = (0.2 * (mentions["Retrieve_memory"] > 0)
                + 0.2 * (mentions["Summary_context"] + mentions["Clear_context"] > 0)
                + 0.1 * (mentions["Add_memory"] > 0))
    efficiency = (1.0 - rounds / max_rounds) * 0.2
    return max(-0.5, min(1.0, scale + presence + efficiency))


@dataclass(frozen=True)
class Judged:
    """LLM-judge overrides of storage and relevance (the release asks qwen-max)."""

    relevance: Callable[[list[str]], float]
    storage: Callable[[list[str]], float]


def official_reward(ctx: FinalContext, *, task_score: float, answered: bool, rounds: int,
                    max_rounds: int = MAX_ROUNDS, token_budget: int = TOKEN_BUDGET,
                    judge: Judged | None = None) -> dict[str, float]:
    """Every term of the released reward, weighted, with the clipped sum under ``total``."""
    context, context_parts = _context_term(ctx, token_budget)
    memory, memory_parts = _memory_term(ctx, judge)
    tool = _tool_term(ctx, rounds, max_rounds)
    task = (task_score if answered else 0.0) * WEIGHTS["task"] + (0.0 if answered else -1.0)
    penalties = {"penalty/rounds": -1.0 if rounds >= max_rounds else 0.0,
                 "penalty/tokens": -0.5 if ctx.tokens > token_budget else 0.0}
    raw = (task + WEIGHTS["context"] * context + WEIGHTS["memory"] * memory + WEIGHTS["tool"] * tool
           + sum(penalties.values()))
    return {"total": max(-1.0, min(1.0, raw)), "total_unclipped": raw, "task": task,
            "context": context, **context_parts, "memory": memory, **memory_parts, "tool": tool,
            "penalty": sum(penalties.values()), **penalties}
