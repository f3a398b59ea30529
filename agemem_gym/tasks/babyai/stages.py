"""Stage-1 facts and stage-2 distractors of the BabyAI benchmark, from each level's ground truth.

:func:`scan_level` reads a freshly reset level: the mission's target objects, where each is
relative to the agent's start (steps ahead and to the side, as the agent faces at the start),
the first door on a shortest route to it, locked doors with their keys, and every other
object. :func:`build_stages` turns that into the conversation: a rough (wrong) first hint that
a later turn corrects, exact target positions, route and key facts, a fact that is retracted,
small talk, and near-miss distractors about the other objects.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agemem_gym.tasks._common import StageContent, choose, memory_after, say
from agemem_gym.tasks.base import Fact

_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))
_COLORS = ("red", "green", "blue", "purple", "yellow", "grey")
_KINDS = ("ball", "box", "key")


@dataclass(frozen=True)
class Spot:
    """A named object and where it is relative to the start (ahead > 0, right > 0)."""

    name: str
    ahead: int
    right: int


@dataclass
class LevelTruth:
    """What a level's start state says about its task."""

    targets: list[tuple[str, Spot]] = field(default_factory=list)  # (verb, object)
    routes: dict[str, Spot] = field(default_factory=dict)  # target name -> first door on route
    locks: list[tuple[Spot, Spot | None]] = field(default_factory=list)  # (locked door, its key)
    others: list[Spot] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


def where(spot: Spot) -> str:
    """``3 steps ahead and 1 step to the left from the start`` (or ``at the start``)."""
    parts = []
    if spot.ahead:
        n = abs(spot.ahead)
        parts.append(f"{n} step{'s' * (n != 1)} {'ahead' if spot.ahead > 0 else 'behind'}")
    if spot.right:
        n = abs(spot.right)
        parts.append(f"{n} step{'s' * (n != 1)} to the {'right' if spot.right > 0 else 'left'}")
    return " and ".join(parts) + " from the start" if parts else "at the start"


def scan_level(env: Any) -> LevelTruth:
    """Read the ground truth of a level right after ``reset`` (``env`` is unwrapped)."""
    start = (int(env.agent_pos[0]), int(env.agent_pos[1]))
    fx, fy = _DIRS[int(env.agent_dir)]

    def spot(name: str, pos: Any) -> Spot:
        dx, dy = int(pos[0]) - start[0], int(pos[1]) - start[1]
        return Spot(name, fx * dx + fy * dy, -fy * dx + fx * dy)

    truth = LevelTruth()
    seen: set[int] = set()
    for verb, desc in _mission_targets(env.instrs):
        pairs = list(zip(desc.obj_set, desc.obj_poss, strict=False))
        if not pairs:
            continue
        obj, pos = min(pairs, key=lambda p: abs(p[1][0] - start[0]) + abs(p[1][1] - start[1]))
        name = f"{obj.color} {obj.type}"
        target = spot(name, pos)
        truth.targets.append((verb, target))
        seen.add(id(obj))
        goal = (int(pos[0]), int(pos[1]))
        door = _first_door(env.grid, start, goal)
        if door is not None and door[1] != goal:
            truth.routes[name] = spot(f"{door[0].color} door", door[1])
    for obj, pos in _grid_objects(env.grid):
        truth.names.add(f"{obj.color} {obj.type}")
        if obj.type == "door" and obj.is_locked:
            key = next(
                (p for o, p in _grid_objects(env.grid) if o.type == "key" and o.color == obj.color),
                None,
            )
            door_spot = spot(f"{obj.color} door", pos)
            truth.locks.append((door_spot, spot(f"{obj.color} key", key) if key else None))
        if id(obj) not in seen:
            truth.others.append(spot(f"{obj.color} {obj.type}", pos))
    return truth


def _mission_targets(instr: Any) -> list[tuple[str, Any]]:
    """(verb, ObjDesc) for every object the instruction tree names, in mission order."""
    if hasattr(instr, "instr_a"):
        return _mission_targets(instr.instr_a) + _mission_targets(instr.instr_b)
    kind = type(instr).__name__
    if kind == "PutNextInstr":
        return [("move", instr.desc_move), ("put it next to", instr.desc_fixed)]
    verb = {"GoToInstr": "go to", "OpenInstr": "open", "PickupInstr": "pick up"}.get(kind, "find")
    return [(verb, instr.desc)]


