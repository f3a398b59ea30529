"""BabyAI: grid-world instruction following on minigrid's BabyAI levels, in three stages.

Description:
    The 112 tasks of AgentBoard's BabyAI set: 28 levels (GoTo, Open, Pickup, Unlock, FindObj,
    KeyCorridor, ...) with 4 episodes each. Task ``i`` is level ``i // 4`` of the set's level
    list, reset with ``seed=1234 + i % 4``; ``BabyAI-GoToObjS6-v0`` (gone from minigrid 3) is
    ``BabyAI-GoToObj-v0`` with ``room_size=4``. The mission and the first observation of every
    task equal the recorded ones in the data file.

Stages:
    Our design (the paper gives none), built from the level's start state
    (``stages.py``), all wording drawn with the episode's generator:

    - Stage 1 (facts that save exploration), one user turn each: a greeting (no memory op);
      a rough first hint where the first target object is (wrong by 2-3 steps: ``add``); for
      every target of the mission its exact position relative to the start, given as steps
      ahead and to the side as the agent faces at the start (the first target's arrives later
      as a correction: ``update`` of the rough hint); the door on a shortest route to a target
      in another room; each locked door with where its key is; a made-up object at a made-up
      place that a later turn retracts (``delete``); small talk (no op).
      ``supporting_facts`` are the exact positions, routes and locks (the rough hint is
      superseded).
    - Stage 2 (distractors): up to four near-miss facts, the true positions of other objects
      of the level, those sharing a colour or kind with a target first.
    - Stage 3: the goal (AgentBoard's wording: "then" and "after you" become "and"), then
      the first observation. The actions are explained in ``instructions`` (system prompt).

Observation:
    The egocentric 7x7 view in sentences, word for word as the data file records them: every
    visible object with colour and a running number, nearest first, "N steps in front of you
    and M steps to your left/right"; "You are facing a wall N steps away"; what the agent
    carries. An action that changes nothing is reported first ("Nothing happened: ...").

Action:
    One of the six primitive actions in words: "turn left", "turn right", "move forward",
    "pick up", "drop", "toggle"; or "check valid actions", which lists the actions that would
    change something now, without acting. Case, quotes, a final full stop and a few synonyms
    ("forward", "pickup") are accepted. Any other text is answered with an "invalid action"
    observation that lists the valid actions (``valid=False``); nothing is executed.

Reward/metrics:
    ``success``: minigrid's own verifier reports the mission done (reward > 0). ``progress``:
    AgentBoard's progress rate from the task's subgoal patterns (``**`` wildcards; a pattern
    matches one sentence of an observation that contains all its pieces); after each action
    the first unmatched pattern that matches the new observation is credited, the rate is the
    fraction credited, kept at its maximum, and a solved task counts 1. The first observation
    is not scored. The benchmark's score
    is ``progress`` (``task_metric``).

Termination:
    Success; failure reported by the level (in the three ``OpenDoorsOrderN4Debug`` tasks with
    two doors, ids 60, 62 and 63, minigrid 3.2's strict verifier fails the episode as soon as
    the first door opens, so no agent can solve them); the level's own step limit; or
    ``max_steps`` actions (default 256). AgentBoard allows 30 macro actions such as "go to
    red ball 1"; with primitive actions minigrid's bot needs 30 on average and up to 220.

Data:
    AgentBoard's ``agentboard_babyai/test.jsonl`` (goal, subgoals, recorded first observation,
    level id). Pass ``data=`` (the file, its folder, or the folder that holds
    ``agentboard_babyai/``) or set ``AGEMEM_BABYAI_DATA`` to one of those. Nothing is
    downloaded. The engine is the ``minigrid`` package (extra ``[babyai]``).

Oracle:
    :meth:`BabyAIEngine.expert_action` is minigrid's ``BabyAIBot`` through the text actions,
    with a planning budget (it loops forever on task 100). When the bot considers the mission
    met before the level has checked it (the level checks after an action), the expert answers
    with an action that changes nothing. It solves 108 of the 112 tasks (all but 60, 62, 63
    and 100).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.tasks._common import find_data
from agemem_gym.tasks.babyai.engine import DEFAULT_MAX_STEPS, BabyAIEngine, make_level, reset_level
from agemem_gym.tasks.babyai.stages import build_stages, scan_level
from agemem_gym.tasks.babyai.text import mission_to_goal
from agemem_gym.tasks.base import TaskInstance, TaskSource

SEED_BASE = 1234
EPISODES_PER_LEVEL = 4
DATA_ENV_VAR = "AGEMEM_BABYAI_DATA"
_DATA_NAME = "test.jsonl"
_DATA_DIR = "agentboard_babyai"


def resolve_data_path(data: str | os.PathLike[str] | None) -> Path:
    """The task file: ``data`` or ``$AGEMEM_BABYAI_DATA`` (the file or a folder holding it),
    else AgentBoard's copy on the hub (fetched once, then cached)."""
    return find_data(
        data, benchmark="BabyAI", env_var=DATA_ENV_VAR, layout=("", _DATA_NAME, f"{_DATA_DIR}/{_DATA_NAME}"),
        expected=f"AgentBoard's {_DATA_DIR}/{_DATA_NAME} or a folder holding it",
        hub_file=f"babyai/{_DATA_NAME}",
    )


