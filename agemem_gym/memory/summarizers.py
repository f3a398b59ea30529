"""Summarizers for ``Summary_context``: turn a span of messages into one summary text.

The default :class:`ExtractiveSummarizer` is deterministic and needs no model. An LLM-backed
summarizer implements the same one-method protocol.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any, Protocol

from agemem_gym.llm.base import LLMBackend, Usage
from agemem_gym.memory.context import Message

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# Sentences carrying facts, intentions, decisions or open questions.
_INFORMATIVE = re.compile(
    r"\d|\?|\b(?:is|are|was|were|will|want|plan|decid|prefer|need|must|should|moved|live|"
    r"changed|now|no longer|stored|updated|deleted)\w*",
    re.IGNORECASE,
)
_CAPITALISED_INSIDE = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")


class Summarizer(Protocol):
    """Summarises a span of messages into one text."""

    name: str

    def summarize(self, messages: Sequence[Message]) -> str: ...


class ExtractiveSummarizer:
    """Keeps the informative sentences of each message (numbers, names, questions, statements
    of state or intent), drops duplicates and filler, and caps the result at ``max_ratio`` of
    the original length (at least ``min_chars``).

    Example:
        >>> msgs = [Message("m2", "user", "Hi there! I moved to Lisbon in 2021. Nice weather.")]
        >>> ExtractiveSummarizer().summarize(msgs)
        'user: I moved to Lisbon in 2021.'
    """

    name = "extractive"

    def __init__(self, max_ratio: float = 0.5, min_chars: int = 200):
        self.max_ratio = max_ratio
        self.min_chars = min_chars

    def summarize(self, messages: Sequence[Message]) -> str:
        total = sum(len(m.content) for m in messages)
        budget = max(self.min_chars, int(total * self.max_ratio))
        seen: set[str] = set()
        lines: list[str] = []
        used = 0
        for message in messages:
            kept = [s for s in self._sentences(message.content) if s.lower() not in seen]
            if not kept:
                continue
            seen.update(s.lower() for s in kept)
            line = f"{message.role}: {' '.join(kept)}"
            if used + len(line) > budget:
                line = line[: max(0, budget - used)].rstrip()
                if line:
                    lines.append(line)
                break
            lines.append(line)
            used += len(line) + 1
        return "\n".join(lines)

    @staticmethod
    def _sentences(text: str) -> list[str]:
        sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
        return [s for s in sentences if _INFORMATIVE.search(s) or _CAPITALISED_INSIDE.search(s)]


SUMMARY_INSTRUCTIONS = (
    "Condense the conversation below into a short summary that another assistant will read "
    "instead of it. Keep every fact (names, numbers, dates, places), what the user intends or "
    "wants, decisions made, and questions still open; drop greetings, filler and anything "
    "unrelated. Write plain sentences, no preamble.\n\nConversation:\n{conversation}"
)


class LLMSummarizer:
    """Summarises with a language model; an empty or failed reply falls back to the
    extractive summary (and counts a failure in ``usage``).

    Args:
        llm: the summarizer model's backend.
        max_new_tokens: the summary's length limit.
    """

    def __init__(self, llm: LLMBackend, max_new_tokens: int = 256):
        self.llm = llm
        self.max_new_tokens = max_new_tokens
        self.usage = Usage()
        self.name = f"llm:{getattr(llm, 'model_name', None) or llm.name}"
        self._fallback = ExtractiveSummarizer()

    def for_episode(self, usage: Usage) -> LLMSummarizer:
        """This summarizer (same model) counting its calls into ``usage`` (one episode's cost)."""
        view = copy.copy(self)
        view.usage = usage
        return view

    def summarize(self, messages: Sequence[Message]) -> str:
        conversation = "\n".join(f"{m.role}: {m.content}" for m in messages)
        prompt = [{"role": "user", "content": SUMMARY_INSTRUCTIONS.format(conversation=conversation)}]
        try:
            generation = self.llm.generate([prompt], max_new_tokens=self.max_new_tokens)[0]
        except Exception:  # noqa: BLE001 - a summarizer outage must not end the episode
            self.usage.failures += 1
            return self._fallback.summarize(messages)
        self.usage.add([generation])
        if not generation.text.strip():
            self.usage.failures += 1
            return self._fallback.summarize(messages)
        return generation.text.strip()


def make_summarizer(spec: Summarizer | dict[str, Any] | None) -> Summarizer:
    """The extractive summarizer (``None``), a given one, or an :class:`LLMSummarizer` built
    from ``{"model": ..., "backend": "transformers" | "openai", **backend options}``."""
    if spec is None:
        return ExtractiveSummarizer()
    if not isinstance(spec, dict):
        return spec
    from agemem_gym.llm import make_backend

    options = dict(spec)
    model = options.pop("model")
    summarizer = LLMSummarizer(make_backend(options.pop("backend", "transformers"), model, **options))
    summarizer.name = f"llm:{model}"  # the name given, not the folder a named model resolves to
    return summarizer
