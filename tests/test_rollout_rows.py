"""Training rows from played episodes never cross a context rewrite.

The model's text is scripted (a test double for the language model); the env, the tokenizer and
the chat template are real.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from agemem_gym import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.integrations import (
    ChatRenderer,
    Completion,
    GenerateError,
    ModelTurn,
    PlayedEpisode,
    chat_messages,
    play,
    training_rows,
)
from agemem_gym.protocol import format_answer, format_tool_call

pytest.importorskip("transformers")
from agemem_gym.llm.tiny_model import default_corpus, train_tokenizer  # noqa: E402

OPTIONS = {"num_facts": 2, "num_updates": 0, "num_deletes": 0, "small_talk": 0, "num_distractors": 1,
           "num_queried": 1, "prompt": "compact", "privileged_info": True}
# stage 1: store, ack; summarise the whole context, ack; stage 2: ack; stage 3: answer
SCRIPT = [format_tool_call("Add_memory", content="The user keeps a blue notebook."), format_answer("Noted."),
          format_tool_call("Summary_context", span="all"), format_answer("Noted."),
          format_answer("Okay."), format_answer("blue")]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer(default_corpus(docstrings=False), vocab_size=512)


class Recording(gym.Wrapper):
    """Keeps every observation and info the env returns, in order."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.seen: list[tuple[Any, dict[str, Any]]] = []

    def reset(self, **kwargs: Any):
        observation, info = self.env.reset(**kwargs)
        self.seen.append((observation, info))
        return observation, info

    def step(self, action: str):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.seen.append((observation, info))
        return observation, reward, terminated, truncated, info


def scripted(tokenizer: Any, script: list[str]):
    """A generate callable that writes ``script`` in order, each response closed by the EOS."""
    replies = iter(script)

    def generate(prompts):
        out = []
        for _ in prompts:
            ids = tokenizer.encode(next(replies), add_special_tokens=False) + [tokenizer.eos_token_id]
            out.append(Completion(ids, [-1.0] * len(ids)))
        return out

    return generate


def test_rows_split_at_the_reset_and_the_summary_and_hold_only_seen_context(tokenizer):
    env = Recording(AgeMemEnv("assistant", **OPTIONS))
    [episode] = play([env], scripted(tokenizer, SCRIPT), tokenizer, [{"seed": 3}])
    task = env.seen[0][1]["task"]
    events = [e.kind for e in episode.info["result"].trace]
    env.close()
    assert len(episode.turns) == len(SCRIPT)
    assert [t.stage for t in episode.turns] == [1, 1, 1, 1, 2, 3]
    assert "context_summarized" in events and "context_reset" in events

    renderer = ChatRenderer(tokenizer)
    for turn, (observation, _) in zip(episode.turns, env.seen, strict=False):
        # the model was given exactly the env's context at that turn
        assert tokenizer.decode(turn.prompt_ids) == renderer.text(observation)

    rows = training_rows(episode)
    assert [r.turns for r in rows] == [[0, 1, 2], [3], [4, 5]]
    for row in rows:
        own = [i for i, m in enumerate(row.completion_mask) if m]
        assert len(own) == sum(len(episode.turns[k].completion_ids) for k in row.turns)
        for k in row.turns:
            turn = episode.turns[k]
            start = len(turn.prompt_ids)
            # everything before the turn's tokens in the row is the turn's own prompt
            assert row.ids[:start] == turn.prompt_ids
            assert row.ids[start:start + len(turn.completion_ids)] == turn.completion_ids
            assert all(row.completion_mask[start - len(row.prompt_ids) + j] == 1 for j in range(len(turn.completion_ids)))
        assert row.logprobs is not None and len(row.logprobs) == len(row.completion_ids)
        assert all(lp == (-1.0 if m else 0.0) for lp, m in zip(row.logprobs, row.completion_mask, strict=True))

    texts = [tokenizer.decode(r.ids) for r in rows]
    facts = [fact.message for fact in task.stage1]
    as_messages = [f"<|im_start|>user\n{fact}<|im_end|>" for fact in facts]
    assert all(message in texts[0] for message in as_messages)
    # the summary replaced the user messages (its text may quote them, as the model then saw)
    assert not any(message in texts[1] for message in as_messages)
    # stage 2 and 3 start from a cleared context: no stage-1 message, no summary of it
    assert not any(fact in texts[2] for fact in facts)
    assert "notebook" not in texts[2]
    assert task.distractors[0] in texts[2] and task.query in texts[2]


