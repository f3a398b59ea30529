"""Mem0's decisions, pinned with scripted model replies on the real env and rollout loop."""

from __future__ import annotations

import json

from _baseline_llm import (
    LISBON,
    MOVED,
    OSAKA,
    Script,
    keeping,
    new_facts,
    oracle_mem0,
    play_task,
    stored,
)

from agemem_gym import AgeMemEnv
from agemem_gym.policies import OraclePolicy
from agemem_gym.rollout import play_episodes
from baselines.mem0 import Mem0, content_hash

EXTRACTED = {MOVED.stage1[0].message: [LISBON], MOVED.stage1[1].message: [OSAKA]}


KeepingMem0 = keeping(Mem0)


def moved_city(decide=None, extract=None):
    """Replies for MOVED: extraction by message, a decision that updates the stored city."""

    def default_decide(prompt):
        city = [m["id"] for m in stored(prompt) if "lives in" in m["text"]]
        return json.dumps({"actions": [
            {"event": "UPDATE", "id": city[0], "text": f} if city else {"event": "ADD", "id": "", "text": f}
            for f in new_facts(prompt)]})

    def respond(step, prompt):
        if step == "extract":
            return (extract or (lambda p: None))(prompt) or json.dumps({"facts": EXTRACTED.get(prompt[-1]["content"], [])})
        if step == "decide":
            return (decide or (lambda p: None))(prompt) or default_decide(prompt)
        city = "Osaka" if "Osaka" in prompt[-1]["content"] else "I don't know"
        return f"<think></think><answer>{city}</answer>"

    return respond


def play(policy, task=MOVED, env_options=None, **reset):
    return play_task(policy, task, env_options, **reset)


def test_a_moved_city_updates_the_old_memory_with_hidden_ids_and_a_history():
    llm = Script(moved_city())
    policy = KeepingMem0(llm=llm)
    info = play(policy)
    [entry] = info["ltm"]
    history = policy.finished["moved"].history
    assert [(h.event, h.old, h.new) for h in history] == [("ADD", None, LISBON), ("UPDATE", LISBON, OSAKA)]
    assert history[0].memory_id == history[1].memory_id == entry["id"]
    assert entry["content"] == OSAKA and entry["metadata"]["hash"] == content_hash(OSAKA)
    assert entry["metadata"]["created_at"] < entry["metadata"]["updated_at"]
    decisions = [p for c in llm.calls for s, p in zip(c["steps"], c["prompts"], strict=True) if s == "decide"]
    assert stored(decisions[1]) == [{"id": "0", "text": LISBON}]
    assert not any("mem_" in p[-1]["content"] for p in decisions), "real ids are never shown"
    assert info["tool_calls_by_source"]["controller"]["Update_memory"] == 1
    updated = [(e.source, e.payload["id"], e.payload["old"], e.payload["new"])
               for e in info["result"].trace if e.kind == "memory_updated"]
    assert updated == [("controller", entry["id"], LISBON, OSAKA)]
    cost = info["cost"]["controller"]
    assert (cost["llm_calls"], cost["failures"]) == (5, 0), "3 extractions, 2 decisions (none for no facts)"
    assert info["answer"] == "Osaka" and info["metrics"]["score"] == 1.0


def test_malformed_decision_json_is_a_counted_failure_and_leaves_the_store_unchanged():
    moved = MOVED.stage1[1].message
    llm = Script(moved_city(decide=lambda p: '{"actions": [{"event": "UPDATE", "id": "0"' if "Osaka" in p[-1]["content"] else None))
    info = play(KeepingMem0(llm=llm))
    assert [e["content"] for e in info["ltm"]] == [LISBON]
    cost = info["cost"]["controller"]
    assert cost["failures"] == 1 and "decide: invalid JSON" in json.dumps(cost)
    assert "Update_memory" not in info["tool_calls"]
    assert moved in json.dumps([c["prompts"] for c in llm.calls])


def test_malformed_extraction_gives_no_facts_and_no_decision_call():
    llm = Script(moved_city(extract=lambda p: "Facts: the user lives somewhere"))
    info = play(KeepingMem0(llm=llm))
    assert info["ltm"] == [] and "decide" not in llm.steps()
    cost = info["cost"]["controller"]
    assert cost["failures"] == cost["llm_calls"] == 3
    assert "extract: no JSON object or array in the reply" in json.dumps(cost)


def test_invented_ids_are_ignored_and_counted():
    invent = json.dumps({"actions": [{"event": "UPDATE", "id": "7", "text": OSAKA},
                                     {"event": "DELETE", "id": "mem_000000", "text": ""}]})
    llm = Script(moved_city(decide=lambda p: invent if "Osaka" in p[-1]["content"] else None))
    policy = KeepingMem0(llm=llm)
    info = play(policy)
    assert [e["content"] for e in info["ltm"]] == [LISBON]
    assert info["cost"]["controller"]["failures"] == 2
    assert len(policy.finished["moved"].ignored) == 2
    assert "not shown" in json.dumps(info["cost"]["controller"])


def test_retries_recover_an_unusable_decision_and_are_counted():
    bad = {"n": 0}

    def decide_once_badly(prompt):
        if "Osaka" in prompt[-1]["content"] and bad["n"] == 0:
            bad["n"] += 1
            return "UPDATE 0"
        return None

    info = play(KeepingMem0(llm=Script(moved_city(decide=decide_once_badly)), retries=2))
    assert [e["content"] for e in info["ltm"]] == [OSAKA]
    cost = info["cost"]["controller"]
    assert (cost["llm_calls"], cost["failures"]) == (6, 1)


def test_recall_uses_similarity_and_its_threshold():
    info = play(KeepingMem0(llm=Script(moved_city()), min_similarity=1.01))
    assert info["answer"] == "I don't know", "nothing passes a similarity above 1"
    inserted = [e for e in info["result"].trace if e.kind == "context_inserted"]
    assert inserted == []
    info = play(KeepingMem0(llm=Script(moved_city()), min_similarity=0.0))
    [inserted] = [e.payload["content"] for e in info["result"].trace if e.kind == "context_inserted"]
    assert inserted.endswith(f"- {OSAKA}")


def test_with_correct_extraction_mem0_reaches_the_oracle_memory_quality_on_assistant():
    starts = [{"seed": i, "options": {"task_index": i}} for i in range(4)]
    oracle_env = AgeMemEnv("assistant", privileged_info=True)
    oracle = {d.index: d.info for d in play_episodes([oracle_env], OraclePolicy(), starts)}
    oracle_env.close()
    for i in range(4):
        task = oracle[i]["task"]
        info = play(Mem0(llm=Script(oracle_mem0(task))), task=task, seed=i)
        mq, expected = info["metrics"]["mq"], oracle[i]["metrics"]["mq"]
        assert mq == expected == 1.0, (i, mq, expected, info["ltm"])
        ops = info["tool_calls_by_source"]["controller"]
        changes = [f.op for f in task.stage1]
        assert ops.get("Update_memory", 0) == changes.count("update")
        assert ops.get("Delete_memory", 0) == changes.count("delete")
        assert info["cost"]["controller"]["failures"] == 0
