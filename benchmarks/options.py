"""What a benchmark or an agent accepts, read from the code: for ``agemem-bench list`` and
``agemem-bench describe``.

Options come from the class itself, so they cannot drift from it: a dataclass's fields with the
docstring under each field (``EnvConfig``), or a constructor's parameters with the text of its
docstring's ``Args:`` section (benchmarks, agents). Classes are read from their source with
:mod:`ast`, so describing a benchmark whose engine is not installed imports nothing.

Example:
    >>> options = class_options("agemem_gym.policies.scripted:MemoryRandomPolicy")
    >>> [(o.name, o.default) for o in options][:2]
    [('p_store', '0.5'), ('p_retrieve', '0.5')]
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: extra -> a module it installs (installed when that module can be found).
EXTRA_MODULES: dict[str, str] = {
    "babyai": "minigrid",
    "pddl": "pddlgym",
    "sciworld": "scienceworld",
    "alfworld": "alfworld",
    "hotpotqa": "datasets",
    "encoders": "sentence_transformers",
    "llm": "transformers",
    "train": "accelerate",
}


@dataclass(frozen=True)
class Option:
    """One ``KEY=VALUE`` a class accepts."""

    name: str
    default: str
    """The default as written in the code ("required" when there is none)."""
    help: str


def extra_installed(extra: str | None) -> bool:
    """Whether the packages of ``agemem-gym[extra]`` are importable (None: nothing needed).

    >>> extra_installed(None), extra_installed("no-such-extra")
    (True, False)
    """
    if extra is None:
        return True
    module = EXTRA_MODULES.get(extra)
    return module is not None and importlib.util.find_spec(module) is not None


def _class_node(target: str) -> tuple[ast.Module, ast.ClassDef]:
    """The module's and the class's ``ast`` nodes of ``"package.module:Class"``, found without
    importing the module."""
    module_name, class_name = target.split(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ModuleNotFoundError(f"cannot find module {module_name!r} of {target!r}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return tree, node
    for node in tree.body:  # a package that re-exports the class from one of its modules
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == class_name:
                    package = module_name if spec.submodule_search_locations else module_name.rpartition(".")[0]
                    source = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                    return _class_node(f"{source}:{alias.name}")
    raise LookupError(f"no class {class_name!r} in {spec.origin}")


def _base_target(tree: ast.Module, node: ast.ClassDef, module_name: str) -> str | None:
    """``"module:Class"`` of the first base class defined in or imported by the module."""
    for base in node.bases:
        name = ast.unparse(base)
        if any(isinstance(n, ast.ClassDef) and n.name == name for n in tree.body):
            return f"{module_name}:{name}"
        for item in tree.body:
            if isinstance(item, ast.ImportFrom) and item.module and any(a.name == name for a in item.names):
                return f"{item.module}:{name}"
    return None


def summary_line(target: str) -> str:
    """The first sentence of the class's docstring (at most 100 characters).

    >>> summary_line("agemem_gym.policies.scripted:NoopPolicy")
    'Answers every turn without touching either memory (the No-Memory behaviour).'
    """
    doc = ast.get_docstring(_class_node(target)[1]) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.!?])\s", paragraph, maxsplit=1)[0]
    return sentence if len(sentence) <= 100 else sentence[:97].rstrip() + "..."


def _args_section(doc: str) -> dict[str, str]:
    """``name -> help`` from a Google-style ``Args:`` section."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return {}
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break  # the next section
        block.append(line)
    helps: dict[str, str] = {}
    current = None
    for line in textwrap.dedent("\n".join(block)).splitlines():
        match = re.match(r"\**(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
        if match is not None:
            current = match.group(1)
            helps[current] = match.group(2)
        elif line.strip() and current is not None:
            helps[current] += " " + line.strip()
    return helps


def class_options(target: str) -> list[Option]:
    """The options of ``"package.module:Class"``: its dataclass fields (with the docstring
    under each) or its ``__init__`` parameters (with its docstring's ``Args:`` text), the
    nearest base class's when it has neither. ``**kwargs`` shows as ``**name``."""
    tree, node = _class_node(target)
    if any("dataclass" in ast.unparse(d) for d in node.decorator_list):
        return _field_options(node)
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        base = _base_target(tree, node, target.split(":")[0])
        try:
            return class_options(base) if base is not None else []
        except (ModuleNotFoundError, LookupError):  # a base from the standard library
            return []
    helps = _args_section(ast.get_docstring(node) or "")
    helps.update(_args_section(ast.get_docstring(init) or ""))
    constants = {t.id: ast.unparse(a.value) for a in tree.body if isinstance(a, ast.Assign)
                 and isinstance(a.value, ast.Constant) for t in a.targets if isinstance(t, ast.Name)}
    args = init.args
    positional = [*args.posonlyargs, *args.args][1:]  # without self
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = [*zip(positional, defaults, strict=True), *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    options = []
    for arg, default in pairs:
        text = "required" if default is None else ast.unparse(default)
        options.append(Option(arg.arg, constants.get(text, text), helps.get(arg.arg, "")))
    if args.kwarg is not None:
        name = args.kwarg.arg
        options.append(Option(f"**{name}", "", helps.get(name, "passed on")))
    return options


def _field_options(node: ast.ClassDef) -> list[Option]:
    """Annotated class attributes (dataclass fields) and the string literal under each."""
    options = []
    for i, item in enumerate(node.body):
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        after = node.body[i + 1] if i + 1 < len(node.body) else None
        doc = after.value.value if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) else ""
        default = "required" if item.value is None else _field_default(item.value)
        options.append(Option(item.target.id, default, " ".join(str(doc).split())))
    return options


def _field_default(value: ast.expr) -> str:
    """``field(default_factory=dict)`` reads as ``{}``; anything else as written."""
    if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("field"):
        for keyword in value.keywords:
            if keyword.arg == "default":
                return ast.unparse(keyword.value)
            if keyword.arg == "default_factory":
                factory = ast.unparse(keyword.value)
                return {"dict": "{}", "list": "[]", "tuple": "()"}.get(factory, f"{factory}()")
    return ast.unparse(value)


def target_of(entry: Any) -> str:
    """The ``"module:Class"`` of a registry entry (a string, or a tuple that starts with one)."""
    return entry if isinstance(entry, str) else str(entry[0])


def _format(title: str, options: list[Option]) -> list[str]:
    lines = [title]
    width = max((len(o.name) for o in options), default=0)
    for option in options:
        default = f" (default {option.default})" if option.default else ""
        lines.append(f"  {option.name:<{width}}{default}  {option.help}".rstrip())
    return lines if options else [*lines, "  (none)"]


def describe(name: str, benchmarks: dict[str, Any], agents: dict[str, Any],
             env_config: str = "agemem_gym.config:EnvConfig") -> str:
    """The options of the benchmark or agent ``name``, one per line with default and help.

    Raises:
        KeyError: ``name`` is neither a benchmark nor an agent (the message lists both).
    """
    if name in benchmarks:
        target = target_of(benchmarks[name])
        lines = [f"{name}: {summary_line(target)}", ""]
        lines += _format("benchmark options (--env-arg KEY=VALUE or --data for data):", class_options(target))
        env_options = [o for o in class_options(env_config) if o.name != "stages"]
        lines += ["", *_format("env options, every benchmark (--env-arg KEY=VALUE; --stages for stages):",
                               env_options)]
        return "\n".join(lines)
    if name in agents:
        target = target_of(agents[name])
        lines = [f"{name}: {summary_line(target)}", ""]
        lines += _format("agent options (--agent-arg KEY=VALUE; --model, --backend, --base-url set "
                         "model, backend, base_url):", class_options(target))
        return "\n".join(lines)
    raise KeyError(f"unknown benchmark or agent {name!r}; benchmarks: {', '.join(benchmarks)}; "
                   f"agents: {', '.join(agents)}")


def load_registries() -> tuple[dict[str, Any], dict[str, Any]]:
    """The benchmark and agent registries, with the baselines registered."""
    from agemem_gym.policies import POLICIES
    from agemem_gym.tasks import TASK_SOURCES

    with contextlib.suppress(ImportError):
        importlib.import_module("baselines")  # registers the baseline agents
    return dict(TASK_SOURCES), dict(POLICIES)


__all__ = ["Option", "class_options", "describe", "extra_installed", "load_registries",
           "summary_line", "target_of"]
