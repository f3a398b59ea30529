"""Envs in worker processes and on Ray actors: the same episodes as in-process envs, and a
worker lost mid-run loses no episode and plays none twice."""

from __future__ import annotations

import os
import signal

import pytest
from test_port import CanonicalController

from agemem_gym.env_groups import EnvFactory, ProcessEnvs
from agemem_gym.policies import OraclePolicy
from agemem_gym.rollout import play_episodes
from benchmarks.runner import RunConfig, run

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2,
         "distractor_sentences": 2, "num_queried": 1}
STARTS = [{"seed": i, "options": {"task_index": i}} for i in range(5)]


def _key(result):
    return (result.task_id, result.answer, result.reward, result.tool_calls, result.ltm, len(result.trace))


def _local(policy):
    factory = EnvFactory("assistant", {**SMALL, **policy.env_options, "privileged_info": True})
    env = factory.make()
    done = {d.index: _key(d.info["result"]) for d in play_episodes([env], policy, STARTS)}
    env.close()
    return factory, done


def _record_key(r):
    return (r["index"], r["answer"], r["reward"], r["tool_calls"], r["ltm"], r["tokens"], r["trace_events"])


def test_worker_processes_play_the_same_episodes(tmp_path):
    config = {"env": "assistant", "agent": "oracle", "episodes": 4, "env_options": SMALL,
              "concurrency": 2, "progress": False}
    local = run(RunConfig(out=tmp_path / "local", **config))
    workers = run(RunConfig(out=tmp_path / "workers", workers="processes", **config))
    assert sorted(map(_record_key, workers)) == sorted(map(_record_key, local))


def test_a_killed_worker_process_loses_and_doubles_nothing():
    factory, expected = _local(OraclePolicy())
    restarted: list[int] = []
    with ProcessEnvs(factory, workers=2) as group:
        steps = 0

        def kill_once(index, observation, info, action, usage):
            nonlocal steps
            steps += 1
            if steps == 25:  # mid-run, with both workers busy
                os.kill(group.pids()[0], signal.SIGKILL)

        done = list(play_episodes(group, OraclePolicy(), STARTS, on_step=kill_once,
                                  on_restart=restarted.append))
    assert len(restarted) == 1
    assert sorted(d.index for d in done) == list(range(len(STARTS)))
    assert {d.index: _key(d.info["result"]) for d in done} == expected


def test_a_memory_controller_works_through_a_worker_process():
    factory, expected = _local(CanonicalController())
    with ProcessEnvs(factory, workers=2) as group:
        done = list(play_episodes(group, CanonicalController(), STARTS))
    assert {d.index: _key(d.info["result"]) for d in done} == expected
    assert all(d.info["metrics"]["mq"] == 1.0 for d in done)


def test_ray_actors_play_the_same_episodes_and_survive_a_lost_actor(tmp_path):
    ray = pytest.importorskip("ray")
    from agemem_gym.ray_envs import RayEnvs

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        factory, expected = _local(OraclePolicy())
        restarted: list[int] = []
        with RayEnvs(factory, workers=2) as group:
            steps = 0

            def kill_once(index, observation, info, action, usage):
                nonlocal steps
                steps += 1
                if steps == 25:
                    os.kill(group.pids()[1], signal.SIGKILL)

            done = list(play_episodes(group, OraclePolicy(), STARTS, on_step=kill_once,
                                      on_restart=restarted.append))
        assert len(restarted) == 1
        assert {d.index: _key(d.info["result"]) for d in done} == expected
        config = {"env": "assistant", "agent": "oracle", "episodes": 3, "env_options": SMALL,
                  "concurrency": 2, "progress": False}
        on_ray = run(RunConfig(out=tmp_path / "ray", workers="ray", **config))
        local = run(RunConfig(out=tmp_path / "local", **config))
        assert sorted(map(_record_key, on_ray)) == sorted(map(_record_key, local))
    finally:
        ray.shutdown()
