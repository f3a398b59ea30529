"""Text for the PDDL benchmark: facts as sentences, and actions parsed from free text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agemem_gym.tasks._common import is_check_action
from agemem_gym.tasks.pddl.logic import Atom, Operator

#: (predicate, arity) -> sentence template; predicates not listed use a generic sentence.
TEMPLATES: dict[tuple[str, int], str] = {
    # gripper
    ("room", 1): "{0} is a room.",
    ("ball", 1): "{0} is a ball.",
    ("gripper", 1): "{0} is a gripper.",
    ("at-robby", 1): "The robot is in {0}.",
    ("at", 2): "{0} is at {1}.",
    ("free", 1): "{0} is free.",
    ("carry", 2): "{1} is carrying {0}.",
    # blockworld
    ("clear", 1): "{0} is clear.",
    ("on-table", 1): "{0} is on the table.",
    ("arm-empty", 0): "The arm is empty.",
    ("holding", 1): "The arm is holding {0}.",
    ("on", 2): "{0} is on {1}.",
    # barman
    ("ontable", 1): "{0} is on the table.",
    ("holding", 2): "{0} hand is holding {1}.",
    ("handempty", 1): "{0} hand is empty.",
    ("empty", 1): "{0} is empty.",
    ("contains", 2): "{0} contains {1}.",
    ("clean", 1): "{0} is clean.",
    ("used", 2): "{0} has been used for {1}.",
    ("dispenses", 2): "{0} dispenses {1}.",
    ("shaker-empty-level", 2): "{0} is empty at level {1}.",
    ("shaker-level", 2): "{0} is at level {1}.",
    ("next", 2): "Level {1} is one above level {0}.",
    ("unshaked", 1): "{0} has not been shaken.",
    ("shaked", 1): "{0} has been shaken.",
    ("cocktail-part1", 2): "The first part of {0} is {1}.",
    ("cocktail-part2", 2): "The second part of {0} is {1}.",
    # tyreworld
    ("isopen", 1): "{0} is open.",
    ("closed", 1): "{0} is closed.",
    ("have", 1): "You have {0}.",
    ("in", 2): "{0} is in {1}.",
    ("loose", 2): "Nut {0} on {1} is loose.",
    ("tight", 2): "Nut {0} on {1} is tight.",
    ("unlocked", 1): "{0} is unlocked.",
    ("on-ground", 1): "{0} is on the ground.",
    ("not-on-ground", 1): "{0} is jacked up.",
    ("inflated", 1): "Wheel {0} is inflated.",
    ("not-inflated", 1): "Wheel {0} is not inflated.",
    ("fastened", 1): "{0} is fastened.",
    ("unfastened", 1): "{0} is unfastened.",
    ("intact", 1): "Wheel {0} is intact.",
}

#: Words that ask for something other than an action (normalised text -> command).
META_COMMANDS: dict[str, str] = {
    "look": "look",
    "look around": "look",
    "check state": "look",
    "check goal": "goal",
}


def sentence(atom: Atom) -> str:
    """One fact as a sentence, e.g. ``("at", "ball1", "rooma")`` -> ``"ball1 is at rooma."``."""
    template = TEMPLATES.get((atom[0], len(atom) - 1))
    if template is None:
        return (
            f"{atom[0]} holds for {', '.join(atom[1:])}." if len(atom) > 1 else f"{atom[0]} holds."
        )
    return template.format(*atom[1:])


def sentences(atoms: Iterable[Atom]) -> str:
    """Facts as sentences in a stable (sorted) order, one space apart."""
    return " ".join(sentence(a) for a in sorted(atoms))


def action_text(name: str, args: Iterable[str]) -> str:
    """An action in the format the engine parses, e.g. ``"pick ball1 rooma left"``."""
    return " ".join([name, *args])


@dataclass(frozen=True)
class ParsedAction:
    """What a line of agent text asks for: a meta command or a ground action."""

    command: str | None = None
    name: str = ""
    args: tuple[str, ...] = ()


_STRIP = re.compile(r"[()\[\]`'\",;:]")
_PREFIX = re.compile(r"^\s*(?:action|next action|my action|i will|i'll)\s*[:\-]?\s*", re.I)


def _normalise(text: str) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line.strip().lower())
    line = _STRIP.sub(" ", line).replace(",", " ")
    return " ".join(line.split()).rstrip(".!").strip()


def parse_action(text: str, operators: Mapping[str, Operator]) -> ParsedAction | None:
    """Read an action from free text; None when it names no known action.

    Lenient about case, whitespace, parentheses, commas and quotes: ``"pick ball1 rooma left"``,
    ``"(pick ball1 rooma left)"`` and ``"Pick(ball1, rooma, left)."`` all parse alike. Underscores
    or a space may stand for a hyphen in the action name (``put_away``, ``put away``).
    """
    if is_check_action(text):
        return ParsedAction(command="valid")
    norm = _normalise(text)
    if norm in META_COMMANDS:
        return ParsedAction(command=META_COMMANDS[norm])
    tokens = norm.split()
    if not tokens:
        return None
    first = tokens[0].replace("_", "-")
    if first in operators:
        return ParsedAction(name=first, args=tuple(tokens[1:]))
    if len(tokens) > 1 and f"{first}-{tokens[1]}" in operators:
        return ParsedAction(name=f"{first}-{tokens[1]}", args=tuple(tokens[2:]))
    return None


def action_help(operators: Mapping[str, Operator]) -> str:
    """The action syntax of a domain, one signature per operator."""
    return "; ".join(operators[name].signature() for name in sorted(operators))
