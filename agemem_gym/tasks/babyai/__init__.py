"""BabyAI (AgentBoard's 112 tasks on minigrid): ``source`` (the task source), ``engine`` (stage 3:
a level driven by text actions), ``expert`` (the guarded BabyAIBot), ``stages`` (what the level's
start state tells in stages 1 and 2), ``text`` (views, actions and subgoals in words)."""

from agemem_gym.tasks.babyai.source import DATA_ENV_VAR, BabyAITasks

__all__ = ["DATA_ENV_VAR", "BabyAITasks"]
