"""Text helpers for the HotpotQA benchmark: wording templates, key items, corrupted facts.

Everything here is deterministic given its inputs (and the generator passed in).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# --------------------------------------------------------------------------- wording templates
#: Stage 1, a fact to remember (``{fact}`` is the self-contained sentence).
FACT_TEMPLATES = (
    "Oh, something I came across today: {fact}",
    "Random thing I learned this morning. {fact}",
    "My friend brought this up over coffee: {fact}",
    "Before I forget: {fact}",
    "I was reading a bit about {topic} earlier. {fact}",
    "Fun fact I picked up: {fact}",
    "Apparently this is true. {fact}",
    "Jotting this down while it's fresh: {fact}",
    "Heard this on a podcast on the way home: {fact}",
    "Here's one for you. {fact}",
)
#: Stage 1, a correction of something said earlier (op ``update``).
CORRECTION_TEMPLATES = (
    "Hold on, I got a detail wrong earlier about {topic}. The right version is this. {fact}",
    "Correction to what I said about {topic}. {fact}",
    "Oops, I misremembered that bit on {topic}. What I meant was this. {fact}",
    "Let me fix something I told you about {topic}. It should read: {fact}",
)
#: Stage 1, a retraction (op ``delete``).
RETRACTION_TEMPLATES = (
    "Actually, forget what I said about {topic}; I mixed it up with something else.",
    "Scratch that remark about {topic}, it was wrong. Please don't keep it.",
    "Never mind the {topic} thing I mentioned, I had it confused.",
)
#: Stage 1, a side remark that needs no memory (op ``none``).
ASIDE_TEMPLATES = (
    "Not that it matters much: {fact}",
    "Side note, no need to remember this: {fact}",
    "Unrelated trivia while I think of it: {fact}",
)
#: Stage 2, a related but irrelevant remark.
DISTRACTOR_TEMPLATES = (
    "Oh, and another thing. {fact}",
    "Speaking of which: {fact}",
    "Something else I read: {fact}",
    "Also came across this: {fact}",
    "Totally different thing. {fact}",
    "A colleague told me this the other day. {fact}",
)
#: Stage 2 when an example has no sentence left to use as a distractor.
SMALL_TALK = (
    "Long week. I'm looking forward to a quiet weekend.",
    "The weather has been all over the place lately, hasn't it?",
    "I still need to pick a book for the trip next month.",
)


def render(template: str, fact: str = "", topic: str = "") -> str:
    """Fill a template with a fact sentence and its topic (a paragraph title)."""
    return template.format(fact=fact, topic=topic)


# --------------------------------------------------------------------------- facts
def clean(sentence: str) -> str:
    """A sentence with surrounding and repeated whitespace removed."""
    return " ".join(sentence.split())


def base_title(title: str) -> str:
    """The title without a trailing disambiguation, e.g. ``Ed Wood (film)`` -> ``Ed Wood``."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", title).strip() or title


def self_contained(title: str, sentence: str) -> str:
    """The sentence, prefixed with ``"<title>: "`` unless it names the title already.

    >>> self_contained("Shirley Temple", " As an adult, she was a diplomat.")
    'Shirley Temple: As an adult, she was a diplomat.'
    >>> self_contained("Ed Wood (film)", "Ed Wood is a 1994 film.")
    'Ed Wood is a 1994 film.'
    """
    text = clean(sentence)
    if base_title(title).lower() in text.lower():
        return text
    return f"{title}: {text}"


# --------------------------------------------------------------------------- key items
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?"
    rf"|(?:{_MONTHS})\s+\d{{4}}|(?:1[0-9]|20)\d{{2}}s?)\b"
)
_QUOTED = re.compile(r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")
_TOKEN = re.compile(r"\w(?:[\w'\u2019&./-]*\w)?")
_CONNECTORS = frozenset({"of", "the", "de", "la", "du", "del", "von", "van", "der", "da", "y", "&"})
_NOT_NAMES = frozenset(
    [
        "what",
        "who",
        "whom",
        "whose",
        "which",
        "where",
        "when",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "did",
        "do",
        "does",
        "has",
        "have",
        "had",
        "the",
        "a",
        "an",
        "in",
        "on",
        "at",
        "of",
        "for",
        "from",
        "by",
        "to",
        "this",
        "that",
        "these",
        "those",
        "both",
        "name",
        "i",
        "it",
        "its",
        "if",
        "as",
        "between",
        "along",
        "although",
        "during",
        "after",
        "before",
        "since",
    ]
)


def _capitalised_spans(text: str) -> list[str]:
    tokens = list(_TOKEN.finditer(text))
    spans: list[str] = []
    i = 0
    while i < len(tokens):
        if not tokens[i].group()[0].isupper() or tokens[i].group().lower() in _NOT_NAMES:
            i += 1
            continue
        start = end = i
        j = i + 1
        while j < len(tokens):
            gap = text[tokens[j - 1].end() : tokens[j].start()]
            word = tokens[j].group()
            if gap.strip() not in ("", "&"):
                break
            if word[0].isupper():
                end = j
            elif word.lower() not in _CONNECTORS:
                break
            j += 1
        spans.append(text[tokens[start].start() : tokens[end].end()])
        i = end + 1
    return spans


def key_items(question: str) -> tuple[str, ...]:
    """The question's quoted titles, dates/years and capitalised names, in order of appearance.

    Each item is a verbatim substring of ``question``; items inside a longer item are dropped.

    >>> key_items('Were Scott Derrickson and Ed Wood of the same nationality?')
    ('Scott Derrickson', 'Ed Wood')
    >>> key_items('Which 1994 film did the director of "Big Stone Gap" make?')
    ('1994', 'Big Stone Gap')
    """
    found: list[tuple[int, str]] = []
    for match in _QUOTED.finditer(question):
        group = 1 if match.group(1) is not None else 2
        found.append((match.start(group), match.group(group).strip()))
    found += [(m.start(), m.group()) for m in _DATE.finditer(question)]
    offset = 0
    for span in _capitalised_spans(question):
        offset = question.index(span, offset)
        found.append((offset, span))
        offset += len(span)
    items = list(dict.fromkeys(item for _, item in sorted(found) if item))
    return tuple(it for it in items if not any(it != other and it in other for other in items))


# --------------------------------------------------------------------------- corruption
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w,]\d)|(?<![\w.,])\d+(?![\w]|[.,]\d)")


