"""Gymnasium spaces for text: the chat observation and the free-text response action.

:class:`ChatSpace` supports ``AsyncVectorEnv``'s shared memory (its default): each env gets a
fixed slot of ``max_bytes`` holding the observation as UTF-8 JSON, and the batch read from it
decodes on access, so ``gym.make_vec(id, num_envs=4, vectorization_mode="async")`` works as
written.
"""

from __future__ import annotations

import collections.abc
import json
import struct
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from gymnasium.spaces import Space
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

from agemem_gym.errors import AgeMemError

Observation = tuple[dict[str, str], ...]
_ROLES = ("system", "user", "assistant", "tool")


#: Bytes of shared memory per env for one observation (as UTF-8 JSON) in an AsyncVectorEnv.
DEFAULT_SHARED_BYTES = 4 * 1024 * 1024
_HEADER = struct.Struct("<Q")  # the length of the JSON that follows


class ChatSpace(Space[Observation]):
    """Tuples of chat messages ``{"id", "role", "content"}`` (strings).

    Args:
        max_bytes: shared-memory slot per env in an ``AsyncVectorEnv`` (the observation as
            UTF-8 JSON); a larger observation raises an error that says to pass
            ``vector_kwargs={"shared_memory": False}``.

    >>> space = ChatSpace()
    >>> ({"id": "m1", "role": "system", "content": "hi"},) in space
    True
    """

    def __init__(self, seed: int | np.random.Generator | None = None, *,
                 max_bytes: int = DEFAULT_SHARED_BYTES):
        super().__init__(None, None, seed)
        self.max_bytes = max_bytes

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
        return isinstance(other, ChatSpace) and other.max_bytes == self.max_bytes


class ObservationTooLargeError(AgeMemError, ValueError):
    """An observation does not fit its shared-memory slot."""


class _SharedChats(collections.abc.Sequence):
    """A batch of observations living in shared memory; each is decoded when read.

    ``copy.deepcopy`` (what ``AsyncVectorEnv(copy=True)`` returns) gives a plain tuple.
    """

    def __init__(self, buffer: Any, n: int, slot: int, as_tuple: bool = True):
        self._buffer, self._n, self._slot, self._as_tuple = buffer, n, slot, as_tuple

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if not -self._n <= index < self._n:
            raise IndexError(index)
        view = memoryview(self._buffer.get_obj()).cast("B")
        start = (index % self._n) * self._slot
        (length,) = _HEADER.unpack_from(view, start)
        if length == 0:
            return () if self._as_tuple else ""
        value = json.loads(bytes(view[start + _HEADER.size:start + _HEADER.size + length]))
        return tuple(value) if self._as_tuple else value

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[Observation, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"_SharedChats({list(self)!r})"


def create_text_memory(space: Any, n: int = 1, ctx: ModuleType | None = None) -> Any:
    """Shared memory for ``n`` observations of a text space with a ``max_bytes`` attribute."""
    import multiprocessing

    return (ctx or multiprocessing).Array("B", n * space.max_bytes)


def read_text_memory(space: Any, shared_memory: Any, n: int = 1) -> Any:
    """The batch in shared memory, decoded on read (chat tuples for :class:`ChatSpace`)."""
    return _SharedChats(shared_memory, n, space.max_bytes, as_tuple=isinstance(space, ChatSpace))


def write_text_memory(space: Any, index: int, value: Any, shared_memory: Any) -> None:
    """Put env ``index``'s observation (chat messages or a string) into its slot."""
    data = json.dumps(list(value) if isinstance(value, tuple) else value,
                      separators=(",", ":")).encode("ascii")
    room = space.max_bytes - _HEADER.size
    if len(data) > room:
        raise ObservationTooLargeError(
            f"an observation of {len(data):,} bytes does not fit the shared-memory slot of "
            f"{room:,} bytes; pass vector_kwargs={{'shared_memory': False}} to make_vec, or a "
            "larger ChatSpace(max_bytes=...)")
    view = memoryview(shared_memory.get_obj()).cast("B")
    start = index * space.max_bytes
    view[start + _HEADER.size:start + _HEADER.size + len(data)] = data
    _HEADER.pack_into(view, start, len(data))


create_shared_memory.register(ChatSpace, create_text_memory)
read_from_shared_memory.register(ChatSpace, read_text_memory)
write_to_shared_memory.register(ChatSpace, write_text_memory)


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
