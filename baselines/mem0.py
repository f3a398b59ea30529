"""Mem0: extract facts from each message, then one batched ADD/UPDATE/DELETE/NONE decision.

The paper-era Mem0 pipeline (not the later additive rewrite), re-implemented on the env's
controller port with our own prompts. For every incoming stage-1/2 message:

1. Extraction call: the message becomes a JSON list of short facts (today's date given, facts in
   the message's language). An unusable reply gives no facts and is counted as a failure.
2. For each fact: search the episode's memory (top 5, cosine similarity); hits of all facts are
   merged and de-duplicated by id.
3. The model sees those memories under small integer ids ("0", "1", ...), never the real ids;
   ids it invents are ignored (and counted).
4. Decision call, one for all facts: each fact is ADD (new text), UPDATE (an id and the new
   text), DELETE (an id) or NONE.
5. The decisions are applied in order through the port: ADD stores the text with its md5 hash
   (the store stamps ``created_at``/``updated_at``), UPDATE re-embeds and keeps ``created_at``,
   DELETE removes. Every change appends a :class:`HistoryRow` to the episode's history (also
   traced by the env as ``memory_added/updated/deleted`` with source ``controller``).

Answering: the stage-3 query is searched (top ``top_k``, similarity, optionally at least
``min_similarity``) and the hits are put before the model's answer as one user message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agemem_gym.memory.ltm import MemoryEntry
from agemem_gym.port import EpisodeHandle, IncomingMessage
from baselines._controller import Arrival, Episode, MemoryController
from baselines._structured import object_schema

logger = logging.getLogger(__name__)

EVENTS = ("ADD", "UPDATE", "DELETE", "NONE")
FACTS_SCHEMA = object_schema("facts", {"facts": {"type": "array", "items": {"type": "string"}}})
ACTIONS_SCHEMA = object_schema("memory_actions", {"actions": {"type": "array", "items": object_schema(
    "action", {"event": {"type": "string", "enum": list(EVENTS)},
               "id": {"type": "string"}, "text": {"type": "string"}})}})

EXTRACT_SYSTEM = (
    "You keep the long-term memory of a personal assistant. Read the user's newest message and "
    "list what is worth remembering for later conversations: facts about the user (details, "
    "preferences, plans, people, changes to what they said before) and facts they state that a "
    "later question could need. Write each as one short, self-contained sentence, in the language "
    "of the message. Skip greetings, small talk and anything the user does not assert. When "
    "nothing is worth keeping, give an empty list. Today's date is {today}.\n"
    'Reply with JSON only: {{"facts": ["...", "..."]}}'
)
DECIDE_SYSTEM = (
    "You maintain a memory store. You are given the stored memories that may relate to some new "
    "facts (each with a number as its id) and the new facts. For every new fact choose one event:\n"
    '- ADD: nothing stored covers it; "text" is the fact, "id" is "".\n'
    '- UPDATE: it changes, corrects or adds detail to a stored memory; "id" is that memory\'s '
    'number, "text" the complete new memory.\n'
    '- DELETE: it says a stored memory is no longer true; "id" is that memory\'s number.\n'
    "- NONE: it is already stored, or not worth keeping.\n"
    "Use only the ids you are given.\n"
    'Reply with JSON only: {"actions": [{"event": "ADD", "id": "", "text": "..."}, ...]}'
)
DECIDE_USER = "Stored memories:\n{memories}\n\nNew facts:\n{facts}"
RECALL_HEADER = "[Memories] What I remember that may help:"


@dataclass(frozen=True)
class HistoryRow:
    """One change to a memory: which, before and after, what kind, and when (stage, turn)."""

    memory_id: str
    old: str | None
    new: str | None
    event: str
    stage: int
    turn: int


@dataclass
class Mem0State:
    """What Mem0 keeps for one episode besides the store itself."""

    history: list[HistoryRow] = field(default_factory=list)
    #: decisions that could not be applied (an id not shown, an empty text), with why
    ignored: list[str] = field(default_factory=list)


def content_hash(text: str) -> str:
    """The md5 of a memory's text, stored in its metadata as upstream does."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class Mem0(MemoryController):
    """The Mem0 memory pipeline as a controller baseline. See the module docstring.

    Args:
        today: the date the extraction prompt gives (fixed by default, so runs reproduce).
        search_k: memories searched per fact (Mem0: 5).
        min_similarity: the least cosine similarity a memory needs to be recalled (None: any).
        **options: the answering-model and controller options of
            :class:`~baselines._controller.MemoryController` (``top_k`` is the recall size).

    Example:
        >>> import json
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.llm.base import Generation, LLMBackend
        >>> from agemem_gym.rollout import rollout
        >>> class Replies(LLMBackend):  # stands in for the model's text
        ...     name = "replies"
        ...     def generate(self, prompts, json_schema=None, **kw):
        ...         title = (json_schema or {}).get("title")
        ...         if title == "facts":
        ...             text = json.dumps({"facts": [prompts[0][-1]["content"]]})
        ...         elif title == "memory_actions":
        ...             text = '{"actions": [{"event": "ADD", "id": "", "text": "a fact"}]}'
        ...         else:
        ...             text = "<think></think><answer>ok</answer>"
        ...         return [Generation(text, 9, 5, 0.0) for _ in prompts]
        ...     def count_tokens(self, text): return len(text) // 4
        >>> env = AgeMemEnv("assistant", num_facts=2, num_updates=0, num_deletes=0, small_talk=0,
        ...                 num_distractors=1, num_queried=1, **Mem0.env_options)
        >>> reward, info = rollout(env, Mem0(llm=Replies()), seed=0, task_index=0)
        >>> [e["content"] for e in info["ltm"]][:2]
        ['a fact', 'a fact']
        >>> env.close()
    """

    name: ClassVar[str] = "mem0"

    def __init__(self, model: str = "", backend: str = "transformers", *, today: str = "2026-01-05",
                 search_k: int = 5, min_similarity: float | None = None, **options: Any):
        super().__init__(model, backend, **options)
        self.today, self.search_k, self.min_similarity = today, search_k, min_similarity

    def new_state(self, handle: EpisodeHandle) -> Mem0State:
        return Mem0State()

    def history(self, key: str) -> list[HistoryRow]:
        """The change history of a running episode."""
        return list(self.episode(key).state.history)

    # -- writing -----------------------------------------------------------------------------
    def observe(self, arrivals: Sequence[Arrival]) -> None:
        facts = self.extract_facts(arrivals)
        todo = [(ep, m, f) for (ep, m), f in zip(arrivals, facts, strict=True) if f]
        if not todo:
            return
        shown = [self.related_memories(ep, f) for ep, _, f in todo]
        prompts = [self.decision_prompt(memories, f) for (_, _, f), memories in zip(todo, shown, strict=True)]
        replies = self.ask("decide", [(ep, p) for (ep, _, _), p in zip(todo, prompts, strict=True)],
                           ACTIONS_SCHEMA)
        for (ep, message, _), memories, reply in zip(todo, shown, replies, strict=True):
            if reply is not None:
                self.apply(ep, message, reply["actions"], memories)

    def extract_facts(self, arrivals: Sequence[Arrival]) -> list[list[str]]:
        """One extraction call per message, batched; an unusable reply gives no facts."""
        system = {"role": "system", "content": EXTRACT_SYSTEM.format(today=self.today)}
        prompts = [(ep, [system, {"role": "user", "content": m.content}]) for ep, m in arrivals]
        replies = self.ask("extract", prompts, FACTS_SCHEMA)
        return [[f.strip() for f in r["facts"] if f.strip()] if r else [] for r in replies]

    def related_memories(self, ep: Episode, facts: Sequence[str]) -> list[MemoryEntry]:
        """The top ``search_k`` memories of each fact, merged by id (first hit kept)."""
        found: dict[str, MemoryEntry] = {}
        for fact in facts:
            for entry in ep.port.retrieve(fact, top_k=self.search_k):
                found.setdefault(entry.id, entry)
        return list(found.values())

    @staticmethod
    def decision_prompt(memories: Sequence[MemoryEntry], facts: Sequence[str]) -> list[dict[str, str]]:
        """The decision call's prompt: memories under integer ids ("0", "1", ...) and the facts."""
        listed = json.dumps([{"id": str(i), "text": e.content} for i, e in enumerate(memories)],
                            ensure_ascii=False)
        user = DECIDE_USER.format(memories=listed, facts=json.dumps(list(facts), ensure_ascii=False))
        return [{"role": "system", "content": DECIDE_SYSTEM}, {"role": "user", "content": user}]

    def apply(self, ep: Episode, message: IncomingMessage, actions: Sequence[dict[str, Any]],
              shown: Sequence[MemoryEntry]) -> None:
        """Apply decisions in order through the port; invented ids and empty texts are ignored
        (and counted as failures of the decision)."""
        real = {str(i): e for i, e in enumerate(shown)}
        ignored: list[str] = []
        for action in actions:
            event, text = action["event"], action["text"].strip()
            if event == "NONE":
                continue
            entry = real.get(action["id"].strip())
            if event in ("UPDATE", "DELETE") and entry is None:
                ignored.append(f"{event} of id {action['id']!r}, which was not shown")
            elif event in ("ADD", "UPDATE") and not text:
                ignored.append(f"{event} with an empty text")
            else:
                why = self._apply_one(ep, message, event, text, entry)
                if why:
                    ignored.append(why)
        if ignored:
            ep.state.ignored.extend(ignored)
            ep.port.record_llm("controller", [], failures=len(ignored),
                               reason=f"decide: ignored {'; '.join(ignored)}")

    def _apply_one(self, ep: Episode, message: IncomingMessage, event: str, text: str,
                   entry: MemoryEntry | None) -> str | None:
        if event == "ADD":
            result = ep.port.add(text, {"hash": content_hash(text)})
            memory_id, old = result.data.get("id", ""), None
        elif event == "UPDATE":
            assert entry is not None
            result = ep.port.update(entry.id, text, {"hash": content_hash(text)})
            memory_id, old = entry.id, entry.content
        else:
            assert entry is not None
            result = ep.port.delete(entry.id)
            memory_id, old, text = entry.id, entry.content, ""
        if not result.ok:  # e.g. a memory already deleted by an earlier decision
            return f"{event} failed: {result.text}"
        ep.state.history.append(HistoryRow(memory_id, old, text or None, event, message.stage,
                                           message.turn))
        return None

    # -- answering ---------------------------------------------------------------------------
    def recall(self, arrivals: Sequence[Arrival]) -> list[str | None]:
        return [self.memory_block(ep.port.retrieve(m.content, top_k=self.top_k))
                for ep, m in arrivals]

    def memory_block(self, entries: Sequence[MemoryEntry]) -> str | None:
        """The recalled memories as one message (None when none pass ``min_similarity``)."""
        kept = [e for e in entries
                if self.min_similarity is None or (e.score is not None and e.score >= self.min_similarity)]
        if not kept:
            return None
        return "\n".join([RECALL_HEADER, *(f"- {e.content}" for e in kept)])
