"""Step-wise GRPO and the warm start: advantages, masks, the loss, and real tiny-model training."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _llm_fixtures import tiny_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from agemem_gym import AgeMemEnv  # noqa: E402
from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.policies import MemoryRandomPolicy  # noqa: E402
from agemem_gym.rollout import play_episodes  # noqa: E402
from agemem_gym.training.grpo import GRPOConfig, group_advantages, grpo_loss, train  # noqa: E402
from agemem_gym.training.rows import TurnRow, collate, pack, prompt_ids, token_logprobs  # noqa: E402

# One fact, one distractor, one question; two responses per turn (a store or a retrieval, then
# the reply), so an untrained model's garbage cannot run to eight responses a turn.
SMALL = {"num_facts": 1, "num_updates": 0, "num_deletes": 0, "small_talk": 0, "num_queried": 1,
         "num_distractors": 1, "distractor_sentences": 1, "prompt": "compact",
         "tools": ("Add_memory", "Retrieve_memory"), "max_steps_per_turn": 2}


# -- advantages -----------------------------------------------------------------------------------

def test_advantages_match_hand_computed_values():
    rewards = np.array([[1.0, 0.0, 0.5, 0.5], [0.2, 0.2, 0.2, 0.2], [3.0, 1.0, 2.0, 2.0]])
    adv = group_advantages(rewards, eps=0.0)
    # group 1: mean 0.5, sample std sqrt(0.5 / 3) = 0.408248
    assert adv[0] == pytest.approx([1.224745, -1.224745, 0.0, 0.0], abs=1e-6)
    assert adv[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # equal rewards: no signal, no NaN
    assert adv[2] == pytest.approx([1.224745, -1.224745, 0.0, 0.0], abs=1e-6)  # shift/scale invariant


def test_advantages_eps_and_dr_grpo_centring():
    rewards = np.array([[1.0, 0.0]])
    assert group_advantages(rewards, eps=1.0)[0] == pytest.approx([0.5 / (math.sqrt(0.5) + 1), -0.5 / (math.sqrt(0.5) + 1)])
    assert group_advantages(rewards, scale=False)[0].tolist() == [0.5, -0.5]


# -- rows and masks ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_model(tmp_path_factory)
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _teacher_turns(tokenizer, episodes=2):
    env = AgeMemEnv("assistant", privileged_info=True, **SMALL)
    turns, responses, contexts = [], [], []

    def keep(episode, observation, info, action, usage):
        ids = list(tokenizer.encode(action, add_special_tokens=False))
        turns.append(TurnRow(prompt_ids(tokenizer, observation), ids, advantage=float(episode + 1), episode=episode))
        responses.append(action)
        contexts.append(observation)

    starts = [{"seed": i, "options": {"task_index": i}} for i in range(episodes)]
    list(play_episodes([env], MemoryRandomPolicy(p_store=1.0, p_retrieve=1.0), starts, on_step=keep))
    env.close()
    return turns, responses, contexts


def test_mask_covers_only_the_models_own_tokens(tiny):
    _, tokenizer = tiny
    turns, responses, contexts = _teacher_turns(tokenizer)
    packed = pack(turns)
    assert len(packed) < len(turns)  # prefix-consistent turns share a sequence
    batch = collate(packed, tokenizer.pad_token_id)
    mask = batch["completion_mask"].bool()
    contexts_seen = ""
    for k, row in enumerate(packed):
        owned = sorted(set(row.turns) - {-1})
        for index in owned:
            own = [t for t, turn in zip(row.ids, row.turns, strict=True) if turn == index]
            assert tokenizer.decode(own) == responses[index]
        masked_text = tokenizer.decode(batch["input_ids"][k][mask[k]].tolist())
        assert masked_text == "".join(responses[i] for i in owned)  # nothing but the responses
        contexts_seen += tokenizer.decode(batch["input_ids"][k][~mask[k] & batch["attention_mask"][k].bool()].tolist())
    tool_results = [m["content"] for c in contexts for m in c if m["role"] == "tool"]
    user_messages = [m["content"] for c in contexts for m in c if m["role"] == "user"]
    assert tool_results and user_messages
    assert all(text in contexts_seen for text in tool_results + user_messages)  # all unmasked context
    assert batch["advantages"][mask].unique().numel() == 2  # each episode's advantage on its tokens
    assert (batch["advantages"][~mask] == 0).all()


def test_packing_keeps_each_turns_logprobs(tiny):
    model, tokenizer = tiny
    turns, _, _ = _teacher_turns(tokenizer, episodes=1)
    packed = pack(turns)
    batch = collate(packed, tokenizer.pad_token_id)
    with torch.no_grad():
        merged = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
        for index, turn in enumerate(turns):
            alone = collate(pack([turn]), tokenizer.pad_token_id)
            own = token_logprobs(model, alone["input_ids"], alone["attention_mask"])[alone["completion_mask"].bool()]
            in_pack = merged[batch["turns"] == index]
            assert torch.allclose(own, in_pack, atol=1e-4)


def test_turns_that_do_not_extend_each_other_stay_separate():
    rows = pack([TurnRow([1, 2], [3], episode=0), TurnRow([1, 9, 3], [4], episode=0), TurnRow([1, 2], [3], episode=1)])
    assert [r.ids for r in rows] == [[1, 2, 3], [1, 9, 3, 4], [1, 2, 3]]


# -- the loss ---------------------------------------------------------------------------------------

def _batch(tiny, advantage):
    model, tokenizer = tiny
    turns, _, _ = _teacher_turns(tokenizer, episodes=1)
    for turn in turns:
        turn.advantage = advantage
    batch = collate(pack(turns), tokenizer.pad_token_id)
    with torch.no_grad():
        batch["old_logprobs"] = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
    return batch, len(turns)


def test_kl_is_zero_at_initialisation(tiny):
    model, _ = tiny
    reference = copy.deepcopy(model)
    batch, turns = _batch(tiny, advantage=0.0)
    logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
    with torch.no_grad():
        ref = token_logprobs(reference, batch["input_ids"], batch["attention_mask"])
    loss, stats = grpo_loss(logp, ref, batch, beta=0.1, clip_eps=None, loss_type="grpo", turns_total=turns,
                            max_new_tokens=64)
    assert stats["kl"] == pytest.approx(0.0, abs=1e-6)
    assert stats["ratio"] == pytest.approx(1.0, abs=1e-5)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)


def test_positive_advantage_gradient_raises_the_turns_probability(tiny):
    model, _ = tiny
    model = copy.deepcopy(model)
    batch, turns = _batch(tiny, advantage=1.0)
    before = (token_logprobs(model, batch["input_ids"], batch["attention_mask"]) * batch["completion_mask"]).sum()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
    loss, _ = grpo_loss(logp, None, batch, beta=0.1, clip_eps=None, loss_type="grpo", turns_total=turns,
                        max_new_tokens=64)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = (token_logprobs(model, batch["input_ids"], batch["attention_mask"]) * batch["completion_mask"]).sum()
    assert after > before


def test_clipping_and_dr_grpo(tiny):
    batch, turns = _batch(tiny, advantage=1.0)
    logp = batch["old_logprobs"] + 0.5 * batch["completion_mask"]  # ratio e^0.5 on every own token
    _, stats = grpo_loss(logp, None, batch, beta=0.0, clip_eps=0.2, loss_type="grpo", turns_total=turns,
                         max_new_tokens=64)
    assert stats["clip_fraction"] == pytest.approx(1.0)
    grpo, _ = grpo_loss(batch["old_logprobs"], None, batch, beta=0.0, clip_eps=None, loss_type="grpo",
                        turns_total=turns, max_new_tokens=64)
    dr, _ = grpo_loss(batch["old_logprobs"], None, batch, beta=0.0, clip_eps=None, loss_type="dr_grpo",
                      turns_total=turns, max_new_tokens=64)
    assert float(grpo) == pytest.approx(-1.0)  # mean over each turn, then over turns
    assert float(dr) == pytest.approx(-batch["completion_mask"].sum().item() / (turns * 64))


def test_config_checks():
    with pytest.raises(ConfigError, match="group_size must be >= 2"):
        GRPOConfig(model="m", out="o", group_size=1)
    with pytest.raises(ConfigError, match="loss_type must be one of"):
        GRPOConfig(model="m", out="o", loss_type="ppo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="clip_eps must be in"):
        GRPOConfig(model="m", out="o", clip_eps=2.0)


# -- training end to end ----------------------------------------------------------------------------

def _config(tmp_path, model_path, **overrides):
    options = {"model": str(model_path), "out": str(tmp_path / "run"), "env_options": SMALL, "group_size": 2,
               "tasks_per_step": 2, "max_new_tokens": 24, "learning_rate": 1e-3, "progress": False,
               "tensorboard": False, **overrides}
    return GRPOConfig(**options)


def test_training_changes_the_parameters_and_logs_finite_loss(tmp_path, tmp_path_factory):
    path = tiny_model(tmp_path_factory)
    config = _config(tmp_path, path, max_steps=1)
    log = train(config)
    assert len(log) == 1 and math.isfinite(log[0]["train/loss"])
    assert log[0]["train/kl"] == pytest.approx(0.0, abs=1e-6)  # the first step starts at the reference
    assert log[0]["train/ratio"] == pytest.approx(1.0, abs=1e-3)  # rollout log-probs = trainer's
    before = AutoModelForCausalLM.from_pretrained(path).state_dict()
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model").state_dict()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "no parameter changed"
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1]


def test_resume_continues_from_the_checkpoint(tmp_path, tmp_path_factory):
    path = tiny_model(tmp_path_factory)
    train(_config(tmp_path, path, max_steps=1))
    (tmp_path / "run" / "log.jsonl").open("a").write(json.dumps({"step": 2, "partial": True}) + "\n")  # killed mid-step
    log = train(_config(tmp_path, path, max_steps=2))
    assert [entry["step"] for entry in log] == [1, 2]
    assert "partial" not in log[1]
    assert log[1]["train/kl"] > 0  # step 2 starts from the trained checkpoint, not the base model


def test_lora_trains_adapters_only(tmp_path, tmp_path_factory):
    pytest.importorskip("peft")
    from peft import PeftModel
    from safetensors.torch import load_file

    path = tiny_model(tmp_path_factory)
    log = train(_config(tmp_path, path, max_steps=1, lora=True, lora_r=4, lora_alpha=8))
    assert math.isfinite(log[0]["train/loss"])
    checkpoint = tmp_path / "run" / "checkpoint"
    adapters = load_file(checkpoint / "adapter_model.safetensors")  # the checkpoint holds adapters only
    lora_b = [tensor for name, tensor in adapters.items() if "lora_B" in name]
    assert lora_b and all(not any(k in name for k in ("embed", "norm")) for name in adapters)
    assert any(tensor.abs().sum() > 0 for tensor in lora_b)  # B starts at zero: the adapters changed
    base = AutoModelForCausalLM.from_pretrained(path).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model").state_dict()
    assert merged.keys() == base.keys()  # merged into a plain model
    # the merged model is the untouched base plus the saved adapters' update, and nothing else
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), checkpoint)
    expected = expected.merge_and_unload().state_dict()
    for name in base:
        assert torch.allclose(merged[name], expected[name], atol=1e-6), name
    moved = {name for name in base if not torch.equal(base[name], merged[name])}
    assert moved and all(name.endswith("proj.weight") for name in moved)  # only adapted linears
    assert not any("embed" in name or "norm" in name for name in moved)


def test_task_tiny_model_does_not_depend_on_the_package_docstrings(tmp_path, monkeypatch):
    from agemem_gym.llm import tiny_model as tiny_module
    from agemem_gym.training.sft import SFTConfig, build_task_tiny_model

    config = SFTConfig(model="", out="", env_options=SMALL)
    first = build_task_tiny_model(config, tmp_path / "a", episodes=4, vocab_size=600)
    monkeypatch.setattr(tiny_module, "_package_docstrings", lambda root: iter(["zebra quokka " * 50]))
    second = build_task_tiny_model(config, tmp_path / "b", episodes=4, vocab_size=600)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert len(tokenizer.tokenize("Quick question: what is")) <= 5  # the task's words are short sequences
