"""HotpotQA's stage content: the stage-1 plan of an example and its stage-2 distractors.

Which fact is corrupted, the wrong value and where the asides go depend only on the example
(``struct_rng``, seeded by its id); the episode's generator only picks the wording. See
:mod:`agemem_gym.tasks.hotpotqa.source` for the construction in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agemem_gym.tasks._common import choose
from agemem_gym.tasks.base import Fact
from agemem_gym.tasks.hotpotqa import text
from agemem_gym.tasks.hotpotqa.data import HotpotExample


@dataclass(frozen=True)
class Turn:
    """A planned stage-1 turn before wording: op, key, content and the template family."""

    op: str
    key: str
    content: str
    topic: str
    kind: str  # fact | correction | retraction | aside


@dataclass(frozen=True)
class Plan:
    """An example's stage-1 plan: turns, the memory they leave, what was corrected."""

    turns: tuple[Turn, ...]
    supporting: tuple[str, ...]
    stale: tuple[str, ...]
    corrected: str | None
    used_titles: frozenset[str]
    used_asides: frozenset[str]


def plan_stage1(
    ex: HotpotExample, struct_rng: np.random.Generator, *, corrections: bool, asides: int,
    retractions: int,
) -> Plan:
    """The stage-1 turns of an example before wording (see the source's module docs)."""
    facts = [
        Turn("add", f"{t}#{i}", text.self_contained(t, ex.sentence(t, i)), t, "fact")
        for t, i in ex.supporting_facts
    ]
    supporting = tuple(turn.content for turn in facts)
    turns: list[Turn] = list(facts)
    stale: tuple[str, ...] = ()
    corrected = None
    gold_titles = {t for t, _ in ex.supporting_facts}
    distractor_titles = [t for t, _ in ex.context if t not in gold_titles]
    if corrections and facts:
        wrong = _corrupt_one(facts, ex.answer, distractor_titles, struct_rng)
        if wrong is not None:
            at, wrong_content, wrong_value = wrong
            right = facts[at]
            turns[at] = Turn("add", right.key, wrong_content, right.topic, "fact")
            turns.append(Turn("update", right.key, right.content, right.topic, "correction"))
            stale, corrected = (wrong_value,), right.key
    used_asides: set[str] = set()
    aside_pool = [
        (t, text.self_contained(t, s))
        for t, sentences in ex.context
        if t in gold_titles
        for i, s in enumerate(sentences)
        if (t, i) not in ex.supporting_facts and s.strip()
    ]
    for k in _choose(len(aside_pool), asides, struct_rng):
        topic, sentence = aside_pool[k]
        used_asides.add(sentence)
        pos = int(struct_rng.integers(len(turns) + 1))
        turns.insert(pos, Turn("none", "", sentence, topic, "aside"))
    used_titles: set[str] = set()
    ranked = _rank_paragraphs(ex, distractor_titles)
    for title in ranked[::-1][:retractions]:
        used_titles.add(title)
        sentence = text.self_contained(title, ex.sentence(title, 0))
        pos = int(struct_rng.integers(len(turns)))  # never after the final correction
        turns.insert(pos, Turn("add", f"{title}#0", sentence, title, "fact"))
        turns.insert(pos + 1, Turn("delete", f"{title}#0", "", title, "retraction"))
    return Plan(
        tuple(turns),
        supporting,
        stale,
        corrected,
        frozenset(used_titles),
        frozenset(used_asides),
    )


def distractors(
    ex: HotpotExample, plan: Plan, rng: np.random.Generator, count: int
) -> tuple[str, ...]:
    """``count`` near-miss sentences of the example's distractor paragraphs, worded by ``rng``."""
    if count == 0:
        return ()
    gold_titles = {t for t, _ in ex.supporting_facts}
    words = text.content_words(ex.question)
    titles = [
        t
        for t in _rank_paragraphs(ex, [t for t, _ in ex.context if t not in gold_titles])
        if t not in plan.used_titles
    ]
    sentences: list[str] = []
    for title in titles[:count]:
        paragraph = [s for s in dict(ex.context)[title] if s.strip()] or [title]
        best = max(paragraph, key=lambda s: _distractor_rank(words, s, paragraph))
        sentences.append(text.self_contained(title, best))
    if not sentences:  # no distractor paragraph: unused gold sentences, then small talk
        spare = [
            text.self_contained(t, s)
            for t, sents in ex.context
            for i, s in enumerate(sents)
            if (t, i) not in ex.supporting_facts and s.strip()
        ]
        sentences = [s for s in spare if s not in plan.used_asides][:count]
    if not sentences:
        return (choose(rng, text.SMALL_TALK),)
    return tuple(text.render(choose(rng, text.DISTRACTOR_TEMPLATES), s) for s in sentences)




def word(turn: Turn, rng: np.random.Generator) -> Fact:
    """Render a planned turn as a user message with a template drawn from ``rng``."""
    families = {
        "fact": text.FACT_TEMPLATES,
        "correction": text.CORRECTION_TEMPLATES,
        "retraction": text.RETRACTION_TEMPLATES,
        "aside": text.ASIDE_TEMPLATES,
    }
    topic = text.base_title(turn.topic)
    message = text.render(choose(rng, families[turn.kind]), turn.content, topic)
    content = "" if turn.op == "none" else turn.content
    return Fact(message=message, content=content, key=turn.key, op=turn.op)  # type: ignore[arg-type]


def _distractor_rank(words: set[str], sentence: str, paragraph: list[str]) -> tuple[int, int, int]:
    """Prefer sentences of at most 50 words, then more question words, then earlier ones."""
    return (len(sentence.split()) <= 50, text.overlap(words, sentence), -paragraph.index(sentence))


def _choose(pool: int, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` distinct indices of a pool of ``pool`` items, in the pool's order."""
    if pool == 0 or count == 0:
        return []
    return sorted(int(k) for k in rng.choice(pool, size=min(count, pool), replace=False))


def _rank_paragraphs(ex: HotpotExample, titles: list[str]) -> list[str]:
    """``titles`` by word overlap of their paragraph with the question, most related first."""
    words = text.content_words(ex.question)
    paragraphs = dict(ex.context)
    score = {t: text.overlap(words, t + " " + " ".join(paragraphs[t])) for t in titles}
    return sorted(titles, key=lambda t: (-score[t], titles.index(t)))


def _corrupt_one(
    facts: list[Turn], answer: str, replacements: list[str], rng: np.random.Generator
) -> tuple[int, str, str] | None:
    """Pick a supporting fact and a wrong version of it: ``(index, content, wrong value)``."""
    numeric = []
    avoid = " ".join(fact.content for fact in facts)
    for i, fact in enumerate(facts):
        result = text.corrupt_number(fact.content, fact.topic, answer, rng, avoid)
        if result is not None:
            numeric.append((i, result))
    if numeric:
        in_answer = [(i, r) for i, r in numeric if r[2] in answer]
        i, (content, wrong, _) = (in_answer or numeric)[
            0 if in_answer else int(rng.integers(len(numeric)))
        ]
        return i, content, wrong
    names = [text.base_title(t) for t in replacements]
    for i in [int(k) for k in rng.permutation(len(facts))]:
        named = text.corrupt_name(facts[i].content, facts[i].topic, names, answer, rng, avoid)
        if named is not None:
            return i, named[0], named[1]
    return None
