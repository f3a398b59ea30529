"""How many CPU threads torch uses: one rule for the LLM backend, the trainers and the CLI.

Torch starts with one thread per physical core. When other processes keep those cores busy,
its threads wait on each other and a small model runs several times slower than on one thread
(measured on a busy 2-core machine: 6-10x; ``benchmarks/perf/torch_threads.py`` measures it
on yours). So the count is chosen once per process, in this order:

1. an explicit count (``threads=``, ``agemem-bench run/train --threads``);
2. the ``AGEMEM_THREADS`` environment variable;
3. ``OMP_NUM_THREADS`` when set (torch already read it: left as is);
4. the cores that are free: usable cores minus the 1-minute load average, at least 1 and at
   most torch's own default (the physical cores).
"""

from __future__ import annotations

import logging
import os

from agemem_gym.errors import ConfigError

logger = logging.getLogger(__name__)

#: Environment variable naming torch's CPU thread count.
THREADS_ENV = "AGEMEM_THREADS"

_chosen: int | None = None


def free_cores() -> int:
    """Usable cores minus the 1-minute load average (rounded), at least 1.

    >>> free_cores() >= 1
    True
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, usable - round(load))


def _requested(threads: int | None) -> int | None:
    """The count asked for (argument, then ``AGEMEM_THREADS``), or None."""
    if threads is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        if not text:
            return None
        try:
            threads = int(text)
        except ValueError as e:
            raise ConfigError(f"{THREADS_ENV} must be a whole number >= 1, got {text!r}") from e
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    return threads


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count by the rule above and return it.

    An explicit ``threads`` (or ``AGEMEM_THREADS``) always applies; otherwise the count is
    chosen on the first call of the process and kept, so every model of a run uses the same.

    Raises:
        ConfigError: ``threads`` or ``AGEMEM_THREADS`` is not a whole number >= 1.
    """
    global _chosen
    import torch

    wanted = _requested(threads)
    if wanted is None:
        if _chosen is not None:
            return _chosen
        if os.environ.get("OMP_NUM_THREADS", "").strip():
            wanted = torch.get_num_threads()
        else:  # never more than torch's own default (physical cores)
            wanted = min(free_cores(), torch.get_num_threads())
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
        logger.info("torch uses %d CPU thread(s) (set %s or --threads to change)", wanted, THREADS_ENV)
    _chosen = wanted
    return wanted
