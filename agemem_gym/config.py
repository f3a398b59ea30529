"""The env's settings, checked up front."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.errors import ConfigError
from agemem_gym.memory.context import TokenCounter
from agemem_gym.memory.encoders import Encoder
from agemem_gym.memory.summarizers import Summarizer
from agemem_gym.prompts import PromptStyle
from agemem_gym.rewards import RewardMode, RewardWeights
from agemem_gym.tools import ALL_TOOLS, TOOL_SPECS


@dataclass
class EnvConfig:
    """Settings of :class:`~agemem_gym.env.AgeMemEnv`. Every field can be passed to ``gym.make``.

    N_max and T_max are not given by the paper (only its 8,192-token context window); each
    benchmark sets its own defaults (``TaskSource.max_rounds`` / ``token_budget``) and these
    fields override them.
    """

    stages: tuple[int, ...] = (1, 2, 3)
    """Which stages to run, in order: ``(3,)`` is the plain benchmark."""
    encoder: str | Encoder = "hashing"
    """Text encoder for memory search and ``Filter_context``: ``hashing`` (offline) or ``minilm``."""
    memory_store: str | None = None
    """chromadb location: None (in memory), a directory, or an ``http://host:port`` server."""
    summarizer: Summarizer | dict[str, Any] | None = None
    """``Summary_context``'s summarizer: None (deterministic extractive), a summarizer, or an LLM
    as ``{"model": ..., "backend": ..., **backend options}``."""
    judge: Any = None
    """Who scores memory, retrieval and (QA) answers: None (deterministic), a
    :class:`~agemem_gym.judges.Judge`, or an LLM as ``{"model": ..., "backend": ...}``. With an
    LLM judge the reward's task score is its J and ``metrics["judge_score"]`` records it."""
    token_counter: TokenCounter | None = None
    """Counts context tokens; None means the chars/4 approximation."""
    tools: tuple[str, ...] = ALL_TOOLS
    """Tools the agent may call."""
    prompt: PromptStyle = "full"
    """System prompt: ``full`` (protocol and JSON schemas) or ``compact`` (for tiny models)."""
    retrieval_top_k: int = 3
    """k of the stage-1 introspective retrieval (and of ``auto_retrieve``)."""
    auto_retrieve: bool = False
    """RAG variant: before every stage-3 model turn, append the top-k memories for the latest
    non-assistant message."""
    filter_threshold: float = 0.6
    """theta of ``Filter_context``: messages with cosine >= theta are removed."""
    max_rounds: int | None = None
    """N_max: model turns over the whole episode; more ends it with a -1 penalty."""
    token_budget: int | None = None
    """T_max: context tokens; exceeding it costs -0.5 once."""
    max_context_tokens: int | None = None
    """Hard cap that ends the episode (default 4 x T_max), so a runaway context cannot grow."""
    max_steps_per_turn: int = 8
    """Model responses allowed in one turn before the env moves on without an answer."""
    max_tool_calls_per_step: int = 8
    """Tool calls run from one response; the rest are reported as skipped."""
    max_response_chars: int = 32_768
    """Longer responses are rejected as malformed."""
    max_text_chars: int = 4_000
    """Longest string argument a tool accepts."""
    reward_weights: RewardWeights = field(default_factory=RewardWeights)
    """w_task, w_context, w_memory (default 1/3 each)."""
    reward_mode: RewardMode = "full"
    """``full`` (the paper's R) or ``task`` (task score only)."""
    format_penalty: float = 0.0
    """Subtracted from the final reward for each malformed response."""
    privileged_info: bool = False
    """Put ground truth (``task``, ``expert_action``) in ``info`` for scripted policies."""

    def __post_init__(self) -> None:
        self.stages = tuple(int(s) for s in self.stages)
        if not self.stages or set(self.stages) - {1, 2, 3} or list(self.stages) != sorted(set(self.stages)):
            raise ConfigError(f"stages must be an increasing subset of (1, 2, 3), got {self.stages}")
        unknown = [t for t in self.tools if t not in TOOL_SPECS]
        if unknown:
            raise ConfigError(f"unknown tools {unknown}; the tools are {', '.join(TOOL_SPECS)}")
        if self.prompt not in ("full", "compact"):
            raise ConfigError(f"prompt must be 'full' or 'compact', got {self.prompt!r}")
        if not 0.0 < self.filter_threshold <= 1.0:
            raise ConfigError(f"filter_threshold must be in (0, 1], got {self.filter_threshold}")
        for name in ("retrieval_top_k", "max_steps_per_turn", "max_tool_calls_per_step",
                     "max_response_chars", "max_text_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_rounds", "token_budget", "max_context_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 or None, got {value}")
        if self.reward_mode not in ("full", "task"):
            raise ConfigError(f"reward_mode must be 'full' or 'task', got {self.reward_mode!r}")
        if isinstance(self.reward_weights, dict):
            self.reward_weights = RewardWeights(**self.reward_weights)

    @classmethod
    def split(cls, options: dict[str, Any]) -> tuple[EnvConfig, dict[str, Any]]:
        """Separate env settings from the rest (which belong to the benchmark)."""
        names = {f.name for f in dataclasses.fields(cls)}
        mine = {k: v for k, v in options.items() if k in names}
        rest = {k: v for k, v in options.items() if k not in names}
        return cls(**mine), rest
