"""AgeMem envs served with OpenEnv on 127.0.0.1 and played through OpenEnv's own client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agemem_gym import AgeMemEnv
from agemem_gym.errors import ConfigError
from agemem_gym.policies import NoopPolicy, OraclePolicy
from agemem_gym.rollout import rollout

pytest.importorskip("openenv")
from websockets.exceptions import ConnectionClosed  # noqa: E402

from agemem_gym.integrations.openenv import (  # noqa: E402
    AgeMemAction,
    AgeMemEnvClient,
    make_app,
    play_remote,
    restore_info,
    serve,
)

README = Path(__file__).resolve().parents[1] / "README.md"
OPTIONS = {"num_facts": 2, "num_updates": 0, "num_deletes": 0, "num_distractors": 1}


def local(policy, task_index: int, **options):
    env = AgeMemEnv("assistant", **{**OPTIONS, **options})
    try:
        return rollout(env, policy, seed=0, task_index=task_index)
    finally:
        env.close()


def test_readme_openenv_example_plays_the_oracle_over_http():
    section = README.read_text().split("## Third-party RL", 1)[1].split("\n## ", 1)[0]
    example = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[1]
    namespace: dict = {}
    exec(compile(example, "README.md (OpenEnv)", "exec"), namespace)  # noqa: S102
    assert namespace["url"].startswith("http://127.0.0.1:")
    reward, info = namespace["reward"], namespace["info"]
    expected_reward, expected = local(OraclePolicy(), 0, privileged_info=True)
    assert info["metrics"]["score"] == 1.0
    assert reward == pytest.approx(expected_reward)
    assert info["reward_components"] == pytest.approx(expected["reward_components"])
    assert info["result"]["task_id"] == expected["task_id"]


def test_concurrent_sessions_keep_their_own_episodes():
    app = make_app("AgeMem/Assistant-v0", max_concurrent_envs=2, privileged_info=True, **OPTIONS)
    policies = [OraclePolicy(), OraclePolicy()]
    with serve(app) as url:
        clients = [AgeMemEnvClient(base_url=url).sync() for _ in range(2)]
        for client in clients:
            client.connect()
        try:
            results = [client.reset(seed=0, task_index=i) for i, client in enumerate(clients)]
            assert results[0].observation.info["task_id"] != results[1].observation.info["task_id"]
            while not all(r.done for r in results):  # one step each in turn: the sessions interleave
                for i, client in enumerate(clients):
                    if not results[i].done:
                        obs = results[i].observation
                        action = policies[i].act(tuple(obs.messages), restore_info(obs.info))
                        results[i] = client.step(AgeMemAction(text=action))
            # a third session is refused (the error, or the socket closed before it arrives)
            with pytest.raises((RuntimeError, ConnectionClosed)):
                extra = AgeMemEnvClient(base_url=url).sync()
                with extra:
                    extra.reset(seed=0)
        finally:
            for client in clients:
                client.close()
        # a finished session still answers; a new client then gets a session again
        reward, info = play_remote(url, NoopPolicy(), seed=0, task_index=1)
    for i, result in enumerate(results):
        expected_reward, expected = local(OraclePolicy(), i, privileged_info=True)
        assert result.reward == pytest.approx(expected_reward)
        assert result.observation.info["reward_components"] == pytest.approx(expected["reward_components"])
        assert result.observation.info["metrics"]["score"] == 1.0
    noop_reward, noop = local(NoopPolicy(), 1)
    assert reward == pytest.approx(noop_reward) and info["metrics"] == pytest.approx(noop["metrics"])


def test_make_app_checks_the_env_id_and_options():
    with pytest.raises(ConfigError, match="unknown env id 'AgeMem/Nope-v0'; registered AgeMem ids: "):
        make_app("AgeMem/Nope-v0")
    with pytest.raises(ConfigError, match="num_updates"):
        make_app("AgeMem/Assistant-v0", num_facts=1, num_updates=2)
