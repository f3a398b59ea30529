"""The common base of the memory baselines: an external memory controller beside an answering model.

A baseline such as Mem0 is not an agent with memory tools: it is a pipeline that reads every
incoming user message, decides memory operations with its own model calls, and applies them to
the episode's long-term memory through the env's controller port. Before the stage-3 answer it
retrieves memories and inserts them into the agent's context the way that system would. The
answering model is the AgeMem agent's (same backend, model, sampling and response format); the
env is made with ``tools=()``, so that model is offered no memory tools.

A subclass overrides up to three hooks, each called with a batch of running episodes so its
model calls are batched across episodes:

- :meth:`MemoryController.new_state`: the per-episode state it keeps (a history, a graph);
- :meth:`MemoryController.observe`: what it does with new stage-1/2 messages;
- :meth:`MemoryController.recall`: the text it inserts before answering stage 3.

Controller model calls go through :meth:`MemoryController.ask`, which requests JSON (constrained
to a schema unless ``structured=False``), reads it, retries when told to, and counts every call
and every unusable reply under the ``controller`` role of the episode's cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agemem_gym.errors import ConfigError
from agemem_gym.llm import Generation, LLMBackend
from agemem_gym.llm.base import Prompt
from agemem_gym.policies.base import Policy
from agemem_gym.policies.llm_agent import AgeMemAgent
from agemem_gym.port import EpisodeHandle, IncomingMessage, MemoryPort
from agemem_gym.spaces import Observation
from baselines._structured import parse_reply

#: How a retry tells the model what was wrong with its last reply.
RETRY_NOTE = ("Your reply could not be used ({reason}). Reply again with only the JSON the "
              "instructions ask for.")


@dataclass
class Episode:
    """One running episode as a controller sees it.

    Attributes:
        handle: the env's handle (its ``port`` acts on the episode's long-term memory).
        state: whatever :meth:`MemoryController.new_state` made for this episode.
        seen: every incoming message so far, oldest first.
    """

    handle: EpisodeHandle
    state: Any = None
    seen: list[IncomingMessage] = field(default_factory=list)

    @property
    def port(self) -> MemoryPort:
        return self.handle.port


#: One incoming message of one episode.
Arrival = tuple[Episode, IncomingMessage]


class MemoryController(Policy):
    """Base of the memory baselines: a controller pipeline plus the AgeMem agent's answering model.

    Args:
        model, backend, base_url, max_new_tokens, temperature, top_p, seed, llm,
            **backend_options: the answering model, exactly as for
            :class:`~agemem_gym.policies.llm_agent.AgeMemAgent`; the controller uses the same
            backend.
        structured: constrain controller replies to their JSON schema (``response_format`` on
            an OpenAI-compatible server, constrained decoding on the local backend). False asks
            for JSON in the prompt only.
        retries: further attempts after an unusable controller reply (each counted).
        controller_max_new_tokens: the limit of one controller reply (controller calls decode
            greedily, whatever ``temperature`` the answering model uses).
        top_k: memories retrieved for the stage-3 query (the env's default k).
        fixed_reply: when set, the reply to stage-1/2 turns, without an answering-model call.

    Example:
        >>> from agemem_gym import AgeMemEnv
        >>> from agemem_gym.llm.base import Generation, LLMBackend
        >>> from agemem_gym.rollout import rollout
        >>> class Replies(LLMBackend):  # stands in for the model's text
        ...     name = "replies"
        ...     def generate(self, prompts, **kw):
        ...         return [Generation("<think></think><answer>ok</answer>", 9, 3, 0.0) for _ in prompts]
        ...     def count_tokens(self, text): return len(text) // 4
        >>> env = AgeMemEnv("assistant", num_distractors=1, **MemoryController.env_options)
        >>> reward, info = rollout(env, MemoryController(llm=Replies()), seed=0, task_index=0)
        >>> info["ltm"], info["answer"]
        ([], 'ok')
        >>> env.close()
    """

    name: ClassVar[str] = "memory-controller"
    env_options: ClassVar[dict[str, Any]] = {"tools": ()}

    def __init__(self, model: str = "", backend: str = "transformers", *, base_url: str | None = None,
                 max_new_tokens: int = 512, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None, structured: bool = True, retries: int = 0,
                 controller_max_new_tokens: int = 512, top_k: int = 3,
                 fixed_reply: str | None = None, llm: LLMBackend | None = None,
                 **backend_options: Any):
        if retries < 0 or top_k < 1 or controller_max_new_tokens < 1:
            raise ConfigError(f"need retries >= 0, top_k >= 1 and controller_max_new_tokens >= 1; "
                              f"got {retries}, {top_k}, {controller_max_new_tokens}")
        self.answerer = AgeMemAgent(model, backend, base_url=base_url, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_p=top_p, seed=seed, llm=llm,
                                    **backend_options)
        self.llm = self.answerer.llm
        self.structured, self.retries = structured, retries
        self.controller_max_new_tokens, self.top_k = controller_max_new_tokens, top_k
        self.fixed_reply = fixed_reply
        self._episodes: dict[str, Episode] = {}
        self._last: list[dict[str, Any]] = []

    def settings(self) -> dict[str, Any]:
        """The controller's settings, for a run's records: whether replies were constrained
        (``structured``), retries, recall size, reply limits."""
        return {"structured": self.structured, "retries": self.retries, "top_k": self.top_k,
                "controller_max_new_tokens": self.controller_max_new_tokens,
                "fixed_reply": self.fixed_reply}

    # -- hooks for subclasses ------------------------------------------------------------------
    def new_state(self, handle: EpisodeHandle) -> Any:
        """The per-episode state this controller keeps (None by default)."""
        return None

    def observe(self, arrivals: Sequence[Arrival]) -> None:  # noqa: B027 - optional hook
        """Process new stage-1/2 messages (one per episode); the default stores nothing."""

    def recall(self, arrivals: Sequence[Arrival]) -> list[str | None]:
        """Text to insert before answering each stage-3 message (None: insert nothing)."""
        return [None] * len(arrivals)

    def wants_recall(self, message: IncomingMessage) -> bool:
        """Whether a stage-3 message gets a recall: the query (question, or task and first
        observation), not every engine observation."""
        return message.stage == 3 and message.kind == "query"

    # -- episodes ------------------------------------------------------------------------------
    def reset(self) -> None:
        self._episodes.clear()

    def start_episode(self, episode: EpisodeHandle) -> None:
        self._episodes[episode.key] = Episode(episode, self.new_state(episode))

    def end_episode(self, episode: EpisodeHandle) -> None:
        self._episodes.pop(episode.key, None)

    def episode(self, key: str) -> Episode:
        """The running episode with this key."""
        try:
            return self._episodes[key]
        except KeyError:
            raise ConfigError(
                f"{self.name} has no running episode {key!r}; it needs an env that gives episode "
                "handles (info['episode_key']) and a loop that calls start_episode "
                "(agemem_gym.rollout.play_episodes does)") from None

    # -- acting ----------------------------------------------------------------------------------
    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[Observation],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        episodes = [self.episode(info.get("episode_key", "")) for info in infos]
        arrivals = [(ep, info["incoming"]) for ep, info in zip(episodes, infos, strict=True)
                    if info.get("incoming") is not None]
        for ep, message in arrivals:
            ep.seen.append(message)
        stored = [(ep, m) for ep, m in arrivals if m.stage in (1, 2)]
        if stored:
            self.observe(stored)
        wanted = [(ep, m) for ep, m in arrivals if self.wants_recall(m)]
        inserted = dict(zip((ep.handle.key for ep, _ in wanted), self.recall(wanted) if wanted else [],
                            strict=True))
        prompts = []
        for observation, ep in zip(observations, episodes, strict=True):
            prompt = [{"role": m["role"], "content": m["content"]} for m in observation]
            text = inserted.get(ep.handle.key)
            if text:
                ep.port.insert_context(text)
                prompt.append({"role": "user", "content": text})
            prompts.append(prompt)
        return self._answer(prompts, infos)

    def _answer(self, prompts: list[list[dict[str, str]]], infos: Sequence[dict[str, Any]]) -> list[str]:
        fixed = [self.fixed_reply is not None and info.get("stage") in (1, 2) for info in infos]
        asked = [p for p, f in zip(prompts, fixed, strict=True) if not f]
        replies = iter(self.answerer.act_batch([tuple(p) for p in asked], [{}] * len(asked))
                       if asked else [])
        usage = iter(self.answerer.last_usage() or [])
        out, self._last = [], []
        for f in fixed:
            if f:
                out.append(f"<think></think><answer>{self.fixed_reply}</answer>")
                self._last.append({"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                   "seconds": 0.0})
            else:
                out.append(next(replies))
                self._last.append(next(usage))
        return out

    def last_usage(self) -> list[dict[str, Any]] | None:
        return self._last

    # -- controller model calls ------------------------------------------------------------------
    def ask(self, step: str, requests: Sequence[tuple[Episode, Prompt]],
            schema: dict[str, Any]) -> list[Any]:
        """Ask the controller model for one JSON reply per request, in one batch.

        Every call is counted in its episode's ``controller`` cost; an unusable reply (not
        JSON, or not what ``schema`` accepts) counts as a failure with its reason and gives
        None, after ``retries`` further attempts that are told what was wrong.

        Returns:
            The parsed reply of each request, or None.
        """
        if not requests:
            return []
        results: list[Any] = [None] * len(requests)
        prompts = [[dict(m) for m in prompt] for _, prompt in requests]
        calls: list[list[Generation]] = [[] for _ in requests]
        reasons: list[str | None] = [None] * len(requests)
        failures = [0] * len(requests)
        pending = list(range(len(requests)))
        for attempt in range(self.retries + 1):
            generations = self._generate_json([prompts[i] for i in pending], schema)
            still = []
            for i, generation in zip(pending, generations, strict=True):
                calls[i].append(generation)
                value, reason = parse_reply(generation.text, schema)
                if reason is None:
                    results[i] = value
                    continue
                failures[i] += 1
                if generation.finish_reason == "length":
                    reason += " (the reply reached controller_max_new_tokens)"
                reasons[i] = f"{step}: {reason}"
                if attempt < self.retries:
                    prompts[i] += [{"role": "assistant", "content": generation.text},
                                   {"role": "user", "content": RETRY_NOTE.format(reason=reason)}]
                    still.append(i)
            pending = still
            if not pending:
                break
        for (ep, _), generations, failed, reason in zip(requests, calls, failures, reasons, strict=True):
            ep.port.record_llm("controller", generations, failures=failed, reason=reason)
        return results

    def _generate_json(self, prompts: list[list[dict[str, str]]],
                       schema: dict[str, Any]) -> list[Generation]:
        options: dict[str, Any] = {"json_schema": schema} if self.structured else {}
        return self.llm.generate(prompts, max_new_tokens=self.controller_max_new_tokens,
                                 temperature=0.0, **options)
