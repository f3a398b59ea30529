"""``agemem-bench train``: tiny model -> supervised warm start -> step-wise GRPO -> held-out eval.

Every stage writes into one run folder and is skipped when its output is already there, so
re-running the same command after a kill resumes (GRPO from its last checkpoint):

    out/tiny/          the tiny model (``--model tiny``)
    out/sft/           the warm-started model (``--sft``)
    out/grpo/          log.jsonl, tb/, checkpoint/, model/ (see agemem_gym.training.grpo)
    out/eval-before/   held-out episodes of the starting model (``--eval-episodes``)
    out/eval-after/    held-out episodes of the trained model
    out/eval.json      before/after score and reward
    out/curve.csv, out/curve.png   the learning curve
    out/command.txt    the command that made the folder
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agemem_gym.training.grpo import GRPOConfig, train
from agemem_gym.training.sft import SFTConfig, build_task_tiny_model, train_sft
from benchmarks.runner import RunConfig, run


@dataclass
class TrainRun:
    """What ``agemem-bench train`` does besides GRPO itself."""

    grpo: GRPOConfig
    """The GRPO settings (``grpo.out`` is ``out/grpo``)."""
    out: Path
    """Run folder."""
    tiny: bool = False
    """Build a tiny model first (``--model tiny``)."""
    sft: SFTConfig | None = None
    """Warm start (None: start GRPO from the model as it is)."""
    eval_episodes: int = 0
    """Held-out episodes (evaluation tasks 0..N-1) before and after training; 0 skips."""
    eval_temperature: float | None = None
    """Sampling temperature of the evaluation (default: the training temperature)."""


def run_training(config: TrainRun) -> dict[str, Any]:
    """Run every stage that has not run yet; return the eval summary (empty without eval)."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(shlex.join(["agemem-bench", *sys.argv[1:]]) + "\n")
    model = config.grpo.model
    if config.tiny:
        model = _tiny(config, out / "tiny")
    if config.sft is not None:
        sft = dataclasses.replace(config.sft, model=model, out=str(out / "sft"))
        if not (out / "sft" / "agemem_sft.json").exists():
            train_sft(sft)
        model = sft.out
    grpo = dataclasses.replace(config.grpo, model=model, out=str(out / "grpo"))
    before = _evaluate(config, model, out / "eval-before")
    if not (out / "grpo" / "model" / "config.json").exists():
        train(grpo)
    after = _evaluate(config, str(out / "grpo" / "model"), out / "eval-after")
    write_curve(out / "grpo" / "log.jsonl", out)
    if not before:
        return {}
    summary = {"before": before, "after": after,
               "gain": {k: after[k] - before[k] for k in ("score", "reward")},
               "eval": {"episodes": config.eval_episodes, "temperature": _eval_temperature(config),
                        "tasks": f"evaluation set 0..{config.eval_episodes - 1} (never trained on)"}}
    (out / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _tiny(config: TrainRun, path: Path) -> str:
    if not (path / "config.json").exists():
        sample = config.sft or SFTConfig(model="", out="", env=config.grpo.env)
        sample = dataclasses.replace(sample, env=config.grpo.env, env_options=config.grpo.env_options,
                                     seed=config.grpo.seed)
        build_task_tiny_model(sample, path, vocab_size=2048)
    return str(path)


def _eval_temperature(config: TrainRun) -> float:
    return config.grpo.temperature if config.eval_temperature is None else config.eval_temperature


def _evaluate(config: TrainRun, model: str, out: Path) -> dict[str, float]:
    """Mean score and reward of ``model`` on the held-out evaluation tasks, through the runner."""
    if config.eval_episodes < 1:
        return {}
    grpo = config.grpo
    env_options = {**grpo.env_options, "reward_mode": grpo.reward_mode}
    if grpo.reward_weights is not None:
        env_options["reward_weights"] = grpo.reward_weights
    run_config = RunConfig(
        env=grpo.env, agent="agemem", out=out, episodes=config.eval_episodes, seed=10_000,
        stages=grpo.curriculum[-1], env_options=env_options, concurrency=config.eval_episodes,
        agent_options={"model": model, "temperature": _eval_temperature(config), "seed": grpo.seed,
                       "max_new_tokens": grpo.max_new_tokens},
        progress=grpo.progress,
    )
    records = run(run_config)
    frame = pd.json_normalize(records)
    result = {"score": float(frame["metrics.score"].mean()), "reward": float(frame["reward.total"].mean())}
    for column in frame.columns:
        if column.startswith("tool_calls."):
            result[column.replace("tool_calls.", "tools/")] = float(frame[column].fillna(0).mean())
    if "metrics.mq" in frame:
        result["mq"] = float(frame["metrics.mq"].mean())
    return result


def write_curve(log_path: Path, out: Path) -> pd.DataFrame:
    """``curve.csv`` (step, reward, score, loss, KL, tool use) and ``curve.png`` from a GRPO log."""
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(entries)
    keep = [c for c in frame.columns if c == "step" or c.split("/")[0] in ("reward", "task", "memory", "tools", "train")]
    frame = frame[keep]
    frame.to_csv(out / "curve.csv", index=False)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return frame
    panels = [("reward/total", "reward"), ("task/score", "task score"),
              ("tools/Add_memory", "Add_memory per episode"), ("tools/Retrieve_memory", "Retrieve_memory per episode")]
    panels = [(c, t) for c, t in panels if c in frame]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (column, title) in zip(axes[0], panels, strict=True):
        ax.plot(frame["step"], frame[column], color="0.7", linewidth=1)
        ax.plot(frame["step"], frame[column].rolling(5, min_periods=1).mean(), color="C0")
        ax.set_title(title)
        ax.set_xlabel("GRPO step")
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=110)
    plt.close(fig)
    return frame
