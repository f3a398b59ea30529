"""What a result needs to be reproduced: package versions, git commit, machine, command."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "agemem-gym", "gymnasium", "numpy", "chromadb", "pandas", "torch", "transformers",
    "sentence-transformers", "minigrid", "pddlgym", "pyperplan", "scienceworld", "alfworld",
    "textworld", "datasets",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result may depend on."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(path: Path | None = None) -> str:
    """The commit of the checkout holding ``path`` (``+dirty`` when it has changes)."""
    cwd = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed: the program by its name, not the install path it resolved to.

    >>> command_line(["/opt/env/bin/agemem-bench", "run", "--env", "assistant"])
    'agemem-bench run --env assistant'
    """
    argv = sys.argv if argv is None else argv
    return shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else ""


def provenance() -> dict[str, Any]:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }
