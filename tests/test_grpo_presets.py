"""The released training recipe as a preset: plain GRPO over kept turns, k2 KL, turn filter."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.training.grpo import (  # noqa: E402
    PRESETS,
    GRPOConfig,
    assign_advantages,
    grpo_loss,
    turn_advantages,
)
from agemem_gym.training.rows import TurnRow  # noqa: E402


def _rows(spec):
    """``spec``: (episode, has_tool_call) per turn, in play order."""
    return [TurnRow([1, 2], [3], episode=e, has_tool_call=t) for e, t in spec]


def test_turn_advantages_weigh_longer_episodes_more():
    # task 0: episode 0 (reward 1) has three turns, episode 1 (reward 0) one
    advantages = turn_advantages(np.array([1.0, 0.0]), np.array([0, 0, 0, 1]), np.array([0, 0]))
    mean, std = 0.75, math.sqrt(((0.25**2) * 3 + 0.75**2) / 3)
    assert advantages.tolist() == pytest.approx([(1 - mean) / std] * 3 + [(0 - mean) / std], rel=1e-4)


def test_tools_and_last_keeps_tool_turns_and_each_episode_last_turn(tmp_path):
    config = GRPOConfig(model="m", out=str(tmp_path), group_size=2, train_turns="tools_and_last",
                        advantage="turn")
    rows = _rows([(0, False), (0, True), (0, False), (1, False), (1, False)])
    kept = assign_advantages(config, rows, np.array([[1.0, 0.0]]))
    assert [(r.episode, r.has_tool_call) for r in kept] == [(0, True), (0, False), (1, False)]
    assert kept[0].advantage == kept[1].advantage > 0 > kept[2].advantage


def test_episode_advantage_is_the_papers_step_wise_broadcast(tmp_path):
    config = GRPOConfig(model="m", out=str(tmp_path), group_size=2)
    rows = assign_advantages(config, _rows([(0, False), (0, True), (1, False)]), np.array([[1.0, 0.0]]))
    assert [round(r.advantage, 3) for r in rows] == [0.707, 0.707, -0.707]


@pytest.mark.parametrize(("estimator", "expected"), [("k3", math.exp(-0.5) + 0.5 - 1), ("k2", 0.5 * 0.25)])
def test_kl_estimators(estimator, expected):
    logp = torch.tensor([[0.0]])
    batch = {"completion_mask": torch.tensor([[1.0]]), "old_logprobs": torch.tensor([[0.0]]),
             "advantages": torch.tensor([[0.0]]), "turns": torch.tensor([[0]])}
    _, stats = grpo_loss(logp, torch.tensor([[-0.5]]), batch, beta=1.0, clip_eps=None, loss_type="grpo",
                         turns_total=1, max_new_tokens=1, kl_estimator=estimator)
    assert stats["kl"] == pytest.approx(expected)


def test_the_trinity_preset_is_the_released_config_and_choices_are_checked(tmp_path):
    config = GRPOConfig(model="m", out=str(tmp_path), **PRESETS["trinity"])
    assert (config.advantage, config.train_turns, config.kl_estimator, config.beta, config.clip_eps) == (
        "turn", "tools_and_last", "k2", 0.001, 0.2)
    assert (config.lora_r, config.temperature, config.max_new_tokens, config.tasks_per_step) == (32, 0.6, 2048, 16)
    with pytest.raises(ConfigError, match="kl_estimator must be one of k3, k2, got 'k1'"):
        GRPOConfig(model="m", out=str(tmp_path), kl_estimator="k1")
