"""Stage-1 facts and stage-2 distractors for one ALFWorld game, built from its ground truth.

See the module docstring of :mod:`agemem_gym.tasks.alfworld` for the design. Every choice
(false earlier location, decoy object, distractor objects, wording, order) comes from the
``rng`` given, so a seed fixes the messages; the facts themselves are fixed by the game.
"""

from __future__ import annotations

import re

import numpy as np

from agemem_gym.tasks._common import choose, say
from agemem_gym.tasks.alfworld.game import GameSpec, base_type
from agemem_gym.tasks.base import Fact

#: Receptacle types one puts things *in*; everything else is *on*.
_INSIDE = frozenset(
    {
        "cabinet", "drawer", "fridge", "microwave", "safe", "garbagecan", "laundryhamper",
        "box", "sinkbasin", "bathtubbasin", "cart", "toilet",
    }
)  # fmt: skip

_PLACE = (
    "Just so you know, the {o} is {p} the {r}.",
    "I left the {o} {p} the {r} earlier.",
    "If you ever need the {o}, it's {p} the {r}.",
    "Remember: the {o} is {p} the {r}.",
)
_MOVED = (
    "Correction about the {o}: I moved it from the {old} to the {r}, so it's {p} the {r} now.",
    "Update: the {o} is no longer at the {old}, I put it {p} the {r}.",
    "Oh, I moved the {o} away from the {old}; it's {p} the {r} now.",
)
_FORGET = (
    "Forget what I said about the {o}, I was thinking of another room.",
    "Never mind my note about the {o}; that was wrong, ignore it.",
    "Scratch the {o} thing I told you, I'm not sure where it is after all.",
)
_TOOL = (
    "When something needs to be {v}, use the {t}.",
    "The {t} is the one to use if you have to get something {v}.",
    "For getting things {v}, the {t} works best.",
)
_LAMP = (
    "The {o} that works is {p} the {r}.",
    "There's a {o} {p} the {r}, and it works fine.",
)
_DEST = (
    "When you put a {b} away, the {r} is the place for it.",
    "The {r} is where a {b} should go.",
    "I like to keep a {b} {p} the {r}.",
)
_OPEN = " It's closed, so open it first."
_SMALL_TALK = (
    "I'm finally getting the house in order this weekend.",
    "Thanks for helping out, by the way.",
    "It's been a long week, honestly.",
    "My sister is visiting on Sunday, so I want the place to look nice.",
    "I should really buy more storage boxes.",
)
_VERB = {"clean": "cleaned", "heat": "heated", "cool": "cooled"}


def preposition(receptacle: str) -> str:
    """``"in"`` for containers (cabinets, drawers, ...), ``"on"`` for surfaces."""
    return "in" if base_type(receptacle) in _INSIDE else "on"


def place_fact(obj: str, receptacle: str) -> str:
    """The canonical placement fact: ``"bowl 1 is in cabinet 4"``."""
    return f"{obj} is {preposition(receptacle)} {receptacle}"


def _place(rng: np.random.Generator, templates: tuple[str, ...], obj: str, rec: str) -> str:
    return say(rng, templates, o=obj, r=rec, p=preposition(rec))


def _takes(spec: GameSpec) -> list[tuple[str, str]]:
    """(object, receptacle) of each ``take`` in the walkthrough."""
    found = (re.fullmatch(r"take (.+) from (.+)", a) for a in spec.walkthrough)
    return [(m.group(1), m.group(2)) for m in found if m]


def _false_place(spec: GameSpec, obj: str, true_rec: str, rng: np.random.Generator) -> str:
    """A plausible receptacle that does not hold ``obj`` (same type as another holder if any)."""
    holders = {true_rec, *spec.placement.get(obj, ())}
    others = [r for r in spec.receptacles if r not in holders]
    typed = {base_type(r) for recs in spec.placement.values() for r in recs}
    plausible = [r for r in others if base_type(r) in typed] or others
    return choose(rng, plausible)


