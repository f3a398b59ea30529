"""ALFWorld (household text games): ``source`` (the task source), ``engine`` (stage 3 on
TextWorld), ``game`` (a game's ground truth), ``progress`` (milestones), ``stages`` (stage-1/2
notes about where things are)."""

from agemem_gym.tasks.alfworld.source import ALFWorldTasks

__all__ = ["ALFWorldTasks"]
