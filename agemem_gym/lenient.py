"""The lenient response parser of the ``official`` protocol: repair instead of refuse.

The authors' released code accepts replies the strict parser (:mod:`agemem_gym.protocol`)
refuses, and that changes the numbers of untrained models. Its rules, restated:

- every complete ``<tool_call>[...]</tool_call>`` block counts, calls merged in order and
  duplicates (same name and arguments) dropped;
- failing that, an opening ``<tool_call>`` without its closing tag: the JSON array after it,
  closed with the missing ``]`` when the reply was cut off;
- failing that, a closing tag alone: the array just before ``</tool_call>``;
- ``<answer>`` without ``</answer>``: the rest of the reply is the answer;
- tool calls and an answer in one reply: the tools run and the answer counts.

Each repair is named in :attr:`LenientParse.repairs` so the env can count it. A reply with
neither a usable call nor an answer is still an error.

Example:
    >>> p = parse_lenient('<tool_call>[{"name": "Add_memory", "arguments": {"content": "x"}}]'
    ...                   '<answer>done')
    >>> [c.name for c in p.parsed.tool_calls], p.parsed.answer, p.repairs
    (['Add_memory'], 'done', ['unclosed_tool_call', 'unclosed_answer', 'tool_call_and_answer'])
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agemem_gym.protocol import MAX_RESPONSE_CHARS, ParsedResponse, ToolCall, parse_response

_CLOSED_CALLS = re.compile(r"<tool_call>\s*(\[.*?\])\s*</tool_call>", re.DOTALL)
_CLOSE_ONLY = re.compile(r"(\[.*?\])\s*</tool_call>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass(frozen=True)
class LenientParse:
    """A parsed reply and the repairs that made it usable."""

    parsed: ParsedResponse
    repairs: list[str] = field(default_factory=list)


def parse_lenient(text: Any, max_chars: int = MAX_RESPONSE_CHARS) -> LenientParse:
    """Parse ``text`` with the released code's tolerance (see the module docstring)."""
    strict = parse_response(text, max_chars)
    if strict.error is None or not isinstance(text, str) or len(text) > max_chars:
        return LenientParse(strict)
    if "unpaired surrogate" in strict.error or "nest" in strict.error or "digits" in strict.error:
        return LenientParse(strict)  # unsafe input stays refused
    repairs: list[str] = []
    calls = _closed_calls(text)
    if not calls and "<tool_call>" in text:
        calls = _open_tag_calls(text)
        if calls:
            repairs.append("unclosed_tool_call")
    if not calls and "</tool_call>" in text:
        calls = _close_tag_calls(text)
        if calls:
            repairs.append("unopened_tool_call")
    if len(_CLOSED_CALLS.findall(text)) > 1:
        repairs.append("merged_tool_calls")
    answer = _answer(text, repairs)
    think = _THINK.search(text)
    if calls and answer is not None:
        repairs.append("tool_call_and_answer")
    if not calls and answer is None:
        return LenientParse(strict)
    parsed = ParsedResponse(think=think.group(1).strip() if think else None,
                            tool_calls=tuple(calls) if calls else None, answer=answer)
    return LenientParse(parsed, repairs)


def _to_calls(items: Any) -> list[ToolCall]:
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list):
        return []
    calls = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            arguments = item.get("arguments")
            calls.append(ToolCall(item["name"], arguments if isinstance(arguments, dict) else {}))
    return calls


def _loads(blob: str) -> Any:
    try:
        return json.loads(blob)
    except (json.JSONDecodeError, ValueError, RecursionError):
        return None


def _dedupe(calls: list[ToolCall]) -> list[ToolCall]:
    seen: set[str] = set()
    kept = []
    for call in calls:
        signature = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
        if signature not in seen:
            seen.add(signature)
            kept.append(call)
    return kept


def _closed_calls(text: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for blob in _CLOSED_CALLS.findall(text):
        calls += _to_calls(_loads(blob))
    return _dedupe(calls)


def _open_tag_calls(text: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for segment in text.split("<tool_call>")[1:]:
        segment = segment.split("</tool_call>")[0]
        calls += _to_calls(_loads(_complete_array(segment)))
    return _dedupe(calls)


def _close_tag_calls(text: str) -> list[ToolCall]:
    match = _CLOSE_ONLY.search(text)
    return _dedupe(_to_calls(_loads(match.group(1)))) if match else []


def _complete_array(text: str) -> str:
    """The first JSON array in ``text``, closed with the missing ``]`` if it was cut off."""
    start = text.find("[")
    if start < 0:
        return ""
    depth, in_string, escaped = 0, False, False
    for i, ch in enumerate(text[start:], start):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return text[start:].rstrip() + "]" * depth


def _answer(text: str, repairs: list[str]) -> str | None:
    match = _ANSWER.search(text)
    if match:
        return match.group(1).strip()
    if "<answer>" in text:
        repairs.append("unclosed_answer")
        return text.split("<answer>", 1)[1].strip()
    return None
