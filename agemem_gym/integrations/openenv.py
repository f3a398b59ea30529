"""Any registered AgeMem env as an OpenEnv environment server, and its client.

OpenEnv (``openenv-core``) serves an ``Environment`` subclass over HTTP and WebSocket with
FastAPI: each WebSocket session (``/ws``) gets its own env instance, up to
``max_concurrent_envs`` at once; its ``EnvClient`` keeps one session per client. Here:

- :class:`AgeMemAction`: the model's response text; :class:`AgeMemObservation`: the context
  messages and a JSON-safe ``info`` (stage, turn, tool results, ..., and at the end
  ``metrics``, ``reward_components`` and the episode ``result`` record); :class:`AgeMemState`.
- :class:`AgeMemEnvironment`: one ``gym.make(env_id, **options)`` behind OpenEnv's API;
  ``reset`` takes ``seed`` and ``task_index`` (an evaluation-set task).
- :func:`make_app`: the FastAPI app; :func:`serve`: that app on a local port in a thread.
- :class:`AgeMemEnvClient`: OpenEnv's client for it; :func:`play_remote` plays one whole
  episode with any :class:`~agemem_gym.policies.base.Policy` that needs only observations and
  ``info`` (a policy that drives memory through the episode's port runs beside the env only).

OpenEnv's stateless ``POST /reset`` and ``POST /step`` make a fresh env per request (its
design); a multi-step episode needs the WebSocket session the client opens.

Example:
    >>> from agemem_gym.policies import NoopPolicy
    >>> app = make_app("AgeMem/Assistant-v0", num_facts=2, num_updates=0, num_deletes=0, num_distractors=1)
    >>> with serve(app) as url:
    ...     reward, info = play_remote(url, NoopPolicy(), seed=0, task_index=0)
    >>> info["metrics"]["score"], reward == info["reward_components"]["total"]
    (0.0, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from agemem_gym.errors import ConfigError, MissingExtraError
from agemem_gym.policies.base import Policy
from agemem_gym.port import IncomingMessage
from agemem_gym.spaces import Observation as ChatObservation
from agemem_gym.tasks.base import Fact, TaskInstance

try:
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import Field
except ImportError as e:  # pragma: no cover - the [openenv] extra brings it
    raise MissingExtraError("agemem_gym.integrations.openenv", "openenv") from e


class AgeMemAction(Action):
    """The model's response: ``<think>...</think>`` then a tool call or an answer."""

    text: str = Field(..., description="the model's raw response text")


class AgeMemObservation(Observation):
    """The context and a JSON-safe ``info``; ``reward`` is the final reward on the last step."""

    messages: list[dict[str, str]] = Field(default_factory=list,
                                           description='the context: {"id", "role", "content"} messages')
    info: dict[str, Any] = Field(default_factory=dict, description="the env's info, JSON-safe")
    truncated: bool = Field(default=False, description="the episode ended by a limit, not by its task")


class AgeMemState(State):
    """Where the session's episode is."""

    env_id: str = ""
    task_id: str | None = None
    stage: int = 0
    turn: int = 0
    done: bool = False


