"""JSON-schema constrained decoding for the transformers backend, with ``lm-format-enforcer``.

At every step only the tokens that keep the completion a valid prefix of a JSON value the schema
accepts are allowed; once the value is complete, only the end-of-turn tokens are. The library's
own transformers integration imports names that transformers 5 moved, so its core
(``TokenEnforcer``, ``JsonSchemaParser``) is used through this small logits processor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from agemem_gym.errors import MissingExtraError


def _lmfe() -> Any:
    try:
        import lmformatenforcer
    except ImportError as e:
        raise MissingExtraError("JSON-schema constrained decoding (json_schema=)", "llm") from e
    return lmformatenforcer


def tokenizer_data(tokenizer: Any, eos_ids: Sequence[int], vocab_size: int) -> Any:
    """What the enforcer needs to know of a tokenizer: each regular token's text and whether it
    starts a word (a leading space that decoding a lone token would drop). Slow once per
    tokenizer (two decodes per token); keep it."""
    lmfe = _lmfe()
    special = set(tokenizer.all_special_ids)
    anchor = tokenizer.encode("0", add_special_tokens=False)[-1]
    anchor_text = tokenizer.decode([anchor])
    regular = []
    for token in range(len(tokenizer)):
        if token in special:
            continue
        alone = tokenizer.decode([token])
        after_anchor = tokenizer.decode([anchor, token])[len(anchor_text):]
        regular.append((token, after_anchor, len(after_anchor) > len(alone)))

    def decode(tokens: list[int]) -> str:
        return str(tokenizer.decode(tokens)).rstrip("\ufffd")  # a half-decoded character

    return lmfe.TokenEnforcerTokenizerData(regular, decode, sorted(eos_ids), False, vocab_size)


class JsonSchemaLogits:
    """A transformers logits processor that keeps every row inside ``schema``'s JSON.

    One instance per ``generate`` call: the enforcer keys its parse states by token prefix,
    so rows of a batch (and their left padding) need no bookkeeping here.
    """

    def __init__(self, data: Any, schema: Mapping[str, Any]):
        lmfe = _lmfe()
        self.enforcer = lmfe.TokenEnforcer(data, lmfe.JsonSchemaParser(dict(schema)))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        mask = scores.new_full(scores.shape, -math.inf)
        for row, tokens in enumerate(input_ids.tolist()):
            allowed = self.enforcer.get_allowed_tokens(tokens).allowed_tokens
            mask[row, [t for t in allowed if t < scores.shape[-1]]] = 0.0
        return scores + mask
