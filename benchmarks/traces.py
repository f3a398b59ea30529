"""Episode traces beside ``episodes.jsonl``: ``traces/<episode_id>.json.gz``, one file each.

A trace is written (to a temporary name, then renamed) before its episode's record is appended,
so a record never points at a missing or half-written trace; a trace without a record (a kill
between the two) is simply overwritten when the episode is played again.

Example:
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> write_trace(run, "assistant-00000", [{"i": 0, "kind": "user_turn"}])
    >>> read_trace(run, "assistant-00000")
    [{'i': 0, 'kind': 'user_turn'}]
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

TRACE_DIR = "traces"


def trace_path(run_dir: Path, episode_id: str) -> Path:
    return Path(run_dir) / TRACE_DIR / f"{episode_id}.json.gz"


def write_trace(run_dir: Path, episode_id: str, events: list[dict[str, Any]]) -> None:
    """Write one episode's events atomically."""
    path = trace_path(run_dir, episode_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(events, f, ensure_ascii=False)
    os.replace(tmp, path)


def read_trace(run_dir: Path, episode_id: str) -> list[dict[str, Any]]:
    """One episode's events; ``FileNotFoundError`` names the file when there is none."""
    path = trace_path(run_dir, episode_id)
    if not path.exists():
        raise FileNotFoundError(f"no trace for episode {episode_id!r}: {path} does not exist")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        events: list[dict[str, Any]] = json.load(f)
    return events
