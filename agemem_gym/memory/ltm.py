"""Long-term memory: text entries with metadata in a chromadb collection, searched by cosine.

Each :class:`LongTermMemory` holds one collection of its own, so episodes and vector-env
copies never see each other's entries. Collections come from the process's long-lived
:class:`~agemem_gym.memory.store.ChromaStore` and go back to it emptied on close. The store is
embedded and in-memory by default; pass a directory for a persistent store or an
``http://host:port`` URL for a Chroma server.

Whatever a caller passes is made storable here: metadata keys chromadb reserves (``""``,
``$...``, ``#...``, ``chroma:...``) are refused with :class:`MemoryInputError`; values chromadb
cannot hold (nested data, integers beyond 64 bits, NaN) are stored as text; unpaired
surrogates become U+FFFD. Searches break score ties by insertion order, so a seed gives the
same ids on a fresh or a reused memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agemem_gym.errors import AgeMemError
from agemem_gym.memory.encoders import Encoder, make_encoder
from agemem_gym.memory.store import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    StoreSettings,
    make_chroma_client,
    shared_store,
)

__all__ = ["LongTermMemory", "MemoryEntry", "MemoryInputError", "MemoryNotFoundError",
           "make_chroma_client"]

_SCALARS = (str, int, float, bool)
_SYSTEM_KEYS = ("memory_type", "created_at", "updated_at")
_INT64 = 2**63
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_RESERVED_PREFIXES = ("$", "#", "chroma:")
_COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_MEMBERSHIP = ("$in", "$nin")
MAX_KEY_CHARS = 128
_MIN_CANDIDATES = 100
_TIE_DECIMALS = 6  # scores equal to 6 decimals are a tie, broken by insertion order


class MemoryNotFoundError(AgeMemError, KeyError):
    """No entry has the given id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "memory not found"


class MemoryInputError(AgeMemError, ValueError):
    """Metadata or a filter the store cannot take; the message says what to change."""


@dataclass(frozen=True)
class MemoryEntry:
    """One stored memory. ``score`` is the cosine similarity when it came from a search."""

    id: str
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    score: float | None = None

    @property
    def memory_type(self) -> str:
        return str(self.metadata.get("memory_type", ""))


def clean_text(text: str) -> str:
    """``text`` with unpaired surrogates replaced by U+FFFD (chromadb and engines refuse them)."""
    return _SURROGATE.sub("\ufffd", text)


def check_metadata_key(key: Any) -> str:
    """``key`` if chromadb can store it, else :class:`MemoryInputError` saying why."""
    if not isinstance(key, str):
        raise MemoryInputError(f"metadata keys must be text, got {type(key).__name__} {key!r}")
    if not key.strip():
        raise MemoryInputError("a metadata key is empty; use a word such as \"topic\"")
    if key.startswith(_RESERVED_PREFIXES):
        raise MemoryInputError(f"the metadata key {key[:40]!r} is reserved (keys may not start "
                               f"with {', '.join(_RESERVED_PREFIXES)}); rename it")
    if len(key) > MAX_KEY_CHARS:
        raise MemoryInputError(f"a metadata key is {len(key):,} characters; the limit is "
                               f"{MAX_KEY_CHARS}")
    if _SURROGATE.search(key):
        raise MemoryInputError("a metadata key holds an unpaired surrogate; use valid Unicode")
    return key


