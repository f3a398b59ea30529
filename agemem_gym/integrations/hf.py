"""A :data:`~agemem_gym.integrations.rollouts.GenerateFn` around a ``transformers`` model in memory.

Trainers that hold the policy in this process (TRL's ``GRPOTrainer`` on CPU or one GPU, a
hand-written loop) sample from the live weights with it: left-padded batches through
``model.generate``, each completion cut after its end-of-turn token or the first stop string,
with the log-prob of every kept token under the sampling temperature (``logits / temperature``;
``top_p`` is not folded in).

Example:
    >>> import tempfile
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> from agemem_gym.llm import build_tiny_model
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = build_tiny_model(tmp.name)
    >>> model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    >>> generate = hf_generate(model, tokenizer, max_new_tokens=5, seed=0)
    >>> [c] = generate([tokenizer.encode("<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n")])
    >>> len(c.ids) <= 5 and len(c.logprobs) == len(c.ids) and all(lp <= 0 for lp in c.logprobs)
    True
    >>> tmp.cleanup()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agemem_gym.errors import ConfigError, MissingExtraError
from agemem_gym.integrations.rollouts import Completion, GenerateFn
from agemem_gym.llm.base import check_sampling, find_stop
from agemem_gym.policies.llm_agent import STOP

try:
    import torch
except ImportError as e:  # pragma: no cover - the [llm] and [train] extras bring torch
    raise MissingExtraError("agemem_gym.integrations.hf", "llm") from e


def hf_generate(model: Any, tokenizer: Any, *, max_new_tokens: int = 128, temperature: float = 1.0,
                top_p: float = 1.0, stop: Sequence[str] | None = STOP, batch_size: int = 16,
                seed: int | None = None) -> GenerateFn:
    """A generate callable that samples from ``model`` (greedy at ``temperature == 0``).

    Args:
        model: a causal LM (its current weights are used at every call).
        tokenizer: its tokenizer (pad and end-of-turn ids).
        max_new_tokens: the longest completion.
        temperature: sampling temperature; 0 is greedy.
        top_p: nucleus sampling mass.
        stop: strings after which a completion ends (kept); the agent protocol's by default.
        batch_size: most prompts per ``model.generate`` call.
        seed: seeds torch's generator once, at the first call (None: leave it).
    """
    check_sampling(max_new_tokens, temperature, top_p)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = _end_of_turn_ids(model, tokenizer)
    sampling: dict[str, Any] = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
    seeded = [seed is None]

    def generate(prompts: Sequence[list[int]]) -> list[Completion]:
        if not seeded[0]:
            torch.manual_seed(int(seed or 0))
            seeded[0] = True
        out: list[Completion] = []
        for start in range(0, len(prompts), batch_size):
            batch = [list(p) for p in prompts[start:start + batch_size]]
            new, picked = _generate_batch(model, batch, pad, sorted(eos), max_new_tokens, sampling,
                                          temperature or 1.0)
            for row in range(len(batch)):
                n = _cut(tokenizer, new[row].tolist(), eos, stop)
                out.append(Completion(new[row, :n].tolist(), picked[row, :n].tolist()))
        return out

    return generate


def _generate_batch(model: Any, batch: list[list[int]], pad: int, eos: list[int], max_new_tokens: int,
                    sampling: dict[str, Any], temperature: float) -> tuple[Any, Any]:
    """Left-padded ``model.generate``: the new ids ``[B, T]`` and their log-probs ``[B, T]``."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids):] = 1
    device = next(model.parameters()).device
    with torch.inference_mode():
        result = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad,
                                return_dict_in_generate=True, output_logits=True, **sampling)
    new = result.sequences[:, width:]
    columns = []  # one step at a time: the whole [B, T, V] tensor can be large
    for step in range(new.shape[1]):
        logp = torch.log_softmax(result.logits[step].float() / temperature, dim=-1)
        columns.append(logp.gather(1, new[:, step:step + 1]).squeeze(1))
    return new.cpu(), torch.stack(columns, dim=1).cpu()


def _cut(tokenizer: Any, ids: list[int], eos: set[int], stop: Sequence[str] | None) -> int:
    """How many of ``ids`` the completion keeps: through the first end-of-turn token, or the
    shortest prefix whose text holds a stop string."""
    n = next((k + 1 for k, token in enumerate(ids) if token in eos), len(ids))
    if not stop or find_stop(tokenizer.decode(ids[:n], skip_special_tokens=True), stop) is None:
        return n
    low, high = 1, n
    while low < high:
        mid = (low + high) // 2
        found = find_stop(tokenizer.decode(ids[:mid], skip_special_tokens=True), stop) is not None
        low, high = (low, mid) if found else (mid + 1, high)
    return low


def _end_of_turn_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
    if tokenizer.eos_token_id is not None:
        eos.add(tokenizer.eos_token_id)
    if not eos:
        raise ConfigError("the model and tokenizer name no end-of-turn token: set tokenizer.eos_token")
    return eos
