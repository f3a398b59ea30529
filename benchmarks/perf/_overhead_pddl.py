"""Step overhead of the PDDL engine: our text step vs pddlgym's own ``PDDLEnv.step``.

Both replay the same expert plans (one problem per domain). The raw step is pddlgym's
``step`` on a prebuilt literal; ours parses the text, checks the grounded preconditions,
steps pddlgym, renders the change and checks that some action is still valid.
Read by ``engine_overhead.py``; data from ``$AGEMEM_PDDL_DATA`` (else ``../shared/data`` next
to the repository, as the tests use).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
from _sample_data import sample_data

#: One problem per domain: rows of the label file (gripper, blockworld, barman, tyreworld).
ROWS = (4, 21, 41, 53)


def _replay_raw(engine: Any, task: Any, plan: list[str], times: list[float]) -> None:
    engine.reset(task)
    env = engine.raw_env
    literals = [engine.pddlgym_literal(action) for action in plan]
    env.reset()
    for literal in literals:
        start = time.perf_counter()
        env.step(literal)
        times.append(time.perf_counter() - start)


def _replay_wrapped(engine: Any, task: Any, plan: list[str], times: list[float]) -> None:
    engine.reset(task)
    for action in plan:
        start = time.perf_counter()
        result = engine.step(action)
        times.append(time.perf_counter() - start)
        if not result.valid:
            raise RuntimeError(f"expert action {action!r} was refused: {result.observation}")


def measure(n_steps: int = 400) -> dict[str, Any]:
    """Median step times (seconds) of pddlgym alone and through our engine, over ``n_steps``."""
    from agemem_gym.tasks.pddl import PDDLTasks

    source = PDDLTasks(data=sample_data("agentboard_pddl", "AGEMEM_PDDL_DATA"))
    engine = source.make_engine()
    raw: list[float] = []
    wrapped: list[float] = []
    per_domain: dict[str, tuple[float, float]] = {}
    try:
        jobs = []
        for row in ROWS:
            task = source.get(row, np.random.default_rng(0))
            engine.reset(task)
            plan = []
            while (action := engine.expert_action()) is not None:
                plan.append(action)
                if engine.step(action).done:
                    break
            jobs.append((task, plan))
        while len(wrapped) < n_steps:
            for task, plan in jobs:
                raw_before, before = len(raw), len(wrapped)
                _replay_raw(engine, task, plan, raw)
                _replay_wrapped(engine, task, plan, wrapped)
                per_domain[task.metadata["domain"]] = (
                    statistics.median(raw[raw_before:]) * 1e3,
                    statistics.median(wrapped[before:]) * 1e3,
                )
    finally:
        engine.close()
        source.close()
    raw_median, wrapped_median = statistics.median(raw), statistics.median(wrapped)
    return {
        "engine": "pddl",
        "raw_median_s": raw_median,
        "wrapped_median_s": wrapped_median,
        "ratio": wrapped_median / raw_median,
        "steps": len(wrapped),
        "ms raw/ours": " ".join(f"{d} {r:.2f}/{w:.2f}" for d, (r, w) in per_domain.items()),
    }
