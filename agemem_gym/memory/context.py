"""Short-term memory: the message list the model sees, with stable ids and token counts."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

#: Tokens a chat template adds around each message (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 4
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _valid_text(text: str) -> str:
    """``text`` with unpaired surrogates as U+FFFD: a malformed response is shown back to the
    model, and tokenizers and chat templates refuse text that is not valid Unicode."""
    return _SURROGATE.sub("\ufffd", text) if isinstance(text, str) else str(text)


class TokenCounter(Protocol):
    """Counts the tokens of one text."""

    name: str

    def count(self, text: str) -> int: ...


class ApproxTokenCounter:
    """The stated approximation used when no tokenizer is given: one token per 4 characters,
    rounded up (close to BPE tokenizers on English prose).

    >>> ApproxTokenCounter().count("twelve chars")
    3
    """

    name = "approx-chars/4"

    def count(self, text: str) -> int:
        return math.ceil(len(text) / 4)


class TokenizerCounter:
    """Counts with a real tokenizer: any object with ``encode(text) -> list[int]``
    (a Hugging Face tokenizer, tiktoken, ...)."""

    def __init__(self, tokenizer: Any, name: str | None = None):
        self._tokenizer = tokenizer
        self.name = name or f"tokenizer:{getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)}"

    def count(self, text: str) -> int:
        try:
            return len(self._tokenizer.encode(text, add_special_tokens=False))
        except TypeError:
            return len(self._tokenizer.encode(text))


@dataclass
class Message:
    """One context message. ``kind`` is the env's own label (``fact``, ``distractor``,
    ``query``, ``tool``, ``summary``...): it is never shown to the model."""

    id: str
    role: str
    content: str
    kind: str = ""
    tokens: int = 0

    def public(self) -> dict[str, str]:
        """The message as the model sees it."""
        return {"id": self.id, "role": self.role, "content": self.content}


class Context:
    """The ordered message list. Ids (``m1``, ``m2``, ...) are never reused in an episode, so a
    tool can name exact messages even after others were removed.

    Example:
        >>> ctx = Context()
        >>> _ = ctx.append("system", "You are helpful.")
        >>> m = ctx.append("user", "I moved to Lisbon.", kind="fact")
        >>> m.id, ctx.total_tokens()
        ('m2', 17)
    """

    def __init__(self, counter: TokenCounter | None = None):
        self.counter = counter or ApproxTokenCounter()
        self._messages: list[Message] = []
        self._next = 1
        self._tokens = 0  # kept up to date: every env step reads it several times

    def __iter__(self) -> Iterator[Message]:
        return iter(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def append(self, role: str, content: str, kind: str = "") -> Message:
        content = _valid_text(content)
        message = Message(f"m{self._next}", role, content, kind, self._count(content))
        self._next += 1
        self._messages.append(message)
        self._tokens += message.tokens
        return message

    def _count(self, content: str) -> int:
        return self.counter.count(content) + MESSAGE_OVERHEAD_TOKENS

    def reset(self, keep_system: bool = True) -> None:
        """Empty the context; ids keep counting up."""
        self._messages = [m for m in self._messages if keep_system and m.kind == "system"]
        self._tokens = sum(m.tokens for m in self._messages)

    def total_tokens(self) -> int:
        return self._tokens

    def conversation(self) -> list[Message]:
        """Every message but the system prompt."""
        return [m for m in self._messages if m.kind != "system"]

    def last(self, n: int) -> list[Message]:
        """The last ``n`` non-system messages."""
        conversation = self.conversation()
        return conversation[-n:] if n > 0 else []

    def remove(self, ids: Iterable[str]) -> list[Message]:
        """Remove the messages with these ids; return them."""
        drop = set(ids)
        removed = [m for m in self._messages if m.id in drop]
        self._messages = [m for m in self._messages if m.id not in drop]
        self._tokens -= sum(m.tokens for m in removed)
        return removed

    def replace(self, ids: Iterable[str], role: str, content: str, kind: str) -> Message | None:
        """Replace the messages with these ids by one new message at the first one's place."""
        drop = set(ids)
        positions = [i for i, m in enumerate(self._messages) if m.id in drop]
        if not positions:
            return None
        content = _valid_text(content)
        new = Message(f"m{self._next}", role, content, kind, self._count(content))
        self._next += 1
        kept = [m for m in self._messages if m.id not in drop]
        self._tokens += new.tokens - sum(m.tokens for m in self._messages if m.id in drop)
        kept.insert(positions[0], new)
        self._messages = kept
        return new

    def public(self) -> tuple[dict[str, str], ...]:
        return tuple(m.public() for m in self._messages)

    def text(self) -> str:
        """All message contents, for "is this still in context" checks."""
        return "\n".join(m.content for m in self._messages)
