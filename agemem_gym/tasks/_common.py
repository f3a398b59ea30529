"""What the benchmarks share: finding their data, wording turns, stage content, the meta action.

- :func:`given_path` / :func:`find_data`: a benchmark's data is ``data=``, else an environment
  variable, else (AgentBoard files) a copy fetched from the Hugging Face hub and cached there;
- :func:`choose` / :func:`say`: one option or template drawn with the episode's generator;
- :func:`memory_after`: what an ideal memory holds after a list of stage-1 facts;
- :class:`StageContent`: the stage-1/2 content a benchmark's ``stages`` module builds;
- :func:`is_check_action`: the ``check valid actions`` meta action every engine understands.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from agemem_gym.errors import DataNotFoundError, MissingExtraError
from agemem_gym.tasks.base import Fact

T = TypeVar("T")

#: AgentBoard's data on the Hugging Face hub: ``data/<task>/test.jsonl`` per task.
AGENTBOARD_REPO = "hkust-nlp/agentboard"

#: The meta action that lists the valid actions without acting, and the ways to say it.
CHECK_ACTION = "check valid actions"
_CHECK_WORDS = frozenset({
    CHECK_ACTION, "check valid action", "check available actions", "check available action",
    "valid actions", "available actions", "list actions",
})


# -- data --------------------------------------------------------------------------------------
def given_path(data: str | os.PathLike[str] | None, env_var: str) -> tuple[Path | None, str]:
    """The path a user gave: ``data``, else ``$env_var``; and where it came from, for errors.

    >>> given_path("x.json", "UNSET_VARIABLE")
    (PosixPath('x.json'), 'data=')
    """
    if data is not None:
        return Path(data).expanduser(), "data="
    value = os.environ.get(env_var)
    if value:
        return Path(value).expanduser(), f"${env_var}="
    return None, ""


def find_data(
    data: str | os.PathLike[str] | None,
    *,
    benchmark: str,
    env_var: str,
    layout: Sequence[str],
    expected: str,
    hub_file: str | None = None,
    accept: Callable[[Path], bool] = Path.is_file,
) -> Path:
    """A benchmark's data: the first of ``root / entry`` for ``entry`` in ``layout`` (``""`` is
    the root itself) that ``accept`` takes, with ``root`` = ``data``, else ``$env_var``, else
    AgentBoard's ``data/<hub_file>`` from the hub (fetched on first use, then cached).

    Raises:
        DataNotFoundError: nothing given and no hub copy, or nothing usable at the path given.
    """
    root, source = given_path(data, env_var)
    how_to = f"pass data=PATH ({expected}) or set {env_var}=PATH"
    if root is None:
        if hub_file is None:
            raise DataNotFoundError(f"{benchmark} needs its data: {how_to}")
        return agentboard_file(hub_file, how_to=f"{benchmark} needs its data: {how_to}")
    for entry in layout:
        candidate = root / entry if entry else root
        if accept(candidate):
            return candidate
    raise DataNotFoundError(
        f"{benchmark}: nothing usable at {source}{str(root)!r}; expected {expected}"
    )


def agentboard_file(name: str, *, how_to: str) -> Path:
    """AgentBoard's ``data/<name>`` from the Hugging Face hub, cached by ``huggingface_hub``
    (``$HF_HUB_CACHE``; with ``HF_HUB_OFFLINE=1`` only the cache is read).

    Raises:
        MissingExtraError: ``huggingface_hub`` is not installed.
        DataNotFoundError: the file could not be fetched (no network, no cached copy).
    """
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise MissingExtraError("AgentBoard data from the Hugging Face hub", "hotpotqa") from e
    path = f"data/{name}"
    try:
        return Path(hf_hub_download(AGENTBOARD_REPO, path, repo_type="dataset"))
    except Exception as e:  # noqa: BLE001 - network, cache and hub errors all mean "no data"
        raise DataNotFoundError(
            f"could not fetch {path} of the hub dataset {AGENTBOARD_REPO} "
            f"({type(e).__name__}); {how_to}"
        ) from e


# -- wording -----------------------------------------------------------------------------------
def choose(rng: np.random.Generator, options: Sequence[T]) -> T:
    """One of ``options``, drawn with ``rng``.

    >>> choose(np.random.default_rng(0), ["a", "b", "c"]) in ("a", "b", "c")
    True
    """
    return options[int(rng.integers(len(options)))]


def say(rng: np.random.Generator, templates: Sequence[str], **slots: object) -> str:
    """One of ``templates`` drawn with ``rng``, its ``{slots}`` filled.

    >>> say(np.random.default_rng(0), ["the {x} is here"], x="key")
    'the key is here'
    """
    return choose(rng, templates).format(**slots)


# -- stage content -----------------------------------------------------------------------------
def memory_after(facts: Iterable[Fact]) -> tuple[str, ...]:
    """What an ideal memory holds after ``facts``: adds and updates by key, minus deletes.

    >>> memory_after([Fact("m", "a=1", "a"), Fact("m", "a=2", "a", "update"),
    ...               Fact("m", "b=1", "b"), Fact("m", "", "b", "delete")])
    ('a=2',)
    """
    memory: dict[str, str] = {}
    for fact in facts:
        if fact.op in ("add", "update"):
            memory[fact.key] = fact.content
        elif fact.op == "delete":
            memory.pop(fact.key, None)
    return tuple(memory.values())


@dataclass(frozen=True)
class StageContent:
    """The stage-1 turns, stage-2 messages and the memory an ideal agent ends stage 1 with."""

    stage1: tuple[Fact, ...]
    distractors: tuple[str, ...]
    supporting_facts: tuple[str, ...]


# -- the meta action ---------------------------------------------------------------------------
def is_check_action(text: str) -> bool:
    """Whether ``text`` asks for the valid actions (case, quotes and a full stop ignored).

    >>> is_check_action(" 'Check valid actions.' "), is_check_action("go north")
    (True, False)
    """
    words = " ".join(text.strip().strip("\"'`").strip().rstrip(".!").lower().split())
    return words in _CHECK_WORDS
