"""Prompt-prefix key/value reuse in the transformers backend: same outputs as without it,
bounded memory, and never a state computed with weights that have since changed."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _llm_fixtures import tiny_model  # noqa: E402

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.llm._kv_cache import PrefixCache, supports_prefix_cache  # noqa: E402
from agemem_gym.llm.transformers_backend import TransformersBackend  # noqa: E402

pytestmark = pytest.mark.engine

SYSTEM = {"role": "system", "content": "You manage your own memory with six tools. " * 12}
TURN1 = [SYSTEM, {"role": "user", "content": "My sister moved to Lyon in 2021, remember that."}]
TURN2 = [*TURN1, {"role": "assistant", "content": "<tool_call>[]</tool_call>"},
         {"role": "tool", "content": "stored"}]
TURN3 = [*TURN2, {"role": "assistant", "content": "<think>ok</think>"},
         {"role": "user", "content": "Where does my sister live? Answer in one word."}]
# a context rewrite: the earlier turns folded into a summary, so the prompt gets shorter
REWRITTEN = [SYSTEM, {"role": "user", "content": "Summary: sister in Lyon."},
             {"role": "user", "content": "Where does my sister live? Answer in one word."}]
OTHER = [SYSTEM, {"role": "user", "content": "Open the fridge and take the key."}]
SHORT = [{"role": "user", "content": "hi"}]

SEQUENCES = {
    "extends": [[TURN1], [TURN2], [TURN3]],
    "diverges": [[TURN2], [OTHER], [TURN3], [OTHER, TURN1]],
    "shorter after a rewrite": [[TURN3], [REWRITTEN], [TURN1], [TURN3, REWRITTEN]],
    "mixed batches": [[TURN1, OTHER, SHORT], [TURN2, OTHER, REWRITTEN, SHORT], [TURN3, TURN1]],
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_model(tmp_path_factory))


def backends(model_dir, **options):
    """A backend reusing cached states, and one running every batch padded from scratch."""
    cached = TransformersBackend(model_dir, device="cpu", prefix_cache_mb=64, **options)
    plain = TransformersBackend(model_dir, device="cpu", prefix_cache_mb=0, prefill="padded",
                                **options)
    return cached, plain


def assert_same(cached, plain, tolerance=1e-4):
    for a, b in zip(cached, plain, strict=True):
        assert a.completion_ids == b.completion_ids
        assert a.prompt_ids == b.prompt_ids
        assert (a.text, a.finish_reason) == (b.text, b.finish_reason)
        assert a.logprobs is not None and b.logprobs is not None
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) < tolerance


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_greedy_outputs_match_without_cache(model_dir, name):
    cached, plain = backends(model_dir)
    for batch in SEQUENCES[name]:
        options = {"max_new_tokens": 12, "logprobs": True, "stop": ["</answer>"]}
        assert_same(cached.generate(batch, **options), plain.generate(batch, **options))
    stats = cached.prefix_cache.stats
    assert stats.hits > 0 and stats.reused_tokens > stats.computed_tokens


def test_sampled_outputs_match_without_cache(model_dir):
    cached, plain = backends(model_dir)
    for batch in ([TURN1, OTHER], [TURN2, REWRITTEN]):
        options = {"max_new_tokens": 10, "logprobs": True, "temperature": 1.0, "top_p": 0.9,
                   "seed": 7}
        assert_same(cached.generate(batch, **options), plain.generate(batch, **options))


def test_next_turn_runs_only_its_new_tokens(model_dir):
    cached, _ = backends(model_dir)
    [first] = cached.generate([TURN1], max_new_tokens=4)
    stats = cached.prefix_cache.stats
    assert (stats.reused_tokens, stats.computed_tokens) == (0, first.prompt_tokens - 1)
    [second] = cached.generate([TURN2], max_new_tokens=4)
    assert second.prompt_ids[: first.prompt_tokens] == first.prompt_ids
    # everything the first prompt ran is reused; the model runs the rest but the last token
    assert stats.reused_tokens == first.prompt_tokens - 1
    assert stats.computed_tokens == second.prompt_tokens - 1
    # a new episode reuses the system prompt (and the template's start) of the earlier ones
    before = stats.reused_tokens
    [other] = cached.generate([OTHER], max_new_tokens=4)
    reused = stats.reused_tokens - before
    assert cached.count_tokens(SYSTEM["content"]) <= reused < other.prompt_tokens - 1


def test_memory_stays_within_the_bound(model_dir):
    small = TransformersBackend(model_dir, device="cpu", prefix_cache_mb=0.6)
    _, plain = backends(model_dir)
    prompts = [[SYSTEM, {"role": "user", "content": f"fact number {k} is {k * 7}"}] for k in range(8)]
    for batch in (prompts[:4], prompts[4:], [TURN3], prompts[:2]):
        options = {"max_new_tokens": 6, "logprobs": True}
        assert_same(small.generate(batch, **options), plain.generate(batch, **options))
        assert small.prefix_cache.bytes <= small.prefix_cache.max_bytes
    assert small.prefix_cache.stats.evictions > 0
    assert len(small.prefix_cache) >= 1


def test_weight_update_is_never_served_stale_states(model_dir):
    """An optimizer step between two calls (as in training) empties the cache: the second
    call matches a backend without a cache on the new weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cached = TransformersBackend.from_model(model, tokenizer, batch_size=4)
    plain = TransformersBackend.from_model(model, tokenizer, batch_size=4, prefix_cache_mb=0,
                                           prefill="padded")
    options = {"max_new_tokens": 8, "logprobs": True}
    before = cached.generate([TURN1, OTHER], **options)
    assert_same(before, plain.generate([TURN1, OTHER], **options))

    # fused: writes the weights without bumping their version counters
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    model.train()
    ids = torch.tensor([before[0].prompt_ids + before[0].completion_ids])
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    model.eval()
    after = cached.generate([TURN2, OTHER], **options)
    assert cached.prefix_cache.stats.clears == 1
    assert_same(after, plain.generate([TURN2, OTHER], **options))
    assert after[1].logprobs != before[1].logprobs  # the weights did change

    state = {k: v.clone() for k, v in model.state_dict().items()}
    cached.generate([TURN3], **options)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    model.load_state_dict(state)  # back to the same values: still new writes, still cleared
    assert_same(cached.generate([TURN3], **options), plain.generate([TURN3], **options))
    assert cached.prefix_cache.stats.clears == 2

    for p in model.parameters():  # writes through .data are invisible: clear by hand
        p.data.mul_(0.9)
    cached.clear_prefix_cache()
    assert len(cached.prefix_cache) == 0
    assert_same(cached.generate([TURN3], **options), plain.generate([TURN3], **options))


