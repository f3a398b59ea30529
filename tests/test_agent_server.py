"""End to end through the CLI: the AgeMem agent on a tiny model, in-process and over a server.

``agemem-bench tiny-model --out D``, then ``agemem-bench run --agent agemem --env assistant
--model D`` through the ``transformers`` backend, and the same run through ``--backend openai
--base-url`` against ``transformers serve D``. Both must finish every episode and record the
policy's prompt and completion tokens and model calls in ``episodes.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
typer_testing = pytest.importorskip("typer.testing")

from _llm_fixtures import transformers_serve  # noqa: E402

from benchmarks.cli import app  # noqa: E402

EPISODES = 3
# Stage 3 only, one queried value, two responses per turn: a few model calls per episode.
SMALL = [
    "--stages",
    "3",
    "--agent-arg",
    "max_new_tokens=16",
    "--env-arg",
    "max_steps_per_turn=2",
    "--env-arg",
    "num_facts=3",
    "--env-arg",
    "num_updates=1",
    "--env-arg",
    "num_deletes=0",
    "--env-arg",
    "num_distractors=1",
    "--env-arg",
    "distractor_sentences=1",
    "--env-arg",
    "num_queried=1",
]


def cli(*args: str) -> str:
    result = typer_testing.CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def run_args(model: Path, out: Path, episodes: int, *extra: str) -> list[str]:
    """``agemem-bench run`` arguments for the agemem agent on the tiny setting."""
    return ["run", "--agent", "agemem", "--env", "assistant", "--model", str(model),
            "--episodes", str(episodes), "--out", str(out), "--no-progress", *SMALL, *extra]


def run_agent(model: Path, out: Path, *extra: str) -> list[dict[str, Any]]:
    output = cli(*run_args(model, out, EPISODES, *extra))
    assert f"wrote {out}/episodes.jsonl" in output
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def check_usage(records: list[dict[str, Any]]) -> None:
    assert sorted(r["index"] for r in records) == list(range(EPISODES))
    for r in records:
        policy = r["cost"]["agent"]
        assert policy["llm_calls"] == r["rounds"] > 0, "one model call per response"
        assert r["tokens"]["prompt"] == policy["prompt_tokens"] > 0
        assert r["tokens"]["completion"] == policy["completion_tokens"] > 0
        # every call sends the whole context (system prompt included): far more than it writes
        assert r["tokens"]["prompt"] > 10 * policy["llm_calls"]
        assert r["tokens"]["completion"] <= 16 * policy["llm_calls"]
        assert policy["seconds"] > 0


def work(records: list[dict[str, Any]]) -> list[tuple[int, int, int, int]]:
    return [
        (r["index"], r["rounds"], r["tokens"]["prompt"], r["tokens"]["completion"])
        for r in sorted(records, key=lambda r: r["index"])
    ]


@pytest.mark.engine
def test_agemem_agent_runs_through_transformers_and_an_openai_server(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    pytest.importorskip("httpx")
    model = tmp_path / "tiny"
    assert "wrote a tiny qwen2 model" in cli("tiny-model", "--out", str(model))

    local = run_agent(model, tmp_path / "local")
    check_usage(local)

    with transformers_serve(model) as url:
        served = run_agent(
            model,
            tmp_path / "served",
            "--backend",
            "openai",
            "--base-url",
            url,
            "--concurrency",
            str(EPISODES),
        )
    check_usage(served)
    config = (tmp_path / "served" / "config.yaml").read_text()
    assert "backend: openai" in config and f"base_url: {url}" in config
    # greedy decoding of the same model: the same episodes, steps and completion lengths. The
    # server strips whitespace at the ends of a completion, and that text becomes part of the
    # next prompt, so prompt tokens may differ by a token per stripped reply; once a prompt
    # differs, the random model's next completion may too
    same_prompts = 0
    for (i, steps, prompt, completion), (j, steps_l, prompt_l, completion_l) in zip(
        work(served), work(local), strict=True
    ):
        assert (i, steps) == (j, steps_l)
        assert abs(prompt - prompt_l) <= steps
        if prompt == prompt_l:
            same_prompts += 1
            assert completion == completion_l
    assert same_prompts >= 1

    # the run really goes through --base-url: with the server gone it fails, naming the server
    failed = typer_testing.CliRunner().invoke(
        app,
        [
            *run_args(model, tmp_path / "gone", 1),
            "--backend",
            "openai",
            "--base-url",
            url,
            "--agent-arg",
            "max_retries=0",
        ],
    )
    assert failed.exit_code == 2
    assert "ConnectError" in failed.output and url in failed.output
