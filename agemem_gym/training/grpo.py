"""Step-wise GRPO for memory agents, in one file: the paper's training method.

Read it top to bottom: config, advantages, loss, setup, rollouts, update, logging, checkpoints.

For every task in a batch the policy plays ``group_size`` (K) episodes through the same env and
play loop as evaluation (:func:`agemem_gym.rollout.play_episodes`). Each episode's terminal
reward r_k becomes one advantage ``A_k = (r_k - mean(r)) / (std(r) + eps)`` within its task's
group (sample std), broadcast to every model turn of the episode, in all three stages. Each
model turn is one training row: prompt = the context the model saw, completion = the tokens it
wrote; only those tokens carry loss (tool results, user messages and observations are context).
Per token the objective is ``rho_t * A - beta * KL_t`` with ``rho_t`` the probability ratio to
the policy that sampled the turn and ``KL_t`` the k3 estimate against a frozen reference; a
turn's tokens are averaged, then the turns. The paper mentions no clipping and no other
normalisation, so both are off by default: ``clip_eps`` turns on PPO clipping, ``loss_type=
"dr_grpo"`` drops the std scaling and divides token sums by ``max_new_tokens`` (Dr. GRPO).

Past one machine: run the same entry point under ``accelerate launch`` (each process plays its
own tasks; gradients are averaged across processes); ``lora=True`` trains LoRA adapters with
peft (the reference is then the base model, adapters disabled); ``workers="processes"`` or
``"ray"`` steps the rollout envs in worker processes or Ray actors while generation stays
batched here (:mod:`agemem_gym.training.rollout_envs`). Rollouts normally come from the
trained weights in this process. ``rollout_base_url`` sends them to an OpenAI-compatible server
(vLLM, SGLang) instead: this trainer does not push new weights to that server, so its samples
come from whatever the server loaded; the ratio then corrects with the server's log-probs when
it returns them, and training is only on-policy if you reload the server from
``out/checkpoint`` yourself.

Example:
    >>> import tempfile
    >>> from agemem_gym.llm.tiny_model import build_tiny_model
    >>> tmp = tempfile.TemporaryDirectory()
    >>> config = GRPOConfig(model=str(build_tiny_model(tmp.name + "/m")), out=tmp.name + "/run",
    ...                     max_steps=1, group_size=2, tasks_per_step=1, max_new_tokens=8,
    ...                     progress=False, tensorboard=False,
    ...                     env_options={"num_facts": 1, "num_updates": 0, "num_deletes": 0,
    ...                                  "num_queried": 1, "num_distractors": 1})
    >>> [log] = train(config)
    >>> log["step"], log["train/loss"] == log["train/loss"]  # one step, a finite loss
    (1, True)
    >>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from agemem_gym.config import check_choice
from agemem_gym.env import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.llm._threads import set_torch_threads
from agemem_gym.llm.models import resolve_model
from agemem_gym.policies.llm_agent import AgeMemAgent
from agemem_gym.rollout import play_episodes
from agemem_gym.tasks import training_split
from agemem_gym.training.rollout_envs import WORKERS, RolloutEnvs, make_rollout_envs
from agemem_gym.training.rows import (
    TurnRow,
    collate,
    length_batches,
    pack,
    prompt_ids,
    token_logprobs,
)

logger = logging.getLogger(__name__)

LossType = Literal["grpo", "dr_grpo"]


@dataclass
class GRPOConfig:
    """Settings of :func:`train`. Every field is a ``agemem-bench train`` option."""

    model: str
    """Model folder or hub id to train (Hugging Face causal LM with a chat template)."""
    out: str
    """Run folder: ``log.jsonl``, ``tb/``, ``checkpoint/`` (latest, for resuming), ``model/``."""
    env: str = "assistant"
    """Benchmark to train on (training tasks: never the evaluation set)."""
    env_options: dict[str, Any] = field(default_factory=dict)
    """Env and benchmark options, as for ``gym.make``."""
    curriculum: tuple[tuple[int, ...], ...] = ((1, 2, 3),)
    """Stage subsets, trained in order for an equal share of the steps each, e.g.
    ``((3,), (1, 3), (1, 2, 3))``."""
    reward_mode: Literal["full", "task"] = "full"
    """``full``: the paper's trajectory reward; ``task``: task score only (Answer-Only)."""
    reward_weights: dict[str, float] | None = None
    """``task``, ``context``, ``memory`` weights of the full reward (default 1/3 each)."""
    group_size: int = 8
    """K: episodes per task."""
    tasks_per_step: int = 4
    """Tasks per training step (per process)."""
    max_steps: int = 100
    """Training steps (one optimizer step each)."""
    learning_rate: float = 1e-5
    """AdamW learning rate (constant after ``warmup_steps``)."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    beta: float = 0.1
    """KL coefficient against the frozen reference (0 skips the reference)."""
    adv_eps: float = 1e-6
    """eps in the advantage's denominator."""
    clip_eps: float | None = None
    """PPO clip range of the ratio; None is the paper's unclipped objective."""
    loss_type: LossType = "grpo"
    """``grpo``: std-scaled advantages, mean per turn then over turns; ``dr_grpo``: no std
    scaling, token sums over ``max_new_tokens``."""
    advantage: Literal["episode", "turn"] = "episode"
    """``episode``: the paper's step-wise GRPO, each episode's group-normalised reward broadcast
    to its turns; ``turn``: the released code's plain GRPO, normalised over all kept turns of a
    task (longer episodes weigh more)."""
    train_turns: Literal["all", "tools_and_last"] = "all"
    """Turns that carry loss: all, or (the released code) those with a tool call plus each
    episode's last turn."""
    kl_estimator: Literal["k3", "k2"] = "k3"
    """KL estimator: ``k3`` (unbiased, the default) or ``k2`` (``0.5 * log-ratio**2``, the
    released config's)."""
    updates_per_step: int = 1
    """Optimizer passes over each step's rollouts (>1 makes the ratio and clipping matter)."""
    tokens_per_micro_batch: int = 8_192
    """Padded tokens per forward pass; gradients accumulate over the micro-batches of a step."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts."""
    top_p: float = 1.0
    """Nucleus sampling of the rollouts."""
    max_new_tokens: int = 256
    """Longest response per model turn."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA alpha."""
    rollout_base_url: str | None = None
    """OpenAI-compatible server for rollouts (see the module docstring on weight sync)."""
    workers: str = "local"
    """Where the rollout envs step (one per episode of a step): ``local`` (this process, in
    turn), ``processes`` (one worker process each, in parallel) or ``ray`` (one Ray actor each);
    generation stays batched here either way."""
    ray_address: str | None = None
    """The Ray cluster to join with ``workers="ray"`` (``auto``, ``ray://host:10001``; None
    starts a local one)."""
    rollout_slots: int | None = None
    """Envs stepping at once (worker processes or Ray actors); default one per episode of a
    step (``tasks_per_step * group_size``). Fewer slots queue the episodes, with the same rows."""
    save_every: int = 10
    """Steps between checkpoints (the last step is always saved)."""
    seed: int = 0
    """Seeds tasks, sampling and torch."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Also log to TensorBoard under ``out/tb``."""
    threads: int | None = None
    """torch CPU threads (default: ``$AGEMEM_THREADS``, else the free cores)."""

    def __post_init__(self) -> None:
        self.curriculum = tuple(tuple(int(s) for s in stages) for stages in self.curriculum)
        if not self.curriculum:
            raise ConfigError("curriculum needs at least one stage subset, e.g. ((1, 2, 3),)")
        if self.group_size < 2:
            raise ConfigError(f"group_size must be >= 2 (advantages compare episodes), got {self.group_size}")
        for name in ("tasks_per_step", "max_steps", "updates_per_step", "max_new_tokens", "save_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.loss_type not in _LOSS_TYPES:
            raise ConfigError(f"loss_type must be one of {sorted(_LOSS_TYPES)}, got {self.loss_type!r}")
        if self.clip_eps is not None and not 0 < self.clip_eps < 1:
            raise ConfigError(f"clip_eps must be in (0, 1) or None, got {self.clip_eps}")
        if self.beta < 0:
            raise ConfigError(f"beta must be >= 0, got {self.beta}")
        for name, allowed in (("advantage", ("episode", "turn")), ("train_turns", ("all", "tools_and_last")),
                              ("kl_estimator", ("k3", "k2"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        self.workers = check_choice("workers", self.workers, WORKERS)
        if self.rollout_slots is not None and self.rollout_slots < 1:
            raise ConfigError(f"rollout_slots must be >= 1 or None, got {self.rollout_slots}")
        if self.ray_address is not None and self.workers != "ray":
            raise ConfigError(f"ray_address is only used with workers='ray', got workers={self.workers!r}: "
                              "pass workers='ray' too, or drop ray_address")
        if self.lora and self.rollout_base_url:
            raise ConfigError("rollout_base_url with lora: a server cannot sample from unmerged adapters")
        training_split(self.env, self.env_options)  # no training tasks: refuse, saying what to pass


# -- advantages and loss -------------------------------------------------------------------------

#: The released training config (examples/agemem_hotpotqa/agemem_train.yaml, OFFICIAL.md section 6):
#: plain GRPO over the kept turns, PPO clipping 0.2, k2 KL at 0.001, LoRA rank 32 / alpha 32,
#: 16 tasks x 8, weight decay 0.01, temperature 0.6, 2,048-token replies.
TRINITY_PRESET: dict[str, Any] = {
    "advantage": "turn", "train_turns": "tools_and_last", "clip_eps": 0.2, "kl_estimator": "k2",
    "beta": 0.001, "lora": True, "lora_r": 32, "lora_alpha": 32, "learning_rate": 1e-5,
    "tasks_per_step": 16, "group_size": 8, "weight_decay": 0.01, "temperature": 0.6,
    "max_new_tokens": 2048,
}
PRESETS: dict[str, dict[str, Any]] = {"paper": {}, "trinity": TRINITY_PRESET}


def turn_advantages(rewards: np.ndarray, episode_of_row: np.ndarray, task_of_episode: np.ndarray,
                    eps: float = 1e-6) -> np.ndarray:
    """Plain GRPO over turns: each row carries its episode's reward, normalised by the mean and
    sample std of all rows of the same task.

    >>> turn_advantages(np.array([1.0, 0.0]), np.array([0, 0, 0, 1]), np.array([0, 0])).round(3).tolist()
    [0.5, 0.5, 0.5, -1.5]
    """
    row_rewards = rewards[episode_of_row]
    row_tasks = task_of_episode[episode_of_row]
    out = np.zeros_like(row_rewards, dtype=float)
    for task in np.unique(row_tasks):
        mine = row_tasks == task
        values = row_rewards[mine]
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        out[mine] = (values - values.mean()) / (std + eps) if std > 0 else 0.0
    return out


def group_advantages(rewards: np.ndarray, eps: float = 1e-6, scale: bool = True) -> np.ndarray:
    """``(r - mean) / (std + eps)`` per row (one row per task, one column per episode), with
    the sample std; ``scale=False`` only centres (Dr. GRPO). Equal rewards give zeros.

    >>> group_advantages(np.array([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])).round(3).tolist()
    [[0.866, -0.866, -0.866, 0.866], [0.0, 0.0, 0.0, 0.0]]
    """
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    if not scale:
        return centred
    std = rewards.std(axis=1, ddof=1, keepdims=True)
    return np.divide(centred, std + eps, out=np.zeros_like(centred), where=std > 0)


def _turn_mean(values: Any, batch: dict[str, Any], turns_total: int, max_new_tokens: int) -> Any:
    """grpo: each turn's token mean, summed over turns, over ``turns_total``."""
    turns = batch["turns"].clamp(min=0).flatten()
    mask = batch["completion_mask"].flatten()
    sums = torch.zeros(int(turns.max()) + 1).index_add(0, turns, values.flatten() * mask)
    counts = torch.zeros_like(sums).index_add(0, turns, mask)
    present = counts > 0
    return (sums[present] / counts[present]).sum() / turns_total


def _token_sum(values: Any, batch: dict[str, Any], turns_total: int, max_new_tokens: int) -> Any:
    """dr_grpo: token sums over a constant (``max_new_tokens`` per turn)."""
    return (values * batch["completion_mask"]).sum() / (turns_total * max_new_tokens)


_LOSS_TYPES = {"grpo": _turn_mean, "dr_grpo": _token_sum}


def grpo_loss(logp: Any, ref_logp: Any | None, batch: dict[str, Any], *, beta: float,
              clip_eps: float | None, loss_type: LossType, turns_total: int,
              max_new_tokens: int, kl_estimator: str = "k3") -> tuple[Any, dict[str, float]]:
    """The negated objective of the micro-batch ``batch`` (its share of a step with
    ``turns_total`` turns), and statistics of its tokens."""
    mask = batch["completion_mask"]
    ratio = torch.exp(logp - batch["old_logprobs"])
    advantages = batch["advantages"]
    objective = ratio * advantages
    if clip_eps is not None:
        objective = torch.minimum(objective, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        log_ref_ratio = ref_logp - logp
        if kl_estimator == "k2":
            kl = 0.5 * log_ref_ratio**2
        else:
            kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1  # k3: unbiased, >= 0
        objective = objective - beta * kl
    loss = -_LOSS_TYPES[loss_type](objective, batch, turns_total, max_new_tokens)
    with torch.no_grad():
        tokens = mask.sum().clamp(min=1)
        clipped = ((ratio - 1).abs() > clip_eps).float() if clip_eps is not None else torch.zeros_like(ratio)
        stats = {"kl": float((kl * mask).sum() / tokens), "ratio": float((ratio * mask).sum() / tokens),
                 "clip_fraction": float((clipped * mask).sum() / tokens), "tokens": float(mask.sum())}
    return loss, stats


# -- setup ------------------------------------------------------------------------------------------

def _load(config: GRPOConfig, accelerator: Any) -> tuple[Any, Any, Any]:
    """Policy, reference (None when beta is 0 or with LoRA) and tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(config.out) / "checkpoint" if (Path(config.out) / "checkpoint").exists() else None
    path = resolve_model(config.model)  # a named model (smollm2-135m): its folder
    tokenizer = AutoTokenizer.from_pretrained(path)
    dtype = torch.bfloat16 if accelerator.device.type == "cuda" else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    reference = None
    if config.beta > 0 and not config.lora:
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    if config.lora:
        from peft import LoraConfig, PeftModel, get_peft_model

        if source is not None:
            model = PeftModel.from_pretrained(model, source, is_trainable=True)
        else:
            model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                                     target_modules="all-linear", task_type="CAUSAL_LM"))
    elif source is not None:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return model, reference, tokenizer


def _sampler(config: GRPOConfig, model: Any, tokenizer: Any) -> AgeMemAgent:
    """The rollout policy: the AgeMem agent on the live weights (or on a server); its sampling
    seed is set anew each step."""
    options: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature,
                               "top_p": config.top_p, "logprobs": True,
                               "keep_generations": True}
    if config.rollout_base_url:
        return AgeMemAgent(config.model, "openai", base_url=config.rollout_base_url, **options)
    from agemem_gym.llm.transformers_backend import TransformersBackend

    llm = TransformersBackend.from_model(model, tokenizer, batch_size=config.tasks_per_step * config.group_size)
    return AgeMemAgent(llm=llm, **options)


def _envs(config: GRPOConfig, stages: tuple[int, ...]) -> RolloutEnvs:
    """``rollout_slots`` slots (default one per episode of a step), where ``config.workers`` says."""
    options = {**config.env_options, "stages": stages, "reward_mode": config.reward_mode}
    if config.reward_weights is not None:
        options["reward_weights"] = config.reward_weights
    slots = config.rollout_slots or config.tasks_per_step * config.group_size
    return make_rollout_envs(config.env, options, slots, config.workers, config.ray_address)


# -- rollouts --------------------------------------------------------------------------------------

def collect_rollouts(envs: RolloutEnvs | Sequence[AgeMemEnv], policy: AgeMemAgent, tokenizer: Any,
                     rng: np.random.Generator, group_size: int,
                     tasks: int | None = None) -> tuple[list[TurnRow], np.ndarray, list[dict[str, Any]]]:
    """Play ``group_size`` episodes of each of ``tasks`` fresh training tasks (default
    ``len(envs) // group_size``), drawn here, whichever process the envs step in.

    Returns the turns (one row each, ``episode`` set, advantage still 0), the rewards as
    ``[tasks, group_size]`` and each episode's final ``info``. An episode played again because
    its worker was lost keeps only the turns of its replay.
    """
    if not isinstance(envs, RolloutEnvs):
        envs = RolloutEnvs.of(envs)
    drawn = [envs.source.sample(rng) for _ in range(tasks or len(envs) // group_size)]
    starts = [{"seed": int(rng.integers(2**31)), "options": {"task": task}}
              for task in drawn for _ in range(group_size)]
    rows: list[TurnRow] = []

    def keep(episode: int, observation: Any, info: dict[str, Any], action: str, usage: Any) -> None:
        g = usage["generation"]
        ids = g.completion_ids if g.completion_ids is not None else tokenizer.encode(g.text, add_special_tokens=False)
        old = g.logprobs if g.logprobs is not None and len(g.logprobs) == len(ids) else None
        rows.append(TurnRow(g.prompt_ids or prompt_ids(tokenizer, observation), list(ids), 0.0, old, episode,
                            "<tool_call>" in action))

    def replay(episode: int) -> None:  # its worker was lost: the episode, and its turns, start over
        logger.warning("a rollout worker was lost; episode %d of the step is played again", episode)
        rows[:] = [row for row in rows if row.episode != episode]

    rewards = np.zeros(len(starts))
    infos: list[dict[str, Any]] = [{}] * len(starts)
    for done in play_episodes(envs.group, policy, starts, on_step=keep, on_restart=replay):
        rewards[done.index], infos[done.index] = done.reward, done.info
    return rows, rewards.reshape(len(drawn), group_size), infos


def assign_advantages(config: GRPOConfig, rows: list[TurnRow], rewards: np.ndarray) -> list[TurnRow]:
    """Keep the turns that carry loss and give each its advantage (``rewards`` is
    ``[tasks, group_size]``; a row's episode indexes its flattened form)."""
    if config.train_turns == "tools_and_last":
        last = {row.episode: i for i, row in enumerate(rows)}
        rows = [row for i, row in enumerate(rows) if row.has_tool_call or last[row.episode] == i]
    if config.advantage == "turn":
        episodes = np.array([row.episode for row in rows], dtype=int)
        tasks = np.repeat(np.arange(rewards.shape[0]), rewards.shape[1])
        advantages = turn_advantages(rewards.flatten(), episodes, tasks, config.adv_eps)
        for row, advantage in zip(rows, advantages, strict=True):
            row.advantage = float(advantage)
        return rows
    per_episode = group_advantages(rewards, config.adv_eps, scale=config.loss_type == "grpo").flatten()
    for row in rows:
        row.advantage = float(per_episode[row.episode])
    return rows


def _episode_metrics(rewards: np.ndarray, infos: list[dict[str, Any]]) -> dict[str, float]:
    metrics = {"reward/total": float(rewards.mean()), "reward/std_in_group": float(rewards.std(axis=1, ddof=1).mean())}
    for name in ("score", "success", "mq"):
        metrics[f"task/{name}" if name != "mq" else "memory/mq"] = float(np.mean([i["metrics"].get(name, 0.0) for i in infos]))
    tools = sorted({name for i in infos for name in i["tool_calls"]})
    for name in tools:
        metrics[f"tools/{name}"] = float(np.mean([i["tool_calls"].get(name, 0) for i in infos]))
    metrics["tools/format_errors"] = float(np.mean([i["counts"].get("format_errors", 0) for i in infos]))
    return metrics


# -- update ----------------------------------------------------------------------------------------

def _update(config: GRPOConfig, model: Any, reference: Any, optimizer: Any, accelerator: Any,
            rows: list[TurnRow], pad_id: int) -> dict[str, float]:
    """``updates_per_step`` optimizer steps on one step's rows; gradients accumulate over
    micro-batches and are averaged across processes."""

    packed = pack(rows)
    batches = length_batches(packed, config.tokens_per_micro_batch)
    if any(r.old_logprobs is None for r in rows):  # the sampler gave none: the policy before this update is the sampler
        _fill_old_logprobs(model, packed, batches, pad_id, accelerator.device)
    totals: dict[str, float] = {"train/loss": 0.0, "train/kl": 0.0, "train/ratio": 0.0, "train/clip_fraction": 0.0}
    tokens = 0.0
    for _ in range(config.updates_per_step):
        optimizer.zero_grad()
        for k, indices in enumerate(batches):
            batch = {n: t.to(accelerator.device) for n, t in collate([packed[i] for i in indices], pad_id).items()}
            sync = accelerator.no_sync(model) if k < len(batches) - 1 else contextlib.nullcontext()
            with sync:
                logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"])
                ref_logp = _reference_logprobs(config, model, reference, batch)
                loss, stats = grpo_loss(logp, ref_logp, batch, beta=config.beta, clip_eps=config.clip_eps,
                                        loss_type=config.loss_type, turns_total=len(rows),
                                        max_new_tokens=config.max_new_tokens,
                                        kl_estimator=config.kl_estimator)
                accelerator.backward(loss)
            totals["train/loss"] += float(loss.detach()) / config.updates_per_step
            for name in ("kl", "ratio", "clip_fraction"):
                totals[f"train/{name}"] += stats[name] * stats["tokens"]
            tokens += stats["tokens"]
        totals["train/grad_norm"] = float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm))
        optimizer.step()
    for name in ("kl", "ratio", "clip_fraction"):
        totals[f"train/{name}"] /= max(tokens, 1.0)
    totals["train/sequences"] = float(len(packed))
    return totals


def _reference_logprobs(config: GRPOConfig, model: Any, reference: Any, batch: dict[str, Any]) -> Any:
    if config.beta == 0:
        return None
    with torch.no_grad():
        if config.lora:
            with model.disable_adapter():
                return token_logprobs(model, batch["input_ids"], batch["attention_mask"])
        return token_logprobs(reference, batch["input_ids"], batch["attention_mask"])


def _fill_old_logprobs(model: Any, packed: list[Any], batches: list[list[int]], pad_id: int, device: Any) -> None:
    with torch.no_grad():
        for indices in batches:
            batch = collate([packed[i] for i in indices], pad_id)
            logp = token_logprobs(model, batch["input_ids"].to(device), batch["attention_mask"].to(device)).cpu()
            for row, i in enumerate(indices):
                packed[i].old_logprobs = logp[row, : len(packed[i].ids)].tolist()



# -- checkpoints -----------------------------------------------------------------------------------

def _save(config: GRPOConfig, step: int, model: Any, tokenizer: Any, optimizer: Any, accelerator: Any,
          rng: np.random.Generator) -> None:
    """Write ``out/checkpoint`` atomically (a kill leaves the previous one whole)."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    out = Path(config.out)
    tmp, final = out / "checkpoint.tmp", out / "checkpoint"
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.unwrap_model(model).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    state = {"step": step, "optimizer": optimizer.state_dict(), "numpy": rng.bit_generator.state,
             "torch": torch.get_rng_state(), "python": random.getstate()}
    torch.save(state, tmp / "trainer_state.pt")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def _resume(config: GRPOConfig, optimizer: Any, rng: np.random.Generator) -> int:
    """Restore optimizer and random states from ``out/checkpoint``; return its step (0 if none)."""
    path = Path(config.out) / "checkpoint" / "trainer_state.pt"
    if not path.exists():
        return 0
    state = torch.load(path, weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    return int(state["step"])


def _read_log(path: Path, upto: int) -> list[dict[str, Any]]:
    """Log lines of steps already done (a killed run may have logged past its checkpoint)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in lines if entry["step"] <= upto]


# -- the loop --------------------------------------------------------------------------------------

def train(config: GRPOConfig) -> list[dict[str, Any]]:
    """Run (or resume) step-wise GRPO; return the log, one dict per step.

    Writes ``out/log.jsonl`` (one line per step), ``out/tb`` (TensorBoard), ``out/checkpoint``
    (model, tokenizer, optimizer and random states of the latest saved step) and, at the end,
    ``out/model`` (the trained model in Hugging Face format).
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    set_torch_threads(config.threads)
    accelerator = Accelerator()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = config.seed * 1_000 + accelerator.process_index  # each process plays its own tasks
    torch.manual_seed(seed)
    random.seed(seed)
    rng = np.random.default_rng(seed)
    model, reference, tokenizer = _load(config, accelerator)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)
    if reference is not None:
        reference.to(accelerator.device)
    start = _resume(config, optimizer, rng)
    log = _read_log(out / "log.jsonl", start)
    if accelerator.is_main_process:
        (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
        (out / "log.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in log))
    writer = _tensorboard(config, out, start) if accelerator.is_main_process else None
    phase_length = -(-config.max_steps // len(config.curriculum))
    policy = _sampler(config, accelerator.unwrap_model(model), tokenizer)
    envs: RolloutEnvs | None = None
    phase = -1
    bar = tqdm(total=config.max_steps, initial=start, disable=not (config.progress and accelerator.is_main_process),
               desc="grpo", unit="step")
    try:
        for step in range(start + 1, config.max_steps + 1):
            if (step - 1) // phase_length != phase:  # curriculum: new stage subset, new envs
                if envs is not None:
                    envs.close()
                    envs = None
                phase = (step - 1) // phase_length
                envs = _envs(config, config.curriculum[phase])
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * min(1.0, step / max(config.warmup_steps, 1))
            began = time.perf_counter()
            model.eval()
            policy.seed = int(rng.integers(2**31))
            assert envs is not None
            rows, rewards, infos = collect_rollouts(envs, policy, tokenizer, rng, config.group_size,
                                                    config.tasks_per_step)
            rows = assign_advantages(config, rows, rewards)
            rollout_seconds = time.perf_counter() - began
            model.train()
            stats = _update(config, model, reference, optimizer, accelerator, rows, tokenizer.pad_token_id)
            entry = {"step": step, "stages": list(config.curriculum[phase]), **_episode_metrics(rewards, infos),
                     **stats, "train/turns": float(len(rows)), "train/processes": float(accelerator.num_processes),
                     "train/lr": optimizer.param_groups[0]["lr"],
                     "cost/completion_tokens": float(sum(len(r.completion_ids) for r in rows)),
                     "cost/rollout_seconds": rollout_seconds,
                     "cost/update_seconds": time.perf_counter() - began - rollout_seconds}
            log.append(entry)
            if accelerator.is_main_process:
                with (out / "log.jsonl").open("a") as f:
                    f.write(json.dumps(entry) + "\n")
                if writer is not None:
                    for name, value in entry.items():
                        if isinstance(value, float):
                            writer.add_scalar(name, value, step)
            if step % config.save_every == 0 or step == config.max_steps:
                _save(config, step, model, tokenizer, optimizer, accelerator, rng)
            bar.update(1)
            bar.set_postfix(reward=f"{entry['reward/total']:.3f}", score=f"{entry['task/score']:.2f}")
    finally:
        bar.close()
        if envs is not None:
            envs.close()
        if writer is not None:
            writer.close()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        if config.lora:
            final = final.merge_and_unload()
        final.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
    return log


def _tensorboard(config: GRPOConfig, out: Path, start: int) -> Any:
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("tensorboard is not installed; logging to log.jsonl only")
        return None
    return SummaryWriter(str(out / "tb"), purge_step=start + 1)
