"""Hugging Face ``transformers`` backend: a local folder or hub id, generated in-process.

Prompts go through the tokenizer's chat template (with the generation prompt), are left-padded
into batches and generated with ``model.generate``. Sampling is fully set by the call
(``temperature``, ``top_p``; no top-k, no repetition penalty), whatever the model's
``generation_config`` suggests, so results do not depend on a model's defaults. Greedy at
temperature 0. Runs on CPU in float32, on a GPU in bfloat16 unless told otherwise.

A completion ends at the first end-of-turn token (kept in ``completion_ids``, not in the text)
or stop string (kept in the text; ``completion_ids`` end with the token that completed it).
Log-probs, when asked, are those of the raw model distribution (before temperature and top-p),
one per completion token; they keep every step's logits until the batch ends, so lower
``batch_size`` for long completions with large vocabularies.

By default (``prefill="per_prompt"``) each prompt of a batch runs through the model alone,
unpadded, and the batch then decodes together; prompts that share a start with an earlier
prompt (the next turn of an episode, the system prompt of every episode) reuse that start's
key/value states (:mod:`agemem_gym.llm._kv_cache`) and run only their new tokens. The cache is
bounded (``prefix_cache_mb``) and emptied whenever the model's weights change.
``prefill="padded"`` runs the left-padded batch from scratch in one forward instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from agemem_gym.errors import ConfigError, MissingExtraError
from agemem_gym.llm._kv_cache import (
    Layers,
    PrefixCache,
    cache_kwarg,
    layers_of,
    pack_left,
    prefill_options,
    supports_prefix_cache,
    to_dynamic_cache,
    weights_fingerprint,
)
from agemem_gym.llm._threads import set_torch_threads
from agemem_gym.llm.base import (
    Generation,
    LLMBackend,
    Prompt,
    check_sampling,
    find_stop,
    tool_as_user,
    validate_prompt,
)

logger = logging.getLogger(__name__)

ToolRole = Literal["auto", "native", "user"]
Prefill = Literal["per_prompt", "padded"]


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise MissingExtraError("the transformers LLM backend", "llm") from e
    return torch, transformers


class TransformersBackend(LLMBackend):
    """Generate with a ``transformers`` causal LM in this process.

    Args:
        model: local folder or hub id (``from_pretrained``); a folder is loaded offline.
        device: ``"auto"`` (CUDA when available, else CPU), or a torch device string.
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU) or a torch dtype name.
        batch_size: most prompts generated together (prompts of similar length are grouped).
        tool_role: how ``tool`` messages reach the chat template: ``"native"`` as is,
            ``"user"`` as user messages with a prefix, ``"auto"`` as is unless the template
            rejects them.
        chat_template: a Jinja chat template replacing the tokenizer's own.
        revision: hub revision.
        trust_remote_code: allow the model's own code (hub models only).
        attn_implementation: e.g. ``"sdpa"`` or ``"flash_attention_2"``.
        threads: torch CPU threads (default: ``$AGEMEM_THREADS``, else the free cores; see
            :func:`agemem_gym.llm._threads.set_torch_threads`).
        prefix_cache_mb: most memory (MiB) of key/value states kept for reuse by later
            prompts with the same start; 0 turns the reuse off.
        prefill: ``"per_prompt"`` (each prompt's uncached tokens alone, no padding) or
            ``"padded"`` (the batch left-padded to its longest prompt, run from scratch in one
            forward, no reuse). Models with sliding-window or recurrent layers always use
            ``"padded"``.

    Raises:
        MissingExtraError: torch or transformers is not installed.
        ConfigError: the model cannot be loaded or has no chat template.

    Example:
        >>> import tempfile
        >>> from agemem_gym.llm.tiny_model import build_tiny_model
        >>> tmp = tempfile.TemporaryDirectory()
        >>> llm = TransformersBackend(str(build_tiny_model(tmp.name)))
        >>> [g] = llm.generate([[{"role": "user", "content": "hi"}]], max_new_tokens=4)
        >>> (g.completion_tokens, g.finish_reason)
        (4, 'length')
        >>> tmp.cleanup()
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        tool_role: ToolRole = "auto",
        chat_template: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        threads: int | None = None,
        prefix_cache_mb: float = 1024,
        prefill: Prefill = "per_prompt",
    ) -> None:
        torch, transformers = _import_torch_transformers()
        set_torch_threads(threads)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if tool_role not in ("auto", "native", "user"):
            raise ConfigError(f"tool_role must be 'auto', 'native' or 'user', got {tool_role!r}")
        self.model_name = model
        self.batch_size = batch_size
        self._tool_role: ToolRole = tool_role
        self._torch = torch
        self.device = torch.device(
            ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        )
        self.dtype = self._resolve_dtype(dtype)
        load: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if Path(model).is_dir():
            load["local_files_only"] = True
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model, **load)
            model_load = dict(load, attn_implementation=attn_implementation)
            major = int(transformers.__version__.split(".")[0])
            model_load["dtype" if major >= 5 else "torch_dtype"] = self.dtype
            self.model = transformers.AutoModelForCausalLM.from_pretrained(model, **model_load)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load model {model!r} with transformers: {e}") from e
        self.model.to(self.device).eval()
        self._attach_tokenizer(chat_template)
        self._attach_prefix_cache(prefix_cache_mb, prefill)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, batch_size: int = 16,
                   tool_role: ToolRole = "auto", prefix_cache_mb: float = 1024,
                   prefill: Prefill = "per_prompt") -> TransformersBackend:
        """A backend around a model already in memory (a trainer's policy): generation always
        sees the current weights, with no copy and no reload.

        The model stays on its device and in its dtype; the tokenizer must have a chat template.
        Cached prompt states are dropped as soon as the weights change (an optimizer step).
        """
        torch, _ = _import_torch_transformers()
        backend = cls.__new__(cls)
        backend.model_name = getattr(model, "name_or_path", "") or type(model).__name__
        backend.batch_size, backend._tool_role, backend._torch = batch_size, tool_role, torch
        backend.model, backend.tokenizer = model, tokenizer
        parameter = next(model.parameters())
        backend.device, backend.dtype = parameter.device, parameter.dtype
        backend._attach_tokenizer(None)
        backend._attach_prefix_cache(prefix_cache_mb, prefill)
        return backend

    def _attach_prefix_cache(self, prefix_cache_mb: float, prefill: Prefill) -> None:
        if prefill not in ("per_prompt", "padded"):
            raise ConfigError(f"prefill must be 'per_prompt' or 'padded', got {prefill!r}")
        self.prefill: Prefill = prefill
        if prefix_cache_mb < 0:
            raise ConfigError(f"prefix_cache_mb must be >= 0 (0: no reuse), got {prefix_cache_mb}")
        self.prefix_cache: PrefixCache | None = (
            PrefixCache(int(prefix_cache_mb * 2**20)) if prefix_cache_mb > 0 else None
        )
        self._cache_name = cache_kwarg(self.model)
        self._prefill_options = prefill_options(self.model)

    def _attach_tokenizer(self, chat_template: str | None) -> None:
        self.tokenizer.padding_side = "left"
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        if not self.tokenizer.chat_template:
            raise ConfigError(f"model {self.model_name!r} has no chat template; pass chat_template=")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._eos_ids = self._end_of_turn_ids()

    def _resolve_dtype(self, dtype: str) -> Any:
        torch = self._torch
        if dtype == "auto":
            return torch.bfloat16 if self.device.type == "cuda" else torch.float32
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"dtype must be 'auto' or a torch dtype name, got {dtype!r}")
        return value

    def _end_of_turn_ids(self) -> set[int]:
        """Token ids that end a completion: the generation config's EOS and the tokenizer's."""
        ids = self.model.generation_config.eos_token_id
        eos = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
        if self.tokenizer.eos_token_id is not None:
            eos.add(self.tokenizer.eos_token_id)
        return eos

    # -- prompts -------------------------------------------------------------------------

    def render(self, prompt: Prompt, index: int = 0) -> str:
        """The prompt as text through the chat template, generation prompt appended."""
        messages = validate_prompt(prompt, index)
        if self._tool_role == "user":
            messages = tool_as_user(messages)
        try:
            return str(
                self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            )
        except Exception as e:  # Jinja raises its own errors, and raise_exception() in templates
            has_tool = any(m["role"] == "tool" for m in messages)
            if self._tool_role == "auto" and has_tool:
                logger.info("chat template of %s rejects role 'tool': %s", self.model_name, e)
                self._tool_role = "user"
                return self.render(prompt, index)
            raise ConfigError(
                f"chat template of {self.model_name!r} failed on prompt {index}: {e}"
            ) from e

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's tokenizer, no special tokens added."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- generation ----------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        logprobs: bool = False,
        stop: Sequence[str] | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> list[Generation]:
        """Complete every prompt (see :meth:`LLMBackend.generate`); ``json_schema`` decodes
        under the schema (:mod:`agemem_gym.llm._constrained`)."""
        check_sampling(max_new_tokens, temperature, top_p)
        texts = [self.render(p, i) for i, p in enumerate(prompts)]
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        results: list[Generation | None] = [None] * len(ids)
        config = self._generation_config(max_new_tokens, temperature, top_p, logprobs, stop)
        torch = self._torch
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self._generate_batch([ids[i] for i in chunk], config, logprobs, stop,
                                             json_schema)
                for i, generation in zip(chunk, batch, strict=True):
                    results[i] = generation
        return [g for g in results if g is not None]

    def _generation_config(
        self,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        logprobs: bool,
        stop: Sequence[str] | None,
    ) -> Any:
        from transformers import GenerationConfig

        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(self._eos_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            return_dict_in_generate=True,
            output_logits=logprobs,
            stop_strings=list(stop) if stop else None,
            **sampling,
        )

    def _generate_batch(
        self,
        ids: list[list[int]],
        config: Any,
        logprobs: bool,
        stop: Sequence[str] | None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> list[Generation]:
        torch = self._torch
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            input_ids[row, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            attention[row, width - len(x) :] = 1
        began = time.perf_counter()
        with torch.inference_mode():
            past = self._cached_prefix(ids, width + config.max_new_tokens)
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=config,
                tokenizer=self.tokenizer if stop else None,
                logits_processor=self._json_logits(json_schema),
                **({self._cache_name: past} if past is not None else {}),
            )
        seconds = time.perf_counter() - began
        new = out.sequences[:, width:].cpu()
        token_logprobs = self._token_logprobs(out.logits, new) if logprobs else None
        results = []
        for row, prompt_ids in enumerate(ids):
            completion, text, finish = self._cut(new[row].tolist(), stop)
            results.append(
                Generation(
                    text=text,
                    prompt_tokens=len(prompt_ids),
                    completion_tokens=len(completion),
                    seconds=seconds,
                    logprobs=token_logprobs[row][: len(completion)] if token_logprobs else None,
                    completion_ids=completion,
                    prompt_ids=list(prompt_ids),
                    finish_reason=finish,
                )
            )
        return results

    def clear_prefix_cache(self) -> None:
        """Forget every cached prompt state. Weight updates through optimizers, ``copy_`` or
        ``load_state_dict`` are detected on their own; call this after writing weights any
        other way (e.g. through ``param.data``)."""
        if self.prefix_cache is not None:
            self.prefix_cache.clear()

    def _cached_prefix(self, ids: list[list[int]], capacity: int) -> Any:
        """Key/value states of every prompt but its last token, left-padded into one batch
        (``generate`` then runs only the last column), or None to prefill the padded batch."""
        if self.prefill == "padded" or not supports_prefix_cache(self.model):
            return None
        width = max(len(x) for x in ids) - 1
        if width == 0:
            return None
        fingerprint = weights_fingerprint(self.model)
        rows = [self._prefix_states(x[:-1], fingerprint) for x in ids]
        return pack_left(rows, width, capacity)

    def _prefix_states(self, ids: list[int], fingerprint: Any) -> Layers:
        """States of ``ids``: the longest cached prefix, extended by running the model over
        the rest (then stored for later prompts)."""
        if not ids:
            return []
        reused, layers = (0, []) if self.prefix_cache is None else self.prefix_cache.lookup(ids, fingerprint)
        if reused == len(ids):
            return layers
        torch = self._torch
        cache = to_dynamic_cache(layers, capacity=len(ids))
        self.model(
            input_ids=torch.tensor([ids[reused:]], dtype=torch.long, device=self.device),
            attention_mask=torch.ones((1, len(ids)), dtype=torch.long, device=self.device),
            position_ids=torch.arange(reused, len(ids), device=self.device).unsqueeze(0),
            use_cache=True,
            **{self._cache_name: cache},
            **self._prefill_options,
        )
        layers = layers_of(cache)
        if self.prefix_cache is not None:
            self.prefix_cache.store(ids, layers, fingerprint)
        return layers

    def _json_logits(self, json_schema: Mapping[str, Any] | None) -> Any:
        """A processor list that keeps completions inside ``json_schema`` (None: no constraint)."""
        if json_schema is None:
            return None
        from transformers import LogitsProcessorList

        from agemem_gym.llm._constrained import JsonSchemaLogits, tokenizer_data

        if getattr(self, "_json_tokens", None) is None:
            size = max(len(self.tokenizer), self.model.get_output_embeddings().weight.shape[0])
            self._json_tokens = tokenizer_data(self.tokenizer, sorted(self._eos_ids), size)
        return LogitsProcessorList([JsonSchemaLogits(self._json_tokens, json_schema)])

    def _token_logprobs(self, logits: Sequence[Any], tokens: Any) -> list[list[float]]:
        """Log-probability of each generated token under the model's raw (unwarped) logits."""
        torch = self._torch
        columns = []
        for step, step_logits in enumerate(logits):
            logp = torch.log_softmax(step_logits.float().cpu(), dim=-1)
            columns.append(logp.gather(1, tokens[:, step : step + 1]).squeeze(1))
        return torch.stack(columns, dim=1).tolist()

    def _cut(self, tokens: list[int], stop: Sequence[str] | None) -> tuple[list[int], str, str]:
        """Completion ids, text and finish reason: cut at the end of turn or a stop string."""
        finish = "length"
        for k, token in enumerate(tokens):
            if token in self._eos_ids:
                tokens, finish = tokens[: k + 1], "stop"
                break
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        end = find_stop(text, stop)
        if end is None:
            return tokens, text, finish
        # Shortest token prefix whose text holds a stop string (binary search).
        low, high = 1, len(tokens)
        while low < high:
            mid = (low + high) // 2
            prefix = self.tokenizer.decode(tokens[:mid], skip_special_tokens=True)
            low, high = (low, mid) if find_stop(prefix, stop) is not None else (mid + 1, high)
        prefix_text = self.tokenizer.decode(tokens[:low], skip_special_tokens=True)
        return tokens[:low], prefix_text[: find_stop(prefix_text, stop)], "stop"

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
