"""A-Mem's notes, links and evolution, pinned with scripted model replies on the real env."""

from __future__ import annotations

import doctest
import json

import pytest
from _baseline_llm import keeping, play_task
from conftest import SAMPLE_DATA

from agemem_gym.llm.base import Generation, LLMBackend
from agemem_gym.policies import make_policy
from agemem_gym.tasks.base import Fact, TaskInstance
from baselines import amem
from baselines.amem import AMem
from benchmarks.runner import RunConfig, run
from benchmarks.traces import read_trace

ANSWER = "<think></think><answer>ok</answer>"
BUSY = "My colleague said last month was busy at work."
PORTO = "My sister Ana lives in Porto."
MOVED = "My colleague said last month that Ana moved to Braga."
NEW_CONTEXT = "Ana lived in Porto until she moved to Braga last month."
ANA = TaskInstance(
    task_id="ana", query="Where does my sister Ana live now?", answers=("Braga",),
    stage1=(Fact(BUSY, BUSY, "work", "none"), Fact(PORTO, PORTO, "ana", "add"),
            Fact(MOVED, "Ana lives in Braga.", "ana", "update")),
    supporting_facts=("Ana lives in Braga.",), key_items=("Ana",),
    metadata={"queried": [{"key": "ana", "value": "Braga", "stale": "Porto"}]},
)


class ByTitle(LLMBackend):
    """A scripted model: ``respond(title, prompt)`` where ``title`` is the requested schema's
    title (``answer`` for the answering model); keeps every call."""

    name = "by-title"

    def __init__(self, respond):
        self.respond, self.calls = respond, []

    def generate(self, prompts, **options):
        title = (options.get("json_schema") or {}).get("title", "answer")
        self.calls.append({"title": title, "prompts": [list(p) for p in prompts], **options})
        return [Generation(self.respond(title, list(p)), 10, 5, 0.01) for p in prompts]

    def count_tokens(self, text):
        return len(text) // 4

    def prompts(self, title):
        return [p for c in self.calls if c["title"] == title for p in c["prompts"]]


def note_of(text):
    words = [w.strip(".,?") for w in text.split() if len(w) > 3]
    return {"keywords": (words + ["note", "fact", "memo"])[:3], "context": f"About: {text}",
            "tags": ["personal", "fact", words[0].lower() if words else "misc"]}


def neighbours_of(prompt):
    """The neighbours an evolution prompt shows, in the order shown (best first)."""
    listed = prompt[-1]["content"].split("Nearest stored notes:\n", 1)[1]
    return [json.loads(line) for line in listed.splitlines()]


def ana_replies(evolve=None, note=None, keywords=None):
    """Notes from the text; the evolution of MOVED names the Porto neighbour by its id (and a
    rank number, which is no id); no evolution otherwise."""

    def default_evolve(prompt):
        shown = neighbours_of(prompt)
        if MOVED not in prompt[-1]["content"].split("Nearest stored notes:")[0]:
            return json.dumps({"should_evolve": False, "actions": [], "links": [], "tags": [],
                               "neighbor_updates": []})
        porto = next(n["id"] for n in shown if "Porto" in n["text"])
        return json.dumps({"should_evolve": True, "actions": ["strengthen", "update_neighbor"],
                           "links": [porto], "tags": ["family", "moves", "Ana"],
                           "neighbor_updates": [{"id": porto, "context": NEW_CONTEXT, "tags": ["family", "history"]},
                                                {"id": "1", "context": "wrong note", "tags": ["x"]}]})

    def respond(title, prompt):
        text = prompt[-1]["content"]
        if title == "amem_note":
            return (note or (lambda p: None))(prompt) or json.dumps(note_of(text))
        if title == "amem_evolution":
            return (evolve or default_evolve)(prompt)
        if title == "amem_query":
            return (keywords or (lambda p: None))(prompt) or json.dumps({"keywords": ["Ana", "Braga"]})
        return ANSWER

    return respond


KeepingAMem = keeping(AMem)


def play(policy, task=ANA):
    return play_task(policy, task)


def by_text(info):
    return {m["metadata"]["note"]: m for m in info["ltm"]}


