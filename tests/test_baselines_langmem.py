"""LangMem's memory manager and running summary, pinned with scripted replies on the real env."""

from __future__ import annotations

import doctest
import json

import pytest
from _baseline_llm import LISBON, MOVED, OSAKA, keeping, play_task
from test_baselines_amem import ENVS, ByTitle, real_model_run

from agemem_gym.errors import ConfigError
from agemem_gym.policies import make_policy
from agemem_gym.tasks.base import Fact, TaskInstance
from baselines import langmem
from baselines.langmem import SUMMARY_HEADER, LangMem
from benchmarks.runner import RunConfig, run
from benchmarks.traces import read_trace

NONE = json.dumps({"operations": []})


def stored(prompt):
    """The memories a manager prompt shows (``[{"id", "content"}]``)."""
    return json.loads(prompt[-1]["content"].split("Stored memories:\n", 1)[1].split("\n\nRecent", 1)[0])


def newest(prompt):
    return prompt[-1]["content"].rsplit("\n", 1)[-1]


def moved_replies(manage=None, summary=None):
    """The manager creates the Lisbon memory and patches the stored 'lives in' memory on the
    move; summaries count the messages they fold; the answer names the city it is shown."""

    def default_manage(prompt):
        if "Lisbon" in newest(prompt):
            return json.dumps({"operations": [{"op": "create", "id": "", "content": LISBON}]})
        if "Osaka" in newest(prompt):
            city = [m["id"] for m in stored(prompt) if "lives in" in m["content"]]
            return json.dumps({"operations": [{"op": "patch", "id": i, "content": OSAKA} for i in city]})
        return NONE

    def respond(title, prompt):
        if title == "langmem_operations":
            return (manage or (lambda p: None))(prompt) or default_manage(prompt)
        if title == "langmem_summary":
            lines = prompt[-1]["content"].splitlines()
            folded = sum(line.startswith(("user: ", "assistant: ")) for line in lines)
            return (summary or (lambda p: None))(prompt) or json.dumps({"summary": f"{folded} messages folded"})
        city = "Osaka" if "Osaka" in prompt[-1]["content"] else "I don't know"
        return f"<think></think><answer>{city}</answer>"

    return respond


KeepingLangMem = keeping(LangMem)


def play(policy, task=MOVED):
    return play_task(policy, task)


def test_the_manager_patches_the_memory_its_window_queries_found():
    llm = ByTitle(moved_replies())
    info = play(KeepingLangMem(llm=llm))
    [entry] = info["ltm"]
    assert entry["content"] == OSAKA
    trace = info["result"].trace
    [created] = [e.payload["id"] for e in trace if e.kind == "memory_added"]
    assert created == entry["id"], "the patch kept the created memory's id"
    patching = next(p for p in llm.prompts("langmem_operations") if "Osaka" in newest(p))
    assert stored(patching) == [{"id": entry["id"], "content": LISBON}]
    searches = [e.payload for e in trace if e.kind == "retrieval" and e.source == "controller"
                and e.stage == 1 and e.turn == 1]
    # the move's conversation: the first fact, its answer and the move (the memory check the
    # env showed is not part of it): windows of the last 1, 2 and 3 messages
    assert [q["query"].count("\n") + 1 for q in searches] == [1, 2, 3]
    assert all(q["query"].endswith(MOVED.stage1[1].message) for q in searches)
    assert all(q["ids"] == [entry["id"]] for q in searches)
    updated = [(e.source, e.payload["id"], e.payload["old"], e.payload["new"]) for e in trace
               if e.kind == "memory_updated"]
    assert updated == [("controller", entry["id"], LISBON, OSAKA)]
    cost = info["cost"]["controller"]
    assert (cost["llm_calls"], cost["failures"]) == (3, 0), "one manager call per stage-1/2 message"
    assert info["answer"] == "Osaka" and info["metrics"]["score"] == 1.0


def test_malformed_manager_json_is_a_counted_failure_and_leaves_the_store_unchanged():
    llm = ByTitle(moved_replies(manage=lambda p: '{"operations": [{"op": "patch"' if "Osaka" in newest(p) else None))
    info = play(KeepingLangMem(llm=llm))
    assert [e["content"] for e in info["ltm"]] == [LISBON]
    assert "Update_memory" not in info["tool_calls"]
    cost = info["cost"]["controller"]
    assert cost["failures"] == 1 and "manage: invalid JSON" in json.dumps(cost)


