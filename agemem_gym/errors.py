"""The project's errors. Messages say what was expected, what was given, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AgeMemError(Exception):
    """Base class of every error this package raises on purpose."""


class UnknownNameError(AgeMemError, KeyError):
    """A name (benchmark, agent, encoder, ...) that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.message = f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class MissingExtraError(AgeMemError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(
            f"{what} needs the optional extra [{extra}]: pip install 'agemem-gym[{extra}]'"
        )


class DataNotFoundError(AgeMemError, FileNotFoundError):
    """A benchmark's data files are missing or unreadable."""


class NoTrainingDataError(DataNotFoundError):
    """A benchmark has no training tasks at hand (training never falls back to evaluation)."""


class ConfigError(AgeMemError, ValueError):
    """An invalid combination of settings."""


class StoreUnavailableError(AgeMemError, ConnectionError):
    """The memory store (a Chroma server) is down, not answering, or went away."""

    def __init__(self, location: str, operation: str, seconds: float, tries: int,
                 cause: BaseException | None = None):
        self.location, self.operation, self.seconds, self.tries = location, operation, seconds, tries
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else "no answer"
        super().__init__(
            f"the memory store at {location} did not answer {operation} ({tries} "
            f"{'try' if tries == 1 else 'tries'} in {seconds:.1f} s; {reason}). Check that the "
            "Chroma server is running and reachable, or raise store_timeout / store_retries (a "
            "benchmark run keeps its finished episodes: rerun the same command to resume)"
        )
