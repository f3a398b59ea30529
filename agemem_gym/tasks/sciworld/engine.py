"""The ScienceWorld stage-3 engine: text actions in, observations and metrics out.

The simulator is driven through its raw ``step`` call. Unlike the package's ``env.step``, which
rebuilds the full valid-action list over py4j after every action, valid actions are computed
only when the agent asks for them with the meta action ``check valid actions``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agemem_gym.errors import ConfigError
from agemem_gym.tasks._common import CHECK_ACTION, is_check_action
from agemem_gym.tasks.base import Engine, EngineStep, TaskInstance
from agemem_gym.tasks.sciworld.jvm import DEFAULT_JAVA_OPTIONS, JavaServer

#: The simplifications ScienceWorld knows ("easy" turns on all of the others).
SIMPLIFICATIONS: tuple[str, ...] = (
    "teleportAction",
    "selfWateringFlowerPots",
    "openContainers",
    "openDoors",
    "noElectricalAction",
    "easy",
)
#: The simplification string AgentBoard used.
AGENTBOARD_SIMPLIFICATION = "selfWateringFlowerPots,openContainers,openDoors,noElectricalAction"
#: AgentBoard's step limit for ScienceWorld.
AGENTBOARD_MAX_STEPS = 30

_INVALID_PREFIX = "No known action matches that input."
_ROOM_RE = re.compile(r"(?:This room is called the|This outside location is called the) ([^.]+)\.")
_MOVE_RE = re.compile(r"^You (?:move|teleport) to the ([^.]+)\.")
_HINT = f'(Say "{CHECK_ACTION}" to list the actions that are valid here.)'


def normalize_action(text: str) -> str:
    """Canonical form of an action: stripped, single spaces, no trailing period, lower case."""
    return " ".join(text.strip().rstrip(".").split()).lower()


def check_simplification(simplification: str) -> str:
    """Validate a comma-separated simplification string and return it unchanged."""
    for part in filter(None, simplification.split(",")):
        if part not in SIMPLIFICATIONS:
            raise ConfigError(
                f"unknown ScienceWorld simplification {part!r} in {simplification!r}; "
                f"known: {', '.join(SIMPLIFICATIONS)} (comma-separated, no spaces)"
            )
    return simplification


@dataclass(frozen=True)
class GoldStep:
    """One action of the gold path with the room it was taken in and what it returned."""

    room: str
    action: str
    observation: str


@dataclass(frozen=True)
class GoldTrace:
    """The gold path of one task replayed in the simulator.

    Attributes:
        actions: the gold action sequence as the simulator gives it.
        start_room: where the agent starts.
        steps: the replayed actions up to the task's completion.
        looks: the ``look around`` text of every room the gold path visits, by room.
        success: whether the replay completed the task.
    """

    actions: tuple[str, ...]
    start_room: str
    steps: tuple[GoldStep, ...]
    looks: dict[str, str]
    success: bool


def room_of(look: str) -> str:
    """The room name in a ``look around`` text ("" when it names none)."""
    match = _ROOM_RE.search(look)
    return match.group(1).strip() if match else ""


def trace_gold_path(
    interface: Any, env_name: str, variation: int, simplification: str
) -> GoldTrace:
    """Load a task with its gold path and replay it, recording rooms and observations.

    Args:
        interface: a ScienceWorld ``PythonInterface`` (see :class:`JavaServer`).
        env_name: ScienceWorld task name.
        variation: variation index.
        simplification: simplification string.
    """
    interface.load(env_name, variation, simplification, True)
    actions = tuple(str(a) for a in interface.getGoldActionSequence())
    first_look = str(interface.freeActionLook())
    room = start = room_of(first_look)
    looks = {start: first_look}
    steps: list[GoldStep] = []
    for action in actions:
        observation = str(interface.step(action))
        steps.append(GoldStep(room, action, observation))
        moved = _MOVE_RE.match(observation)
        if moved:
            room = moved.group(1).strip()
            looks.setdefault(room, str(interface.freeActionLook()))
        if interface.getCompleted():
            break
    success = bool(interface.getCompleted()) and float(interface.getScore()) >= 1.0
    return GoldTrace(actions, start, tuple(steps), looks, success)


class SciWorldEngine(Engine):
    """ScienceWorld through a plain text interface, one JVM per engine kept across resets.

    Args:
        simplification: ScienceWorld simplification string ("easy" by default; see the
            benchmark's module docs for AgentBoard's).
        max_steps: actions allowed in stage 3.
        stop_on_subgoals: also end the episode once every subgoal has matched (AgentBoard's
            "done"); by default only the simulator's completion or failure ends it.
        valid_actions_limit: most actions listed by ``check valid actions`` (shortest first);
            None lists all of them.
        java_options: options for the JVM.
    """

    def __init__(
        self,
        *,
        simplification: str = "easy",
        max_steps: int = 100,
        stop_on_subgoals: bool = False,
        valid_actions_limit: int | None = 150,
        java_options: Sequence[str] = DEFAULT_JAVA_OPTIONS,
    ) -> None:
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        self.simplification = check_simplification(simplification)
        self.max_steps = max_steps
        self.stop_on_subgoals = stop_on_subgoals
        self.valid_actions_limit = valid_actions_limit
        self.server = JavaServer(java_options)
        self._task: TaskInstance | None = None
        self._gold: list[str] = []
        self._gold_pos = 0
        self._subgoals: list[str] = []
        self._matched: set[int] = set()
        self._done = False
        self._success = False

    @property
    def progress(self) -> float:
        """Fraction of the task's subgoals matched so far (AgentBoard's progress rate)."""
        return len(self._matched) / len(self._subgoals) if self._subgoals else 0.0

    def reset(self, task: TaskInstance) -> str:
        """Load ``task`` (metadata ``env_name`` and ``variation``) and return the first look."""
        meta = task.metadata
        try:
            env_name, variation = str(meta["env_name"]), int(meta["variation"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"task {task.task_id!r} is not a ScienceWorld task: its metadata needs "
                f"'env_name' and 'variation', got keys {sorted(meta)}"
            ) from e
        interface = self.server.interface
        gold = meta.get("gold_actions")
        interface.load(env_name, variation, self.simplification, gold is None)
        if gold is None:
            gold = [str(a) for a in interface.getGoldActionSequence()]
        self._task = task
        self._gold = [normalize_action(a) for a in gold]
        self._gold_pos = 0
        self._subgoals = list(meta.get("subgoals", ()))
        self._matched = set()
        self._done = self._success = False
        return f"{interface.freeActionLook()}\n{_HINT}"

    def step(self, action: str) -> EngineStep:
        """Apply one action; ``check valid actions`` lists them without spending a move."""
        if self._task is None:
            raise RuntimeError("call reset(task) before step()")
        if self._done:
            return EngineStep(
                "The task is already over.", True, self._success, self.progress, False
            )
        text = normalize_action(action)
        if is_check_action(text):
            actions = self.valid_actions()
            return EngineStep(self._format_valid(actions), False, False, self.progress, True)
        interface = self.server.interface
        observation = str(interface.step(text)) if text else _INVALID_PREFIX
        valid = not observation.startswith(_INVALID_PREFIX)
        if self._gold_pos < len(self._gold) and text == self._gold[self._gold_pos]:
            self._gold_pos += 1
        self._match_subgoals(observation)
        score = float(interface.getScore())
        completed = bool(interface.getCompleted())
        self._success = completed and score >= 1.0
        self._done = completed or score < 0 or (self.stop_on_subgoals and self.progress >= 1.0)
        return EngineStep(observation, self._done, self._success, self.progress, valid)

    def _match_subgoals(self, observation: str) -> None:
        for i, pattern in enumerate(self._subgoals):
            if i not in self._matched and re.search(pattern, observation):
                self._matched.add(i)

    def _format_valid(self, actions: list[str]) -> str:
        limit = self.valid_actions_limit
        shown = actions if limit is None else actions[:limit]
        more = len(actions) - len(shown)
        tail = f" (and {more} more)" if more else ""
        return f"Valid actions: {', '.join(shown)}{tail}."

    def valid_actions(self) -> list[str]:
        """Valid actions now, shortest first (computed on request: this takes a while)."""
        if self._task is None:
            return []
        found = {str(a) for a in self.server.interface.getValidActionObjectCombinations()}
        return sorted(found, key=lambda a: (len(a.split()), a))

    def expert_action(self) -> str | None:
        """The next action of the task's gold path (None when the path is used up)."""
        if self._task is None or self._done or self._gold_pos >= len(self._gold):
            return None
        return self._gold[self._gold_pos]

    def close(self) -> None:
        """Stop the JVM; a later reset starts a new one."""
        self.server.close()
        self._task = None
