"""Gold answers and supporting facts made by an LLM, for HotpotQA records that have none.

The fullwiki test split publishes no answers or supporting facts. The authors' released
evaluation runs on it anyway: when a record has no answer it asks an LLM (qwen-max) to answer
the question from the record's paragraphs, then to name the supporting sentences. This module
does the same in one structured call per record (``{"answer": ..., "supporting_facts":
[{"title": ..., "sent_id": ...}]}``, asked with ``json_schema=``, and read leniently when a
backend ignores the schema), with our own wording.

- A reply is *unusable* when it holds no JSON object, no answer, or no supporting fact that
  names a sentence of the record's paragraphs. Its example is left out of the evaluation set
  and counted in :class:`GoldReport` (the release keeps such an example with an empty answer).
- Made golds are cached on disk, one JSON file per (data location, split, model, prompt
  version) under ``$AGEMEM_CACHE_DIR/hotpotqa_golds`` (else ``$XDG_CACHE_HOME`` or
  ``~/.cache`` + ``agemem_gym/hotpotqa_golds``), keyed by example id and checked against the
  question, so a second load asks the model nothing. Unusable replies are cached too (with
  their reason); delete the file to ask again.

The released evaluation reads the fullwiki test split in its file order, 16 tasks per batch
for 50 steps: the first 800 questions (:data:`RELEASED_EVALUATION`, the options that
reproduce it with a gold model of your choice).

Example:
    >>> from agemem_gym.tasks.hotpotqa.data import HotpotExample
    >>> ex = HotpotExample("t1", "Where was Ada born?", "", (),
    ...                    (("Ada", ("Ada is a poet.", " She was born in London.")),))
    >>> reply = '{"answer": "London", "supporting_facts": [{"title": "Ada", "sent_id": 1}]}'
    >>> gold, why = parse_gold(reply, ex)
    >>> gold.answer, gold.supporting_facts, why
    ('London', (('Ada', 1),), None)
    >>> parse_gold("I think London.", ex)
    (None, 'no JSON object in the reply')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agemem_gym.cache import cache_dir
from agemem_gym.config import check_llm_spec
from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.llm.base import Generation, LLMBackend, Usage
from agemem_gym.llm.json_reply import first_json
from agemem_gym.tasks.hotpotqa.data import HotpotExample, valid_pairs

logger = logging.getLogger(__name__)

#: The options of :class:`~agemem_gym.tasks.hotpotqa.HotpotQATasks` that select the released
#: evaluation set (add ``gold_model=`` to make its golds).
RELEASED_EVALUATION: dict[str, Any] = {"setting": "fullwiki", "split": "test", "limit": 800}
#: Bump when the prompt or the parsing changes, so cached golds are made again.
GOLD_VERSION = "gold-v1"
#: Records asked per model call.
BATCH = 16

GOLD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "supporting_facts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "sent_id": {"type": "integer"}},
                "required": ["title", "sent_id"],
            },
        },
    },
    "required": ["answer", "supporting_facts"],
}

GOLD_PROMPT = (
    "Read the numbered paragraphs below and answer the question from them.\n\n"
    "{paragraphs}\n\nQuestion: {question}\n\n"
    "The answer is the shortest text that answers the question: a name, a date, a number, or "
    "yes/no. Also list every sentence needed to reach it, by paragraph title and sentence "
    "number. Reply with JSON only, in this form: "
    '{{"answer": "...", "supporting_facts": [{{"title": "...", "sent_id": 0}}]}}'
)



@dataclass(frozen=True)
class Gold:
    """A made gold: the answer and the ``(title, sentence index)`` pairs that support it."""

    answer: str
    supporting_facts: tuple[tuple[str, int], ...]


@dataclass
class GoldReport:
    """What making golds cost and what it left out.

    Attributes:
        needed: examples of the evaluation set without gold.
        cached: of those, read from the cache (made or failed earlier).
        made: of those, with a usable gold (from the cache or just made).
        failed: of those, left out because the reply was unusable.
        reasons: why, counted (``"no answer"``, ...).
        usage: the model calls of this load (none when everything was cached).
        model: the gold model's name.
        cache_file: where the golds are kept.
    """

    needed: int = 0
    cached: int = 0
    made: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    cache_file: Path | None = None


def check_gold_model(value: Any) -> Any:
    """``value`` when it is None, an LLM backend or ``{"model": ..., "backend": ...}``.

    Raises:
        ConfigError: anything else; a bare model name gets the spec to write instead.
    """
    if isinstance(value, str):
        raise ConfigError(
            f"gold_model must name an LLM as {{'model': ..., 'backend': ...}} (or be an LLM "
            f"backend), got the string {value!r}; e.g. gold_model={{'model': {value!r}, "
            "'backend': 'openai', 'base_url': URL}.")
    return check_llm_spec("gold_model", value, "generate", "an LLM backend")


def gold_cache_dir() -> Path:
    """``$AGEMEM_CACHE_DIR/hotpotqa_golds``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    return cache_dir("hotpotqa_golds")


