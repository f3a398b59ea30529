"""Prompt-prefix key/value cache of the ``transformers`` backend.

A multi-turn episode sends, turn after turn, a prompt that extends the previous one (the same
system prompt, the earlier turns, then one more response and observation), and every episode
of a benchmark starts with the same system prompt. :class:`PrefixCache` keeps the key/value
states of recent prompts, keyed by their token ids, so the backend only runs the model over
the part of a prompt that no stored prompt shares (the longest common token prefix is reused).

The cache is bounded by bytes (least recently used entries go first; an entry that another
entry extends is dropped, since the longer one serves both) and belongs to one model: every
lookup passes the model's :func:`weights_fingerprint`, and a change (an optimizer step, a
loaded state dict, a moved model) empties it, so states computed with old weights are never
reused.

Helpers convert between a list of per-layer ``(keys, values)`` tensors (``[1, heads, tokens,
head_dim]`` each) and a ``transformers`` ``DynamicCache``, on transformers 4.46 and later, and
pack the rows of a batch into one left-padded cache with room for the tokens to generate.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agemem_gym.errors import ConfigError

logger = logging.getLogger(__name__)

#: Per-layer (keys, values), each ``[batch, kv_heads, tokens, head_dim]``.
Layers = list[tuple[Any, Any]]


@dataclass
class CacheStats:
    """What the cache saved: prompt tokens looked up, served from the cache, and run.

    Attributes:
        lookups: prompts looked up.
        hits: lookups that reused at least one token.
        reused_tokens: prompt tokens whose states came from the cache.
        computed_tokens: prompt tokens the model had to run (the rest of each prompt).
        evictions: entries dropped for the memory bound.
        clears: times the whole cache was emptied because the weights changed.
    """

    lookups: int = 0
    hits: int = 0
    reused_tokens: int = 0
    computed_tokens: int = 0
    evictions: int = 0
    clears: int = 0


class PrefixCache:
    """Key/value states of recent prompts, reused by longest common token prefix.

    Args:
        max_bytes: most bytes of stored states; entries beyond it are evicted, least recently
            used first. An entry larger than the bound is not stored.

    Example:
        >>> import torch
        >>> cache = PrefixCache(max_bytes=1 << 20)
        >>> kv = [(torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8))]
        >>> cache.store([5, 6, 7, 8], kv, fingerprint=0)
        >>> length, layers = cache.lookup([5, 6, 9], fingerprint=0)
        >>> length, tuple(layers[0][0].shape)
        (2, (1, 2, 2, 8))
        >>> cache.lookup([5, 6, 9], fingerprint=1)[0]  # new weights: nothing is reused
        0
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ConfigError(f"prefix cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._entries: OrderedDict[int, tuple[np.ndarray, Layers, int]] = OrderedDict()
        self._next_key = 0
        self._bytes = 0
        self._fingerprint: Any = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes of states held now."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._bytes = 0

    def _check(self, fingerprint: Any) -> None:
        if fingerprint != self._fingerprint:
            if self._entries:
                self.stats.clears += 1
                logger.debug("model weights changed: prefix cache of %d entries cleared", len(self))
            self.clear()
            self._fingerprint = fingerprint

    def lookup(self, ids: Sequence[int], fingerprint: Any) -> tuple[int, Layers]:
        """The longest stored prefix of ``ids``: its length and its states (views, sliced to it).

        Returns ``(0, [])`` when nothing is shared, or when ``fingerprint`` (of the model's
        weights) differs from the one the entries were computed with.
        """
        self._check(fingerprint)
        query = np.asarray(ids, dtype=np.int64)
        best_key, best = None, 0
        for key, (stored, _, _) in self._entries.items():
            n = min(len(stored), len(query))
            if n <= best:
                continue
            differ = np.flatnonzero(stored[:n] != query[:n])
            shared = int(differ[0]) if len(differ) else n
            if shared > best:
                best_key, best = key, shared
        self.stats.lookups += 1
        if best_key is None:
            self.stats.computed_tokens += len(query)
            return 0, []
        self._entries.move_to_end(best_key)
        self.stats.hits += 1
        self.stats.reused_tokens += best
        self.stats.computed_tokens += len(query) - best
        layers = self._entries[best_key][1]
        return best, [(k[:, :, :best], v[:, :, :best]) for k, v in layers]

    def store(self, ids: Sequence[int], layers: Layers, fingerprint: Any) -> None:
        """Keep the states of ``ids`` (``layers`` must cover exactly these tokens)."""
        self._check(fingerprint)
        if not ids or not layers:
            return
        if layers[0][0].shape[-2] != len(ids):
            raise ValueError(f"states cover {layers[0][0].shape[-2]} tokens, ids {len(ids)}")
        size = sum(k.untyped_storage().nbytes() + v.untyped_storage().nbytes() for k, v in layers)
        if size > self.max_bytes:
            return
        query = np.asarray(ids, dtype=np.int64)
        for key, (stored, _, stored_size) in list(self._entries.items()):
            if len(stored) <= len(query) and np.array_equal(stored, query[: len(stored)]):
                del self._entries[key]  # the new entry serves every lookup this one served
                self._bytes -= stored_size
        while self._entries and self._bytes + size > self.max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
            self.stats.evictions += 1
        self._entries[self._next_key] = (query, layers, size)
        self._next_key += 1
        self._bytes += size


_OPTIMIZER_STEPS = [0]
_HOOKED = [False]


def _count_optimizer_step(*_: Any) -> None:
    _OPTIMIZER_STEPS[0] += 1


def optimizer_steps() -> int:
    """Optimizer steps taken in this process since the first call (any ``torch.optim``
    optimizer: fused ones write the weights without bumping their version counters)."""
    if not _HOOKED[0]:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        register_optimizer_step_post_hook(_count_optimizer_step)
        _HOOKED[0] = True
    return _OPTIMIZER_STEPS[0]


def weights_fingerprint(model: Any) -> tuple[Any, ...]:
    """Changes whenever the model's weights may have: the model object, train/eval mode, any
    optimizer step in the process, and each parameter's storage and in-place version counter
    (bumped by ``copy_``, ``load_state_dict`` and non-fused optimizers). Writes through
    ``param.data`` bump none of these: call ``TransformersBackend.clear_prefix_cache`` after
    them."""
    return (
        id(model),
        bool(getattr(model, "training", False)),
        optimizer_steps(),
        tuple((p.data_ptr(), p._version) for p in model.parameters()),
    )


def supports_prefix_cache(model: Any) -> bool:
    """Whether reusing stored states is exact for this model: decoder-only, every layer full
    attention (sliding windows and recurrent layers keep states a prefix cannot replay), no
    active dropout."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    layer_types = getattr(text, "layer_types", None)
    if layer_types is not None and any(t != "full_attention" for t in layer_types):
        return False
    if layer_types is None and getattr(text, "use_sliding_window", False):
        return False
    if getattr(model, "training", False):
        from torch import nn

        if getattr(text, "attention_dropout", 0.0) or any(
            isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()
        ):
            return False
    return True


def cache_kwarg(model: Any) -> str:
    """The name a model's ``forward`` (and ``generate``) gives its key/value cache argument:
    ``cache`` on recent transformers, ``past_key_values`` before."""
    return "cache" if "cache" in _forward_parameters(model) else "past_key_values"


def prefill_options(model: Any) -> dict[str, int]:
    """Forward arguments that skip the output head for all but the last position (a prefill
    only needs the states)."""
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in _forward_parameters(model):
            return {name: 1}
    return {}


def _forward_parameters(model: Any) -> Any:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    return inspect.signature(base.forward).parameters


def to_dynamic_cache(layers: Layers, capacity: int = 0) -> Any:
    """A ``DynamicCache`` holding ``layers`` (empty when ``layers`` is), with room for
    ``capacity`` tokens in all (see :func:`_growing_layer`)."""
    from transformers import DynamicCache

    if not layers:
        return DynamicCache()
    length = layers[0][0].shape[-2]
    buffers = []
    for keys, values in layers:
        size = max(capacity, length)
        k = keys.new_empty((*keys.shape[:2], size, keys.shape[3]))
        v = values.new_empty((*values.shape[:2], size, values.shape[3]))
        k[:, :, :length], v[:, :, :length] = keys, values
        buffers.append((k, v))
    return _cache_of(buffers, length)


def layers_of(cache: Any) -> Layers:
    """The per-layer ``(keys, values)`` of a ``DynamicCache``."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))  # transformers < 4.56


def pack_left(rows: Sequence[Layers], width: int, capacity: int = 0) -> Any:
    """A ``DynamicCache`` of rows of states (batch 1 each, any lengths up to ``width``)
    stacked into one batch, each row left-padded with zeros to ``width`` tokens (the padding
    is masked out), with room for ``capacity`` tokens in all."""
    template = next(r for r in rows if r)
    buffers = []
    for layer, (k0, v0) in enumerate(template):
        size = max(capacity, width)
        keys = k0.new_zeros((len(rows), k0.shape[1], size, k0.shape[3]))
        values = v0.new_zeros((len(rows), v0.shape[1], size, v0.shape[3]))
        for row, states in enumerate(rows):
            if states:
                k, v = states[layer]
                keys[row, :, width - k.shape[-2] : width] = k[0]
                values[row, :, width - v.shape[-2] : width] = v[0]
        buffers.append((keys, values))
    return _cache_of(buffers, width)


def _cache_of(buffers: Layers, length: int) -> Any:
    """A ``DynamicCache`` whose layers hold the first ``length`` tokens of ``buffers``."""
    from transformers import DynamicCache

    cache = DynamicCache()
    layer_class = _growing_layer()
    if layer_class is not None and hasattr(cache, "layers"):
        cache.layers = [layer_class().seat(k, v, length) for k, v in buffers]
        return cache
    for index, (keys, values) in enumerate(buffers):
        cache.update(keys[:, :, :length], values[:, :, :length], index)
    return cache


@functools.cache
def _growing_layer() -> Any:
    """A ``DynamicLayer`` that writes new states into spare room of preallocated buffers: the
    stock layer concatenates, which copies the whole cache at every decoding step (most of a
    batched decoding step's time on CPU). None before transformers 4.56 (no layer objects)."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None

    class GrowingLayer(DynamicLayer):  # type: ignore[misc, valid-type]
        def seat(self, keys: Any, values: Any, length: int) -> GrowingLayer:
            self._buffers: tuple[Any, Any] | None = (keys, values)
            self._length = length
            self.device, self.is_initialized = keys.device, True
            self.keys, self.values = keys[:, :, :length], values[:, :, :length]
            return self

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            buffers = getattr(self, "_buffers", None)
            end = getattr(self, "_length", 0) + key_states.shape[-2]
            if (  # no room, or cropped / reordered by generate: concatenate from now on
                buffers is None
                or end > buffers[0].shape[-2]
                or self.keys is None
                or self.keys.shape[-2] != self._length
                or self.keys.data_ptr() != buffers[0].data_ptr()
                or key_states.shape[0] != buffers[0].shape[0]
            ):
                self._buffers = None
                return super().update(key_states, value_states, *args, **kwargs)
            keys, values = buffers
            keys[:, :, self._length : end] = key_states
            values[:, :, self._length : end] = value_states
            self._length = end
            self.keys, self.values = keys[:, :, :end], values[:, :, :end]
            return self.keys, self.values

    return GrowingLayer
