"""A tiny causal LM built offline in seconds, for tests, demos and CPU training runs.

:func:`build_tiny_model` writes an ordinary Hugging Face folder (``config.json``,
``model.safetensors``, ``generation_config.json``, ``tokenizer.json``, ``tokenizer_config.json``
with a ChatML-like chat template) that ``AutoModelForCausalLM.from_pretrained(path)`` and
``AutoTokenizer.from_pretrained(path)`` load by path, that :mod:`agemem_gym.llm` backends run,
and that ``transformers serve`` serves. Its weights are random (seeded): it produces gibberish,
deterministically, which is all the plumbing needs.

The tokenizer is a byte-level BPE trained with ``tokenizers`` on the package's own docstrings plus
a short built-in text about memory tools. The protocol tags (``<think>``, ``<tool_call>``,
``<answer>`` and their closing forms) are added tokens that stay in decoded text; the ChatML
markers ``<|im_start|>``, ``<|im_end|>`` (end of turn, the EOS) and ``<|endoftext|>`` (padding)
are special tokens. A pass-through response template keeps servers that parse Qwen-style
responses (``transformers serve``) from moving ``<think>``/``<tool_call>`` out of the text;
they still strip whitespace at both ends of a completion.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agemem_gym.errors import ConfigError, MissingExtraError

logger = logging.getLogger(__name__)

#: Tags of the agent protocol; each is one token of the tiny tokenizer.
PROTOCOL_TAGS: tuple[str, ...] = (
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<answer>",
    "</answer>",
)
#: Special tokens: padding, start of a turn, end of a turn (the EOS).
PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

#: ChatML-like template; every role (system, user, assistant, tool) is rendered as is.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: Response template (read by ``transformers serve`` and ``tokenizer.parse_response``) that
#: keeps the whole completion as ``content``: without it, the server's Qwen fallback would move
#: ``<think>`` and ``<tool_call>`` blocks out of the text into structured fields.
RESPONSE_TEMPLATE: dict[str, Any] = {
    "start_anchor": IM_START + "assistant\n",
    "defaults": {"role": "assistant"},
    "fields": {"content": {"close": IM_END, "content": "text"}},
}

#: Architecture name -> transformers config class name; a new one is one entry. Only
#: architectures whose tokenizer class is Qwen2's byte-level BPE belong here: AutoTokenizer
#: rebuilds the tokenizer with the class the config's model type names.
ARCHITECTURES: dict[str, str] = {
    "qwen2": "Qwen2Config",
    "qwen3": "Qwen3Config",
}

_BUILTIN_TEXT = """\
The agent manages its own memory. Long-term memory holds facts about the user; the context is
the short-term memory. Tools: Add_memory, Update_memory, Delete_memory, Retrieve_memory,
Summary_context, Filter_context. A turn may think first and then call tools or answer.
<think>The user said their sister lives in Lyon. I should store it.</think>
<tool_call>[{"name": "Add_memory", "arguments": {"content": "The user's sister lives in Lyon."}}]</tool_call>
<think>The question asks where the sister lives; memory says Lyon.</think>
<answer>Lyon</answer>
<answer>go to the kitchen</answer> <answer>open the fridge</answer> <answer>pick up the key</answer>
Stage 1 tells facts, stage 2 brings distractors, stage 3 asks the question or sets the task.
Rewards: task success, memory quality, context preservation, penalties for overflow.
0 1 2 3 4 5 6 7 8 9 10 100 2024-05-17 user assistant system tool memory context query answer.
"""


def _package_docstrings(root: Path) -> Iterator[str]:
    """Yield the docstrings of every module, class and function under ``root`` (sorted paths)."""
    for path in sorted(root.rglob("*.py")):
        try:
            stat = path.stat()
        except OSError as e:
            logger.debug("skipping %s for the tokenizer corpus: %s", path, e)
            continue
        yield from _file_docstrings(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _file_docstrings(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """One file's docstrings, parsed once per process and version of the file (parsing the
    package is most of the time a tiny model takes to build)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError) as e:
        logger.debug("skipping %s for the tokenizer corpus: %s", path, e)
        return ()
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                docs.append(doc)
    return tuple(docs)


def default_corpus(docstrings: bool = True) -> list[str]:
    """The texts the tiny tokenizer is trained on: a built-in text about the protocol and,
    unless ``docstrings`` is False, the package's docstrings.

    Returns:
        A list of strings; deterministic for a given version of the package (without the
        docstrings: for every version).
    """
    if not docstrings:
        return [_BUILTIN_TEXT]
    package_root = Path(__file__).resolve().parents[1]
    return [_BUILTIN_TEXT, *_package_docstrings(package_root)]


