"""Judges: who scores memory and retrieval for the reward and the metrics.

The paper uses an LLM judge. The default here is deterministic (no model needed) and every
score records the judge's ``name``; an LLM judge subclasses :class:`Judge` and overrides the
methods it replaces.

Deterministic formulas:
- an entry *matches* a fact when their HotpotQA-normalised token F1 is >= ``match_f1`` (0.6);
- storage quality: an entry is high quality when it matches a supporting fact or contains an
  expected answer (normalised), so ``storage = N_high / max(1, N_total)``;
- memory quality ``mq``: the F1 of coverage (supporting facts matched by some entry) and
  precision (entries matching some supporting fact); 1.0 only when LTM holds exactly the
  supporting facts, 0.0 when it is empty or holds none of them;
- relevance: mean cosine similarity (clipped to [0, 1]) between the query and each retrieved
  entry under the env's encoder; 0 when nothing was retrieved.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agemem_gym.memory.encoders import Encoder
from agemem_gym.metrics import answer_em_f1, normalize_answer


def token_f1(a: str, b: str) -> float:
    """HotpotQA token F1 between two texts (symmetric)."""
    return answer_em_f1(a, b)[1]


def best_match(text: str, facts: Sequence[str]) -> float:
    """The highest token F1 of ``text`` against any of ``facts`` (0 when there are none)."""
    return max((token_f1(text, f) for f in facts), default=0.0)


def memory_quality(
    entries: Sequence[str], supporting_facts: Sequence[str], match_f1: float = 0.6
) -> dict[str, float]:
    """Coverage, precision and their F1 (``mq``) of stored entries against supporting facts.

    >>> memory_quality(["Paris is in France."], ["Paris is in France.", "Rome is in Italy."])
    {'mq': 0.6666666666666666, 'coverage': 0.5, 'precision': 1.0}
    """
    if not entries or not supporting_facts:
        return {"mq": 0.0, "coverage": 0.0, "precision": 0.0}
    covered = sum(best_match(f, entries) >= match_f1 for f in supporting_facts)
    precise = sum(best_match(e, supporting_facts) >= match_f1 for e in entries)
    coverage, precision = covered / len(supporting_facts), precise / len(entries)
    mq = 0.0 if coverage + precision == 0 else 2 * coverage * precision / (coverage + precision)
    return {"mq": mq, "coverage": coverage, "precision": precision}


class Judge:
    """The deterministic judge. See the module docstring for its formulas."""

    name = "deterministic"

    def __init__(self, encoder: Encoder, match_f1: float = 0.6):
        self.encoder = encoder
        self.match_f1 = match_f1

    def is_high_quality(self, entry: str, supporting_facts: Sequence[str],
                        answers: Sequence[str]) -> bool:
        """Whether a stored entry is useful for the task (storage reward)."""
        if best_match(entry, supporting_facts) >= self.match_f1:
            return True
        text = f" {normalize_answer(entry)} "
        return any(a.strip() and f" {normalize_answer(a)} " in text for a in answers)

    def storage_quality(self, entries: Sequence[str], supporting_facts: Sequence[str],
                        answers: Sequence[str]) -> float:
        good = sum(self.is_high_quality(e, supporting_facts, answers) for e in entries)
        return good / max(1, len(entries))

    def memory_quality(self, entries: Sequence[str], supporting_facts: Sequence[str]) -> dict[str, float]:
        return memory_quality(entries, supporting_facts, self.match_f1)

    def relevance(self, query: str, retrieved: Sequence[str]) -> float:
        if not retrieved:
            return 0.0
        vectors = self.encoder.encode([query, *retrieved])
        return float(np.clip(vectors[1:] @ vectors[0], 0.0, 1.0).mean())

    @property
    def relevance_name(self) -> str:
        return f"encoder-cosine:{self.encoder.name}"
