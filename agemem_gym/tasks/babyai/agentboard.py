"""AgentBoard's rules for BabyAI (``rules="agentboard"``): macro actions, its success test, 30 steps.

AgentBoard's BabyAI environment differs from ours in what the agent may say and in when a task
counts as done; both move the numbers, so this module restates its rules:

- **Actions.** Besides ``turn left``, ``turn right`` and ``move forward`` (offered only when no
  wall or box is right ahead), the agent has macro actions over the objects in view, each a
  short path found by breadth-first search over (cell, heading) inside the view, avoiding cells
  that hold a wall, box, ball, key or lava: ``go to <object> <n>`` (ends facing it),
  ``pickup <object> <n>`` (go to, then pick up; offered only when the hands are free),
  ``drop``, ``go through <colour> open door <n>`` (ends on the door),
  ``toggle and go through <colour> closed|locked door <n>`` (go to, toggle, step forward; a
  locked door needs the key of its colour in hand), ``toggle`` (facing a closed door, or a
  locked one with its key), ``go to goal`` and ``check available actions``. ``<n>`` numbers
  the reachable objects of one name nearest first. A macro runs its primitive steps until one
  leaves the view unchanged. Any other text is refused with AgentBoard's reason and nothing
  runs.
- **Done and success.** After an action the level's termination (success or failure) adds
  "The task is completed." to the observation; the subgoal patterns are then scored on it, and
  the task counts as done only when the pattern score is above 0.5, or as soon as it reaches 1.
  So a minigrid success with half the patterns or fewer is not done (the agent acts on), and a
  minigrid failure whose observation completes the patterns is done (the OpenDoorsOrder tasks
  60 and 63). Success is "done".
- **Progress.** The pattern score, kept as it is on success (ours forces 1).
- **Limit.** 30 actions, meta actions and refused ones included; the level's own step limit
  does not end the episode.

>>> from agemem_gym.tasks.babyai.agentboard import plan_path
>>> plan_path((1, 1), 0, (3, 1), blocked=set(), xs=range(0, 5), ys=range(0, 5), arrive=False)
[2]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agemem_gym.tasks.babyai.engine import BabyAIEngine
from agemem_gym.tasks.babyai.text import COMPLETED_SUFFIX, _visible_cells, describe_view
from agemem_gym.tasks.base import EngineStep, TaskInstance

#: AgentBoard's step limit (its evaluation config's ``max_num_steps``).
AGENTBOARD_MAX_STEPS = 30
#: The listing and refusal texts AgentBoard answers with.
CHECK_WORD = "check"
CHECK_LISTED = "check available actions"
UNKNOWN_ACTION = "The action is not recognized. Please check valid actions."
#: Names of objects a macro path may not cross.
_BLOCKING = ("wall", "box", "lava", "ball", "key")
_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))
_LEFT, _RIGHT, _FORWARD, _PICKUP, _DROP, _TOGGLE = range(6)


@dataclass(frozen=True)
class Seen:
    """An object in view: its listed name ("red ball", "blue closed door"), cell and distance."""

    name: str
    pos: tuple[int, int]
    dist: int


def seen_objects(env: Any, obs: dict[str, Any]) -> tuple[list[Seen], int | None]:
    """Objects in view nearest first (walls included), and the distance to the nearest wall or
    box straight ahead (None when there is none in view)."""
    objects, barriers = _visible_cells(env, obs)
    ax, ay = (int(v) for v in env.agent_pos)
    fx, fy = _DIRS[int(obs["direction"])]
    rx, ry = -fy, fx
    seen = [Seen(n, (ax + fx * f + rx * s, ay + fy * f + ry * s), d) for n, f, s, d in objects]
    return seen, min((d for _, d in barriers), default=None)


def view_bounds(env: Any, direction: int) -> tuple[range, range]:
    """The cells a macro path may use: the view's rectangle as AgentBoard bounds it (one side of
    it reaches a row or column past the view's edge, as its arithmetic does)."""
    size = env.agent_view_size
    pos = np.array(env.agent_pos)
    f, r = np.array(_DIRS[direction]), np.array(_DIRS[(direction + 1) % 4])
    corner = pos + f * (size - 1) - r * (size // 2)
    far = corner + size * (r - f)
    bounds = []
    for axis in range(2):
        low, high = int(far[axis]), int(corner[axis])
        bounds.append(range(low, high + 1) if low < high else range(high, low))
    return bounds[0], bounds[1]


def plan_path(
    start: tuple[int, int], heading: int, target: tuple[int, int], *,
    blocked: set[tuple[int, int]], xs: range, ys: range, arrive: bool,
) -> list[int] | None:
    """Primitive steps (minigrid indices) from ``start`` to stand on ``target`` (``arrive``) or
    to face it, or None when the view offers no way.

    Breadth first over (cell, heading), trying forward, left, right; a state is closed when it
    is expanded, and a state queued twice keeps the parent of its last queuing (AgentBoard's
    search, so that its macros take the same paths).
    """
    parent: dict[tuple[tuple[int, int], int], tuple[tuple[tuple[int, int], int], int]] = {}
    closed: set[tuple[tuple[int, int], int]] = set()
    queue = deque([(start, heading)])
    while queue:
        state = queue.popleft()
        closed.add(state)
        pos, d = state
        dx, dy = _DIRS[d]
        if (pos == target) if arrive else (target[0] - pos[0], target[1] - pos[1]) == (dx, dy):
            steps = []
            while state != (start, heading):
                state, step = parent[state]
                steps.append(step)
            return steps[::-1]
        for step in (_FORWARD, _LEFT, _RIGHT):
            nxt = ((pos[0] + dx, pos[1] + dy), d) if step == _FORWARD else (pos, (d + (1 if step else -1)) % 4)
            cell = nxt[0]
            if cell[0] not in xs or cell[1] not in ys or nxt in closed or cell in blocked:
                continue
            queue.append(nxt)
            parent[nxt] = (state, step)
    return None


class MacroActions:
    """The actions AgentBoard offers in one state: name -> primitive steps; and why others fail.

    Args:
        env: the unwrapped minigrid environment.
        obs: the observation dict of the last reset or step.
    """

    def __init__(self, env: Any, obs: dict[str, Any]):
        self.steps: dict[str, list[int]] = {"turn left": [_LEFT], "turn right": [_RIGHT]}
        self.refusals: dict[str, str] = {}
        direction = int(obs["direction"])
        self._objects, ahead = seen_objects(env, obs)
        self._carrying = env.carrying
        self._start = (int(env.agent_pos[0]), int(env.agent_pos[1]))
        self._heading = direction
        self._xs, self._ys = view_bounds(env, direction)
        self._blocked = {o.pos for o in self._objects if any(k in o.name for k in _BLOCKING)}
        if ahead is None or ahead > 1:
            self.steps["move forward"] = [_FORWARD]
        else:
            self.refusals["move forward"] = "There is a barrier in front of you, you can't move forward."
        if self._carrying is None:
            targets = (o for o in self._objects if not any(k in o.name for k in ("wall", "door", "goal")))
            self._numbered("pickup", targets, arrive=False, then=[_PICKUP])
        self._drop(direction)
        self._doors()
        for goal in (o for o in self._objects if "goal" in o.name):
            path = self._path(goal, arrive=True)
            if path is None:
                self.refusals["go to goal"] = "You cannot go to the goal, as there is no path leading to it."
            else:
                self.steps["go to goal"] = path
        self._numbered("go to", (o for o in self._objects if not any(k in o.name for k in ("wall", "goal"))),
                       arrive=False, then=[])
        self.steps[CHECK_LISTED] = []

    def _path(self, obj: Seen, arrive: bool) -> list[int] | None:
        return plan_path(self._start, self._heading, obj.pos, blocked=self._blocked,
                         xs=self._xs, ys=self._ys, arrive=arrive)

    def _numbered(self, verb: str, objects: Iterable[Seen], arrive: bool, then: list[int]) -> None:
        """``<verb> <name> <n>``, numbering only the objects a path reaches (AgentBoard's way)."""
        reached: dict[str, int] = {}
        for obj in objects:
            path = self._path(obj, arrive)
            n = reached.get(obj.name, 0) + 1
            key = f"{verb} {obj.name} {n}"
            if path is None:
                self.refusals[key] = f"You cannot {verb} {obj.name} {n}, as there is no path leading to it."
            else:
                reached[obj.name] = n
                self.steps[key] = path + then

    def _drop(self, direction: int) -> None:
        if self._carrying is None:
            self.refusals["drop"] = "You cannot drop the object, as you are not carrying anything."
            return
        front = (self._start[0] + _DIRS[direction][0], self._start[1] + _DIRS[direction][1])
        if front in self._blocked:
            self.refusals["drop"] = "You cannot drop the object, as there is already an object in front of you."
        else:
            self.steps["drop"] = [_DROP]

    def _doors(self) -> None:
        counts: dict[str, int] = {}
        for obj in (o for o in self._objects if "door" in o.name):
            counts[obj.name] = n = counts.get(obj.name, 0) + 1
            label = f"{obj.name} {n}"
            if "open door" in obj.name:
                path = self._path(obj, arrive=True)
                if path is None:
                    self.refusals[f"go through {label}"] = f"You cannot go through {label}, as there is no path leading to it."
                else:
                    self.steps[f"go through {label}"] = path
                continue
            if "locked door" in obj.name and not self._holds_key_for(obj, label):
                continue
            if "closed door" in obj.name:
                self.refusals[f"go through {label}"] = (
                    f"You cannot go through {label}, as it is closed. You should toggle it first.")
            path = self._path(obj, arrive=False)
            if path is None:
                self.refusals[f"toggle and go through {label}"] = (
                    f"You cannot toggle and go through {label}, as there is no path leading to it.")
                continue
            self.steps[f"toggle and go through {label}"] = [*path, _TOGGLE, _FORWARD]
            if not path:
                self.steps["toggle"] = [_TOGGLE]

    def _holds_key_for(self, door: Seen, label: str) -> bool:
        key = f"toggle and go through {label}"
        carried = self._carrying
        if carried is None or carried.type != "key":
            self.refusals[key] = f"You cannot toggle and go through {label}, as you are not carrying a key."
            return False
        if carried.color != door.name.split(" ")[0]:
            self.refusals[key] = (f"You cannot toggle and go through {label}, as the color of the key "
                                  "you are carrying does not match the color of door.")
            return False
        return True


def normalize(action: str) -> str:
    """Lower case, single spaces, no surrounding quotes or final full stop."""
    return " ".join(action.strip().strip("\"'`").strip().rstrip(".").lower().split())


class AgentBoardBabyAIEngine(BabyAIEngine):
    """A BabyAI level under AgentBoard's rules (see the module docs).

    Args:
        max_steps: actions allowed per episode (AgentBoard: 30).
    """

    #: AgentBoard reports the pattern score as progress even when the task is done.
    success_sets_full_progress = False

    def __init__(self, max_steps: int = AGENTBOARD_MAX_STEPS):
        super().__init__(max_steps=max_steps)
        self._actions: MacroActions | None = None
        self._image: Any = None

    def reset(self, task: TaskInstance) -> str:
        """Reset the level with the task's seed; the first observation is the view, as ours."""
        text = super().reset(task)
        obs = self._env.gen_obs()
        self._actions = MacroActions(self._env, obs)
        self._image = obs["image"]
        return text

    def step(self, action: str) -> EngineStep:
        """Run one AgentBoard action; refused text runs nothing and says why."""
        progress = self._tracker.progress
        if self._env is None or self._done or self._actions is None:
            return EngineStep("The episode is over; no more actions are accepted.", True,
                              self._success, progress, valid=False)
        name = normalize(action)
        if CHECK_WORD in name:
            listing = ", ".join(self._actions.steps)
            return EngineStep(f"You can take the following actions: {listing}", False, False, progress)
        if name not in self._actions.steps:
            reason = self._actions.refusals.get(name, UNKNOWN_ACTION) if name else "No change in state."
            return EngineStep(reason, False, False, progress, valid=False)
        return self._run(self._actions.steps[name])

    def _run(self, steps: list[int]) -> EngineStep:
        obs: dict[str, Any] = {}
        terminated = False
        for index in steps:
            obs, _, terminated, _, _ = self._env.step(index)
            if self._bot is not None:
                self._bot.observe(index)
            if not (obs["image"] != self._image).any():
                break  # the step changed nothing in view: the macro stops here
            self._image = obs["image"]
        self._image = obs["image"]
        text = describe_view(self._env, obs)
        done = bool(terminated)
        if done:
            text += COMPLETED_SUFFIX
        progress = self._tracker.update(text)
        if done and progress <= 0.5:
            done = False
        if progress >= 1.0 and not done:
            done = True
            text += COMPLETED_SUFFIX
        self._done = self._success = done
        self._actions = MacroActions(self._env, obs)
        return EngineStep(text, done, done, progress)

    def valid_actions(self) -> list[str]:
        """The actions AgentBoard offers now (its listing, the meta action last)."""
        if self._env is None or self._done or self._actions is None:
            return []
        return list(self._actions.steps)

    def expert_action(self) -> str | None:
        """BabyAIBot's next step as an AgentBoard action (None when it has no such name).

        One step at a time on purpose: AgentBoard credits at most one subgoal pattern per
        action, so macros that cover several of the bot's steps reach its "done" less often
        (measured within 30 actions: 73 of the 112 tasks one step at a time, 53 with the
        longest macro that covers the bot's plan).
        """
        if self._env is None or self._done or self._bot is None or self._actions is None:
            return None
        index = self._bot.suggest()
        if index is None:
            return None
        # one-step actions: the turns, move forward, drop, toggle, pickup of the object ahead
        return next((name for name, steps in self._actions.steps.items() if steps == [index]), None)


__all__ = [
    "AGENTBOARD_MAX_STEPS",
    "AgentBoardBabyAIEngine",
    "MacroActions",
    "plan_path",
    "seen_objects",
    "view_bounds",
]
