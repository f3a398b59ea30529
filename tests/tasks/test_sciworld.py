"""The ScienceWorld benchmark: data, stage content, the engine, its JVM's lifetime, the oracle."""

from __future__ import annotations

import doctest
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DATA, fake_agentboard_hub, replay_stage1, superseded

from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.tasks.base import TaskInstance
from agemem_gym.tasks.sciworld import DATA_ENV_VAR, SciWorldTasks, load_records
from agemem_gym.tasks.sciworld import source as sciworld_module
from agemem_gym.tasks.sciworld.engine import GoldStep, GoldTrace, normalize_action
from agemem_gym.tasks.sciworld.stages import build_stage1, read_trace, visible_items

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = SAMPLE_DATA["sciworld"]
needs_data = pytest.mark.skipif(not DATA_DIR.exists(), reason="ScienceWorld data not found")
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

WORKSHOP_LOOK = (
    "This room is called the workshop. In it, you see: \n\tthe agent\n\ta substance called air\n"
    "\ta table. On the table is: a battery, a red light bulb, which is off, a switch, which is "
    "off.\n\ta ultra low temperature freezer. The ultra low temperature freezer door is closed. "
    "\nYou also see:\n\tA door to the hallway (that is open)\n"
)
KITCHEN_LOOK = (
    "This room is called the kitchen. In it, you see: \n\tthe agent\n\ta substance called air\n"
    "\ta counter. On the counter is: a bowl (containing an orange), a thermometer.\n"
    "\ta stove, which is turned off. On the stove is: nothing.\nYou also see:\n"
    "\tA door to the hallway (that is open)\n"
)
TRACE = GoldTrace(
    actions=(
        "go to hallway",
        "go to kitchen",
        "pick up thermometer",
        "focus on gallium",
        "move gallium to stove",
    ),
    start_room="workshop",
    steps=(
        GoldStep("workshop", "go to hallway", "You move to the hallway."),
        GoldStep("hallway", "go to kitchen", "You move to the kitchen."),
        GoldStep("kitchen", "pick up thermometer", "You move the thermometer to the inventory."),
        GoldStep("kitchen", "focus on gallium", "You focus on the gallium."),
        GoldStep("kitchen", "move gallium to stove", "You move the gallium to the stove."),
    ),
    looks={
        "workshop": WORKSHOP_LOOK,
        "hallway": "This room is called the hallway.",
        "kitchen": KITCHEN_LOOK,
    },
    success=True,
)



# -- data -------------------------------------------------------------------------------------
def test_no_data_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, hub_cache: Path) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    with pytest.raises(DataNotFoundError) as err:  # no data given, the hub unreachable
        SciWorldTasks()
    assert str(err.value) == (
        "could not fetch data/scienceworld/test.jsonl of the hub dataset hkust-nlp/agentboard "
        "(LocalEntryNotFoundError); ScienceWorld needs its data: pass data=PATH (AgentBoard's "
        "ScienceWorld test.jsonl or the directory holding it) or set AGEMEM_SCIWORLD_DATA=PATH"
    )


@needs_data
def test_data_comes_from_the_hub_cache_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch, hub_cache: Path
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    fake_agentboard_hub(hub_cache, {"data/scienceworld/test.jsonl": DATA_DIR / "test.jsonl"})
    records = SciWorldTasks().records
    assert len(records) == 90 and records == load_records(DATA_DIR / "test.jsonl")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"test\.jsonl"):
        SciWorldTasks(data=tmp_path)


def test_malformed_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text(
        '{"id": 0, "goal": "g", "subgoals": [], '
        '"additional_info": {"var": 1, "env_name": "boil"}}\n'
        '{"id": 1}\n'
    )
    with pytest.raises(DataNotFoundError, match="line 2"):
        len(SciWorldTasks(data=tmp_path))


@needs_data
def test_env_var_names_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, str(DATA_DIR))
    assert len(SciWorldTasks()) == 90


