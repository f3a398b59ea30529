"""Mem0g's graph decisions, pinned with scripted model replies on the real env and rollout loop."""

from __future__ import annotations

import json

import numpy as np
from _baseline_llm import Script, keeping, new_facts, stored
from test_baselines_mem0 import LISBON, MOVED, OSAKA, play

from baselines._graph import EntityGraph, Triple
from baselines.mem0g import GRAPH_HEADER, Mem0Graph

ENTITIES = {MOVED.stage1[0].message: ["user", "Lisbon"], MOVED.stage1[1].message: ["user", "Osaka"],
            MOVED.distractors[0]: ["sister", "Porto"], MOVED.query: ["user", "city"]}
RELATIONS = {MOVED.stage1[0].message: [("user", "lives in", "Lisbon")],
             MOVED.stage1[1].message: [("user", "lives in", "Osaka")],
             MOVED.distractors[0]: [("sister", "lives in", "Porto")]}


KeepingMem0Graph = keeping(Mem0Graph)


def graph_replies(conflicts=None):
    """Entities and relations by message; the conflict call names the stored 'lives in' edge."""

    def default_conflicts(prompt):
        lines = prompt[-1]["content"].split("Stored relations:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        new = prompt[-1]["content"].split("New relations:\n", 1)[1]
        return json.dumps({"invalidate": [line.split(":")[0] for line in lines
                                          if line.split(": ", 1)[1].split(" -- ")[:2] == new.split(" -- ")[:2]]})

    def respond(step, prompt):
        text = prompt[-1]["content"]
        if step == "extract":
            return json.dumps({"facts": [f for f in (LISBON, OSAKA) if f.split()[-1][:-1] in text]})
        if step == "decide":
            city = [m["id"] for m in stored(prompt) if "lives in" in m["text"]]
            return json.dumps({"actions": [{"event": "UPDATE" if city else "ADD", "id": (city or [""])[0],
                                            "text": f} for f in new_facts(prompt)]})
        if step == "entities":
            return json.dumps({"entities": [{"name": n, "type": "thing"} for n in ENTITIES.get(text, [])]})
        if step == "relations":
            message = text.split("Text: ", 1)[1]
            return json.dumps({"relations": [{"source": s, "relation": r, "destination": d}
                                             for s, r, d in RELATIONS.get(message, [])]})
        if step == "conflicts":
            return (conflicts or default_conflicts)(prompt)
        return "<think></think><answer>ok</answer>"

    return respond


def edges(graph: EntityGraph):
    return sorted((u, d["relation"], v, d["valid"]) for u, v, d in graph.graph.edges(data=True))


def test_a_moved_city_invalidates_the_old_edge_and_graph_search_finds_the_new_one():
    llm = Script(graph_replies())
    policy = KeepingMem0Graph(llm=llm)
    info = play(policy)
    state = policy.finished["moved"]
    assert edges(state.graph) == [("sister", "lives in", "porto", True),
                                  ("user", "lives in", "lisbon", False),
                                  ("user", "lives in", "osaka", True)]
    assert state.invalidated == [("user -- lives in -- lisbon", "1.1")]
    assert [e["content"] for e in info["ltm"]] == [OSAKA], "Mem0's vector memory still runs"
    assert llm.steps().count("conflicts") == 1, "only a message touching stored edges asks"
    [inserted] = [e.payload["content"] for e in info["result"].trace if e.kind == "context_inserted"]
    graph_part = inserted.split(GRAPH_HEADER, 1)[1]
    assert "user -- lives in -- osaka" in graph_part and "lisbon" not in graph_part
    cost = info["cost"]["controller"]
    # per message: extract + entities (+ decide, relations when there are facts/entities); the
    # move adds a conflict call; the query: entities
    assert (cost["llm_calls"], cost["failures"]) == (3 + 2 + 3 + 3 + 1 + 1, 0)


def test_invented_conflict_ids_are_ignored_and_counted():
    llm = Script(graph_replies(conflicts=lambda prompt: '{"invalidate": ["9"]}'))
    policy = KeepingMem0Graph(llm=llm)
    info = play(policy)
    assert ("user", "lives in", "lisbon", True) in edges(policy.finished["moved"].graph)
    assert info["cost"]["controller"]["failures"] == 1
    assert "conflicts: ignored ids not shown" in json.dumps(info["cost"]["controller"])


def test_malformed_conflict_reply_leaves_every_edge_valid():
    llm = Script(graph_replies(conflicts=lambda prompt: "0"))
    policy = KeepingMem0Graph(llm=llm)
    info = play(policy)
    assert all(valid for *_, valid in edges(policy.finished["moved"].graph))
    assert "conflicts: " in json.dumps(info["cost"]["controller"])


def test_nodes_merge_at_the_cosine_threshold_and_search_reranks_with_bm25():
    vectors = {"lisbon": [1.0, 0.0, 0.0, 0.0], "lisboa": [0.8, 0.6, 0.0, 0.0],
               "porto": [0.6, 0.0, 0.8, 0.0], "user": [0.0, 0.0, 0.0, 1.0], "sister": [0.0, 1.0, 0.0, 0.0],
               "nobody": [0.0, 0.6, 0.0, 0.8]}

    def encode(texts):
        return np.array([vectors[t] for t in texts])

    graph = EntityGraph(encode, merge_threshold=0.7)
    assert graph.add(Triple("user", "lives in", "Lisbon"), "1.0")
    assert graph.resolve(["Lisboa", "Porto"]) == ["lisbon", "porto"], "cosine 0.8 with lisbon merges, 0.6 does not"
    assert not graph.add(Triple("User", "lives in", "Lisboa"), "1.1"), "the same valid edge once"
    graph.add(Triple("user", "likes", "porto"), "1.2")
    graph.add(Triple("sister", "lives in", "porto"), "1.3")
    found = graph.search("which city does the user live in", ["user"], threshold=0.7, top_n=5)
    assert [t.text() for t in found] == ["user -- lives in -- lisbon", "user -- likes -- porto"], \
        "only the user's edges; 'in' ranks the first above the shorter second"
    assert [t.text() for t in graph.search("what the user likes", ["user"], threshold=0.7, top_n=1)] == [
        "user -- likes -- porto"]
    assert graph.search("porto", ["nobody"], threshold=0.9, top_n=5) == [], "no node is similar enough"
