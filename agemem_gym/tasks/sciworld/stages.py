"""Stage-1 facts and stage-2 distractors for ScienceWorld, derived from a replayed gold path.

What is derived is fixed by the task (its gold trace and index); the generator only picks the
wording. See :mod:`agemem_gym.tasks.sciworld` for the construction in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from agemem_gym.tasks._common import say
from agemem_gym.tasks.base import Fact
from agemem_gym.tasks.sciworld.engine import GoldTrace

#: The rooms of the ScienceWorld house.
ROOMS: tuple[str, ...] = (
    "art studio",
    "bathroom",
    "bedroom",
    "foundry",
    "greenhouse",
    "hallway",
    "kitchen",
    "living room",
    "outside",
    "workshop",
)
MAX_LOCATIONS = 4
MAX_ROUTES = 3

_PICK_RE = re.compile(r"^You move the (.+?) to the inventory\.")
_FOCUS_RE = re.compile(r"^You focus on the (.+?)\.$")
_POUR_RE = re.compile(r"^You pour the contents of the (.+?) into the (.+?)\.")
_MOVE_OBJ_RE = re.compile(r"^You move the (.+?) to the (.+?)\.")
_ROOM_MOVE_RE = re.compile(r"^You (?:move|teleport) to the ([^.]+)\.")
_CONTENTS_RE = re.compile(r"(?:On|In) the [^:]+? is: (.+)$")
_ARTICLE_RE = re.compile(r"^(?:a|an|the|some)\s+", re.IGNORECASE)
_IDLE_ACTIONS = ("look", "open door", "go to", "wait", "examine", "inventory", "teleport")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "location": (
        "Oh, I left the {obj} in the {room} earlier.",
        "If you need the {obj}, it's in the {room}.",
        "Heads up: the {obj} is over in the {room}.",
    ),
    "update": (
        "Wait, I got that wrong: the {obj} is actually in the {room}, not the {old}.",
        "Correction: someone moved the {obj}. It's in the {room} now, not the {old}.",
        "Scratch that, the {obj} isn't in the {old}; it's in the {room}.",
    ),
    "route": (
        "Tip: to get from the {a} to the {b} you go through {via}.",
        "Getting from the {a} to the {b}? Pass through {via}.",
    ),
    "route_direct": (
        "The {a} opens straight onto the {b}.",
        "You can walk from the {a} right into the {b}.",
    ),
    "focus": (
        "For this one, the thing to focus on is {targets}.",
        "Remember to focus on {targets}, that's what counts.",
    ),
    "claim": (
        "I think the door to the {room} is locked, by the way.",
        "Someone told me the {room} door is locked.",
    ),
    "retract": (
        "Forget what I said about the {room} door being locked, that was wrong.",
        "Never mind the {room} door thing, it isn't locked after all.",
    ),
    "smalltalk": (
        "Science class was fun today!",
        "I'm grabbing a snack, back in a minute.",
        "These experiments always take longer than I expect.",
    ),
    "distractor": (
        "By the way, there's a {item} in the {room}.",
        "Random thing: I saw a {item} in the {room} yesterday.",
        "Did you know the {room} has a {item}?",
    ),
    "distractor_held": (
        "Fun fact: the {item} sits on the {holder} in the {room}.",
        "I noticed the {item} on the {holder} in the {room}.",
    ),
}


def _bare(name: str) -> str:
    return _ARTICLE_RE.sub("", name.strip()).strip()


@dataclass
class TraceFacts:
    """What a gold trace shows: where things are, what is focused on, the rooms walked through."""

    locations: dict[str, str] = field(default_factory=dict)
    focus: list[str] = field(default_factory=list)
    legs: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)


def _locate(facts: TraceFacts, obj: str, room: str, carried: set[str]) -> None:
    facts.used.add(obj)
    if obj not in carried and obj not in facts.locations and obj not in ROOMS:
        facts.locations[obj] = room


def _read_observation(facts: TraceFacts, obs: str, room: str, carried: set[str]) -> None:
    if m := _PICK_RE.match(obs):
        _locate(facts, m.group(1), room, carried)
        carried.add(m.group(1))
    elif m := _FOCUS_RE.match(obs):
        _locate(facts, m.group(1), room, carried)
        if m.group(1) not in facts.focus:
            facts.focus.append(m.group(1))
    elif m := _POUR_RE.match(obs):
        _locate(facts, m.group(1), room, carried)
        _locate(facts, m.group(2), room, carried)
    elif m := _MOVE_OBJ_RE.match(obs):
        _locate(facts, m.group(1), room, carried)
        _locate(facts, m.group(2), room, carried)
        carried.discard(m.group(1))


def read_trace(trace: GoldTrace) -> TraceFacts:
    """Object locations, focus targets and route legs (between rooms where work happens)."""
    facts = TraceFacts()
    carried: set[str] = set()
    leg_start, via = trace.start_room, []
    for step in trace.steps:
        _read_observation(facts, step.observation, step.room, carried)
        if m := _ROOM_MOVE_RE.match(step.observation):
            via.append(m.group(1).strip())
        elif not step.action.startswith(_IDLE_ACTIONS) and via:
            target = via[-1]
            if target != leg_start:
                facts.legs.append((leg_start, target, tuple(via[:-1])))
            leg_start, via = target, []
    return facts


def _wrong_room(true_room: str, start_room: str, key: int) -> str:
    options = [r for r in ROOMS if r not in (true_room, start_room)]
    return options[key % len(options)]


def build_stage1(
    trace: GoldTrace, task_number: int, rng: np.random.Generator
) -> tuple[tuple[Fact, ...], tuple[str, ...]]:
    """Stage-1 turns and the supporting facts they leave in memory.

    Args:
        trace: the task's replayed gold path.
        task_number: the task's index (fixes which fact is corrected and to what).
        rng: picks the wording.
    """
    facts = read_trace(trace)
    turns: list[Fact] = [Fact(say(rng, _TEMPLATES["smalltalk"]), op="none")]
    current: dict[str, str] = {}
    located = list(facts.locations.items())[:MAX_LOCATIONS]
    corrected = None
    for i, (obj, room) in enumerate(located):
        key = f"location:{obj}"
        shown = room
        if i == 0:  # told wrong first, corrected later (Update)
            shown = _wrong_room(room, trace.start_room, task_number)
            corrected = (obj, room, shown)
        current[key] = f"The {obj} is in the {shown}."
        turns.append(Fact(say(rng, _TEMPLATES["location"], obj=obj, room=shown), current[key], key))
    for a, b, via in facts.legs[:MAX_ROUTES]:
        key = f"route:{a}->{b}"
        if via:
            names = " and ".join(f"the {v}" for v in via)
            current[key] = f"The way from the {a} to the {b} goes through {names}."
            turns.append(Fact(say(rng, _TEMPLATES["route"], a=a, b=b, via=names), current[key], key))
        else:
            current[key] = f"The {a} connects directly to the {b}."
            turns.append(Fact(say(rng, _TEMPLATES["route_direct"], a=a, b=b), current[key], key))
    turns.extend(_claim_and_focus(facts, trace, task_number, rng, current))
    if corrected is not None:
        obj, room, old = corrected
        key = f"location:{obj}"
        current[key] = f"The {obj} is in the {room}."
        turns.append(
            Fact(say(rng, _TEMPLATES["update"], obj=obj, room=room, old=old), current[key], key, "update")
        )
    turns.append(_retraction(trace, task_number, rng, current))
    turns.append(Fact(say(rng, _TEMPLATES["smalltalk"]), op="none"))
    return tuple(turns), tuple(current.values())


def _claim_room(trace: GoldTrace, task_number: int) -> str:
    visited = {s.room for s in trace.steps} | set(trace.looks)
    options = [r for r in ROOMS if r not in visited] or list(ROOMS)
    return options[task_number % len(options)]


def _claim_and_focus(
    facts: TraceFacts,
    trace: GoldTrace,
    task_number: int,
    rng: np.random.Generator,
    current: dict[str, str],
) -> list[Fact]:
    room = _claim_room(trace, task_number)
    key = f"door:{room}"
    current[key] = f"The door to the {room} is locked."
    turns = [Fact(say(rng, _TEMPLATES["claim"], room=room), current[key], key)]
    if facts.focus:
        targets = ", then ".join(f"the {t}" for t in facts.focus)
        current["focus"] = f"Focus on {targets}."
        turns.append(Fact(say(rng, _TEMPLATES["focus"], targets=targets), current["focus"], "focus"))
    return turns


def _retraction(
    trace: GoldTrace, task_number: int, rng: np.random.Generator, current: dict[str, str]
) -> Fact:
    room = _claim_room(trace, task_number)
    current.pop(f"door:{room}")
    return Fact(say(rng, _TEMPLATES["retract"], room=room), "", f"door:{room}", "delete")


def visible_items(look: str) -> list[tuple[str, str]]:
    """``(item, holder)`` pairs listed by a ``look around`` text (holder "" when on the floor)."""
    body = look.split("You also see:")[0]
    items: list[tuple[str, str]] = []
    for line in body.split("\n")[1:]:
        line = line.strip()
        if not line:
            continue
        name = _bare(re.split(r"[.(,]", line)[0])
        name = name.removeprefix("substance called ")
        if name in ("agent", "air", ""):
            continue
        items.append((name, ""))
        if m := _CONTENTS_RE.search(line):
            for part in m.group(1).rstrip(".").split(", "):
                inner = _bare(re.split(r"[.(]", part)[0])
                if inner and inner != "nothing" and not inner.startswith("which"):
                    items.append((inner, name))
    return items


def build_distractors(trace: GoldTrace, count: int, rng: np.random.Generator) -> tuple[str, ...]:
    """Near-miss facts: true but unneeded things in the rooms the gold path passes through."""
    used = read_trace(trace).used
    candidates = [
        (item, holder, room)
        for room, look in trace.looks.items()
        for item, holder in visible_items(look)
        if item not in used and holder not in used
    ]
    if count <= 0:
        return ()
    spread = sorted({i * len(candidates) // count for i in range(count)}) if candidates else []
    picked = [candidates[i] for i in spread]
    out = []
    for item, holder, room in picked:
        if holder:
            out.append(say(rng, _TEMPLATES["distractor_held"], item=item, holder=holder, room=room))
        else:
            out.append(say(rng, _TEMPLATES["distractor"], item=item, room=room))
    while len(out) < count:  # tiny worlds: talk about rooms the task never needs
        room = ROOMS[len(out) % len(ROOMS)]
        out.append(f"Someone said the {room} is packed with stuff.")
    return tuple(out)


def key_items(goal: str, focus: list[str]) -> tuple[str, ...]:
    """Rooms and focus targets named in the goal (the preservation reward checks them)."""
    text = goal.lower()
    found = [r for r in ROOMS if re.search(rf"\b{re.escape(r)}\b", text)]
    found += [t for t in focus if t.lower() in text and t not in found]
    return tuple(found) if found else tuple(focus[:1])
