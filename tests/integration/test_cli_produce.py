"""`fastprod produce` end to end: the real command (a subprocess) against the real broker,
what it wrote read back by independent consumers (the Java KafkaConsumer, librdkafka)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zstandard

try:
    from readers import ReadError, by_partition_offset, confluent_read, java_read
    from helpers import unique_topic
except ImportError:  # tests/ imported as a package
    from tests.readers import ReadError, by_partition_offset, confluent_read, java_read
    from tests.helpers import unique_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def produce(*args: str, input: bytes | None = None, timeout: float = 120):
    """Run `python -m fastprod produce ... --json`; returns (exit code, summary, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "fastprod", "produce", *args, "--json"],
                          cwd=ROOT, env=_env(), input=input, capture_output=True,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    stderr = proc.stderr.decode("utf-8", "replace")
    out = proc.stdout.decode()
    summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    return proc.returncode, summary, stderr


def _explain(code, summary, stderr) -> str:
    return f"exit {code}\nsummary {summary}\nstderr:\n{stderr[-3000:]}"


def test_lines_from_a_gzip_file_keyed_with_headers_zstd(kafka, tmp_path):
    topic = unique_topic("cli-lines")
    kafka.create_topic(topic, partitions=3)
    lines = [f"user-{i % 17}\tvalue {i} {'x' * (i % 50)}" for i in range(3000)]
    path = tmp_path / "in.log.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    code, s, err = produce(topic, str(path), "-b", kafka.bootstrap_servers, "-K", r"\t",
                           "-H", "source=cli-test", "-H", "run=1", "--compression", "zstd")
    assert code == 0, _explain(code, s, err)
    assert (s["read"], s["delivered"], s["failed"], s["skipped"], s["not_sent"]) == (3000, 3000, 0, 0, 0)
    records = java_read(kafka.bootstrap_servers, topic, 3000)
    assert len(records) == 3000
    got = sorted((r.key, r.value) for r in records)
    want = sorted((l.split("\t", 1)[0].encode(), l.split("\t", 1)[1].encode()) for l in lines)
    assert got == want
    assert {r.headers for r in records} == {(("source", b"cli-test"), ("run", b"1"))}
    # a key always lands in one partition, and each partition holds its keys in input order
    by_key: dict[bytes, set[int]] = {}
    for r in records:
        by_key.setdefault(r.key, set()).add(r.partition)
    assert all(len(p) == 1 for p in by_key.values())
    for p in range(3):
        values = [r.value for r in by_partition_offset(records) if r.partition == p]
        order = [int(v.split()[1]) for v in values]
        assert order == sorted(order)


def test_lines_from_stdin_to_one_partition_in_order(kafka):
    topic = unique_topic("cli-stdin")
    kafka.create_topic(topic, partitions=3)
    data = b"".join(b"line %d\n" % i for i in range(5000))
    code, s, err = produce(topic, "-b", kafka.bootstrap_servers, "-p", "2", input=data)
    assert code == 0, _explain(code, s, err)
    assert s["delivered"] == 5000
    records = by_partition_offset(confluent_read(kafka.bootstrap_servers, topic, 5000))
    assert [r.value for r in records] == [b"line %d" % i for i in range(5000)]
    assert {r.partition for r in records} == {2} and all(r.key is None for r in records)


def test_custom_delimiter_from_stdin(kafka):
    topic = unique_topic("cli-delim")
    kafka.create_topic(topic, partitions=1)  # one partition: input order is read order
    code, s, err = produce(topic, "-b", kafka.bootstrap_servers, "-D", r"\x1e",
                           input=b"a\nb\x1ec\x1e\x1ed")
    assert code == 0, _explain(code, s, err)
    records = by_partition_offset(confluent_read(kafka.bootstrap_servers, topic, 4))
    assert [r.value for r in records] == [b"a\nb", b"c", b"", b"d"]


def test_jsonl_file_with_key_timestamp_headers_and_malformed_lines(kafka, tmp_path):
    topic = unique_topic("cli-jsonl")
    kafka.create_topic(topic, partitions=2)
    base = 1_700_000_000_000
    docs = [{"id": i, "ts": base + i, "h": {"trace": f"t{i}"}, "body": {"n": i}} for i in range(200)]
    lines = [json.dumps(d) for d in docs]
    lines.insert(50, "{broken")
    lines.insert(120, '{"ts": 5}')  # no id
    path = tmp_path / "in.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines) + "\n").encode()))
    code, s, err = produce(topic, str(path), "-b", kafka.bootstrap_servers, "--format", "jsonl",
                           "--key-field", "id", "--timestamp-field", "ts", "--headers-field", "h",
                           "--value-field", "/body")
    assert code == 4, _explain(code, s, err)
    assert (s["read"], s["delivered"], s["skipped"]) == (202, 200, 2)
    assert s["malformed"] == [f"{path}:51: invalid JSON: Expecting property name enclosed in "
                              f"double quotes at column 2", f"{path}:121: no key field id"]
    assert f"{path}:51: invalid JSON" in err and "skipped 2 malformed record(s)" in err
    records = java_read(kafka.bootstrap_servers, topic, 200)
    got = sorted((int(r.key), r.value, r.timestamp, r.timestamp_type, r.headers) for r in records)
    assert got == [(i, b'{"n":%d}' % i, base + i, "CREATE_TIME", (("trace", b"t%d" % i),))
                   for i in range(200)]


def test_jsonl_from_stdin_value_is_the_line_as_it_is(kafka):
    topic = unique_topic("cli-jsonl-stdin")
    lines = [b'{"user": {"id": "u%d"}, "v": %d}' % (i % 5, i) for i in range(1000)]
    code, s, err = produce(topic, "-b", kafka.bootstrap_servers, "--format", "jsonl",
                           "--key-field", "/user/id", input=b"\n".join(lines) + b"\n\n")
    assert code == 0, _explain(code, s, err)
    records = confluent_read(kafka.bootstrap_servers, topic, 1000)
    assert sorted((r.key, r.value) for r in records) == sorted(
        (b"u%d" % (i % 5), lines[i]) for i in range(1000))


def test_csv_file_key_column_and_value_as_json(kafka, tmp_path):
    topic = unique_topic("cli-csv")
    kafka.create_topic(topic, partitions=1)  # one partition: input order is read order
    path = tmp_path / "people.csv"
    path.write_text('id,name,city\n1,ann,"New\nYork"\n2,bob,Paris\n3,cy\n4,dee,Rome\n')
    code, s, err = produce(topic, str(path), "-b", kafka.bootstrap_servers, "--format", "csv",
                           "--key-column", "name", "--value-as", "json")
    assert code == 4, _explain(code, s, err)
    assert s["malformed"] == [f"{path}:5: 2 fields where the header has 3"]
    records = by_partition_offset(java_read(kafka.bootstrap_servers, topic, 3))
    assert [(r.key, json.loads(r.value)) for r in records] == [
        (b"ann", {"id": "1", "name": "ann", "city": "New\nYork"}),
        (b"bob", {"id": "2", "name": "bob", "city": "Paris"}),
        (b"dee", {"id": "4", "name": "dee", "city": "Rome"})]


def test_tsv_from_stdin_raw_rows(kafka):
    topic = unique_topic("cli-tsv")
    kafka.create_topic(topic, partitions=1)  # one partition: input order is read order
    data = b"k\tv\n" + b"".join(b"key%d\tval%d\n" % (i, i) for i in range(300))
    code, s, err = produce(topic, "-b", kafka.bootstrap_servers, "--format", "tsv",
                           "--key-column", "k", input=data)
    assert code == 0, _explain(code, s, err)
    records = by_partition_offset(confluent_read(kafka.bootstrap_servers, topic, 300))
    assert [(r.key, r.value) for r in records] == [(b"key%d" % i, b"key%d\tval%d" % (i, i))
                                                   for i in range(300)]


def test_file_format_a_directory_one_record_per_file(kafka, tmp_path):
    topic = unique_topic("cli-files")
    d = tmp_path / "docs"
    d.mkdir()
    contents = {"b.json": b'{"b": 1}\n', "a.txt": b"first\nsecond\n", "c.bin": bytes(range(256))}
    for name, data in contents.items():
        (d / name).write_bytes(data)
    code, s, err = produce(topic, str(d), "-b", kafka.bootstrap_servers, "--format", "file",
                           "-p", "0")
    assert code == 0, _explain(code, s, err)
    assert s["files"] == 3 and s["delivered"] == 3
    records = by_partition_offset(java_read(kafka.bootstrap_servers, topic, 3))
    assert [r.value for r in records] == [contents[n] for n in sorted(contents)]


def test_a_record_over_max_request_size_fails_with_its_reason(kafka, tmp_path):
    topic = unique_topic("cli-too-large")
    kafka.create_topic(topic, partitions=1)  # one partition: input order is read order
    path = tmp_path / "in.txt"
    path.write_bytes(b"small 1\n" + b"x" * 5000 + b"\nsmall 2\n")
    code, s, err = produce(topic, str(path), "-b", kafka.bootstrap_servers,
                           "-X", "max.request.size=2000")
    assert code == 1, _explain(code, s, err)
    assert (s["read"], s["delivered"], s["failed"]) == (3, 2, 1)
    assert s["failure_kinds"] == {"RecordTooLargeError": 1}
    assert s["failures"][0].startswith(f"{path}:2: RecordTooLargeError: the record is")
    assert "max.request.size" in s["failures"][0] and "max.request.size" in err
    records = by_partition_offset(confluent_read(kafka.bootstrap_servers, topic, 2))
    assert [r.value for r in records] == [b"small 1", b"small 2"]


def test_missing_file_sends_nothing(kafka, tmp_path):
    topic = unique_topic("cli-missing")
    ok = tmp_path / "ok.txt"
    ok.write_text("a\nb\n")
    code, s, err = produce(topic, str(ok), str(tmp_path / "nope.txt"), "-b", kafka.bootstrap_servers)
    assert code == 3 and s is None
    assert "nope.txt: no such file" in err
    assert topic not in kafka.metadata([]).topics  # never even asked for (no auto-create)


def test_workers_sharded_producer(kafka, tmp_path):
    topic = unique_topic("cli-workers")
    kafka.create_topic(topic, partitions=4)
    path = tmp_path / "in.txt"
    path.write_bytes(b"".join(b"k%d:v%d\n" % (i % 100, i) for i in range(20000)))
    code, s, err = produce(topic, str(path), "-b", kafka.bootstrap_servers, "--workers", "2",
                           "-K", ":", timeout=180)
    assert code == 0, _explain(code, s, err)
    assert s["delivered"] == 20000
    records = confluent_read(kafka.bootstrap_servers, topic, 20000)
    assert sorted((r.key, r.value) for r in records) == sorted(
        (b"k%d" % (i % 100), b"v%d" % i) for i in range(20000))


def test_ctrl_c_flushes_what_was_read_and_reports(kafka):
    topic = unique_topic("cli-sigint")
    proc = subprocess.Popen([sys.executable, "-m", "fastprod", "produce", topic, "-b",
                             kafka.bootstrap_servers, "--json"], cwd=ROOT, env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"".join(b"before %d\n" % i for i in range(700)))
        proc.stdin.flush()
        # the input stays open: the command is blocked reading when Ctrl-C comes
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if len(confluent_read(kafka.bootstrap_servers, topic, 700, idle_timeout=2)) >= 700:
                    break
            except ReadError:  # the topic is not there yet
                time.sleep(0.5)
        assert proc.poll() is None, "the command must still be reading its open stdin"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert proc.returncode == 130, err.decode()
    assert summary["interrupted"] is True
    assert (summary["read"], summary["delivered"], summary["not_sent"]) == (700, 700, 0)
    assert b"interrupted: reading stopped" in err
    assert len(java_read(kafka.bootstrap_servers, topic, 700)) == 700