def test_constrained_decoding_with_the_cache(model_dir):
    cached, plain = backends(model_dir)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    for batch in ([TURN1], [TURN2, OTHER]):
        a = cached.generate(batch, max_new_tokens=40, json_schema=schema, logprobs=True)
        b = plain.generate(batch, max_new_tokens=40, json_schema=schema, logprobs=True)
        assert_same(a, b)
        for g in a:
            if g.finish_reason == "stop":
                assert isinstance(json.loads(g.text)["city"], str)
    assert cached.prefix_cache.stats.hits > 0


def test_prefix_cache_store_and_lookup():
    cache = PrefixCache(max_bytes=4 * 1024)
    kv = [(torch.arange(8.0).reshape(1, 1, 8, 1), -torch.arange(8.0).reshape(1, 1, 8, 1))]
    cache.store(list(range(8)), kv, fingerprint="w1")
    length, layers = cache.lookup([0, 1, 2, 9, 9], fingerprint="w1")
    assert length == 3 and layers[0][0].flatten().tolist() == [0.0, 1.0, 2.0]
    assert layers[0][1].flatten().tolist() == [0.0, -1.0, -2.0]
    assert cache.lookup([5, 1, 2], fingerprint="w1") == (0, [])
    # a longer entry extending a stored one replaces it
    longer = [(torch.zeros(1, 1, 10, 1), torch.zeros(1, 1, 10, 1))]
    cache.store([*range(8), 8, 9], longer, fingerprint="w1")
    assert len(cache) == 1 and cache.bytes == 2 * 10 * 4
    # new weights: nothing reused, everything dropped
    assert cache.lookup(list(range(6)), fingerprint="w2") == (0, [])
    assert len(cache) == 0 and cache.stats.clears == 1
    with pytest.raises(ValueError, match="cover"):
        cache.store([1, 2], kv, fingerprint="w2")