class AgeMemEnvironment(Environment[AgeMemAction, AgeMemObservation, AgeMemState]):
    """One AgeMem env (``gym.make(env_id, **options)``) behind OpenEnv's ``Environment`` API.

    Sessions are independent (each has its own env, memory store namespace and engine), so
    the server may run several at once.

    Example:
        >>> env = AgeMemEnvironment("AgeMem/Assistant-v0", num_distractors=1)
        >>> observation = env.reset(seed=0, task_index=0)
        >>> observation.messages[0]["role"], observation.info["stage"], observation.done
        ('system', 1, False)
        >>> env.step(AgeMemAction(text="<answer>Noted.</answer>")).info["turn"]
        1
        >>> env.close()
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str = "AgeMem/Assistant-v0", **options: Any):
        super().__init__()
        if env_id not in gym.registry:
            raise ConfigError(f"unknown env id {env_id!r}; registered AgeMem ids: "
                              f"{sorted(k for k in gym.registry if k.startswith('AgeMem/'))}")
        self.env_id = env_id
        self._env = gym.make(env_id, **options)
        self._state = AgeMemState(env_id=env_id)

    def reset(self, seed: int | None = None, episode_id: str | None = None,
              task_index: int | None = None, **kwargs: Any) -> AgeMemObservation:
        """Start an episode: a training task drawn with ``seed``, or the evaluation set's
        ``task_index``."""
        options = {"task_index": int(task_index)} if task_index is not None else None
        observation, info = self._env.reset(seed=seed, options=options)
        self._state = AgeMemState(episode_id=episode_id or uuid.uuid4().hex, env_id=self.env_id,
                                  task_id=info["task_id"], stage=info["stage"], turn=info["turn"])
        return _observation(observation, info, None, done=False, truncated=False)

    def step(self, action: AgeMemAction, timeout_s: float | None = None, **kwargs: Any) -> AgeMemObservation:
        observation, reward, terminated, truncated, info = self._env.step(action.text)
        done = bool(terminated or truncated)
        self._state.step_count += 1
        self._state.stage, self._state.turn, self._state.done = info["stage"], info["turn"], done
        return _observation(observation, info, float(reward) if done else None, done=done, truncated=bool(truncated))

    @property
    def state(self) -> AgeMemState:
        return self._state

    def close(self) -> None:
        self._env.close()


def _observation(observation: ChatObservation, info: dict[str, Any], reward: float | None, *,
                 done: bool, truncated: bool) -> AgeMemObservation:
    return AgeMemObservation(messages=[dict(m) for m in observation], info=jsonable(info), reward=reward,
                             done=done, truncated=truncated)


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses, tuples, sets and numpy values turned into JSON types (an
    episode result becomes its record); anything else unknown becomes its ``str``.

    >>> jsonable({"a": (1, np.float32(0.5)), "b": IncomingMessage("fact", "m2", "hi", 1, 0)})
    {'a': [1, 0.5], 'b': {'kind': 'fact', 'id': 'm2', 'content': 'hi', 'stage': 1, 'turn': 0}}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_record"):
        return jsonable(value.to_record())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)


def restore_info(info: dict[str, Any]) -> dict[str, Any]:
    """A JSON ``info`` with its typed entries back (``task``: :class:`TaskInstance`,
    ``incoming``: :class:`IncomingMessage`), as policies read them."""
    info = dict(info)
    if isinstance(info.get("task"), dict):
        task = dict(info["task"])
        task["stage1"] = tuple(Fact(**f) for f in task.get("stage1", ()))
        for name in ("answers", "distractors", "supporting_facts", "key_items"):
            task[name] = tuple(task.get(name, ()))
        info["task"] = TaskInstance(**task)
    if isinstance(info.get("incoming"), dict):
        info["incoming"] = IncomingMessage(**info["incoming"])
    return info


def make_app(env_id: str = "AgeMem/Assistant-v0", *, max_concurrent_envs: int = 8, **options: Any) -> Any:
    """The OpenEnv FastAPI app serving ``env_id`` (``gym.make`` options as keywords), with up
    to ``max_concurrent_envs`` WebSocket sessions at once. One env is made and closed here,
    so bad options fail now with the env's own error rather than at each session."""
    AgeMemEnvironment(env_id, **options).close()
    factory = functools.partial(AgeMemEnvironment, env_id, **options)
    app = create_fastapi_app(factory, AgeMemAction, AgeMemObservation, max_concurrent_envs=max_concurrent_envs)
    app.add_middleware(_ClosedByClient)
    return app


class _ClosedByClient:
    """Drops the error openenv-core 0.3's ``/ws`` handler raises when it closes a socket that its
    own client has already closed (it catches only ``RuntimeError`` there): the session ended
    normally, and uvicorn would log a traceback for every episode."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.websockets import WebSocketDisconnect

        try:
            await self.app(scope, receive, send)
        except WebSocketDisconnect:
            if scope.get("type") != "websocket":
                raise


@contextlib.contextmanager
def serve(app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yield its base URL (``port=0``: a free
    port); stop it on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="openenv-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the OpenEnv server on {host}:{port} did not start within {timeout:.0f} s")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)


class AgeMemEnvClient(EnvClient[AgeMemAction, AgeMemObservation, AgeMemState]):
    """OpenEnv's WebSocket client for an AgeMem server (async; ``.sync()`` for a blocking one).

    ``reset(seed=..., task_index=...)`` starts an episode; ``step(AgeMemAction(text=...))``
    (or a plain string) sends a response.
    """

    def _step_payload(self, action: AgeMemAction | str) -> dict[str, Any]:
        return {"text": action if isinstance(action, str) else action.text}

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[AgeMemObservation]:
        data = payload.get("observation", {})
        observation = AgeMemObservation(messages=data.get("messages", []), info=data.get("info", {}),
                                        truncated=data.get("truncated", False), reward=payload.get("reward"),
                                        done=payload.get("done", False))
        return StepResult(observation=observation, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> AgeMemState:
        return AgeMemState(**payload)


def play_remote(base_url: str, policy: Policy, *, seed: int | None = None, task_index: int | None = None,
                message_timeout_s: float = 120.0) -> tuple[float, dict[str, Any]]:
    """Play one whole episode on an AgeMem OpenEnv server with ``policy``; return the final
    reward and the final ``info`` (``metrics``, ``reward_components``, ``result``, ...)."""
    client = AgeMemEnvClient(base_url=base_url, message_timeout_s=message_timeout_s).sync()
    with client:
        result = client.reset(seed=seed, task_index=task_index)
        while not result.done:
            observation = tuple(result.observation.messages)
            action = policy.act(observation, restore_info(result.observation.info))
            result = client.step(AgeMemAction(text=action))
    return float(result.reward or 0.0), restore_info(result.observation.info)
