"""The three-stage memory env that drives every benchmark."""

from __future__ import annotations

import datetime as dt
from typing import Any

import gymnasium as gym

from agemem_gym.config import EnvConfig
from agemem_gym.episode import EpisodeState
from agemem_gym.judges import make_judge
from agemem_gym.llm.base import Usage
from agemem_gym.memory.context import Context
from agemem_gym.memory.encoders import make_encoder
from agemem_gym.memory.ltm import LongTermMemory
from agemem_gym.memory.summarizers import make_summarizer
from agemem_gym.prompts import system_prompt
from agemem_gym.protocol import ParsedResponse, parse_response
from agemem_gym.rewards import EpisodeOutcome, trajectory_reward
from agemem_gym.spaces import ChatSpace, Observation, ResponseSpace
from agemem_gym.tasks import Engine, TaskSource, make_task_source
from agemem_gym.tools import CONTEXT_REDUCING_TOOLS, ToolBox, ToolResult

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
            config, source_options = EnvConfig.split(options)
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
        self._system_prompt = system_prompt(config.tools, self.source.instructions, config.prompt)
        self._ltm: LongTermMemory | None = None
        self._engine: Engine | None = None
        self._context = Context(config.token_counter)
        self._episode: EpisodeState | None = None

    # -- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        """Start an episode. ``options``: ``task_index`` (into the evaluation set) or ``task``
        (a :class:`TaskInstance`); otherwise a task is drawn with the env's seeded generator."""
        super().reset(seed=seed)
        options = options or {}
        if options.get("task") is not None:
            task = options["task"]
        elif options.get("task_index") is not None:
            task = self.source.get(int(options["task_index"]), self.np_random)
        else:
            task = self.source.sample(self.np_random)
        self._episode = EpisodeState(task)
        namespace = f"{self.source.name}:{task.task_id}:{seed}"
        if self._ltm is None:
            self._ltm = LongTermMemory(self.encoder, store=self.config.memory_store,
                                       namespace=namespace, clock=self._clock,
                                       store_timeout=self.config.store_timeout,
                                       store_retries=self.config.store_retries)
        else:
            self._ltm.clear(namespace)
        for component in (self.judge, self.summarizer):
            if hasattr(component, "usage"):
                component.usage = Usage()  # cost is reported per episode
        self._context = Context(self.config.token_counter)
        self._context.append("system", self._system_prompt, "system")
        self._toolbox = ToolBox(
            self._ltm, self._context, self.encoder,
            self.summarizer, enabled=self.config.tools,
            filter_threshold=self.config.filter_threshold, max_text_chars=self.config.max_text_chars,
        )
        self._start_stage()
        return self._observation(), self._info()

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        ep = self._episode
        if ep is None or ep.done:
            raise gym.error.ResetNeeded("call reset() before step(), and again after the episode ends")
        ep.rounds += 1
        ep.steps_in_turn += 1
        parsed = parse_response(action, self.config.max_response_chars)
        results: list[ToolResult] = []
        if parsed.kind == "invalid":
            self._on_invalid(action, parsed)
        elif parsed.kind == "tool_call":
            results = self._on_tool_calls(action, parsed)
        else:
            self._on_answer(action, parsed.answer or "")
        self._track_tokens()
        self._enforce_limits()
        if not ep.done and self.config.auto_retrieve and self._stage == 3:
            self._auto_retrieve()
        reward, terminated, truncated, info = 0.0, False, False, self._info(parsed, results)
        if ep.done:
            final = self._finish()
            reward = final["reward_components"]["total"]
            terminated = not ep.counts["truncated"]
            truncated = not terminated
            info.update(final)
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return "\n".join(f"[{m.id}] {m.role}: {m.content}" for m in self._context)
        return None

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

    # -- stages and turns ----------------------------------------------------------------------
    @property
    def _stage(self) -> int:
        assert self._episode is not None
        return self.config.stages[self._episode.stage_index]

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
        ep.turn = 0
        if self._turns_in_stage() == 0:  # an empty last stage: nothing to do
            self._end_stage_bookkeeping()
            ep.done = True
            return
        self._present_turn()

    def _present_turn(self) -> None:
        ep = self._episode
        assert ep is not None and self._ltm is not None
        ep.steps_in_turn = 0
        task = ep.task
        if self._stage == 1:
            message = task.stage1[ep.turn].message
            related = self._ltm.retrieve(message, self.config.retrieval_top_k) if len(self._ltm) else []
            if related:
                lines = "\n".join(f"[{e.id}] {e.content}" for e in related)
                self._context.append("user", f"[Memory check] Stored memories related to the next "
                                     f"message:\n{lines}", "retrieval")
            self._context.append("user", message, "fact")
        elif self._stage == 2:
            self._context.append("user", task.distractors[ep.turn], "distractor")
        else:
            text = task.query
            if self._is_interactive():
                first = self._get_engine().reset(task)
                text = f"{task.query}\n{first}" if first else task.query
            self._context.append("user", text, "query")
            if self.config.auto_retrieve:
                self._auto_retrieve()

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
    def _on_invalid(self, action: Any, parsed: ParsedResponse) -> None:
        assert self._episode is not None
        self._episode.counts["format_errors"] += 1
        shown = action if isinstance(action, str) else repr(action)
        if len(shown) > _SHOWN_RESPONSE_CHARS:
            shown = shown[:_SHOWN_RESPONSE_CHARS] + f"... [{len(shown):,} characters]"
        self._context.append("assistant", shown, "invalid")
        self._context.append("user", f"[Format error] {parsed.error}", "notice")

    def _on_tool_calls(self, action: str, parsed: ParsedResponse) -> list[ToolResult]:
        ep = self._episode
        assert ep is not None and parsed.tool_calls is not None
        limit = self.config.max_tool_calls_per_step
        calls, skipped = parsed.tool_calls[:limit], len(parsed.tool_calls) - limit
        results = []
        for call in calls:
            result = self._toolbox.run(call, {"stage": self._stage, "source": "agent"})
            results.append(result)
            self._record(call.name, call.arguments, result)
        self._context.append("assistant", action, "tool_call")
        lines = [f"{r.name}: {r.text}" for r in results]
        if skipped > 0:
            ep.counts["tool_errors"] += skipped
            lines.append(f"Only {limit} tool calls run per response; {skipped} were skipped.")
        self._context.append("tool", "\n".join(lines), "tool")
        return results

    def _record(self, name: str, arguments: dict[str, Any], result: ToolResult) -> None:
        ep = self._episode
        assert ep is not None
        ep.tool_calls[name] += 1
        ep.counts["tool_calls"] += 1
        if not result.ok:
            ep.counts["tool_errors"] += 1
        elif name in ("Update_memory", "Delete_memory"):
            ep.maintenance = True
        elif name in CONTEXT_REDUCING_TOOLS and not ep.budget_exceeded:
            ep.reduced_before_budget = True
        elif name == "Retrieve_memory" and self._stage == 3:
            ep.retrieved.update(zip(result.data["ids"], result.data.get("contents", []), strict=True))
        ep.trace.append({"round": ep.rounds, "stage": self._stage, "turn": ep.turn, "tool": name,
                         "arguments": _clip(arguments), "ok": result.ok, "result": result.text[:500]})

    def _on_answer(self, action: str, answer: str) -> None:
        ep = self._episode
        assert ep is not None
        self._context.append("assistant", action, "answer")
        if self._stage != 3:
            self._next_turn()
        elif self._is_interactive():
            self._engine_step(answer)
        else:
            ep.answer = answer
            ep.tokens_at_answer = self._context.total_tokens()
            ep.counts["key_items_missing"] = self._missing_key_items()
            ep.done = True

    def _engine_step(self, action: str) -> None:
        ep = self._episode
        assert ep is not None
        engine = self._get_engine()
        outcome = engine.step(action)
        ep.engine_steps += 1
        ep.steps_in_turn = 0
        ep.answer = action
        ep.success = ep.success or outcome.success
        ep.progress = max(ep.progress, outcome.progress, 1.0 if outcome.success else 0.0)
        if not outcome.valid:
            ep.counts["invalid_actions"] += 1
        self._context.append("user", outcome.observation, "observation")
        if outcome.done or ep.engine_steps >= engine.max_steps:
            ep.tokens_at_answer = self._context.total_tokens()
            ep.counts["key_items_missing"] = self._missing_key_items()
            ep.counts["truncated"] = int(not outcome.done)
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
        ep.done = True

    # -- engine and RAG ----------------------------------------------------------------------------
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

    # -- observation, info, final scores ----------------------------------------------------------
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
        info: dict[str, Any] = {
            "episode_id": f"{self.source.name}/{ep.task.task_id}",
            "stage": self._stage, "turn": ep.turn, "round": ep.rounds,
            "context_tokens": self._context.total_tokens(), "token_budget": self.token_budget,
            "memory_size": len(self._ltm),
            "format_error": parsed.error if parsed else None,
            "tool_results": [{"name": r.name, "ok": r.ok, "text": r.text} for r in results or []],
            "counts": dict(ep.counts),
        }
        if self.config.privileged_info:
            info["task"] = ep.task
            if self._stage == 3 and self._is_interactive() and not ep.done:
                info["expert_action"] = self._get_engine().expert_action()
        return info

    def _finish(self) -> dict[str, Any]:
        ep = self._episode
        assert ep is not None and self._ltm is not None
        task, judge = ep.task, self.judge
        metrics = self._task_metrics()
        stage1 = [e.content for e in ep.stage1_entries or []]
        stage1_added = [e.content for e in ep.stage1_entries or [] if e.metadata.get("stage") == 1]
        mq = judge.memory_quality(stage1, task.supporting_facts)
        metrics.update({"mq": mq["mq"], "mq_coverage": mq["coverage"], "mq_precision": mq["precision"]})
        asked = 3 in self.config.stages
        if ep.answer is not None and not self._is_interactive():
            judged = judge.answer_score(task.query, ep.answer, task.answers)
            if judged is not None:
                metrics["judge_score"] = judged
        outcome = EpisodeOutcome(
            answered=ep.answer is not None or not asked,
            task_score=metrics.get("judge_score", metrics["score"]),
            tokens_at_answer=ep.tokens_at_answer or self._context.total_tokens(),
            token_budget=self.token_budget,
            budget_exceeded=ep.budget_exceeded,
            reduced_before_budget=ep.reduced_before_budget,
            key_items_preserved=ep.counts["key_items_missing"] == 0,
            storage=judge.storage_quality(stage1_added, task.supporting_facts, task.answers, task.query),
            maintenance=ep.maintenance,
            relevance=judge.relevance(task.query, list(ep.retrieved.values())),
            rounds_exceeded=ep.rounds_exceeded,
        )
        components = trajectory_reward(outcome, self.config.reward_weights, self.config.reward_mode)
        if self.config.format_penalty:
            components["penalty/format"] = -self.config.format_penalty * ep.counts["format_errors"]
            components["total"] += components["penalty/format"]
        return {
            "answer": ep.answer,
            "metrics": metrics,
            "reward_components": components,
            "tool_calls": dict(ep.tool_calls),
            "ltm": [{"id": e.id, "content": e.content, "metadata": e.metadata} for e in self._ltm.entries()],
            "memory_trace": ep.trace,
            "judges": {"task": judge.name if "judge_score" in metrics else f"{self.source.name}-metric",
                       "memory": judge.name, "relevance": judge.relevance_name,
                       "summarizer": self.summarizer.name},
            "cost": {role: component.usage.as_dict()
                     for role, component in (("judge", judge), ("summarizer", self.summarizer))
                     if hasattr(component, "usage")},
            "context_tokens_max": ep.max_tokens,
            "token_counter": self._context.counter.name,
        }

    def _task_metrics(self) -> dict[str, float]:
        ep = self._episode
        assert ep is not None
        if 3 not in self.config.stages:
            return {"score": 0.0, "success": 0.0}
        if self._is_interactive():
            progress = ep.progress
            score = progress if self.source.task_metric == "progress" else float(ep.success)
            return {"score": score, "success": float(ep.success), "progress": progress,
                    "steps": float(ep.engine_steps)}
        if ep.answer is None:
            return {"score": 0.0, "success": 0.0}
        return {k: float(v) for k, v in self.source.score(ep.task, ep.answer).items()}


def _clip(arguments: dict[str, Any], limit: int = 300) -> dict[str, Any]:
    return {k: v[:limit] if isinstance(v, str) else v for k, v in arguments.items()}
