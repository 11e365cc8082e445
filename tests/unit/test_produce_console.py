"""fastprod.produce.console: progress output and the summary text."""

from __future__ import annotations

import io

from fastprod.produce.console import ConsoleReporter, format_summary
from fastprod.produce.run import Summary


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_plain_progress_lines_when_not_a_terminal(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("fastprod.produce.console.time.monotonic", clock)
    out = io.StringIO()
    r = ConsoleReporter(out, tty=False, interval=5.0)
    r.start(total_bytes=4_000_000)
    clock.t += 1
    r.update(10_000, 1_000_000, 1_000_000, 0)  # before the interval: nothing
    assert out.getvalue() == ""
    clock.t += 4
    r.update(50_000, 2_000_000, 2_000_000, 3)
    line = out.getvalue().strip()
    assert line == ("producing: 50,000 records  2.0 MB  10,000 rec/s  0.4 MB/s  failed 3  "
                    "50.0%  ETA 5s")
    r.finish()


def test_plain_progress_without_a_known_size_has_no_eta(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("fastprod.produce.console.time.monotonic", clock)
    out = io.StringIO()
    r = ConsoleReporter(out, tty=False, interval=1.0)
    r.start(total_bytes=None)
    clock.t += 2
    r.update(100, 1000, 1000, 0)
    assert "ETA" not in out.getvalue() and "producing: 100 records" in out.getvalue()


def test_terminal_bar_shows_records_rates_failed_and_eta(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("fastprod.produce.console.time.monotonic", clock)
    out = io.StringIO()
    r = ConsoleReporter(out, tty=True)
    r.start(total_bytes=10_000_000)
    clock.t += 2
    r.update(20_000, 2_000_000, 5_000_000, 7)
    r.finish()
    text = out.getvalue()
    assert "producing" in text and "50%" in text and "ETA" in text
    assert "20,000 records" in text and "10,000 rec/s" in text and "failed 7" in text
    assert "MB/s" in text


def test_summary_text_lists_malformed_and_failures_then_counts():
    s = Summary("t", read=20, delivered=10, failed=4, skipped=6, bytes=2_000_000, seconds=2.0,
                malformed=[f"f:{i}: bad" for i in range(5)], failures=["f:9: RecordTooLargeError: big"],
                failure_kinds={"RecordTooLargeError": 4}, exit_code=1)
    text = format_summary(s)
    assert text.splitlines()[0] == ("t: read 20 records, delivered 10, failed 4, skipped 6, not "
                                    "sent 0; 2.0 MB in 2.00s (10 records/s, 1.0 MB/s)")
    assert "  f:0: bad" in text and "  ... and 1 more" in text
    assert "failed 4 record(s) (RecordTooLargeError x4):" in text and "  ... and 3 more" in text
    assert text.splitlines()[-1].startswith("exit 1: some records failed")
