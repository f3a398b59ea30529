"""Reading a controller model's JSON reply: find the JSON, check it against the request's schema.

A reply is usable only when it holds one JSON value that the schema accepts; anything else gives
``(None, reason)`` so the caller can count the failure. Nothing here raises on a model's text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from agemem_gym.llm.json_reply import first_json

_VALIDATORS: dict[str, Draft202012Validator] = {}


def object_schema(name: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """A closed object schema (every property required, no others) with a ``title``.

    Closed objects are what OpenAI's strict mode accepts; vLLM and the local constrained
    decoder accept them too.

    >>> object_schema("facts", {"facts": {"type": "array", "items": {"type": "string"}}})["required"]
    ['facts']
    """
    return {"title": name, "type": "object", "properties": dict(properties),
            "required": list(properties), "additionalProperties": False}


def parse_reply(text: str, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The JSON value in ``text`` if ``schema`` accepts it, else ``(None, reason)``.

    The value is found by :func:`agemem_gym.llm.json_reply.first_json` (think blocks and code
    fences skipped, the first JSON object or array read).

    >>> parse_reply('<think>hm</think>```json\\n{"facts": ["a"]}\\n```',
    ...             object_schema("f", {"facts": {"type": "array", "items": {"type": "string"}}}))
    ({'facts': ['a']}, None)
    >>> parse_reply("no idea", {"type": "object"})
    (None, 'no JSON object or array in the reply')
    """
    value, reason = first_json(text)
    if reason is not None:
        return None, reason
    error = next(iter(_validator(schema).iter_errors(value)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the reply"
        return None, f"schema: {where}: {_short(error.message)}"
    return value, None


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    key = json.dumps(schema, sort_keys=True)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = Draft202012Validator(dict(schema))
    return _VALIDATORS[key]


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
