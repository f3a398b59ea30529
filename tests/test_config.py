"""Settings are checked when the env or the run is made; errors name setting, value, range."""

import gymnasium as gym
import pytest

import agemem_gym  # noqa: F401  (registers the envs)
from agemem_gym.config import EnvConfig
from agemem_gym.errors import ConfigError, UnknownNameError
from benchmarks.runner import RunConfig


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stages": "banana"}, "stages must be an increasing subset of (1, 2, 3), such as (3,) or "
         "(1, 2, 3), got 'banana' (str)"),
        ({"stages": (3, 1)}, "stages must be an increasing subset of (1, 2, 3), such as (3,) or "
         "(1, 2, 3), got (3, 1) (tuple)"),
        ({"judge": "nope"}, 'judge must be None (the deterministic default), a Judge, or '
         '{"model": ..., "backend": ...} naming an LLM, got \'nope\' (str)'),
        ({"summarizer": "nope"}, 'summarizer must be None (the deterministic default), a '
         'Summarizer, or {"model": ..., "backend": ...} naming an LLM, got \'nope\' (str)'),
        ({"summarizer": {"backend": "openai"}}, 'summarizer must be None (the deterministic '
         'default), a Summarizer, or {"model": ..., "backend": ...} naming an LLM; the "model" '
         "entry is missing or empty in {'backend': 'openai'} (dict)"),
        ({"format_penalty": "x"}, "format_penalty must be a number >= 0.0, got 'x' (str)"),
        ({"format_penalty": -1}, "format_penalty must be a number >= 0.0, got -1 (int)"),
        ({"max_steps_per_turn": 0}, "max_steps_per_turn must be an integer >= 1, got 0 (int)"),
        ({"max_tool_calls_per_step": 2.5},
         "max_tool_calls_per_step must be an integer >= 1, got 2.5 (float)"),
        ({"max_rounds": "many"}, "max_rounds must be an integer >= 1 or None, got 'many' (str)"),
        ({"token_budget": True}, "token_budget must be an integer >= 1 or None, got True (bool)"),
        ({"filter_threshold": 0}, "filter_threshold must be a number in (0.0, 1.0], got 0 (int)"),
        ({"store_timeout": 0}, "store_timeout must be a number > 0.0, got 0 (int)"),
        ({"store_retries": -1}, "store_retries must be an integer >= 0, got -1 (int)"),
        ({"prompt": "compakt"}, "prompt must be one of 'full', 'compact', got 'compakt' (str). "
         "Did you mean 'compact'?"),
        ({"reward_mode": "answer"},
         "reward_mode must be one of 'full', 'task', 'official', got 'answer' (str)"),
        ({"auto_retrieve": "yes"}, "auto_retrieve must be true or false, got 'yes' (str)"),
        ({"tools": ["Add_memroy"]}, "unknown tools entry 'Add_memroy'. Did you mean 'Add_memory'? "
         "The tools are Add_memory, Update_memory, Delete_memory, Retrieve_memory, "
         "Summary_context, Filter_context"),
        ({"reward_weights": {"taks": 1.0}},
         "reward_weights has no weight 'taks'; the weights are task, context, memory"),
        ({"reward_weights": {"task": "high"}},
         "reward_weights.task must be a number >= 0.0, got 'high' (str)"),
    ],
)
def test_bad_env_settings_fail_at_make_naming_setting_value_and_range(options, message):
    with pytest.raises(ConfigError) as e:
        gym.make("AgeMem/Assistant-v0", **options)
    assert str(e.value) == message
    if "stages" not in options:  # the same at the run level, before any folder is made
        with pytest.raises(ConfigError):
            RunConfig(env="assistant", agent="oracle", out="unused", env_options=options)


def test_unknown_names_get_did_you_mean():
    with pytest.raises(UnknownNameError, match=r"unknown encoder 'minilmm'. Did you mean 'minilm'"):
        EnvConfig(encoder="minilmm")
    with pytest.raises(UnknownNameError, match=r"unknown judge backend 'opnai'. Did you mean 'openai'"):
        EnvConfig(judge={"model": "m", "backend": "opnai"})


def test_text_forms_of_good_values_are_read():
    config = EnvConfig(stages="2,3", max_rounds="40", format_penalty="0.1", auto_retrieve="true",
                       tools="Add_memory,Retrieve_memory")
    assert (config.stages, config.max_rounds, config.format_penalty, config.auto_retrieve,
            config.tools) == ((2, 3), 40, 0.1, True, ("Add_memory", "Retrieve_memory"))
    assert EnvConfig(stages=3).stages == (3,)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stages": "banana"}, "stages must be an increasing subset of (1, 2, 3), such as (3,) or "
         "(1, 2, 3), got 'banana' (str)"),
        ({"concurrency": 0}, "concurrency must be an integer >= 1, got 0 (int)"),
        ({"episodes": "ten"}, "episodes must be an integer >= 1 or None, got 'ten' (str)"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1 (int)"),
        ({"overwrite": "please"}, "overwrite must be true or false, got 'please' (str)"),
    ],
)
def test_bad_run_settings_name_the_setting(tmp_path, options, message):
    with pytest.raises(ConfigError) as e:
        RunConfig(env="assistant", agent="oracle", out=tmp_path / "run", **options)
    assert str(e.value) == message
    assert not (tmp_path / "run").exists()
