"""LangMem: a background memory manager after each turn, and a running summary of the context.

A re-implementation of LangMem's background path on the env's controller port, with our own
prompts. For every incoming stage-1/2 message:

1. Search with "dilated window" queries: the last 1, 2, 4, ... messages of the conversation
   (``windows`` queries) each search the episode's memory; the hits are merged by id (best
   score kept) and the top ``search_k`` (5) are shown to the manager with their ids.
2. One manager call reads the recent conversation (the largest window) and those memories and
   emits operations: ``create`` (new content), ``patch`` (an id and its whole new content) and,
   only when ``deletes=True`` (off by default, as in LangMem), ``remove`` (an id). The schema
   offers ``remove`` only when it is on.
3. The operations are applied in order through the port. An id that the search did not find is
   ignored and counted, as is a create or patch with no content; an unusable reply changes
   nothing and is a counted failure.

Running summary: before the model answers, once the messages not yet summarised pass
``summary_after_tokens``, one call folds all but the newest ``summary_keep_tokens`` of them
(and the previous summary) into a new summary, and the port replaces those messages in the
agent's context by that one summary message (traced as ``context_summarized``, source
``controller``): the env's context really shrinks, and the model sees its system prompt, the
summary and the newer messages. The manager still reads the conversation as it was told (the
summary only trims the working context, as in LangMem). The env's context reset after stage 1
drops the summary with everything else.

The manager runs when a message arrives, before the model's reply to it, so it reads the
conversation up to that message (LangMem's reflection runs after the reply).

Answering: the stage-3 query searches the memory (``top_k``, LangMem's limit of 10) and the hits
go before the model's answer as one user message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agemem_gym.errors import ConfigError
from agemem_gym.memory.ltm import MemoryEntry
from agemem_gym.port import EpisodeHandle
from agemem_gym.spaces import Observation
from baselines._controller import Arrival, Episode, MemoryController
from baselines._structured import object_schema

logger = logging.getLogger(__name__)

SUMMARY_SCHEMA = object_schema("langmem_summary", {"summary": {"type": "string"}})

MANAGE_SYSTEM = (
    "You manage the long-term memory of an assistant. Read the recent conversation (oldest "
    "first; the last message is the new one) and the stored memories that may relate to it, "
    "each with its id. Keep the memory correct, complete and free of duplicates:\n"
    '- "create": a new memory; "content" is one self-contained statement worth remembering '
    '(facts about the user, their plans and preferences, facts a later question may need); '
    '"id" is "".\n'
    '- "patch": a stored memory is outdated, wrong or incomplete; "id" is its id and "content" '
    "its complete new text.\n"
    "{remove}"
    "Use only the ids shown. Give no operation for small talk or what is already stored.\n"
    'Reply with JSON only: {{"operations": [{{"op": "create", "id": "", "content": "..."}}]}}'
)
REMOVE_RULE = '- "remove": a stored memory is no longer true; "id" is its id, "content" is "".\n'
MANAGE_USER = "Stored memories:\n{memories}\n\nRecent conversation:\n{conversation}"
SUMMARY_SYSTEM = (
    "You keep a running summary of a conversation so it can continue without its older "
    "messages. Write one compact summary that keeps every fact, name, number, request and open "
    "question the conversation may still need, and drops small talk.{previous}\n"
    'Reply with JSON only: {{"summary": "..."}}'
)
SUMMARY_PREVIOUS = " Extend the summary so far with the new messages:\n{summary}"
SUMMARY_HEADER = "[Summary] The conversation so far, summarised:"
RECALL_HEADER = "[Memories] What I remember that may help:"


@dataclass(frozen=True)
class Turn:
    """One message of the agent's context as LangMem reads it."""

    id: str
    role: str
    content: str
    kind: str


