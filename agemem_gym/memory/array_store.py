"""An exact in-process cosine index with chromadb's collection interface, for forked children.

Embedded chromadb runs native threads and locks that a ``fork()`` does not copy: a process
forked after its parent used chromadb (a fork-mode ``AsyncVectorEnv`` worker, say) can hang
on its first write or delete, even with a new client. In such a child the in-memory store is
this index instead. It holds an episode's few memories exactly (chromadb, too, searches a
small collection exhaustively), scores them by the same cosine, and supports the ``where``
clauses :func:`~agemem_gym.memory.ltm.build_where` makes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq, "$ne": operator.ne, "$gt": operator.gt, "$gte": operator.ge,
    "$lt": operator.lt, "$lte": operator.le,
    "$in": lambda value, options: value in options,
    "$nin": lambda value, options: value not in options,
}


def matches(metadata: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Whether ``metadata`` satisfies a chromadb ``where`` clause.

    >>> matches({"year": 2023, "topic": "trips"}, {"$and": [{"year": {"$gte": 2020}},
    ...                                                    {"topic": {"$eq": "trips"}}]})
    True
    """
    if not where:
        return True
    if "$and" in where:
        return all(matches(metadata, clause) for clause in where["$and"])
    if "$or" in where:
        return any(matches(metadata, clause) for clause in where["$or"])
    (key, condition), = where.items()
    if key not in metadata:
        return False
    (op, operand), = condition.items() if isinstance(condition, dict) else (("$eq", condition),)
    value = metadata[key]
    if op in ("$gt", "$gte", "$lt", "$lte") and (
            isinstance(value, (bool, str)) or not isinstance(value, (int, float))):
        return False
    return bool(_COMPARE[op](value, operand))


class ArrayCollection:
    """One collection: ids, unit vectors, documents and metadata in insertion order."""

    def __init__(self, name: str):
        self.name = name
        self._rows: dict[str, tuple[np.ndarray, str, dict[str, Any]]] = {}

    def count(self) -> int:
        return len(self._rows)

    def upsert(self, ids: Sequence[str], embeddings: Any, documents: Sequence[str],
               metadatas: Sequence[dict[str, Any]]) -> None:
        vectors = np.asarray(embeddings, dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1.0, norms)
        for i, memory_id in enumerate(ids):
            self._rows[memory_id] = (vectors[i], documents[i], dict(metadatas[i]))

    add = update = upsert

    def delete(self, ids: Sequence[str]) -> None:
        for memory_id in ids:
            self._rows.pop(memory_id, None)

    def query(self, query_embeddings: Any, n_results: int, where: dict[str, Any] | None = None,
              include: Sequence[str] = ("distances",)) -> dict[str, list[list[Any]]]:
        query = np.asarray(query_embeddings, dtype=np.float64)[0]
        query = query / (np.linalg.norm(query) or 1.0)
        kept = [(i, row) for i, row in self._rows.items() if matches(row[2], where)]
        distances = [float(1.0 - row[0] @ query) for _, row in kept]
        order = sorted(range(len(kept)), key=lambda k: distances[k])[:n_results]
        return {"ids": [[kept[k][0] for k in order]],
                "distances": [[distances[k] for k in order]]}


class ArrayClient:
    """The part of chromadb's client API :class:`~agemem_gym.memory.store.ChromaStore` uses."""

    def __init__(self) -> None:
        self._collections: dict[str, ArrayCollection] = {}

    def get_or_create_collection(self, name: str, **_: Any) -> ArrayCollection:
        return self._collections.setdefault(name, ArrayCollection(name))

    create_collection = get_or_create_collection

    def delete_collection(self, name: str) -> None:
        self._collections.pop(name, None)
