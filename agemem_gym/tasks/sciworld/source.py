"""ScienceWorld: AgentBoard's 90 science tasks in the three-stage memory episode.

Description:
    The agent carries out an elementary-science task (measure a melting point, find the
    longest-lived animal, mix a paint colour, ...) in the ScienceWorld text simulator (the
    ``scienceworld`` package, run in a Java process). The evaluation set is AgentBoard's 90 tasks:
    task name, variation, AgentBoard's hand-edited goal text and its subgoals.

Stages:
    Each task's gold action sequence is replayed once in the simulator (a separate JVM owned by
    the task source, results cached per process) and read for ground truth: the room each
    object is first used in, the objects focused on (in order) and the rooms walked through
    between the rooms where work happens.

    Stage 1 tells these facts casually, one per turn: small talk (``none``); up to four
    "the X is in the R" facts (``add``), the first of them with a wrong room; up to three route
    facts "the way from A to B goes through C" (``add``); a false claim that the door of a room
    the task never visits is locked (``add``); the focus targets (``add``); the correction of
    the first location (``update``: the wrong room is superseded); the retraction of the
    locked-door claim (``delete``); small talk. Which fact is corrected and which rooms are used
    depend only on the task; the generator only chooses among wordings.

    Stage 2 gives near-miss distractors (four by default): true but unneeded facts about other
    objects in the rooms the gold path passes through ("there's a violet light bulb on the table
    in the workshop").

Observation:
    Stage 3 starts with the goal and the simulator's ``look around`` of the start room, followed
    by a line naming the ``check valid actions`` meta action. Each action returns the
    simulator's text.

Action:
    ScienceWorld's text commands ("go to kitchen", "pick up thermometer", "focus on gallium",
    "wait1", a number to settle an ambiguous request, ...). ``check valid actions`` lists the
    valid actions (at most ``valid_actions_limit``, shortest first) without spending a move;
    they are computed only then, so a step costs one simulator call instead of a rebuild of the
    full action list. Unknown commands are reported as invalid, never raised.

Reward/metrics:
    ``success`` is the simulator's own completion (score 100); with ``rules="agentboard"``
    (the official protocol) it is AgentBoard's "done" instead: every subgoal matched, whatever
    the simulator says (the two differ on 4 of 8 sampled tasks). ``progress`` is AgentBoard's
    progress rate: each subgoal is a regular expression searched (``re.search``) in the
    observation of every step, and progress is the fraction matched so far; ``score`` is
    ``success``. Some subgoals never match the gold path's step observations, so progress
    stays below 1 even on success (measured with "easy": the 90 gold replays all succeed with a
    mean progress of 0.89; 25 tasks keep some subgoal unmatched). The find-animal,
    find-living-thing and find-non-living-thing tasks (ids 25, 27, 30, 68-74, 76) name one
    specific object while any fitting object completes the task; task 17's subgoal starts with a
    stray comma; the state-of-matter subgoals ("solid orange juice", "gaseous apple juice", a
    temperature pattern: ids 18, 34, 36-40) and the chemistry-mix subgoals (ids 41-43) describe
    steps the gold path does differently; tasks 51 and 52 name another animal than the one the
    gold path picks. The data is left as AgentBoard published it.

Termination:
    The episode ends when the simulator reports completion (success) or failure (a negative
    score, e.g. focusing on the wrong object), after ``max_steps`` actions, or, with
    ``stop_on_subgoals=True``, once every subgoal has matched (AgentBoard's "done").
    ``max_steps`` is 100 by default: the longest gold path needs 93 actions, and replaying the
    gold paths completes 90 of the 90 tasks; with AgentBoard's 30 it completes 76 (measured).
    The simulator is not reproducible step for step on a few tasks (22, 36, 41, 45 in our
    runs: objects are listed in varying order and the step of completion varies between
    loads), so these counts can move by a task or two; success under "easy" did not.

Data:
    ``test.jsonl`` of AgentBoard's ScienceWorld set (one JSON object per line with ``id``,
    ``goal``, ``subgoals``, ``difficulty`` and ``additional_info.{env_name,var}``). Pass
    ``data=`` (the file or its directory) or set ``AGEMEM_SCIWORLD_DATA``; with neither, the
    file ``data/scienceworld/test.jsonl`` of the hub dataset ``hkust-nlp/agentboard`` is
    fetched once and cached by ``huggingface_hub``.

    Training tasks (:meth:`SciWorldTasks.sample`): ScienceWorld's own train variations of the
    evaluation set's task names, minus every (task, variation) of the file. Their query is
    ScienceWorld's task description (AgentBoard hand-edited its goals); they have no subgoals,
    so only success (the simulator's completion) is measured on them.

Simplification:
    ScienceWorld's simplification string is ``"easy"`` by default (open doors and containers,
    self-watering pots, no electrical actions, plus teleport actions). With it every gold path
    completes its task in one reused JVM, and repeated runs give identical results. AgentBoard's
    string (:data:`AGENTBOARD_SIMPLIFICATION`, no teleport) can be chosen, but under it a few
    gold paths fail (task 46 answers an ambiguous prompt wrongly) and some tasks' outcomes
    depend on which tasks ran before in the same JVM (state leaks across loads). AgentBoard's
    setting as a whole: ``SciWorldTasks(data=..., rules="agentboard")`` (what the official
    protocol sets): its simplification, 30 steps, and success when every subgoal has matched.

Processes:
    Each engine owns one JVM, started at its first reset and kept across resets; the task
    source owns one more for replaying gold paths. Each is capped at a 1 GB heap (about 0.5 GB
    resident). ``close()`` stops them; so do garbage collection and interpreter exit, and the
    JVM exits by itself when the Python process dies, even by ``SIGKILL`` (its stdin pipe
    breaks).

>>> src = SciWorldTasks(data="missing-dir/test.jsonl")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
DataNotFoundError: ...
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.protocols import check_rules
from agemem_gym.tasks._common import find_data
from agemem_gym.tasks.base import NoTrainingDataError, TaskInstance, TaskSource
from agemem_gym.tasks.sciworld.agentboard import AgentBoardSciWorldEngine
from agemem_gym.tasks.sciworld.engine import (
    AGENTBOARD_MAX_STEPS,
    AGENTBOARD_SIMPLIFICATION,
    GoldTrace,
    SciWorldEngine,
    check_simplification,
    trace_gold_path,
)
from agemem_gym.tasks.sciworld.jvm import DEFAULT_JAVA_OPTIONS, JavaServer
from agemem_gym.tasks.sciworld.stages import build_distractors, build_stage1, key_items, read_trace

DATA_ENV_VAR = "AGEMEM_SCIWORLD_DATA"
DATA_FILE = "test.jsonl"
_STAGE_TURNS = 16  # stage-1 plus stage-2 turns, generously

#: Gold traces by (env_name, variation, simplification), shared by all sources of a process.
_TRACES: dict[tuple[str, int, str], GoldTrace] = {}
_TRACES_LOCK = threading.Lock()


def resolve_data_path(data: str | os.PathLike[str] | None) -> Path:
    """The task file: ``data`` or ``$AGEMEM_SCIWORLD_DATA`` (the file or its directory), else
    AgentBoard's copy on the hub (fetched once, then cached)."""
    return find_data(
        data, benchmark="ScienceWorld", env_var=DATA_ENV_VAR, layout=("", DATA_FILE, f"agentboard_scienceworld/{DATA_FILE}"),
        expected=f"AgentBoard's ScienceWorld {DATA_FILE} or the directory holding it",
        hub_file=f"scienceworld/{DATA_FILE}",
    )


