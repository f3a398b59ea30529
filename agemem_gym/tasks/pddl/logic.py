"""Ground actions of a PDDL problem: checking preconditions and listing the valid actions.

pddlgym's ``step`` skips preconditions made only of domain constants (in tyreworld,
``jack-up`` runs without the jack), and its valid-action enumeration drops ground actions that
repeat an object (barman's ``empty-shaker right shaker1 cocktail3 l0 l0``). So the benchmark
checks every action's grounded preconditions itself and lists valid actions with its own
search; pddlgym still computes the successor state.

States here are sets of atoms, ``(predicate, arg, ...)`` tuples of lower-case names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from agemem_gym.errors import ConfigError

Atom = tuple[str, ...]
#: A precondition: (predicate, terms, positive); a term is a parameter index or an object name.
Cond = tuple[str, tuple["int | str", ...], bool]


def literal_atom(literal: Any) -> Atom:
    """A pddlgym literal as an atom, e.g. ``("at", "ball1", "rooma")``."""
    return (literal.predicate.name.lower(), *(v.name.lower() for v in literal.variables))


def atom_text(atom: Atom) -> str:
    """An atom in PDDL syntax, e.g. ``"(at ball1 rooma)"``."""
    return "(" + " ".join(atom) + ")"


@dataclass(frozen=True)
class Operator:
    """A lifted operator: typed parameters and its preconditions."""

    name: str
    param_names: tuple[str, ...]
    param_types: tuple[str, ...]
    preconds: tuple[Cond, ...]

    @property
    def arity(self) -> int:
        """Number of parameters."""
        return len(self.param_names)

    def signature(self) -> str:
        """The action's syntax, e.g. ``"pick <obj> <room> <gripper>"``."""
        return " ".join([self.name, *(f"<{p.lstrip('?')}>" for p in self.param_names)])


def _conditions(preconds: Any) -> list[Any]:
    literals = getattr(preconds, "literals", None)
    return list(literals) if literals is not None else [preconds]


def _effect_predicate(effect: Any) -> str:
    literal = effect.inverted_anti if getattr(effect, "is_anti", False) else effect
    return str(literal.predicate.name).lower()


def _lift_operator(op: Any) -> Operator:
    """Convert a pddlgym operator, refusing what this module cannot check."""
    params = [p.name for p in op.params]
    conds: list[Cond] = []
    for lit in _conditions(op.preconds):
        if not hasattr(lit, "predicate"):
            raise ConfigError(
                f"operator {op.name!r}: only conjunctions of literals are supported as "
                f"preconditions, got {type(lit).__name__}"
            )
        terms = tuple(
            params.index(v.name) if v.name in params else v.name.lower() for v in lit.variables
        )
        positive = not getattr(lit, "is_negative", False)
        conds.append((lit.predicate.name.lower(), terms, positive))
    return Operator(
        name=op.name.lower(),
        param_names=tuple(p.lower() for p in params),
        param_types=tuple(str(p.var_type) for p in op.params),
        preconds=tuple(conds),
    )


