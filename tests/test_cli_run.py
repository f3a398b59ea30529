"""``agemem-bench run`` as a new user meets it: folder names, Ctrl-C, a missing tiny model, threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from benchmarks import run_naming
from benchmarks.cli import app
from benchmarks.run_naming import default_run_folder

SMALL = ["--env-arg", "num_facts=1", "--env-arg", "num_updates=0", "--env-arg", "num_deletes=0",
         "--env-arg", "num_distractors=1", "--env-arg", "num_queried=1"]


def test_default_run_folder_examples():
    import doctest

    assert doctest.testmod(run_naming).failed == 0


def test_default_names_tell_differently_configured_runs_apart():
    names = {
        default_run_folder("babyai", "oracle"),
        default_run_folder("babyai", "oracle", stages=(3,)),
        default_run_folder("babyai", "oracle", env_options={"data": "a/agentboard_babyai"}),
        default_run_folder("babyai", "oracle", env_options={"data": "b/other_babyai"}),
        default_run_folder("babyai", "oracle", env_options={"num_distractors": 2}),
        default_run_folder("babyai", "oracle", env_options={"num_distractors": 3}),
        default_run_folder("babyai", "oracle", seed=1),
        default_run_folder("babyai", "agemem", agent_options={"model": "m/one"}),
        default_run_folder("babyai", "agemem", agent_options={"model": "m/two"}),
    }
    assert len(names) == 9
    # the same settings always give the same folder, so the same command resumes it
    again = default_run_folder("babyai", "oracle", env_options={"num_distractors": 2})
    assert again == default_run_folder("babyai", "oracle", env_options={"num_distractors": 2})
    assert default_run_folder("x", "y", agent_options={"model": "http://h:1/v1 weird"}).name == "x-y-v1-weird"


def test_cli_default_folders_do_not_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for stages in ("1,2,3", "3"):
        result = CliRunner().invoke(app, ["run", "--agent", "noop", "--env", "assistant", "--episodes", "1",
                                          "--stages", stages, "--no-progress", *SMALL])
        assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir())
    # the env options (SMALL) make a hash; the stages make a readable part before it
    assert len(folders) == 2 and folders[1] == folders[0].replace("assistant-noop-", "assistant-noop-s3-")
    assert all((tmp_path / "results" / "runs" / f / "episodes.jsonl").exists() for f in folders)


def test_ctrl_c_keeps_finished_episodes_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--agent", "oracle", "--env", "assistant", "--episodes", "500", "--out", str(out),
            "--no-progress", *SMALL]
    log = out / "episodes.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or not log.read_bytes().count(b"\n")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert f"interrupted: finished episodes are kept in {out}/episodes.jsonl" in stderr
    assert "run the same command to resume:" in stderr
    assert "agemem-bench " + " ".join(args[:4]) in stderr and f"--out {out}" in stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert 1 <= len(records) < 500


def test_model_tiny_without_a_folder_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--agent", "agemem", "--env", "assistant", "--model", "tiny"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert "no model folder 'tiny'; build the tiny model first: agemem-bench tiny-model --out tiny" in text


def test_threads_option(tmp_path, monkeypatch):
    monkeypatch.setenv("AGEMEM_THREADS", "3")  # restored after the test, whatever the CLI sets
    bad = CliRunner().invoke(app, ["run", "--agent", "noop", "--env", "assistant", "--threads", "0"])
    assert bad.exit_code == 2 and "must be >= 1, got 0" in bad.output
    ok = CliRunner().invoke(app, ["run", "--agent", "noop", "--env", "assistant", "--episodes", "1", "--threads",
                                  "1", "--out", str(tmp_path / "r"), "--no-progress", *SMALL])
    assert ok.exit_code == 0, ok.output
    assert os.environ["AGEMEM_THREADS"] == "1"  # every model the run builds reads it
    for command in ("run", "train"):
        help_text = " ".join(CliRunner().invoke(app, [command, "--help"]).output.replace("│", " ").split())
        assert "--threads" in help_text and "$AGEMEM_THREADS" in help_text


def test_overwrite_starts_the_folder_afresh(tmp_path):
    from benchmarks.runner import RunConfig

    if "overwrite" not in RunConfig.__dataclass_fields__:
        pytest.skip("RunConfig has no overwrite field in this checkout")
    base = ["run", "--agent", "noop", "--env", "assistant", "--episodes", "1", "--out", str(tmp_path / "r"),
            "--no-progress", *SMALL]
    assert CliRunner().invoke(app, base).exit_code == 0
    changed = [*base, "--env-arg", "small_talk=0"]
    refused = CliRunner().invoke(app, changed)
    assert refused.exit_code == 2
    again = CliRunner().invoke(app, [*changed, "--overwrite"])
    assert again.exit_code == 0, again.output
    config = (Path(tmp_path / "r") / "config.yaml").read_text()
    assert "small_talk: 0" in config


def test_key_value_options_read_numbers_yaml_leaves_as_text():
    from benchmarks.cli import _parse_options

    options = _parse_options(["learning_rate=2e-5", "steps=1E3", "name=x", "n=3", "flag=true", "xs=[1, 2]"], "--x")
    assert options == {"learning_rate": 2e-5, "steps": 1000.0, "name": "x", "n": 3, "flag": True, "xs": [1, 2]}
    with pytest.raises(typer.BadParameter, match="KEY=VALUE"):
        _parse_options(["no-equals-sign"], "--x")
