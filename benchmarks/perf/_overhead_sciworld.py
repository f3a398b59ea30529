"""Step time of the ScienceWorld engine: ours vs the raw simulator step vs the package's ``env.step``.

All three replay the same gold paths (a few tasks of different kinds, repeated until
``n_steps`` steps are timed). The raw step is the simulator's ``server.step`` alone. The
package's ``ScienceWorldEnv.step`` also fetches the look, the inventory, the task description
and the full valid-action list over py4j on every step. Ours is ``SciWorldEngine.step``: the
raw step plus score, completion and subgoal matching (valid actions only on request).
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
    load: Callable[[dict[str, Any]], list[str]],
    step: Callable[[str], bool],
    records: list[dict[str, Any]],
    n_steps: int,
) -> list[float]:
    """Replay gold paths round-robin over ``records``; ``step`` returns True when done."""
    times: list[float] = []
    while len(times) < n_steps:
        for rec in records:
            for action in load(rec):
                start = time.perf_counter()
                done = step(action)
                times.append(time.perf_counter() - start)
                if done or len(times) >= n_steps:
                    break
            if len(times) >= n_steps:
                break
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
    source = SciWorldTasks(data=sample_data("agentboard_scienceworld", "AGEMEM_SCIWORLD_DATA"), task_ids=TASK_IDS)
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

    def raw_step(action: str) -> bool:
        package_env.server.step(action)
        return bool(package_env.server.getCompleted())

    try:
        records = source.records
        raw = _timed_replays(load_package, raw_step, records, n_steps)
        package = _timed_replays(load_package, lambda a: package_env.step(a)[2], records, n_steps)
        ours = _timed_replays(load_ours, lambda a: engine.step(a).done, records, n_steps)
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
        "steps": n_steps,
    }


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key}: {value}")  # noqa: T201 - script output