def _shift_number(value: str, rng: np.random.Generator) -> str:
    number = int(value.replace(",", ""))
    if 1000 <= number <= 2099 and "," not in value:  # a year: a nearby one
        delta = int(rng.integers(1, 8))
    else:
        delta = max(1, int(round(number * float(rng.uniform(0.1, 0.4)))))
    sign = -1 if rng.random() < 0.5 and number - delta > 0 else 1
    new = number + sign * delta
    return f"{new:,}" if "," in value else str(new)


def corrupt_number(
    sentence: str, title: str, answer: str, rng: np.random.Generator, avoid: str = ""
) -> tuple[str, str, str] | None:
    """A wrong version of ``sentence`` with one number changed, or None if it has no usable one.

    Numbers that are part of the title are kept (the title must stay right). A number that
    occurs in ``answer`` is preferred, then a year, then any other number. The new value
    never occurs in ``answer``, ``avoid`` or the original sentence.

    Returns:
        ``(wrong_sentence, wrong_value, original_value)`` or None.
    """
    candidates = [m for m in _NUMBER.finditer(sentence) if m.group() not in title]
    if not candidates:
        return None

    def rank(m: re.Match[str]) -> tuple[int, int]:
        in_answer = re.search(rf"(?<!\d){re.escape(m.group())}(?!\d)", answer) is not None
        is_year = len(m.group()) == 4 and m.group()[:2] in ("18", "19", "20")
        return (0 if in_answer else 1, 0 if is_year else 1)

    target = min(candidates, key=rank)
    for _ in range(20):
        wrong = _shift_number(target.group(), rng)
        if wrong not in answer and wrong not in avoid and wrong not in sentence:
            break
    else:
        return None
    wrong_sentence = sentence[: target.start()] + wrong + sentence[target.end() :]
    return wrong_sentence, wrong, target.group()


def corrupt_name(
    sentence: str,
    title: str,
    replacements: Sequence[str],
    protected: str,
    rng: np.random.Generator,
    avoid: str = "",
) -> tuple[str, str, str] | None:
    """A wrong version of ``sentence`` with one capitalised name (not the title's) swapped.

    The swapped-in name is one of ``replacements`` that occurs in none of ``sentence``,
    ``protected`` (the answer, never changed) and ``avoid``.

    Returns:
        ``(wrong_sentence, wrong_value, original_value)`` or None when nothing can be swapped.
    """
    title_words = set(base_title(title).lower().split())
    spans = [
        s
        for s in _capitalised_spans(sentence)
        if not title_words & set(s.lower().split()) and s not in protected
    ]
    options = [r for r in replacements if r not in sentence + protected + avoid]
    if not spans or not options:
        return None
    span = spans[int(rng.integers(len(spans)))]
    wrong = options[int(rng.integers(len(options)))]
    at = sentence.index(span)
    return sentence[:at] + wrong + sentence[at + len(span) :], wrong, span


# --------------------------------------------------------------------------- relatedness
_WORD = re.compile(r"\w+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "what",
        "who",
        "which",
        "whose",
        "where",
        "when",
        "how",
        "did",
        "do",
        "does",
        "that",
        "this",
        "with",
        "as",
        "it",
        "its",
        "his",
        "her",
        "their",
        "he",
        "she",
        "they",
    ]
)


def content_words(text: str) -> set[str]:
    """Lowercased words of ``text`` without common function words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def overlap(a: set[str], text: str) -> int:
    """How many of the words ``a`` occur in ``text``."""
    return len(a & content_words(text))
