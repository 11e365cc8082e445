#!/usr/bin/env python
"""End-to-end producer benchmark: fastprod vs confluent-kafka, kafka-python and aiokafka.

Usage, from the repository root (venv active, extensions built in place):

    python bench/e2e.py                      # full run, writes bench/RESULTS.md + e2e.png
    python bench/e2e.py --quick              # smoke test: 100k records, 1 repeat, no write
    python bench/e2e.py --records 200000 --repeats 1 --clients fastprod-send,confluent
    python bench/e2e.py --bootstrap host:port   # an existing broker instead of our own
    python bench/e2e.py --profile            # cProfile a fastprod send() run (top 15)

What it does, all in one run against one broker:

- starts a local Apache Kafka (fastprod.localkafka, one KRaft node) unless --bootstrap;
- for every mode ("equal": the settings below made the same for every client; "defaults":
  each client as it comes), repeat, case (unkeyed/keyed x none/lz4) and client, creates a
  fresh topic (--partitions, default 6, replication 1), runs the client in a fresh
  subprocess (bench/e2e_child.py) that writes --records records of --value-size bytes
  and flushes, and checks afterwards that the topic's end offsets add up to the records
  sent (a run that lost or duplicated records aborts the benchmark);
- the child measures wall time from the first send to the end of flush, the CPU time of
  its own process over the same window (getrusage: all threads, librdkafka's and the
  fastprod sender's included), the broker JVM's CPU (/proc/<pid>/stat) and how busy the
  machine was (/proc/stat);
- reports the median over repeats per (mode, case, client), ratios against
  confluent-kafka, the fastprod targets with pass/fail, into bench/RESULTS.md between
  ``<!-- e2e:start -->`` and ``<!-- e2e:end -->`` (nothing else in the file changes) and
  bench/e2e.png.

Clients (the timed loop of each; warm-up records go to another topic before timing):

- fastprod-send:  ``p.send(topic, v, key=k)`` per record, then ``p.flush()``
- fastprod-batch: ``p.send_batch(topic, values[i:i+chunk], keys=keys[i:i+chunk])``, then
  ``p.flush()``; "n/a" when the Producer has no send_batch
- confluent:      ``produce(topic, v, key=k)`` + ``poll(0)``; on BufferError ``poll(0.1)``
  and retry; then ``flush()``
- kafka-python:   ``send(topic, v, key=k)``, then ``flush()``
- aiokafka:       ``await send(topic, v, key=k)`` (returns once the record is batched),
  then ``await flush()``; default asyncio event loop
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
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import e2e_child  # noqa: E402  (bench/ is sys.path[0] when run as a script)
from _common import build_revision  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
PLOT = BENCH / "e2e.png"
START, END = "<!-- e2e:start -->", "<!-- e2e:end -->"

CLIENTS = ["fastprod-send", "fastprod-batch", "confluent", "kafka-python", "aiokafka"]
CLIENT_LABEL = {
    "fastprod-send": "fastprod send()",
    "fastprod-batch": "fastprod send_batch()",
    "confluent": "confluent-kafka",
    "kafka-python": "kafka-python",
    "aiokafka": "aiokafka",
}
CASES = ["unkeyed-none", "unkeyed-lz4", "keyed-none", "keyed-lz4"]
MODES = ["equal", "defaults"]
BASELINE = "confluent"

# "Broker-bound": the producing process used less than CAP_PRODUCER_CORES of CPU over the
# run, so it spent the rest of the time waiting for the broker (buffer full, or flush
# waiting for acknowledgements) rather than working: a faster client would not have
# gone faster here. A GIL-bound Python producer cannot use much more than one core.
CAP_PRODUCER_CORES = 0.85
BROKER_CONFIG = {"file.delete.delay.ms": 0}


# ---- one run ----------------------------------------------------------------------------

class BenchError(RuntimeError):
    pass


class Broker:
    """Our own LocalKafka, or an external one (--bootstrap); topics, offsets, cleanup."""

    def __init__(self, bootstrap: str | None, heap: str) -> None:
        from fastprod.localkafka import ExternalKafka, LocalKafka

        if bootstrap:
            self.kafka = ExternalKafka(bootstrap)
            self.pid = None
            self.local = False
        else:
            # Deleted topics' files go at once rather than 60 s later, in someone
            # else's run.
            self.kafka = LocalKafka(heap=heap, auto_create_topics=False,
                                    broker_config=BROKER_CONFIG)
            self.kafka.start()
            self.pid = self.kafka.nodes[0].pid
            self.local = True
        self.bootstrap = self.kafka.bootstrap_servers

    def create_topic(self, name: str, partitions: int) -> None:
        self.kafka.create_topic(name, partitions=partitions, replication_factor=1)

    def end_offsets(self, topic: str, partitions: int) -> list[int]:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fastprod-e2e-verify",
                      "enable.auto.commit": False, "log_level": 3})
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                    for p in range(partitions)]
        finally:
            c.close()

    def batch_stats(self, topic: str, partitions: int) -> dict | None:
        """Batches, records and bytes the broker stored for ``topic``, read from its log
        segments (our own broker only): shows how well each client batched."""
        if not self.local:
            return None
        data = self.kafka.nodes[0].spec.data_dir
        batches = records = size = 0
        for p in range(partitions):
            for seg in sorted((data / f"{topic}-{p}").glob("*.log")):
                with open(seg, "rb") as fh:
                    while True:
                        head = fh.read(61)
                        if len(head) < 61:
                            break
                        length = int.from_bytes(head[8:12], "big")
                        batches += 1
                        records += int.from_bytes(head[57:61], "big")
                        size += 12 + length
                        fh.seek(12 + length - 61, os.SEEK_CUR)
        return {"batches": batches, "stored_records": records, "stored_bytes": size}

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


def run_child(spec: dict, timeout: float) -> dict | None:
    """One client run in a fresh process; None when the client lacks the feature."""
    cmd = [sys.executable, str(BENCH / "e2e_child.py"), json.dumps(spec)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, cwd=ROOT)
    if proc.returncode == e2e_child.NOT_AVAILABLE:
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{spec['client']} on {spec['topic']} failed (exit "
                         f"{proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(lines[-1])
    out["stderr"] = proc.stderr[-2000:]
    return out


def one_run(broker: Broker, args, mode: str, case: str, client: str, rep: int,
            warmup_topic: str, profile: bool = False) -> dict:
    keyed = case.startswith("keyed")
    compression = case.split("-", 1)[1]
    topic = f"e2e-{mode}-{case}-{client}-r{rep}-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, args.partitions)
    time.sleep(args.settle)
    quiet = wait_quiet(args.quiet_wait, args.quiet_busy)
    spec = {
        "client": client, "mode": mode, "bootstrap": broker.bootstrap, "topic": topic,
        "warmup_topic": warmup_topic, "records": args.records,
        "value_size": args.value_size, "keyed": keyed, "compression": compression,
        "chunk": args.chunk, "broker_pid": broker.pid, "profile": profile,
        "config": e2e_child.settings(client, mode, compression),
        "fastprod_root": args.fastprod_root,
    }
    try:
        out = run_child(spec, args.timeout)
        if out is None:
            return {"mode": mode, "case": case, "client": client, "rep": rep, "na": True}
        ends = broker.end_offsets(topic, args.partitions)
        stats = broker.batch_stats(topic, args.partitions)
    finally:
        broker.delete_topics([topic])
    out.update(mode=mode, case=case, client=client, rep=rep, na=False, topic=topic,
               end_offsets=ends, busy_before=quiet, **(stats or {}))
    if sum(ends) != args.records:
        msg = (f"INVALID RUN: {client} ({mode}, {case}, repeat {rep}) reported "
               f"{args.records} records sent and flushed, but the end offsets of {topic} "
               f"add up to {sum(ends)} ({ends})")
        if not args.keep_going:
            raise BenchError(msg)
        print("!" * 20 + " " + msg, file=sys.stderr)
        out["invalid"] = True
    derive(out)
    return out


def wait_quiet(max_wait: float, threshold: float) -> float:
    """Wait (up to ``max_wait`` s) until the machine is less than ``threshold`` busy over
    half a second: this machine is shared, so don't start a run on top of someone's
    test suite. Returns the last busy fraction seen."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = e2e_child.machine_cpu()
        time.sleep(0.5)
        b1, t1 = e2e_child.machine_cpu()
        busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def derive(r: dict) -> None:
    n, wall = r["records"], r["wall_s"]
    cpu = r["user_s"] + r["sys_s"]
    r["rate"] = n / wall
    r["mbps"] = r["payload_bytes"] / wall / 1e6
    r["cpu_us"] = cpu / n * 1e6
    r["cores"] = cpu / wall
    b = r.get("broker_cpu_s")
    r["broker_cores"] = None if b is None else b / wall
    busy = r.get("machine_busy")
    ncpu = r.get("ncpu") or os.cpu_count() or 1
    r["other_cores"] = None if busy is None or b is None else max(
        0.0, busy * ncpu - r["cores"] - r["broker_cores"])
    r["records_per_batch"] = (r["stored_records"] / r["batches"]) if r.get("batches") else None
    # not when other processes took the CPU: then the producer was starved, not waiting
    r["capped"] = r["cores"] < CAP_PRODUCER_CORES and not r.get("disturbed")


