"""The entity graph of Mem0g: typed entity nodes, relation edges that are invalidated, not deleted.

Nodes are entity names (lower case) with a type and the encoder's embedding of the name; a new
name whose embedding has cosine >= ``merge_threshold`` with an existing node's is merged into it.
Edges carry ``relation``, ``valid`` and when they were made or invalidated; a conflicting edge is
soft-deleted (``valid=False``) and stays in the graph. Search starts from the nodes most similar
to the query's entities, gathers their valid edges and re-ranks the triples with BM25 (``bm25s``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

Encode = Callable[[Sequence[str]], np.ndarray]
_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Triple:
    """One relation: ``source -- relation -- destination``."""

    source: str
    relation: str
    destination: str

    def text(self) -> str:
        return f"{self.source} -- {self.relation} -- {self.destination}"


@dataclass(frozen=True)
class Edge:
    """A stored relation and its key in the graph."""

    key: tuple[str, str, int]
    triple: Triple


def entity_name(name: str) -> str:
    """How a name is stored: lower case, single spaces."""
    return " ".join(name.lower().split())


class EntityGraph:
    """A per-episode entity graph over ``networkx.MultiDiGraph``. See the module docstring.

    Example:
        >>> import numpy as np
        >>> def encode(texts):  # a stand-in encoder: one axis per first letter
        ...     rows = np.zeros((len(texts), 26))
        ...     for i, t in enumerate(texts):
        ...         rows[i, ord(t[0]) - 97] = 1.0
        ...     return rows
        >>> graph = EntityGraph(encode)
        >>> graph.add(Triple("user", "lives in", "lisbon"), when="1.0")
        True
        >>> graph.resolve(["Lisboa"], ["city"])  # merged: cosine 1.0 with "lisbon"
        ['lisbon']
        >>> [e.triple.text() for e in graph.edges_of({"lisbon"})]
        ['user -- lives in -- lisbon']
        >>> graph.invalidate(graph.edges_of({"lisbon"})[0], when="1.3")
        >>> graph.edges_of({"lisbon"}), graph.graph.number_of_edges()
        ([], 1)
    """

    def __init__(self, encode: Encode, merge_threshold: float = 0.7):
        self.encode = encode
        self.merge_threshold = merge_threshold
        self.graph = nx.MultiDiGraph()

    # -- nodes -------------------------------------------------------------------------------------
    def resolve(self, names: Sequence[str], types: Sequence[str] | None = None) -> list[str]:
        """The node of each name: itself, an existing node it is similar enough to, or a new one."""
        types = types or [""] * len(names)
        resolved = []
        for name, kind in zip(names, types, strict=True):
            key = entity_name(name)
            if key not in self.graph:
                vector = self.encode([key])[0]
                match = self._most_similar(vector)
                if match is not None and match[1] >= self.merge_threshold:
                    key = match[0]
                else:
                    self.graph.add_node(key, type=kind or "entity", embedding=vector)
            resolved.append(key)
        return resolved

    def similar_nodes(self, names: Sequence[str], threshold: float) -> set[str]:
        """Nodes whose cosine with any of ``names`` is >= ``threshold``."""
        if not names or not self.graph:
            return set()
        nodes = list(self.graph.nodes)
        matrix = np.stack([self.graph.nodes[n]["embedding"] for n in nodes])
        similarity = self.encode([entity_name(n) for n in names]) @ matrix.T
        return {nodes[j] for j in np.flatnonzero((similarity >= threshold).any(axis=0))}

    def _most_similar(self, vector: np.ndarray) -> tuple[str, float] | None:
        if not self.graph:
            return None
        nodes = list(self.graph.nodes)
        scores = np.stack([self.graph.nodes[n]["embedding"] for n in nodes]) @ vector
        best = int(np.argmax(scores))
        return nodes[best], float(scores[best])

    # -- edges -------------------------------------------------------------------------------------
    def add(self, triple: Triple, when: str) -> bool:
        """Store a relation between resolved nodes; False when the same valid one exists."""
        source, destination = self.resolve([triple.source, triple.destination])
        triple = Triple(source, triple.relation.strip(), destination)
        if any(e.triple == triple for e in self.edges_of({source})):
            return False
        self.graph.add_edge(source, destination, relation=triple.relation, valid=True,
                            created=when, invalidated=None)
        return True

    def edges_of(self, nodes: set[str]) -> list[Edge]:
        """Valid edges with an end in ``nodes``, in insertion order."""
        return [Edge((u, v, k), Triple(u, data["relation"], v))
                for u, v, k, data in self.graph.edges(keys=True, data=True)
                if data["valid"] and (u in nodes or v in nodes)]

    def invalidate(self, edge: Edge, when: str) -> None:
        """Soft-delete: the edge stays, marked ``valid=False``."""
        data: dict[str, Any] = self.graph.edges[edge.key]
        data.update(valid=False, invalidated=when)

    # -- search ------------------------------------------------------------------------------------
    def search(self, query: str, entities: Sequence[str], threshold: float, top_n: int) -> list[Triple]:
        """Valid triples around the nodes similar to ``entities``, BM25-ranked against ``query``."""
        import bm25s

        candidates = [e.triple for e in self.edges_of(self.similar_nodes(entities, threshold))]
        if not candidates:
            return []
        retriever = bm25s.BM25()
        retriever.index([_tokens(t.text()) for t in candidates], show_progress=False)
        query_tokens = _tokens(" ".join([query, *entities])) or ["_"]
        order, _ = retriever.retrieve([query_tokens], k=min(top_n, len(candidates)), show_progress=False)
        return [candidates[int(i)] for i in order[0]]


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())
