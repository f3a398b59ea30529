"""HotpotQA's fullwiki setting: files and hub shards through ``datasets``, the gold-less test
split with golds made by a (scripted) LLM and cached, and the released evaluation's sample."""

from __future__ import annotations

import doctest
import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import agemem_gym  # noqa: F401 - registers the ids
from agemem_gym.errors import ConfigError, DataNotFoundError
from agemem_gym.llm.base import Generation, LLMBackend
from agemem_gym.tasks.hotpotqa import HotpotQATasks, fullwiki
from agemem_gym.tasks.hotpotqa import data as hotpotqa_data


def record(i: int, *, gold: bool = True, hub: bool = False) -> dict[str, Any]:
    """Example ``i``: the city where person ``i`` was born, in the original or the hub layout;
    without gold it is a test record (no answer, no supporting facts)."""
    person, city = f"Person {i}", f"City {i}"
    context = [
        [person, [f"{person} is a painter.", f" {person} was born in {city}."]],
        [city, [f"{city} is a port.", f" {city} has {i} bridges."]],
    ]
    rec: dict[str, Any] = {
        "_id": f"t{i}",
        "question": f"Where was {person} born?",
        "context": context,
    }
    if gold:
        rec.update(answer=city, supporting_facts=[[person, 1]], type="bridge", level="easy")
    if not hub:
        return rec
    facts = rec.get("supporting_facts", [])
    return {
        "id": rec["_id"],
        "question": rec["question"],
        "answer": rec.get("answer", ""),
        "type": rec.get("type", ""),
        "level": rec.get("level", ""),
        "supporting_facts": {"title": [t for t, _ in facts], "sent_id": [s for _, s in facts]},
        "context": {"title": [t for t, _ in context], "sentences": [s for _, s in context]},
    }


class ScriptedGold(LLMBackend):
    """Stands in for the gold model's text: ``reply(question)`` -> the reply; counts calls."""

    name = "scripted"

    def __init__(self, reply: Callable[[str], str], model_name: str = "scripted-gold") -> None:
        self.reply, self.model_name, self.calls, self.schemas = reply, model_name, 0, []

    def generate(self, prompts: Sequence[Any], **kwargs: Any) -> list[Generation]:
        self.calls += len(prompts)
        self.schemas.append(kwargs.get("json_schema"))
        questions = [re.search(r"Question: (.*)\n", p[-1]["content"]).group(1) for p in prompts]
        return [Generation(self.reply(q), 300, 20, 0.01, finish_reason="stop") for q in questions]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def good_reply(question: str) -> str:
    i = re.search(r"Person (\d+)", question).group(1)
    return json.dumps(
        {
            "answer": f"City {i}",
            "supporting_facts": [
                {"title": f"Person {i}", "sent_id": 1},
                {"title": f"Person {i}", "sent_id": 7},
            ],
        }
    )


