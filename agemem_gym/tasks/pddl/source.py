"""PDDL planning tasks (AgentBoard's 60) as a three-stage AgeMem benchmark.

Description:
    The 60 PDDL problems of AgentBoard: gripper (20), blockworld (10), barman (20) and
    tyreworld (10). In stage 3 the agent acts in the world, one action per answer, until every
    goal condition holds. The worlds are pddlgym 0.0.7 environments built from the domain and
    problem files in the data folder (the pddlgym package lacks three of these domains).

Stages:
    Our design (the paper gives no stage content for PDDL). An expert plan for the problem
    (see Oracle) and the problem's goal give the hints:

    * Stage 1, eight or so user turns, each one :class:`~agemem_gym.tasks.base.Fact`:
      a first-action tip that is wrong (another action valid in the initial state; ``add``),
      the objects the plan uses (``add``), an extra goal condition that is not part of the
      goal (a near miss of a real one; ``add``), a useful ordering (two goal conditions in the
      order the plan achieves them; with a single goal condition, the plan's last action
      instead; ``add``), small talk (``none``), the plan's length (``add``), the correction
      of the first-action tip to the plan's real first action (``update``, the old action is
      superseded), and the retraction of the extra condition (``delete``).
      ``supporting_facts`` are the objects, ordering, length and corrected first action.
    * Stage 2, three messages: near misses of the same kinds of hint that are about other
      puzzles: a first move with one object swapped for another of its type, a goal
      condition with one object swapped (an object of the problem, or an invented one of the
      same family such as ``ball13``), and a different plan length.

    Which goal conditions, which wrong first action and all wording come from the ``rng``
    passed to :meth:`PDDLTasks.get`; the task itself is fixed by its index.

Observation:
    Stage 3 starts with the goal (the label file's goal text) followed by the domain's action
    syntax and every true fact of the initial state as plain sentences ("ball1 is at rooma.").
    After an action the engine says what became true and what stopped being true. Three
    commands show more without changing the world: ``check valid actions`` (every valid action
    now, including those that repeat an object), ``look`` (every fact) and ``check goal``
    (which goal conditions hold).

Action:
    One ground action per answer, e.g. ``pick ball1 rooma left``. Parsing is lenient about
    case, whitespace, parentheses, commas and quotes (``(pick ball1 rooma left)`` and
    ``Pick(ball1, rooma, left).`` are the same action); ``_`` or a space may stand for ``-`` in
    an action name. Preconditions are checked on the grounded action (pddlgym skips those made
    only of constants); an invalid or unparsable action changes nothing and the observation
    says why (``EngineStep.valid`` is False).

Reward/metrics:
    ``progress`` is the fraction of goal conditions that hold, kept at its maximum over the
    episode, counted from the start (conditions true at the start count, since they are part
    of the goal state reached); ``success`` is all goal conditions holding. The benchmark's
    primary metric (``task_metric``) is ``progress``. With ``rules="agentboard"`` (the
    official protocol) progress starts at 0 and is first computed after an action that
    changes the world, actions that name an object twice or change nothing are refused, and
    30 answers are allowed, as in AgentBoard (:mod:`agemem_gym.tasks.pddl.agentboard`).

Termination:
    The episode ends when every goal condition holds, or when no action is valid any more
    (a dead end). The env stops stage 3 after ``max_steps`` answers (default 60: the longest
    expert plan has 46 actions, which leaves room for checks and mistakes); every answer
    counts, commands and invalid actions included.

Oracle:
    :meth:`PDDLEngine.expert_action` returns the next step of a pyperplan plan (greedy
    best-first search with the FF heuristic and preferred operators, then the additive and
    landmark heuristics as fall-backs; fixed hash seed, so plans are reproducible). Plans for
    initial states are cached in ``cache_dir``; when the agent leaves the plan the engine
    replans from the current state.

Data:
    A folder holding AgentBoard's label file ``test.jsonl`` and ``pddl/`` with the four domain
    files and problem folders (``pddl/gripper.pddl``, ``pddl/gripper/prob01.pddl``, ...). Row
    ``k`` of ``test.jsonl`` is problem ``i`` of its subtask in sorted file-name order. Pass it
    as ``data=`` or set ``AGEMEM_PDDL_DATA``; nothing is downloaded (the hub's
    ``hkust-nlp/agentboard`` holds the label file without the domain and problem files).

    Training tasks (:meth:`PDDLTasks.sample`): problems of the same domains that are not
    evaluation problems, from ``train_data=`` (``<domain>/*.pddl``), else from pddlgym's own
    problem sets with the same domain file, which exist for gripper alone (51 problems); the
    other three domains get no training problems then (a warning says so). Their goal text is
    generated from the problem's goal ("The goal is to satisfy the following conditions: ...").
    See :mod:`agemem_gym.tasks.pddl.training`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.protocols import check_rules
from agemem_gym.tasks._common import find_data
from agemem_gym.tasks.base import NoTrainingDataError, TaskInstance, TaskSource
from agemem_gym.tasks.pddl.agentboard import AGENTBOARD_MAX_STEPS, AgentBoardPDDLEngine
from agemem_gym.tasks.pddl.engine import PDDLEngine
from agemem_gym.tasks.pddl.logic import Atom
from agemem_gym.tasks.pddl.planner import default_cache_dir, find_plan
from agemem_gym.tasks.pddl.stages import ProblemFacts, build_stages
from agemem_gym.tasks.pddl.text import sentence
from agemem_gym.tasks.pddl.training import TrainingProblem, find_training_problems

logger = logging.getLogger(__name__)

DATA_ENV_VAR = "AGEMEM_PDDL_DATA"
DOMAINS = ("gripper", "blockworld", "barman", "tyreworld")


def _is_data_dir(path: Path) -> bool:
    return (path / "test.jsonl").is_file() and (path / "pddl").is_dir()


def resolve_data_dir(data: str | Path | None) -> Path:
    """The data folder: ``data``, else ``$AGEMEM_PDDL_DATA``; checked for its files.

    Nothing is fetched: the hub's ``data/pddl`` of AgentBoard holds the label file alone; the
    domain and problem files come from AgentBoard's code repository.
    """
    return find_data(
        data, benchmark="PDDL", env_var=DATA_ENV_VAR, layout=("", "agentboard_pddl"), accept=_is_data_dir,
        expected="a folder with AgentBoard's test.jsonl and pddl/<domain>.pddl with "
        "pddl/<domain>/*.pddl",
    )


def _where(row: dict[str, Any]) -> dict[str, Any]:
    """What the engine needs to load a problem: its domain, index and (training) folder."""
    where = {"domain": row["domain"], "problem_index": row["problem_index"]}
    if "problem_dir" in row:
        where["problem_dir"] = str(row["problem_dir"])
    return where


class PDDLTasks(TaskSource):
    """AgentBoard's 60 PDDL problems with memory hints (see the module docstring).

    Args:
        data: the data folder; default ``$AGEMEM_PDDL_DATA``.
        cache_dir: where expert plans are cached; default ``$AGEMEM_CACHE_DIR/pddl_plans`` or
            ``~/.cache/agemem_gym/pddl_plans``.
        max_steps: stage-3 actions allowed per episode (default 60; 30 under AgentBoard's
            rules).
        train_data: training problems, a folder with ``<domain>/*.pddl`` (see
            :mod:`agemem_gym.tasks.pddl.training`); None: pddlgym's own sets of these domains.
        rules: ``"ours"`` or ``"agentboard"`` (progress from 0, no repeated-object actions,
            no-change actions refused: :mod:`agemem_gym.tasks.pddl.agentboard`); the official
            protocol sets it.

    >>> tasks = PDDLTasks(data=DATA)  # or set $AGEMEM_PDDL_DATA and leave data out
    >>> len(tasks), tasks.task_metric
    (60, 'progress')
    """

    name = "pddl"
    instructions = (
        "In the final stage you act in a planning world: each <answer> holds one action, such "
        "as `pick ball1 rooma left`. Say `check valid actions` to list the actions you can take "
        "now, `look` to see every fact, or `check goal` to see which goal conditions hold."
    )
    max_rounds = 120
    token_budget = 8192

    def __init__(
        self,
        data: str | Path | None = None,
        cache_dir: str | Path | None = None,
        max_steps: int | None = None,
        train_data: str | Path | None = None,
        rules: str = "ours",
    ):
        self.rules = check_rules(rules, "pddl")
        if max_steps is None:
            max_steps = AGENTBOARD_MAX_STEPS if rules == "agentboard" else 60
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.data_dir = resolve_data_dir(data)
        self.pddl_dir = self.data_dir / "pddl"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.max_steps = max_steps
        self._rows: list[dict[str, Any]] | None = None
        self.train_data = Path(train_data).expanduser() if train_data is not None else None
        self._facts: dict[Path, tuple[ProblemFacts, tuple[Atom, ...]]] = {}
        self._train: list[TrainingProblem] | None = None
        self._warned = False
        self._helper: PDDLEngine | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The label file's rows, each with ``domain`` and ``problem_index`` added."""
        if self._rows is None:
            self._rows = self._load_rows()
        return self._rows

    def _load_rows(self) -> list[dict[str, Any]]:
        path = self.data_dir / "test.jsonl"
        try:
            raw = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        except (OSError, json.JSONDecodeError) as e:
            raise DataNotFoundError(f"cannot read the PDDL label file {str(path)!r}: {e}") from e
        counts: dict[str, int] = {}
        rows = []
        for row in raw:
            domain = row["additional_info"]["subtask"]
            problems = sorted((self.pddl_dir / domain).glob("*.pddl"))
            index = counts.get(domain, 0)
            counts[domain] = index + 1
            if index >= len(problems):
                raise DataNotFoundError(
                    f"test.jsonl row {row['id']} is {domain} problem {index + 1}, but "
                    f"{self.pddl_dir / domain} has {len(problems)} problem files"
                )
            rows.append(dict(row, domain=domain, problem_index=index, problem_file=problems[index]))
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    def _problem_facts(self, row: dict[str, Any]) -> tuple[ProblemFacts, tuple[Atom, ...]]:
        """Goal, objects, plan and the goal's achievement order of a problem (cached)."""
        if row["problem_file"] in self._facts:
            return self._facts[row["problem_file"]]
        if self._helper is None:
            self._helper = PDDLEngine(self.pddl_dir, self.cache_dir, self.max_steps)
        engine = self._helper
        engine.reset(TaskInstance(task_id=str(row["id"]), query="", metadata=_where(row)))
        first_actions = tuple(engine.valid_actions())
        kinds = engine.model.object_kinds(engine.atoms)
        plan = tuple(
            find_plan(
                self.pddl_dir / f"{row['domain']}.pddl", row["problem_file"], None, self.cache_dir
            )
        )
        reached = {a: 0 for a in engine.goal if a in engine.atoms}
        for t, action in enumerate(plan, start=1):
            engine.step(action)
            reached.update({a: t for a in engine.goal if a in engine.atoms and a not in reached})
        order = tuple(sorted(engine.goal, key=lambda a: (reached.get(a, len(plan) + 1), a)))
        facts = ProblemFacts(engine.goal, kinds, plan, first_actions)
        self._facts[row["problem_file"]] = (facts, order)
        return facts, order

    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        """Task ``index`` (0-59, the label file's order); ``rng`` picks the hints' wording."""
        row = self.rows[index]
        task_id = f"pddl-{row['id']:02d}-{row['domain']}-{row['problem_file'].stem}"
        return self._task(task_id, row, rng)

    @property
    def training_problems(self) -> list[TrainingProblem]:
        """The training pool (found on first use; never an evaluation problem)."""
        if self._train is None:
            evaluation = [row["problem_file"] for row in self.rows]
            domains = list(dict.fromkeys(row["domain"] for row in self.rows))
            self._train = find_training_problems(
                self.pddl_dir, domains, evaluation, self.train_data
            )
        return self._train

    def training_split(self) -> str:
        """The training problems per domain, and the domains without any."""
        pool = self.training_problems
        domains = list(dict.fromkeys(row["domain"] for row in self.rows))
        if not pool:
            raise NoTrainingDataError(
                f"PDDL has no training problems for {', '.join(domains)} outside the evaluation "
                "set: pass train_data=FOLDER with <domain>/*.pddl problems of these domains"
            )
        counts = {d: sum(p.domain == d for p in pool) for d in domains}
        missing = [d for d, n in counts.items() if n == 0]
        if missing and not self._warned:
            self._warned = True
            logger.warning("PDDL training problems cover %s only: none for %s (pass train_data=)",
                           ", ".join(d for d in domains if d not in missing), ", ".join(missing))
        covered = ", ".join(f"{d} {n}" for d, n in counts.items() if n)
        source = str(self.train_data) if self.train_data else "pddlgym's problem sets"
        return f"pddl: {len(pool)} problems from {source} ({covered}; none: {', '.join(missing) or '-'})"

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task: a problem of an evaluation domain that is not an evaluation problem."""
        self.training_split()  # refuses with what to pass when the pool is empty
        pool = self.training_problems
        problem = pool[int(rng.integers(len(pool)))]
        row = {
            "id": f"train-{problem.problem_dir.name}-{problem.problem_file.stem}",
            "domain": problem.domain,
            "problem_index": problem.problem_index,
            "problem_file": problem.problem_file,
            "problem_dir": problem.problem_dir,
        }
        return self._task(f"pddl-{row['id']}", row, rng)

    def _task(self, task_id: str, row: dict[str, Any], rng: np.random.Generator) -> TaskInstance:
        facts, order = self._problem_facts(row)
        stages = build_stages(facts, order, rng)
        key_items = sorted({arg for atom in facts.goal for arg in atom[1:]})
        metadata = {
            **_where(row),
            "problem_file": row["problem_file"].name,
            "difficulty": row.get("difficulty", ""),
            "subgoals": list(row.get("subgoals", [])),
            "plan_length": len(facts.plan),
        }
        goal = row.get("goal") or "The goal is to satisfy the following conditions: " + " ".join(
            sentence(atom) for atom in facts.goal
        )
        return TaskInstance(
            task_id=task_id,
            query=goal.strip(),
            stage1=stages.stage1,
            distractors=stages.distractors,
            supporting_facts=stages.supporting_facts,
            key_items=tuple(key_items),
            category=row["domain"],
            metadata=metadata,
        )

    def make_engine(self) -> PDDLEngine:
        """A fresh stage-3 engine under the source's rules (owns its pddlgym environments and
        temp folder)."""
        if self.rules == "agentboard":
            return AgentBoardPDDLEngine(self.pddl_dir, self.cache_dir, self.max_steps)
        return PDDLEngine(self.pddl_dir, self.cache_dir, self.max_steps)

    @property
    def task_metric(self) -> str:
        """AgentBoard's progress rate is the primary metric."""
        return "progress"

    def close(self) -> None:
        """Release the helper engine used to build hints."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None
