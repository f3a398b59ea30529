"""AgentBoard's rules for ScienceWorld (``rules="agentboard"``): subgoals decide success.

AgentBoard judges a ScienceWorld task by its subgoal patterns alone: the task is done, and
counts as a success, once every subgoal has matched an observation (``re.search``); the
simulator's own completion or failure neither ends the episode nor counts. Ours takes the
simulator's completion (score 100) as success and ends on completion or failure, because the
simulator's check is the task's definition and some subgoals can never match (see
:mod:`agemem_gym.tasks.sciworld.source`). Under these rules the simplification string is
AgentBoard's (:data:`~agemem_gym.tasks.sciworld.engine.AGENTBOARD_SIMPLIFICATION`, no
teleporting) and 30 actions are allowed.

Progress is the same under both rules: the fraction of subgoals matched so far.
"""

from __future__ import annotations

from agemem_gym.tasks._common import is_check_action
from agemem_gym.tasks.base import EngineStep
from agemem_gym.tasks.sciworld.engine import (
    _INVALID_PREFIX,
    AGENTBOARD_MAX_STEPS,
    AGENTBOARD_SIMPLIFICATION,
    SciWorldEngine,
    normalize_action,
)


class AgentBoardSciWorldEngine(SciWorldEngine):
    """ScienceWorld under AgentBoard's rules: done and success when every subgoal matched.

    Takes :class:`SciWorldEngine`'s keywords; ``stop_on_subgoals`` is always on.
    """

    def __init__(self, **options: object) -> None:
        options.setdefault("simplification", AGENTBOARD_SIMPLIFICATION)
        options.setdefault("max_steps", AGENTBOARD_MAX_STEPS)
        options["stop_on_subgoals"] = True
        super().__init__(**options)  # type: ignore[arg-type]

    def step(self, action: str) -> EngineStep:
        """Apply one action; the simulator's verdict is ignored, the subgoals decide."""
        if self._task is None:
            raise RuntimeError("call reset(task) before step()")
        if self._done:
            return EngineStep("The task is already over.", True, True, self.progress, False)
        text = normalize_action(action)
        if is_check_action(text):
            return super().step(action)
        observation = str(self.server.interface.step(text)) if text else _INVALID_PREFIX
        if self._gold_pos < len(self._gold) and text == self._gold[self._gold_pos]:
            self._gold_pos += 1
        self._match_subgoals(observation)
        self._done = self._success = bool(self._subgoals) and self.progress >= 1.0
        return EngineStep(observation, self._done, self._success, self.progress,
                          not observation.startswith(_INVALID_PREFIX))


__all__ = ["AgentBoardSciWorldEngine"]
