"""Text interface of the BabyAI benchmark: the egocentric view in sentences, actions, progress.

The view description reproduces, word for word, the observations recorded with the evaluation
set (AgentBoard's format): every object the agent can see, nearest first, with its colour, a
running number per name, and how many steps ahead and to the side it is; the distance to the
wall (or box) straight ahead; and what the agent carries.

Nothing here imports minigrid: the functions read the unwrapped environment's attributes and
the observation dict that ``env.step`` returns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from agemem_gym.tasks._common import CHECK_ACTION, is_check_action

# minigrid's encoding tables (minigrid.core.constants), restated so this module stays light.
_OBJECT_NAMES = (
    "unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent",
)  # fmt: skip
_COLOR_NAMES = ("red", "green", "blue", "purple", "yellow", "grey")
_DOOR_STATES = ("open", "closed", "locked")
_DIR_VECTORS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # right, down, left, up (minigrid's order)
_LISTED_TYPES = frozenset({"door", "key", "ball", "box", "goal", "lava", "wall"})
_BARRIER_TYPES = frozenset({"box", "wall"})

#: The six primitive actions in words, in minigrid's action order (0..5).
PRIMITIVE_ACTIONS: tuple[str, ...] = (
    "turn left", "turn right", "move forward", "pick up", "drop", "toggle",
)  # fmt: skip
COMPLETED_SUFFIX = "\n The task is completed."

_ALIASES: dict[str, str] = {
    "left": "turn left",
    "turn to the left": "turn left",
    "right": "turn right",
    "turn to the right": "turn right",
    "forward": "move forward",
    "go forward": "move forward",
    "move ahead": "move forward",
    "pickup": "pick up",
    "pick": "pick up",
    "drop it": "drop",
    "put down": "drop",
    "open": "toggle",
}


def parse_action(text: str) -> str | None:
    """Map an action text to a canonical action name, or None when it names none.

    Case, surrounding quotes, a trailing full stop and repeated spaces are ignored; a few
    synonyms ("forward", "pickup", "check available actions") are accepted.

    >>> parse_action("  Move Forward. ")
    'move forward'
    >>> parse_action("fly") is None
    True
    """
    if is_check_action(text):
        return CHECK_ACTION
    words = " ".join(text.strip().strip("\"'`").strip().rstrip(".!").lower().split())
    if words in PRIMITIVE_ACTIONS:
        return words
    return _ALIASES.get(words)


def describe_view(env: Any, obs: dict[str, Any]) -> str:
    """Describe what the agent sees, in the evaluation set's sentence format.

    Args:
        env: the unwrapped minigrid environment (agent position, view size, carried object).
        obs: the observation dict of the last reset/step (``image`` and ``direction``).

    Returns:
        The description: visible objects, the barrier straight ahead, what is carried.
    """
    objects, barriers = _visible_cells(env, obs)
    if objects:
        parts = ["In front of you in this room, you can see several objects: "]
        counts: dict[str, int] = {}
        for name, front, side, _ in objects:
            if name.endswith("wall"):
                continue
            counts[name] = counts.get(name, 0) + 1
            parts.append(f"There is a {name} {counts[name]} {_where(front, side)}  ")
        text = "".join(parts)
    else:
        text = "You cannot see any objects within sight."
    text += "The room has walls around you. "
    if barriers:
        kind, dist = min(barriers, key=lambda b: b[1])
        text += f"You are facing a {kind} {dist} steps away. "
    return text + carrying_sentence(env)


def carrying_sentence(env: Any) -> str:
    """``You are carrying a red key.`` or ``You are not carrying anything.``"""
    carried = env.carrying
    if carried is None:
        return "You are not carrying anything."
    return f"You are carrying a {carried.color} {carried.type}."


def _where(front: int, side: int) -> str:
    if side == 0:
        return f"right in front of you {front} steps away."
    hand = "right" if side > 0 else "left"
    return f"{front} steps in front of you and {abs(side)} steps to your {hand}."


def _visible_cells(
    env: Any, obs: dict[str, Any]
) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, int]]]:
    """Visible listed objects (name, ahead, to the right, distance) nearest first, and barriers.

    Cells are scanned from the far row of the view to the agent's row, left to right; the
    stable sort by Manhattan distance keeps that order among equally distant cells.
    """
    image = obs["image"]
    # one conversion to nested lists: reading a numpy array cell by cell costs more than the step
    cells = image.tolist() if hasattr(image, "tolist") else image
    size = env.agent_view_size
    ax, ay = (int(v) for v in env.agent_pos)
    fx, fy = _DIR_VECTORS[int(obs["direction"])]
    rx, ry = -fy, fx
    # absolute position of view cell (col, row): row 0 is the farthest, col grows to the right
    corner_x = ax + fx * (size - 1) - rx * (size // 2)
    corner_y = ay + fy * (size - 1) - ry * (size // 2)
    objects: list[tuple[str, int, int, int]] = []
    barriers: list[tuple[str, int]] = []
    for row in range(size):
        for col in range(size):
            type_idx, color_idx, state = cells[col][row]
            kind = _OBJECT_NAMES[type_idx]
            if kind not in _LISTED_TYPES:
                continue
            x = corner_x - fx * row + rx * col
            y = corner_y - fy * row + ry * col
            dist = abs(ax - x) + abs(ay - y)
            if x < 0 or y < 0 or dist == 0:
                continue
            color = _COLOR_NAMES[color_idx]
            name = f"{color} {_DOOR_STATES[state]} door" if kind == "door" else f"{color} {kind}"
            dx, dy = x - ax, y - ay
            front, side = fx * dx + fy * dy, rx * dx + ry * dy
            objects.append((name, front, side, dist))
            if kind in _BARRIER_TYPES and side == 0:
                barriers.append((kind, front))
    objects.sort(key=lambda o: o[3])
    return objects, barriers


def mission_to_goal(mission: str) -> str:
    """The goal text the agent is given: "then" and "after you" become "and".

    >>> mission_to_goal("open the blue door after you open the red door")
    'open the blue door and open the red door'
    """
    goal = re.sub(r"\bthen\b", "and", mission)
    return re.sub(r"\bafter you\b", "and", goal)


def _pattern_parts(pattern: str) -> list[str]:
    pattern = pattern.strip()
    token = "**" if "**" in pattern else "*"
    return [part.strip(".") for part in pattern.split(token)]


class SubgoalTracker:
    """Progress rate from the evaluation set's subgoal patterns.

    A pattern is text with ``**`` (or ``*``) wildcards; it matches an observation when one
    sentence of it (text between full stops) contains every literal piece. After each action
    the first still-unmatched pattern (in the file's order) that matches the new observation
    is credited: at most one per action, as in the evaluation set's original scorer. The
    initial observation is not scored.

    >>> t = SubgoalTracker(["There is a red ball **", "You are carrying a red ball."])
    >>> t.update("There is a red ball 1 right in front of you 1 steps away. You are carrying a red ball.")
    0.5
    >>> t.update("You are carrying a red ball.")
    1.0
    """

    def __init__(self, patterns: Sequence[str]):
        self._patterns = [_pattern_parts(p) for p in patterns]
        self._pending = list(range(len(self._patterns)))
        self.progress = 0.0

    def update(self, observation: str) -> float:
        """Score one observation and return the progress so far (its maximum)."""
        if not self._patterns:
            return self.progress
        sentences = observation.split(".")
        for index in self._pending:
            parts = self._patterns[index]
            if any(all(p in s for p in parts) for s in sentences):
                self._pending.remove(index)
                done = len(self._patterns) - len(self._pending)
                self.progress = max(self.progress, done / len(self._patterns))
                break
        return self.progress

    def complete(self) -> float:
        """Mark the task solved: progress becomes 1."""
        self._pending.clear()
        self.progress = 1.0
        return self.progress


def ineffective_reason(env: Any, action: str) -> str | None:
    """Why a primitive action would change nothing in the current state, or None if it acts.

    Args:
        env: the unwrapped minigrid environment.
        action: one of :data:`PRIMITIVE_ACTIONS`.
    """
    if action in ("turn left", "turn right"):
        return None
    front = env.grid.get(*env.front_pos)
    carried = env.carrying
    ahead = f"the {front.color} {front.type}" if front is not None else ""
    if action == "move forward":
        if front is not None and not front.can_overlap():
            return f"{ahead} in front of you blocks the way"
        return None
    if action == "pick up":
        if carried is not None:
            return f"you are already carrying a {carried.color} {carried.type}"
        if front is None or not front.can_pickup():
            return "there is nothing you can pick up in front of you"
        return None
    if action == "drop":
        if carried is None:
            return "you are not carrying anything"
        if front is not None:
            return f"{ahead} in front of you leaves no room to drop it"
        return None
    return _toggle_reason(front, carried)


def _toggle_reason(front: Any, carried: Any) -> str | None:
    if front is None or front.type not in ("door", "box"):
        return "there is nothing you can toggle in front of you"
    if front.type == "door" and front.is_locked:
        has_key = carried is not None and carried.type == "key" and carried.color == front.color
        if not has_key:
            return f"the {front.color} door is locked and you are not carrying a {front.color} key"
    return None
