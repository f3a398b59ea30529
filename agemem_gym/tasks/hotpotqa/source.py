"""HotpotQA as a three-stage memory benchmark: ``AgeMem/HotpotQA-v0``.

Description:
    Multi-hop question answering where the evidence is not in the prompt: it is told to the
    agent in an earlier conversation (stage 1), buried under related chatter (stage 2), and
    the question comes last (stage 3). The agent must have stored the right facts in
    long-term memory and keep its context clean to answer.

Stages (our construction; the paper gives none):
    Stage 1, one user turn per item, casual wording drawn with the episode's generator:

    - every gold supporting sentence, made self-contained: whitespace is collapsed and, when
      the sentence does not mention its paragraph's title (without a trailing
      ``(disambiguation)``), it is prefixed with ``"<title>: "``. That sentence is the
      ``Fact.content`` (op ``add``, ``key = f"{title}#{sent_idx}"``), told in the file's order;
    - ``corrections`` (default on): one supporting fact is first told in a wrong version (one
      number changed, preferring a number of the answer, then a year; else one capitalised
      name swapped for a distractor paragraph's title) and corrected at the end of stage 1
      (op ``update``, same key, correct content). The wrong value is ``metadata["wrong_value"]``.
      Examples with nothing to change get no correction;
    - ``asides`` (default 1): other sentences of the gold paragraphs, as side remarks that
      need no memory (op ``none``), at positions fixed per example;
    - ``retractions`` (default 0): a sentence of a distractor paragraph told as a fact (op
      ``add``) and retracted on the next turn (op ``delete``).

    ``supporting_facts`` are the correct contents of the gold sentences, exactly what a
    scripted oracle holds after stage 1. Which fact is corrupted, the wrong value and where
    the asides go depend only on the example (a generator seeded by its id); the episode's
    generator only picks the wording templates.

    Stage 2, ``num_distractors`` (default 4) turns, each one sentence of a different
    distractor paragraph of the same example (paragraphs ranked by word overlap with the
    question; of each, the sentence of at most 50 words with the most overlap), made
    self-contained the same way. An example without distractor paragraphs falls back to unused gold sentences, then to
    small talk.

    Stage 3: the question, verbatim. ``key_items`` (preservation reward) are its quoted
    titles, dates/years and capitalised name spans, each a verbatim substring of it.

Observation:
    The env's chat context (this module supplies the user messages only).

Action:
    Free text with tool calls; the final ``<answer>`` is the predicted answer string.

Reward/metrics:
    :meth:`HotpotQATasks.score` applies the official HotpotQA answer metrics
    (:mod:`agemem_gym.metrics`) against the gold answer: ``score`` = F1 (the task metric),
    ``success`` = EM, plus ``em``, ``f1``, ``precision``, ``recall``. Memory quality is
    measured by the env against ``supporting_facts``.

Termination:
    At the stage-3 answer, or at the env's round limit (``max_rounds`` = 60 by default).

Data:
    ``setting`` is ``distractor`` (default: each question with its 2 gold and 8 distractor
    paragraphs) or ``fullwiki`` (the paragraphs a retriever found in all of Wikipedia, gold
    ones possibly missing). ``data=PATH`` is a file (the original HotpotQA JSON, JSON Lines
    of records, or a hub parquet shard) or a directory holding the split's original file
    (``hotpot_dev_distractor_v1.json``, ``hotpot_dev_fullwiki_v1.json``,
    ``hotpot_test_fullwiki_v1.json``; ``hotpot_train_v1.1.json`` serves both settings) or a
    downloaded copy of the hub dataset (``<setting>/<split>-*.parquet``); else the environment
    variable ``AGEMEM_HOTPOTQA_DATA``; else the hub dataset ``hotpotqa/hotpot_qa``, config
    ``setting``, through ``datasets`` (extra ``[hotpotqa]``; this may download). ``split`` is
    ``validation`` (default), ``train``, or (fullwiki only) ``test``; it chooses the file
    inside a directory and the hub split (a file named directly is used as it is). Data are
    read on first use; nothing downloads when a path is given.

    ``limit`` keeps the first ``limit`` examples, or with ``sample_seed`` a sample of that
    size drawn with ``numpy.random.default_rng(sample_seed)`` (kept in the data's order).

    The test split has no answers or supporting facts. With ``gold_model`` (an LLM, as
    ``{"model": ..., "backend": ...}`` like ``judge``), :mod:`~agemem_gym.tasks.hotpotqa.fullwiki`
    makes them once and caches them; an example whose reply is unusable is left out and
    counted in :attr:`HotpotQATasks.gold_report`. The authors' released evaluation is the first
    800 questions of fullwiki test with golds by qwen-max: ``setting="fullwiki", split="test",
    limit=800, gold_model=...`` (:data:`~agemem_gym.tasks.hotpotqa.fullwiki.RELEASED_EVALUATION`).
    Its numbers are not comparable with those on the distractor dev set.

    Training tasks (:meth:`HotpotQATasks.sample`) come from the train split of the same
    setting: ``train_data=PATH`` (``hotpot_train_v1.1.json`` or a directory holding it), else
    the train file beside the evaluation file when ``data`` is a directory, else the hub's
    train split. Any example whose id or question is in the evaluation set is left out of the
    training pool.

>>> from agemem_gym.tasks.hotpotqa import HotpotQATasks
>>> HotpotQATasks(data="missing.json").task_metric
'f1'
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import numpy as np

from agemem_gym.config import check_choice
from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.metrics import best_answer_metrics
from agemem_gym.tasks._common import given_path
from agemem_gym.tasks.base import Fact, NoTrainingDataError, TaskInstance, TaskSource
from agemem_gym.tasks.hotpotqa import fullwiki, official, stages, text
from agemem_gym.tasks.hotpotqa.data import (
    ENV_VAR,
    HUB_DATASET,
    HotpotExample,
    Location,
    check_split,
    locate,
    select,
)

__all__ = ["HotpotQATasks"]

_TRAIN_HOW_TO = (
    "Pass train_data=PATH (hotpot_train_v1.1.json or a directory holding it), or let datasets "
    f"fetch the train split of {HUB_DATASET} ({{setting}})."
)


class HotpotQATasks(TaskSource):
    """HotpotQA questions with their evidence told in stage 1.

    Args:
        data: a local HotpotQA file or directory; None reads ``$AGEMEM_HOTPOTQA_DATA``, then
            the hub.
        split: ``validation``, ``train`` or (fullwiki only) ``test``: the evaluation set.
        train_data: the training examples (a train file or a directory holding one); None:
            the train file in ``data``'s directory, else the hub's train split.
        limit: use only the first ``limit`` examples (with ``sample_seed``: a seeded sample).
        setting: ``distractor`` or ``fullwiki``: the hub config and the files looked for.
        sample_seed: draw the ``limit`` examples at random with this seed instead.
        gold_model: the LLM that makes gold answers and supporting facts for examples without
            them (the test split), as ``{"model": ..., "backend": ..., **options}`` or an LLM
            backend; None: such examples are an error.

        num_distractors: stage-2 turns per task.
        asides: op-``none`` gold sentences per task in stage 1.
        corrections: tell one supporting fact wrong first and correct it (op ``update``).
        retractions: distractor sentences told and then retracted (op ``delete``) per task.

    Attributes:
        gold_report: what making golds cost and left out
            (:class:`~agemem_gym.tasks.hotpotqa.fullwiki.GoldReport`); None until the
            evaluation set is loaded.

    >>> import json, tempfile
    >>> import numpy as np
    >>> record = {"_id": "x1", "question": "Where was Ada Lovelace born?", "answer": "London",
    ...           "supporting_facts": [["Ada Lovelace", 1]],
    ...           "context": [["Ada Lovelace", ["Ada was a mathematician.", " She was born in London."]],
    ...                       ["Charles Babbage", ["Babbage designed the Analytical Engine."]]]}
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     json.dump([record], f)
    >>> task = HotpotQATasks(data=f.name, asides=0).get(0, np.random.default_rng(0))
    >>> task.supporting_facts, task.key_items
    (('Ada Lovelace: She was born in London.',), ('Ada Lovelace',))
    >>> HotpotQATasks(data=f.name).score(task, "london")["success"]
    1.0
    >>> import os; os.remove(f.name)
    """

    name = "hotpotqa"
    instructions = (
        "The final question is a multi-hop factual question. Answer it with the shortest "
        "exact span that answers it (a name, a date, a number, or yes/no), nothing else."
    )
    max_rounds = 60
    token_budget = 8192

    def __init__(
        self,
        *,
        data: str | os.PathLike[str] | None = None,
        split: str = "validation",
        train_data: str | os.PathLike[str] | None = None,
        limit: int | None = None,
        num_distractors: int = 4,
        asides: int = 1,
        corrections: bool = True,
        retractions: int = 0,
        stage1: str = "sentences",
        distractors: str = "related",
        setting: str = "distractor",
        sample_seed: int | None = None,
        gold_model: Any = None,
    ) -> None:
        self.setting = check_choice("setting", setting, ("distractor", "fullwiki"))
        check_split(split, setting)
        for option, value in (
            ("num_distractors", num_distractors),
            ("asides", asides),
            ("retractions", retractions),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{option} must be an integer >= 0, got {value!r}.")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigError(f"limit must be None or an integer >= 1, got {limit!r}.")
        if sample_seed is not None and (
            isinstance(sample_seed, bool) or not isinstance(sample_seed, int) or limit is None
        ):
            raise ConfigError(f"sample_seed must be an integer and needs limit= (the sample's "
                              f"size), got sample_seed={sample_seed!r}, limit={limit!r}.")
        self.gold_model = fullwiki.check_gold_model(gold_model)
        self.sample_seed = sample_seed
        self.gold_report: fullwiki.GoldReport | None = None
        self.data = data
        self.split = split
        self.train_data = train_data
        self.limit = limit
        self.num_distractors = num_distractors
        self.asides = asides
        self.corrections = bool(corrections)
        self.retractions = retractions
        self.stage1 = check_choice("stage1", stage1, ("sentences", "paragraphs"))
        self.distractor_style = check_choice("distractors", distractors, ("related", "unrelated"))
        self._selected: list[HotpotExample] | None = None  # before golds are made
        self._examples: list[HotpotExample] | None = None
        self._train: list[HotpotExample] | None = None

    # ------------------------------------------------------------------ data
    @property
    def selected(self) -> list[HotpotExample]:
        """The evaluation set as selected from the data (``limit``, ``sample_seed``), golds
        not yet made."""
        if self._selected is None:
            location = self._location()
            self._selected = select(location.read(), self.limit, self.sample_seed)
        return self._selected

    @property
    def examples(self) -> list[HotpotExample]:
        """The evaluation set, read on first access; examples without gold get one made by
        ``gold_model`` (cached), and those it fails on are left out (:attr:`gold_report`)."""
        if self._examples is None:
            location = self._location()
            self._examples, self.gold_report = fullwiki.complete_golds(
                self.selected, self.gold_model, where=location.resolved().where, split=self.split)
        return self._examples

    def _location(self) -> Location:
        return locate(self.data, self.split, self.setting)

    def __len__(self) -> int:
        """Number of questions in the evaluation set."""
        return len(self.examples)

    def _train_location(self) -> Location:
        """The local train data, or (no files) the hub's train split."""
        if self.train_data is not None:
            return locate(self.train_data, "train", self.setting)
        given, _ = given_path(self.data, ENV_VAR)
        if given is not None and given.is_dir():
            return locate(given, "train", self.setting)
        return Location((), self.setting, "train")

    def _no_training(self, error: Exception) -> NoTrainingDataError:
        how_to = _TRAIN_HOW_TO.format(setting=self.setting)
        return NoTrainingDataError(f"HotpotQA training data: {error} {how_to}")

    def training_split(self) -> str:
        """The train split's file, or the hub's train split (read on first sample)."""
        try:
            where = self._train_location().where
        except DataNotFoundError as e:
            raise self._no_training(e) from e
        return f"hotpotqa: train split, {where}, minus any evaluation id or question"

    @property
    def train_examples(self) -> list[HotpotExample]:
        """The training pool: the train split without any example of the evaluation set."""
        if self._train is None:
            self.training_split()  # fails early with what to pass
            try:
                examples = self._train_location().read()
            except DataNotFoundError as e:
                raise self._no_training(e) from e
            ids = {ex.id for ex in self.selected}  # golds need not be made to train
            questions = {ex.question for ex in self.selected}
            self._train = [
                ex for ex in examples if ex.id not in ids and ex.question not in questions
            ]
            if not self._train:
                raise self._no_training(ValueError(
                    "every HotpotQA training example is in the evaluation set."))
        return self._train

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task: an example of the train split, never one of the evaluation set."""
        pool = self.train_examples
        return self._task(pool[int(rng.integers(len(pool)))], rng, "train")

    @property
    def task_metric(self) -> str:
        """``f1``: the official answer F1 is the task score."""
        return "f1"

    def score(self, task: TaskInstance, answer: str) -> dict[str, float]:
        """Official HotpotQA answer metrics of ``answer`` against the task's gold answer.

        Returns:
            ``score`` (F1), ``success`` (EM as a float), ``em``, ``f1``, ``precision``,
            ``recall``.
        """
        result = best_answer_metrics(answer or "", task.answers)
        return {"score": result["f1"], "success": result["em"], **result}

    # ------------------------------------------------------------------ tasks
    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        """Task ``index``; ``rng`` only chooses the wording of the messages."""
        n = len(self)
        if (
            isinstance(index, bool)
            or not isinstance(index, (int, np.integer))
            or not 0 <= index < n
        ):
            raise ConfigError(f"task index must be an integer in [0, {n}), got {index!r}.")
        return self._task(self.examples[int(index)], rng, self.split)

    def _task(self, example: HotpotExample, rng: np.random.Generator, split: str) -> TaskInstance:
        struct_rng = np.random.default_rng(zlib.crc32(example.id.encode("utf-8")))
        plan = stages.plan_stage1(
            example, struct_rng, corrections=self.corrections, asides=self.asides,
            retractions=self.retractions,
        )
        stage1 = tuple(stages.word(turn, rng) for turn in plan.turns)
        if self.stage1 == "paragraphs":  # the released code: every paragraph in one message
            stage1 = (Fact(official.paragraphs_message(example), "\n".join(plan.supporting),
                           "paragraphs", "add"),)
        if self.distractor_style == "unrelated":
            distractors = official.unrelated_chat(rng, self.num_distractors)
        else:
            distractors = stages.distractors(example, plan, rng, self.num_distractors)
        return TaskInstance(
            task_id=example.id,
            query=example.question,
            answers=(example.answer,),
            stage1=stage1,
            distractors=distractors,
            supporting_facts=plan.supporting,
            key_items=text.key_items(example.question),
            metadata={
                "type": example.type,
                "level": example.level,
                "split": split,
                "setting": self.setting,
                "gold_by": example.gold_by or "dataset",
                "supporting_sp": [list(pair) for pair in example.supporting_facts],
                "corrected_key": plan.corrected,
                "wrong_value": plan.stale[0] if plan.stale else None,
            },
        )
