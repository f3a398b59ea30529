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
    With ``rules="agentboard"`` (the official protocol) the agent has AgentBoard's macro
    actions instead ("go to red ball 1", "pickup grey key 1", "toggle and go through blue
    closed door 1", ...; :mod:`agemem_gym.tasks.babyai.agentboard`).

Reward/metrics:
    ``success``: minigrid's own verifier reports the mission done (reward > 0). ``progress``:
    AgentBoard's progress rate from the task's subgoal patterns (``**`` wildcards; a pattern
    matches one sentence of an observation that contains all its pieces); after each action
    the first unmatched pattern that matches the new observation is credited, the rate is the
    fraction credited, kept at its maximum, and a solved task counts 1. The first observation
    is not scored. The benchmark's score
    is ``progress`` (``task_metric``). Why ours differs from AgentBoard's: minigrid's verifier
    is the task's definition, so its verdict is success and a solved task has progress 1.
    With ``rules="agentboard"``: AgentBoard's "done" (the pattern score above 0.5 after the
    level terminates, or reaching 1) is success, and progress stays the pattern score. On the
    112 tasks this changes tasks 17, 24, 53, 54 and 105 (minigrid success, pattern score 0.5
    or less: not done yet) and 60 and 63 (minigrid failure counted as done).

Termination:
    Success; failure reported by the level (in the three ``OpenDoorsOrderN4Debug`` tasks with
    two doors, ids 60, 62 and 63, minigrid 3.2's strict verifier fails the episode as soon as
    the first door opens, so no agent can solve them); the level's own step limit; or
    ``max_steps`` actions (default 256). AgentBoard allows 30 macro actions such as "go to
    red ball 1"; with primitive actions minigrid's bot needs 30 on average and up to 220,
    hence our larger limit. Under ``rules="agentboard"``: AgentBoard's done, or 30 actions.

