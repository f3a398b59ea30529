"""``agemem-bench report``: one static HTML page of tables, plots and a trace viewer per episode.

The page (``<out>/index.html``) opens from disk with no server and no network: plots are PNGs
embedded as base64, the JavaScript is inline and hand-written (templates/report.html), nothing
comes from a CDN. Each episode's record and trace events are a gzip+base64 blob in its own
``<script>`` element that the browser decodes (``DecompressionStream``) only when the episode is
clicked, so a page of 1,000 episodes loads as fast as its episode list parses
(``benchmarks/perf/report_size.py`` measures it).

Example:
    >>> import tempfile, pathlib
    >>> from benchmarks.runner import RunConfig, run
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = run(RunConfig(env="assistant", agent="oracle", out=root / "oracle", episodes=2,
    ...                   progress=False, env_options={"num_facts": 3, "num_distractors": 1}))
    >>> page = write_report([root], root / "report")
    >>> html = page.read_text()
    >>> html.count('data-enc="gzip-base64"'), 'src="http' in html, "data:image/png;base64," in html
    (2, False, True)
"""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agemem_gym.errors import DataNotFoundError, MissingExtraError
from benchmarks.run_folders import RunFolder, episode_frame, find_runs
from benchmarks.tables import TABLES, build_tables, format_value

logger = logging.getLogger(__name__)
TEMPLATE = Path(__file__).with_name("templates") / "report.html"
#: Record fields the trace viewer shows beside the events.
_VIEWER_FIELDS = ("episode_id", "task_id", "benchmark", "env", "protocol", "judges", "question",
                  "gold_answers", "answer", "metrics", "reward", "tool_calls", "tokens", "cost", "ltm",
                  "category")


def write_report(runs: Iterable[Path | str], out: Path | str, *, train_runs: Sequence[Path | str] = (),
                 paper: bool = True, compress_traces: bool = True) -> Path:
    """Write ``out/index.html`` for the run folders at or under ``runs``; return its path."""
    folders = find_runs(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = episode_frame(folders)
    tables = build_tables(folders, paper=paper)
    index, blobs = episode_blobs(folders, compress=compress_traces)
    page = TEMPLATE.read_text(encoding="utf-8")
    commits = sorted({f.commit for f in folders})
    meta = (f"{len(folders)} run folders, {len(index)} episodes, commit {', '.join(commits)}; "
            f"written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. "
            "Cells: mean over seeds, n episodes, 95% percentile-bootstrap CI over episodes.")
    parts = {
        "title": html.escape("agemem-gym report: " + ", ".join(sorted({f.method for f in folders}))),
        "meta": html.escape(meta),
        "tables": tables_html(tables),
        "plots": plots_html(frame, tables, [Path(p) for p in train_runs]),
        "index": json.dumps(index, separators=(",", ":")).replace("</", "<\\/"),
        "blobs": "\n".join(blobs),
    }
    for key, value in parts.items():
        page = page.replace("{{" + key + "}}", value)
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def episode_blobs(folders: Sequence[RunFolder], *, compress: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """The episode list (small, parsed on load) and one ``<script>`` blob per episode."""
    index: list[dict[str, Any]] = []
    blobs: list[str] = []
    for folder in folders:
        for record in folder.records:
            k = len(index)
            events = folder.trace(record)
            metrics = record.get("metrics") or {}
            tokens = record.get("tokens") or {}
            index.append({
                "k": k, "episode_id": record.get("episode_id"), "method": folder.method,
                "backbone": folder.backbone, "benchmark": record.get("benchmark") or record.get("env"),
                "category": record.get("category"), "score": metrics.get("score"),
                "success": metrics.get("success", metrics.get("score")),
                "reward": _round((record.get("reward") or {}).get("total")),
                "tools": sum((record.get("tool_calls") or {}).values()),
                "tokens": tokens.get("prompt"), "events": len(events),
            })
            shown = {f: record.get(f) for f in _VIEWER_FIELDS}
            shown["benchmark"] = index[-1]["benchmark"]
            blob = {"method": folder.method, "model": folder.model, "commit": folder.commit,
                    "record": shown, "events": events}
            text = json.dumps(blob, separators=(",", ":"), default=str)
            if compress:
                body = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")
                blobs.append(f'<script type="application/octet-stream" id="ep-{k}" data-enc="gzip-base64">{body}</script>')
            else:
                safe = text.replace("</", "<\\/")
                blobs.append(f'<script type="application/json" id="ep-{k}" data-enc="json">{safe}</script>')
    if not index:
        raise DataNotFoundError("the run folders hold no finished episodes: run `agemem-bench run` first")
    return index, blobs


def _round(value: Any) -> Any:
    return round(float(value), 4) if isinstance(value, (int, float)) else value


def tables_html(tables: dict[str, pd.DataFrame]) -> str:
    """Each table as an HTML table in a <details> (Table 2 open), missing cells as ``-``."""
    parts = []
    for name, table in tables.items():
        title = TABLES[name].title if name in TABLES else {
            "table2_wide": "Table 2 as printed (ours, paper)", "categories": "Score (%) per category",
            "cost": "Cost per episode (LLM calls by role, tokens, seconds)"}.get(name, name)
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row) + "</tr>"
                       for row in table.itertuples(index=False))
        opened = " open" if name == "table2_wide" else ""
        parts.append(f'<details{opened} id="table-{name}"><summary>{html.escape(title)} ({len(table)} rows)'
                     f'</summary><div class="scroll"><table class="data"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{rows}</tbody></table></div></details>")
    return "\n".join(parts)


# -- plots -------------------------------------------------------------------------------------

def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise MissingExtraError("agemem-bench report's plots", "plots") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots_html(frame: pd.DataFrame, tables: dict[str, pd.DataFrame], train_runs: Sequence[Path]) -> str:
    """Every plot that has data, as embedded PNGs with a caption."""
    plots = [("Score by method and benchmark (95% CI)", _score_plot(tables.get("table2"))),
             ("Prompt tokens per episode", _tokens_plot(frame)),
             ("Tool calls per episode by stage", _stage_plot(frame)),
             ("Cost versus score", _cost_plot(frame)),
             ("Learning curves", _curves_plot(train_runs))]
    return "\n".join(f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}">'
                     f"<figcaption>{html.escape(title)}</figcaption></figure>"
                     for title, png in plots if png)


