"""The episode trace: one event per thing that happened, in order, replayable.

Every event says when (round, stage, turn), who (``agent``, ``controller`` or ``env``), what
(``kind`` and a payload) and the state after it (context tokens, long-term memory size). Long
texts are capped with an explicit marker, never silently; memory contents are never capped (the
tools already bound them), so the final long-term memory can be rebuilt from the events alone
with :func:`replay_memory`.

Example:
    >>> trace = Trace()
    >>> _ = trace.emit("memory_added", {"id": "mem_1", "content": "Likes jazz", "metadata": {}},
    ...                source="agent", round=1, stage=1, turn=0, context_tokens=40, memory_size=1)
    >>> _ = trace.emit("memory_updated", {"id": "mem_1", "old": "Likes jazz", "new": "Likes blues",
    ...                "metadata": {}}, source="agent", round=2, stage=1, turn=1,
    ...                context_tokens=60, memory_size=1)
    >>> replay_memory(trace.events)
    {'mem_1': {'content': 'Likes blues', 'metadata': {}}}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EventSource = Literal["agent", "controller", "env"]
EventKind = Literal[
    "stage_start", "context_reset", "user_turn", "memory_check", "response", "tool_call",
    "retrieval", "memory_added", "memory_updated", "memory_deleted", "context_filtered",
    "context_summarized", "context_inserted", "answer", "engine_action", "engine_observation",
    "format_error", "limit",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]

#: Longest text kept in a payload field; longer texts end with a truncation marker.
TEXT_CAP = 8_000


def cap(text: str, limit: int = TEXT_CAP) -> str:
    """``text`` cut to ``limit`` characters with a marker saying how much was dropped.

    >>> cap("abcdef", 3)
    'abc...[truncated 3 chars]'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[truncated {len(text) - limit} chars]"


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened in an episode (see the module docstring)."""

    i: int
    round: int
    stage: int
    turn: int
    source: EventSource
    kind: EventKind
    payload: dict[str, Any] = field(default_factory=dict)
    context_tokens: int = 0
    memory_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TraceEvent:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Trace:
    """The events of one episode, appended in order."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def __len__(self) -> int:
        return len(self.events)

    def emit(self, kind: EventKind, payload: dict[str, Any], *, source: EventSource, round: int,
             stage: int, turn: int, context_tokens: int, memory_size: int) -> TraceEvent:
        event = TraceEvent(len(self.events), round, stage, turn, source, kind, payload,
                           context_tokens, memory_size)
        self.events.append(event)
        return event

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.events]


def effect_event(tool: str, arguments: Mapping[str, Any], data: Mapping[str, Any],
                 memory: Callable[[str], Any], before: Mapping[str, Any],
                 after: Mapping[str, Any]) -> tuple[EventKind | None, dict[str, Any]]:
    """The event for the change a successful tool call made: the entry as stored (``memory``
    looks an id up), or the context messages it removed (``before`` / ``after``: the context
    by message id around the call). ``(None, {})`` when it changed nothing."""
    if tool == "Add_memory":
        entry = memory(data["id"])
        return "memory_added", {"id": entry.id, "content": entry.content, "metadata": entry.metadata}
    if tool == "Update_memory":
        entry = memory(data["id"])
        return "memory_updated", {"id": entry.id, "old": data["old"], "new": entry.content,
                                  "metadata": entry.metadata}
    if tool == "Delete_memory":
        return "memory_deleted", {"id": data["id"], "old": data["old"]}
    if tool == "Retrieve_memory":
        return "retrieval", {"query": cap(str(arguments.get("query", ""))), "ids": data["ids"],
                             "scores": data.get("scores", []), "contents": data.get("contents", [])}
    removed = [{"id": i, "role": before[i].role, "content": cap(before[i].content)}
               for i in data.get("removed", ()) if i in before]
    if not removed:
        return None, {}
    if tool == "Filter_context":
        return "context_filtered", {"removed": removed}
    summary = after[data["summary_id"]].content if data.get("summary_id") in after else ""
    return "context_summarized", {"replaced": removed, "summary": cap(summary)}


def replay_memory(events: Iterable[TraceEvent | Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The long-term memory the events leave behind: ``{id: {"content", "metadata"}}``."""
    memory: dict[str, dict[str, Any]] = {}
    for event in events:
        e = event if isinstance(event, TraceEvent) else TraceEvent.from_dict(event)
        p = e.payload
        if e.kind == "memory_added":
            memory[p["id"]] = {"content": p["content"], "metadata": p.get("metadata", {})}
        elif e.kind == "memory_updated":
            memory[p["id"]] = {"content": p["new"], "metadata": p.get("metadata", {})}
        elif e.kind == "memory_deleted":
            memory.pop(p["id"], None)
    return memory
