"""Protocols: the settings behind a set of numbers, one switch apart.

- ``paper`` (the default): our reading of the paper's text (PAPER.md), the env's defaults.
- ``official``: the authors' released HotpotQA code (OFFICIAL.md): no introspective
  retrieval, at most 5 replies per turn, a lenient parser that repairs malformed replies, the
  filter tool under its released name ``Clear_context``, an 8,192-token budget; on the
  question-answering benchmarks the released reward; for HotpotQA also the example's paragraphs
  told in one stage-1 message and 3 stage-2 messages of unrelated chat. Evaluation runs without
  stage 2 (the harness's default stages under this protocol are 1 and 3). The interactive
  benchmarks, which the release does not cover, keep the paper's reward under this protocol
  and run under AgentBoard's rules (``rules="agentboard"``: its actions, step limits and
  success test), as the paper's numbers on them are AgentBoard's.

A preset only fills settings the caller did not give, so ``protocol="official",
reward_mode="full"`` is the released episode scored with the paper's reward.
``docs/protocols.md`` compares the two point by point.

Example:
    >>> apply_protocol("hotpotqa", {"protocol": "official", "max_steps_per_turn": 3})["max_steps_per_turn"]
    3
    >>> apply_protocol("hotpotqa", {"protocol": "official"})["stage1"]
    'paragraphs'
    >>> apply_protocol("assistant", {})
    {}
"""

from __future__ import annotations

from typing import Any

from agemem_gym.errors import ConfigError

PROTOCOLS = ("paper", "official")

#: agent-side settings of the released code, for every benchmark
OFFICIAL_ENV: dict[str, Any] = {
    "introspective_retrieval": False,
    "max_steps_per_turn": 5,
    "parser": "lenient",
    "token_budget": 8192,
    "max_text_chars": 32_768,  # the release bounds no tool argument: a whole stage-1 message fits
}
#: question-answering benchmarks also take the released reward (the release has no
#: interactive benchmark: those keep the paper's reward and follow AgentBoard's rules)
OFFICIAL_REWARD_FOR = ("hotpotqa", "assistant")
#: benchmark options of the released code (HotpotQA) and of AgentBoard (interactive ones)
OFFICIAL_TASKS: dict[str, dict[str, Any]] = {
    "hotpotqa": {"stage1": "paragraphs", "distractors": "unrelated", "num_distractors": 3},
    "babyai": {"rules": "agentboard"},
    "pddl": {"rules": "agentboard"},
    "sciworld": {"rules": "agentboard"},
    "alfworld": {"rules": "agentboard"},
}
#: the interactive benchmarks' ``rules`` option: ours (the default) or AgentBoard's
RULES = ("ours", "agentboard")
#: tool names the released code uses for ours
OFFICIAL_TOOL_NAMES = {"Filter_context": "Clear_context"}
#: stages an evaluation runs by default
EVAL_STAGES = {"paper": (1, 2, 3), "official": (1, 3)}


def apply_protocol(benchmark: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the named protocol's preset filled in where they are silent."""
    if options.get("protocol", "paper") != "official":
        return dict(options)
    reward = {"reward_mode": "official"} if benchmark in OFFICIAL_REWARD_FOR else {}
    return {**OFFICIAL_ENV, **reward, **OFFICIAL_TASKS.get(benchmark, {}), **options}


def check_rules(rules: str, benchmark: str) -> str:
    """``rules`` when it names a rule set of the interactive benchmarks, else a clear error.

    >>> check_rules("agentboard", "babyai")
    'agentboard'
    """
    if rules not in RULES:
        raise ConfigError(f"{benchmark}: rules must be one of {', '.join(map(repr, RULES))}, got {rules!r}; "
                          "'agentboard' follows AgentBoard's actions, limits and success test")
    return rules


def tool_aliases(protocol: str) -> dict[str, str]:
    """Names a model may use for our tools under ``protocol`` -> our names."""
    return {alias: ours for ours, alias in OFFICIAL_TOOL_NAMES.items()} if protocol == "official" else {}


def rename_tools(text: str, protocol: str) -> str:
    """``text`` (a system prompt) with our tool names replaced by the protocol's."""
    if protocol != "official":
        return text
    for ours, theirs in OFFICIAL_TOOL_NAMES.items():
        text = text.replace(ours, theirs)
    return text
