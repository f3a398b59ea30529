import pytest

from agemem_gym import AgeMemEnv
from agemem_gym.judges import Judge, LLMJudge, memory_quality, parse_score
from agemem_gym.llm.base import Generation, LLMBackend
from agemem_gym.memory import HashingEncoder, LLMSummarizer, Message
from agemem_gym.policies import OraclePolicy
from agemem_gym.rollout import rollout

SMALL = {"num_facts": 3, "num_updates": 1, "num_deletes": 1, "num_distractors": 2, "distractor_sentences": 2,
         "num_queried": 1}


class Replies(LLMBackend):
    """Stands in for a judge or summarizer model's text: replies in turn, or raises."""

    name = "scripted"

    def __init__(self, *replies, fail=False):
        self.replies, self.fail, self.prompts = list(replies), fail, []

    def generate(self, prompts, **kwargs):
        if self.fail:
            raise ConnectionError("server down")
        self.prompts += prompts
        return [Generation(self.replies[len(self.prompts) - len(prompts) + i] if self.replies else "", 40, 4, 0.1)
                for i in range(len(prompts))]

    def count_tokens(self, text):
        return len(text) // 4


def play(env):
    return rollout(env, OraclePolicy(), seed=0, task_index=0)[1]


def test_memory_quality_formula():
    facts = ["The user lives in Lisbon.", "The user's dog is named Mochi."]
    assert memory_quality(facts, facts) == {"mq": 1.0, "coverage": 1.0, "precision": 1.0}
    noisy = memory_quality([*facts, "The weather was nice.", "Pizza is great."], facts)
    assert noisy["coverage"] == 1.0 and noisy["precision"] == 0.5 and noisy["mq"] == pytest.approx(2 / 3)
    assert memory_quality([], facts)["mq"] == 0.0


@pytest.mark.parametrize(("reply", "score"), [("Score: 0.3", 0.3), ("score=1", 1.0), ("  .5 ", 0.5),
                                               ("Score: 7", None), ("I think it's good", None), ("", None)])
def test_parse_score(reply, score):
    assert parse_score(reply) == score


def test_llm_judge_scores_the_answer_and_counts_cost():
    judge = LLMJudge(Replies(*["Score: 0.5"] * 20), HashingEncoder())
    env = AgeMemEnv("assistant", privileged_info=True, judge=judge, **SMALL)
    info = play(env)
    assert info["metrics"]["judge_score"] == 0.5 and info["metrics"]["score"] == 1.0
    assert info["reward_components"]["task"] == 0.5  # the judge's J drives the reward
    assert info["metrics"]["mq"] == 0.5 and info["reward_components"]["memory/relevance"] == 0.5
    assert info["judges"]["task"] == "llm:scripted"
    assert info["cost"]["judge"]["llm_calls"] >= 4 and info["cost"]["judge"]["failures"] == 0
    env.close()


def test_unusable_judge_replies_fall_back_to_the_deterministic_scores():
    env_llm = AgeMemEnv("assistant", privileged_info=True, judge=LLMJudge(Replies(*["hmm"] * 20), HashingEncoder()), **SMALL)
    env_det = AgeMemEnv("assistant", privileged_info=True, **SMALL)
    llm, det = play(env_llm), play(env_det)
    assert "judge_score" not in llm["metrics"]
    assert llm["reward_components"] == det["reward_components"]
    assert llm["cost"]["judge"]["failures"] == llm["cost"]["judge"]["llm_calls"] > 0
    assert det["judges"]["memory"] == Judge.name and det["cost"] == {}
    env_llm.close()
    env_det.close()


def test_llm_summarizer_replaces_the_span_and_falls_back_when_the_server_fails():
    messages = [Message("m2", "user", "I moved to Lisbon in 2021. Nice weather.")]
    summarizer = LLMSummarizer(Replies("The user moved to Lisbon in 2021."))
    assert summarizer.summarize(messages) == "The user moved to Lisbon in 2021."
    assert "Lisbon" in summarizer.llm.prompts[0][0]["content"]
    down = LLMSummarizer(Replies(fail=True))
    assert down.summarize(messages) == "user: I moved to Lisbon in 2021." and down.usage.failures == 1
    env = AgeMemEnv("assistant", privileged_info=True, summarizer=LLMSummarizer(Replies(*["Short summary."] * 50)),
                    **SMALL)
    info = play(env)
    assert info["tool_calls"].get("Summary_context", 0) == info["cost"]["summarizer"]["llm_calls"] > 0
    assert info["judges"]["summarizer"] == "llm:scripted"
    env.close()
