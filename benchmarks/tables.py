"""``agemem-bench table``: the paper's tables rebuilt from run folders, the paper's numbers beside.

Every table is long-form: one row per (method, backbone, benchmark, metric) with the model,
judge, protocol and commit behind it, ``n`` (episodes), ``seeds`` (run seeds), ``mean`` (mean of
the per-seed means), ``seed_sd`` (spread of the per-seed means; missing with one seed), ``sd``
(spread over episodes) and a 95% confidence interval (``ci_low``, ``ci_high``): a percentile
bootstrap over episodes, resampled within each seed, 2,000 resamples, fixed seed. With the
paper's numbers (``paper``) a row also has ``diff`` = mean - paper. A cell without episodes is
missing (NaN, shown as ``-``), never zero.

Example:
    >>> import tempfile, pathlib
    >>> from benchmarks.runner import RunConfig, run
    >>> from benchmarks.run_folders import find_runs
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "oracle"
    >>> _ = run(RunConfig(env="assistant", agent="oracle", out=out, episodes=2, progress=False,
    ...                   env_options={"num_facts": 3, "num_distractors": 1}))
    >>> tables = build_tables(find_runs([out]), paper=True)
    >>> row = tables["table2"].query("method == 'oracle'").iloc[0]
    >>> row["benchmark"], float(row["mean"]), int(row["n"]), pd.isna(row["paper"])
    ('assistant', 100.0, 2, True)
    >>> tables["table2"].query("method == 'AgeMem' and backbone == 'Qwen3-4B' "
    ...                        "and benchmark == 'babyai'")["paper"].item()
    72.56
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from agemem_gym.errors import ConfigError, UnknownNameError
from benchmarks.run_folders import COST_ROLES, RunFolder, episode_frame

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.csv")
#: The paper's benchmarks in Table 2's column order; others follow, sorted.
PAPER_BENCHMARKS = ("alfworld", "sciworld", "pddl", "babyai", "hotpotqa")
MEMORY_TOOLS = ("Add_memory", "Update_memory", "Delete_memory", "Retrieve_memory",
                "Summary_context", "Filter_context")
KEYS = ["method", "backbone", "benchmark"]
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class TableSpec:
    """One paper table: which benchmarks and methods, and which record field is each metric."""

    title: str
    metrics: tuple[tuple[str, str, float], ...]
    """(metric name as in paper_numbers.csv, episode-frame column, scale)."""
    benchmarks: tuple[str, ...] | None = None
    """Benchmarks the table covers (None: every benchmark run)."""
    paper_methods_only: bool = False
    """Ablations: only the methods the paper's table has."""
    note: str = ""


_TOOL_METRICS = tuple((t, f"tool_calls.{t}", 1.0) for t in MEMORY_TOOLS) + (
    ("total", "tool_calls.total", 1.0),)
TABLES: dict[str, TableSpec] = {
    "table2": TableSpec("Table 2: score (%) per benchmark", (("score", "metrics.score", 100.0),),
                        note="success rate (ALFWorld, SciWorld, BabyAI), progress rate (PDDL), "
                             "judge score J (HotpotQA), each x 100"),
    "mq": TableSpec("Memory quality on HotpotQA", (("mq", "metrics.mq", 1.0),), ("hotpotqa",)),
    "prompt_tokens": TableSpec(
        "Prompt tokens on HotpotQA", (("prompt_tokens", "tokens.prompt_per_stage3_call", 1.0),
                                      ("prompt_tokens_per_episode", "tokens.prompt", 1.0)),
        ("hotpotqa",), note="the paper's number is compared with the mean prompt of a stage-3 "
                            "agent call; prompt_tokens_per_episode sums every agent call"),
    "tool_usage": TableSpec("Tool calls per episode on HotpotQA", _TOOL_METRICS, ("hotpotqa",)),
    "reward_ablation": TableSpec(
        "Reward ablation on HotpotQA", (("J", "metrics.score", 1.0),
                                        ("prompt_tokens", "tokens.prompt_per_stage3_call", 1.0),
                                        ("mq", "metrics.mq", 1.0), ("tool_calls", "tool_calls.total", 1.0)),
        ("hotpotqa",), paper_methods_only=True),
    "component_ablation": TableSpec("Component ablation: score (%)", (("score", "metrics.score", 100.0),),
                                    ("alfworld", "sciworld", "hotpotqa"), paper_methods_only=True),
}


