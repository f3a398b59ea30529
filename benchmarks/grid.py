"""Grid runs: methods x benchmarks x seeds from one YAML file, one run folder per cell.

Each cell is an ordinary run (:func:`benchmarks.runner.run`), so it resumes per episode; the
grid resumes per cell on top: a cell whose ``cell.yaml`` says ``done`` with all its episodes
on disk is skipped, and a killed grid re-run with the same file restarts in the cell it was in.
One progress bar counts the grid's episodes. Layout::

    <out>/grid.yaml                                  the config as run, with provenance
    <out>/<method>[-<backbone>]/<benchmark>/seed<k>/ a run folder, plus cell.yaml

Top-level keys starting with ``x-`` are ignored: they hold YAML anchors that methods share.

A method is an agent on a model, named as in the paper: ``AgeMem-noRL`` is agent ``agemem`` on
a base model, ``AgeMem`` the same agent on a trained checkpoint.

Example:
    >>> import tempfile
    >>> config = GridConfig.model_validate({
    ...     "name": "demo", "out": tempfile.mkdtemp(), "episodes": 2,
    ...     "methods": [{"name": "Oracle", "agent": "oracle"}, {"name": "noop", "agent": "noop"}],
    ...     "benchmarks": [{"name": "assistant", "env_options": {"num_facts": 3}}]})
    >>> [c.label for c in config.cells()]
    ['Oracle on assistant, seed 0', 'noop on assistant, seed 0']
    >>> [c.episodes for c in run_grid(config, progress=False)]
    [2, 2]
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from tqdm.auto import tqdm

from agemem_gym.errors import ConfigError, DataNotFoundError, UnknownNameError
from benchmarks.provenance import provenance
from benchmarks.run_folders import backbone_of
from benchmarks.runner import RunConfig, run

logger = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMSpec(_Strict):
    """A judge or summarizer model."""

    model: str
    backend: str = "transformers"
    base_url: str | None = None


class MethodSpec(_Strict):
    """One row of a paper table: an agent, on a model, with its options."""

    name: str = Field(min_length=1)
    """The paper's name (``No-Memory``, ``AgeMem-noRL``, ``AgeMem``, ...)."""
    agent: str = Field(min_length=1)
    """The agent (``agemem-bench list``): oracle, noop, agemem, no-memory, mem0, ..."""
    model: str | None = None
    backend: str | None = None
    base_url: str | None = None
    backbone: str | None = None
    """The paper backbone it stands for (default: read from the model name)."""
    agent_options: dict[str, Any] = Field(default_factory=dict)
    env_options: dict[str, Any] = Field(default_factory=dict)
    benchmarks: list[str] | None = None
    """Only these of the grid's benchmarks (default: all of them)."""

    @property
    def resolved_backbone(self) -> str:
        return self.backbone or backbone_of(self.model)


class BenchmarkSpec(_Strict):
    """One benchmark column: its name, data and options."""

    name: str = Field(min_length=1)
    episodes: int | None = Field(default=None, ge=1)
    """Episodes per cell (default: the grid's ``episodes``)."""
    data: str | None = None
    env_options: dict[str, Any] = Field(default_factory=dict)


