import gymnasium as gym
import pytest
from conftest import SAMPLE_DATA
from gymnasium.utils.env_checker import check_env

import agemem_gym
from agemem_gym.errors import MissingExtraError, UnknownNameError
from agemem_gym.registration import env_id
from agemem_gym.tasks import TASK_SOURCES, make_task_source


def test_every_benchmark_has_an_id():
    assert [env_id(name) for name in TASK_SOURCES] == agemem_gym.ENV_IDS
    assert all(i in gym.registry for i in agemem_gym.ENV_IDS)


@pytest.mark.engine
@pytest.mark.parametrize("name", list(TASK_SOURCES))
def test_check_env_on_every_registered_id(name, shared_data):
    options = {"data": str(SAMPLE_DATA[name])} if name in SAMPLE_DATA else {}
    try:
        env = gym.make(env_id(name), **options)
    except MissingExtraError as e:
        pytest.skip(str(e))
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown benchmark 'asistant'. Did you mean 'assistant'"):
        make_task_source("asistant")
