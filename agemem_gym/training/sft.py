"""Supervised warm start: teach a model the response protocol from a scripted policy's turns.

The default teacher, ``memory-random``, speaks the protocol perfectly but stores and retrieves
by coin flip, so the warm-started model knows *how* to call the memory tools and not *when* it
pays: that is left to step-wise GRPO (:mod:`agemem_gym.training.grpo`).

Example:
    >>> import tempfile
    >>> from agemem_gym.llm.tiny_model import build_tiny_model
    >>> tmp = tempfile.TemporaryDirectory()
    >>> config = SFTConfig(model=str(build_tiny_model(tmp.name + "/m")), out=tmp.name + "/sft",
    ...                    episodes=2, epochs=1, progress=False,
    ...                    env_options={"num_facts": 1, "num_updates": 0, "num_deletes": 0,
    ...                                 "num_queried": 1, "num_distractors": 1})
    >>> stats = train_sft(config)
    >>> stats["rows"] > 0 and stats["loss"] > 0
    True
    >>> tmp.cleanup()
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from agemem_gym.env import AgeMemEnv
from agemem_gym.llm._threads import set_torch_threads
from agemem_gym.llm.models import resolve_model
from agemem_gym.policies import make_policy
from agemem_gym.rollout import play_episodes
from agemem_gym.training.rows import (
    TurnRow,
    collate,
    length_batches,
    pack,
    prompt_ids,
    token_logprobs,
)

logger = logging.getLogger(__name__)


@dataclass
class SFTConfig:
    """Settings of :func:`train_sft`."""

    model: str
    """Model folder or hub id to start from."""
    out: str
    """Folder the warm-started model is written to (Hugging Face format)."""
    env: str = "assistant"
    """Benchmark whose episodes the teacher plays."""
    env_options: dict[str, Any] = field(default_factory=dict)
    """Env and benchmark options (as for ``gym.make``)."""
    teacher: str = "memory-random"
    """Scripted policy whose responses are imitated."""
    teacher_options: dict[str, Any] = field(default_factory=dict)
    """Its options (``p_store``, ``p_retrieve``, ``top_k`` for memory-random)."""
    episodes: int = 256
    """Teacher episodes (training tasks, never the evaluation set)."""
    epochs: int = 3
    """Passes over the teacher's turns."""
    learning_rate: float = 2e-3
    """AdamW learning rate (linear decay to 0)."""
    tokens_per_batch: int = 16_384
    """Padded tokens per optimizer step."""
    seed: int = 0
    """Seeds the teacher's episodes, the batch order and torch."""
    progress: bool = True
    """Show progress bars."""
    threads: int | None = None
    """torch CPU threads (default: ``$AGEMEM_THREADS``, else the free cores)."""


def collect_demonstrations(config: SFTConfig) -> tuple[list[list[dict[str, str]]], list[str], list[int]]:
    """Play the teacher; return each turn's context (as chat messages), its response and the
    index of its episode."""
    teacher = make_policy(config.teacher, **config.teacher_options)
    env = AgeMemEnv(config.env, privileged_info=teacher.privileged,
                    **{**teacher.env_options, **config.env_options})
    contexts: list[list[dict[str, str]]] = []
    responses: list[str] = []
    episodes: list[int] = []

    def keep(episode: int, observation: Any, info: dict[str, Any], action: str, usage: Any) -> None:
        contexts.append([{"role": m["role"], "content": m["content"]} for m in observation])
        responses.append(action)
        episodes.append(episode)

    try:
        starts = [{"seed": config.seed * 1_000_003 + i} for i in range(config.episodes)]
        for _ in play_episodes([env], teacher, starts, on_step=keep):
            pass
    finally:
        env.close()
    return contexts, responses, episodes


def build_task_tiny_model(config: SFTConfig, out: str | Path, *, episodes: int = 200,
                          **sizes: Any) -> Path:
    """A tiny model (:func:`~agemem_gym.llm.tiny_model.build_tiny_model`) whose tokenizer is
    trained on the protocol text plus the teacher's episodes on ``config.env``, so the task's
    words are short token sequences. The package's docstrings stay out: an edit to them would
    change the model. ``sizes`` go to ``build_tiny_model``."""
    from agemem_gym.llm.tiny_model import build_tiny_model, default_corpus

    sample = SFTConfig(**{**asdict(config), "episodes": episodes, "seed": config.seed + 7_919})
    contexts, responses, _ = collect_demonstrations(sample)
    texts = [m["content"] for context in contexts for m in context] + responses
    return build_tiny_model(out, seed=config.seed, corpus=[*default_corpus(docstrings=False), *texts], **sizes)


def train_sft(config: SFTConfig) -> dict[str, float]:
    """Imitate the teacher's responses (loss on response tokens only); save the model to
    ``config.out``; return ``rows`` (turns), ``sequences`` (after packing), ``tokens`` and
    the last epoch's mean ``loss``."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    set_torch_threads(config.threads)
    torch.manual_seed(config.seed)
    path = resolve_model(config.model)  # a named model (smollm2-135m): its folder
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    contexts, responses, episodes = collect_demonstrations(config)
    turns = [TurnRow(prompt_ids(tokenizer, c), list(tokenizer.encode(r, add_special_tokens=False)),
                     episode=e) for c, r, e in zip(contexts, responses, episodes, strict=True)]
    rows = pack(turns)
    batches = length_batches(rows, config.tokens_per_batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    total = config.epochs * len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
    order = random.Random(config.seed)
    model.train()
    bar = tqdm(total=total, disable=not config.progress, desc="sft", unit="batch")
    epoch_loss = 0.0
    for _ in range(config.epochs):
        order.shuffle(batches)
        losses = []
        for indices in batches:
            batch = collate([rows[i] for i in indices], tokenizer.pad_token_id)
            logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
            mask = batch["completion_mask"]
            loss = -(logp * mask).sum() / mask.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        epoch_loss = sum(losses) / len(losses)
    bar.close()
    out = Path(config.out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    stats = {"rows": float(len(turns)), "sequences": float(len(rows)),
             "tokens": float(sum(len(r.ids) for r in rows)), "loss": epoch_loss}
    (out / "agemem_sft.json").write_text(json.dumps({"config": asdict(config), **stats}, indent=2) + "\n")
    logger.info("sft: %d rows, final epoch loss %.4f, saved to %s", len(rows), epoch_loss, out)
    return stats