@lru_cache(maxsize=8)
def _load_rows(path: Path) -> tuple[dict[str, Any], ...]:
    try:
        with path.open(encoding="utf-8") as f:
            rows = tuple(json.loads(line) for line in f if line.strip())
    except (OSError, json.JSONDecodeError) as e:
        raise DataNotFoundError(f"cannot read the BabyAI task file {path}: {e}") from e
    for i, row in enumerate(rows):
        if row.get("id") != i or "subtask" not in row.get("additional_info", {}):
            raise DataNotFoundError(
                f"{path} line {i + 1}: expected id {i} with additional_info.subtask"
            )
    return rows


class BabyAITasks(TaskSource):
    """AgentBoard's 112 BabyAI tasks as a three-stage benchmark (``tasks="babyai"``).

    Args:
        data: the task file ``test.jsonl`` or a folder holding it (see the module's Data).
        max_steps: stage-3 actions allowed per episode.
        num_distractors: at most this many stage-2 messages per task.

    >>> source = BabyAITasks(data=DATA)
    >>> len(source), source.task_metric
    (112, 'progress')
    >>> source.get(0, np.random.default_rng(0)).metadata["level"]
    'BabyAI-GoToRedBallGrey-v0'
    """

    name = "babyai"
    instructions = (
        "In the final stage you steer an agent through a grid world: each <answer> holds one "
        "action: `turn left`, `turn right`, `move forward`, `pick up`, `drop` or `toggle` "
        "(opens doors, unlocks one when you carry its key). Say `check valid actions` to list "
        "the actions that would change something now."
    )
    max_rounds = DEFAULT_MAX_STEPS + 64
    token_budget = 8192

    def __init__(
        self,
        data: str | os.PathLike[str] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        num_distractors: int = 4,
    ):
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer, got {max_steps!r}")
        if not isinstance(num_distractors, int) or num_distractors < 1:
            raise ConfigError(f"num_distractors must be a positive integer, got {num_distractors!r}")
        self._data = data
        self._path: Path | None = None
        self.max_steps = max_steps
        self.num_distractors = num_distractors
        self.max_rounds = max_steps + 64  # stage 3 plus about 4 rounds per stage-1/2 turn
        self._levels: dict[str, Any] = {}
        self._truths: dict[int, tuple[Any, str]] = {}

    def _rows(self) -> tuple[dict[str, Any], ...]:
        if self._path is None:
            self._path = resolve_data_path(self._data)
        return _load_rows(self._path)

    def __len__(self) -> int:
        return len(self._rows())

    @property
    def task_metric(self) -> str:
        return "progress"

    def level_and_seed(self, index: int) -> tuple[str, int]:
        """The level id and reset seed of task ``index`` (AgentBoard's rule)."""
        row = self._rows()[index]
        return row["additional_info"]["subtask"], SEED_BASE + index % EPISODES_PER_LEVEL

    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        """Task ``index``; ``rng`` draws the wording, the wrong hint and the distractors."""
        rows = self._rows()
        if not 0 <= index < len(rows):
            raise IndexError(f"BabyAI task index {index} out of range 0..{len(rows) - 1}")
        row = rows[index]
        level, seed = self.level_and_seed(index)
        truth, mission = self._truth(index)
        stages = build_stages(truth, rng, self.num_distractors)
        goal = mission_to_goal(mission)
        names = dict.fromkeys(t.name for _, t in truth.targets)
        return TaskInstance(
            task_id=f"babyai-{index}",
            query=f"Your goal: {goal}.",
            stage1=stages.stage1,
            distractors=stages.distractors,
            supporting_facts=stages.supporting_facts,
            key_items=tuple(names),
            category=level,
            metadata={
                "level": level,
                "seed": seed,
                "mission": mission,
                "goal": goal,
                "subgoals": tuple(row.get("subgoals", ())),
                "difficulty": row.get("difficulty", ""),
                "recorded_first_observation": row["additional_info"].get("init_obs", ""),
            },
        )

    def _truth(self, index: int) -> tuple[Any, str]:
        """The level's ground truth at its start and its mission (cached per task)."""
        if index not in self._truths:
            level, seed = self.level_and_seed(index)
            if level not in self._levels:
                self._levels[level] = make_level(level)
            env = self._levels[level]
            reset_level(env, seed)
            self._truths[index] = (scan_level(env.unwrapped), str(env.unwrapped.mission))
        return self._truths[index]

    def make_engine(self) -> BabyAIEngine:
        """A fresh engine; each env instance owns one."""
        return BabyAIEngine(max_steps=self.max_steps)

    def close(self) -> None:
        """Close the levels built to read ground truth."""
        for env in self._levels.values():
            env.close()
        self._levels.clear()
