"""Runs an agent on a benchmark and writes ``episodes.jsonl``, ``summary.csv``, ``config.yaml``.

Episodes run ``concurrency`` at a time, each in its own env; at every step the pending
responses of all running episodes are requested in one ``act_batch`` call, so an LLM policy
can batch its generation. Re-running the same command resumes: finished episodes are skipped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from tqdm.auto import tqdm

from agemem_gym.env import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.policies import Policy, make_policy
from benchmarks.episode_log import EpisodeLog
from benchmarks.provenance import provenance

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

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.stages = tuple(int(s) for s in self.stages)
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.episodes is not None and self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")

    def identity(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stages"] = list(self.stages)
        return {k: data[k] for k in _IDENTITY}


@dataclass
class _Slot:
    env: AgeMemEnv
    index: int = -1
    observation: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_seconds: float = 0.0


def episode_id(config: RunConfig, index: int) -> str:
    return f"{config.env}-{index:05d}"


def run(config: RunConfig, policy: Policy | None = None) -> list[dict[str, Any]]:
    """Run (or resume) ``config``; return every finished episode's record."""
    policy = policy or make_policy(config.agent, **config.agent_options)
    _write_config(config)
    log = EpisodeLog(config.out / "episodes.jsonl")
    env_options = {**policy.env_options, **config.env_options}
    envs = [AgeMemEnv(config.env, stages=config.stages, privileged_info=policy.privileged,
                      **env_options) for _ in range(config.concurrency)]
    try:
        total = config.episodes or len(envs[0].source)
        todo = [i for i in range(total) if episode_id(config, i) not in log.done]
        bar = tqdm(total=total, initial=total - len(todo), disable=not config.progress,
                   desc=f"{config.agent} on {config.env}", unit="ep")
        policy.reset()
        _run_slots(config, policy, [_Slot(env) for env in envs], todo, log, bar)
        bar.close()
    finally:
        for env in envs:
            env.close()
    write_summary(log.records, config.out / "summary.csv")
    return log.records


def _run_slots(config: RunConfig, policy: Policy, slots: list[_Slot], todo: list[int],
               log: EpisodeLog, bar: Any) -> None:
    queue = list(reversed(todo))
    active = [s for s in slots if _start(config, s, queue)]
    while active:
        actions = policy.act_batch([s.observation for s in active], [s.info for s in active])
        usage = policy.last_usage()
        still = []
        for i, (slot, action) in enumerate(zip(active, actions, strict=True)):
            if usage is None:  # no model: count what a model would have read and written
                slot.prompt_tokens += slot.info["context_tokens"]
                slot.completion_tokens += slot.env.context.counter.count(action)
            else:
                slot.prompt_tokens += int(usage[i]["prompt_tokens"])
                slot.completion_tokens += int(usage[i]["completion_tokens"])
                slot.llm_calls += int(usage[i]["llm_calls"])
                slot.llm_seconds += float(usage[i]["seconds"])
            slot.observation, reward, terminated, truncated, slot.info = slot.env.step(action)
            if terminated or truncated:
                log.append(_record(config, slot, reward, terminated))
                bar.update(1)
                if not _start(config, slot, queue):
                    continue
            still.append(slot)
        active = still


def _start(config: RunConfig, slot: _Slot, queue: list[int]) -> bool:
    if not queue:
        return False
    slot.index = queue.pop()
    slot.started = time.perf_counter()
    slot.prompt_tokens = slot.completion_tokens = slot.llm_calls = 0
    slot.llm_seconds = 0.0
    slot.observation, slot.info = slot.env.reset(seed=config.seed + slot.index,
                                                 options={"task_index": slot.index})
    return True


def _record(config: RunConfig, slot: _Slot, reward: float, terminated: bool) -> dict[str, Any]:
    info = slot.info
    components = info["reward_components"]
    return {
        "episode_id": episode_id(config, slot.index),
        "index": slot.index,
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed + slot.index,
        "task_id": info["episode_id"],
        "stages": list(config.stages),
        "metrics": info["metrics"],
        "reward": {**components, "total": float(reward)},
        "tool_calls": info["tool_calls"],
        "tokens": {"prompt": slot.prompt_tokens, "completion": slot.completion_tokens},
        "llm_calls": slot.llm_calls,
        "cost": {"policy": {"llm_calls": slot.llm_calls, "prompt_tokens": slot.prompt_tokens,
                            "completion_tokens": slot.completion_tokens,
                            "seconds": round(slot.llm_seconds, 4)}, **info["cost"]},
        "steps": info["round"],
        "seconds": round(time.perf_counter() - slot.started, 4),
        "terminated": terminated,
        "counts": info["counts"],
        "answer": info["answer"],
        "judges": info["judges"],
        "ltm": info["ltm"],
        "memory_trace": info["memory_trace"],
    }


def _write_config(config: RunConfig) -> None:
    config.out.mkdir(parents=True, exist_ok=True)
    path = config.out / "config.yaml"
    identity = config.identity()
    if path.exists():
        previous = yaml.safe_load(path.read_text()) or {}
        old = {k: previous.get("run", {}).get(k) for k in _IDENTITY}
        if old != identity:
            changed = [k for k in _IDENTITY if old[k] != identity[k]]
            raise ConfigError(f"{config.out} holds a run with different {', '.join(changed)}; "
                              "resume with the same settings or choose another --out")
    run_section = {**identity, "episodes": config.episodes, "concurrency": config.concurrency,
                   "out": str(config.out)}
    path.write_text(yaml.safe_dump({"run": run_section, "provenance": provenance()}, sort_keys=False))


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
