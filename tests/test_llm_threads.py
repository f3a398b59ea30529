"""torch's CPU thread count: explicit, then AGEMEM_THREADS, then OMP_NUM_THREADS, else free cores."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from agemem_gym.errors import ConfigError  # noqa: E402
from agemem_gym.llm import _threads  # noqa: E402
from agemem_gym.llm._threads import free_cores, set_torch_threads  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch):
    """Each test chooses anew, and torch gets its count back afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(_threads, "_chosen", None)
    for name in ("AGEMEM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(before)


def test_explicit_count_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("AGEMEM_THREADS", "2")
    assert set_torch_threads(1) == 1 and torch.get_num_threads() == 1


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("AGEMEM_THREADS", "2")
    assert set_torch_threads() == 2 and torch.get_num_threads() == 2


def test_omp_num_threads_is_left_to_torch(monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert set_torch_threads() == 2


def test_default_is_the_free_cores_and_is_kept_for_the_process(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.0, 0.0))  # one core busy elsewhere
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert free_cores() == 3
    torch.set_num_threads(4)
    assert set_torch_threads() == 3 and torch.get_num_threads() == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert set_torch_threads() == 3  # chosen once: every model of a run uses the same
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert free_cores() == 1  # never below one


def test_never_more_than_torchs_own_default(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    torch.set_num_threads(2)  # what torch chose at start (its physical cores)
    assert set_torch_threads() == 2


def test_bad_counts_are_clear_errors(monkeypatch):
    with pytest.raises(ConfigError, match="threads must be >= 1, got 0"):
        set_torch_threads(0)
    monkeypatch.setenv("AGEMEM_THREADS", "two")
    with pytest.raises(ConfigError, match="AGEMEM_THREADS must be a whole number >= 1, got 'two'"):
        set_torch_threads()


def test_the_backend_applies_it(tmp_path_factory):
    pytest.importorskip("transformers")
    from _llm_fixtures import tiny_model

    from agemem_gym.llm import make_backend

    torch.set_num_threads(2)
    make_backend("transformers", str(tiny_model(tmp_path_factory)), device="cpu", threads=1)
    assert torch.get_num_threads() == 1
