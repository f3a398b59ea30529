"""Structured output: ``json_schema=`` on both backends, and reading controller replies."""

from __future__ import annotations

import json

import pytest
from _llm_fixtures import ScriptedServer, tiny_model, transformers_serve

from agemem_gym.llm import make_backend
from baselines._structured import object_schema, parse_reply
from baselines.mem0 import ACTIONS_SCHEMA

VERDICT = object_schema("verdict", {"event": {"type": "string", "enum": ["ADD", "NONE"]},
                                    "ok": {"type": "boolean"}})
PROMPTS = [[{"role": "user", "content": "Is this worth remembering?"}],
           [{"role": "system", "content": "You keep memory."},
            {"role": "user", "content": "I moved to Osaka last month, and my dog is called Mochi."}]]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("lmformatenforcer")
    llm = make_backend("transformers", str(tiny_model(tmp_path_factory)), device="cpu", threads=1)
    yield llm
    llm.close()


def test_local_backend_decodes_inside_the_schema(local):
    free = local.generate(PROMPTS, max_new_tokens=40)
    assert all(parse_reply(g.text, VERDICT)[1] is not None for g in free), "random weights write no JSON"
    for temperature, seed in ((0.0, None), (1.0, 7)):
        constrained = local.generate(PROMPTS, max_new_tokens=200, json_schema=VERDICT,
                                     temperature=temperature, seed=seed)
        for g in constrained:  # both rows of a left-padded batch
            value, reason = parse_reply(g.text, VERDICT)
            assert reason is None, (g.text, reason)
            assert g.finish_reason == "stop" and set(value) == {"event", "ok"}


def test_local_backend_keeps_a_cut_reply_a_prefix_of_the_schema(local):
    [g] = local.generate(PROMPTS[:1], max_new_tokens=12, json_schema=ACTIONS_SCHEMA)
    assert g.text.lstrip().startswith("{") and g.finish_reason == "length"
    value, reason = parse_reply(g.text, ACTIONS_SCHEMA)
    assert value is None and reason.startswith("invalid JSON"), "a cut reply is a counted failure"


def test_openai_backend_sends_the_schema_as_response_format():
    with ScriptedServer(["ok"]) as server:
        server.reply = {"text": '{"event": "ADD", "ok": true}', "finish_reason": "stop"}
        with make_backend("openai", "m", base_url=server.url, tokenizer="approx") as llm:
            [g] = llm.generate(PROMPTS[:1], json_schema=VERDICT)
            llm.generate(PROMPTS[:1])
    sent, plain = server.requests
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "verdict", "schema": VERDICT, "strict": True}}
    assert "response_format" not in plain
    assert parse_reply(g.text, VERDICT) == ({"event": "ADD", "ok": True}, None)


@pytest.mark.engine
def test_transformers_serve_accepts_response_format(tmp_path_factory):
    """``transformers serve`` takes the field (it does not enforce it: vLLM does)."""
    pytest.importorskip("fastapi")
    path = tiny_model(tmp_path_factory)
    with transformers_serve(path) as url:
        llm = make_backend("openai", str(path), base_url=url)
        [g] = llm.generate(PROMPTS[:1], max_new_tokens=8, json_schema=VERDICT)
        llm.close()
    assert g.completion_tokens == 8


@pytest.mark.parametrize("text, reason", [
    ("", "no JSON object or array in the reply"),
    ('{"event": "ADD", "ok": tru', "invalid JSON"),
    ('{"event": "MAYBE", "ok": true}', "schema: event: 'MAYBE' is not one of ['ADD', 'NONE']"),
    ('{"event": "ADD"}', "schema: the reply: 'ok' is a required property"),
    ('{"event": "ADD", "ok": true, "why": "x"}', "schema: the reply: Additional properties"),
])
def test_unusable_replies_say_why(text, reason):
    value, why = parse_reply(text, VERDICT)
    assert value is None and why.startswith(reason)


def test_replies_are_found_after_thinking_and_inside_fences():
    text = '<think>{"not": "this"}</think>Sure!\n```json\n' + json.dumps({"event": "NONE", "ok": False}) + "\n```"
    assert parse_reply(text, VERDICT) == ({"event": "NONE", "ok": False}, None)


def test_raw_control_characters_in_strings_are_read():
    """A constrained decoder may write a raw newline or escape byte inside a string."""
    schema = object_schema("facts", {"facts": {"type": "array", "items": {"type": "string"}}})
    assert parse_reply('{"facts": ["a\nb\x1b"]}', schema) == ({"facts": ["a\nb\x1b"]}, None)
