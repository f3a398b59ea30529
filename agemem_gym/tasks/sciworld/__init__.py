"""ScienceWorld (AgentBoard's 90 tasks): ``source`` (the task source), ``engine`` (stage 3 and
gold-path replay), ``jvm`` (the simulator's Java process), ``stages`` (stage-1/2 content read
from the gold path)."""

from agemem_gym.tasks.sciworld.source import (
    AGENTBOARD_MAX_STEPS,
    AGENTBOARD_SIMPLIFICATION,
    DATA_ENV_VAR,
    SciWorldTasks,
    load_records,
)

__all__ = [
    "AGENTBOARD_MAX_STEPS",
    "AGENTBOARD_SIMPLIFICATION",
    "DATA_ENV_VAR",
    "SciWorldTasks",
    "load_records",
]