def _grid_objects(grid: Any) -> list[tuple[Any, tuple[int, int]]]:
    found = []
    for y in range(grid.height):
        for x in range(grid.width):
            obj = grid.get(x, y)
            if obj is not None and obj.type in ("door", "key", "ball", "box"):
                found.append((obj, (x, y)))
    return found


def _first_door(grid: Any, start: tuple[int, int], goal: tuple[int, int]) -> Any:
    """The first door on a shortest wall-avoiding route from ``start`` to ``goal``, if any."""
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            break
        for dx, dy in _DIRS:
            nxt = (here[0] + dx, here[1] + dy)
            if nxt in parent or not (0 <= nxt[0] < grid.width and 0 <= nxt[1] < grid.height):
                continue
            obj = grid.get(*nxt)
            if obj is not None and obj.type == "wall":
                continue
            parent[nxt] = here
            queue.append(nxt)
    if goal not in parent:
        return None
    path = []
    cell: tuple[int, int] | None = goal
    while cell is not None:
        path.append(cell)
        cell = parent[cell]
    for pos in reversed(path):
        obj = grid.get(*pos)
        if obj is not None and obj.type == "door":
            return obj, pos
    return None


_GREETINGS = (
    "Hi! I'm going to play a little grid-world game with you later.",
    "Hey there. We'll do a maze puzzle together in a bit.",
    "Hello! Later on you'll walk an agent through a grid world for me.",
)
_ROUGH = (
    "I peeked at the map earlier: I think the {name} was roughly {where}, but I'm not sure.",
    "If I remember right, the {name} is about {where}. Don't quote me on it.",
    "My rough guess from a glance at the level: the {name} sits {where}.",
)
_CORRECT = (
    "Correction about the {name}: I checked again, it is exactly {where}.",
    "Scratch my earlier guess. The {name} is really {where}.",
    "I looked properly now: the {name} is {where}, not where I said before.",
)
_EXACT = (
    "Good to know: the {name} is {where}.",
    "Note this down: the {name} is {where}.",
    "The {name} you will need is {where}.",
)
_ROUTE = (
    "To get to the {target}, go through the {door}, which is {where}.",
    "The way to the {target} leads through the {door} ({where}).",
)
_LOCK = (
    "The {door} is locked. Its key, the {key}, is {where}.",
    "Heads up: you need the {key} for the {door}; the key is {where}.",
)
_LOCK_NO_KEY = ("The {door} ({where}) is locked.",)
_DECOY = (
    "Oh, and there is a {name} {where}.",
    "I also spotted a {name} {where}.",
)
_RETRACT = (
    "Forget what I said about the {name}: that was a different level.",
    "Please drop the {name} thing I mentioned, it was from another game.",
)
_SMALL_TALK = (
    "These puzzles always remind me of old arcade games.",
    "I hope this one is quicker than the last one!",
    "No rush, by the way. Take your time.",
)
_DISTRACT = (
    "Unrelated, but in this level the {name} is {where}.",
    "Someone mentioned the {name} is {where}.",
    "Fun fact: there's a {name} {where}.",
    "By the way, the {name} is {where}.",
)


def _location(spot: Spot) -> str:
    return f"The {spot.name} is {where(spot)}."


def _rough_spot(spot: Spot, rng: np.random.Generator) -> Spot:
    """A wrong first guess: the target shifted by 2-3 steps on one or both axes."""
    shift = [0, 0]
    while shift == [0, 0]:
        shift = [int(v) for v in rng.choice([-3, -2, 0, 2, 3], size=2)]
    return Spot(spot.name, spot.ahead + shift[0], spot.right + shift[1])


