"""The memory port, episode hooks, typed results and replayable traces."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import SAMPLE_DATA

from agemem_gym import AgeMemEnv
from agemem_gym.judges import LLMJudge
from agemem_gym.llm.base import Generation, LLMBackend
from agemem_gym.memory import HashingEncoder, LLMSummarizer
from agemem_gym.policies import MemoryRandomPolicy, OraclePolicy, Policy, make_policy
from agemem_gym.port import EpisodeHandle, PortError
from agemem_gym.protocol import format_answer
from agemem_gym.rollout import play_episodes, rollout
from agemem_gym.trace import replay_memory
from benchmarks.runner import RunConfig, run
from benchmarks.traces import read_trace

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2,
         "distractor_sentences": 2, "num_queried": 1}


class CanonicalController(Policy):
    """Applies each stage-1 fact's canonical memory operation through the port; the agent only
    ever answers (it is offered no tools)."""

    name = "canonical-controller"
    privileged = True
    env_options = {"tools": ()}  # noqa: RUF012

    def __init__(self) -> None:
        self.episodes: dict[str, EpisodeHandle] = {}
        self.ids: dict[str, dict[str, str]] = {}
        self.ended: list[str] = []

    def start_episode(self, episode: EpisodeHandle) -> None:
        self.episodes[episode.key], self.ids[episode.key] = episode, {}

    def end_episode(self, episode: EpisodeHandle) -> None:
        self.ended.append(episode.key)
        del self.episodes[episode.key], self.ids[episode.key]

    def act(self, observation, info):
        port, ids = self.episodes[info["episode_key"]].port, self.ids[info["episode_key"]]
        incoming = info["incoming"]
        if incoming is not None and incoming.kind == "fact":
            fact = info["task"].stage1[incoming.turn]
            if fact.op == "add":
                ids[fact.key] = port.add(fact.content).data["id"]
            elif fact.op == "update" and fact.key in ids:
                port.update(ids[fact.key], fact.content)
            elif fact.op == "delete" and fact.key in ids:
                port.delete(ids.pop(fact.key))
        if incoming is not None and incoming.kind == "query":
            hits = port.retrieve(incoming.content, top_k=5)
            port.insert_context("\n".join(e.content for e in hits))
        if info["stage"] == 3:
            return format_answer("; ".join(info["task"].answers))
        return format_answer("Noted.")


def _play(policy, n=3, **options):
    env = AgeMemEnv("assistant", privileged_info=True, **{**SMALL, **policy.env_options, **options})
    starts = [{"seed": i, "options": {"task_index": i}} for i in range(n)]
    done = [d.info for d in play_episodes([env], policy, starts)]
    env.close()
    return done


def test_a_controller_reaches_the_oracle_memory_quality_without_agent_tool_calls():
    controller = CanonicalController()
    by_controller, by_oracle = _play(controller), _play(OraclePolicy())
    for mine, oracle in zip(by_controller, by_oracle, strict=True):
        result = mine["result"]
        assert mine["metrics"]["mq"] == oracle["metrics"]["mq"] == 1.0
        assert "agent" not in result.tool_calls_by_source
        assert result.tool_calls_by_source["controller"]["Add_memory"] == SMALL["num_facts"]
        assert result.tool_calls_by_source["controller"]["Delete_memory"] == 1
        controller_events = [e for e in result.trace if e.source == "controller"]
        assert {e.kind for e in controller_events} >= {"tool_call", "memory_added", "memory_updated",
                                                       "memory_deleted", "retrieval", "context_inserted"}
        assert mine["metrics"]["score"] == 1.0
    assert len(controller.ended) == 3 and not controller.episodes  # every episode's state dropped


def test_controller_operations_spend_no_round_and_add_no_message():
    env = AgeMemEnv("assistant", tools=(), **SMALL)
    obs, info = env.reset(seed=0)
    port = env.episode_handle.port
    assert info["incoming"].kind == "fact" and info["incoming"].id == obs[-1]["id"]
    assert port.add("The user likes jazz.").ok and port.retrieve("jazz")[0].score > 0
    info = env.step("<answer>ok</answer>")[-1]
    assert info["round"] == 1  # only the answer counted
    new = list(info["message_kinds"].values())[len(obs):]
    assert new == ["answer", "retrieval", "fact"]  # nothing from the port; the memory check shows it
    assert "Add_memory" not in obs[0]["content"]  # the model is offered no memory tools
    env.close()


def test_the_port_refuses_what_the_env_does_not_allow():
    env = AgeMemEnv("assistant", controller_ops=("retrieve",), **SMALL)
    env.reset(seed=0)
    with pytest.raises(PortError, match="does not allow controller operation 'add'; allowed: retrieve"):
        env.episode_handle.port.add("x")
    with pytest.raises(PortError, match="unknown cost role 'wizard'"):
        env.episode_handle.port.record_llm("wizard", [])
    env.close()


BENCHMARKS = ["assistant", "hotpotqa", "babyai", "pddl", "sciworld", "alfworld"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_final_memory_is_rebuilt_from_the_trace_alone(name, shared_data):
    options = SMALL if name == "assistant" else {"data": str(SAMPLE_DATA[name])}
    env = AgeMemEnv(name, privileged_info=True, **options)
    _, info = rollout(env, MemoryRandomPolicy(p_store=1.0, p_retrieve=1.0), seed=1, task_index=1)
    _, oracle = rollout(env, OraclePolicy(), seed=0, task_index=0)
    env.close()
    for final in (info, oracle):
        result = final["result"]
        rebuilt = replay_memory(result.trace)
        assert rebuilt == {m["id"]: {"content": m["content"], "metadata": m["metadata"]} for m in result.ltm}
        assert result.trace[-1].memory_size == len(result.ltm)
        assert [e.i for e in result.trace] == list(range(len(result.trace)))
    assert oracle["result"].ltm, "the oracle stores something on every benchmark"


def test_every_response_is_in_the_trace_and_long_text_is_marked():
    env = AgeMemEnv("assistant", **SMALL)
    env.reset(seed=0)
    bad = "no tags " * 2_000
    env.step(bad)
    events = env._episode.trace.events
    response = [e for e in events if e.kind == "response"][-1]
    assert response.payload["text"].endswith(f"...[truncated {len(bad) - 8_000} chars]")
    assert events[-1].kind == "format_error" and "expected <think>" in events[-1].payload["error"]
    env.close()


class Counting(LLMBackend):
    """A judge / summarizer model whose text is scripted; counts every call it serves."""

    name = "counting"

    def __init__(self, reply):
        self.reply, self.calls, self.batches = reply, 0, 0

    def generate(self, prompts, **kwargs):
        self.calls += len(prompts)
        self.batches += 1
        return [Generation(self.reply, 30, 3, 0.01) for _ in prompts]

    def count_tokens(self, text):
        return len(text) // 4


def test_per_episode_cost_is_exact_under_concurrency(tmp_path):
    judge_llm, summary_llm = Counting("Score: 1"), Counting("The user said things.")
    options = {**SMALL, "judge": LLMJudge(judge_llm, HashingEncoder()), "summarizer": LLMSummarizer(summary_llm),
               "token_budget": 300}
    alone = run(RunConfig(env="assistant", agent="oracle", out=tmp_path / "alone", episodes=1,
                          env_options=options, progress=False))
    judge_llm.calls = summary_llm.calls = judge_llm.batches = 0
    records = run(RunConfig(env="assistant", agent="oracle", out=tmp_path / "together", episodes=6,
                            env_options=options, concurrency=4, progress=False))
    judged = [r["cost"]["judge"]["llm_calls"] for r in records]
    summarised = [r["cost"].get("summarizer", {}).get("llm_calls", 0) for r in records]
    assert sum(judged) == judge_llm.calls and sum(summarised) == summary_llm.calls > 0
    assert judge_llm.batches == len(records) == 6  # each episode's judging is one batched call
    assert sorted(records, key=lambda r: r["index"])[0]["cost"]["judge"] == alone[0]["cost"]["judge"]
    for record in records:  # every episode counts its own calls: those its trace shows
        trace = read_trace(tmp_path / "together", record["episode_id"])
        summaries = sum(e["kind"] == "context_summarized" for e in trace)
        assert record["cost"].get("summarizer", {}).get("llm_calls", 0) == summaries


def _fingerprint(agent, **options):
    env = AgeMemEnv("assistant", privileged_info=True)
    actions = []
    starts = [{"seed": s, "options": {"task_index": s}} for s in range(3)]
    policy = make_policy(agent, **options)
    for _ in play_episodes([env], policy, starts, on_step=lambda i, o, f, a, u: actions.append((i, a))):
        pass
    env.close()
    return hashlib.sha256(json.dumps(actions).encode()).hexdigest()[:16]


@pytest.mark.parametrize(("agent", "options", "expected"), [
    ("oracle", {}, "5ec37b05f8030fcb"),
    ("memory-random", {"answer": "quote"}, "2fcff74fd551980a"),
    ("random", {}, "1704430fcdb8ff8a"),
])
def test_existing_agents_play_the_same_trajectories(agent, options, expected):
    """Pinned from the trajectories these agents played before the port and trace existed."""
    assert _fingerprint(agent, **options) == expected


def test_a_controller_can_fold_context_messages_into_a_summary():
    env = AgeMemEnv("assistant", tools=(), **SMALL)
    obs, _ = env.reset(seed=0)
    env.step("<answer>ok</answer>")
    old = [m.id for m in env.context][1:3]
    new = env.episode_handle.port.replace_context([*old, "m999"], "The user shared a fact.")
    kinds = {m.id: m.kind for m in env.context}
    assert new in kinds and kinds[new] == "summary" and not set(old) & set(kinds)
    event = env._episode.trace.events[-1]
    assert event.kind == "context_summarized" and event.source == "controller"
    assert [m["id"] for m in event.payload["replaced"]] == old
    assert env.episode_handle.port.replace_context(["m1"], "the system prompt stays") is None
    env.close()