@dataclass
class LangMemState:
    """What LangMem keeps for one episode: the agent's context as last seen, the conversation
    told so far, and the running summary's text and message id."""

    #: the agent's context in order, system prompt included
    turns: list[Turn] = field(default_factory=list)
    #: every message seen since the last context reset, summarised or not, oldest first
    history: list[Turn] = field(default_factory=list)
    summary: str = ""
    summary_id: str | None = None
    summaries: int = 0
    #: operations that could not be applied (an id not found, no content), with why
    ignored: list[str] = field(default_factory=list)

    def read(self, observation: Observation, kinds: Mapping[str, str]) -> None:
        """Take the agent's current context; start afresh if the env reset the context."""
        self.turns = [Turn(m["id"], m["role"], m["content"], kinds.get(m["id"], "")) for m in observation]
        ids = {t.id for t in self.turns}
        known = {t.id for t in self.history} | ({self.summary_id} if self.summary_id else set())
        if known and not known & ids:
            self.history, self.summary, self.summary_id = [], "", None
        seen = {t.id for t in self.history}
        self.history += [t for t in self.unsummarized() if t.id not in seen]

    def unsummarized(self) -> list[Turn]:
        """The context without the system prompt and the running summary, oldest first."""
        return [t for t in self.turns if t.role != "system" and t.id != self.summary_id]

    def conversation(self) -> list[Turn]:
        """The messages the manager reads: the conversation so far without retrieved memories."""
        return [t for t in self.history if t.kind != "retrieval"]

    def fold(self, folded: Sequence[Turn], summary: str, summary_id: str) -> None:
        """Mirror the port's replacement: ``folded`` (and the old summary) become the summary
        message, at the first one's place."""
        gone = {t.id for t in folded} | ({self.summary_id} if self.summary_id else set())
        first = next(i for i, t in enumerate(self.turns) if t.id in gone)
        kept = [t for t in self.turns if t.id not in gone]
        kept.insert(first, Turn(summary_id, "user", f"{SUMMARY_HEADER}\n{summary}", "summary"))
        self.turns, self.summary, self.summary_id = kept, summary, summary_id
        self.summaries += 1


def dilated_sizes(messages: int, windows: int) -> list[int]:
    """Window sizes 1, 2, 4, ... (``windows`` of them), the last one capped at ``messages``.

    >>> dilated_sizes(10, 4), dilated_sizes(3, 4), dilated_sizes(1, 4)
    ([1, 2, 4, 8], [1, 2, 3], [1])
    """
    sizes = [min(2**i, messages) for i in range(windows) if i == 0 or 2 ** (i - 1) < messages]
    return list(dict.fromkeys(s for s in sizes if s > 0))


def manage_schema(deletes: bool) -> dict[str, Any]:
    """The manager's reply schema; ``remove`` is offered only when deletes are on."""
    ops = ["create", "patch", "remove"] if deletes else ["create", "patch"]
    return object_schema("langmem_operations", {"operations": {"type": "array", "items": object_schema(
        "operation", {"op": {"type": "string", "enum": ops}, "id": {"type": "string"},
                      "content": {"type": "string"}})}})


