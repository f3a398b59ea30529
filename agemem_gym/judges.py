"""Judges: who scores memory and retrieval for the reward and the metrics.

The paper uses an LLM judge. The default here is deterministic (no model needed) and every
score records the judge's ``name``; :class:`LLMJudge` asks a model instead, with the paper's
0-1 scales in our own rubric wording, and falls back to the deterministic formula (counting a
failure) whenever the model's reply holds no usable score.

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

import copy
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from agemem_gym.llm.base import LLMBackend, Usage
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
                        answers: Sequence[str], question: str = "") -> float:
        good = sum(self.is_high_quality(e, supporting_facts, answers) for e in entries)
        return good / max(1, len(entries))

    def memory_quality(self, entries: Sequence[str], supporting_facts: Sequence[str]) -> dict[str, float]:
        return memory_quality(entries, supporting_facts, self.match_f1)

    def relevance(self, query: str, retrieved: Sequence[str]) -> float:
        if not retrieved:
            return 0.0
        vectors = self.encoder.encode([query, *retrieved])
        return float(np.clip(vectors[1:] @ vectors[0], 0.0, 1.0).mean())

    def answer_score(self, question: str, answer: str, references: Sequence[str]) -> float | None:
        """An LLM judge's score J of an answer; None here (the benchmark's own metric rules)."""
        return None

    @property
    def relevance_name(self) -> str:
        return f"encoder-cosine:{self.encoder.name}"


_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*([01](?:\.\d+)?|\.\d+)\b", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"^\s*([01](?:\.\d+)?|\.\d+)\s*$")
_REPLY = "Reply with one line and nothing else: Score: <a number from 0 to 1>"

ANSWER_RUBRIC = (
    "You grade an answer to a question against reference answers.\n"
    "Question: {question}\nReference answers: {references}\nAnswer to grade: {answer}\n"
    "Give 1 if the answer states what a reference states (different wording is fine), 0.5 if it "
    "is partly right or hedges between a right and a wrong answer, 0 if it is wrong, missing or "
    "off topic. " + _REPLY
)
MEMORY_RUBRIC = (
    "You grade an assistant's long-term memory against the facts it was expected to keep.\n"
    "Expected facts:\n{facts}\nStored entries:\n{entries}\n"
    "Give 1 when every expected fact is stored and nothing irrelevant is, lower in proportion to "
    "missing facts and irrelevant entries, 0 when none of the expected facts is stored. " + _REPLY
)
ENTRY_RUBRIC = (
    "A question will be asked later: {question} (reference answer: {references}).\n"
    "Facts that matter for it:\n{facts}\nOne stored memory entry: {entry}\n"
    "Give 1 if this entry holds information useful for answering, 0 if it does not. " + _REPLY
)
RELEVANCE_RUBRIC = (
    "Question: {question}\nRetrieved memory entries:\n{entries}\n"
    "Give 1 if the entries are all relevant to the question, 0 if none is, in between in "
    "proportion. " + _REPLY
)


def parse_score(text: str) -> float | None:
    """The 0-1 score in a judge's reply, or None when there is none.

    >>> parse_score("Score: 0.75"), parse_score("**Score:** 1"), parse_score("0"), parse_score("maybe")
    (0.75, 1.0, 0.0, None)
    """
    match = _SCORE.search(text) or _BARE_NUMBER.match(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if 0.0 <= value <= 1.0 else None


class LLMJudge(Judge):
    """Scores with a language model; each unusable reply falls back to :class:`Judge`.

    Args:
        llm: the judge model's backend.
        encoder: the deterministic fallback's encoder.
        max_new_tokens: the reply limit (a score needs a few tokens).

    Example:
        >>> from agemem_gym.llm.base import Generation
        >>> from agemem_gym.memory import HashingEncoder
        >>> class Replies(LLMBackend):  # stands in for the judge model's text
        ...     name = "scripted"
        ...     def generate(self, prompts, **kw):
        ...         return [Generation(t, 50, 3, 0.1) for t in ["Score: 0.5", "no idea"][:len(prompts)]]
        ...     def count_tokens(self, text): return 1
        >>> judge = LLMJudge(Replies(), HashingEncoder())
        >>> judge.answer_score("Capital of France?", "Paris, I think", ["Paris"])
        0.5
        >>> judge.usage.as_dict()["llm_calls"], judge.usage.failures
        (1, 0)
    """

    def __init__(self, llm: LLMBackend, encoder: Encoder, max_new_tokens: int = 16, match_f1: float = 0.6):
        super().__init__(encoder, match_f1)
        self.llm = llm
        self.max_new_tokens = max_new_tokens
        self.usage = Usage()
        self.name = f"llm:{getattr(llm, 'model_name', None) or llm.name}"
        self._cache: dict[str, float | None] | None = None  # replies of one episode's prefetch

    def for_episode(self, usage: Usage) -> LLMJudge:
        """This judge (same model) counting its calls into ``usage``: one episode's cost, exact
        however many episodes share the judge."""
        view = copy.copy(self)
        view.usage, view._cache = usage, {}
        return view

    def prefetch(self, *, question: str, answer: str | None, references: Sequence[str],
                 memory: Sequence[str], stored: Sequence[str], supporting_facts: Sequence[str],
                 retrieved: Sequence[str]) -> None:
        """Ask every question the end of an episode needs in one batched call; the scoring
        methods then read the replies instead of calling the model one by one."""
        prompts = [*self._storage_prompts(stored, supporting_facts, references, question)]
        prompts += [p for p in (self._memory_prompt(memory, supporting_facts),
                                self._relevance_prompt(question, retrieved)) if p]
        if answer is not None:
            prompts.append(self._answer_prompt(question, answer, references))
        self._scores(prompts)

    def _scores(self, prompts: list[str]) -> list[float | None]:
        cache = self._cache if self._cache is not None else {}
        missing = list(dict.fromkeys(p for p in prompts if p not in cache))
        if missing:
            generations = self.llm.generate([[{"role": "user", "content": p}] for p in missing],
                                            max_new_tokens=self.max_new_tokens, temperature=0.0)
            self.usage.add(generations)
            scores = [parse_score(g.text) for g in generations]
            self.usage.failures += sum(s is None for s in scores)
            cache.update(zip(missing, scores, strict=True))
        return [cache[p] for p in prompts]

    @staticmethod
    def _answer_prompt(question: str, answer: str, references: Sequence[str]) -> str:
        return ANSWER_RUBRIC.format(question=question, answer=answer or "(no answer)",
                                    references=" | ".join(references) or "(none)")

    @staticmethod
    def _memory_prompt(entries: Sequence[str], supporting_facts: Sequence[str]) -> str | None:
        if not entries or not supporting_facts:
            return None
        return MEMORY_RUBRIC.format(facts=_lines(supporting_facts), entries=_lines(entries))

    @staticmethod
    def _storage_prompts(entries: Sequence[str], supporting_facts: Sequence[str],
                         answers: Sequence[str], question: str) -> list[str]:
        return [ENTRY_RUBRIC.format(question=question or "(unknown)", references=" | ".join(answers),
                                    facts=_lines(supporting_facts), entry=e) for e in entries]

    @staticmethod
    def _relevance_prompt(query: str, retrieved: Sequence[str]) -> str | None:
        return RELEVANCE_RUBRIC.format(question=query, entries=_lines(retrieved)) if retrieved else None

    def answer_score(self, question: str, answer: str, references: Sequence[str]) -> float | None:
        return self._scores([self._answer_prompt(question, answer, references)])[0]

    def memory_quality(self, entries: Sequence[str], supporting_facts: Sequence[str]) -> dict[str, float]:
        fallback = super().memory_quality(entries, supporting_facts)
        prompt = self._memory_prompt(entries, supporting_facts)
        if prompt is None:
            return fallback
        score = self._scores([prompt])[0]
        return fallback if score is None else {**fallback, "mq": score}

    def storage_quality(self, entries: Sequence[str], supporting_facts: Sequence[str],
                        answers: Sequence[str], question: str = "") -> float:
        if not entries:
            return 0.0
        scores = self._scores(self._storage_prompts(entries, supporting_facts, answers, question))
        good = [s if s is not None else float(self.is_high_quality(e, supporting_facts, answers))
                for e, s in zip(entries, scores, strict=True)]
        return sum(good) / len(entries)

    def relevance(self, query: str, retrieved: Sequence[str]) -> float:
        prompt = self._relevance_prompt(query, retrieved)
        if prompt is None:
            return 0.0
        score = self._scores([prompt])[0]
        return super().relevance(query, retrieved) if score is None else score

    @property
    def relevance_name(self) -> str:
        return self.name


def _lines(texts: Sequence[str]) -> str:
    return "\n".join(f"- {t}" for t in texts)


def make_judge(spec: Judge | dict[str, Any] | None, encoder: Encoder) -> Judge:
    """The deterministic judge (``None``), a given judge, or an :class:`LLMJudge` built from
    ``{"model": ..., "backend": "transformers" | "openai", **backend options}``."""
    if spec is None:
        return Judge(encoder)
    if isinstance(spec, Judge):
        return spec
    from agemem_gym.llm import make_backend

    options = dict(spec)
    model = options.pop("model")
    judge = LLMJudge(make_backend(options.pop("backend", "transformers"), model, **options), encoder)
    judge.name = f"llm:{model}"  # the name given, not the folder a named model resolves to
    return judge
