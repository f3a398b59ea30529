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
    out/config.json    every setting of every stage, and ``train_split``: where the training tasks
                       come from (never the evaluation set)
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

from agemem_gym.llm.models import resolve_model
from agemem_gym.tasks import training_split
from agemem_gym.training.grpo import GRPOConfig, train
from agemem_gym.training.sft import SFTConfig, build_task_tiny_model, train_sft
from benchmarks.runner import RunConfig, run

#: The tiny model ``--model tiny`` trains from scratch: 3 layers of width 128 with a 2,048-token
#: BPE fitted to the task, started from the usual small init (the plumbing model's 0.2 spreads
#: its logits but slows learning).
TINY_MODEL: dict[str, Any] = {"vocab_size": 2048, "num_layers": 3, "initializer_range": 0.02}
#: Env defaults with ``--model tiny`` (each overridable with --env-arg): a model trained from
#: scratch on CPU cannot afford the full prompt or long turns of garbage before it learns.
TINY_ENV_DEFAULTS: dict[str, Any] = {"prompt": "compact", "max_steps_per_turn": 2}
#: ... and on the Assistant: one fact, one distractor, one question.
TINY_ASSISTANT: dict[str, Any] = {"num_facts": 1, "num_updates": 0, "num_deletes": 0, "small_talk": 0,
                                  "num_distractors": 1, "distractor_sentences": 1, "num_queried": 1,
                                  "tools": ["Add_memory", "Retrieve_memory"]}
#: Warm-start teacher defaults with ``--model tiny`` (each overridable with --teacher-arg): one
#: memory per retrieval, and answers that quote the retrieved line, which a tiny model learns to
#: copy, where picking the value out of it needs more than it learns in minutes.
TINY_TEACHER: dict[str, Any] = {"top_k": 1, "answer": "quote"}


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
    tiny_options: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(TINY_MODEL))
    """Sizes of the tiny model (:func:`~agemem_gym.llm.tiny_model.build_tiny_model` options)."""


def run_training(config: TrainRun) -> dict[str, Any]:
    """Run every stage that has not run yet; return the eval summary (empty without eval).

    Under ``accelerate launch`` (or ``torchrun`` with ``ACCELERATE_USE_CPU=1`` for processes on
    CPU) only GRPO runs in every process; the tiny model, the warm start, the evaluations and the
    files of the run folder are the main process's, and the others wait for them.
    """
    from accelerate import Accelerator

    accelerator = Accelerator()  # the launcher's process group (the trainer's Accelerator shares it)
    out = config.out
    model = resolve_model(config.grpo.model)  # a named model (smollm2-135m): its folder
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "command.txt").write_text(shlex.join(["agemem-bench", *sys.argv[1:]]) + "\n")
        settings = {**dataclasses.asdict(config),  # and where the training tasks come from
                    "train_split": training_split(config.grpo.env, config.grpo.env_options)}
        (out / "config.json").write_text(json.dumps(settings, indent=2, default=str) + "\n")
        if config.tiny and not (out / "tiny" / "config.json").exists():
            build_run_tiny_model(config, out / "tiny")
        if config.sft is not None and not (out / "sft" / "agemem_sft.json").exists():
            train_sft(dataclasses.replace(config.sft, model=str(out / "tiny") if config.tiny else model,
                                          out=str(out / "sft")))
    accelerator.wait_for_everyone()
    if config.tiny:
        model = str(out / "tiny")
    if config.sft is not None:
        model = str(out / "sft")
    before = _evaluate(config, model, out / "eval-before") if accelerator.is_main_process else {}
    if not (out / "grpo" / "model" / "config.json").exists():
        train(dataclasses.replace(config.grpo, model=model, out=str(out / "grpo")))
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return {}
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


def build_run_tiny_model(config: TrainRun, path: Path) -> Path:
    """The tiny model ``--model tiny`` starts from: ``config.tiny_options`` sizes, a tokenizer
    fitted to the teacher's episodes on the run's benchmark and env options."""
    sample = config.sft or SFTConfig(model="", out="", env=config.grpo.env)
    sample = dataclasses.replace(sample, env=config.grpo.env, env_options=config.grpo.env_options,
                                 seed=config.grpo.seed)
    return build_task_tiny_model(sample, path, **config.tiny_options)


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
    plt = _pyplot()
    if plt is None:
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


def report_runs(root: Path) -> pd.DataFrame:
    """Compare the training runs under ``root`` (one folder each, as written by
    :func:`run_training`): ``summary.csv`` with before/after per run plus one ``run == "mean"``
    row per reward mode (with ``*_std`` columns: sample std over seeds), and ``curves.png`` with
    each mode's training score per step.

    Raises:
        FileNotFoundError: no finished run (no ``eval.json``) under ``root``.
    """
    rows, curves = [], []
    for eval_path in sorted(root.glob("*/eval.json")):
        run_dir = eval_path.parent
        grpo = json.loads((run_dir / "config.json").read_text())["grpo"]
        summary = json.loads(eval_path.read_text())
        row = {"run": run_dir.name, "reward_mode": grpo["reward_mode"], "seed": grpo["seed"]}
        for when in ("before", "after", "gain"):
            row.update({f"{when}_{k}": summary[when][k] for k in ("score", "reward")})
        rows.append(row)
        curve = pd.read_csv(run_dir / "curve.csv")
        curves.append(curve.assign(reward_mode=grpo["reward_mode"], seed=grpo["seed"]))
    if not rows:
        raise FileNotFoundError(f"no finished training run (*/eval.json) under {root}")
    runs = pd.DataFrame(rows)
    numbers = [c for c in runs.columns if c.split("_")[0] in ("before", "after", "gain")]
    by_mode = runs.groupby("reward_mode")[numbers]
    means = by_mode.mean().join(by_mode.std().add_suffix("_std")).reset_index()
    table = pd.concat([runs, means.assign(run="mean", seed=None)], ignore_index=True)
    table.to_csv(root / "summary.csv", index=False)
    _plot_modes(pd.concat(curves, ignore_index=True), root / "curves.png")
    return table


def _plot_modes(curves: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for i, (mode, frame) in enumerate(curves.groupby("reward_mode")):
        color = f"C{i}"
        for _, seed in frame.groupby("seed"):
            ax.plot(seed["step"], seed["task/score"].rolling(10, min_periods=1).mean(), color=color, alpha=0.3)
        mean = frame.groupby("step")["task/score"].mean().rolling(10, min_periods=1).mean()
        ax.plot(mean.index, mean.values, color=color, label=f"reward = {mode} (mean of {frame['seed'].nunique()} seeds)")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("training task score (10-step mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pyplot() -> Any:
    """matplotlib's pyplot on a file-only backend, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
