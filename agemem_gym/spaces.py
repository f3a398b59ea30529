"""Gymnasium spaces for text: the chat observation and the free-text response action."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.spaces import Space

Observation = tuple[dict[str, str], ...]
_ROLES = ("system", "user", "assistant", "tool")


class ChatSpace(Space[Observation]):
    """Tuples of chat messages ``{"id", "role", "content"}`` (strings).

    >>> space = ChatSpace()
    >>> ({"id": "m1", "role": "system", "content": "hi"},) in space
    True
    """

    def __init__(self, seed: int | np.random.Generator | None = None):
        super().__init__(None, None, seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, tuple) and all(
            isinstance(m, dict)
            and set(m) == {"id", "role", "content"}
            and all(isinstance(v, str) for v in m.values())
            and m["role"] in _ROLES
            for m in x
        )

    def sample(self, mask: Any = None, probability: Any = None) -> Observation:
        n = int(self.np_random.integers(1, 5))
        return tuple(
            {"id": f"m{i + 1}", "role": _ROLES[int(self.np_random.integers(4))],
             "content": f"message {int(self.np_random.integers(1000))}"}
            for i in range(n)
        )

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatSpace)


class ResponseSpace(Space[str]):
    """Model responses: any text up to ``max_length`` characters.

    ``sample()`` draws from well-formed tool calls and answers and from common malformations,
    so a random agent exercises the parser and every tool.
    """

    def __init__(self, max_length: int = 32_768, tool_names: Sequence[str] = (),
                 seed: int | np.random.Generator | None = None):
        super().__init__(None, None, seed)
        self.max_length = max_length
        self.tool_names = tuple(tool_names)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return random_response(self.np_random, self.tool_names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResponseSpace) and other.max_length == self.max_length


def random_response(rng: np.random.Generator, tool_names: Sequence[str]) -> str:
    """A random response: 30% malformed, else an answer or a call to a random tool with
    plausible (sometimes invalid) arguments."""
    word = f"w{int(rng.integers(100))}"
    if rng.random() < 0.3:
        malformed = [
            "", "<answer>unclosed", "no tags at all", "<tool_call>not json</tool_call>",
            f"<answer>{word}</answer><tool_call>[]</tool_call>",
            '<tool_call>[{"name": "Nope", "arguments": {}}]</tool_call>',
            '<tool_call>[{"arguments": {}}]</tool_call>', "<think>only thinking</think>",
        ]
        return malformed[int(rng.integers(len(malformed)))]
    if not tool_names or rng.random() < 0.35:
        return f"<think>{word}</think><answer>{word}</answer>"
    name = tool_names[int(rng.integers(len(tool_names)))]
    arguments = {
        "Add_memory": {"content": f"note {word}"},
        "Update_memory": {"memory_id": f"mem_{int(rng.integers(16**6)):06x}", "content": word},
        "Delete_memory": {"memory_id": f"mem_{int(rng.integers(16**6)):06x}", "confirmation": True},
        "Retrieve_memory": {"query": word, "top_k": int(rng.integers(0, 6))},
        "Summary_context": {"span": ["all", "full", "2", "x"][int(rng.integers(4))]},
        "Filter_context": {"criteria": word},
    }.get(name, {})
    return f"<think>{word}</think><tool_call>{json.dumps([{'name': name, 'arguments': arguments}])}</tool_call>"
