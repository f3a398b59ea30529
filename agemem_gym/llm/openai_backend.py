"""OpenAI-compatible backend: any server with ``POST /v1/chat/completions``.

Works with vLLM, SGLang, Ollama, ``transformers serve`` and hosted APIs. Requests of a batch run
concurrently on a thread pool (``max_concurrency`` at a time) over one ``httpx`` client.
Connection errors, timeouts, HTTP 408/429 and 5xx are retried with exponential backoff
(``backoff * 2**attempt`` seconds, at most ``max_backoff``, or the server's ``Retry-After``);
other HTTP errors fail at once. Every error names the server, the model and the request.

Stop strings are sent to the server and applied again to the returned text, so the completion
ends right after the first stop string, which stays in the text when the server returns it
(``transformers serve`` does; vLLM does with ``extra_body={"include_stop_str_in_output": True}``,
or reports it as ``stop_reason``, which is appended back). Servers that drop the stop string and
do not report it (the OpenAI API) give the text without it.

Servers that parse responses into structured fields (``reasoning_content``/``reasoning`` and
``tool_calls``: vLLM with a reasoning or tool parser, ``transformers serve`` for Qwen models whose
tokenizer has no response template) get them put back into the protocol's text form:
``<think>...</think>`` before the content, ``<tool_call>[{"name", "arguments"}, ...]</tool_call>``
after it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from agemem_gym.errors import ConfigError, MissingExtraError
from agemem_gym.llm.base import (
    BackendError,
    Generation,
    LLMBackend,
    Prompt,
    check_sampling,
    tool_as_user,
    trim_at_stop,
    validate_prompt,
)

logger = logging.getLogger(__name__)

#: HTTP statuses worth another attempt.
RETRY_STATUS: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


class OpenAIBackend(LLMBackend):
    """Generate through an OpenAI-compatible HTTP server.

    Args:
        model: the model name the server knows (for ``transformers serve``: its folder or id).
        base_url: the API root that holds ``/chat/completions``; default ``$OPENAI_BASE_URL``
            or ``http://127.0.0.1:8000/v1``. A bare server address gets ``/v1`` (``http://
            127.0.0.1:8000`` is ``http://127.0.0.1:8000/v1``) and a pasted endpoint loses its
            ``/chat/completions`` (see :func:`api_root`).
        api_key: the key; default read from the environment variable ``api_key_env``. No key
            sends no ``Authorization`` header (local servers need none).
        api_key_env: the environment variable holding the key.
        max_concurrency: requests in flight at once.
        timeout: seconds to wait for a response (read/write/pool).
        connect_timeout: seconds to wait for a connection.
        max_retries: further attempts after a retryable failure.
        backoff: first wait between attempts, in seconds; doubles each attempt.
        max_backoff: longest wait between attempts.
        tokenizer: for :meth:`count_tokens`: a folder or hub id for ``AutoTokenizer``
            (default: ``model``), or ``"approx"`` for 4 UTF-8 bytes per token.
        tool_role: ``"native"`` sends ``tool`` messages as is, ``"user"`` as user messages with
            a prefix, ``"auto"`` as is unless the server answers HTTP 400.
        extra_body: fields added to every request (e.g. ``{"top_k": 20}`` for vLLM).

    Raises:
        MissingExtraError: ``httpx`` is not installed.
        ConfigError: invalid settings.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        tokenizer: str | None = None,
        tool_role: Literal["auto", "native", "user"] = "auto",
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            import httpx
        except ImportError as e:
            raise MissingExtraError("the OpenAI-compatible LLM backend", "llm") from e
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            raise ConfigError(
                "need max_concurrency >= 1, max_retries >= 0, timeout > 0 and backoff >= 0; got "
                f"{max_concurrency}, {max_retries}, {timeout}, {backoff}"
            )
        if tool_role not in ("auto", "native", "user"):
            raise ConfigError(f"tool_role must be 'auto', 'native' or 'user', got {tool_role!r}")
        self.model_name = model
        self.base_url = api_root(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.extra_body = dict(extra_body or {})
        self._tool_role = tool_role
        self._tokenizer_name = tokenizer or model
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._httpx = httpx
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="llm")

    # -- generation ----------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        logprobs: bool = False,
        stop: Sequence[str] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> list[Generation]:
        """Complete every prompt (see :meth:`LLMBackend.generate`); one request per prompt.

        ``json_schema`` goes out as ``response_format`` (``json_schema``, strict), which vLLM
        and SGLang enforce; ``transformers serve`` accepts the field but ignores it.

        Raises:
            BackendError: a request failed for good, or the server sent no log-probs when
                asked for them.
        """
        check_sampling(max_new_tokens, temperature, top_p)
        messages = [validate_prompt(p, i) for i, p in enumerate(prompts)]
        settings: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
        }
        if seed is not None:
            settings["seed"] = seed
        if stop:
            settings["stop"] = list(stop)
        if logprobs:
            settings["logprobs"] = True
        if json_schema is not None:
            settings["response_format"] = response_format(json_schema)
        settings.update(self.extra_body)
        futures = [
            self._pool.submit(self._complete, i, m, settings, stop, logprobs)
            for i, m in enumerate(messages)
        ]
        return [f.result() for f in futures]

    def _complete(
        self,
        index: int,
        messages: list[dict[str, str]],
        settings: dict[str, Any],
        stop: Sequence[str] | None,
        want_logprobs: bool,
    ) -> Generation:
        has_tool = any(m["role"] == "tool" for m in messages)
        as_user = has_tool and self._tool_role == "user"
        began = time.perf_counter()
        status, data = self._post(index, tool_as_user(messages) if as_user else messages, settings)
        if status == 400 and has_tool and not as_user and self._tool_role == "auto":
            logger.info("%s rejected role 'tool'; sending tool messages as user", self.base_url)
            self._tool_role = "user"
            status, data = self._post(index, tool_as_user(messages), settings)
        if status == 404:
            raise self._error(index, f"HTTP 404: {str(data)[:500]}; {_NOT_FOUND_HINT}")
        if status >= 400:
            raise self._error(index, f"HTTP {status}: {str(data)[:500]}")
        return self._parse(index, data, stop, want_logprobs, time.perf_counter() - began)

    def _post(
        self, index: int, messages: list[dict[str, str]], settings: dict[str, Any]
    ) -> tuple[int, Any]:
        """POST one request with retries; return the final status and decoded body."""
        body = dict(settings, messages=messages)
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = min(self.max_backoff, self.backoff * 2**attempt)
            try:
                response = self._client.post("/chat/completions", json=body)
            except self._httpx.TransportError as e:  # connection refused/reset, timeouts
                last = f"{type(e).__name__}: {e}"
            else:
                if response.status_code not in RETRY_STATUS:
                    return response.status_code, _body(response)
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                wait = min(self.max_backoff, max(wait, _retry_after(response)))
            if attempt < self.max_retries:
                logger.warning(
                    "%s request %d attempt %d failed (%s); retrying in %.2fs",
                    self.base_url,
                    index,
                    attempt + 1,
                    last,
                    wait,
                )
                time.sleep(wait)
        raise self._error(index, f"failed after {self.max_retries + 1} attempt(s); last: {last}")

    def _parse(
        self,
        index: int,
        data: Any,
        stop: Sequence[str] | None,
        want_logprobs: bool,
        seconds: float,
    ) -> Generation:
        try:
            choice = data["choices"][0]
            text = reassemble(choice["message"])
            finish = choice.get("finish_reason")
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError) as e:
            raise self._error(index, f"unexpected response {str(data)[:300]!r}") from e
        reported = choice.get("stop_reason")
        stop_was_dropped = isinstance(reported, str) and not text.endswith(reported)
        if stop and finish == "stop" and reported in stop and stop_was_dropped:
            text += reported
        text, stopped = trim_at_stop(text, stop)
        token_logprobs = None
        if want_logprobs:
            content = (choice.get("logprobs") or {}).get("content")
            if content is None:
                raise self._error(
                    index, "the server returned no logprobs (it may not support them)"
                )
            token_logprobs = [float(t["logprob"]) for t in content]
        return Generation(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            logprobs=token_logprobs,
            finish_reason="stop" if stopped else finish,
        )

    def _error(self, index: int, what: str) -> BackendError:
        return BackendError(
            f"{self.base_url}/chat/completions (model {self.model_name!r}), request {index}: {what}"
        )

    # -- tokens --------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the ``tokenizer`` option (loaded on first use).

        Raises:
            ConfigError: the tokenizer cannot be loaded (pass ``tokenizer=`` or ``"approx"``).
        """
        if self._tokenizer_name == "approx":
            return math.ceil(len(text.encode("utf-8")) / 4)
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._load_tokenizer()
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _load_tokenizer(self) -> Any:
        try:
            from transformers import AutoTokenizer
        except ImportError as e:
            raise MissingExtraError("token counting for the OpenAI backend", "llm") from e
        name = self._tokenizer_name
        try:
            return AutoTokenizer.from_pretrained(name, local_files_only=Path(name).is_dir())
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"cannot load a tokenizer {name!r} to count tokens for {self.model_name!r}: {e}; "
                "pass tokenizer=<folder or hub id> or tokenizer='approx'"
            ) from e

    def close(self) -> None:
        """Stop the thread pool and close the connections."""
        self._pool.shutdown(wait=True)
        self._client.close()


_NOT_FOUND_HINT = (
    "the server has no such endpoint or model: pass the model name it serves, and as base_url "
    "(--base-url) the API root that holds /chat/completions, e.g. http://127.0.0.1:8000/v1 for "
    "vLLM, SGLang and `transformers serve`, http://127.0.0.1:11434/v1 for Ollama"
)


def api_root(base_url: str) -> str:
    """The API root that request paths (``/chat/completions``) hang from.

    A bare server address gets the usual ``/v1``; a pasted endpoint URL loses its
    ``/chat/completions``; any other path is kept as given (hosted APIs have their own).

    >>> api_root("http://127.0.0.1:8000"), api_root("http://127.0.0.1:8000/v1/")
    ('http://127.0.0.1:8000/v1', 'http://127.0.0.1:8000/v1')
    >>> api_root("http://h:8000/v1/chat/completions"), api_root("https://openrouter.ai/api/v1")
    ('http://h:8000/v1', 'https://openrouter.ai/api/v1')
    """
    url = base_url.strip().rstrip("/")
    url = url.removesuffix("/chat/completions")
    if urlsplit(url).path in ("", "/"):
        url += "/v1"
    return url


def _body(response: Any) -> Any:
    """The decoded JSON body, or the raw text when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return response.text


