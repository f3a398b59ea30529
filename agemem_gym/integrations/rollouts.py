"""Episodes played with any token-level ``generate`` callable, and the training rows they give.

A trainer outside the project brings its own generation: a callable that takes a batch of
prompts as token ids and returns, for each, the completion's token ids and their log-probs
(:data:`GenerateFn`). :func:`play` runs whole episodes with it through the same loop as
evaluation (:func:`agemem_gym.rollout.play_episodes`) and keeps every model turn: the prompt ids
the model was given, the ids it wrote, their log-probs (:class:`ModelTurn`).

Prompts are built token-in, token-out: while the context only grows, the next prompt is the
previous prompt, the model's own completion ids, then the tokens of what the env wrote since
(tool results, user messages, observations, the template's turn markers). When the env rewrote
the context (the stage-1 -> stage-2 reset, ``Summary_context``, ``Filter_context``, or anything
else after which the rendered context no longer begins with what the model saw and wrote),
the prompt is rendered afresh.

:func:`training_rows` turns an episode into one :class:`TrainingRow` per stretch of context
that only grows: ``prompt_ids`` is the stretch's first prompt, ``completion_ids`` everything
after it (the model's turns and the env's tokens between them), ``completion_mask`` is 1 on the
model's own tokens only. A row never holds text from before a rewrite, so nothing is trained
on context the model did not see.

Example:
    >>> turns = [ModelTurn([1, 2], [3], [-0.5], "a", 1), ModelTurn([1, 2, 3, 9], [4, 5], [-0.1, -0.2], "b", 1),
    ...          ModelTurn([1, 7], [6], [-0.3], "c", 2)]  # the last prompt is a rewrite
    >>> rows = training_rows(PlayedEpisode(0, turns, 1.0, {}, {}))
    >>> [(r.prompt_ids, r.completion_ids, r.completion_mask) for r in rows]
    [([1, 2], [3, 9, 4, 5], [1, 0, 1, 1]), ([1, 7], [6], [1])]
    >>> rows[0].logprobs
    [-0.5, 0.0, -0.1, -0.2]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym

from agemem_gym.errors import AgeMemError
from agemem_gym.integrations.chat import ChatRenderer, ToolRole
from agemem_gym.policies.base import Policy
from agemem_gym.port import EpisodeHandle
from agemem_gym.rollout import play_episodes
from agemem_gym.spaces import Observation


@dataclass(frozen=True)
class Completion:
    """What a ``generate`` callable returns for one prompt.

    Attributes:
        ids: the completion's token ids (an end-of-turn token, if generated, included).
        logprobs: the log-probability of each id under the sampling policy, or None.
    """

    ids: list[int]
    logprobs: list[float] | None = None


#: Token ids of a batch of prompts in, one :class:`Completion` per prompt out, in order.
GenerateFn = Callable[[Sequence[list[int]]], Sequence[Completion]]


class GenerateError(AgeMemError, ValueError):
    """A ``generate`` callable returned something other than one :class:`Completion` per prompt."""


@dataclass
class ModelTurn:
    """One model turn.

    Attributes:
        prompt_ids: the exact ids the model was given.
        completion_ids: the ids it wrote.
        logprobs: their log-probs under the sampling policy (None if ``generate`` gave none).
        text: the response the env received (the completion decoded, special tokens dropped).
        stage: the episode stage of the turn.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float] | None
    text: str
    stage: int


@dataclass
class PlayedEpisode:
    """A finished episode: its model turns, final reward, reward components and final ``info``.

    Attributes:
        index: position of the episode in the ``starts`` given to :func:`play`.
        turns: the model turns in order.
        reward: the env's final reward (its ``total`` component).
        components: ``info["reward_components"]`` (``task``, ``context``, ``memory``, ...).
        info: the final ``info`` (metrics, tool calls, cost, ...).
    """

    index: int
    turns: list[ModelTurn]
    reward: float
    components: dict[str, float]
    info: dict[str, Any]


@dataclass
class TrainingRow:
    """One stretch of context that only grows, as a prompt and a masked completion.

    Attributes:
        prompt_ids: the stretch's first prompt (env-written: system prompt, user messages).
        completion_ids: the model's turns and the env's tokens between them, in order.
        completion_mask: per completion id, 1 if the model wrote it (loss), 0 if the env did.
        logprobs: per completion id, the sampling log-prob (0.0 on env tokens), or None.
        turns: indices (into the episode's turns) of the model turns in this row.
        episode: the episode's index.
    """

    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    completion_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)
    turns: list[int] = field(default_factory=list)
    episode: int = -1

    @property
    def ids(self) -> list[int]:
        """The whole sequence: prompt then completion."""
        return self.prompt_ids + self.completion_ids


