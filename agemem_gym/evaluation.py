"""Play whole episodes with a policy: the loop every script and test would otherwise rewrite."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agemem_gym.policies.base import Policy


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
    observation, info = env.reset(seed=seed, options=options)
    policy.reset()
    while True:
        observation, reward, terminated, truncated, info = env.step(policy.act(observation, info))
        if terminated or truncated:
            return float(reward), info