def _retry_after(response: Any) -> float:
    """Seconds a ``Retry-After`` header asks for (0 when absent or a date)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", 0)))
    except ValueError:
        return 0.0


def reassemble(message: Mapping[str, Any]) -> str:
    """The assistant message as protocol text, with parsed reasoning and tool calls put back.

    >>> reassemble({"content": "", "reasoning_content": "hm",
    ...             "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]})
    '<think>hm</think>\\n<tool_call>[{"name": "f", "arguments": {"a": 1}}]</tool_call>'
    """
    text = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning and "<think>" not in text:
        text = f"<think>{reasoning}</think>\n{text}"
    calls = []
    for call in message.get("tool_calls") or []:
        functions = call.get("function") if isinstance(call, Mapping) else None
        for function in functions if isinstance(functions, list) else [functions]:
            if not isinstance(function, Mapping):
                continue
            arguments = function.get("arguments", {})
            if isinstance(arguments, str):
                with contextlib.suppress(ValueError):  # else keep the string as sent
                    arguments = json.loads(arguments)
            calls.append({"name": function.get("name"), "arguments": arguments})
    if calls and "<tool_call>" not in text:
        text = f"{text}<tool_call>{json.dumps(calls)}</tool_call>"
    return text


def response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI ``response_format`` that asks for JSON accepted by ``schema``.

    >>> response_format({"title": "facts list", "type": "object"})["json_schema"]["name"]
    'facts_list'
    """
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "reply"))[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema), "strict": True}}
