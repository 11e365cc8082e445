#!/usr/bin/env python
"""ShardedProducer benchmark: ShardedProducer vs Producer vs confluent-kafka, one broker.

Usage, from the repository root (venv active, extensions built in place):

    python bench/sharded.py                  # full run: writes bench/RESULTS.md + sharded.png
    python bench/sharded.py --quick          # smoke test: small runs, 1 repeat, no write
    python bench/sharded.py --records 500000 --repeats 1 --codecs none,gzip --sizes 100
    python bench/sharded.py --profile gzip-100   # cProfile parent + workers of one run
    python bench/sharded.py --from-json runs.json   # re-render a --json dump

What it does, all in one run against one local broker (fastprod.localkafka, one KRaft
node, unless --bootstrap):

- matrix: workers = 1, 2 and os.cpu_count() (deduplicated) x codec none, lz4, gzip, zstd
  x value size 100 B and 1 KiB; clients ShardedProducer(workers=N).send_batch,
  Producer.send_batch (chunks of --chunk, default 10,000) and confluent-kafka
  (produce + poll(0) per record); plus send() rows for 100-byte values, no compression
  (ShardedProducer for every worker count, Producer);
- every run: a fresh topic (--partitions, replication 1), the client in a fresh
  subprocess (bench/sharded_child.py), and afterwards the topic's end offsets must add
  up to the records sent (otherwise the benchmark aborts);
- measured per run (first send to end of flush): wall time; CPU of the producing
  process (getrusage RUSAGE_SELF: all its threads, no children; for ShardedProducer
  the *parent*), CPU of every worker process (/proc/<pid>/stat utime+stime before and
  after), per-thread CPU of both, the broker JVM's CPU and the machine's busy fraction;
- reports medians over --repeats, ratios, the CPU cost per record of the parent and of
  the workers, the throughput those costs project for 4, 8 and 16 cores
  (rate(N) = min(1 / parent cost, N / worker cost)), the targets with pass/fail, into
  bench/RESULTS.md between ``<!-- sharded:start -->`` and ``<!-- sharded:end -->`` and
  a plot in bench/sharded.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sharded_child  # noqa: E402  (bench/ is sys.path[0] when run as a script)
from _common import build_revision  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
PLOT = BENCH / "sharded.png"
START, END = "<!-- sharded:start -->", "<!-- sharded:end -->"

CODECS = ["none", "lz4", "gzip", "zstd"]
SIZES = [100, 1024]
PROJECT_CORES = [4, 8, 16]
BASELINE = "confluent"

# The settings every client gets (each in its own names); idempotence is on for both.
LINGER_MS = 5
BATCH_SIZE = 16384
MAX_IN_FLIGHT = 5

# Targets (from the issue)
PARENT_BATCH_US = 0.5  # parent CPU per 100-byte record through send_batch
PARENT_SEND_US = 1.5  # ... through send()
GZIP_SCALING = 1.6  # records/s, 2 workers vs 1 worker, gzip
PROJECTION_CORES = 8
PROJECTION_VS_CONFLUENT = 3.0
# A worker busier than this (fraction of the wall time on CPU) was the bottleneck.
WORKER_BOUND = 0.85


# ---- clients and cases ------------------------------------------------------------------------

def case_name(codec: str, size: int) -> str:
    return f"{codec}-{size}"


def case_label(case: str) -> str:
    codec, size = case.split("-")
    return f"{codec}, {size_label(int(size))}"


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def parse_client(client: str) -> dict:
    """sharded-w2 / sharded-send-w2 / producer / producer-send / confluent."""
    if client == "confluent":
        return {"client": "confluent", "api": "produce", "workers": None}
    parts = client.split("-")
    kind = parts[0]
    api = "send" if "send" in parts else "batch"
    workers = int(parts[-1][1:]) if parts[-1].startswith("w") else None
    return {"client": "sharded" if kind == "sharded" else "producer", "api": api,
            "workers": workers}


def client_label(client: str) -> str:
    c = parse_client(client)
    if c["client"] == "confluent":
        return "confluent-kafka"
    call = "send()" if c["api"] == "send" else "send_batch()"
    if c["client"] == "sharded":
        return f"ShardedProducer w={c['workers']} {call}"
    return f"Producer {call}"


def clients_for(case: str, workers: list[int], with_send: bool) -> list[str]:
    out = [f"sharded-w{n}" for n in workers] + ["producer", "confluent"]
    if with_send and case == case_name("none", 100):
        out += [f"sharded-send-w{n}" for n in workers] + ["producer-send"]
    return out


def client_config(client: str, codec: str) -> dict:
    """Each client's own config names; the same semantics for all."""
    kind = parse_client(client)["client"]
    if kind == "confluent":
        cfg = {"acks": "all", "enable.idempotence": True, "linger.ms": LINGER_MS,
               "batch.size": BATCH_SIZE, "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
               "compression.type": codec}
    else:
        # enable.idempotence: fastprod's default (true), as the Java producer's
        cfg = {"acks": "all", "linger.ms": LINGER_MS, "batch.size": BATCH_SIZE,
               "max.in.flight.requests.per.connection": MAX_IN_FLIGHT}
        if codec != "none":
            cfg["compression.type"] = codec
    return cfg


# ---- broker -----------------------------------------------------------------------------------

class BenchError(RuntimeError):
    pass


class ChildFailed(BenchError):
    """The client process crashed (as opposed to a run that finished with a wrong
    count): recorded, reported, and tried again up to --retry-failed times."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


def failure_summary(stderr: str) -> str:
    """The innermost frame and the exception line of a child's traceback."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
    last = lines[-1].strip() if lines else "?"
    return (f"{last} (at {frames[-1]})" if frames else last)[:400]


