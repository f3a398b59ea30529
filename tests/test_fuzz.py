"""Property-based fuzzing: nothing a model writes makes ``env.step`` raise, on every env.

Responses are drawn from the response grammar (think / tool_call / answer, well formed or
broken) and the tool schemas (right and wrong types, keys chromadb reserves, unpaired
surrogates, numbers past the JSON decoder's limits, deep nesting), with ids of memories that
exist mixed in so Update/Delete really run. Each example plays a few steps; an env is reset
only when its episode ends, so a slow engine is not reset per example. Run with ``-s`` to see
the size of each env's run; ``AGEMEM_FUZZ_SCALE=10`` multiplies every env's examples.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import gymnasium as gym
import pytest
from conftest import SAMPLE_DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agemem_gym  # noqa: F401  (registers the envs)
from agemem_gym.tools import ALL_TOOLS, TOOL_SPECS

# -- the grammar ------------------------------------------------------------------------------

ODD_TEXT = ["", " ", "\ud800", "a\udfffb", "\x00", "tab\there", "²", "[" * 60, "{" * 30,
            "x" * 5_000, "mem_000000", "all", "full", "3", "-1", "0", "</answer>", "<think>",
            "look", "go to kitchen", "open door", "pick up the key", "inventory", "north"]
ODD_KEYS = ["", " ", "$and", "$or", "$eq", "$in", "#document", "chroma:document", "topic",
            "year", "memory_type", "created_at", "stage", "\ud800", "k" * 200]
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5_000, "-" + "9" * 4_400,
               "12345678901234567890123", "1.5", "-0"]


class Raw(str):
    """Text put into the JSON as is (numbers JSON cannot hold, broken fragments)."""


texts = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=40),
                  st.text(st.characters(codec="utf-8"), max_size=20))
keys = st.one_of(st.sampled_from(ODD_KEYS), st.text(max_size=8))
leaves = st.one_of(texts, st.integers(), st.integers(min_value=2**63, max_value=2**80),
                   st.floats(), st.booleans(), st.none(),
                   st.sampled_from(RAW_NUMBERS).map(Raw))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3),
    st.dictionaries(st.sampled_from(["$eq", "$ne", "$gt", "$in", "$nin", "$and", "$or", "$x"]),
                    inner, max_size=2)), max_leaves=8)


def render(value: Any, ascii_only: bool) -> str:
    """JSON text of ``value``; ``Raw`` leaves are inserted verbatim."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=ascii_only)}: "
                               f"{render(v, ascii_only)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(render(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def arguments(draw: st.DrawFn, name: str, memory_ids: list[str]) -> dict[str, Any]:
    spec = TOOL_SPECS.get(name)
    out: dict[str, Any] = {}
    for param in spec.params if spec else ():
        if draw(st.integers(0, 9)) == 0:
            continue  # a missing argument
        if param.name == "memory_id" and draw(st.booleans()):
            # the same draws whatever the memory holds, so hypothesis can replay an example
            k = draw(st.integers(0, 15))
            out[param.name] = memory_ids[k % len(memory_ids)] if memory_ids else f"mem_{k:06x}"
        elif draw(st.integers(0, 2)) == 0:
            out[param.name] = draw(values)  # any type at all
        elif param.type == "string":
            out[param.name] = draw(texts)
        elif param.type == "integer":
            out[param.name] = draw(st.one_of(st.integers(-5, 30), st.sampled_from(RAW_NUMBERS).map(Raw)))
        elif param.type == "boolean":
            out[param.name] = draw(st.booleans())
        else:
            out[param.name] = draw(st.dictionaries(keys, values, max_size=3))
    if draw(st.integers(0, 5)) == 0:
        out[draw(keys)] = draw(values)  # an unexpected argument
    return out


@st.composite
def tool_call(draw: st.DrawFn, memory_ids: list[str]) -> str:
    calls = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(ALL_TOOLS + ("Nope", "add_memory", "")))
        args = draw(arguments(name, memory_ids))
        calls.append({"name": name, "arguments": args})
    ascii_only = draw(st.booleans())
    body = render(calls if len(calls) > 1 or draw(st.booleans()) else calls[0], ascii_only)
    if draw(st.integers(0, 7)) == 0:  # OpenAI-style arguments as a JSON string
        body = render([{"name": c["name"], "arguments": render(c["arguments"], True)}
                       for c in calls], ascii_only)
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.sampled_from(["[" * 2000, "[{" * 40, body[: len(body) // 2], "[]", "{}",
                                     "null", '"text"', body + "]"]))
    return f"<think>{draw(texts)}</think><tool_call>{body}</tool_call>"


