"""Cost of the memory layer, measured against peers in the same run.

1. Median ``env.step`` time on ``AgeMem/Assistant-v0`` with the oracle (which calls all six
   tools), split into encoder time and the rest, beside the no-memory policy's step time.
2. ``Retrieve_memory`` latency at 1k and 10k entries: our chromadb-backed LTM against a
   brute-force NumPy cosine over the very same vectors, with and without query encoding.

Usage: python benchmarks/perf/env_overhead.py [--episodes 20] [--sizes 1000 10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from agemem_gym import AgeMemEnv
from agemem_gym.memory import HashingEncoder, LongTermMemory
from agemem_gym.policies import NoopPolicy, OraclePolicy, Policy


class TimedEncoder:
    """Wraps an encoder and accumulates the seconds spent encoding."""

    def __init__(self, inner: HashingEncoder):
        self.inner, self.name, self.dim, self.seconds = inner, inner.name, inner.dim, 0.0

    def encode(self, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.inner.encode(texts)
        finally:
            self.seconds += time.perf_counter() - start


def step_costs(policy: Policy, episodes: int) -> tuple[list[float], list[float]]:
    encoder = TimedEncoder(HashingEncoder())
    env = AgeMemEnv("assistant", encoder=encoder, privileged_info=True)
    steps, encoding = [], []
    for i in range(episodes):
        obs, info = env.reset(seed=i, options={"task_index": i})
        done = False
        while not done:
            action = policy.act(obs, info)
            encoder.seconds = 0.0
            start = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            steps.append(time.perf_counter() - start)
            encoding.append(encoder.seconds)
            done = terminated or truncated
    env.close()
    return steps, encoding


def retrieval_latency(size: int, queries: int, top_k: int = 5) -> dict[str, float]:
    rng = np.random.default_rng(size)
    vocabulary = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choice(vocabulary, 12)) for _ in range(size)]
    questions = [" ".join(rng.choice(vocabulary, 6)) for _ in range(queries)]
    ltm = LongTermMemory(HashingEncoder(), namespace=f"perf-{size}")
    for text in texts:
        ltm.add(text)
    vectors = ltm.encoder.encode(texts)
    query_vectors = ltm.encoder.encode(questions)

    def brute(q: np.ndarray) -> np.ndarray:
        scores = vectors @ q
        best = np.argpartition(-scores, top_k)[:top_k]
        return best[np.argsort(-scores[best])]

    def timed(fn, items) -> float:
        samples = []
        for item in items:
            start = time.perf_counter()
            fn(item)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    store_only = timed(lambda q: ltm._collection.query(query_embeddings=q[None], n_results=top_k,
                                                       include=["distances"]), query_vectors)
    numpy_only = timed(brute, query_vectors)
    with_encoding = timed(lambda text: ltm.retrieve(text, top_k), questions)
    numpy_encoding = timed(lambda text: brute(ltm.encoder.encode([text])[0]), questions)
    ltm.close()
    return {"size": size, "chroma_ms": store_only * 1e3, "numpy_ms": numpy_only * 1e3,
            "ratio": store_only / numpy_only, "chroma_enc_ms": with_encoding * 1e3,
            "numpy_enc_ms": numpy_encoding * 1e3, "ratio_enc": with_encoding / numpy_encoding}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    oracle_steps, oracle_encoding = step_costs(OraclePolicy(), args.episodes)
    noop_steps, _ = step_costs(NoopPolicy(), args.episodes)
    without = [s - e for s, e in zip(oracle_steps, oracle_encoding, strict=True)]
    median_noop = statistics.median(noop_steps)
    print(f"env.step on Assistant-v0, {args.episodes} episodes ({len(oracle_steps)} oracle steps)")
    print(f"  oracle, encoder included : {statistics.median(oracle_steps) * 1e3:8.3f} ms "
          f"({statistics.median(oracle_steps) / median_noop:5.1f}x the no-memory step)")
    print(f"  oracle, encoder excluded : {statistics.median(without) * 1e3:8.3f} ms "
          f"({statistics.median(without) / median_noop:5.1f}x)")
    print(f"  encoder share (mean)     : {sum(oracle_encoding) / sum(oracle_steps):8.1%}")
    print(f"  no-memory policy (noop)  : {median_noop * 1e3:8.3f} ms")
    print(f"Retrieve (top-5), median of {args.queries} queries: chromadb LTM vs brute-force NumPy cosine")
    print("  store query on precomputed vectors | LongTermMemory.retrieve (encodes the query) vs "
          "NumPy with the same encoding")
    print(f"  {'entries':>8} {'chroma ms':>10} {'numpy ms':>9} {'ratio':>6} | "
          f"{'':>20} {'ltm ms':>9} {'numpy ms':>9} {'ratio':>6}")
    for size in args.sizes:
        r = retrieval_latency(size, args.queries)
        print(f"  {r['size']:>8} {r['chroma_ms']:>10.3f} {r['numpy_ms']:>9.3f} {r['ratio']:>6.2f} | "
              f"{'':>20} {r['chroma_enc_ms']:>9.3f} {r['numpy_enc_ms']:>9.3f} {r['ratio_enc']:>6.2f}")


if __name__ == "__main__":
    main()
