"""One row per grid cell of configs/baselines-smollm2.yaml, from the run folders beside this file.

`agemem-bench table` gives the score and the cost block; this adds what it does not show for the
Assistant: MQ, tool calls by tool and by source, controller calls and failures (with reasons).
A cell that did not run is a row of '-', never of zeros.

Usage: python results/baselines-smollm2/summarize.py   (writes cells.md and cells.csv here)
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parents[1] / "configs" / "baselines-smollm2.yaml"
COLUMNS = ("method", "benchmark", "episodes", "score", "mq", "agent tool calls", "controller tool calls",
           "agent prompt tokens", "agent calls", "controller calls", "controller failures",
           "format errors", "seconds/episode", "controller seconds", "commit")


def _calls(by_tool: dict[str, int]) -> str:
    return ", ".join(f"{tool} {n}" for tool, n in sorted(by_tool.items())) or "none"


def cell_row(method: str, benchmark: str) -> dict[str, str]:
    """The cell's means over its episodes, or '-' everywhere when nothing finished."""
    row = {"method": method, "benchmark": benchmark} | {c: "-" for c in COLUMNS[2:]}
    log = HERE / f"{method}-smollm2-135m" / benchmark / "seed0" / "episodes.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    if not records:
        return row
    n = len(records)

    def mean(values: list[float], digits: str = ".3g") -> str:
        return format(sum(values) / n, digits)

    def tools(source: str) -> str:
        total: Counter[str] = Counter()
        for r in records:
            total.update(r["tool_calls_by_source"].get(source, {}))
        return _calls({k: v / n for k, v in total.items()}) if n > 1 else _calls(dict(total))

    controller = [r["cost"].get("controller", {}) for r in records]
    reasons: Counter[str] = Counter()
    for c in controller:
        reasons.update(c.get("failure_reasons", {}))
    failures = sum(c.get("failures", 0) for c in controller)
    why = "; ".join(f"{k} x{v}" for k, v in reasons.most_common())
    row.update({
        "episodes": str(n),
        "score": mean([r["metrics"]["score"] for r in records]),
        "mq": mean([r["metrics"].get("mq", 0.0) for r in records]),
        "agent tool calls": tools("agent"),
        "controller tool calls": tools("controller"),
        "agent prompt tokens": mean([r["tokens"]["prompt"] for r in records], ".0f"),
        "agent calls": mean([r["cost"].get("agent", {}).get("llm_calls", 0) for r in records], ".1f"),
        "controller calls": mean([c.get("llm_calls", 0) for c in controller], ".1f"),
        "controller failures": f"{failures / n:.3g}" + (f" ({why})" if why else ""),
        "format errors": mean([r["counts"].get("format_errors", 0) for r in records], ".1f"),
        "seconds/episode": f"{sum(r['seconds'] for r in records) / n:.0f}",
        "controller seconds": mean([c.get("seconds", 0.0) for c in controller], ".0f"),
        "commit": ", ".join(sorted({str(r.get("commit"))[:7] + ("+dirty" if "dirty" in str(r.get("commit")) else "")
                                    for r in records})),
    })
    return row


def main() -> None:
    grid = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    rows = [cell_row(m["name"], b) for m in grid["methods"] for b in m["benchmarks"]]
    with (HERE / "cells.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    (HERE / "cells.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
