"""``episodes.jsonl``: one JSON object per finished episode, appended, flushed and synced.

A run killed mid-write leaves at most a partial last line; :class:`EpisodeLog` drops it on
open, so a resumed run never duplicates or loses a finished episode.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class EpisodeLog:
    """Append-only episode records with the set of finished episode ids.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "episodes.jsonl"
        >>> log = EpisodeLog(path)
        >>> log.append({"episode_id": "a", "metrics": {"score": 1.0}})
        >>> _ = path.open("a").write('{"episode_id": "b", "metr')  # a killed write
        >>> sorted(EpisodeLog(path).done)
        ['a']
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []
        self._repair_and_load()

    @property
    def done(self) -> set[str]:
        return {r["episode_id"] for r in self.records}

    def _repair_and_load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good_end = 0
        seen: set[str] = set()
        position = 0
        for line in data.splitlines(keepends=True):
            position += len(line)
            if not line.endswith(b"\n"):
                break  # a partial write from a killed run
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if record["episode_id"] not in seen:
                seen.add(record["episode_id"])
                self.records.append(record)
            good_end = position
        if good_end < len(data):
            logger.warning("dropping %d bytes of a partial record at the end of %s",
                           len(data) - good_end, self.path)
            with self.path.open("r+b") as f:
                f.truncate(good_end)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=_jsonable) + "\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records.append(json.loads(line))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
