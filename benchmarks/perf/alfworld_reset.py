"""ALFWorld reset time with and without the per-game translation cache, as ratios.

TextWorld translates a game's PDDL problem to SAS (twice) on every reset and parses its
grammar on every load; :mod:`agemem_gym.tasks.alfworld.cache` keeps those results on disk.
For a few games (one per task family) this times, with the cache off and on:

- **same game again**: ``reset`` of the game the engine already holds (an episode repeated,
  or a second seed of the same task);
- **game switch**: ``reset`` to another game, which also loads it (an evaluation run moves
  to a new game every episode); with the cache on, a new engine reads the files written
  earlier, as a second run or another worker process would.

Reset here is :meth:`ALFWorldEngine.reset` as a run calls it (the expert's reset included).
The cache lives in a temporary directory, so the first pass always starts cold.

    python benchmarks/perf/alfworld_reset.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

import numpy as np
from _sample_data import sample_data

#: One game per task family (indices into the sorted valid_unseen list).
GAMES = (0, 24, 60, 90, 110, 120)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pass(engine: Any, tasks: list[Any], repeats: int) -> tuple[list[float], list[float]]:
    """(game-switch resets, same-game resets) over ``tasks``, ``repeats`` same-game each."""
    switch, same = [], []
    for task in tasks:
        switch.append(_timed(lambda t=task: engine.reset(t)))
        same += [_timed(lambda t=task: engine.reset(t)) for _ in range(repeats)]
    return switch, same


def measure(repeats: int = 3, games: tuple[int, ...] = GAMES) -> dict[str, Any]:
    """Median reset seconds with the cache off and on, and the ratios (on / off)."""
    from agemem_gym.tasks.alfworld import ALFWorldTasks
    from agemem_gym.tasks.alfworld.engine import ALFWorldEngine

    source = ALFWorldTasks(data=sample_data("alfworld", "ALFWORLD_DATA"))
    tasks = [source.get(i, np.random.default_rng(0)) for i in games]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache_dir:
        off = ALFWorldEngine(use_cache=False)
        off_switch, off_same = _pass(off, tasks, repeats)
        off.close()
        cold = ALFWorldEngine(cache_dir=cache_dir)  # translates once per game, writes the files
        cold_switch, on_same = _pass(cold, tasks, repeats)
        cold.close()
        warm = ALFWorldEngine(cache_dir=cache_dir)  # a new engine: reads the files
        warm_switch, warm_same = _pass(warm, tasks, repeats)
        stats = warm.cache.stats
        warm.close()
    med = statistics.median
    return {
        "games": len(tasks),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "off_same_game_s": med(off_same),
        "on_same_game_s": med(on_same + warm_same),
        "ratio_same_game": med(on_same + warm_same) / med(off_same),
        "off_game_switch_s": med(off_switch),
        "cold_game_switch_s": med(cold_switch),
        "warm_game_switch_s": med(warm_switch),
        "ratio_game_switch_warm": med(warm_switch) / med(off_switch),
        "warm_engine_translations": stats.computed,
        "warm_engine_files_read": stats.files_read,
    }


def main() -> None:
    """Print the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="same-game resets per game")
    args = parser.parse_args()
    r = measure(args.repeats)
    print(
        f"ALFWorld reset, {r['games']} games; load average {r['load_average_before']} -> {r['load_average_after']}"
    )
    print(
        f"  same game again: cache off {r['off_same_game_s']:.3f} s, on {r['on_same_game_s']:.3f} s "
        f"-> {r['ratio_same_game']:.2f}x of today's"
    )
    print(
        f"  game switch:     cache off {r['off_game_switch_s']:.3f} s, cold {r['cold_game_switch_s']:.3f} s, "
        f"warm {r['warm_game_switch_s']:.3f} s -> {r['ratio_game_switch_warm']:.2f}x of today's"
    )
    print(
        f"  warm engine: {r['warm_engine_translations']} translations, {r['warm_engine_files_read']} files read"
    )


if __name__ == "__main__":
    main()
