"""ALFWorld benchmark: game parsing, stage content, progress rate, the engine and its expert."""

from __future__ import annotations

import doctest
import hashlib
import importlib.util
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DATA, replay_stage1, superseded

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.rollout import rollout
from agemem_gym.tasks.alfworld import ALFWorldTasks
from agemem_gym.tasks.alfworld import source as alfworld_module
from agemem_gym.tasks.alfworld.engine import ALFWorldEngine, normalize_action
from agemem_gym.tasks.alfworld.game import base_type, display_names, parse_game_dir
from agemem_gym.tasks.alfworld.progress import MilestoneTracker, milestones
from agemem_gym.tasks.base import NoTrainingDataError

#: The 134 unseen games (``../shared/data/alfworld``; AGEMEM_SHARED_DATA moves it).
DATA_DIR = SAMPLE_DATA["alfworld"]
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "json_2.1.1").is_dir(), reason=f"ALFWorld games not found at {DATA_DIR}"
)
#: One game per task family (indices into the sorted valid_unseen list).
FAMILY_SAMPLE = (0, 20, 40, 60, 90, 120)


def _engine_packages() -> None:
    pytest.importorskip("textworld")
    # find, do not import: importing alfworld outside the engine's guard creates a cache folder
    if importlib.util.find_spec("alfworld") is None:
        pytest.skip("alfworld is not installed (extra [alfworld])")


@pytest.fixture(scope="module")
def source() -> ALFWorldTasks:
    if not (DATA_DIR / "json_2.1.1").is_dir():
        pytest.skip(f"ALFWorld games not found at {DATA_DIR}")
    return ALFWorldTasks(data=DATA_DIR)


@pytest.fixture(scope="module")
def engine():
    _engine_packages()
    eng = ALFWorldEngine()
    yield eng
    eng.close()


def _snapshot(root: Path) -> str:
    listing = sorted(
        f"{p.relative_to(root)} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in root.rglob("*")
    )
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()


def _play_expert(engine: ALFWorldEngine, task, prefix: tuple[str, ...] = ()):
    engine.reset(task)
    result, progress = None, []
    for action in prefix:
        result = engine.step(action)
        progress.append(result.progress)
    while result is None or not result.done:
        if len(progress) >= engine.max_steps:
            break
        action = engine.expert_action()
        assert action is not None
        result = engine.step(action)
        progress.append(result.progress)
    return result, progress


# -- pure helpers -----------------------------------------------------------------------------
def test_display_names_number_each_base_name_in_descending_id_order() -> None:
    ids = [
        "Drawer_bar__minus_02_dot_07_bar__plus_00_dot_74",
        "Drawer_bar__minus_00_dot_51_bar__plus_00_dot_47",
        "Drawer_bar__minus_02_dot_07_bar__plus_00_dot_21",
        "Sink_bar__minus_00_dot_70_bar__plus_00_dot_93_bar_SinkBasin",
        "Mug_bar__plus_01_dot_00",
    ]
    names = display_names(ids)
    assert names["drawer_bar__minus_00_dot_51_bar__plus_00_dot_47"] == "drawer 3"
    assert names["drawer_bar__minus_02_dot_07_bar__plus_00_dot_21"] == "drawer 2"
    assert names["drawer_bar__minus_02_dot_07_bar__plus_00_dot_74"] == "drawer 1"
    assert names["sink_bar__minus_00_dot_70_bar__plus_00_dot_93_bar_sinkbasin"] == "sinkbasin 1"
    assert names["mug_bar__plus_01_dot_00"] == "mug 1"
    assert base_type("sinkbasin 1") == "sinkbasin"


def test_parse_game_dir_and_bad_names() -> None:
    assert parse_game_dir("pick_clean_then_place_in_recep-Bowl-None-Cabinet-10") == (
        "pick_clean_then_place_in_recep", "bowl", "", "cabinet",
    )  # fmt: skip
    with pytest.raises(DataNotFoundError, match="is not named <task_type>"):
        parse_game_dir("some-other-dir")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Go to Cabinet 1. ", "go to cabinet 1"),
        ("'take mug 1 from desk 1'", "take mug 1 from desk 1"),
        ("put mug 1 in/on cabinet 2", "move mug 1 to cabinet 2"),
        ("put mug 1 on desk 1", "move mug 1 to desk 1"),
        ("check   valid actions", "check valid actions"),
    ],
)
def test_normalize_action(text: str, expected: str) -> None:
    assert normalize_action(text) == expected


def test_milestones_per_family() -> None:
    assert [m.describe() for m in milestones("pick_heat_then_place_in_recep", "mug", "cabinet")] == [
        "take mug", "go microwave", "heat mug", "go cabinet", "move mug/cabinet",
    ]  # fmt: skip
    assert len(milestones("pick_two_obj_and_place", "cd", "safe")) == 6
    assert [m.verb for m in milestones("look_at_obj_in_light", "cd", "desklamp")] == ["take", "use"]


