"""Every baseline on every benchmark through the real runner, with a scripted model that
answers each controller step with well-formed JSON (keyed by the schema it is asked for)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import SAMPLE_DATA

from agemem_gym.llm.base import Generation, LLMBackend
from baselines import BASELINES
from benchmarks.runner import RunConfig, run

INTERACTIVE = ("babyai", "pddl", "sciworld", "alfworld")
BENCHMARKS = ("assistant", "hotpotqa", *INTERACTIVE)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{3,}", text)[:3] or ["user", "thing", "fact"]


def _reply(title: str | None, prompt: list[dict[str, str]]) -> str:
    last = prompt[-1]["content"]
    sentence = last.split(". ")[0][-160:]
    words = _words(sentence)
    replies = {
        "facts": {"facts": [sentence]},
        "memory_actions": {"actions": [{"event": "ADD", "id": "", "text": sentence}]},
        "entities": {"entities": [{"name": w, "type": "thing"} for w in words[:2]]},
        "relations": {"relations": [{"source": words[0], "relation": "relates to", "destination": words[-1]}]},
        "conflicts": {"invalidate": []},
        "amem_note": {"keywords": words + ["note"] * (3 - len(words)), "context": sentence,
                      "tags": ["fact", "user", "memory"]},
        "amem_evolution": {"should_evolve": False, "actions": [], "links": [], "tags": [], "neighbor_updates": []},
        "amem_query": {"keywords": words},
        "langmem_operations": {"operations": [{"op": "create", "id": "", "content": sentence}]},
        "langmem_summary": {"summary": sentence},
    }
    if title in replies:
        return json.dumps(replies[title])
    return "<think></think><answer>look</answer>"


class SchemaScript(LLMBackend):
    """Well-formed replies for whatever schema a controller asks; the answer format otherwise."""

    name = "schema-script"

    def __init__(self) -> None:
        self.controller_calls = 0
        self.answer_calls = 0

    def generate(self, prompts, json_schema=None, **options):
        title = (json_schema or {}).get("title")
        if title is None:
            self.answer_calls += len(prompts)
        else:
            self.controller_calls += len(prompts)
        return [Generation(_reply(title, list(p)), 10, 5, 0.01) for p in prompts]

    def count_tokens(self, text: str) -> int:
        return len(text) // 4


def _options(bench: str) -> dict:
    options: dict = {"num_distractors": 1} if bench != "pddl" else {}
    if bench != "assistant":
        options["data"] = str(SAMPLE_DATA[bench])
    if bench in INTERACTIVE:
        options["max_steps"] = 2
    return options


@pytest.mark.parametrize("agent", sorted(BASELINES))
def test_every_baseline_runs_on_every_benchmark(agent, shared_data, tmp_path):
    from agemem_gym.policies import make_policy

    for bench in BENCHMARKS:
        llm = SchemaScript()
        [record] = run(RunConfig(env=bench, agent=agent, out=tmp_path / bench, episodes=1, progress=False,
                                 env_options=_options(bench)), policy=make_policy(agent, llm=llm))
        cost = record["cost"]
        assert cost["agent"]["llm_calls"] == llm.answer_calls > 0, bench
        assert cost.get("controller", {}).get("llm_calls", 0) == llm.controller_calls, bench
        assert set(record["tool_calls_by_source"]) <= {"controller"}, "the model is offered no tools"
        if agent == "no-memory":
            assert record["ltm"] == [] and llm.controller_calls == 0
        else:
            assert cost["controller"]["failures"] == 0, (bench, cost["controller"])
            assert record["tool_calls_by_source"]["controller"].get("Add_memory", 0) >= 1, bench
