"""One end-to-end benchmark run in a fresh process: ``python bench/e2e_child.py SPEC_JSON``.

bench/e2e.py starts this once per (client, case, repeat) so that the CPU accounting of
the producing process (``getrusage(RUSAGE_SELF)``: every thread, librdkafka's included)
covers exactly one client. SPEC_JSON keys:

    client       fastprod-send | fastprod-batch | confluent | kafka-python | aiokafka
    mode         "equal" (settings made equal, see SETTINGS) or "defaults"
    bootstrap    host:port
    topic        the (fresh, empty) topic to write ``records`` records to
    warmup_topic a topic for the warm-up records (connections, metadata) before timing
    records, value_size, keyed, compression ("none" | "lz4"), chunk (send_batch size)
    broker_pid   JVM pid of the broker, or null: its /proc CPU is sampled with ours
    profile      true (fastprod only): cProfile the timed part of the calling thread and
                 every thread the producer starts (from its start to close)
    fastprod_root  import fastprod from this source tree (default: this checkout)

The last line on stdout is one JSON object with the measurements; anything else goes to
stderr. Exit status 3 means "this client cannot run this case" (send_batch missing).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # a source checkout with the extensions built in place
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/, for _common

from _common import confluent_produce  # noqa: E402
from data import make_keys, make_values  # noqa: E402  (distinct values and keys)

NOT_AVAILABLE = 3
WARMUP_RECORDS = 2_000

# The settings made equal in the "equal" mode; bench/e2e.py prints them in RESULTS.md.
LINGER_MS = 5
BATCH_SIZE = 16384
MAX_IN_FLIGHT = 5


def settings(client: str, mode: str, compression: str) -> dict:
    """The producer config of ``client`` (its own key names) for ``mode``."""
    comp = None if compression == "none" else compression
    if client.startswith("fastprod"):
        cfg: dict = {} if mode == "defaults" else {
            "acks": "all", "linger.ms": LINGER_MS, "batch.size": BATCH_SIZE,
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": MAX_IN_FLIGHT}
        if comp:
            cfg["compression.type"] = comp
        return cfg
    if client == "confluent":
        cfg = {} if mode == "defaults" else {
            "acks": "all", "linger.ms": LINGER_MS, "batch.size": BATCH_SIZE,
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
            # Java's (and fastprod's, kafka-python's, aiokafka's) key hashing, so keyed
            # records land on the same partitions; librdkafka's default is consistent_random
            "partitioner": "murmur2_random"}
        if comp:
            cfg["compression.type"] = comp
        return cfg
    if client == "kafka-python":
        cfg = {} if mode == "defaults" else {
            "acks": "all", "linger_ms": LINGER_MS, "batch_size": BATCH_SIZE,
            "enable_idempotence": False,
            "max_in_flight_requests_per_connection": MAX_IN_FLIGHT}
        if comp:
            cfg["compression_type"] = comp
        return cfg
    if client == "aiokafka":
        # no max-in-flight setting: aiokafka keeps one Produce request per broker in flight
        cfg = {} if mode == "defaults" else {
            "acks": "all", "linger_ms": LINGER_MS, "max_batch_size": BATCH_SIZE,
            "enable_idempotence": False}
        if comp:
            cfg["compression_type"] = comp
        return cfg
    raise ValueError(f"unknown client {client!r}")


# ---- CPU sampling ---------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def self_cpu() -> tuple[float, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return ru.ru_utime, ru.ru_stime


def proc_cpu(pid: int | None) -> float | None:
    """utime+stime of ``pid`` (all its threads) in seconds, from /proc/<pid>/stat."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14, 15 of stat(5)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat", "rb") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])  # guest time is already in user
    return total - idle, total


