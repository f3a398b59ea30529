"""Assistant: procedurally generated personal-assistant sessions (``AgeMem/Assistant-v0``).

Description:
    A user tells the assistant about themselves (coffee order, home city, dog's name, ...),
    later changes some of these facts and retracts others, chats about unrelated things, and
    finally asks about current values. No engine or model is needed; difficulty scales with
    the constructor's parameters.

Stages:
    1. One user message per turn. ``num_facts`` facts are stated (op ``add``); ``num_updates``
       of them are later changed (op ``update``: the new value supersedes the old one) and
       ``num_deletes`` retracted (op ``delete``); ``small_talk`` turns need no memory (op
       ``none``). Each change comes after the fact it changes, at a seeded position.
    2. ``num_distractors`` turns of chit-chat. Each opens with a near miss (the same kind of
       fact about someone else: "my sister's coffee order is a cortado") followed by
       ``distractor_sentences`` sentences of small talk, so an unmanaged context outgrows the
       token budget.
    3. One question about ``num_queried`` current values, preferring changed facts, so a stale
       memory gives a wrong answer.

Observation/Action:
    As for every AgeMem env (:class:`~agemem_gym.env.AgeMemEnv`).

Reward/metrics:
    ``score`` is the fraction of queried facts answered with the current value and without the
    superseded one; ``success`` is 1 when all are right.

Termination:
    At the stage-3 answer.

Data:
    None: task ``i`` of the evaluation set is generated from seed ``i``; :meth:`sample`
    draws training tasks from seeds outside the evaluation set. The seeds differ, not always
    the facts: with small settings (one fact, no updates) the generator has only a few dozen
    worlds, so a training task can state the same fact values as an evaluation task (in
    other words, and its id differs).

Example:
    >>> source = AssistantTasks(num_facts=3, num_updates=1, num_deletes=0)
    >>> task = source.get(0, np.random.default_rng(0))
    >>> [f.op for f in task.stage1].count("update")
    1
"""

from __future__ import annotations

import numpy as np

from agemem_gym.errors import ConfigError
from agemem_gym.metrics import normalize_answer
from agemem_gym.tasks._common import choose
from agemem_gym.tasks.base import Fact, TaskInstance, TaskSource

# key: (how the query names it, canonical statement, values, ways to say it, ways to change it)
_ATTRIBUTES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "coffee": ("my usual coffee order", "The user's usual coffee order is {v}.",
               ("oat latte", "flat white", "double espresso", "cold brew", "cappuccino", "matcha latte")),
    "city": ("the city I live in", "The user lives in {v}.",
             ("Lisbon", "Osaka", "Denver", "Tallinn", "Porto", "Hobart", "Quito", "Bergen")),
    "dog": ("my dog's name", "The user's dog is named {v}.",
            ("Biscuit", "Juniper", "Mochi", "Pepper", "Tofu", "Waffles")),
    "gym": ("the day I go to the gym", "The user goes to the gym on {v}.",
            ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")),
    "dentist": ("the date of my dentist appointment", "The user's dentist appointment is on {v}.",
                ("March 3", "April 17", "May 9", "June 21", "July 2", "August 14")),
    "author": ("my favourite author", "The user's favourite author is {v}.",
               ("Ursula Le Guin", "Italo Calvino", "Toni Morrison", "Haruki Murakami", "Chinua Achebe")),
    "allergy": ("what I'm allergic to", "The user is allergic to {v}.",
                ("peanuts", "shellfish", "penicillin", "pollen", "sesame")),
    "airline": ("my preferred airline", "The user's preferred airline is {v}.",
                ("Finnair", "KLM", "Qantas", "Iberia", "Emirates", "JetBlue")),
    "employer": ("the company I work for", "The user works for {v}.",
                 ("Acme Robotics", "Blue Heron Labs", "Northwind", "Globex", "Initech")),
    "sister": ("my sister's name", "The user's sister is named {v}.",
               ("Maya", "Ingrid", "Leila", "Rosa", "Anika", "Priya")),
    "car": ("the colour of my car", "The user's car is {v}.",
            ("red", "silver", "dark green", "navy blue", "white")),
    "instrument": ("the instrument I'm learning", "The user is learning the {v}.",
                   ("cello", "banjo", "piano", "trumpet", "ukulele")),
}
_SAY = (
    "By the way, {q} is {v}.", "Oh, something you should know: {q} is {v}.",
    "Quick note for later: {q} is {v}.", "Just so you know, {q} is {v}.",
)
_CHANGE = (
    "Actually, that changed: {q} is now {v}.", "Update on something I told you: {q} is {v} now.",
    "Scratch what I said before, {q} is now {v}.",
)
_RETRACT = (
    "Please forget what I told you about {q}; it's no longer true.",
    "Never mind what I said about {q}, that's off.",
)
_SMALL_TALK = (
    "Long day at work today, nothing special.", "I finally cleaned my desk this morning.",
    "The trains were a bit late again.", "I'm thinking of trying a new recipe tonight.",
)
_OTHERS = ("my sister", "my colleague", "my neighbour", "my friend Sam", "my cousin")
_FILLER = (
    "The weather has been all over the place this week.", "I watched half a documentary about "
    "octopuses and fell asleep.", "Someone in the office keeps microwaving fish.",
    "I should really water the plants more often.", "There was a great sunset yesterday.",
    "My phone keeps suggesting the strangest playlists.", "I read that pigeons can recognise faces.",
    "The new bakery down the street sells out by nine.", "I can never remember where I parked.",
    "We argued about the best pizza topping for an hour.",
)