def attempt(fn, retries: int, failures: list, what: str):
    """fn(), tried again up to ``retries`` times when its child crashes; every crash is
    appended to ``failures`` (and reported)."""
    for k in range(retries + 1):
        try:
            return fn()
        except ChildFailed as e:
            summary = failure_summary(e.stderr)
            failures.append({"run": what, "error": summary, "stderr": e.stderr[-3000:]})
            print(f"!!!!! {what}: the client process failed: {summary}"
                  + ("; trying again" if k < retries else ""), file=sys.stderr, flush=True)
            if k == retries:
                raise


def failures_lines(failures: list) -> list[str]:
    if not failures:
        return []
    lines = ["", "### Failed runs", "",
             f"{len(failures)} run(s) crashed and were run again (the table has the rerun); "
             "each is a fastprod (or client) bug to look at:", ""]
    for f in failures:
        lines.append(f"- {f['run']}: `{f['error']}`")
    return lines


def dump_json(path: str | None, args, command: str, when: str, runs: list,
              failures: list) -> None:
    if not path:
        return
    saved = {k: v for k, v in vars(args).items() if k not in ("json", "from_json")}
    Path(path).write_text(json.dumps({"command": command, "date": when, "args": saved,
                                      "runs": runs, "failures": failures}, indent=1))


class Broker:
    """Our own LocalKafka, or an external one (--bootstrap); topics, offsets, cleanup."""

    def __init__(self, bootstrap: str | None, heap: str) -> None:
        from fastprod.localkafka import ExternalKafka, LocalKafka

        if bootstrap:
            self.kafka = ExternalKafka(bootstrap)
            self.pid = None
            self.local = False
        else:
            self.kafka = LocalKafka(heap=heap, auto_create_topics=False)
            self.kafka.start()
            self.pid = self.kafka.nodes[0].pid
            self.local = True
        self.bootstrap = self.kafka.bootstrap_servers

    def create_topic(self, name: str, partitions: int) -> None:
        self.kafka.create_topic(name, partitions=partitions, replication_factor=1)

    def end_offsets(self, topic: str, partitions: int) -> list[int]:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fastprod-bench-verify",
                      "enable.auto.commit": False, "log_level": 3})
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    for p in range(partitions)]
        finally:
            c.close()

    def count_committed(self, topic: str, partitions: int, timeout: float = 120) -> int:
        """Records a read_committed consumer reads from ``topic`` (control records and
        aborted records excluded), reading every partition up to its end offset."""
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        ends = self.end_offsets(topic, partitions)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fastprod-bench-count",
                      "enable.auto.commit": False, "isolation.level": "read_committed",
                      "enable.partition.eof": True, "log_level": 3})
        try:
            c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
            todo = {p for p in range(partitions) if ends[p] > 0}
            count = 0
            deadline = time.monotonic() + timeout
            while todo and time.monotonic() < deadline:
                for m in c.consume(10_000, 1.0):
                    err = m.error()
                    if err is None:
                        count += 1
                    elif err.code() == KafkaError._PARTITION_EOF:
                        todo.discard(m.partition())
                    else:
                        raise BenchError(f"read_committed consumer: {err}")
            if todo:
                raise BenchError(f"read_committed count of {topic} timed out")
            return count
        finally:
            c.close()

    def batch_stats(self, topic: str, partitions: int) -> dict | None:
        """Batches, records and bytes the broker stored for ``topic`` (data batches
        only, control batches counted apart), read from its log segments (our own broker
        only)."""
        if not self.local:
            return None
        data = self.kafka.nodes[0].spec.data_dir
        batches = records = size = control = 0
        for p in range(partitions):
            for seg in sorted((data / f"{topic}-{p}").glob("*.log")):
                with open(seg, "rb") as fh:
                    while True:
                        head = fh.read(61)
                        if len(head) < 61:
                            break
                        length = int.from_bytes(head[8:12], "big")
                        attributes = int.from_bytes(head[21:23], "big")
                        if attributes & 0x20:  # control batch (transaction marker)
                            control += 1
                        else:
                            batches += 1
                            records += int.from_bytes(head[57:61], "big")
                            size += 12 + length
                        fh.seek(12 + length - 61, os.SEEK_CUR)
        return {"batches": batches, "stored_records": records, "stored_bytes": size,
                "control_batches": control}

    def delete_topics(self, topics: list[str]) -> None:
        if not topics:
            return
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})
        for topic, fut in admin.delete_topics(topics, operation_timeout=30).items():
            try:
                fut.result(60)
            except Exception as e:  # noqa: BLE001 - leftover topics only cost disk
                print(f"warning: could not delete {topic}: {e}", file=sys.stderr)

    def stop(self) -> None:
        if self.local:
            self.kafka.stop()


def run_child(script: Path, spec: dict, timeout: float) -> dict:
    """One client run in a fresh process; its JSON result."""
    cmd = [sys.executable, str(script), json.dumps(spec)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise ChildFailed(f"{spec['client']} on {spec['topic']} failed (exit "
                          f"{proc.returncode}):\n{proc.stderr[-4000:]}", proc.stderr)
    out = json.loads(lines[-1])
    out["stderr"] = proc.stderr[-2000:]
    return out


def wait_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to ``max_wait`` s) until the machine is less than ``threshold`` busy over
    half a second (it is shared); the last busy fraction seen."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = sharded_child.machine_cpu()
        time.sleep(0.5)
        b1, t1 = sharded_child.machine_cpu()
        busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        if busy < threshold or time.monotonic() >= deadline:
            return busy


# ---- one run ----------------------------------------------------------------------------------

def records_for(args, size: int) -> int:
    return args.records if size < 1024 else args.records_1k


