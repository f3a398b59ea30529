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


class ConfigError(AgeMemError, ValueError):
    """An invalid combination of settings."""
