"""HotpotQA's answer, supporting-fact and joint metrics.

The semantics follow the official HotpotQA evaluation exactly, so numbers computed here can be
compared with published ones:

- **Normalisation**: lowercase, drop every ASCII punctuation character, drop the articles
  ``a``/``an``/``the`` as whole words, collapse runs of whitespace.
- **Answer EM**: the normalised strings are equal. Two empty strings are an exact match.
- **Answer F1**: multiset token overlap of the normalised strings (a token repeated in both
  counts as often as it appears in both). When either side normalises to ``yes``, ``no`` or
  ``noanswer`` and the two sides differ, precision, recall and F1 are all 0. No shared token
  (which includes two empty strings) gives 0, so an empty prediction has F1 0 and, against an
  empty gold, EM 1.
- **Supporting facts**: sets of ``(title, sentence index)`` pairs (duplicates collapse); EM is 1
  when the sets are equal; precision and recall are 0 when their denominator is 0.
- **Joint**: precision and recall are the products of the answer's and the supporting facts';
  F1 is their harmonic mean; EM is the product of the two EMs.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = [
    "answer_em_f1",
    "answer_metrics",
    "best_answer_metrics",
    "joint_metrics",
    "normalize_answer",
    "supporting_fact_metrics",
]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL = frozenset({"yes", "no", "noanswer"})


def normalize_answer(text: str) -> str:
    """Normalise an answer the way the HotpotQA evaluation does.

    Args:
        text: a predicted or gold answer.

    Returns:
        The lowercased text without ASCII punctuation and articles, single-spaced.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    """
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def _precision_recall_f1(tp: float, n_pred: float, n_gold: float) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred > 0 else 0.0
    recall = tp / n_gold if n_gold > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def answer_metrics(prediction: str, gold: str) -> dict[str, float]:
    """Answer EM, F1, precision and recall of one prediction against one gold answer.

    Args:
        prediction: the predicted answer text.
        gold: the gold answer text.

    Returns:
        A dict with ``em``, ``f1``, ``precision`` and ``recall``, each in [0, 1].

    >>> answer_metrics("Chief of Protocol of the US", "Chief of Protocol")["recall"]
    1.0
    """
    pred_norm, gold_norm = normalize_answer(prediction), normalize_answer(gold)
    em = float(pred_norm == gold_norm)
    zero = {"em": em, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    if (pred_norm in _SPECIAL or gold_norm in _SPECIAL) and pred_norm != gold_norm:
        return zero
    pred_tokens, gold_tokens = pred_norm.split(), gold_norm.split()
    shared = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if shared == 0:
        return zero
    precision, recall, f1 = _precision_recall_f1(shared, len(pred_tokens), len(gold_tokens))
    return {"em": em, "f1": f1, "precision": precision, "recall": recall}


def answer_em_f1(prediction: str, gold: str) -> tuple[float, float]:
    """Answer exact match and token F1 (official HotpotQA semantics).

    Args:
        prediction: the predicted answer text.
        gold: the gold answer text.

    Returns:
        ``(em, f1)``, both floats in [0, 1].

    >>> answer_em_f1("the Yes!", "yes")
    (1.0, 1.0)
    >>> answer_em_f1("no", "yes")
    (0.0, 0.0)
    >>> answer_em_f1("Paris France", "Paris")
    (0.0, 0.6666666666666666)
    """
    result = answer_metrics(prediction, gold)
    return result["em"], result["f1"]


def best_answer_metrics(prediction: str, golds: Iterable[str]) -> dict[str, float]:
    """The metrics against the best-matching gold answer (highest F1, then EM).

    Args:
        prediction: the predicted answer text.
        golds: acceptable gold answers; an empty iterable scores 0.

    Returns:
        A dict like :func:`answer_metrics`.

    >>> best_answer_metrics("1999", ["in 1998", "1999"])["em"]
    1.0
    """
    best = {"em": 0.0, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    for gold in golds:
        result = answer_metrics(prediction, gold)
        if (result["f1"], result["em"]) > (best["f1"], best["em"]):
            best = result
    return best


def _as_pairs(facts: Iterable[Sequence[object]]) -> set[tuple[str, int]]:
    return {(str(fact[0]), int(fact[1])) for fact in facts}  # type: ignore[call-overload]


def supporting_fact_metrics(
    pred_sp: Iterable[Sequence[object]], gold_sp: Iterable[Sequence[object]]
) -> dict[str, float]:
    """Supporting-fact EM, F1, precision and recall on ``(title, sentence index)`` sets.

    Args:
        pred_sp: predicted pairs (lists or tuples of title and sentence index).
        gold_sp: gold pairs in the same form.

    Returns:
        A dict with ``em``, ``f1``, ``precision`` and ``recall``.

    >>> m = supporting_fact_metrics([("Ed Wood", 0), ("Ed Wood", 1)], [["Ed Wood", 0]])
    >>> m["precision"], m["recall"], m["em"]
    (0.5, 1.0, 0.0)
    """
    pred, gold = _as_pairs(pred_sp), _as_pairs(gold_sp)
    tp = len(pred & gold)
    precision, recall, f1 = _precision_recall_f1(tp, len(pred), len(gold))
    return {"em": float(pred == gold), "f1": f1, "precision": precision, "recall": recall}


def joint_metrics(
    prediction: str,
    gold: str,
    pred_sp: Iterable[Sequence[object]],
    gold_sp: Iterable[Sequence[object]],
) -> dict[str, float]:
    """Joint answer and supporting-fact metrics, as the HotpotQA evaluation reports them.

    Args:
        prediction: the predicted answer text.
        gold: the gold answer text.
        pred_sp: predicted ``(title, sentence index)`` pairs.
        gold_sp: gold pairs.

    Returns:
        A dict with the joint ``em``, ``f1``, ``precision`` and ``recall``.

    >>> joint_metrics("yes", "yes", [("A", 0)], [("A", 0), ("B", 1)])["recall"]
    0.5
    """
    ans = answer_metrics(prediction, gold)
    sp = supporting_fact_metrics(pred_sp, gold_sp)
    precision = ans["precision"] * sp["precision"]
    recall = ans["recall"] * sp["recall"]
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"em": ans["em"] * sp["em"], "f1": f1, "precision": precision, "recall": recall}
