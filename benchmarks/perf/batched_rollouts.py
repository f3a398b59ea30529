"""Throughput of LLM rollouts on a local model: batched against sequential, with and without
reuse of the prompt prefix's key/value states.

The same episodes of ``AgeMem/Assistant-v0`` (small setting) are run through the real runner
(:func:`benchmarks.runner.run`), each into its own temporary run directory, with one loaded
model shared by every run and greedy decoding, in four modes:

* ``sequential``: ``concurrency=1``, one prompt per ``generate`` call, every prompt encoded
  from scratch (``prefill="padded"``, ``prefix_cache_mb=0``: the backend before prefix reuse);
* ``batched``: ``concurrency=N``, the pending prompts of all running episodes in one call,
  left-padded to the longest and run together from scratch;
* ``sequential+cache`` and ``batched+cache``: the backend's default (``prefill="per_prompt"``
  with a prefix cache; each run starts with an empty one): a prompt reuses the states of the
  longest start it shares with an earlier prompt (the episode's previous turn, the system
  prompt), runs the model alone over its new tokens, and the batch decodes together;
* ``batched+unpadded`` (not run unless asked): per-prompt prefill without reuse.

It prints, per mode, episodes/s, the prompt tokens the model actually ran (``prefilled``: with
padding; with the cache, only the uncached tokens), and each mode's episodes/s as a ratio to
``sequential`` measured in the same round; ``--repeats`` rounds give the spread of the ratios
(the machine may be shared: ratios within one round are what to compare). All runs must do
identical work: the script compares, episode by episode, the rounds, model calls, prompt and
completion tokens and answer (prompt tokens cover every earlier response, so equal counts mean
the trajectories match) and says whether they agree.

The model is the tiny random model (:func:`agemem_gym.llm.build_tiny_model`, built into a
temporary folder) unless ``--model`` names another one. Needs the ``llm`` extra. Run with
``OMP_NUM_THREADS=1`` (and ``AGEMEM_THREADS=1``) for a single torch thread.

Usage: python benchmarks/perf/batched_rollouts.py [--episodes 8] [--model DIR] [--repeats 3]
       [--modes sequential,batched,sequential+cache,batched+cache] [--max-new-tokens 24]
       [--max-steps-per-turn 2] [--device cpu] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agemem_gym.llm import build_tiny_model
from agemem_gym.llm._kv_cache import PrefixCache
from agemem_gym.policies.llm_agent import AgeMemAgent
from agemem_gym.spaces import Observation
from benchmarks.runner import RunConfig, run

#: A small Assistant setting: 4 stage-1 turns, 2 short distractors, one queried value.
ENV_OPTIONS: dict[str, Any] = {
    "num_facts": 3,
    "num_updates": 1,
    "num_deletes": 0,
    "num_distractors": 2,
    "distractor_sentences": 2,
    "num_queried": 1,
}
MODES = ("sequential", "batched", "sequential+cache", "batched+cache", "batched+unpadded")
DEFAULT_MODES = MODES[:4]
#: Prefix cache of the cached modes (MiB).
CACHE_MB = 1024


class CountingAgent(AgeMemAgent):
    """The AgeMem agent, recording every batch it sends to the model and its padded width."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.batches: list[int] = []
        self.padded_tokens = 0
        self.seconds = 0.0

    def act_batch(
        self, observations: Sequence[Observation], infos: Sequence[dict[str, Any]]
    ) -> list[str]:
        self.batches.append(len(observations))
        start = time.perf_counter()
        try:
            return super().act_batch(observations, infos)
        finally:
            self.seconds += time.perf_counter() - start
            widths = [u["prompt_tokens"] for u in self.last_usage() or []]
            self.padded_tokens += len(widths) * max(widths, default=0)


