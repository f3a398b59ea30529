"""The PDDL benchmark: data, text parsing, the engine's checks, the expert, the stage content."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DATA, replay_stage1, superseded

from agemem_gym.errors import DataNotFoundError, MissingExtraError
from agemem_gym.tasks.base import NoTrainingDataError, TaskInstance
from agemem_gym.tasks.pddl import DATA_ENV_VAR, PDDLTasks
from agemem_gym.tasks.pddl import source as pddl_module
from agemem_gym.tasks.pddl.logic import Operator
from agemem_gym.tasks.pddl.text import ParsedAction, parse_action, sentence

DATA_DIR = SAMPLE_DATA["pddl"]
needs_data = pytest.mark.skipif(not DATA_DIR.exists(), reason="PDDL data folder not found")

TRAP_DOMAIN = """(define (domain trap)
  (:requirements :strips)
  (:predicates (thing ?x) (fresh ?x) (burnt ?x) (fine ?x))
  (:action burn :parameters (?x)
    :precondition (and (thing ?x) (fresh ?x))
    :effect (and (burnt ?x) (not (fresh ?x))))
  (:action fix :parameters (?x)
    :precondition (and (thing ?x) (fresh ?x) (burnt ?x))
    :effect (fine ?x)))
"""
TRAP_PROBLEM = """(define (problem trap1) (:domain trap)
  (:objects a)
  (:init (thing a) (fresh a))
  (:goal (and (fine a))))
"""

OPERATORS = {
    "pick": Operator("pick", ("?obj", "?room", "?gripper"), ("default",) * 3, ()),
    "put-away": Operator("put-away", ("?x", "?y"), ("obj", "container"), ()),
}


def _run_expert(engine, task: TaskInstance):
    """Follow the engine's expert until done or the step limit; the last EngineStep."""
    engine.reset(task)
    result = None
    for _ in range(engine.max_steps):
        action = engine.expert_action()
        if action is None:
            break
        result = engine.step(action)
        assert result.valid, (action, result.observation)
        if result.done:
            break
    return result


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pddl_plans")


@pytest.fixture(scope="module")
def source(cache_dir: Path):
    if not DATA_DIR.exists():
        pytest.skip("PDDL data folder not found")
    pytest.importorskip("pddlgym")
    pytest.importorskip("pyperplan")
    tasks = PDDLTasks(data=DATA_DIR, cache_dir=cache_dir)
    yield tasks
    tasks.close()


@pytest.fixture()
def engine(source: PDDLTasks):
    eng = source.make_engine()
    yield eng
    eng.close()


# -- data -----------------------------------------------------------------------------------------


def test_no_data_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    with pytest.raises(DataNotFoundError) as err:
        PDDLTasks()
    assert str(err.value) == (
        "PDDL needs its data: pass data=PATH (a folder with AgentBoard's test.jsonl and "
        "pddl/<domain>.pddl with pddl/<domain>/*.pddl) or set AGEMEM_PDDL_DATA=PATH"
    )


def test_wrong_data_folder_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(DataNotFoundError, match="PDDL: nothing usable at data=.*; expected a "
                       "folder with AgentBoard's test.jsonl and pddl/"):
        PDDLTasks(data=tmp_path)


@needs_data
def test_env_var_names_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(DATA_DIR))
    assert PDDLTasks().data_dir == DATA_DIR
    result = doctest.testmod(pddl_module, verbose=False, extraglobs={"DATA": str(DATA_DIR)})
    assert result.failed == 0 and result.attempted > 0


@needs_data
def test_rows_map_to_problem_files_in_sorted_order() -> None:
    tasks = PDDLTasks(data=DATA_DIR)
    assert len(tasks) == 60
    domains = [row["domain"] for row in tasks.rows]
    assert [domains.count(d) for d in pddl_module.DOMAINS] == [20, 10, 20, 10]
    assert tasks.rows[21]["problem_file"].name == "problem10.pddl"
    assert tasks.rows[22]["problem_file"].name == "problem2.pddl"
    assert tasks.rows[50]["problem_file"].name == "p01.pddl"
    assert tasks.rows[50]["domain"] == "tyreworld"


def test_missing_engine_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from agemem_gym.tasks.pddl import engine as pddl_engine
    from agemem_gym.tasks.pddl import planner as pddl_planner

    want = "needs the optional extra [pddl]: pip install 'agemem-gym[pddl]'"
    monkeypatch.setitem(sys.modules, "pddlgym", None)
    with pytest.raises(MissingExtraError, match=re.escape("the PDDL benchmark (pddlgym) " + want)):
        pddl_engine.import_pddlgym()
    monkeypatch.setattr(pddl_planner.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=re.escape("expert plans (pyperplan) " + want)):
        pddl_planner.find_plan(Path("d.pddl"), Path("p.pddl"))


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "pick ball1 rooma left",
        "(pick ball1 rooma left)",
        "  PICK  Ball1 RoomA left. ",
        "Pick(ball1, rooma, left)",
        "Action: `pick ball1 rooma left`",
        "pick ball1 rooma left\nmore",
    ],
)
def test_actions_parse_leniently(text: str) -> None:
    assert parse_action(text, OPERATORS) == ParsedAction(
        name="pick", args=("ball1", "rooma", "left")
    )