class LangMem(MemoryController):
    """LangMem's background memory manager and running summary as a controller baseline.

    See the module docstring.

    Args:
        search_k: memories the manager sees, merged over the window queries (LangMem: 5).
        windows: dilated-window queries per turn (4: the last 1, 2, 4 and 8 messages).
        deletes: let the manager remove memories (LangMem: off).
        summary_after_tokens: unsummarised context tokens that start a summary (None: never).
        summary_keep_tokens: the newest messages kept as they are when summarising, in tokens
            (the newest message is always kept).
        **options: the answering-model and controller options of
            :class:`~baselines._controller.MemoryController`; ``top_k`` (default 10) is the
            search limit when answering.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.llm.base import Generation, LLMBackend
        >>> from agemem_gym.rollout import rollout
        >>> class Replies(LLMBackend):  # stands in for the model's text
        ...     name = "replies"
        ...     def generate(self, prompts, json_schema=None, **kw):
        ...         title = (json_schema or {}).get("title")
        ...         text = {"langmem_operations": '{"operations": [{"op": "create", "id": "", '
        ...                                       '"content": "a fact"}]}'}.get(title, "<answer>ok</answer>")
        ...         return [Generation(text, 9, 5, 0.0) for _ in prompts]
        ...     def count_tokens(self, text): return len(text) // 4
        >>> env = AgeMemEnv("assistant", num_facts=2, num_updates=0, num_deletes=0, small_talk=0,
        ...                 num_distractors=1, num_queried=1, **LangMem.env_options)
        >>> reward, info = rollout(env, LangMem(llm=Replies()), seed=0, task_index=0)
        >>> [e["content"] for e in info["ltm"]]
        ['a fact', 'a fact', 'a fact']
        >>> env.close()
    """

    name: ClassVar[str] = "langmem"

    def __init__(self, model: str = "", backend: str = "transformers", *, search_k: int = 5,
                 windows: int = 4, deletes: bool = False, summary_after_tokens: int | None = 1024,
                 summary_keep_tokens: int = 256, **options: Any):
        if search_k < 1 or windows < 1 or summary_keep_tokens < 0 or (
                summary_after_tokens is not None and summary_after_tokens < 1):
            raise ConfigError(
                "need search_k >= 1, windows >= 1, summary_after_tokens >= 1 (or None) and "
                f"summary_keep_tokens >= 0; got {search_k}, {windows}, {summary_after_tokens}, "
                f"{summary_keep_tokens}")
        if summary_after_tokens is not None and summary_keep_tokens >= summary_after_tokens:
            raise ConfigError(
                f"summary_keep_tokens ({summary_keep_tokens}) must be below summary_after_tokens "
                f"({summary_after_tokens}), or nothing would ever be summarised; lower it")
        options.setdefault("top_k", 10)
        super().__init__(model, backend, **options)
        self.search_k, self.windows, self.deletes = search_k, windows, deletes
        self.summary_after_tokens, self.summary_keep_tokens = summary_after_tokens, summary_keep_tokens
        self.schema = manage_schema(deletes)

    def new_state(self, handle: EpisodeHandle) -> LangMemState:
        return LangMemState()

    def act_batch(self, observations: Sequence[Observation],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        episodes = [self.episode(info.get("episode_key", "")) for info in infos]
        for ep, observation, info in zip(episodes, observations, infos, strict=True):
            ep.state.read(observation, info.get("message_kinds", {}))
        if self.summary_after_tokens is not None:
            self.summarize(episodes)
        return super().act_batch([self.shown_context(ep) for ep in episodes], infos)

    # -- the running summary -------------------------------------------------------------------
    def summarize(self, episodes: Sequence[Episode]) -> None:
        """Fold old messages into each episode's running summary where they pass the bound."""
        todo = [(ep, folded) for ep in episodes if (folded := self.to_fold(ep.state))]
        prompts = [(ep, self.summary_prompt(ep.state.summary, folded)) for ep, folded in todo]
        replies = self.ask("summarize", prompts, SUMMARY_SCHEMA)
        for (ep, folded), reply in zip(todo, replies, strict=True):
            summary = reply["summary"].strip() if reply is not None else ""
            if reply is not None and not summary:
                ep.port.record_llm("controller", [], failures=1, reason="summarize: an empty summary")
            if not summary:
                continue
            replaced = ([ep.state.summary_id] if ep.state.summary_id else []) + [t.id for t in folded]
            new_id = ep.port.replace_context(replaced, f"{SUMMARY_HEADER}\n{summary}")
            if new_id is None:  # cannot happen while the state mirrors the context
                logger.warning("LangMem: none of %s is in the context; the summary is dropped", replaced)
                continue
            ep.state.fold(folded, summary, new_id)

    def to_fold(self, state: LangMemState) -> list[Turn]:
        """The unsummarised messages to fold now (none while they fit under the bound)."""
        assert self.summary_after_tokens is not None
        pending = state.unsummarized()
        sizes = [self.llm.count_tokens(t.content) for t in pending]
        if sum(sizes) <= self.summary_after_tokens:
            return []
        keep, kept = 1, sizes[-1]
        while keep < len(pending) and kept + sizes[-keep - 1] <= self.summary_keep_tokens:
            keep, kept = keep + 1, kept + sizes[-keep - 1]
        return pending[:-keep]

    @staticmethod
    def summary_prompt(previous: str, folded: Sequence[Turn]) -> list[dict[str, str]]:
        extra = SUMMARY_PREVIOUS.format(summary=previous) if previous else ""
        return [{"role": "system", "content": SUMMARY_SYSTEM.format(previous=extra)},
                {"role": "user", "content": _transcript(folded)}]

    @staticmethod
    def shown_context(ep: Episode) -> list[dict[str, str]]:
        """What the answering model sees: the env's context after any summary just made."""
        return [{"id": t.id, "role": t.role, "content": t.content} for t in ep.state.turns]

    # -- the memory manager ----------------------------------------------------------------------
    def observe(self, arrivals: Sequence[Arrival]) -> None:
        found = [self.search(ep, ep.state.conversation()) for ep, _ in arrivals]
        largest = 2 ** (self.windows - 1)
        prompts = [(ep, self.manager_prompt(ep.state.conversation()[-largest:], memories))
                   for (ep, _), memories in zip(arrivals, found, strict=True)]
        replies = self.ask("manage", prompts, self.schema)
        for (ep, _), memories, reply in zip(arrivals, found, replies, strict=True):
            if reply is not None:
                self.apply(ep, reply["operations"], memories)

    def search(self, ep: Episode, conversation: Sequence[Turn]) -> list[MemoryEntry]:
        """The top ``search_k`` memories over the dilated-window queries, best first."""
        best: dict[str, MemoryEntry] = {}
        for size in dilated_sizes(len(conversation), self.windows):
            query = "\n".join(t.content for t in conversation[-size:])
            for entry in ep.port.retrieve(query, top_k=self.search_k):
                if entry.id not in best or (entry.score or 0.0) > (best[entry.id].score or 0.0):
                    best[entry.id] = entry
        return sorted(best.values(), key=lambda e: -(e.score or 0.0))[: self.search_k]

    def manager_prompt(self, conversation: Sequence[Turn],
                       memories: Sequence[MemoryEntry]) -> list[dict[str, str]]:
        """The manager call's prompt: the memories with their ids, then the conversation."""
        system = MANAGE_SYSTEM.format(remove=REMOVE_RULE if self.deletes else "")
        listed = json.dumps([{"id": e.id, "content": e.content} for e in memories], ensure_ascii=False)
        user = MANAGE_USER.format(memories=listed, conversation=_transcript(conversation))
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def apply(self, ep: Episode, operations: Sequence[dict[str, Any]],
              shown: Sequence[MemoryEntry]) -> None:
        """Apply operations in order; ids the search did not find and empty contents are
        ignored (and counted as failures of the manager call)."""
        found = {e.id for e in shown}
        ignored = []
        for operation in operations:
            op, memory_id, content = operation["op"], operation["id"].strip(), operation["content"].strip()
            if op != "create" and memory_id not in found:
                ignored.append(f"{op} of id {memory_id!r}, which the search did not find")
            elif op != "remove" and not content:
                ignored.append(f"{op} with no content")
            else:
                result = (ep.port.add(content) if op == "create" else ep.port.update(memory_id, content)
                          if op == "patch" else ep.port.delete(memory_id))
                if not result.ok:  # e.g. a memory an earlier operation removed
                    ignored.append(f"{op} failed: {result.text}")
        if ignored:
            ep.state.ignored.extend(ignored)
            ep.port.record_llm("controller", [], failures=len(ignored),
                               reason=f"manage: ignored {'; '.join(ignored)}")

    # -- answering ---------------------------------------------------------------------------
    def recall(self, arrivals: Sequence[Arrival]) -> list[str | None]:
        texts: list[str | None] = []
        for ep, message in arrivals:
            found = ep.port.retrieve(message.content, top_k=self.top_k)
            texts.append("\n".join([RECALL_HEADER, *(f"- {e.content}" for e in found)]) if found else None)
        return texts


def _transcript(turns: Sequence[Turn]) -> str:
    return "\n".join(f"{t.role}: {t.content}" for t in turns)
