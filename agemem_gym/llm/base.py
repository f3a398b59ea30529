"""The interface every LLM backend implements, and helpers they share.

A backend turns a batch of chat prompts (lists of ``{"role", "content"}`` messages, roles
``system``, ``user``, ``assistant``, ``tool``) into one :class:`Generation` each. Stop strings
are honoured the same way by every backend: the text ends right after the first stop string
that occurs, the stop string included (so a parser still sees ``</answer>``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agemem_gym.errors import AgeMemError, ConfigError

Message = Mapping[str, str]
Prompt = Sequence[Message]

#: Roles a prompt may use.
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})
#: How a ``tool`` message is shown to a chat template that rejects the ``tool`` role.
TOOL_AS_USER_PREFIX = "[Tool result]\n"


class BackendError(AgeMemError, RuntimeError):
    """A generation request failed (server unreachable, HTTP error, bad response)."""


@dataclass
class Generation:
    """One completion of one prompt.

    Attributes:
        text: the completion (after stop-string trimming).
        prompt_tokens: tokens of the templated prompt.
        completion_tokens: tokens generated.
        seconds: wall time of the request (for a batch: the batch's time).
        logprobs: log-probability of each completion token under the model, when asked.
        completion_ids: token ids of the completion, when available.
        prompt_ids: token ids of the templated prompt, when available.
        finish_reason: ``"stop"`` (end of turn or a stop string) or ``"length"``.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    logprobs: list[float] | None = None
    completion_ids: list[int] | None = None
    prompt_ids: list[int] | None = None
    finish_reason: str | None = None


@dataclass
class Usage:
    """What a component's model calls cost: calls, tokens, seconds, and unusable replies.

    >>> usage = Usage()
    >>> usage.add([Generation("Score: 1", 120, 3, 0.5)])
    >>> usage.as_dict()
    {'llm_calls': 1, 'prompt_tokens': 120, 'completion_tokens': 3, 'seconds': 0.5, 'failures': 0}
    """

    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    failures: int = 0

    def add(self, generations: Sequence[Generation]) -> None:
        self.llm_calls += len(generations)
        self.prompt_tokens += sum(g.prompt_tokens for g in generations)
        self.completion_tokens += sum(g.completion_tokens for g in generations)
        # a batch reports its wall time on every generation: count it once
        self.seconds += max((g.seconds for g in generations), default=0.0)

    def as_dict(self) -> dict[str, float]:
        return {"llm_calls": self.llm_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 4),
                "failures": self.failures}


class LLMBackend(ABC):
    """Generates completions for batches of chat prompts.

    Backends are context managers: ``with make_backend(...) as llm: ...`` closes them.
    """

    name: str = "base"

    @abstractmethod
    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        logprobs: bool = False,
        stop: Sequence[str] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> list[Generation]:
        """Complete every prompt; greedy at ``temperature == 0``.

        Args:
            prompts: chat prompts, one message list each.
            max_new_tokens: most tokens to generate per prompt.
            temperature: sampling temperature; 0 means greedy.
            top_p: nucleus sampling mass.
            seed: seed of the sampling (the same seed gives the same samples).
            logprobs: also return each completion token's log-probability.
            stop: strings that end a completion (kept in the text).
            json_schema: constrain each completion to JSON that this schema accepts (an
                OpenAI-compatible server gets it as ``response_format``; the local backend
                decodes under it). None: free text.

        Returns:
            One :class:`Generation` per prompt, in order.
        """

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` under the model's tokenizer (no special tokens added)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release the model, connections or threads."""

    def __enter__(self) -> LLMBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_sampling(max_new_tokens: int, temperature: float, top_p: float) -> None:
    """Reject sampling settings no backend accepts.

    Raises:
        ConfigError: a negative temperature, ``top_p`` outside (0, 1] or ``max_new_tokens < 1``.
    """
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


def validate_prompt(prompt: Prompt, index: int = 0) -> list[dict[str, str]]:
    """Check one chat prompt and return it as plain dicts with only ``role`` and ``content``.

    Raises:
        ConfigError: an empty prompt, an unknown role or a non-string content.
    """
    if not prompt:
        raise ConfigError(f"prompt {index} is empty: give at least one message")
    messages = []
    for i, message in enumerate(prompt):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ConfigError(
                f"prompt {index}, message {i}: role must be one of {sorted(ROLES)}, got {role!r}"
            )
        if not isinstance(content, str):
            raise ConfigError(
                f"prompt {index}, message {i}: content must be a string, "
                f"got {type(content).__name__}"
            )
        messages.append({"role": role, "content": content})
    return messages


def tool_as_user(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Map ``tool`` messages to ``user`` ones with :data:`TOOL_AS_USER_PREFIX`.

    Consecutive user messages that result are kept separate; templates that require strict
    alternation should be given prompts that alternate.
    """
    return [
        {"role": "user", "content": TOOL_AS_USER_PREFIX + m["content"]}
        if m["role"] == "tool"
        else {"role": m["role"], "content": m["content"]}
        for m in messages
    ]


def find_stop(text: str, stop: Sequence[str] | None) -> int | None:
    """Index just past the earliest stop string in ``text``, or None when none occurs.

    >>> find_stop("<answer>4</answer> tail", ["</answer>"])
    18
    """
    best: tuple[int, int] | None = None  # (start, end) of the earliest, longest match
    for s in stop or ():
        start = text.find(s) if s else -1
        if start >= 0 and (best is None or (start, -len(s)) < (best[0], best[0] - best[1])):
            best = (start, start + len(s))
    return None if best is None else best[1]


def trim_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut ``text`` after the earliest stop string; return the text and whether one was found.

    >>> trim_at_stop("<tool_call>[]</tool_call><answer>x", ["</tool_call>", "</answer>"])
    ('<tool_call>[]</tool_call>', True)
    """
    end = find_stop(text, stop)
    return (text, False) if end is None else (text[:end], True)
