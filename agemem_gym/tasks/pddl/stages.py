"""Stage-1 hints and stage-2 distractors of the PDDL benchmark, from the goal and a plan.

See the module docstring of :mod:`agemem_gym.tasks.pddl` for the design.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agemem_gym.tasks._common import StageContent, choose, memory_after, say
from agemem_gym.tasks.base import Fact, FactOp
from agemem_gym.tasks.pddl.logic import Atom
from agemem_gym.tasks.pddl.text import sentence


@dataclass(frozen=True)
class ProblemFacts:
    """What the hints are made from: one problem's goal, objects and an expert plan."""

    goal: tuple[Atom, ...]
    object_kinds: Mapping[str, tuple[str, ...]]  # type and static one-place predicates
    plan: tuple[str, ...]
    first_actions: tuple[str, ...]  # the actions valid in the initial state


_SAY = {
    "first_wrong": (
        "Quick tip for the puzzle coming up: I'd start with `{a}`.",
        "Before we begin: the first move should be `{a}`, I think.",
    ),
    "first_fix": (
        "Correction on my tip: don't start with `{old}`, start with `{a}` instead.",
        "I checked again, sorry: the first move is `{a}`, not `{old}`.",
    ),
    "objects": (
        "Heads-up: the objects you'll actually need are {x}.",
        "Only these objects matter in the task: {x}.",
    ),
    "order": (
        "Something that helps: get '{g1}' done before '{g2}'.",
        "Order matters a bit: first make sure that {g1}, later that {g2}.",
    ),
    "first": (
        "A good first move is `{a}`.",
        "Start with `{a}`, that's how the solution begins.",
    ),
    "last": (
        "The very last move you'll need is `{a}`.",
        "A hint about the end: the final action is `{a}`.",
    ),
    "length": (
        "It can be solved in {n} actions, for what it's worth.",
        "My solution took {n} actions.",
    ),
    "extra_add": (
        "Oh, and one more condition: {g}",
        "Also, I was told this is part of it too: {g}",
    ),
    "extra_del": (
        "Forget what I said about {o}: that condition isn't needed after all.",
        "Scratch the extra condition about {o}, it was wrong.",
    ),
    "chat": (
        "These planning puzzles are oddly relaxing, aren't they?",
        "Thanks for helping me with this, by the way.",
    ),
    "d_first": (
        "In my friend's version of this puzzle the first move was `{a}`.",
        "Someone else's puzzle started with `{a}`, funnily enough.",
    ),
    "d_goal": (
        "Last week's puzzle was different: there {g}",
        "In another puzzle I did, the goal said {g}",
    ),
    "d_length": (
        "My colleague's puzzle needed {n} actions.",
        "The practice round took {n} actions.",
    ),
}


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:] if text[:1].isupper() else text


def _invented(name: str, taken: set[str]) -> str:
    """A new object name of the same family, e.g. ``ball4`` -> ``ball13`` when 1-12 exist."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    stem, number = (match.group(1), int(match.group(2))) if match else (name, 2)
    while f"{stem}{number}" in taken:
        number += 1
    return f"{stem}{number}"


def near_miss(atom: Atom, facts: ProblemFacts, rng: np.random.Generator) -> Atom:
    """``atom`` with one argument swapped for another object of its type, not a goal atom."""
    taken = set(facts.object_kinds)
    for _ in range(20):
        pos = 1 + int(rng.integers(len(atom) - 1))
        kind = facts.object_kinds.get(atom[pos], ())
        peers = sorted(o for o, k in facts.object_kinds.items() if k == kind and o != atom[pos])
        other = choose(rng, peers) if peers else _invented(atom[pos], taken)
        candidate = (*atom[:pos], other, *atom[pos + 1 :])
        if candidate not in facts.goal:
            return candidate
    return (*atom[:1], *(_invented(a, taken) for a in atom[1:]))


def _near_miss_action(action: str, facts: ProblemFacts, rng: np.random.Generator) -> str:
    name, *args = action.split()
    if not args:
        return action
    swapped = near_miss((name, *args), ProblemFacts((), facts.object_kinds, (), ()), rng)
    return " ".join(swapped)


def build_stages(
    facts: ProblemFacts, order: Sequence[Atom], rng: np.random.Generator
) -> StageContent:
    """Stage-1 facts (with one update, one delete, one chat turn) and stage-2 distractors.

    Args:
        facts: the problem's goal, objects, plan and initially valid actions.
        order: the goal atoms in the order the plan achieves them.
        rng: seeds which hints are chosen and their wording.
    """
    plan = facts.plan
    used = sorted({arg for step in plan for arg in step.split()[1:]})
    wrong = [a for a in facts.first_actions if not plan or a != plan[0]]
    old = choose(rng, wrong) if wrong else None
    turns: list[Fact] = []

    def add(key: str, content: str, message: str, op: FactOp = "add") -> None:
        turns.append(Fact(message=message, content=content, key=key, op=op))

    if plan and old is not None:
        add("first_action", f"The first action is: {old}.", say(rng, _SAY["first_wrong"], a=old))
    add(
        "objects",
        f"The objects needed are: {', '.join(used)}.",
        say(rng, _SAY["objects"], x=", ".join(used)),
    )
    extra = near_miss(choose(rng, facts.goal), facts, rng)
    extra_text = sentence(extra)
    add(
        "extra_condition",
        f"Extra goal condition: {extra_text}",
        say(rng, _SAY["extra_add"], g=extra_text),
    )
    if len(order) >= 2:
        i = int(rng.integers(len(order) - 1))
        g1, g2 = (_lower_first(sentence(a)).rstrip(".") for a in order[i : i + 2])
        add("order", f"Achieve that {g1} before that {g2}.", say(rng, _SAY["order"], g1=g1, g2=g2))
    elif plan:
        add("last_action", f"The last action is: {plan[-1]}.", say(rng, _SAY["last"], a=plan[-1]))
    turns.append(Fact(message=say(rng, _SAY["chat"]), op="none"))
    add(
        "plan_length",
        f"The task can be solved in {len(plan)} actions.",
        say(rng, _SAY["length"], n=len(plan)),
    )
    if plan:
        op: FactOp = "update" if old is not None else "add"
        message = (
            say(rng, _SAY["first_fix"], a=plan[0], old=old) if old else say(rng, _SAY["first"], a=plan[0])
        )
        add("first_action", f"The first action is: {plan[0]}.", message, op=op)
    add("extra_condition", "", say(rng, _SAY["extra_del"], o=extra[1]), op="delete")
    distractors = _distractors(facts, rng)
    return StageContent(tuple(turns), distractors, memory_after(turns))


def _distractors(facts: ProblemFacts, rng: np.random.Generator) -> tuple[str, ...]:
    """Near-miss hints of the same kinds, about other objects or other puzzles."""
    out: list[str] = []
    if facts.plan:
        out.append(say(rng, _SAY["d_first"], a=_near_miss_action(facts.plan[0], facts, rng)))
    goal_atom = choose(rng, facts.goal)
    out.append(say(rng, _SAY["d_goal"], g=_lower_first(sentence(near_miss(goal_atom, facts, rng)))))
    shift = int(rng.integers(2, 7)) * (1 if rng.random() < 0.5 else -1)
    out.append(say(rng, _SAY["d_length"], n=max(1, len(facts.plan) + shift)))
    order = rng.permutation(len(out))
    return tuple(out[i] for i in order)
