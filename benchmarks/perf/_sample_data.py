"""Where the perf scripts find benchmark data when none is named."""

from __future__ import annotations

import os
from pathlib import Path

#: The sample data beside a checkout; AGEMEM_SHARED_DATA moves it.
SHARED_DATA = Path(
    os.environ.get(
        "AGEMEM_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
)


def sample_data(subdir: str, env_var: str) -> Path:
    """The benchmark's data: ``$env_var`` when set, else ``subdir`` of the shared sample data."""
    given = os.environ.get(env_var)
    return Path(given) if given else SHARED_DATA / subdir