@st.composite
def response(draw: st.DrawFn, memory_ids: list[str]) -> str:
    kind = draw(st.sampled_from(["tool", "tool", "tool", "answer", "answer", "broken", "text"]))
    if kind == "tool":
        return draw(tool_call(memory_ids))
    if kind == "answer":
        return f"<think>{draw(texts)}</think><answer>{draw(texts)}</answer>"
    if kind == "broken":
        parts = draw(st.lists(st.sampled_from(["<think>", "</think>", "<tool_call>", "</tool_call>",
                                                "<answer>", "</answer>", "[", "{", '"', "x"]),
                              max_size=8))
        return "".join(parts)
    return draw(st.one_of(st.text(max_size=200), st.sampled_from(ODD_TEXT)))


# -- the envs ---------------------------------------------------------------------------------

def _data(name: str) -> dict[str, Any]:
    path = SAMPLE_DATA[name]
    if not path.exists():
        pytest.skip(f"needs the {name} sample data at {path}")
    return {"data": str(path)}


#: env id -> (make options, its extra's package, examples, tasks to cycle through)
ENVS = {
    "AgeMem/Assistant-v0": (lambda: {"num_facts": 4, "num_distractors": 2}, None, 120, 20),
    # the released code's tolerant parser repairs replies the strict one refuses
    "AgeMem/Assistant-v0#lenient": (lambda: {"num_facts": 4, "num_distractors": 2,
                                             "parser": "lenient"}, None, 50, 20),
    "AgeMem/HotpotQA-v0": (lambda: _data("hotpotqa"), None, 40, 5),
    "AgeMem/BabyAI-v0": (lambda: {**_data("babyai"), "stages": (3,)}, "minigrid", 40, 5),
    "AgeMem/PDDL-v0": (lambda: {**_data("pddl"), "stages": (3,)}, "pddlgym", 40, 3),
    "AgeMem/SciWorld-v0": (lambda: {**_data("sciworld"), "stages": (3,)}, "scienceworld", 30, 2),
    "AgeMem/ALFWorld-v0": (lambda: {**_data("alfworld"), "stages": (3,)}, "alfworld", 30, 1),
}
SIZES: dict[str, Counter] = {}
SCALE = float(os.environ.get("AGEMEM_FUZZ_SCALE", "1"))


class _Player:
    """One env, reset only when its episode ends."""

    def __init__(self, env_id: str):
        options, package, self.examples, self.tasks = ENVS[env_id]
        if package:
            pytest.importorskip(package)
        self.env_id = env_id
        self.env = gym.make(env_id.split("#")[0], max_response_chars=8_000, **options())
        self.size = SIZES.setdefault(env_id, Counter())
        self.episode = 0
        self._reset()

    def _reset(self) -> None:
        self.env.reset(seed=self.episode, options={"task_index": self.episode % self.tasks})
        self.episode += 1
        self.size["episodes"] += 1

    def memory_ids(self) -> list[str]:
        return [e.id for e in self.env.unwrapped.ltm.entries()]

    def step(self, text: str) -> None:
        observation, reward, terminated, truncated, info = self.env.step(text)
        self.size["steps"] += 1
        assert self.env.observation_space.contains(observation)
        assert isinstance(reward, float) and isinstance(info["counts"], dict)
        if terminated or truncated:
            self._reset()


@pytest.fixture(scope="module", params=list(ENVS))
def player(request):
    p = _Player(request.param)
    yield p
    p.env.close()
    print(f"\nfuzz {p.env_id}: {p.size['examples']} examples, {p.size['steps']} steps, "
          f"{p.size['episodes']} episodes, 0 exceptions")


def test_no_response_makes_step_raise(player):
    @settings(max_examples=max(1, int(player.examples * SCALE)), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def play(data: st.DataObject) -> None:
        player.size["examples"] += 1
        for _ in range(data.draw(st.integers(1, 6), label="steps")):
            player.step(data.draw(response(player.memory_ids()), label="response"))

    play()