@needs_data
def test_bad_options_fail_fast() -> None:
    with pytest.raises(ConfigError, match="unknown ScienceWorld simplification 'openDoor'"):
        SciWorldTasks(data=DATA_DIR, simplification="openDoor")
    with pytest.raises(ConfigError, match=r"task_ids \[999\]"):
        len(SciWorldTasks(data=DATA_DIR, task_ids=[3, 999]))
    with pytest.raises(ConfigError, match="max_steps"):
        SciWorldTasks(data=DATA_DIR, max_steps=0)


@needs_data
def test_records_and_subgoals() -> None:
    records = load_records(DATA_DIR / "test.jsonl")
    assert [r["id"] for r in records] == list(range(90))
    assert len({r["env_name"] for r in records}) == 16
    for r in records:  # progress uses them as regular expressions
        for pattern in r["subgoals"]:
            re.compile(pattern)


def test_module_docs() -> None:
    assert DATA_ENV_VAR in (sciworld_module.__doc__ or "")
    assert doctest.testmod(sciworld_module).failed == 0


# -- stage content from a trace (no JVM) ------------------------------------------------------
def test_trace_reading() -> None:
    facts = read_trace(TRACE)
    assert facts.locations == {"thermometer": "kitchen", "gallium": "kitchen", "stove": "kitchen"}
    assert facts.focus == ["gallium"]
    assert facts.legs == [("workshop", "kitchen", ("hallway",))]


def test_visible_items() -> None:
    items = visible_items(KITCHEN_LOOK)
    assert ("counter", "") in items and ("thermometer", "counter") in items
    assert ("bowl", "counter") in items and ("stove", "") in items
    assert all(name not in ("agent", "air", "nothing") for name, _ in items)
    assert ("red light bulb", "table") in visible_items(WORKSHOP_LOOK)


def test_stage1_ops_leave_the_supporting_facts() -> None:
    stage1, supporting = build_stage1(TRACE, 7, np.random.default_rng(0))
    stale = [s for s in superseded(stage1) if " is in the " in s]
    ops = [f.op for f in stage1]
    assert ops.count("update") == 1 and ops.count("delete") == 1 and ops.count("none") == 2
    assert sorted(replay_stage1(stage1)) == sorted(supporting)
    assert "The thermometer is in the kitchen." in supporting
    assert "Focus on the gallium." in supporting
    assert "The way from the workshop to the kitchen goes through the hallway." in supporting
    assert len(stale) == 1 and stale[0] not in supporting and "thermometer" in stale[0]


def test_stage1_wording_only_depends_on_the_seed() -> None:
    a = build_stage1(TRACE, 7, np.random.default_rng(1))
    b = build_stage1(TRACE, 7, np.random.default_rng(1))
    assert a == b
    others = [build_stage1(TRACE, 7, np.random.default_rng(seed)) for seed in range(2, 8)]
    assert all(o[1:] == a[1:] for o in others)  # same facts
    assert all([f.content for f in o[0]] == [f.content for f in a[0]] for o in others)
    assert any([f.message for f in o[0]] != [f.message for f in a[0]] for o in others)


def test_normalize_action() -> None:
    assert normalize_action("  Go to   Kitchen. ") == "go to kitchen"


# -- engine ----------------------------------------------------------------------------------
def _java_children(pid: int | None = None) -> list[int]:
    """Live java processes whose parent is ``pid`` (this process by default)."""
    parent = os.getpid() if pid is None else pid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if comm == "java" and int(ppid) == parent and state != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def source():
    if not DATA_DIR.exists():
        pytest.skip("ScienceWorld data not found")
    pytest.importorskip("scienceworld")
    tasks = SciWorldTasks(data=DATA_DIR)
    yield tasks
    tasks.close()


@pytest.fixture(scope="module")
def engine(source: SciWorldTasks):
    eng = source.make_engine()
    yield eng
    eng.close()


def _run_expert(engine, task: TaskInstance):
    """Follow the gold path until done or the step limit: the last EngineStep and the steps."""
    engine.reset(task)
    result, steps = None, 0
    while steps < engine.max_steps and (action := engine.expert_action()) is not None:
        result = engine.step(action)
        steps += 1
        if result.done:
            break
    return result