# ---- aggregation ------------------------------------------------------------------------

def aggregate(runs: list[dict]) -> dict:
    """(mode, case, client) -> medians over the repeats."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["mode"], r["case"], r["client"]), []).append(r)
    agg = {}
    for key, rs in groups.items():
        ok = [r for r in rs if not r.get("na")]
        if not ok:
            agg[key] = {"na": True}
            continue

        def med(field):
            vals = [r[field] for r in ok if r.get(field) is not None]
            return statistics.median(vals) if vals else None

        rates = [r["rate"] for r in ok]
        agg[key] = {
            "na": False, "n": len(ok), "rate": med("rate"), "mbps": med("mbps"),
            "cpu_us": med("cpu_us"), "cores": med("cores"),
            "broker_cores": med("broker_cores"), "machine_busy": med("machine_busy"),
            "other_cores": med("other_cores"),
            "records_per_batch": med("records_per_batch"),
            "spread": (max(rates) - min(rates)) / statistics.median(rates),
            "capped": sum(r["capped"] for r in ok) * 2 > len(ok),
            "invalid": any(r.get("invalid") for r in ok),
            "disturbed": sum(bool(r.get("disturbed")) for r in ok),
            "max_rss_mb": med("max_rss_mb"),
            "buffer_full_waits": med("buffer_full_waits"),
        }
    return agg


def check_targets(agg: dict, mode: str, cases: list[str]) -> list[dict]:
    """The fastprod targets per case: (what, value, goal, result)."""
    out = []

    def get(case, client):
        a = agg.get((mode, case, client))
        return None if a is None or a["na"] else a

    for case in cases:
        base, kp = get(case, BASELINE), get(case, "kafka-python")
        for client, rate_goal, cpu_goal in (("fastprod-send", 1.0, 0.7),
                                            ("fastprod-batch", 3.0, 0.3)):
            a = get(case, client)
            label = CLIENT_LABEL[client]
            noisy = [x for x in (a, base) if x and x["disturbed"] * 2 > x["n"]]
            for what, goal, value, higher, cap_ok in (
                (f"{label} records/s vs confluent-kafka", rate_goal,
                 a and base and a["rate"] / base["rate"], True, client == "fastprod-batch"),
                (f"{label} CPU/record vs confluent-kafka", cpu_goal,
                 a and base and a["cpu_us"] / base["cpu_us"], False, False),
                (f"{label} records/s vs kafka-python", 10.0,
                 a and kp and a["rate"] / kp["rate"], True, False),
            ):
                if what.endswith("kafka-python"):
                    noisy = [x for x in (a, kp) if x and x["disturbed"] * 2 > x["n"]]
                if value is None:
                    result = "n/a"
                elif (value >= goal) if higher else (value <= goal):
                    result = "pass"
                elif cap_ok and a["capped"]:
                    result = "broker-bound"
                else:
                    result = "**FAIL**"
                if higher and noisy and result != "n/a":
                    result += " (disturbed)"
                out.append({"case": case, "what": what,
                            "goal": f"{'>=' if higher else '<='} {goal:g}x",
                            "value": value, "result": result})
    return out


# ---- report -----------------------------------------------------------------------------

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


def results_table(agg: dict, mode: str, cases: list[str], clients: list[str]) -> list[str]:
    lines = [
        "| case | client | records/s | MB/s | CPU µs/record | rec/s vs confluent | "
        "CPU vs confluent | producer CPU (cores) | broker CPU (cores) | other CPU (cores) | "
        "machine busy | records/batch | spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        base = agg.get((mode, case, BASELINE))
        base = None if base is None or base["na"] else base
        for client in clients:
            a = agg.get((mode, case, client))
            if a is None:
                continue
            name = CLIENT_LABEL[client]
            if a["na"]:
                lines.append(f"| {case} | {name} | n/a | n/a | n/a | n/a | n/a | | | | | | |")
                continue
            rr = base and a["rate"] / base["rate"]
            cr = base and a["cpu_us"] / base["cpu_us"]
            flag = " **INVALID**" if a["invalid"] else ""
            flag += f" (disturbed: {a['disturbed']}/{a['n']})" if a["disturbed"] else ""
            cap = " (broker-bound)" if a["capped"] else ""
            lines.append(
                f"| {case} | {name}{flag} | {fmt_rate(a['rate'])}{cap} | {fmt(a['mbps'], '.1f')} | "
                f"{fmt(a['cpu_us'], '.2f')} | {fmt(rr, '.2f', 'x')} | {fmt(cr, '.2f', 'x')} | "
                f"{fmt(a['cores'], '.2f')} | {fmt(a['broker_cores'], '.2f')} | "
                f"{fmt(a['other_cores'], '.2f')} | {fmt(a['machine_busy'] and a['machine_busy'] * 100, '.0f', '%')} | "
                f"{fmt(a['records_per_batch'], '.0f')} | {fmt(a['spread'] * 100, '.0f', '%')} |")
    return lines


def targets_table(targets: list[dict]) -> list[str]:
    lines = ["| case | target | goal | measured | result |", "|---|---|---:|---:|---|"]
    for t in targets:
        lines.append(f"| {t['case']} | {t['what']} | {t['goal']} | "
                     f"{fmt(t['value'], '.2f', 'x')} | {t['result']} |")
    return lines


def describe_tree(root: Path) -> str:
    if not (root / ".git").exists():
        return f"source tree {root}"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastprod", "setup.py"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"source tree {root}"
    return f"git {commit}{' + uncommitted changes in fastprod/' if dirty else ''}"


def versions(fastprod_root: str | None, label: str | None = None) -> dict:
    import aiokafka
    import confluent_kafka
    import kafka

    from fastprod.localkafka import KAFKA_VERSION

    root = Path(fastprod_root) if fastprod_root else ROOT
    fp = label or describe_tree(root)
    return {
        "fastprod": fp,
        "confluent-kafka": f"{confluent_kafka.__version__} (librdkafka "
                           f"{confluent_kafka.libversion()[0]})",
        "kafka-python": kafka.__version__,
        "aiokafka": aiokafka.__version__,
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
    return (f"{os.cpu_count()} cores, shared by the broker, the producer and whatever "
            f"else runs on the machine (see other CPU); {model}; {platform.system()} "
            f"{platform.machine()}; Python {platform.python_version()}")


def settings_lines(modes: list[str]) -> list[str]:
    L, B, F = e2e_child.LINGER_MS, e2e_child.BATCH_SIZE, e2e_child.MAX_IN_FLIGHT
    lines = []
    if "equal" in modes:
        lines += [
            "**Equal settings** (the main table): acks=all, linger 5 ms, batch size 16384 "
            "bytes, idempotence off, at most 5 requests in flight per connection, same "
            "compression codec; each client's own names:",
            "",
            "| client | config |", "|---|---|",
        ]
        for client in ("fastprod-send", "confluent", "kafka-python", "aiokafka"):
            cfg = e2e_child.settings(client, "equal", "lz4")
            name = "fastprod (both)" if client.startswith("fastprod") else CLIENT_LABEL[client]
            lines.append(f"| {name} | `{json.dumps(cfg)}` (compression only in the lz4 cases) |")
        lines += [
            "",
            f"Idempotence is off for everyone because kafka-python and aiokafka pay for it "
            f"differently and librdkafka's idempotent producer changes its queueing; "
            f"confluent-kafka gets `partitioner=murmur2_random` (Java's key hash, which the "
            f"others use) so keyed records land on the same partitions, and aiokafka has "
            f"no max-in-flight setting (it keeps one request per broker in flight). "
            f"(linger {L} ms, batch {B}, in flight {F}.)",
            "",
        ]
    if "defaults" in modes:
        lines += [
            "**Client defaults** (second table): only bootstrap servers and the case's "
            "compression are set. What that means:",
            "",
            "| client | acks | linger | batch size | idempotence | in flight | lz4 | keyed partitioner |",
            "|---|---|---|---|---|---|---|---|",
            "| fastprod | all | 5 ms | 16384 B | **on** | 5 | fast lz4 (Java's level 9 = lz4 fast) | murmur2 (Java) |",
            "| confluent-kafka / librdkafka | all | 5 ms | 1,000,000 B (max 10,000 msgs) | off | 1,000,000 | lz4 fast | consistent_random (CRC32) |",
            "| kafka-python 3.x | all | 0 ms | 16384 B | **on** | 5 | lz4 frame (fast) | murmur2 |",
            "| aiokafka | 1 | 0 ms | 16384 B | off | 1 per broker | LZ4HC level 9 (cramjam) | murmur2 |",
            "",
        ]
    return lines


def render(runs: list[dict], args, command: str, when: str) -> str:
    agg = aggregate(runs)
    modes = [m for m in args.modes if any(r["mode"] == m for r in runs)]
    cases = [c for c in args.cases if any(r["case"] == c for r in runs)]
    clients = [c for c in args.clients if any(r["client"] == c for r in runs)]
    vers = versions(args.fastprod_root, args.fastprod_label)
    reps = {m: max((r["rep"] for r in runs if r["mode"] == m), default=0) + 1 for m in modes}
    lines = [
        "## End to end: producing to a real broker",
        "",
        f"- Command: `{command}`",
        f"- Date: {when}",
        f"- Machine: {machine_note()}. Every number here is the producer and the broker "
        f"competing for those cores.",
        *summary_lines(agg, modes, cases),
        f"- Broker: {'Apache Kafka ' + vers['kafka'] + ', one KRaft node from fastprod.localkafka (heap ' + args.heap + ', its default server config' + ''.join(f' + {k}={v}' for k, v in BROKER_CONFIG.items()) + '), started once for the whole run' if not args.bootstrap else 'external, ' + args.bootstrap}; "
        f"a fresh topic per run: {args.partitions} partitions, replication 1, deleted after the check.",
        "- Versions: " + "; ".join(f"{k} {v}" for k, v in vers.items()),
        f"- Workload: {args.records:,} records of {args.value_size}-byte values per run "
        f"(every value distinct, JSON-like, about 2:1 under lz4: bench/data.py); keyed cases "
        f"use a distinct 16-byte key per record; send_batch chunks of {args.chunk:,}. "
        f"Every client checks each record's result inside the timed window as a careful "
        f"user does: fastprod keeps each future and calls errors() (send_batch) or "
        f"exception() (send) after flush, confluent-kafka counts errors in an on_delivery "
        f"callback, kafka-python and aiokafka check each future. "
        f"Medians of {', '.join(f'{reps[m]} ({m})' for m in modes)} repeats, every client "
        f"in a fresh process per run, clients interleaved within each repeat.",
        "- Measured in the producing process, from the first send to the end of flush: "
        "wall time (records/s; MB/s counts key + value bytes), CPU time of the whole "
        "process, every thread (getrusage; librdkafka's and fastprod's sender threads "
        "included), per record; broker JVM CPU from /proc/<pid>/stat; machine busy = "
        "all cores, from /proc/stat; other CPU = what neither the producer nor the broker "
        "used (other processes on this shared machine: each run first waits up to "
        f"{args.quiet_wait:.0f} s for the machine to be under {args.quiet_busy:.0%} busy, "
        f"and a run during which others used more than {args.max_other:g} cores is run "
        f"again, up to {args.redo} times; rows still over it say *disturbed*). "
        "Records/batch: what the broker stored, read from its log segments. "
        f"*Broker-bound*: the producing process used under {CAP_PRODUCER_CORES} cores, so "
        "it spent the rest of the run waiting for the broker (buffer full, or flush "
        "waiting for acknowledgements), not working; records/s then measures the broker "
        "on this machine more than the client, and CPU/record is the fair comparison. Spread = (max - min) / median of "
        "records/s over the repeats.",
        "- Every run is checked: the topic's end offsets must add up to the records sent "
        "(otherwise the benchmark aborts).",
        "",
    ]
    lines += settings_lines(modes)
    for mode in modes:
        title = ("Equal settings (main table)" if mode == "equal"
                 else "Client defaults")
        lines += [f"### {title}", ""]
        lines += results_table(agg, mode, cases, clients)
        lines += ["", f"Targets ({mode}):", ""]
        lines += targets_table(check_targets(agg, mode, cases))
        lines.append("")
    real = [r for r in runs if not r.get("na")]
    redone = sum(1 for r in real if r.get("attempts", 1) > 1)
    still = sum(1 for r in real if r.get("disturbed"))
    if real:
        lines += [
            f"Interference: {redone} of {len(real)} runs were run again because other "
            f"processes used more than {args.max_other:g} cores during them; {still} were "
            f"still over it on the last try (rows say *disturbed: k/n*; a records/s target "
            f"judged on mostly disturbed rows says *(disturbed)*). CPU per record moves "
            f"much less under interference than records/s does.",
            ""]
    placement = keyed_placement(runs)
    if placement:
        lines += [placement, ""]
    lines += ["![end-to-end records/s and CPU per record](e2e.png)"]
    return "\n".join(lines) + "\n"


def summary_lines(agg: dict, modes: list[str], cases: list[str]) -> list[str]:
    """One line per mode: the range over the cases of each fastprod ratio."""
    out = []
    for mode in modes:
        parts = []
        for client in ("fastprod-send", "fastprod-batch"):
            cpu, rate, kp = [], [], []
            for case in cases:
                a, b, k = (agg.get((mode, case, c)) for c in (client, BASELINE, "kafka-python"))
                if not a or a["na"]:
                    continue
                if b and not b["na"]:
                    cpu.append(a["cpu_us"] / b["cpu_us"])
                    rate.append(a["rate"] / b["rate"])
                if k and not k["na"]:
                    kp.append(a["rate"] / k["rate"])

            def rng(xs):
                return f"{min(xs):.2f}-{max(xs):.2f}x" if xs else "n/a"

            parts.append(f"{CLIENT_LABEL[client]} uses {rng(cpu)} of confluent-kafka's CPU "
                         f"per record, at {rng(rate)} its records/s and {rng(kp)} "
                         f"kafka-python's")
        out.append(f"- Summary ({'equal settings' if mode == 'equal' else 'client defaults'}"
                   f", range over the {len(cases)} cases): " + "; ".join(parts) + ".")
    return out


def keyed_placement(runs: list[dict]) -> str:
    """Keyed runs with Java's hash must put the same number of records on each partition."""
    seen: dict[str, dict[str, tuple]] = {}
    for r in runs:
        if r.get("na") or r["mode"] != "equal" or not r["case"].startswith("keyed"):
            continue
        seen.setdefault(r["case"], {})[r["client"]] = tuple(r["end_offsets"])
    if not seen:
        return ""
    bad = []
    for case, by_client in seen.items():
        if len(set(by_client.values())) > 1:
            bad.append(f"{case}: " + ", ".join(f"{c} {list(v)}" for c, v in by_client.items()))
    if bad:
        return ("Keyed placement check: per-partition counts DIFFER between clients: "
                + "; ".join(bad))
    return ("Keyed placement check: in the equal-settings keyed runs every client put the "
            "same number of records on each partition (Java's murmur2 placement).")


