"""Default run folder names that tell differently configured runs apart.

``results/runs/<env>-<agent>[-s<stages>][-<data>][-<model>][-<hash>]``: the readable parts
first (stages other than 1,2,3, the data file's or folder's stem, the model's last path part),
then, when any other setting that makes a run different is given (env or agent options, seed),
eight hex digits of a hash of those settings. The same command always gives the same name, so
re-running it resumes the same folder.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

RUNS_ROOT = Path("results") / "runs"


def _slug(text: str) -> str:
    """File-name-safe: letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def default_run_folder(env: str, agent: str, *, stages: tuple[int, ...] = (1, 2, 3),
                       seed: int = 0, env_options: dict[str, Any] | None = None,
                       agent_options: dict[str, Any] | None = None, root: Path = RUNS_ROOT) -> Path:
    """The folder ``agemem-bench run`` writes to when ``--out`` is not given.

    >>> str(default_run_folder("assistant", "oracle"))
    'results/runs/assistant-oracle'
    >>> str(default_run_folder("babyai", "oracle", stages=(3,), env_options={"data": "d/agentboard_babyai"}))
    'results/runs/babyai-oracle-s3-agentboard_babyai'
    >>> str(default_run_folder("assistant", "agemem", agent_options={"model": "Qwen/Qwen2.5-7B-Instruct"}))
    'results/runs/assistant-agemem-Qwen2.5-7B-Instruct'
    >>> default_run_folder("assistant", "noop", env_options={"num_facts": 8}).name.startswith("assistant-noop-")
    True
    """
    env_options = dict(env_options or {})
    agent_options = dict(agent_options or {})
    parts = [env, agent]
    if tuple(stages) != (1, 2, 3):
        parts.append("s" + "".join(str(s) for s in stages))
    data = env_options.pop("data", None)
    if data:
        parts.append(Path(str(data).rstrip("/")).stem)
    model = agent_options.pop("model", None)
    if model:
        parts.append(Path(str(model).rstrip("/")).name)
    rest = {"env_options": env_options, "agent_options": agent_options, "seed": seed}
    if env_options or agent_options or seed:
        digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()
        parts.append(digest[:8])
    return root / "-".join(_slug(p) for p in parts)
