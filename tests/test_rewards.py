import pytest

from agemem_gym.rewards import EpisodeOutcome, RewardWeights, trajectory_reward


def outcome(**changes):
    base = dict(answered=True, task_score=0.5, tokens_at_answer=300, token_budget=1000,
                budget_exceeded=False, reduced_before_budget=True, key_items_preserved=False,
                storage=0.25, maintenance=False, relevance=0.5, rounds_exceeded=False)
    return EpisodeOutcome(**{**base, **changes})


def test_components_by_hand():
    r = trajectory_reward(outcome())
    assert r["context/compression"] == pytest.approx(0.7)
    assert r["context"] == pytest.approx((0.7 + 1 + 0) / 3)
    assert r["memory"] == pytest.approx((0.25 + 0 + 0.5) / 3)
    assert r["total"] == pytest.approx(0.5 / 3 + r["context"] / 3 + r["memory"] / 3)


def test_no_answer_and_penalties():
    r = trajectory_reward(outcome(answered=False, budget_exceeded=True, rounds_exceeded=True,
                                  tokens_at_answer=5000))
    assert r["task"] == -1.0 and r["context/compression"] == 0.0
    assert (r["penalty/rounds"], r["penalty/tokens"], r["penalty"]) == (-1.0, -0.5, -1.5)
    assert r["total"] == pytest.approx(-1 / 3 + r["context"] / 3 + r["memory"] / 3 - 1.5)


def test_uniform_weights_and_task_only_mode():
    uniform = trajectory_reward(outcome(), RewardWeights.uniform())
    assert uniform["total"] == pytest.approx(0.5 + uniform["context"] + uniform["memory"])
    assert trajectory_reward(outcome(budget_exceeded=True), mode="task")["total"] == 0.5
