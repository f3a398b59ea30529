"""Step-time overhead of our engines over the raw engines they wrap, as one table.

Every ``_overhead_<name>.py`` module next to this script provides
``measure(n_steps) -> dict`` with at least ``engine``, ``raw_median_s``, ``wrapped_median_s``
and ``ratio``; any other keys are shown as notes. A module whose optional extra (or data) is
missing is reported as skipped.

Usage::

    python benchmarks/perf/engine_overhead.py                 # every engine
    python benchmarks/perf/engine_overhead.py --only pddl --steps 200
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
CORE_KEYS = ("engine", "raw_median_s", "wrapped_median_s", "ratio")


def discover(only: list[str] | None = None) -> dict[str, Path]:
    """``name -> path`` of the ``_overhead_<name>.py`` modules, optionally only some names."""
    found = {p.stem.removeprefix("_overhead_"): p for p in sorted(HERE.glob("_overhead_*.py"))}
    if only:
        unknown = sorted(set(only) - set(found))
        if unknown:
            raise SystemExit(f"unknown engine(s) {unknown}; known: {sorted(found)}")
        found = {name: path for name, path in found.items() if name in only}
    return found


def _load(name: str, path: Path) -> ModuleType:
    root = str(HERE.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)  # run from a checkout without installing
    spec = importlib.util.spec_from_file_location(f"_overhead_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_one(name: str, path: Path, steps: int | None) -> dict[str, Any]:
    """Measure one engine; a missing extra or data folder gives a ``skipped`` row."""
    from agemem_gym.errors import DataNotFoundError, MissingExtraError

    try:
        module = _load(name, path)
        result = module.measure() if steps is None else module.measure(n_steps=steps)
    except (MissingExtraError, ImportError, DataNotFoundError, FileNotFoundError) as e:
        return {"engine": name, "skipped": f"{type(e).__name__}: {e}"}
    return dict(result)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table (times in milliseconds)."""
    header = ["engine", "raw median ms", "ours median ms", "ratio", "notes"]
    lines = [header]
    for row in rows:
        if "skipped" in row:
            lines.append([row["engine"], "-", "-", "-", "skipped: " + row["skipped"]])
            continue
        notes = ", ".join(f"{k}={v}" for k, v in row.items() if k not in CORE_KEYS)
        lines.append(
            [
                str(row["engine"]),
                f"{row['raw_median_s'] * 1e3:.3f}",
                f"{row['wrapped_median_s'] * 1e3:.3f}",
                f"{row['ratio']:.2f}x",
                notes,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure each engine, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="measure only this engine (repeatable), e.g. pddl",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps to time per engine (default: each module's own)",
    )
    args = parser.parse_args(argv)
    rows = [run_one(name, path, args.steps) for name, path in discover(args.only).items()]
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
