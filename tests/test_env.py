import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agemem_gym  # noqa: F401 - registers the ids
from agemem_gym import AgeMemEnv, ConfigError
from agemem_gym.policies import NoopPolicy, OraclePolicy, RandomPolicy
from agemem_gym.protocol import format_answer, format_tool_call
from agemem_gym.spaces import random_response

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2,
         "distractor_sentences": 2, "num_queried": 1}


def play(env, policy, seed=0, index=0):
    obs, info = env.reset(seed=seed, options={"task_index": index})
    trajectory = [obs]
    while True:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        trajectory.append(obs)
        if terminated or truncated:
            return trajectory, reward, info


def test_check_env_passes():
    env = gym.make("AgeMem/Assistant-v0", **SMALL)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_make_vec_steps_four_copies_without_sharing_memory():
    envs = gym.make_vec("AgeMem/Assistant-v0", num_envs=4, vectorization_mode="sync", **SMALL)
    obs, infos = envs.reset(seed=0)
    assert len(obs) == 4
    stored = format_tool_call("Add_memory", content="only in this copy")
    actions = (stored, format_answer("ok"), format_answer("ok"), format_answer("ok"))
    obs, rewards, terminated, truncated, infos = envs.step(actions)
    assert list(infos["memory_size"]) == [1, 0, 0, 0]
    for _ in range(5):
        envs.step(tuple(envs.action_space.sample()))
    envs.close()


def test_same_seed_same_trajectory_and_other_seed_differs():
    env = AgeMemEnv("assistant", privileged_info=True, **SMALL)
    a, ra, _ = play(env, RandomPolicy(seed=3), seed=7)
    b, rb, _ = play(env, RandomPolicy(seed=3), seed=7)
    assert a == b and ra == rb
    c, _, _ = play(env, RandomPolicy(seed=3), seed=8)
    assert c != a
    env.close()


def test_stage_flow_reset_and_introspective_retrieval():
    env = AgeMemEnv("assistant", privileged_info=True, **SMALL)
    obs, info = env.reset(seed=0, options={"task_index": 0})
    task = info["task"]
    assert obs[-1]["content"] == task.stage1[0].message and info["stage"] == 1
    oracle, seen_check = OraclePolicy(), False
    while info["stage"] == 1:
        obs, _, _, _, info = env.step(oracle.act(obs, info))
        seen_check |= any(m["content"].startswith("[Memory check]") for m in obs)
    assert seen_check, "stage 1 shows stored memories before later turns"
    # stage 2 starts from an empty context (system prompt only) plus its first distractor
    assert [m["role"] for m in obs] == ["system", "user"]
    assert obs[1]["content"] == task.distractors[0]
    assert len(env.ltm) > 0, "long-term memory survives the context reset"
    while info["stage"] == 2:
        obs, _, _, _, info = env.step(oracle.act(obs, info))
    assert obs[-1]["content"] == task.query
    env.close()


@pytest.mark.parametrize("stages", [(3,), (1, 3), (2, 3), (1, 2)])
def test_stage_subsets(stages):
    env = AgeMemEnv("assistant", stages=stages, privileged_info=True, **SMALL)
    trajectory, reward, info = play(env, OraclePolicy())
    assert info["counts"].get("truncated", 0) == 0
    if 3 in stages:
        assert info["answer"] is not None
        assert info["metrics"]["score"] == 1.0  # the oracle answers from ground truth
        stored = 1 in stages
        assert (info["reward_components"]["memory/relevance"] > 0) == stored
    else:
        assert info["answer"] is None and info["reward_components"]["task"] == 0.0
    env.close()


def test_bad_stage_config_is_rejected():
    with pytest.raises(ConfigError, match=r"stages must be an increasing subset of \(1, 2, 3\), such as \(3,\) or \(1, 2, 3\), got \(3, 1\) \(tuple\)"):
        AgeMemEnv("assistant", stages=(3, 1))


def test_ten_thousand_random_and_adversarial_actions_never_raise():
    env = AgeMemEnv("assistant", **SMALL)
    rng = np.random.default_rng(0)
    adversarial = ["", "x" * 1_048_576, "<tool_call>" * 50, "\x00\udcff", "<answer>" + "y" * 40_000 + "</answer>",
                   '<tool_call>[{"name": "Add_memory", "arguments": {"content": "' + "z" * 5000 + '"}}]</tool_call>',
                   '<tool_call>[' + ",".join(['{"name": "Retrieve_memory", "arguments": {"query": "q"}}'] * 30) + "]</tool_call>",
                   format_tool_call("Summary_context", span="-3"), format_tool_call("Update_memory", memory_id=None, content="c")]
    env.reset(seed=0)
    steps = episodes = answered_errors = 0
    while steps < 10_000:
        action = adversarial[steps % len(adversarial)] if steps % 3 == 0 else random_response(rng, env.config.tools)
        _, _, terminated, truncated, info = env.step(action)
        steps += 1
        answered_errors += info["format_error"] is not None or any(not r["ok"] for r in info["tool_results"])
        if terminated or truncated:
            episodes += 1
            env.reset(seed=steps)
    assert episodes > 50
    assert answered_errors > 3000
    env.close()


