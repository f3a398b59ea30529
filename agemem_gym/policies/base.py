"""The policy interface every agent and baseline implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from agemem_gym.spaces import Observation


class Policy(ABC):
    """Maps an observation (the context) to the model's next response text.

    Policies hold no per-episode state that the observation and ``info`` cannot rebuild, so one
    policy can serve many concurrent episodes and batch their calls in :meth:`act_batch`.
    A policy that needs ground truth sets ``privileged = True``; the harness then turns on
    ``privileged_info`` in the env.

    Example:
        >>> class Echo(Policy):
        ...     name = "echo"
        ...     def act(self, observation, info):
        ...         return f"<answer>{observation[-1]['content']}</answer>"
        >>> Echo().act_batch([({"id": "m1", "role": "user", "content": "hi"},)], [{}])
        ['<answer>hi</answer>']
    """

    name: ClassVar[str] = "policy"
    privileged: ClassVar[bool] = False

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Called once before a run."""

    @abstractmethod
    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        """The response for one episode."""

    def act_batch(self, observations: Sequence[Observation],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        """Responses for several episodes at once (LLM policies batch the generation)."""
        return [self.act(o, i) for o, i in zip(observations, infos, strict=True)]

    def usage(self) -> dict[str, float]:
        """LLM usage since the last call (``llm_calls``, ``prompt_tokens``,
        ``completion_tokens``, ``seconds``); scripted policies use none."""
        return {}
