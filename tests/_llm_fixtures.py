"""Helpers for the LLM backend tests: the tiny model, a real server, a misbehaving server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_TINY: dict[str, Path] = {}


def tiny_model(tmp_path_factory: Any, **options: Any) -> Path:
    """Build the tiny model once per test session and set of options."""
    from agemem_gym.llm.tiny_model import build_tiny_model

    key = json.dumps(options, sort_keys=True)
    if key not in _TINY:
        _TINY[key] = build_tiny_model(tmp_path_factory.mktemp("tiny"), **options)
    return _TINY[key]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def transformers_serve(model_dir: Path, startup_s: float = 120.0) -> Iterator[str]:
    """Run ``transformers serve`` on a free local port for ``model_dir``; yield its /v1 URL."""
    exe = shutil.which("transformers")
    if exe is None:
        import pytest

        pytest.skip("the `transformers` command is not installed")
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--device", "cpu"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", proc, startup_s)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], startup_s: float) -> None:
    import httpx

    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"transformers serve exited with {proc.returncode}: {out[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"transformers serve was not healthy within {startup_s}s")


class ScriptedServer:
    """A local OpenAI-like HTTP server that misbehaves on purpose.

    Each request takes the next action of ``script`` (the last one repeats): ``"ok"`` answers a
    completion, ``"stall"`` sleeps ``stall_s`` before answering, an int answers that HTTP status,
    ``"400-tool"`` answers 400 when a message has role ``tool``, else ``"ok"``. Like real
    servers it serves only ``POST /v1/chat/completions``: any other path gets 404 ``Not Found``
    without taking an action (the paths asked for are in ``paths``).
    """

    def __init__(self, script: list[Any], *, stall_s: float = 2.0, delay_s: float = 0.0):
        self.script = list(script)
        self.stall_s = stall_s
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.reply: dict[str, Any] = {"text": "hello", "finish_reason": "length"}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_action(self, body: dict[str, Any], headers: dict[str, str]) -> Any:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            action = self.script[min(len(self.requests), len(self.script)) - 1]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return action

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "finish_reason": self.reply["finish_reason"],
            "message": {"role": "assistant", "content": self.reply["text"]},
        }
        choice.update(self.reply.get("extra", {}))
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": "h", "logprob": -0.5}] * 2}
        return {"choices": [choice], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.paths.append(self.path)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"detail": "Not Found"})
                    return
                action = server._next_action(body, dict(self.headers))
                try:
                    self._answer(action, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, action: Any, body: dict[str, Any]) -> None:
                time.sleep(server.delay_s)
                if action == "stall":
                    time.sleep(server.stall_s)
                if action == "400-tool":
                    roles = {m["role"] for m in body["messages"]}
                    action = 400 if "tool" in roles else "ok"
                if isinstance(action, int):
                    headers = {"Retry-After": "0.2"} if action == 429 else {}
                    self._send(action, {"error": f"scripted {action}"}, headers)
                else:
                    self._send(200, server._completion(body))

            def _send(self, status: int, reply: Any, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(reply).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
