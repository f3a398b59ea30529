"""The BabyAI benchmark: text, progress, data, stage content, the minigrid engine, its expert."""

from __future__ import annotations

import doctest
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DATA, fake_agentboard_hub, replay_stage1, superseded

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.rollout import rollout
from agemem_gym.tasks.babyai import DATA_ENV_VAR, BabyAITasks
from agemem_gym.tasks.babyai import source as babyai_module
from agemem_gym.tasks.babyai import text as babyai_text
from agemem_gym.tasks.babyai.text import SubgoalTracker, mission_to_goal, parse_action

DATA_DIR = SAMPLE_DATA["babyai"]
needs_data = pytest.mark.skipif(not DATA_DIR.exists(), reason="BabyAI data folder not found")
SAMPLE = (0, 5, 13, 20, 24, 37, 43, 49, 57, 64, 70, 76, 81, 88, 93, 96, 104, 108)


@pytest.fixture(scope="module")
def source() -> Iterator[BabyAITasks]:
    tasks = BabyAITasks(data=DATA_DIR)
    yield tasks
    tasks.close()


@pytest.fixture
def engine(source: BabyAITasks):
    pytest.importorskip("minigrid")
    eng = source.make_engine()
    yield eng
    eng.close()


def _run_expert(engine, task) -> tuple[bool, float, int]:
    """Follow the expert until done or the step limit: (success, progress, actions)."""
    engine.reset(task)
    result, steps = None, 0
    while steps < engine.max_steps:
        action = engine.expert_action()
        if action is None:
            break
        result, steps = engine.step(action), steps + 1
        assert result.valid, (action, result.observation)
        if result.done:
            break
    return (bool(result and result.success), result.progress if result else 0.0, steps)


def _run_random(engine, task, seed: int, steps: int = 64) -> tuple[bool, float]:
    """Uniformly random primitive actions (the same seed gives the same actions)."""
    rng = np.random.default_rng(seed)
    engine.reset(task)
    result = None
    for _ in range(steps):
        result = engine.step(babyai_text.PRIMITIVE_ACTIONS[int(rng.integers(6))])
        if result.done:
            break
    return bool(result and result.success), result.progress if result else 0.0


# -- text -------------------------------------------------------------------------------------
def test_parse_action_accepts_the_six_actions_meta_and_synonyms() -> None:
    for action in babyai_text.PRIMITIVE_ACTIONS:
        assert parse_action(action) == action
        assert parse_action(f' "{action.upper()}." ') == action
    assert parse_action("Check available actions") == "check valid actions"
    assert parse_action("forward") == "move forward"
    assert parse_action("pickup") == "pick up"
    assert parse_action("go to red ball 1") is None
    assert parse_action("") is None


def test_mission_rewrite_matches_the_agentboard_goal_wording() -> None:
    assert mission_to_goal("open the red door, then open the blue door") == (
        "open the red door, and open the blue door"
    )
    assert mission_to_goal("open the blue door after you open the red door") == (
        "open the blue door and open the red door"
    )
    assert mission_to_goal("go to the red ball") == "go to the red ball"


def test_subgoal_tracker_credits_one_pattern_per_observation_and_keeps_the_max() -> None:
    tracker = SubgoalTracker(
        [
            "There is a red ball **",
            " There is a red ball ** right in front of you 1 steps away.",
        ]
    )
    both = "There is a red ball 1 right in front of you 1 steps away.  The room has walls."
    assert tracker.update("There is a grey key 1 right in front of you 2 steps away.") == 0.0
    assert tracker.update(both) == 0.5  # both match, only the first is credited
    assert tracker.update("You are not carrying anything.") == 0.5  # kept at its max
    assert tracker.update(both) == 1.0


def test_subgoal_pattern_pieces_must_share_one_sentence() -> None:
    tracker = SubgoalTracker([" There is a red ball ** right in front of you 1 steps away."])
    split = (
        "There is a red ball 1 3 steps in front of you. A key right in front of you 1 steps away."
    )
    assert tracker.update(split) == 0.0
    assert SubgoalTracker([]).update("anything") == 0.0


def test_text_module_doctests() -> None:
    result = doctest.testmod(babyai_text)
    assert result.attempted >= 4 and result.failed == 0


