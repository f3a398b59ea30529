"""GRPO rollouts through worker processes and Ray actors: the same episodes, rewards and trained
turns as in-process envs, and a worker lost mid-rollout trains no turn twice."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _llm_fixtures import tiny_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.policies.base import Policy  # noqa: E402
from agemem_gym.training import grpo  # noqa: E402
from agemem_gym.training.grpo import GRPOConfig, collect_rollouts, train  # noqa: E402
from benchmarks.cli import app  # noqa: E402

# One fact, one question, two responses a turn: a few model turns per episode.
SMALL = {"num_facts": 1, "num_updates": 0, "num_deletes": 0, "small_talk": 0, "num_queried": 1,
         "num_distractors": 1, "distractor_sentences": 1, "prompt": "compact",
         "tools": ["Add_memory", "Retrieve_memory"], "max_steps_per_turn": 2}
SETTINGS = {"env_options": SMALL, "max_steps": 1, "group_size": 2, "tasks_per_step": 1,
            "max_new_tokens": 12, "learning_rate": 1e-3, "progress": False, "tensorboard": False,
            "threads": 1}
#: what differs between two runs of the same settings: the wall time
TIMINGS = ("cost/rollout_seconds", "cost/update_seconds")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def local_run(model_path, tmp_path_factory):
    """One GRPO step with in-process envs: its log and trained weights."""
    out = tmp_path_factory.mktemp("local") / "grpo"
    log = train(GRPOConfig(model=str(model_path), out=str(out), **SETTINGS))
    return log, _weights(out)


def _weights(out):
    return AutoModelForCausalLM.from_pretrained(out / "model").state_dict()


def _same_run(log, out, local_run):
    expected_log, expected_weights = local_run
    assert [{k: v for k, v in e.items() if k not in TIMINGS} for e in log] == \
        [{k: v for k, v in e.items() if k not in TIMINGS} for e in expected_log]
    weights = _weights(out)
    assert all(torch.equal(weights[name], expected_weights[name]) for name in expected_weights)


def _rollouts(model_path, workers, *, temperature=1.0, kill=None, slots=None):
    """One step's rollouts (rows, rewards) of 2 episodes of one task, the envs where ``workers``
    says; ``kill`` = n: SIGKILL slot 0's worker after the policy's n-th batch."""
    config = GRPOConfig(model=str(model_path), out="", workers=workers, temperature=temperature,
                        rollout_slots=slots, **SETTINGS)
    model, tokenizer = (AutoModelForCausalLM.from_pretrained(model_path),
                        AutoTokenizer.from_pretrained(model_path))
    policy = grpo._sampler(config, model.eval(), tokenizer)
    policy.seed = 7
    envs = grpo._envs(config, (1, 2, 3))
    try:
        sampler = policy if kill is None else _KillsAWorker(policy, envs.group, kill)
        rows, rewards, _ = collect_rollouts(envs, sampler, tokenizer, np.random.default_rng(3), 2, tasks=1)
    finally:
        envs.close()
    return [(r.episode, r.prompt_ids, r.completion_ids, r.old_logprobs) for r in rows], rewards.tolist()


class _KillsAWorker(Policy):
    """The sampler, plus a fault: slot 0's worker is killed after the ``at``-th batch, with both
    episodes half-way, so the step that follows finds it gone."""

    def __init__(self, inner, group, at):
        self.inner, self.group, self.at, self.batches = inner, group, at, 0

    def act(self, observation, info):
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations, infos):
        actions = self.inner.act_batch(observations, infos)
        self.batches += 1
        if self.batches == self.at:
            os.kill(self.group.pids()[0], signal.SIGKILL)
        return actions

    def last_usage(self):
        return self.inner.last_usage()


def _episode(rows, index):
    return [row for row in rows if row[0] == index]


def test_worker_processes_give_the_same_rollouts_as_local_envs(model_path):
    local_rows, local_rewards = _rollouts(model_path, "local")
    rows, rewards = _rollouts(model_path, "processes")
    assert {row[0] for row in local_rows} == {0, 1} and len(local_rows) >= 4
    assert rewards == local_rewards
    assert rows == local_rows  # the same turns: prompts, sampled tokens and their log-probs
    assert mp.active_children() == []  # the workers were stopped


def test_fewer_rollout_slots_queue_the_episodes_with_the_same_rows(model_path):
    # greedy: one slot plays the two episodes one after the other, in batches of one
    rows, rewards = _rollouts(model_path, "local", temperature=0.0)
    queued_rows, queued_rewards = _rollouts(model_path, "processes", temperature=0.0, slots=1)
    assert queued_rewards == rewards
    queued_rows, rows = (sorted(r, key=lambda row: row[0]) for r in (queued_rows, rows))
    assert [row[:3] for row in queued_rows] == [row[:3] for row in rows]  # episode, prompt, sampled ids
    for queued, row in zip(queued_rows, rows, strict=True):  # log-probs: a batch of one pads nothing
        np.testing.assert_allclose(queued[3], row[3], atol=1e-4)
    with pytest.raises(ConfigError, match="rollout_slots must be >= 1"):
        GRPOConfig(model="m", out="o", rollout_slots=0)


def test_a_worker_lost_mid_rollout_trains_no_turn_twice(model_path, caplog):
    # greedy, so the episode played again writes what it wrote the first time
    clean_rows, clean_rewards = _rollouts(model_path, "local", temperature=0.0)
    assert len(_episode(clean_rows, 0)) >= 3, "the kill must land mid-episode"
    with caplog.at_level(logging.WARNING, logger="agemem_gym.training.grpo"):
        rows, rewards = _rollouts(model_path, "processes", temperature=0.0, kill=2)
    assert [r.getMessage() for r in caplog.records] == \
        ["a rollout worker was lost; episode 0 of the step is played again"]
    assert rewards == clean_rewards
    for episode in (0, 1):  # the lost attempt's turns are gone; the replay's are there once
        assert [row[:3] for row in _episode(rows, episode)] == [row[:3] for row in _episode(clean_rows, episode)]
    assert len(rows) == len(clean_rows)


def test_train_command_with_worker_processes_trains_as_local_envs(model_path, local_run, tmp_path):
    env_args = [arg for key, value in SMALL.items() for arg in ("--env-arg", f"{key}={json.dumps(value)}")]
    result = CliRunner().invoke(app, [
        "train", "--env", "assistant", "--model", str(model_path), "--out", str(tmp_path),
        "--max-steps", "1", "--group-size", "2", "--tasks-per-step", "1", "--max-new-tokens", "12",
        "--learning-rate", "1e-3", "--no-progress", "--workers", "processes",
        "--grpo-arg", "tensorboard=false", "--grpo-arg", "threads=1", *env_args])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "grpo" / "config.json").read_text())["workers"] == "processes"
    log = [json.loads(line) for line in (tmp_path / "grpo" / "log.jsonl").read_text().splitlines()]
    _same_run(log, tmp_path / "grpo", local_run)
    assert mp.active_children() == []


def test_worker_processes_stop_at_a_curriculum_phase_change_and_on_an_error(model_path, tmp_path, monkeypatch):
    real, alive = grpo._update, []

    def update_then_fail(*args, **kwargs):  # the fault: the second step's update raises
        alive.append({process.pid for process in mp.active_children()})
        if len(alive) == 2:
            raise RuntimeError("simulated fault in the update")
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo, "_update", update_then_fail)
    config = GRPOConfig(model=str(model_path), out=str(tmp_path), workers="processes",
                        curriculum=((3,), (1, 2, 3)), **{**SETTINGS, "max_steps": 2})
    with pytest.raises(RuntimeError, match="simulated fault"):
        train(config)
    assert [len(pids) for pids in alive] == [2, 2]
    assert not alive[0] & alive[1]  # the second phase has new workers: the first ones stopped
    assert mp.active_children() == []


def test_ray_actors_train_as_local_envs(model_path, local_run, tmp_path):
    ray = pytest.importorskip("ray")
    local_rows, local_rewards = _rollouts(model_path, "local")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert _rollouts(model_path, "ray") == (local_rows, local_rewards)
        log = train(GRPOConfig(model=str(model_path), out=str(tmp_path / "grpo"), workers="ray", **SETTINGS))
        _same_run(log, tmp_path / "grpo", local_run)
        assert _cpus_freed(ray)  # every actor was stopped
    finally:
        ray.shutdown()


def _cpus_freed(ray, seconds=20.0):
    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    return ray.available_resources().get("CPU", 0) == 2


def test_bad_workers_value_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="workers must be one of 'local', 'processes', 'ray', got 'thread'"):
        GRPOConfig(model="m", out="o", workers="thread")
    with pytest.raises(ConfigError, match="ray_address is only used with workers='ray'"):
        GRPOConfig(model="m", out="o", ray_address="auto")
    result = CliRunner().invoke(app, ["train", "--env", "assistant", "--model", "m", "--out", str(tmp_path),
                                      "--workers", "rays"])
    assert result.exit_code == 2
    assert "workers must be one of 'local', 'processes', 'ray', got 'rays' (str). Did you mean 'ray'?" in result.output
