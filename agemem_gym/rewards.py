"""The paper's trajectory reward, given once at the last step.

``R = w_task * R_task + w_context * R_context + w_memory * R_memory + P_penalty`` with

- ``R_task``: the judge's score of the answer in [0, 1]; -1 when no answer was produced;
- ``R_context``: mean of compression ``max(0, 1 - T_used / T_max)`` (context tokens when the
  answer is produced), preventive (1 if ``Summary_context`` or ``Filter_context`` ran before the
  context first exceeded T_max) and preservation (1 if every key item of the query is still in
  the context at the answer);
- ``R_memory``: mean of storage (high-quality share of the entries added in stage 1),
  maintenance (1 if any ``Update_memory`` or ``Delete_memory`` succeeded) and relevance (of
  what ``Retrieve_memory`` returned in stage 3, to the query);
- ``P_penalty``: -1 if the episode needed more than N_max rounds, -0.5 if the context ever
  exceeded T_max.

Weights default to 1/3 each (the paper's implementation appendix); ``RewardWeights.uniform()``
gives the main text's 1.0 each. ``mode="task"`` returns the task score alone (the paper's
Answer-Only ablation, and what most RL users want as a plain benchmark reward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RewardMode = Literal["full", "task", "official"]


@dataclass(frozen=True)
class RewardWeights:
    task: float = 1 / 3
    context: float = 1 / 3
    memory: float = 1 / 3

    @classmethod
    def uniform(cls) -> RewardWeights:
        """The main text's weights (1.0 each)."""
        return cls(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class EpisodeOutcome:
    """What the env measured over one episode, as the reward needs it."""

    answered: bool
    task_score: float
    tokens_at_answer: int
    token_budget: int
    budget_exceeded: bool
    reduced_before_budget: bool
    key_items_preserved: bool
    storage: float
    maintenance: bool
    relevance: float
    rounds_exceeded: bool


def trajectory_reward(
    outcome: EpisodeOutcome,
    weights: RewardWeights = RewardWeights(),  # noqa: B008 - frozen, immutable default
    mode: RewardMode = "full",
) -> dict[str, float]:
    """Every component of the reward, namespaced, with the weighted sum under ``total``.

    >>> o = EpisodeOutcome(True, 1.0, 0, 100, False, True, True, 1.0, True, 1.0, False)
    >>> trajectory_reward(o)["total"]
    1.0
    >>> trajectory_reward(o, mode="task")["total"]
    1.0
    """
    task = outcome.task_score if outcome.answered else -1.0
    compression = max(0.0, 1.0 - outcome.tokens_at_answer / max(1, outcome.token_budget))
    context_parts = {
        "context/compression": compression,
        "context/preventive": float(outcome.reduced_before_budget),
        "context/preservation": float(outcome.key_items_preserved),
    }
    memory_parts = {
        "memory/storage": outcome.storage,
        "memory/maintenance": float(outcome.maintenance),
        "memory/relevance": outcome.relevance,
    }
    penalties = {
        "penalty/rounds": -1.0 if outcome.rounds_exceeded else 0.0,
        "penalty/tokens": -0.5 if outcome.budget_exceeded else 0.0,
    }
    context = sum(context_parts.values()) / 3
    memory = sum(memory_parts.values()) / 3
    penalty = sum(penalties.values())
    if mode == "task":
        total = task
    else:
        total = weights.task * task + weights.context * context + weights.memory * memory + penalty
    return {
        "total": total,
        "task": task,
        "context": context,
        **context_parts,
        "memory": memory,
        **memory_parts,
        "penalty": penalty,
        **penalties,
    }
