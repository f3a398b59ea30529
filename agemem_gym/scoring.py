"""What a finished episode earned: task metrics, memory quality, the reward, and its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agemem_gym.judges import LLMJudge
from agemem_gym.llm.base import Usage
from agemem_gym.protocol import parse_response
from agemem_gym.registration import env_id
from agemem_gym.result import EpisodeResult
from agemem_gym.rewards import EpisodeOutcome, trajectory_reward
from agemem_gym.rewards_official import FinalContext, Judged, official_reward

if TYPE_CHECKING:
    from agemem_gym.env import AgeMemEnv
    from agemem_gym.episode import EpisodeState


def finish_episode(env: AgeMemEnv, ep: EpisodeState) -> dict[str, Any]:
    """The last step's extra ``info``: metrics, reward components, tool counts, final memory,
    judges, cost, and the typed :class:`~agemem_gym.result.EpisodeResult` under ``result``."""
    judge = for_episode(env.judge, ep.cost["judge"])
    metrics, outcome = _judged(env, ep, judge)
    if env.config.reward_mode == "official":
        components = _official_reward(env, ep, judge, outcome)
    else:
        components = trajectory_reward(outcome, env.config.reward_weights, env.config.reward_mode)
    if env.config.format_penalty:
        components["penalty/format"] = -env.config.format_penalty * ep.counts["format_errors"]
        components["total"] += components["penalty/format"]
    judges = {"task": judge.name if "judge_score" in metrics else f"{env.source.name}-metric",
              "memory": judge.name, "relevance": judge.relevance_name,
              "summarizer": env.summarizer.name}
    result = _result(env, ep, metrics, components, judges)
    return {
        "answer": ep.answer,
        "counts": dict(ep.counts),
        "metrics": metrics,
        "reward_components": components,
        "tool_calls": dict(ep.tool_calls),
        "ltm": result.ltm,
        "judges": judges,
        "cost": result.cost,
        "context_tokens_max": ep.max_tokens,
        "token_counter": env.context.counter.name,
        "result": result,
    }


def _judged(env: AgeMemEnv, ep: EpisodeState, judge: Any) -> tuple[dict[str, float], EpisodeOutcome]:
    """Task metrics, memory quality and what the reward needs, as the judge scores them."""
    task = ep.task
    metrics = _task_metrics(env, ep)
    stage1 = [e.content for e in ep.stage1_entries or []]
    stage1_added = [e.content for e in ep.stage1_entries or [] if e.metadata.get("stage") == 1]
    answer = ep.answer if ep.answer is not None and not env.source.interactive else None
    if hasattr(judge, "prefetch"):  # one batched model call for the whole episode
        judge.prefetch(question=task.query, references=task.answers, memory=stage1,
                       stored=stage1_added, supporting_facts=task.supporting_facts,
                       retrieved=list(ep.retrieved.values()), answer=answer)
    mq = judge.memory_quality(stage1, task.supporting_facts)
    metrics.update({"mq": mq["mq"], "mq_coverage": mq["coverage"], "mq_precision": mq["precision"]})
    if answer is not None:
        judged = judge.answer_score(task.query, answer, task.answers)
        if judged is not None:
            metrics["judge_score"] = judged
    outcome = EpisodeOutcome(
        answered=ep.answer is not None or 3 not in env.config.stages,
        task_score=metrics.get("judge_score", metrics["score"]),
        tokens_at_answer=ep.tokens_at_answer or env.context.total_tokens(),
        token_budget=env.token_budget,
        budget_exceeded=ep.budget_exceeded,
        reduced_before_budget=ep.reduced_before_budget,
        key_items_preserved=ep.counts["key_items_missing"] == 0,
        storage=judge.storage_quality(stage1_added, task.supporting_facts, task.answers, task.query),
        maintenance=ep.maintenance,
        relevance=judge.relevance(task.query, list(ep.retrieved.values())),
        rounds_exceeded=ep.rounds_exceeded,
    )
    if env.config.protocol == "official":  # MQ as the released eval: top 20 for the question at the end
        final = [e.content for e in env.ltm.retrieve(task.query, 20)] if len(env.ltm) else []
        official_mq = judge.memory_quality(final, task.supporting_facts)
        metrics.update({"mq_paper": metrics["mq"], "mq": official_mq["mq"],
                        "mq_coverage": official_mq["coverage"], "mq_precision": official_mq["precision"]})
    return metrics, outcome


def _result(env: AgeMemEnv, ep: EpisodeState, metrics: dict[str, float], components: dict[str, float],
            judges: dict[str, str]) -> EpisodeResult:
    task = ep.task
    return EpisodeResult(
        env_id=env.spec.id if env.spec is not None else env_id(env.source.name),
        benchmark=env.source.name, task_id=task.task_id, seed=ep.seed,
        stages=tuple(env.config.stages), protocol=env.config.protocol,
        judges=judges, encoder=env.encoder.name,
        category=getattr(task, "category", None) or task.metadata.get("category"),
        question=task.query, gold_answers=tuple(task.answers), answer=ep.answer,
        metrics=metrics, reward=dict(components), tool_calls=dict(ep.tool_calls),
        tool_calls_by_source={s: dict(c) for s, c in ep.tool_calls_by_source.items()},
        tool_calls_by_stage={str(s): dict(c) for s, c in sorted(ep.tool_calls_by_stage.items())},
        counts=dict(ep.counts),
        cost={role: {**usage.as_dict(), **_reasons(ep, role)} for role, usage in ep.cost.items()
              if usage.llm_calls or usage.failures},
        rounds=ep.rounds, engine_steps=ep.engine_steps, terminated=not ep.counts["truncated"],
        ltm=[{"id": e.id, "content": e.content, "metadata": e.metadata} for e in env.ltm.entries()],
        trace=tuple(ep.trace.events),
    )


def _official_reward(env: AgeMemEnv, ep: EpisodeState, judge: Any, outcome: EpisodeOutcome) -> dict[str, float]:
    """The released code's reward, read off the final context as it does."""
    messages = list(env.context)
    results = {i: ep.tool_message_results[m.id] for i, m in enumerate(messages) if m.id in ep.tool_message_results}
    added = [c.arguments.get("content", "") for m in messages if m.role == "assistant" and m.kind == "tool_call"
             for c in (parse_response(m.content).tool_calls or ()) if c.name == "Add_memory"]
    final = FinalContext.from_messages([(m.role, m.content) for m in messages], results,
                                       [str(a) for a in added], list(ep.retrieved.values()))
    overrides = None
    if isinstance(judge, LLMJudge):
        task = ep.task
        overrides = Judged(relevance=lambda texts: judge.relevance(task.query, texts),
                           storage=lambda texts: judge.storage_quality(texts, task.supporting_facts,
                                                                        task.answers, task.query))
    rounds = ep.stage3_rounds if not env.source.interactive else ep.engine_steps
    return official_reward(final, task_score=outcome.task_score, answered=outcome.answered,
                           rounds=rounds, max_rounds=env.config.max_steps_per_turn,
                           token_budget=env.token_budget, judge=overrides)


def for_episode(component: Any, usage: Usage) -> Any:
    """``component`` (a judge or summarizer shared by a run) counting its model calls into one
    episode's ``usage``; components that call no model come back as they are."""
    bind = getattr(component, "for_episode", None)
    return bind(usage) if bind is not None else component


def _reasons(ep: EpisodeState, role: str) -> dict[str, Any]:
    reasons = {k.split(": ", 1)[1]: n for k, n in ep.failure_reasons.items() if k.startswith(f"{role}: ")}
    return {"failure_reasons": reasons} if reasons else {}


def _task_metrics(env: AgeMemEnv, ep: EpisodeState) -> dict[str, float]:
    if 3 not in env.config.stages:
        return {"score": 0.0, "success": 0.0}
    if env.source.interactive:
        progress = ep.progress
        score = progress if env.source.task_metric == "progress" else float(ep.success)
        return {"score": score, "success": float(ep.success), "progress": progress,
                "steps": float(ep.engine_steps)}
    if ep.answer is None:
        return {"score": 0.0, "success": 0.0}
    return {k: float(v) for k, v in env.source.score(ep.task, ep.answer).items()}
