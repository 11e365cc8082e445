#!/usr/bin/env python
"""The cost of idempotence and of transactions: fastprod vs confluent-kafka, one broker.

Usage, from the repository root (venv active, extensions built in place):

    python bench/exactly_once.py             # full run: writes bench/RESULTS.md + eos.png
    python bench/exactly_once.py --quick     # smoke test: 30,000 records, 1 repeat, no write
    python bench/exactly_once.py --records 1000000 --repeats 5 --txn-every 50000
    python bench/exactly_once.py --from-json runs.json   # re-render a --json dump

Modes, the same for every client (each in its own config names): acks=all, linger.ms 5,
batch.size 16384, at most 5 requests in flight, no compression, and

- plain:         enable.idempotence=false
- idempotent:    enable.idempotence=true
- transactional: transactional.id set (idempotence with it); the timed loop begins a
                 transaction, sends --txn-every records (default 10,000) and commits,
                 until all --records are sent; init_transactions() comes before timing.

Clients: fastprod ``send_batch`` (chunks of --chunk, at most one transaction's worth),
fastprod ``send()`` per record, confluent-kafka ``produce()`` + ``poll(0)`` per record.
Each run is a fresh subprocess (bench/exactly_once_child.py) writing to a fresh topic;
afterwards the records are counted: end offsets for plain and idempotent, a
read_committed consumer for transactional (end offsets there include one commit marker
per partition per transaction) - a mismatch aborts the benchmark. Medians of --repeats;
records/s and CPU µs/record (getrusage of the producing process, every thread), ratios
against plain per client and fastprod against confluent-kafka per mode, into
bench/RESULTS.md between ``<!-- eos:start -->`` and ``<!-- eos:end -->`` and
bench/eos.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sharded  # noqa: E402  (bench/ is sys.path[0] when run as a script)
from sharded import BenchError, Broker, fmt, fmt_rate, machine_note, versions  # noqa: E402
from sharded_child import WARMUP_RECORDS  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
PLOT = BENCH / "eos.png"
START, END = "<!-- eos:start -->", "<!-- eos:end -->"

CLIENTS = ["fastprod-batch", "fastprod-send", "confluent"]
CLIENT_LABEL = {"fastprod-batch": "fastprod send_batch()", "fastprod-send": "fastprod send()",
                "confluent": "confluent-kafka"}
MODES = ["plain", "idempotent", "transactional"]
MODE_LABEL = {"plain": "(a) acks=all, no idempotence", "idempotent": "(b) idempotence",
              "transactional": "(c) transactions"}
BASELINE = "confluent"
LINGER_MS = 5
BATCH_SIZE = 16384
MAX_IN_FLIGHT = 5


def client_config(client: str, mode: str, txn_id: str | None = None) -> dict:
    cfg = {"acks": "all", "linger.ms": LINGER_MS, "batch.size": BATCH_SIZE,
           "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
           "enable.idempotence": mode != "plain"}
    if mode == "transactional":
        cfg["transactional.id"] = txn_id or "TXN_ID"
    return cfg  # the same names in fastprod (Java's) and librdkafka


# ---- one run ----------------------------------------------------------------------------------

def one_run(broker: Broker, args, mode: str, client: str, rep: int, warmup_topic: str) -> dict:
    tag = uuid.uuid4().hex[:8]
    topic = f"eos-{mode}-{client}-r{rep}-{tag}"
    broker.create_topic(topic, args.partitions)
    time.sleep(args.settle)
    quiet = sharded.wait_quiet(args.quiet_wait, args.quiet_busy)
    spec = {"client": client, "mode": mode, "bootstrap": broker.bootstrap, "topic": topic,
            "warmup_topic": warmup_topic, "records": args.records,
            "value_size": args.value_size, "chunk": min(args.chunk, args.txn_every),
            "txn_every": args.txn_every, "broker_pid": broker.pid,
            "config": client_config(client, mode, f"bench-eos-{client}-{tag}"),
            "fastprod_root": args.fastprod_root}
    try:
        out = sharded.run_child(BENCH / "exactly_once_child.py", spec, args.timeout)
        ends = broker.end_offsets(topic, args.partitions)
        counted = (broker.count_committed(topic, args.partitions)
                   if mode == "transactional" else sum(ends))
        stats = broker.batch_stats(topic, args.partitions)
    finally:
        broker.delete_topics([topic])
    out.update(mode=mode, client=client, rep=rep, topic=topic, end_offsets=ends,
               counted=counted, busy_before=quiet, **(stats or {}))
    markers = sum(ends) - counted
    out["markers"] = markers
    problems = []
    if counted != args.records:
        problems.append(f"{'a read_committed consumer read' if mode == 'transactional' else 'the end offsets add up to'} "
                        f"{counted} records, not {args.records}")
    if mode != "transactional" and markers:
        problems.append(f"{markers} offsets beyond the records")
    if stats and stats["stored_records"] != args.records:
        problems.append(f"the log segments hold {stats['stored_records']} data records")
    if problems:
        msg = (f"INVALID RUN: {client} ({mode}, repeat {rep}) on {topic}: " +
               "; ".join(problems) + f" (end offsets {ends})")
        if not args.keep_going:
            raise BenchError(msg)
        print("!" * 20 + " " + msg, file=sys.stderr)
        out["invalid"] = True
    derive(out)
    return out


def derive(r: dict) -> None:
    n, wall = r["records"], r["wall_s"]
    r["rate"] = n / wall
    r["mbps"] = r["payload_bytes"] / wall / 1e6
    r["cpu_us"] = r["cpu_s"] / n * 1e6
    r["cores"] = r["cpu_s"] / wall
    b = r.get("broker_cpu_s")
    r["broker_cores"] = None if b is None else b / wall
    busy = r.get("machine_busy")
    ncpu = r.get("ncpu") or os.cpu_count() or 1
    r["other_cores"] = None if busy is None or b is None else max(
        0.0, busy * ncpu - r["cores"] - r["broker_cores"])
    r["records_per_batch"] = (r["stored_records"] / r["batches"]) if r.get("batches") else None
    r["broker_us"] = None if b is None else b / n * 1e6


FIELDS = ["rate", "mbps", "cpu_us", "cores", "broker_cores", "other_cores", "broker_us",
          "records_per_batch", "markers", "transactions", "max_rss_mb"]


def aggregate(runs: list[dict]) -> dict:
    groups: dict = {}
    for r in runs:
        groups.setdefault((r["mode"], r["client"]), []).append(r)
    agg = {}
    for k, rs in groups.items():
        a = {"n": len(rs)}
        for field in FIELDS:
            vals = [r[field] for r in rs if r.get(field) is not None]
            a[field] = statistics.median(vals) if vals else None
        rates = [r["rate"] for r in rs]
        a["spread"] = (max(rates) - min(rates)) / statistics.median(rates)
        a["invalid"] = any(r.get("invalid") for r in rs)
        a["disturbed"] = sum(bool(r.get("disturbed")) for r in rs)
        agg[k] = a
    return agg


# ---- report -----------------------------------------------------------------------------------

def ratio(a: dict | None, b: dict | None, field: str) -> float | None:
    if not a or not b or not a.get(field) or not b.get(field):
        return None
    return a[field] / b[field]


def results_table(agg: dict, modes: list[str], clients: list[str]) -> list[str]:
    lines = [
        "| mode | client | records/s | MB/s | CPU µs/rec | rec/s vs (a) | CPU vs (a) | "
        "rec/s vs confluent | CPU vs confluent | producer cores | broker cores | "
        "broker CPU µs/rec | other cores | records/batch | markers | spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in modes:
        for client in clients:
            a = agg.get((mode, client))
            if a is None:
                continue
            plain = agg.get(("plain", client))
            base = agg.get((mode, BASELINE))
            flag = " **INVALID**" if a["invalid"] else ""
            flag += f" (disturbed: {a['disturbed']}/{a['n']})" if a["disturbed"] else ""
            vs_plain_r = ratio(a, plain, "rate") if mode != "plain" else None
            vs_plain_c = ratio(a, plain, "cpu_us") if mode != "plain" else None
            vs_base_r = ratio(a, base, "rate") if client != BASELINE else None
            vs_base_c = ratio(a, base, "cpu_us") if client != BASELINE else None
            lines.append(
                f"| {MODE_LABEL[mode]} | {CLIENT_LABEL[client]}{flag} | {fmt_rate(a['rate'])} | "
                f"{fmt(a['mbps'], '.1f')} | {fmt(a['cpu_us'], '.2f')} | "
                f"{fmt(vs_plain_r, '.2f', 'x')} | {fmt(vs_plain_c, '.2f', 'x')} | "
                f"{fmt(vs_base_r, '.2f', 'x')} | {fmt(vs_base_c, '.2f', 'x')} | "
                f"{fmt(a['cores'], '.2f')} | {fmt(a['broker_cores'], '.2f')} | "
                f"{fmt(a['broker_us'], '.2f')} | {fmt(a['other_cores'], '.2f')} | "
                f"{fmt(a['records_per_batch'], '.0f')} | {fmt(a['markers'], '.0f')} | "
                f"{fmt(a['spread'] * 100, '.0f', '%')} |")
    return lines


def cost_table(agg: dict, clients: list[str]) -> list[str]:
    """What idempotence and transactions cost each client, relative to (a)."""
    lines = [
        "| client | idempotence: records/s | idempotence: CPU µs/rec | "
        "transactions: records/s | transactions: CPU µs/rec |",
        "|---|---:|---:|---:|---:|",
    ]

    def cell(a, plain, field):
        if not a or not plain or not a.get(field) or not plain.get(field):
            return "—"
        pct = (a[field] / plain[field] - 1) * 100
        if field == "cpu_us":
            return f"{a[field] - plain[field]:+.2f} µs ({pct:+.0f}%)"
        return f"{pct:+.0f}%"

    for client in clients:
        plain = agg.get(("plain", client))
        idem = agg.get(("idempotent", client))
        txn = agg.get(("transactional", client))
        lines.append(f"| {CLIENT_LABEL[client]} | {cell(idem, plain, 'rate')} | "
                     f"{cell(idem, plain, 'cpu_us')} | {cell(txn, plain, 'rate')} | "
                     f"{cell(txn, plain, 'cpu_us')} |")
    return lines


def render(runs: list[dict], args, command: str, when: str, failures: list = ()) -> str:
    agg = aggregate(runs)
    modes = [m for m in args.modes if any(r["mode"] == m for r in runs)]
    clients = [c for c in args.clients if any(r["client"] == c for r in runs)]
    vers = versions(getattr(args, "fastprod_label", None))
    reps = max((r["rep"] for r in runs), default=0) + 1
    lines = [
        "## Exactly once: the cost of idempotence and transactions",
        "",
        f"- Command: `{command}`",
        f"- Date: {when}",
        f"- Machine: {machine_note()}. Only 2 cores, shared with the broker and with other "
        "people's test runs: records/s is noisy and mostly says how fast the broker "
        "answers on this machine; CPU µs/record is the steadier comparison (see spread and "
        "other cores).",
        f"- Broker: {'Apache Kafka ' + vers['kafka'] + ', one KRaft node from fastprod.localkafka (heap ' + args.heap + '), started once for the whole run' if not args.bootstrap else 'external, ' + args.bootstrap}; "
        f"a fresh topic per run: {args.partitions} partitions, replication 1.",
        "- Versions: " + "; ".join(f"{k} {v}" for k, v in vers.items()),
        f"- Workload: {args.records:,} unkeyed records of {args.value_size} bytes per run "
        "(the JSON-like values of bench/sharded_child.py), no compression. Medians of "
        f"{reps} repeat(s), each run in a fresh process, the client order rotated per "
        f"repeat. Before timing: {WARMUP_RECORDS:,} warm-up records to another topic "
        "(in a transaction of its own in mode (c), after init_transactions()).",
        f"- Settings, the same for every client and the same key names in both (Java's): "
        f"`{json.dumps(client_config('fastprod-batch', 'plain'))}` for (a); "
        "`enable.idempotence: true` for (b); (b) plus `transactional.id` (a fresh one "
        f"per run) for (c), where the timed loop is `begin_transaction()`, "
        f"{args.txn_every:,} records, `commit_transaction()`, repeated "
        f"({args.records // args.txn_every if args.txn_every else 0} transactions a run).",
        f"- Loops: fastprod send_batch: `send_batch(topic, values[i:i + "
        f"{min(args.chunk, args.txn_every):,}])`; fastprod send(): `send(topic, v)`; "
        "confluent-kafka: `produce(topic, v)` + `poll(0)` (on BufferError `poll(0.1)` and "
        "retry); then `flush()` in (a) and (b), `commit_transaction()` (which flushes) in "
        "(c). fastprod's send() takes its C fast path in (c) too (it checks the "
        "transaction is open and adds new partitions to it).",
        "- Measured over the first send (or begin) to the end of the last flush (or "
        "commit): records/s, CPU of the producing process (getrusage RUSAGE_SELF, every "
        "thread: librdkafka's and fastprod's sender included) per record, the broker JVM's "
        "CPU (per second and per record), other cores = machine busy minus producer and "
        "broker (someone else's processes). Records/batch from the broker's log segments; "
        "markers = end offsets minus the records counted (commit markers, one per "
        "partition per transaction). Spread = (max - min) / median of records/s. Each run "
        f"first waits up to {args.quiet_wait:g} s for the machine to be under "
        f"{args.quiet_busy:.0%} busy; a run during which other processes used more than "
        f"{args.max_other:g} cores is marked *disturbed*"
        + (f" and run again, up to {args.redo} times." if args.redo else "."),
        "- Every run is checked: (a), (b): the end offsets add up to the records sent; (c): "
        "a read_committed consumer (confluent-kafka) reads exactly the records sent; and the "
        "log segments hold that many data records (otherwise the benchmark aborts).",
        "",
    ]
    lines += results_table(agg, modes, clients)
    lines += ["", "Cost relative to (a), per client (records/s change; CPU per record added):",
              ""]
    lines += cost_table(agg, clients)
    lines += sharded.failures_lines(list(failures))
    lines += ["", "![records/s and CPU per record per mode](eos.png)"]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(runs)
    modes = [m for m in args.modes if any(r["mode"] == m for r in runs)]
    clients = [c for c in args.clients if any(r["client"] == c for r in runs)]
    colors = {"fastprod-batch": "tab:cyan", "fastprod-send": "tab:blue",
              "confluent": "tab:orange"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    width = 0.8 / max(len(clients), 1)
    for ax, (field, ylabel, scale) in zip(axes, (
            ("rate", "records/s (thousands)", 1e-3),
            ("cpu_us", "producer CPU µs per record (lower is better)", 1.0))):
        for i, client in enumerate(clients):
            xs, ys = [], []
            for j, mode in enumerate(modes):
                a = agg.get((mode, client))
                if a:
                    xs.append(j + (i - (len(clients) - 1) / 2) * width)
                    ys.append(a[field] * scale)
            bars = ax.bar(xs, ys, width, label=CLIENT_LABEL[client], color=colors[client])
            for b, y in zip(bars, ys):
                ax.annotate(f"{y:.0f}" if y >= 10 else f"{y:.2f}",
                            (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom",
                            fontsize=7)
        ax.set_xticks(range(len(modes)), [MODE_LABEL[m] for m in modes], fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"{args.records:,} x {args.value_size}-byte records, acks=all, "
                 f"{args.partitions} partitions, commit every {args.txn_every:,} in (c); "
                 f"one local broker, {os.cpu_count()} shared cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)


# ---- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=None, help="records per run (300,000)")
    ap.add_argument("--value-size", type=int, default=100, help="value bytes (100)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (3)")
    ap.add_argument("--txn-every", type=int, default=10_000,
                    help="records per transaction in mode (c) (10,000)")
    ap.add_argument("--chunk", type=int, default=10_000, help="send_batch chunk (10,000)")
    ap.add_argument("--modes", default=",".join(MODES), help=",".join(MODES))
    ap.add_argument("--clients", default=",".join(CLIENTS), help=",".join(CLIENTS))
    ap.add_argument("--partitions", type=int, default=6, help="partitions per topic (6)")
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of our own")
    ap.add_argument("--heap", default="1g", help="heap of our broker (1g)")
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--quiet-wait", type=float, default=3,
                    help="wait up to this many seconds for a quiet machine before each run "
                         "(3: on a machine that is never quiet, longer only adds minutes)")
    ap.add_argument("--quiet-busy", type=float, default=0.25)
    ap.add_argument("--max-other", type=float, default=0.5,
                    help="a run during which other processes used more than this many cores "
                         "is marked disturbed (and run again with --redo) (0.5)")
    ap.add_argument("--redo", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600, help="per run, seconds")
    ap.add_argument("--retry-failed", type=int, default=1,
                    help="run a crashed client process again this many times (1); the "
                         "crash is reported either way")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 30,000 records, 1 repeat; RESULTS.md untouched")
    ap.add_argument("--write", action="store_true", help="write RESULTS.md/png even in --quick")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--json", default=None, help="also dump every run's raw numbers here")
    ap.add_argument("--from-json", default=None,
                    help="re-render the report from a --json dump instead of running")
    ap.add_argument("--keep-going", action="store_true",
                    help="on a count mismatch mark the row INVALID instead of aborting")
    sharded.add_fastprod_args(ap)
    args = ap.parse_args(argv)
    args.records = args.records or (30_000 if args.quick else 300_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.modes = [m for m in args.modes.split(",") if m]
    args.clients = [c for c in args.clients.split(",") if c]
    for what, got, known in (("mode", args.modes, MODES), ("client", args.clients, CLIENTS)):
        bad = [g for g in got if g not in known]
        if bad:
            ap.error(f"unknown {what}(s) {bad}; choose from {known}")
    if args.txn_every < 1:
        ap.error("--txn-every must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python bench/exactly_once.py" + "".join(
        " " + shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    t_start = time.monotonic()
    if args.from_json:
        return rerender(args)
    sharded.resolve_fastprod(args)
    print(f"fastprod: {args.fastprod_label}", file=sys.stderr, flush=True)
    broker = Broker(args.bootstrap, args.heap)
    print(f"broker {broker.bootstrap} (pid {broker.pid})", file=sys.stderr, flush=True)
    warmup_topic = f"eos-warmup-{uuid.uuid4().hex[:8]}"
    runs: list[dict] = []
    failures: list[dict] = []
    try:
        broker.create_topic(warmup_topic, args.partitions)
        plan = []
        for rep in range(args.repeats):
            k = rep % len(args.clients)
            order = args.clients[k:] + args.clients[:k]
            for mode in args.modes:
                for client in order:
                    plan.append((mode, client, rep))
        for i, (mode, client, rep) in enumerate(plan, 1):
            for tries in range(1, args.redo + 2):
                r = sharded.attempt(
                    lambda: one_run(broker, args, mode, client, rep, warmup_topic),
                    args.retry_failed, failures,
                    f"{CLIENT_LABEL[client]}, {MODE_LABEL[mode]}, repeat {rep + 1}")
                r["attempts"] = tries
                other = r.get("other_cores")
                r["disturbed"] = other is not None and other > args.max_other
                if not r["disturbed"] or tries > args.redo:
                    break
                print(f"[{i}/{len(plan)}] {mode} {client} r{rep}: other processes used "
                      f"{other:.2f} cores; running it again", file=sys.stderr, flush=True)
            runs.append(r)
            print(f"[{i}/{len(plan)} {time.monotonic() - t_start:5.0f}s] {mode:13} "
                  f"{client:14} r{rep}: {fmt_rate(r['rate'])} rec/s  {r['cpu_us']:.2f} µs "
                  f"CPU/rec  producer {r['cores']:.2f} cores  broker "
                  f"{fmt(r['broker_cores'])} cores  other {fmt(r['other_cores'])}  "
                  f"markers {r['markers']}", file=sys.stderr, flush=True)
            sharded.dump_json(args.json, args, command, "(partial)", runs, failures)
    finally:
        try:
            broker.delete_topics([warmup_topic])
        except Exception:  # noqa: BLE001
            pass
        broker.stop()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sharded.dump_json(args.json, args, command, when, runs, failures)
    text = render(runs, args, command, when, failures)
    print(text)
    print(f"total {time.monotonic() - t_start:.0f} s", file=sys.stderr)
    if (args.write or not args.quick) and not args.no_write:
        sharded.write_section(text, START, END)
        plot(runs, args)
        print(f"wrote {RESULTS} (eos section) and {PLOT}", file=sys.stderr)
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
        sharded.write_section(text, START, END)
        plot(runs, args)
        print(f"wrote {RESULTS} (eos section) and {PLOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
