"""Read an ALFWorld game's ground truth (goal, walkthrough, initial placement) without the engine.

A ``game.tw-pddl`` file is JSON holding the PDDL domain, the PDDL problem (mangled instance ids
such as ``Bowl_bar__minus_01_dot_10_bar__plus_00_dot_94_bar__minus_01_dot_43``), the text grammar
(which holds the goal sentence) and the planner's ``walkthrough``. The engine shows instances
under short names ("bowl 1"); :func:`display_names` gives the same names from the ids alone:
per base name, instances are numbered in *descending* order of their sorted lower-case ids, and a
sink or bathtub basin is named ``<base>basin``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from agemem_gym.errors import DataNotFoundError

#: The six ALFWorld task families, as named in the game directories.
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

_GOAL_RE = re.compile(r'"task"\s*:\s*\[\s*\{\s*"rhs"\s*:\s*"Your task is to: ([^"]*)"')
_DECL_RE = re.compile(r"^\s*(\S+_bar_\S+)\s+-\s+(object|receptacle)\s*$", re.MULTILINE)
_FACT_RE = re.compile(r"\((inReceptacle|openable)\s+([^\s()]+)(?:\s+([^\s()]+))?\)")


@dataclass(frozen=True)
class GameSpec:
    """The ground truth of one game, with instances under their display names.

    Attributes:
        game_file: absolute path of ``game.tw-pddl``.
        task_type: one of :data:`TASK_TYPES`.
        object_type: the type to manipulate, lower case ("bowl").
        mrecep_type: the movable receptacle type, or "" (unused by the 134 evaluation games).
        target_type: the destination receptacle type, or the lamp type for
            ``look_at_obj_in_light`` ("cabinet", "desklamp").
        goal: the goal sentence, e.g. "put a clean bowl in cabinet."
        walkthrough: the planner's solution, in the game's command grammar.
        kinds: display name -> "object" or "receptacle".
        placement: display name of an object -> the receptacles it starts in (an object can
            be in two nested receptacles at once).
        openable: display names of the receptacles that open and close.
    """

    game_file: str
    task_type: str
    object_type: str
    mrecep_type: str
    target_type: str
    goal: str
    walkthrough: tuple[str, ...]
    kinds: dict[str, str]
    placement: dict[str, tuple[str, ...]]
    openable: frozenset[str]

    @property
    def receptacles(self) -> list[str]:
        """Display names of every receptacle, sorted."""
        return sorted(n for n, k in self.kinds.items() if k == "receptacle")


def base_type(name: str) -> str:
    """The type of a display name: ``"bowl 1"`` -> ``"bowl"``."""
    return name.rsplit(" ", 1)[0] if name[-1:].isdigit() else name


def display_names(ids: list[str]) -> dict[str, str]:
    """Map mangled instance ids to the names the engine shows ("drawer 3").

    Args:
        ids: every declared object and receptacle id of the problem (any case).

    Returns:
        lower-case id -> display name.
    """
    lowered = sorted({i.lower() for i in ids})
    by_base: dict[str, list[str]] = defaultdict(list)
    for ident in lowered:
        base = ident.split("_bar_", 1)[0]
        if "basin" in ident:
            base += "basin"
        by_base[base].append(ident)
    names = {}
    for base, members in by_base.items():
        for k, ident in enumerate(members):
            names[ident] = f"{base} {len(members) - k}"
    return names


def parse_game_dir(name: str) -> tuple[str, str, str, str]:
    """Split a game directory name into task type, object, movable receptacle and target.

    ``"pick_clean_then_place_in_recep-Bowl-None-Cabinet-10"`` gives
    ``("pick_clean_then_place_in_recep", "bowl", "", "cabinet")``.
    """
    parts = name.split("-")
    if len(parts) < 5 or parts[0] not in TASK_TYPES:
        raise DataNotFoundError(
            f"ALFWorld game directory {name!r} is not named "
            "<task_type>-<Object>-<MovableRecep>-<Receptacle>-<scene>; expected the layout "
            "that alfworld-download creates"
        )
    mrecep = "" if parts[2] == "None" else parts[2].lower()
    return parts[0], parts[1].lower(), mrecep, parts[3].lower()


def load_game(game_file: Path) -> GameSpec:
    """Parse one ``game.tw-pddl`` file (and its directory name) into a :class:`GameSpec`.

    Raises:
        DataNotFoundError: the file is missing, not JSON, or lacks the goal or walkthrough.
    """
    try:
        data = json.loads(game_file.read_text(encoding="utf-8"))
        problem, grammar = data["pddl_problem"], data["grammar"]
        walkthrough = tuple(data["walkthrough"])
    except (OSError, ValueError, KeyError) as e:
        raise DataNotFoundError(
            f"cannot read the ALFWorld game {game_file}: {e!r}; expected a game.tw-pddl file "
            "with pddl_problem, grammar and walkthrough (alfworld>=0.4 format)"
        ) from e
    goal = _GOAL_RE.search(grammar)
    if goal is None:
        raise DataNotFoundError(f"no 'Your task is to:' goal in the grammar of {game_file}")
    task_type, obj, mrecep, target = parse_game_dir(game_file.parent.parent.name)
    decls = _DECL_RE.findall(problem)
    names = display_names([d[0] for d in decls])
    kinds = {names[i.lower()]: k for i, k in decls}
    placement: dict[str, list[str]] = defaultdict(list)
    openable = set()
    init = problem[problem.find("(:init") : problem.find("(:goal")]
    for pred, a, b in _FACT_RE.findall(init):
        if pred == "openable":
            openable.add(names[a.lower()])
        elif a.lower() in names and b.lower() in names:
            placement[names[a.lower()]].append(names[b.lower()])
    return GameSpec(
        game_file=str(game_file.resolve()),
        task_type=task_type,
        object_type=obj,
        mrecep_type=mrecep,
        target_type=target,
        goal=goal.group(1).strip(),
        walkthrough=walkthrough,
        kinds=kinds,
        placement={o: tuple(sorted(set(r))) for o, r in placement.items()},
        openable=frozenset(openable),
    )
