"""`fastprod produce` vs kcat -P vs kafka-console-producer: the same records from a file
into the same broker, in one run.

    .venv/bin/python bench/cli_produce.py [--records 2000000] [--bootstrap HOST:PORT]

Records: ~100-byte JSON objects keyed by their "id" field. fastprod reads them as JSON
Lines (`--format jsonl --key-field id`); kcat and kafka-console-producer read the same
records as `key<TAB>value` lines on stdin (their way to take a key; kcat -P given a
file name would send the whole file as one record). Then the same values
unkeyed, as plain lines. fastprod runs with its command's defaults (batch.size=262144,
linger.ms=20) and once more, keyed, with the Java producer's (16384, 5). Every tool writes to its own new topic (same partition count),
with acks=all and idempotence on (kcat's librdkafka has it off by default: -X turns it
on; the console producer's Java defaults already have it). The CPU of each run is the
tool's process (and its children) from getrusage; the count written is checked with the
topic's end offsets (librdkafka's watermarks) after each run.

Without --bootstrap a local one-node Kafka is started for the run and stopped at the end.
Prints a markdown table; --json writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_inputs(n: int, workdir: Path) -> tuple[Path, Path, Path]:
    """(jsonl, key<TAB>value, values-only lines) files of the same n records."""
    jsonl, kv, plain = workdir / "records.jsonl", workdir / "records.kv", workdir / "records.txt"
    with open(jsonl, "w") as fj, open(kv, "w") as fk, open(plain, "w") as fp:
        for i in range(n):
            key = f"user-{i % 100_000}"
            value = json.dumps({"id": key, "seq": i, "event": "page_view",
                                "page": f"/products/{i % 977}", "pad": "x" * 21},
                               separators=(",", ":"))
            fj.write(value + "\n")
            fk.write(f"{key}\t{value}\n")
            fp.write(value + "\n")
    return jsonl, kv, plain


def end_offsets(bootstrap: str, topic: str, attempts: int = 10) -> int:
    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            return _end_offsets(bootstrap, topic)
        except KafkaException:  # e.g. a leader not yet known to this consumer
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _end_offsets(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}"})
    try:
        md = c.list_topics(topic, timeout=30)
        total = 0
        for p in md.topics[topic].partitions:
            _, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            total += high
        return total
    finally:
        c.close()


def run_tool(cmd: list[str], stdin_path: Path | None) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the process and its children, exit code, stderr tail)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
        proc = subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode, proc.stderr.decode("utf-8", "replace")[-2000:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--bootstrap", help="an existing broker (default: start a local one)")
    ap.add_argument("--skip-console", action="store_true", help="leave kafka-console-producer out")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers here")
    args = ap.parse_args()

    from fastprod.localkafka import ExternalKafka, LocalKafka, classpath, java_executable

    kcat = shutil.which("kcat")
    if kcat is None:
        sys.exit("kcat is not installed (Debian: apt-get install kcat)")
    workdir = Path(tempfile.mkdtemp(prefix="fastprod-cli-bench-"))
    local = None
    try:
        if args.bootstrap:
            kafka = ExternalKafka(args.bootstrap)
        else:
            local = kafka = LocalKafka(nodes=1).start()
        bs = kafka.bootstrap_servers
        print(f"writing {args.records:,} records to {workdir}", file=sys.stderr, flush=True)
        jsonl, kv, plain = make_inputs(args.records, workdir)
        size = jsonl.stat().st_size
        fastprod = [sys.executable, "-m", "fastprod", "produce"]
        console = [java_executable(), "-Xmx512m", "-cp", classpath(),
                   "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", bs]
        kcat_opts = ["-X", "enable.idempotence=true", "-X", "acks=all"]
        runs = [
            ("keyed", "fastprod produce --format jsonl --key-field id",
             lambda t: fastprod + [t, str(jsonl), "--format", "jsonl", "--key-field", "id",
                                   "-b", bs, "--no-progress"], None),
            ("keyed", "fastprod produce, Java's batch.size=16384 linger.ms=5",
             lambda t: fastprod + [t, str(jsonl), "--format", "jsonl", "--key-field", "id",
                                   "-b", bs, "--no-progress", "-X", "batch.size=16384",
                                   "-X", "linger.ms=5"], None),
            ("keyed", "kcat -P -K '\\t'",
             lambda t: [kcat, "-P", "-b", bs, "-t", t, "-K", "\t", *kcat_opts], kv),
            ("keyed", "kafka-console-producer parse.key=true",
             lambda t: console + ["--topic", t, "--property", "parse.key=true",
                                  "--property", "key.separator=\t"], kv),
            ("unkeyed", "fastprod produce (lines)",
             lambda t: fastprod + [t, str(plain), "-b", bs, "--no-progress"], None),
            ("unkeyed", "kcat -P",
             lambda t: [kcat, "-P", "-b", bs, "-t", t, *kcat_opts], plain),
            ("unkeyed", "kafka-console-producer",
             lambda t: console + ["--topic", t], plain),
        ]
        results = []
        for kind, label, make_cmd, stdin in runs:
            if args.skip_console and "console" in label:
                continue
            topic = f"bench-cli-{kind}-{uuid.uuid4().hex[:8]}"
            kafka.create_topic(topic, partitions=args.partitions)
            print(f"{label} ({kind}) ...", file=sys.stderr, flush=True)
            wall, cpu, code, err = run_tool(make_cmd(topic), stdin)
            written = end_offsets(bs, topic)
            if code != 0 or written != args.records:
                print(f"  exit {code}, {written:,} records written\n{err}", file=sys.stderr)
            results.append({"kind": kind, "tool": label, "wall_s": wall, "cpu_s": cpu,
                            "exit": code, "written": written,
                            "records_per_s": args.records / wall,
                            "cpu_us_per_record": cpu / args.records * 1e6})
            print(f"  {args.records / wall:,.0f} records/s, {cpu / args.records * 1e6:.2f} "
                  f"µs CPU/record", file=sys.stderr, flush=True)
    finally:
        if local is not None:
            local.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{args.records:,} records, {size / args.records:.0f} bytes of JSON each, "
          f"{args.partitions} partitions, {os.cpu_count()} cores shared with the broker\n")
    print("| records | tool | records/s | MB/s | CPU µs/record | vs kcat rate | vs kcat CPU | written |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        base = next((b for b in results if b["kind"] == r["kind"] and b["tool"].startswith("kcat")), None)
        if base is None:
            continue
        print(f"| {r['kind']} | {r['tool']} | {r['records_per_s']:,.0f} | "
              f"{size / r['wall_s'] / 1e6:,.1f} | {r['cpu_us_per_record']:.2f} | "
              f"{r['records_per_s'] / base['records_per_s']:.2f}x | "
              f"{r['cpu_us_per_record'] / base['cpu_us_per_record']:.2f}x | {r['written']:,} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all(r["exit"] == 0 and r["written"] == args.records for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
