"""The ``>>>`` examples in docstrings and the README really run."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest
from conftest import SAMPLE_DATA, SHARED_DATA

import agemem_gym
from agemem_gym.errors import MissingExtraError

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Benchmarks whose examples load sample data name it ``DATA``.
DATA = {f"agemem_gym.tasks.{name}.source": path for name, path in SAMPLE_DATA.items()}
MODULES = sorted(
    [m.name for m in pkgutil.walk_packages(agemem_gym.__path__, "agemem_gym.")]
    + ["agemem_gym", "benchmarks.episode_log", "benchmarks.runner", "benchmarks.run_folder",
       "benchmarks.traces"]
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except (MissingExtraError, ImportError) as e:
        pytest.skip(f"{name} needs an optional extra: {e}")
    extraglobs = {}
    if name in DATA:
        if not SHARED_DATA.is_dir():
            pytest.skip(f"sample data not found at {SHARED_DATA}")
        extraglobs["DATA"] = str(DATA[name])
    result = doctest.testmod(module, optionflags=FLAGS, extraglobs=extraglobs)
    assert result.failed == 0


def test_readme_examples():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 0 and result.failed == 0