class Window:
    """Wall, own CPU, broker CPU and machine CPU between start() and stop()."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid

    def start(self) -> None:
        self.m0 = machine_cpu()
        self.b0 = proc_cpu(self.broker_pid)
        self.c0 = self_cpu()
        self.t0 = time.perf_counter()

    def stop(self) -> dict:
        t1 = time.perf_counter()
        c1 = self_cpu()
        b1 = proc_cpu(self.broker_pid)
        m1 = machine_cpu()
        busy, total = m1[0] - self.m0[0], m1[1] - self.m0[1]
        return {
            "wall_s": t1 - self.t0,
            "user_s": c1[0] - self.c0[0],
            "sys_s": c1[1] - self.c0[1],
            "broker_cpu_s": None if b1 is None or self.b0 is None else b1 - self.b0,
            "machine_busy": busy / total if total > 0 else None,
            "ncpu": os.cpu_count(),
        }


# ---- clients --------------------------------------------------------------------------------

def run_fastprod(spec: dict, values: list, keys: list | None, window: Window) -> dict:
    import fastprod
    from fastprod import Producer

    batch = spec["client"] == "fastprod-batch"
    cfg = {"bootstrap.servers": spec["bootstrap"], **spec["config"]}
    profiles = _install_profiling() if spec.get("profile") else None
    p = Producer(cfg)
    if batch and not hasattr(p, "send_batch"):
        p.close()
        print(f"fastprod {getattr(fastprod, '__version__', '?')}: Producer has no "
              f"send_batch", file=sys.stderr)
        sys.exit(NOT_AVAILABLE)
    topic, n = spec["topic"], len(values)
    # warm-up: connections, metadata, code paths; then the target topic's metadata
    wv = values[:WARMUP_RECORDS]
    for i, v in enumerate(wv):
        p.send(spec["warmup_topic"], v, key=None if keys is None else keys[i])
    p.flush()
    p.partitions_for(topic)

    if profiles:
        profiles[0].enable()
    window.start()
    # as a careful user: every future kept and checked after flush, inside the window
    if batch:
        chunk = spec["chunk"]
        send_batch = p.send_batch
        if keys is None:
            futures = [send_batch(topic, values[i:i + chunk]) for i in range(0, n, chunk)]
        else:
            futures = [send_batch(topic, values[i:i + chunk], keys=keys[i:i + chunk])
                       for i in range(0, n, chunk)]
        p.flush()
        failed = sum(len(f.errors()) for f in futures)
    else:
        send = p.send
        if keys is None:
            futures = [send(topic, v) for v in values]
        else:
            futures = [send(topic, v, key=k) for v, k in zip(values, keys)]
        p.flush()
        failed = sum(f.exception() is not None for f in futures)
    if failed:
        raise RuntimeError(f"fastprod: {failed} records failed")
    out = window.stop()
    if profiles:
        profiles[0].disable()
    p.close()  # joins the sender thread, which ends its profile
    if profiles:
        out["profile"] = _stop_profile(profiles)
    return out


def run_confluent(spec: dict, values: list, keys: list | None, window: Window) -> dict:
    from confluent_kafka import Producer

    failed = []  # as a careful user: a delivery report per record, errors kept

    def on_delivery(err, msg) -> None:
        if err is not None:
            failed.append(err)

    p = Producer({"bootstrap.servers": spec["bootstrap"], "on_delivery": on_delivery,
                  **spec["config"]})
    topic = spec["topic"]
    for i, v in enumerate(values[:WARMUP_RECORDS]):
        p.produce(spec["warmup_topic"], v, key=None if keys is None else keys[i])
        p.poll(0)
    p.flush()
    p.list_topics(topic, timeout=10)

    window.start()
    buffer_full = confluent_produce(p, topic, values, keys)
    left = p.flush(120)
    out = window.stop()
    if left or failed:
        raise RuntimeError(f"confluent: {left} records undelivered, {len(failed)} failed")
    out["buffer_full_waits"] = buffer_full
    return out


def run_kafka_python(spec: dict, values: list, keys: list | None, window: Window) -> dict:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=spec["bootstrap"], **spec["config"])
    topic = spec["topic"]
    for i, v in enumerate(values[:WARMUP_RECORDS]):
        p.send(spec["warmup_topic"], v, key=None if keys is None else keys[i])
    p.flush()
    p.partitions_for(topic)

    send = p.send
    window.start()
    if keys is None:
        futures = [send(topic, v) for v in values]
    else:
        futures = [send(topic, v, key=k) for v, k in zip(values, keys)]
    p.flush()
    failed = sum(f.failed() for f in futures)
    out = window.stop()
    p.close()
    if failed:
        raise RuntimeError(f"kafka-python: {failed} records failed")
    return out


def run_aiokafka(spec: dict, values: list, keys: list | None, window: Window) -> dict:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def main() -> dict:
        p = AIOKafkaProducer(bootstrap_servers=spec["bootstrap"], **spec["config"])
        await p.start()
        try:
            topic = spec["topic"]
            for i, v in enumerate(values[:WARMUP_RECORDS]):
                await p.send(spec["warmup_topic"], v, key=None if keys is None else keys[i])
            await p.flush()
            await p.partitions_for(topic)

            # send() returns once the record is in a batch (it waits only while the
            # accumulator is full) with the record's future: kept and checked after
            # flush(), as a careful user does
            send = p.send
            window.start()
            if keys is None:
                futures = [await send(topic, v) for v in values]
            else:
                futures = [await send(topic, v, key=k) for v, k in zip(values, keys)]
            await p.flush()
            failed = sum(f.exception() is not None for f in futures)
            out = window.stop()
            if failed:
                raise RuntimeError(f"aiokafka: {failed} records failed")
            return out
        finally:
            await p.stop()

    return asyncio.run(main())


RUNNERS = {
    "fastprod-send": run_fastprod,
    "fastprod-batch": run_fastprod,
    "confluent": run_confluent,
    "kafka-python": run_kafka_python,
    "aiokafka": run_aiokafka,
}


# ---- profiling (fastprod only) -------------------------------------------------------------

def _install_profiling() -> list:
    """Profile every thread started from now on (call before the producer starts its
    sender thread); the caller's own profile is profiles[0], enabled by the caller."""
    import cProfile
    import threading

    profiles = [cProfile.Profile()]
    orig_run = threading.Thread.run

    def run(self):
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()  # cProfile profiles the thread that enables it
        try:
            orig_run(self)
        finally:
            prof.disable()

    threading.Thread.run = run
    return profiles


