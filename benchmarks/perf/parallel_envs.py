"""Episodes/s of an engine benchmark with an instant policy: envs stepped in turn in this
process, in worker processes, and on Ray actors, all with the same number of slots.

The policy is the scripted oracle (it answers instantly), so the engines are all the time there
is: what a served model's run looks like when the server is not the bottleneck. The three
modes play the same episodes; the script checks that their results agree.

    python benchmarks/perf/parallel_envs.py --env sciworld --episodes 8 --slots 2
"""

from __future__ import annotations

import argparse
import os
import time

from _sample_data import sample_data

from agemem_gym.env_groups import EnvFactory, LocalEnvs, ProcessEnvs
from agemem_gym.policies import OraclePolicy
from agemem_gym.rollout import play_episodes

_DATA = {"sciworld": ("agentboard_scienceworld", "AGEMEM_SCIWORLD_DATA"),
         "alfworld": ("alfworld", "ALFWORLD_DATA"),
         "babyai": ("agentboard_babyai", "AGEMEM_BABYAI_DATA"),
         "pddl": ("agentboard_pddl", "AGEMEM_PDDL_DATA")}


def play(group, episodes: int) -> tuple[float, dict[int, tuple]]:
    starts = [{"seed": i, "options": {"task_index": i}} for i in range(episodes)]
    began = time.perf_counter()
    done = {d.index: (d.info["result"].answer, d.info["result"].reward["total"])
            for d in play_episodes(group, OraclePolicy(), starts)}
    return episodes / (time.perf_counter() - began), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="sciworld")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    folder, variable = _DATA[args.env]
    factory = EnvFactory(args.env, {"data": str(sample_data(folder, variable)), "stages": (3,),
                                    "privileged_info": True})
    print(f"load average before: {os.getloadavg()}")
    envs = [factory.make() for _ in range(args.slots)]
    play(LocalEnvs(envs), args.slots)  # every mode starts its engines before the clock runs
    local_rate, local = play(LocalEnvs(envs), args.episodes)
    for env in envs:
        env.close()
    with ProcessEnvs(factory, args.slots) as group:
        play(group, args.slots)  # start the engines (JVMs) once, as a long run would
        process_rate, processes = play(group, args.episodes)
    rows = [("in turn, one process", local_rate, True), ("worker processes", process_rate, processes == local)]
    if not args.no_ray:
        from agemem_gym.ray_envs import RayEnvs

        with RayEnvs(factory, args.slots) as group:
            play(group, args.slots)
            ray_rate, on_ray = play(group, args.episodes)
        rows.append(("Ray actors", ray_rate, on_ray == local))
    print(f"{args.env}, {args.episodes} episodes, {args.slots} slots, oracle policy")
    for name, rate, same in rows:
        print(f"  {name:<22} {rate:6.2f} episodes/s  {rate / local_rate:5.2f}x  same results: {same}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