def test_ids_the_search_did_not_find_are_ignored_and_counted():
    invented = json.dumps({"operations": [{"op": "patch", "id": "mem_ffffff", "content": OSAKA},
                                          {"op": "create", "id": "", "content": " "}]})
    policy = KeepingLangMem(llm=ByTitle(moved_replies(manage=lambda p: invented if "Osaka" in newest(p) else None)))
    info = play(policy)
    assert [e["content"] for e in info["ltm"]] == [LISBON]
    assert policy.finished["moved"].ignored == [
        "patch of id 'mem_ffffff', which the search did not find", "create with no content"]
    assert info["cost"]["controller"]["failures"] == 2


def test_remove_is_offered_only_when_deletes_are_on():
    def remove(prompt):
        if "Osaka" not in newest(prompt):
            return None
        return json.dumps({"operations": [{"op": "remove", "id": m["id"], "content": ""} for m in stored(prompt)]})

    llm = ByTitle(moved_replies(manage=remove))
    info = play(KeepingLangMem(llm=llm))
    schema = next(c["json_schema"] for c in llm.calls if c["title"] == "langmem_operations")
    assert schema["properties"]["operations"]["items"]["properties"]["op"]["enum"] == ["create", "patch"]
    assert [e["content"] for e in info["ltm"]] == [LISBON]
    assert "manage: schema: operations/0/op" in json.dumps(info["cost"]["controller"])

    llm = ByTitle(moved_replies(manage=remove))
    info = play(KeepingLangMem(llm=llm, deletes=True))
    assert info["ltm"] == [] and info["tool_calls_by_source"]["controller"]["Delete_memory"] == 1
    assert '"remove"' in llm.prompts("langmem_operations")[0][0]["content"]


def test_running_summary_replaces_old_messages_in_the_prompt_until_the_context_reset():
    llm = ByTitle(moved_replies())
    policy = KeepingLangMem(llm=llm, summary_after_tokens=20, summary_keep_tokens=0)
    info = play(policy)
    trace = info["result"].trace
    summaries = [e for e in trace if e.kind == "context_summarized"]
    assert summaries and all(e.source == "controller" for e in summaries)
    assert summaries[0].stage == 1 and summaries[0].turn == 1
    assert summaries[0].payload["summary"] == f"{SUMMARY_HEADER}\n3 messages folded"
    assert [r["content"] for r in summaries[0].payload["replaced"]][0] == MOVED.stage1[0].message
    answers = llm.prompts("answer")
    move = answers[1]  # the answer to the move, right after the first summary
    assert [m["role"] for m in move] == ["system", "user", "user"]
    # the first fact, its answer and the env's memory check before the move
    assert move[1]["content"] == f"{SUMMARY_HEADER}\n3 messages folded"
    assert move[2]["content"] == MOVED.stage1[1].message, "only the newest message is kept"
    assert not any(MOVED.stage1[0].message in m["content"] for m in move)
    distractor = answers[2]  # stage 2: the env reset the context, and the summary went with it
    assert [m["content"] for m in distractor[1:]] == [MOVED.distractors[0]]
    cost = info["cost"]["controller"]
    assert cost["llm_calls"] == 3 + len(summaries) and cost["failures"] == 0
    assert len(llm.prompts("langmem_summary")) == len(summaries)


def test_a_summary_shrinks_the_envs_context_and_the_next_one_replaces_it():
    long = TaskInstance(**{**MOVED.__dict__, "task_id": "long", "stage1": (
        MOVED.stage1[0], Fact("By the way, my favourite colour is teal, and it has been for years.",
                              "The user's favourite colour is teal.", "colour", "add"), MOVED.stage1[1])})
    summarized = play(KeepingLangMem(llm=ByTitle(moved_replies()), summary_after_tokens=20,
                                     summary_keep_tokens=0), task=long)["result"].trace
    plain = play(KeepingLangMem(llm=ByTitle(moved_replies()), summary_after_tokens=None), task=long)["result"].trace
    events = [(before, e) for before, e in zip(summarized, summarized[1:], strict=False)
              if e.kind == "context_summarized"]
    assert [e.stage for _, e in events] == [1, 1, 3], "before each later stage-1 answer and the stage-3 one"
    for before, event in events:
        assert event.context_tokens < before.context_tokens, "the env's context shrank"
    # the second summary replaces the first one and the messages since; the env's context
    # reset after stage 1 took the summary with it, so the stage-3 one starts afresh
    assert events[1][1].payload["replaced"][0]["content"].startswith(SUMMARY_HEADER)
    assert not events[2][1].payload["replaced"][0]["content"].startswith(SUMMARY_HEADER)

    def last_in_stage1(trace):
        return [e.context_tokens for e in trace if e.stage == 1][-1]

    assert last_in_stage1(summarized) < last_in_stage1(plain)


