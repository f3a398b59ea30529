"""The response format: ``<think>...</think>`` then one ``<tool_call>[...]</tool_call>`` or one
``<answer>...</answer>``.

:func:`parse_response` never raises. A malformed response comes back with ``error`` set to a
message that tells the model exactly what to fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

MAX_RESPONSE_CHARS = 32_768
_BLOCK = re.compile(r"<(think|tool_call|answer)>(.*?)</\1>", re.DOTALL)
_EXPECTED = (
    "expected <think>...</think> followed by exactly one of "
    '<tool_call>[{"name": ..., "arguments": {...}}]</tool_call> or <answer>...</answer>'
)


@dataclass(frozen=True)
class ToolCall:
    """One requested tool call."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParsedResponse:
    """A parsed model turn. Exactly one of ``tool_calls``, ``answer`` and ``error`` is set."""

    think: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = None
    answer: str | None = None
    error: str | None = None

    @property
    def kind(self) -> Literal["tool_call", "answer", "invalid"]:
        if self.error is not None:
            return "invalid"
        return "tool_call" if self.tool_calls is not None else "answer"


def parse_response(text: Any, max_chars: int = MAX_RESPONSE_CHARS) -> ParsedResponse:
    """Parse one model response.

    Example:
        >>> r = parse_response('<think>store it</think><tool_call>[{"name": "Add_memory", '
        ...                    '"arguments": {"content": "likes tea"}}]</tool_call>')
        >>> r.kind, r.tool_calls[0].name
        ('tool_call', 'Add_memory')
        >>> parse_response("<answer>Paris</answer>").answer
        'Paris'
        >>> parse_response("<answer>Paris").error
        'the <answer> tag is not closed: add </answer>'
    """
    if not isinstance(text, str):
        return ParsedResponse(error=f"a response must be text, got {type(text).__name__}")
    if len(text) > max_chars:
        return ParsedResponse(
            error=f"the response is {len(text):,} characters; the limit is {max_chars:,}"
        )
    if not text.strip():
        return ParsedResponse(error=f"the response is empty; {_EXPECTED}")
    for tag in ("think", "tool_call", "answer"):
        opened, closed = text.count(f"<{tag}>"), text.count(f"</{tag}>")
        if opened != closed:
            fix = f"add </{tag}>" if opened > closed else f"remove the stray </{tag}>"
            return ParsedResponse(error=f"the <{tag}> tag is not closed: {fix}")
    blocks: dict[str, list[str]] = {"think": [], "tool_call": [], "answer": []}
    for match in _BLOCK.finditer(text):
        blocks[match.group(1)].append(match.group(2))
    think = blocks["think"][0].strip() if blocks["think"] else None
    calls, answers = blocks["tool_call"], blocks["answer"]
    if calls and answers:
        return ParsedResponse(think, error="the response has both <tool_call> and <answer>; "
                              "give exactly one of them")
    if not calls and not answers:
        return ParsedResponse(think, error=f"the response has no <tool_call> or <answer>; {_EXPECTED}")
    if len(calls) > 1 or len(answers) > 1:
        tag = "tool_call" if calls else "answer"
        return ParsedResponse(think, error=f"the response has {max(len(calls), len(answers))} "
                              f"<{tag}> blocks; give one (a <tool_call> holds a JSON array of calls)")
    if answers:
        return ParsedResponse(think, answer=answers[0].strip())
    parsed = _parse_calls(calls[0])
    if isinstance(parsed, str):
        return ParsedResponse(think, error=parsed)
    return ParsedResponse(think, tool_calls=parsed)


def _parse_calls(body: str) -> tuple[ToolCall, ...] | str:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        return (f"the <tool_call> block is not valid JSON (line {e.lineno}, column {e.colno}: "
                f"{e.msg}); it must be a JSON array of {{\"name\": ..., \"arguments\": {{...}}}} objects")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        return "the <tool_call> block must hold a non-empty JSON array of calls"
    calls = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return f'tool call #{i + 1} must be an object with a string "name"'
        arguments = item.get("arguments", {})
        if isinstance(arguments, str):  # OpenAI-style JSON-encoded arguments
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                return f'tool call #{i + 1}: "arguments" is a string that is not JSON'
        if not isinstance(arguments, dict):
            return f'tool call #{i + 1}: "arguments" must be an object'
        calls.append(ToolCall(item["name"], arguments))
    return tuple(calls)


def format_tool_call(name: str, think: str = "", **arguments: Any) -> str:
    """Render a single tool call in the response format (used by scripted policies).

    >>> format_tool_call("Retrieve_memory", query="coffee")
    '<think></think><tool_call>[{"name": "Retrieve_memory", "arguments": {"query": "coffee"}}]</tool_call>'
    """
    body = json.dumps([{"name": name, "arguments": arguments}])
    return f"<think>{think}</think><tool_call>{body}</tool_call>"


def format_answer(answer: str, think: str = "") -> str:
    """Render an answer in the response format."""
    return f"<think>{think}</think><answer>{answer}</answer>"
