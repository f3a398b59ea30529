"""The env's settings, checked up front."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.errors import ConfigError, UnknownNameError
from agemem_gym.memory.context import TokenCounter
from agemem_gym.memory.encoders import ENCODERS, Encoder
from agemem_gym.memory.store import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from agemem_gym.memory.summarizers import Summarizer
from agemem_gym.prompts import PromptStyle
from agemem_gym.rewards import RewardMode, RewardWeights
from agemem_gym.tools import ALL_TOOLS, TOOL_SPECS

CONTROLLER_OPS = ("add", "update", "delete", "retrieve")
#: (setting, lowest value, None allowed)
_INT_RANGES = (
    ("retrieval_top_k", 1, False), ("max_steps_per_turn", 1, False),
    ("max_tool_calls_per_step", 1, False), ("max_response_chars", 1, False),
    ("max_text_chars", 1, False), ("max_rounds", 1, True), ("token_budget", 1, True),
    ("max_context_tokens", 1, True), ("store_retries", 0, False),
)


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
    """Tools the agent may call (``()``: none, for agents whose memory an external controller
    manages)."""
    controller_ops: tuple[str, ...] = CONTROLLER_OPS
    """Long-term memory operations an external controller may run through the memory port."""
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
    """``full`` (the paper's R), ``task`` (task score only) or ``official`` (the released code's
    reward, :mod:`agemem_gym.rewards_official`)."""
    format_penalty: float = 0.0
    """Subtracted from the final reward for each malformed response."""
    privileged_info: bool = False
    """Put ground truth (``task``, ``expert_action``) in ``info`` for scripted policies."""
    protocol: str = "paper"
    """``paper`` (our reading of the paper) or ``official`` (the authors' released code); a
    protocol is a preset of the settings below (:mod:`agemem_gym.protocols`), recorded in every
    result."""
    introspective_retrieval: bool = True
    """Show the top-k stored memories before each stage-1 turn (the paper; ``official``: off)."""
    parser: str = "strict"
    """``strict`` refuses malformed replies; ``lenient`` repairs them as the released code does
    and counts each repair (:mod:`agemem_gym.lenient`)."""
    store_timeout: float = DEFAULT_TIMEOUT
    """Seconds a Chroma server may take to answer one request before it is retried."""
    store_retries: int = DEFAULT_RETRIES
    """Further tries of a server request that timed out or could not connect; then the episode
    stops with :class:`~agemem_gym.errors.StoreUnavailableError`."""

    def __post_init__(self) -> None:
        self.stages = parse_stages(self.stages)
        self.tools = _names("tools", self.tools, tuple(TOOL_SPECS))
        self.controller_ops = _names("controller_ops", self.controller_ops, CONTROLLER_OPS)
        self.prompt = check_choice("prompt", self.prompt, ("full", "compact"))
        self.reward_mode = check_choice("reward_mode", self.reward_mode, ("full", "task", "official"))
        self.protocol = check_choice("protocol", self.protocol, ("paper", "official"))
        self.parser = check_choice("parser", self.parser, ("strict", "lenient"))
        self.encoder = _check_encoder(self.encoder)
        self.judge = check_llm_spec("judge", self.judge, "memory_quality", "a Judge")
        self.summarizer = check_llm_spec("summarizer", self.summarizer, "summarize",
                                         "a Summarizer")
        if self.token_counter is not None and not callable(getattr(self.token_counter, "count", None)):
            raise ConfigError(f"token_counter must be None or have count(text) -> int, got "
                              f"{_show(self.token_counter)}")
        if self.memory_store is not None and not isinstance(self.memory_store, str):
            raise ConfigError(f"memory_store must be None, a directory or an http(s):// URL, got "
                              f"{_show(self.memory_store)}")
        for name, low, optional in _INT_RANGES:
            setattr(self, name, check_int(name, getattr(self, name), low, optional=optional))
        self.filter_threshold = check_number("filter_threshold", self.filter_threshold, 0.0, 1.0,
                                             low_open=True)
        self.format_penalty = check_number("format_penalty", self.format_penalty, 0.0, None)
        self.store_timeout = check_number("store_timeout", self.store_timeout, 0.0, None,
                                          low_open=True)
        for name in ("auto_retrieve", "privileged_info", "introspective_retrieval"):
            setattr(self, name, check_bool(name, getattr(self, name)))
        self.reward_weights = _check_weights(self.reward_weights)

    @classmethod
    def split(cls, options: dict[str, Any]) -> tuple[EnvConfig, dict[str, Any]]:
        """Separate env settings from the rest (which belong to the benchmark)."""
        names = {f.name for f in dataclasses.fields(cls)}
        mine = {k: v for k, v in options.items() if k in names}
        rest = {k: v for k, v in options.items() if k not in names}
        return cls(**mine), rest


# -- checks: each names the setting, the value given and what is allowed --------------------
def _show(value: Any, limit: int = 60) -> str:
    text = f"{value!r} ({type(value).__name__})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_int(name: str, value: Any, low: int, high: int | None = None, *,
              optional: bool = False) -> Any:
    """``value`` as an int in ``[low, high]`` (a numeric string is read), or ConfigError.

    >>> check_int("max_steps_per_turn", "4", 1)
    4
    >>> check_int("max_steps_per_turn", 0, 1)
    Traceback (most recent call last):
    ...
    agemem_gym.errors.ConfigError: max_steps_per_turn must be an integer >= 1, got 0 (int)
    """
    allowed = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
    if optional:
        allowed += " or None"
    if value is None and optional:
        return None
    number = value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value) or isinstance(value, float) and value.is_integer():
        number = int(value)
    if (isinstance(number, bool) or not isinstance(number, int) or number < low
            or (high is not None and number > high)):
        raise ConfigError(f"{name} must be {allowed}, got {_show(value)}")
    return number


def check_number(name: str, value: Any, low: float, high: float | None, *,
                 low_open: bool = False) -> float:
    """``value`` as a finite float in range (``low`` excluded when ``low_open``), or ConfigError.

    >>> check_number("format_penalty", "x", 0.0, None)
    Traceback (most recent call last):
    ...
    agemem_gym.errors.ConfigError: format_penalty must be a number >= 0.0, got 'x' (str)
    """
    lower = f"> {low}" if low_open else f">= {low}"
    allowed = f"a number {lower}" if high is None else f"a number in {'(' if low_open else '['}{low}, {high}]"
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = value
    if (isinstance(number, bool) or not isinstance(number, (int, float))
            or not math.isfinite(number) or number < low or (low_open and number == low)
            or (high is not None and number > high)):
        raise ConfigError(f"{name} must be {allowed}, got {_show(value)}")
    return float(number)


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool (``"true"``/``"false"`` read), or ConfigError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{name} must be true or false, got {_show(value)}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> Any:
    """``value`` if it is one of ``choices``, else ConfigError with a "did you mean".

    >>> check_choice("reward_mode", "ful", ("full", "task"))
    Traceback (most recent call last):
    ...
    agemem_gym.errors.ConfigError: reward_mode must be one of 'full', 'task', got 'ful' (str). Did you mean 'full'?
    """
    if isinstance(value, str) and value in choices:
        return value
    close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
    hint = f". Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got "
                      f"{_show(value)}{hint}")


def parse_stages(value: Any, name: str = "stages") -> tuple[int, ...]:
    """Stages as an increasing subset of (1, 2, 3); ``3``, ``"3"``, ``"1,2,3"`` are read too.

    >>> parse_stages("2,3"), parse_stages(3)
    ((2, 3), (3,))
    >>> parse_stages("banana")
    Traceback (most recent call last):
    ...
    agemem_gym.errors.ConfigError: stages must be an increasing subset of (1, 2, 3), such as (3,) or (1, 2, 3), got 'banana' (str)
    """
    items: Any = value
    if isinstance(value, str):
        items = [p for p in re.split(r"[\s,]+", value.strip("()[] ")) if p]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    try:
        stages = tuple(check_int(name, s, 1, 3) for s in items)
    except (ConfigError, TypeError):
        stages = ()
    if not stages or list(stages) != sorted(set(stages)):
        raise ConfigError(f"{name} must be an increasing subset of (1, 2, 3), such as (3,) or "
                          f"(1, 2, 3), got {_show(value)}")
    return stages


def _names(name: str, value: Any, known: Sequence[str]) -> tuple[str, ...]:
    items = [p for p in re.split(r"[\s,]+", value) if p] if isinstance(value, str) else value
    try:
        names = tuple(items)
    except TypeError:
        raise ConfigError(f"{name} must be a list of names from {', '.join(known)}, got "
                          f"{_show(value)}") from None
    for item in names:
        if item not in known:
            close = difflib.get_close_matches(item, known, n=1) if isinstance(item, str) else []
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown {name} entry {item!r}.{hint} The {name} are "
                              f"{', '.join(known)}")
    return names


def _check_encoder(value: Any) -> Any:
    if isinstance(value, str):
        if value.partition(":")[0] not in ENCODERS:
            raise UnknownNameError("encoder", value, ENCODERS)
    elif not callable(getattr(value, "encode", None)):
        raise ConfigError(f"encoder must be one of {', '.join(ENCODERS)} or an Encoder, got "
                          f"{_show(value)}")
    return value


def check_llm_spec(name: str, value: Any, method: str, what: str) -> Any:
    """None, an object with ``method``, or ``{"model": ..., "backend": ...}``; else ConfigError."""
    if value is None or callable(getattr(value, method, None)):
        return value
    expected = (f"{name} must be None (the deterministic default), {what}, or "
                f'{{"model": ..., "backend": ...}} naming an LLM')
    if not isinstance(value, dict):
        raise ConfigError(f"{expected}, got {_show(value)}")
    if not isinstance(value.get("model"), str) or not value["model"].strip():
        raise ConfigError(f'{expected}; the "model" entry is missing or empty in {_show(value)}')
    from agemem_gym.llm import BACKENDS

    backend = value.get("backend", "transformers")
    if backend not in BACKENDS:
        raise UnknownNameError(f"{name} backend", str(backend), BACKENDS)
    return value


def _check_weights(value: Any) -> RewardWeights:
    if isinstance(value, RewardWeights):
        weights = value
    elif isinstance(value, dict):
        known = [f.name for f in dataclasses.fields(RewardWeights)]
        for key in value:
            if key not in known:
                raise ConfigError(f"reward_weights has no weight {key!r}; the weights are "
                                  f"{', '.join(known)}")
        weights = RewardWeights(**value)
    else:
        raise ConfigError(f"reward_weights must be RewardWeights or a dict of task, context, "
                          f"memory, got {_show(value)}")
    for f in dataclasses.fields(RewardWeights):
        check_number(f"reward_weights.{f.name}", getattr(weights, f.name), 0.0, None)
    return weights
