"""Stage 3 of a BabyAI task: a minigrid level driven by text actions (see ``source.py``)."""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

from agemem_gym.errors import ConfigError, MissingExtraError
from agemem_gym.tasks._common import CHECK_ACTION
from agemem_gym.tasks.babyai.expert import GuardedBot
from agemem_gym.tasks.babyai.text import (
    COMPLETED_SUFFIX,
    PRIMITIVE_ACTIONS,
    SubgoalTracker,
    describe_view,
    ineffective_reason,
    parse_action,
)
from agemem_gym.tasks.base import Engine, EngineStep, TaskInstance

logger = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 256
#: Levels that minigrid no longer registers, as (registered id, constructor options).
_RENAMED_LEVELS: dict[str, tuple[str, dict[str, Any]]] = {
    "BabyAI-GoToObjS6-v0": ("BabyAI-GoToObj-v0", {"room_size": 4}),
}


def make_level(level: str) -> Any:
    """Build a BabyAI level by its id (old ids mapped to today's), with minigrid's wrappers."""
    try:
        import gymnasium as gym
        import minigrid  # noqa: F401 - registers the BabyAI ids
    except ImportError as e:
        raise MissingExtraError("the BabyAI engine", "babyai") from e
    env_id, options = _RENAMED_LEVELS.get(level, (level, {}))
    try:
        return gym.make(env_id, **options)
    except gym.error.Error as e:
        raise ConfigError(f"unknown BabyAI level {level!r} in the data file: {e}") from e


def reset_level(env: Any, seed: int) -> dict[str, Any]:
    """``env.reset(seed=seed)`` with the level generator's stdout chatter sent to the log."""
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        obs, _ = env.reset(seed=seed)
    if chatter.getvalue():
        logger.debug("level generation: %s", chatter.getvalue().strip())
    return obs


class BabyAIEngine(Engine):
    """Stage 3 of a BabyAI task: a minigrid level driven by text actions.

    Args:
        max_steps: actions allowed per episode (the level's own limit may end it sooner).
    """

    max_steps: int = DEFAULT_MAX_STEPS

    def __init__(self, max_steps: int = DEFAULT_MAX_STEPS):
        self.max_steps = max_steps
        self._envs: dict[str, Any] = {}
        self._env: Any = None
        self._bot: GuardedBot | None = None
        self._tracker = SubgoalTracker(())
        self._done = True
        self._success = False

    def reset(self, task: TaskInstance) -> str:
        """Build (or reuse) the task's level, reset it with the task's seed, describe the view."""
        level = task.metadata["level"]
        if level not in self._envs:
            self._envs[level] = make_level(level)
        wrapped = self._envs[level]
        obs = reset_level(wrapped, int(task.metadata["seed"]))
        self._env = wrapped.unwrapped
        self._bot = GuardedBot(wrapped, max_calls=self.max_steps + 1)
        self._tracker = SubgoalTracker(task.metadata.get("subgoals", ()))
        self._done = False
        self._success = False
        return describe_view(self._env, obs)

    def step(self, action: str) -> EngineStep:
        """Apply one text action; invalid text and meta actions execute nothing."""
        progress = self._tracker.progress
        if self._env is None or self._done:
            return EngineStep(
                "The episode is over; no more actions are accepted.",
                True,
                self._success,
                progress,
                valid=False,
            )
        name = parse_action(action)
        if name is None:
            listing = ", ".join(self.valid_actions())
            text = f"Invalid action: {action.strip()[:80]!r}. Valid actions are: {listing}."
            return EngineStep(text, False, False, progress, valid=False)
        if name == CHECK_ACTION:
            return EngineStep(
                f"Valid actions are: {', '.join(self.valid_actions())}.", False, False, progress
            )
        return self._act(name)

    def _act(self, name: str) -> EngineStep:
        reason = ineffective_reason(self._env, name)
        index = PRIMITIVE_ACTIONS.index(name)
        obs, reward, terminated, truncated, _ = self._env.step(index)
        if self._bot is not None:
            self._bot.observe(index)
        text = describe_view(self._env, obs)
        if reason is not None:
            text = f"Nothing happened: {reason}. {text}"
        self._success = bool(terminated and reward > 0)
        self._done = bool(terminated or truncated)
        if self._success:
            text += COMPLETED_SUFFIX
        elif terminated:
            text += "\n The task has failed."
        elif truncated:
            text += "\n The level's step limit is reached."
        progress = self._tracker.update(text)
        if self._success:
            progress = self._tracker.complete()
        return EngineStep(text, self._done, self._success, progress)

    def valid_actions(self) -> list[str]:
        """The primitive actions that would change something now, then the meta action."""
        if self._env is None or self._done:
            return []
        useful = [a for a in PRIMITIVE_ACTIONS if ineffective_reason(self._env, a) is None]
        return [*useful, CHECK_ACTION]

    def expert_action(self) -> str | None:
        """BabyAIBot's next action as text; None when it has none (or gave up)."""
        if self._env is None or self._done or self._bot is None:
            return None
        index = self._bot.suggest()
        if index is not None:
            return PRIMITIVE_ACTIONS[index]
        if self._bot.gave_up:
            return None
        # The bot thinks the mission is met, but the level only checks after an action:
        # answer with an action that changes nothing.
        for name in ("drop", "pick up", "toggle"):
            if ineffective_reason(self._env, name) is not None:
                return name
        return None

    def close(self) -> None:
        """Close every level built."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()
        self._env = None