def _storable(value: Any) -> str | int | float | bool:
    """A metadata value chromadb keeps exactly; anything else becomes text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean_text(value)
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted
        text = json.dumps(value, default=str)
    return clean_text(text)


def _to_chroma_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {check_metadata_key(k): _storable(v) for k, v in metadata.items() if v is not None}


def _no_clock() -> str:
    return ""


class LongTermMemory:
    """A per-episode long-term memory.

    Args:
        encoder: an :class:`~agemem_gym.memory.encoders.Encoder` or its name.
        store: where chromadb keeps data: None (in memory), a directory, or a server URL.
        namespace: seeds the short ids, so the same episode gets the same ids.
        clock: returns the timestamp written into ``created_at`` / ``updated_at``.
        client: an existing chromadb client to use instead of the process's shared store
            (the memory then creates its own collection and deletes it on close).
        store_timeout: seconds a server may take to answer one request.
        store_retries: further tries of a request that timed out or could not connect.

    A memory pickles and deep-copies: the copy holds the same entries in a collection of its
    own (re-embedded with the same encoder), and the clock travels with it.

    Example:
        >>> ltm = LongTermMemory(namespace="demo")
        >>> mem_id = ltm.add("The user's coffee order is an oat latte.", {"tags": ["drinks"]})
        >>> mem_id
        'mem_...'
        >>> [e.content for e in ltm.retrieve("what coffee does the user order?", top_k=1)]
        ["The user's coffee order is an oat latte."]
        >>> ltm.close()
    """

    def __init__(
        self,
        encoder: Encoder | str = "hashing",
        *,
        store: str | None = None,
        namespace: str = "",
        clock: Callable[[], str] | None = None,
        client: Any = None,
        store_timeout: float = DEFAULT_TIMEOUT,
        store_retries: int = DEFAULT_RETRIES,
    ):
        self.encoder = make_encoder(encoder)
        self._settings = StoreSettings(store if store not in ("memory", "ephemeral") else None,
                                       float(store_timeout), int(store_retries))
        self._client = client
        self._namespace = namespace
        self._clock = clock or _no_clock
        self._entries: dict[str, MemoryEntry] = {}
        self._counter = 0
        self._collection: Any = self._open_collection()

    # -- lifecycle -------------------------------------------------------------------------
    def _open_collection(self) -> Any:
        if self._client is not None:
            import uuid

            return self._client.create_collection(
                name=f"agemem-{uuid.uuid4().hex}",
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        return shared_store(self._settings).acquire()

    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        if self._client is not None:
            return fn()
        return shared_store(self._settings).call(operation, fn)

    def clear(self, namespace: str | None = None) -> None:
        """Drop every entry and optionally restart ids in a new namespace.

        The collection is emptied, not replaced: chromadb 1.x keeps the native memory of a
        deleted collection (about 2.5 MB each, measured).
        """
        if self._entries:
            ids = list(self._entries)
            self._call("delete", lambda: self._collection.delete(ids=ids))
        self._entries.clear()
        self._counter = 0
        if namespace is not None:
            self._namespace = namespace

    def close(self) -> None:
        """Give the collection back emptied. The memory is unusable afterwards."""
        collection, self._collection = self._collection, None
        if collection is not None:
            if self._client is not None:
                with contextlib.suppress(Exception):  # a vanished collection is gone already
                    self._client.delete_collection(collection.name)
            else:
                shared_store(self._settings).release(collection, list(self._entries))
        self._entries.clear()

    def __getstate__(self) -> dict[str, Any]:
        if self._client is not None:
            raise TypeError("a LongTermMemory built on a caller's chromadb client cannot be "
                            "pickled; build it with store=... instead")
        state = self.__dict__.copy()
        state["_collection"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._collection = self._open_collection()
        entries = list(self._entries.values())
        if entries:
            self._write("upsert", entries)

    # -- reads -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._entries

    def get(self, memory_id: str) -> MemoryEntry:
        """The entry with ``memory_id``; :class:`MemoryNotFoundError` names the known ids."""
        try:
            return self._entries[memory_id]
        except (KeyError, TypeError):
            known = ", ".join(list(self._entries)[:20]) or "none"
            raise MemoryNotFoundError(
                f"no memory with id {str(memory_id)[:40]!r} (existing ids: {known})"
            ) from None

    def entries(self) -> list[MemoryEntry]:
        """All entries in insertion order."""
        return list(self._entries.values())

    def retrieve(
        self, query: str, top_k: int = 3, metadata_filter: dict[str, Any] | None = None
    ) -> list[MemoryEntry]:
        """The ``top_k`` entries most cosine-similar to ``query``, best first; equal scores in
        insertion order.

        ``metadata_filter`` is ``{key: value}`` (all must match), ``{key: {"$gt": 3}}`` with
        one of ``$eq $ne $gt $gte $lt $lte $in $nin``, or ``{"$and" | "$or": [filters]}``.
        A filter the store cannot run raises :class:`MemoryInputError`.
        """
        where = build_where(metadata_filter)
        if not self._entries or top_k <= 0:
            return []
        vector = self._embed([clean_text(query)])
        # Ask for more than k, so a tie at the k-th place is broken by us, not by the index.
        wanted = min(len(self._entries), max(4 * top_k, _MIN_CANDIDATES))
        result = self._call("query", lambda: self._collection.query(
            query_embeddings=vector, n_results=wanted, where=where,
            include=["distances"]))
        order = {memory_id: i for i, memory_id in enumerate(self._entries)}
        found = [(round(1.0 - float(d), _TIE_DECIMALS), order[i], i)
                 for i, d in zip(result["ids"][0], result["distances"][0], strict=True)
                 if i in order]
        found.sort(key=lambda item: (-item[0], item[1]))
        return [replace(self._entries[i], score=score) for score, _, i in found[:top_k]]

    # -- writes ----------------------------------------------------------------------------
    def add(
        self, content: str, metadata: dict[str, Any] | None = None, memory_type: str | None = None
    ) -> str:
        """Store ``content`` and return its new short id (``mem_`` + 6 hex digits)."""
        now = self._clock()
        meta = dict(metadata or {})
        meta.update(memory_type=memory_type or meta.get("memory_type") or "fact")
        meta.update(created_at=now, updated_at=now)
        _to_chroma_metadata(meta)  # refuse bad keys before an id is spent
        memory_id = self._next_id()
        entry = MemoryEntry(memory_id, clean_text(content), meta)
        self._write("add", [entry])
        self._entries[memory_id] = entry
        return memory_id

    def update(
        self, memory_id: str, content: str, metadata: dict[str, Any] | None = None
    ) -> MemoryEntry:
        """Replace an entry's content (re-embedded); merge ``metadata``; keep ``created_at``."""
        old = self.get(memory_id)
        meta = {**old.metadata, **(metadata or {})}
        meta.update(created_at=old.metadata.get("created_at", ""), updated_at=self._clock())
        entry = MemoryEntry(memory_id, clean_text(content), meta)
        self._write("update", [entry])
        self._entries[memory_id] = entry
        return entry

    def delete(self, memory_id: str) -> MemoryEntry:
        """Remove an entry and return what it held."""
        old = self.get(memory_id)
        self._call("delete", lambda: self._collection.delete(ids=[memory_id]))
        del self._entries[memory_id]
        return old

    # -- helpers ---------------------------------------------------------------------------
    def _write(self, operation: str, entries: list[MemoryEntry]) -> None:
        # upsert by id: a retried write after a lost answer cannot store an entry twice
        ids = [e.id for e in entries]
        documents = [e.content for e in entries]
        metadatas = [_to_chroma_metadata(e.metadata) for e in entries]
        embeddings = self._embed(documents)
        self._call(operation, lambda: self._collection.upsert(
            ids=ids, embeddings=embeddings, documents=documents, metadatas=metadatas))

    def _next_id(self) -> str:
        while True:
            self._counter += 1
            digest = hashlib.sha1(f"{self._namespace}:{self._counter}".encode()).hexdigest()
            memory_id = f"mem_{digest[:6]}"
            if memory_id not in self._entries:
                return memory_id

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.encoder.encode(texts)
        # A text without features encodes to zeros; cosine to it is undefined in the index.
        empty = ~np.any(vectors, axis=1)
        if empty.any():
            vectors = vectors.copy()
            vectors[empty] = 0.0
            vectors[empty, 0] = 1.0
        return vectors


