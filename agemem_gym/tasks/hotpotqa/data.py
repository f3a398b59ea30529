"""Loading HotpotQA (distractor setting) from a local file or the Hugging Face hub.

Two record layouts are accepted and converted to :class:`HotpotExample`:

- the original JSON release (``hotpot_dev_distractor_v1.json``, ``hotpot_train_v1.1.json``):
  ``_id``, ``question``, ``answer``, ``supporting_facts`` as ``[[title, sent_idx], ...]`` and
  ``context`` as ``[[title, [sentence, ...]], ...]``;
- the hub layout (``hotpotqa/hotpot_qa``, config ``distractor``): ``id``, ``supporting_facts``
  as ``{"title": [...], "sent_id": [...]}`` and ``context`` as
  ``{"title": [...], "sentences": [[...], ...]}``.

A file holds a JSON list of records, or one record per line (JSON Lines).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agemem_gym.errors import ConfigError, DataNotFoundError, MissingExtraError
from agemem_gym.tasks._common import given_path

logger = logging.getLogger(__name__)

ENV_VAR = "AGEMEM_HOTPOTQA_DATA"
HUB_DATASET = "hotpotqa/hotpot_qa"
HUB_CONFIG = "distractor"
SPLITS = ("validation", "train")
#: Official file names per split, tried first when ``data`` is a directory.
_OFFICIAL_NAMES = {
    "validation": "hotpot_dev_distractor_v1.json",
    "train": "hotpot_train_v1.1.json",
}
_GLOBS = {"validation": "hotpot_dev_distractor*.json*", "train": "hotpot_train*.json*"}
_HOW_TO = (
    f"pass data=PATH (a file in the original HotpotQA JSON format, or a directory holding "
    f"one) or set {ENV_VAR}"
)


@dataclass(frozen=True)
class HotpotExample:
    """One HotpotQA example in a layout-independent form.

    Attributes:
        id: the example's ``_id``.
        question: the question text.
        answer: the gold answer text.
        supporting_facts: gold ``(title, sentence index)`` pairs, in the file's order, limited
            to pairs that point at an existing sentence.
        context: the paragraphs as ``(title, sentences)``, in the file's order.
        type: ``bridge`` or ``comparison``.
        level: ``easy``, ``medium`` or ``hard``.
    """

    id: str
    question: str
    answer: str
    supporting_facts: tuple[tuple[str, int], ...]
    context: tuple[tuple[str, tuple[str, ...]], ...]
    type: str = ""
    level: str = ""

    def sentence(self, title: str, index: int) -> str:
        """The sentence ``index`` of the paragraph titled ``title``."""
        for para_title, sentences in self.context:
            if para_title == title:
                return sentences[index]
        raise KeyError(title)


def _bad(where: str, detail: str) -> ConfigError:
    return ConfigError(
        f"{where}: {detail}. Expected HotpotQA distractor records (the original JSON format: "
        f"a list of objects with _id, question, answer, supporting_facts, context); {_HOW_TO}."
    )


def _pairs(raw: Any, where: str) -> list[tuple[str, int]]:
    if isinstance(raw, Mapping):  # hub layout
        return [(str(t), int(i)) for t, i in zip(raw["title"], raw["sent_id"], strict=True)]
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise _bad(where, f"supporting_facts is a {type(raw).__name__}, not a list")
    return [(str(pair[0]), int(pair[1])) for pair in raw]


def _paragraphs(raw: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    items: Iterable[tuple[Any, Any]]
    if isinstance(raw, Mapping):  # hub layout
        items = zip(raw["title"], raw["sentences"], strict=True)
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        items = ((para[0], para[1]) for para in raw)
    else:
        raise _bad(where, f"context is a {type(raw).__name__}, not a list")
    paragraphs = []
    for title, sentences in items:
        if isinstance(sentences, str) or not isinstance(sentences, Sequence):
            raise _bad(where, f"paragraph {title!r} has no list of sentences")
        paragraphs.append((str(title), tuple(str(s) for s in sentences)))
    return tuple(paragraphs)


def parse_record(record: Any, where: str) -> HotpotExample:
    """Convert one record (original or hub layout) into a :class:`HotpotExample`.

    Raises:
        ConfigError: when a field is missing or has the wrong shape.
    """
    if not isinstance(record, Mapping):
        raise _bad(where, f"a record is a {type(record).__name__}, not an object")
    missing = [k for k in ("question", "answer", "supporting_facts", "context") if k not in record]
    if missing or ("_id" not in record and "id" not in record):
        raise _bad(where, f"a record lacks {', '.join(missing) or '_id'}")
    try:
        context = _paragraphs(record["context"], where)
        pairs = _pairs(record["supporting_facts"], where)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise _bad(where, f"malformed supporting_facts or context ({e!r})") from e
    lengths = {title: len(sentences) for title, sentences in context}
    valid = tuple(dict.fromkeys(p for p in pairs if 0 <= p[1] < lengths.get(p[0], 0)))
    if len(valid) < len(pairs):
        logger.debug(
            "%s: dropped %d supporting facts with no sentence", where, len(pairs) - len(valid)
        )
    return HotpotExample(
        id=str(record.get("_id", record.get("id"))),
        question=str(record["question"]),
        answer=str(record["answer"]),
        supporting_facts=valid,
        context=context,
        type=str(record.get("type", "")),
        level=str(record.get("level", "")),
    )


def resolve_path(data: str | os.PathLike[str] | None, split: str) -> Path | None:
    """The local file to read: ``data``, else ``$AGEMEM_HOTPOTQA_DATA``, else None (hub).

    A directory is searched for the split's official file name, then for one file matching
    the split's pattern.

    Raises:
        DataNotFoundError: when the path does not exist or a directory holds no single match.
    """
    path, source = given_path(data, ENV_VAR)
    if path is None:
        return None
    raw = path
    if not path.exists():
        raise DataNotFoundError(f"HotpotQA data not found at {source}{str(raw)!r}; {_HOW_TO}.")
    if path.is_file():
        return path
    official = path / _OFFICIAL_NAMES[split]
    if official.is_file():
        return official
    matches = sorted(p for p in path.glob(_GLOBS[split]) if p.is_file())
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(p.name for p in matches) or "no file"
    raise DataNotFoundError(
        f"the directory {source}{str(raw)!r} should hold one HotpotQA {split} file "
        f"({_OFFICIAL_NAMES[split]} or {_GLOBS[split]}), found {found}; pass the file itself."
    )


def read_file(path: Path) -> list[HotpotExample]:
    """Read a JSON list or JSON Lines file of HotpotQA records.

    Raises:
        DataNotFoundError: when the file cannot be read.
        ConfigError: when it is not HotpotQA JSON.
    """
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataNotFoundError(f"cannot read HotpotQA data {where}: {e}; {_HOW_TO}.") from e
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as e:
        try:
            payload = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise _bad(where, f"not valid JSON ({e})") from e
    if isinstance(payload, Mapping) and "data" in payload:
        payload = payload["data"]
    if not isinstance(payload, list) or not payload:
        raise _bad(where, "the file holds no list of records")
    return [parse_record(rec, f"{where} record {i}") for i, rec in enumerate(payload)]


def load_hub(split: str) -> list[HotpotExample]:
    """Load ``split`` of the distractor setting through ``datasets`` (may download).

    Raises:
        MissingExtraError: when ``datasets`` is not installed.
        DataNotFoundError: when the dataset cannot be loaded (no network, no cache).
    """
    try:
        import datasets
    except ImportError as e:
        raise MissingExtraError("HotpotQA from the Hugging Face hub", "hotpotqa") from e
    try:
        dataset = datasets.load_dataset(HUB_DATASET, HUB_CONFIG, split=split)
    except Exception as e:  # noqa: BLE001 - network, cache and hub errors all mean "no data"
        raise DataNotFoundError(
            f"could not load {HUB_DATASET!r} ({HUB_CONFIG}, {split}) from the hub: {e}; {_HOW_TO}."
        ) from e
    where = f"{HUB_DATASET}:{split}"
    return [parse_record(rec, f"{where} record {i}") for i, rec in enumerate(dataset)]


def load_examples(data: str | os.PathLike[str] | None, split: str) -> list[HotpotExample]:
    """Load the examples of ``split`` from ``data``, the environment variable, or the hub."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
    path = resolve_path(data, split)
    examples = read_file(path) if path is not None else load_hub(split)
    logger.info("loaded %d HotpotQA %s examples", len(examples), split)
    return examples
