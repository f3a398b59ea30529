"""Text encoders: the embedding behind long-term memory search and ``Filter_context``.

The default :class:`HashingEncoder` is deterministic, offline and dependency-free, so nothing
downloads. :class:`SentenceTransformerEncoder` wraps any sentence-transformers model (MiniLM by
default) for users who want a semantic encoder.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agemem_gym.errors import MissingExtraError, UnknownNameError

_WORD = re.compile(r"[a-z0-9]+")
# Encoders read at most this many characters of one text: a 1 MB message must not stall a step.
MAX_ENCODED_CHARS = 20_000


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)`` with unit-norm rows (zero rows for
        texts with no features)."""
        ...


@lru_cache(maxsize=65_536)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class HashingEncoder:
    """Deterministic bag-of-features encoder: word unigrams, word bigrams and character
    trigrams hashed into ``dim`` signed buckets, sub-linear counts, unit norm.

    Lexical, not semantic: similar wording gives high cosine. Stable across processes and
    machines (it uses blake2b, not Python's salted ``hash``).

    Example:
        >>> enc = HashingEncoder()
        >>> v = enc.encode(["My coffee order is an oat latte", "my coffee order: oat latte"])
        >>> v.shape
        (2, 512)
        >>> round(float(v[0] @ v[1]), 2) > 0.6
        True
    """

    name = "hashing"

    def __init__(self, dim: int = 512):
        self.dim = dim

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = _WORD.findall(text[:MAX_ENCODED_CHARS].lower())
        features: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
        features += [(f"b:{a}_{b}", 0.7) for a, b in zip(words, words[1:], strict=False)]
        for w in words:
            padded = f"<{w}>"
            features += [(f"c:{padded[i:i + 3]}", 0.25) for i in range(len(padded) - 2)]
        return features

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            counts: dict[int, float] = {}
            for feature, weight in self._features(text):
                index, sign = _bucket(feature, self.dim)
                counts[index] = counts.get(index, 0.0) + sign * weight
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.int64)
                val = np.fromiter(counts.values(), dtype=np.float32)
                out[row, idx] = np.sign(val) * np.log1p(np.abs(val))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


class SentenceTransformerEncoder:
    """A sentence-transformers model (default all-MiniLM-L6-v2, 384-d), normalised output.

    Args:
        model: a hub id or local path.
        device: torch device; None lets sentence-transformers choose.
    """

    def __init__(self, model: str = "sentence-transformers/all-MiniLM-L6-v2", device: str | None = None):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingExtraError("the sentence-transformers encoder", "encoders") from e
        self._model = SentenceTransformer(model, device=device)
        self.name = f"sentence-transformers:{model}"
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim is not None else len(self.encode(["x"])[0])

    def encode(self, texts: list[str]) -> np.ndarray:
        clipped = [t[:MAX_ENCODED_CHARS] for t in texts]
        vectors = self._model.encode(clipped, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


ENCODERS: dict[str, Any] = {"hashing": HashingEncoder, "minilm": SentenceTransformerEncoder}
# Encoders are stateless after loading; sharing one per process spares vector envs a model
# load each (MiniLM takes seconds).
_SHARED: dict[tuple[str, tuple[tuple[str, Any], ...]], Encoder] = {}


def make_encoder(spec: str | Encoder = "hashing", **kwargs: Any) -> Encoder:
    """Build an encoder by name or pass one through.

    ``spec`` is ``hashing``, ``minilm``, or ``minilm:<hub id or local path>`` to name the
    sentence-transformers model. Named encoders are shared within a process.

    >>> make_encoder("hashing").name
    'hashing'
    """
    if not isinstance(spec, str):
        return spec
    spec, _, model = spec.partition(":")
    if model:
        kwargs = {**kwargs, "model": model}
    if spec not in ENCODERS:
        raise UnknownNameError("encoder", spec, ENCODERS)
    key = (spec, tuple(sorted(kwargs.items())))
    if key not in _SHARED:
        _SHARED[key] = ENCODERS[spec](**kwargs)
    return _SHARED[key]