def test_prefix_cache_evicts_least_recently_used():
    def states(n):
        return [(torch.zeros(1, 1, n, 4), torch.zeros(1, 1, n, 4))]  # 32 bytes per token

    cache = PrefixCache(max_bytes=32 * 10)
    cache.store([1, 1, 1, 1], states(4), fingerprint=0)
    cache.store([2, 2, 2, 2], states(4), fingerprint=0)
    assert cache.lookup([1, 1, 5], fingerprint=0)[0] == 2  # [1,...] is now the most recent
    cache.store([3, 3, 3, 3], states(4), fingerprint=0)
    assert cache.lookup([2, 2], fingerprint=0)[0] == 0  # [2,...] was evicted
    assert cache.lookup([1, 1], fingerprint=0)[0] == 2
    assert cache.bytes <= cache.max_bytes and cache.stats.evictions == 1
    cache.store(list(range(20)), states(20), fingerprint=0)  # larger than the bound: not kept
    assert len(cache) == 2


def test_per_prompt_prefill_without_reuse_matches_padded(model_dir):
    unpadded = TransformersBackend(model_dir, device="cpu", prefix_cache_mb=0)
    _, plain = backends(model_dir)
    options = {"max_new_tokens": 10, "logprobs": True}
    for batch in ([TURN3, SHORT, OTHER], [TURN1, TURN2]):
        assert_same(unpadded.generate(batch, **options), plain.generate(batch, **options))
    assert unpadded.prefix_cache is None


def test_bad_settings_are_clear_errors(model_dir):
    with pytest.raises(ConfigError, match="prefix_cache_mb"):
        TransformersBackend(model_dir, device="cpu", prefix_cache_mb=-1)
    with pytest.raises(ConfigError, match="prefill must be"):
        TransformersBackend(model_dir, device="cpu", prefill="chunked")


def test_sliding_window_models_do_not_reuse_states(model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    assert supports_prefix_cache(model)
    model.config.layer_types = ["sliding_attention"] * model.config.num_hidden_layers
    assert not supports_prefix_cache(model)


def test_packed_cache_writes_in_place_and_falls_back_to_concatenation():
    from agemem_gym.llm._kv_cache import layers_of, pack_left

    row = [(torch.ones(1, 2, 3, 4), 2 * torch.ones(1, 2, 3, 4))]
    cache = pack_left([row, []], width=5, capacity=7)
    keys, values = layers_of(cache)[0]
    assert keys.shape == (2, 2, 5, 4) and cache.get_seq_length() == 5
    assert keys[0, :, :2].abs().sum() == 0 and keys[0, :, 2:].eq(1).all()  # left padding
    assert values[1].abs().sum() == 0  # an empty row is all padding
    start = keys.data_ptr()
    step = torch.full((2, 2, 1, 4), 3.0)
    for length in (6, 7):
        k, _ = cache.update(step, step, 0)
        assert k.shape[-2] == length and k.data_ptr() == start  # written into the spare room
    k, v = cache.update(step, step, 0)  # past the room: concatenated, same contents
    assert k.shape[-2] == 8 and k[:, :, 5:].eq(3).all() and k[0, :, 2:5].eq(1).all()
    cache.batch_select_indices(torch.tensor([1]))
    k, _ = cache.update(step[:1], step[:1], 0)
    assert k.shape == (1, 2, 9, 4) and k[0, :, :5].abs().sum() == 0 and k[0, :, 5:].eq(3).all()
