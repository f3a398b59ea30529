"""One table for the same policies under both protocols on the 103 sample HotpotQA questions.

    python results/protocols-hotpotqa/summarize.py   # writes table.md and table.csv here

Each subfolder is an `agemem-bench run` folder named ``<policy>-<protocol>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmarks.tables import markdown_table

HERE = Path(__file__).parent
COLUMNS = ("policy", "protocol", "episodes", "score", "MQ", "reward", "prompt tokens (sum)",
           "prompt tokens / stage-3 call", "tool calls (all)", "tool calls (stages 1+3)",
           "format errors / reply", "replies / ep", "run wall s / ep")


def summarize(folder: Path) -> dict[str, object]:
    rows = [json.loads(line) for line in (folder / "episodes.jsonl").read_text().splitlines()]
    n = len(rows)
    replies = sum(r["cost"].get("agent", {}).get("llm_calls", 0) for r in rows)
    stage13 = sum(sum(r["tool_calls_by_stage"].get(stage, {}).values()) for r in rows for stage in ("1", "3"))
    time_files = sorted(folder.glob("time*.txt"))  # one per invocation when a run was resumed
    wall = sum(_wall_seconds(f.read_text()) for f in time_files) / n if time_files else float("nan")
    policy, protocol = folder.name.rsplit("-", 1)
    values = (policy, protocol, n, _mean(rows, "metrics", "score"), _mean(rows, "metrics", "mq"),
              _mean(rows, "reward", "total"), _mean(rows, "tokens", "prompt"),
              _mean(rows, "tokens", "prompt_per_stage3_call"),
              sum(sum(r["tool_calls"].values()) for r in rows) / n, stage13 / n,
              sum(r["counts"].get("format_errors", 0) for r in rows) / replies if replies else float("nan"),
              replies / n, wall)
    return dict(zip(COLUMNS, values, strict=True))


def _mean(rows: list[dict], group: str, key: str) -> float:
    return sum(r[group][key] for r in rows) / len(rows)


def _wall_seconds(text: str) -> float:
    line = next(line for line in text.splitlines() if "Elapsed (wall clock)" in line)
    parts = [float(p) for p in line.rsplit(" ", 1)[1].split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def main() -> None:
    table = pd.DataFrame([summarize(f) for f in sorted(HERE.iterdir()) if (f / "episodes.jsonl").exists()])
    table.to_csv(HERE / "table.csv", index=False)
    (HERE / "table.md").write_text(markdown_table(table))
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
