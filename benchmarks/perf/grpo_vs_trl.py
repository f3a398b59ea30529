"""Training throughput of our step-wise GRPO against TRL's ``GRPOTrainer``, in one run.

Both train the same tiny model (:func:`agemem_gym.llm.build_tiny_model`) for the same number of
steps on the same single-turn prompts: the stage-3 question of ``AgeMem/Assistant-v0`` (small
setting, compact system prompt), K = ``--group-size`` completions per prompt,
``--tasks-per-step`` prompts per step, the same completion limit, learning rate and beta, one
optimizer step per generation batch, sampling at temperature 1. Ours plays each completion
through the env (``stages=(3,)``, one response per turn); TRL gets the rendered prompts as a
dataset and the Assistant score as its reward function.

Throughput is completion tokens per second of wall time (rollouts and updates together),
because a random model's completions end at different lengths in the two trainers (ours stops
at ``</answer>``/``</tool_call>``, TRL at the end-of-turn token). It prints both and the ratio
ours / TRL. Needs the ``train`` and ``perf`` extras (``trl``).

Usage: python benchmarks/perf/grpo_vs_trl.py [--steps 4] [--group-size 8] [--tasks-per-step 2]
       [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agemem_gym import AgeMemEnv
from agemem_gym.llm import build_tiny_model
from agemem_gym.training.grpo import GRPOConfig, train

ENV_OPTIONS: dict[str, Any] = {"num_facts": 2, "num_updates": 0, "num_deletes": 0, "small_talk": 0,
                               "num_distractors": 0, "num_queried": 1, "prompt": "compact",
                               "max_steps_per_turn": 1}


def ours(args: argparse.Namespace, model: Path, out: Path) -> dict[str, float]:
    config = GRPOConfig(model=str(model), out=str(out), env_options=ENV_OPTIONS, curriculum=((3,),),
                        group_size=args.group_size, tasks_per_step=args.tasks_per_step, max_steps=args.steps,
                        max_new_tokens=args.max_new_tokens, learning_rate=args.learning_rate, beta=args.beta,
                        save_every=10**6, progress=False, tensorboard=False, seed=args.seed)
    began = time.perf_counter()
    log = train(config)
    seconds = time.perf_counter() - began
    tokens = sum(entry["cost/completion_tokens"] for entry in log)
    return {"seconds": seconds, "completion_tokens": tokens, "tokens_per_second": tokens / seconds}


def _prompts(count: int) -> tuple[list[list[dict[str, str]]], list[Any]]:
    env = AgeMemEnv("assistant", stages=(3,), privileged_info=True, **ENV_OPTIONS)
    prompts, tasks = [], []
    rng = np.random.default_rng(0)
    for _ in range(count):
        observation, info = env.reset(seed=int(rng.integers(2**31)), options={"task": env.source.sample(rng)})
        prompts.append([{"role": m["role"], "content": m["content"]} for m in observation])
        tasks.append(info["task"])
    source = env.source
    env.close()
    return prompts, [source, tasks]


def trl(args: argparse.Namespace, model: Path, out: Path) -> dict[str, float]:
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    prompts, (source, tasks) = _prompts(args.steps * args.tasks_per_step)
    dataset = Dataset.from_list([{"prompt": p, "task": i} for i, p in enumerate(prompts)])
    completion_tokens = [0]
    tokenizer = AutoTokenizer.from_pretrained(model)

    def score(completions: list[Any], task: list[int], **_: Any) -> list[float | None]:
        rewards: list[float | None] = []
        for completion, index in zip(completions, task, strict=True):
            text = completion[0]["content"] if isinstance(completion, list) else completion
            completion_tokens[0] += len(tokenizer.encode(text, add_special_tokens=False))
            answer = text.split("<answer>")[-1].split("</answer>")[0]
            rewards.append(source.score(tasks[index], answer)["score"])
        return rewards

    config = TRLConfig(output_dir=str(out), per_device_train_batch_size=args.group_size * args.tasks_per_step,
                       num_generations=args.group_size, max_completion_length=args.max_new_tokens,
                       learning_rate=args.learning_rate, beta=args.beta, max_steps=args.steps,
                       num_iterations=1, temperature=1.0, use_cpu=True, report_to="none", save_strategy="no",
                       logging_steps=1, seed=args.seed, bf16=False, shuffle_dataset=False)
    trainer = GRPOTrainer(model=str(model), reward_funcs=score, args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "completion_tokens": float(completion_tokens[0]),
            "tokens_per_second": completion_tokens[0] / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--tasks-per-step", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "model")
        result: dict[str, Any] = {"ours": ours(args, model, Path(tmp) / "ours"), "trl": trl(args, model, Path(tmp) / "trl")}
    result["ratio_tokens_per_second"] = result["ours"]["tokens_per_second"] / result["trl"]["tokens_per_second"]
    result["settings"] = vars(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
