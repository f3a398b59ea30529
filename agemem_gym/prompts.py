"""The system prompt: the response protocol and the tool schemas, in the project's own words."""

from __future__ import annotations

import json
from typing import Literal

from agemem_gym.errors import ConfigError
from agemem_gym.tools import ALL_TOOLS, TOOL_SPECS, tool_schemas

PromptStyle = Literal["full", "compact"]

_PROTOCOL = """\
You are an assistant with two kinds of memory that you manage yourself.
- Long-term memory persists across the whole session: save, update and delete entries with
  Add_memory, Update_memory and Delete_memory.
- Short-term memory is this conversation. Search long-term memory into it with
  Retrieve_memory; keep it short and on topic with Summary_context and Filter_context.
The session has three parts: first the user tells you things over several turns (save what will
matter later; fix entries that become outdated), then the conversation is cleared and there is
unrelated chat, and finally the user asks for something that may depend on what you saved.

Every reply has this shape and nothing outside the tags:
<think>your reasoning</think>
followed by exactly one of
<tool_call>[{"name": "<tool>", "arguments": {...}}]</tool_call>   (a JSON array of one or more calls)
<answer>your reply to the user</answer>
Tool results come back as a message and you continue; an <answer> ends your turn."""


_COMPACT_PROTOCOL = """\
You manage your own memory. Long-term memory keeps entries for the whole session; this
conversation is short-term memory and is cleared after the first part.
Reply with <tool_call>[{"name": ..., "arguments": {...}}]</tool_call> or <answer>...</answer>."""


_NO_TOOLS_PROTOCOL = """\
You are a helpful assistant. The user first tells you things over several turns, then the
conversation is cleared and there is unrelated chat, and finally the user asks for something
that may depend on what was said. Memories retrieved for you may be shown in the conversation.

Every reply has this shape and nothing outside the tags:
<think>your reasoning</think><answer>your reply to the user</answer>"""


def system_prompt(tools: tuple[str, ...] = ALL_TOOLS, instructions: str = "",
                  style: PromptStyle = "full") -> str:
    """The system message: protocol, the enabled tools, benchmark instructions.

    ``full`` gives each tool's JSON schema; ``compact`` (for small models trained from
    scratch, whose context is expensive) one line per tool with its argument names, optional
    ones marked ``?``.

    >>> "Add_memory" in system_prompt()
    True
    >>> print(system_prompt(("Add_memory", "Retrieve_memory"), style="compact").splitlines()[-1])
    Retrieve_memory(query, top_k?, metadata_filter?)
    """
    if not tools:  # a memory controller outside the model manages memory (the baselines)
        parts = [_NO_TOOLS_PROTOCOL]
    elif style == "compact":
        lines = [f"{name}({', '.join(p.name + ('' if p.required else '?') for p in TOOL_SPECS[name].params)})"
                 for name in tools]
        parts = [_COMPACT_PROTOCOL, "Tools:\n" + "\n".join(lines)]
    elif style == "full":
        schemas = "\n".join(json.dumps(s["function"]) for s in tool_schemas(tools))
        parts = [_PROTOCOL, f"Tools:\n{schemas}"]
    else:
        raise ConfigError(f"prompt style must be 'full' or 'compact', got {style!r}")
    if instructions:
        parts.append(instructions)
    return "\n\n".join(parts)
