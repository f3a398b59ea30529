"""The ALFWorld stage-3 engine: one TextWorld game driven in-process, plus the expert.

The game runs through ``textworld.start`` with alfworld's ``AlfredDemangler`` wrapper (short
names such as "bowl 1"), one game at a time, in this process (no worker processes). The expert
replays the game's stored walkthrough while the agent has followed it exactly, and otherwise
asks alfworld's handcoded expert, which watches every step from the start. TextWorld's PDDL
translation and grammar parsing, redone on every reset, come from a per-game disk cache
(:mod:`agemem_gym.tasks.alfworld.cache`), and the grammar snippets it parses again on every
step from a memo (:mod:`agemem_gym.tasks.alfworld.parse_memo`).
"""

from __future__ import annotations

import os
import random
import re
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from agemem_gym.errors import MissingExtraError
from agemem_gym.tasks._common import CHECK_ACTION, is_check_action
from agemem_gym.tasks.alfworld.cache import GameCache
from agemem_gym.tasks.alfworld.parse_memo import memoized_parsing
from agemem_gym.tasks.alfworld.progress import MilestoneTracker, milestones
from agemem_gym.tasks.base import Engine, EngineStep, TaskInstance

#: The meta action that lists the admissible commands (it uses a step, changes nothing).
_INVALID = "Nothing happens."
_HINT = f"(Say '{CHECK_ACTION}' to list the commands you can use.)"
_PUT_RE = re.compile(r"put (.+?) (?:in|on|in/on|into|onto) (.+)")


@contextmanager
def _guard_process_state(data_root: str):
    """Undo two side effects of the engine packages.

    Importing ``alfworld`` creates ``$ALFWORLD_DATA`` (or ``~/.cache/alfworld``) and sets the
    variable; loading a game overwrites ``sys.argv``. Point the variable at a directory that
    exists while inside, and restore both on the way out.
    """
    argv, had = list(sys.argv), os.environ.get("ALFWORLD_DATA")
    if had is None:
        os.environ["ALFWORLD_DATA"] = data_root
    try:
        yield
    finally:
        sys.argv[:] = argv
        if had is None:
            os.environ.pop("ALFWORLD_DATA", None)


def _load_packages(data_root: str) -> tuple[Any, Any, Any]:
    """Import textworld and alfworld lazily; a missing one raises :class:`MissingExtraError`."""
    try:
        with _guard_process_state(data_root):
            import textworld
            from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
            from alfworld.agents.expert.handcoded_expert_tw import HandCodedTWAgent
    except ImportError as e:
        raise MissingExtraError(
            "The ALFWorld engine (alfworld, textworld[pddl])", "alfworld"
        ) from e
    return textworld, AlfredDemangler, HandCodedTWAgent


def normalize_action(text: str) -> str:
    """Lower-case, trim, drop a final period and quotes; map ``put X in Y`` to ``move X to Y``."""
    action = " ".join(text.strip().strip("\"'`").lower().split()).rstrip(".").strip()
    if m := _PUT_RE.fullmatch(action):
        action = f"move {m.group(1)} to {m.group(2)}"
    return action


