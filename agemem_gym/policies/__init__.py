"""Policies (agents) behind one interface, looked up by name."""

from __future__ import annotations

import importlib
from typing import Any

from agemem_gym.errors import UnknownNameError
from agemem_gym.policies.base import Policy
from agemem_gym.policies.scripted import MemoryRandomPolicy, NoopPolicy, OraclePolicy, RandomPolicy

#: agent name -> "module:Class"; packages outside the library (the baselines) add theirs with
#: :func:`register_policy`.
POLICIES: dict[str, str] = {
    "oracle": "agemem_gym.policies.scripted:OraclePolicy",
    "noop": "agemem_gym.policies.scripted:NoopPolicy",
    "random": "agemem_gym.policies.scripted:RandomPolicy",
    "memory-random": "agemem_gym.policies.scripted:MemoryRandomPolicy",
    "agemem": "agemem_gym.policies.llm_agent:AgeMemAgent",
    "agemem-rag": "agemem_gym.policies.llm_agent:AgeMemRAGAgent",
}


def register_policy(name: str, target: str) -> None:
    """Make ``make_policy(name)`` build ``target`` (``"module:Class"``, imported when used).

    >>> register_policy("echo-demo", "agemem_gym.policies.scripted:NoopPolicy")
    >>> make_policy("echo-demo").name
    'noop'
    >>> del POLICIES["echo-demo"]
    """
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:Class', got {target!r}")
    POLICIES[name] = target


def make_policy(name: str, **options: Any) -> Policy:
    """Build the agent ``name`` with its options.

    >>> make_policy("noop").name
    'noop'
    """
    if name not in POLICIES:
        raise UnknownNameError("agent", name, POLICIES)
    module_name, class_name = POLICIES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)


__all__ = ["POLICIES", "MemoryRandomPolicy", "NoopPolicy", "OraclePolicy", "Policy", "RandomPolicy",
           "make_policy", "register_policy"]
