"""The policy interface every agent and baseline implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from agemem_gym.port import EpisodeHandle
from agemem_gym.spaces import Observation


class Policy(ABC):
    """Maps an observation (the context) to the model's next response text.

    One policy serves many concurrent episodes and batches their calls in :meth:`act_batch`;
    a policy that keeps per-episode state (a memory controller) keys it by
    ``info["episode_key"]`` between :meth:`start_episode` and :meth:`end_episode`.
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
    #: Env settings the policy needs (a RAG variant removes tools); the harness applies them.
    env_options: ClassVar[dict[str, Any]] = {}

    def reset(self) -> None:  # noqa: B027 - optional hook
        """Called once before a run."""

    def start_episode(self, episode: EpisodeHandle) -> None:  # noqa: B027 - optional hook
        """Called after each env reset: ``episode.key`` comes back as ``info["episode_key"]``
        in :meth:`act_batch`; ``episode.port`` acts on the episode's long-term memory."""

    def end_episode(self, episode: EpisodeHandle) -> None:  # noqa: B027 - optional hook
        """Called when the episode has ended: drop its state."""

    @abstractmethod
    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        """The response for one episode."""

    def act_batch(self, observations: Sequence[Observation],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        """Responses for several episodes at once (LLM policies batch the generation)."""
        return [self.act(o, i) for o, i in zip(observations, infos, strict=True)]

    def settings(self) -> dict[str, Any]:
        """Settings that shape this policy's behaviour beyond its name (sampling, reply limits,
        constrained decoding...), written into every episode record."""
        return {}

    def last_usage(self) -> list[dict[str, Any]] | None:
        """LLM usage of each response of the last :meth:`act_batch` call (``llm_calls``,
        ``prompt_tokens``, ``completion_tokens``, ``seconds``, and whatever else the policy
        records), or None for a policy that calls no model (the harness then counts tokens with
        the env's counter)."""
        return None