def plot(runs: list[dict], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(runs)
    modes = [m for m in args.modes if any(r["mode"] == m for r in runs)]
    cases = [c for c in args.cases if any(r["case"] == c for r in runs)]
    clients = [c for c in args.clients if any(r["client"] == c for r in runs)]
    colors = {"fastprod-send": "tab:blue", "fastprod-batch": "tab:cyan",
              "confluent": "tab:orange", "kafka-python": "tab:green", "aiokafka": "tab:purple"}
    fig, axes = plt.subplots(2, len(modes), figsize=(6.5 * len(modes), 8), dpi=100,
                             squeeze=False)
    width = 0.8 / max(len(clients), 1)
    for col, mode in enumerate(modes):
        for row, (field, ylabel, scale) in enumerate((
                ("rate", "records/s (thousands)", 1e-3),
                ("cpu_us", "producer CPU µs per record (log scale; lower is better)", 1.0))):
            ax = axes[row][col]
            for i, client in enumerate(clients):
                xs, ys = [], []
                for j, case in enumerate(cases):
                    a = agg.get((mode, case, client))
                    if a and not a["na"]:
                        xs.append(j + (i - (len(clients) - 1) / 2) * width)
                        ys.append(a[field] * scale)
                bars = ax.bar(xs, ys, width, label=CLIENT_LABEL[client], color=colors[client])
                for b, y in zip(bars, ys):
                    ax.annotate(f"{y:.0f}" if y >= 10 else f"{y:.2f}",
                                (b.get_x() + b.get_width() / 2, y), ha="center",
                                va="bottom", fontsize=6)
            if field == "cpu_us":
                ax.set_yscale("log")
            ax.set_xticks(range(len(cases)), cases, fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(f"{'equal settings' if mode == 'equal' else 'client defaults'}: "
                         f"{'throughput' if field == 'rate' else 'CPU per record'}",
                         fontsize=10)
            if field == "rate":
                ax.set_ylim(top=ax.get_ylim()[1] * 1.08)  # room for the labels
    fig.suptitle(f"{args.records:,} x {args.value_size}-byte records, {args.partitions} "
                 f"partitions, one local Kafka broker, {os.cpu_count()} shared cores (medians; see "
                 f"bench/RESULTS.md for interference)",
                 fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(clients), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(PLOT)
    plt.close(fig)


def write_section(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# fastprod benchmark results\n"
    block = f"{START}\n{text}{END}"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    new = pattern.sub(lambda m: block, old) if pattern.search(old) else \
        old.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(new)


# ---- main -------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=None, help="records per run (1,000,000)")
    ap.add_argument("--value-size", type=int, default=100, help="value bytes (100)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats, equal mode (3)")
    ap.add_argument("--defaults-repeats", type=int, default=None,
                    help="repeats, defaults mode (1)")
    ap.add_argument("--modes", default="equal,defaults", help="equal,defaults")
    ap.add_argument("--clients", default=",".join(CLIENTS), help=",".join(CLIENTS))
    ap.add_argument("--cases", default=",".join(CASES), help=",".join(CASES))
    ap.add_argument("--partitions", type=int, default=6, help="partitions per topic (6)")
    ap.add_argument("--chunk", type=int, default=10_000, help="send_batch chunk (10,000)")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of our own")
    ap.add_argument("--heap", default="1g", help="heap of our broker (1g)")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds between creating a topic and producing to it (0.5)")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="wait up to this many seconds for a quiet machine before each run (30)")
    ap.add_argument("--quiet-busy", type=float, default=0.25,
                    help="quiet = less than this fraction of all cores busy (0.25)")
    ap.add_argument("--max-other", type=float, default=0.3,
                    help="a run during which other processes used more than this many "
                         "cores is run again (0.3)")
    ap.add_argument("--redo", type=int, default=1, help="at most this many times (1)")
    ap.add_argument("--timeout", type=float, default=900, help="per run, seconds")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 100,000 records, 1 repeat; RESULTS.md untouched")
    ap.add_argument("--write", action="store_true", help="write RESULTS.md/e2e.png even in --quick")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--json", default=None, help="also dump every run's raw numbers here")
    ap.add_argument("--from-json", default=None,
                    help="re-render the report from a --json dump instead of running")
    ap.add_argument("--keep-going", action="store_true",
                    help="on a record-count mismatch mark the row INVALID instead of aborting")
    ap.add_argument("--profile", action="store_true",
                    help="only cProfile one fastprod send() run (unkeyed, none) and print "
                         "the top 15 functions by own time, caller and sender thread")
    ap.add_argument("--profile-client", default="fastprod-send", help=argparse.SUPPRESS)
    ap.add_argument("--profile-case", default="unkeyed-none", help=argparse.SUPPRESS)
    ap.add_argument("--fastprod-root", default=None,
                    help="import fastprod from this source tree (default: this checkout)")
    ap.add_argument("--fastprod-rev", default=None,
                    help="benchmark this git revision of fastprod: a clean copy (git "
                         "archive) built in a temp dir, so edits in progress in the "
                         "checkout don't leak in")
    args = ap.parse_args(argv)
    args.fastprod_label = None
    if args.fastprod_rev:
        if args.fastprod_root:
            ap.error("--fastprod-rev and --fastprod-root exclude each other")
        args.fastprod_root, args.fastprod_label = build_revision(args.fastprod_rev)
    args.records = args.records or (100_000 if args.quick else 1_000_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.defaults_repeats = args.defaults_repeats or 1
    args.modes = [m for m in args.modes.split(",") if m]
    args.clients = [c for c in args.clients.split(",") if c]
    args.cases = [c for c in args.cases.split(",") if c]
    for what, got, known in (("mode", args.modes, MODES), ("client", args.clients, CLIENTS),
                             ("case", args.cases, CASES)):
        bad = [g for g in got if g not in known]
        if bad:
            ap.error(f"unknown {what}(s) {bad}; choose from {known}")
    if args.fastprod_root:
        args.fastprod_root = str(Path(args.fastprod_root).resolve())
        sys.path.insert(0, args.fastprod_root)  # localkafka too comes from there
    return args


def reproduce_command(argv: list[str]) -> str:
    """The command line to put in the report: without the options that only say where
    output goes (--json, --no-write, --write, --from-json)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--json", "--from-json"):
            skip = True
            continue
        if a.startswith(("--json=", "--from-json=")) or a in ("--no-write", "--write"):
            continue
        out.append(a)
    return "python bench/e2e.py" + "".join(" " + shlex.quote(a) for a in out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = reproduce_command(sys.argv[1:] if argv is None else argv)
    t_start = time.monotonic()
    if args.from_json:
        return rerender(args)
    broker = Broker(args.bootstrap, args.heap)
    print(f"broker {broker.bootstrap} (pid {broker.pid})", file=sys.stderr, flush=True)
    warmup_topic = f"e2e-warmup-{uuid.uuid4().hex[:8]}"
    runs: list[dict] = []
    try:
        broker.create_topic(warmup_topic, args.partitions)
        if args.profile:
            return profile(broker, args, warmup_topic)
        plan = []
        for mode in args.modes:
            for rep in range(args.repeats if mode == "equal" else args.defaults_repeats):
                order = args.clients[rep % len(args.clients):] + \
                    args.clients[:rep % len(args.clients)]
                for case in args.cases:
                    for client in order:
                        plan.append((mode, case, client, rep))
        for i, (mode, case, client, rep) in enumerate(plan, 1):
            for attempt in range(1, args.redo + 2):
                r = one_run(broker, args, mode, case, client, rep, warmup_topic)
                r["attempts"] = attempt
                other = r.get("other_cores")
                r["disturbed"] = other is not None and other > args.max_other
                if not r["disturbed"] or attempt > args.redo:
                    break
                print(f"[{i}/{len(plan)}] {mode} {case} {client} r{rep}: other processes "
                      f"used {other:.2f} cores during the run; running it again",
                      file=sys.stderr, flush=True)
            runs.append(r)
            if r["na"]:
                line = "n/a (no send_batch)"
            else:
                line = (f"{fmt_rate(r['rate'])} rec/s  {r['cpu_us']:.2f} µs CPU/rec  "
                        f"producer {r['cores']:.2f} cores  broker "
                        f"{fmt(r['broker_cores'], '.2f')} cores  other "
                        f"{fmt(r['other_cores'], '.2f')}  machine "
                        f"{fmt(r['machine_busy'] and r['machine_busy'] * 100, '.0f')}%")
            print(f"[{i}/{len(plan)} {time.monotonic() - t_start:6.0f}s] {mode:8} {case:12} "
                  f"{client:14} r{rep}: {line}", file=sys.stderr, flush=True)
    finally:
        try:
            broker.delete_topics([warmup_topic])
        except Exception:  # noqa: BLE001
            pass
        broker.stop()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.json:
        saved = {k: v for k, v in vars(args).items() if k not in ("json", "from_json")}
        Path(args.json).write_text(json.dumps({"command": command, "date": when,
                                               "args": saved, "runs": runs}, indent=1))
    text = render(runs, args, command, when)
    print(text)
    print(f"total {time.monotonic() - t_start:.0f} s", file=sys.stderr)
    if (args.write or not args.quick) and not args.no_write:
        write_section(text)
        plot(runs, args)
        print(f"wrote {RESULTS} (e2e section) and {PLOT}", file=sys.stderr)
    return 1 if any(r.get("invalid") for r in runs) else 0


def rerender(args) -> int:
    data = json.loads(Path(args.from_json).read_text())
    for k, v in data["args"].items():
        if k not in ("write", "no_write"):
            setattr(args, k, v)
    runs = data["runs"]
    for r in runs:
        if not r.get("na"):
            derive(r)
    text = render(runs, args, reproduce_command(shlex.split(data["command"])[2:]),
                  data["date"])
    print(text)
    if not args.no_write:
        write_section(text)
        plot(runs, args)
        print(f"wrote {RESULTS} (e2e section) and {PLOT}", file=sys.stderr)
    return 0


def profile(broker: Broker, args, warmup_topic: str) -> int:
    r = one_run(broker, args, "equal", args.profile_case, args.profile_client, 0,
                warmup_topic, profile=True)
    if r["na"]:
        print("n/a")
        return 1
    print(f"{args.profile_client} {args.profile_case}, {args.records:,} records, under "
          f"cProfile (slower than unprofiled): {fmt_rate(r['rate'])} rec/s, "
          f"{r['cpu_us']:.2f} µs CPU/record\n")
    print("caller thread (the send loop and flush), top 15 by tottime:\n")
    print(r["profile"]["caller"])
    print("\nother threads (sender), producer start to close, top 15 by tottime:\n")
    print(r["profile"]["threads"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