def test_malformed_summary_json_is_counted_and_the_model_keeps_every_message():
    llm = ByTitle(moved_replies(summary=lambda p: "a short summary"))
    info = play(KeepingLangMem(llm=llm, summary_after_tokens=20, summary_keep_tokens=0))
    assert not any(e.kind == "context_summarized" for e in info["result"].trace)
    move = llm.prompts("answer")[1]
    assert MOVED.stage1[0].message in [m["content"] for m in move]
    cost = info["cost"]["controller"]
    assert cost["failures"] == len(llm.prompts("langmem_summary")) > 0
    assert "summarize: no JSON object or array" in json.dumps(cost)


def test_registered_by_name_and_its_settings_are_checked():
    import baselines  # noqa: F401  (registers them)

    policy = make_policy("langmem", llm=ByTitle(moved_replies()))
    assert isinstance(policy, LangMem) and policy.top_k == 10 and not policy.deletes
    with pytest.raises(ConfigError, match="windows >= 1"):
        LangMem(llm=ByTitle(moved_replies()), windows=0)
    with pytest.raises(ConfigError, match=r"summary_keep_tokens \(256\) must be below summary_after_tokens \(60\)"):
        LangMem(llm=ByTitle(moved_replies()), summary_after_tokens=60)


def generic_replies(title, prompt):
    """Replies for any benchmark: create the newest message as a memory, or patch the first
    memory found with it when there is one; summaries are short."""
    if title == "langmem_operations":
        found, text = stored(prompt), newest(prompt).split(": ", 1)[-1][:200]
        op = {"op": "patch", "id": found[0]["id"]} if found and len(found) % 2 == 0 else {"op": "create", "id": ""}
        return json.dumps({"operations": [{**op, "content": text}]})
    if title == "langmem_summary":
        return json.dumps({"summary": "Earlier messages, summarised."})
    return "<think></think><answer>go forward</answer>"


@pytest.mark.parametrize("name", list(ENVS))
def test_runs_end_to_end_through_the_runner(name, tmp_path, shared_data):
    if name == "babyai":
        pytest.importorskip("minigrid")
    llm = ByTitle(generic_replies)
    config = RunConfig(env=name, agent="langmem", out=tmp_path, episodes=1, env_options=ENVS[name],
                       progress=False)
    [record] = run(config, LangMem(llm=llm, summary_after_tokens=60, summary_keep_tokens=20))
    managed, summarised = len(llm.prompts("langmem_operations")), len(llm.prompts("langmem_summary"))
    cost = record["cost"]["controller"]
    assert (cost["llm_calls"], cost["failures"]) == (managed + summarised, 0)
    by_source = record["tool_calls_by_source"]["controller"]
    assert record["ltm"] and by_source["Add_memory"] == len(record["ltm"]) < managed, "some patches"
    assert by_source["Update_memory"] == managed - len(record["ltm"])
    trace = read_trace(tmp_path, record["episode_id"])
    recalls = [e for e in trace if e["kind"] == "context_inserted" and e["payload"]["kind"] == "retrieval"]
    assert len(recalls) == 1 and recalls[0]["stage"] == 3
    summaries = [e for e in trace if e["kind"] == "context_summarized"]
    assert len(summaries) == summarised > 0


@pytest.mark.slow
def test_the_real_small_model_runs_the_pipeline_and_its_failures_are_counted(tmp_path):
    record, cost = real_model_run(LangMem, tmp_path)
    assert cost["llm_calls"] == 3, "one manager call per stage-1/2 message; no summary under the bound"
    by_source = record["tool_calls_by_source"]["controller"]
    # window searches: 1 for the first fact, 3 for the second (1, 2, 3 messages), 1 for the
    # distractor after the reset; then the recall
    assert by_source["Retrieve_memory"] == 1 + 3 + 1 + 1
    assert by_source.get("Add_memory", 0) == len(record["ltm"]) and "Delete_memory" not in by_source


def test_docstring_examples_run():
    result = doctest.testmod(langmem, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
