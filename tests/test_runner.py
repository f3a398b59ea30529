import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from agemem_gym import ConfigError
from benchmarks.cli import app
from benchmarks.runner import RunConfig, run
from benchmarks.traces import read_trace

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2, "distractor_sentences": 2,
         "num_queried": 1}


def test_cli_run_writes_records_summary_and_provenance(tmp_path):
    result = CliRunner().invoke(app, ["run", "--agent", "oracle", "--env", "assistant", "--episodes", "3",
                                      "--out", str(tmp_path), "--no-progress", "--env-arg", "num_facts=3",
                                      "--env-arg", "num_distractors=2"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert [r["episode_id"] for r in records] == ["assistant-00000", "assistant-00001", "assistant-00002"]
    first = records[0]
    assert first["env_id"] == "AgeMem/Assistant-v0" and first["benchmark"] == "assistant"
    assert first["agent"] == "oracle" and first["seed"] == 0 and first["stages"] == [1, 2, 3]
    assert first["protocol"] == "paper" and first["encoder"] == "hashing" and first["commit"]
    assert first["gold_answers"] and first["question"].endswith("?")
    assert first["rounds"] > 0 and first["engine_steps"] == 0 and "steps" not in first
    assert first["tool_calls_by_source"] == {"agent": first["tool_calls"]}
    assert sum(sum(c.values()) for c in first["tool_calls_by_stage"].values()) == sum(first["tool_calls"].values())
    trace = read_trace(tmp_path, "assistant-00000")
    assert len(trace) == first["trace_events"] and trace[0]["kind"] == "stage_start"
    assert {e["kind"] for e in trace} >= {"user_turn", "response", "tool_call", "memory_added", "answer"}
    assert first["metrics"]["score"] == 1.0 and first["tokens"]["prompt"] > first["tokens"]["completion"] > 0
    assert set(first["reward"]) >= {"total", "task", "context/compression", "memory/storage", "penalty/tokens"}
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["run"]["env_options"] == {"num_facts": 3, "num_distractors": 2}
    assert "gymnasium" in config["provenance"]["packages"] and config["provenance"]["git_commit"]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.loc[0, "episodes"] == 3 and summary.loc[0, "metrics.score"] == 1.0
    assert summary.loc[0, "reward.total"] == pytest.approx(sum(r["reward"]["total"] for r in records) / 3)


def test_cli_reports_bad_input_clearly(tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(app, ["run", "--agent", "orcale", "--env", "assistant", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "unknown agent 'orcale'. Did you mean 'oracle'?" in unknown.output
    bad_arg = runner.invoke(app, ["run", "--agent", "noop", "--env", "assistant", "--env-arg", "oops"])
    assert bad_arg.exit_code == 2 and "expected KEY=VALUE" in bad_arg.output
    listing = runner.invoke(app, ["list"])
    assert "AgeMem/Assistant-v0" in listing.output and "oracle" in listing.output


def test_resume_skips_finished_and_refuses_other_settings(tmp_path):
    config = RunConfig(env="assistant", agent="noop", out=tmp_path, episodes=2, env_options=SMALL, progress=False)
    run(config)
    config.episodes = 4
    records = run(config)
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="holds a run with different agent"):
        run(RunConfig(env="assistant", agent="oracle", out=tmp_path, episodes=4, env_options=SMALL, progress=False))


@pytest.mark.parametrize("agent", ["oracle", "memory-random"])
def test_concurrent_run_matches_sequential(tmp_path, agent):
    def play(out, concurrency):
        records = run(RunConfig(env="assistant", agent=agent, out=tmp_path / out, episodes=4,
                                env_options=SMALL, concurrency=concurrency, progress=False))
        return {r["index"]: (r["answer"], r["reward"], r["tool_calls"], r["ltm"], r["tokens"])
                for r in records}

    sequential, concurrent = play("a", 1), play("b", 3)
    assert sorted(concurrent) == [0, 1, 2, 3]
    assert concurrent == sequential


def test_killed_run_resumes_to_exactly_n_unique_episodes(tmp_path):
    n = 30
    command = [sys.executable, "-m", "benchmarks.cli", "run", "--agent", "oracle", "--env", "assistant",
               "--episodes", str(n), "--out", str(tmp_path), "--no-progress"]
    log = tmp_path / "episodes.jsonl"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or len(log.read_bytes().splitlines()) < 3):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(log.read_bytes().splitlines())
    assert 3 <= finished < n, "the kill landed mid-run"
    with log.open("a") as f:  # what a kill during a write leaves behind
        f.write('{"episode_id": "assistant-000')
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = [json.loads(line)["episode_id"] for line in log.read_text().splitlines()]
    assert len(ids) == n and len(set(ids)) == n


def test_cli_tiny_model_builds_a_loadable_folder(tmp_path):
    pytest.importorskip("transformers")
    result = CliRunner().invoke(app, ["tiny-model", "--out", str(tmp_path / "tiny")])
    assert result.exit_code == 0, result.output
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tiny")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny")
    assert model.config.model_type == "qwen2" and tokenizer.chat_template
    bad = CliRunner().invoke(app, ["tiny-model", "--out", str(tmp_path / "x"), "--arch", "bogus"])
    assert bad.exit_code == 2 and "arch must be one of ['qwen2', 'qwen3'], got 'bogus'" in bad.output
