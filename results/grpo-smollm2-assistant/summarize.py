"""Per-seed table of the SmolLM2 GRPO demo: held-out episodes before and after GRPO, the GRPO
log's first and last steps, and each run's wall time, CPU time and peak memory.

    python results/grpo-smollm2-assistant/summarize.py   # writes table.md and table.csv here
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from benchmarks.tables import markdown_table

HERE = Path(__file__).parent


def held_out(folder: Path) -> dict[str, float]:
    rows = [json.loads(line) for line in (folder / "episodes.jsonl").read_text().splitlines()]
    replies = sum(r["cost"]["agent"]["llm_calls"] for r in rows)
    return {
        "episodes": len(rows),
        "score": sum(r["metrics"]["score"] for r in rows) / len(rows),
        "mq": sum(r["metrics"]["mq"] for r in rows) / len(rows),
        "reward": sum(r["reward"]["total"] for r in rows) / len(rows),
        "format_errors_per_reply": sum(r["counts"].get("format_errors", 0) for r in rows) / max(replies, 1),
        "add_memory_per_ep": sum(r["tool_calls"].get("Add_memory", 0) for r in rows) / len(rows),
        "retrieve_memory_per_ep": sum(r["tool_calls"].get("Retrieve_memory", 0) for r in rows) / len(rows),
        "replies_per_ep": replies / len(rows),
    }


def run_cost(time_file: Path) -> dict[str, float]:
    text = time_file.read_text()

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", text).group(1).strip()

    minutes, seconds = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")[-2:]
    return {"wall_min": int(minutes) + float(seconds) / 60,
            "cpu_min": (float(field("User time (seconds)")) + float(field("System time (seconds)"))) / 60,
            "peak_gb": int(field("Maximum resident set size (kbytes)")) / 1e6}


def main() -> None:
    records = []
    for seed_dir in sorted(HERE.glob("seed*")):
        log = [json.loads(line) for line in (seed_dir / "grpo" / "log.jsonl").read_text().splitlines()]
        row = {"seed": int(seed_dir.name.removeprefix("seed"))}
        for when in ("before", "after"):
            row |= {f"{when}_{k}": v for k, v in held_out(seed_dir / f"eval-{when}").items()}
        row |= {"grpo_steps": len(log),
                "train_reward_first3": sum(e["reward/total"] for e in log[:3]) / 3,
                "train_reward_last3": sum(e["reward/total"] for e in log[-3:]) / 3,
                "train_score_any": max(e["task/score"] for e in log),
                "train_format_errors_first3": sum(e.get("tools/format_errors", 0) for e in log[:3]) / 3,
                "train_format_errors_last3": sum(e.get("tools/format_errors", 0) for e in log[-3:]) / 3}
        row |= run_cost(seed_dir / "time.txt")
        records.append(row)
    table = pd.DataFrame(records)
    summary = table.drop(columns="seed").agg(["mean", "std"]).reset_index(names="seed")
    table = pd.concat([table, summary], ignore_index=True)
    table.to_csv(HERE / "table.csv", index=False)
    (HERE / "table.md").write_text(markdown_table(table))
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
