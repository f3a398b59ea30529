"""Summarizers for ``Summary_context``: turn a span of messages into one summary text.

The default :class:`ExtractiveSummarizer` is deterministic and needs no model. An LLM-backed
summarizer implements the same one-method protocol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

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
