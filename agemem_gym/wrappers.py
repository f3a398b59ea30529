"""Wrappers that compose with any AgeMem env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.spaces import Space

from agemem_gym.spaces import Observation


class _AnyText(Space[str]):
    def __init__(self) -> None:
        super().__init__(None, None)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return "[m1] system: sample"


class FlatTextObservation(gym.ObservationWrapper[str, str, Observation]):
    """Renders the message tuple as one string, ``[id] role: content`` per message.

    Example:
        >>> import gymnasium as gym, agemem_gym
        >>> env = FlatTextObservation(gym.make("AgeMem/Assistant-v0"))
        >>> obs, _ = env.reset(seed=0)
        >>> obs.startswith("[m1] system:")
        True
    """

    def __init__(self, env: gym.Env[Observation, str]):
        super().__init__(env)
        self.observation_space = _AnyText()

    def observation(self, observation: Observation) -> str:
        return "\n".join(f"[{m['id']}] {m['role']}: {m['content']}" for m in observation)
