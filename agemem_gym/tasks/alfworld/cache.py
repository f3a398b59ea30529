"""A disk cache of the work TextWorld repeats on every ALFWorld reset.

TextWorld's ``PddlEnv`` translates the game's PDDL problem into Fast Downward's SAS format
twice (once plain, once optimised for replanning) on load *and on every reset*, and parses
the game's text grammar on load. Together that is ~1 s of a reset on an idle machine and
several seconds on a busy one, and the results depend only on the game file's text and the
package versions. :class:`GameCache` keeps them on disk, one file per game, named by a hash
of the game file's bytes and the versions of alfworld, textworld, fast-downward and Python.

While :meth:`GameCache.serving` is active, ``fast_downward.pddl2sas`` and TextWorld's
``GameLogic`` are replaced by functions that answer from the cache and compute (and store)
what is missing; both are restored on the way out. Every answer is a fresh unpickled copy,
so nothing the game mutates is shared between resets.

A cache file holds a magic line, the SHA-256 of its payload, and the payload (zlib-compressed
pickle). A file that fails any check (truncated, corrupted, another format, other versions,
another game) is logged, ignored and rewritten; a directory that cannot be written only
disables writing. The files are pickles: keep the directory private to the user, as any
cache of Python objects.

>>> import tempfile
>>> cache = GameCache(tempfile.mkdtemp())
>>> cache.stats.computed, cache.stats.served
(0, 0)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import pickle
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agemem_gym.cache import cache_dir

logger = logging.getLogger(__name__)

#: Bump when what is cached, or how, changes: older files are then ignored and rewritten.
CACHE_FORMAT = 1
_MAGIC = b"agemem-alfworld-game-cache\n"
_DIGEST_LEN = 64
#: Patching module attributes is process-wide: one serving block at a time.
_LOCK = threading.RLock()


def default_cache_dir() -> Path:
    """``$AGEMEM_CACHE_DIR/alfworld_games``, else ``agemem_gym/alfworld_games`` under
    ``$XDG_CACHE_HOME`` (default ``~/.cache``)."""
    return cache_dir("alfworld_games")


def package_versions() -> str:
    """The versions a cached translation depends on, as one line."""
    parts = []
    for dist in ("alfworld", "textworld", "fast_downward_textworld"):
        try:
            parts.append(f"{dist}={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{dist}=none")
    parts.append(f"python={sys.version_info.major}.{sys.version_info.minor}")
    parts.append(f"format={CACHE_FORMAT}")
    return " ".join(parts)


def _digest(*texts: str) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8") + b"\0")
    return h.hexdigest()[:32]


def _restore(cls: Any, state: dict[str, Any]) -> Any:
    """An instance of ``cls`` with attributes ``state``, without running ``__init__``."""
    obj = object.__new__(cls)
    obj.__dict__.update(state)
    return obj


@dataclass
class CacheStats:
    """Counters of one :class:`GameCache` (for tests and measurements).

    Attributes:
        served: results answered from the cache (memory or disk).
        computed: results computed because the cache lacked them.
        files_read: cache files read and accepted.
        rebuilt: cache files rejected (corrupted, stale) and rebuilt.
        files_written: cache files written.
    """

    served: int = 0
    computed: int = 0
    files_read: int = 0
    rebuilt: int = 0
    files_written: int = 0


@dataclass
class _Entry:
    """The cached results of one game file: item key -> pickled result."""

    path: Path
    game_sha: str
    items: dict[str, bytes] = field(default_factory=dict)
    dirty: bool = False


class GameCache:
    """Per-game cache of ALFWorld's PDDL translations and parsed grammar, on disk.

    Args:
        directory: where the files go (default :func:`default_cache_dir`); created on the
            first write.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.versions = package_versions()
        self.stats = CacheStats()
        self._entry: _Entry | None = None
        self._writable = True

    def path_for(self, game_file: str | os.PathLike[str]) -> Path:
        """The cache file of ``game_file`` (named by its bytes and the package versions)."""
        return self.directory / f"{self._game_sha(Path(game_file))}.pkl.z"

    def _game_sha(self, game_file: Path) -> str:
        h = hashlib.sha256(self.versions.encode() + b"\0")
        h.update(game_file.read_bytes())
        return h.hexdigest()[:40]

    @contextmanager
    def serving(self, game_file: str | os.PathLike[str]) -> Iterator[None]:
        """Inside, TextWorld's translations and grammar parsing of ``game_file`` use the cache.

        Raises:
            OSError: the game file cannot be read (as loading it would).
        """
        import fast_downward
        from textworld.envs.pddl import logic as pddl_logic

        with _LOCK:
            self._select(Path(game_file))
            translate, game_logic = fast_downward.pddl2sas, pddl_logic.GameLogic

            def cached_pddl2sas(
                domain: str, problem: str, verbose: bool = False, optimize: bool = False
            ) -> Any:
                key = f"sas:{'replan' if optimize else 'plain'}:{_digest(domain, problem)}"
                return self._get(
                    key, lambda: translate(domain, problem, verbose=verbose, optimize=optimize)
                )

            def cached_game_logic(domain: str, grammar: str) -> Any:
                # stored as its attributes: pickle finds a class by its module name, patched here
                key = f"logic:{_digest(domain, grammar)}"
                return self._get(
                    key,
                    lambda: game_logic(domain=domain, grammar=grammar),
                    encode=lambda logic: dict(vars(logic)),
                    decode=lambda state: _restore(game_logic, state),
                )

            fast_downward.pddl2sas, pddl_logic.GameLogic = cached_pddl2sas, cached_game_logic
            try:
                yield
            finally:
                fast_downward.pddl2sas, pddl_logic.GameLogic = translate, game_logic
                self._flush()

    # ------------------------------------------------------------------ items
    def _get(
        self,
        key: str,
        compute: Callable[[], Any],
        encode: Callable[[Any], Any] = lambda value: value,
        decode: Callable[[Any], Any] = lambda state: state,
    ) -> Any:
        """The cached result for ``key`` (via ``decode``), else ``compute()`` stored via ``encode``."""
        assert self._entry is not None
        blob = self._entry.items.get(key)
        if blob is not None:
            try:
                value = decode(pickle.loads(blob))
            except Exception as e:  # noqa: BLE001 - a bad item is recomputed, never fatal
                logger.warning("ALFWorld cache item %s unreadable (%r): recomputing", key, e)
            else:
                self.stats.served += 1
                return value
        value = compute()
        self.stats.computed += 1
        try:
            # pickled before the caller can mutate it (PddlState adds types to the GameLogic)
            self._entry.items[key] = pickle.dumps(encode(value), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - an uncacheable result is still a result
            logger.warning("ALFWorld cache cannot store %s (%r): not cached", key, e)
        else:
            self._entry.dirty = True
        return value

    # ------------------------------------------------------------------ files
    def _select(self, game_file: Path) -> None:
        """Make ``game_file``'s entry current: kept in memory, else read, else empty."""
        game_sha = self._game_sha(game_file)
        if self._entry is not None and self._entry.game_sha == game_sha:
            return
        path = self.directory / f"{game_sha}.pkl.z"
        items = self._read(path, game_sha)
        self._entry = _Entry(path, game_sha, items or {})

    def _read(self, path: Path, game_sha: str) -> dict[str, bytes] | None:
        """The items of a valid cache file; None when absent, and when invalid (logged)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            logger.warning("cannot read the ALFWorld cache file %s (%r): rebuilding it", path, e)
            self.stats.rebuilt += 1
            return None
        try:
            items = self._decode(raw, game_sha)
        except Exception as e:  # noqa: BLE001 - any defect means: rebuild
            logger.warning("ALFWorld cache file %s is invalid (%s): rebuilding it", path, e)
            self.stats.rebuilt += 1
            return None
        self.stats.files_read += 1
        return items

    def _decode(self, raw: bytes, game_sha: str) -> dict[str, bytes]:
        head = len(_MAGIC)
        if not raw.startswith(_MAGIC):
            raise ValueError("not a cache file of this format")
        digest, payload = raw[head : head + _DIGEST_LEN], raw[head + _DIGEST_LEN :]
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            raise ValueError("checksum mismatch (truncated or corrupted)")
        record = pickle.loads(zlib.decompress(payload))
        if not isinstance(record, dict):
            raise ValueError(f"expected a dict record, found {type(record).__name__}")
        if record.get("versions") != self.versions or record.get("game_sha") != game_sha:
            raise ValueError(
                f"stale: written for {record.get('versions')!r}, game {record.get('game_sha')!r}"
            )
        items = record.get("items")
        if not isinstance(items, dict) or not all(isinstance(v, bytes) for v in items.values()):
            raise ValueError("items are not a dict of pickled results")
        return items

    def _flush(self) -> None:
        """Write the current entry if it gained items (atomically: a temp file, then rename)."""
        entry = self._entry
        if entry is None or not entry.dirty or not self._writable:
            return
        record = {"versions": self.versions, "game_sha": entry.game_sha, "items": entry.items}
        payload = zlib.compress(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
        digest = hashlib.sha256(payload).hexdigest().encode()
        tmp = entry.path.with_name(f"{entry.path.name}.tmp{os.getpid()}.{threading.get_ident()}")
        try:
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(_MAGIC + digest + payload)
            tmp.replace(entry.path)
        except OSError as e:
            logger.warning(
                "cannot write the ALFWorld cache in %s (%r): caching in memory only",
                self.directory,
                e,
            )
            self._writable = False
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            return
        entry.dirty = False
        self.stats.files_written += 1
