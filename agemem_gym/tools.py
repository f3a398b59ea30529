"""The six memory tools: their schemas, argument checking, and what each one does.

Names and arguments are the paper's, exactly. Two spellings the paper's own examples use are
accepted as aliases: ``confirmed`` for ``Delete_memory.confirmation`` and ``"full"`` for
``Summary_context.span == "all"``. A bad call never raises: :meth:`ToolBox.run` returns a
failed :class:`ToolResult` whose text says what was wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agemem_gym.memory.context import Context
from agemem_gym.memory.encoders import Encoder
from agemem_gym.memory.ltm import (
    LongTermMemory,
    MemoryInputError,
    MemoryNotFoundError,
    check_metadata_key,
)
from agemem_gym.memory.summarizers import Summarizer
from agemem_gym.protocol import ToolCall, find_invalid_text

LTM_TOOLS = ("Add_memory", "Update_memory", "Delete_memory")
STM_TOOLS = ("Retrieve_memory", "Summary_context", "Filter_context")
ALL_TOOLS = LTM_TOOLS + STM_TOOLS
CONTEXT_REDUCING_TOOLS = ("Summary_context", "Filter_context")

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    params: tuple[Param, ...]
    aliases: dict[str, str] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """An OpenAI-style function schema, for system prompts and chat templates."""
        properties = {p.name: {"type": p.type, "description": p.description} for p in self.params}
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": properties,
                    "required": [p.name for p in self.params if p.required],
                },
            },
        }


TOOL_SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "Add_memory",
            "Save a new long-term memory entry. Returns the new entry's id.",
            (
                Param("content", "string", "the text to remember", required=True),
                Param("metadata", "object", "optional key/value tags, e.g. {\"topic\": \"travel\"}"),
                Param("memory_type", "string", "optional kind of memory, e.g. fact or preference"),
            ),
        ),
        ToolSpec(
            "Update_memory",
            "Replace the content (and optionally metadata) of an existing long-term memory.",
            (
                Param("memory_id", "string", "id of the entry, e.g. mem_3f2a1c", required=True),
                Param("content", "string", "the new text", required=True),
                Param("metadata", "object", "optional key/value tags to merge in"),
            ),
        ),
        ToolSpec(
            "Delete_memory",
            "Remove a long-term memory entry that is wrong or no longer true.",
            (
                Param("memory_id", "string", "id of the entry to remove", required=True),
                Param("confirmation", "boolean", "must be true to delete", required=True),
            ),
            aliases={"confirmed": "confirmation"},
        ),
        ToolSpec(
            "Retrieve_memory",
            "Search long-term memory; the best matches are added to the context with their ids.",
            (
                Param("query", "string", "what to look for", required=True),
                Param("top_k", "integer", "how many entries to return (default 3)", default=3),
                Param("metadata_filter", "object", "optional {key: value} that entries must match"),
            ),
        ),
        ToolSpec(
            "Summary_context",
            "Replace part of the conversation with a summary that keeps facts, intentions, "
            "decisions and open questions.",
            (
                Param(
                    "span",
                    "string",
                    "\"all\" for every non-system message, or \"N\" for the last N messages",
                    required=True,
                ),
            ),
        ),
        ToolSpec(
            "Filter_context",
            "Remove every context message that is similar to the given description.",
            (Param("criteria", "string", "describes the messages to remove", required=True),),
        ),
    )
}


def tool_schemas(names: tuple[str, ...] = ALL_TOOLS) -> list[dict[str, Any]]:
    """Schemas of the named tools, in order."""
    return [TOOL_SPECS[n].schema() for n in names]


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one call: ``text`` goes back to the model; ``data`` feeds the rewards."""

    name: str
    ok: bool
    text: str
    data: dict[str, Any] = field(default_factory=dict)


class ToolError(Exception):
    """Raised inside the toolbox only; :meth:`ToolBox.run` turns it into a failed result."""


