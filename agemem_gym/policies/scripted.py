"""Scripted policies: an oracle that uses ground truth, a no-tool baseline, a random agent, and a
format-correct agent that uses memory at random (the warm-start teacher for training)."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any, ClassVar, Literal

import numpy as np

from agemem_gym.errors import ConfigError
from agemem_gym.policies.base import Policy
from agemem_gym.protocol import format_answer, format_tool_call
from agemem_gym.spaces import Observation, random_response
from agemem_gym.tasks.base import TaskInstance
from agemem_gym.tools import ALL_TOOLS

_MEMORY_LINE = re.compile(r"\[(mem_[0-9a-f]{6})\] (.*?)(?: \(similarity -?[0-9.]+\))?$", re.MULTILINE)


class OraclePolicy(Policy):
    """Makes the right memory call at the right time from the task's ground truth.

    Stage 1: stores each fact's canonical content, updates or deletes the entry of a changed or
    retracted fact (finding its id in the introspective retrieval, or retrieving it), ignores
    small talk. Stage 2: filters each distractor out of the context. In stages 1 and 2 it
    summarises the context whenever it passes ``summarize_at`` of the token budget. Stage 3: retrieves for the query, then answers with the gold answer (QA)
    or follows the engine's expert (interactive). An upper bound, and a test of the plumbing.
    """

    name = "oracle"
    privileged = True

    def __init__(self, summarize_at: float = 0.6):
        self.summarize_at = summarize_at

    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        task: TaskInstance = info["task"]
        stage, turn = info["stage"], info["turn"]
        last = observation[-1]
        acted = last["role"] == "tool"
        if stage in (1, 2) and not acted and info["context_tokens"] > self.summarize_at * info["token_budget"]:
            return format_tool_call("Summary_context", span="all")
        if stage in (1, 2) and acted and last["content"].startswith("Summary_context"):
            acted = False  # the summary was housekeeping; the turn's own action is still due
        if stage == 1:
            return self._stage1(task, turn, info, last if acted else None)
        if stage == 2:
            if not acted:
                return format_tool_call("Filter_context", criteria=task.distractors[turn])
            return format_answer("Noted.")
        if "expert_action" in info:  # interactive stage 3
            first_step = last["content"].startswith(task.query)
            if first_step and info["memory_size"] > 0:
                return format_tool_call("Retrieve_memory", query=task.query)
            return format_answer(info["expert_action"] or "")
        if not acted:
            top_k = max(3, len(task.supporting_facts))
            return format_tool_call("Retrieve_memory", query=task.query, top_k=min(top_k, 20))
        return format_answer(task.metadata.get("oracle_answer") or (task.answers or ("",))[0])

    @staticmethod
    def _stage1(task: TaskInstance, turn: int, info: dict[str, Any],
                tool_result: dict[str, str] | None) -> str:
        fact = task.stage1[turn]
        if fact.op == "none" or (tool_result and not tool_result["content"].startswith("Retrieve_memory")):
            return format_answer("Noted.")
        if fact.op == "add" and "\n" in fact.content:  # one message telling several facts
            calls = [{"name": "Add_memory", "arguments": {"content": line, "metadata": {"key": fact.key}}}
                     for line in fact.content.split("\n")]
            return f"<think></think><tool_call>{json.dumps(calls)}</tool_call>"
        if fact.op == "add":
            return format_tool_call("Add_memory", content=fact.content, metadata={"key": fact.key})
        previous = [f.content for f in task.stage1[:turn] if f.key == fact.key and f.op != "delete"]
        memory_id = _find_memory_id(info, previous[-1]) if previous else None
        if memory_id is None:
            if tool_result is not None:  # retrieved and still not found: nothing to change
                return format_answer("Noted.")
            return format_tool_call("Retrieve_memory", query=previous[-1] if previous else fact.message)
        if fact.op == "update":
            return format_tool_call("Update_memory", memory_id=memory_id, content=fact.content,
                                    metadata={"key": fact.key})
        return format_tool_call("Delete_memory", memory_id=memory_id, confirmation=True)


def _find_memory_id(info: dict[str, Any], content: str) -> str | None:
    """The id of the memory holding ``content`` among those the env just showed: the last
    retrieval's results, else this turn's introspective memory check."""
    shown = [(i, c) for r in info.get("tool_results", []) if r["name"] == "Retrieve_memory"
             for i, c in zip(r["data"].get("ids", []), r["data"].get("contents", []), strict=True)]
    shown += [(m["id"], m["content"]) for m in info.get("memory_check", [])]
    return next((memory_id for memory_id, text in shown if text.strip() == content), None)


class NoopPolicy(Policy):
    """Answers every turn without touching either memory (the No-Memory behaviour)."""

    name = "noop"

    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        return format_answer("I don't know." if info.get("stage") == 3 else "Okay.")


class RandomPolicy(Policy):
    """Random well- and ill-formed responses; sometimes names a memory id seen in the context.

    Deterministic for a seed and a sequence of calls.
    """

    name = "random"
    tools: ClassVar[tuple[str, ...]] = ALL_TOOLS

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        seen = [m for msg in observation for m in _MEMORY_LINE.findall(msg["content"])]
        if seen and self.rng.random() < 0.25:
            memory_id = seen[int(self.rng.integers(len(seen)))][0]
            if self.rng.random() < 0.5:
                return format_tool_call("Update_memory", memory_id=memory_id, content="changed")
            return format_tool_call("Delete_memory", memory_id=memory_id, confirmed=True)
        return random_response(self.rng, self.tools)


class MemoryRandomPolicy(Policy):
    """Speaks the protocol perfectly but uses memory by coin flip: a policy that knows the
    format and not when memory pays (the paper's untrained base model, in spirit).

    Stage 1: for each fact message, with probability ``p_store`` calls ``Add_memory`` with the
    message as the user said it, then acknowledges; small talk is acknowledged. Stage 2:
    acknowledges. Stage 3 (QA): with probability ``p_retrieve`` calls ``Retrieve_memory`` with
    the question, then answers with the gold values that the retrieval actually showed (with
    ``answer="quote"``: the retrieved memories that hold them, word for word), or "I don't
    know." when none; without retrieving it always says "I don't know.". Interactive
    stage 3: may retrieve once, then follows the engine's expert. Its decisions never look at
    ground truth; only the answer copies what is visible. Trajectories of this policy teach a
    model the protocol in :mod:`agemem_gym.training.sft`.

    Each coin is seeded by ``seed``, the episode id and the turn, so decisions do not depend on
    the order in which concurrent episodes are played.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.rollout import rollout
        >>> env = AgeMemEnv("assistant", privileged_info=True)
        >>> _, info = rollout(env, MemoryRandomPolicy(p_store=1.0, p_retrieve=1.0), seed=0, task_index=0)
        >>> info["tool_calls"]["Retrieve_memory"]
        1
        >>> env.close()
    """

    name = "memory-random"
    privileged = True

    def __init__(self, p_store: float = 0.5, p_retrieve: float = 0.5, top_k: int | None = None,
                 answer: Literal["value", "quote"] = "value", seed: int = 0):
        for label, p in (("p_store", p_store), ("p_retrieve", p_retrieve)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{label} must be in [0, 1], got {p}")
        if answer not in ("value", "quote"):
            raise ConfigError(f"answer must be 'value' or 'quote', got {answer!r}")
        self.p_store, self.p_retrieve, self.top_k, self.seed = p_store, p_retrieve, top_k, seed
        self.answer = answer

    def _coin(self, info: dict[str, Any]) -> float:
        episode = f"{info['benchmark']}/{info['task_id']}"
        key = [self.seed, zlib.crc32(episode.encode()), info["stage"], info["turn"], info["round"]]
        return float(np.random.default_rng(key).random())

    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        task: TaskInstance = info["task"]
        last = observation[-1]
        acted = last["role"] == "tool"
        if info["stage"] == 1:
            fact = task.stage1[info["turn"]]
            if not acted and fact.op != "none" and self._coin(info) < self.p_store:
                return format_tool_call("Add_memory", content=fact.message)
            return format_answer("Noted.")
        if info["stage"] == 2:
            return format_answer("Noted.")
        interactive = "expert_action" in info
        first_step = not acted and (not interactive or last["content"].startswith(task.query))
        if first_step and self._coin(info) < self.p_retrieve:
            extra: dict[str, Any] = {} if self.top_k is None else {"top_k": self.top_k}
            return format_tool_call("Retrieve_memory", query=task.query, **extra)
        if interactive:
            return format_answer(info["expert_action"] or "")
        shown = [c for r in info.get("tool_results", []) for c in r["data"].get("contents", [])]
        found = [a for a in task.answers if a and any(a.lower() in line.lower() for line in shown)]
        if found and self.answer == "quote":  # copying a line is easier to learn than extracting a value
            found = [line for line in shown if any(a.lower() in line.lower() for a in found)]
        return format_answer("; ".join(found) if found else "I don't know.")
