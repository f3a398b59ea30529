"""Long-term memory: text entries with metadata in a chromadb collection, searched by cosine.

Each :class:`LongTermMemory` owns one fresh collection with a unique name, so episodes and
vector-env copies never see each other's entries. The client is embedded and in-memory by
default; pass a directory for a persistent store or an ``http://host:port`` URL for a Chroma
server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agemem_gym.errors import AgeMemError
from agemem_gym.memory.encoders import Encoder, make_encoder

# Chroma accepts only scalar metadata values; anything else is stored as JSON text.
_SCALARS = (str, int, float, bool)
_SYSTEM_KEYS = ("memory_type", "created_at", "updated_at")


class MemoryNotFoundError(AgeMemError, KeyError):
    """No entry has the given id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "memory not found"


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


def make_chroma_client(store: str | None = None) -> Any:
    """A chromadb client: in-memory (None or ``"memory"``), a directory, or a server URL."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if store in (None, "memory", "ephemeral"):
        return chromadb.EphemeralClient(settings=settings)
    if store.startswith(("http://", "https://")):
        from urllib.parse import urlparse

        url = urlparse(store)
        return chromadb.HttpClient(
            host=url.hostname or "localhost",
            port=url.port or 8000,
            ssl=url.scheme == "https",
            settings=settings,
        )
    return chromadb.PersistentClient(path=store, settings=settings)


def _to_chroma_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        str(k): v if isinstance(v, _SCALARS) else json.dumps(v, sort_keys=True, default=str)
        for k, v in metadata.items()
        if v is not None
    }


class LongTermMemory:
    """A per-episode long-term memory.

    Args:
        encoder: an :class:`~agemem_gym.memory.encoders.Encoder` or its name.
        store: where chromadb keeps data (see :func:`make_chroma_client`).
        namespace: seeds the short ids, so the same episode gets the same ids.
        clock: returns the timestamp written into ``created_at`` / ``updated_at``.
        client: an existing chromadb client to share (``store`` is then ignored).

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
    ):
        self.encoder = make_encoder(encoder)
        self._client = client if client is not None else make_chroma_client(store)
        self._namespace = namespace
        self._clock = clock or (lambda: "")
        self._entries: dict[str, MemoryEntry] = {}
        self._counter = 0
        self._collection: Any = None
        self._new_collection()

    # -- lifecycle -------------------------------------------------------------------------
    def _new_collection(self) -> None:
        self._collection = self._client.create_collection(
            name=f"agemem-{uuid.uuid4().hex}",
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    def clear(self, namespace: str | None = None) -> None:
        """Drop every entry and optionally restart ids in a new namespace.

        The collection is emptied, not replaced: chromadb 1.x keeps the native memory of a
        deleted collection (about 2.5 MB each, measured), which a training run that clears
        memory every episode would pile up into gigabytes.
        """
        if self._entries:
            self._collection.delete(ids=list(self._entries))
        self._entries.clear()
        self._counter = 0
        if namespace is not None:
            self._namespace = namespace

    def _drop_collection(self) -> None:
        if self._collection is not None:
            with contextlib.suppress(Exception):  # a vanished collection is already dropped
                self._client.delete_collection(self._collection.name)
            self._collection = None

    def close(self) -> None:
        """Delete the collection. The memory is unusable afterwards."""
        self._drop_collection()
        self._entries.clear()

    # -- reads -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._entries

    def get(self, memory_id: str) -> MemoryEntry:
        """The entry with ``memory_id``; :class:`MemoryNotFoundError` names the known ids."""
        try:
            return self._entries[memory_id]
        except KeyError:
            known = ", ".join(list(self._entries)[:20]) or "none"
            raise MemoryNotFoundError(
                f"no memory with id {memory_id!r} (existing ids: {known})"
            ) from None

    def entries(self) -> list[MemoryEntry]:
        """All entries in insertion order."""
        return list(self._entries.values())

    def retrieve(
        self, query: str, top_k: int = 3, metadata_filter: dict[str, Any] | None = None
    ) -> list[MemoryEntry]:
        """The ``top_k`` entries most cosine-similar to ``query``, best first.

        ``metadata_filter`` is ``{key: value}`` (all must match) or a Chroma ``where`` clause.
        """
        if not self._entries or top_k <= 0:
            return []
        vector = self._embed([query])
        result = self._collection.query(
            query_embeddings=vector,
            n_results=min(top_k, len(self._entries)),
            where=_where(metadata_filter),
            include=["distances"],
        )
        ids, distances = result["ids"][0], result["distances"][0]
        return [
            replace(self._entries[i], score=float(1.0 - d))
            for i, d in zip(ids, distances, strict=True)
            if i in self._entries
        ]

    # -- writes ----------------------------------------------------------------------------
    def add(
        self, content: str, metadata: dict[str, Any] | None = None, memory_type: str | None = None
    ) -> str:
        """Store ``content`` and return its new short id (``mem_`` + 6 hex digits)."""
        memory_id = self._next_id()
        now = self._clock()
        meta = dict(metadata or {})
        meta.update(memory_type=memory_type or meta.get("memory_type") or "fact")
        meta.update(created_at=now, updated_at=now)
        entry = MemoryEntry(memory_id, content, meta)
        self._collection.add(
            ids=[memory_id],
            embeddings=self._embed([content]),
            documents=[content],
            metadatas=[_to_chroma_metadata(meta)],
        )
        self._entries[memory_id] = entry
        return memory_id

    def update(
        self, memory_id: str, content: str, metadata: dict[str, Any] | None = None
    ) -> MemoryEntry:
        """Replace an entry's content (re-embedded); merge ``metadata``; keep ``created_at``."""
        old = self.get(memory_id)
        meta = {**old.metadata, **(metadata or {})}
        meta.update(created_at=old.metadata.get("created_at", ""), updated_at=self._clock())
        entry = MemoryEntry(memory_id, content, meta)
        self._collection.update(
            ids=[memory_id],
            embeddings=self._embed([content]),
            documents=[content],
            metadatas=[_to_chroma_metadata(meta)],
        )
        self._entries[memory_id] = entry
        return entry

    def delete(self, memory_id: str) -> MemoryEntry:
        """Remove an entry and return what it held."""
        old = self.get(memory_id)
        self._collection.delete(ids=[memory_id])
        del self._entries[memory_id]
        return old

    # -- helpers ---------------------------------------------------------------------------
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


def _where(metadata_filter: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metadata_filter:
        return None
    if any(str(k).startswith("$") for k in metadata_filter):
        return metadata_filter
    clauses = [
        {str(k): v if isinstance(v, dict) else {"$eq": v if isinstance(v, _SCALARS) else json.dumps(v)}}
        for k, v in metadata_filter.items()
    ]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
