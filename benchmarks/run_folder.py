"""A run folder's lifecycle: one writer at a time, its settings on file, nothing left that blocks.

:class:`RunFolder` is entered for the whole of a run:

1. it takes an exclusive lock (``fcntl.flock`` on ``.lock``), so a second run into the same
   folder stops at once with :class:`RunFolderBusyError` instead of writing every episode
   twice;
2. with ``overwrite`` it removes the previous run's files; otherwise a folder whose
   ``config.yaml`` has other identity settings is refused, unless that run finished no
   episode (a failed start), whose config is simply replaced;
3. it writes ``config.yaml``;
4. on exit it removes what it wrote when the run finished no episode, so a corrected command
   is not refused, and releases the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from agemem_gym.errors import AgeMemError, ConfigError

logger = logging.getLogger(__name__)

CONFIG = "config.yaml"
EPISODES = "episodes.jsonl"
LOCK = ".lock"
#: What a run writes into its folder; ``overwrite`` removes exactly these.
RUN_FILES = (CONFIG, EPISODES, "episodes.skipped.jsonl", "summary.csv", "traces")


class RunFolderBusyError(AgeMemError, RuntimeError):
    """Another run is writing into the same folder."""


class RunFolder:
    """The folder of one run, locked while the run writes to it.

    Args:
        out: the run folder (made if missing).
        identity: the settings that define the run; resuming needs the same values.
        details: more of the run section of ``config.yaml`` (not compared).
        provenance: the ``provenance`` section of ``config.yaml``.
        overwrite: replace a previous run in ``out`` instead of resuming or refusing it.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
        >>> with RunFolder(out, {"agent": "oracle"}) as folder:
        ...     (out / "config.yaml").exists()
        True
        >>> out.exists()  # no episode finished: nothing is left behind
        False
    """

    def __init__(self, out: Path, identity: dict[str, Any], details: dict[str, Any] | None = None,
                 provenance: dict[str, Any] | None = None, *, overwrite: bool = False):
        self.out = Path(out)
        # as YAML reads it back (tuples become lists), so a resume compares like with like
        self.identity = _plain(identity)
        self.details = _plain(details or {})
        self.provenance = _plain(provenance or {})
        self.overwrite = overwrite
        self._lock_fd: int | None = None
        self._created_folder = False

    @property
    def config_path(self) -> Path:
        return self.out / CONFIG

    @property
    def episodes_path(self) -> Path:
        return self.out / EPISODES

    def __enter__(self) -> RunFolder:
        self._created_folder = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            if self.overwrite:
                self._remove_run_files()
            self._check_previous()
            self._write_config()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if not self.has_episodes():
                self._remove_run_files()
        finally:
            self._release()

    def has_episodes(self) -> bool:
        """Whether the folder holds at least one finished episode."""
        try:
            with self.episodes_path.open("rb") as f:
                return any(b'"episode_id"' in line for line in f)
        except FileNotFoundError:
            return False

    # -- lock ----------------------------------------------------------------------------------
    def _lock(self) -> None:
        path = self.out / LOCK
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunFolderBusyError(
                    f"{self.out} is in use by another run ({holder}); wait for it to finish, "
                    "or choose another --out"
                ) from None
            # A run that just finished may have removed the lock file we opened: lock the
            # file that is there now.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        with contextlib.suppress(FileNotFoundError):
            (self.out / LOCK).unlink()  # while still held: no one can lock the old file
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if self._created_folder:
            with contextlib.suppress(OSError):
                self.out.rmdir()  # only when empty

    # -- config.yaml ---------------------------------------------------------------------------
    def _check_previous(self) -> None:
        if not self.config_path.exists():
            return
        try:
            previous = yaml.safe_load(self.config_path.read_text()) or {}
            run = previous.get("run", {}) if isinstance(previous, dict) else {}
        except yaml.YAMLError:
            run = {}
        old = {k: run.get(k) for k in self.identity} if isinstance(run, dict) else {}
        if old == self.identity:
            return
        if not self.has_episodes():
            logger.info("%s held the config of a run that finished no episode; replacing it",
                        self.out)
            return
        changed = [k for k in self.identity if old.get(k) != self.identity[k]]
        detail = "; ".join(f"{k}: {old.get(k)!r} there, {self.identity[k]!r} now" for k in changed)
        raise ConfigError(
            f"{self.out} holds a run with different {', '.join(changed)} ({detail}); resume with "
            "the same settings, pass --overwrite to replace that run, or choose another --out"
        )

    def _write_config(self) -> None:
        data = {"run": {**self.identity, **self.details}, "provenance": self.provenance}
        tmp = self.config_path.with_name(f"{CONFIG}.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(tmp, self.config_path)

    def _remove_run_files(self) -> None:
        for name in RUN_FILES:
            path = self.out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain
