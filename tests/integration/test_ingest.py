"""``fastprod ingest``: the command end to end against the session broker, and its parts."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastprod.ingest import ConsoleReporter, EventGenerator, ProduceStats, ProgressBar, record_id

ROOT = Path(__file__).resolve().parents[2]


def _ingest(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-m", "fastprod", "ingest", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr[-4000:]}"


# ---- against the real broker ----------------------------------------------------------------


@pytest.mark.integration
def test_ingest_20000_records_count_confirmed(kafka):
    proc = _ingest("--records", "20000", "--bootstrap", kafka.bootstrap_servers)
    assert proc.returncode == 0, _explain(proc)
    out = proc.stdout
    m = re.search(r"produced 20,000 records .* ([\d,]+) records/s, ([\d.]+) MB/s", out)
    assert m, _explain(proc)
    assert int(m.group(1).replace(",", "")) > 0 and float(m.group(2)) > 0
    assert re.search(r"the topic gained 20,000 records, 20,000 expected: count confirmed", out), _explain(proc)
    # progress on stderr (not a TTY here: plain lines), ending at 100%
    assert re.search(r"producing: 100\.0%  20,000/20,000 records", proc.stderr), _explain(proc)


@pytest.mark.integration
def test_ingest_full_read_back_with_the_java_reader(kafka):
    """The path of a fresh machine without kafka-python: Kafka's Java tools check, and
    --verify full compares every key and value; keyed records, send() per record."""
    proc = _ingest("--records", "3000", "--bootstrap", kafka.bootstrap_servers, "--partitions", "3",
                   "--keyed", "--mode", "send", "--compression", "zstd", "--reader", "java",
                   "--verify", "full")  # fmt: skip
    assert proc.returncode == 0, _explain(proc)
    assert "read back (Java console consumer): read 3,000 records, 3,000 expected: " \
           "count and content confirmed" in proc.stdout, _explain(proc)  # fmt: skip


@pytest.mark.integration
def test_ingest_appends_to_an_existing_topic_and_counts_only_the_new_records(kafka):
    topic = f"ingest-append-{os.getpid()}"
    for n in ("2000", "3000"):
        proc = _ingest("--records", n, "--bootstrap", kafka.bootstrap_servers, "--topic", topic,
                       "--partitions", "2", "--verify", "full")  # fmt: skip
        assert proc.returncode == 0, _explain(proc)
        assert f"read {int(n):,} records, {int(n):,} expected: count and content confirmed" in proc.stdout


# ---- the parts --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_bar_writes_periodic_lines_when_not_a_tty():
    clock, out = FakeClock(), io.StringIO()
    bar = ProgressBar("producing", 1_000_000, out, tty=False, line_interval=2.0, clock=clock)
    clock.now += 0.5
    bar.update(100_000)  # too soon after the start: nothing
    clock.now += 1.5
    bar.update(400_000)  # 2 s in
    clock.now += 1.0
    bar.update(600_000)  # only 1 s after the last line: nothing
    clock.now += 1.0
    bar.update(800_000)  # 4 s in
    clock.now += 1.0
    bar.close(1_000_000)  # the final state, always
    bar.update(1_000_000, force=True)  # closed: ignored
    again = ProgressBar("reading", 10, out2 := io.StringIO(), tty=False, clock=clock)
    clock.now += 3.0
    again.update(10)
    again.close(10)  # the last line already says 10: not repeated
    assert out2.getvalue() == "reading: 100.0%  10/10 records  3 records/s  3.0s\n"
    assert out.getvalue().splitlines() == [
        "producing:  40.0%  400,000/1,000,000 records  200,000 records/s  2.0s",
        "producing:  80.0%  800,000/1,000,000 records  200,000 records/s  4.0s",
        "producing: 100.0%  1,000,000/1,000,000 records  200,000 records/s  5.0s",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_progress_bar_redraws_one_line_on_a_tty():
    clock, out = FakeClock(), io.StringIO()
    bar = ProgressBar("producing", 200, out, tty=True, interval=0.2, clock=clock)
    clock.now += 1.0
    bar.update(50)
    bar.clear()
    clock.now += 1.0
    bar.close(200)
    text = out.getvalue()
    assert text.startswith("\rproducing [#######---------------------]  25.0%  50/200 records  50 rec/s  1.0s\x1b[K")
    assert text.endswith("\rproducing [############################] 100.0%  200/200 records  100 rec/s  2.0s\x1b[K\n")
    assert text.count("\n") == 1


def test_console_reporter_prints_rates():
    out = io.StringIO()
    ConsoleReporter(out=out, err=io.StringIO(), tty=False).produced(
        ProduceStats(topic="t", records=1_000_000, value_bytes=100_000_000, seconds=2.0,
                     generate_seconds=0.25, delivered=1_000_000, chunk_size=10_000))  # fmt: skip
    assert "produced 1,000,000 records (100.0 MB of values) to t in 2.00 s: 500,000 records/s, 50.0 MB/s" \
        in out.getvalue()  # fmt: skip


def test_events_are_small_varied_json_and_reproducible():
    import json

    gen = EventGenerator(100, keyed=True, seed=7, ts_base=1_700_000_000_000, records_hint=20_000)
    values, keys = gen.chunk(0, 20_000)
    assert keys is not None and len(keys) == len(values) == 20_000
    sizes = [len(v) for v in values]
    assert 80 <= sum(sizes) / len(sizes) <= 105
    events = [json.loads(v) for v in values]
    assert [e["id"] for e in events] == list(range(20_000))
    assert all(k == e["user"].encode() for k, e in zip(keys, events))
    assert len({e["user"] for e in events}) > 1000
    assert {e["event"] for e in events} >= {"page_view", "click", "purchase", "search"}
    again = EventGenerator(100, keyed=True, seed=7, ts_base=1_700_000_000_000, records_hint=20_000)
    assert [again.value(i) for i in (0, 17, 19_999)] == [values[0], values[17], values[19_999]]
    assert again.key(17) == keys[17]
    assert record_id(values[12_345]) == 12_345 and record_id(b"not ours") is None
    big = EventGenerator(1000, seed=7).chunk(0, 100)[0]
    assert all(950 <= len(v) <= 1000 for v in big)


class FakeReader:
    """Stands in for kafka-python/Java: serves a fixed list of (partition, key, value)."""

    name = "fake"

    def __init__(self, records, end):
        self.records, self.end = records, end

    def end_offsets(self, topic, partitions):
        return dict(self.end)

    def read(self, topic, start, end, on_record, idle_timeout):
        for r in self.records:
            on_record(*r)


def test_verify_full_reports_missing_duplicate_changed_and_foreign_records():
    from fastprod.ingest import IngestOptions, Reporter, verify

    gen = EventGenerator(100, seed=3, ts_base=1_700_000_000_000)
    good = [(0, None, gen.value(i)) for i in range(10)]
    ok = verify(FakeReader(good, {0: 10}), "t", 1, {0: 0}, 10, gen, IngestOptions(verify="full"), Reporter())
    assert ok.ok and ok.found == 10 and ok.per_partition == {0: 10}

    bad = good[:7] + [good[3], (0, None, gen.value(8).replace(b'"ts"', b'"TS"')), (0, None, b"junk")]
    res = verify(FakeReader(bad, {0: 10}), "t", 1, {0: 0}, 10, gen, IngestOptions(verify="full"), Reporter())
    assert (res.found, res.missing, res.duplicates, res.mismatched, res.foreign) == (10, 2, 1, 1, 1)
    assert not res.ok
    out = io.StringIO()
    ConsoleReporter(out=out, err=io.StringIO(), tty=False).verified(res)
    assert "MISMATCH (10 expected, 2 missing, 1 duplicates, 1 mismatched, 1 foreign)" in out.getvalue()

    short = verify(FakeReader([], {0: 15, 1: 4}), "t", 2, {0: 5, 1: 0}, 15, gen, IngestOptions(), Reporter())
    assert (short.level, short.found, short.per_partition, short.ok) == ("count", 14, {0: 10, 1: 4}, False)
