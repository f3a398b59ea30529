import os

import numpy as np
import pytest

from agemem_gym import AgeMemEnv
from agemem_gym.errors import UnknownNameError
from agemem_gym.memory import (
    ApproxTokenCounter,
    Context,
    ExtractiveSummarizer,
    HashingEncoder,
    LongTermMemory,
    MemoryNotFoundError,
    Message,
    TokenizerCounter,
    make_encoder,
)


def test_hashing_encoder_is_deterministic_normalised_and_lexical():
    enc = HashingEncoder()
    a = enc.encode(["The user lives in Lisbon.", "the USER lives in lisbon", "Quarterly tax filing"])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert a[0] @ a[1] > 0.8 and a[0] @ a[2] < 0.2
    assert np.array_equal(a, HashingEncoder().encode(["The user lives in Lisbon.", "the USER lives in lisbon",
                                                      "Quarterly tax filing"]))
    assert not enc.encode(["!!!"]).any()


def test_unknown_encoder_suggests_a_name():
    with pytest.raises(UnknownNameError, match="unknown encoder 'hashin'. Did you mean 'hashing'"):
        make_encoder("hashin")


def test_ltm_ids_are_short_stable_and_namespaced():
    first = LongTermMemory(namespace="episode-1")
    again = LongTermMemory(namespace="episode-1")
    other = LongTermMemory(namespace="episode-2")
    ids = [first.add(f"fact {i}") for i in range(3)]
    assert all(len(i) == 10 and i.startswith("mem_") for i in ids)
    assert [again.add(f"fact {i}") for i in range(3)] == ids
    assert other.add("fact 0") != ids[0]
    for ltm in (first, again, other):
        ltm.close()


def test_ltm_update_keeps_created_at_and_delete_forgets():
    clock = iter(["t1", "t2", "t3"])
    ltm = LongTermMemory(clock=lambda: next(clock))
    memory_id = ltm.add("old", {"tags": ["x", "y"]}, memory_type="preference")
    entry = ltm.update(memory_id, "new")
    assert (entry.content, entry.metadata["created_at"], entry.metadata["updated_at"]) == ("new", "t1", "t2")
    assert entry.memory_type == "preference" and entry.metadata["tags"] == ["x", "y"]
    assert [e.content for e in ltm.retrieve("new", 5)] == ["new"]
    ltm.delete(memory_id)
    assert ltm.retrieve("new", 5) == []
    with pytest.raises(MemoryNotFoundError, match=r"no memory with id 'mem_zzzzzz' \(existing ids: none\)"):
        ltm.get("mem_zzzzzz")
    ltm.close()


def test_retrieve_matches_brute_force_cosine():
    ltm = LongTermMemory(namespace="bf")
    rng = np.random.default_rng(0)
    words = ["apple", "river", "tax", "violin", "orbit", "pepper", "lisbon", "garden", "piano", "storm"]
    texts = [" ".join(rng.choice(words, 4)) + f" {i}" for i in range(200)]
    for t in texts:
        ltm.add(t)
    vectors = ltm.encoder.encode(texts)
    for query in ["apple river", "violin storm garden", "tax"]:
        q = ltm.encoder.encode([query])[0]
        best = set(np.argsort(-(vectors @ q))[:5])
        found = {texts.index(e.content) for e in ltm.retrieve(query, 5)}
        assert len(found & best) >= 4  # HNSW is approximate
    ltm.close()


def test_persistent_store_survives_a_new_client(tmp_path):
    ltm = LongTermMemory(store=str(tmp_path / "chroma"))
    ltm.add("persisted fact")
    name = ltm._collection.name
    import chromadb
    from chromadb.config import Settings
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False))
    assert client.get_collection(name).get()["documents"] == ["persisted fact"]
    ltm.close()


def test_env_accepts_a_persistent_store(tmp_path):
    env = AgeMemEnv("assistant", memory_store=str(tmp_path / "store"), stages=(3,))
    env.reset(seed=0)
    assert (tmp_path / "store").exists()
    env.close()


def test_context_ids_never_repeat_and_tokens_add_up():
    ctx = Context()
    ctx.append("system", "s" * 40, "system")
    a = ctx.append("user", "a" * 8)
    ctx.remove([a.id])
    b = ctx.append("user", "b" * 8)
    assert b.id == "m3" and ctx.total_tokens() == (10 + 4) + (2 + 4)
    ctx.reset()
    assert [m.id for m in ctx] == ["m1"]


def test_tokenizer_counter_uses_encode():
    class Words:
        def encode(self, text, add_special_tokens=False):
            return text.split()
    assert TokenizerCounter(Words()).count("three little words") == 3
    assert ApproxTokenCounter().count("") == 0


def test_extractive_summary_keeps_facts_and_questions():
    messages = [Message("m2", "user", "Hi! I moved to Lisbon in 2021. Lovely. Should we book the flight?"),
                Message("m3", "assistant", "Okay. Sounds good.")]
    summary = ExtractiveSummarizer().summarize(messages)
    assert "Lisbon in 2021" in summary and "book the flight?" in summary
    assert "Okay" not in summary


@pytest.mark.engine
def test_minilm_encoder_loads_offline_and_is_semantic(minilm_path):
    enc = make_encoder(f"minilm:{minilm_path}")
    assert enc.dim == 384
    v = enc.encode(["The user owns a dog.", "The person has a puppy.", "Quarterly tax filing deadline"])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    env = AgeMemEnv("assistant", encoder=f"minilm:{minilm_path}", stages=(1,), num_facts=2,
                    num_updates=0, num_deletes=0, num_queried=1)
    env.reset(seed=0)
    assert env.ltm.encoder is enc  # shared, loaded once per process
    env.close()


