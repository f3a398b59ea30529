"""Overhead of the BabyAI text engine over minigrid's own ``step``.

Both sides replay the same seeded random primitive actions from the same starts (tasks of
several levels, small and large grids); an episode that ends is restarted, untimed. Reported:
the median seconds per step of the raw environment's ``step`` (the unwrapped minigrid level)
and of :meth:`BabyAIEngine.step` (parse the text, step, describe the view, score progress,
keep the expert informed), and their ratio.

Usage::

    python benchmarks/perf/_overhead_babyai.py --steps 2000 --data ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from _sample_data import sample_data

from agemem_gym.tasks.babyai import DATA_ENV_VAR, BabyAITasks
from agemem_gym.tasks.babyai.engine import make_level, reset_level
from agemem_gym.tasks.babyai.text import PRIMITIVE_ACTIONS

#: One task each of a one-room, a maze, a multi-room unlock and a corridor level.
TASKS = (1, 24, 64, 108)


def _actions(n_steps: int, seed: int) -> list[int]:
    return [int(a) for a in np.random.default_rng(seed).integers(6, size=n_steps)]


def _time_raw(source: BabyAITasks, index: int, actions: list[int]) -> list[float]:
    level, seed = source.level_and_seed(index)
    env = make_level(level)
    reset_level(env, seed)
    raw = env.unwrapped
    times = []
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = raw.step(action)
        times.append(time.perf_counter() - start)
        if terminated or truncated:
            reset_level(env, seed)
    env.close()
    return times


def _time_engine(source: BabyAITasks, index: int, actions: list[int]) -> list[float]:
    engine = source.make_engine()
    task = source.get(index, np.random.default_rng(0))
    engine.reset(task)
    times = []
    for action in actions:
        text = PRIMITIVE_ACTIONS[action]
        start = time.perf_counter()
        result = engine.step(text)
        times.append(time.perf_counter() - start)
        if result.done:
            engine.reset(task)
    engine.close()
    return times


def measure(n_steps: int = 2000, data: Any = None) -> dict[str, Any]:
    """Median seconds per step: raw minigrid ``step`` vs ``BabyAIEngine.step``.

    Args:
        n_steps: actions replayed per side, split over the tasks in :data:`TASKS`.
        data: the BabyAI task file or folder (default: ``$AGEMEM_BABYAI_DATA``, else the
            ``shared/data`` folder beside the repository, as the tests use).

    Returns:
        ``{"engine": "babyai", "n_steps", "raw_median_s", "wrapped_median_s", "ratio"}``.
    """
    if data is None:
        data = sample_data("agentboard_babyai", DATA_ENV_VAR)
    source = BabyAITasks(data=data)
    per_task = max(1, n_steps // len(TASKS))
    raw: list[float] = []
    wrapped: list[float] = []
    for k, index in enumerate(TASKS):
        actions = _actions(per_task, seed=k)
        raw += _time_raw(source, index, actions)
        wrapped += _time_engine(source, index, actions)
    source.close()
    raw_s, engine_s = statistics.median(raw), statistics.median(wrapped)
    return {
        "engine": "babyai",
        "n_steps": len(raw),
        "raw_median_s": raw_s,
        "wrapped_median_s": engine_s,
        "ratio": engine_s / raw_s,
    }


def main() -> None:
    """Print the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--data", default=None, help="BabyAI task file or folder")
    args = parser.parse_args()
    result = measure(args.steps, data=args.data)
    print(
        f"babyai: raw {result['raw_median_s'] * 1e6:.1f} us/step, engine {result['wrapped_median_s'] * 1e6:.1f} "
        f"us/step, ratio {result['ratio']:.1f}x over {result['n_steps']} steps"
    )


if __name__ == "__main__":
    main()
