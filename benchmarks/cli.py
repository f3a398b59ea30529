"""``agemem-bench``: run agents on AgeMem benchmarks, train memory agents, list what exists."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Benchmark LLM agents that manage their own memory.")


def _parse_options(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=flag)
        options[key.strip().replace("-", "_")] = _parse_value(value)
    return options


def _parse_value(text: str) -> Any:
    """YAML scalars, plus the numbers YAML 1.1 leaves as strings (``2e-5``, ``1E3``)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


_THREADS_HELP = ("torch CPU threads for local models (default: $AGEMEM_THREADS, else $OMP_NUM_THREADS, "
                 "else the cores not already busy; extra threads on busy cores slow a model down "
                 "several times).")


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def _interrupted(what: str) -> typer.Exit:
    """Ctrl-C: say what is kept and how to go on; exit 130 like a shell."""
    command = shlex.join(["agemem-bench", *sys.argv[1:]])
    typer.secho(f"\ninterrupted: {what}; run the same command to resume:\n  {command}",
                fg=typer.colors.YELLOW, err=True)
    return typer.Exit(130)


def _set_threads(threads: int | None) -> None:
    """``--threads``: through the environment, so every model of the run (and any process it
    starts) uses it."""
    if threads is not None:
        if threads < 1:
            raise typer.BadParameter(f"must be >= 1, got {threads}", param_hint="--threads")
        from agemem_gym.llm import THREADS_ENV

        os.environ[THREADS_ENV] = str(threads)


def _check_model(model: str | None, backend: str | None) -> None:
    """``--model tiny`` without a ./tiny folder: say how to build it."""
    if model and backend != "openai" and Path(model).name == "tiny" and not Path(model).exists():
        raise typer.BadParameter(f"no model folder {model!r}; build the tiny model first: "
                                 f"agemem-bench tiny-model --out {model}", param_hint="--model")


def _parse_stages(text: str) -> tuple[int, ...]:
    try:
        stages = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError as e:
        raise typer.BadParameter(f"stages must look like 1,2,3 or 3, got {text!r}") from e
    return stages