def build_stages(truth: LevelTruth, rng: np.random.Generator, num_distractors: int = 4) -> StageContent:
    """Render a level's ground truth as stage-1 turns and stage-2 distractors.

    Args:
        truth: the level's ground truth (:func:`scan_level`).
        rng: drives the wording, the wrong first hint, the decoy and the distractor choice.
        num_distractors: at most this many stage-2 messages.
    """
    turns: list[Fact] = [Fact(say(rng, _GREETINGS), op="none")]
    targets, corrections = _target_facts(truth, rng)
    turns.extend(targets)
    turns.extend(_lock_facts(truth, rng))
    decoy = _decoy(truth, rng)
    turns.append(
        Fact(
            say(rng, _DECOY, name=decoy.name, where=where(decoy)),
            _location(decoy),
            f"location:{decoy.name}",
            "add",
        )
    )
    turns.append(Fact(say(rng, _SMALL_TALK), op="none"))
    turns.extend(corrections)
    turns.append(
        Fact(say(rng, _RETRACT, name=decoy.name), "", f"location:{decoy.name}", "delete")
    )
    return StageContent(
        stage1=tuple(turns),
        distractors=_distractors(truth, rng, num_distractors),
        supporting_facts=memory_after(turns),
    )


def _target_facts(
    truth: LevelTruth, rng: np.random.Generator
) -> tuple[list[Fact], list[Fact]]:
    """Position and route facts of the targets, and the correction(s) to say later."""
    turns: list[Fact] = []
    corrections: list[Fact] = []
    for i, (_, target) in enumerate(truth.targets):
        key = f"location:{target.name}"
        exact = _location(target)
        if i == 0:
            rough = _rough_spot(target, rng)
            turns.append(
                Fact(
                    say(rng, _ROUGH, name=target.name, where=where(rough)),
                    _location(rough),
                    key,
                    "add",
                )
            )
            message = say(rng, _CORRECT, name=target.name, where=where(target))
            corrections.append(Fact(message, exact, key, "update"))
        elif key not in {f.key for f in turns}:
            message = say(rng, _EXACT, name=target.name, where=where(target))
            turns.append(Fact(message, exact, key, "add"))
        door = truth.routes.get(target.name)
        if door is not None and f"route:{target.name}" not in {f.key for f in turns}:
            content = f"The route to the {target.name} goes through the {door.name}, {where(door)}."
            message = say(rng, _ROUTE, target=target.name, door=door.name, where=where(door))
            turns.append(Fact(message, content, f"route:{target.name}", "add"))
    return turns, corrections


def _lock_facts(truth: LevelTruth, rng: np.random.Generator) -> list[Fact]:
    facts: list[Fact] = []
    for door, key in truth.locks:
        if any(f.key == f"lock:{door.name}" for f in facts):  # two doors of one name: told once
            continue
        if key is None:
            message = say(rng, _LOCK_NO_KEY, door=door.name, where=where(door))
            content = f"The {door.name} is locked; it is {where(door)}."
        else:
            message = say(rng, _LOCK, door=door.name, key=key.name, where=where(key))
            content = f"The {door.name} is locked; its key, the {key.name}, is {where(key)}."
        facts.append(Fact(message, content, f"lock:{door.name}", "add"))
    return facts


def _decoy(truth: LevelTruth, rng: np.random.Generator) -> Spot:
    """An object that is not in the level, at a made-up place (said, then retracted)."""
    absent = [f"{c} {k}" for c in _COLORS for k in _KINDS if f"{c} {k}" not in truth.names]
    name = choose(rng, absent)
    ahead, right = (int(v) for v in rng.integers(-4, 5, size=2))
    return Spot(name, ahead or 1, right)


def _distractors(truth: LevelTruth, rng: np.random.Generator, limit: int) -> tuple[str, ...]:
    """Near-misses: true positions of other objects, those sharing a colour or kind first."""
    targets = [t.name for _, t in truth.targets]

    def closeness(spot: Spot) -> int:
        color, kind = spot.name.split(" ", 1)
        return -sum(color == t.split(" ", 1)[0] or kind == t.split(" ", 1)[1] for t in targets)

    told = set(targets) | {d.name for d in truth.routes.values()}
    told |= {s.name for lock in truth.locks for s in lock if s is not None}
    others = [o for o in truth.others if o.name not in told]
    order = rng.permutation(len(others))
    chosen = sorted((others[int(i)] for i in order), key=closeness)[:limit]
    messages = [say(rng, _DISTRACT, name=o.name, where=where(o)) for o in chosen]
    if not messages:  # a bare level: talk about a plausible object of another level
        other = _decoy(truth, rng)
        messages.append(f"In a different level I played, the {other.name} was {where(other)}.")
    return tuple(messages)

