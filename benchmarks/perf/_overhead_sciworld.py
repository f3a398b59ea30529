"""Step time of the ScienceWorld engine: ours vs the raw simulator step vs the package's ``env.step``.

All three replay the same gold paths (a few tasks of different kinds, taking turns task by
task after an untimed warm-up pass, until each has ``n_steps`` steps timed). The raw step is
the simulator's ``step`` plus its completion flag over py4j, in our engine's JVM. The
package's ``ScienceWorldEnv.step`` (in its own JVM) also fetches the look, the inventory, the
task description and the full valid-action list over py4j on every step. Ours is
``SciWorldEngine.step``: the simulator's step plus the score (the completion flag only once
the score reaches 1) and subgoal matching (valid actions only on request). Goals: ours at
least 5x faster than ``env.step`` (``package_speedup``) and within 1.5x of the raw step
(``ratio``).
Read by ``engine_overhead.py``; data from ``$AGEMEM_SCIWORLD_DATA`` (else ``../shared/data``
next to the repository, as the tests use).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from _sample_data import sample_data

#: AgentBoard ids of the replayed tasks (lifespan, melting point, use-thermometer, paint).
TASK_IDS = (0, 9, 15, 21)


def _timed_replays(
    sides: dict[str, tuple[Callable[[dict[str, Any]], list[str]], Callable[[str], bool]]],
    records: list[dict[str, Any]],
    n_steps: int,
) -> dict[str, list[float]]:
    """Step times per side; sides take turns task by task, so a change of machine load
    reaches all of them alike. Each side is ``(load, step)``; ``step`` returns True when done."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    passes = 0
    while min(len(t) for t in times.values()) < n_steps:
        for rec in records:
            for name, (load, step) in sides.items():
                for action in load(rec):
                    start = time.perf_counter()
                    done = step(action)
                    if passes > 0:  # the first pass warms the JVMs' compilers up, untimed
                        times[name].append(time.perf_counter() - start)
                    if done:
                        break
        passes += 1
    return times


def measure(n_steps: int = 300) -> dict[str, Any]:
    """Median step times (seconds): raw simulator, the package's ``env.step``, our engine."""
    from agemem_gym.errors import MissingExtraError
    from agemem_gym.tasks.base import TaskInstance
    from agemem_gym.tasks.sciworld import SciWorldTasks

    try:
        from scienceworld import ScienceWorldEnv
    except ImportError as e:
        raise MissingExtraError("the ScienceWorld overhead benchmark", "sciworld") from e
    source = SciWorldTasks(
        data=sample_data("agentboard_scienceworld", "AGEMEM_SCIWORLD_DATA"), task_ids=TASK_IDS
    )
    simplification = source.simplification
    package_env = ScienceWorldEnv("", envStepLimit=10**6)
    engine = source.make_engine()
    gold: dict[int, list[str]] = {}

    def load_package(rec: dict[str, Any]) -> list[str]:
        package_env.load(rec["env_name"], rec["variation"], simplification, rec["id"] not in gold)
        gold.setdefault(rec["id"], package_env.get_gold_action_sequence())
        return gold[rec["id"]]

    def load_ours(rec: dict[str, Any]) -> list[str]:
        meta = {**rec, "gold_actions": gold[rec["id"]]}
        engine.reset(TaskInstance(task_id=str(rec["id"]), query=rec["goal"], metadata=meta))
        return gold[rec["id"]]

    def load_raw(rec: dict[str, Any]) -> list[str]:
        engine.server.interface.load(rec["env_name"], rec["variation"], simplification, False)
        return gold[rec["id"]]

    def raw_step(action: str) -> bool:
        # in our engine's JVM: the package's JVM runs with other options (collector, heap)
        engine.server.interface.step(action)
        return bool(engine.server.interface.getCompleted())

    try:
        sides = {  # the package first: its first load of a task records the gold path
            "package": (load_package, lambda a: package_env.step(a)[2]),
            "raw": (load_raw, raw_step),
            "ours": (load_ours, lambda a: engine.step(a).done),
        }
        times = _timed_replays(sides, source.records, n_steps)
        raw, package, ours = times["raw"], times["package"], times["ours"]
    finally:
        engine.close()
        package_env.close()
        source.close()
    raw_s, package_s, ours_s = (statistics.median(t) for t in (raw, package, ours))
    return {
        "engine": "sciworld",
        "raw_median_s": raw_s,
        "wrapped_median_s": ours_s,
        "ratio": ours_s / raw_s,
        "package_step_median_s": round(package_s, 5),
        "ratio_vs_package_step": round(ours_s / package_s, 3),
        "steps": len(ours),
        "package_speedup": round(package_s / ours_s, 2),
    }


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key}: {value}")  # noqa: T201 - script output
