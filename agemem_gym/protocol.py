"""The response format: ``<think>...</think>`` then one ``<tool_call>[...]</tool_call>`` or one
``<answer>...</answer>``.

:func:`parse_response` never raises. A malformed response comes back with ``error`` set to a
message that tells the model exactly what to fix. Everything a model can write is checked here
before it reaches the JSON decoder's limits or a store: the text must be valid Unicode (no
unpaired surrogates), a ``<tool_call>`` block nests at most :data:`MAX_JSON_DEPTH` levels, and
its numbers are finite with at most :data:`MAX_INT_DIGITS` digits.

:func:`sanitize_action` does the same for the text an interactive engine receives.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

MAX_RESPONSE_CHARS = 32_768
#: Deepest nesting of arrays/objects a ``<tool_call>`` block may have (a call needs 4).
MAX_JSON_DEPTH = 16
#: Longest integer literal accepted (Python refuses to convert more than 4,300 digits).
MAX_INT_DIGITS = 100
#: Longest action text an interactive engine is given.
MAX_ACTION_CHARS = 1_000
_JSON_TOKENS = re.compile(r'[\[\]{}"\\]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
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
    bad = _SURROGATE.search(text)
    if bad:
        return ParsedResponse(error=f"the response holds an unpaired surrogate "
                              f"(U+{ord(bad.group()):04X}) at character {bad.start()}; "
                              "write valid Unicode text")
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


class _JsonLimitError(ValueError):
    """A JSON value the decoder could read but the tools must not receive."""


def _parse_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _JsonLimitError(f"an integer has {digits:,} digits; the limit is {MAX_INT_DIGITS}")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _JsonLimitError(f"the number {_clip(literal)} is out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise _JsonLimitError(f"{name} is not a JSON value; write a finite number or a string")


def _json_depth(body: str) -> int:
    """How deep arrays and objects nest, brackets inside strings not counted (linear time)."""
    depth = deepest = 0
    in_string = escaped = False
    for match in _JSON_TOKENS.finditer(body):
        char = match.group()
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                # an escape covers the next character; only an adjacent token can be it
                escaped = body[match.start() + 1:match.start() + 2] in ('"', "\\")
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def loads_limited(body: str) -> Any:
    """``json.loads`` for model-written text: at most :data:`MAX_JSON_DEPTH` levels, integers of
    at most :data:`MAX_INT_DIGITS` digits, finite numbers only. Raises ``ValueError`` (a
    ``json.JSONDecodeError`` for bad syntax) with a message for the model.

    >>> loads_limited('{"top_k": 3}')
    {'top_k': 3}
    >>> try:
    ...     loads_limited('[' * 50 + ']' * 50)
    ... except ValueError as e:
    ...     print(e)
    the JSON nests 50 levels deep; the limit is 16
    """
    depth = _json_depth(body)
    if depth > MAX_JSON_DEPTH:
        raise _JsonLimitError(f"the JSON nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    return json.loads(body, parse_int=_parse_int, parse_float=_parse_float,
                      parse_constant=_parse_constant)


def _parse_calls(body: str) -> tuple[ToolCall, ...] | str:
    try:
        data = loads_limited(body)
    except json.JSONDecodeError as e:
        return (f"the <tool_call> block is not valid JSON (line {e.lineno}, column {e.colno}: "
                f"{e.msg}); it must be a JSON array of {{\"name\": ..., \"arguments\": {{...}}}} objects")
    except _JsonLimitError as e:
        return f"the <tool_call> block cannot be used: {e}"
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
                arguments = loads_limited(arguments) if arguments.strip() else {}
            except _JsonLimitError as e:
                return f'tool call #{i + 1}: "arguments" cannot be used: {e}'
            except json.JSONDecodeError:
                return f'tool call #{i + 1}: "arguments" is a string that is not JSON'
        if not isinstance(arguments, dict):
            return f'tool call #{i + 1}: "arguments" must be an object'
        where = find_invalid_text(item)
        if where is not None:
            return (f"tool call #{i + 1} holds an unpaired surrogate (a lone \\ud800-\\udfff "
                    f"escape) in {where}; write valid Unicode text")
        calls.append(ToolCall(item["name"], arguments))
    return tuple(calls)


def find_invalid_text(value: Any, path: str = "the call") -> str | None:
    r"""Where ``value`` (JSON data) holds a string that is not valid Unicode, else None.

    >>> find_invalid_text({"arguments": {"metadata": {"topic": "\ud800"}}})
    'arguments.metadata.topic'
    """
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            key_path = str(key) if path == "the call" else f"{path}.{key}"
            if isinstance(key, str) and _SURROGATE.search(key):
                return f"a key of {path}"
            found = find_invalid_text(item, key_path)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_invalid_text(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def sanitize_action(text: str, max_chars: int = MAX_ACTION_CHARS) -> str | None:
    r"""The action text an interactive engine can take, or None when nothing usable remains.

    Control characters become spaces, unpaired surrogates are dropped (a Java engine cannot
    decode them), whitespace is collapsed. None means the text was non-empty but held nothing
    an engine can read, or is longer than ``max_chars``; :func:`unusable_action_message`
    says why, for the next observation.

    >>> sanitize_action("go to\tkitchen\x00 ")
    'go to kitchen'
    >>> sanitize_action("\ud800") is None
    True
    >>> sanitize_action("")
    ''
    """
    if not isinstance(text, str) or len(text) > max_chars:
        return None
    cleaned = " ".join(_CONTROL.sub(" ", _SURROGATE.sub("", text)).split())
    if not cleaned and text.strip():
        return None
    return cleaned


def unusable_action_message(text: Any, max_chars: int = MAX_ACTION_CHARS) -> str:
    """The observation for an action :func:`sanitize_action` refused."""
    if not isinstance(text, str):
        return f"the action must be text, got {type(text).__name__}; nothing was done"
    if len(text) > max_chars:
        return (f"the action is {len(text):,} characters; an action is at most {max_chars:,}; "
                "nothing was done")
    return "the action holds no readable characters; nothing was done"


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
