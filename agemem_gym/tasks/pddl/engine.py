"""The stage-3 engine of the PDDL benchmark: pddlgym driven by text actions."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agemem_gym.errors import MissingExtraError
from agemem_gym.tasks.base import Engine, EngineStep, TaskInstance
from agemem_gym.tasks.pddl.logic import Atom, GroundModel, literal_atom
from agemem_gym.tasks.pddl.planner import PlannerError, find_plan
from agemem_gym.tasks.pddl.text import action_help, action_text, parse_action, sentence, sentences

logger = logging.getLogger(__name__)


def import_pddlgym() -> Any:
    """Import pddlgym (quietly: its ``gym`` dependency prints a notice on import)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            import pddlgym.core
            import pddlgym.spaces
    except ImportError as e:
        raise MissingExtraError("the PDDL benchmark (pddlgym)", "pddl") from e
    if captured.getvalue():
        logger.debug("pddlgym import said: %s", captured.getvalue().strip())
    return pddlgym


class PDDLEngine(Engine):
    """pddlgym's PDDL environments with text actions, checked preconditions and an expert.

    Each domain's problems are loaded once from ``<data>/pddl/<domain>.pddl`` and
    ``<data>/pddl/<domain>/`` (problems in sorted file-name order). Every action's grounded
    preconditions are checked before pddlgym applies it; invalid actions change nothing and are
    reported with the reason. The episode ends when every goal condition holds or when no
    action is valid any more.

    Args:
        pddl_dir: the folder with the domain files and one problem folder per domain.
        cache_dir: the expert-plan cache (None: no cache).
        max_steps: the stage-3 action limit the env applies.
    """

    def __init__(self, pddl_dir: Path, cache_dir: Path | None = None, max_steps: int = 60):
        self._pddlgym = import_pddlgym()
        self.pddl_dir = Path(pddl_dir)
        self.cache_dir = cache_dir
        self.max_steps = max_steps
        self._tmp_dir: str | None = tempfile.mkdtemp(prefix="agemem-pddl-")
        # Removes the folder even when close() is never called.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp_dir, True)
        self._envs: dict[str, Any] = {}
        self._env: Any = None
        self._obs: Any = None
        self._objects: dict[str, Any] = {}
        self._model: GroundModel | None = None
        self._domain = ""
        self._problem_file = Path()
        self._atoms: frozenset[Atom] = frozenset()
        self._goal: tuple[Atom, ...] = ()
        self._best = 0.0
        self._done = False
        self._plan: list[str] = []
        self._plan_pos = 0
        self._on_plan = False
        self._moved = False

    # -- pddlgym access -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _private_tmp(self) -> Iterator[None]:
        """Point pddlgym's temp files at this engine's own folder while it runs."""
        spaces = self._pddlgym.spaces
        before = spaces.TMP_PDDL_DIR
        spaces.TMP_PDDL_DIR = self._tmp_dir
        try:
            yield
        finally:
            spaces.TMP_PDDL_DIR = before

    def _domain_env(self, domain: str, problem_dir: str | None = None) -> Any:
        folder = problem_dir or str(self.pddl_dir / domain)
        if folder not in self._envs:
            self._envs[folder] = self._pddlgym.core.PDDLEnv(
                str(self.pddl_dir / f"{domain}.pddl"),
                folder,
                operators_as_actions=True,
                dynamic_action_space=True,
                raise_error_on_invalid_action=False,
            )
        return self._envs[folder]

    def _set_state(self, obs: Any) -> None:
        self._obs = obs
        self._atoms = frozenset(literal_atom(lit) for lit in obs.literals)

    # -- Engine API -----------------------------------------------------------------------------

    def reset(self, task: TaskInstance) -> str:
        """Load the task's problem (``metadata["domain"]``, ``["problem_index"]`` and, for a
        problem outside the data folder, ``["problem_dir"]``)."""
        if self._tmp_dir is None:
            raise RuntimeError("this PDDLEngine is closed; make a new one")
        self._domain = str(task.metadata["domain"])
        self._env = self._domain_env(self._domain, task.metadata.get("problem_dir"))
        index = int(task.metadata["problem_index"])
        with self._private_tmp():
            self._env.fix_problem_index(index)
            obs, info = self._env.reset()
        self._problem_file = Path(info["problem_file"])
        self._model = GroundModel(self._env.domain, obs.objects)
        self._objects = {o.name.lower(): o for o in obs.objects}
        self._goal = tuple(literal_atom(lit) for lit in getattr(obs.goal, "literals", [obs.goal]))
        self._set_state(obs)
        self._best = self.progress()
        self._done = False
        self._plan, self._plan_pos, self._on_plan, self._moved = [], 0, False, False
        return (
            f"You are in a {self._domain} world. Actions (one per answer): "
            f"{action_help(self._model.operators)}. You can also say 'check valid actions' "
            "(the actions you can take now), 'look' (every fact) or 'check goal'.\n"
            f"Facts: {sentences(self._atoms)}"
        )

    @property
    def model(self) -> GroundModel:
        """The current problem's operators and objects (after :meth:`reset`)."""
        if self._model is None:
            raise RuntimeError("call reset(task) first")
        return self._model

    @property
    def goal(self) -> tuple[Atom, ...]:
        """The current problem's goal conditions."""
        return self._goal

    @property
    def atoms(self) -> frozenset[Atom]:
        """The facts that hold now."""
        return self._atoms

    @property
    def raw_env(self) -> Any:
        """The pddlgym ``PDDLEnv`` of the current domain (stepping it bypasses every check)."""
        return self._env

    def pddlgym_literal(self, action: str) -> Any:
        """The pddlgym action literal for a text action such as ``"pick ball1 rooma left"``."""
        name, *args = action.split()
        return self._env.domain.predicates[name](*(self._objects[a] for a in args))

    def progress(self) -> float:
        """The fraction of goal conditions that hold now."""
        if not self._goal:
            return 1.0
        return sum(atom in self._atoms for atom in self._goal) / len(self._goal)

    def _meta(self, command: str) -> str:
        if command == "valid":
            return "Valid actions: " + ", ".join(self.valid_actions()) + "."
        if command == "look":
            return f"Facts: {sentences(self._atoms)}"
        done = [sentence(a) for a in self._goal if a in self._atoms]
        todo = [sentence(a) for a in self._goal if a not in self._atoms]
        return f"Goal conditions met: {' '.join(done) or 'none'} Still to do: {' '.join(todo) or 'none'}"

    def step(self, action: str) -> EngineStep:
        """Apply one text action; invalid ones are reported and change nothing."""
        if self._model is None:
            raise RuntimeError("call reset(task) before step()")
        if self._done:
            return self._result("The episode is over.", valid=False)
        parsed = parse_action(action, self._model.operators)
        if parsed is None:
            return self._result(
                f"'{action.strip()[:80]}' is not an action. Say 'check valid actions' to see them.",
                valid=False,
            )
        if parsed.command is not None:
            return self._result(self._meta(parsed.command))
        reason = self._model.check(parsed.name, parsed.args, self._atoms)
        text = action_text(parsed.name, parsed.args)
        if reason is not None:
            return self._result(
                f"'{text}' is not valid now: {reason}. Nothing happens.", valid=False
            )
        return self._apply(parsed.name, parsed.args)

    def _apply(self, name: str, args: tuple[str, ...]) -> EngineStep:
        if self._model is None:
            raise RuntimeError("call reset(task) before step()")
        before = self._atoms
        literal = self.pddlgym_literal(action_text(name, args))
        with self._private_tmp():
            obs, *_ = self._env.step(literal)
        self._set_state(obs)
        self._track_plan(action_text(name, args), changed=self._atoms != before)
        self._best = max(self._best, self.progress())
        added, removed = self._atoms - before, before - self._atoms
        text = f"You did: {action_text(name, args)}."
        if added or removed:
            text += f" Now true: {sentences(added) or 'nothing new'}"
            text += f" No longer true: {sentences(removed) or 'nothing'}"
        else:
            text += " Nothing changed."
        if self.progress() == 1.0:
            self._done = True
            text += " All goal conditions are met: task complete."
        elif not self._model.has_valid_action(self._atoms):
            self._done = True
            text += " No action is possible any more: the episode ends."
        return self._result(text)

    def _result(self, text: str, valid: bool = True) -> EngineStep:
        success = bool(self._goal) and all(a in self._atoms for a in self._goal)
        return EngineStep(text, done=self._done, success=success, progress=self._best, valid=valid)

    def valid_actions(self) -> list[str]:
        """Every valid action now, in the text format :meth:`step` parses."""
        if self._model is None:
            return []
        return [action_text(n, a) for n, a in self._model.iter_valid(self._atoms)]

    # -- expert ---------------------------------------------------------------------------------

    def _track_plan(self, action: str, changed: bool) -> None:
        """Follow the expert plan while the actions taken are its next steps."""
        self._moved = self._moved or changed
        if not self._on_plan:
            return
        if self._plan_pos < len(self._plan) and self._plan[self._plan_pos] == action:
            self._plan_pos += 1
        elif changed:
            self._on_plan = False

    def expert_action(self) -> str | None:
        """The next step of a planner's plan from the current state (replanning if needed)."""
        if self._model is None or self._done:
            return None
        for _ in range(2):
            if self._on_plan and self._plan_pos < len(self._plan):
                name, *args = self._plan[self._plan_pos].split()
                if self._model.check(name, tuple(args), self._atoms) is None:
                    return self._plan[self._plan_pos]
            self._replan()
        return None

    def _replan(self) -> None:
        domain_file = self.pddl_dir / f"{self._domain}.pddl"
        state = None if not self._moved else sorted("(" + " ".join(a) + ")" for a in self._atoms)
        try:
            self._plan = find_plan(domain_file, self._problem_file, state, self.cache_dir)
        except PlannerError as e:
            logger.warning("no expert plan: %s", e)
            self._plan = []
        self._plan_pos, self._on_plan = 0, True

    def close(self) -> None:
        """Drop the environments and delete pddlgym's temp files."""
        self._envs.clear()
        self._env = self._model = None
        self._cleanup()
        self._tmp_dir = None
