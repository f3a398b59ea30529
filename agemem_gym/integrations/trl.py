"""TRL's ``GRPOTrainer`` on AgeMem envs: a ``rollout_func``, a task dataset and the env's reward.

``GRPOTrainer(rollout_func=...)`` (TRL >= 1.16) calls ``rollout_func(prompts, trainer)`` with
this process's slice of the generation batch: each dataset row repeated ``num_generations``
times in a row, so a GRPO group is one row. It expects ``prompt_ids``, ``completion_ids`` and
``logprobs`` with **one entry per prompt**, and passes any other field to the reward functions;
an ``env_mask`` field (1 on the model's tokens, 0 on tokens the environment wrote) becomes the
loss mask. Here:

- :func:`task_dataset` makes rows whose prompt names a task (a seed, or an index into the
  evaluation set), so every episode of a group plays the same task;
- :class:`AgeMemRollout` plays one whole episode per prompt with the trainer's live weights
  (:func:`agemem_gym.integrations.hf.hf_generate`, at the trainer's temperature and top-p),
  and returns one of the episode's training rows with its ``env_mask``, the env's final reward
  and its components;
- :func:`env_reward` is the reward function (the env's reward as it is; every component is
  logged as ``env/<name>``); :func:`component_reward` makes one component its own function.

The limit: TRL takes one row per episode, and an episode of AgeMem is several stretches of
context (the stage-1 -> stage-2 reset always splits it; ``Summary_context`` and
``Filter_context`` split it again). One row cannot hold two stretches without training later
turns on context the model never saw (TRL's rows are single causal sequences with no attention
reset). So each episode trains **one** stretch, ``row="random"`` by default (uniform over the
episode's stretches, so stage-1 memory writing and stage-3 answering both get gradient over
training), ``"first"`` or ``"last"``; the other stretches are played and scored but not
trained. The project's own trainer (:mod:`agemem_gym.training.grpo`) trains every model turn
of every stretch; use it when that matters. TRL's experimental asynchronous trainer
(``trl.experimental.async_grpo``) does split rows at rewrites, but it drives conversations with
native tool calls against a vLLM server and has no way to present the env's stage turns.

Example:
    >>> task_prompt(seed=7)
    'AgeMem task {"seed": 7}'
    >>> parse_task_prompt('AgeMem task {"seed": 7, "task_index": 2}')
    {'seed': 7, 'options': {'task_index': 2}}
    >>> env_reward(["..."], env_reward=[0.25])
    [0.25]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from agemem_gym.env import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.integrations.chat import ToolRole
from agemem_gym.integrations.hf import hf_generate
from agemem_gym.integrations.rollouts import PlayedEpisode, TrainingRow, play, training_rows

#: Every task prompt starts with this, followed by the task as JSON.
TASK_PREFIX = "AgeMem task "
RowChoice = Literal["random", "first", "last"]


def task_prompt(*, seed: int, task_index: int | None = None) -> str:
    """The prompt that names one task: the env's reset seed draws a training task, or, with
    ``task_index``, the evaluation set's task of that index."""
    task: dict[str, int] = {"seed": int(seed)}
    if task_index is not None:
        task["task_index"] = int(task_index)
    return TASK_PREFIX + json.dumps(task)


def parse_task_prompt(prompt: Any) -> dict[str, Any]:
    """The ``env.reset`` keyword arguments a :func:`task_prompt` names.

    Raises:
        ConfigError: ``prompt`` was not made by :func:`task_prompt`.
    """
    if not isinstance(prompt, str) or not prompt.startswith(TASK_PREFIX):
        raise ConfigError(f"expected a task prompt like {task_prompt(seed=0)!r}, got {prompt!r}: "
                          "build the dataset with agemem_gym.integrations.trl.task_dataset")
    try:
        task = json.loads(prompt[len(TASK_PREFIX):])
        start: dict[str, Any] = {"seed": int(task["seed"])}
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"task prompt {prompt!r} does not hold {{\"seed\": int}}: {e}") from e
    if task.get("task_index") is not None:
        start["options"] = {"task_index": int(task["task_index"])}
    return start


def task_dataset(num_tasks: int | None = None, *, seed: int = 0,
                 task_indices: Sequence[int] | None = None) -> Any:
    """A ``datasets.Dataset`` with one ``prompt`` per task: ``num_tasks`` training tasks drawn
    from ``seed``, or the evaluation set's ``task_indices``.

    Example:
        >>> [row["prompt"] for row in task_dataset(2, seed=0)]
        ['AgeMem task {"seed": 3653403231}', 'AgeMem task {"seed": 2735729615}']
    """
    from datasets import Dataset

    if (num_tasks is None) == (task_indices is None):
        raise ConfigError("give task_dataset either num_tasks (training tasks) or task_indices (evaluation set)")
    if task_indices is not None:
        prompts = [task_prompt(seed=seed, task_index=i) for i in task_indices]
    else:
        if num_tasks is None or num_tasks < 1:
            raise ConfigError(f"num_tasks must be >= 1, got {num_tasks}")
        seeds = np.random.default_rng(seed).integers(2**32, size=num_tasks)
        prompts = [task_prompt(seed=int(s)) for s in seeds]
    return Dataset.from_list([{"prompt": p} for p in prompts])


