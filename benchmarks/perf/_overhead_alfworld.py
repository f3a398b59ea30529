"""Step overhead of the ALFWorld engine: our text step vs TextWorld's own ``step``.

Both replay the stored walkthroughs of a few games (one per task family). The raw step is the
demangled TextWorld environment's ``step`` on the command; ours normalises the text, checks it
against the admissible commands, steps TextWorld with its grammar parses memoized (so ours can
be faster than TextWorld alone: a ratio below 1), updates the progress milestones and advances
alfworld's handcoded expert (which watches every step). Read by ``engine_overhead.py``; games
from ``$ALFWORLD_DATA`` (else ``../shared/data/alfworld`` next to the repository).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
from _sample_data import sample_data

#: One game per task family (indices into the sorted valid_unseen list).
GAMES = (0, 24, 60, 90, 110, 120)


def _replay(engine: Any, task: Any, times_raw: list[float], times_ours: list[float]) -> None:
    plan = list(task.metadata["walkthrough"])
    engine.reset(task)
    for action in plan:
        start = time.perf_counter()
        result = engine.step(action)
        times_ours.append(time.perf_counter() - start)
        if not result.valid:
            raise RuntimeError(f"walkthrough action {action!r} was refused: {result.observation}")
    env = engine.raw_env
    env.reset()  # rewind the same game, then replay it on TextWorld directly
    for action in plan:
        start = time.perf_counter()
        env.step(action)
        times_raw.append(time.perf_counter() - start)


def measure(n_steps: int = 120) -> dict[str, Any]:
    """Median step times (seconds) of TextWorld alone and through our engine, over ``n_steps``."""
    from agemem_gym.tasks.alfworld import ALFWorldTasks

    source = ALFWorldTasks(data=sample_data("alfworld", "ALFWORLD_DATA"))
    engine = source.make_engine()
    raw: list[float] = []
    ours: list[float] = []
    start = time.perf_counter()
    try:
        while len(ours) < n_steps:
            for index in GAMES:
                _replay(engine, source.get(index, np.random.default_rng(0)), raw, ours)
    finally:
        engine.close()
    raw_median, ours_median = statistics.median(raw), statistics.median(ours)
    return {
        "engine": "alfworld",
        "raw_median_s": raw_median,
        "wrapped_median_s": ours_median,
        "ratio": ours_median / raw_median,
        "steps": len(ours),
        "notes": f"{len(GAMES)} games, walkthrough replays; wall {time.perf_counter() - start:.0f} s "
        "(resets: see alfworld_reset.py)",
    }
