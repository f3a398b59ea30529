import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from agemem_gym.errors import ConfigError, DataNotFoundError, UnknownNameError
from benchmarks.cli import app
from benchmarks.grid import GridConfig, load_grid, run_grid

REPO = Path(__file__).resolve().parents[1]
SMALL = {"num_facts": 2, "num_updates": 1, "num_deletes": 0, "num_distractors": 1, "distractor_sentences": 1,
         "num_queried": 1}


def _grid(tmp_path, **overrides):
    data = {"name": "t", "out": str(tmp_path / "grid"), "episodes": 2, "seeds": [0, 1],
            "methods": [{"name": "Oracle", "agent": "oracle"}, {"name": "Noop", "agent": "noop"}],
            "benchmarks": [{"name": "assistant", "env_options": SMALL}]}
    return GridConfig.model_validate({**data, **overrides})


def _ids(cell_out):
    return [json.loads(line)["episode_id"] for line in (cell_out / "episodes.jsonl").read_text().splitlines()]


def test_every_paper_config_names_the_papers_methods():
    paper = pd.read_csv(REPO / "benchmarks" / "paper_numbers.csv")
    for table in ("table2", "mq", "prompt_tokens", "tool_usage", "reward_ablation", "component_ablation"):
        grid = load_grid(REPO / "configs" / f"{table}.yaml")
        ours = {(m.name, m.resolved_backbone) for m in grid.methods}
        theirs = set(paper.query("table == @table")[["method", "backbone"]].itertuples(index=False, name=None))
        assert ours == theirs, table
        benchmarks = set(paper.query("table == @table and benchmark != 'avg'")["benchmark"])
        assert {b.name for b in grid.benchmarks} == benchmarks, table
    table2 = load_grid(REPO / "configs" / "table2.yaml")
    cells = table2.cells()
    assert len(cells) == 14 * 5 * 3 and len({c.out for c in cells}) == len(cells)
    config = cells[-1].run_config()
    assert (config.agent, config.agent_options["model"], config.seed) == ("agemem", "checkpoints/agemem-qwen3-4b", 2)
    assert config.env_options["judge"]["model"] == "qwen-max" and config.env == "hotpotqa"
    assert str(cells[-1].out).endswith("grid-table2/AgeMem-Qwen3-4B/hotpotqa/seed2")


def test_grid_errors_say_what_to_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match="grid config .*nope.yaml not found"):
        load_grid(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "methods": [], "benchmarks": ["assistant"], "epsiodes": 3}))
    with pytest.raises(ConfigError, match=r"methods: List should have at least 1 item.*epsiodes: Extra inputs"):
        load_grid(bad)
    with pytest.raises(ValueError, match="two cells share the folder"):
        _grid(tmp_path, methods=[{"name": "A", "agent": "oracle"}, {"name": "A", "agent": "noop"}])
    with pytest.raises(ValueError, match=r"method 'A' names benchmarks \['hotpot'\] that the grid does not list"):
        _grid(tmp_path, methods=[{"name": "A", "agent": "oracle", "benchmarks": ["hotpot"]}])
    with pytest.raises(UnknownNameError, match="unknown agent 'oracel'. Did you mean 'oracle'"):
        run_grid(_grid(tmp_path, methods=[{"name": "A", "agent": "oracel"}]), progress=False)
    assert not (tmp_path / "grid").exists(), "nothing runs before every agent is known"


def test_a_method_can_run_on_some_benchmarks_only():
    local = load_grid(REPO / "configs" / "local.yaml")
    assert [(c.method.name, c.benchmark.name) for c in local.cells() if c.method.name == "noop"] == [
        ("noop", "assistant"), ("noop", "hotpotqa")]
    assert {c.benchmark.name for c in local.cells() if c.method.name == "oracle"} == {
        b.name for b in local.benchmarks}


