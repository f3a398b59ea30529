"""A-Mem: every message becomes a Zettelkasten note that links to its neighbours and evolves them.

A re-implementation of the A-Mem pipeline on the env's controller port, with our own prompts.
For every incoming stage-1/2 message:

1. Note call: the message becomes a note with at least three keywords, a one-sentence context
   and at least three tags. An unusable reply stores nothing (a counted failure).
2. Neighbours: the top ``neighbours`` (5) stored notes by cosine similarity to the message.
3. Evolution call (when there are neighbours): the model sees the new note and each neighbour
   under its real memory id and decides whether to evolve. "strengthen" links the new note to
   neighbours it names by id and retags it; "update_neighbor" rewrites the context and tags of
   neighbours it names by id. Each decision carries the id of the note it changes, so a
   neighbour is never picked by its search rank or its place in a list (two upstream bugs), and
   links are kept as ids. Ids that were not shown are ignored and counted.
4. The neighbour rewrites go through ``port.update`` and the new note through ``port.add``.
   The stored (and so embedded) text of a note is its message plus its context and keywords;
   every ``consolidate_every`` evolutions the whole index is rebuilt with the tags too (and
   notes stored after that carry their tags in the text from the start). A
   note's keywords, context, tags and links are also in the memory's metadata, so the trace
   and the final memory show them; the episode's :class:`AMemState` keeps them as lists.

Answering: a keyword call turns the stage-3 query into search keywords (the query itself when
the reply is unusable), the top ``top_k`` (10) notes are retrieved, their linked notes are added,
and all of them go before the model's answer as one user message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from agemem_gym.errors import ConfigError
from agemem_gym.memory.ltm import MemoryEntry
from agemem_gym.port import EpisodeHandle
from baselines._controller import Arrival, Episode, MemoryController
from baselines._structured import object_schema

logger = logging.getLogger(__name__)

_WORDS = {"type": "array", "items": {"type": "string"}, "minItems": 3}
NOTE_SCHEMA = object_schema("amem_note", {"keywords": _WORDS, "context": {"type": "string"}, "tags": _WORDS})
ACTIONS = ("strengthen", "update_neighbor")
EVOLVE_SCHEMA = object_schema("amem_evolution", {
    "should_evolve": {"type": "boolean"},
    "actions": {"type": "array", "items": {"type": "string", "enum": list(ACTIONS)}},
    "links": {"type": "array", "items": {"type": "string"}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "neighbor_updates": {"type": "array", "items": object_schema("neighbor_update", {
        "id": {"type": "string"}, "context": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}}})},
})
KEYWORDS_SCHEMA = object_schema("amem_query", {"keywords": {"type": "array", "items": {"type": "string"},
                                                            "minItems": 1}})

NOTE_SYSTEM = (
    "You file notes in a personal knowledge base. Read the text and describe it as a note:\n"
    '- "keywords": at least three words or short phrases a search would use to find it, the '
    "most important first (names, places, numbers, key ideas);\n"
    '- "context": one sentence saying what the text is about and why it may matter later;\n'
    '- "tags": at least three broad labels that group it with related notes (a topic, a kind '
    "of fact, a domain).\n"
    'Reply with JSON only: {"keywords": ["..."], "context": "...", "tags": ["..."]}'
)
EVOLVE_SYSTEM = (
    "You maintain a web of linked notes. A new note has arrived; its nearest stored notes are "
    "listed, each with its id. Decide whether the web should change:\n"
    '- "should_evolve": false leaves everything as it is.\n'
    '- "strengthen": link the new note to related stored notes; "links" are their ids and '
    '"tags" the new note\'s tags after seeing them.\n'
    '- "update_neighbor": the new note changes what a stored note means; for each such note give '
    'its id with its new one-sentence "context" and new "tags" in "neighbor_updates".\n'
    "Name notes only by the ids shown. Leave a list empty when its action is not chosen.\n"
    'Reply with JSON only: {"should_evolve": true, "actions": ["strengthen"], "links": ["<id>"], '
    '"tags": ["..."], "neighbor_updates": [{"id": "<id>", "context": "...", "tags": ["..."]}]}'
)
EVOLVE_USER = "New note:\n{note}\n\nNearest stored notes:\n{neighbours}"
KEYWORDS_SYSTEM = (
    "Turn the question or task into the keywords a search of stored notes should use: names, "
    "places, objects, dates and key ideas, most important first.\n"
    'Reply with JSON only: {"keywords": ["...", "..."]}'
)
RECALL_HEADER = "[Memories] Notes from my memory that may help:"


@dataclass
class Note:
    """One A-Mem note: the message it files, how the note model described it, and its links
    (memory ids)."""

    text: str
    keywords: list[str]
    context: str
    tags: list[str]
    links: list[str] = field(default_factory=list)

    def indexed(self, with_tags: bool) -> str:
        """The stored and embedded text: the message, its context and keywords (and tags)."""
        lines = [self.text, f"Context: {self.context}", f"Keywords: {', '.join(self.keywords)}"]
        if with_tags:
            lines.append(f"Tags: {', '.join(self.tags)}")
        return "\n".join(lines)

    def metadata(self) -> dict[str, Any]:
        """What the memory's metadata shows (a store on disk keeps the lists as JSON text)."""
        return {"note": self.text, "keywords": list(self.keywords), "context": self.context,
                "tags": list(self.tags), "links": list(self.links)}

    def shown(self, memory_id: str | None = None) -> dict[str, Any]:
        """The note as a prompt shows it."""
        head = {"id": memory_id} if memory_id is not None else {}
        return {**head, "text": self.text, "context": self.context, "keywords": self.keywords,
                "tags": self.tags}