class GridConfig(_Strict):
    """A grid: every method on every benchmark for every seed."""

    name: str = Field(min_length=1)
    description: str = ""
    out: Path | None = None
    """Grid folder (default ``results/grid-<name>``)."""
    methods: list[MethodSpec] = Field(min_length=1)
    benchmarks: list[BenchmarkSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    episodes: int | None = Field(default=None, ge=1)
    """Episodes per cell (None: the benchmark's whole evaluation set)."""
    protocol: Literal["paper", "official"] = "paper"
    stages: tuple[int, ...] = (1, 2, 3)
    judge: LLMSpec | None = None
    summarizer: LLMSpec | None = None
    concurrency: int = Field(default=1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        # ``x-`` keys hold YAML anchors shared by methods (as in docker-compose files)
        return {k: v for k, v in data.items() if not str(k).startswith("x-")} if isinstance(data, dict) else data

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _names_as_benchmarks(cls, value: Any) -> Any:
        return [{"name": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _distinct_cells(self) -> GridConfig:
        names = [b.name for b in self.benchmarks]
        for method in self.methods:
            unknown = sorted(set(method.benchmarks or ()) - set(names))
            if unknown:
                raise ValueError(f"method {method.name!r} names benchmarks {unknown} that the grid "
                                 f"does not list; the grid's benchmarks are {names}")
        folders = [c.out for c in self.cells()]
        twice = sorted({str(f) for f in folders if folders.count(f) > 1})
        if twice:
            raise ValueError(f"two cells share the folder {twice[0]}: give methods distinct "
                             "names (or backbones) and list each benchmark and seed once")
        return self

    @property
    def folder(self) -> Path:
        return self.out or Path("results") / f"grid-{self.name}"

    def cells(self) -> list[Cell]:
        return [Cell(self, method, bench, seed) for method in self.methods
                for bench in self.benchmarks if method.benchmarks is None or bench.name in method.benchmarks
                for seed in self.seeds]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_")


@dataclass(frozen=True)
class Cell:
    """One run of the grid: a method on a benchmark with one seed."""

    grid: GridConfig
    method: MethodSpec
    benchmark: BenchmarkSpec
    seed: int

    @property
    def label(self) -> str:
        backbone = self.method.resolved_backbone
        on = f" ({backbone})" if backbone != "-" else ""
        return f"{self.method.name}{on} on {self.benchmark.name}, seed {self.seed}"

    @property
    def out(self) -> Path:
        backbone = self.method.resolved_backbone
        method = self.method.name + (f"-{backbone}" if backbone != "-" else "")
        return self.grid.folder / _slug(method) / _slug(self.benchmark.name) / f"seed{self.seed}"

    @property
    def episodes(self) -> int | None:
        return self.benchmark.episodes or self.grid.episodes

    def run_config(self, progress: bool = False) -> RunConfig:
        """The ordinary run this cell is."""
        grid, method = self.grid, self.method
        env_options = {**self.benchmark.env_options, **method.env_options}
        if self.benchmark.data is not None:
            env_options["data"] = self.benchmark.data
        for key, llm in (("judge", grid.judge), ("summarizer", grid.summarizer)):
            if llm is not None:
                env_options[key] = llm.model_dump(exclude_none=True)
        agent_options = dict(method.agent_options)
        for key in ("model", "backend", "base_url"):
            if getattr(method, key) is not None:
                agent_options[key] = getattr(method, key)
        extra: dict[str, Any] = {}
        if "protocol" in {f.name for f in dataclasses.fields(RunConfig)}:
            extra["protocol"] = grid.protocol
        elif grid.protocol != "paper":
            env_options["protocol"] = grid.protocol
        return RunConfig(env=self.benchmark.name, agent=method.agent, out=self.out,
                         episodes=self.episodes, seed=self.seed, stages=grid.stages,
                         env_options=env_options, agent_options=agent_options,
                         concurrency=grid.concurrency, progress=progress, **extra)

    def describe(self) -> dict[str, Any]:
        """What ``cell.yaml`` says about the cell (tables read ``method`` and ``backbone``)."""
        return {"grid": self.grid.name, "method": self.method.name, "agent": self.method.agent,
                "model": self.method.model, "backbone": self.method.resolved_backbone,
                "benchmark": self.benchmark.name, "seed": self.seed, "episodes": self.episodes}

    def finished(self) -> int:
        """Distinct finished episodes on disk (0 for a cell that never started)."""
        log = self.out / "episodes.jsonl"
        if not log.exists():
            return 0
        ids = set()
        for line in log.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):  # a partial last line is a killed write, not an episode
                match = re.search(rb'"episode_id":\s*"([^"]*)"', line)
                if match:
                    ids.add(match.group(1))
        return len(ids)

    def is_done(self) -> bool:
        """Finished with these settings (a changed setting is the runner's to refuse)."""
        state = _read_yaml(self.out / "cell.yaml")
        if state.get("status") != "done":
            return False
        ran = _read_yaml(self.out / "config.yaml").get("run", {})
        identity = self.run_config().identity()
        if any(ran.get(k) != v for k, v in identity.items()):
            return False
        return self.finished() >= (self.episodes or int(state.get("finished", 0)))


def load_grid(path: Path | str) -> GridConfig:
    """Read and check a grid file; errors name the field and what it expects."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"grid config {path} not found: give a YAML file such as configs/local.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return GridConfig.model_validate(data)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}"
                             for err in e.errors())
        raise ConfigError(f"{path}: {problems}") from e


def check_agents(config: GridConfig) -> None:
    """Fail before the first cell when an agent is not registered."""
    import baselines  # noqa: F401  (the baselines register their agents on import)
    from agemem_gym.policies import POLICIES

    for method in config.methods:
        if method.agent not in POLICIES:
            raise UnknownNameError("agent", method.agent, POLICIES)


def run_grid(config: GridConfig, *, progress: bool = True,
             on_cell: Callable[[Cell], None] | None = None) -> list[Cell]:
    """Run every cell not done yet, in order; return the cells (all done)."""
    check_agents(config)
    cells = config.cells()
    config.folder.mkdir(parents=True, exist_ok=True)
    (config.folder / "grid.yaml").write_text(yaml.safe_dump(
        {"grid": config.model_dump(mode="json"), "provenance": provenance()}, sort_keys=False))
    known = [c.episodes for c in cells]
    total = sum(n for n in known if n is not None) if all(n is not None for n in known) else None
    bar = tqdm(total=total, disable=not progress, desc=f"grid {config.name}", unit="ep")
    finished_before = 0
    try:
        for k, cell in enumerate(cells):
            bar.set_postfix_str(f"cell {k + 1}/{len(cells)}: {cell.label}")
            if cell.is_done():
                logger.info("skipping %s: done", cell.label)
            else:
                _run_cell(cell, bar, finished_before)
            finished_before += cell.finished()
            bar.n = finished_before
            bar.refresh()
            if on_cell is not None:
                on_cell(cell)
    finally:
        bar.close()
    return cells


def _run_cell(cell: Cell, bar: Any, offset: int) -> None:
    cell.out.mkdir(parents=True, exist_ok=True)
    _write_yaml(cell.out / "cell.yaml", {**cell.describe(), "status": "running"})
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(cell, bar, offset, stop), daemon=True)
    watcher.start()
    try:
        run(cell.run_config())
    except Exception as e:
        logger.error("grid cell %s failed (%s); fix it and re-run: done cells and episodes are kept",
                     cell.label, e)
        _write_yaml(cell.out / "cell.yaml", {**cell.describe(), "status": "failed", "error": str(e)})
        raise
    finally:
        stop.set()
        watcher.join()
    _write_yaml(cell.out / "cell.yaml", {**cell.describe(), "status": "done", "finished": cell.finished()})


def _watch(cell: Cell, bar: Any, offset: int, stop: threading.Event) -> None:
    """Move the grid's bar as the cell's runner appends episodes (it runs without a bar)."""
    while not stop.wait(0.5):
        done = offset + cell.finished()
        if done != bar.n:
            bar.n = done
            bar.refresh()


def _read_yaml(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(path)  # a kill never leaves a half-written cell.yaml
