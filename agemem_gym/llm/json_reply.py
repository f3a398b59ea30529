"""Finding the JSON value in a model's reply: think blocks and code fences skipped, the first
JSON object or array read. Nothing here raises on a model's text.

>>> first_json('<think>hm</think>```json\\n{"a": 1}\\n``` done')
({'a': 1}, None)
>>> first_json("no idea")
(None, 'no JSON object or array in the reply')
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["first_json"]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def first_json(text: str) -> tuple[Any, str | None]:
    """The first JSON object or array in ``text``, else ``(None, reason)``."""
    body = _THINK.sub("", text)
    fenced = _FENCE.search(body)
    if fenced:
        body = fenced.group(1)
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        return None, "no JSON object or array in the reply"
    try:
        # strict=False: raw control characters inside strings, which constrained decoders let
        # through, are read rather than failed
        value, _ = json.JSONDecoder(strict=False).raw_decode(body[min(starts):])
    except json.JSONDecodeError as e:
        # no position ("... starting at"), so equal failures count together
        return None, f"invalid JSON: {re.sub(r'( starting)? at$', '', e.msg)}"
    return value, None
