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

from agemem_gym.config import EnvConfig, check_bool, check_int, parse_stages
from agemem_gym.env import AgeMemEnv
from agemem_gym.evaluation import FinishedEpisode, play_episodes
from agemem_gym.policies import Policy, make_policy
from benchmarks.episode_log import EpisodeLog
from benchmarks.provenance import provenance
from benchmarks.run_folder import RunFolder

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

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.stages = parse_stages(self.stages)
        self.concurrency = check_int("concurrency", self.concurrency, 1)
        self.episodes = check_int("episodes", self.episodes, 1, optional=True)
        self.seed = check_int("seed", self.seed, 0)
        self.overwrite = check_bool("overwrite", self.overwrite)
        EnvConfig.split({**self.env_options, "stages": self.stages})  # env settings fail here

    def identity(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = list(self.stages)
        return {k: data[k] for k in _IDENTITY}


@dataclass
class _Usage:
    """What one episode's policy calls cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_seconds: float = 0.0


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
    env_options = {**policy.env_options, **config.env_options}
    envs = [AgeMemEnv(config.env, stages=config.stages, privileged_info=policy.privileged,
                      **env_options) for _ in range(config.concurrency)]
    try:
        total = config.episodes or len(envs[0].source)
        todo = [i for i in range(total) if episode_id(config, i) not in log.done]
        bar = tqdm(total=total, initial=total - len(todo), disable=not config.progress,
                   desc=f"{config.agent} on {config.env}", unit="ep")
        policy.reset()
        _play(config, policy, envs, todo, log, bar)
        bar.close()
    finally:
        for env in envs:
            env.close()
    write_summary(log.records, config.out / "summary.csv")
    return log.records


def _play(config: RunConfig, policy: Policy, envs: list[AgeMemEnv], todo: list[int],
          log: EpisodeLog, bar: Any) -> None:
    starts = [{"seed": config.seed + i, "options": {"task_index": i}} for i in todo]
    usage = [_Usage() for _ in todo]

    def count(k: int, observation: Any, info: dict[str, Any], action: str,
              used: dict[str, Any] | None) -> None:
        u = usage[k]
        if used is None:  # no model: count what a model would have read and written
            u.prompt_tokens += info["context_tokens"]
            u.completion_tokens += envs[0].context.counter.count(action)
        else:
            u.prompt_tokens += int(used["prompt_tokens"])
            u.completion_tokens += int(used["completion_tokens"])
            u.llm_calls += int(used["llm_calls"])
            u.llm_seconds += float(used["seconds"])

    for done in play_episodes(envs, policy, starts, on_step=count):
        log.append(_record(config, todo[done.index], done, usage[done.index]))
        bar.update(1)


def _record(config: RunConfig, index: int, done: FinishedEpisode, usage: _Usage) -> dict[str, Any]:
    info = done.info
    components = info["reward_components"]
    return {
        "episode_id": episode_id(config, index),
        "index": index,
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed + index,
        "task_id": info["episode_id"],
        "stages": list(config.stages),
        "metrics": info["metrics"],
        "reward": {**components, "total": done.reward},
        "tool_calls": info["tool_calls"],
        "tokens": {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens},
        "llm_calls": usage.llm_calls,
        "cost": {"policy": {"llm_calls": usage.llm_calls, "prompt_tokens": usage.prompt_tokens,
                            "completion_tokens": usage.completion_tokens,
                            "seconds": round(usage.llm_seconds, 4)}, **info["cost"]},
        "steps": info["round"],
        "seconds": round(done.seconds, 4),
        "terminated": done.terminated,
        "counts": info["counts"],
        "answer": info["answer"],
        "judges": info["judges"],
        "ltm": info["ltm"],
        "memory_trace": info["memory_trace"],
    }


def summarize(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean of every numeric field per (env, agent), with the episode count."""
    if not records:
        return pd.DataFrame()
    keep = ("env", "agent", "metrics", "reward", "tool_calls", "tokens", "llm_calls", "steps", "seconds")
    frame = pd.json_normalize([{k: r[k] for k in keep if k in r} for r in records])
    tool_columns = [c for c in frame.columns if c.startswith("tool_calls.")]
    frame[tool_columns] = frame[tool_columns].fillna(0)
    numeric = frame.select_dtypes("number").columns.tolist()
    summary = frame.groupby(["env", "agent"])[numeric].mean()
    summary.insert(0, "episodes", frame.groupby(["env", "agent"]).size())
    return summary.reset_index()


def write_summary(records: list[dict[str, Any]], path: Path) -> pd.DataFrame:
    summary = summarize(records)
    summary.to_csv(path, index=False)
    return summary