def training_rows(episode: PlayedEpisode) -> list[TrainingRow]:
    """One row per stretch of context that only grows: a turn joins the current row when its
    prompt begins, token for token, with the row so far; otherwise it starts a new row."""
    rows: list[TrainingRow] = []
    for k, turn in enumerate(episode.turns):
        row = rows[-1] if rows else None
        seen = row.ids if row is not None else []
        if row is None or len(turn.prompt_ids) < len(seen) or turn.prompt_ids[: len(seen)] != seen:
            row = TrainingRow(list(turn.prompt_ids), episode=episode.index)
            rows.append(row)
            written: list[int] = []
        else:
            written = turn.prompt_ids[len(seen):]
        row.completion_ids += written + turn.completion_ids
        row.completion_mask += [0] * len(written) + [1] * len(turn.completion_ids)
        if row.logprobs is not None and turn.logprobs is not None:
            row.logprobs += [0.0] * len(written) + list(turn.logprobs)
        else:
            row.logprobs = None
        row.turns.append(k)
    return rows


@dataclass
class _Stretch:
    """Per running episode: what the model saw and wrote so far, as text and ids."""

    text: str | None = None
    ids: list[int] = field(default_factory=list)
    turns: list[ModelTurn] = field(default_factory=list)


class TokenPolicy(Policy):
    """A policy around a token-level ``generate`` callable that records every model turn.

    Args:
        generate: see :data:`GenerateFn`.
        renderer: renders observations with the model's chat template.

    The recorded turns of an ended episode are taken with :meth:`pop_turns`.
    """

    name: ClassVar[str] = "token-generate"

    def __init__(self, generate: GenerateFn, renderer: ChatRenderer):
        self.generate = generate
        self.renderer = renderer
        self._running: dict[str, _Stretch] = {}
        self._ended: dict[str, list[ModelTurn]] = {}

    def start_episode(self, episode: EpisodeHandle) -> None:
        self._running[episode.key] = _Stretch()

    def end_episode(self, episode: EpisodeHandle) -> None:
        self._ended[episode.key] = self._running.pop(episode.key).turns

    def pop_turns(self, key: str) -> list[ModelTurn]:
        """The turns of the ended episode ``key`` (``info["episode_key"]``)."""
        return self._ended.pop(key)

    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[Observation], infos: Sequence[dict[str, Any]]) -> list[str]:
        states = [self._running[info["episode_key"]] for info in infos]
        prompts = [self._prompt(state, observation) for state, observation in zip(states, observations, strict=True)]
        completions = list(self.generate([ids for _, ids in prompts]))
        _check(completions, len(prompts))
        texts = []
        for state, (text, ids), completion, info in zip(states, prompts, completions, infos, strict=True):
            response = self.renderer.decode(completion.ids)
            logprobs = list(completion.logprobs) if completion.logprobs is not None else None
            state.turns.append(ModelTurn(ids, list(completion.ids), logprobs, response, int(info.get("stage", 0))))
            state.text = text + self.renderer.decode(completion.ids, keep_special=True)
            state.ids = ids + list(completion.ids)
            texts.append(response)
        return texts

    def _prompt(self, state: _Stretch, observation: Observation) -> tuple[str, list[int]]:
        """The rendered context and the ids to give the model: the ids so far extended by the
        env's new tokens while the context only grew, else the context encoded afresh."""
        text = self.renderer.text(observation)
        if state.text is not None and text.startswith(state.text):
            return text, state.ids + self.renderer.encode(text[len(state.text):])
        return text, self.renderer.encode(text)


def _check(completions: list[Any], expected: int) -> None:
    if len(completions) != expected:
        raise GenerateError(f"generate returned {len(completions)} completions for {expected} prompts; "
                            "return one Completion per prompt, in order")
    for i, c in enumerate(completions):
        if not isinstance(c, Completion):
            raise GenerateError(f"generate returned a {type(c).__name__} at position {i}; "
                                "return agemem_gym.integrations.Completion(ids, logprobs)")
        if c.logprobs is not None and len(c.logprobs) != len(c.ids):
            raise GenerateError(f"completion {i} has {len(c.ids)} ids but {len(c.logprobs)} log-probs; "
                                "give one log-prob per id, or None")


def play(envs: Sequence[gym.Env[Any, str]], generate: GenerateFn, tokenizer: Any,
         starts: Sequence[dict[str, Any]], *, tool_role: ToolRole = "auto") -> list[PlayedEpisode]:
    """Play one episode per entry of ``starts`` (keyword arguments of ``env.reset``),
    ``len(envs)`` at a time, each model call one batched ``generate``; return them in order.

    Args:
        envs: AgeMem envs (``gym.make`` or :class:`~agemem_gym.env.AgeMemEnv`).
        generate: see :data:`GenerateFn`.
        tokenizer: the model's tokenizer (its chat template renders the observations).
        starts: e.g. ``[{"seed": 3}, {"seed": 3, "options": {"task_index": 0}}]``.
        tool_role: how tool results reach the template (see :class:`ChatRenderer`).
    """
    policy = TokenPolicy(generate, ChatRenderer(tokenizer, tool_role))
    played: list[PlayedEpisode | None] = [None] * len(starts)
    for done in play_episodes(envs, policy, starts):
        turns = policy.pop_turns(done.info["episode_key"])
        components = {k: float(v) for k, v in done.info.get("reward_components", {}).items()}
        played[done.index] = PlayedEpisode(done.index, turns, done.reward, components, done.info)
    return [p for p in played if p is not None]
