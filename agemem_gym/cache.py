"""Where the project keeps what it builds once and reuses: converted models, PDDL plans,
ALFWorld's translated games, made HotpotQA golds.

>>> cache_dir("pddl_plans").name
'pddl_plans'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(name: str) -> Path:
    """``$AGEMEM_CACHE_DIR/<name>``, else ``agemem_gym/<name>`` under ``$XDG_CACHE_HOME``
    (default ``~/.cache``). Nothing is created."""
    root = os.environ.get("AGEMEM_CACHE_DIR")
    if root:
        return Path(root) / name
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "agemem_gym" / name