def paper_numbers(path: Path = PAPER_NUMBERS) -> pd.DataFrame:
    """The paper's numbers as data: table, backbone, method, paper_label, benchmark, metric, value."""
    return pd.read_csv(path, dtype={"value": float})


def build_tables(runs: Sequence[RunFolder], *, paper: bool = False,
                 names: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Every requested table (default: all) from ``runs``, plus ``categories`` and ``cost``.

    A table with no matching episodes is left out unless ``paper`` (then the paper's rows
    stand with ours missing).
    """
    for name in names or ():
        if name not in TABLES:
            raise UnknownNameError("table", name, TABLES)
    frame = _with_totals(episode_frame(runs))
    numbers = paper_numbers() if paper else None
    tables: dict[str, pd.DataFrame] = {}
    for name in names or TABLES:
        table = build_table(frame, name, numbers)
        if len(table):
            tables[name] = table
    if "table2" in tables:
        tables["table2_wide"] = wide_table2(tables["table2"])
    if not names:
        tables["categories"] = category_table(frame)
        tables["cost"] = cost_table(frame)
    return {k: v for k, v in tables.items() if len(v)}


def build_table(frame: pd.DataFrame, name: str, numbers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table ``name`` in long form (see the module docstring for its columns)."""
    spec = TABLES[name]
    paper = None if numbers is None else numbers[(numbers["table"] == name) & (numbers["benchmark"] != "avg")]
    rows = []
    if len(frame):
        selected = frame
        if spec.benchmarks is not None:
            selected = selected[selected["benchmark"].isin(spec.benchmarks)]
        if spec.paper_methods_only:
            methods = paper_numbers().query("table == @name")["method"].unique()
            selected = selected[selected["method"].isin(methods)]
        for metric, column, scale in spec.metrics:
            if column not in selected.columns:
                continue
            for keys, group in selected.groupby(KEYS, sort=False):
                rows.append({**dict(zip(KEYS, keys, strict=True)), "metric": metric, **_provenance(group),
                             **cell_stats(group[column].astype(float) * scale, group["run_seed"])})
    table = pd.DataFrame(rows, columns=[*KEYS, "metric", *_PROVENANCE, *_STATS])
    if paper is not None:
        paper = paper.rename(columns={"value": "paper"})[[*KEYS, "metric", "paper_label", "paper"]]
        table = table.merge(paper, on=[*KEYS, "metric"], how="outer")
        table["diff"] = table["mean"] - table["paper"]
    return _sorted(table.astype({"n": "Int64", "seeds": "Int64"}))


_PROVENANCE = ["model", "judge", "protocol", "commit"]
_STATS = ["n", "seeds", "mean", "seed_sd", "sd", "ci_low", "ci_high"]


def _provenance(group: pd.DataFrame) -> dict[str, str]:
    return {k: ",".join(sorted({str(v) for v in group[k].dropna()})) or "-" for k in _PROVENANCE}


def cell_stats(values: pd.Series, seeds: pd.Series) -> dict[str, float]:
    """n, seeds, mean of seed means, their spread, episode spread and a bootstrap 95% CI.

    >>> s = cell_stats(pd.Series([0.0, 1.0, 1.0, 1.0]), pd.Series([0, 0, 1, 1]))
    >>> s["n"], s["seeds"], s["mean"], round(s["seed_sd"], 3), s["ci_low"] <= s["mean"] <= s["ci_high"]
    (4, 2, 0.75, 0.354, True)
    """
    keep = values.notna()
    values, seeds = values[keep].to_numpy(float), seeds[keep].to_numpy()
    if not len(values):
        return {"n": 0, "seeds": 0, **dict.fromkeys(_STATS[2:], np.nan)}
    groups = [values[seeds == s] for s in np.unique(seeds)]
    means = np.array([g.mean() for g in groups])
    rng = np.random.default_rng(0)
    boot = np.mean([g[rng.integers(0, len(g), (BOOTSTRAP_RESAMPLES, len(g)))].mean(axis=1)
                    for g in groups], axis=0)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"n": len(values), "seeds": len(groups), "mean": float(means.mean()),
            "seed_sd": float(means.std(ddof=1)) if len(groups) > 1 else np.nan,
            "sd": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
            "ci_low": float(low), "ci_high": float(high)}


def wide_table2(long: pd.DataFrame) -> pd.DataFrame:
    """Table 2 as the paper prints it: a row per method and backbone, a column per benchmark
    (``<benchmark>`` ours, ``<benchmark> paper`` theirs), ``Avg`` over the paper's five
    benchmarks only when all five were run."""
    benchmarks = [b for b in PAPER_BENCHMARKS if b in set(long["benchmark"])] + sorted(
        set(long["benchmark"]) - set(PAPER_BENCHMARKS))
    with_paper = "paper" in long.columns
    rows = []
    for (method, backbone), group in long.groupby(["method", "backbone"], sort=False):
        by_bench = group.set_index("benchmark")
        row = {"method": method, "backbone": backbone}
        for bench in benchmarks:
            row[bench] = by_bench["mean"].get(bench, np.nan)
            if with_paper and bench in PAPER_BENCHMARKS:
                row[f"{bench} paper"] = by_bench["paper"].get(bench, np.nan)
        ours = [by_bench["mean"].get(b, np.nan) for b in PAPER_BENCHMARKS]
        row["Avg"] = float(np.mean(ours)) if not np.isnan(ours).any() else np.nan
        if with_paper:
            row["Avg paper"] = _paper_avg(method, backbone)
        ran = group.dropna(subset=["mean"])
        row.update({k: ",".join(sorted(set(",".join(ran[k]).split(",")) - {""})) or "-"
                    for k in _PROVENANCE})
        row["episodes"] = int(ran["n"].sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _paper_avg(method: str, backbone: str) -> float:
    numbers = paper_numbers().query("table == 'table2' and benchmark == 'avg' "
                                    "and method == @method and backbone == @backbone")
    return float(numbers["value"].iloc[0]) if len(numbers) else np.nan


def category_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Score per benchmark category (ALFWorld task type, PDDL domain, ...), where records have one."""
    if "category" not in frame.columns or frame["category"].isna().all():
        return pd.DataFrame()
    rows = []
    for keys, group in frame.dropna(subset=["category"]).groupby([*KEYS, "category"], sort=False):
        rows.append({**dict(zip([*KEYS, "category"], keys, strict=True)),
                     **cell_stats(group["metrics.score"].astype(float) * 100, group["run_seed"])})
    return _sorted(pd.DataFrame(rows))


def cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method and benchmark: LLM calls per episode by role, tokens and seconds per episode."""
    if not len(frame):
        return pd.DataFrame()
    columns = {f"calls/{role}": f"cost.{role}.llm_calls" for role in COST_ROLES}
    roles = sorted({c.split(".")[1] for c in frame.columns if c.startswith("cost.")})
    rows = []
    for keys, group in frame.groupby(KEYS, sort=False):
        row = {**dict(zip(KEYS, keys, strict=True)), "n": len(group), **_provenance(group)}
        for name, column in columns.items():
            row[name] = group[column].mean() if column in group else 0.0
        for kind in ("prompt_tokens", "completion_tokens", "seconds"):
            present = [f"cost.{r}.{kind}" for r in roles if f"cost.{r}.{kind}" in group]
            row[f"llm_{kind}"] = group[present].sum(axis=1).mean() if present else 0.0
        for kind in ("prompt", "completion"):  # the agent's tokens, counted even without a model
            column = f"tokens.{kind}"
            row[f"agent_{kind}_tokens"] = group[column].mean() if column in group else np.nan
        row["seconds/episode"] = group["seconds"].astype(float).mean()
        rows.append(row)
    return _sorted(pd.DataFrame(rows))


def _with_totals(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame):
        present = [f"tool_calls.{t}" for t in MEMORY_TOOLS if f"tool_calls.{t}" in frame]
        frame["tool_calls.total"] = frame[present].sum(axis=1) if present else 0.0
        for tool in MEMORY_TOOLS:
            if f"tool_calls.{tool}" not in frame:
                frame[f"tool_calls.{tool}"] = 0.0
    return frame


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    if not len(table):
        return table
    order = {b: i for i, b in enumerate(PAPER_BENCHMARKS)}
    keys = table["benchmark"].map(lambda b: (order.get(b, len(order)), b))
    table = table.assign(_b=keys).sort_values(["backbone", "method", "_b"], kind="stable")
    return table.drop(columns="_b").reset_index(drop=True)


#: Columns shown by md and latex, in order (csv has every column).
_SHOWN = [*KEYS, "metric", "category", "mean", "seed_sd", "n", "seeds", "sd", "ci_low", "ci_high",
          "paper", "diff", *_PROVENANCE]


def render(tables: dict[str, pd.DataFrame], fmt: str = "md") -> str:
    """The tables as one Markdown, CSV (long, with a ``table`` column) or LaTeX document."""
    if fmt not in ("md", "csv", "latex"):
        raise ConfigError(f"format must be md, csv or latex, got {fmt!r}")
    if fmt == "csv":
        long = [t.assign(table=name) for name, t in tables.items() if name != "table2_wide"]
        return pd.concat(long).to_csv(index=False)
    parts = [_LEGEND] if fmt == "md" else []
    for name, table in tables.items():
        shown = table if name in ("table2_wide", "cost") else table[[c for c in _SHOWN if c in table]]
        title, note = _title(name)
        text = markdown_table(shown) if fmt == "md" else _latex(shown, title)
        parts.append(f"### {title}\n\n{note}{text}" if fmt == "md" else text)
    return "\n".join(parts)


_LEGEND = ("mean: mean of the per-seed means; seed_sd: spread of the seed means; n: episodes; "
           "sd: spread over episodes; ci_low/ci_high: 95% percentile bootstrap over episodes "
           "(resampled within each seed, 2,000 resamples); paper: the paper's number; diff: mean - "
           "paper; '-': missing (not run), never 0.\n")


def _title(name: str) -> tuple[str, str]:
    if name in TABLES:
        spec = TABLES[name]
        return spec.title, (f"{spec.note}.\n\n" if spec.note else "")
    return {"table2_wide": ("Table 2 (as printed in the paper)", "Avg only when all five paper "
                            "benchmarks ran.\n\n"),
            "categories": ("Score (%) per benchmark category", ""),
            "cost": ("Cost per episode", "LLM calls by role, tokens of every role, wall seconds.\n\n"),
            }.get(name, (name, ""))


def format_value(value: object) -> str:
    """A cell as text: missing is ``-``, never 0.

    >>> format_value(float("nan")), format_value(pd.NA), format_value(54.444), format_value(2117.3)
    ('-', '-', '54.44', '2117')
    """
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if abs(float(value)) >= 1000 else f"{value:.4g}"
    return str(value)


def markdown_table(table: pd.DataFrame) -> str:
    """``table`` as a Markdown table, its cells written by :func:`format_value` (``-`` for missing)."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(format_value(v).replace("|", "/") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _latex(table: pd.DataFrame, title: str) -> str:
    def esc(text: str) -> str:
        for char in "\\&%$#_{}":
            text = text.replace(char, "\\" + char)
        return text

    body = [" & ".join(esc(format_value(v)) for v in row) + r" \\" for row in table.itertuples(index=False)]
    return "\n".join([r"\begin{table}[t]", r"\centering", f"\\caption{{{esc(title)}}}",
                      r"\begin{tabular}{" + "l" * len(table.columns) + "}", r"\toprule",
                      " & ".join(esc(str(c)) for c in table.columns) + r" \\", r"\midrule",
                      *body, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])