# -- data -------------------------------------------------------------------------------------
def test_missing_data_raises_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub_cache: Path
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    with pytest.raises(DataNotFoundError) as err:  # no data given, the hub unreachable
        len(BabyAITasks())
    assert str(err.value) == (
        "could not fetch data/babyai/test.jsonl of the hub dataset hkust-nlp/agentboard "
        "(LocalEntryNotFoundError); BabyAI needs its data: pass data=PATH (AgentBoard's "
        "agentboard_babyai/test.jsonl or a folder holding it) or set AGEMEM_BABYAI_DATA=PATH"
    )
    with pytest.raises(DataNotFoundError, match="BabyAI: nothing usable at data="):
        len(BabyAITasks(data=tmp_path))


def test_data_comes_from_the_hub_cache_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch, hub_cache: Path
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    fake_agentboard_hub(hub_cache, {"data/babyai/test.jsonl": DATA_DIR / "test.jsonl"})
    source = BabyAITasks()
    assert len(source) == 112
    assert source.level_and_seed(13) == ("BabyAI-GoToObjS6-v0", 1235)


def test_bad_options_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="max_steps must be a positive integer, got 0"):
        BabyAITasks(data=DATA_DIR, max_steps=0)


@needs_data
def test_data_from_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(DATA_DIR.parent))
    tasks = BabyAITasks()
    assert len(tasks) == 112 and tasks.task_metric == "progress"
    assert tasks.level_and_seed(13) == ("BabyAI-GoToObjS6-v0", 1235)


