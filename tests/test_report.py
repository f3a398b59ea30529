import base64
import doctest
import gzip
import importlib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.grid import GridConfig, run_grid
from benchmarks.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
SMALL = {"num_facts": 2, "num_updates": 1, "num_deletes": 0, "num_distractors": 1, "distractor_sentences": 1,
         "num_queried": 1}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    run_grid(GridConfig.model_validate({
        "name": "r", "out": str(out), "episodes": 3,
        "methods": [{"name": "Oracle", "agent": "oracle"}, {"name": "Noop", "agent": "noop"}],
        "benchmarks": [{"name": "assistant", "env_options": SMALL}]}), progress=False)
    return out


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    return write_report([runs], tmp_path_factory.mktemp("report"),
                        train_runs=[REPO / "results" / "grpo-tiny-assistant" / "full-seed0"])


@pytest.mark.parametrize("name", ["benchmarks.grid", "benchmarks.tables", "benchmarks.run_folders",
                                  "benchmarks.report"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def _blob(html, k):
    match = re.search(rf'<script type="application/octet-stream" id="ep-{k}" data-enc="gzip-base64">([^<]*)</script>',
                      html)
    return json.loads(gzip.decompress(base64.b64decode(match.group(1))))


def test_page_is_self_contained_with_one_trace_blob_per_episode(runs, page):
    html = page.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing may load from the network"
    assert "<link" not in html and html.count("data:image/png;base64,") == 5  # incl. the learning curve
    index = json.loads(re.search(r'<script type="application/json" id="episode-index">(.*?)</script>',
                                 html, re.S).group(1))
    assert [(e["method"], e["episode_id"]) for e in index] == [
        ("Noop", f"assistant-{i:05d}") for i in range(3)] + [("Oracle", f"assistant-{i:05d}") for i in range(3)]
    blob = _blob(html, 3)  # the oracle's first episode
    record = json.loads((runs / "Oracle" / "assistant" / "seed0" / "episodes.jsonl").read_text().splitlines()[0])
    assert blob["record"]["ltm"] == record["ltm"] and blob["record"]["gold_answers"] == record["gold_answers"]
    calls = [e for e in blob["events"] if e["kind"] == "tool_call"]
    assert calls and calls[0]["payload"]["name"] == "Add_memory"
    assert len(blob["events"]) == record["trace_events"] == index[3]["events"]
    assert 'id="table-table2_wide"' in html and "45.36" in html  # the paper's number beside ours


def test_cli_report_and_missing_runs(runs, tmp_path):
    result = CliRunner().invoke(app, ["report", str(runs / "Oracle"), "--out", str(tmp_path / "r"), "--no-paper"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "index.html").read_text()
    assert html.count('data-enc="gzip-base64"') == 3 and "45.36" not in html
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "no run folder at" in missing.output


def test_uncompressed_traces_and_old_records(runs, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(runs / "Oracle" / "assistant" / "seed0", copy)
    shutil.rmtree(copy / "traces")  # a run from before traces: only memory_trace in the record
    log = copy / "episodes.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for record in records:
        record["env"] = record.pop("benchmark")
        record["memory_trace"] = [{"round": 1, "stage": 1, "turn": 0, "tool": "Add_memory",
                                   "arguments": {"content": "x"}, "ok": True, "result": "Stored mem_1."}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    html = write_report([copy], tmp_path / "r", compress_traces=False).read_text()
    blob = json.loads(re.search(r'id="ep-0" data-enc="json">(.*?)</script>', html, re.S).group(1))
    assert blob["record"]["benchmark"] == "assistant"
    assert [e["payload"]["name"] for e in blob["events"]] == ["Add_memory"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (CI installs it: "
                    "apt-get install -y chromium chromium-driver)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install 'agemem-gym[test]'")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def test_browser_opens_an_episode_and_shows_its_tool_calls(page, browser):
    tab = browser.new_page()
    errors, requests = [], []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("request", lambda r: requests.append(r.url))
    tab.goto(page.as_uri())
    tab.wait_for_function("window.__reportReady === true")
    rows = tab.locator("#episodes tbody tr")
    assert rows.count() == 6 and tab.locator("#viewer .ev").count() == 0, "no trace is rendered before a click"
    tab.select_option("#f-method", "Oracle")
    assert rows.count() == 3
    tab.select_option("#f-success", "0")
    assert rows.count() == 0
    tab.select_option("#f-success", "")
    rows.first.click()
    tab.wait_for_selector("#viewer .ev-tool_call .tool-name")
    tools = tab.locator("#viewer .ev-tool_call .tool-name").all_inner_texts()
    assert tools[0] == "Add_memory" and "Retrieve_memory" in tools
    assert tab.locator("#viewer .ev-tool_call pre").first.is_visible()
    assert tab.locator("#viewer .timeline div").count() == 3  # the three stages
    assert tab.locator("#viewer .final-memory li").count() >= 1
    assert tab.locator("#viewer pre.gold").inner_text().strip() != "-"
    tab.select_option("#viewer select", "tool_call")
    assert tab.locator("#viewer .ev:visible").count() == len(tools)
    assert errors == [] and all(url.startswith(("file:", "data:", "blob:")) for url in requests)
    tab.close()


def test_a_link_opens_one_trace_alone(page, browser):
    tab = browser.new_page()
    tab.goto(page.as_uri() + "#ep=4&solo")
    tab.wait_for_selector("#viewer .ev-tool_call .tool-name")
    assert "assistant-00001 - Oracle on assistant" in tab.locator("#viewer h3").first.inner_text()
    assert not tab.locator("#episodes").is_visible() and tab.locator("#viewer").is_visible()
    tab.close()
