"""The backend interface's shared helpers and the backend registry (no engine needed)."""

from __future__ import annotations

import pytest

from agemem_gym.errors import ConfigError, UnknownNameError
from agemem_gym.llm import BACKENDS, make_backend
from agemem_gym.llm.base import (
    TOOL_AS_USER_PREFIX,
    check_sampling,
    find_stop,
    tool_as_user,
    trim_at_stop,
    validate_prompt,
)


def test_trim_at_earliest_stop():
    text = "<think>x</think><tool_call>[]</tool_call><answer>y</answer>"
    assert trim_at_stop(text, ["</answer>", "</tool_call>"]) == (
        "<think>x</think><tool_call>[]</tool_call>",
        True,
    )
    assert trim_at_stop(text, ["nope"]) == (text, False)
    assert trim_at_stop(text, None) == (text, False)
    assert trim_at_stop("abc", [""]) == ("abc", False)


def test_overlapping_stops_prefer_the_longer_at_the_same_start():
    assert find_stop("a</answer>b", ["</", "</answer>"]) == len("a</answer>")
    assert find_stop("a</x></answer>", ["</answer>", "</x>"]) == len("a</x>")


def test_validate_prompt_keeps_role_and_content_only():
    prompt = [{"role": "user", "content": "hi", "name": "bob"}]
    assert validate_prompt(prompt) == [{"role": "user", "content": "hi"}]
    with pytest.raises(
        ConfigError, match=r"prompt 3, message 0: content must be a string, got int"
    ):
        validate_prompt([{"role": "user", "content": 3}], 3)
    with pytest.raises(ConfigError, match="prompt 0 is empty: give at least one message"):
        validate_prompt([])


def test_tool_as_user():
    messages = [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}]
    assert tool_as_user(messages) == [
        {"role": "user", "content": "q"},
        {"role": "user", "content": TOOL_AS_USER_PREFIX + "r"},
    ]


def test_check_sampling_messages():
    check_sampling(1, 0.0, 1.0)
    with pytest.raises(ConfigError, match="max_new_tokens must be >= 1, got 0"):
        check_sampling(0, 0.0, 1.0)
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\], got 1.5"):
        check_sampling(5, 0.0, 1.5)


def test_unknown_backend_suggests_a_name():
    with pytest.raises(UnknownNameError) as err:
        make_backend("openai2", "m")
    assert str(err.value) == (
        "unknown LLM backend 'openai2'. Did you mean 'openai'? Known: openai, transformers."
    )
    assert set(BACKENDS) == {"openai", "transformers"}


def test_importing_the_package_loads_no_engine():
    import subprocess
    import sys

    code = (
        "import sys, agemem_gym; before = set(sys.modules); import agemem_gym.llm; "
        "print(sorted({'torch', 'transformers', 'httpx'} & (set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
