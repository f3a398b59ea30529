"""Expert plans for the PDDL benchmark, from the pyperplan planner.

Each search runs in a child Python process with a fixed ``PYTHONHASHSEED``: pyperplan iterates
over sets of strings, so its plans (and whether greedy search succeeds at all) depend on the
hash seed. A fixed seed makes plans reproducible, and the child process lets a time limit stop a
search that runs too long. Searches are tried in order (a portfolio) until one finds a plan:

1. greedy best-first search with the FF heuristic and preferred operators,
2. greedy best-first search with the additive heuristic,
3. greedy best-first search with the landmark heuristic.

Plans for a problem's initial state are cached on disk (``cache_dir``), keyed by the contents
of the domain and problem files. Replanning from another state passes that state's facts to
the child, which replaces the grounded task's initial state with them.

This file also runs as a script (the child process): it reads one JSON request on stdin and
writes one JSON reply on stdout. As a script it imports nothing but the standard library and
pyperplan.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agemem_gym.cache import cache_dir

logger = logging.getLogger(__name__)

#: The searches tried in order, with their time limits in seconds.
PORTFOLIO: tuple[tuple[str, float], ...] = (
    ("gbf-hff-pref", 60.0),
    ("gbf-hadd", 120.0),
    ("gbf-lm", 180.0),
)
#: Bump when the planner's configuration changes, so cached plans are recomputed.
PLANNER_VERSION = "pyperplan-2.1/seed0/v1"
HASH_SEED = "0"


class PlannerError(RuntimeError):
    """No search of the portfolio found a plan."""


def default_cache_dir() -> Path:
    """The plan cache: ``$AGEMEM_CACHE_DIR/pddl_plans``, else under ``$XDG_CACHE_HOME``/~/.cache."""
    return cache_dir("pddl_plans")


def _cache_key(domain_file: Path, problem_file: Path) -> str:
    digest = hashlib.sha256(PLANNER_VERSION.encode())
    for path in (domain_file, problem_file):
        digest.update(b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


def _run_child(request: dict, timeout: float) -> list[str] | None:
    """Run one search in a child process; None when it fails or runs out of time."""
    env = dict(os.environ, PYTHONHASHSEED=HASH_SEED)
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve())],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        logger.info("pyperplan %s ran past %.0f s", request["search"], timeout)
        return None
    if proc.returncode != 0:
        logger.warning("pyperplan %s failed: %s", request["search"], proc.stderr[-500:])
        return None
    reply = json.loads(proc.stdout)
    return reply["plan"]


def find_plan(
    domain_file: Path,
    problem_file: Path,
    state: Sequence[str] | None = None,
    cache_dir: Path | None = None,
    portfolio: Sequence[tuple[str, float]] = PORTFOLIO,
) -> list[str]:
    """A plan from ``state`` (default: the problem's initial state) to the problem's goal.

    Args:
        domain_file: the PDDL domain file.
        problem_file: the PDDL problem file.
        state: the true facts to plan from, as ``"(pred arg ...)"`` strings; None plans from
            the problem's initial state (and uses the on-disk cache).
        cache_dir: where plans for initial states are cached; None disables the cache.
        portfolio: ``(search name, time limit in seconds)`` pairs tried in order.

    Returns:
        The plan as lower-case actions without parentheses, e.g. ``"pick ball1 rooma left"``;
        empty when ``state`` already satisfies the goal.

    Raises:
        PlannerError: no search found a plan within its time limit.
        MissingExtraError: pyperplan is not installed.
    """
    if importlib.util.find_spec("pyperplan") is None:
        from agemem_gym.errors import MissingExtraError

        raise MissingExtraError("expert plans (pyperplan)", "pddl")
    cache_file = None
    if state is None and cache_dir is not None:
        cache_file = Path(cache_dir) / f"{_cache_key(domain_file, problem_file)}.json"
        if cache_file.is_file():
            return list(json.loads(cache_file.read_text())["plan"])
    request = {"domain": str(domain_file), "problem": str(problem_file), "state": state}
    for search, timeout in portfolio:
        plan = _run_child(dict(request, search=search), timeout)
        if plan is not None:
            break
    else:
        raise PlannerError(f"pyperplan found no plan for {problem_file} with {list(portfolio)}")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"plan": plan, "search": search, "problem": problem_file.name}))
        tmp.replace(cache_file)
    return plan


def _search_child(request: dict) -> list[str] | None:
    """The child's side: parse, ground, optionally replace the initial state, search."""
    from pyperplan.heuristics.landmarks import LandmarkHeuristic
    from pyperplan.heuristics.relaxation import hAddHeuristic, hFFHeuristic
    from pyperplan.planner import _ground, _parse
    from pyperplan.search.a_star import greedy_best_first_search

    logging.disable(logging.INFO)
    task = _ground(_parse(request["domain"], request["problem"]))
    if request.get("state") is not None:
        task.initial_state = frozenset(request["state"]) & task.facts
    search = request["search"]
    if search == "gbf-hff-pref":
        solution = greedy_best_first_search(task, hFFHeuristic(task), use_relaxed_plan=True)
    elif search == "gbf-hadd":
        solution = greedy_best_first_search(task, hAddHeuristic(task))
    elif search == "gbf-lm":
        solution = greedy_best_first_search(task, LandmarkHeuristic(task))
    else:
        raise ValueError(f"unknown search {search!r}")
    if solution is None:
        return None
    return [op.name.strip("()").lower() for op in solution]


if __name__ == "__main__":
    _plan = _search_child(json.loads(sys.stdin.read()))
    if _plan is None:
        sys.exit(3)
    sys.stdout.write(json.dumps({"plan": _plan}))