class AgeMemRollout:
    """A ``rollout_func`` for TRL's ``GRPOTrainer``: one whole AgeMem episode per prompt.

    Args:
        env: benchmark name (``"assistant"``) or env id (``"AgeMem/Assistant-v0"``).
        env_options: env and benchmark options, as for ``gym.make``.
        max_new_tokens: the longest response per model turn (TRL's ``max_completion_length``
            does not apply: a row holds several turns).
        row: which of an episode's stretches becomes its row (see the module docstring).
        seed: seeds the ``"random"`` choice.
        tool_role: how tool results reach the chat template (see
            :class:`~agemem_gym.integrations.chat.ChatRenderer`).

    Generation runs on the trainer's model in this process (``use_vllm=False``), batched over
    the running episodes. After each call, ``last_episodes`` and ``last_rows`` hold what was
    played and returned.

    Example:
        >>> rollout = AgeMemRollout("assistant", row="last", env_options={"num_distractors": 1})
        >>> len(rollout.envs), rollout.row  # one env made up front: bad options fail here
        (1, 'last')
        >>> rollout.close()
    """

    def __init__(self, env: str = "assistant", *, env_options: dict[str, Any] | None = None,
                 max_new_tokens: int = 128, row: RowChoice = "random", seed: int = 0,
                 tool_role: ToolRole = "auto"):
        if row not in ("random", "first", "last"):
            raise ConfigError(f"row must be 'random', 'first' or 'last', got {row!r}")
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.env, self.env_options = env, dict(env_options or {})
        self.max_new_tokens, self.row, self.tool_role = max_new_tokens, row, tool_role
        self.rng = np.random.default_rng(seed)
        self.envs: list[AgeMemEnv] = [_make_env(env, self.env_options)]  # bad options fail here
        self.last_episodes: list[PlayedEpisode] = []
        self.last_rows: list[TrainingRow] = []

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        if getattr(trainer, "use_vllm", False):
            raise ConfigError("AgeMemRollout samples from the trainer's model in this process; set use_vllm=False "
                              "(a vLLM path would have to keep every turn's token ids and log-probs as well)")
        starts = [parse_task_prompt(p) for p in prompts]
        while len(self.envs) < len(starts):
            self.envs.append(_make_env(self.env, self.env_options))
        model = trainer.accelerator.unwrap_model(trainer.model)
        tokenizer = trainer.processing_class
        args = trainer.args
        generate = hf_generate(model, tokenizer, max_new_tokens=self.max_new_tokens,
                               temperature=args.temperature, top_p=args.top_p, batch_size=len(starts))
        episodes = play(self.envs[: len(starts)], generate, tokenizer, starts, tool_role=self.tool_role)
        rows = [self._choose(training_rows(episode)) for episode in episodes]
        self.last_episodes, self.last_rows = episodes, rows
        logprobs = [r.logprobs for r in rows]
        return {"prompt_ids": [r.prompt_ids for r in rows], "completion_ids": [r.completion_ids for r in rows],
                "logprobs": None if any(lp is None for lp in logprobs) else logprobs,
                "env_mask": [r.completion_mask for r in rows],
                "env_reward": [e.reward for e in episodes], "env_components": [e.components for e in episodes]}

    def _choose(self, rows: list[TrainingRow]) -> TrainingRow:
        if self.row == "first":
            return rows[0]
        if self.row == "last":
            return rows[-1]
        return rows[int(self.rng.integers(len(rows)))]

    def close(self) -> None:
        """Close the envs."""
        for env in self.envs:
            env.close()
        self.envs = []


def _make_env(env: str, options: dict[str, Any]) -> AgeMemEnv:
    if env.startswith("AgeMem/"):
        import gymnasium as gym

        made = gym.make(env, **options).unwrapped
        if not isinstance(made, AgeMemEnv):
            raise ConfigError(f"{env} is not an AgeMem env")
        return made
    return AgeMemEnv(env, **options)


def env_reward(completions: Sequence[Any], env_reward: Sequence[float] | None = None,
               env_components: Sequence[dict[str, float]] | None = None,
               log_metric: Callable[[str, float], None] | None = None, **_: Any) -> list[float]:
    """The env's final reward of each completion's episode; logs each component's mean as
    ``env/<name>`` when TRL passes ``log_metric``.

    Raises:
        ConfigError: the trainer has no :class:`AgeMemRollout` (no ``env_reward`` field).
    """
    if env_reward is None:
        raise ConfigError("env_reward reads the env's reward from the rollout: pass "
                          "rollout_func=AgeMemRollout(...) to GRPOTrainer")
    if log_metric is not None and env_components:
        for name in sorted({k for c in env_components for k in c}):
            log_metric(f"env/{name}", float(np.mean([c.get(name, 0.0) for c in env_components])))
    return [float(r) for r in env_reward]


def component_reward(name: str) -> Callable[..., list[float]]:
    """A reward function returning one reward component (``"task"``, ``"memory"``,
    ``"context"``, ...), named after it, for ``reward_funcs`` with its own weight.

    >>> component_reward("memory")([], env_components=[{"memory": 0.5}])
    [0.5]
    """
    def reward(completions: Sequence[Any], env_components: Sequence[dict[str, float]] | None = None,
               **_: Any) -> list[float]:
        if env_components is None:
            raise ConfigError(f"the {name!r} reward reads the rollout's env_components: pass "
                              "rollout_func=AgeMemRollout(...) to GRPOTrainer")
        return [float(c.get(name, 0.0)) for c in env_components]

    reward.__name__ = name.replace("/", "_")
    return reward