def test_hyphenated_names_and_commands_parse() -> None:
    want = ParsedAction(name="put-away", args=("jack", "boot"))
    assert parse_action("put_away jack boot", OPERATORS) == want
    assert parse_action("put away jack boot", OPERATORS) == want
    assert parse_action("Check valid actions.", OPERATORS) == ParsedAction(command="valid")
    assert parse_action("look", OPERATORS) == ParsedAction(command="look")
    assert parse_action("jump around", OPERATORS) is None
    assert parse_action("", OPERATORS) is None


def test_facts_read_as_sentences() -> None:
    assert sentence(("at", "ball1", "roomb")) == "ball1 is at roomb."
    assert sentence(("arm-empty",)) == "The arm is empty."
    assert sentence(("holding", "left", "shot1")) == "left hand is holding shot1."
    assert sentence(("mystery", "a", "b")) == "mystery holds for a, b."


# -- engine -------------------------------------------------------------------------------------


@pytest.mark.engine
def test_constant_preconditions_are_checked(source: PDDLTasks, engine) -> None:
    """pddlgym alone would jack up the hub without the jack; the engine refuses."""
    task = source.get(50, np.random.default_rng(0))  # tyreworld p01
    engine.reset(task)
    assert engine.step("open boot").valid
    before = engine.atoms
    result = engine.step("jack-up the-hub1")
    assert not result.valid and not result.done
    assert "it needs (have jack) to be true" in result.observation
    assert engine.atoms == before
    obs, *_ = engine.raw_env.step(engine.pddlgym_literal("jack-up the-hub1"))  # pddlgym alone
    assert any(lit.predicate.name == "not-on-ground" for lit in obs.literals)


@pytest.mark.engine
def test_invalid_and_unknown_actions_are_reported(source: PDDLTasks, engine) -> None:
    engine.reset(source.get(0, np.random.default_rng(0)))  # gripper prob01
    start = engine.atoms
    cases = {
        "fly to the moon": "is not an action",
        "pick ball1 rooma": "'pick' takes 3 objects (pick <obj> <room> <gripper>), not 2",
        "pick ball9 rooma left": "there is no object called 'ball9'",
        "drop ball1 roomb left": "it needs (carry ball1 left) to be true",
    }
    for action, message in cases.items():
        result = engine.step(action)
        assert not result.valid and message in result.observation
    assert engine.atoms == start
    look = engine.step("look")
    assert look.valid and "ball1 is at rooma." in look.observation


def pddlgym_enumeration(engine, tmp_path: Path) -> list[str]:
    """pddlgym's own enumeration of the valid actions (its instantiator writes temp files)."""
    import pddlgym.spaces

    from agemem_gym.tasks.pddl.logic import literal_atom
    from agemem_gym.tasks.pddl.text import action_text

    before, pddlgym.spaces.TMP_PDDL_DIR = pddlgym.spaces.TMP_PDDL_DIR, str(tmp_path)
    try:
        env = engine.raw_env
        atoms = sorted(literal_atom(lit) for lit in env.action_space.all_ground_literals(env.get_state()))
    finally:
        pddlgym.spaces.TMP_PDDL_DIR = before
    return [action_text(atom[0], atom[1:]) for atom in atoms]


@pytest.mark.engine
def test_valid_actions_include_repeated_objects(source: PDDLTasks, engine, tmp_path: Path) -> None:
    engine.reset(source.get(0, np.random.default_rng(0)))
    mine = engine.valid_actions()
    theirs = pddlgym_enumeration(engine, tmp_path)
    assert set(theirs) < set(mine)
    assert set(mine) - set(theirs) == {"move rooma rooma"}
    result = engine.step("move rooma rooma")  # valid PDDL: delete, then add at-robby
    assert result.valid and "Nothing changed" in result.observation
    listed = engine.step("check valid actions").observation
    assert "pick ball1 rooma left" in listed and "move rooma roomb" in listed


