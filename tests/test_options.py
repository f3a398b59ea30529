"""``agemem-bench list`` and ``describe``: what exists, what is installed, what each accepts."""

from __future__ import annotations

import doctest
import importlib.util

from typer.testing import CliRunner

from benchmarks import options
from benchmarks.cli import app
from benchmarks.options import class_options, load_registries, summary_line, target_of


def test_docstring_examples():
    assert doctest.testmod(options).failed == 0


def test_list_names_every_agent_with_its_summary_and_marks_only_missing_extras(monkeypatch):
    monkeypatch.setitem(options.EXTRA_MODULES, "babyai", "no_such_module_for_the_test")
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    benchmarks, agents = load_registries()
    lines = result.output.splitlines()
    for name, entry in benchmarks.items():
        [line] = [x for x in lines if x.split()[:1] == [name]]
        extra = None if isinstance(entry, str) else entry[1]
        module = options.EXTRA_MODULES.get(extra or "")
        missing = extra is not None and (module is None or importlib.util.find_spec(module) is None)
        assert ("needs: pip install" in line) == missing, line
    assert "(needs: pip install 'agemem-gym[babyai]')" in result.output
    assert "memory-random" in agents
    for name, entry in agents.items():
        [line] = [x for x in lines if x.split()[:1] == [name]]
        assert summary_line(target_of(entry)) in line and len(summary_line(target_of(entry))) > 10


def test_describe_a_benchmark_lists_its_own_and_the_env_options():
    result = CliRunner().invoke(app, ["describe", "assistant"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "num_facts            (default 6)  facts stated in stage 1 (at most 12)." in text
    assert "env options, every benchmark" in text
    assert "reward_mode" in text and "(default 'full')" in text and "the paper's R" in text


def test_describe_an_agent_and_an_unknown_name():
    result = CliRunner().invoke(app, ["describe", "memory-random"])
    assert result.exit_code == 0, result.output
    assert "p_store    (default 0.5)" in result.output and "answer     (default 'value')" in result.output
    unknown = CliRunner().invoke(app, ["describe", "memory-randm"])
    assert unknown.exit_code == 2 and "unknown benchmark or agent 'memory-randm'" in unknown.output


def test_class_options_match_the_constructor():
    import inspect

    from agemem_gym.policies.scripted import MemoryRandomPolicy

    parameters = [p for p in inspect.signature(MemoryRandomPolicy).parameters]
    assert [o.name for o in class_options("agemem_gym.policies.scripted:MemoryRandomPolicy")] == parameters


def test_args_section_is_parsed_per_name():
    doc = """Thing.

    Args:
        alpha: first line
            and its continuation.
        beta (int): second.

    Raises:
        ValueError: never an option.
    """
    assert options._args_section(inspect_clean(doc)) == {"alpha": "first line and its continuation.",
                                                         "beta": "second."}


def inspect_clean(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


def test_every_benchmark_and_agent_can_be_described():
    """Read from source, so a benchmark whose engine is missing is described too."""
    benchmarks, agents = load_registries()
    for name in [*benchmarks, *agents]:
        result = CliRunner().invoke(app, ["describe", name])
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"{name}: ")
        assert "(default " in result.output or result.output.endswith(":\n  (none)\n")
