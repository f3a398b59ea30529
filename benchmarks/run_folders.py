"""Run folders as data: find them, read their records and traces, flatten them for pandas.

A run folder holds ``episodes.jsonl`` (one record per finished episode), ``config.yaml`` (the
run's settings and provenance), ``traces/<episode_id>.json.gz`` (each episode's events) and,
when a grid made it, ``cell.yaml`` (the cell's method name and backbone). Tables and the report
read runs only through this module, so a change of record format is absorbed here.

Records written before traces existed carry ``env`` instead of ``benchmark``, a ``policy`` cost
role instead of ``agent`` and a ``memory_trace`` list of tool calls; they are read too.

Example:
    >>> import tempfile, pathlib
    >>> from benchmarks.runner import RunConfig, run
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "oracle"
    >>> _ = run(RunConfig(env="assistant", agent="oracle", out=out, episodes=2, progress=False,
    ...                   env_options={"num_facts": 3, "num_distractors": 1}))
    >>> [folder] = find_runs([out.parent])
    >>> frame = episode_frame([folder])
    >>> frame[["method", "benchmark", "metrics.score"]].values.tolist()
    [['oracle', 'assistant', 1.0], ['oracle', 'assistant', 1.0]]
    >>> any(e["kind"] == "tool_call" for e in folder.trace(folder.records[0]))
    True
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from agemem_gym.errors import DataNotFoundError

#: Model names that are one of the paper's backbones (lower-case pattern -> backbone).
BACKBONES = {r"qwen2\.5-7b": "Qwen2.5-7B", r"qwen3-4b": "Qwen3-4B"}
#: Cost roles every episode is counted under (a role with no calls counts 0).
COST_ROLES = ("agent", "controller", "judge", "summarizer")


def backbone_of(model: str | None) -> str:
    """The paper backbone a model name stands for, else the model's last path part.

    >>> backbone_of("Qwen/Qwen2.5-7B-Instruct"), backbone_of(None), backbone_of("ckpt/tiny")
    ('Qwen2.5-7B', '-', 'tiny')
    """
    if not model:
        return "-"
    for pattern, name in BACKBONES.items():
        if re.search(pattern, model.lower()):
            return name
    return Path(str(model).rstrip("/")).name or str(model)


@dataclass
class RunFolder:
    """One run folder: its settings, its cell (when a grid made it) and its records."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    cell: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def records(self) -> list[dict[str, Any]]:
        records, seen = [], set()
        for line in (self.path / "episodes.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a partial last line of a killed run
            if record.get("episode_id") not in seen:
                seen.add(record.get("episode_id"))
                records.append(record)
        return records

    @property
    def run(self) -> dict[str, Any]:
        return self.config.get("run", {})

    @property
    def agent(self) -> str:
        return str(self.cell.get("agent") or self.run.get("agent") or "?")

    @property
    def model(self) -> str | None:
        options = self.run.get("agent_options") or {}
        return self.cell.get("model") or self.run.get("model") or options.get("model")

    @property
    def method(self) -> str:
        """The method's name: the grid's (``AgeMem-noRL``), else the agent's."""
        return str(self.cell.get("method") or self.agent)

    @property
    def backbone(self) -> str:
        return str(self.cell.get("backbone") or backbone_of(self.model))

    @property
    def seed(self) -> int:
        return int(self.cell.get("seed", self.run.get("seed", 0)) or 0)

    @property
    def commit(self) -> str:
        return short_commit(self.config.get("provenance", {}).get("git_commit"))

    def trace(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The episode's trace events (from ``traces/``, else rebuilt from ``memory_trace``)."""
        path = self.path / "traces" / f"{record['episode_id']}.json.gz"
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = json.load(f)
            return data["events"] if isinstance(data, dict) else data
        return _legacy_trace(record)


def short_commit(commit: str | None) -> str:
    """``abc1234`` or ``abc1234+dirty`` from a full hash (``unknown`` when none was recorded)."""
    commit = str(commit or "unknown")
    return commit[:7] + ("+dirty" if commit.endswith("+dirty") else "")


def find_runs(paths: Iterable[Path | str]) -> list[RunFolder]:
    """Every run folder at or under ``paths`` (a folder with ``episodes.jsonl``), sorted."""
    found: dict[Path, RunFolder] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise DataNotFoundError(f"no run folder at {path}: give a folder written by "
                                    "`agemem-bench run` (or a folder holding such folders)")
        logs = [path / "episodes.jsonl"] if (path / "episodes.jsonl").exists() else \
            sorted(path.rglob("episodes.jsonl"))
        for log in logs:
            folder = log.parent.resolve()
            found.setdefault(folder, RunFolder(folder, _yaml(folder / "config.yaml"),
                                               _yaml(folder / "cell.yaml")))
    if not found:
        raise DataNotFoundError(f"no episodes.jsonl at or under {', '.join(map(str, paths))}")
    return [found[k] for k in sorted(found)]


def episode_frame(runs: Sequence[RunFolder]) -> pd.DataFrame:
    """One row per episode of every run, nested fields flattened to ``a.b`` columns."""
    rows = [flat_record(run, record) for run in runs for record in run.records]
    if not rows:
        return pd.DataFrame()
    frame = pd.json_normalize(rows)
    counts = [c for c in frame.columns if c.startswith(("tool_calls.", "cost."))]
    frame[counts] = frame[counts].fillna(0)  # a tool or role absent from a record was not used
    return frame


def flat_record(run: RunFolder, record: dict[str, Any]) -> dict[str, Any]:
    """What tables read from one record, named alike for every record format."""
    judges = record.get("judges") or {}
    cost = dict(record.get("cost") or {})
    if "policy" in cost and "agent" not in cost:  # records from before the cost roles
        cost["agent"] = cost.pop("policy")
    model = record.get("model") or run.model
    return {
        "run": str(run.path), "method": run.method, "agent": record.get("agent") or run.agent,
        "backbone": run.cell.get("backbone") or backbone_of(model), "model": model or "-",
        "backend": record.get("backend") or "-", "run_seed": run.seed,
        "benchmark": record.get("benchmark") or record.get("env") or run.run.get("env"),
        "episode_id": record.get("episode_id"), "task_id": record.get("task_id"),
        "protocol": record.get("protocol") or run.run.get("protocol") or "paper",
        "judge": judges.get("task", "-"), "memory_judge": judges.get("memory", "-"),
        "commit": short_commit(record.get("commit")) if record.get("commit") else run.commit,
        "category": record.get("category"),
        "metrics": record.get("metrics") or {}, "reward": record.get("reward") or {},
        "tokens": record.get("tokens") or {}, "tool_calls": record.get("tool_calls") or {},
        "by_stage": record.get("tool_calls_by_stage") or _legacy_by_stage(record),
        "cost": {role: _numbers(cost.get(role) or {}) for role in {*COST_ROLES, *cost}},
        "seconds": record.get("seconds"),
    }


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}


def _yaml(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}


def _legacy_by_stage(record: dict[str, Any]) -> dict[str, dict[str, int]]:
    by_stage: dict[str, dict[str, int]] = {}
    for call in record.get("memory_trace") or []:
        stage = by_stage.setdefault(str(call.get("stage")), {})
        stage[call["tool"]] = stage.get(call["tool"], 0) + 1
    return by_stage


def _legacy_trace(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Trace events from a record's ``memory_trace`` (tool calls only)."""
    return [{"i": i, "round": c.get("round", 0), "stage": c.get("stage", 0), "turn": c.get("turn", 0),
             "source": c.get("source", "agent"), "kind": "tool_call",
             "payload": {"name": c.get("tool"), "arguments": c.get("arguments"), "ok": c.get("ok"),
                         "result": c.get("result")}, "context_tokens": None, "memory_size": None}
            for i, c in enumerate(record.get("memory_trace") or [])]
