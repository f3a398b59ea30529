"""Play whole episodes with a policy: the loop every script, the harness and the trainer share.

Each episode's :class:`~agemem_gym.port.EpisodeHandle` is given to the policy's
``start_episode`` after ``reset`` and to ``end_episode`` when it ends, so a policy (a memory
controller) can keep per-episode state while one ``act_batch`` call serves every running episode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from agemem_gym.env_groups import EnvGroup, WorkerLost, as_group
from agemem_gym.policies.base import Policy
from agemem_gym.port import EpisodeHandle
from agemem_gym.spaces import Observation

#: Called for every response: (episode index, observation, info, response, the policy's usage
#: for it or None), before the env takes the response.
StepHook = Callable[[int, Observation, dict[str, Any], str, "dict[str, Any] | None"], None]


@dataclass
class FinishedEpisode:
    """An episode that ended: its index in ``starts``, final reward and ``info``, wall time."""

    index: int
    reward: float
    terminated: bool
    info: dict[str, Any]
    seconds: float


def rollout(env: gym.Env[Any, str], policy: Policy, *, seed: int | None = None,
            task_index: int | None = None) -> tuple[float, dict[str, Any]]:
    """Play one episode to its end; return the final reward and the final ``info``.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.policies import OraclePolicy
        >>> env = AgeMemEnv("assistant", privileged_info=True)
        >>> reward, info = rollout(env, OraclePolicy(), seed=0, task_index=0)
        >>> info["metrics"]["score"], reward > 0.5
        (1.0, True)
        >>> env.close()
    """
    options = None if task_index is None else {"task_index": task_index}
    policy.reset()
    [done] = play_episodes([env], policy, [{"seed": seed, "options": options}])
    return done.reward, done.info


def play_episodes(envs: Sequence[gym.Env[Any, str]] | EnvGroup, policy: Policy,
                  starts: Sequence[dict[str, Any]], *, on_step: StepHook | None = None,
                  on_restart: Callable[[int], None] | None = None) -> Iterator[FinishedEpisode]:
    """Play one episode per entry of ``starts`` (keyword arguments of ``env.reset``),
    ``len(envs)`` at a time; yield each as it ends.

    At every step the pending responses of all running episodes come from one
    :meth:`Policy.act_batch` call, so an LLM policy batches its generation; the envs then step
    together (in parallel when ``envs`` is a group of workers,
    :mod:`agemem_gym.env_groups`). An episode whose worker is lost is played again from its
    start on the replacement worker (``on_restart`` is told its index first).

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.policies import NoopPolicy
        >>> envs = [AgeMemEnv("assistant", num_distractors=1) for _ in range(2)]
        >>> starts = [{"seed": i, "options": {"task_index": i}} for i in range(3)]
        >>> sorted(done.index for done in play_episodes(envs, NoopPolicy(), starts))
        [0, 1, 2]
        >>> for env in envs: env.close()
    """
    group = as_group(envs)
    queue = list(range(len(starts)))[::-1]
    # slot -> running episode, in the order the policy sees them (as the serial loop always did)
    running: dict[int, _Running | None] = {}
    for slot in range(len(group)):
        if queue:
            running[slot] = None
    _start_pending(group, policy, starts, queue, running, on_restart)
    while running:
        order = list(running)
        episodes = [running[slot] for slot in order]
        assert all(e is not None for e in episodes)
        actions = policy.act_batch([e.observation for e in episodes], [e.info for e in episodes])  # type: ignore[union-attr]
        usage = policy.last_usage()
        if on_step is not None:
            for k, e in enumerate(episodes):
                assert e is not None
                on_step(e.index, e.observation, e.info, actions[k], None if usage is None else usage[k])
        results = group.step({slot: actions[k] for k, slot in enumerate(order)})
        for slot in order:
            episode, result = running.pop(slot), results[slot]
            assert episode is not None
            if isinstance(result, WorkerLost):  # play it again from its start
                policy.end_episode(episode.handle)
                queue.append(episode.index)
                if on_restart is not None:
                    on_restart(episode.index)
                running[slot] = None
                continue
            observation, reward, terminated, truncated, info = result
            if not (terminated or truncated):
                episode.observation, episode.info = observation, info
                running[slot] = episode
                continue
            policy.end_episode(episode.handle)
            if queue:
                running[slot] = None  # its next episode starts after this round
            yield FinishedEpisode(episode.index, float(reward), bool(terminated), info,
                                  time.perf_counter() - episode.started)
        _start_pending(group, policy, starts, queue, running, on_restart)


_MAX_LOST_RESETS = 3


@dataclass
class _Running:
    index: int
    observation: Observation
    info: dict[str, Any]
    started: float
    handle: EpisodeHandle


def _start_pending(group: EnvGroup, policy: Policy, starts: Sequence[dict[str, Any]],
                   queue: list[int], running: dict[int, _Running | None],
                   on_restart: Callable[[int], None] | None) -> None:
    """Reset every slot waiting for an episode (together, so workers reset in parallel)."""
    lost_resets: dict[int, int] = {}
    while True:
        waiting = [slot for slot, e in running.items() if e is None]
        for slot in waiting[len(queue):]:
            del running[slot]  # nothing left to play in it
        assigned = {slot: queue.pop() for slot in waiting[:len(queue)]}
        if not assigned:
            return
        began = time.perf_counter()
        results = group.reset({slot: starts[i] for slot, i in assigned.items()})
        for slot, index in assigned.items():
            result = results[slot]
            if isinstance(result, WorkerLost):
                lost_resets[index] = lost_resets.get(index, 0) + 1
                if lost_resets[index] >= _MAX_LOST_RESETS:
                    raise result  # a fresh worker cannot even start this episode: stop
                queue.append(index)
                if on_restart is not None:
                    on_restart(index)
                continue
            observation, info = result
            handle = group.handle(slot)
            policy.start_episode(handle)
            running[slot] = _Running(index, observation, info, began, handle)