def timed_run(
    agent: CountingAgent, mode: str, episodes: int, env_options: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Run ``episodes`` episodes in ``mode``; return the records and the rates."""
    concurrency = 1 if mode.startswith("sequential") else episodes
    cached = mode.endswith("+cache")
    agent.llm.prefix_cache = PrefixCache(CACHE_MB * 2**20) if cached else None
    agent.llm.prefill = "per_prompt" if "+" in mode else "padded"
    agent.batches, agent.padded_tokens, agent.seconds = [], 0, 0.0
    config = RunConfig(
        env="assistant",
        agent="agemem",
        out=out,
        episodes=episodes,
        env_options=env_options,
        concurrency=concurrency,
        progress=False,
    )
    start = time.perf_counter()
    records = run(config, policy=agent)
    seconds = time.perf_counter() - start
    records = sorted(records, key=lambda r: r["index"])
    calls = sum(r["cost"]["agent"]["llm_calls"] for r in records)
    # with the cache the model runs each prompt's uncached tokens, then its last token
    prefilled = (agent.llm.prefix_cache.stats.computed_tokens + calls if cached
                 else agent.padded_tokens if agent.llm.prefill == "padded"
                 else sum(r["tokens"]["prompt"] for r in records))
    return {
        "mode": mode,
        "concurrency": concurrency,
        "seconds": seconds,
        "episodes_per_s": len(records) / seconds,
        "completion_tokens": sum(r["tokens"]["completion"] for r in records),
        "prompt_tokens": sum(r["tokens"]["prompt"] for r in records),
        "prefilled_tokens": prefilled,
        "llm_calls": calls,
        "generate_calls": len(agent.batches),
        "mean_batch": sum(agent.batches) / max(len(agent.batches), 1),
        "model_seconds": agent.seconds,
        "records": records,
    }


def work_of(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What each episode did, for comparing two runs."""
    return [
        (
            r["index"],
            r["rounds"],
            r["cost"]["agent"]["llm_calls"],
            r["tokens"]["prompt"],
            r["tokens"]["completion"],
            r["answer"],
        )
        for r in records
    ]


def report_round(rows: list[dict[str, Any]], reference: dict[str, Any] | None) -> None:
    print(
        f"{'mode':<18}{'conc':>5}{'wall s':>9}{'ep/s':>8}{'x seq':>7}{'prompt tok':>12}"
        f"{'prefilled':>11}{'compl':>7}{'calls':>7}{'generates':>11}{'mean batch':>12}"
    )
    for row in rows:
        ratio = row["episodes_per_s"] / reference["episodes_per_s"] if reference else float("nan")
        print(
            f"{row['mode']:<18}{row['concurrency']:>5}{row['seconds']:>9.2f}"
            f"{row['episodes_per_s']:>8.3f}{ratio:>7.2f}{row['prompt_tokens']:>12}"
            f"{row['prefilled_tokens']:>11}{row['completion_tokens']:>7}{row['llm_calls']:>7}"
            f"{row['generate_calls']:>11}{row['mean_batch']:>12.2f}"
        )
    first = work_of(rows[0]["records"])
    for row in rows[1:]:
        if work_of(row["records"]) != first:
            print(f"  identical work: NO ({row['mode']} differs from {rows[0]['mode']})")
            for a, b in zip(first, work_of(row["records"]), strict=True):
                if a != b:
                    print(f"    episode {a[0]}: {rows[0]['mode']} {a[1:]} vs {row['mode']} {b[1:]}")
            return
    print(f"  identical work across modes: yes ({rows[0]['llm_calls']} model calls)")


def ratio_summary(rounds: list[list[dict[str, Any]]]) -> dict[str, list[float]]:
    """Per ratio name, its value in every round."""
    ratios: dict[str, list[float]] = {}
    for rows in rounds:
        rate = {row["mode"]: row["episodes_per_s"] for row in rows}
        pairs = [(m, "sequential") for m in MODES[1:]] + [("batched+cache", "sequential+cache")]
        for top, bottom in pairs:
            if top in rate and bottom in rate:
                ratios.setdefault(f"{top} / {bottom}", []).append(rate[top] / rate[bottom])
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=8, help="episodes per run (= concurrency)")
    parser.add_argument(
        "--model", default=None, help="model folder (default: build the tiny model)"
    )
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help=f"comma-separated modes to run, of {', '.join(MODES)}")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all modes")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--max-steps-per-turn", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device of the transformers backend")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    env_options = {**ENV_OPTIONS, "max_steps_per_turn": args.max_steps_per_turn}

    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="batched-rollouts-") as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny"))
        agent = CountingAgent(
            model=model,
            max_new_tokens=args.max_new_tokens,
            temperature=0.0,
            device=args.device,
            batch_size=max(args.episodes, 1),
        )
        agent.llm.generate([[{"role": "user", "content": "warm up"}]], max_new_tokens=4)
        print(
            f"model {model} on {args.device}; {args.episodes} episodes of assistant "
            f"{env_options}, max_new_tokens={args.max_new_tokens}, greedy"
        )
        for k in range(args.repeats):
            rows = [
                timed_run(agent, mode, args.episodes, env_options, Path(tmp) / f"{k}-{j}-{mode}")
                for j, mode in enumerate(modes)
            ]
            rounds.append(rows)
            print(f"round {k + 1}/{args.repeats}")
            report_round(rows, next((r for r in rows if r["mode"] == "sequential"), None))
    ratios = ratio_summary(rounds)
    for name, values in ratios.items():
        print(
            f"{name:<38} median {statistics.median(values):.2f}x "
            f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} rounds)"
        )
    if args.json is not None:
        figures = {
            "rounds": [[{k: v for k, v in row.items() if k != "records"} for row in rows]
                       for rows in rounds],
            "ratios": ratios,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
