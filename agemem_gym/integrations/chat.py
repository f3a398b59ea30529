"""Observations as chat messages and as the text and token ids a chat template makes of them.

An observation is a tuple of ``{"id", "role", "content"}`` messages with roles ``system``,
``user``, ``assistant`` and ``tool``. Chat templates want ``{"role", "content"}`` only, and some
reject the ``tool`` role: :func:`chat_messages` drops the ids and, with ``tool_role="user"``,
shows tool results as user messages (:func:`agemem_gym.llm.base.tool_as_user`, the mapping the
LLM backends use). :class:`ChatRenderer` applies a tokenizer's template and picks the mapping
by itself (``tool_role="auto"``).

Example:
    >>> observation = ({"id": "m0", "role": "system", "content": "Be brief."},
    ...                {"id": "m3", "role": "tool", "content": "Add_memory: stored"})
    >>> chat_messages(observation)
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'tool', 'content': 'Add_memory: stored'}]
    >>> chat_messages(observation, tool_role="user")[1]
    {'role': 'user', 'content': '[Tool result]\\nAdd_memory: stored'}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from agemem_gym.errors import ConfigError
from agemem_gym.llm.base import Message, tool_as_user, validate_prompt

logger = logging.getLogger(__name__)

ToolRole = Literal["auto", "native", "user"]


def chat_messages(observation: Sequence[Message], *,
                  tool_role: Literal["native", "user"] = "native") -> list[dict[str, str]]:
    """``observation`` as plain chat messages: ``id`` dropped, ``tool`` kept as is
    (``"native"``) or shown as a prefixed ``user`` message (``"user"``).

    Raises:
        ConfigError: an empty observation, an unknown role or a non-string content; or an
            unknown ``tool_role``.
    """
    if tool_role not in ("native", "user"):
        raise ConfigError(f"tool_role must be 'native' or 'user', got {tool_role!r}")
    messages = validate_prompt(observation)
    return tool_as_user(messages) if tool_role == "user" else messages


class ChatRenderer:
    """Renders observations with a Hugging Face tokenizer's chat template.

    Args:
        tokenizer: a tokenizer with a chat template (``apply_chat_template``).
        tool_role: ``"native"``, ``"user"``, or ``"auto"``: native until the template rejects
            a ``tool`` message, then ``"user"`` from then on.

    Example:
        >>> import tempfile
        >>> from transformers import AutoTokenizer
        >>> from agemem_gym.llm import build_tiny_model
        >>> tmp = tempfile.TemporaryDirectory()
        >>> renderer = ChatRenderer(AutoTokenizer.from_pretrained(build_tiny_model(tmp.name)))
        >>> renderer.text(({"id": "m1", "role": "user", "content": "hi"},))
        '<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n'
        >>> tmp.cleanup()
    """

    def __init__(self, tokenizer: Any, tool_role: ToolRole = "auto"):
        if tool_role not in ("auto", "native", "user"):
            raise ConfigError(f"tool_role must be 'auto', 'native' or 'user', got {tool_role!r}")
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("the tokenizer has no chat template: set tokenizer.chat_template first")
        self.tokenizer = tokenizer
        self.tool_role: ToolRole = tool_role

    def text(self, observation: Sequence[Message]) -> str:
        """The observation through the chat template, generation prompt appended."""
        as_user = self.tool_role == "user"
        try:
            return self._apply(chat_messages(observation, tool_role="user" if as_user else "native"))
        except Exception as e:  # Jinja raises its own errors, and raise_exception() in templates
            has_tool = any(m["role"] == "tool" for m in observation)
            if self.tool_role == "auto" and has_tool:
                logger.info("the chat template rejects role 'tool' (%s); showing tool results as user messages", e)
                self.tool_role = "user"
                return self.text(observation)
            raise ConfigError(f"the chat template failed on the observation: {e}") from e

    def encode(self, text: str) -> list[int]:
        """Token ids of rendered text (the template already wrote any special tokens)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int], *, keep_special: bool = False) -> str:
        """Text of ``ids``; ``keep_special`` keeps end-of-turn and other special tokens."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=not keep_special))

    def _apply(self, messages: list[dict[str, str]]) -> str:
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
