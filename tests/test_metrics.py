"""HotpotQA metric semantics, pinned on the cases that usually go wrong."""

from __future__ import annotations

import doctest

import pytest

from agemem_gym import metrics
from agemem_gym.metrics import (
    answer_em_f1,
    answer_metrics,
    best_answer_metrics,
    joint_metrics,
    normalize_answer,
    supporting_fact_metrics,
)


def test_doctests() -> None:
    result = doctest.testmod(metrics, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Beatles", "beatles"),
        ("  A  tale of   AN apple ", "tale of apple"),
        ("theatre", "theatre"),  # articles only as whole words
        ("Anne and Andy", "anne and andy"),
        ("U.S.A.", "usa"),
        ("rock-n-roll!", "rocknroll"),  # punctuation is deleted, not replaced by a space
        ("3,677 seated", "3677 seated"),
        ("1995\u201396", "1995\u201396"),  # only ASCII punctuation is removed
        ("", ""),
        ("the", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        ("Chief of Protocol", "Chief of Protocol", 1.0, 1.0),
        ("chief of protocol", "Chief of Protocol", 1.0, 1.0),  # case
        ("The Chief of Protocol.", "Chief of Protocol", 1.0, 1.0),  # article, punctuation
        ("Greenwich Village", "Greenwich Village, New York City", 0.0, 2 * 1 * 0.4 / 1.4),
        ("yes", "yes", 1.0, 1.0),
        ("Yes.", "yes", 1.0, 1.0),
        ("no", "yes", 0.0, 0.0),
        ("yes it is", "yes", 0.0, 0.0),  # gold is yes, prediction differs: 0 despite overlap
        ("yes", "yes it is", 0.0, 0.0),  # prediction is yes, gold differs
        ("noanswer", "no answer", 0.0, 0.0),
        ("", "Animorphs", 0.0, 0.0),  # empty prediction
        ("", "", 1.0, 0.0),  # both empty: equal strings, but no shared token
        ("the", "a", 1.0, 0.0),  # both normalise to empty
        ("Paris Paris Paris", "Paris", 0.0, 0.5),  # repeated tokens count once per match
        ("Paris Paris", "Paris Paris", 1.0, 1.0),
        ("new york new", "new york", 0.0, 0.8),  # multiset: precision 2/3, recall 1
        ("completely different", "Animorphs", 0.0, 0.0),
    ],
)
def test_answer_em_f1(prediction: str, gold: str, em: float, f1: float) -> None:
    got_em, got_f1 = answer_em_f1(prediction, gold)
    assert got_em == em
    assert got_f1 == pytest.approx(f1)


def test_answer_metrics_precision_recall() -> None:
    m = answer_metrics("Greenwich Village", "Greenwich Village, New York City")
    assert m["precision"] == 1.0
    assert m["recall"] == pytest.approx(0.4)
    zero = answer_metrics("no", "yes")
    assert zero == {"em": 0.0, "f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_best_answer_metrics_takes_the_best_gold() -> None:
    assert best_answer_metrics("1999", ["from 1999 to 2001", "1999"])["em"] == 1.0
    assert best_answer_metrics("1999", [])["f1"] == 0.0
    assert best_answer_metrics("", [""])["em"] == 1.0


def test_supporting_fact_metrics() -> None:
    gold = [["Ed Wood", 0], ["Scott Derrickson", 0]]
    exact = supporting_fact_metrics([("Scott Derrickson", 0), ("Ed Wood", 0)], gold)
    assert exact == {"em": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    partial = supporting_fact_metrics([("Ed Wood", 0), ("Ed Wood", 1), ("Ed Wood", 0)], gold)
    assert partial["precision"] == 0.5  # duplicates collapse: 1 of 2 predicted is right
    assert partial["recall"] == 0.5
    assert partial["f1"] == 0.5 and partial["em"] == 0.0
    wrong_index = supporting_fact_metrics([("Ed Wood", 1)], gold)
    assert wrong_index == {"em": 0.0, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    empty = supporting_fact_metrics([], gold)
    assert empty["precision"] == 0.0 and empty["recall"] == 0.0 and empty["em"] == 0.0
    assert supporting_fact_metrics([], [])["em"] == 1.0


def test_joint_metrics_multiply_precision_and_recall() -> None:
    gold_sp = [("A", 0), ("B", 1)]
    joint = joint_metrics(
        "Greenwich Village", "Greenwich Village, New York City", [("A", 0)], gold_sp
    )
    precision, recall = 1.0 * 1.0, 0.4 * 0.5
    assert joint["precision"] == pytest.approx(precision)
    assert joint["recall"] == pytest.approx(recall)
    assert joint["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert joint["em"] == 0.0
    perfect = joint_metrics("yes", "Yes", gold_sp, gold_sp)
    assert perfect == {"em": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    assert joint_metrics("no", "yes", gold_sp, gold_sp)["f1"] == 0.0