def _stop_profile(profiles) -> dict:
    """Top 15 functions by own time: the caller's thread (the timed part only) and
    the other threads (fastprod's sender: from producer start to close)."""
    import io
    import pstats

    def top(profs) -> str:
        out = io.StringIO()
        stats = pstats.Stats(profs[0], stream=out)
        for extra in profs[1:]:
            stats.add(extra)
        stats.sort_stats("tottime").print_stats(15)
        text = out.getvalue()
        return text[text.index("function calls"):].strip() if "function calls" in text else text

    return {"caller": top(profiles[:1]),
            "threads": top(profiles[1:]) if len(profiles) > 1 else ""}


# ---- main -----------------------------------------------------------------------------------

def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("fastprod_root"):
        sys.path.insert(0, spec["fastprod_root"])
    n = spec["records"]
    values = make_values(max(n, WARMUP_RECORDS), spec["value_size"])
    keys = make_keys(len(values)) if spec["keyed"] else None
    timed_values = values[:n]
    runner = RUNNERS[spec["client"]]
    out = runner(spec, timed_values, None if keys is None else keys[:n],
                 Window(spec.get("broker_pid")))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["max_rss_mb"] = ru.ru_maxrss / 1024
    out["records"] = n
    out["payload_bytes"] = n * spec["value_size"] + (
        sum(len(k) for k in keys[:n]) if keys is not None else 0)
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