def one_run(broker: Broker, args, case: str, client: str, rep: int, warmup_topic: str,
            profile_dir: str | None = None) -> dict:
    codec, size = case.split("-")
    size = int(size)
    n = records_for(args, size)
    topic = f"sh-{case}-{client}-r{rep}-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, args.partitions)
    time.sleep(args.settle)
    quiet = wait_quiet(args.quiet_wait, args.quiet_busy)
    spec = {**parse_client(client), "bootstrap": broker.bootstrap, "topic": topic,
            "warmup_topic": warmup_topic, "records": n, "value_size": size,
            "chunk": args.chunk, "broker_pid": broker.pid,
            "config": client_config(client, codec), "profile": profile_dir,
            "fastprod_root": args.fastprod_root}
    try:
        out = run_child(BENCH / "sharded_child.py", spec, args.timeout)
        ends = broker.end_offsets(topic, args.partitions)
        stats = broker.batch_stats(topic, args.partitions)
    finally:
        broker.delete_topics([topic])
    out.update(case=case, client=client, rep=rep, topic=topic, end_offsets=ends,
               busy_before=quiet, **(stats or {}))
    if sum(ends) != n:
        msg = (f"INVALID RUN: {client} ({case}, repeat {rep}) reported {n} records sent "
               f"and flushed, but the end offsets of {topic} add up to {sum(ends)} ({ends})")
        if not args.keep_going:
            raise BenchError(msg)
        print("!" * 20 + " " + msg, file=sys.stderr)
        out["invalid"] = True
    if out.get("worker_restarts"):
        print(f"warning: {out['worker_restarts']} worker(s) restarted during {client} "
              f"{case} r{rep}", file=sys.stderr)
    derive(out)
    return out


def derive(r: dict) -> None:
    n, wall = r["records"], r["wall_s"]
    r["rate"] = n / wall
    r["mbps"] = r["payload_bytes"] / wall / 1e6
    r["parent_us"] = r["cpu_s"] / n * 1e6
    workers = r.get("workers") or []
    wcpu = sum(w["cpu_s"] or 0.0 for w in workers) if workers else None
    r["worker_us"] = None if wcpu is None else wcpu / n * 1e6
    r["worker_main_us"] = (sum(w["main_s"] for w in workers) / n * 1e6) if workers else None
    r["worker_threads_us"] = (sum(w["threads_s"] for w in workers) / n * 1e6) if workers else None
    r["total_us"] = r["parent_us"] + (r["worker_us"] or 0.0)
    r["parent_sys_us"] = r["sys_s"] / n * 1e6 if r.get("sys_s") is not None else None
    r["worker_sys_us"] = (sum(w.get("sys_s") or 0.0 for w in workers) / n * 1e6
                          if workers else None)
    r["worker_busy"] = max(((w["cpu_s"] or 0.0) / wall for w in workers), default=None)
    r["cores"] = (r["cpu_s"] + (wcpu or 0.0)) / wall
    b = r.get("broker_cpu_s")
    r["broker_cores"] = None if b is None else b / wall
    busy = r.get("machine_busy")
    ncpu = r.get("ncpu") or os.cpu_count() or 1
    r["other_cores"] = None if busy is None or b is None else max(
        0.0, busy * ncpu - r["cores"] - r["broker_cores"])
    r["records_per_batch"] = (r["stored_records"] / r["batches"]) if r.get("batches") else None
    r["stored_ratio"] = (r["stored_bytes"] / r["payload_bytes"]) if r.get("stored_bytes") else None
    r["thread_us"] = {k: v / n * 1e6 for k, v in (r.get("threads") or {}).items()}


# ---- aggregation ------------------------------------------------------------------------------

FIELDS = ["rate", "mbps", "parent_us", "worker_us", "worker_main_us", "worker_threads_us",
          "parent_sys_us", "worker_sys_us", "worker_busy",
          "total_us", "cores", "broker_cores", "other_cores", "machine_busy",
          "records_per_batch", "stored_ratio", "max_rss_mb"]