@pytest.mark.engine
def test_expert_solves_a_task(source: SciWorldTasks, engine) -> None:
    task = source.get(0, np.random.default_rng(0))
    assert task.metadata["env_name"] == "lifespan-longest-lived"
    result = _run_expert(engine, task)
    assert result is not None and result.done and result.success and result.progress == 1.0
    assert engine.expert_action() is None
    after = engine.step("look around")
    assert after.done and not after.valid


@pytest.mark.engine
def test_actions_invalid_and_meta(source: SciWorldTasks, engine) -> None:
    first = engine.reset(source.get(0, np.random.default_rng(0)))
    assert first.startswith("This room is called the workshop.") and "check valid actions" in first
    bad = engine.step("fly to the moon")
    assert not bad.valid and not bad.done and bad.observation.startswith("No known action")
    moves = engine.server.interface.getNumMoves()
    listed = engine.step("Check valid actions")
    assert listed.valid and listed.observation.startswith("Valid actions: ")
    assert "look around" in listed.observation and "(and " in listed.observation
    assert engine.server.interface.getNumMoves() == moves  # no simulated time passed
    assert "go to hallway" in engine.valid_actions()
    moved = engine.step("go to hallway")
    assert moved.valid and moved.progress == 0.0 and not moved.done


@pytest.mark.engine
def test_wrong_focus_fails_the_task(source: SciWorldTasks, engine) -> None:
    engine.reset(source.get(0, np.random.default_rng(0)))
    result = engine.step("focus on table")
    assert result.done and not result.success


@needs_proc
@pytest.mark.engine
def test_one_jvm_across_resets_and_none_after_close(source: SciWorldTasks) -> None:
    eng = source.make_engine()
    assert eng.server.pid is None  # started lazily
    eng.reset(source.get(0, np.random.default_rng(0)))
    pid = eng.server.pid
    assert pid in _java_children()
    eng.reset(source.get(0, np.random.default_rng(1)))
    assert eng.server.pid == pid
    eng.close()
    assert _wait_gone(pid, 10) and pid not in _java_children()
    eng.reset(source.get(0, np.random.default_rng(0)))  # usable again: a new JVM
    assert eng.server.pid != pid
    eng.close()


@needs_proc
@pytest.mark.engine
@needs_data
def test_source_close_stops_the_gold_path_jvm() -> None:
    pytest.importorskip("scienceworld")
    other = SciWorldTasks(data=DATA_DIR, task_ids=[89])
    other.get(0, np.random.default_rng(0))
    assert other._probe is not None
    probe = other._probe.pid
    assert probe in _java_children()
    other.close()
    assert _wait_gone(probe, 10) and probe not in _java_children()


_CHILD = """
import sys, time
import numpy as np
from agemem_gym.tasks.sciworld import SciWorldTasks
source = SciWorldTasks(data=sys.argv[1], task_ids=[0])
engine = source.make_engine()
engine.reset(source.get(0, np.random.default_rng(0)))
engine.step("go to hallway")
print(engine.server.pid, source._probe.pid, flush=True)
if sys.argv[2] == "wait":
    time.sleep(120)
"""


def _start_child(mode: str) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(DATA_DIR), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    pids = [int(p) for p in line.split()]
    assert len(pids) == 2, line
    return proc, pids


@needs_proc
@pytest.mark.engine
def test_no_java_left_after_sigkill(source: SciWorldTasks) -> None:
    proc, pids = _start_child("wait")
    try:
        assert all(_alive(p) for p in pids) and set(pids) <= set(_java_children(proc.pid))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert all(_wait_gone(p) for p in pids), pids
    finally:
        if proc.poll() is None:
            proc.kill()


@needs_proc
@pytest.mark.engine
def test_no_java_left_after_interpreter_exit(source: SciWorldTasks) -> None:
    proc, pids = _start_child("exit")
    assert proc.wait(30) == 0
    assert all(_wait_gone(p) for p in pids), pids


