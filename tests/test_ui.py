"""Terminal helpers: summaries on stdout, progress quiet off a TTY."""

from __future__ import annotations

import pytest

from sunset.ui import progress, summary_table


def test_summary_table_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    summary_table("Crawl", [("pages", 12345), ("share", 0.5), ("warc", "out/a.warc.gz")])
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Crawl" in captured.out
    assert "12,345" in captured.out
    assert "0.50" in captured.out
    assert "out/a.warc.gz" in captured.out


def test_progress_without_tty_prints_only_a_final_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress("Fetching", total=3, unit="pages", live=False) as tracker:
        for _ in range(3):
            tracker.advance()
        assert capsys.readouterr().err == "", "nothing before the end"
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Fetching: 3 of 3 pages done in ")
    assert tracker.count == 3


def test_progress_reports_when_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(KeyboardInterrupt), progress("Fetching", live=False) as tracker:
        tracker.advance(2)
        raise KeyboardInterrupt
    assert capsys.readouterr().err.startswith("Fetching: 2 items stopped in ")


def test_progress_live_mode_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("Parsing", unit="pages", live=True) as tracker:
        tracker.advance(5)
        tracker.set_total(10)
        tracker.set_description("Parsing more")
    assert tracker.count == 5
    assert tracker.total == 10
    assert capsys.readouterr().out == "", "progress never writes to stdout"