def train_tokenizer(corpus: Iterable[str], *, vocab_size: int = 1024) -> Any:
    """Train a byte-level BPE on ``corpus`` and wrap it as a fast HF tokenizer with a chat template.

    Args:
        corpus: training texts.
        vocab_size: target vocabulary size, special and added tokens included.

    Returns:
        A ``transformers.PreTrainedTokenizerFast`` (EOS ``<|im_end|>``, pad ``<|endoftext|>``).

    Raises:
        MissingExtraError: ``tokenizers`` or ``transformers`` is not installed.
    """
    try:
        from tokenizers import (
            AddedToken,
            Regex,
            Tokenizer,
            decoders,
            models,
            normalizers,
            pre_tokenizers,
            trainers,
        )
        from transformers import PreTrainedTokenizerFast
    except ImportError as e:
        raise MissingExtraError("the tiny model's tokenizer", "llm") from e

    try:  # the split Qwen2's tokenizer class applies on load: train with the same one
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    except ImportError as e:
        raise MissingExtraError("the tiny model's tokenizer (transformers>=4.46)", "llm") from e

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    specials = [PAD_TOKEN, IM_START, IM_END]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(corpus), trainer=trainer)
    # Protocol tags are ordinary added tokens: one id each, kept when decoding.
    tokenizer.add_tokens(
        [AddedToken(tag, normalized=False, special=False) for tag in PROTOCOL_TAGS]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=1 << 20,
    )
    wrapped.response_template = RESPONSE_TEMPLATE
    return wrapped


def _model_config(arch: str, vocab: int, eos: int, pad: int, sizes: dict[str, Any]) -> Any:
    """The transformers config of the tiny model."""
    try:
        import transformers
    except ImportError as e:
        raise MissingExtraError("the tiny model", "llm") from e
    config_cls = getattr(transformers, ARCHITECTURES[arch])
    return config_cls(
        vocab_size=vocab,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=True,
        **sizes,
    )


def build_tiny_model(
    out_dir: str | Path,
    *,
    arch: str = "qwen2",
    seed: int = 0,
    vocab_size: int = 1024,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 256,
    max_position_embeddings: int = 8192,
    initializer_range: float = 0.2,
    corpus: Iterable[str] | None = None,
) -> Path:
    """Build a tiny random causal LM with its own tokenizer and save it as a HF folder.

    The defaults give ~0.4 M parameters and take well under a few seconds on CPU. The large
    ``initializer_range`` spreads the logits so greedy decoding is not decided by rounding noise.

    Args:
        out_dir: folder to write (created; existing files of the same names are overwritten).
        arch: ``"qwen2"`` or ``"qwen3"``.
        seed: seed of the weight initialisation (the tokenizer does not depend on it).
        vocab_size: BPE vocabulary size.
        hidden_size: model width.
        num_layers: decoder layers.
        num_heads: attention heads (must divide ``hidden_size``).
        num_kv_heads: key/value heads (must divide ``num_heads``).
        intermediate_size: MLP width.
        max_position_embeddings: longest sequence the config allows.
        initializer_range: standard deviation of the initial weights.
        corpus: tokenizer training texts; :func:`default_corpus` when None.

    Returns:
        The folder's path.

    Raises:
        ConfigError: inconsistent sizes or an unknown ``arch``.
        MissingExtraError: torch, transformers or tokenizers is missing.

    Example:
        >>> import tempfile
        >>> from transformers import AutoTokenizer
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = build_tiny_model(tmp.name)
        >>> AutoTokenizer.from_pretrained(path).tokenize("<answer>4</answer>")
        ['<answer>', '4', '</answer>']
        >>> tmp.cleanup()
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ConfigError(
            "num_heads must divide hidden_size and num_kv_heads must divide num_heads, got "
            f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads}"
        )
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        raise MissingExtraError("the tiny model", "llm") from e

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(
        default_corpus() if corpus is None else corpus, vocab_size=vocab_size
    )
    eos = tokenizer.convert_tokens_to_ids(IM_END)
    pad = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    sizes = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "intermediate_size": intermediate_size,
        "max_position_embeddings": max_position_embeddings,
        "initializer_range": initializer_range,
    }
    config = _model_config(arch, len(tokenizer), eos, pad, sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _record_provenance(out, arch=arch, seed=seed, params=model.num_parameters())
    logger.info("tiny %s model with %d parameters written to %s", arch, model.num_parameters(), out)
    return out


def _record_provenance(out: Path, **fields: Any) -> None:
    """Write ``agemem_tiny_model.json``: how the folder was built."""
    (out / "agemem_tiny_model.json").write_text(json.dumps(fields, indent=2) + "\n")