@needs_data
def test_class_doctest_runs() -> None:
    pytest.importorskip("minigrid")
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(BabyAITasks, globs={"DATA": DATA_DIR, "np": np, **vars(babyai_module)}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


# -- stage content ----------------------------------------------------------------------------

@needs_data
@pytest.mark.engine
def test_stage_content_is_consistent(source: BabyAITasks) -> None:
    pytest.importorskip("minigrid")
    for index in SAMPLE:
        task = source.get(index, np.random.default_rng(index))
        ops = [f.op for f in task.stage1]
        assert {"add", "update", "delete", "none"} <= set(ops), index
        assert list(task.supporting_facts) == replay_stage1(task.stage1)
        assert task.key_items and all(
            item in " ".join(task.supporting_facts) for item in task.key_items
        )
        stale = superseded(task.stage1)  # the rough hint and the retracted decoy
        assert len(stale) == 2 and not set(stale) & set(task.supporting_facts)
        assert 1 <= len(task.distractors) <= 4
        for distractor in task.distractors:  # near misses: never about a target
            assert not any(item in distractor for item in task.key_items), (index, distractor)


@needs_data
@pytest.mark.engine
def test_get_is_deterministic_and_rng_only_changes_wording(source: BabyAITasks) -> None:
    pytest.importorskip("minigrid")
    first = source.get(24, np.random.default_rng(3))
    assert first == source.get(24, np.random.default_rng(3))
    other = source.get(24, np.random.default_rng(4))
    assert other.metadata == first.metadata and other.key_items == first.key_items
    exact = [f for f in first.supporting_facts if f.startswith("The red ball")]
    assert exact and exact[0] in other.supporting_facts  # the true position never changes
    assert [f.message for f in first.stage1] != [f.message for f in other.stage1]
    with pytest.raises(IndexError, match="out of range 0..111"):
        source.get(112, np.random.default_rng(0))


@needs_data
@pytest.mark.engine
def test_exact_position_fact_is_true(source: BabyAITasks, engine) -> None:
    """Task 3: the red ball is 2 steps straight ahead at the start (the recorded view says so)."""
    task = source.get(3, np.random.default_rng(0))
    assert "There is a red ball 1 right in front of you 2 steps away." in engine.reset(task)
    assert "The red ball is 2 steps ahead from the start." in task.supporting_facts


# -- engine -----------------------------------------------------------------------------------
@needs_data
@pytest.mark.engine
def test_first_observation_and_mission_match_the_file_on_a_sample(source, engine) -> None:
    for index in SAMPLE:
        task = source.get(index, np.random.default_rng(0))
        assert engine.reset(task) == task.metadata["recorded_first_observation"], index
        assert task.metadata["mission"] == source._rows()[index]["goal"]


@needs_data
@pytest.mark.engine
def test_invalid_and_meta_actions_execute_nothing(source: BabyAITasks, engine) -> None:
    task = source.get(1, np.random.default_rng(0))
    first = engine.reset(task)
    bad = engine.step("fly to the moon")
    assert not bad.valid and not bad.done
    assert bad.observation.startswith("Invalid action: 'fly to the moon'. Valid actions are: ")
    assert "move forward" in bad.observation and "check valid actions" in bad.observation
    listing = engine.step("check valid actions")
    assert listing.valid and listing.observation == (
        "Valid actions are: turn left, turn right, move forward, check valid actions."
    )
    assert engine.step("turn left").observation != first
    assert engine.step("turn right").observation == first  # nothing else moved


@needs_data
@pytest.mark.engine
def test_ineffective_action_is_reported(source: BabyAITasks, engine) -> None:
    first = engine.reset(source.get(0, np.random.default_rng(0)))  # facing a wall 1 step away
    assert "move forward" not in engine.valid_actions()
    result = engine.step("move forward")
    assert result.valid and result.observation == (
        f"Nothing happened: the grey wall in front of you blocks the way. {first}"
    )
    assert engine.step("drop").observation.startswith("Nothing happened: you are not carrying")


@needs_data
@pytest.mark.engine
def test_same_actions_give_the_same_trajectory(source: BabyAITasks, engine) -> None:
    task = source.get(64, np.random.default_rng(0))
    runs = []
    for _ in range(2):
        engine.reset(task)
        rng = np.random.default_rng(7)
        runs.append(
            [
                engine.step(babyai_text.PRIMITIVE_ACTIONS[int(rng.integers(6))]).observation
                for _ in range(30)
            ]
        )
    assert runs[0] == runs[1]


@needs_data
@pytest.mark.engine
def test_expert_solves_a_sample_and_progress_reaches_one(source: BabyAITasks, engine) -> None:
    for index in SAMPLE:
        success, progress, steps = _run_expert(engine, source.get(index, np.random.default_rng(0)))
        assert success and progress == 1.0, (index, steps)
    after = engine.step("turn left")
    assert after.done and after.success and not after.valid
    assert engine.expert_action() is None and engine.valid_actions() == []


@needs_data
@pytest.mark.engine
def test_expert_recovers_after_the_agent_wandered(source: BabyAITasks, engine) -> None:
    """Actions the expert did not choose (or was not asked about) do not derail it."""
    for index in (5, 64, 88):
        task = source.get(index, np.random.default_rng(0))
        engine.reset(task)
        engine.expert_action()
        for action in ("turn left", "move forward", "turn left", "move forward", "turn right"):
            engine.step(action)
        result = None
        for _ in range(engine.max_steps):
            action = engine.expert_action()
            assert engine.expert_action() == action  # asking twice does not replan twice
            if action is None:
                break
            result = engine.step(action)
            if result.done:
                break
        assert result is not None and result.success, index


@needs_data
@pytest.mark.engine
def test_success_ends_with_completion_text(source: BabyAITasks, engine) -> None:
    task = source.get(3, np.random.default_rng(0))  # red ball 2 steps ahead
    engine.reset(task)
    result = engine.step("move forward")
    assert result.done and result.success and result.progress == 1.0
    assert result.observation.endswith("\n The task is completed.")


@needs_data
@pytest.mark.engine
def test_expert_gives_up_on_the_looping_level_within_its_budget(source, engine) -> None:
    """Task 100 (UnlockToUnlock, seed 1234): BabyAIBot's planner loops forever there."""
    task = source.get(100, np.random.default_rng(0))
    start = time.monotonic()
    success, _, steps = _run_expert(engine, task)
    assert not success and steps < 10
    assert time.monotonic() - start < 15


@needs_data
@pytest.mark.engine
def test_random_actions_score_far_below_the_expert(source: BabyAITasks, engine) -> None:
    scores = [_run_random(engine, source.get(i, np.random.default_rng(0)), seed=i) for i in SAMPLE]
    assert statistics.mean(float(s) for s, _ in scores) <= 0.4
    assert statistics.mean(p for _, p in scores) <= 0.6


@needs_data
@pytest.mark.engine
def test_check_env_and_oracle_episode_through_the_env(source: BabyAITasks) -> None:
    pytest.importorskip("minigrid")
    agemem_env = pytest.importorskip("agemem_gym.env")
    from gymnasium.utils.env_checker import check_env

    from agemem_gym.policies.scripted import OraclePolicy

    env = agemem_env.AgeMemEnv(tasks=source, privileged_info=True)
    try:
        check_env(env, skip_render_check=True)
        policy = OraclePolicy()
        for index in (3, 24):
            obs, info = env.reset(seed=index, options={"task_index": index})
            policy.reset()
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
                done = terminated or truncated
            assert info["metrics"]["success"] == 1.0, (index, info["metrics"])
            assert info["metrics"]["score"] == 1.0
    finally:
        env.close()


# -- full set (slow) --------------------------------------------------------------------------
@needs_data
@pytest.mark.engine
@pytest.mark.slow
def test_all_first_observations_and_missions_match_the_file(source, engine) -> None:
    rows = source._rows()
    for index in range(len(source)):
        task = source.get(index, np.random.default_rng(index))
        assert task.metadata["mission"] == rows[index]["goal"], index
        assert engine.reset(task) == rows[index]["additional_info"]["init_obs"], index


@needs_data
@pytest.mark.engine
@pytest.mark.slow
def test_expert_over_all_tasks(source: BabyAITasks, engine) -> None:
    results = {
        i: _run_expert(engine, source.get(i, np.random.default_rng(i))) for i in range(len(source))
    }
    failed = sorted(i for i, (success, _, _) in results.items() if not success)
    # 60, 62, 63: minigrid's strict two-door verifier fails any order; 100: the bot loops.
    assert failed == [60, 62, 63, 100]
    assert statistics.mean(float(s) for s, _, _ in results.values()) >= 0.95
    random = [
        _run_random(engine, source.get(i, np.random.default_rng(i)), seed=i, steps=256)
        for i in range(len(source))
    ]
    assert statistics.mean(float(s) for s, _ in random) <= 0.5


@needs_data
@pytest.mark.engine
@pytest.mark.slow
def test_oracle_stage3_only_over_all_tasks_through_the_env() -> None:
    pytest.importorskip("minigrid")
    agemem_env = pytest.importorskip("agemem_gym.env")
    from agemem_gym.policies.scripted import OraclePolicy

    env = agemem_env.AgeMemEnv(tasks=BabyAITasks(data=DATA_DIR), stages=(3,), privileged_info=True)
    policy, successes = OraclePolicy(), []
    try:
        for index in range(112):
            _, info = rollout(env, policy, seed=index, task_index=index)
            successes.append(info["metrics"]["success"])
    finally:
        env.close()
    assert statistics.mean(successes) >= 0.95


@needs_data
@pytest.mark.engine
def test_registered_id_passes_check_env() -> None:
    pytest.importorskip("minigrid")
    pytest.importorskip("agemem_gym.env")
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from agemem_gym.registration import register_envs
    from agemem_gym.tasks import TASK_SOURCES

    if "babyai" not in TASK_SOURCES:
        pytest.skip("the babyai line is not in TASK_SOURCES yet")
    register_envs()
    env = gym.make("AgeMem/BabyAI-v0", data=str(DATA_DIR))
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


# -- training pool ----------------------------------------------------------------------------
@needs_data
def test_training_tasks_are_the_same_levels_with_other_start_states(source: BabyAITasks) -> None:
    pytest.importorskip("minigrid")
    evaluation = [source.get(i, np.random.default_rng(0)) for i in range(len(source))]
    # the mission and where its targets are (the exact facts of stage 1) make a task
    seen = {(t.query, t.supporting_facts) for t in evaluation}
    levels = {t.metadata["level"] for t in evaluation}
    rng = np.random.default_rng(0)
    for _ in range(12):
        task = source.sample(rng)
        assert task.category == task.metadata["level"] in levels
        assert task.metadata["seed"] >= 1238 and task.metadata["subgoals"] == ()
        assert task.task_id not in {t.task_id for t in evaluation}
        assert (task.query, task.supporting_facts) not in seen
    assert source.training_split() == (
        "babyai: the 28 levels of the evaluation set, reset with seeds 1238..2**31-2 "
        "(evaluation: 1234..1237), minus any start state equal to an evaluation task's"
    )
