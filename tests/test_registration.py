import json

import gymnasium as gym
import pytest
from conftest import SAMPLE_DATA
from gymnasium.utils.env_checker import check_env

import agemem_gym
from agemem_gym.errors import ConfigError, MissingExtraError, UnknownNameError
from agemem_gym.registration import env_id
from agemem_gym.tasks import BENCHMARKS, make_task_source

IDS = [
    "AgeMem/Assistant-v0",
    "AgeMem/HotpotQA-v0",
    "AgeMem/BabyAI-v0",
    "AgeMem/PDDL-v0",
    "AgeMem/SciWorld-v0",
    "AgeMem/ALFWorld-v0",
]


def test_every_benchmark_has_an_id():
    assert agemem_gym.ENV_IDS == IDS
    assert all(i in gym.registry for i in IDS)
    assert env_id("pddl") == "AgeMem/PDDL-v0" and env_id("mine", 2) == "AgeMem/mine-v2"


@pytest.mark.engine
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_check_env_on_every_registered_id(name, shared_data, tmp_path):
    options = {"data": str(SAMPLE_DATA[name])} if name in SAMPLE_DATA else {}
    # check_env resets without naming a task, which draws a training task
    if name == "alfworld":  # the sample data has no train games: split it
        options = {"data": str(split_alfworld(tmp_path))}
    if name == "hotpotqa":  # nor a train file: the sample's later examples stand in for one
        records = json.loads(SAMPLE_DATA[name].read_text(encoding="utf-8"))
        (tmp_path / "train.json").write_text(json.dumps(records[20:40]), encoding="utf-8")
        options.update(limit=20, train_data=str(tmp_path / "train.json"))
    try:
        env = gym.make(env_id(name), **options)
    except MissingExtraError as e:
        pytest.skip(str(e))
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def split_alfworld(root):
    """An ALFWorld data root whose first two sample games are 'train' and the rest 'valid'."""
    games = sorted((SAMPLE_DATA["alfworld"] / "json_2.1.1" / "valid_unseen").iterdir())
    for i, game in enumerate(games):
        split = "train" if i < 2 else "valid_unseen"
        (root / "json_2.1.1" / split).mkdir(parents=True, exist_ok=True)
        (root / "json_2.1.1" / split / game.name).symlink_to(game)
    return root


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown benchmark 'asistant'. Did you mean 'assistant'"):
        make_task_source("asistant")


def test_unknown_option_says_did_you_mean_and_lists_the_valid_ones():
    from agemem_gym.config import EnvConfig

    env_options = ", ".join(sorted(EnvConfig.__dataclass_fields__))
    with pytest.raises(ConfigError) as err:
        make_task_source("babyai", n_distractors=2)
    assert str(err.value) == (
        "unknown option 'n_distractors' for benchmark 'babyai'. Did you mean 'num_distractors'? "
        f"Benchmark options: data, max_steps, num_distractors, rules. Env options: {env_options}."
    )
    with pytest.raises(ConfigError, match="unknown option 'step_limit' for benchmark 'babyai'. "
                                          "Did you mean 'max_steps'?"):
        make_task_source("babyai", step_limit=10)
    # through gym.make: a misspelled env setting is caught the same way
    with pytest.raises(ConfigError, match="unknown option 'max_round' for benchmark 'assistant'. "
                                          "Did you mean 'max_rounds'?"):
        gym.make("AgeMem/Assistant-v0", max_round=3)
    with pytest.raises(ConfigError, match="unknown option 'num_fact' .* Did you mean 'num_facts'?"):
        gym.make("AgeMem/Assistant-v0", num_fact=3)