def check_arguments(name: str, arguments: dict[str, Any], max_text_chars: int) -> dict[str, Any]:
    """Validate ``arguments`` against the tool's schema; return them with defaults filled in."""
    spec = TOOL_SPECS[name]
    args = {spec.aliases.get(k, k): v for k, v in arguments.items()}
    known = {p.name for p in spec.params}
    unexpected = sorted(set(args) - known)
    if unexpected:
        raise ToolError(
            f"{name} got unexpected argument {unexpected[0]!r}; its arguments are "
            f"{', '.join(p.name for p in spec.params)}"
        )
    out: dict[str, Any] = {}
    for p in spec.params:
        if args.get(p.name) is None:
            if p.required:
                raise ToolError(f"{name} is missing the required argument {p.name!r} ({p.type})")
            out[p.name] = p.default
            continue
        value = args[p.name]
        is_bool = isinstance(value, bool)
        if not isinstance(value, _PY_TYPES[p.type]) or (p.type == "integer" and is_bool):
            if name == "Summary_context" and isinstance(value, int) and not is_bool:
                value = str(value)  # span given as a number
            else:
                raise ToolError(
                    f"{name} argument {p.name!r} must be a {p.type}, got "
                    f"{type(value).__name__} {_short(repr(value))}"
                )
        if isinstance(value, str) and len(value) > max_text_chars:
            raise ToolError(
                f"{name} argument {p.name!r} is {len(value):,} characters; the limit is "
                f"{max_text_chars:,}"
            )
        if p.required and isinstance(value, str) and not value.strip():
            raise ToolError(f"{name} argument {p.name!r} is empty")
        if p.type == "object":
            _check_object(name, p.name, value, max_text_chars)
        elif isinstance(value, str) and find_invalid_text(value) is not None:
            raise ToolError(f"{name} argument {p.name!r} holds an unpaired surrogate; "
                            "write valid Unicode text")
        out[p.name] = value
    return out


def _check_object(name: str, param: str, value: dict[str, Any], max_text_chars: int) -> None:
    """Metadata and filters: keys the store accepts, valid text, bounded size."""
    where = find_invalid_text(value, param)
    if where is not None:
        raise ToolError(f"{name} argument {param!r} holds an unpaired surrogate in {where}; "
                        "write valid Unicode text")
    try:
        size = len(json.dumps(value, default=str))
    except (TypeError, ValueError, RecursionError) as e:
        raise ToolError(f"{name} argument {param!r} is not plain JSON data") from e
    if size > max_text_chars:
        raise ToolError(f"{name} argument {param!r} is {size:,} characters as JSON; the limit "
                        f"is {max_text_chars:,}")
    if param == "metadata":
        for key in value:
            try:
                check_metadata_key(key)
            except MemoryInputError as e:
                raise ToolError(f"{name} argument 'metadata': {e}") from e


