"""The memory-controller base and No-Memory, on the real env through the real rollout loop."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest
from _baseline_llm import ANSWER, Script

from agemem_gym import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.policies import make_policy
from agemem_gym.rollout import play_episodes, rollout
from baselines._controller import MemoryController
from baselines._structured import object_schema
from baselines.no_memory import NoMemory

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2,
         "distractor_sentences": 2, "num_queried": 1}
NOTE = object_schema("note", {"note": {"type": "string"}})


def make_env(policy_cls=MemoryController, **options):
    return AgeMemEnv("assistant", **{**SMALL, **policy_cls.env_options, **options})


class Noting(MemoryController):
    """A controller that stores the ``note`` of one JSON call per message."""

    name = "noting"

    def observe(self, arrivals):
        replies = self.ask("note", [(ep, [{"role": "user", "content": m.content}]) for ep, m in arrivals],
                           NOTE)
        for (ep, _), reply in zip(arrivals, replies, strict=True):
            if reply is not None:
                ep.port.add(reply["note"])

    def recall(self, arrivals):
        return [f"[Memories] {len(ep.port.entries())} stored" for ep, _ in arrivals]


def stage12_messages(info):
    """How many stage-1/2 user messages the episode presented (from its trace)."""
    return sum(e.kind == "user_turn" and e.payload["message_kind"] in ("fact", "distractor")
               for e in info["result"].trace)


def note_replies(bad: int = 0):
    """JSON notes, except the first ``bad`` controller replies, which are not JSON."""
    seen = {"n": 0}

    def respond(step, prompt):
        if prompt[0]["role"] == "system":
            return ANSWER
        seen["n"] += 1
        return "the note is: none" if seen["n"] <= bad else json.dumps({"note": prompt[-1]["content"][:40]})

    return respond


def test_no_memory_never_touches_memory_and_offers_no_tools():
    llm = Script(lambda step, prompt: ANSWER)
    env = make_env(NoMemory)
    reward, info = rollout(env, NoMemory(llm=llm), seed=0, task_index=0)
    env.close()
    assert info["ltm"] == [] and info["tool_calls"] == {}
    assert "controller" not in info["cost"]
    system = llm.calls[0]["prompts"][0][0]["content"]
    assert "Add_memory" not in system and "Retrieve_memory" not in system
    assert all(step == "answer" for step in llm.steps())
    assert info["answer"] == "ok"


def test_controller_calls_are_counted_batched_and_memories_inserted_before_answering():
    llm = Script(note_replies())
    policy = Noting(llm=llm)
    envs = [make_env() for _ in range(3)]
    starts = [{"seed": i, "options": {"task_index": i}} for i in range(3)]
    done = list(play_episodes(envs, policy, starts))
    for env in envs:
        env.close()
    controller_batches = [len(c["steps"]) for c in llm.calls if c.get("json_schema")]
    assert max(controller_batches) == 3, "the three episodes' controller calls share one generate call"
    for d in done:
        cost = d.info["cost"]["controller"]
        assert cost["llm_calls"] == stage12_messages(d.info) > 0
        assert cost["failures"] == 0
        assert len(d.info["ltm"]) == cost["llm_calls"]
        assert d.info["tool_calls_by_source"]["controller"]["Add_memory"] == cost["llm_calls"]
    answers = [c["prompts"] for c in llm.calls if not c.get("json_schema")]
    last = [p[-1]["content"] for batch in answers for p in batch if p[-1]["content"].startswith("[Memories]")]
    assert len(last) == 3, "each episode's stage-3 answer sees the inserted memories"


def test_unusable_reply_is_a_counted_failure_with_a_reason_and_retries_are_counted():
    env = make_env()
    _, info = rollout(env, Noting(llm=Script(note_replies(bad=1))), seed=0, task_index=0)
    cost = info["cost"]["controller"]
    assert cost["failures"] == 1
    assert "note: no JSON object or array" in json.dumps(cost)
    fails_once = len(info["ltm"])

    llm = Script(note_replies(bad=1))
    _, info = rollout(env, Noting(llm=llm, retries=1), seed=0, task_index=0)
    env.close()
    cost = info["cost"]["controller"]
    assert cost["failures"] == 1 and len(info["ltm"]) == fails_once + 1, "the retry stored the note"
    assert cost["llm_calls"] == stage12_messages(info) + 1
    retry = next(c["prompts"][0] for c in llm.calls if c.get("json_schema") and len(c["prompts"][0]) == 3)
    assert retry[1]["content"] == "the note is: none" and "could not be used" in retry[2]["content"]


def test_structured_setting_decides_whether_a_schema_is_sent():
    for structured in (True, False):
        llm = Script(note_replies())
        env = make_env()
        rollout(env, Noting(llm=llm, structured=structured), seed=0, task_index=0)
        env.close()
        sent = [c.get("json_schema") for c in llm.calls if c["prompts"][0][0]["role"] != "system"]
        assert sent and all((s == NOTE) if structured else s is None for s in sent)


def test_fixed_reply_answers_stages_1_and_2_without_a_model_call():
    llm = Script(lambda step, prompt: ANSWER)
    env = make_env(NoMemory)
    _, info = rollout(env, NoMemory(llm=llm, fixed_reply="Noted."), seed=0, task_index=0)
    env.close()
    assert len(llm.calls) == 1 and info["answer"] == "ok"


def test_acting_without_an_episode_handle_says_what_is_missing():
    policy = NoMemory(llm=Script(lambda step, prompt: ANSWER))
    with pytest.raises(ConfigError, match="needs an env that gives episode handles"):
        policy.act(({"id": "m1", "role": "user", "content": "hi"},), {"episode_key": "x"})


def test_baselines_are_registered_by_name():
    import baselines  # noqa: F401  (registers them)

    policy = make_policy("no-memory", llm=Script(lambda step, prompt: ANSWER))
    assert isinstance(policy, NoMemory) and policy.env_options == {"tools": ()}
    with pytest.raises(ConfigError, match="retries >= 0"):
        NoMemory(llm=Script(lambda step, prompt: ANSWER), retries=-1)


@pytest.mark.parametrize("name", ["_controller", "_graph", "_structured", "mem0", "mem0g", "no_memory"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"baselines.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and (result.attempted > 0 or name == "mem0g")


def test_settings_say_whether_replies_were_constrained():
    llm = Script(lambda step, prompt: ANSWER)
    assert NoMemory(llm=llm).settings()["structured"] is True
    assert NoMemory(llm=llm, structured=False, retries=2).settings() == {
        "structured": False, "retries": 2, "top_k": 3, "controller_max_new_tokens": 512, "fixed_reply": None}


def test_a_reply_cut_at_the_token_limit_says_so():
    class Cut(Script):
        def generate(self, prompts, **options):
            out = super().generate(prompts, **options)
            if options.get("json_schema"):
                for g in out:
                    g.text, g.finish_reason = '{"note": "the user lives in', "length"
            return out

    env = make_env()
    _, info = rollout(env, Noting(llm=Cut(note_replies()), controller_max_new_tokens=8), seed=0, task_index=0)
    env.close()
    [(reason, count)] = info["cost"]["controller"]["failure_reasons"].items()
    assert reason == "note: invalid JSON: Unterminated string (the reply reached controller_max_new_tokens)"
    assert count == info["cost"]["controller"]["llm_calls"] and info["ltm"] == []
