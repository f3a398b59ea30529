"""The three-stage memory env that drives every benchmark."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from agemem_gym.config import EnvConfig
from agemem_gym.episode import EpisodeState
from agemem_gym.judges import make_judge
from agemem_gym.lenient import parse_lenient
from agemem_gym.llm.base import Generation
from agemem_gym.memory.context import Context
from agemem_gym.memory.encoders import make_encoder
from agemem_gym.memory.ltm import LongTermMemory
from agemem_gym.memory.summarizers import make_summarizer
from agemem_gym.port import EpisodeHandle, IncomingMessage, MemoryPort
from agemem_gym.prompts import system_prompt
from agemem_gym.protocol import (
    ParsedResponse,
    ToolCall,
    parse_response,
    sanitize_action,
    unusable_action_message,
)
from agemem_gym.protocols import apply_protocol, rename_tools, tool_aliases
from agemem_gym.scoring import finish_episode, for_episode
from agemem_gym.spaces import ChatSpace, Observation, ResponseSpace
from agemem_gym.tasks import Engine, EngineStep, TaskSource, make_task_source
from agemem_gym.tools import CONTEXT_REDUCING_TOOLS, ToolBox, ToolResult
from agemem_gym.trace import EventKind, EventSource, cap, effect_event

_CLOCK_START = dt.datetime(2026, 1, 5, 9, 0)
_SHOWN_RESPONSE_CHARS = 2_000  # an oversize malformed response is kept in context only this long


class AgeMemEnv(gym.Env[Observation, str]):
    """A three-stage episode over one benchmark's task, with the six memory tools.

    Description:
        Stage 1 tells the task's facts over casual user turns, with introspective retrieval
        (the top-k stored memories for the incoming message) shown before each turn. The
        context is then cleared; long-term memory is kept. Stage 2 brings one distractor per
        turn. Stage 3 appends the query: a question to answer, or an interactive task whose
        engine each ``<answer>`` acts on. ``stages=`` runs any increasing subset.

    Observation:
        The context as a tuple of ``{"id", "role", "content"}`` messages: the system prompt
        (protocol and tool schemas) first. Ids are stable, so tools can name exact messages.
        :class:`~agemem_gym.wrappers.FlatTextObservation` gives one string instead.

    Action:
        The model's raw text: ``<think>...</think>`` then ``<tool_call>[...]</tool_call>`` or
        ``<answer>...</answer>``. Malformed text never raises: the next observation says what
        was wrong and ``info["counts"]["format_errors"]`` counts it.

    Reward:
        0 until the last step, then the paper's trajectory reward (:mod:`agemem_gym.rewards`);
        every component is in ``info["reward_components"]``.

    Termination:
        Terminated at the final answer (QA) or when the engine reports done. Truncated when the
        engine's step limit, N_max rounds, the per-turn step limit in stage 3, or the hard
        context cap is reached.

    Example:
        >>> import gymnasium as gym, agemem_gym
        >>> env = gym.make("AgeMem/Assistant-v0", num_facts=3, num_distractors=1)
        >>> obs, info = env.reset(seed=0)
        >>> obs[0]["role"], info["stage"]
        ('system', 1)
        >>> obs, reward, terminated, truncated, info = env.step("<answer>Got it.</answer>")
        >>> info["stage"], info["turn"]
        (1, 1)
        >>> env.close()
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, tasks: str | TaskSource = "assistant", *, config: EnvConfig | None = None,
                 render_mode: str | None = None, **options: Any):
        if config is None:
            config, source_options = EnvConfig.split(
                apply_protocol(tasks if isinstance(tasks, str) else tasks.name, options))
        else:
            source_options = options
        self.config = config
        self._owns_source = isinstance(tasks, str)
        self.source = make_task_source(tasks, **source_options) if isinstance(tasks, str) else tasks
        self.render_mode = render_mode
        self.max_rounds = config.max_rounds or self.source.max_rounds
        self.token_budget = config.token_budget or self.source.token_budget
        self.max_context_tokens = config.max_context_tokens or 4 * self.token_budget
        self.encoder = make_encoder(config.encoder)
        self.judge = make_judge(config.judge, self.encoder)
        self.summarizer = make_summarizer(config.summarizer)
        self.observation_space = ChatSpace()
        self.action_space = ResponseSpace(config.max_response_chars, config.tools)
        self._system_prompt = rename_tools(
            system_prompt(config.tools, self.source.instructions, config.prompt), config.protocol)
        self._tool_aliases = tool_aliases(config.protocol)
        self._ltm: LongTermMemory | None = None
        self._engine: Engine | None = None
        self._context = Context(config.token_counter)
        self._episode: EpisodeState | None = None
        self._handle: EpisodeHandle | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        """Start an episode. ``options``: ``task_index`` (into the evaluation set) or ``task``
        (a :class:`TaskInstance`); otherwise a training task (``TaskSource.sample``) is drawn
        with the env's seeded generator."""
        super().reset(seed=seed)
        options = options or {}
        if options.get("task") is not None:
            task = options["task"]
        elif options.get("task_index") is not None:
            task = self.source.get(int(options["task_index"]), self.np_random)
        else:
            task = self.source.sample(self.np_random)
        # one env runs one episode at a time, so its identity keys the running episode
        self._episode = ep = EpisodeState(task, key=f"env-{id(self):x}", seed=seed)
        namespace = f"{self.source.name}:{task.task_id}:{seed}"
        if self._ltm is None:
            self._ltm = LongTermMemory(self.encoder, store=self.config.memory_store,
                                       namespace=namespace, clock=self._clock,
                                       store_timeout=self.config.store_timeout,
                                       store_retries=self.config.store_retries)
        else:
            self._ltm.clear(namespace)
        self._context = Context(self.config.token_counter)
        self._context.append("system", self._system_prompt, "system")
        self._toolbox = ToolBox(
            self._ltm, self._context, self.encoder,
            for_episode(self.summarizer, ep.cost["summarizer"]), enabled=self.config.tools,
            filter_threshold=self.config.filter_threshold, max_text_chars=self.config.max_text_chars,
        )
        # a controller's memory operations are not limited to the tools offered to the model
        self._controller_toolbox = ToolBox(self._ltm, self._context, self.encoder, self._toolbox.summarizer,
                                           max_text_chars=self.config.max_text_chars)
        self._handle = EpisodeHandle(ep.key, MemoryPort(self), task.task_id, self.source.name)
        self._start_stage()
        return self._observation(), self._info()

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        ep = self._episode
        if ep is None or ep.done:
            raise gym.error.ResetNeeded("call reset() before step(), and again after the episode ends")
        ep.rounds += 1
        ep.steps_in_turn += 1
        ep.incoming = None
        ep.stage3_rounds += self._stage == 3
        self._emit("response", {"text": cap(action if isinstance(action, str) else repr(action))})
        parsed = self._parse(action)
        results: list[ToolResult] = []
        if parsed.kind == "invalid":
            self._on_invalid(action, parsed)
        elif parsed.kind == "tool_call":
            results = self._on_tool_calls(action, parsed)
            if parsed.answer is not None and not ep.done:  # lenient: the tools ran, the answer counts
                self._on_answer(None, parsed.answer)
        else:
            self._on_answer(action, parsed.answer or "")
        self._track_tokens()
        self._enforce_limits()
        if not ep.done and self.config.auto_retrieve and self._stage == 3:
            self._auto_retrieve()
        reward, terminated, truncated, info = 0.0, False, False, self._info(parsed, results)
        if ep.done:
            final = finish_episode(self, ep)
            reward = final["reward_components"]["total"]
            terminated = not ep.counts["truncated"]
            truncated = not terminated
            info.update(final)
        return self._observation(), reward, terminated, truncated, info

    def end_episode(self, reason: str) -> tuple[float, dict[str, Any]]:
        """End the running episode now, as if it ran out of rounds (the -1 round penalty), and
        return its final reward and the final ``info`` entries. For step caps applied outside
        the env (:class:`~agemem_gym.wrappers.FinishOnTruncation`)."""
        ep = self._episode
        if ep is None or ep.done:
            raise gym.error.ResetNeeded("no running episode to end")
        ep.rounds_exceeded = True
        self._end_early(reason)
        final = finish_episode(self, ep)
        return final["reward_components"]["total"], final

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return "\n".join(f"[{m.id}] {m.role}: {m.content}" for m in self._context)
        return None

    def __getstate__(self) -> dict[str, Any]:
        """Pickling and ``copy.deepcopy`` work: the copy's long-term memory is rebuilt in a
        collection of its own (:class:`~agemem_gym.memory.ltm.LongTermMemory`). A running
        engine is a separate process and cannot be copied: such an env refuses."""
        if self._engine is not None:
            raise TypeError(
                f"cannot pickle or copy this {type(self).__name__}: its {self.source.name} engine "
                "is running (a separate process). Copy it before an interactive stage 3 starts, "
                "or make a new env with the same settings and reset it with the same seed")
        return self.__dict__.copy()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._ltm is not None:
            self._ltm.close()
            self._ltm = None
        if self._owns_source:
            self.source.close()
        super().close()

    # -- public views ------------------------------------------------------------------------------
    @property
    def ltm(self) -> LongTermMemory:
        """The episode's long-term memory (read it, e.g. to inspect what an agent stored)."""
        if self._ltm is None:
            raise gym.error.ResetNeeded("call reset() first")
        return self._ltm

    @property
    def context(self) -> Context:
        """The episode's context (short-term memory)."""
        return self._context

    @property
    def episode_handle(self) -> EpisodeHandle:
        """The running episode's key and memory port, for policies that control memory."""
        if self._handle is None:
            raise gym.error.ResetNeeded("call reset() first")
        return self._handle

    # -- stages and turns ----------------------------------------------------------------------
    @property
    def _stage(self) -> int:
        assert self._episode is not None
        return self.config.stages[self._episode.stage_index]

    def _turns_in_stage(self) -> int:
        assert self._episode is not None
        task = self._episode.task
        return {1: len(task.stage1), 2: len(task.distractors), 3: 1}[self._stage]

    def _start_stage(self) -> None:
        ep = self._episode
        assert ep is not None
        while self._turns_in_stage() == 0 and ep.stage_index < len(self.config.stages) - 1:
            self._end_stage_bookkeeping()
            ep.stage_index += 1
        if ep.stage_index > 0 and self.config.stages[ep.stage_index - 1] == 1:
            self._context.reset(keep_system=True)  # the paper's reset after stage 1; LTM stays
            self._emit("context_reset", {}, source="env")
        ep.turn = 0
        self._emit("stage_start", {"stage": self._stage}, source="env")
        if self._turns_in_stage() == 0:  # an empty last stage: nothing to do
            self._end_stage_bookkeeping()
            ep.done = True
            return
        self._present_turn()

    def _present_turn(self) -> None:
        ep = self._episode
        assert ep is not None and self._ltm is not None
        ep.steps_in_turn = 0
        ep.memory_check = []
        task = ep.task
        if self._stage == 1:
            message = task.stage1[ep.turn].message
            check = len(self._ltm) and self.config.introspective_retrieval
            related = self._ltm.retrieve(message, self.config.retrieval_top_k) if check else []
            if related:
                ep.memory_check = [{"id": e.id, "content": e.content, "score": e.score} for e in related]
                lines = "\n".join(f"[{e.id}] {e.content}" for e in related)
                shown = self._context.append("user", f"[Memory check] Stored memories related to "
                                             f"the next message:\n{lines}", "retrieval")
                ep.memory_check = [{**m, "message_id": shown.id} for m in ep.memory_check]
                self._emit("memory_check", {"query": cap(message), **_found(related)}, source="env")
            self._user_turn(message, "fact")
        elif self._stage == 2:
            self._user_turn(task.distractors[ep.turn], "distractor")
        else:
            text = task.query
            if self._is_interactive():
                first = self._get_engine().reset(task)
                text = f"{task.query}\n{first}" if first else task.query
            self._user_turn(text, "query")
            if self.config.auto_retrieve:
                self._auto_retrieve()

    def _user_turn(self, content: str, kind: str) -> None:
        ep = self._episode
        assert ep is not None
        message = self._context.append("user", content, kind)
        ep.incoming = IncomingMessage(kind, message.id, content, self._stage, ep.turn)  # type: ignore[arg-type]
        self._emit("user_turn", {"message_kind": kind, "id": message.id, "content": cap(content)},
                   source="env")

    def _next_turn(self) -> None:
        ep = self._episode
        assert ep is not None
        ep.turn += 1
        if ep.turn < self._turns_in_stage():
            self._present_turn()
            return
        self._end_stage_bookkeeping()
        if ep.stage_index == len(self.config.stages) - 1:
            ep.done = True
            return
        ep.stage_index += 1
        self._start_stage()

    def _end_stage_bookkeeping(self) -> None:
        ep = self._episode
        assert ep is not None and self._ltm is not None
        if self._stage == 1:
            ep.stage1_entries = self._ltm.entries()

    # -- one response ----------------------------------------------------------------------------
    def _parse(self, action: Any) -> ParsedResponse:
        if self.config.parser == "strict":
            return parse_response(action, self.config.max_response_chars)
        lenient = parse_lenient(action, self.config.max_response_chars)
        assert self._episode is not None
        for repair in lenient.repairs:
            self._episode.counts["repairs"] += 1
            self._episode.counts[f"repair/{repair}"] += 1
        return lenient.parsed

    def _on_invalid(self, action: Any, parsed: ParsedResponse) -> None:
        assert self._episode is not None
        self._episode.counts["format_errors"] += 1
        shown = action if isinstance(action, str) else repr(action)
        if len(shown) > _SHOWN_RESPONSE_CHARS:
            shown = shown[:_SHOWN_RESPONSE_CHARS] + f"... [{len(shown):,} characters]"
        self._context.append("assistant", shown, "invalid")
        if self.config.parser == "strict":  # the released code gives no feedback: it asks again
            self._context.append("user", f"[Format error] {parsed.error}", "notice")
        self._emit("format_error", {"error": parsed.error})

    def _on_tool_calls(self, action: str, parsed: ParsedResponse) -> list[ToolResult]:
        ep = self._episode
        assert ep is not None and parsed.tool_calls is not None
        limit = self.config.max_tool_calls_per_step
        skipped = len(parsed.tool_calls) - limit
        calls = [ToolCall(self._tool_aliases.get(c.name, c.name), c.arguments) for c in parsed.tool_calls[:limit]]
        results = [self._run_tool(call, source="agent") for call in calls]
        self._context.append("assistant", action, "tool_call")
        lines = [f"{r.name}: {r.text}" for r in results]
        if skipped > 0:
            ep.counts["tool_errors"] += skipped
            lines.append(f"Only {limit} tool calls run per response; {skipped} were skipped.")
        message = self._context.append("tool", "\n".join(lines), "tool")
        ep.tool_message_results[message.id] = [(r.name, r.ok) for r in results]
        return results

    def _run_tool(self, call: ToolCall, source: EventSource) -> ToolResult:
        """Run one tool call from the agent's reply or a controller, counted and traced."""
        ep = self._episode
        if ep is None or ep.done:
            raise gym.error.ResetNeeded("no running episode: call reset() first")
        # the removed messages' text is only known before the call; only these tools remove any
        before = {m.id: m for m in self._context} if call.name in CONTEXT_REDUCING_TOOLS else {}
        toolbox = self._controller_toolbox if source == "controller" else self._toolbox
        result = toolbox.run(call, {"stage": self._stage, "source": source})
        ep.count_tool(call.name, source, self._stage)
        if not result.ok:
            ep.counts["tool_errors"] += 1
        elif call.name in ("Update_memory", "Delete_memory"):
            ep.maintenance = True
        elif call.name in CONTEXT_REDUCING_TOOLS and not ep.budget_exceeded:
            ep.reduced_before_budget = True
        elif call.name == "Retrieve_memory" and self._stage == 3:
            ep.retrieved.update(zip(result.data["ids"], result.data.get("contents", []), strict=True))
        self._emit("tool_call", {"name": call.name, "arguments": call.arguments, "ok": result.ok,
                                 "result": cap(result.text)}, source=source)
        if result.ok:
            self._trace_effect(call, result, before, source)
        return result

    def _trace_effect(self, call: ToolCall, result: ToolResult, before: dict[str, Any],
                      source: EventSource) -> None:
        """The memory or context change a successful call made, as its own event."""
        after = {m.id: m for m in self._context} if before else {}
        kind, payload = effect_event(call.name, call.arguments, result.data, self.ltm.get, before, after)
        if kind is not None:
            self._emit(kind, payload, source=source)

    def _on_answer(self, action: str | None, answer: str) -> None:
        """``action`` is the reply to append, None when it is already in the context."""
        ep = self._episode
        assert ep is not None
        if action is not None:
            self._context.append("assistant", action, "answer")
        if self._stage != 3:
            self._emit("answer", {"text": cap(answer)})
            self._next_turn()
        elif self._is_interactive():
            self._engine_step(answer)
        else:
            self._emit("answer", {"text": cap(answer)})
            ep.answer = answer
            ep.tokens_at_answer = self._context.total_tokens()
            ep.counts["key_items_missing"] = self._missing_key_items()
            ep.done = True

    def _engine_step(self, action: str) -> None:
        ep = self._episode
        assert ep is not None
        engine = self._get_engine()
        cleaned = sanitize_action(action)  # what an engine (a JVM) cannot take never reaches it
        if cleaned is None:
            outcome = EngineStep(f"[Invalid action] {unusable_action_message(action)}", valid=False)
        else:
            outcome = engine.step(cleaned)
        ep.engine_steps += 1
        ep.steps_in_turn = 0
        ep.answer = action
        ep.success = ep.success or outcome.success
        solved = outcome.success and engine.success_sets_full_progress
        ep.progress = max(ep.progress, outcome.progress, 1.0 if solved else 0.0)
        if not outcome.valid:
            ep.counts["invalid_actions"] += 1
        self._emit("engine_action", {"action": cap(action), "valid": outcome.valid})
        message = self._context.append("user", outcome.observation, "observation")
        ep.incoming = IncomingMessage("observation", message.id, outcome.observation, 3, ep.turn)
        self._emit("engine_observation", {"text": cap(outcome.observation), "progress": outcome.progress,
                                          "success": outcome.success, "done": outcome.done}, source="env")
        if outcome.done or ep.engine_steps >= engine.max_steps:
            ep.tokens_at_answer = self._context.total_tokens()
            ep.counts["key_items_missing"] = self._missing_key_items()
            ep.counts["truncated"] = int(not outcome.done)
            if not outcome.done:
                self._emit("limit", {"reason": "engine_steps"}, source="env")
            ep.done = True

    # -- limits --------------------------------------------------------------------------------
    def _track_tokens(self) -> None:
        ep = self._episode
        assert ep is not None
        tokens = self._context.total_tokens()
        ep.max_tokens = max(ep.max_tokens, tokens)
        if tokens > self.token_budget:
            ep.budget_exceeded = True

    def _enforce_limits(self) -> None:
        ep = self._episode
        assert ep is not None
        if ep.done:
            return
        if ep.rounds >= self.max_rounds:
            ep.rounds_exceeded = True
            self._end_early("rounds")
        elif self._context.total_tokens() > self.max_context_tokens:
            self._end_early("context_cap")
        elif ep.steps_in_turn >= self.config.max_steps_per_turn:
            ep.counts["forced_turns"] += 1
            note = (f"[Turn limit] {self.config.max_steps_per_turn} responses without an "
                    "<answer>; moving on.")
            self._context.append("user", note, "notice")
            self._emit("limit", {"reason": "turn_limit"}, source="env")
            if self._stage != 3:
                self._next_turn()
            elif self._is_interactive():
                self._engine_step("")
            else:
                self._end_early("turn_limit")

    def _end_early(self, reason: str) -> None:
        ep = self._episode
        assert ep is not None
        if ep.stage1_entries is None and self._stage == 1:
            self._end_stage_bookkeeping()
        ep.tokens_at_answer = ep.tokens_at_answer or self._context.total_tokens()
        ep.counts["key_items_missing"] = self._missing_key_items()
        ep.counts["truncated"] = 1
        ep.counts[f"ended_by_{reason}"] = 1
        self._emit("limit", {"reason": reason}, source="env")
        ep.done = True

    # -- engine, RAG and the controller port -----------------------------------------------------
    def _is_interactive(self) -> bool:
        return self.source.interactive

    def _get_engine(self) -> Engine:
        if self._engine is None:
            engine = self.source.make_engine()
            if engine is None:
                raise gym.error.Error(f"{type(self.source).__name__}.make_engine returned None")
            self._engine = engine
        return self._engine

    def _auto_retrieve(self) -> None:
        ep = self._episode
        assert ep is not None and self._ltm is not None
        latest = next((m.content for m in reversed(list(self._context)) if m.role != "assistant"), "")
        found = self._ltm.retrieve(latest, self.config.retrieval_top_k) if len(self._ltm) else []
        if found:
            ep.retrieved.update((e.id, e.content) for e in found)
            lines = "\n".join(f"[{e.id}] {e.content}" for e in found)
            self._context.append("user", f"[Retrieved memories]\n{lines}", "retrieval")
            self._emit("retrieval", {"query": cap(latest), **_found(found)}, source="env")

    def _insert_context(self, text: str, kind: str) -> None:
        if self._episode is None or self._episode.done:
            raise gym.error.ResetNeeded("no running episode: call reset() first")
        message = self._context.append("user", text, kind)
        self._emit("context_inserted", {"id": message.id, "kind": kind, "content": cap(text)},
                   source="controller")

    def _replace_context(self, ids: list[str], text: str) -> str | None:
        if self._episode is None or self._episode.done:
            raise gym.error.ResetNeeded("no running episode: call reset() first")
        before = {m.id: m for m in self._context}
        new = self._context.replace([i for i in ids if before.get(i) and before[i].kind != "system"],
                                    "user", text, "summary")
        if new is None:
            return None
        replaced = [{"id": i, "role": before[i].role, "content": cap(before[i].content)}
                    for i in ids if i in before and before[i].kind != "system"]
        self._emit("context_summarized", {"replaced": replaced, "summary": cap(text)}, source="controller")
        return new.id

    def _record_llm(self, role: str, generations: Sequence[Generation], failures: int,
                    reason: str | None) -> None:
        ep = self._episode
        if ep is None:
            raise gym.error.ResetNeeded("no running episode: call reset() first")
        ep.cost[role].add(generations)
        ep.cost[role].failures += failures
        if failures and reason:
            ep.failure_reasons[f"{role}: {reason}"] += failures

    def _emit(self, kind: EventKind, payload: dict[str, Any], source: EventSource = "agent") -> None:
        ep = self._episode
        assert ep is not None
        stage = self.config.stages[min(ep.stage_index, len(self.config.stages) - 1)]
        ep.trace.emit(kind, payload, source=source, round=ep.rounds, stage=stage, turn=ep.turn,
                      context_tokens=self._context.total_tokens(),
                      memory_size=len(self._ltm) if self._ltm is not None else 0)

    # -- observation and info ----------------------------------------------------------------------
    def _clock(self) -> str:
        rounds = self._episode.rounds if self._episode else 0
        return (_CLOCK_START + dt.timedelta(minutes=rounds)).isoformat()

    def _observation(self) -> Observation:
        return self._context.public()

    def _missing_key_items(self) -> int:
        assert self._episode is not None
        text = self._context.text().lower()
        return sum(item.lower() not in text for item in self._episode.task.key_items)

    def _info(self, parsed: ParsedResponse | None = None,
              results: list[ToolResult] | None = None) -> dict[str, Any]:
        ep = self._episode
        assert ep is not None and self._ltm is not None
        kinds = {m.id: m.kind for m in self._context}
        info: dict[str, Any] = {
            "benchmark": self.source.name, "task_id": ep.task.task_id, "episode_key": ep.key,
            "stage": self._stage, "turn": ep.turn, "round": ep.rounds,
            "context_tokens": self._context.total_tokens(), "token_budget": self.token_budget,
            "memory_size": len(self._ltm),
            "incoming": ep.incoming,
            "memory_check": [m for m in ep.memory_check if m["message_id"] in kinds],
            "message_kinds": kinds,
            "format_error": parsed.error if parsed else None,
            "tool_results": [{"name": r.name, "ok": r.ok, "text": r.text, "data": r.data}
                             for r in results or []],
            "counts": dict(ep.counts),
            "tool_calls_by_source": {s: dict(c) for s, c in ep.tool_calls_by_source.items()},
        }
        if self.config.privileged_info:
            info["task"] = ep.task
            if self._stage == 3 and self._is_interactive() and not ep.done:
                info["expert_action"] = self._get_engine().expert_action()
        return info


def _found(entries: Sequence[Any]) -> dict[str, list[Any]]:
    return {"ids": [e.id for e in entries], "scores": [round(float(e.score or 0.0), 4) for e in entries],
            "contents": [e.content for e in entries]}