def test_tracker_counts_in_order_and_needs_a_second_object() -> None:
    plan = milestones("pick_two_obj_and_place", "cd", "safe")
    tracker = MilestoneTracker(plan, "cd")
    tracker.observe("go to safe 1")  # not holding a cd: no progress
    assert tracker.progress == 0.0
    for command in ("take cd 1 from desk 1", "go to safe 1", "move cd 1 to safe 1"):
        tracker.observe(command)
    assert tracker.progress == pytest.approx(3 / 6)
    tracker.observe("take cd 1 from safe 1")  # the same cd again does not count
    assert tracker.progress == pytest.approx(3 / 6)
    tracker.observe("move cd 1 to safe 1")
    for command in ("take cd 2 from shelf 1", "go to safe 1", "move cd 2 to safe 1"):
        tracker.observe(command)
    assert tracker.progress == 1.0


def test_missing_data_directory_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist: pass data=.*alfworld-download"):
        len(ALFWorldTasks(data=tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="no ALFWorld games"):
        len(ALFWorldTasks(data=tmp_path))


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="num_distractors must be >= 0, got -1"):
        ALFWorldTasks(data="x", num_distractors=-1)
    with pytest.raises(ConfigError, match="max_steps must be >= 1, got 0"):
        ALFWorldTasks(data="x", max_steps=0)
    with pytest.raises(TypeError):
        ALFWorldTasks("positional")  # type: ignore[misc]


def test_engine_without_reset_reports_instead_of_raising() -> None:
    result = ALFWorldEngine().step("look")
    assert result.done and not result.valid


# -- data and stage content -------------------------------------------------------------------
@needs_data
def test_class_doctest_runs() -> None:
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(
        ALFWorldTasks, globs={"DATA": DATA_DIR, "np": np, **vars(alfworld_module)}
    ):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


@needs_data
def test_evaluation_set_and_families(source: ALFWorldTasks) -> None:
    assert len(source) == 134
    families = [source.spec(i).task_type for i in range(len(source))]
    assert {f: families.count(f) for f in set(families)} == {
        "pick_and_place_simple": 24, "look_at_obj_in_light": 18,
        "pick_clean_then_place_in_recep": 31, "pick_heat_then_place_in_recep": 23,
        "pick_cool_then_place_in_recep": 21, "pick_two_obj_and_place": 17,
    }  # fmt: skip
    assert max(len(source.spec(i).walkthrough) for i in range(len(source))) <= 9


@needs_data
def test_split_directory_can_be_given_directly() -> None:
    assert len(ALFWorldTasks(data=DATA_DIR / "json_2.1.1" / "valid_unseen")) == 134


@needs_data
def test_walkthrough_takes_agree_with_the_parsed_initial_state(source: ALFWorldTasks) -> None:
    for index in range(len(source)):
        spec = source.spec(index)
        for action in spec.walkthrough:
            if action.startswith("take "):
                obj, rec = action[5:].split(" from ")
                assert spec.kinds.get(obj) == "object" and spec.kinds.get(rec) == "receptacle"
                assert base_type(obj) == spec.object_type



@needs_data
@pytest.mark.parametrize("index", FAMILY_SAMPLE)
def test_stage_content(source: ALFWorldTasks, index: int) -> None:
    task = source.get(index, np.random.default_rng(index))
    spec = source.spec(index)
    ops = [f.op for f in task.stage1]
    assert ops[0] == "add" and "update" in ops and "delete" in ops and "none" in ops
    assert ops.index("update") > 0 and ops.index("delete") > ops.index("add", 1)
    assert list(task.supporting_facts) == replay_stage1(task.stage1)
    # the corrected location is the true one; the outdated one is not
    obj, rec = next(a[5:].split(" from ") for a in spec.walkthrough if a.startswith("take "))
    update = next(f for f in task.stage1 if f.op == "update")
    assert update.key == obj and update.content.endswith(rec) and rec in update.message
    [stale] = superseded([f for f in task.stage1 if f.key == obj])
    old = stale.split(" ", 3)[-1]  # "bowl 1 is in cabinet 4" -> "cabinet 4"
    assert stale == task.stage1[0].content and old not in spec.placement[obj]
    assert stale not in task.supporting_facts
    # distractors: true placements of objects of other types
    assert len(task.distractors) == 4
    assert all(spec.object_type + " " not in d for d in task.distractors)
    assert task.key_items and all(k in task.query.lower() for k in task.key_items)
    assert task.metadata["game_file"].endswith("game.tw-pddl")