class AssistantTasks(TaskSource):
    """Generator of personal-assistant sessions. See the module docstring.

    Args:
        num_facts: facts stated in stage 1 (at most 12).
        num_updates: facts changed later in stage 1.
        num_deletes: facts retracted later in stage 1.
        small_talk: stage-1 turns that need no memory.
        num_distractors: stage-2 turns.
        distractor_sentences: small-talk sentences per distractor (context pressure).
        num_queried: current values the stage-3 question asks for.
        token_budget: T_max for this benchmark.
        eval_size: tasks in the evaluation set (indices ``0 .. eval_size - 1``).
    """

    name = "assistant"
    max_rounds = 120

    def __init__(self, num_facts: int = 6, num_updates: int = 2, num_deletes: int = 1,
                 small_talk: int = 1, num_distractors: int = 8, distractor_sentences: int = 12,
                 num_queried: int = 2, token_budget: int = 2048, eval_size: int = 100):
        if not 1 <= num_facts <= len(_ATTRIBUTES):
            raise ConfigError(f"num_facts must be in 1..{len(_ATTRIBUTES)}, got {num_facts}")
        if num_updates + num_deletes > num_facts:
            raise ConfigError(f"num_updates + num_deletes ({num_updates} + {num_deletes}) must not "
                              f"exceed num_facts ({num_facts})")
        if not 1 <= num_queried <= num_facts - num_deletes:
            raise ConfigError(f"num_queried must be in 1..{num_facts - num_deletes} "
                              f"(facts that are not retracted), got {num_queried}")
        if min(num_updates, num_deletes, small_talk, num_distractors, distractor_sentences) < 0:
            raise ConfigError("counts must be >= 0")
        self.num_facts, self.num_updates, self.num_deletes = num_facts, num_updates, num_deletes
        self.small_talk, self.num_distractors = small_talk, num_distractors
        self.distractor_sentences, self.num_queried = distractor_sentences, num_queried
        self.token_budget, self.eval_size = token_budget, eval_size

    def __len__(self) -> int:
        return self.eval_size

    def sample(self, rng: np.random.Generator) -> TaskInstance:
        """A training task: generated from a seed outside the evaluation set's ``0 .. eval_size-1``."""
        return self.get(int(rng.integers(self.eval_size, 2**31 - 1)), rng)

    def training_split(self) -> str:
        """The training pool: every seed from ``eval_size`` on."""
        return f"assistant: generated from seeds {self.eval_size}..2**31-2 (evaluation: 0..{self.eval_size - 1})"

    def get(self, index: int, rng: np.random.Generator) -> TaskInstance:
        world = np.random.default_rng([index, 20260105])  # what is true: fixed by the index
        keys = [str(k) for k in world.choice(list(_ATTRIBUTES), self.num_facts, replace=False)]
        values = {k: choose(world, _ATTRIBUTES[k][2]) for k in keys}
        changed = keys[: self.num_updates]
        retracted = keys[self.num_updates : self.num_updates + self.num_deletes]
        new_values = {k: choose(world, [v for v in _ATTRIBUTES[k][2] if v != values[k]]) for k in changed}

        turns: list[Fact] = [self._state(k, values[k], rng) for k in keys]
        turns += [Fact(choose(rng, _SMALL_TALK), op="none") for _ in range(self.small_talk)]
        order = list(rng.permutation(len(turns)))
        turns = [turns[i] for i in order]
        for key in changed + retracted:  # each change lands somewhere after its fact
            first = next(i for i, t in enumerate(turns) if t.key == key)
            position = int(rng.integers(first + 1, len(turns) + 1))
            turns.insert(position, self._change(key, new_values.get(key), rng))

        current = {k: new_values.get(k, values[k]) for k in keys if k not in retracted}
        live = [k for k in keys if k not in retracted]
        queried = sorted(live, key=lambda k: (k not in changed, live.index(k)))[: self.num_queried]
        phrases = [_ATTRIBUTES[k][0] for k in queried]
        query = "Quick question: what is " + " and what is ".join(phrases) + "?"
        return TaskInstance(
            task_id=f"assistant-{index}",
            query=query,
            answers=tuple(current[k] for k in queried),
            stage1=tuple(turns),
            distractors=tuple(self._distractor(keys, rng) for _ in range(self.num_distractors)),
            supporting_facts=tuple(_ATTRIBUTES[k][1].format(v=current[k]) for k in keys if k in current),
            key_items=tuple(phrases),
            metadata={"queried": [{"key": k, "value": current[k],
                                   "stale": values[k] if k in changed else None} for k in queried],
                      "oracle_answer": "; ".join(current[k] for k in queried)},
        )

    def score(self, task: TaskInstance, answer: str) -> dict[str, float]:
        """Fraction of queried values given correctly (current value, not the stale one)."""
        text = f" {normalize_answer(answer)} "
        right = 0
        for item in task.metadata["queried"]:
            has_current = f" {normalize_answer(item['value'])} " in text
            has_stale = item["stale"] is not None and f" {normalize_answer(item['stale'])} " in text
            right += has_current and not has_stale
        score = right / len(task.metadata["queried"])
        return {"score": score, "success": float(score == 1.0)}

    # -- wording -------------------------------------------------------------------------------
    @staticmethod
    def _state(key: str, value: str, rng: np.random.Generator) -> Fact:
        phrase, statement, _ = _ATTRIBUTES[key]
        message = choose(rng, _SAY).format(q=phrase, v=value)
        return Fact(message[0].upper() + message[1:], statement.format(v=value), key, "add")

    @staticmethod
    def _change(key: str, value: str | None, rng: np.random.Generator) -> Fact:
        phrase, statement, _ = _ATTRIBUTES[key]
        if value is None:
            return Fact(choose(rng, _RETRACT).format(q=phrase), "", key, "delete")
        return Fact(choose(rng, _CHANGE).format(q=phrase, v=value), statement.format(v=value), key, "update")

    def _distractor(self, keys: list[str], rng: np.random.Generator) -> str:
        key = choose(rng, keys)
        phrase, _, values = _ATTRIBUTES[key]
        other = choose(rng, _OTHERS)
        near_miss = f"Funny thing, for {other} {phrase.replace('my ', 'their ').replace('I ', 'they ')} is {choose(rng, values)}."
        filler = [str(s) for s in rng.choice(_FILLER, self.distractor_sentences, replace=True)]
        return " ".join([near_miss, *filler])
