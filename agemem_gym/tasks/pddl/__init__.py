"""PDDL planning (AgentBoard's 60 problems): ``source`` (the task source), ``engine`` (stage 3
on pddlgym), ``logic`` (grounding and precondition checks), ``planner`` (pyperplan expert
plans), ``stages`` (stage-1/2 hints), ``text`` (facts and actions in words)."""

from agemem_gym.tasks.pddl.source import DATA_ENV_VAR, PDDLTasks

__all__ = ["DATA_ENV_VAR", "PDDLTasks"]