@needs_data
def test_same_seed_same_task_other_seed_other_wording(source: ALFWorldTasks) -> None:
    a, b = (source.get(7, np.random.default_rng(3)) for _ in range(2))
    assert a == b
    others = {source.get(7, np.random.default_rng(s)).stage1 for s in range(6)}
    assert len(others) > 1
    assert {source.get(7, np.random.default_rng(s)).query for s in range(3)} == {a.query}


@needs_data
def test_every_game_builds_a_task(source: ALFWorldTasks) -> None:
    rng = np.random.default_rng(0)
    for index in range(len(source)):
        task = source.get(index, rng)
        assert task.supporting_facts and len(task.stage1) >= 5


# -- engine -----------------------------------------------------------------------------------
@needs_data
@pytest.mark.engine
def test_invalid_and_meta_actions(source: ALFWorldTasks, engine) -> None:
    engine.reset(source.get(0, np.random.default_rng(0)))
    bad = engine.step("fly to the moon")
    assert bad.observation == "Nothing happens." and not bad.valid and not bad.done
    listing = engine.step("Check valid actions.")
    assert listing.valid and "go to desk 2" in listing.observation
    assert "help" not in engine.valid_actions()
    assert engine.expert_action() == "go to desk 2"  # neither action left the walkthrough


@needs_data
@pytest.mark.engine
@pytest.mark.parametrize("index", (0, 40))
def test_expert_wins_and_progress_only_grows(source: ALFWorldTasks, engine, index: int) -> None:
    task = source.get(index, np.random.default_rng(0))
    result, progress = _play_expert(engine, task)
    assert result.success and result.done and result.progress == 1.0
    assert progress == sorted(progress) and len(progress) == len(task.metadata["walkthrough"])
    assert engine.expert_action() is None
    after = engine.step("look")
    assert after.done and not after.valid


@needs_data
@pytest.mark.engine
def test_expert_recovers_after_the_agent_wanders(source: ALFWorldTasks, engine) -> None:
    task = source.get(40, np.random.default_rng(0))
    first = engine.reset(task)
    assert "Your task is to" not in first and "check valid actions" in first
    # off the walkthrough after the second step: the handcoded expert, which saw the watch on
    # the dresser, takes over
    engine.step("go to dresser 1")
    engine.step("go to sofa 1")
    assert engine.expert_action() == "go to dresser 1"
    for _ in range(engine.max_steps - 2):
        result = engine.step(engine.expert_action() or "look")
        if result.done:
            break
    assert result.success


@needs_data
@pytest.mark.engine
def test_engine_leaves_process_state_and_data_alone(source: ALFWorldTasks, engine) -> None:
    before, argv = _snapshot(DATA_DIR), list(sys.argv)
    had = os.environ.get("ALFWORLD_DATA")
    _play_expert(engine, source.get(40, np.random.default_rng(0)))
    assert sys.argv == argv
    assert os.environ.get("ALFWORLD_DATA") == had
    assert _snapshot(DATA_DIR) == before


@needs_data
@pytest.mark.engine
def test_importing_the_engine_creates_no_cache_directory(tmp_path: Path) -> None:
    _engine_packages()
    env = {k: v for k, v in os.environ.items() if k != "ALFWORLD_DATA"}
    env["HOME"] = str(tmp_path)
    code = (
        "import os, sys; from agemem_gym.tasks.alfworld.engine import _load_packages; "
        f"_load_packages({str(DATA_DIR)!r}); assert 'ALFWORLD_DATA' not in os.environ"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".cache").exists()


@needs_data
@pytest.mark.engine
def test_parsed_names_and_placement_match_the_engine(source: ALFWorldTasks, engine) -> None:
    for index in (40,):
        task = source.get(index, np.random.default_rng(0))
        engine.reset(task)
        facts = engine._state["facts"]
        placed = {
            (f.arguments[0].name, f.arguments[1].name)
            for f in facts
            if f.name.lower() == "inreceptacle"
        }
        spec = source.spec(index)
        assert placed == {(o, r) for o, recs in spec.placement.items() for r in recs}


@needs_data
@pytest.mark.engine
def test_three_stage_episode_with_the_oracle(source: ALFWorldTasks, tmp_path: Path) -> None:
    _engine_packages()
    agemem_env = pytest.importorskip("agemem_gym.env")
    from gymnasium.utils.env_checker import check_env

    from agemem_gym.policies.scripted import OraclePolicy

    # check_env resets without naming a task, which draws a training game: split the sample
    split = ALFWorldTasks(data=_split_root(tmp_path, train=slice(45, 47), valid=slice(0, 45)))
    assert split.get(40, np.random.default_rng(0)).task_id == source.get(40, np.random.default_rng(0)).task_id
    env = agemem_env.AgeMemEnv(tasks=split, stages=(1, 2, 3), privileged_info=True)
    try:
        check_env(env, skip_render_check=True)
        policy = OraclePolicy()
        obs, info = env.reset(seed=0, options={"task_index": 40})
        policy.reset()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
            done = terminated or truncated
        assert info["metrics"]["success"] == 1.0 and info["metrics"]["score"] == 1.0
        assert info["metrics"]["progress"] == 1.0
    finally:
        env.close()


