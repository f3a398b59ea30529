"""The system prompt: the response protocol and the tool schemas, in the project's own words."""

from __future__ import annotations

import json

from agemem_gym.tools import ALL_TOOLS, tool_schemas

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


def system_prompt(tools: tuple[str, ...] = ALL_TOOLS, instructions: str = "") -> str:
    """The system message: protocol, the enabled tools' JSON schemas, benchmark instructions.

    >>> "Add_memory" in system_prompt()
    True
    """
    schemas = "\n".join(json.dumps(s["function"]) for s in tool_schemas(tools))
    parts = [_PROTOCOL, f"Tools:\n{schemas}"]
    if instructions:
        parts.append(instructions)
    return "\n\n".join(parts)
