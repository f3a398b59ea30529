"""The memory port: how an external memory controller (a baseline) acts on an episode.

A controller such as Mem0 reads each incoming user message, decides memory operations with its
own model calls and applies them outside the agent's reply. Through :class:`MemoryPort` those
operations run through the same tool code as the agent's own calls, are counted and traced under
source ``controller``, add no message to the context and spend no round. Its model calls are
counted per role in the episode's cost.

A policy receives one :class:`EpisodeHandle` per episode in ``Policy.start_episode`` and finds it
again in ``act_batch`` through ``info["episode_key"]``; ``info["incoming"]`` is the
:class:`IncomingMessage` that arrived since the policy last acted, or None.

Example:
    >>> from agemem_gym import AgeMemEnv
    >>> env = AgeMemEnv("assistant", num_facts=3, num_distractors=1, tools=())
    >>> obs, info = env.reset(seed=0)
    >>> info["incoming"].kind
    'fact'
    >>> port = env.episode_handle.port
    >>> port.add(info["incoming"].content).ok, len(port.entries())
    (True, 1)
    >>> obs, *_, info = env.step("<answer>Noted.</answer>")
    >>> info["round"], info["tool_calls_by_source"]["controller"]
    (1, {'Add_memory': 1})
    >>> env.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from agemem_gym.llm.base import Generation
from agemem_gym.memory.ltm import MemoryEntry
from agemem_gym.protocol import ToolCall
from agemem_gym.tools import ToolResult

if TYPE_CHECKING:
    from agemem_gym.env import AgeMemEnv

MessageKind = Literal["fact", "distractor", "query", "observation"]
#: Roles whose model calls an episode's cost counts.
COST_ROLES: tuple[str, ...] = ("agent", "controller", "judge", "summarizer")
#: Long-term memory operations a controller may run unless the env's ``controller_ops`` says less.
CONTROLLER_OPS: tuple[str, ...] = ("add", "update", "delete", "retrieve")
_OP_TOOLS = {"add": "Add_memory", "update": "Update_memory", "delete": "Delete_memory",
             "retrieve": "Retrieve_memory"}


@dataclass(frozen=True)
class IncomingMessage:
    """A user message the env just presented: a stage-1 fact turn, a stage-2 distractor, the
    stage-3 query, or an engine observation."""

    kind: MessageKind
    id: str
    content: str
    stage: int
    turn: int


class PortError(RuntimeError):
    """The port was used outside a running episode or for an operation the env does not allow."""


class MemoryPort:
    """Long-term memory operations and model-call accounting for one env's current episode."""

    def __init__(self, env: AgeMemEnv):
        self._env = env

    def _call(self, op: str, arguments: dict[str, Any]) -> ToolResult:
        if op not in self._env.config.controller_ops:
            raise PortError(f"the env does not allow controller operation {op!r}; allowed: "
                            f"{', '.join(self._env.config.controller_ops) or 'none'}")
        call = ToolCall(_OP_TOOLS[op], {k: v for k, v in arguments.items() if v is not None})
        return self._env._run_tool(call, source="controller")

    def add(self, content: str, metadata: dict[str, Any] | None = None,
            memory_type: str | None = None) -> ToolResult:
        """Store a new entry; ``result.data["id"]`` is its id."""
        return self._call("add", {"content": content, "metadata": metadata, "memory_type": memory_type})

    def update(self, memory_id: str, content: str, metadata: dict[str, Any] | None = None) -> ToolResult:
        """Replace an entry's content (and merge ``metadata``)."""
        return self._call("update", {"memory_id": memory_id, "content": content, "metadata": metadata})

    def delete(self, memory_id: str) -> ToolResult:
        """Remove an entry."""
        return self._call("delete", {"memory_id": memory_id, "confirmation": True})

    def retrieve(self, query: str, top_k: int = 3,
                 metadata_filter: dict[str, Any] | None = None) -> list[MemoryEntry]:
        """The ``top_k`` entries most similar to ``query`` (cosine), best first, with scores."""
        result = self._call("retrieve", {"query": query, "top_k": top_k,
                                         "metadata_filter": metadata_filter})
        if not result.ok:
            return []
        ltm = self._env.ltm
        scores = result.data.get("scores") or [None] * len(result.data["ids"])
        return [MemoryEntry(i, ltm.get(i).content, ltm.get(i).metadata, s)
                for i, s in zip(result.data["ids"], scores, strict=True)]

    def entries(self) -> list[MemoryEntry]:
        """Every stored entry (a snapshot)."""
        return self._env.ltm.entries()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The env's encoder: one unit-norm row per text."""
        return self._env.encoder.encode(list(texts))

    def insert_context(self, text: str, *, kind: str = "retrieval") -> None:
        """Append ``text`` to the agent's context as a user message (traced)."""
        self._env._insert_context(text, kind)

    def replace_context(self, ids: Sequence[str], text: str) -> str | None:
        """Replace the agent's context messages ``ids`` by one summary message ``text`` at the
        first one's place (traced as ``context_summarized``); return its id, or None when none
        of ``ids`` is in the context."""
        return self._env._replace_context(list(ids), text)

    def record_llm(self, role: str, generations: Sequence[Generation], *, failures: int = 0,
                   reason: str | None = None) -> None:
        """Count model calls in the episode's ``cost[role]``; ``failures`` of them were unusable
        (``reason`` says why)."""
        if role not in COST_ROLES:
            raise PortError(f"unknown cost role {role!r}; the roles are {', '.join(COST_ROLES)}")
        self._env._record_llm(role, generations, failures, reason)


@dataclass(frozen=True)
class EpisodeHandle:
    """One running episode as a policy sees it: a key unique among running episodes, the
    episode's memory port, and which task it plays."""

    key: str
    port: MemoryPort
    task_id: str
    benchmark: str
