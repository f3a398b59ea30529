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

from agemem_gym.env import AgeMemEnv
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


def play_episodes(envs: Sequence[gym.Env[Any, str]], policy: Policy,
                  starts: Sequence[dict[str, Any]], *,
                  on_step: StepHook | None = None) -> Iterator[FinishedEpisode]:
    """Play one episode per entry of ``starts`` (keyword arguments of ``env.reset``),
    ``len(envs)`` at a time; yield each as it ends.

    At every step the pending responses of all running episodes come from one
    :meth:`Policy.act_batch` call, so an LLM policy batches its generation.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.policies import NoopPolicy
        >>> envs = [AgeMemEnv("assistant", num_distractors=1) for _ in range(2)]
        >>> starts = [{"seed": i, "options": {"task_index": i}} for i in range(3)]
        >>> sorted(done.index for done in play_episodes(envs, NoopPolicy(), starts))
        [0, 1, 2]
        >>> for env in envs: env.close()
    """
    queue = list(range(len(starts)))[::-1]
    slots: dict[int, tuple[gym.Env[Any, str], Observation, dict[str, Any], float]] = {}

    def start(i: int, env: gym.Env[Any, str]) -> None:
        began = time.perf_counter()
        observation, info = env.reset(**starts[i])
        policy.start_episode(_handle(env))
        slots[i] = (env, observation, info, began)

    for env in envs:
        if queue:
            start(queue.pop(), env)
    while slots:
        running = list(slots)
        actions = policy.act_batch([slots[i][1] for i in running], [slots[i][2] for i in running])
        usage = policy.last_usage()
        for k, (i, action) in enumerate(zip(running, actions, strict=True)):
            env, observation, info, started = slots.pop(i)
            if on_step is not None:
                on_step(i, observation, info, action, None if usage is None else usage[k])
            observation, reward, terminated, truncated, info = env.step(action)
            if not (terminated or truncated):
                slots[i] = (env, observation, info, started)
                continue
            policy.end_episode(_handle(env))
            yield FinishedEpisode(i, float(reward), bool(terminated), info, time.perf_counter() - started)
            if queue:
                start(queue.pop(), env)


def _handle(env: gym.Env[Any, str]) -> EpisodeHandle:
    unwrapped = env.unwrapped
    if not isinstance(unwrapped, AgeMemEnv):
        raise TypeError(f"play_episodes drives AgeMem envs, got {type(unwrapped).__name__}")
    return unwrapped.episode_handle
