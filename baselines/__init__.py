"""Memory baselines behind the Policy interface, each registered under its agent name.

Each baseline is an external memory controller (see :mod:`baselines._controller`): it reads
every incoming message, manages the episode's long-term memory through the env's controller
port with its own model calls, and answers with the same model and response format as the
AgeMem agent. ``agemem-bench run --agent mem0 --model M --env hotpotqa`` runs one.
"""

from __future__ import annotations

from agemem_gym.policies import register_policy

#: agent name -> ("module:Class", one-line description); a new baseline is one entry.
BASELINES: dict[str, tuple[str, str]] = {
    "no-memory": ("baselines.no_memory:NoMemory",
                  "answers from the current context only; never touches long-term memory"),
    "mem0": ("baselines.mem0:Mem0",
             "Mem0: fact extraction, then one batched ADD/UPDATE/DELETE/NONE decision per message"),
    "mem0g": ("baselines.mem0g:Mem0Graph",
              "Mem0g: Mem0 plus an entity graph with conflict invalidation and BM25 graph search"),
    "amem": ("baselines.amem:AMem",
             "A-Mem: a linked note per message; an evolution call links and rewrites neighbours by id"),
    "langmem": ("baselines.langmem:LangMem",
                "LangMem: a memory manager with create/patch(/remove) after each turn, and a running "
                "summary of the context"),
}

for _name, (_target, _description) in BASELINES.items():
    register_policy(_name, _target)

__all__ = ["BASELINES"]