# -- full set (slow) --------------------------------------------------------------------------
@needs_data
@pytest.mark.slow
@pytest.mark.engine
def test_oracle_wins_every_game_through_the_env_stage3(source: ALFWorldTasks) -> None:
    _engine_packages()
    agemem_env = pytest.importorskip("agemem_gym.env")
    from agemem_gym.policies.scripted import OraclePolicy

    env = agemem_env.AgeMemEnv(tasks=source, stages=(3,), privileged_info=True)
    policy, successes = OraclePolicy(), []
    try:
        for index in range(len(source)):
            _, info = rollout(env, policy, seed=index, task_index=index)
            successes.append(info["metrics"]["success"])
    finally:
        env.close()
    assert statistics.mean(successes) >= 0.95


def _inreceptacle(engine: ALFWorldEngine) -> set[tuple[str, str]]:
    return {
        (f.arguments[0].name, f.arguments[1].name)
        for f in engine._state["facts"]
        if f.name.lower() == "inreceptacle"
    }


@needs_data
@pytest.mark.slow
@pytest.mark.engine
def test_every_game_parsed_state_expert_and_random_agent(source: ALFWorldTasks, engine) -> None:
    """On all 134 games: our parsed placement equals the engine's, the expert wins, and an
    agent choosing uniformly among the valid commands stays far below it."""
    rng = np.random.default_rng(0)
    expert, random_success, random_progress = [], [], []
    for index in range(len(source)):
        task = source.get(index, np.random.default_rng(index))
        engine.reset(task)
        spec = source.spec(index)
        assert _inreceptacle(engine) == {(o, r) for o, rs in spec.placement.items() for r in rs}
        result = None
        for _ in range(engine.max_steps):
            actions = engine.valid_actions()
            result = engine.step(actions[int(rng.integers(len(actions)))])
            if result.done:
                break
        random_success.append(float(bool(result and result.success)))
        random_progress.append(result.progress if result else 0.0)
        expert.append(float(_play_expert(engine, task)[0].success))
    assert statistics.mean(expert) >= 0.95
    assert statistics.mean(random_success) < 0.3 and statistics.mean(random_progress) < 0.5


# -- training pool ------------------------------------------------------------------------------
def _split_root(root: Path, train: slice, valid: slice) -> Path:
    games = sorted((DATA_DIR / "json_2.1.1" / "valid_unseen").iterdir())
    for split, part in (("train", train), ("valid_unseen", valid)):
        (root / "json_2.1.1" / split).mkdir(parents=True)
        for game in games[part]:
            (root / "json_2.1.1" / split / game.name).symlink_to(game)
    return root


def test_training_games_leave_out_the_evaluation_games(source: ALFWorldTasks, tmp_path: Path) -> None:
    root = _split_root(tmp_path, train=slice(40, 47), valid=slice(0, 42))  # 2 folders in both
    split = ALFWorldTasks(data=root)
    evaluation = {split.get(i, np.random.default_rng(0)).task_id for i in range(len(split))}
    only_train = [g for g in source.games if g.parent.parent.name in
                  {p.name for p in sorted((root / "json_2.1.1" / "train").iterdir())[2:]}]
    assert 0 < len(split) < 134 and len(split.train_games) == len(only_train)
    drawn = {split.sample(np.random.default_rng(seed)).task_id for seed in range(30)}
    assert len(drawn) > 3 and not drawn & evaluation
    assert split.training_split() == (
        f"alfworld: {len(only_train)} train games under {root / 'json_2.1.1' / 'train'}"
    )


def test_training_refuses_without_train_games(source: ALFWorldTasks) -> None:
    with pytest.raises(NoTrainingDataError) as err:
        source.sample(np.random.default_rng(0))
    assert str(err.value) == (
        f"ALFWorld training needs the train games, and {str(DATA_DIR)!r} has none "
        "(json_2.1.1/train/<task>/<trial>/game.tw-pddl beside valid_unseen/): download them "
        "with `alfworld-download` and pass data=<that root>"
    )
    grpo = pytest.importorskip("agemem_gym.training.grpo")  # training refuses up front
    with pytest.raises(NoTrainingDataError, match="ALFWorld training needs the train games"):
        grpo.GRPOConfig(model="m", out="o", env="alfworld", env_options={"data": str(DATA_DIR)})
