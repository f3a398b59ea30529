"""Loading HotpotQA (distractor or fullwiki setting) from local files or the Hugging Face hub.

Two record layouts are accepted and converted to :class:`HotpotExample`:

- the original JSON release (``hotpot_dev_distractor_v1.json``, ``hotpot_dev_fullwiki_v1.json``,
  ``hotpot_test_fullwiki_v1.json``, ``hotpot_train_v1.1.json``): ``_id``, ``question``,
  ``answer``, ``supporting_facts`` as ``[[title, sent_idx], ...]`` and ``context`` as
  ``[[title, [sentence, ...]], ...]``;
- the hub layout (``hotpotqa/hotpot_qa``, configs ``distractor`` and ``fullwiki``): ``id``,
  ``supporting_facts`` as ``{"title": [...], "sent_id": [...]}`` and ``context`` as
  ``{"title": [...], "sentences": [[...], ...]}``.

A file holds a JSON list of records, one record per line (JSON Lines), or (``.parquet``) the
hub's own shards, read through ``datasets``. A directory is searched for the split's original
file name, then its pattern, then the hub's parquet shards (``<setting>/<split>-*.parquet`` or
``<split>-*.parquet``, the layout of a downloaded copy of the hub dataset).

The test split (fullwiki only) publishes no answers or supporting facts: its records may lack
them, and :mod:`agemem_gym.tasks.hotpotqa.fullwiki` makes them with an LLM.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agemem_gym.errors import ConfigError, DataNotFoundError, MissingExtraError
from agemem_gym.tasks._common import given_path

logger = logging.getLogger(__name__)

ENV_VAR = "AGEMEM_HOTPOTQA_DATA"
HUB_DATASET = "hotpotqa/hotpot_qa"
HUB_CONFIG = "distractor"
#: The two settings of HotpotQA (the hub's configs); distractor is the default.
SETTINGS = ("distractor", "fullwiki")
#: The splits of each setting: only fullwiki has a (gold-less) test split.
SETTING_SPLITS = {
    "distractor": ("validation", "train"),
    "fullwiki": ("validation", "train", "test"),
}
#: Original file names per (setting, split), tried first when ``data`` is a directory; the
#: train file is shared by both settings.
_OFFICIAL_NAMES = {
    ("distractor", "validation"): "hotpot_dev_distractor_v1.json",
    ("fullwiki", "validation"): "hotpot_dev_fullwiki_v1.json",
    ("fullwiki", "test"): "hotpot_test_fullwiki_v1.json",
    ("distractor", "train"): "hotpot_train_v1.1.json",
    ("fullwiki", "train"): "hotpot_train_v1.1.json",
}
_GLOBS = {
    ("distractor", "validation"): "hotpot_dev_distractor*.json*",
    ("fullwiki", "validation"): "hotpot_dev_fullwiki*.json*",
    ("fullwiki", "test"): "hotpot_test_fullwiki*.json*",
    ("distractor", "train"): "hotpot_train*.json*",
    ("fullwiki", "train"): "hotpot_train*.json*",
}
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
        gold_by: who made ``answer`` and ``supporting_facts`` when the data has none (``""``:
            the dataset; ``"llm:<model>"``: :mod:`~agemem_gym.tasks.hotpotqa.fullwiki`).
    """

    id: str
    question: str
    answer: str
    supporting_facts: tuple[tuple[str, int], ...]
    context: tuple[tuple[str, tuple[str, ...]], ...]
    type: str = ""
    level: str = ""
    gold_by: str = ""

    @property
    def has_gold(self) -> bool:
        """Whether the example has a gold answer and at least one supporting fact."""
        return bool(self.answer.strip()) and bool(self.supporting_facts)

    def sentence(self, title: str, index: int) -> str:
        """The sentence ``index`` of the paragraph titled ``title``."""
        for para_title, sentences in self.context:
            if para_title == title:
                return sentences[index]
        raise KeyError(title)