def test_evolution_rewrites_the_neighbour_it_names_by_id_not_by_rank():
    llm = ByTitle(ana_replies())
    policy = KeepingAMem(llm=llm)
    info = play(policy)
    [*_, last] = llm.prompts("amem_evolution")
    shown = [n["text"] for n in neighbours_of(last)]
    assert shown.index(PORTO) > 0, "the named neighbour is not the best-ranked one"
    notes = by_text(info)
    porto, busy, moved = notes[PORTO], notes[BUSY], notes[MOVED]
    assert porto["metadata"]["context"] == NEW_CONTEXT and porto["metadata"]["tags"] == ["family", "history"]
    assert f"Context: {NEW_CONTEXT}" in porto["content"], "the stored (embedded) text follows the note"
    assert busy["metadata"]["context"] == f"About: {BUSY}", "the best-ranked neighbour is untouched"
    updated = [(e.source, e.payload["id"]) for e in info["result"].trace if e.kind == "memory_updated"]
    assert updated == [("controller", porto["id"])]
    assert moved["metadata"]["links"] == [porto["id"]], "links are memory ids"
    assert moved["metadata"]["tags"] == ["family", "moves", "Ana"], "strengthen retags the new note"
    state = policy.finished["ana"]
    assert state.notes[moved["id"]].links == [porto["id"]] and state.evolutions == 1
    assert state.ignored == ["update of '1', which was not shown"], "a rank number is not an id"
    cost = info["cost"]["controller"]
    # 3 notes, 2 evolutions (none for the first note), 1 keyword call
    assert (cost["llm_calls"], cost["failures"]) == (6, 1)
    assert "evolve: ignored update of '1'" in json.dumps(cost)


def test_answering_retrieves_by_keywords_and_adds_linked_notes():
    llm = ByTitle(ana_replies())
    info = play(KeepingAMem(llm=llm, top_k=1))
    [question] = [p[-1]["content"] for p in llm.prompts("amem_query")]
    assert question == ANA.query
    [retrieval] = [e.payload for e in info["result"].trace
                   if e.kind == "retrieval" and e.source == "controller" and e.stage == 3]
    assert retrieval["query"] == "Ana Braga" and len(retrieval["ids"]) == 1
    [inserted] = [e.payload["content"] for e in info["result"].trace if e.kind == "context_inserted"]
    assert f"- {MOVED}" in inserted and f"- {PORTO} (context: {NEW_CONTEXT}" in inserted, \
        "the hit and the note it links to"
    assert BUSY not in inserted
    answer_prompt = llm.prompts("answer")[-1]
    assert answer_prompt[-1]["content"] == inserted


def test_malformed_note_json_is_a_counted_failure_and_stores_nothing():
    llm = ByTitle(ana_replies(note=lambda p: '{"keywords": ["a", "b"' if MOVED in p[-1]["content"] else None))
    info = play(KeepingAMem(llm=llm))
    assert sorted(by_text(info)) == sorted([BUSY, PORTO])
    assert "Update_memory" not in info["tool_calls"]
    cost = info["cost"]["controller"]
    assert cost["failures"] == 1 and "note: invalid JSON" in json.dumps(cost)
    assert len(llm.prompts("amem_evolution")) == 1, "no evolution for a note that was not built"


def test_too_few_keywords_fail_the_schema():
    llm = ByTitle(ana_replies(note=lambda p: json.dumps({"keywords": ["Ana"], "context": "x",
                                                         "tags": ["a", "b", "c"]})))
    info = play(KeepingAMem(llm=llm))
    assert info["ltm"] == []
    assert "note: schema: keywords" in json.dumps(info["cost"]["controller"])


def test_malformed_evolution_json_leaves_the_neighbours_unchanged():
    llm = ByTitle(ana_replies(evolve=lambda p: '{"should_evolve": true, "actions": ["update_neighbor"'))
    policy = KeepingAMem(llm=llm)
    info = play(policy)
    notes = by_text(info)
    assert all(n["metadata"]["context"] == f"About: {t}" for t, n in notes.items())
    assert notes[MOVED]["metadata"]["links"] == [] and "Update_memory" not in info["tool_calls"]
    assert len(notes) == 3, "the note itself is still stored"
    cost = info["cost"]["controller"]
    assert cost["failures"] == 2 and "evolve: invalid JSON" in json.dumps(cost)
    assert policy.finished["ana"].evolutions == 0


def test_consolidation_reindexes_every_note_with_its_tags():
    llm = ByTitle(ana_replies())
    info = play(KeepingAMem(llm=llm, consolidate_every=1))
    assert all("\nTags: " in m["content"] for m in info["ltm"])
    # the neighbour rewrite, then one re-index of the two stored notes; the new note is added
    # with its tags already
    assert info["tool_calls_by_source"]["controller"]["Update_memory"] == 1 + 2


