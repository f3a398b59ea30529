import json

from agemem_gym.llm.base import Generation, LLMBackend
from agemem_gym.policies.llm_agent import AgeMemAgent, AgeMemRAGAgent
from agemem_gym.protocol import format_answer, format_tool_call
from agemem_gym.tools import LTM_TOOLS
from benchmarks.runner import RunConfig, run

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2, "distractor_sentences": 2,
         "num_queried": 1}


class ScriptedLLM(LLMBackend):
    """Stands in for a model's text: stores every user message, answers otherwise."""

    name = "scripted"

    def __init__(self):
        self.batches = []

    def generate(self, prompts, **kwargs):
        self.batches.append(len(prompts))
        out = []
        for prompt in prompts:
            last = prompt[-1]
            if last["role"] == "user" and not last["content"].startswith("["):
                text = format_tool_call("Add_memory", content=last["content"][:200])
            else:
                text = format_answer("ok")
            out.append(Generation(text, prompt_tokens=sum(len(m["content"]) for m in prompt) // 4,
                                  completion_tokens=len(text) // 4, seconds=0.001))
        return out

    def count_tokens(self, text):
        return len(text) // 4


def test_agent_usage_lands_in_episode_records_and_calls_are_batched(tmp_path):
    llm = ScriptedLLM()
    run(RunConfig(env="assistant", agent="agemem", out=tmp_path, episodes=3, env_options=SMALL, concurrency=3,
                  progress=False), policy=AgeMemAgent(llm=llm))
    records = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert max(llm.batches) == 3, "three running episodes share one generate call"
    for r in records:
        assert r["agent_settings"] == {"max_new_tokens": 512, "temperature": 0.0, "top_p": 1.0, "seed": None}
        assert r["cost"]["agent"]["llm_calls"] == r["rounds"] > 0
        assert r["tokens"]["prompt"] == r["cost"]["agent"]["prompt_tokens"] > 0
        assert r["tool_calls"]["Add_memory"] >= 1


def test_rag_variant_removes_stm_tools_and_retrieves_every_stage3_step(tmp_path):
    llm = ScriptedLLM()
    records = run(RunConfig(env="assistant", agent="agemem-rag", out=tmp_path, episodes=1, env_options=SMALL,
                            progress=False), policy=AgeMemRAGAgent(llm=llm))
    assert AgeMemRAGAgent.env_options["tools"] == LTM_TOOLS
    assert records[0]["reward"]["memory/relevance"] > 0  # memories were appended in stage 3
    assert not {"Retrieve_memory", "Summary_context", "Filter_context"} & set(records[0]["tool_calls"])