def gold_prompt(example: HotpotExample) -> str:
    """The question asked for ``example``: its paragraphs with numbered sentences."""
    blocks = []
    for title, sentences in example.context:
        lines = "\n".join(f"  {i}: {s.strip()}" for i, s in enumerate(sentences))
        blocks.append(f"[{title}]\n{lines}")
    return GOLD_PROMPT.format(paragraphs="\n".join(blocks), question=example.question)


def _first_object(text: str) -> tuple[Any, str | None]:
    value, reason = first_json(text)
    if reason is not None and reason.startswith("invalid JSON"):
        return None, "invalid JSON"
    if not isinstance(value, dict):
        return None, "no JSON object in the reply"
    return value, None


def parse_gold(text: str, example: HotpotExample) -> tuple[Gold | None, str | None]:
    """The gold in a reply, or ``(None, reason)`` when the reply is unusable."""
    value, reason = _first_object(text)
    if reason is not None:
        return None, reason
    answer = value.get("answer")
    if not isinstance(answer, str) or not answer.strip():
        return None, "no answer"
    raw = value.get("supporting_facts")
    if not isinstance(raw, list) or not raw:
        return None, "no supporting facts"
    pairs = []
    for item in raw:
        if isinstance(item, dict):
            title, index = item.get("title"), item.get("sent_id")
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            title, index = item
        else:
            continue
        if isinstance(title, str) and isinstance(index, int) and not isinstance(index, bool):
            pairs.append((title.strip(), index))
    valid = valid_pairs(pairs, example.context)
    if not valid:
        return None, "no supporting fact names a sentence of the paragraphs"
    return Gold(" ".join(answer.split()), valid), None


def _model_name(llm: LLMBackend | dict[str, Any]) -> str:
    if isinstance(llm, dict):
        return str(llm["model"])
    return str(getattr(llm, "model_name", None) or llm.name)


def cache_file(where: str, split: str, model: str) -> Path:
    """The cache file of the golds made by ``model`` for ``split`` at ``where``."""
    key = json.dumps([where, split, model, GOLD_VERSION])
    return gold_cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as e:  # a broken cache is made again, not fatal
        logger.warning("ignoring the unreadable HotpotQA gold cache %s: %s", path, e)
        return {}
    golds = payload.get("golds") if isinstance(payload, dict) else None
    return {k: v for k, v in golds.items() if isinstance(v, dict)} if isinstance(golds, dict) else {}


def _cached(entry: dict[str, Any] | None, example: HotpotExample) -> bool:
    """Whether ``entry`` answers for ``example``: its question, and a reason or a gold whose
    supporting facts name sentences of the example (else it is asked again)."""
    if entry is None or entry.get("question") != example.question:
        return False
    if isinstance(entry.get("failed"), str):
        return True
    try:
        pairs = [(str(t), int(i)) for t, i in entry["supporting_facts"]]
    except (KeyError, TypeError, ValueError):
        return False
    return isinstance(entry.get("answer"), str) and bool(valid_pairs(pairs, example.context))


