"""Rebuild summary.csv and the Markdown table of README.md from the run folders beside this file.

Usage: python results/smollm2-zero-shot/summarize.py
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("assistant", "hotpotqa", "babyai", "pddl", "sciworld", "alfworld")


def _time_file(env: str) -> dict[str, float]:
    """Wall and CPU seconds and peak resident memory (GB) of the run, from ``/usr/bin/time -v``;
    a resumed run (``<env>-resume.time.txt``) adds its time, and a run its timeout stopped (no
    numbers written) counts the timeout, 1,200 s."""
    wall = cpu = peak = 0.0
    for name in (f"{env}.time.txt", f"{env}-resume.time.txt"):
        path = HERE / "logs" / name
        if not path.exists():
            continue
        text = path.read_text()
        elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
        if elapsed is None:
            wall += 1200.0
            continue
        seconds = 0.0
        for part in elapsed.group(1).split(":"):
            seconds = seconds * 60 + float(part)
        wall += seconds
        cpu += sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        peak = max(peak, int(rss.group(1)) / 1e6 if rss else 0.0)
    return {"run_wall_s": wall, "run_cpu_s": cpu, "peak_gb": peak} if wall else {}


def summarize(env: str) -> dict[str, float | str] | None:
    path = HERE / env / "episodes.jsonl"
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        return None
    n = len(records)
    calls = sum(r["cost"].get("agent", {}).get("llm_calls", 0) for r in records)
    format_errors = sum(r["counts"].get("format_errors", 0) for r in records)
    agent_tools = [sum(r.get("tool_calls_by_source", {}).get("agent", r["tool_calls"]).values()) for r in records]
    return {
        "benchmark": env,
        "episodes": n,
        "score": sum(r["metrics"]["score"] for r in records) / n,
        "format_error_rate": format_errors / calls if calls else 0.0,
        "agent_calls_per_episode": calls / n,
        "tool_calls_per_episode": sum(agent_tools) / n,
        "prompt_tokens_per_episode": sum(r["tokens"]["prompt"] for r in records) / n,
        "prompt_tokens_per_call": sum(r["tokens"]["prompt"] for r in records) / calls if calls else 0.0,
        "completion_tokens_per_episode": sum(r["tokens"]["completion"] for r in records) / n,
        "seconds_per_episode": sum(r["seconds"] for r in records) / n,
        **_time_file(env),
    }


def main() -> None:
    rows = [row for env in BENCHMARKS if (row := summarize(env)) is not None]
    if not rows:
        raise SystemExit("no run folders with episodes.jsonl next to this file")
    with (HERE / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = ("| benchmark | episodes | score | format errors / reply | replies / ep | tool calls / ep "
              "| prompt tokens / ep | prompt tokens / reply | s / ep | run wall s | peak GB |")
    lines = [header, "|---" * 11 + "|"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['episodes']} | {r['score']:.2f} | {r['format_error_rate']:.2f} "
                     f"| {r['agent_calls_per_episode']:.1f} | {r['tool_calls_per_episode']:.1f} "
                     f"| {r['prompt_tokens_per_episode']:,.0f} | {r['prompt_tokens_per_call']:,.0f} "
                     f"| {r['seconds_per_episode']:.0f} | {r.get('run_wall_s', 0):.0f} | {r.get('peak_gb', 0):.1f} |")
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