@pytest.mark.engine
def test_stage_content_of_a_real_task(source: SciWorldTasks) -> None:
    task = source.get(0, np.random.default_rng(3))
    assert task == source.get(0, np.random.default_rng(3))
    assert task.query.startswith("Your task is to find the animal with the longest life span")
    assert sorted(replay_stage1(task.stage1)) == sorted(task.supporting_facts)
    assert "The crocodile egg is in the outside." in task.supporting_facts
    assert "Focus on the crocodile egg." in task.supporting_facts
    assert task.key_items == ("outside",)
    assert len(task.distractors) == 4
    assert not any("crocodile" in d for d in task.distractors)
    assert task.metadata["gold_actions"][-2:] == ["focus on crocodile", "wait1"]


@pytest.mark.engine
def test_three_stage_episode_with_the_oracle(source: SciWorldTasks) -> None:
    env_module = pytest.importorskip("agemem_gym.env")
    from agemem_gym.policies.scripted import OraclePolicy

    env = env_module.AgeMemEnv(source, stages=(1, 2, 3), privileged_info=True)
    policy = OraclePolicy()
    obs, info = env.reset(seed=0, options={"task_index": 0})
    stages, done = {info["stage"]}, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        stages.add(info["stage"])
        done = terminated or truncated
    engine_pid = env._engine.server.pid
    env.close()
    assert stages == {1, 2, 3} and terminated
    assert info["metrics"]["success"] == 1.0 and info["metrics"]["progress"] == 1.0
    assert info["metrics"]["mq"] == 1.0
    assert engine_pid is not None and _wait_gone(engine_pid, 10)


# -- full set ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.engine
def test_expert_solves_the_90(source: SciWorldTasks, engine) -> None:
    results = [_run_expert(engine, source.get(i, np.random.default_rng(i))) for i in range(90)]
    assert np.mean([r.success for r in results]) >= 0.9
    assert np.mean([r.progress for r in results]) >= 0.8  # some subgoals never match


@pytest.mark.slow
@pytest.mark.engine
def test_oracle_through_the_env_stage3(source: SciWorldTasks) -> None:
    env_module = pytest.importorskip("agemem_gym.env")
    env = env_module.AgeMemEnv(source, stages=(3,), privileged_info=True)
    scores = []
    for index in range(len(source)):
        obs, info = env.reset(seed=index, options={"task_index": index})
        done = False
        while not done:
            action = info.get("expert_action") or "look around"
            obs, reward, terminated, truncated, info = env.step(f"<answer>{action}</answer>")
            done = terminated or truncated
        scores.append(info["metrics"]["score"])
    env.close()
    assert np.mean(scores) >= 0.9


@pytest.mark.slow
@pytest.mark.engine
def test_random_valid_actions_stay_far_below_the_expert(source: SciWorldTasks, engine) -> None:
    rng = np.random.default_rng(0)
    success, progress = [], []
    for index in range(0, 90, 3):
        engine.reset(source.get(index, np.random.default_rng(index)))
        result = None
        for _ in range(30):
            actions = engine.valid_actions()
            result = engine.step(actions[int(rng.integers(len(actions)))])
            if result.done:
                break
        success.append(bool(result and result.success))
        progress.append(result.progress if result else 0.0)
    assert np.mean(success) <= 0.1 and np.mean(progress) < 0.5


# -- training pool ------------------------------------------------------------------------------
@needs_data
def test_training_tasks_are_train_variations_outside_the_file(source: SciWorldTasks) -> None:
    records = load_records(DATA_DIR / "test.jsonl")
    used = {(r["env_name"], r["variation"]) for r in records}
    names = {r["env_name"] for r in records}
    for name in sorted(names)[:4]:
        variations = source.train_variations(name)
        assert variations and not {(name, v) for v in variations} & used
    task = source.sample(np.random.default_rng(0))
    assert task.category in names and (task.category, task.metadata["variation"]) not in used
    assert task.metadata["agentboard_id"] is None and task.metadata["subgoals"] == []
    assert task.query.startswith("Your task is to") and task.metadata["gold_actions"]
    assert source.training_split() == (
        "sciworld: ScienceWorld's train variations of the 16 task names of the evaluation set, "
        "minus every (task, variation) of test.jsonl"
    )
