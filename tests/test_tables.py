import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from agemem_gym.errors import DataNotFoundError, UnknownNameError
from benchmarks.cli import app
from benchmarks.grid import GridConfig, run_grid
from benchmarks.run_folders import episode_frame, find_runs
from benchmarks.tables import build_tables, cell_stats, paper_numbers, render

REPO = Path(__file__).resolve().parents[1]
PAPER_MD = REPO.parent / "shared" / "PAPER.md"
SMALL = {"num_facts": 2, "num_updates": 1, "num_deletes": 0, "num_distractors": 1, "distractor_sentences": 1,
         "num_queried": 1}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    config = GridConfig.model_validate({
        "name": "t", "out": str(out), "episodes": 3, "seeds": [0, 1],
        "methods": [{"name": "AgeMem-noRL", "agent": "oracle", "backbone": "Qwen2.5-7B"},
                    {"name": "noop", "agent": "noop"}],
        "benchmarks": [{"name": "assistant", "env_options": SMALL}]})
    run_grid(config, progress=False)
    return out


def test_paper_numbers_match_papers_table2():
    if not PAPER_MD.exists():
        pytest.skip(f"the paper's facts are not beside this checkout ({PAPER_MD})")
    rows = re.findall(r"^\| (Qwen[\w.-]+) \| ([\w-]+) \| ([\d.| ]+)\|$", PAPER_MD.read_text(), re.M)
    assert len(rows) == 14
    ours = paper_numbers().query("table == 'table2'")
    for backbone, method, values in rows:  # noqa: B007 (read by query's @names)
        numbers = [float(v) for v in values.split("|")]
        got = ours.query("backbone == @backbone and method == @method").set_index("benchmark")["value"]
        assert [got[b] for b in ("alfworld", "sciworld", "pddl", "babyai", "hotpotqa", "avg")] == numbers
    assert len(paper_numbers()) == 152 and not paper_numbers()["value"].isna().any()


