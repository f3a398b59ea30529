"""The README's TRL example, run as written: TRL's GRPOTrainer trains the tiny model on CPU with
episodes played by AgeMemRollout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from agemem_gym.errors import ConfigError

pytest.importorskip("trl")
pytest.importorskip("datasets")

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_examples() -> list[str]:
    """The python blocks of the README's "Third-party RL" section, in order."""
    section = README.read_text().split("## Third-party RL", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """TRL's trainer sets accelerate's process-wide state (its precision among it); later
    trainers in the same process must not inherit it."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def test_readme_trl_example_trains_on_env_rewards_with_seen_context_only(monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    namespace: dict = {}
    exec(compile(readme_examples()[0], "README.md (TRL)", "exec"), namespace)  # noqa: S102
    trainer, rollout = namespace["trainer"], namespace["rollout"]

    # parameters changed
    before = AutoModelForCausalLM.from_pretrained(namespace["model"])
    after = dict(trainer.model.named_parameters())
    changed = [n for n, p in before.named_parameters() if not torch.equal(p, after[n].detach().cpu())]
    assert changed, "no parameter changed"

    # rewards come from the env: the trainer's reward of the last step is the mean final reward
    # of the episodes played for it, and each is the env's own total
    logged = [e for e in trainer.state.log_history if "rewards/env_reward/mean" in e]
    assert len(logged) == 2
    episodes = rollout.last_episodes
    assert len(episodes) == 4
    assert logged[-1]["rewards/env_reward/mean"] == pytest.approx(np.mean([e.reward for e in episodes]), abs=1e-5)
    for e in episodes:
        assert e.reward == e.info["reward_components"]["total"]
    assert logged[-1]["env/task"] == pytest.approx(np.mean([e.components["task"] for e in episodes]), abs=1e-5)

    # a GRPO group played one task
    tasks = [e.info["task_id"] for e in episodes]
    assert tasks[0] == tasks[1] and tasks[2] == tasks[3]

    # no training row holds context the model did not see: every model turn in a row was given
    # exactly the row's tokens before it, and only the model's tokens carry loss
    for row, episode in zip(rollout.last_rows, episodes, strict=True):
        assert row.turns
        for k in row.turns:
            turn = episode.turns[k]
            n = len(turn.prompt_ids)
            assert row.ids[:n] == turn.prompt_ids
            assert row.ids[n:n + len(turn.completion_ids)] == turn.completion_ids
        assert sum(row.completion_mask) == sum(len(episode.turns[k].completion_ids) for k in row.turns)
        stages = {episode.turns[k].stage for k in row.turns}
        assert not (1 in stages and stages & {2, 3}), "a row crossed the stage-1 reset"


def test_task_prompts_and_their_errors():
    from agemem_gym.integrations.trl import (
        AgeMemRollout,
        env_reward,
        parse_task_prompt,
        task_dataset,
    )

    assert list(task_dataset(task_indices=[0, 3])["prompt"]) == ['AgeMem task {"seed": 0, "task_index": 0}',
                                                          'AgeMem task {"seed": 0, "task_index": 3}']
    with pytest.raises(ConfigError, match="expected a task prompt like 'AgeMem task {\"seed\": 0}', got 'hello'"):
        parse_task_prompt("hello")
    with pytest.raises(ConfigError, match="give task_dataset either num_tasks"):
        task_dataset(3, task_indices=[1])
    with pytest.raises(ConfigError, match="pass rollout_func=AgeMemRollout"):
        env_reward(["x"])
    with pytest.raises(ConfigError, match="row must be 'random', 'first' or 'last', got 'all'"):
        AgeMemRollout(row="all")  # type: ignore[arg-type]
