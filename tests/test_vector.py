"""Gymnasium conventions a third-party user relies on: async vector envs as written, and
pickling or deep-copying a started env."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import pytest
from conftest import SAMPLE_DATA

import agemem_gym  # noqa: F401  (registers the envs)

ADD = ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "The user likes '
       'green tea."}}]</tool_call>')
RETRIEVE = '<tool_call>[{"name": "Retrieve_memory", "arguments": {"query": "tea"}}]</tool_call>'

_ASYNC = """
import gymnasium as gym, agemem_gym
{prelude}
venv = gym.make_vec("AgeMem/Assistant-v0", num_envs=4, vectorization_mode="async",
                    num_facts=3, num_distractors=1)
obs, info = venv.reset(seed=0)
assert isinstance(obs, tuple) and len(obs) == 4 and obs[0][0]["role"] == "system", obs
add = {add!r}
for _ in range(2):
    obs, reward, terminated, truncated, info = venv.step([add] * 4)
assert list(info["memory_size"]) == [2, 2, 2, 2], info["memory_size"]
assert obs[3][-1]["content"].startswith("Add_memory: Stored mem_"), obs[3][-1]
sync = gym.make_vec("AgeMem/Assistant-v0", num_envs=4, num_facts=3, num_distractors=1)
sync_obs, _ = sync.reset(seed=0)
for _ in range(2):
    sync_obs = sync.step([add] * 4)[0]
assert tuple(obs) == tuple(sync_obs)
venv.close()
sync.close()
print("async ok")
"""

_USE_AN_ENV_FIRST = f"""
env = gym.make("AgeMem/Assistant-v0", num_facts=3, num_distractors=1)
env.reset(seed=0)
env.step({ADD!r})
env.step({RETRIEVE!r})
"""


@pytest.mark.parametrize("prelude", ["", _USE_AN_ENV_FIRST], ids=["fresh", "after-using-an-env"])
def test_make_vec_async_works_as_written(prelude):
    # a subprocess, so "fresh" really is fresh and a hang cannot stall the suite
    script = _ASYNC.format(prelude=textwrap.dedent(prelude), add=ADD)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("async ok")


def test_a_started_env_pickles_and_deep_copies_with_its_memory():
    env = gym.make("AgeMem/Assistant-v0", num_facts=3, num_distractors=1)
    env.reset(seed=0)
    env.step(ADD)
    for make_copy in (lambda e: pickle.loads(pickle.dumps(e)), copy.deepcopy):
        clone = make_copy(env)
        copied, original = clone.step(RETRIEVE), env.step(RETRIEVE)
        assert copied[0] == original[0]  # the same next observation
        assert copied[4]["tool_results"][0]["text"].startswith("Found 1 memories:\n[mem_")
        clone.step(ADD)
        assert len(clone.unwrapped.ltm) == 2 and len(env.unwrapped.ltm) == 1  # independent
        clone.close()
    env.close()


def test_an_env_whose_engine_runs_refuses_to_be_copied_and_says_why():
    if not SAMPLE_DATA["babyai"].is_dir():
        pytest.skip("needs the BabyAI sample data")
    pytest.importorskip("minigrid")
    env = gym.make("AgeMem/BabyAI-v0", data=str(SAMPLE_DATA["babyai"]), stages=(3,))
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"^cannot pickle or copy this AgeMemEnv: its babyai "
                                        r"engine is running \(a separate process\)"):
        copy.deepcopy(env)
    env.close()


def test_make_vec_async_with_the_flat_text_wrapper():
    script = "import gymnasium as gym, agemem_gym\n" + textwrap.dedent(_USE_AN_ENV_FIRST) + \
        textwrap.dedent(f"""
        from agemem_gym.wrappers import FlatTextObservation
        venv = gym.make_vec("AgeMem/Assistant-v0", num_envs=2, vectorization_mode="async",
                            wrappers=[FlatTextObservation], num_facts=3, num_distractors=1)
        obs, _ = venv.reset(seed=0)
        obs = venv.step([{ADD!r}] * 2)[0]
        assert all(o.startswith("[m1] system:") and "Add_memory: Stored mem_" in o for o in obs)
        venv.close()
        print("flat ok")
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("flat ok")