def test_running_token_total_matches_a_fresh_sum_after_every_change():
    ctx = Context()
    ctx.append("system", "rules " * 10, "system")
    ids = [ctx.append("user", f"message {i} " * (i + 1)).id for i in range(6)]

    def fresh():
        return sum(m.tokens for m in ctx)

    ctx.remove(ids[:2])
    assert ctx.total_tokens() == fresh()
    ctx.replace(ids[3:5], "user", "short summary", "summary")
    assert ctx.total_tokens() == fresh()
    ctx.reset()
    assert ctx.total_tokens() == fresh() == 19


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_clearing_memory_every_episode_forgets_everything_and_does_not_pile_up_memory():
    ltm = LongTermMemory(namespace="episode-0")
    ltm.add("The user's dog is named Mochi.")
    ltm.clear("episode-1")
    assert len(ltm) == 0 and ltm.retrieve("dog", 3) == []
    first = ltm.add("The user lives in Porto.")
    assert [e.content for e in ltm.retrieve("dog", 3)] == ["The user lives in Porto."]
    ltm.clear("episode-1")
    assert ltm.add("The user lives in Porto.") == first  # ids restart in the namespace
    before = _rss_mb()
    for episode in range(300):  # a fresh chromadb collection per clear used ~2.5 MB each, never freed
        ltm.clear(f"episode-{episode}")
        ltm.add("The user's dog is named Mochi.")
        ltm.add("The user lives in Porto.")
        ltm.retrieve("dog", 1)
    assert _rss_mb() - before < 200
    ltm.close()


def test_ltm_stores_what_chromadb_cannot_hold_as_text_and_refuses_reserved_keys():
    from agemem_gym.memory.ltm import MemoryInputError

    ltm = LongTermMemory(namespace="odd")
    mem_id = ltm.add("bad \ud800 text", {"big": 2**70, "nan": float("nan"), "nested": {"a": [1]}},
                     memory_type="\udfff")
    entry = ltm.get(mem_id)
    assert entry.content == "bad \ufffd text"
    assert [e.id for e in ltm.retrieve("bad text", 1)] == [mem_id]
    for key in ("", "$and", "#document", "chroma:document", 5):
        with pytest.raises(MemoryInputError):
            ltm.add("x", {key: 1})
    assert len(ltm) == 1  # a refused add spends no id and stores nothing
    ltm.close()


def test_equal_scores_come_back_in_insertion_order_on_fresh_and_reused_memory():
    texts = ["The user likes green tea."] * 6  # one embedding: every score ties

    def ids_for(ltm):
        for t in texts:
            ltm.add(t)
        return [e.id for e in ltm.retrieve("green tea", top_k=4)]

    fresh = LongTermMemory(namespace="tie")
    first = ids_for(fresh)
    assert len({e.score for e in fresh.retrieve("green tea", top_k=6)}) == 1
    assert first == [e.id for e in fresh.entries()[:4]]
    reused = LongTermMemory(namespace="other")
    ids_for(reused)
    for _ in range(3):
        reused.clear("tie")
        assert ids_for(reused) == first
    fresh.close()
    reused.close()


def test_ltm_pickles_and_deep_copies_into_a_collection_of_its_own():
    import copy
    import pickle

    ltm = LongTermMemory(namespace="copy")
    kept = ltm.add("The user's dog is named Mochi.", {"topic": "pets"})
    for clone in (pickle.loads(pickle.dumps(ltm)), copy.deepcopy(ltm)):
        assert [e.content for e in clone.retrieve("dog name", 1)] == ["The user's dog is named Mochi."]
        clone.add("Only in the copy.")
        assert len(clone) == 2 and len(ltm) == 1
        assert clone.add("next") != kept
        clone.close()
    assert [e.id for e in ltm.retrieve("only in the copy", 3)] == [kept]
    ltm.close()


def test_closed_memories_give_their_emptied_collection_to_the_next_one():
    from agemem_gym.memory.store import StoreSettings, shared_store

    store = shared_store(StoreSettings())
    first = LongTermMemory(namespace="a")
    first.add("secret of episode a")
    first.close()
    pooled = store.pooled
    assert pooled >= 1
    second = LongTermMemory(namespace="b")
    assert store.pooled == pooled - 1
    assert second.retrieve("secret", 3) == []  # an emptied collection: nothing leaks across
    assert second._collection.count() == 0
    second.close()


def test_the_fork_safe_array_index_ranks_and_filters_like_chromadb():
    from agemem_gym.memory.array_store import ArrayClient

    facts = [("Trip to Kyoto in spring.", {"year": 2019, "topic": "travel"}),
             ("Trip to Lima for work.", {"year": 2023, "topic": "travel"}),
             ("The user's cat is Tofu.", {"year": 2021, "topic": "pets"}),
             ("The user likes green tea.", {"year": 2023, "topic": "food"})]
    chroma, array = LongTermMemory(namespace="x"), LongTermMemory(namespace="x", client=ArrayClient())
    for ltm in (chroma, array):
        for text, meta in facts:
            ltm.add(text, meta)
    for query, filt in [("trip", None), ("trip", {"year": {"$gte": 2020}}),
                        ("cat", {"$or": [{"topic": "pets"}, {"topic": {"$in": ["food"]}}]}),
                        ("anything", {"topic": {"$ne": "travel"}}), ("x", {"missing": 1})]:
        got = [(e.id, e.score) for e in array.retrieve(query, 3, filt)]
        want = [(e.id, e.score) for e in chroma.retrieve(query, 3, filt)]
        assert [i for i, _ in got] == [i for i, _ in want], (query, filt)
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    chroma.close()
    array.close()
