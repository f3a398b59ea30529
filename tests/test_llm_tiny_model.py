"""The tiny offline model: a real HF folder that the Auto classes load by path."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _llm_fixtures import tiny_model  # noqa: E402

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.llm import build_tiny_model  # noqa: E402
from agemem_gym.llm.tiny_model import PROTOCOL_TAGS, default_corpus, train_tokenizer  # noqa: E402

pytestmark = pytest.mark.engine


def test_folder_loads_with_auto_classes(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model(tmp_path_factory)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (path / name).is_file()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == "qwen2"
    assert 100_000 <= model.num_parameters() <= 5_000_000
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


def test_protocol_tags_are_single_tokens_kept_in_text(tmp_path_factory):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model(tmp_path_factory))
    for tag in PROTOCOL_TAGS:
        ids = tokenizer.encode(tag, add_special_tokens=False)
        assert len(ids) == 1 and tokenizer.decode(ids, skip_special_tokens=True) == tag
    text = "Ünïcode 日本 <think>hm</think>\n<answer> 2024-05-17 </answer>\r\n  x"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_loaded_tokenizer_splits_like_the_trained_one(tmp_path_factory):
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tiny_model(tmp_path_factory))
    trained = train_tokenizer(default_corpus())
    text = 'The user\'s sister lives in Lyon.\n\n  <tool_call>[{"name": "Add_memory"}]</tool_call>'
    assert loaded.encode(text, add_special_tokens=False) == trained.encode(
        text, add_special_tokens=False
    )


def test_chat_template_is_chatml(tmp_path_factory):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model(tmp_path_factory))
    messages = [{"role": "system", "content": "S"}, {"role": "tool", "content": "T"}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>tool\nT<|im_end|>\n<|im_start|>assistant\n"
    )


def test_response_template_keeps_protocol_text(tmp_path_factory):
    """Servers that parse responses with the tokenizer's template must leave the tags in."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model(tmp_path_factory))
    if not hasattr(tokenizer, "parse_response"):
        pytest.skip("this transformers has no response parsing")
    text = '<think>hm</think>\n<tool_call>[{"name": "Add_memory", "arguments": {}}]</tool_call>'
    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    prefix = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert tokenizer.parse_response(ids, prefix=prefix)["content"] == text


def test_seed_fixes_the_weights(tmp_path):
    from safetensors.torch import load_file

    small = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "vocab_size": 300}
    a = load_file(build_tiny_model(tmp_path / "a", seed=1, **small) / "model.safetensors")
    b = load_file(build_tiny_model(tmp_path / "b", seed=1, **small) / "model.safetensors")
    c = load_file(build_tiny_model(tmp_path / "c", seed=2, **small) / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_text() == (
        tmp_path / "c" / "tokenizer.json"
    ).read_text()


def test_qwen3_arch(tmp_path):
    from transformers import AutoModelForCausalLM

    path = build_tiny_model(tmp_path, arch="qwen3", hidden_size=32, intermediate_size=64)
    assert AutoModelForCausalLM.from_pretrained(path).config.model_type == "qwen3"


def test_invalid_settings(tmp_path):
    with pytest.raises(ConfigError, match=r"arch must be one of \['qwen2', 'qwen3'\], got 'gpt9'"):
        build_tiny_model(tmp_path, arch="gpt9")
    with pytest.raises(ConfigError, match="num_heads must divide hidden_size"):
        build_tiny_model(tmp_path, hidden_size=30, num_heads=4)
