"""The typed result of one finished episode: what the runner, trainer, tables and report read.

The env fills what it measured and puts the result in the last step's ``info["result"]``; the
runner adds what only it knows (the run slot, the agent, the model, the agent's token use, wall
time, the commit) with :meth:`EpisodeResult.with_run` and writes :meth:`EpisodeResult.to_record`
as one line of ``episodes.jsonl``, the trace beside it.

Example:
    >>> from agemem_gym import AgeMemEnv
    >>> from agemem_gym.policies import OraclePolicy
    >>> from agemem_gym.rollout import rollout
    >>> env = AgeMemEnv("assistant", num_facts=3, num_distractors=1, privileged_info=True)
    >>> _, info = rollout(env, OraclePolicy(), seed=0, task_index=0)
    >>> result = info["result"]
    >>> result.env_id, result.metrics["score"], result.tool_calls_by_source["agent"]["Add_memory"]
    ('AgeMem/Assistant-v0', 1.0, 3)
    >>> record = result.with_run(episode_id="assistant-00000", index=0, agent="oracle").to_record()
    >>> record["trace_events"] == len(result.trace) > 0, "trace" in record
    (True, False)
    >>> env.close()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.trace import TraceEvent


@dataclass(frozen=True)
class EpisodeResult:
    """One finished episode (see ``CONTRACT`` in the module docstring for who fills what)."""

    env_id: str
    benchmark: str
    task_id: str
    seed: int | None
    stages: tuple[int, ...]
    protocol: str
    judges: dict[str, str]
    encoder: str
    category: str | None
    question: str
    gold_answers: tuple[str, ...]
    answer: str | None
    metrics: dict[str, float]
    reward: dict[str, float]
    tool_calls: dict[str, int]
    tool_calls_by_source: dict[str, dict[str, int]]
    tool_calls_by_stage: dict[str, dict[str, int]]
    counts: dict[str, int]
    cost: dict[str, dict[str, Any]]
    rounds: int
    engine_steps: int
    terminated: bool
    ltm: list[dict[str, Any]]
    trace: tuple[TraceEvent, ...] = ()
    # -- filled by the runner --------------------------------------------------------------
    episode_id: str = ""
    index: int = 0
    agent: str = ""
    agent_settings: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    backend: str | None = None
    tokens: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    commit: str | None = None

    def with_run(self, **fields: Any) -> EpisodeResult:
        """A copy with the runner's fields set (``episode_id``, ``agent``, ``tokens``, ...)."""
        return dataclasses.replace(self, **fields)

    def to_record(self) -> dict[str, Any]:
        """The ``episodes.jsonl`` line: every field but the trace, plus ``trace_events``."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "trace"}
        record["stages"] = list(self.stages)
        record["gold_answers"] = list(self.gold_answers)
        record["trace_events"] = len(self.trace)
        return record

    def trace_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.trace]

    @classmethod
    def from_record(cls, record: dict[str, Any],
                    trace: list[dict[str, Any]] | None = None) -> EpisodeResult:
        """Rebuild a result from its record (and its trace events, when read from disk)."""
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in record.items() if k in names}
        data["stages"] = tuple(data.get("stages", ()))
        data["gold_answers"] = tuple(data.get("gold_answers", ()))
        data["trace"] = tuple(TraceEvent.from_dict(e) for e in trace or ())
        return cls(**data)