@app.command()
def run(
    agent: Annotated[str | None, typer.Option(help="Agent: oracle, noop, random, ...")] = None,
    env: Annotated[str | None, typer.Option(help="Benchmark: assistant, hotpotqa, babyai, ...")] = None,
    episodes: Annotated[int | None, typer.Option(help="Episodes (default: the whole evaluation set).")] = None,
    seed: Annotated[int, typer.Option(help="Base seed; episode i uses seed + i.")] = 0,
    stages: Annotated[str | None, typer.Option(help="Stages to run, e.g. 1,2,3 or 3 (default: 1,2,3; "
                                                    "1,3 under --protocol official).")] = None,
    protocol: Annotated[str, typer.Option(help="paper (our reading of the paper) or official (the "
                                               "authors' released code; docs/protocols.md).")] = "paper",
    out: Annotated[Path | None, typer.Option(help="Run directory (default results/runs/<env>-<agent>[-s<stages>]"
                                                  "[-<data>][-<model>][-<hash of other options>]).")] = None,
    data: Annotated[str | None, typer.Option(help="Benchmark data file or directory.")] = None,
    env_arg: Annotated[list[str] | None, typer.Option(help="Extra env option KEY=VALUE (repeatable).")] = None,
    agent_arg: Annotated[list[str] | None, typer.Option(help="Extra agent option KEY=VALUE (repeatable).")] = None,
    concurrency: Annotated[int, typer.Option(help="Episodes run at once; their model calls are batched.")] = 1,
    workers: Annotated[str, typer.Option(help="Where the envs step: local (in turn), processes (in "
                                              "parallel) or ray (one actor each).")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster for --workers ray (auto, "
                                                         "ray://host:10001; default: a local one).")] = None,
    model: Annotated[str | None, typer.Option(help="Model path or hub id (LLM agents).")] = None,
    backend: Annotated[str | None, typer.Option(help="LLM backend: transformers or openai.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server: its address (http://host:8000) "
                                                      "or API root (http://host:8000/v1).")] = None,
    judge: Annotated[str | None, typer.Option(help="LLM judge model (default: deterministic judges).")] = None,
    summarizer: Annotated[str | None, typer.Option(help="LLM summarizer model (default: extractive).")] = None,
    judge_backend: Annotated[str, typer.Option(help="Backend of --judge and --summarizer.")] = "transformers",
    judge_base_url: Annotated[str | None, typer.Option(help="Server URL of --judge and --summarizer.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Start the run folder afresh instead of resuming it.")] = False,
    threads: Annotated[int | None, typer.Option(help=_THREADS_HELP)] = None,
    grid: Annotated[Path | None, typer.Option("--config", help="Grid file (configs/*.yaml): run every cell.")] = None,
) -> None:
    """Run AGENT on ENV (or the grid of --config).

    Re-running the same command resumes an interrupted run (Ctrl-C included);
    `agemem-bench describe NAME` lists a benchmark's --env-arg or an agent's --agent-arg options.
    """
    _set_threads(threads)
    if grid is not None:
        return _run_grid(grid, progress)
    if agent is None or env is None:
        raise typer.BadParameter("give --agent and --env, or --config for a grid", param_hint="--agent/--env")
    from agemem_gym.errors import AgeMemError
    from benchmarks.run_naming import default_run_folder
    from benchmarks.runner import RunConfig, summarize
    from benchmarks.runner import run as run_episodes

    _check_model(model, backend)

    env_options = _parse_options(env_arg, "--env-arg")
    if data is not None:
        env_options["data"] = data
    if protocol != "paper":
        env_options["protocol"] = protocol
    for key, llm_model in (("judge", judge), ("summarizer", summarizer)):
        if llm_model is not None:
            env_options[key] = {"model": llm_model, "backend": judge_backend}
            if judge_base_url is not None:
                env_options[key]["base_url"] = judge_base_url
    agent_options = _parse_options(agent_arg, "--agent-arg")
    for key, value in (("model", model), ("backend", backend), ("base_url", base_url)):
        if value is not None:
            agent_options[key] = value
    from agemem_gym.protocols import EVAL_STAGES

    if protocol not in EVAL_STAGES:
        raise typer.BadParameter(f"protocol must be one of {', '.join(EVAL_STAGES)}, got {protocol!r}",
                                 param_hint="--protocol")
    stage_list = _parse_stages(stages) if stages is not None else EVAL_STAGES[protocol]
    out = out or default_run_folder(env, agent, stages=stage_list, seed=seed, env_options=env_options,
                                    agent_options=agent_options)
    try:
        config = RunConfig(
            env=env, agent=agent, out=out, episodes=episodes, seed=seed, stages=stage_list,
            env_options=env_options, agent_options=agent_options, concurrency=concurrency,
            progress=progress, overwrite=overwrite, workers=workers, ray_address=ray_address,
        )
        records = run_episodes(config)
    except (AgeMemError, TypeError) as e:
        raise _fail(e) from e
    except KeyboardInterrupt:
        raise _interrupted(f"finished episodes are kept in {out}/episodes.jsonl") from None
    summary = summarize(records)
    columns = [c for c in ("episodes", "metrics.score", "metrics.success", "metrics.mq",
                           "reward.total", "rounds") if c in summary.columns]
    typer.echo(summary[["benchmark", "agent", *columns]].to_string(index=False))
    typer.echo(f"wrote {config.out}/episodes.jsonl, summary.csv, config.yaml")