def aggregate(runs: list[dict], key=lambda r: (r["case"], r["client"])) -> dict:
    """key -> medians over the repeats."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(key(r), []).append(r)
    agg = {}
    for k, rs in groups.items():
        a = {"n": len(rs)}
        for field in FIELDS:
            vals = [r[field] for r in rs if r.get(field) is not None]
            a[field] = statistics.median(vals) if vals else None
        threads: dict[str, list[float]] = {}
        for r in rs:
            for name, us in r.get("thread_us", {}).items():
                threads.setdefault(name, []).append(us)
        a["thread_us"] = {name: statistics.median(v) for name, v in threads.items()}
        rates = [r["rate"] for r in rs]
        a["spread"] = (max(rates) - min(rates)) / statistics.median(rates)
        a["invalid"] = any(r.get("invalid") for r in rs)
        a["disturbed"] = sum(bool(r.get("disturbed")) for r in rs)
        a["worker_restarts"] = sum(r.get("worker_restarts") or 0 for r in rs)
        agg[k] = a
    return agg


def project(parent_us: float | None, worker_us: float | None, cores: int) -> float | None:
    """rate(N) = min(1 / parent cost, N / worker cost), records/s."""
    if not parent_us or not worker_us:
        return None
    return min(1e6 / parent_us, cores * 1e6 / worker_us)


def projection_source(agg: dict, case: str, workers: list[int]) -> tuple[str, dict] | None:
    """The costs the projection uses: the run with the most workers."""
    for n in sorted(workers, reverse=True):
        a = agg.get((case, f"sharded-w{n}"))
        if a:
            return f"sharded-w{n}", a
    return None


def check_targets(agg: dict, cases: list[str], workers: list[int]) -> list[dict]:
    out = []

    def verdict(value, goal, higher):
        if value is None:
            return "n/a"
        return "pass" if (value >= goal if higher else value <= goal) else "**FAIL**"

    for case in cases:
        if not case.endswith("-100"):
            continue
        for n in workers:
            a = agg.get((case, f"sharded-w{n}"))
            if a:
                out.append({"target": f"parent CPU per record, send_batch(), {case_label(case)}, "
                                      f"w={n}",
                            "goal": f"<= {PARENT_BATCH_US} µs", "value": a["parent_us"],
                            "unit": "µs", "result": verdict(a["parent_us"], PARENT_BATCH_US, False)})
    for n in workers:
        a = agg.get((case_name("none", 100), f"sharded-send-w{n}"))
        if a:
            out.append({"target": f"parent CPU per record, send(), none, 100 B, w={n}",
                        "goal": f"<= {PARENT_SEND_US} µs", "value": a["parent_us"], "unit": "µs",
                        "result": verdict(a["parent_us"], PARENT_SEND_US, False)})
    for case in cases:
        if not case.startswith("gzip-"):
            continue
        one, two = agg.get((case, "sharded-w1")), agg.get((case, "sharded-w2"))
        if one and two:
            v = two["rate"] / one["rate"]
            result = verdict(v, GZIP_SCALING, True)
            busy = one.get("worker_busy")
            ncpu = os.cpu_count() or 1
            used = sum(two.get(f) or 0.0 for f in ("cores", "broker_cores", "other_cores"))
            if result != "pass" and busy is not None and busy < WORKER_BOUND:
                result += (f" (the 1-worker run was not worker-bound: its worker was busy "
                           f"{busy:.0%} of the time; the shared cores and the broker were "
                           f"the limit, so a second worker had little to take over)")
            elif result != "pass" and used >= 0.9 * ncpu:
                result += (f" (no core for a second worker: during the 2-worker runs the "
                           f"producer used {two['cores']:.2f} cores, the broker "
                           f"{fmt(two['broker_cores'])}, other processes "
                           f"{fmt(two['other_cores'])}, of {ncpu})")
            out.append({"target": f"records/s, 2 workers vs 1 worker, {case_label(case)}",
                        "goal": f">= {GZIP_SCALING}x", "value": v, "unit": "x",
                        "result": result})
    for case in cases:
        src = projection_source(agg, case, workers)
        base = agg.get((case, BASELINE))
        if src and base:
            proj = project(src[1]["parent_us"], src[1]["worker_us"], PROJECTION_CORES)
            v = proj / base["rate"] if proj else None
            out.append({"target": f"projected {PROJECTION_CORES}-core rate vs confluent-kafka "
                                  f"measured, {case_label(case)}",
                        "goal": f">= {PROJECTION_VS_CONFLUENT:g}x", "value": v, "unit": "x",
                        "result": verdict(v, PROJECTION_VS_CONFLUENT, True)})
    return out


# ---- report -----------------------------------------------------------------------------------

def fmt_rate(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def fmt(x: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "—" if x is None else f"{x:{spec}}{suffix}"


def describe_tree(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastprod", "setup.py"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"source tree {root}"
    if not commit:
        return f"source tree {root}"
    return f"git {commit}{' + uncommitted changes in fastprod/' if dirty else ''}"


def resolve_fastprod(args) -> None:
    """--fastprod-rev / --fastprod-root -> args.fastprod_root (or None: this checkout)
    and args.fastprod_label, fixed before the first run."""
    if getattr(args, "fastprod_label", None):
        return  # re-rendered from a dump
    if args.fastprod_rev:
        if args.fastprod_root:
            sys.exit("--fastprod-rev and --fastprod-root exclude each other")
        args.fastprod_root, args.fastprod_label = build_revision(args.fastprod_rev)
    elif args.fastprod_root:
        args.fastprod_root = str(Path(args.fastprod_root).resolve())
        args.fastprod_label = describe_tree(Path(args.fastprod_root))
    else:
        args.fastprod_label = describe_tree(ROOT) + " (this checkout, as it was when the run began)"


def add_fastprod_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--fastprod-rev", default=None,
                    help="benchmark this git revision (e.g. HEAD): a clean copy built in a "
                         "temp dir, so edits in progress in the checkout don't leak in")
    ap.add_argument("--fastprod-root", default=None,
                    help="import fastprod from this source tree (default: this checkout)")


def versions(label: str | None = None) -> dict:
    import confluent_kafka

    from fastprod.localkafka import KAFKA_VERSION

    return {
        "fastprod": label or describe_tree(ROOT),
        "confluent-kafka": f"{confluent_kafka.__version__} (librdkafka "
                           f"{confluent_kafka.libversion()[0]})",
        "kafka": KAFKA_VERSION,
    }


def machine_note() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, shared by the broker, the client being measured and "
            f"other engineers' test runs; {model}; {platform.system()} "
            f"{platform.machine()}; Python {platform.python_version()}")


def write_section(text: str, start: str = START, end: str = END) -> None:
    """Replace the text between the markers in RESULTS.md (appending them at the end of
    the file when absent); nothing else in the file changes."""
    old = RESULTS.read_text() if RESULTS.exists() else "# fastprod benchmark results\n"
    block = f"{start}\n{text}{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    new = pattern.sub(lambda m: block, old) if pattern.search(old) else \
        old.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(new)


def row_flags(a: dict) -> str:
    flag = " **INVALID**" if a["invalid"] else ""
    flag += f" (disturbed: {a['disturbed']}/{a['n']})" if a["disturbed"] else ""
    flag += f" ({a['worker_restarts']} worker restarts)" if a["worker_restarts"] else ""
    return flag


def results_table(agg: dict, cases: list[str], clients_of) -> list[str]:
    lines = [
        "| case | client | records/s | MB/s | vs confluent | vs Producer | parent CPU µs/rec | "
        "worker CPU µs/rec | total CPU µs/rec | busiest worker | producer cores | broker cores | "
        "other cores | records/batch | stored/payload | spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        base = agg.get((case, BASELINE))
        for client in clients_of(case):
            a = agg.get((case, client))
            if a is None:
                continue
            c = parse_client(client)
            ref = agg.get((case, "producer-send" if c["api"] == "send" else "producer"))
            vs_base = a["rate"] / base["rate"] if base and client != BASELINE else None
            vs_prod = a["rate"] / ref["rate"] if ref and c["client"] == "sharded" else None
            lines.append(
                f"| {case_label(case)} | {client_label(client)}{row_flags(a)} | "
                f"{fmt_rate(a['rate'])} | {fmt(a['mbps'], '.1f')} | {fmt(vs_base, '.2f', 'x')} | "
                f"{fmt(vs_prod, '.2f', 'x')} | {fmt(a['parent_us'], '.2f')} | "
                f"{fmt(a['worker_us'], '.2f')} | {fmt(a['total_us'], '.2f')} | "
                f"{fmt(a['worker_busy'] and a['worker_busy'] * 100, '.0f', '%')} | "
                f"{fmt(a['cores'], '.2f')} | {fmt(a['broker_cores'], '.2f')} | "
                f"{fmt(a['other_cores'], '.2f')} | {fmt(a['records_per_batch'], '.0f')} | "
                f"{fmt(a['stored_ratio'], '.2f')} | {fmt(a['spread'] * 100, '.0f', '%')} |")
    return lines


def breakdown_table(agg: dict, cases: list[str], clients_of) -> list[str]:
    """Where the CPU goes, per thread, µs per record (ShardedProducer rows)."""
    rows = []
    names: list[str] = []
    for case in cases:
        for client in clients_of(case):
            a = agg.get((case, client))
            if a is None or parse_client(client)["client"] != "sharded":
                continue
            rows.append((case, client, a))
            for name in a["thread_us"]:
                if name not in names:
                    names.append(name)
    order = ["main", "reports", "stager", "metadata"]
    names = [n for n in order if n in names] + sorted(n for n in names if n not in order)
    lines = [
        "| case | client | " + " | ".join(f"parent: {n}" for n in names) +
        " | parent: of which system | workers: main (ring → accumulator) | "
        "workers: other threads (sender) | workers: of which system |",
        "|---|---|" + "---:|" * (len(names) + 4),
    ]
    for case, client, a in rows:
        cells = [fmt(a["thread_us"].get(n), ".2f") for n in names]
        lines.append(f"| {case_label(case)} | {client_label(client)} | " + " | ".join(cells) +
                     f" | {fmt(a['parent_sys_us'], '.2f')} | {fmt(a['worker_main_us'], '.2f')} | "
                     f"{fmt(a['worker_threads_us'], '.2f')} | {fmt(a['worker_sys_us'], '.2f')} |")
    return lines


def projection_table(agg: dict, cases: list[str], workers: list[int]) -> list[str]:
    head = " | ".join(f"{n} cores" for n in PROJECT_CORES)
    lines = [
        f"| case | costs from | parent µs/rec | worker µs/rec | parent-bound limit | {head} | "
        f"measured here | confluent-kafka measured | {PROJECTION_CORES} cores vs confluent | "
        f"confluent-kafka at 1 full core | {PROJECTION_CORES} cores vs that |",
        "|---|---|---:|---:|---:|" + "---:|" * len(PROJECT_CORES) + "---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        src = projection_source(agg, case, workers)
        if not src:
            continue
        client, a = src
        base = agg.get((case, BASELINE))
        size = int(case.split("-")[1])
        projs = [project(a["parent_us"], a["worker_us"], n) for n in PROJECT_CORES]
        limit = 1e6 / a["parent_us"] if a["parent_us"] else None
        p8 = project(a["parent_us"], a["worker_us"], PROJECTION_CORES)
        cells = " | ".join(
            f"{fmt_rate(p)} ({fmt(p and p * size / 1e6, '.0f')} MB/s)" for p in projs)
        lines.append(
            f"| {case_label(case)} | {client_label(client)} | {fmt(a['parent_us'], '.2f')} | "
            f"{fmt(a['worker_us'], '.2f')} | {fmt_rate(limit)} | {cells} | "
            f"{fmt_rate(a['rate'])} | {fmt_rate(base and base['rate'])} | "
            f"{fmt(p8 and base and p8 / base['rate'], '.2f', 'x')} | "
            f"{fmt_rate(base and 1e6 / base['parent_us'])} | "
            f"{fmt(p8 and base and p8 * base['parent_us'] / 1e6, '.2f', 'x')} |")
    return lines


def targets_table(targets: list[dict]) -> list[str]:
    lines = ["| target | goal | measured | result |", "|---|---:|---:|---|"]
    for t in targets:
        value = fmt(t["value"], ".2f", " µs" if t["unit"] == "µs" else "x")
        lines.append(f"| {t['target']} | {t['goal']} | {value} | {t['result']} |")
    return lines


def render(runs: list[dict], args, command: str, when: str, failures: list = ()) -> str:
    agg = aggregate(runs)
    cases = [case_name(c, s) for s in args.sizes for c in args.codecs
             if any(r["case"] == case_name(c, s) for r in runs)]
    workers = args.workers

    def main_clients(case):
        return [c for c in clients_for(case, workers, False)]

    def send_clients(case):
        return [c for c in clients_for(case, workers, True) if parse_client(c)["api"] == "send"] + \
            ([BASELINE] if case == case_name("none", 100) else [])

    vers = versions(getattr(args, "fastprod_label", None))
    reps = max((r["rep"] for r in runs), default=0) + 1
    records = ", ".join(f"{records_for(args, s):,} records of {size_label(s)}"
                        for s in args.sizes)
    fp_cfg = client_config("producer", "CODEC")
    cf_cfg = client_config("confluent", "CODEC")
    lines = [
        "## ShardedProducer: scaling with worker processes, and its projected rate",
        "",
        f"- Command: `{command}`",
        f"- Date: {when}",
        f"- Machine: {machine_note()}. **Only 2 cores, and the broker runs on them too**: "
        "a ShardedProducer with 2 workers has 3 busy processes (parent + 2 workers) "
        "competing with the broker JVM, so measured rates here say little about scaling; "
        "the CPU cost per record (CPU time / records, per process) is the part that "
        "carries over to a bigger machine, hence the projection below. Other people's "
        "test runs share the machine too: the numbers are noisy (see spread and "
        "other cores).",
        f"- Broker: {'Apache Kafka ' + vers['kafka'] + ', one KRaft node from fastprod.localkafka (heap ' + args.heap + '), started once for the whole run' if not args.bootstrap else 'external, ' + args.bootstrap}; "
        f"a fresh topic per run: {args.partitions} partitions, replication 1, deleted after "
        f"the check.",
        "- Versions: " + "; ".join(f"{k} {v}" for k, v in vers.items()),
        f"- Workload: {records} per run, unkeyed (every value distinct, JSON-like: field "
        f"names repeat, ids and numbers vary, random letters pad to size; bench/data.py); "
        f"fastprod clients call `send_batch(topic, values[i:i + {args.chunk}])`, then "
        f"`flush()`, then `errors()` of every future; the send() rows call `send(topic, v)` "
        f"per record, then `flush()`, then `exception()` of every future; confluent-kafka "
        f"calls `produce(topic, v)` + `poll(0)` per record (on BufferError `poll(0.1)` and "
        f"retry) with an on_delivery callback that keeps errors, then `flush()`. "
        f"{WARMUP_NOTE} Medians of {reps} repeat(s), each client in a "
        f"fresh process per run, the client order rotated per repeat.",
        f"- Settings, the same semantics for all (CODEC = the case's codec; fastprod gets "
        f"no compression.type for none): fastprod `{json.dumps(fp_cfg)}` "
        f"(enable.idempotence left at its default, true); confluent-kafka "
        f"`{json.dumps(cf_cfg)}`. Default codec levels: gzip 6 (zlib default, Java's -1) "
        f"in both; zstd 3 in both; lz4 fast in both.",
        "- Measured over first send to end of flush: records/s and MB/s (value bytes); "
        "**parent CPU** = CPU time of the producing process (getrusage RUSAGE_SELF: every "
        "thread, children excluded; the same as os.times() user+system, but in µs rather "
        "than 10 ms ticks) per record: for Producer and confluent-kafka that is the whole "
        "client, for ShardedProducer the parent only; **worker CPU** = utime+stime of every "
        "worker process from /proc/<pid>/stat before and after, summed over workers, per "
        "record; total = both. Busiest worker = the most any one worker process was on CPU, "
        "as a share of the wall time (near 100%: the workers were the limit). Producer "
        "cores = (parent + workers CPU) / wall; broker cores "
        "from the JVM's /proc stat; other cores = what the machine used beyond producer and "
        "broker (someone else's processes). Records/batch and stored/payload (bytes the "
        "broker stored per value byte: batch framing + compression) are read from the "
        "broker's log segments. Spread = (max - min) / median of records/s over repeats. "
        f"Each run first waits up to {args.quiet_wait:g} s for the machine to be under "
        f"{args.quiet_busy:.0%} busy; a run during which other processes used more than "
        f"{args.max_other:g} cores is marked *disturbed*"
        + (f" and run again, up to {args.redo} times." if args.redo else "."),
        "- Every run is checked: the topic's end offsets must add up to the records sent "
        "(otherwise the benchmark aborts).",
        "",
        "### send_batch(), every codec and value size",
        "",
    ]
    lines += results_table(agg, cases, main_clients)
    if any(r["client"].endswith("send") or "-send-" in r["client"] for r in runs):
        lines += ["", "### send(), 100-byte values, no compression", ""]
        lines += results_table(agg, [c for c in cases if c == case_name("none", 100)],
                               send_clients)
    lines += [
        "",
        "### Where the CPU goes (ShardedProducer, µs of CPU per record)",
        "",
        "Per thread of the parent (main = the caller's send loop and flush; reports = "
        "completing futures from the workers' reports; stager = framing staged send() "
        "records; metadata) and of the workers (main = reading the ring and appending to "
        "the accumulator; other threads = the engine's sender: closing and compressing "
        "batches, Produce requests and responses, reports back; and the control thread), "
        "from /proc/<pid>/task/<tid>/schedstat; \"of which system\" = kernel time "
        "(getrusage for the parent, /proc stat stime for the workers).",
        "",
    ]
    lines += breakdown_table(agg, cases, lambda case: clients_for(case, workers, True))
    lines += [
        "",
        "### Projection for more cores",
        "",
        "rate(N) = min(1 / parent cost, N / worker cost), from the CPU costs per record "
        f"measured with the most workers (w={max(workers)}): the parent is one process "
        "whatever N (it is the ceiling), the workers' work divides over N cores. It assumes "
        "the broker and the network are elsewhere and keep up, that a worker's cost per "
        "record does not grow with more workers, and N cores for the workers on top of "
        "the parent's. Compare \"measured here\" (2 shared cores). The target compares "
        "with confluent-kafka's measured rate, which the shared machine holds down as much "
        "as ours; \"confluent-kafka at 1 full core\" (1 / its CPU cost per record) is a "
        "stricter reference: the rate its CPU cost allows on one core (librdkafka's "
        "threads could use more than one).",
        "",
    ]
    lines += projection_table(agg, cases, workers)
    lines += ["", "### Targets", ""]
    lines += targets_table(check_targets(agg, cases, workers))
    lines += failures_lines(list(failures))
    lines += ["", "![ShardedProducer records/s, CPU per record and projection](sharded.png)"]
    return "\n".join(lines) + "\n"


WARMUP_NOTE = (f"Before timing, each client writes {sharded_child.WARMUP_RECORDS:,} records "
               f"to another topic (connections, metadata, code paths).")


def plot(runs: list[dict], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(runs)
    cases = [case_name(c, s) for s in args.sizes for c in args.codecs
             if any(r["case"] == case_name(c, s) for r in runs)]
    workers = args.workers
    clients = [f"sharded-w{n}" for n in workers] + ["producer", "confluent"]
    palette = ["tab:blue", "tab:cyan", "tab:purple", "tab:olive"]
    colors = {f"sharded-w{n}": palette[i % len(palette)] for i, n in enumerate(workers)}
    colors.update({"producer": "tab:green", "confluent": "tab:orange"})
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 1.6 * len(cases) + 3), 12), dpi=100)
    width = 0.8 / len(clients)
    xs_case = range(len(cases))
    labels = [case_label(c) for c in cases]

    ax = axes[0]
    for i, client in enumerate(clients):
        xs, ys = [], []
        for j, case in enumerate(cases):
            a = agg.get((case, client))
            if a:
                xs.append(j + (i - (len(clients) - 1) / 2) * width)
                ys.append(a["rate"] / 1e3)
        bars = ax.bar(xs, ys, width, label=client_label(client), color=colors[client])
        for b, y in zip(bars, ys):
            ax.annotate(f"{y:.0f}", (b.get_x() + b.get_width() / 2, y), ha="center",
                        va="bottom", fontsize=6)
    ax.set_xticks(list(xs_case), labels, fontsize=8)
    ax.set_ylabel("records/s (thousands)", fontsize=8)
    ax.set_title(f"measured on {os.cpu_count()} cores shared with the broker (send_batch)",
                 fontsize=10)
    ax.legend(fontsize=7)

    ax = axes[1]
    for i, client in enumerate(clients):
        xs, parent, worker = [], [], []
        for j, case in enumerate(cases):
            a = agg.get((case, client))
            if a:
                xs.append(j + (i - (len(clients) - 1) / 2) * width)
                parent.append(a["parent_us"])
                worker.append(a["worker_us"] or 0.0)
        ax.bar(xs, parent, width, color=colors[client], label=client_label(client))
        ax.bar(xs, worker, width, bottom=parent, color=colors[client], alpha=0.45,
               hatch="//", edgecolor="white")
    ax.set_xticks(list(xs_case), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.1)
    ax.set_ylabel("CPU µs per record (log)", fontsize=8)
    ax.set_title("CPU per record: solid = producing process (ShardedProducer: parent), "
                 "hatched = workers", fontsize=10)

    ax = axes[2]
    series = [(f"projected {n} cores", n) for n in PROJECT_CORES]
    shades = ["#9ecae1", "#4292c6", "#08519c"]
    w2 = 0.8 / (len(series) + 1)
    for i, (label, n) in enumerate(series):
        xs, ys = [], []
        for j, case in enumerate(cases):
            src = projection_source(agg, case, workers)
            p = src and project(src[1]["parent_us"], src[1]["worker_us"], n)
            if p:
                xs.append(j + (i - len(series) / 2) * w2)
                ys.append(p / 1e3)
        ax.bar(xs, ys, w2, label=f"ShardedProducer, {label}", color=shades[i % len(shades)])
    xs, ys = [], []
    for j, case in enumerate(cases):
        base = agg.get((case, BASELINE))
        if base:
            xs.append(j + (len(series) - len(series) / 2) * w2)
            ys.append(base["rate"] / 1e3)
    ax.bar(xs, ys, w2, label="confluent-kafka, measured", color="tab:orange")
    ax.set_xticks(list(xs_case), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("records/s (thousands, log)", fontsize=8)
    ax.set_title("projection: min(1 / parent cost, N / worker cost)", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(f"ShardedProducer vs Producer vs confluent-kafka, {args.partitions} "
                 f"partitions, one local broker", fontsize=10)
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)


# ---- profile ----------------------------------------------------------------------------------

def print_profiles(directory: str, top: int) -> None:
    import io
    import pstats

    for name in sorted(os.listdir(directory)):
        if not name.endswith(".prof"):
            continue
        out = io.StringIO()
        stats = pstats.Stats(os.path.join(directory, name), stream=out)
        stats.sort_stats("tottime").print_stats(top)
        text = out.getvalue()
        text = text[text.index("function calls"):].strip() if "function calls" in text else text
        print(f"\n==== {name} (top {top} by own time) ====\n{text}")


def profile(broker: Broker, args, warmup_topic: str) -> int:
    case = args.profile
    client = args.profile_client or f"sharded-w{max(args.workers)}"
    directory = tempfile.mkdtemp(prefix="fastprod-sharded-prof-")
    r = attempt(lambda: one_run(broker, args, case, client, 0, warmup_topic,
                                profile_dir=directory),
                args.retry_failed, [], f"{client_label(client)}, {case_label(case)}, profiled")
    print(f"{client_label(client)} {case_label(case)}, {r['records']:,} records, under "
          f"cProfile (slower than unprofiled): {fmt_rate(r['rate'])} rec/s, parent "
          f"{r['parent_us']:.2f} µs/rec, workers {fmt(r['worker_us'])} µs/rec; per thread "
          f"(µs/rec): " + ", ".join(f"{k} {v:.2f}" for k, v in r["thread_us"].items()) +
          (f"; workers main {r['worker_main_us']:.2f}, other threads "
           f"{r['worker_threads_us']:.2f}" if r.get("worker_main_us") is not None else ""))
    print("parent-caller: the send loop and flush (timed part); parent-threads: reports, "
          "stager, metadata (whole life); workerN-main: ring reader and appends; "
          "workerN-threads: sender (whole life, warm-up included)")
    print_profiles(directory, args.profile_top)
    print(f"\nprofiles kept in {directory}")
    return 0


# ---- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=None,
                    help="records per run with 100-byte values (300,000)")
    ap.add_argument("--records-1k", type=int, default=None,
                    help="records per run with 1 KiB values (a third of --records)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (3)")
    ap.add_argument("--workers", default=None,
                    help="worker counts (default: 1, 2 and os.cpu_count(), deduplicated)")
    ap.add_argument("--codecs", default=",".join(CODECS), help=",".join(CODECS))
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)), help="value sizes (100,1024)")
    ap.add_argument("--no-send", action="store_true", help="skip the send() rows")
    ap.add_argument("--skip-clients", default="",
                    help="comma-separated clients to leave out (e.g. producer)")
    ap.add_argument("--partitions", type=int, default=None,
                    help="partitions per topic (default: max(6, 2 x most workers))")
    ap.add_argument("--chunk", type=int, default=10_000, help="send_batch chunk (10,000)")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of our own")
    ap.add_argument("--heap", default="1g", help="heap of our broker (1g)")
    ap.add_argument("--settle", type=float, default=0.3,
                    help="seconds between creating a topic and producing to it (0.3)")
    ap.add_argument("--quiet-wait", type=float, default=3,
                    help="wait up to this many seconds for a quiet machine before each run "
                         "(3: on a machine that is never quiet, longer only adds minutes)")
    ap.add_argument("--quiet-busy", type=float, default=0.25,
                    help="quiet = less than this fraction of all cores busy (0.25)")
    ap.add_argument("--max-other", type=float, default=0.5,
                    help="a run during which other processes used more than this many cores "
                         "is marked disturbed (and run again with --redo) (0.5)")
    ap.add_argument("--redo", type=int, default=0,
                    help="run a disturbed run again, at most this many times (0)")
    ap.add_argument("--timeout", type=float, default=600, help="per run, seconds")
    ap.add_argument("--retry-failed", type=int, default=1,
                    help="run a crashed client process again this many times (1); the "
                         "crash is reported either way")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 30,000 / 10,000 records, 1 repeat; RESULTS.md untouched")
    ap.add_argument("--write", action="store_true", help="write RESULTS.md/png even in --quick")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--json", default=None, help="also dump every run's raw numbers here")
    ap.add_argument("--from-json", default=None,
                    help="re-render the report from a --json dump instead of running")
    ap.add_argument("--keep-going", action="store_true",
                    help="on a record-count mismatch mark the row INVALID instead of aborting")
    ap.add_argument("--profile", default=None, metavar="CASE",
                    help="only cProfile one run of CASE (e.g. none-100, gzip-1024): the "
                         "parent's threads and every worker's; prints the top functions")
    ap.add_argument("--profile-client", default=None,
                    help="client for --profile (default sharded-w<most workers>; e.g. "
                         "sharded-send-w2, producer)")
    ap.add_argument("--profile-top", type=int, default=20)
    add_fastprod_args(ap)
    args = ap.parse_args(argv)
    args.records = args.records or (30_000 if args.quick else 300_000)
    args.records_1k = args.records_1k or max(1, args.records // 3)
    args.repeats = args.repeats or (1 if args.quick else 3)
    ncpu = os.cpu_count() or 1
    if args.workers:
        args.workers = sorted({int(x) for x in args.workers.split(",") if x})
    else:
        args.workers = sorted({1, 2, ncpu})
    args.partitions = args.partitions or max(6, 2 * max(args.workers))
    args.codecs = [c for c in args.codecs.split(",") if c]
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.skip_clients = [c for c in args.skip_clients.split(",") if c]
    bad = [c for c in args.codecs if c not in CODECS]
    if bad:
        ap.error(f"unknown codec(s) {bad}; choose from {CODECS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/sharded.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    t_start = time.monotonic()
    if args.from_json:
        return rerender(args)
    resolve_fastprod(args)
    print(f"fastprod: {args.fastprod_label}", file=sys.stderr, flush=True)
    broker = Broker(args.bootstrap, args.heap)
    print(f"broker {broker.bootstrap} (pid {broker.pid}); workers {args.workers}; "
          f"{args.partitions} partitions", file=sys.stderr, flush=True)
    warmup_topic = f"sh-warmup-{uuid.uuid4().hex[:8]}"
    runs: list[dict] = []
    failures: list[dict] = []
    try:
        broker.create_topic(warmup_topic, args.partitions)
        if args.profile:
            return profile(broker, args, warmup_topic)
        plan = []
        cases = [case_name(c, s) for s in args.sizes for c in args.codecs]
        for rep in range(args.repeats):
            for case in cases:
                clients = [c for c in clients_for(case, args.workers, not args.no_send)
                           if c not in args.skip_clients]
                k = rep % len(clients)
                for client in clients[k:] + clients[:k]:
                    plan.append((case, client, rep))
        for i, (case, client, rep) in enumerate(plan, 1):
            for tries in range(1, args.redo + 2):
                r = attempt(lambda: one_run(broker, args, case, client, rep, warmup_topic),
                            args.retry_failed, failures, f"{client_label(client)}, "
                            f"{case_label(case)}, repeat {rep + 1}")
                r["attempts"] = tries
                other = r.get("other_cores")
                r["disturbed"] = other is not None and other > args.max_other
                if not r["disturbed"] or tries > args.redo:
                    break
                print(f"[{i}/{len(plan)}] {case} {client} r{rep}: other processes used "
                      f"{other:.2f} cores; running it again", file=sys.stderr, flush=True)
            runs.append(r)
            print(f"[{i}/{len(plan)} {time.monotonic() - t_start:5.0f}s] {case:10} "
                  f"{client:16} r{rep}: {fmt_rate(r['rate'])} rec/s  {r['mbps']:.1f} MB/s  "
                  f"parent {r['parent_us']:.2f} µs/rec  workers {fmt(r['worker_us'])} µs/rec  "
                  f"broker {fmt(r['broker_cores'])} cores  other {fmt(r['other_cores'])}",
                  file=sys.stderr, flush=True)
            dump_json(args.json, args, command, "(partial)", runs, failures)
    finally:
        try:
            broker.delete_topics([warmup_topic])
        except Exception:  # noqa: BLE001
            pass
        broker.stop()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    dump_json(args.json, args, command, when, runs, failures)
    text = render(runs, args, command, when, failures)
    print(text)
    print(f"total {time.monotonic() - t_start:.0f} s", file=sys.stderr)
    if (args.write or not args.quick) and not args.no_write:
        write_section(text)
        plot(runs, args)
        print(f"wrote {RESULTS} (sharded section) and {PLOT}", file=sys.stderr)
    return 1 if any(r.get("invalid") for r in runs) else 0


def rerender(args) -> int:
    data = json.loads(Path(args.from_json).read_text())
    for k, v in data["args"].items():
        if k not in ("write", "no_write", "quick"):
            setattr(args, k, v)
    runs = data["runs"]
    for r in runs:
        derive(r)
    text = render(runs, args, data["command"], data["date"], data.get("failures", []))
    print(text)
    if not args.no_write:
        write_section(text)
        plot(runs, args)
        print(f"wrote {RESULTS} (sharded section) and {PLOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
