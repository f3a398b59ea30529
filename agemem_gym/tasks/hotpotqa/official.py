"""HotpotQA stages as the authors' released code builds them (the ``official`` protocol).

- Stage 1 is one user message holding every paragraph of the example (gold and distractor),
  each as ``title: sentence sentence ...`` with at most 10 sentences, after a one-line casual
  opener; the message calls for no particular memory operation (``op="none"``).
- Stage 2 is unrelated chat. The release asks qwen-max to write three "completely unrelated"
  messages per episode; offline, we draw them from :data:`UNRELATED_CHAT`, a fixed pool of our
  own, seeded per episode.

Example:
    >>> from agemem_gym.tasks.hotpotqa.data import HotpotExample
    >>> ex = HotpotExample(id="x", question="Q?", answer="A", type="bridge", level="easy",
    ...     supporting_facts=(("T", 0),), context=(("T", ("One.", " Two.")), ("U", ("Three.",))))
    >>> print(paragraphs_message(ex))
    Just chatting about a few topics at once; here is what I read, by title:
    T: One.  Two.
    U: Three.
"""

from __future__ import annotations

import numpy as np

from agemem_gym.tasks.hotpotqa.data import HotpotExample

MAX_SENTENCES = 10

UNRELATED_CHAT: tuple[str, ...] = (
    "I finally repotted my basil this morning; it had outgrown the old pot weeks ago.",
    "Do you think it is worth learning to touch-type properly at my age?",
    "My neighbour's cat keeps sleeping on our doormat and I have started to like it.",
    "We tried a new ramen place last night; the broth was good but far too salty.",
    "I keep forgetting to water the plants on the balcony when it gets hot.",
    "Is it normal for a bicycle chain to squeak after it rained?",
    "I am thinking of switching my morning coffee to green tea for a while.",
    "The train was twenty minutes late again, so I read half a novel on the platform.",
    "What is a good way to keep a sourdough starter alive while travelling?",
    "I bought a second-hand desk lamp and it works better than my new one.",
    "My sister wants to take up rock climbing and asked me to come along.",
    "Honestly, folding fitted sheets is the hardest chore in the house.",
    "I watched a documentary about octopuses and now I cannot stop thinking about them.",
    "The power went out for an hour yesterday and it was surprisingly peaceful.",
    "Should I bring an umbrella to a picnic if the forecast says thirty percent rain?",
    "I started a small jigsaw puzzle of a lighthouse and I am stuck on the sky.",
)


def paragraphs_message(example: HotpotExample) -> str:
    """Stage 1 of the release: every paragraph of the example in one casual message."""
    lines = [f"{title}: {' '.join(sentences[:MAX_SENTENCES])}" for title, sentences in example.context]
    return "Just chatting about a few topics at once; here is what I read, by title:\n" + "\n".join(lines)


def unrelated_chat(rng: np.random.Generator, count: int) -> tuple[str, ...]:
    """``count`` distinct messages of unrelated chat drawn with ``rng``."""
    picks = rng.choice(len(UNRELATED_CHAT), size=min(count, len(UNRELATED_CHAT)), replace=False)
    return tuple(UNRELATED_CHAT[int(i)] for i in picks)