Data:
    AgentBoard's ``agentboard_babyai/test.jsonl`` (goal, subgoals, recorded first observation,
    level id). Pass ``data=`` (the file, its folder, or the folder that holds
    ``agentboard_babyai/``) or set ``AGEMEM_BABYAI_DATA`` to one of those; with neither, the
    file ``data/babyai/test.jsonl`` of the hub dataset ``hkust-nlp/agentboard`` is fetched
    once and cached by ``huggingface_hub``. The engine is the ``minigrid`` package (extra
    ``[babyai]``).

    Training tasks (:meth:`BabyAITasks.sample`): the same levels reset with seeds from 1238
    on (AgentBoard's are 1234-1237), a start state equal to an evaluation task's drawn again;
    they carry no subgoals, so their progress is 0 until solved (1).

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
from agemem_gym.protocols import check_rules
from agemem_gym.tasks._common import find_data
from agemem_gym.tasks.babyai.agentboard import AGENTBOARD_MAX_STEPS, AgentBoardBabyAIEngine
from agemem_gym.tasks.babyai.engine import DEFAULT_MAX_STEPS, BabyAIEngine, make_level, reset_level
from agemem_gym.tasks.babyai.stages import build_stages, scan_level
from agemem_gym.tasks.babyai.text import mission_to_goal
from agemem_gym.tasks.base import NoTrainingDataError, TaskInstance, TaskSource

#: what the system prompt says about stage 3 under AgentBoard's rules
AGENTBOARD_INSTRUCTIONS = (
    "In the final stage you steer an agent through a grid world: each <answer> holds one "
    "action: `turn left`, `turn right`, `move forward`, `go to <object> <n>` (e.g. `go to red "
    "ball 1`), `pickup <object> <n>`, `drop`, `toggle`, `go through <door> <n>`, `toggle and "
    "go through <door> <n>` or `go to goal`, naming objects as the observation does. Say "
    "`check available actions` to list the actions you can take now."
)
SEED_BASE = 1234
EPISODES_PER_LEVEL = 4
#: Training tasks reset the same levels with seeds from here on (AgentBoard's: 1234..1237).
TRAIN_SEED_START = SEED_BASE + EPISODES_PER_LEVEL
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
        max_steps: stage-3 actions allowed per episode (default 256; 30 under AgentBoard's
            rules).
        num_distractors: at most this many stage-2 messages per task.
        rules: ``"ours"`` (primitive actions, minigrid's verdict) or ``"agentboard"``
            (AgentBoard's macro actions and success test, see
            :mod:`agemem_gym.tasks.babyai.agentboard`); the official protocol sets it.

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
        max_steps: int | None = None,
        num_distractors: int = 4,
        rules: str = "ours",
    ):
        self.rules = check_rules(rules, "babyai")
        if max_steps is None:
            max_steps = AGENTBOARD_MAX_STEPS if rules == "agentboard" else DEFAULT_MAX_STEPS
        if rules == "agentboard":
            self.instructions = AGENTBOARD_INSTRUCTIONS
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
        self._truths: dict[tuple[str, int], tuple[Any, str]] = {}
        self._eval_states: dict[str, set[bytes]] = {}

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
        level, seed = self.level_and_seed(index)
        return self._task(f"babyai-{index}", rows[index], level, seed, rng)

    def training_split(self) -> str:
        """The training pool: the evaluation set's levels with other seeds."""
        levels = len({row["additional_info"]["subtask"] for row in self._rows()})
        return (
            f"babyai: the {levels} levels of the evaluation set, reset with seeds "
            f"{TRAIN_SEED_START}..2**31-2 (evaluation: {SEED_BASE}..{SEED_BASE + 3}), "
            "minus any start state equal to an evaluation task's"
        )

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task: a level of the evaluation set with a seed outside AgentBoard's.

        A start state (grid, agent, mission) equal to one of the evaluation tasks of the same
        level is drawn again, so no training task is an evaluation task in disguise.
        """
        rows = self._rows()
        for _ in range(100):
            row = rows[int(rng.integers(len(rows)))]
            level = row["additional_info"]["subtask"]
            seed = int(rng.integers(TRAIN_SEED_START, 2**31 - 1))
            if self._start_state(level, seed) not in self._evaluation_states(level):
                return self._task(f"babyai-train-{level}-{seed}", row, level, seed, rng, train=True)
        raise NoTrainingDataError("no BabyAI start state outside the evaluation set in 100 draws")

    def _evaluation_states(self, level: str) -> set[bytes]:
        if level not in self._eval_states:
            self._eval_states[level] = {
                self._start_state(level, self.level_and_seed(i)[1])
                for i, row in enumerate(self._rows())
                if row["additional_info"]["subtask"] == level
            }
        return self._eval_states[level]

    def _start_state(self, level: str, seed: int) -> bytes:
        """The level's start (grid, agent position and direction, mission) as bytes."""
        env = self._level(level)
        reset_level(env, seed)
        raw = env.unwrapped
        where = f"{tuple(raw.agent_pos)}{raw.agent_dir}{raw.mission}".encode()
        return raw.grid.encode().tobytes() + where

    def _task(
        self, task_id: str, row: dict[str, Any], level: str, seed: int,
        rng: np.random.Generator, train: bool = False,
    ) -> TaskInstance:
        truth, mission = self._truth(level, seed)
        stages = build_stages(truth, rng, self.num_distractors)
        goal = mission_to_goal(mission)
        names = dict.fromkeys(t.name for _, t in truth.targets)
        return TaskInstance(
            task_id=task_id,
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
                # AgentBoard's subgoals and first observation belong to its seeds only
                "subgoals": () if train else tuple(row.get("subgoals", ())),
                "difficulty": row.get("difficulty", ""),
                "recorded_first_observation": (
                    "" if train else row["additional_info"].get("init_obs", "")
                ),
            },
        )

    def _level(self, level: str) -> Any:
        if level not in self._levels:
            self._levels[level] = make_level(level)
        return self._levels[level]

    def _truth(self, level: str, seed: int) -> tuple[Any, str]:
        """The level's ground truth at its start and its mission (cached for evaluation seeds)."""
        key = (level, seed)
        if key in self._truths:
            return self._truths[key]
        env = self._level(level)
        reset_level(env, seed)
        truth = (scan_level(env.unwrapped), str(env.unwrapped.mission))
        if seed < TRAIN_SEED_START:
            self._truths[key] = truth
        return truth

    def make_engine(self) -> BabyAIEngine:
        """A fresh engine under the source's rules; each env instance owns one."""
        if self.rules == "agentboard":
            return AgentBoardBabyAIEngine(max_steps=self.max_steps)
        return BabyAIEngine(max_steps=self.max_steps)

    def close(self) -> None:
        """Close the levels built to read ground truth."""
        for env in self._levels.values():
            env.close()
        self._levels.clear()