def _tool_fact(spec: GameSpec, rng: np.random.Generator) -> Fact | None:
    """Where the state change (clean/heat/cool) or the lamp is, from the walkthrough."""
    for i, action in enumerate(spec.walkthrough):
        m = re.fullmatch(r"(clean|heat|cool) (.+) with (.+)", action)
        if m:
            verb, tool = _VERB[m.group(1)], m.group(3)
            msg = say(rng, _TOOL, v=verb, t=tool)
            return Fact(msg, f"things get {verb} with {tool}", tool)
        m = re.fullmatch(r"use (.+)", action)
        if m:
            lamp = m.group(1)
            visited = [a[6:] for a in spec.walkthrough[:i] if a.startswith("go to ")]
            holders = spec.placement.get(lamp, ())
            rec = next((r for r in reversed(visited) if r in holders), None)
            rec = rec or (holders[0] if holders else (visited[-1] if visited else ""))
            if not rec:
                return None
            return Fact(_place(rng, _LAMP, lamp, rec), place_fact(lamp, rec), lamp)
    return None


def _dest_fact(spec: GameSpec, rng: np.random.Generator) -> Fact | None:
    """Which receptacle the walkthrough puts the object in (and that it must be opened)."""
    moves = [m for a in spec.walkthrough if (m := re.fullmatch(r"move (.+) to (.+)", a))]
    if not moves:
        return None
    rec = moves[0].group(2)
    msg = say(rng, _DEST, r=rec, b=spec.object_type, p=preposition(rec))
    content = f"put the {spec.object_type} {preposition(rec)} {rec}"
    if f"open {rec}" in spec.walkthrough:
        msg, content = msg + _OPEN, content + f" ({rec} is closed: open it first)"
    return Fact(msg, content, rec)


def _decoy(spec: GameSpec, rng: np.random.Generator, avoid: set[str]) -> str | None:
    """An object of another type to say something wrong about and later retract."""
    task_types = {spec.object_type, spec.target_type}
    cands = sorted(o for o in spec.placement if base_type(o) not in task_types and o not in avoid)
    return choose(rng, cands) if cands else None


def build_stage1(spec: GameSpec, rng: np.random.Generator) -> list[Fact]:
    """The stage-1 turns (the first tells the task object's outdated location).

    Order: the object's outdated location first; then, shuffled, the tool or lamp, the
    destination, the second object (two-object tasks), a wrong note about a decoy object and
    one line of small talk; last, in random order, the correction of the object's location and
    the retraction of the decoy note.
    """
    takes = _takes(spec)
    obj, true_rec = takes[0]
    old = _false_place(spec, obj, true_rec, rng)
    first = Fact(_place(rng, _PLACE, obj, old), place_fact(obj, old), obj)
    middle: list[Fact] = [f for f in (_tool_fact(spec, rng), _dest_fact(spec, rng)) if f]
    if len(takes) > 1:
        obj2, rec2 = takes[1]
        middle.append(Fact(_place(rng, _PLACE, obj2, rec2), place_fact(obj2, rec2), obj2))
    tail = [
        Fact(
            say(rng, _MOVED, o=obj, old=old, r=true_rec, p=preposition(true_rec)),
            place_fact(obj, true_rec),
            obj,
            "update",
        )
    ]
    decoy = _decoy(spec, rng, {o for o, _ in takes})
    if decoy is not None:
        wrong = _false_place(spec, decoy, spec.placement[decoy][0], rng)
        middle.append(Fact(_place(rng, _PLACE, decoy, wrong), place_fact(decoy, wrong), decoy))
        tail.append(Fact(say(rng, _FORGET, o=decoy), "", decoy, "delete"))
    seen, unique = {obj}, []
    for fact in middle:  # one fact per key, so updates and deletes stay unambiguous
        if fact.key not in seen:
            seen.add(fact.key)
            unique.append(fact)
    middle = unique
    middle.append(Fact(choose(rng, _SMALL_TALK), "", "", "none"))
    order = rng.permutation(len(middle))
    tail_order = rng.permutation(len(tail))
    facts = [first, *(middle[i] for i in order), *(tail[i] for i in tail_order)]
    return facts


def build_distractors(
    spec: GameSpec, rng: np.random.Generator, n: int, avoid: set[str]
) -> list[str]:
    """``n`` true but irrelevant placements of objects of other types (near-miss facts)."""
    task_types = {spec.object_type, spec.target_type}
    pairs = sorted(
        (o, r)
        for o, recs in spec.placement.items()
        if base_type(o) not in task_types and o not in avoid
        for r in recs
    )
    if not pairs or n <= 0:
        return []
    chosen = rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [_place(rng, _PLACE, *pairs[int(i)]) for i in chosen]

