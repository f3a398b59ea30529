"""Throughput of batched LLM rollouts: the ``agemem`` agent with ``concurrency=N`` against 1.

The same episodes of ``AgeMem/Assistant-v0`` (small setting) are run twice through the real
runner (:func:`benchmarks.runner.run`), each into its own temporary run directory, with one
loaded model shared by both runs and greedy decoding:

* sequential: ``concurrency=1``, one prompt per ``generate`` call;
* batched: ``concurrency=N``, the pending prompts of all running episodes in one call.

It prints episodes/s, completion and prompt tokens/s, the mean batch size of each run and their
ratio. Both runs must do identical work: the script compares, episode by episode, the steps,
model calls, prompt tokens and completion tokens (prompt tokens cover every earlier response,
so equal counts mean the trajectories match) and says whether they agree. Left padding can in
principle change a greedy argmax by a rounding error; if it ever does, the output says so.

The model is the tiny random model (:func:`agemem_gym.llm.build_tiny_model`, built into a
temporary folder) unless ``--model`` names another one. Needs the ``llm`` extra.

Usage: python benchmarks/perf/batched_rollouts.py [--episodes 8] [--model DIR]
       [--max-new-tokens 24] [--max-steps-per-turn 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agemem_gym.llm import build_tiny_model
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


class CountingAgent(AgeMemAgent):
    """The AgeMem agent, recording the size of every batch it sends to the model."""

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.batches: list[int] = []
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


def timed_run(
    agent: CountingAgent, concurrency: int, episodes: int, env_options: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Run ``episodes`` episodes at ``concurrency``; return the records and the rates."""
    agent.batches, agent.seconds = [], 0.0
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
    prompt = sum(r["tokens"]["prompt"] for r in records)
    completion = sum(r["tokens"]["completion"] for r in records)
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "episodes_per_s": len(records) / seconds,
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "completion_tokens_per_s": completion / seconds,
        "prompt_tokens_per_s": prompt / seconds,
        "llm_calls": sum(r["llm_calls"] for r in records),
        "generate_calls": len(agent.batches),
        "mean_batch": sum(agent.batches) / len(agent.batches),
        "model_seconds": agent.seconds,
        "records": records,
    }


def work_of(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What each episode did, for comparing two runs."""
    return [
        (
            r["index"],
            r["steps"],
            r["llm_calls"],
            r["tokens"]["prompt"],
            r["tokens"]["completion"],
            r["answer"],
        )
        for r in records
    ]


def report(sequential: dict[str, Any], batched: dict[str, Any]) -> None:
    header = (
        f"{'run':<12}{'conc':>5}{'wall s':>9}{'ep/s':>8}{'compl tok/s':>13}"
        f"{'prompt tok/s':>14}{'calls':>7}{'generates':>11}{'mean batch':>12}{'model s':>9}"
    )
    print(header)
    for name, row in (("sequential", sequential), ("batched", batched)):
        print(
            f"{name:<12}{row['concurrency']:>5}{row['seconds']:>9.2f}{row['episodes_per_s']:>8.3f}"
            f"{row['completion_tokens_per_s']:>13.1f}{row['prompt_tokens_per_s']:>14.0f}"
            f"{row['llm_calls']:>7}{row['generate_calls']:>11}{row['mean_batch']:>12.2f}"
            f"{row['model_seconds']:>9.2f}"
        )
    print(
        f"speed-up (batched / sequential episodes/s): "
        f"{batched['episodes_per_s'] / sequential['episodes_per_s']:.2f}x"
    )
    same = work_of(sequential["records"]) == work_of(batched["records"])
    print(
        f"identical work: {'yes' if same else 'NO'} (completion tokens "
        f"{sequential['completion_tokens']} vs {batched['completion_tokens']}, prompt tokens "
        f"{sequential['prompt_tokens']} vs {batched['prompt_tokens']}, model calls "
        f"{sequential['llm_calls']} vs {batched['llm_calls']})"
    )
    if not same:
        for a, b in zip(work_of(sequential["records"]), work_of(batched["records"]), strict=True):
            if a != b:
                print(f"  episode {a[0]}: sequential {a[1:]} vs batched {b[1:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=8, help="episodes per run (= concurrency)")
    parser.add_argument(
        "--model", default=None, help="model folder (default: build the tiny model)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--max-steps-per-turn", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device of the transformers backend")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    env_options = {**ENV_OPTIONS, "max_steps_per_turn": args.max_steps_per_turn}

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
        sequential = timed_run(agent, 1, args.episodes, env_options, Path(tmp) / "sequential")
        batched = timed_run(agent, args.episodes, args.episodes, env_options, Path(tmp) / "batched")
    report(sequential, batched)
    if args.json is not None:
        figures = {
            name: {k: v for k, v in row.items() if k != "records"}
            for name, row in (("sequential", sequential), ("batched", batched))
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
