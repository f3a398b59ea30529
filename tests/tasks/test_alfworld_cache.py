"""ALFWorld's per-game translation cache (a later reset reads it, plays the same, survives bad
files) and the memo of TextWorld's grammar parses (plays the same)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DATA

from agemem_gym.tasks.alfworld import ALFWorldTasks
from agemem_gym.tasks.alfworld.cache import GameCache, default_cache_dir
from agemem_gym.tasks.alfworld.engine import ALFWorldEngine

DATA_DIR = SAMPLE_DATA["alfworld"]
#: Entries of one game: the plain and the replanning translation, and the parsed grammar.
ITEMS_PER_GAME = 3


@pytest.fixture(scope="module")
def _engine_available() -> None:
    if not (DATA_DIR / "json_2.1.1").is_dir():
        pytest.skip(f"ALFWorld games not found at {DATA_DIR}")
    pytest.importorskip("textworld")
    if importlib.util.find_spec("alfworld") is None:
        pytest.skip("alfworld is not installed (extra [alfworld])")


@pytest.fixture(scope="module")
def task(_engine_available):
    return ALFWorldTasks(data=DATA_DIR).get(0, np.random.default_rng(0))


def _play(engine: ALFWorldEngine, task) -> list:
    """The first observation, then (observation, done, success, valid actions) per walkthrough step."""
    trace: list = [engine.reset(task), tuple(engine.valid_actions())]
    for action in [*task.metadata["walkthrough"], "look"]:
        result = engine.step(action)
        trace.append(
            (result.observation, result.done, result.success, tuple(engine.valid_actions()))
        )
    return trace


@pytest.fixture(scope="module")
def reference(task) -> list:
    """The game played without any cache, as TextWorld alone plays it."""
    engine = ALFWorldEngine(use_cache=False)
    try:
        assert engine.cache is None
        return _play(engine, task)
    finally:
        engine.close()


def test_a_later_reset_reads_the_cache_and_plays_identically(task, reference, tmp_path: Path):
    first = ALFWorldEngine(cache_dir=tmp_path)
    try:
        assert _play(first, task) == reference
        assert first.cache.stats.computed == ITEMS_PER_GAME
        assert first.cache.stats.files_written == 1
        assert first.cache.path_for(task.metadata["game_file"]).is_file()
        first.reset(task)  # same engine, same game: served from memory
        assert first.cache.stats.computed == ITEMS_PER_GAME
    finally:
        first.close()

    second = ALFWorldEngine(cache_dir=tmp_path)  # a new engine (as in a new process) reads the file
    try:
        assert _play(second, task) == reference
        stats = second.cache.stats
        assert (stats.computed, stats.files_read, stats.rebuilt) == (0, 1, 0)
        assert stats.served >= ITEMS_PER_GAME
    finally:
        second.close()
    assert reference[-1][1] and reference[-1][2], "the walkthrough wins the game"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped byte", "empty"])
def test_a_corrupted_cache_file_is_rebuilt(task, reference, tmp_path: Path, damage: str):
    writer = ALFWorldEngine(cache_dir=tmp_path)
    writer.reset(task)
    writer.close()
    path = writer.cache.path_for(task.metadata["game_file"])
    raw = path.read_bytes()
    damaged = {
        "garbage": b"not a cache file at all",
        "truncated": raw[: len(raw) // 2],
        "flipped byte": raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:],
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)

    engine = ALFWorldEngine(cache_dir=tmp_path)
    try:
        assert _play(engine, task) == reference
        stats = engine.cache.stats
        assert (stats.rebuilt, stats.computed, stats.files_written) == (1, ITEMS_PER_GAME, 1)
    finally:
        engine.close()
    assert path.read_bytes() != damaged
    reader = GameCache(tmp_path)
    with reader.serving(task.metadata["game_file"]):
        pass
    assert (reader.stats.files_read, reader.stats.rebuilt) == (1, 0)


def test_a_stale_cache_file_is_rebuilt(task, tmp_path: Path):
    game_file = task.metadata["game_file"]
    old = GameCache(tmp_path)
    old.versions = "alfworld=0.0 textworld=0.0"  # written by other package versions
    engine = ALFWorldEngine(cache_dir=tmp_path)
    engine.cache = old
    engine.reset(task)
    engine.close()
    current = GameCache(tmp_path)
    old.path_for(game_file).rename(current.path_for(game_file))  # found under today's name

    with current.serving(game_file):
        pass
    assert (current.stats.rebuilt, current.stats.files_read) == (1, 0)


def test_an_unwritable_cache_directory_only_disables_writing(task, reference, tmp_path: Path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    engine = ALFWorldEngine(cache_dir=blocker / "cache")
    try:
        assert _play(engine, task) == reference
        assert engine.cache.stats.files_written == 0
        engine.reset(task)  # still served from memory
        assert engine.cache.stats.computed == ITEMS_PER_GAME
    finally:
        engine.close()


def _detour_then_expert(engine: ALFWorldEngine, task) -> list:
    """Three admissible commands off the walkthrough, then the expert until the game ends."""
    trace: list = [engine.reset(task)]
    for k in (3, 7, 1):
        valid = engine.valid_actions()
        result = engine.step(valid[k % len(valid)])
        trace.append((result.observation, tuple(engine.valid_actions()), engine.expert_action()))
    for _ in range(25):
        action = engine.expert_action()
        if action is None:
            break
        result = engine.step(action)
        trace.append((action, result.observation, result.done, tuple(engine.valid_actions())))
        if result.done:
            break
    return trace


def test_memoized_parsing_plays_off_the_walkthrough_identically(_engine_available, tmp_path: Path):
    task = ALFWorldTasks(data=DATA_DIR).get(3, np.random.default_rng(0))
    plain, fast = ALFWorldEngine(use_cache=False), ALFWorldEngine(cache_dir=tmp_path)
    try:
        expected = _detour_then_expert(plain, task)
        assert _detour_then_expert(fast, task) == expected
        assert expected[-1][2], "the expert finishes the game after the detour"
    finally:
        plain.close()
        fast.close()


def test_the_packages_are_restored_after_reset_and_step(task, tmp_path: Path):
    import fast_downward
    from textworld.envs.pddl import logic as pddl_logic
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    def patched() -> tuple:
        return (
            fast_downward.pddl2sas,
            pddl_logic.GameLogic,
            textgen._parse_and_convert,
            Rule.__dict__["parse_conjunctive_query"],
        )

    before = patched()
    engine = ALFWorldEngine(cache_dir=tmp_path)
    engine.reset(task)
    engine.step(task.metadata["walkthrough"][0])
    engine.close()
    assert patched() == before
    assert isinstance(pddl_logic.GameLogic, type)


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("AGEMEM_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "alfworld_games"
    monkeypatch.delenv("AGEMEM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "agemem_gym" / "alfworld_games"
