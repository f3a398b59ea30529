"""The BabyAI expert: minigrid's own ``BabyAIBot``, kept in step with the engine and guarded.

The bot plans on a stack of subgoals. On some levels its planning loop never ends (it keeps
replanning without choosing an action), so every planning call runs under a budget of stack
reads and wall-clock time; when the budget is spent the expert gives up for the episode
(``suggest`` returns None) instead of hanging.
"""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


class ExpertGaveUp(RuntimeError):
    """The bot could not plan within its budget, or hit a state it cannot handle."""


class _GuardedStack(list[Any]):
    """The bot's subgoal stack; reading it past the budget aborts the planning call."""

    reads_left: int = 0
    deadline: float = 0.0

    def arm(self, max_reads: int, seconds: float) -> None:
        self.reads_left = max_reads
        self.deadline = time.monotonic() + seconds

    def __getitem__(self, index: Any) -> Any:
        self.reads_left -= 1
        if self.reads_left < 0 or (self.reads_left % 256 == 0 and time.monotonic() > self.deadline):
            raise ExpertGaveUp("the bot's planner exceeded its budget")
        return super().__getitem__(index)


class GuardedBot:
    """Suggests the next primitive action (minigrid's index) for the current state.

    The bot must see every action the engine executes, in order, to keep its plan: the engine
    calls :meth:`observe` after each executed action; :meth:`suggest` replans once per new
    state and caches the answer, so it can be asked any number of times per state. When an
    action was executed that the bot has not been told about, a fresh bot is built.

    Args:
        env: the (wrapped) minigrid environment, already reset.
        max_calls: planning calls allowed per episode.
        max_reads: subgoal-stack reads allowed per planning call.
        seconds: wall-clock time allowed per planning call.
    """

    def __init__(
        self, env: Any, max_calls: int = 1000, max_reads: int = 20_000, seconds: float = 2.0
    ):
        self._env = env
        self._max_calls = max_calls
        self._max_reads = max_reads
        self._seconds = seconds
        self._bot: Any = None
        self._calls = 0
        self._unseen: list[int] = []  # executed actions the bot has not planned after yet
        self._cached: int | None = None
        self._fresh_state = True
        self.gave_up = False

    def observe(self, action: int) -> None:
        """Record that ``action`` (minigrid index) was executed in the environment."""
        self._unseen.append(action)
        self._fresh_state = True

    def suggest(self) -> int | None:
        """The bot's next action for the current state, or None when it has none."""
        if self.gave_up:
            return None
        if not self._fresh_state:
            return self._cached
        try:
            self._cached = self._plan()
        except ExpertGaveUp as e:
            logger.info("BabyAI expert gave up: %s", e)
            self.gave_up = True
            self._cached = None
        except Exception as e:  # the bot raises bare errors on states it cannot handle
            logger.info("BabyAI expert failed: %r", e)
            self.gave_up = True
            self._cached = None
        self._fresh_state = False
        return self._cached

    def _plan(self) -> int | None:
        self._calls += 1
        if self._calls > self._max_calls:
            raise ExpertGaveUp(f"more than {self._max_calls} planning calls")
        if self._bot is None or len(self._unseen) > 1:
            self._bot = self._new_bot()
            taken = None
        else:
            taken = self._unseen[0] if self._unseen else None
        self._unseen.clear()
        self._bot.stack.arm(self._max_reads, self._seconds)
        action = int(self._bot.replan(taken))
        done = int(self._env.unwrapped.actions.done)
        return None if action == done else action

    def _new_bot(self) -> Any:
        from minigrid.utils.baby_ai_bot import BabyAIBot

        bot = BabyAIBot(self._env)
        bot.stack = _GuardedStack(bot.stack)  # subgoals reach the stack through the bot
        return bot
