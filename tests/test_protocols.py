"""The ``official`` protocol: the released reward, parser, tool name and HotpotQA stages."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_DATA

from agemem_gym import AgeMemEnv, ConfigError
from agemem_gym.lenient import parse_lenient
from agemem_gym.policies import MemoryRandomPolicy, OraclePolicy
from agemem_gym.rewards_official import FinalContext, official_reward
from agemem_gym.rollout import rollout

QUESTION = ("user", "Where was Ada born?")  # 19 characters; its long words: where, born


def _context(*middle, filler):
    return [("system", "s" * 10), QUESTION, *middle, ("assistant", "x" * filler)]


@pytest.mark.parametrize(("score", "answered", "rounds", "total"), [
    (1.0, True, 1, 0.616375),   # 0.5 + 0.15 * (0.6875 + 0 + 1) / 3 + 0.2 * (1 - 1/5) * 0.2
    (0.0, True, 1, 0.116375),   # the same without the task's 0.5
    (0.0, False, 5, -1.0),      # -1 unweighted, -1 for all 5 rounds, +0.084375: clipped to -1
    (0.0, False, 1, -0.883625),  # -1 + 0.084375 + 0.032
])
def test_official_reward_by_hand(score, answered, rounds, total):
    ctx = FinalContext.from_messages(_context(filler=10_211), {})  # 10,240 characters = 2,560 tokens
    reward = official_reward(ctx, task_score=score, answered=answered, rounds=rounds)
    assert reward["total"] == pytest.approx(total)
    assert reward["context/compression"] == pytest.approx(1 - 2560 / 8192)


def test_official_reward_over_budget_with_a_used_retrieval():
    call = ("assistant", '<tool_call>[{"name": "Retrieve_memory"}]</tool_call>')
    result = ("tool", "Retrieve_memory: found one")
    used = 10 + 19 + len(call[1]) + len(result[1])
    ctx = FinalContext.from_messages(_context(call, result, filler=40_000 - used),
                                     {3: [("Retrieve_memory", True)]})
    reward = official_reward(ctx, task_score=1.0, answered=True, rounds=2)
    # ctx (0 + 0 + 1) / 3; mem (0 + 0 + 0.5) / 3; tool 0.2 + 0.2 + 0.2 * (1 - 2/5); -0.5 overflow
    assert reward["tool"] == pytest.approx(0.52) and reward["memory/relevance"] == 0.5
    assert reward["penalty/tokens"] == -0.5 and reward["context/preventive"] == 0.0
    assert reward["total"] == pytest.approx(0.5 + 0.15 / 3 + 0.15 * 0.5 / 3 + 0.2 * 0.52 - 0.5)


@pytest.mark.parametrize(("text", "calls", "answer", "repairs"), [
    ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "a"}}]', ["Add_memory"], None,
     ["unclosed_tool_call"]),
    ('[{"name": "Retrieve_memory", "arguments": {"query": "q"}}]</tool_call>', ["Retrieve_memory"], None,
     ["unopened_tool_call"]),
    ('<tool_call>[{"name": "A", "arguments": {}}]</tool_call><tool_call>[{"name": "A", "arguments": {}}, '
     '{"name": "B", "arguments": {}}]</tool_call>', ["A", "B"], None, ["merged_tool_calls"]),
    ("<think>x</think><answer>Paris", None, "Paris", ["unclosed_answer"]),
    ('<tool_call>[{"name": "A", "arguments": {}}]</tool_call><answer>Rome</answer>', ["A"], "Rome",
     ["tool_call_and_answer"]),
])
def test_lenient_parser_repairs_and_names_each_repair(text, calls, answer, repairs):
    parsed = parse_lenient(text)
    assert [c.name for c in parsed.parsed.tool_calls or ()] == (calls or [])
    assert parsed.parsed.answer == answer and parsed.repairs == repairs


def test_lenient_parser_still_refuses_what_cannot_be_repaired():
    for text in ("no tags at all", "<tool_call>not json</tool_call>", "<answer>\ud800</answer>"):
        assert parse_lenient(text).parsed.error is not None


def _hotpot(protocol, **options):
    return AgeMemEnv("hotpotqa", data=str(SAMPLE_DATA["hotpotqa"]), privileged_info=True,
                     protocol=protocol, **options)


def test_official_hotpotqa_episode(shared_data):
    env = _hotpot("official", stages=(1, 3))
    obs, info = env.reset(seed=0, options={"task_index": 0})
    paragraphs = obs[-1]["content"]
    assert paragraphs.startswith("Just chatting about a few topics") and paragraphs.count("\n") >= 9
    assert "Clear_context" in obs[0]["content"] and "Filter_context" not in obs[0]["content"]
    obs, *_, info = env.step('<tool_call>[{"name": "Add_memory", "arguments": {"content": "x"}}]')
    assert info["counts"]["repairs"] == 1 and info["counts"]["repair/unclosed_tool_call"] == 1
    env.step("<answer>ok</answer>")  # stage 1 has one turn; then the question
    obs, *_, info = env.step('<tool_call>[{"name": "Clear_context", "arguments": {"criteria": "x"}}]'
                             '</tool_call>')
    assert info["tool_results"][0]["name"] == "Filter_context" and info["tool_results"][0]["ok"]
    *_, done, _, info = env.step("<answer>Chicago")
    assert done and info["result"].protocol == "official" and "tool" in info["reward_components"]
    assert not any(e.kind == "memory_check" for e in info["result"].trace)
    env.close()


@pytest.mark.parametrize("protocol", ["paper", "official"])
def test_oracle_and_a_scripted_policy_under_both_protocols(protocol, shared_data):
    env = _hotpot(protocol)
    oracle = rollout(env, OraclePolicy(), seed=0, task_index=1)[1]
    scripted = rollout(env, MemoryRandomPolicy(p_store=1.0, p_retrieve=1.0), seed=0, task_index=1)[1]
    env.close()
    assert oracle["metrics"]["score"] == 1.0 and oracle["metrics"]["mq"] == 1.0
    assert oracle["result"].protocol == scripted["result"].protocol == protocol
    expected_distractors = 3 if protocol == "official" else None
    distractors = [e for e in oracle["result"].trace if e.kind == "user_turn"
                   and e.payload["message_kind"] == "distractor"]
    assert expected_distractors is None or len(distractors) == expected_distractors
    assert ("tool" in oracle["reward_components"]) == (protocol == "official")


def test_protocol_setting_is_checked_and_preset_values_yield_to_given_ones():
    with pytest.raises(ConfigError, match="protocol must be one of 'paper', 'official', got 'oficial'"):
        AgeMemEnv("assistant", protocol="oficial")
    env = AgeMemEnv("assistant", protocol="official", max_steps_per_turn=2, reward_mode="full")
    assert env.config.max_steps_per_turn == 2 and env.config.reward_mode == "full"
    assert env.config.parser == "lenient" and not env.config.introspective_retrieval
    env.close()


@pytest.mark.parametrize("name", ["babyai", "pddl", "sciworld", "alfworld"])
def test_interactive_benchmarks_under_both_protocols(name, shared_data):
    """The oracle and a scripted policy play each engine under both protocols; the official one
    follows AgentBoard's rules (30 steps)."""
    for protocol in ("paper", "official"):
        small = {} if name == "pddl" else {"num_distractors": 1}
        env = AgeMemEnv(name, data=str(SAMPLE_DATA[name]), privileged_info=True, protocol=protocol, **small)
        oracle = rollout(env, OraclePolicy(), seed=0, task_index=0)[1]["result"]
        scripted = rollout(env, MemoryRandomPolicy(p_store=1.0, p_retrieve=1.0), seed=0, task_index=1)[1]["result"]
        env.close()
        for result in (oracle, scripted):
            assert result.protocol == protocol and 0.0 <= result.metrics["progress"] <= 1.0
            assert result.engine_steps <= (30 if protocol == "official" else 256)
        assert oracle.tool_calls_by_source["agent"]["Add_memory"] >= 1
        assert scripted.tool_calls_by_source["agent"]["Retrieve_memory"] >= 1