def _bad(where: str, detail: str) -> ConfigError:
    return ConfigError(
        f"{where}: {detail}. Expected HotpotQA records (the original JSON format: "
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


def parse_record(record: Any, where: str, *, gold_optional: bool = False) -> HotpotExample:
    """Convert one record (original or hub layout) into a :class:`HotpotExample`.

    Args:
        record: one record.
        where: the record's place, for errors.
        gold_optional: accept a record without ``answer`` and ``supporting_facts`` (the test
            split publishes neither); they become ``""`` and ``()``.

    Raises:
        ConfigError: when a field is missing or has the wrong shape.
    """
    if not isinstance(record, Mapping):
        raise _bad(where, f"a record is a {type(record).__name__}, not an object")
    required = ("question", "context") if gold_optional else (
        "question", "answer", "supporting_facts", "context")
    missing = [k for k in required if k not in record]
    if missing or ("_id" not in record and "id" not in record):
        raise _bad(where, f"a record lacks {', '.join(missing) or '_id'}")
    try:
        context = _paragraphs(record["context"], where)
        pairs = _pairs(record.get("supporting_facts") or [], where)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise _bad(where, f"malformed supporting_facts or context ({e!r})") from e
    valid = valid_pairs(pairs, context)
    if len(valid) < len(pairs):
        logger.debug(
            "%s: dropped %d supporting facts with no sentence", where, len(pairs) - len(valid)
        )
    return HotpotExample(
        id=str(record.get("_id", record.get("id"))),
        question=str(record["question"]),
        answer=str(record.get("answer") or ""),
        supporting_facts=valid,
        context=context,
        type=str(record.get("type") or ""),
        level=str(record.get("level") or ""),
    )


def valid_pairs(
    pairs: Iterable[tuple[str, int]], context: Sequence[tuple[str, Sequence[str]]]
) -> tuple[tuple[str, int], ...]:
    """The ``(title, sentence index)`` pairs that point at a sentence of ``context``, deduplicated,
    in their order.

    >>> valid_pairs([("T", 1), ("T", 5), ("U", 0), ("T", 1)], [("T", ("a", "b"))])
    (('T', 1),)
    """
    lengths = {title: len(sentences) for title, sentences in context}
    return tuple(dict.fromkeys(p for p in pairs if 0 <= p[1] < lengths.get(p[0], 0)))


@dataclass(frozen=True)
class Location:
    """Where one split's records are: local files, or (no files) the hub.

    Attributes:
        files: a JSON / JSON Lines file, or the parquet shards of a copy of the hub dataset;
            empty for the hub itself.
        setting: ``distractor`` or ``fullwiki``.
        split: ``validation``, ``train`` or ``test``.
    """

    files: tuple[Path, ...]
    setting: str
    split: str

    @property
    def where(self) -> str:
        """The location in words: the file, the shards' pattern, or the hub dataset."""
        if not self.files:
            return f"{HUB_DATASET} ({self.setting}) from the hub"
        if len(self.files) == 1:
            return str(self.files[0])
        return str(self.files[0].parent / f"{self.split}-*.parquet")

    def resolved(self) -> Location:
        """The same location with absolute file paths (a stable key for caches)."""
        return Location(tuple(f.resolve() for f in self.files), self.setting, self.split)

    def read(self) -> list[HotpotExample]:
        """The examples at this location (the hub may download)."""
        if not self.files:
            return load_hub(self.split, self.setting)
        if self.files[0].suffix == ".parquet":
            return read_parquet(self.files, self.split)
        return read_file(self.files[0], gold_optional=self.split == "test")


def check_split(split: str, setting: str) -> None:
    """Reject an unknown setting, or a split the setting does not have.

    Raises:
        ConfigError: naming the valid choices.
    """
    if setting not in SETTINGS:
        choices = ", ".join(map(repr, SETTINGS))
        raise ConfigError(f"setting must be one of {choices}, got {setting!r}.")
    splits = SETTING_SPLITS[setting]
    if split not in splits:
        hint = (" (the test split exists only in the fullwiki setting: pass setting='fullwiki')"
                if split == "test" else "")
        raise ConfigError(f"split must be {' or '.join(map(repr, splits))}, got {split!r}{hint}.")


def _shards(folder: Path, setting: str, split: str) -> tuple[Path, ...]:
    for candidate in (folder / setting, folder):
        shards = sorted(p for p in candidate.glob(f"{split}-*.parquet") if p.is_file())
        if shards:
            return tuple(shards)
    return ()


def locate(
    data: str | os.PathLike[str] | None, split: str, setting: str = "distractor"
) -> Location:
    """Where ``split`` of ``setting`` is: ``data``, else ``$AGEMEM_HOTPOTQA_DATA``, else the hub.

    A directory is searched for the split's original file name, then for one file matching the
    split's pattern, then for the hub's parquet shards.

    Raises:
        ConfigError: an unknown setting or split.
        DataNotFoundError: when the path does not exist or a directory holds no single match.
    """
    check_split(split, setting)
    path, source = given_path(data, ENV_VAR)
    if path is None:
        return Location((), setting, split)
    if not path.exists():
        raise DataNotFoundError(f"HotpotQA data not found at {source}{str(path)!r}; {_HOW_TO}.")
    if path.is_file():
        return Location((path,), setting, split)
    official = path / _OFFICIAL_NAMES[setting, split]
    if official.is_file():
        return Location((official,), setting, split)
    pattern = _GLOBS[setting, split]
    matches = sorted(p for p in path.glob(pattern) if p.is_file())
    if len(matches) == 1:
        return Location((matches[0],), setting, split)
    shards = _shards(path, setting, split) if not matches else ()
    if shards:
        return Location(shards, setting, split)
    found = ", ".join(p.name for p in matches) or "no file"
    raise DataNotFoundError(
        f"the directory {source}{str(path)!r} should hold one HotpotQA {split} file "
        f"({_OFFICIAL_NAMES[setting, split]} or {pattern}) or the hub's parquet shards "
        f"({setting}/{split}-*.parquet), found {found}; pass the file itself."
    )


def read_file(path: Path, *, gold_optional: bool = False) -> list[HotpotExample]:
    """Read a JSON list or JSON Lines file of HotpotQA records.

    Raises:
        DataNotFoundError: when the file cannot be read.
        ConfigError: when it is not HotpotQA JSON.
    """
    if path.suffix == ".parquet":
        return read_parquet((path,), "test" if gold_optional else "")
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
    return [parse_record(rec, f"{where} record {i}", gold_optional=gold_optional)
            for i, rec in enumerate(payload)]


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as e:
        what = "HotpotQA through datasets (the hub or parquet files)"
        raise MissingExtraError(what, "hotpotqa") from e
    return datasets


def read_parquet(files: Sequence[Path], split: str) -> list[HotpotExample]:
    """Read the hub's parquet shards of one split through ``datasets`` (nothing downloads).

    Raises:
        MissingExtraError: when ``datasets`` is not installed.
        DataNotFoundError: when the shards cannot be read.
    """
    datasets = _datasets()
    where = str(files[0]) if len(files) == 1 else f"{files[0].parent}/{split}-*.parquet"
    try:
        dataset = datasets.load_dataset(
            "parquet", data_files=[str(f) for f in files], split="train")
    except Exception as e:  # noqa: BLE001 - arrow and datasets errors all mean "unreadable"
        raise DataNotFoundError(
            f"cannot read HotpotQA parquet data {where}: {e}; {_HOW_TO}.") from e
    return [parse_record(rec, f"{where} record {i}", gold_optional=split == "test")
            for i, rec in enumerate(dataset)]


def load_hub(split: str, setting: str = HUB_CONFIG) -> list[HotpotExample]:
    """Load ``split`` of ``setting`` through ``datasets`` (may download).

    Raises:
        MissingExtraError: when ``datasets`` is not installed.
        DataNotFoundError: when the dataset cannot be loaded (no network, no cache).
    """
    datasets = _datasets()
    try:
        dataset = datasets.load_dataset(HUB_DATASET, setting, split=split)
    except Exception as e:  # noqa: BLE001 - network, cache and hub errors all mean "no data"
        raise DataNotFoundError(
            f"could not load {HUB_DATASET!r} ({setting}, {split}) from the hub: {e}; {_HOW_TO}."
        ) from e
    where = f"{HUB_DATASET}:{setting}:{split}"
    return [parse_record(rec, f"{where} record {i}", gold_optional=split == "test")
            for i, rec in enumerate(dataset)]


def load_examples(
    data: str | os.PathLike[str] | None, split: str, setting: str = "distractor"
) -> list[HotpotExample]:
    """Load the examples of ``split`` from ``data``, the environment variable, or the hub."""
    examples = locate(data, split, setting).read()
    logger.info("loaded %d HotpotQA %s %s examples", len(examples), setting, split)
    return examples


def select(examples: Sequence[HotpotExample], limit: int | None,
           seed: int | None = None) -> list[HotpotExample]:
    """``limit`` examples: the first ones (``seed`` None), else a sample drawn with
    ``numpy.random.default_rng(seed)`` without replacement, kept in the data's order.

    >>> examples = [HotpotExample(str(i), "q?", "a", (), ()) for i in range(10)]
    >>> [ex.id for ex in select(examples, 3)], [ex.id for ex in select(examples, 3, seed=0)]
    (['0', '1', '2'], ['5', '6', '9'])
    """
    if limit is None or limit >= len(examples) and seed is None:
        return list(examples)
    if seed is None:
        return list(examples[:limit])
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(examples), size=min(limit, len(examples)), replace=False)
    return [examples[int(i)] for i in sorted(picks)]