@pytest.mark.engine
def test_pddlgym_temp_files_stay_private(
    source: PDDLTasks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pddlgym.spaces

    shared = tmp_path / "shared"  # stands for pddlgym's global /dev/shm folder
    shared.mkdir()
    monkeypatch.setattr(pddlgym.spaces, "TMP_PDDL_DIR", str(shared))
    engine = source.make_engine()
    engine.reset(source.get(30, np.random.default_rng(0)))  # barman p01
    for _ in range(3):
        engine.step(engine.expert_action())
    engine.close()
    assert str(shared) == pddlgym.spaces.TMP_PDDL_DIR and not list(shared.iterdir())


@pytest.mark.engine
def test_progress_keeps_its_maximum(source: PDDLTasks, engine) -> None:
    engine.reset(source.get(25, np.random.default_rng(0)))  # b3 starts on b5, as the goal wants
    assert engine.progress() == 0.5
    for action in [
        "unstack b4 b1",
        "putdown b4",
        "unstack b1 b2",
        "putdown b1",
        "unstack b2 b3",
        "putdown b2",
    ]:
        assert engine.step(action).valid
    result = engine.step("unstack b3 b5")
    assert engine.progress() == 0.0 and result.progress == 0.5 and not result.success


@pytest.mark.engine
@pytest.mark.parametrize("index", [0, 20, 30, 50])
def test_expert_solves_one_problem_per_domain(source: PDDLTasks, engine, index: int) -> None:
    task = source.get(index, np.random.default_rng(0))
    result = _run_expert(engine, task)
    assert result is not None and result.done and result.success and result.progress == 1.0
    assert "task complete" in result.observation
    assert engine.expert_action() is None
    assert not engine.step("look").valid  # the episode is over


@pytest.mark.engine
def test_expert_replans_after_a_detour(source: PDDLTasks, engine) -> None:
    task = source.get(0, np.random.default_rng(0))
    engine.reset(task)
    first = engine.expert_action()
    assert engine.step("move rooma roomb").valid  # not the plan's first step
    assert first != "move rooma roomb"
    steps = 1
    while not engine.step(engine.expert_action()).done:
        steps += 1
        assert steps < engine.max_steps
    assert engine.progress() == 1.0


@pytest.mark.engine
def test_dead_end_ends_the_episode(tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("pddlgym")
    from agemem_gym.tasks.pddl.engine import PDDLEngine

    (tmp_path / "trap").mkdir()
    (tmp_path / "trap.pddl").write_text(TRAP_DOMAIN)
    (tmp_path / "trap" / "p1.pddl").write_text(TRAP_PROBLEM)
    engine = PDDLEngine(tmp_path, cache_dir)
    task = TaskInstance("trap", "make a fine", metadata={"domain": "trap", "problem_index": 0})
    engine.reset(task)
    assert engine.expert_action() is None  # the planner proves there is no plan
    result = engine.step("burn a")
    assert result.valid and result.done and not result.success
    assert "No action is possible any more" in result.observation
    engine.close()


# -- stage content ------------------------------------------------------------------------------



@pytest.mark.engine
@pytest.mark.parametrize("index", [0, 21, 31, 54])
def test_stage_content_follows_the_memory_ops(source: PDDLTasks, index: int) -> None:
    task = source.get(index, np.random.default_rng(7))
    assert replay_stage1(task.stage1) == list(task.supporting_facts)
    ops = [f.op for f in task.stage1]
    assert ops.count("delete") == 1 and ops.count("none") == 1
    plan_length = task.metadata["plan_length"]
    assert f"The task can be solved in {plan_length} actions." in task.supporting_facts
    assert len(task.distractors) == 3
    assert all(item in task.query for item in task.key_items)
    if "update" in ops:
        stale = [s for s in superseded(task.stage1) if s.startswith("The first action is")]
        assert len(stale) == 1 and stale[0] not in task.supporting_facts


@pytest.mark.engine
def test_same_seed_same_task_other_seed_same_problem(source: PDDLTasks) -> None:
    a = source.get(31, np.random.default_rng(3))
    assert a == source.get(31, np.random.default_rng(3))
    b = source.get(31, np.random.default_rng(4))
    assert (a.task_id, a.query, a.metadata) == (b.task_id, b.query, b.metadata)
    assert a.stage1 != b.stage1 or a.distractors != b.distractors


@pytest.mark.engine
def test_first_action_hint_is_the_expert_first_step(source: PDDLTasks, engine) -> None:
    task = source.get(20, np.random.default_rng(0))
    engine.reset(task)
    first = engine.expert_action()
    assert f"The first action is: {first}." in task.supporting_facts


# -- through the env -----------------------------------------------------------------------------


def _expert_episode(env, index: int) -> dict:
    obs, info = env.reset(seed=index, options={"task_index": index})
    done = False
    while not done:
        action = info.get("expert_action") or "look"
        obs, reward, terminated, truncated, info = env.step(f"<answer>{action}</answer>")
        done = terminated or truncated
    return info


@pytest.mark.engine
def test_registered_env_passes_check_env(
    source: PDDLTasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    gym = pytest.importorskip("gymnasium")
    registration = pytest.importorskip("agemem_gym.registration")
    from gymnasium.utils.env_checker import check_env

    from agemem_gym.tasks import TASK_SOURCES

    monkeypatch.setitem(TASK_SOURCES, "pddl", ("agemem_gym.tasks.pddl:PDDLTasks", "pddl"))
    assert "AgeMem/PDDL-v0" in registration.register_envs()
    env = gym.make("AgeMem/PDDL-v0", data=DATA_DIR, cache_dir=source.cache_dir)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.engine
def test_expert_through_the_env_stage3_only(source: PDDLTasks) -> None:
    env_module = pytest.importorskip("agemem_gym.env")
    env = env_module.AgeMemEnv(source, stages=(3,), privileged_info=True)
    info = _expert_episode(env, 20)  # blockworld problem1
    env.close()
    assert info["metrics"]["score"] == 1.0 and info["metrics"]["success"] == 1.0


# -- full sets (slow) ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.engine
def test_expert_solves_all_60(source: PDDLTasks, engine) -> None:
    progress = []
    for index in range(len(source)):
        result = _run_expert(engine, source.get(index, np.random.default_rng(index)))
        progress.append(result.progress if result else 0.0)
    assert np.mean(progress) >= 0.95
    assert sum(p == 1.0 for p in progress) == 60


@pytest.mark.slow
@pytest.mark.engine
def test_random_valid_actions_stay_far_below_the_expert(source: PDDLTasks, engine) -> None:
    rng = np.random.default_rng(0)
    progress = []
    for index in range(len(source)):
        engine.reset(source.get(index, np.random.default_rng(index)))
        result = None
        for _ in range(engine.max_steps):
            actions = engine.valid_actions()
            result = engine.step(actions[int(rng.integers(len(actions)))])
            if result.done:
                break
        progress.append(result.progress if result else 0.0)
    assert np.mean(progress) < 0.4  # measured: 0.24 (the expert: 1.0)


@pytest.mark.slow
@pytest.mark.engine
def test_oracle_through_the_env_stage3(source: PDDLTasks) -> None:
    env_module = pytest.importorskip("agemem_gym.env")
    env = env_module.AgeMemEnv(source, stages=(3,), privileged_info=True)
    scores = [_expert_episode(env, index)["metrics"]["score"] for index in range(len(source))]
    env.close()
    assert np.mean(scores) >= 0.95


def test_data_env_var_is_documented() -> None:
    assert DATA_ENV_VAR in (pddl_module.__doc__ or "")


# -- training pool ------------------------------------------------------------------------------
def test_training_problems_are_never_evaluation_problems(source: PDDLTasks) -> None:
    from agemem_gym.tasks.pddl.training import normalized

    evaluation = {normalized(row["problem_file"]) for row in source.rows}
    pool = source.training_problems
    assert pool and all(normalized(p.problem_file) not in evaluation for p in pool)
    assert {p.domain for p in pool} == {"gripper"}  # pddlgym has no other domain of the 60
    assert source.training_split() == (
        "pddl: 51 problems from pddlgym's problem sets (gripper 51; none: blockworld, barman, "
        "tyreworld)"
    )
    task = source.sample(np.random.default_rng(1))
    assert task.category == "gripper" and task.task_id.startswith("pddl-train-")
    assert task.query.startswith("The goal is to satisfy the following conditions: ")
    engine = source.make_engine()  # the expert plan reaches the goal of a training problem
    engine.reset(task)
    while (action := engine.expert_action()) is not None:
        result = engine.step(action)
    engine.close()
    assert result.success


def test_training_refuses_without_problems(tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("pddlgym")
    source = PDDLTasks(data=DATA_DIR, cache_dir=cache_dir, train_data=tmp_path)
    with pytest.raises(NoTrainingDataError) as err:
        source.sample(np.random.default_rng(0))
    assert str(err.value) == (
        "PDDL has no training problems for gripper, blockworld, barman, tyreworld outside the "
        "evaluation set: pass train_data=FOLDER with <domain>/*.pddl problems of these domains"
    )
    # a copy of an evaluation problem under another name is still an evaluation problem
    (tmp_path / "blockworld").mkdir()
    text = (DATA_DIR / "pddl" / "blockworld" / "problem3.pddl").read_text()
    (tmp_path / "blockworld" / "mine.pddl").write_text(text.replace("(problem ", "(problem mine-"))
    with pytest.raises(NoTrainingDataError):
        PDDLTasks(data=DATA_DIR, cache_dir=cache_dir, train_data=tmp_path).training_split()