@dataclass
class AMemState:
    """What A-Mem keeps for one episode: its notes by memory id, and its evolution count."""

    notes: dict[str, Note] = field(default_factory=dict)
    evolutions: int = 0
    consolidations: int = 0
    #: decisions that could not be applied (an id not shown, an empty rewrite), with why
    ignored: list[str] = field(default_factory=list)

    @property
    def tags_indexed(self) -> bool:
        return self.consolidations > 0


class AMem(MemoryController):
    """The A-Mem memory pipeline as a controller baseline. See the module docstring.

    Args:
        neighbours: stored notes the evolution call sees (A-Mem: 5).
        consolidate_every: evolutions between two rebuilds of the index with tags (A-Mem: 100).
        **options: the answering-model and controller options of
            :class:`~baselines._controller.MemoryController`; ``top_k`` (default 10) is the
            number of notes retrieved for a query, before their links are added.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.llm.base import Generation, LLMBackend
        >>> from agemem_gym.rollout import rollout
        >>> class Replies(LLMBackend):  # stands in for the model's text
        ...     name = "replies"
        ...     def generate(self, prompts, json_schema=None, **kw):
        ...         title = (json_schema or {}).get("title")
        ...         text = {"amem_note": '{"keywords": ["a", "b", "c"], "context": "A fact.", '
        ...                              '"tags": ["x", "y", "z"]}',
        ...                 "amem_evolution": '{"should_evolve": false, "actions": [], "links": [], '
        ...                                   '"tags": [], "neighbor_updates": []}',
        ...                 "amem_query": '{"keywords": ["city"]}'}.get(title, "<answer>ok</answer>")
        ...         return [Generation(text, 9, 5, 0.0) for _ in prompts]
        ...     def count_tokens(self, text): return len(text) // 4
        >>> env = AgeMemEnv("assistant", num_facts=2, num_updates=0, num_deletes=0, small_talk=0,
        ...                 num_distractors=1, num_queried=1, **AMem.env_options)
        >>> reward, info = rollout(env, AMem(llm=Replies()), seed=0, task_index=0)
        >>> len(info["ltm"]), info["ltm"][0]["metadata"]["tags"]
        (3, ['x', 'y', 'z'])
        >>> env.close()
    """

    name: ClassVar[str] = "amem"

    def __init__(self, model: str = "", backend: str = "transformers", *, neighbours: int = 5,
                 consolidate_every: int = 100, **options: Any):
        if neighbours < 1 or consolidate_every < 1:
            raise ConfigError(f"need neighbours >= 1 and consolidate_every >= 1; got {neighbours}, "
                              f"{consolidate_every}")
        options.setdefault("top_k", 10)
        super().__init__(model, backend, **options)
        self.neighbours, self.consolidate_every = neighbours, consolidate_every

    def new_state(self, handle: EpisodeHandle) -> AMemState:
        return AMemState()

    # -- writing -----------------------------------------------------------------------------
    def observe(self, arrivals: Sequence[Arrival]) -> None:
        system = {"role": "system", "content": NOTE_SYSTEM}
        built = self.ask("note", [(ep, [system, {"role": "user", "content": m.content}])
                                  for ep, m in arrivals], NOTE_SCHEMA)
        todo = [(ep, _note(m.content, reply)) for (ep, m), reply in zip(arrivals, built, strict=True)
                if reply is not None]
        near = [self.nearest(ep, note) for ep, note in todo]
        asked = [(ep, self.evolution_prompt(note, {i: ep.state.notes[i] for i in found}))
                 for (ep, note), found in zip(todo, near, strict=True) if found]
        replies = iter(self.ask("evolve", asked, EVOLVE_SCHEMA))
        for (ep, note), found in zip(todo, near, strict=True):
            reply = next(replies) if found else None
            if reply is not None and reply["should_evolve"]:
                self.evolve(ep, note, reply, found)
            self.store(ep, note)

    def nearest(self, ep: Episode, note: Note) -> list[str]:
        """Ids of the stored notes most similar to the new note's message, best first."""
        notes = ep.state.notes
        if not notes:
            return []
        return [e.id for e in ep.port.retrieve(note.text, top_k=self.neighbours) if e.id in notes]

    @staticmethod
    def evolution_prompt(note: Note, neighbours: dict[str, Note]) -> list[dict[str, str]]:
        """The evolution call's prompt: the new note and each neighbour under its memory id."""
        shown = "\n".join(json.dumps(n.shown(i), ensure_ascii=False) for i, n in neighbours.items())
        user = EVOLVE_USER.format(note=json.dumps(note.shown(), ensure_ascii=False), neighbours=shown)
        return [{"role": "system", "content": EVOLVE_SYSTEM}, {"role": "user", "content": user}]

    def evolve(self, ep: Episode, note: Note, reply: dict[str, Any], shown: Sequence[str]) -> None:
        """Apply an evolution decision; only ids in ``shown`` are acted on (others are counted)."""
        state, ignored = ep.state, []
        actions = set(reply["actions"])
        if "strengthen" in actions:
            for memory_id in dict.fromkeys(i.strip() for i in reply["links"]):
                if memory_id in shown:
                    note.links.append(memory_id)
                else:
                    ignored.append(f"link to {memory_id!r}, which was not shown")
            tags = _clean(reply["tags"])
            if tags:
                note.tags = tags
        if "update_neighbor" in actions:
            for update in reply["neighbor_updates"]:
                why = self._update_neighbour(ep, update, shown)
                if why:
                    ignored.append(why)
        state.evolutions += 1
        if ignored:
            state.ignored.extend(ignored)
            ep.port.record_llm("controller", [], failures=len(ignored),
                               reason=f"evolve: ignored {'; '.join(ignored)}")
        if state.evolutions % self.consolidate_every == 0:
            self.consolidate(ep)

    def _update_neighbour(self, ep: Episode, update: dict[str, Any], shown: Sequence[str]) -> str | None:
        memory_id = update["id"].strip()
        if memory_id not in shown:
            return f"update of {memory_id!r}, which was not shown"
        neighbour = ep.state.notes[memory_id]
        context, tags = update["context"].strip(), _clean(update["tags"])
        if not context and not tags:
            return f"update of {memory_id!r} with neither a context nor tags"
        rewritten = replace(neighbour, context=context or neighbour.context, tags=tags or neighbour.tags)
        result = ep.port.update(memory_id, rewritten.indexed(ep.state.tags_indexed), rewritten.metadata())
        if not result.ok:
            return f"update of {memory_id!r} failed: {result.text}"
        ep.state.notes[memory_id] = rewritten
        return None

    def store(self, ep: Episode, note: Note) -> str | None:
        """Add the note to the episode's memory; its memory id (None if the store refused it)."""
        result = ep.port.add(note.indexed(ep.state.tags_indexed), note.metadata())
        if not result.ok:
            ep.port.record_llm("controller", [], failures=1, reason=f"store: {result.text}")
            return None
        ep.state.notes[result.data["id"]] = note
        return result.data["id"]

    def consolidate(self, ep: Episode) -> None:
        """Rebuild the index: every note is stored again with its tags in the embedded text."""
        ep.state.consolidations += 1
        for memory_id, note in ep.state.notes.items():
            ep.port.update(memory_id, note.indexed(True), note.metadata())

    # -- answering ---------------------------------------------------------------------------
    def recall(self, arrivals: Sequence[Arrival]) -> list[str | None]:
        system = {"role": "system", "content": KEYWORDS_SYSTEM}
        replies = self.ask("keywords", [(ep, [system, {"role": "user", "content": m.content}])
                                        for ep, m in arrivals], KEYWORDS_SCHEMA)
        texts: list[str | None] = []
        for (ep, message), reply in zip(arrivals, replies, strict=True):
            words = _clean(reply["keywords"]) if reply is not None else []
            query = " ".join(words) or message.content
            texts.append(self.memory_block(ep, ep.port.retrieve(query, top_k=self.top_k)))
        return texts

    def memory_block(self, ep: Episode, found: Sequence[MemoryEntry]) -> str | None:
        """The retrieved notes and the notes they link to, as one message (None when empty)."""
        notes = ep.state.notes
        ids = [e.id for e in found if e.id in notes]
        linked = [i for hit in ids for i in notes[hit].links if i in notes]
        chosen = list(dict.fromkeys(ids + linked[: self.top_k]))
        if not chosen:
            return None
        lines = [RECALL_HEADER]
        for memory_id in chosen:
            note = notes[memory_id]
            lines.append(f"- {note.text} (context: {note.context}; keywords: "
                         f"{', '.join(note.keywords)}; tags: {', '.join(note.tags)})")
        return "\n".join(lines)


def _clean(words: Sequence[str]) -> list[str]:
    """Stripped, non-empty, first occurrence kept."""
    return list(dict.fromkeys(w.strip() for w in words if w.strip()))


def _note(text: str, reply: dict[str, Any]) -> Note:
    return Note(text, _clean(reply["keywords"]), reply["context"].strip(), _clean(reply["tags"]))
