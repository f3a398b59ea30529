"""Remember TextWorld's parses of grammar snippets instead of parsing them again on every step.

To write each observation and each admissible command, TextWorld's PDDL games parse short
grammar templates ("#look.feedback#", "{r.name}", conditions such as "at(P, r)") with a
TatSu parser, every time, and that parsing is most of an ALFWorld step and of what a reset
costs once the translation is cached. A parse depends only on the text (and the grammar rule
it is parsed as), so :func:`memoized_parsing` answers repeated texts from a process-wide table:
each answer is a deep copy of the first parse, since TextWorld attaches contexts to the parsed
symbols it gets. Everything is restored on the way out.

>>> with memoized_parsing():
...     pass
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Distinct texts kept; the table starts over past this (ALFWorld uses a few hundred).
MAX_ENTRIES = 20_000
_LOCK = threading.RLock()
_PARSES: dict[tuple[str, str, str | None], Any] = {}


def _remember(kind: str, text: str, rule_name: str | None, parse: Any) -> Any:
    key = (kind, text, rule_name)
    found = _PARSES.get(key)
    if found is None:
        if len(_PARSES) >= MAX_ENTRIES:
            _PARSES.clear()
        found = _PARSES[key] = parse()
    return copy.deepcopy(found)


@contextmanager
def memoized_parsing() -> Iterator[None]:
    """Inside, TextWorld's grammar-symbol and conjunctive-query parses are memoized."""
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    with _LOCK:
        parse_symbols = textgen._parse_and_convert
        parse_query = Rule.__dict__["parse_conjunctive_query"]  # the classmethod object

        def symbols(text: Any, rule_name: str | None = None, trace: bool = False, **kw: Any) -> Any:
            if trace or kw or not isinstance(text, str):  # tracing prints: never memoize it
                return parse_symbols(text, rule_name=rule_name, trace=trace, **kw)
            return _remember(
                "symbols", text, rule_name, lambda: parse_symbols(text, rule_name=rule_name)
            )

        def query(cls: type, expr: str) -> Any:
            return _remember("query", expr, None, lambda: parse_query.__func__(cls, expr))

        textgen._parse_and_convert = symbols
        Rule.parse_conjunctive_query = classmethod(query)
        try:
            yield
        finally:
            textgen._parse_and_convert = parse_symbols
            Rule.parse_conjunctive_query = parse_query
