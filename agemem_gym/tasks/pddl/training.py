"""The PDDL training pool: problems of the evaluation domains that are not evaluation problems.

Problems come from ``train_data`` (a folder with ``<domain>/*.pddl`` or ``pddl/<domain>/*.pddl``
for some of the evaluation domains), else from pddlgym's own problem sets whose domain file is
the evaluation domain's, word for word (for AgentBoard's four domains that is gripper alone:
pddlgym's ``gripper``, ``gripper_test``, ``manygripper`` and ``manygripper_test``). A problem
whose text (problem name aside) equals an evaluation problem's is left out, and so is one more
than 2.5 times as long as the longest evaluation problem of its domain (pddlgym's larger sets
take the expert planner minutes, and the evaluation set has nothing that size).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_PROBLEM_NAME = re.compile(r"\(\s*problem\s+[^)\s]*\s*\)")


@dataclass(frozen=True)
class TrainingProblem:
    """One training problem: its domain, folder and index in that folder's sorted files."""

    domain: str
    problem_dir: Path
    problem_index: int
    problem_file: Path


def normalized(path: Path) -> str:
    """A PDDL file's text without case, spacing, comments or the problem's name."""
    lines = (line.split(";", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    text = " ".join(" ".join(lines).lower().split())
    return _PROBLEM_NAME.sub("(problem)", text)


def _pddlgym_folders(domain_file: Path) -> list[Path]:
    """pddlgym's bundled problem folders whose domain file equals ``domain_file``."""
    try:
        import pddlgym
    except ImportError:
        return []
    root = Path(pddlgym.__file__).parent / "pddl"
    wanted = normalized(domain_file)
    folders: list[Path] = []
    for candidate in sorted(root.glob("*.pddl")):
        if normalized(candidate) == wanted:
            pair = (root / candidate.stem, root / f"{candidate.stem}_test")
            folders.extend(folder for folder in pair if folder.is_dir())
    return folders

def _given_folders(train_data: Path, domain: str) -> list[Path]:
    return [f for f in (train_data / domain, train_data / "pddl" / domain) if f.is_dir()]


def find_training_problems(
    pddl_dir: Path, domains: Sequence[str], evaluation: Iterable[Path], train_data: Path | None
) -> list[TrainingProblem]:
    """Training problems of ``domains`` (see the module docstring), in a fixed order."""
    evaluation = list(evaluation)
    held_out = {normalized(path) for path in evaluation}
    found: list[TrainingProblem] = []
    for domain in domains:
        longest = max(
            (len(normalized(p)) for p in evaluation if p.parent.name == domain), default=0
        )
        if train_data is not None:
            folders = _given_folders(train_data, domain)
        else:
            folders = _pddlgym_folders(pddl_dir / f"{domain}.pddl")
        for folder in folders:
            files = sorted(folder.glob("*.pddl"))  # pddlgym's order: fix_problem_index(i)
            found.extend(
                TrainingProblem(domain, folder, i, path)
                for i, path in enumerate(files)
                if normalized(path) not in held_out and len(normalized(path)) <= 2.5 * longest
            )
    return found