def _write_cache(path: Path, meta: dict[str, str], golds: dict[str, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**meta, "golds": golds}, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _entry(example: HotpotExample, generation: Generation) -> dict[str, Any]:
    gold, reason = parse_gold(generation.text, example)
    if gold is None:
        if generation.finish_reason == "length":
            reason = f"{reason} (the reply reached max_new_tokens)"
        return {"question": example.question, "failed": reason}
    return {"question": example.question, "answer": gold.answer,
            "supporting_facts": [list(p) for p in gold.supporting_facts]}


def complete_golds(
    examples: Sequence[HotpotExample],
    gold_model: LLMBackend | dict[str, Any] | None,
    *,
    where: str,
    split: str,
    max_new_tokens: int = 256,
) -> tuple[list[HotpotExample], GoldReport]:
    """``examples`` with made golds where they had none, minus those whose gold failed.

    Args:
        examples: the evaluation set.
        gold_model: an LLM backend, or ``{"model": ..., "backend": ..., **options}`` (plus
            ``"structured": False`` for a server without JSON-schema output); None only when
            every example has its gold.
        where: the data location (part of the cache key).
        split: the split (part of the cache key).
        max_new_tokens: the reply limit.

    Raises:
        DataNotFoundError: some example has no gold and no model is given (says what to pass),
            or no example is left.
        BackendError: the model cannot be reached (golds made so far are cached).
    """
    missing = [ex for ex in examples if not ex.has_gold]
    report = GoldReport(needed=len(missing))
    if not missing:
        return list(examples), report
    if gold_model is None:
        raise DataNotFoundError(
            f"{len(missing)} of the {len(examples)} HotpotQA {split} examples at {where} have no "
            "gold answer or supporting facts (the fullwiki test split publishes none). Pass "
            "gold_model={'model': NAME, 'backend': 'openai', 'base_url': URL} (or an LLM backend) "
            "to have an LLM make them once (cached), or evaluate on split='validation'."
        )
    report.model = _model_name(gold_model)
    report.cache_file = path = cache_file(where, split, report.model)
    meta = {"source": where, "split": split, "model": report.model, "version": GOLD_VERSION}
    golds = _read_cache(path)
    todo = [ex for ex in missing if not _cached(golds.get(ex.id), ex)]
    report.cached = len(missing) - len(todo)
    if todo:
        _make(todo, gold_model, golds, report, path, meta, max_new_tokens)
    kept = [_with_gold(ex, golds.get(ex.id), report) if not ex.has_gold else ex for ex in examples]
    _count_failures([golds[ex.id] for ex in missing], report)
    usable = [ex for ex in kept if ex is not None]
    if not usable:
        raise DataNotFoundError(
            f"no HotpotQA {split} example at {where} is left: {report.model} gave no usable gold "
            f"for any of the {report.needed} without one ({report.reasons}). Try a stronger "
            f"gold_model, or delete {path} to ask again."
        )
    return usable, report


def _count_failures(entries: Sequence[dict[str, Any]], report: GoldReport) -> None:
    """Fill the report's counts from the cache entries of the examples that needed a gold."""
    reasons = Counter(entry["failed"] for entry in entries if "failed" in entry)
    report.reasons, report.failed = dict(reasons), sum(reasons.values())
    report.made = report.needed - report.failed
    if report.failed:
        logger.warning(
            "HotpotQA golds by %s: %d of %d replies unusable (%s); those examples are left out "
            "(cache: %s)", report.model, report.failed, report.needed,
            ", ".join(f"{r}: {n}" for r, n in reasons.most_common()), report.cache_file)


def _with_gold(example: HotpotExample, entry: dict[str, Any] | None,
               report: GoldReport) -> HotpotExample | None:
    if entry is None or "failed" in entry:
        return None
    pairs = valid_pairs([(str(t), int(i)) for t, i in entry["supporting_facts"]], example.context)
    return dataclasses.replace(
        example, answer=example.answer or entry["answer"],
        supporting_facts=example.supporting_facts or pairs, gold_by=f"llm:{report.model}")


def _make(todo: Sequence[HotpotExample], gold_model: LLMBackend | dict[str, Any],
          golds: dict[str, dict[str, Any]], report: GoldReport, path: Path,
          meta: dict[str, str], max_new_tokens: int) -> None:
    """Ask the model for ``todo``'s golds in batches, caching after each batch."""
    spec = dict(gold_model) if isinstance(gold_model, dict) else {}
    structured = bool(spec.pop("structured", True))
    llm: LLMBackend
    if spec:
        from agemem_gym.llm import make_backend

        llm = make_backend(spec.pop("backend", "transformers"), spec.pop("model"), **spec)
    else:
        llm = gold_model  # type: ignore[assignment]  # an object with generate()
    options: dict[str, Any] = {"json_schema": GOLD_SCHEMA} if structured else {}
    try:
        for start in range(0, len(todo), BATCH):
            batch = todo[start:start + BATCH]
            generations = llm.generate(
                [[{"role": "user", "content": gold_prompt(ex)}] for ex in batch],
                max_new_tokens=max_new_tokens, temperature=0.0, **options)
            report.usage.add(generations)
            for example, generation in zip(batch, generations, strict=True):
                golds[example.id] = _entry(example, generation)
                report.usage.failures += "failed" in golds[example.id]
            _write_cache(path, meta, golds)
    finally:
        if llm is not gold_model:  # built here from a spec
            llm.close()