def test_filter_context_starts_a_new_row(tokenizer):
    probe = AgeMemEnv("assistant", **OPTIONS)
    distractor = probe.reset(seed=3)[1]["task"].distractors[0]
    probe.close()
    script = [format_answer("Noted."), format_answer("Noted."),  # stage 1
              format_tool_call("Filter_context", criteria=distractor), format_answer("Okay."),  # stage 2
              format_answer("blue")]  # stage 3
    env = Recording(AgeMemEnv("assistant", **OPTIONS))
    [episode] = play([env], scripted(tokenizer, script), tokenizer, [{"seed": 3}])
    env.close()
    assert "context_filtered" in [e.kind for e in episode.info["result"].trace]
    rows = training_rows(episode)
    assert [r.turns for r in rows] == [[0, 1], [2], [3, 4]]
    distractor_message = f"<|im_start|>user\n{distractor}<|im_end|>"
    assert distractor_message in tokenizer.decode(rows[1].ids)  # the model saw it when it filtered
    assert distractor_message not in tokenizer.decode(rows[2].ids)  # and not after


def test_env_tokens_between_turns_are_masked(tokenizer):
    env = AgeMemEnv("assistant", **OPTIONS)
    [episode] = play([env], scripted(tokenizer, SCRIPT), tokenizer, [{"seed": 3}])
    env.close()
    first = training_rows(episode)[0]
    gap = [tok for tok, m in zip(first.completion_ids, first.completion_mask, strict=True) if not m]
    written = tokenizer.decode(gap)
    assert "Add_memory" in written  # the tool result is context, not loss
    assert episode.reward == episode.components["total"] == episode.info["reward_components"]["total"]


def test_rows_of_hand_made_turns():
    turns = [ModelTurn([1, 2], [3], None, "a", 1), ModelTurn([1, 2, 3, 4], [5], None, "b", 1),
             ModelTurn([1, 2, 9], [6], None, "c", 1)]  # the last one drops token 3: a rewrite
    rows = training_rows(PlayedEpisode(7, turns, 0.0, {}, {}))
    assert [(r.prompt_ids, r.completion_ids, r.completion_mask, r.episode) for r in rows] == [
        ([1, 2], [3, 4, 5], [1, 0, 1], 7), ([1, 2, 9], [6], [1], 7)]
    assert rows[0].logprobs is None


def test_generate_must_return_one_completion_per_prompt(tokenizer):
    env = AgeMemEnv("assistant", **OPTIONS)
    with pytest.raises(GenerateError, match="generate returned 0 completions for 1 prompts"):
        play([env], lambda prompts: [], tokenizer, [{"seed": 0}])
    with pytest.raises(GenerateError, match="completion 0 has 2 ids but 1 log-probs"):
        play([env], lambda prompts: [Completion([5, 6], [-0.1])], tokenizer, [{"seed": 0}])
    env.close()


def test_chat_messages_drop_ids_and_map_the_tool_role(tokenizer):
    observation = ({"id": "m0", "role": "system", "content": "s"}, {"id": "m1", "role": "tool", "content": "r"})
    assert chat_messages(observation) == [{"role": "system", "content": "s"}, {"role": "tool", "content": "r"}]
    assert chat_messages(observation, tool_role="user")[1] == {"role": "user", "content": "[Tool result]\nr"}
    with pytest.raises(ConfigError, match="tool_role must be 'native' or 'user', got 'x'"):
        chat_messages(observation, tool_role="x")  # type: ignore[arg-type]
    strict = train_tokenizer(default_corpus(docstrings=False), vocab_size=512)
    strict.chat_template = ("{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tool') }}"
                            "{% endif %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}")
    renderer = ChatRenderer(strict)
    assert renderer.text(observation) == "system: s\nuser: [Tool result]\nr\n"
    assert renderer.tool_role == "user"
