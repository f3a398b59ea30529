"""``agemem-bench train`` end to end, and the warm-start teacher."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from agemem_gym import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.policies import MemoryRandomPolicy
from agemem_gym.rollout import play_episodes

pytest.importorskip("torch")
pytest.importorskip("transformers")

from benchmarks.cli import app  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run_model(tmp_path_factory):
    """The model ``--model tiny --sft`` builds (train_run's own code), built once per session;
    a run folder that already holds it skips the build, as a resumed run does."""
    from agemem_gym.training.grpo import GRPOConfig
    from agemem_gym.training.sft import SFTConfig
    from benchmarks.train_run import (
        TINY_ASSISTANT,
        TINY_ENV_DEFAULTS,
        TINY_TEACHER,
        TrainRun,
        build_run_tiny_model,
    )

    env_options = {**TINY_ENV_DEFAULTS, **TINY_ASSISTANT}
    grpo = GRPOConfig(model="tiny", out="", env="assistant", env_options=env_options)
    sft = SFTConfig(model="", out="", env="assistant", env_options=env_options, teacher_options=TINY_TEACHER)
    path = tmp_path_factory.mktemp("train-tiny") / "tiny"
    return build_run_tiny_model(TrainRun(grpo=grpo, out=path.parent, tiny=True, sft=sft), path)


def _with_tiny(out, tiny_run_model):
    shutil.copytree(tiny_run_model, out / "tiny")
    return out


SMOKE = ["train", "--env", "assistant", "--model", "tiny", "--max-steps", "2", "--group-size", "4"]


def _check_smoke(out):
    lines = [json.loads(line) for line in (out / "grpo" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in lines] == [1, 2]
    assert all(math.isfinite(entry["train/loss"]) for entry in lines)
    assert (out / "grpo" / "model" / "config.json").exists() and (out / "curve.csv").exists()


def test_smoke_command_logs_a_finite_loss_per_step(tmp_path, tiny_run_model):
    """The README's smoke command on one task per step (the full command is the slow test below)."""
    out = _with_tiny(tmp_path / "run", tiny_run_model)
    result = CliRunner().invoke(app, [*SMOKE, "--tasks-per-step", "1", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    _check_smoke(out)


@pytest.mark.slow
def test_issue_smoke_command_logs_a_finite_loss_per_step(tmp_path):
    """The README's smoke command as written, building the tiny model itself."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [*SMOKE, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    _check_smoke(out)
    assert (out / "tiny" / "config.json").exists()


def test_sft_then_grpo_with_held_out_eval(tmp_path, tiny_run_model):
    out = _with_tiny(tmp_path / "run", tiny_run_model)
    args = ["train", "--env", "assistant", "--model", "tiny", "--sft", "--sft-arg", "episodes=8",
            "--sft-arg", "epochs=1", "--max-steps", "1", "--group-size", "2", "--tasks-per-step", "1",
            "--eval-episodes", "2", "--reward-mode", "task", "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "eval.json").read_text())
    assert set(summary["before"]) >= {"score", "reward"} and set(summary["after"]) >= {"score", "reward"}
    assert (out / "sft" / "agemem_sft.json").exists()
    assert (out / "eval-before" / "episodes.jsonl").read_text().count("\n") == 2
    settings = json.loads((out / "config.json").read_text())
    assert settings["tiny_options"]["num_layers"] == 3 and settings["sft"]["teacher_options"]["answer"] == "quote"
    assert settings["train_split"] == "assistant: generated from seeds 100..2**31-2 (evaluation: 0..99)"
    report = CliRunner().invoke(app, ["train-report", str(tmp_path)])
    assert report.exit_code == 0, report.output
    table = pd.read_csv(tmp_path / "summary.csv")
    assert list(table["run"]) == ["run", "mean"] and list(table["reward_mode"]) == ["task", "task"]
    assert table["gain_score"][0] == pytest.approx(summary["after"]["score"] - summary["before"]["score"])
    assert (tmp_path / "curves.png").stat().st_size > 0
    # the command is recorded and a second run resumes: nothing is retrained
    mtime = (out / "grpo" / "model" / "model.safetensors").stat().st_mtime
    assert CliRunner().invoke(app, args).exit_code == 0
    assert (out / "grpo" / "model" / "model.safetensors").stat().st_mtime == mtime


def test_train_report_without_finished_runs_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["train-report", str(tmp_path)])
    assert result.exit_code == 2 and "no finished training run" in result.output


def test_bad_training_option_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--env", "assistant", "--model", "tiny", "--group-size", "1",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "group_size must be >= 2" in result.output


def _tool_use(policy, episodes=40):
    env = AgeMemEnv("assistant", privileged_info=True, num_facts=1, num_updates=0, num_deletes=0,
                    small_talk=0, num_distractors=1, num_queried=1)
    starts = [{"seed": i} for i in range(episodes)]
    done = sorted(play_episodes([env], policy, starts), key=lambda d: d.index)
    env.close()
    return done


def test_memory_random_policy_flips_coins_per_episode_and_only_copies_what_it_sees():
    done = _tool_use(MemoryRandomPolicy(p_store=0.5, p_retrieve=0.5))
    stored = [d.info["tool_calls"].get("Add_memory", 0) for d in done]
    retrieved = [d.info["tool_calls"].get("Retrieve_memory", 0) for d in done]
    assert 0 < sum(stored) < len(done) and 0 < sum(retrieved) < len(done)
    for d, s, r in zip(done, stored, retrieved, strict=True):
        assert d.info["metrics"]["score"] == float(s == 1 and r == 1)  # right only when it was visible
    again = _tool_use(MemoryRandomPolicy(p_store=0.5, p_retrieve=0.5))
    assert [d.info["tool_calls"] for d in again] == [d.info["tool_calls"] for d in done]
    assert all(d.info["counts"].get("format_errors", 0) == 0 for d in done)


def test_memory_random_policy_extremes_and_bad_probability():
    assert all(d.info["tool_calls"].get("Add_memory", 0) == 0 for d in _tool_use(MemoryRandomPolicy(0.0, 1.0), 5))
    assert all(d.info["metrics"]["score"] == 1.0 for d in _tool_use(MemoryRandomPolicy(1.0, 1.0), 5))
    with pytest.raises(ConfigError, match=r"p_store must be in \[0, 1\], got 1.5"):
        MemoryRandomPolicy(p_store=1.5)


def test_memory_random_quote_answers_with_the_retrieved_line_word_for_word():
    env = AgeMemEnv("assistant", privileged_info=True, num_facts=1, num_updates=0, num_deletes=0,
                    small_talk=0, num_distractors=1, num_queried=1)
    told: dict[int, str] = {}
    answered: dict[int, str] = {}

    def keep(i, observation, info, action, usage):
        if info["stage"] == 1 and observation[-1]["role"] == "user":
            told[i] = observation[-1]["content"]
        answered[i] = action

    policy = MemoryRandomPolicy(1.0, 1.0, top_k=1, answer="quote")
    done = list(play_episodes([env], policy, [{"seed": i} for i in range(5)], on_step=keep))
    env.close()
    for d in done:
        assert d.info["metrics"]["score"] == 1.0
        assert answered[d.index] == f"<think></think><answer>{told[d.index]}</answer>"
    with pytest.raises(ConfigError, match="answer must be 'value' or 'quote'"):
        MemoryRandomPolicy(answer="sentence")


@pytest.mark.slow
def test_accelerate_launch_with_two_cpu_processes(tmp_path):
    """Data parallel on CPU (gloo): every process trains, only the main one builds, evaluates and writes."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "-m", "benchmarks.cli", "train", "--env", "assistant", "--model", "tiny", "--sft",
               "--sft-arg", "episodes=8", "--sft-arg", "epochs=1", "--max-steps", "2", "--group-size", "2",
               "--tasks-per-step", "1", "--eval-episodes", "2", "--out", str(out), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "grpo" / "log.jsonl").read_text().splitlines()]
    assert [entry["train/processes"] for entry in lines] == [2.0, 2.0]
    assert all(math.isfinite(entry["train/loss"]) for entry in lines)
    assert set(json.loads((out / "eval.json").read_text())) >= {"before", "after", "gain"}