def build_where(metadata_filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """A chromadb ``where`` clause for a metadata filter, or :class:`MemoryInputError`.

    >>> build_where({"topic": "travel"})
    {'topic': {'$eq': 'travel'}}
    >>> build_where({"topic": "travel", "year": {"$gte": 2020}})
    {'$and': [{'topic': {'$eq': 'travel'}}, {'year': {'$gte': 2020}}]}
    """
    if metadata_filter is None or metadata_filter == {}:
        return None
    return _clause(metadata_filter, "metadata_filter")


def _clause(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise MemoryInputError(f"{path} must be a non-empty object like {{\"topic\": \"travel\"}}, "
                               f"got {_show(value)}")
    clauses = []
    for key, condition in value.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise MemoryInputError(f"{path}.{key} must be a non-empty list of filters, got "
                                       f"{_show(condition)}")
            parts = [_clause(c, f"{path}.{key}[{i}]") for i, c in enumerate(condition)]
            clauses.append(parts[0] if len(parts) == 1 else {key: parts})
        else:
            check_metadata_key(key)
            clauses.append({key: _condition(condition, f"{path}.{key}")})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _condition(condition: Any, path: str) -> dict[str, Any]:
    if not isinstance(condition, dict):
        return {"$eq": _storable(condition)}
    if len(condition) != 1:
        raise MemoryInputError(f"{path} must have exactly one operator, got {_show(condition)}")
    (operator, operand), = condition.items()
    if operator in _COMPARISONS:
        if operator not in ("$eq", "$ne") and (
                isinstance(operand, bool) or not isinstance(operand, (int, float))):
            raise MemoryInputError(f"{path}: {operator} needs a number, got {_show(operand)}")
        return {operator: _storable(operand)}
    if operator in _MEMBERSHIP:
        if (not isinstance(operand, list) or not operand
                or len({type(v) for v in operand}) != 1 or not isinstance(operand[0], _SCALARS)):
            raise MemoryInputError(f"{path}: {operator} needs a non-empty list of values of one "
                                   f"type, got {_show(operand)}")
        return {operator: [_storable(v) for v in operand]}
    raise MemoryInputError(f"{path}: unknown operator {str(operator)[:20]!r}; use one of "
                           f"{', '.join(_COMPARISONS + _MEMBERSHIP)}")


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
