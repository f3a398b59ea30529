"""agemem-gym: Gymnasium environments for LLM agents that manage their own memory.

>>> import gymnasium as gym, agemem_gym
>>> "AgeMem/Assistant-v0" in gym.registry
True
"""

from agemem_gym.config import EnvConfig
from agemem_gym.env import AgeMemEnv
from agemem_gym.errors import (
    AgeMemError,
    ConfigError,
    DataNotFoundError,
    MissingExtraError,
    NoTrainingDataError,
)
from agemem_gym.port import EpisodeHandle, IncomingMessage, MemoryPort
from agemem_gym.protocol import ParsedResponse, ToolCall, parse_response
from agemem_gym.registration import env_id, register_envs
from agemem_gym.result import EpisodeResult
from agemem_gym.rewards import RewardWeights
from agemem_gym.tasks import Fact, TaskInstance, TaskSource, make_task_source
from agemem_gym.tools import ALL_TOOLS, tool_schemas
from agemem_gym.trace import TraceEvent, replay_memory

__version__ = "0.1.0"

ENV_IDS = register_envs()

__all__ = [
    "ALL_TOOLS",
    "ENV_IDS",
    "AgeMemEnv",
    "AgeMemError",
    "ConfigError",
    "DataNotFoundError",
    "EnvConfig",
    "EpisodeHandle",
    "EpisodeResult",
    "Fact",
    "IncomingMessage",
    "MemoryPort",
    "MissingExtraError",
    "NoTrainingDataError",
    "ParsedResponse",
    "RewardWeights",
    "TaskInstance",
    "TaskSource",
    "ToolCall",
    "TraceEvent",
    "env_id",
    "make_task_source",
    "parse_response",
    "register_envs",
    "replay_memory",
    "tool_schemas",
]