def test_grid_runs_each_cell_once_and_names_it(tmp_path):
    grid = _grid(tmp_path)
    cells = run_grid(grid, progress=False)
    assert [c.label for c in cells] == ["Oracle on assistant, seed 0", "Oracle on assistant, seed 1",
                                        "Noop on assistant, seed 0", "Noop on assistant, seed 1"]
    for cell in cells:
        state = yaml.safe_load((cell.out / "cell.yaml").read_text())
        assert state["status"] == "done" and state["method"] == cell.method.name and state["finished"] == 2
        config = yaml.safe_load((cell.out / "config.yaml").read_text())
        assert config["run"]["seed"] == cell.seed and config["run"]["agent"] == cell.method.agent
    before = {c.out: (c.out / "episodes.jsonl").read_bytes() for c in cells}
    mtimes = {c.out: (c.out / "episodes.jsonl").stat().st_mtime_ns for c in cells}
    seen = []
    run_grid(grid, progress=False, on_cell=seen.append)  # all done: nothing runs again
    assert len(seen) == 4
    assert all((c.out / "episodes.jsonl").stat().st_mtime_ns == mtimes[c.out] for c in cells)
    more = run_grid(_grid(tmp_path, episodes=3), progress=False)  # a longer grid extends each cell
    for cell in more:
        assert _ids(cell.out) == [f"assistant-{i:05d}" for i in range(3)]
        assert (cell.out / "episodes.jsonl").read_bytes().startswith(before[cell.out])
    assert yaml.safe_load((tmp_path / "grid" / "grid.yaml").read_text())["grid"]["episodes"] == 3
    changed = _grid(tmp_path, episodes=3, benchmarks=[{"name": "assistant", "env_options": {**SMALL, "num_facts": 3}}])
    with pytest.raises(ConfigError, match="holds a run with different env_options"):
        run_grid(changed, progress=False)  # a done cell is not reused under other settings
    failed = yaml.safe_load((cells[0].out / "cell.yaml").read_text())
    assert failed["status"] == "failed" and "holds a run with different env_options" in failed["error"]


def test_killed_grid_resumes_with_each_cell_exactly_once(tmp_path):
    n = 60  # noop episodes take milliseconds: enough of them that the kill lands mid-cell
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({
        "name": "kill", "out": str(tmp_path / "out"), "episodes": n,
        "methods": [{"name": "Oracle", "agent": "oracle"}, {"name": "Noop", "agent": "noop"}],
        "benchmarks": [{"name": "assistant", "env_options": SMALL}]}))
    command = [sys.executable, "-m", "benchmarks.cli", "run", "--config", str(config), "--no-progress"]
    first = tmp_path / "out" / "Oracle" / "assistant" / "seed0"
    second = tmp_path / "out" / "Noop" / "assistant" / "seed0"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    log = second / "episodes.jsonl"
    while time.monotonic() < deadline and (not log.exists() or len(log.read_bytes().splitlines()) < 2):
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = len(log.read_bytes().splitlines())
    assert 2 <= killed_at < n, "the kill landed inside the second cell"
    assert yaml.safe_load((second / "cell.yaml").read_text())["status"] == "running"
    done_first = (first / "episodes.jsonl").read_bytes()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert (first / "episodes.jsonl").read_bytes() == done_first, "a finished cell ran again"
    for cell in (first, second):
        ids = _ids(cell)
        assert ids == [f"assistant-{i:05d}" for i in range(n)]
        assert yaml.safe_load((cell / "cell.yaml").read_text())["status"] == "done"


def test_cli_run_config_runs_a_grid_and_refuses_a_bad_one(tmp_path):
    config = tmp_path / "g.yaml"
    config.write_text(yaml.safe_dump({"name": "cli", "out": str(tmp_path / "o"), "episodes": 1,
                                      "methods": [{"name": "Oracle", "agent": "oracle"}],
                                      "benchmarks": [{"name": "assistant", "env_options": SMALL}]}))
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "grid cli: 1 cells done" in result.output
    assert len(_ids(tmp_path / "o" / "Oracle" / "assistant" / "seed0")) == 1
    config.write_text("name: cli\nmethods: oops\n")
    bad = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert bad.exit_code == 2 and "methods: Input should be a valid list" in bad.output
    neither = CliRunner().invoke(app, ["run", "--agent", "oracle"])
    assert neither.exit_code == 2 and "--config" in neither.output