@app.command()
def train(
    env: Annotated[str, typer.Option(help="Benchmark to train on.")],
    model: Annotated[str, typer.Option(help="Model path or hub id, or 'tiny' to build a tiny one.")],
    out: Annotated[Path, typer.Option(help="Run folder (re-running the command resumes it).")],
    max_steps: Annotated[int, typer.Option(help="GRPO steps.")] = 100,
    group_size: Annotated[int, typer.Option(help="K: episodes per task.")] = 8,
    tasks_per_step: Annotated[int, typer.Option(help="Tasks per step (per process).")] = 4,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-5,
    beta: Annotated[float, typer.Option(help="KL coefficient.")] = 0.1,
    loss_type: Annotated[str, typer.Option(help="grpo (the paper) or dr_grpo.")] = "grpo",
    clip_eps: Annotated[float | None, typer.Option(help="PPO clip range (default: no clipping).")] = None,
    reward_mode: Annotated[str, typer.Option(help="full (the paper's reward) or task (Answer-Only).")] = "full",
    preset: Annotated[str, typer.Option(help="paper (step-wise GRPO as the paper describes it) or trinity (the "
                                             "released recipe: plain GRPO over kept turns, clip 0.2, k2 KL 0.001, "
                                             "LoRA 32, temperature 0.6); it overrides the flags it sets, "
                                             "--grpo-arg overrides it.")] = "paper",
    curriculum: Annotated[str, typer.Option(help="Stage subsets in order, e.g. '3;1,3;1,2,3'.")] = "1,2,3",
    lora: Annotated[bool, typer.Option(help="Train LoRA adapters (peft).")] = False,
    rollout_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server for rollouts "
                                                              "(address or API root).")] = None,
    workers: Annotated[str, typer.Option(help="Where the rollout envs step: local (in turn), processes (in "
                                              "parallel) or ray (one actor each); generation stays "
                                              "batched in this process.")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster for --workers ray (auto, "
                                                         "ray://host:10001; default: a local one).")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    max_new_tokens: Annotated[int | None, typer.Option(help="Response limit (default 256; 64 with --model tiny).")] = None,
    sft: Annotated[bool, typer.Option(help="Warm-start on a scripted policy's turns first.")] = False,
    env_arg: Annotated[list[str] | None, typer.Option(help="Env option KEY=VALUE (repeatable).")] = None,
    grpo_arg: Annotated[list[str] | None, typer.Option(help="Any other GRPOConfig field KEY=VALUE.")] = None,
    sft_arg: Annotated[list[str] | None, typer.Option(help="SFTConfig field KEY=VALUE (with --sft).")] = None,
    teacher_arg: Annotated[list[str] | None, typer.Option(help="Teacher option KEY=VALUE (with --sft).")] = None,
    eval_episodes: Annotated[int, typer.Option(help="Held-out episodes before and after (0: none).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    threads: Annotated[int | None, typer.Option(help=_THREADS_HELP)] = None,
) -> None:
    """Train a memory agent with step-wise GRPO (optionally after a supervised warm start).

    Re-running the same command resumes an interrupted run (Ctrl-C included) from its last
    checkpoint.
    """
    from agemem_gym.errors import AgeMemError

    _set_threads(threads)

    try:
        from agemem_gym.errors import ConfigError
        from agemem_gym.training.grpo import PRESETS, GRPOConfig
        from agemem_gym.training.sft import SFTConfig
        from benchmarks.train_run import (
            TINY_ASSISTANT,
            TINY_ENV_DEFAULTS,
            TINY_TEACHER,
            TrainRun,
            run_training,
        )
    except ImportError as e:
        typer.secho(f"error: training needs the [train] extra: pip install 'agemem-gym[train]' ({e})",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    env_options = _parse_options(env_arg, "--env-arg")
    teacher_options = _parse_options(teacher_arg, "--teacher-arg")
    if model == "tiny":  # a model trained from scratch: small tasks, short prompt and responses
        env_options = {**TINY_ENV_DEFAULTS, **(TINY_ASSISTANT if env == "assistant" else {}), **env_options}
        teacher_options = {**TINY_TEACHER, **teacher_options}
        max_new_tokens = max_new_tokens or 64
    try:
        if preset not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        settings: dict[str, Any] = dict(
            model=model, out=str(out / "grpo"), env=env, env_options=env_options, max_steps=max_steps,
            group_size=group_size, tasks_per_step=tasks_per_step, learning_rate=learning_rate, beta=beta,
            loss_type=loss_type, clip_eps=clip_eps, reward_mode=reward_mode,
            curriculum=tuple(_parse_stages(part) for part in curriculum.split(";")), lora=lora,
            rollout_base_url=rollout_base_url, workers=workers, ray_address=ray_address, seed=seed,
            progress=progress,
            max_new_tokens=max_new_tokens or 256,
        )
        if model == "smollm2-135m":  # its 49k-token vocabulary: 8,192-token micro-batches passed 19 GB
            settings["tokens_per_micro_batch"] = 1024
        grpo = GRPOConfig(**{**settings, **PRESETS[preset], **_parse_options(grpo_arg, "--grpo-arg")})
        warm = None
        if sft:
            warm = SFTConfig(model=model, out="", env=env, env_options=env_options, seed=seed, progress=progress,
                             teacher_options=teacher_options,
                             **_parse_options(sft_arg, "--sft-arg"))
        summary = run_training(TrainRun(grpo=grpo, out=out, tiny=model == "tiny", sft=warm,
                                        eval_episodes=eval_episodes))
    except (AgeMemError, TypeError) as e:
        raise _fail(e) from e
    except KeyboardInterrupt:
        raise _interrupted(f"finished stages and the last GRPO checkpoint are kept in {out}") from None
    if summary:
        for when in ("before", "after"):
            typer.echo(f"{when:>6}: score {summary[when]['score']:.3f}  reward {summary[when]['reward']:.3f}")
    typer.echo(f"wrote {out}")


@app.command("train-report")
def train_report(
    root: Annotated[Path, typer.Argument(help="Folder whose subfolders are `agemem-bench train` runs.")],
) -> None:
    """Compare finished training runs: summary.csv (per run, and mean/std per reward mode) and curves.png."""
    from benchmarks.train_run import report_runs

    try:
        table = report_runs(root)
    except (FileNotFoundError, KeyError, ValueError) as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    columns = ["run", "reward_mode", "seed", "before_score", "after_score", "gain_score", "gain_reward"]
    typer.echo(table[columns].to_string(index=False, float_format="%.3f"))
    typer.echo(f"wrote {root}/summary.csv, {root}/curves.png")


@app.command("tiny-model")
def tiny_model(
    out: Annotated[Path, typer.Option(help="Folder to write the model and tokenizer to.")],
    arch: Annotated[str, typer.Option(help="Architecture: qwen2 or qwen3.")] = "qwen2",
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Build a tiny randomly initialised chat model for offline tests and demos."""
    from agemem_gym.errors import AgeMemError
    from agemem_gym.llm import build_tiny_model

    try:
        path = build_tiny_model(out, arch=arch, seed=seed)
    except AgeMemError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    typer.echo(f"wrote a tiny {arch} model to {path}")


@app.command("list")
def list_all() -> None:
    """List benchmarks (with their Gymnasium ids) and agents, one line each."""
    from agemem_gym.registration import env_id
    from benchmarks.options import extra_installed, load_registries, summary_line, target_of

    benchmarks, agents = load_registries()
    typer.echo("benchmarks:")
    for name, entry in benchmarks.items():
        extra = None if isinstance(entry, str) else entry[1]
        needs = "" if extra_installed(extra) else f"  (needs: pip install 'agemem-gym[{extra}]')"
        typer.echo(f"  {name:<10} {env_id(name)}{needs}")
    typer.echo("agents:")
    width = max(len(name) for name in agents)
    for name, entry in agents.items():
        typer.echo(f"  {name:<{width}}  {summary_line(target_of(entry))}")
    typer.echo("options: agemem-bench describe NAME (a benchmark's --env-arg, an agent's --agent-arg)")


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="A benchmark or an agent (see `agemem-bench list`).")],
) -> None:
    """Print the options of a benchmark (--env-arg) or an agent (--agent-arg): default and help."""
    from benchmarks.options import describe as describe_options
    from benchmarks.options import load_registries

    try:
        typer.echo(describe_options(name, *load_registries()))
    except KeyError as e:
        raise _fail(ValueError(e.args[0])) from e


def _run_grid(path: Path, progress: bool) -> None:
    """``run --config``: every cell of a grid file (benchmarks/grid.py)."""
    from agemem_gym.errors import AgeMemError
    from benchmarks.grid import load_grid, run_grid

    try:
        grid = load_grid(path)
        cells = run_grid(grid, progress=progress)
    except (AgeMemError, TypeError) as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    typer.echo(f"grid {grid.name}: {len(cells)} cells done in {grid.folder}; "
               f"next: agemem-bench table {grid.folder} --paper")


@app.command()
def table(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, or folders holding them (a grid).")],
    paper: Annotated[bool, typer.Option(help="Put the paper's numbers and the difference beside ours.")] = False,
    format: Annotated[str, typer.Option(help="md, csv or latex.")] = "md",
    only: Annotated[list[str] | None, typer.Option(help="Only this table (repeatable): table2, mq, ...")] = None,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of the terminal.")] = None,
) -> None:
    """Build the paper's tables from run folders (benchmarks/tables.py)."""
    from agemem_gym.errors import AgeMemError
    from benchmarks.run_folders import find_runs
    from benchmarks.tables import build_tables, render

    try:
        text = render(build_tables(find_runs(runs), paper=paper, names=only), format)
    except AgeMemError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    if out is None:
        typer.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders, or folders holding them (a grid).")],
    out: Annotated[Path, typer.Option(help="Folder to write index.html to.")],
    train: Annotated[list[Path] | None, typer.Option(help="A training run folder (its curve.csv).")] = None,
    paper: Annotated[bool, typer.Option(help="Put the paper's numbers beside ours.")] = True,
) -> None:
    """Write a static HTML report (tables, plots, a trace viewer per episode) to OUT/index.html."""
    from agemem_gym.errors import AgeMemError
    from benchmarks.report import write_report

    try:
        path = write_report(runs, out, train_runs=train or (), paper=paper)
    except AgeMemError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from e
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    app()