def _store_refusals() -> tuple[type[BaseException], ...]:
    """Errors with which chromadb refuses a request (not an outage: that propagates)."""
    from chromadb.errors import ChromaError

    return (ValueError, TypeError, ChromaError)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ToolBox:
    """Runs tool calls against one episode's long-term memory and context.

    Args:
        ltm: the episode's long-term memory.
        context: the episode's context (short-term memory).
        encoder: used by ``Filter_context`` (cosine of criteria vs each message).
        summarizer: used by ``Summary_context``.
        enabled: tool names the agent may call (a RAG variant removes the STM tools).
        filter_threshold: theta; messages with cosine >= theta are removed (paper: 0.6).
        max_top_k: the largest ``top_k`` a retrieval may ask for.
        max_text_chars: the longest string argument accepted.
    """

    def __init__(
        self,
        ltm: LongTermMemory,
        context: Context,
        encoder: Encoder,
        summarizer: Summarizer,
        *,
        enabled: tuple[str, ...] = ALL_TOOLS,
        filter_threshold: float = 0.6,
        max_top_k: int = 20,
        max_text_chars: int = 4000,
    ):
        self.ltm, self.context, self.encoder, self.summarizer = ltm, context, encoder, summarizer
        self.enabled = enabled
        self.filter_threshold = filter_threshold
        self.max_top_k = max_top_k
        self.max_text_chars = max_text_chars

    def run(self, call: ToolCall, metadata: dict[str, Any] | None = None) -> ToolResult:
        """Run one call. ``metadata`` (stage, turn, ...) is attached to entries it adds."""
        if call.name not in TOOL_SPECS:
            return ToolResult(call.name, False, f"unknown tool {call.name!r}; the tools are "
                              f"{', '.join(self.enabled)}")
        if call.name not in self.enabled:
            return ToolResult(call.name, False, f"{call.name} is not available here; the tools "
                              f"are {', '.join(self.enabled)}")
        try:
            args = check_arguments(call.name, call.arguments, self.max_text_chars)
            return getattr(self, f"_{call.name.lower()}")(args, metadata or {})
        except (ToolError, MemoryNotFoundError, MemoryInputError) as e:
            return ToolResult(call.name, False, f"{call.name} failed: {_short(str(e), 300)}")
        except _store_refusals() as e:  # the store refused the request itself
            return ToolResult(call.name, False, f"{call.name} failed: the memory store refused "
                              f"it ({_short(str(e), 300)})")

    # -- LTM ---------------------------------------------------------------------------------
    def _add_memory(self, args: dict[str, Any], extra: dict[str, Any]) -> ToolResult:
        metadata = {**(args["metadata"] or {}), **extra}
        memory_id = self.ltm.add(args["content"], metadata, args["memory_type"])
        return ToolResult("Add_memory", True, f"Stored {memory_id}.", {"id": memory_id})

    def _update_memory(self, args: dict[str, Any], extra: dict[str, Any]) -> ToolResult:
        old = self.ltm.get(args["memory_id"])
        self.ltm.update(args["memory_id"], args["content"], {**(args["metadata"] or {}), **extra})
        return ToolResult("Update_memory", True, f"Updated {old.id}.",
                          {"id": old.id, "old": old.content})

    def _delete_memory(self, args: dict[str, Any], extra: dict[str, Any]) -> ToolResult:
        if args["confirmation"] is not True:
            raise ToolError(f"confirmation must be true to delete {args['memory_id']}; "
                            "nothing was deleted")
        old = self.ltm.delete(args["memory_id"])
        return ToolResult("Delete_memory", True, f"Deleted {old.id}.",
                          {"id": old.id, "old": old.content})

    # -- STM ---------------------------------------------------------------------------------
    def _retrieve_memory(self, args: dict[str, Any], extra: dict[str, Any]) -> ToolResult:
        top_k = args["top_k"]
        if not 1 <= top_k <= self.max_top_k:
            raise ToolError(f"top_k must be between 1 and {self.max_top_k}, got {top_k}")
        found = self.ltm.retrieve(args["query"], top_k, args["metadata_filter"])
        if not found:
            return ToolResult("Retrieve_memory", True, "No memories found.", {"ids": []})
        lines = [f"[{e.id}] {e.content} (similarity {e.score:.2f})" for e in found]
        text = f"Found {len(found)} memories:\n" + "\n".join(lines)
        return ToolResult("Retrieve_memory", True, text,
                          {"ids": [e.id for e in found], "contents": [e.content for e in found],
                           "scores": [round(float(e.score or 0.0), 4) for e in found]})

    def _summary_context(self, args: dict[str, Any], extra: dict[str, Any]) -> ToolResult:
        span = args["span"].strip().lower()
        if span in ("all", "full"):
            messages = self.context.conversation()
        elif re.fullmatch(r"[0-9]{1,9}", span) and int(span) > 0:
            messages = self.context.last(int(span))
        else:
            raise ToolError(f"span must be \"all\" or a positive number of messages like \"4\", "
                            f"got {_short(args['span'])!r}")
        if not messages:
            raise ToolError("there is nothing to summarise")
        before = sum(m.tokens for m in messages)
        summary = self.summarizer.summarize(messages) or "(nothing informative)"
        ids = [m.id for m in messages]
        span_ids = f"{ids[0]}..{ids[-1]}" if len(ids) > 1 else ids[0]
        new = self.context.replace(ids, "user", f"[Summary of {span_ids}]\n{summary}", "summary")
        assert new is not None  # the ids came from the context itself
        text = (f"Summarised {len(ids)} messages ({span_ids}) into {new.id} "
                f"({before} -> {new.tokens} tokens).")
        return ToolResult("Summary_context", True, text, {"removed": ids, "summary_id": new.id})

    def _filter_context(self, args: dict[str, Any], extra: dict[str, Any]) -> ToolResult:
        candidates = self.context.conversation()
        if not candidates:
            return ToolResult("Filter_context", True, "The context is empty; nothing removed.",
                              {"removed": []})
        vectors = self.encoder.encode([args["criteria"]] + [m.content for m in candidates])
        similarity = vectors[1:] @ vectors[0]
        drop = [m.id for m, s in zip(candidates, similarity, strict=True)
                if s >= self.filter_threshold - 1e-6]
        self.context.remove(drop)
        if not drop:
            best = float(np.max(similarity))
            text = (f"No message reached similarity {self.filter_threshold} "
                    f"(highest {best:.2f}); nothing removed.")
        else:
            text = f"Removed {len(drop)} messages ({', '.join(drop)})."
        return ToolResult("Filter_context", True, text, {"removed": drop})
