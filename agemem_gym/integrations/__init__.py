"""Third-party RL: a framework-neutral rollout layer, and adapters for TRL and OpenEnv.

- :mod:`~agemem_gym.integrations.rollouts`: play episodes with any token-level ``generate``
  callable; every model turn's prompt ids, completion ids and log-probs; training rows that
  never cross a context rewrite (torch-free).
- :mod:`~agemem_gym.integrations.chat`: observations as chat messages and template text.
- :mod:`~agemem_gym.integrations.hf`: a ``generate`` callable around a ``transformers`` model.
- :mod:`~agemem_gym.integrations.trl`: a ``rollout_func`` for TRL's ``GRPOTrainer``, a task
  dataset and the env's reward as reward functions (needs ``trl``).
- :mod:`~agemem_gym.integrations.openenv`: any registered env as an OpenEnv server, and its
  client (needs the ``[openenv]`` extra).

Only the first two load with the package; the others import their frameworks when imported.

>>> from agemem_gym.integrations import Completion, training_rows
>>> Completion([5, 6], [-0.1, -0.2]).ids
[5, 6]
"""

from agemem_gym.integrations.chat import ChatRenderer, chat_messages
from agemem_gym.integrations.rollouts import (
    Completion,
    GenerateError,
    GenerateFn,
    ModelTurn,
    PlayedEpisode,
    TokenPolicy,
    TrainingRow,
    play,
    training_rows,
)

__all__ = [
    "ChatRenderer",
    "Completion",
    "GenerateError",
    "GenerateFn",
    "ModelTurn",
    "PlayedEpisode",
    "TokenPolicy",
    "TrainingRow",
    "chat_messages",
    "play",
    "training_rows",
]
