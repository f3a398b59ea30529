"""``episodes.jsonl``: one JSON object per finished episode, appended, flushed and synced.

On open, :class:`EpisodeLog` keeps every valid record wherever a bad line is: a line that is
not JSON, JSON that is not an episode record (``{}``, a list, a record without a text
``episode_id``), a second record of the same episode, or a partial last line from a killed
write. Skipped lines are moved to ``episodes.skipped.jsonl`` beside the log (nothing is thrown
away), listed in :attr:`EpisodeLog.skipped` and reported in one warning, so a resumed run
never duplicates or loses a finished episode.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedLine:
    """A line of the log that is not a usable episode record."""

    line: int
    """1-based line number in the file as it was found."""
    reason: str
    text: str
    """The line as found (decoded leniently), without its newline."""


class EpisodeLog:
    """Append-only episode records with the set of finished episode ids.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "episodes.jsonl"
        >>> log = EpisodeLog(path)
        >>> log.append({"episode_id": "a", "metrics": {"score": 1.0}})
        >>> _ = path.open("a").write('{}\\n{"episode_id": "b"}\\n{"episode_id": "c", "metr')
        >>> reopened = EpisodeLog(path)
        >>> sorted(reopened.done), [s.reason for s in reopened.skipped]
        (['a', 'b'], ['not an episode record (no text "episode_id")', 'partial last line (a killed write)'])
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []
        self.skipped: list[SkippedLine] = []
        self._done: set[str] = set()
        self._repair_and_load()

    @property
    def done(self) -> set[str]:
        """Ids of the finished episodes."""
        return set(self._done)

    @property
    def skipped_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.skipped.jsonl")

    def _repair_and_load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        for number, raw in enumerate(lines, start=1):
            complete = raw.endswith(b"\n")
            reason = self._load_line(raw)
            if reason is not None:
                if not complete and number == len(lines):
                    reason = "partial last line (a killed write)"
                text = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
                self.skipped.append(SkippedLine(number, reason, text))
        if self.skipped or not data.endswith(b"\n") and data:
            self._rewrite()

    def _load_line(self, raw: bytes) -> str | None:
        """Keep the record on ``raw``; return why not when it is not usable."""
        if not raw.strip():
            return "empty line"
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
            return "not valid JSON"
        if not isinstance(record, dict) or not isinstance(record.get("episode_id"), str):
            return 'not an episode record (no text "episode_id")'
        if record["episode_id"] in self._done:
            return f"a second record of episode {record['episode_id']!r} (the first is kept)"
        self._done.add(record["episode_id"])
        self.records.append(record)
        return None

    def _rewrite(self) -> None:
        """Write the kept records back (atomically) and set the skipped lines aside."""
        if self.skipped:
            with self.skipped_path.open("a", encoding="utf-8") as f:
                for s in self.skipped:
                    f.write(json.dumps({"line": s.line, "reason": s.reason, "text": s.text}) + "\n")
            reasons: dict[str, int] = {}
            for s in self.skipped:
                key = s.reason.split(" (")[0] if s.reason.startswith("a second") else s.reason
                reasons[key] = reasons.get(key, 0) + 1
            logger.warning(
                "%s: kept %d episode records, skipped %d lines (%s; lines %s); they are in %s",
                self.path, len(self.records), len(self.skipped),
                ", ".join(f"{n} {r}" for r, n in reasons.items()),
                ", ".join(str(s.line) for s in self.skipped[:20]), self.skipped_path)
        tmp = self.path.with_name(f"{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for record in self.records:
                f.write(json.dumps(record, default=_jsonable) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=_jsonable) + "\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        loaded = json.loads(line)
        self.records.append(loaded)
        if isinstance(loaded.get("episode_id"), str):
            self._done.add(loaded["episode_id"])


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
