import numpy as np
import pytest

from agemem_gym import AgeMemEnv, ConfigError
from agemem_gym.policies import NoopPolicy, OraclePolicy
from agemem_gym.rollout import rollout
from agemem_gym.tasks.assistant import AssistantTasks
from agemem_gym.tools import ALL_TOOLS


def test_tasks_are_fixed_by_index_and_wording_by_rng():
    source = AssistantTasks()
    a = source.get(3, np.random.default_rng(0))
    b = source.get(3, np.random.default_rng(0))
    c = source.get(3, np.random.default_rng(1))
    assert a == b
    assert (a.answers, a.supporting_facts) == (c.answers, c.supporting_facts)
    assert source.get(4, np.random.default_rng(0)).supporting_facts != a.supporting_facts


def test_changes_follow_their_fact_and_supporting_facts_are_current():
    source = AssistantTasks(num_facts=8, num_updates=3, num_deletes=2)
    for index in range(20):
        task = source.get(index, np.random.default_rng(index))
        current = {}
        for fact in task.stage1:
            if fact.op in ("update", "delete"):
                assert fact.key in current, "a change comes after the fact it changes"
            if fact.op in ("add", "update"):
                current[fact.key] = fact.content
            elif fact.op == "delete":
                current.pop(fact.key)
        assert sorted(current.values()) == sorted(task.supporting_facts)
        for item in task.metadata["queried"]:
            assert item["value"] in task.answers
        assert all(k in task.query for k in task.key_items)


def test_score_rewards_current_values_and_punishes_stale_ones():
    task = AssistantTasks(num_facts=4, num_updates=2, num_deletes=0).get(0, np.random.default_rng(0))
    queried = task.metadata["queried"]
    source = AssistantTasks()
    assert source.score(task, "; ".join(q["value"] for q in queried)) == {"score": 1.0, "success": 1.0}
    stale = queried[0]["stale"]
    both = f"{queried[0]['value']} or maybe {stale}; {queried[1]['value']}"
    assert source.score(task, both)["score"] == 0.5
    assert source.score(task, "no idea") == {"score": 0.0, "success": 0.0}


def test_bad_parameters_are_rejected():
    with pytest.raises(ConfigError, match=r"num_updates \+ num_deletes \(3 \+ 1\) must not exceed num_facts \(3\)"):
        AssistantTasks(num_facts=3, num_updates=3, num_deletes=1)
    with pytest.raises(ConfigError, match="num_queried must be in 1..2"):
        AssistantTasks(num_facts=3, num_updates=1, num_deletes=1, num_queried=3)


def test_sampled_training_tasks_avoid_the_evaluation_set():
    source = AssistantTasks(eval_size=100)
    rng = np.random.default_rng(0)
    training = [source.sample(rng) for _ in range(50)]
    evaluation = [source.get(i, np.random.default_rng(i)) for i in range(100)]
    assert not {t.task_id for t in training} & {t.task_id for t in evaluation}
    # with the default settings the worlds differ too, not only the seeds
    assert not {t.supporting_facts for t in training} & {t.supporting_facts for t in evaluation}
    assert source.training_split() == (
        "assistant: generated from seeds 100..2**31-2 (evaluation: 0..99)"
    )


def test_oracle_scores_one_with_all_six_tools_and_beats_noop():
    env = AgeMemEnv("assistant", privileged_info=True)
    oracle = [rollout(env, OraclePolicy(), seed=i, task_index=i) for i in range(10)]
    noop = [rollout(env, NoopPolicy(), seed=i, task_index=i) for i in range(10)]
    assert all(info["metrics"]["score"] == 1.0 and info["metrics"]["mq"] == 1.0 for _, info in oracle)
    used = set().union(*(info["tool_calls"] for _, info in oracle))
    assert used == set(ALL_TOOLS)
    assert all(info["counts"].get("tool_errors", 0) == 0 for _, info in oracle)
    assert np.mean([info["metrics"]["score"] for _, info in noop]) <= 0.2
    for (r_oracle, _), (r_noop, _) in zip(oracle, noop, strict=True):
        assert r_oracle > r_noop + 0.3
    # the stage-2 text pushes an unmanaged context over T_max; the oracle stays within it
    assert all(info["reward_components"]["penalty/tokens"] == -0.5 for _, info in noop)
    assert all(info["reward_components"]["penalty/tokens"] == 0.0 for _, info in oracle)
    env.close()