def _parse_record(line: str) -> dict[str, Any]:
    rec = json.loads(line)
    info = rec["additional_info"]
    return {
        "id": int(rec["id"]),
        "goal": str(rec["goal"]),
        "subgoals": [str(s) for s in rec["subgoals"]],
        "difficulty": str(rec.get("difficulty", "")),
        "env_name": str(info["env_name"]),
        "variation": int(info["var"]),
    }


def load_records(path: Path) -> list[dict[str, Any]]:
    """Read and check the task file: one JSON object per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataNotFoundError(f"cannot read ScienceWorld task file {str(path)!r}: {e}") from e
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(_parse_record(line))
        except (ValueError, KeyError, TypeError) as e:
            raise DataNotFoundError(
                f"ScienceWorld task file {str(path)!r}, line {number}: not a task record ({e!r})"
            ) from e
    return records


class SciWorldTasks(TaskSource):
    """AgentBoard's ScienceWorld tasks with stage content built from their gold paths.

    All options are keywords; construction only checks the data path (the JVMs start on
    first use).

    Args:
        data: AgentBoard's ``test.jsonl`` or its directory (default ``$AGEMEM_SCIWORLD_DATA``).
        simplification: ScienceWorld simplification string ("easy"; AgentBoard's under its
            rules; see the module docs).
        max_steps: stage-3 actions allowed (100; 30 under AgentBoard's rules).
        stop_on_subgoals: end the episode when every subgoal has matched, as AgentBoard did.
        task_ids: restrict the evaluation set to these AgentBoard ids (in this order).
        num_distractors: stage-2 turns.
        valid_actions_limit: most actions listed by ``check valid actions`` (None: all).
        java_options: JVM options for the simulators.
        rules: ``"ours"`` (the simulator's completion is success) or ``"agentboard"``
            (every subgoal matched is success and ends the episode; AgentBoard's
            simplification and 30 steps: :mod:`agemem_gym.tasks.sciworld.agentboard`); the
            official protocol sets it.
    """

    name = "sciworld"
    instructions = (
        "In the final stage you act in a science lab simulator: each <answer> holds one "
        "command, such as `go to kitchen`, `pick up thermometer`, `focus on gallium`, "
        "`use thermometer in inventory on gallium` or `wait1`. `look around` describes the "
        "room; say `check valid actions` to list the commands you can use now. Focus only on "
        "what the task asks you to focus on: a wrong focus ends the task."
    )
    max_rounds = 100 + 4 * _STAGE_TURNS
    token_budget = 8192

    def __init__(
        self,
        *,
        data: str | os.PathLike[str] | None = None,
        simplification: str | None = None,
        max_steps: int | None = None,
        stop_on_subgoals: bool = False,
        task_ids: Sequence[int] | None = None,
        num_distractors: int = 4,
        valid_actions_limit: int | None = 150,
        java_options: Sequence[str] = DEFAULT_JAVA_OPTIONS,
        rules: str = "ours",
    ) -> None:
        self.rules = check_rules(rules, "sciworld")
        agentboard = rules == "agentboard"
        if simplification is None:
            simplification = AGENTBOARD_SIMPLIFICATION if agentboard else "easy"
        if max_steps is None:
            max_steps = AGENTBOARD_MAX_STEPS if agentboard else 100
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        if num_distractors < 0:
            raise ConfigError(f"num_distractors must be >= 0, got {num_distractors}")
        self.path = resolve_data_path(data)
        self.simplification = check_simplification(simplification)
        self.max_steps = max_steps
        self.max_rounds = max_steps + 4 * _STAGE_TURNS
        self.stop_on_subgoals = stop_on_subgoals
        self.task_ids = None if task_ids is None else [int(i) for i in task_ids]
        self.num_distractors = num_distractors
        self.valid_actions_limit = valid_actions_limit
        self.java_options = tuple(java_options)
        self._records: list[dict[str, Any]] | None = None
        self._probe: JavaServer | None = None
        self._train_variations: dict[str, list[int]] = {}

    @property
    def records(self) -> list[dict[str, Any]]:
        """The evaluation set's task records, loaded on first use."""
        if self._records is None:
            records = load_records(self.path)
            if self.task_ids is not None:
                by_id = {r["id"]: r for r in records}
                missing = [i for i in self.task_ids if i not in by_id]
                if missing:
                    raise ConfigError(
                        f"task_ids {missing} are not in {str(self.path)!r} "
                        f"(ids {min(by_id)}-{max(by_id)})"
                    )
                records = [by_id[i] for i in self.task_ids]
            self._records = records
        return self._records

    def __len__(self) -> int:
        return len(self.records)

    @property
    def task_metric(self) -> str:
        """Success rate, as in the paper's table."""
        return "success"

    def trace(self, index: int) -> GoldTrace:
        """The replayed gold path of task ``index`` (computed once per process)."""
        return self._trace(self.records[index])

    def _interface(self) -> Any:
        if self._probe is None:
            self._probe = JavaServer(self.java_options)
        return self._probe.interface

    def _trace(self, rec: dict[str, Any]) -> GoldTrace:
        key = (rec["env_name"], rec["variation"], self.simplification)
        with _TRACES_LOCK:
            if key not in _TRACES:
                _TRACES[key] = trace_gold_path(self._interface(), *key)
            return _TRACES[key]

    def training_split(self) -> str:
        """The training pool: ScienceWorld's train variations of the evaluation task names."""
        names = sorted({rec["env_name"] for rec in self.records})
        return (
            f"sciworld: ScienceWorld's train variations of the {len(names)} task names of the "
            f"evaluation set, minus every (task, variation) of {self.path.name}"
        )

    def train_variations(self, env_name: str) -> list[int]:
        """ScienceWorld's train variations of ``env_name`` that AgentBoard's file does not use."""
        if env_name not in self._train_variations:
            used = {r["variation"] for r in load_records(self.path) if r["env_name"] == env_name}
            with _TRACES_LOCK:
                interface = self._interface()
                interface.load(env_name, 0, self.simplification, False)
                train = [int(v) for v in interface.getVariationsTrain()]
            self._train_variations[env_name] = [v for v in train if v not in used]
        return self._train_variations[env_name]

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task: a train variation of one of the evaluation set's task names.

        Its query is ScienceWorld's own task description; it has no subgoals, so its
        progress stays 0 and success is the simulator's completion.
        """
        names = sorted({rec["env_name"] for rec in self.records})
        env_name = names[int(rng.integers(len(names)))]
        variations = self.train_variations(env_name)
        if not variations:
            raise NoTrainingDataError(f"ScienceWorld has no train variation of {env_name!r}")
        variation = variations[int(rng.integers(len(variations)))]
        with _TRACES_LOCK:
            interface = self._interface()
            interface.load(env_name, variation, self.simplification, False)
            goal = str(interface.getTaskDescription())
        rec = {"id": f"train-{env_name}-{variation}", "goal": goal, "subgoals": [],
               "difficulty": "", "env_name": env_name, "variation": variation}
        return self._task(rec, rng)

    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        """Task ``index``: AgentBoard's goal as the query, stage content from its gold path."""
        if not 0 <= index < len(self):
            raise IndexError(f"task index {index} out of range for {len(self)} ScienceWorld tasks")
        return self._task(self.records[index], rng)

    def _task(self, rec: dict[str, Any], rng: np.random.Generator) -> TaskInstance:
        trace = self._trace(rec)
        agentboard = isinstance(rec["id"], int)
        number = rec["id"] if agentboard else zlib.crc32(rec["id"].encode())  # fixes the plan
        stage1, supporting = build_stage1(trace, number, rng)
        focus = read_trace(trace).focus
        return TaskInstance(
            task_id=f"sciworld-{rec['id']}",
            query=rec["goal"],
            stage1=stage1,
            distractors=build_distractors(trace, self.num_distractors, rng),
            supporting_facts=supporting,
            key_items=key_items(rec["goal"], focus),
            category=rec["env_name"],
            metadata={
                "agentboard_id": rec["id"] if agentboard else None,
                "env_name": rec["env_name"],
                "variation": rec["variation"],
                "difficulty": rec["difficulty"],
                "subgoals": list(rec["subgoals"]),
                "gold_actions": list(trace.actions),
                "simplification": self.simplification,
            },
        )

    def make_engine(self) -> SciWorldEngine:
        """A new engine under the source's rules (its own JVM, started at the first reset)."""
        engine = AgentBoardSciWorldEngine if self.rules == "agentboard" else SciWorldEngine
        return engine(
            simplification=self.simplification,
            max_steps=self.max_steps,
            stop_on_subgoals=self.stop_on_subgoals,
            valid_actions_limit=self.valid_actions_limit,
            java_options=self.java_options,
        )

    def close(self) -> None:
        """Stop the JVM used to replay gold paths (cached traces are kept)."""
        if self._probe is not None:
            self._probe.close()
            self._probe = None


__all__ = [
    "AGENTBOARD_MAX_STEPS",
    "AGENTBOARD_SIMPLIFICATION",
    "DATA_ENV_VAR",
    "SciWorldEngine",
    "SciWorldTasks",
    "load_records",
    "resolve_data_path",
]
