"""Every baseline end to end on every benchmark through the real runner, with scripted replies."""

from __future__ import annotations

import json
import re

import pytest
from _baseline_llm import Script, new_facts
from conftest import SAMPLE_DATA

from baselines.mem0 import Mem0
from baselines.mem0g import Mem0Graph
from baselines.no_memory import NoMemory
from benchmarks.runner import RunConfig, run

INTERACTIVE = ("babyai", "pddl", "sciworld", "alfworld")


def generic(step, prompt):
    """Plausible replies for any message: its first sentence is the fact, its first two words
    the entities, related to each other."""
    text = prompt[1]["content"] if len(prompt) > 1 else prompt[-1]["content"]
    message = text.split("Text: ", 1)[-1]
    words = re.findall(r"[A-Za-z]{3,}", message)[:2] or ["user", "thing"]
    if step == "extract":
        return json.dumps({"facts": [message.split(". ")[0][:160]]})
    if step == "decide":
        return json.dumps({"actions": [{"event": "ADD", "id": "", "text": f} for f in new_facts(prompt)]})
    if step == "entities":
        return json.dumps({"entities": [{"name": w, "type": "thing"} for w in words]})
    if step == "relations":
        return json.dumps({"relations": [{"source": words[0], "relation": "relates to",
                                          "destination": words[-1]}]})
    if step == "conflicts":
        return json.dumps({"invalidate": []})
    return "<think></think><answer>look</answer>"


def benchmark_options(benchmark, shared_data):
    options = {} if benchmark == "pddl" else {"num_distractors": 1}
    if benchmark != "assistant":
        options["data"] = str(SAMPLE_DATA[benchmark])
    if benchmark in INTERACTIVE:
        options["max_steps"] = 2
    if benchmark == "assistant":
        options.update(num_distractors=2, distractor_sentences=2)
    return options


CASES = [pytest.param(b, a, marks=[pytest.mark.engine] if b in INTERACTIVE else [])
         for b in ("assistant", "hotpotqa", *INTERACTIVE) for a in ("mem0g",)]
CASES += [pytest.param(b, a) for b in ("assistant", "hotpotqa") for a in ("no-memory", "mem0")]
POLICIES = {"no-memory": NoMemory, "mem0": Mem0, "mem0g": Mem0Graph}


@pytest.mark.parametrize("bench, agent", CASES)
def test_baseline_runs_end_to_end_and_its_records_count_the_controller(bench, agent, shared_data,
                                                                       tmp_path):
    llm = Script(generic)
    config = RunConfig(env=bench, agent=agent, out=tmp_path, episodes=1, progress=False,
                       env_options=benchmark_options(bench, shared_data))
    [record] = run(config, policy=POLICIES[agent](llm=llm))
    saved = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert saved == [record]
    agent_calls = sum(s == "answer" for s in llm.steps())
    assert record["cost"]["agent"]["llm_calls"] == agent_calls > 0
    if agent == "no-memory":
        assert "controller" not in record["cost"] and record["ltm"] == []
        return
    controller = record["cost"]["controller"]
    assert controller["llm_calls"] == len(llm.steps()) - agent_calls > 0
    assert controller["failures"] == 0
    by_source = record["tool_calls_by_source"]
    assert set(by_source) == {"controller"}, "the answering model is offered no tools"
    assert by_source["controller"]["Add_memory"] == len(record["ltm"]) > 0
    assert record["metrics"]["mq"] >= 0.0


@pytest.mark.slow
def test_mem0_with_a_real_local_model_under_constrained_decoding(tmp_path_factory, tmp_path):
    """A random-weight model writes JSON only when constrained: with structured output every
    controller reply is JSON (cut ones still fail, counted); without, every reply fails."""
    pytest.importorskip("lmformatenforcer")
    from _llm_fixtures import tiny_model

    model = str(tiny_model(tmp_path_factory))
    failures = {}
    for structured in (True, False):
        config = RunConfig(env="assistant", agent="mem0", out=tmp_path / str(structured), episodes=1,
                           progress=False, env_options={"num_facts": 2, "num_updates": 1, "num_deletes": 0,
                                                        "small_talk": 0, "num_distractors": 1,
                                                        "distractor_sentences": 1, "num_queried": 1,
                                                        "max_steps_per_turn": 1})
        policy = Mem0(model, device="cpu", threads=1, structured=structured, fixed_reply="Noted.",
                      max_new_tokens=8, controller_max_new_tokens=48)
        [record] = run(config, policy=policy)
        cost = record["cost"]["controller"]
        reasons = json.dumps(cost.get("failure_reasons", {}))
        assert cost["llm_calls"] >= 4 and cost["failures"] <= cost["llm_calls"]
        if structured:
            assert "no JSON object" not in reasons
        else:
            assert cost["failures"] == cost["llm_calls"] and "extract: " in reasons
        failures[structured] = cost["failures"]
    assert failures[True] < failures[False]


@pytest.mark.engine
def test_mem0g_through_the_openai_backend_against_transformers_serve(tmp_path_factory, tmp_path):
    """The same pipeline over HTTP: every controller call is one counted request; the server
    takes ``response_format`` (``transformers serve`` does not enforce it, vLLM does)."""
    pytest.importorskip("fastapi")
    from _llm_fixtures import tiny_model, transformers_serve

    model = tiny_model(tmp_path_factory)
    config = RunConfig(env="assistant", agent="mem0g", out=tmp_path, episodes=1, progress=False,
                       env_options={"num_facts": 1, "num_updates": 0, "num_deletes": 0, "small_talk": 0,
                                    "num_distractors": 1, "distractor_sentences": 1, "num_queried": 1,
                                    "max_steps_per_turn": 1})
    with transformers_serve(model) as url:
        policy = Mem0Graph(str(model), "openai", base_url=url, tokenizer=str(model), fixed_reply="Noted.",
                           max_new_tokens=8, controller_max_new_tokens=16)
        [record] = run(config, policy=policy)
        policy.llm.close()
    cost = record["cost"]["controller"]
    # two messages: extract and entities each (no facts or entities are usable from a random
    # model, so no decision or relation call); the query: entities
    assert cost["llm_calls"] == 5 and cost["failures"] == 5
    assert record["cost"]["agent"]["llm_calls"] >= 1