def test_every_error_is_answered_in_the_next_observation_and_counted():
    env = AgeMemEnv("assistant", **SMALL)
    env.reset(seed=0)
    obs, _, _, _, info = env.step("<answer>unclosed")
    assert obs[-1]["content"] == "[Format error] the <answer> tag is not closed: add </answer>"
    assert info["counts"]["format_errors"] == 1
    obs, _, _, _, info = env.step(format_tool_call("Delete_memory", memory_id="mem_000000", confirmation=True))
    assert obs[-1]["role"] == "tool" and "no memory with id 'mem_000000'" in obs[-1]["content"]
    assert info["counts"]["tool_errors"] == 1
    many = "<tool_call>[" + ",".join(['{"name": "Retrieve_memory", "arguments": {"query": "q"}}'] * 10) + "]</tool_call>"
    obs, _, _, _, info = env.step(many)
    assert obs[-1]["content"].endswith("Only 8 tool calls run per response; 2 were skipped.")
    env.close()


def test_turn_limit_moves_on_and_ends_a_question_unanswered():
    env = AgeMemEnv("assistant", stages=(3,), max_steps_per_turn=3, **SMALL)
    env.reset(seed=0)
    call = format_tool_call("Retrieve_memory", query="x")
    results = [env.step(call) for _ in range(3)]
    _, reward, terminated, truncated, info = results[-1]
    assert truncated and not terminated
    assert info["reward_components"]["task"] == -1.0 and info["counts"]["ended_by_turn_limit"] == 1
    env.close()


def test_round_limit_penalises_and_token_budget_penalises():
    env = AgeMemEnv("assistant", max_rounds=5, **SMALL)
    env.reset(seed=0)
    for _ in range(5):
        _, reward, terminated, truncated, info = env.step(format_answer("ok"))
    assert truncated and info["reward_components"]["penalty/rounds"] == -1.0
    tight = AgeMemEnv("assistant", token_budget=100, **SMALL)
    _, _, info = play(tight, NoopPolicy())
    assert info["reward_components"]["penalty/tokens"] == -0.5
    assert info["reward_components"]["context/compression"] == 0.0
    env.close()
    tight.close()


def test_context_cap_ends_a_runaway_episode():
    env = AgeMemEnv("assistant", token_budget=1000, max_context_tokens=1500, max_steps_per_turn=100, **SMALL)
    env.reset(seed=0)
    for step in range(100):  # noqa: B007 - the count is checked below
        _, _, terminated, truncated, info = env.step("<answer>" + "words " * 3000)
        if terminated or truncated:
            break
    assert truncated and info["counts"]["ended_by_context_cap"] == 1 and step < 10
    env.close()


def test_episodes_do_not_share_memory():
    env = AgeMemEnv("assistant", **SMALL)
    env.reset(seed=0)
    env.step(format_tool_call("Add_memory", content="secret from episode one"))
    assert len(env.ltm) == 1
    env.reset(seed=1)
    assert len(env.ltm) == 0
    other = AgeMemEnv("assistant", **SMALL)
    other.reset(seed=0)
    assert len(other.ltm) == 0
    env.close()
    other.close()


def test_step_before_reset_and_after_end_is_an_error():
    env = AgeMemEnv("assistant", stages=(3,), **SMALL)
    with pytest.raises(gym.error.ResetNeeded):
        env.step("<answer>a</answer>")
    env.reset(seed=0)
    env.step("<answer>a</answer>")
    with pytest.raises(gym.error.ResetNeeded):
        env.step("<answer>a</answer>")
    env.close()


def test_import_pulls_no_torch_transformers_or_engine():
    code = ("import sys, agemem_gym, gymnasium as gym; gym.make('AgeMem/Assistant-v0').reset(seed=0); "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'minigrid', 'pddlgym', "
            "'scienceworld', 'alfworld', 'textworld', 'datasets') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ansi_render_lists_messages():
    env = AgeMemEnv("assistant", render_mode="ansi", **SMALL)
    env.reset(seed=0)
    assert env.render().startswith("[m1] system: You are an assistant")
    env.close()


def test_max_episode_steps_ends_with_the_trajectory_reward_and_its_parts():
    env = gym.make("AgeMem/Assistant-v0", max_episode_steps=3, **SMALL)
    env.reset(seed=0)
    for _ in range(3):
        _, reward, terminated, truncated, info = env.step("<think></think><answer>ok</answer>")
    assert truncated and not terminated
    components = info["reward_components"]
    assert components["penalty/rounds"] == -1.0 and reward == components["total"] < 0
    assert info["counts"]["ended_by_max_episode_steps"] == 1 and info["result"].rounds == 3
    env.close()
