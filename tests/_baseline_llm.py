"""A scripted model for the baseline tests: canned replies chosen by the call's step."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agemem_gym import AgeMemEnv
from agemem_gym.llm.base import Generation, LLMBackend
from agemem_gym.rollout import play_episodes
from agemem_gym.tasks.base import Fact, TaskInstance

ANSWER = "<think></think><answer>ok</answer>"

LISBON, OSAKA = "The user lives in Lisbon.", "The user lives in Osaka."
#: A user who moved: the second stage-1 message updates the first.
MOVED = TaskInstance(
    task_id="moved", query="Quick question: what is the city I live in?", answers=("Osaka",),
    stage1=(Fact("Just so you know, the city I live in is Lisbon.", LISBON, "city", "add"),
            Fact("Actually, that changed: the city I live in is now Osaka.", OSAKA, "city", "update")),
    distractors=("Funny thing, for my sister the city they live in is Porto.",),
    supporting_facts=(OSAKA,), key_items=("the city I live in",),
    metadata={"queried": [{"key": "city", "value": "Osaka", "stale": "Lisbon"}]},
)


def keeping(cls: type) -> type:
    """``cls`` (a baseline) keeping each finished episode's state in ``finished[task_id]``."""

    class Keeping(cls):  # type: ignore[valid-type, misc]
        def __init__(self, **options: Any):
            super().__init__(**options)
            self.finished: dict[str, Any] = {}

        def end_episode(self, episode: Any) -> None:
            self.finished[episode.task_id] = self.episode(episode.key).state
            super().end_episode(episode)

    Keeping.__name__ = f"Keeping{cls.__name__}"
    return Keeping


def play_task(policy: Any, task: TaskInstance, env_options: dict[str, Any] | None = None,
              **reset: Any) -> dict[str, Any]:
    """Play ``task`` once with ``policy`` on the Assistant env; the final ``info``."""
    env = AgeMemEnv("assistant", **{**policy.env_options, **(env_options or {})})
    [done] = play_episodes([env], policy, [{"seed": 0, "options": {"task": task}, **reset}])
    env.close()
    return done.info


def step_of(prompt: list[dict[str, str]]) -> str:
    """Which controller step a prompt is (``answer`` for the answering model, ``other`` for a
    call with no system prompt)."""
    from baselines import mem0, mem0g

    steps = {mem0.EXTRACT_SYSTEM.split("{")[0]: "extract", mem0.DECIDE_SYSTEM: "decide",
             mem0g.ENTITIES_SYSTEM: "entities", mem0g.RELATIONS_SYSTEM: "relations",
             mem0g.CONFLICTS_SYSTEM: "conflicts"}
    if prompt[0]["role"] != "system":
        return "other"
    first = prompt[0]["content"]
    return next((step for start, step in steps.items() if first.startswith(start)), "answer")


Respond = Callable[[str, list[dict[str, str]]], str]


class Script(LLMBackend):
    """Replies with ``respond(step, prompt)``; keeps every call (step, prompt count, options)."""

    name = "script"

    def __init__(self, respond: Respond):
        self.respond = respond
        self.calls: list[dict[str, Any]] = []

    def generate(self, prompts, **options):
        steps = [step_of(list(p)) for p in prompts]
        self.calls.append({"steps": steps, "prompts": [list(p) for p in prompts], **options})
        return [Generation(self.respond(s, list(p)), prompt_tokens=10, completion_tokens=5, seconds=0.01)
                for s, p in zip(steps, prompts, strict=True)]

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def steps(self) -> list[str]:
        return [s for call in self.calls for s in call["steps"]]


def stored(prompt: list[dict[str, str]]) -> list[dict[str, str]]:
    """The memories a Mem0 decision prompt shows (``[{"id", "text"}]``)."""
    user = prompt[1]["content"]  # after the system prompt (a retry appends more messages)
    return json.loads(user.split("Stored memories:\n", 1)[1].split("\n\nNew facts:", 1)[0])


def new_facts(prompt: list[dict[str, str]]) -> list[str]:
    return json.loads(prompt[1]["content"].split("New facts:\n", 1)[1])


def retraction(content: str) -> str:
    """How the scripted extraction words a retracted fact."""
    return f"No longer true: {content}"


def oracle_mem0(task: TaskInstance) -> Respond:
    """Replies of a Mem0 model that extracts each stage-1 fact exactly and decides correctly."""
    by_message: dict[str, Fact] = {f.message: f for f in task.stage1}
    previous: dict[str, str] = {}  # fact text -> the statement it replaces
    current: dict[str, str] = {}
    for f in task.stage1:
        if f.op in ("update", "delete"):
            previous[f.content if f.op == "update" else retraction(current[f.key])] = current[f.key]
        if f.op in ("add", "update"):
            current[f.key] = f.content

    def respond(step: str, prompt: list[dict[str, str]]) -> str:
        if step == "extract":
            fact = by_message.get(prompt[-1]["content"])
            if fact is None or fact.op == "none":
                return json.dumps({"facts": []})
            text = fact.content if fact.op != "delete" else retraction(_latest(task, fact))
            return json.dumps({"facts": [text]})
        if step == "decide":
            actions = []
            for text in new_facts(prompt):
                old = previous.get(text)
                match = [m["id"] for m in stored(prompt) if old is not None and m["text"] == old]
                if old is None:
                    actions.append({"event": "ADD", "id": "", "text": text})
                elif text.startswith("No longer true: "):
                    actions.append({"event": "DELETE", "id": match[0], "text": ""})
                else:
                    actions.append({"event": "UPDATE", "id": match[0], "text": text})
            return json.dumps({"actions": actions})
        return ANSWER

    return respond


def _latest(task: TaskInstance, fact: Fact) -> str:
    """The statement a retraction retracts: the last one for its key before it."""
    before = task.stage1[: task.stage1.index(fact)]
    return [f.content for f in before if f.key == fact.key and f.op in ("add", "update")][-1]
