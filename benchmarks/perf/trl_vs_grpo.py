"""TRL's ``GRPOTrainer`` on whole AgeMem episodes against the project's step-wise GRPO, and the
lines of glue a user writes for TRL with and without :mod:`agemem_gym.integrations.trl`.

All three train the same tiny model (:func:`agemem_gym.llm.build_tiny_model`) on the same
three-stage ``assistant`` task (one fact, one distractor, compact prompt, at most two responses
per turn) for ``--steps`` steps of ``--tasks-per-step`` tasks x K = ``--group-size`` episodes,
sampling at temperature 1, ``--max-new-tokens`` per model turn, the same learning rate and beta:

- ``ours``: :func:`agemem_gym.training.grpo.train` (every model turn of every stretch trained);
- ``trl``: ``GRPOTrainer`` with ``rollout_func=AgeMemRollout`` (one stretch per episode trained:
  TRL takes one row per episode);
- ``trl_by_hand``: ``GRPOTrainer`` with a minimal hand-written ``rollout_func`` (no adapters),
  which can only train each episode's last model turn and must render, generate, step and score
  by itself.

It prints steps per second (wall time of the training call: rollouts and updates), the model
tokens trained (those with loss; TRL counts them in ``completions/mean_length``), and the non-blank, non-comment lines of the user code each TRL
variant needs (the functions ``trl_with_adapters`` and ``trl_by_hand`` below, counted from
their source). Needs the ``train`` and ``perf`` extras (``trl``, ``datasets``).

Usage: OMP_NUM_THREADS=1 python benchmarks/perf/trl_vs_grpo.py [--steps 4] [--group-size 4]
       [--tasks-per-step 2] [--max-new-tokens 24]
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agemem_gym.llm import build_tiny_model
from agemem_gym.training.grpo import GRPOConfig, train

ENV_OPTIONS: dict[str, Any] = {"num_facts": 1, "num_queried": 1, "num_updates": 0, "num_deletes": 0,
                               "small_talk": 0, "num_distractors": 1, "prompt": "compact",
                               "max_steps_per_turn": 2}


def ours(args: argparse.Namespace, model: str, out: str) -> dict[str, float]:
    config = GRPOConfig(model=model, out=out, env_options=ENV_OPTIONS, group_size=args.group_size,
                        tasks_per_step=args.tasks_per_step, max_steps=args.steps, max_new_tokens=args.max_new_tokens,
                        learning_rate=args.learning_rate, beta=args.beta, save_every=10**6, progress=False,
                        tensorboard=False, seed=args.seed, threads=1)
    began = time.perf_counter()
    log = train(config)
    seconds = time.perf_counter() - began
    tokens = sum(entry["cost/completion_tokens"] for entry in log)
    return {"seconds": seconds, "steps_per_second": args.steps / seconds, "trained_tokens": tokens,
            "rollout_seconds_per_step": sum(e["cost/rollout_seconds"] for e in log) / len(log),
            "update_seconds_per_step": sum(e["cost/update_seconds"] for e in log) / len(log)}


def _trl_config(args: argparse.Namespace, out: str) -> Any:
    from trl import GRPOConfig as TRLConfig

    return TRLConfig(output_dir=out, per_device_train_batch_size=args.group_size * args.tasks_per_step,
                     num_generations=args.group_size, max_steps=args.steps, learning_rate=args.learning_rate,
                     beta=args.beta, temperature=1.0, use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                     logging_steps=1, seed=args.seed)


# -- what a user writes (counted) ------------------------------------------------------------------

def trl_with_adapters(model: str, config: Any, max_new_tokens: int) -> tuple[Any, Any]:
    from trl import GRPOTrainer

    from agemem_gym.integrations.trl import AgeMemRollout, env_reward, task_dataset

    rollout = AgeMemRollout("assistant", env_options=ENV_OPTIONS, max_new_tokens=max_new_tokens)
    trainer = GRPOTrainer(model=model, args=config, train_dataset=task_dataset(64), reward_funcs=env_reward,
                          rollout_func=rollout)
    trainer.train()
    rollout.close()
    return trainer, rollout


def trl_by_hand(model: str, config: Any, max_new_tokens: int) -> tuple[Any, Any]:
    import gymnasium as gym
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    import agemem_gym  # noqa: F401 - registers the envs

    dataset = Dataset.from_list([{"prompt": str(seed)} for seed in range(64)])  # the prompt names the task
    envs: list[Any] = []

    def rollout_func(prompts: list[str], trainer: Any) -> dict[str, list[Any]]:
        policy, tokenizer = trainer.accelerator.unwrap_model(trainer.model), trainer.processing_class
        while len(envs) < len(prompts):
            envs.append(gym.make("AgeMem/Assistant-v0", **ENV_OPTIONS))
        out: dict[str, list[Any]] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_reward": []}
        for env, prompt in zip(envs, prompts, strict=False):
            observation, info = env.reset(seed=int(prompt))
            done = False
            while not done:
                messages = [{"role": m["role"], "content": m["content"]} for m in observation]  # drop ids
                text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                ids = tokenizer.encode(text, add_special_tokens=False)
                with torch.no_grad():
                    gen = policy.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                          max_new_tokens=max_new_tokens, do_sample=True, temperature=1.0, top_k=0,
                                          eos_token_id=tokenizer.eos_token_id, output_logits=True,
                                          return_dict_in_generate=True)
                new = gen.sequences[0, len(ids):].tolist()
                logp = torch.log_softmax(torch.stack(gen.logits, 1)[0].float(), -1)
                logprobs = logp.gather(1, torch.tensor(new)[:, None]).squeeze(1).tolist()
                action = tokenizer.decode(new, skip_special_tokens=True)
                observation, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            # one row per episode: only the last turn is safe to train (earlier context was rewritten)
            out["prompt_ids"].append(ids)
            out["completion_ids"].append(new)
            out["logprobs"].append(logprobs)
            out["env_reward"].append(float(reward))
        return out

    def env_reward(completions: list[Any], env_reward: list[float], **_: Any) -> list[float]:
        return env_reward

    trainer = GRPOTrainer(model=model, args=config, train_dataset=dataset, reward_funcs=env_reward,
                          rollout_func=rollout_func)
    trainer.train()
    for env in envs:
        env.close()
    return trainer, None


# -- measurement -------------------------------------------------------------------------------------

def glue_lines(function: Any) -> int:
    """Non-blank, non-comment lines of a function's body (the ``def`` line and returns of the
    measurement left out)."""
    lines = inspect.getsource(function).splitlines()[1:]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith(("#", "return trainer")))


def trl(args: argparse.Namespace, model: str, out: str, user: Any) -> dict[str, float]:
    config = _trl_config(args, out)
    began = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # TRL prints its logs; stdout is the result
        trainer, rollout = user(model, config, args.max_new_tokens)
    seconds = time.perf_counter() - began
    trained = sum(e["completions/mean_length"] * config.per_device_train_batch_size
                  for e in trainer.state.log_history if "completions/mean_length" in e)
    steps = [e["step_time"] for e in trainer.state.log_history if "step_time" in e]
    result = {"seconds": seconds, "steps_per_second": args.steps / seconds, "trained_tokens": trained,
              "seconds_per_step_in_trl_log": sum(steps) / max(len(steps), 1), "glue_lines": glue_lines(user)}
    if rollout is not None:
        result["played_tokens_last_step"] = sum(len(t.completion_ids) for e in rollout.last_episodes for t in e.turns)
        result["trained_tokens_last_step"] = sum(sum(r.completion_mask) for r in rollout.last_rows)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--tasks-per-step", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["ours", "trl", "trl_by_hand"], action="append")
    args = parser.parse_args()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    variants = args.only or ["ours", "trl", "trl_by_hand"]
    result: dict[str, Any] = {"settings": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_model(Path(tmp) / "model"))
        for name in variants:
            out = str(Path(tmp) / name)
            if name == "ours":
                result[name] = ours(args, model, out)
            else:
                result[name] = trl(args, model, out, trl_with_adapters if name == "trl" else trl_by_hand)
    if "ours" in result and "trl" in result:
        result["ratio_steps_per_second_trl_over_ours"] = result["trl"]["steps_per_second"] / result["ours"]["steps_per_second"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