class GroundModel:
    """A problem's operators and typed objects, for checking and listing ground actions.

    Args:
        domain: a pddlgym ``PDDLDomainParser`` (``operators_as_actions=True``).
        objects: the problem's objects (pddlgym ``TypedEntity``), constants included.
    """

    def __init__(self, domain: Any, objects: Iterable[Any]):
        self.operators: dict[str, Operator] = {
            op.name.lower(): _lift_operator(op) for op in domain.operators.values()
        }
        parents: Mapping[str, Iterable[str]] = domain.type_to_parent_types or {}
        self.object_types: dict[str, str] = {}
        self.objects_of_type: dict[str, list[str]] = defaultdict(list)
        for obj in sorted(objects, key=lambda o: o.name):
            name, typ = obj.name.lower(), str(obj.var_type)
            if name in self.object_types:
                continue
            self.object_types[name] = typ
            for t in parents.get(typ, {typ}):
                self.objects_of_type[t].append(name)
        self._bound_at = {name: self._schedule(op) for name, op in self.operators.items()}
        changed = {
            _effect_predicate(e)
            for op in domain.operators.values()
            for e in _conditions(op.effects)
        }
        self.static_predicates = frozenset(
            name.lower() for name in domain.predicates if name.lower() not in changed
        ) - set(self.operators)

    def object_kinds(self, state: frozenset[Atom]) -> dict[str, tuple[str, ...]]:
        """Each object's type plus the static one-place predicates true of it in ``state``.

        In untyped domains this tells balls from rooms (gripper's ``ball`` and ``room``).
        """
        kinds: dict[str, list[str]] = {name: [typ] for name, typ in self.object_types.items()}
        for atom in sorted(state):
            if len(atom) == 2 and atom[0] in self.static_predicates and atom[1] in kinds:
                kinds[atom[1]].append(atom[0])
        return {name: tuple(kind) for name, kind in kinds.items()}

    @staticmethod
    def _schedule(op: Operator) -> list[list[Cond]]:
        """For each parameter depth, the preconditions that become fully bound there."""
        stages: list[list[Cond]] = [[] for _ in range(op.arity + 1)]
        for cond in op.preconds:
            idx = [t for t in cond[1] if isinstance(t, int)]
            stages[max(idx) + 1 if idx else 0].append(cond)
        return stages

    @staticmethod
    def _ground(cond: Cond, args: tuple[str, ...] | list[str]) -> Atom:
        pred, terms, _ = cond
        return (pred, *(args[t] if isinstance(t, int) else t for t in terms))

    def check(self, name: str, args: tuple[str, ...], state: frozenset[Atom]) -> str | None:
        """Why the ground action ``name args`` is invalid in ``state``, or None if it is valid."""
        op = self.operators.get(name)
        if op is None:
            return f"there is no action called '{name}'"
        if len(args) != op.arity:
            return f"'{name}' takes {op.arity} objects ({op.signature()}), not {len(args)}"
        for arg, typ in zip(args, op.param_types, strict=True):
            if arg not in self.object_types:
                return f"there is no object called '{arg}'"
            if arg not in self.objects_of_type.get(typ, ()):
                return f"'{arg}' is not a {typ}"
        for cond in op.preconds:
            atom = self._ground(cond, args)
            if (atom in state) != cond[2]:
                need = "true" if cond[2] else "false"
                return f"it needs {atom_text(atom)} to be {need}"
        return None

    def iter_valid(self, state: frozenset[Atom]) -> Iterator[tuple[str, tuple[str, ...]]]:
        """Every valid ground action in ``state``, by operator name then argument order."""
        for name in sorted(self.operators):
            op = self.operators[name]
            stages = self._bound_at[name]
            if not all((self._ground(c, ()) in state) == c[2] for c in stages[0]):
                continue
            yield from ((name, args) for args in self._extend(op, stages, state, []))

    def _extend(
        self, op: Operator, stages: list[list[Cond]], state: frozenset[Atom], args: list[str]
    ) -> Iterator[tuple[str, ...]]:
        depth = len(args)
        if depth == op.arity:
            yield tuple(args)
            return
        for obj in self.objects_of_type.get(op.param_types[depth], ()):
            args.append(obj)
            if all((self._ground(c, args) in state) == c[2] for c in stages[depth + 1]):
                yield from self._extend(op, stages, state, args)
            args.pop()

    def valid_actions(self, state: frozenset[Atom]) -> list[tuple[str, tuple[str, ...]]]:
        """All valid ground actions in ``state`` (see :meth:`iter_valid`)."""
        return list(self.iter_valid(state))

    def has_valid_action(self, state: frozenset[Atom]) -> bool:
        """Whether any action is valid in ``state``."""
        return next(self.iter_valid(state), None) is not None
