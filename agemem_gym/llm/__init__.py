"""LLM backends behind one small interface, looked up by name.

Backends load their packages (torch, transformers, httpx) only when built.

>>> sorted(BACKENDS)
['openai', 'transformers']
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from agemem_gym.errors import ConfigError, UnknownNameError
from agemem_gym.llm._threads import THREADS_ENV, set_torch_threads
from agemem_gym.llm.base import BackendError, Generation, LLMBackend, Usage

#: backend name -> "module:Class"; a new backend is one entry.
BACKENDS: dict[str, str] = {
    "transformers": "agemem_gym.llm.transformers_backend:TransformersBackend",
    "openai": "agemem_gym.llm.openai_backend:OpenAIBackend",
}


def make_backend(name: str, model: str, **options: Any) -> LLMBackend:
    """Build the backend ``name`` for ``model`` with its own keyword options.

    Args:
        name: a key of :data:`BACKENDS`.
        model: what the backend loads or asks for (a folder, a hub id, a served model name),
            or a named model (:data:`~agemem_gym.llm.models.NAMED_MODELS`, e.g.
            ``"smollm2-135m"``), which stands for its folder, built on first use.
        **options: the backend class's keyword options (``device=``, ``base_url=``, ...).

    Returns:
        The backend, ready to :meth:`~LLMBackend.generate`.

    Raises:
        UnknownNameError: ``name`` is not registered.
        MissingExtraError: the backend's packages are not installed.
        ConfigError: the options are invalid.
        ModelFetchError: a named model's weights cannot be fetched or converted.
    """
    if name not in BACKENDS:
        raise UnknownNameError("LLM backend", name, BACKENDS)
    from agemem_gym.llm.models import resolve_model

    model = resolve_model(model)
    module_name, class_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        inspect.signature(cls).bind(model, **options)
    except TypeError as e:
        known = [p for p in inspect.signature(cls).parameters if p != "model"]
        raise ConfigError(f"invalid options for the {name} backend ({e}); known: {known}") from e
    backend: LLMBackend = cls(model, **options)
    return backend


def build_tiny_model(out_dir: Any, **options: Any) -> Any:
    """Build the tiny offline model; see :func:`agemem_gym.llm.tiny_model.build_tiny_model`."""
    from agemem_gym.llm.tiny_model import build_tiny_model as build

    return build(out_dir, **options)


__all__ = [
    "BACKENDS",
    "BackendError",
    "Generation",
    "LLMBackend",
    "THREADS_ENV",
    "Usage",
    "build_tiny_model",
    "make_backend",
    "set_torch_threads",
]
