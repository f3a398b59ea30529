"""How often Retrieve finds HotpotQA's supporting facts, per encoder.

For each example every sentence of every context paragraph (supporting and distractor, in
the self-contained form the benchmark tells them) is stored as one long-term-memory entry;
the question is the query. Reported per encoder:

- ``sf_hit``: fraction of supporting facts among the top-k, averaged over examples;
- ``sf_hit_micro``: the same over all supporting facts pooled;
- ``all_found``: fraction of examples whose supporting facts are all in the top-k
  (impossible when an example has more than k of them);
- ``mrr_first``: mean reciprocal rank of the first supporting fact (over the whole store);
- ``ms/query``: wall time of one top-k retrieval (encoding the question included).

Each example's sentences are encoded in one batch before they are stored.

Usage::

    python benchmarks/perf/retrieval_hit_rate.py --data hotpot_dev_distractor_v1.json
    python benchmarks/perf/retrieval_hit_rate.py --encoders hashing --limit 20 --top-k 5
    python benchmarks/perf/retrieval_hit_rate.py --minilm-model /path/to/all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from agemem_gym.memory import Encoder, LongTermMemory, make_encoder
from agemem_gym.memory.ltm import make_chroma_client
from agemem_gym.tasks.hotpotqa.data import ENV_VAR, HotpotExample, load_examples
from agemem_gym.tasks.hotpotqa.text import self_contained


class BatchedEncoder:
    """Wraps an encoder: :meth:`prime` encodes many texts in one batch, later calls reuse them.

    Memory adds encode one text at a time; batching an example's sentences up front keeps a
    neural encoder's timing about retrieval rather than per-call overhead.
    """

    def __init__(self, inner: Encoder):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, np.ndarray] = {}

    def prime(self, texts: list[str]) -> None:
        """Encode ``texts`` in one batch and keep the vectors (dropping earlier ones)."""
        self._cache = dict(zip(texts, self.inner.encode(texts), strict=True))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``, from the cache when primed."""
        missing = [t for t in texts if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.encode(missing), strict=True))
        return np.stack([self._cache[t] for t in texts]).astype(np.float32)


@dataclass
class EncoderResult:
    """Aggregated retrieval figures of one encoder."""

    encoder: str
    examples: int
    sf_hit: float
    sf_hit_micro: float
    all_found: float
    mrr_first: float
    ms_per_query: float


def evaluate(
    encoder_name: str, examples: list[HotpotExample], top_k: int, **encoder_options: Any
) -> EncoderResult:
    """Store each example's sentences, query with its question, and count supporting hits."""
    encoder = BatchedEncoder(make_encoder(encoder_name, **encoder_options))
    client = make_chroma_client(None)
    per_example, hits_total, facts_total, all_found, rr, query_time = [], 0, 0, 0, 0.0, 0.0
    for ex in examples:
        ltm = LongTermMemory(encoder=encoder, client=client, namespace=ex.id)
        entries = [
            ((title, i), self_contained(title, sentence))
            for title, sentences in ex.context
            for i, sentence in enumerate(sentences)
            if sentence.strip()
        ]
        encoder.prime([content for _, content in entries])
        key_of = {ltm.add(content): key for key, content in entries}
        gold = set(ex.supporting_facts)
        start = time.perf_counter()
        top = ltm.retrieve(ex.question, top_k=top_k)
        query_time += time.perf_counter() - start
        ranking = ltm.retrieve(ex.question, top_k=len(ltm))
        ltm.close()
        hits = len({key_of[e.id] for e in top} & gold)
        per_example.append(hits / len(gold) if gold else 0.0)
        hits_total, facts_total = hits_total + hits, facts_total + len(gold)
        all_found += int(bool(gold) and hits == len(gold))
        first = next((r for r, e in enumerate(ranking, 1) if key_of[e.id] in gold), None)
        rr += 1.0 / first if first else 0.0
    n = max(1, len(examples))
    return EncoderResult(
        encoder=encoder_name,
        examples=len(examples),
        sf_hit=sum(per_example) / n,
        sf_hit_micro=hits_total / max(1, facts_total),
        all_found=all_found / n,
        mrr_first=rr / n,
        ms_per_query=1000 * query_time / n,
    )


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run every encoder, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get(ENV_VAR), help="HotpotQA JSON file")
    parser.add_argument("--split", default="validation", choices=("validation", "train"))
    parser.add_argument("--limit", type=int, default=None, help="use the first N examples")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--encoders", default="hashing,minilm", help="comma-separated names")
    parser.add_argument(
        "--minilm-model", default=None, help="hub id or local folder of the MiniLM model"
    )
    args = parser.parse_args(argv)
    if not args.data:
        parser.error(f"pass --data PATH or set {ENV_VAR}")
    examples = load_examples(args.data, args.split)[: args.limit]
    header = f"{'encoder':<10} {'n':>4} {'sf_hit@' + str(args.top_k):>9} {'micro':>7} "
    header += f"{'all_found':>9} {'mrr_first':>9} {'ms/query':>8}"
    print(header)
    for name in args.encoders.split(","):
        name = name.strip()
        options = {"model": args.minilm_model} if name == "minilm" and args.minilm_model else {}
        r = evaluate(name, examples, args.top_k, **options)
        print(
            f"{r.encoder:<10} {r.examples:>4} {r.sf_hit:>9.3f} {r.sf_hit_micro:>7.3f} "
            f"{r.all_found:>9.3f} {r.mrr_first:>9.3f} {r.ms_per_query:>8.2f}"
        )


if __name__ == "__main__":
    main()