def _grouped_bars(ax: Any, table: pd.DataFrame, value: str, err: tuple[str, str] | None = None) -> None:
    methods = list(dict.fromkeys(table["label"]))
    benchmarks = list(dict.fromkeys(table["benchmark"]))
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        rows = table[table["label"] == method].set_index("benchmark").reindex(benchmarks)
        x = np.arange(len(benchmarks)) + j * width
        yerr = None
        if err is not None:
            yerr = np.vstack([rows[value] - rows[err[0]], rows[err[1]] - rows[value]])
        ax.bar(x, rows[value], width, yerr=yerr, capsize=3, label=method)
    ax.set_xticks(np.arange(len(benchmarks)) + 0.4 - width / 2, benchmarks)
    ax.legend(fontsize=8)


def _label(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(label=[m if b == "-" else f"{m} ({b})" for m, b in zip(table["method"], table["backbone"], strict=True)])


def _score_plot(table2: pd.DataFrame | None) -> str | None:
    if table2 is None or table2["mean"].isna().all():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    _grouped_bars(ax, _label(table2.dropna(subset=["mean"])), "mean", ("ci_low", "ci_high"))
    ax.set_ylabel("score (%)")
    return _png(fig)


def _tokens_plot(frame: pd.DataFrame) -> str | None:
    if "tokens.prompt" not in frame or frame["tokens.prompt"].isna().all():
        return None
    means = _label(frame.groupby(["method", "backbone", "benchmark"], sort=False)["tokens.prompt"]
                   .mean().reset_index())
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    _grouped_bars(ax, means, "tokens.prompt")
    ax.set_ylabel("prompt tokens / episode")
    return _png(fig)


def _stage_plot(frame: pd.DataFrame) -> str | None:
    columns = [c for c in frame.columns if c.startswith("by_stage.")]
    if not columns:
        return None
    stages = sorted({c.split(".")[1] for c in columns})
    labelled = _label(frame.assign(**{f"stage {s}": frame[[c for c in columns if c.split(".")[1] == s]]
                                      .fillna(0).sum(axis=1) for s in stages}))
    per = labelled.groupby(["label", "benchmark"], sort=False)[[f"stage {s}" for s in stages]].mean()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.35 * len(per)))
    left = np.zeros(len(per))
    names = [f"{label} / {bench}" for label, bench in per.index]
    for stage in per.columns:
        ax.barh(names, per[stage], left=left, label=stage)
        left += per[stage].to_numpy()
    ax.set_xlabel("tool calls / episode")
    ax.legend(fontsize=8)
    return _png(fig)


def _cost_plot(frame: pd.DataFrame) -> str | None:
    # the agent's tokens (counted even for scripted agents) plus every other role's
    tokens = [c for c in frame.columns if c.startswith("cost.") and c.endswith("_tokens")
              and not c.startswith("cost.agent.")]
    tokens += [c for c in ("tokens.prompt", "tokens.completion") if c in frame]
    if not tokens or "metrics.score" not in frame:
        return None
    frame = _label(frame.assign(cost_tokens=frame[tokens].sum(axis=1)))
    points = frame.groupby(["label", "benchmark"], sort=False)[["cost_tokens", "metrics.score"]].mean()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for (label, bench), row in points.iterrows():
        ax.scatter(row["cost_tokens"], 100 * row["metrics.score"])
        ax.annotate(f"{label} / {bench}", (row["cost_tokens"], 100 * row["metrics.score"]), fontsize=7)
    ax.set_xlabel("LLM tokens / episode (all roles)")
    ax.set_ylabel("score (%)")
    return _png(fig)


def _curves_plot(train_runs: Sequence[Path]) -> str | None:
    curves = []
    for run in train_runs:
        path = run / "curve.csv" if run.is_dir() else run
        if not path.exists():
            raise DataNotFoundError(f"no curve.csv in {run}: give a folder written by `agemem-bench train`")
        curves.append((run.name, pd.read_csv(path)))
    if not curves:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for name, curve in curves:
        for ax, column in zip(axes, ("reward/total", "task/score"), strict=True):
            if column in curve:
                ax.plot(curve["step"], curve[column], label=name)
                ax.set_title(column)
                ax.set_xlabel("GRPO step")
    axes[0].legend(fontsize=8)
    return _png(fig)