def write_json(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Golds and datasets' arrow files are cached under the test's folder; nothing online."""
    monkeypatch.setenv("AGEMEM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AGEMEM_HOTPOTQA_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_doctests() -> None:
    for module in (fullwiki, hotpotqa_data):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_hub_parquet_copy_read_through_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "arrow"))
    hub = tmp_path / "hotpot_qa"  # the layout of a downloaded copy of hotpotqa/hotpot_qa
    shards = {
        "distractor/validation-00000-of-00001.parquet": [record(0, hub=True)],
        "fullwiki/validation-00000-of-00002.parquet": [record(1, hub=True), record(2, hub=True)],
        "fullwiki/validation-00001-of-00002.parquet": [record(3, hub=True)],
        "fullwiki/test-00000-of-00001.parquet": [record(i, gold=False, hub=True) for i in (4, 5)],
    }
    for name, rows in shards.items():
        (hub / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), hub / name)

    assert [ex.id for ex in HotpotQATasks(data=hub).examples] == ["t0"]
    source = HotpotQATasks(data=hub, setting="fullwiki")
    assert [ex.id for ex in source.examples] == ["t1", "t2", "t3"]  # both shards, in order
    assert source.examples[2].supporting_facts == (("Person 3", 1),)
    assert source.get(0, np.random.default_rng(0)).metadata["setting"] == "fullwiki"
    # the setting's folder itself, as the release points at it, and one shard named directly
    assert len(HotpotQATasks(data=hub / "fullwiki", setting="fullwiki")) == 3
    llm = ScriptedGold(good_reply)
    test = HotpotQATasks(
        data=hub / "fullwiki" / "test-00000-of-00001.parquet",
        setting="fullwiki",
        split="test",
        gold_model=llm,
    )
    assert [(ex.id, ex.answer) for ex in test.examples] == [("t4", "City 4"), ("t5", "City 5")]
    assert llm.calls == 2 and llm.schemas == [fullwiki.GOLD_SCHEMA]


def test_fullwiki_files_by_their_original_names(tmp_path: Path) -> None:
    folder = tmp_path / "hotpot"
    write_json(folder / "hotpot_dev_distractor_v1.json", [record(0)])
    write_json(folder / "hotpot_dev_fullwiki_v1.json", [record(1), record(2)])
    write_json(folder / "hotpot_test_fullwiki_v1.json", [record(i, gold=False) for i in (3, 4, 5)])
    write_json(folder / "hotpot_train_v1.1.json", [record(i) for i in (1, 6, 7)])

    assert [ex.id for ex in HotpotQATasks(data=folder).examples] == ["t0"]
    dev = HotpotQATasks(data=folder, setting="fullwiki")
    assert [ex.id for ex in dev.examples] == ["t1", "t2"]
    # the train file serves both settings; the evaluation set is left out of the pool
    assert dev.training_split().startswith(
        f"hotpotqa: train split, {folder / 'hotpot_train_v1.1.json'}"
    )
    assert sorted(ex.id for ex in dev.train_examples) == ["t6", "t7"]
    test = HotpotQATasks(data=folder, setting="fullwiki", split="test")
    assert [ex.id for ex in test.selected] == ["t3", "t4", "t5"]
    assert not any(ex.has_gold for ex in test.selected)
    with pytest.raises(
        ConfigError,
        match=r"got 'test' \(the test split exists only in the "
        r"fullwiki setting: pass setting='fullwiki'\)",
    ):
        HotpotQATasks(data=folder, split="test")
    with pytest.raises(ConfigError, match="setting must be one of 'distractor', 'fullwiki'"):
        HotpotQATasks(setting="full")
    with pytest.raises(
        DataNotFoundError, match=r"hotpot_test_fullwiki_v1\.json or .*fullwiki/test-\*\.parquet"
    ):
        len(HotpotQATasks(data=tmp_path, setting="fullwiki", split="test"))


def test_golds_made_once_then_read_from_the_cache(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "hotpot_test_fullwiki_v1.json", [record(i, gold=False) for i in range(20)]
    )
    llm = ScriptedGold(good_reply)
    source = HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=llm)
    assert len(source) == 20 and llm.calls == 20
    example = source.examples[7]
    assert (example.answer, example.supporting_facts) == ("City 7", (("Person 7", 1),))  # 7 dropped
    assert example.gold_by == "llm:scripted-gold"
    report = source.gold_report
    assert (report.needed, report.made, report.failed, report.cached) == (20, 20, 0, 0)
    assert (
        report.usage.llm_calls == 20
        and report.cache_file.parent == tmp_path / "cache" / "hotpotqa_golds"
    )
    task = source.get(7, np.random.default_rng(0))
    assert task.answers == ("City 7",) and task.supporting_facts == (
        "Person 7 was born in City 7.",
    )
    assert (
        task.metadata["gold_by"] == "llm:scripted-gold"
        and source.score(task, "city 7")["success"] == 1.0
    )

    again = ScriptedGold(lambda q: "never asked")
    cached = HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=again)
    assert cached.examples == source.examples and again.calls == 0
    assert (cached.gold_report.cached, cached.gold_report.usage.llm_calls) == (20, 0)
    # another model makes its own golds; a changed question is asked again
    other = ScriptedGold(good_reply, model_name="other-model")
    assert len(HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=other)) == 20
    assert other.calls == 20
    records = [record(i, gold=False) for i in range(20)]
    records[3]["question"] = "Where was Person 3 born, really?"
    write_json(path, records)
    assert len(HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=again)) == 19
    assert again.calls == 1  # only the changed record; its "never asked" reply is unusable


def test_unusable_replies_are_counted_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_json(tmp_path / "test.json", [record(i, gold=False) for i in range(5)])
    replies = {
        "Person 0": "The answer is City 0.",
        "Person 1": json.dumps({"answer": "", "supporting_facts": [["Person 1", 1]]}),
        "Person 2": '{"answer": "City 2", "supporting_facts": [{"title": "Nobody", "sent_id": 0}]}',
        "Person 3": '```json\n{"answer": "City 3", "supporting_facts": [["Person 3", 1]]}\n```',
        "Person 4": '{"answer": "City 4", "supporting_facts": [{"title": "Person 4", "sent_id": 1}',
    }

    def reply(question: str) -> str:
        return replies[re.search(r"Person \d+", question).group(0)]

    with caplog.at_level(logging.WARNING, logger="agemem_gym.tasks.hotpotqa.fullwiki"):
        source = HotpotQATasks(
            data=path, setting="fullwiki", split="test", gold_model=ScriptedGold(reply)
        )
        assert [ex.id for ex in source.examples] == ["t3"]
    report = source.gold_report
    assert (report.needed, report.made, report.failed) == (5, 1, 4)
    assert report.reasons == {
        "no JSON object in the reply": 1,
        "invalid JSON": 1,
        "no answer": 1,
        "no supporting fact names a sentence of the paragraphs": 1,
    }
    assert report.usage.failures == 4
    assert "4 of 5 replies unusable" in caplog.text and "left out" in caplog.text
    again = ScriptedGold(reply)  # failures are cached too: made once
    cached = HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=again)
    assert [ex.id for ex in cached.examples] == ["t3"] and again.calls == 0
    assert cached.gold_report.failed == 4
    write_json(path, [record(i, gold=False) for i in (0, 1)])  # nothing usable is left
    with pytest.raises(DataNotFoundError, match=r"no HotpotQA test example .* is left.*delete"):
        len(HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=again))


def test_without_a_gold_model_the_error_says_what_to_pass(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "hotpot_test_fullwiki_v1.json", [record(i, gold=False) for i in range(3)]
    )
    train = write_json(tmp_path / "hotpot_train_v1.1.json", [record(i) for i in range(3, 6)])
    source = HotpotQATasks(data=path, setting="fullwiki", split="test", train_data=train)
    with pytest.raises(
        DataNotFoundError,
        match=r"3 of the 3 HotpotQA test examples .* have no gold "
        r"answer.*Pass gold_model=\{'model': NAME",
    ):
        len(source)
    task = source.sample(np.random.default_rng(0))  # training needs no golds of the test set
    assert task.metadata["split"] == "train" and task.answers[0].startswith("City")
    with pytest.raises(
        ConfigError, match=r"got the string 'qwen-max'; e\.g\. gold_model=\{'model': 'qwen-max'"
    ):
        HotpotQATasks(setting="fullwiki", split="test", gold_model="qwen-max")
    with pytest.raises(ConfigError, match='the "model" entry is missing'):
        HotpotQATasks(setting="fullwiki", split="test", gold_model={"backend": "openai"})
    with pytest.raises(
        DataNotFoundError, match=r"'hotpotqa/hotpot_qa' \(fullwiki, test\).*no network"
    ):
        _hub_offline(HotpotQATasks(setting="fullwiki", split="test"))


def _hub_offline(source: HotpotQATasks) -> None:
    datasets = pytest.importorskip("datasets")
    mp = pytest.MonkeyPatch()

    def offline(*args: object, **kwargs: object) -> None:  # the fault: no network
        raise ConnectionError("no network")

    mp.setattr(datasets, "load_dataset", offline)
    try:
        len(source)
    finally:
        mp.undo()


def test_sampling_is_seeded_and_sized(tmp_path: Path) -> None:
    path = write_json(tmp_path / "hotpot_test_fullwiki_v1.json", [record(i) for i in range(900)])
    released = HotpotQATasks(data=path, **fullwiki.RELEASED_EVALUATION)  # golds given: no model
    assert len(released) == 800 and [ex.id for ex in released.examples[:2]] == ["t0", "t1"]
    assert released.examples[-1].id == "t799"

    def ids(seed: int) -> list[str]:
        return [
            ex.id
            for ex in HotpotQATasks(
                data=path, setting="fullwiki", split="test", limit=50, sample_seed=seed
            ).examples
        ]

    first = ids(3)
    assert len(first) == len(set(first)) == 50 and first == ids(3) and first != ids(4)
    assert first == sorted(first, key=lambda i: int(i[1:]))  # kept in the data's order
    assert first != [f"t{i}" for i in range(50)] and int(first[-1][1:]) > 100  # drawn from all 900
    with pytest.raises(ConfigError, match="sample_seed must be an integer and needs limit="):
        HotpotQATasks(data=path, setting="fullwiki", sample_seed=3)


def test_gym_make_takes_the_options(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "hotpot_test_fullwiki_v1.json", [record(i, gold=False) for i in range(4)]
    )
    llm = ScriptedGold(good_reply)
    env = gym.make(
        "AgeMem/HotpotQA-v0",
        data=str(path),
        setting="fullwiki",
        split="test",
        limit=2,
        gold_model=llm,
        protocol="official",
        privileged_info=True,
    )
    try:
        _, info = env.reset(seed=0, options={"task_index": 1})
        assert (
            info["task"].answers == ("City 1",) and info["task"].metadata["setting"] == "fullwiki"
        )
        assert llm.calls == 2 and env.unwrapped.source.gold_report.made == 2
    finally:
        env.close()


def test_a_real_model_named_by_a_spec(tmp_path: Path, tmp_path_factory: Any) -> None:
    """The tiny offline model (random weights) through the transformers backend, decoding under
    the gold schema: whatever it writes is a gold or a counted failure, never a crash."""
    pytest.importorskip("transformers")
    from _llm_fixtures import tiny_model

    path = write_json(tmp_path / "test.json", [record(0), *(record(i, gold=False) for i in (1, 2))])
    spec = {"model": str(tiny_model(tmp_path_factory)), "backend": "transformers"}
    source = HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=spec)
    assert len(source) + source.gold_report.failed == 3 and source.examples[0].id == "t0"
    report = source.gold_report
    assert report.usage.llm_calls == 2 and report.made + report.failed == 2
    assert report.model == spec["model"] and report.cache_file.is_file()
    cached = HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=spec)
    assert len(cached) == len(source) and cached.gold_report.usage.llm_calls == 0


def test_a_broken_cache_is_made_again(tmp_path: Path) -> None:
    path = write_json(tmp_path / "test.json", [record(i, gold=False) for i in range(3)])
    first = HotpotQATasks(
        data=path, setting="fullwiki", split="test", gold_model=ScriptedGold(good_reply)
    )
    assert len(first) == 3
    cache = first.gold_report.cache_file
    payload = json.loads(cache.read_text(encoding="utf-8"))
    payload["golds"]["t0"]["supporting_facts"] = [["No such title", 0]]  # edited by hand
    payload["golds"]["t1"] = "not an entry"
    cache.write_text(json.dumps(payload), encoding="utf-8")
    llm = ScriptedGold(good_reply)
    again = HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=llm)
    assert again.examples == first.examples and llm.calls == 2  # t0, t1 asked again
    cache.write_text("{not json", encoding="utf-8")
    llm = ScriptedGold(good_reply)
    assert (
        HotpotQATasks(data=path, setting="fullwiki", split="test", gold_model=llm).examples
        == first.examples
    )
    assert llm.calls == 3
