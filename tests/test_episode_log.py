import json
import logging

import pytest

from benchmarks.episode_log import EpisodeLog


def _write(path, lines):
    path.write_text("".join(lines))


def _record(i):
    return json.dumps({"episode_id": f"ep-{i:03d}", "metrics": {"score": i / 100}}) + "\n"


def test_a_bad_line_in_the_middle_loses_no_good_record(tmp_path, caplog):
    path = tmp_path / "episodes.jsonl"
    lines = [_record(i) for i in range(60)]
    lines[9] = '{"episode_id": "ep-009", "metr\n'  # corrupted line 10 of 60
    _write(path, lines)
    with caplog.at_level(logging.WARNING, logger="benchmarks.episode_log"):
        log = EpisodeLog(path)
    assert len(log.records) == 59
    assert log.done == {f"ep-{i:03d}" for i in range(60)} - {"ep-009"}
    assert [(s.line, s.reason) for s in log.skipped] == [(10, "not valid JSON")]
    assert "kept 59 episode records, skipped 1 lines (1 not valid JSON; lines 10)" in caplog.text
    # the file now holds only the good records, the bad line is set aside, not lost
    assert len(path.read_text().splitlines()) == 59
    aside = [json.loads(x) for x in log.skipped_path.read_text().splitlines()]
    assert aside == [{"line": 10, "reason": "not valid JSON",
                      "text": '{"episode_id": "ep-009", "metr'}]
    assert EpisodeLog(path).skipped == []  # a second open finds nothing to repair


@pytest.mark.parametrize(
    ("line", "reason"),
    [("{}", 'not an episode record (no text "episode_id")'),
     ("[1, 2]", 'not an episode record (no text "episode_id")'),
     ('{"episode_id": 7}', 'not an episode record (no text "episode_id")'),
     ("null", 'not an episode record (no text "episode_id")'),
     ("", "empty line"),
     ("\xff\xfe", "not valid JSON")],
)
def test_well_formed_but_foreign_lines_are_skipped_not_fatal(tmp_path, line, reason):
    path = tmp_path / "episodes.jsonl"
    _write(path, [_record(0), line + "\n", _record(1)])
    log = EpisodeLog(path)
    assert sorted(log.done) == ["ep-000", "ep-001"]
    assert [s.reason for s in log.skipped] == [reason]


def test_a_last_line_of_braces_and_a_partial_write(tmp_path):
    path = tmp_path / "episodes.jsonl"
    _write(path, [_record(0), "{}\n"])
    assert [s.line for s in EpisodeLog(path).skipped] == [2]
    _write(path, [_record(0), _record(1)[:-1]])  # complete JSON, newline lost: kept
    log = EpisodeLog(path)
    assert sorted(log.done) == ["ep-000", "ep-001"] and path.read_text().endswith("}\n")
    _write(path, [_record(0), _record(1)[:20]])
    log = EpisodeLog(path)
    assert log.done == {"ep-000"}
    assert [s.reason for s in log.skipped] == ["partial last line (a killed write)"]
    log.append({"episode_id": "ep-001"})
    assert EpisodeLog(path).done == {"ep-000", "ep-001"}


def test_duplicate_records_keep_the_first(tmp_path):
    path = tmp_path / "episodes.jsonl"
    first = json.dumps({"episode_id": "ep-000", "metrics": {"score": 1.0}}) + "\n"
    _write(path, [first, _record(0)])
    log = EpisodeLog(path)
    assert log.records == [json.loads(first)]
    assert log.skipped[0].reason == "a second record of episode 'ep-000' (the first is kept)"