def test_registered_by_name_with_its_settings():
    import baselines  # noqa: F401  (registers them)

    policy = make_policy("amem", llm=ByTitle(ana_replies()), neighbours=3)
    assert isinstance(policy, AMem) and policy.top_k == 10 and policy.neighbours == 3
    with pytest.raises(Exception, match="neighbours >= 1"):
        AMem(llm=ByTitle(ana_replies()), neighbours=0)


def generic_replies(title, prompt):
    """Replies for any benchmark: a note per message; strengthen a link to the best neighbour
    and rewrite its tags."""
    if title == "amem_note":
        return json.dumps(note_of(prompt[-1]["content"]))
    if title == "amem_evolution":
        best = neighbours_of(prompt)[0]["id"]
        return json.dumps({"should_evolve": True, "actions": ["strengthen", "update_neighbor"],
                           "links": [best], "tags": ["linked", "note", "evolved"],
                           "neighbor_updates": [{"id": best, "context": "", "tags": ["seen", "again"]}]})
    if title == "amem_query":
        return json.dumps({"keywords": prompt[-1]["content"].split()[:5]})
    return "<think></think><answer>go forward</answer>"


ENVS = {"assistant": {"num_facts": 3, "num_updates": 1, "num_deletes": 0, "small_talk": 0,
                      "num_distractors": 1, "num_queried": 1},
        "hotpotqa": {"data": str(SAMPLE_DATA["hotpotqa"])},
        "babyai": {"data": str(SAMPLE_DATA["babyai"]), "max_steps": 2}}


@pytest.mark.parametrize("name", list(ENVS))
def test_runs_end_to_end_through_the_runner(name, tmp_path, shared_data):
    if name == "babyai":
        pytest.importorskip("minigrid")
    llm = ByTitle(generic_replies)
    config = RunConfig(env=name, agent="amem", out=tmp_path, episodes=1, env_options=ENVS[name],
                       progress=False)
    [record] = run(config, AMem(llm=llm))
    ids = {m["id"] for m in record["ltm"]}
    assert len(ids) >= 2 and record["cost"]["controller"]["failures"] == 0
    assert record["cost"]["controller"]["llm_calls"] == len(llm.prompts("amem_note")) + len(
        llm.prompts("amem_evolution")) + 1
    assert all(len(m["metadata"]["keywords"]) == 3 for m in record["ltm"])
    links = [i for m in record["ltm"] for i in m["metadata"]["links"]]
    assert links and set(links) <= ids, "every link is the id of a stored note"
    by_source = record["tool_calls_by_source"]["controller"]
    assert by_source["Add_memory"] == len(ids) and by_source["Update_memory"] >= 1
    trace = read_trace(tmp_path, record["episode_id"])
    inserted = [e for e in trace if e["kind"] == "context_inserted"]
    assert len(inserted) == 1 and inserted[0]["stage"] == 3 and inserted[0]["source"] == "controller"


def real_model_run(policy_cls, out, **options):
    """One small Assistant episode with the real SmolLM2-135M, constrained JSON, one thread."""
    for module in ("torch", "transformers", "gguf", "accelerate", "lmformatenforcer"):
        pytest.importorskip(module)
    from agemem_gym.llm.models import ensure_model

    ensure_model("smollm2-135m", progress=False)
    small = {"num_facts": 2, "num_updates": 0, "num_deletes": 0, "small_talk": 0, "num_distractors": 1,
             "distractor_sentences": 1, "num_queried": 1, "max_steps_per_turn": 2}
    policy = policy_cls(model="smollm2-135m", max_new_tokens=24, controller_max_new_tokens=160,
                        threads=1, fixed_reply="Noted.", **options)
    [record] = run(RunConfig(env="assistant", agent=policy_cls.name, out=out, episodes=1,
                             env_options=small, progress=False), policy)
    cost = record["cost"]["controller"]
    assert cost["failures"] == sum(cost.get("failure_reasons", {}).values()), "every failure has a reason"
    return record, cost


@pytest.mark.slow
def test_the_real_small_model_runs_the_pipeline_and_its_failures_are_counted(tmp_path):
    record, cost = real_model_run(AMem, tmp_path)
    reasons = cost.get("failure_reasons", {})
    notes_failed = sum(n for reason, n in reasons.items() if reason.startswith("note:"))
    assert len(record["ltm"]) == 3 - notes_failed, "a note per stage-1/2 message unless its reply failed"
    assert cost["llm_calls"] >= 3 + 1, "a note call per message and the keyword call"
    assert all(len(m["metadata"]["keywords"]) >= 3 for m in record["ltm"])


def test_docstring_examples_run():
    result = doctest.testmod(amem, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
