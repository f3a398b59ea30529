"""AgentBoard's rules for PDDL (``rules="agentboard"``): its progress count, its action set, 30 steps.

Three differences from our engine move the numbers, so under these rules:

- **Progress starts at 0.** AgentBoard's progress rate is the fraction of goal conditions
  that hold, kept at its maximum, but it is first computed after the first action that changes
  the world: goal conditions already true at the start count only from then on (ours counts
  them from the start, so an agent that does nothing scores them).
- **No action names an object twice.** AgentBoard grounds actions through pddlgym's
  enumeration of valid actions, which leaves out every grounding that repeats an object (for
  example barman's ``empty-shaker right shaker1 cocktail3 l0 l0``), so it neither lists nor
  accepts them; ours accepts any grounding whose preconditions hold.
- **An action that changes nothing is refused** ("not valid and therefore takes no effect")
  and does not count towards progress.

Success is the same (every goal condition holds); preconditions are still checked on the
grounded action (AgentBoard's vendored pddlgym skips those made only of constants, a simulator
bug we do not carry over). The step limit is AgentBoard's 30; meta actions count as steps, as
there. The expert's plans may need a repeated-object action (some barman problems), which these
rules refuse: the oracle can fail there.

>>> has_repeated_object(("right", "shaker1", "cocktail3", "l0", "l0"))
True
"""

from __future__ import annotations

from agemem_gym.tasks.base import EngineStep, TaskInstance
from agemem_gym.tasks.pddl.engine import PDDLEngine
from agemem_gym.tasks.pddl.text import action_text, parse_action

#: AgentBoard's step limit (its evaluation config's ``max_num_steps``).
AGENTBOARD_MAX_STEPS = 30
NO_EFFECT = (
    "The action is not valid and therefore takes no effect. Please remember to satisfy the "
    "restriction of actions. You can also check valid actions."
)


def has_repeated_object(args: tuple[str, ...]) -> bool:
    """Whether a ground action names one object more than once."""
    return len(set(args)) < len(args)


class AgentBoardPDDLEngine(PDDLEngine):
    """The PDDL engine under AgentBoard's rules (see the module docs); same arguments."""

    def reset(self, task: TaskInstance) -> str:
        """Load the problem; progress starts at 0 whatever already holds."""
        text = super().reset(task)
        self._best = 0.0
        return text

    def step(self, action: str) -> EngineStep:
        """Apply one action; repeated-object groundings and no-change actions are refused."""
        if self._model is None:
            raise RuntimeError("call reset(task) before step()")
        parsed = parse_action(action, self._model.operators)
        if self._done or parsed is None or parsed.command is not None:
            return super().step(action)
        if has_repeated_object(parsed.args):
            text = action_text(parsed.name, parsed.args)
            return self._result(
                f"'{text}' is not valid: an action cannot name the same object twice. "
                "Nothing happens.", valid=False)
        if self._model.check(parsed.name, parsed.args, self._atoms) is not None:
            return super().step(action)
        before, best = self._atoms, self._best
        outcome = self._apply(parsed.name, parsed.args)
        if self._atoms == before:
            self._best = best
            return self._result(NO_EFFECT, valid=False)
        return outcome

    def valid_actions(self) -> list[str]:
        """The valid actions AgentBoard would list: none names an object twice."""
        return [a for a in super().valid_actions() if not has_repeated_object(tuple(a.split()[1:]))]


__all__ = ["AGENTBOARD_MAX_STEPS", "AgentBoardPDDLEngine", "has_repeated_object"]
