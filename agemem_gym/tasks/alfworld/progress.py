"""Progress rate for ALFWorld: the fraction of a task family's milestones reached, in order.

Each task family has a fixed milestone list over types (``O`` the object type, ``R`` the
destination type, ``L`` the lamp type):

- pick_and_place_simple: take an O; go to an R holding it; move the O to an R.
- look_at_obj_in_light: take an O; use an L while holding it.
- pick_clean/heat/cool_then_place_in_recep: take an O; go to the appliance (a sink or bathtub
  basin, a microwave, a fridge) holding it; clean/heat/cool the O; go to an R holding it;
  move the O to an R.
- pick_two_obj_and_place: the simple list twice; the second take must be an O that was not
  already placed.

Milestones are matched in order against the commands the engine executed (only valid
commands count); the rate never decreases, and a won game counts 1.0 (some games are won
before the last milestone, when the object already sits in an R).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agemem_gym.tasks.alfworld.game import base_type

_APPLIANCE = {
    "clean": ("sinkbasin", "bathtubbasin"),
    "heat": ("microwave",),
    "cool": ("fridge",),
}
_PATTERNS = {
    "take": re.compile(r"take (.+) from (.+)"),
    "go": re.compile(r"go to (.+)"),
    "change": re.compile(r"(clean|heat|cool) (.+) with (.+)"),
    "move": re.compile(r"move (.+) to (.+)"),
    "use": re.compile(r"use (.+)"),
}


@dataclass(frozen=True)
class Milestone:
    """One step of progress: ``verb`` (take, go, clean, heat, cool, move, use) on types."""

    verb: str
    types: tuple[str, ...]

    def describe(self) -> str:
        """Short text, e.g. ``"go to sinkbasin/bathtubbasin"``."""
        return f"{self.verb} {'/'.join(self.types)}"


def milestones(task_type: str, object_type: str, target_type: str) -> tuple[Milestone, ...]:
    """The ordered milestones of a task family (see the module docstring)."""
    take = Milestone("take", (object_type,))
    reach = Milestone("go", (target_type,))
    place = Milestone("move", (object_type, target_type))
    if task_type == "look_at_obj_in_light":
        return take, Milestone("use", (target_type,))
    if task_type == "pick_two_obj_and_place":
        return take, reach, place, take, reach, place
    for verb, appliances in _APPLIANCE.items():
        if f"_{verb}_" in task_type:
            change = Milestone(verb, (object_type,))
            return take, Milestone("go", appliances), change, reach, place
    return take, reach, place


@dataclass
class MilestoneTracker:
    """Matches executed commands against :func:`milestones` and reports the rate."""

    plan: tuple[Milestone, ...]
    object_type: str
    reached: int = 0
    holding: str | None = None
    placed: set[str] = field(default_factory=set)

    @property
    def progress(self) -> float:
        """Fraction of milestones reached so far."""
        return self.reached / len(self.plan) if self.plan else 0.0

    def observe(self, command: str) -> None:
        """Record one executed (valid) command."""
        if self.reached < len(self.plan) and self._matches(self.plan[self.reached], command):
            if self.plan[self.reached].verb == "move":
                self.placed.add(command[5:].split(" to ", 1)[0])
            self.reached += 1
        if m := _PATTERNS["take"].fullmatch(command):
            self.holding = m.group(1)
        elif (m := _PATTERNS["move"].fullmatch(command)) and m.group(1) == self.holding:
            self.holding = None

    def _holds_object(self) -> bool:
        return self.holding is not None and base_type(self.holding) == self.object_type

    def _matches(self, ms: Milestone, command: str) -> bool:
        pattern = _PATTERNS["change" if ms.verb in _APPLIANCE else ms.verb]
        m = pattern.fullmatch(command)
        if m is None:
            return False
        if ms.verb == "take":
            return base_type(m.group(1)) in ms.types and m.group(1) not in self.placed
        if ms.verb in ("go", "use"):
            return base_type(m.group(1)) in ms.types and self._holds_object()
        if ms.verb == "move":
            return (base_type(m.group(1)), base_type(m.group(2))) == ms.types
        return m.group(1) == ms.verb and base_type(m.group(2)) in ms.types