class ALFWorldEngine(Engine):
    """One ALFWorld game at a time; see :mod:`agemem_gym.tasks.alfworld` for the interface.

    Args:
        max_steps: stage-3 actions allowed (the expert's plans need at most 9 on the
            evaluation set).
        use_handcoded_expert: run alfworld's handcoded expert alongside the game, for
            :meth:`expert_action` after the agent leaves the walkthrough.
        seed: seeds the handcoded expert's own random choices (it falls back to a random
            admissible command when stuck).
        cache_dir: where the per-game translation cache lives (default
            ``$AGEMEM_CACHE_DIR/alfworld_games``, else ``~/.cache/agemem_gym/alfworld_games``).
        use_cache: False runs TextWorld as it is: every reset translates the game again and
            every step parses its grammar snippets again.
    """

    def __init__(
        self,
        max_steps: int = 50,
        use_handcoded_expert: bool = True,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
    ):
        self.max_steps = max_steps
        self.use_handcoded_expert = use_handcoded_expert
        self.seed = seed
        #: the translation cache (None when disabled); its ``stats`` count hits and misses
        self.cache = GameCache(cache_dir) if use_cache else None
        self._env: Any = None
        self._game_file: str | None = None
        self._state: Any = None
        self._expert: Any = None
        self._expert_next: str | None = None
        self._walkthrough: tuple[str, ...] = ()
        self._history: list[str] = []
        self._tracker: MilestoneTracker | None = None
        self._done = False
        self._won = False
        self._best = 0.0

    # ------------------------------------------------------------------ episode
    def reset(self, task: TaskInstance) -> str:
        """Load (or rewind) the task's game and return the first observation."""
        meta = task.metadata
        game_file = str(meta["game_file"])
        data_root = str(Path(game_file).parent)
        textworld, demangler, expert_cls = _load_packages(data_root)
        serving = self.cache.serving(game_file) if self.cache is not None else nullcontext()
        with _guard_process_state(data_root), serving, self._parsing():
            if game_file != self._game_file:
                self._close_env()
                infos = textworld.EnvInfos(won=True, admissible_commands=True, facts=True)
                self._env = textworld.start(game_file, request_infos=infos, wrappers=[demangler()])
                self._game_file = game_file
            self._state = self._env.reset()
        self._walkthrough = tuple(meta["walkthrough"])
        self._history, self._done, self._won, self._best = [], False, False, 0.0
        plan = milestones(meta["task_type"], meta["object_type"], meta["target_type"])
        self._tracker = MilestoneTracker(plan, meta["object_type"])
        self._expert, self._expert_next = None, "look"
        if self.use_handcoded_expert:
            self._expert = expert_cls(max_steps=200)
            self._expert_call(lambda: self._expert.reset(game_file))
            self._expert_call(lambda: self._expert.observe(self._state["feedback"]))
        return self._first_observation(self._state["feedback"])

    @staticmethod
    def _first_observation(feedback: str) -> str:
        lines = [ln for ln in feedback.strip().splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith(("-=", "Your task is to:"))]
        return "\n".join([*lines, _HINT])

    def step(self, action: str) -> EngineStep:
        """Apply one text action; invalid ones answer "Nothing happens." and change nothing."""
        if self._env is None or self._tracker is None:
            return EngineStep("No game is loaded: call reset first.", done=True, valid=False)
        if self._done:
            return EngineStep("The task is over.", True, self._won, self._best, valid=False)
        command = normalize_action(action)
        if is_check_action(command):
            text = "Valid actions: " + ", ".join(self.valid_actions()) + "."
            return EngineStep(text, False, False, self._best)
        if command not in self._state["admissible_commands"]:
            return EngineStep(_INVALID, False, False, self._best, valid=False)
        with _guard_process_state(str(Path(self._game_file or ".").parent)), self._parsing():
            self._state, _, done = self._env.step(command)
        self._history.append(command)
        self._tracker.observe(command)
        self._won = bool(self._state["won"])
        self._done = bool(done) or self._won
        self._best = 1.0 if self._won else max(self._best, self._tracker.progress)
        self._update_expert(command)
        return EngineStep(self._state["feedback"].strip(), self._done, self._won, self._best)

    def _parsing(self) -> Any:
        return memoized_parsing() if self.cache is not None else nullcontext()

    @property
    def raw_env(self) -> Any:
        """The wrapped TextWorld environment of the loaded game (for measurements), or None."""
        return self._env

    def valid_actions(self) -> list[str]:
        """The admissible commands of the current state (sorted), without ``help``."""
        if self._state is None:
            return []
        return sorted(c for c in self._state["admissible_commands"] if c != "help")

    # ------------------------------------------------------------------ expert
    def expert_action(self) -> str | None:
        """The walkthrough's next command while the agent follows it, else the handcoded one."""
        if self._state is None or self._done:
            return None
        n = len(self._history)
        if tuple(self._history) == self._walkthrough[:n] and n < len(self._walkthrough):
            return self._walkthrough[n]
        return self._expert_next

    def _update_expert(self, command: str) -> None:
        if self._expert is None:
            return
        state = self._state
        nxt = self._expert_call(lambda: self._expert.act(state, 0, state["won"], command))
        ok = isinstance(nxt, str) and nxt in state["admissible_commands"]
        self._expert_next = nxt if ok else ("look" if self._expert is not None else None)

    def _expert_call(self, fn: Any) -> Any:
        """Run the handcoded expert with seeded randomness; drop it if it fails."""
        saved = random.getstate()
        random.seed(self.seed * 100_003 + len(self._history))
        try:
            return fn()
        except Exception:  # noqa: BLE001 - the expert gives up with assorted errors
            self._expert, self._expert_next = None, None
            return None
        finally:
            random.setstate(saved)

    # ------------------------------------------------------------------ cleanup
    def _close_env(self) -> None:
        if self._env is not None:
            self._env.close()
        self._env, self._game_file, self._state = None, None, None

    def close(self) -> None:
        """Close the game; nothing outlives the call."""
        self._close_env()
        self._expert = None
