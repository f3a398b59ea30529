"""The transformers backend on the tiny offline model (real generation, CPU)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _llm_fixtures import tiny_model  # noqa: E402

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.llm import make_backend  # noqa: E402
from agemem_gym.llm.base import TOOL_AS_USER_PREFIX  # noqa: E402

pytestmark = pytest.mark.engine

PROMPTS = [
    [{"role": "user", "content": "hello"}],
    [
        {"role": "system", "content": "You manage your own memory with tools."},
        {"role": "user", "content": "My sister moved to Lyon in 2021, remember that please."},
        {"role": "assistant", "content": "<tool_call>[]</tool_call>"},
        {"role": "tool", "content": "stored"},
    ],
    [{"role": "user", "content": "Where does my sister live? " * 6}],
    [{"role": "user", "content": "open the fridge"}],
]


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    backend = make_backend("transformers", str(tiny_model(tmp_path_factory)), device="cpu")
    yield backend
    backend.close()


def test_batched_equals_one_by_one(llm):
    batched = llm.generate(PROMPTS, max_new_tokens=20, logprobs=True)
    for prompt, b in zip(PROMPTS, batched, strict=True):
        [single] = llm.generate([prompt], max_new_tokens=20, logprobs=True)
        assert b.text == single.text
        assert b.completion_ids == single.completion_ids
        assert b.logprobs == pytest.approx(single.logprobs, abs=1e-4)
    lengths = {g.prompt_tokens for g in batched}
    assert len(lengths) == len(PROMPTS)  # the batch really needed padding


def test_small_batches_match_one_big_batch(tmp_path_factory, llm):
    small = make_backend("transformers", str(tiny_model(tmp_path_factory)), batch_size=3)
    assert [g.text for g in small.generate(PROMPTS, max_new_tokens=12)] == [
        g.text for g in llm.generate(PROMPTS, max_new_tokens=12)
    ]


def test_logprobs_length_and_sign(llm):
    for g in llm.generate(PROMPTS, max_new_tokens=16, logprobs=True):
        assert g.logprobs is not None and len(g.logprobs) == g.completion_tokens == 16
        assert all(lp <= 0 for lp in g.logprobs)
        assert g.finish_reason == "length"
    assert llm.generate(PROMPTS[:1], max_new_tokens=4)[0].logprobs is None


def test_greedy_logprobs_are_the_top_token(llm):
    """Under greedy decoding each chosen token is the argmax, so its log-prob is the largest."""
    import torch

    [g] = llm.generate(PROMPTS[:1], max_new_tokens=6, logprobs=True)
    ids = torch.tensor([g.prompt_ids + g.completion_ids])
    with torch.no_grad():
        logits = llm.model(ids).logits[0, len(g.prompt_ids) - 1 : -1]
    logp = torch.log_softmax(logits.float(), -1)
    assert logp.argmax(-1).tolist() == g.completion_ids
    assert logp.max(-1).values.tolist() == pytest.approx(g.logprobs, abs=1e-4)


def test_token_counts(llm):
    [g] = llm.generate(PROMPTS[1:2], max_new_tokens=5)
    rendered = llm.render(PROMPTS[1])
    assert g.prompt_tokens == len(g.prompt_ids) == llm.count_tokens(rendered)
    assert g.completion_tokens == len(g.completion_ids) == 5
    assert llm.count_tokens("<answer>Lyon</answer>") == 2 + llm.count_tokens("Lyon")
    assert llm.count_tokens("") == 0
    assert llm.tokenizer.decode(g.completion_ids, skip_special_tokens=True) == g.text


def test_stop_string_trims_after_it(llm):
    [full] = llm.generate(PROMPTS[2:3], max_new_tokens=30)
    stop = full.text[8:11]
    [cut] = llm.generate(PROMPTS[2:3], max_new_tokens=30, stop=["never-occurs", stop])
    assert cut.text == full.text[: full.text.index(stop) + len(stop)]
    assert cut.finish_reason == "stop" and cut.completion_tokens < full.completion_tokens
    assert cut.completion_ids == full.completion_ids[: cut.completion_tokens]


def test_sampling_is_seeded(llm):
    a = llm.generate(PROMPTS, max_new_tokens=12, temperature=1.0, seed=7)
    b = llm.generate(PROMPTS, max_new_tokens=12, temperature=1.0, seed=7)
    c = llm.generate(PROMPTS, max_new_tokens=12, temperature=1.0, seed=8)
    greedy = llm.generate(PROMPTS, max_new_tokens=12)
    assert [g.text for g in a] == [g.text for g in b]
    assert [g.text for g in a] != [g.text for g in c]
    assert [g.text for g in a] != [g.text for g in greedy]


def test_end_of_turn_token_ends_the_completion(tmp_path_factory, tmp_path, llm):
    """Make the third greedy token an end-of-turn token: generation stops right after it."""
    [g] = llm.generate(PROMPTS[:1], max_new_tokens=10)
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model(tmp_path_factory), model_dir)
    config_path = model_dir / "generation_config.json"
    config = json.loads(config_path.read_text())
    config["eos_token_id"] = [config["eos_token_id"], g.completion_ids[2]]
    config_path.write_text(json.dumps(config))
    short = make_backend("transformers", str(model_dir)).generate(PROMPTS[:1], max_new_tokens=10)[0]
    assert short.completion_ids == g.completion_ids[:3] and short.finish_reason == "stop"


def test_template_rejecting_tool_role_gets_user_messages(tmp_path_factory):
    strict = (
        "{% for m in messages %}{% if m['role'] == 'tool' %}"
        "{{ raise_exception('no tool role') }}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    llm = make_backend("transformers", str(tiny_model(tmp_path_factory)), chat_template=strict)
    text = llm.render(PROMPTS[1])
    assert "<|im_start|>tool" not in text
    assert "<|im_start|>user\n" + TOOL_AS_USER_PREFIX + "stored<|im_end|>" in text
    assert len(llm.generate(PROMPTS[1:2], max_new_tokens=3)) == 1


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot load model"):
        make_backend("transformers", str(tmp_path))
    with pytest.raises(ConfigError, match=r"invalid options for the transformers backend"):
        make_backend("transformers", str(tmp_path), temperature=0.2)


def test_invalid_generation_settings(llm):
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\], got 0"):
        llm.generate(PROMPTS[:1], top_p=0)
    with pytest.raises(ConfigError, match="prompt 0 is empty"):
        llm.generate([[]])
