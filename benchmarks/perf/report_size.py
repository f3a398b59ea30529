"""Size and load time of ``agemem-bench report``'s page as the number of episodes grows.

Runs real episodes (the oracle and noop on the Assistant), replicates them into run folders of
N episodes (new episode ids, the same records and traces), writes the report for each N, and
opens it in headless Chromium: the time until the page is ready (episode list rendered), and
the time from a click on an episode to its trace on screen. Traces are embedded gzip+base64
(the default) or as plain JSON, to show what the compression buys.

    python benchmarks/perf/report_size.py                  # 10, 100 and 1,000 episodes
    python benchmarks/perf/report_size.py --sizes 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.grid import GridConfig, run_grid
from benchmarks.report import write_report

CHROMIUM = "/usr/bin/chromium"
#: The Assistant's default task: 8 facts with updates and deletes, distractors, a query.
BASE_EPISODES = 20


def real_runs(root: Path) -> Path:
    grid = GridConfig.model_validate({
        "name": "perf", "out": str(root / "base"), "episodes": BASE_EPISODES,
        "methods": [{"name": "oracle", "agent": "oracle"}, {"name": "noop", "agent": "noop"}],
        "benchmarks": ["assistant"]})
    run_grid(grid, progress=False)
    return grid.folder


def replicate(base: Path, out: Path, episodes: int) -> Path:
    """Run folders holding ``episodes`` episodes in all, copied from the real ones."""
    folders = sorted(p.parent for p in base.rglob("episodes.jsonl"))
    for j, folder in enumerate(folders):
        target = out / folder.relative_to(base)
        (target / "traces").mkdir(parents=True)
        for name in ("config.yaml", "cell.yaml"):
            shutil.copy(folder / name, target / name)
        records = [json.loads(line) for line in (folder / "episodes.jsonl").read_text().splitlines()]
        share = episodes // len(folders) + (j < episodes % len(folders))
        lines = []
        for i in range(share):
            record = dict(records[i % len(records)])
            source = folder / "traces" / f"{record['episode_id']}.json.gz"
            record["episode_id"], record["index"] = f"assistant-{i:05d}", i
            shutil.copy(source, target / "traces" / f"{record['episode_id']}.json.gz")
            lines.append(json.dumps(record) + "\n")
        (target / "episodes.jsonl").write_text("".join(lines))
    return out


def browser_times(page: Path, repeats: int) -> tuple[float, float]:
    """Median seconds to a ready page, and from a click to the trace on screen."""
    from playwright.sync_api import sync_playwright

    ready, opened = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for _ in range(repeats):
            tab = browser.new_page()
            start = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_function("window.__reportReady === true")
            ready.append(time.perf_counter() - start)
            start = time.perf_counter()
            tab.locator("#episodes tbody tr").last.click()
            tab.wait_for_selector("#viewer .ev")
            opened.append(time.perf_counter() - start)
            tab.close()
        browser.close()
    return statistics.median(ready), statistics.median(opened)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="report-size-"))
    try:
        base = real_runs(root)
        rows = []
        for n in args.sizes:
            runs = replicate(base, root / f"runs-{n}", n)
            for compress in (True, False):
                start = time.perf_counter()
                page = write_report([runs], root / f"report-{n}-{compress}", compress_traces=compress)
                build = time.perf_counter() - start
                ready, opened = browser_times(page, args.repeats) if Path(CHROMIUM).exists() else (float("nan"),) * 2
                rows.append((n, "gzip+base64" if compress else "json", page.stat().st_size / 1e6, build, ready, opened))
        print(f"{'episodes':>8} {'traces':>12} {'MB':>7} {'build s':>8} {'ready s':>8} {'open s':>7}")
        for n, kind, mb, build, ready, opened in rows:
            print(f"{n:>8} {kind:>12} {mb:>7.2f} {build:>8.2f} {ready:>8.3f} {opened:>7.3f}")
        by = {(n, kind): (mb, ready) for n, kind, mb, _, ready, _ in rows}
        top, low = max(args.sizes), min(args.sizes)
        if top != low:
            mb_ratio = by[(top, "gzip+base64")][0] / by[(low, "gzip+base64")][0]
            time_ratio = by[(top, "gzip+base64")][1] / by[(low, "gzip+base64")][1]
            print(f"{top} vs {low} episodes: page {mb_ratio:.1f}x larger, ready {time_ratio:.1f}x later")
        gz, js = by[(top, "gzip+base64")][0], by[(top, "json")][0]
        print(f"gzip+base64 traces: page {js / gz:.1f}x smaller than plain JSON at {top} episodes")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
