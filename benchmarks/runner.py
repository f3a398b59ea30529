"""Runs an agent on a benchmark and writes ``episodes.jsonl``, ``summary.csv``, ``config.yaml``.

Episodes run ``concurrency`` at a time, each in its own env; at every step the pending
responses of all running episodes are requested in one ``act_batch`` call, so an LLM policy
can batch its generation. Re-running the same command resumes: finished episodes are skipped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

import baselines  # noqa: F401 - registers the baseline agents by name
from agemem_gym.config import EnvConfig, check_bool, check_choice, check_int, parse_stages
from agemem_gym.env import AgeMemEnv
from agemem_gym.env_groups import EnvFactory, EnvGroup, LocalEnvs, ProcessEnvs
from agemem_gym.memory.context import TokenCounter
from agemem_gym.policies import Policy, make_policy
from agemem_gym.result import EpisodeResult
from agemem_gym.rollout import FinishedEpisode, play_episodes
from benchmarks.episode_log import EpisodeLog
from benchmarks.provenance import git_commit, provenance
from benchmarks.run_folder import RunFolder
from benchmarks.traces import write_trace

# Settings that define a run: resuming with other values would mix two experiments.
_IDENTITY = ("env", "agent", "seed", "stages", "env_options", "agent_options")


@dataclass
class RunConfig:
    env: str
    """Benchmark name (``agemem-bench list`` shows them)."""
    agent: str
    """Agent name: oracle, noop, random, or a baseline/LLM agent."""
    out: Path
    """Run directory."""
    episodes: int | None = None
    """Episodes to run; None runs the benchmark's whole evaluation set."""
    seed: int = 0
    """Episode ``i`` is reset with seed ``seed + i`` on task ``i``."""
    stages: tuple[int, ...] = (1, 2, 3)
    """Stages of each episode."""
    env_options: dict[str, Any] = field(default_factory=dict)
    """Extra env/benchmark options (``data=``, difficulty, ``token_budget``, ...)."""
    agent_options: dict[str, Any] = field(default_factory=dict)
    """Extra agent options."""
    concurrency: int = 1
    """Episodes run at once (their model calls are batched)."""
    progress: bool = True
    """Show a progress bar."""
    overwrite: bool = False
    """Replace a previous run in ``out`` instead of resuming it."""
    workers: str = "local"
    """Where the ``concurrency`` envs live: ``local`` (this process, stepped in turn),
    ``processes`` (one worker process each, stepped in parallel) or ``ray`` (one Ray actor each)."""
    ray_address: str | None = None
    """The Ray cluster to join with ``workers="ray"`` (``auto``, ``ray://host:10001``; None
    starts a local one)."""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.stages = parse_stages(self.stages)
        self.concurrency = check_int("concurrency", self.concurrency, 1)
        self.episodes = check_int("episodes", self.episodes, 1, optional=True)
        self.seed = check_int("seed", self.seed, 0)
        self.overwrite = check_bool("overwrite", self.overwrite)
        self.workers = check_choice("workers", self.workers, ("local", "processes", "ray"))
        EnvConfig.split({**self.env_options, "stages": self.stages})  # env settings fail here

    def identity(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = list(self.stages)
        return {k: data[k] for k in _IDENTITY}


@dataclass
class _AgentUsage:
    """What one episode's agent (the policy's own model calls) cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_seconds: float = 0.0
    stage3_prompts: list[int] = field(default_factory=list)

    def cost(self) -> dict[str, Any]:
        return {"llm_calls": self.llm_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.llm_seconds, 4),
                "failures": 0}

    def tokens(self) -> dict[str, float]:
        per_call = sum(self.stage3_prompts) / len(self.stage3_prompts) if self.stage3_prompts else 0.0
        return {"prompt": self.prompt_tokens, "completion": self.completion_tokens,
                "prompt_per_stage3_call": round(per_call, 2)}


def episode_id(config: RunConfig, index: int) -> str:
    return f"{config.env}-{index:05d}"


def run(config: RunConfig, policy: Policy | None = None) -> list[dict[str, Any]]:
    """Run (or resume) ``config``; return every finished episode's record."""
    policy = policy or make_policy(config.agent, **config.agent_options)
    details = {"episodes": config.episodes, "concurrency": config.concurrency, "out": str(config.out)}
    with RunFolder(config.out, config.identity(), details, provenance(),
                   overwrite=config.overwrite) as folder:
        return _run_in_folder(config, policy, folder)


def _run_in_folder(config: RunConfig, policy: Policy, folder: RunFolder) -> list[dict[str, Any]]:
    log = EpisodeLog(folder.episodes_path)
    options = {**policy.env_options, **config.env_options, "stages": config.stages,
               "privileged_info": policy.privileged}
    local = config.workers == "local"
    if local:  # one judge, summarizer and encoder for every env of the run
        options = _shared_components(options)
    envs = [AgeMemEnv(config.env, **options) for _ in range(config.concurrency if local else 1)]
    group = LocalEnvs(envs) if local else _workers(config, options)
    try:
        total = config.episodes or len(envs[0].source)
        todo = [i for i in range(total) if episode_id(config, i) not in log.done]
        bar = tqdm(total=total, initial=total - len(todo), disable=not config.progress,
                   desc=f"{config.agent} on {config.env}", unit="ep")
        policy.reset()
        _play(config, policy, group, todo, log, bar, envs[0].context.counter)
        bar.close()
    finally:
        group.close()
        for env in envs:
            env.close()
        for component in (options.get("judge"), options.get("summarizer")):
            close = getattr(getattr(component, "llm", None), "close", None)
            if close is not None:
                close()
    write_summary(log.records, config.out / "summary.csv")
    return log.records


def _workers(config: RunConfig, options: dict[str, Any]) -> EnvGroup:
    """Worker processes or Ray actors, each building its own env (and judge) from ``options``."""
    factory = EnvFactory(config.env, options)
    if config.workers == "ray":
        from agemem_gym.ray_envs import RayEnvs

        return RayEnvs(factory, config.concurrency, address=config.ray_address)
    return ProcessEnvs(factory, config.concurrency)


def _shared_components(options: dict[str, Any]) -> dict[str, Any]:
    """Build the encoder, judge and summarizer once per run, so concurrent envs share one model
    each (every episode still counts its own calls)."""
    from agemem_gym.judges import make_judge
    from agemem_gym.memory.encoders import make_encoder
    from agemem_gym.memory.summarizers import make_summarizer

    options = dict(options)
    options["encoder"] = encoder = make_encoder(options.get("encoder", "hashing"))
    if options.get("judge") is not None:
        options["judge"] = make_judge(options["judge"], encoder)
    if options.get("summarizer") is not None:
        options["summarizer"] = make_summarizer(options["summarizer"])
    return options


def _play(config: RunConfig, policy: Policy, envs: EnvGroup, todo: list[int],
          log: EpisodeLog, bar: Any, counter: TokenCounter) -> None:
    starts = [{"seed": config.seed + i, "options": {"task_index": i}} for i in todo]
    usage = [_AgentUsage() for _ in todo]
    commit = git_commit()
    settings = policy.settings()

    def count(k: int, observation: Any, info: dict[str, Any], action: str,
              used: dict[str, Any] | None) -> None:
        u = usage[k]
        if used is None:  # no model: count what a model would have read and written
            prompt = info["context_tokens"]
            u.completion_tokens += counter.count(action)
        else:
            prompt = int(used["prompt_tokens"])
            u.completion_tokens += int(used["completion_tokens"])
            u.llm_calls += int(used["llm_calls"])
            u.llm_seconds += float(used["seconds"])
        u.prompt_tokens += prompt
        if info["stage"] == 3:
            u.stage3_prompts.append(prompt)

    def restart(k: int) -> None:  # its worker was lost: the episode is played again
        usage[k] = _AgentUsage()

    for done in play_episodes(envs, policy, starts, on_step=count, on_restart=restart):
        index = todo[done.index]
        result = _with_run(config, done.info["result"], index, done, usage[done.index], commit, settings)
        write_trace(config.out, result.episode_id, result.trace_dicts())
        log.append(result.to_record())
        bar.update(1)


def _with_run(config: RunConfig, result: EpisodeResult, index: int, done: FinishedEpisode,
              usage: _AgentUsage, commit: str, settings: dict[str, Any]) -> EpisodeResult:
    """The env's result completed with what only the run knows."""
    options = config.agent_options
    model = options.get("model")
    return result.with_run(
        episode_id=episode_id(config, index), index=index, agent=config.agent, agent_settings=settings,
        model=None if model is None else str(model),
        backend=options.get("backend", "transformers") if model is not None else None,
        tokens=usage.tokens(), seconds=round(done.seconds, 4), commit=commit,
        reward={**result.reward, "total": done.reward},
        cost={"agent": usage.cost(), **result.cost} if usage.llm_calls else result.cost,
    )


def summarize(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean of every numeric field per (benchmark, agent), with the episode count."""
    if not records:
        return pd.DataFrame()
    keep = ("benchmark", "agent", "metrics", "reward", "tool_calls", "tokens", "cost", "rounds",
            "engine_steps", "seconds")
    frame = pd.json_normalize([{k: r[k] for k in keep if k in r} for r in records])
    tool_columns = [c for c in frame.columns if c.startswith(("tool_calls.", "cost."))]
    frame[tool_columns] = frame[tool_columns].fillna(0)
    numeric = frame.select_dtypes("number").columns.tolist()
    summary = frame.groupby(["benchmark", "agent"])[numeric].mean()
    summary.insert(0, "episodes", frame.groupby(["benchmark", "agent"]).size())
    return summary.reset_index()


def write_summary(records: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    summary = summarize(records)
    summary.to_csv(path, index=False)
    return summary