def test_cell_stats_mean_over_seeds_spread_and_ci():
    stats = cell_stats(pd.Series([0.0, 1.0, 1.0, 1.0, np.nan]), pd.Series([0, 0, 1, 1, 1]))
    assert (stats["n"], stats["seeds"], stats["mean"]) == (4, 2, 0.75)
    assert stats["seed_sd"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert stats["sd"] == pytest.approx(0.5)
    assert 0.5 <= stats["ci_low"] < 0.75 < stats["ci_high"] == 1.0
    one = cell_stats(pd.Series([1.0, 0.0]), pd.Series([0, 0]))
    assert np.isnan(one["seed_sd"]) and one["ci_low"] == 0.0 and one["ci_high"] == 1.0
    empty = cell_stats(pd.Series([np.nan]), pd.Series([0]))
    assert empty["n"] == 0 and np.isnan(empty["mean"])


def test_table2_names_provenance_and_puts_the_paper_beside(grid):
    tables = build_tables(find_runs([grid]), paper=True)
    table2 = tables["table2"]
    ours = table2.query("method == 'AgeMem-noRL' and backbone == 'Qwen2.5-7B' and benchmark == 'assistant'").iloc[0]
    assert (ours["mean"], ours["n"], ours["seeds"], ours["protocol"]) == (100.0, 6, 2, "paper")
    assert ours["judge"] and ours["commit"] != "-" and np.isnan(ours["paper"])
    theirs = table2.query("method == 'AgeMem-noRL' and backbone == 'Qwen2.5-7B' and benchmark == 'hotpotqa'").iloc[0]
    assert theirs["paper"] == 45.36 and np.isnan(theirs["mean"]) and np.isnan(theirs["diff"])
    noop = table2.query("method == 'noop'").iloc[0]
    assert noop["mean"] == 0.0 and noop["backbone"] == "-"
    wide = tables["table2_wide"].set_index(["method", "backbone"])
    assert wide.loc[("AgeMem-noRL", "Qwen2.5-7B"), "hotpotqa paper"] == 45.36
    assert np.isnan(wide.loc[("AgeMem-noRL", "Qwen2.5-7B"), "hotpotqa"])
    assert np.isnan(wide.loc[("AgeMem-noRL", "Qwen2.5-7B"), "Avg"]), "an average over missing cells is missing"
    assert wide.loc[("AgeMem-noRL", "Qwen2.5-7B"), "Avg paper"] == 33.43
    md = render({"table2_wide": tables["table2_wide"]}, "md")
    assert ("| AgeMem-noRL | Qwen2.5-7B | - | 37.9 | - | 28.67 | - | 8.87 | - | 46.34 | - | 45.36 | 100 | - | 33.43 |"
            in md)


def test_missing_cells_are_missing_not_zero_in_every_format(grid):
    tables = build_tables(find_runs([grid]), paper=True, names=["table2"])
    md = render(tables, "md")
    row = next(line for line in md.splitlines() if line.startswith("| AgeMem | Qwen3-4B | babyai |"))
    assert "| - |" in row and "72.56" in row and "| 0 |" not in row
    csv = render(tables, "csv")
    frame = pd.read_csv(__import__("io").StringIO(csv))
    cell = frame.query("method == 'AgeMem' and backbone == 'Qwen3-4B' and benchmark == 'babyai'").iloc[0]
    assert np.isnan(cell["mean"]) and cell["paper"] == 72.56
    latex = render(tables, "latex")
    assert r"\begin{tabular}" in latex and "AgeMem-noRL" in latex and r"Qwen2.5-7B" in latex
    with pytest.raises(UnknownNameError, match="unknown table 'tabel2'. Did you mean 'table2'"):
        build_tables(find_runs([grid]), names=["tabel2"])


def test_tool_usage_cost_and_without_paper(grid):
    tables = build_tables(find_runs([grid]))
    assert "paper" not in tables["table2"].columns and "tool_usage" not in tables, "no HotpotQA runs"
    cost = tables["cost"].set_index("method")
    assert set(cost.index) == {"AgeMem-noRL", "noop"} and (cost["n"] == 6).all()
    for role in ("agent", "controller", "judge", "summarizer"):
        assert f"calls/{role}" in cost.columns
    assert cost.loc["AgeMem-noRL", "seconds/episode"] > 0
    frame = episode_frame(find_runs([grid]))
    expected = frame[frame["method"] == "AgeMem-noRL"]["tokens.prompt"].mean()
    assert expected > 0 and cost.loc["AgeMem-noRL", "model"] == "-"


def test_categories_break_a_benchmark_down(grid, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(grid / "noop" / "assistant" / "seed0", copy)
    log = copy / "episodes.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for i, record in enumerate(records):  # as a benchmark with categories writes them
        record["category"] = "pick" if i < 2 else "clean"
        record["metrics"]["score"] = 1.0 if i == 0 else 0.0
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    categories = build_tables(find_runs([copy]))["categories"].set_index("category")
    assert categories.loc["pick", "n"] == 2 and categories.loc["pick", "mean"] == 50.0
    assert categories.loc["clean", "mean"] == 0.0


def test_cli_table_formats_and_errors(grid, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["table", str(grid), "--paper", "--only", "table2"])
    assert result.exit_code == 0, result.output
    assert "### Table 2 (as printed in the paper)" in result.output and "45.36" in result.output
    out = tmp_path / "t.csv"
    assert runner.invoke(app, ["table", str(grid), "--format", "csv", "--out", str(out)]).exit_code == 0
    assert {"table", "method", "ci_low", "commit"} <= set(pd.read_csv(out).columns)
    bad = runner.invoke(app, ["table", str(grid), "--format", "html"])
    assert bad.exit_code == 2 and "format must be md, csv or latex, got 'html'" in bad.output
    missing = runner.invoke(app, ["table", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no run folder at" in missing.output
    with pytest.raises(DataNotFoundError, match="no episodes.jsonl"):
        find_runs([tmp_path / "t.csv"])


def test_hotpotqa_tables_and_ablation_rows(shared_data, tmp_path):
    data = shared_data / "hotpotqa" / "hotpot_dev_distractor_v1_first103.json"
    run_grid(GridConfig.model_validate({
        "name": "h", "out": str(tmp_path), "episodes": 2,
        "methods": [{"name": "AgeMem-LTM-noRL", "agent": "oracle", "backbone": "Qwen2.5-7B"},
                    {"name": "oracle", "agent": "oracle"}],
        "benchmarks": [{"name": "hotpotqa", "data": str(data)}]}), progress=False)
    tables = build_tables(find_runs([tmp_path]), paper=True)
    ablation = tables["component_ablation"].dropna(subset=["mean"])
    assert list(ablation["method"]) == ["AgeMem-LTM-noRL"], "only the paper's ablation rows"
    row = ablation.iloc[0]
    assert (row["mean"], row["paper"], row["paper_label"]) == (100.0, 45.76, "+LTM tools (no RL)")
    assert row["diff"] == pytest.approx(100.0 - 45.76)
    tools = tables["tool_usage"].dropna(subset=["mean"]).set_index(["method", "metric"])["mean"]
    frame = episode_frame(find_runs([tmp_path]))
    adds = frame[frame["method"] == "oracle"]["tool_calls.Add_memory"].mean()
    assert tools[("oracle", "Add_memory")] == adds > 0
    assert tools[("oracle", "total")] == pytest.approx(
        sum(tools[("oracle", t)] for t in ("Add_memory", "Update_memory", "Delete_memory", "Retrieve_memory",
                                           "Summary_context", "Filter_context")))
    tokens = tables["prompt_tokens"].dropna(subset=["mean"]).set_index(["method", "metric"])["mean"]
    assert tokens[("oracle", "prompt_tokens")] == pytest.approx(frame[frame["method"] == "oracle"][
        "tokens.prompt_per_stage3_call"].mean())
    assert tables["mq"].dropna(subset=["mean"])["mean"].tolist() == [1.0, 1.0]
