"""Wrappers that compose with any AgeMem env."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium.spaces import Space
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

from agemem_gym.spaces import (
    DEFAULT_SHARED_BYTES,
    Observation,
    create_text_memory,
    read_text_memory,
    write_text_memory,
)


class _AnyText(Space[str]):
    def __init__(self, max_bytes: int = DEFAULT_SHARED_BYTES) -> None:
        super().__init__(None, None)
        self.max_bytes = max_bytes  # the slot per env in an AsyncVectorEnv's shared memory

    def contains(self, x: Any) -> bool:
        return isinstance(x, str)

    def __eq__(self, other: object) -> bool:  # vector envs compare their envs' spaces
        return isinstance(other, _AnyText) and other.max_bytes == self.max_bytes

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


class FinishOnTruncation(gym.Wrapper[Observation, str, Observation, str], gym.utils.RecordConstructorArgs):
    """Ends an episode that an outer step cap (``gym.make(id, max_episode_steps=N)``'s
    ``TimeLimit``) truncated the way the env ends a capped episode itself: with the trajectory
    reward, every component (the round penalty included) and the episode's result.

    ``gym.make`` adds it to every AgeMem id, outside ``TimeLimit``.

    Example:
        >>> import gymnasium as gym, agemem_gym
        >>> env = gym.make("AgeMem/Assistant-v0", max_episode_steps=2)
        >>> _ = env.reset(seed=0)
        >>> _ = env.step("<answer>ok</answer>")
        >>> _, reward, terminated, truncated, info = env.step("<answer>ok</answer>")
        >>> truncated, info["reward_components"]["penalty/rounds"], reward < 0
        (True, -1.0, True)
        >>> env.close()
    """

    def __init__(self, env: gym.Env[Observation, str]):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: str) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if truncated and not terminated and "reward_components" not in info:
            reward, final = self.env.unwrapped.end_episode("max_episode_steps")  # type: ignore[attr-defined]
            info = {**info, **final}
        return observation, reward, terminated, truncated, info


create_shared_memory.register(_AnyText, create_text_memory)
read_from_shared_memory.register(_AnyText, read_text_memory)
write_to_shared_memory.register(_AnyText, write_text_memory)
