"""Mem0g: Mem0 plus a graph of entities and relations, with conflict invalidation and graph search.

For every incoming stage-1/2 message, after Mem0's own vector pipeline:

1. Entity call: the entities of the message with their types (the user as ``user``).
2. Relation call: ``(source, relation, destination)`` triples among those entities.
3. Each entity is resolved to a node of the episode's graph: a new node unless its embedding
   (the env's encoder) has cosine >= ``merge_threshold`` (0.7) with an existing node's.
4. Conflict call, only when the new triples touch existing valid edges: the model names (by
   small integer ids) the existing relations the message makes false; those are invalidated
   (``valid=False``), not deleted. Ids it invents are ignored and counted.
5. The new triples are added (an identical valid one is not repeated).

Answering: Mem0's vector hits plus a graph search: an entity call on the query, the nodes
similar to those entities (cosine >= ``merge_threshold``), their valid edges, re-ranked by BM25
against the query, top ``graph_top_n`` (5). Both go into one user message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agemem_gym.port import EpisodeHandle
from baselines._controller import Arrival, Episode
from baselines._graph import EntityGraph, Triple
from baselines._structured import object_schema
from baselines.mem0 import Mem0, Mem0State

_STRING = {"type": "string"}
ENTITIES_SCHEMA = object_schema("entities", {"entities": {"type": "array", "items": object_schema(
    "entity", {"name": _STRING, "type": _STRING})}})
RELATIONS_SCHEMA = object_schema("relations", {"relations": {"type": "array", "items": object_schema(
    "relation", {"source": _STRING, "relation": _STRING, "destination": _STRING})}})
CONFLICTS_SCHEMA = object_schema("conflicts", {"invalidate": {"type": "array", "items": _STRING}})

ENTITIES_SYSTEM = (
    "List the entities in the text: people, places, organisations, objects, dates, values and "
    "concepts it talks about. When the text is the user speaking about themselves, the user is "
    'the entity "user". Give each entity a short type (person, city, food, date, ...).\n'
    'Reply with JSON only: {"entities": [{"name": "...", "type": "..."}]}'
)
RELATIONS_SYSTEM = (
    "Write the relations the text states between the given entities as (source, relation, "
    'destination) triples, e.g. ("user", "lives in", "lisbon"). Use the entity names as given, '
    "a short relation in the present tense, and only what the text asserts.\n"
    'Reply with JSON only: {"relations": [{"source": "...", "relation": "...", '
    '"destination": "..."}]}'
)
RELATIONS_USER = "Entities: {entities}\n\nText: {text}"
CONFLICTS_SYSTEM = (
    "Stored relations may be out of date. You are given the stored relations (each with a number "
    "as its id), a new message and the relations taken from it. List the ids of the stored "
    "relations that the new message makes false (for example an old home city when the user has "
    "moved). Leave out relations that can still be true alongside the new ones. Use only the ids "
    'you are given.\nReply with JSON only: {"invalidate": ["0", ...]}'
)
CONFLICTS_USER = "Stored relations:\n{stored}\n\nNew message: {text}\nNew relations:\n{new}"
GRAPH_HEADER = "Relations I know:"


@dataclass
class Mem0GraphState(Mem0State):
    """Mem0's state plus the episode's entity graph."""

    graph: EntityGraph | None = None
    #: every invalidation: (triple text, stage.turn)
    invalidated: list[tuple[str, str]] = field(default_factory=list)


class Mem0Graph(Mem0):
    """Mem0 with its graph memory (Mem0g). See the module docstring.

    Args:
        merge_threshold: cosine at or above which two entity names are one node (0.7).
        graph_top_n: triples a graph search returns (5).
        **options: the options of :class:`~baselines.mem0.Mem0`.
    """

    name: ClassVar[str] = "mem0g"

    def __init__(self, model: str = "", backend: str = "transformers", *, merge_threshold: float = 0.7,
                 graph_top_n: int = 5, **options: Any):
        super().__init__(model, backend, **options)
        self.merge_threshold, self.graph_top_n = merge_threshold, graph_top_n

    def new_state(self, handle: EpisodeHandle) -> Mem0GraphState:
        return Mem0GraphState(graph=EntityGraph(handle.port.encode, self.merge_threshold))

    def graph(self, key: str) -> EntityGraph:
        """The entity graph of a running episode."""
        graph = self.episode(key).state.graph
        assert graph is not None
        return graph

    # -- writing -----------------------------------------------------------------------------
    def observe(self, arrivals: Sequence[Arrival]) -> None:
        super().observe(arrivals)
        entities = self.extract_entities(arrivals, step="entities", resolve=True)
        todo = [(a, names) for a, names in zip(arrivals, entities, strict=True) if names]
        prompts = [[{"role": "system", "content": RELATIONS_SYSTEM},
                    {"role": "user", "content": RELATIONS_USER.format(
                        entities=json.dumps(names, ensure_ascii=False), text=m.content)}]
                   for (_, m), names in todo]
        replies = self.ask("relations", [(ep, p) for ((ep, _), _), p in zip(todo, prompts, strict=True)],
                           RELATIONS_SCHEMA)
        found = [(a, _triples(r)) for (a, _), r in zip(todo, replies, strict=True) if r]
        self.invalidate_conflicts([(a, t) for a, t in found if t])
        for (ep, m), triples in found:
            for triple in triples:
                ep.state.graph.add(triple, when=f"{m.stage}.{m.turn}")

    def extract_entities(self, arrivals: Sequence[Arrival], step: str,
                         resolve: bool = False) -> list[list[str]]:
        """Entity names of each message (one batched call); ``resolve`` puts them in the graph
        as typed nodes."""
        prompts = [(ep, [{"role": "system", "content": ENTITIES_SYSTEM},
                         {"role": "user", "content": m.content}]) for ep, m in arrivals]
        names = []
        for (ep, _), reply in zip(arrivals, self.ask(step, prompts, ENTITIES_SCHEMA), strict=True):
            entities = [e for e in (reply or {}).get("entities", []) if e["name"].strip()]
            if resolve:
                ep.state.graph.resolve([e["name"] for e in entities], [e["type"] for e in entities])
            names.append([e["name"].strip() for e in entities])
        return names

    def invalidate_conflicts(self, found: Sequence[tuple[Arrival, list[Triple]]]) -> None:
        """Ask, per message whose triples touch stored valid edges, which of those it makes false."""
        asks = []
        for (ep, m), triples in found:
            graph = ep.state.graph
            nodes = {n for t in triples for n in graph.resolve([t.source, t.destination])}
            stored = graph.edges_of(nodes)
            if stored:
                asks.append((ep, m, triples, stored))
        prompts = [(ep, [{"role": "system", "content": CONFLICTS_SYSTEM},
                         {"role": "user", "content": CONFLICTS_USER.format(
                             stored="\n".join(f"{i}: {e.triple.text()}" for i, e in enumerate(stored)),
                             text=m.content, new="\n".join(t.text() for t in triples))}])
                   for ep, m, triples, stored in asks]
        for (ep, m, _, stored), reply in zip(asks, self.ask("conflicts", prompts, CONFLICTS_SCHEMA),
                                             strict=True):
            if reply is not None:
                self._invalidate(ep, m, stored, reply["invalidate"])

    @staticmethod
    def _invalidate(ep: Episode, message: Any, stored: Sequence[Any], ids: Sequence[str]) -> None:
        shown = {str(i): e for i, e in enumerate(stored)}
        unknown = [i for i in ids if i.strip() not in shown]
        when = f"{message.stage}.{message.turn}"
        for edge in {shown[i.strip()].key: shown[i.strip()] for i in ids if i.strip() in shown}.values():
            ep.state.graph.invalidate(edge, when)
            ep.state.invalidated.append((edge.triple.text(), when))
        if unknown:
            ep.state.ignored.append(f"invalidate ids not shown: {unknown}")
            ep.port.record_llm("controller", [], failures=len(unknown),
                               reason=f"conflicts: ignored ids not shown {unknown}")

    # -- answering ---------------------------------------------------------------------------
    def recall(self, arrivals: Sequence[Arrival]) -> list[str | None]:
        vector = super().recall(arrivals)
        entities = self.extract_entities(arrivals, step="query_entities")
        out = []
        for (ep, m), text, names in zip(arrivals, vector, entities, strict=True):
            triples = ep.state.graph.search(m.content, names, self.merge_threshold, self.graph_top_n)
            graph_text = "\n".join([GRAPH_HEADER, *(f"- {t.text()}" for t in triples)]) if triples else None
            out.append("\n".join(p for p in (text, graph_text) if p) or None)
        return out


def _triples(reply: dict[str, Any] | None) -> list[Triple]:
    relations = (reply or {}).get("relations", [])
    return [Triple(r["source"].strip(), r["relation"].strip(), r["destination"].strip())
            for r in relations if r["source"].strip() and r["relation"].strip() and r["destination"].strip()]
