"""The OpenAI-compatible backend against a scripted local server and a real `transformers serve`."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("httpx")

from _llm_fixtures import ScriptedServer, free_port, tiny_model, transformers_serve  # noqa: E402

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.llm import BackendError, make_backend  # noqa: E402
from agemem_gym.llm.base import TOOL_AS_USER_PREFIX  # noqa: E402

USER = [{"role": "user", "content": "hi"}]
FAST = {"backoff": 0.01, "max_backoff": 0.05, "tokenizer": "approx"}


def backend(server: ScriptedServer, **options):
    return make_backend("openai", "m", base_url=server.url, **{**FAST, **options})


def test_request_body_and_parsing():
    with ScriptedServer(["ok"]) as server, backend(server, extra_body={"top_k": 5}) as llm:
        [g] = llm.generate([USER], max_new_tokens=7, temperature=0.5, top_p=0.9, seed=3)
    body = server.requests[0]
    assert body == {
        "model": "m",
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 3,
        "top_k": 5,
        "messages": USER,
    }
    assert (g.text, g.prompt_tokens, g.completion_tokens, g.logprobs) == ("hello", 11, 2, None)
    assert g.finish_reason == "length" and g.seconds > 0


def test_retries_5xx_then_succeeds():
    with ScriptedServer([500, 503, "ok"]) as server, backend(server, max_retries=2) as llm:
        [g] = llm.generate([USER])
    assert g.text == "hello" and len(server.requests) == 3


def test_gives_up_after_max_retries_naming_server_and_request():
    with (
        ScriptedServer([502]) as server,
        backend(server, max_retries=2) as llm,
        pytest.raises(BackendError) as err,
    ):
        llm.generate([USER, USER])
    assert len(server.requests) == 6  # 2 prompts x 3 attempts
    message = str(err.value)
    assert server.url + "/chat/completions" in message and "model 'm'" in message
    assert "failed after 3 attempt(s); last: HTTP 502" in message


def test_429_waits_for_retry_after():
    with ScriptedServer([429, "ok"]) as server, backend(server) as llm:
        began = time.monotonic()
        [g] = llm.generate([USER])
    assert g.text == "hello" and time.monotonic() - began >= 0.04  # capped by max_backoff


def test_client_error_is_not_retried():
    expected = r"request 0: HTTP 404: \{'error': 'scripted 404'\}"
    with (
        ScriptedServer([404]) as server,
        backend(server) as llm,
        pytest.raises(BackendError, match=expected),
    ):
        llm.generate([USER])
    assert len(server.requests) == 1


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/chat/completions"])
def test_base_url_with_or_without_v1_reaches_the_endpoint(suffix):
    with ScriptedServer(["ok"]) as server:
        address = server.url.removesuffix("/v1")
        with make_backend("openai", "m", base_url=address + suffix, **FAST) as llm:
            [g] = llm.generate([USER])
        assert llm.base_url == server.url
    assert g.text == "hello" and server.paths == ["/v1/chat/completions"]


def test_wrong_api_root_says_what_to_pass():
    with ScriptedServer(["ok"]) as server:
        wrong = server.url.removesuffix("/v1") + "/api"
        with (
            make_backend("openai", "m", base_url=wrong, **FAST) as llm,
            pytest.raises(BackendError) as err,
        ):
            llm.generate([USER])
    assert server.paths == ["/api/chat/completions"]  # a 404 is not retried
    message = str(err.value)
    assert f"{wrong}/chat/completions (model 'm'), request 0: HTTP 404" in message
    assert "as base_url (--base-url) the API root that holds /chat/completions" in message
    assert "e.g. http://127.0.0.1:8000/v1" in message


def test_stalling_server_times_out_in_bounded_time():
    with (
        ScriptedServer(["stall"], stall_s=3.0) as server,
        backend(server, timeout=0.3, max_retries=1) as llm,
    ):
        began = time.monotonic()
        with pytest.raises(BackendError, match="ReadTimeout"):
            llm.generate([USER])
        assert time.monotonic() - began < 2.5
    assert len(server.requests) == 2


def test_stall_then_recovery():
    with (
        ScriptedServer(["stall", "ok"], stall_s=1.0) as server,
        backend(server, timeout=0.3, max_retries=1) as llm,
    ):
        [g] = llm.generate([USER])
    assert g.text == "hello"


def test_connection_refused_names_server():
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = make_backend("openai", "m", base_url=url, max_retries=1, **FAST)
    with pytest.raises(BackendError, match="ConnectError") as err:
        llm.generate([USER])
    assert url in str(err.value)
    llm.close()


def test_concurrency_limit_and_order():
    prompts = [[{"role": "user", "content": str(i)}] for i in range(8)]
    with ScriptedServer(["ok"], delay_s=0.1) as server, backend(server, max_concurrency=3) as llm:
        out = llm.generate(prompts)
    assert len(out) == 8 and server.max_in_flight == 3
    assert sorted(r["messages"][0]["content"] for r in server.requests) == [
        str(i) for i in range(8)
    ]


def test_api_key_from_named_environment_variable(monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sekrit")
    with ScriptedServer(["ok"]) as server, backend(server, api_key_env="MY_LLM_KEY") as llm:
        llm.generate([USER])
    assert server.headers[0]["Authorization"] == "Bearer sekrit"


def test_no_key_sends_no_authorization(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedServer(["ok"]) as server, backend(server) as llm:
        llm.generate([USER])
    assert "Authorization" not in server.headers[0]


def test_tool_role_rejected_falls_back_to_user():
    prompt = [*USER, {"role": "tool", "content": "42"}]
    with ScriptedServer(["400-tool"]) as server, backend(server) as llm:
        [g] = llm.generate([prompt])
        llm.generate([prompt])
    assert g.text == "hello"
    assert [m["role"] for m in server.requests[1]["messages"]] == ["user", "user"]
    assert server.requests[1]["messages"][1]["content"] == TOOL_AS_USER_PREFIX + "42"
    assert len(server.requests) == 3  # the second call goes straight to the user form


def test_stop_strings_trimmed_and_reported_stop_appended():
    with ScriptedServer(["ok"]) as server, backend(server) as llm:
        server.reply = {"text": "<answer>4</answer> more", "finish_reason": "length"}
        [g] = llm.generate([USER], stop=["</answer>"])
        assert (g.text, g.finish_reason) == ("<answer>4</answer>", "stop")
        server.reply = {
            "text": "<answer>4",
            "finish_reason": "stop",
            "extra": {"stop_reason": "</answer>"},
        }
        [g] = llm.generate([USER], stop=["</answer>"])
        assert g.text == "<answer>4</answer>"
    assert server.requests[0]["stop"] == ["</answer>"]


def test_structured_reasoning_and_tool_calls_are_put_back_as_text():
    call = {
        "id": "1",
        "type": "function",
        "function": {"name": "Add_memory", "arguments": '{"content": "x"}'},
    }
    with ScriptedServer(["ok"]) as server, backend(server) as llm:
        server.reply = {
            "text": None,
            "finish_reason": "tool_calls",
            "extra": {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning": "store it",
                    "tool_calls": [call],
                }
            },
        }
        [g] = llm.generate([USER])
    assert g.text == (
        '<think>store it</think>\n<tool_call>[{"name": "Add_memory", "arguments": {"content": "x"}}]</tool_call>'
    )


def test_logprobs_parsed():
    with ScriptedServer(["ok"]) as server, backend(server) as llm:
        [g] = llm.generate([USER], logprobs=True)
    assert server.requests[0]["logprobs"] is True and g.logprobs == [-0.5, -0.5]


def test_invalid_settings():
    with pytest.raises(ConfigError, match="need max_concurrency >= 1"):
        make_backend("openai", "m", max_concurrency=0)
    with ScriptedServer(["ok"]) as server, backend(server) as llm:
        with pytest.raises(ConfigError, match="prompt 1, message 0: role must be one of"):
            llm.generate([USER, [{"role": "robot", "content": "x"}]])
        with pytest.raises(ConfigError, match="temperature must be >= 0"):
            llm.generate([USER], temperature=-1)
    assert llm.count_tokens("12345678") == 2  # approx: 4 bytes per token


@pytest.mark.engine
def test_real_server_matches_transformers_backend(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    path = tiny_model(tmp_path_factory)
    prompts = [
        [{"role": "user", "content": "Where does my sister live?"}],
        [
            {"role": "system", "content": "You manage memory."},
            {"role": "user", "content": "Remember: the key is under the mat."},
            {"role": "assistant", "content": "<tool_call>[]</tool_call>"},
            {"role": "tool", "content": "stored"},
        ],
    ]
    local = make_backend("transformers", str(path), device="cpu")
    expected = local.generate(prompts, max_new_tokens=24)
    stop = [expected[0].text[6:9]]
    expected_stop = local.generate(prompts[:1], max_new_tokens=24, stop=stop)[0]
    with transformers_serve(path) as url:
        # the server's bare address, as users type it: the backend adds /v1
        llm = make_backend("openai", str(path), base_url=url.removesuffix("/v1"), max_concurrency=2)
        assert llm.base_url == url
        got = llm.generate(prompts, max_new_tokens=24)
        got_stop = llm.generate(prompts[:1], max_new_tokens=24, stop=stop)[0]
        assert llm.count_tokens("<answer>Lyon</answer>") == local.count_tokens(
            "<answer>Lyon</answer>"
        )
        llm.close()
    # transformers serve strips whitespace at both ends of a completion and keeps special
    # tokens (e.g. <|im_start|>) in the text, which the local backend skips when decoding
    # (<|im_start|> is a special added token but not in all_special_tokens)
    specials = [t.content for t in local.tokenizer.added_tokens_decoder.values() if t.special]

    def plain(text: str) -> str:
        for token in specials:
            text = text.replace(token, "")
        return text.strip()

    assert [plain(g.text) for g in got] == [plain(g.text) for g in expected]
    assert [g.prompt_tokens for g in got] == [g.prompt_tokens for g in expected]
    assert [g.completion_tokens for g in got] == [24, 24]
    assert plain(got_stop.text) == plain(expected_stop.text) and got_stop.text.endswith(stop[0])
