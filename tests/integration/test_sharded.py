"""Integration tests of fastprod's ShardedProducer against a real Apache Kafka broker.

The producer's partitions are sharded over worker processes (workers=2 here: this runs
on 2-core machines) fed through shared-memory rings. What the broker stored is read
back with the Java KafkaConsumer (tests/readers.py), which shares no code with
fastprod; every test makes its own topic(s).

Failure tests: a worker SIGKILLed mid-stream (replaced, nothing acknowledged lost) or
four times (given up: WorkerLostError, nothing hangs), the parent SIGKILLed or Ctrl-C'd
(tests/sharded_child.py: no orphaned worker, no shared memory left in /dev/shm), a
paused broker (ring full: send() blocks max.block.ms, then BufferFullError), a stopped
broker (futures expire after delivery.timeout.ms, flush() returns), a partition leader
SIGKILLed on three brokers (exactly once, in order). The paused/stopped broker tests use
a broker of their own, not the session's.

Runtime: about 2 minutes on an idle 2-core machine (3 under load), plus the broker
start-ups (session broker, this module's broker, the three-node cluster).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from fastprod import BufferFullError, KafkaTimeoutError, ProducerClosedError, RecordTooLargeError
from fastprod.clock import monotonic_ms
from fastprod.engine.accumulator import record_size_upper_bound
from fastprod.errors import WorkerLostError
from fastprod.kernels import partition_for_key
from fastprod.localkafka import LocalKafka, run_tool
from fastprod.producer import Producer
from fastprod.sharded import ShardedProducer

try:
    import readers
    from helpers import Problems, settle
except ImportError:  # tests/ imported as a package
    from tests import readers
    from tests.helpers import Problems, settle

pytestmark = pytest.mark.integration

WORKERS = 2
CHILD = Path(__file__).resolve().parents[1] / "sharded_child.py"
SHM_DIR = Path("/dev/shm")
CREATE_TIME = readers.CREATE_TIME
java_read = readers.java_read
EXPLICIT_TS = 1_600_000_000_000


# ---- helpers ------------------------------------------------------------------------


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def local_only(kafka) -> LocalKafka:
    if not isinstance(kafka, LocalKafka):
        pytest.skip("needs a broker started by fastprod.localkafka")
    return kafka


def create_topic(kafka, name: str, partitions: int = 1, timeout: float = 30.0,
                 config: dict | None = None) -> None:
    """Create a topic and wait until every partition's leader serves it (as in
    test_producer_integration: right after CreateTopics a leader may still refuse)."""
    kafka.create_topic(name, partitions=partitions, config=config)
    settle(kafka.bootstrap_servers, name, partitions, timeout)


def wall_ms() -> int:
    return int(time.time() * 1000)


def shm_segments(prefix: str = "fp-") -> set[str]:
    try:
        return {name for name in os.listdir(SHM_DIR) if name.startswith(prefix)}
    except FileNotFoundError:
        return set()


def pid_alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(predicate, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` held, or None if it did not within ``timeout``."""
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(interval)


def worker_pids(producer: ShardedProducer) -> list[int]:
    return [w.process.pid for w in producer._workers]


def producer_shm(producer: ShardedProducer) -> set[str]:
    names = set()
    for w in producer._workers:
        names |= {w.records_shm.name, w.reports_shm.name}
    return names


@dataclass
class Expect:
    """One record handed to the producer, in call order, and where its future says it is."""

    key: bytes | None
    value: bytes | None
    headers: tuple
    timestamp: int | None  # explicit, or None (the producer's wall clock)
    partition: int | None = None  # explicit
    md: object = None  # RecordMetadata, filled from the future


def _b(x):
    return x.encode("utf-8") if isinstance(x, str) else x


def check_exactly_once(label: str, expected: list[Expect], records: list, partitions: int,
                       t0: int, t1: int, *, keyed_partitioning: bool = True) -> None:
    """Every expected record is in ``records`` exactly once, at the (partition, offset) its
    future gave, with its key, value, headers and timestamp; offsets grow in call order
    within a partition; keyed records sit on Java's murmur2 partition; nothing else was
    read."""
    bad = Problems(label)
    if len(records) != len(expected):
        bad.add(f"the reader returned {len(records)} records, {len(expected)} were sent")
    by_pos = {}
    for r in records:
        if (r.partition, r.offset) in by_pos:
            bad.add(f"offset {r.partition}/{r.offset} read twice")
        by_pos[(r.partition, r.offset)] = r
    last: dict[int, int] = defaultdict(lambda: -1)
    for i, e in enumerate(expected):
        md = e.md
        r = by_pos.pop((md.partition, md.offset), None)
        if r is None:
            bad.add(f"#{i}: future says {md.partition}/{md.offset}, the reader has no such "
                    f"record (value {e.value!r:.40})")
            continue
        if md.offset <= last[md.partition]:
            bad.add(f"#{i}: offset {md.offset} on partition {md.partition} is not after "
                    f"{last[md.partition]} (call order broken)")
        last[md.partition] = md.offset
        if (r.key, r.value, r.headers) != (e.key, e.value, e.headers):
            bad.add(f"#{i} at {md.partition}/{md.offset}: read key={r.key!r:.40} "
                    f"value={r.value!r:.40} headers={r.headers!r:.80}, sent key={e.key!r:.40} "
                    f"value={e.value!r:.40} headers={e.headers!r:.80}")
        if r.timestamp_type != CREATE_TIME:
            bad.add(f"#{i}: timestamp type {r.timestamp_type}")
        if e.timestamp is not None:
            if r.timestamp != e.timestamp or md.timestamp != e.timestamp:
                bad.add(f"#{i}: explicit timestamp {e.timestamp}, read {r.timestamp}, future "
                        f"says {md.timestamp}")
        elif r.timestamp != md.timestamp or not t0 <= r.timestamp <= t1:
            bad.add(f"#{i}: default timestamp read {r.timestamp}, future says {md.timestamp}, "
                    f"sent between {t0} and {t1}")
        if e.partition is not None:
            if md.partition != e.partition:
                bad.add(f"#{i}: sent to partition {e.partition}, written to {md.partition}")
        elif keyed_partitioning and e.key is not None and \
                md.partition != partition_for_key(e.key, partitions):
            bad.add(f"#{i}: key {e.key!r} on partition {md.partition}, Java's murmur2 says "
                    f"{partition_for_key(e.key, partitions)}")
        sizes = (-1 if e.key is None else len(e.key), -1 if e.value is None else len(e.value))
        if (md.serialized_key_size, md.serialized_value_size) != sizes:
            bad.add(f"#{i}: metadata sizes {md.serialized_key_size}/"
                    f"{md.serialized_value_size}, expected {sizes}")
    for pos in list(by_pos)[:3]:
        bad.add(f"record at {pos[0]}/{pos[1]} was read but no future points at it")
    bad.check()


class Workload:
    """send() and send_batch() calls interleaved on one producer, with what each should
    write, in call order, and every on_delivery call."""

    def __init__(self, producer: ShardedProducer, topic: str, seed: int = 1) -> None:
        self.p = producer
        self.topic = topic
        self.rnd = random.Random(seed)
        self.expected: list[Expect] = []
        self.record_futures: list[tuple[int, object]] = []  # (index in expected, future)
        self.batches: list[tuple[int, object, int]] = []  # (first index, BatchFuture, n)
        self.send_calls: dict[int, list] = defaultdict(list)  # expected index -> calls
        self.batch_calls: dict[int, list] = defaultdict(list)  # batch number -> calls
        self.n = 0

    def send(self, count: int) -> None:
        rnd = self.rnd
        for _ in range(count):
            i = self.n
            self.n += 1
            if i % 3 == 0:
                key = None
            elif i % 3 == 1:
                key = f"cl\u00e9-{rnd.randrange(500)}"  # str: UTF-8 by the default serializer
            else:
                key = b"key-%d" % rnd.randrange(5000)
            if i % 97 == 0:
                value = None  # a tombstone
            else:
                value = b"send-%d-" % i + rnd.randbytes(rnd.randrange(0, 120))
            kwargs = {}
            headers: tuple = ()
            if i % 4 == 1:
                kwargs["headers"] = [("h", b"%d" % i), ("null", None), ("empty", b"")]
                headers = (("h", b"%d" % i), ("null", None), ("empty", b""))
            elif i % 4 == 3:
                kwargs["headers"] = {"d\u00e9": "text \u00e9"}
                headers = (("d\u00e9", "text \u00e9".encode()),)
            ts = None
            if i % 5 == 0:
                ts = kwargs["timestamp"] = EXPLICIT_TS + i
            index = len(self.expected)
            self.expected.append(Expect(_b(key), value, headers, ts))

            def cb(md, err, index=index):
                self.send_calls[index].append((md, err, threading.current_thread().name))

            fut = self.p.send(self.topic, value, key=key, on_delivery=cb, **kwargs)
            self.record_futures.append((index, fut))

    def send_batch(self, count: int, *, keyed: bool, partition: int | None = None,
                   timestamp: int | None = None) -> None:
        rnd = self.rnd
        values, keys = [], []
        for _ in range(count):
            i = self.n
            self.n += 1
            values.append(b"batch-%d-" % i + rnd.randbytes(rnd.randrange(0, 60)))
            # (no None keys here: see test_send_batch_null_keys_among_keys_keep_input_order)
            keys.append(b"bk-%d" % rnd.randrange(5000))
        if not keyed:
            keys = None
        first = len(self.expected)
        for j, v in enumerate(values):
            self.expected.append(Expect(None if keys is None else keys[j], v, (), timestamp,
                                        partition))
        number = len(self.batches)

        def cb(md, err):
            self.batch_calls[number].append((md, err, threading.current_thread().name))

        fut = self.p.send_batch(self.topic, values, keys=keys, partition=partition,
                                timestamp=timestamp, on_delivery=cb)
        self.batches.append((first, fut, count))

    def collect(self, timeout: float = 60) -> None:
        """Fill in every Expect.md from the futures (raises on any failed record)."""
        for index, fut in self.record_futures:
            self.expected[index].md = fut.result(timeout=timeout)
        for first, fut, n in self.batches:
            mds = fut.result(timeout=timeout)
            assert len(mds) == n
            for j, md in enumerate(mds):
                self.expected[first + j].md = md

    def check_callbacks(self) -> None:
        """on_delivery: once per record, no error, the future's metadata, on the parent's
        fastprod-reports thread."""
        bad = Problems("on_delivery")
        for index, _ in self.record_futures:
            calls = self.send_calls.get(index, [])
            if len(calls) != 1:
                bad.add(f"send() record #{index}: on_delivery called {len(calls)} times")
                continue
            md, err, thread = calls[0]
            if err is not None or md != self.expected[index].md:
                bad.add(f"send() record #{index}: on_delivery({md}, {err!r}), future says "
                        f"{self.expected[index].md}")
            if not thread.startswith("fastprod-reports"):
                bad.add(f"send() record #{index}: on_delivery on thread {thread}")
        for number, (first, _, n) in enumerate(self.batches):
            calls = self.batch_calls.get(number, [])
            got = sorted((md.partition, md.offset) for md, err, _ in calls if err is None)
            want = sorted((e.md.partition, e.md.offset) for e in self.expected[first:first + n])
            if len(calls) != n or got != want:
                bad.add(f"send_batch #{number}: {len(calls)} on_delivery calls for {n} "
                        f"records ({sum(1 for c in calls if c[1] is not None)} with errors), "
                        f"{'same' if got == want else 'different'} positions than result()")
        bad.check()


def alter_partitions(bootstrap: str, topic: str, partitions: int) -> None:
    proc = run_tool("org.apache.kafka.tools.TopicCommand",
                    ["--bootstrap-server", bootstrap, "--alter", "--topic", topic,
                     "--partitions", str(partitions)])
    assert proc.returncode == 0, proc.stdout


class Child:
    """tests/sharded_child.py in its own session, stdout lines collected by a thread."""

    def __init__(self, mode: str, bootstrap: str, topic: str, tmp_path: Path) -> None:
        self.stderr_path = tmp_path / f"child-{mode}.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), mode, bootstrap, topic], stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.sent = 0
        self.result: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<EOF>")

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def expect(self, prefix: str, timeout: float = 60.0) -> str:
        """The next line starting with ``prefix`` (SENT lines update ``self.sent``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line from the child in {timeout} s; "
                                     f"stderr:\n{self.stderr()[-3000:]}") from None
            if line == "<EOF>":
                raise AssertionError(f"the child exited ({self.proc.wait()}) before "
                                     f"{prefix!r}; stderr:\n{self.stderr()[-3000:]}")
            if line.startswith("SENT ") and line.split()[1].isdigit():
                self.sent = int(line.split()[1])
            if line.startswith("RESULT "):
                self.result = line
            if line.startswith(prefix):
                return line

    def wait_sent(self, n: int, timeout: float = 60.0) -> None:
        while self.sent < n:
            self.expect("SENT ", timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._stderr.close()


def parse_ready(line: str) -> tuple[int, list[int], int | None, list[str]]:
    """READY <parent> <workers...> TRACKER <pid> SHM <names...>"""
    words = line.split()
    t = words.index("TRACKER")
    s = words.index("SHM")
    tracker = None if words[t + 1] == "None" else int(words[t + 1])
    return int(words[1]), [int(w) for w in words[2:t]], tracker, words[s + 1:]


# ---- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_kafka_module():
    """A one-node broker of this module's own, for tests that pause or kill it."""
    with LocalKafka(nodes=1) as k:
        yield k


@pytest.fixture
def own_kafka(own_kafka_module):
    """The module's broker, running and not paused (an earlier test may have stopped it)."""
    k = own_kafka_module
    if not k.healthy:
        k.ensure_running()
    return k


# ---- 1. order, exactly once, Java reader ------------------------------------------------


def test_order_and_exactly_once_read_by_java(kafka):
    """send() (keyed, unkeyed, tombstones, headers, explicit timestamps) interleaved with
    send_batch() (keyed, unkeyed, explicit partition and timestamp)
    on 6 partitions and 2 workers: the Java consumer reads every record exactly once,
    where its future says, in call order per partition; keyed records on Java's
    partition; BatchFuture.result() in input order; on_delivery once per record."""
    topic = unique_topic("sh-order")
    partitions = 6
    create_topic(kafka, topic, partitions)
    t0 = wall_ms()
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        assert len(p._workers) == WORKERS
        w = Workload(p, topic)
        for chunk in range(4):
            w.send(600)
            w.send_batch(1500, keyed=True)
            w.send(200)
            w.send_batch(1500, keyed=False)
            w.send_batch(300, keyed=True, partition=chunk % partitions,
                         timestamp=EXPLICIT_TS + chunk)
        p.flush(timeout=60)
        t1 = wall_ms()
        w.collect(timeout=0)
        # both workers got records (6 partitions over 2 workers)
        assert all(h.shard.next_id > 0 for h in p._workers), [h.shard.next_id for h in p._workers]
    records = java_read(kafka.bootstrap_servers, topic, len(w.expected))
    check_exactly_once("sharded/java", w.expected, records, partitions, t0, t1)
    w.check_callbacks()
    # Unkeyed records are spread by the sticky partitioner, not all on one partition.
    unkeyed = Counter(e.md.partition for e in w.expected if e.key is None)
    assert len(unkeyed) >= 3, unkeyed


@pytest.mark.parametrize("client", ["sharded", "producer"])
def test_send_batch_null_keys_among_keys_keep_input_order(kafka, client):
    """send_batch(values, keys) with some None keys: per partition, the records are
    written in input order, as the same records sent by send() one by one would be
    (ShardedProducer and Producer alike)."""
    topic = unique_topic("sh-nullkeys")
    create_topic(kafka, topic, 2)
    keys = [None if i % 3 == 1 else b"k%d" % i for i in range(60)]
    values = [b"v%d" % i for i in range(60)]
    config = {"bootstrap.servers": kafka.bootstrap_servers}
    with (ShardedProducer(config, workers=WORKERS) if client == "sharded"
          else Producer(config)) as p:
        mds = p.send_batch(topic, values, keys=keys).result(timeout=30)
    assert [md.partition for i, md in enumerate(mds) if keys[i] is not None] == \
        [partition_for_key(k, 2) for k in keys if k is not None]
    last: dict[int, int] = defaultdict(lambda: -1)
    broken = []
    for i, md in enumerate(mds):
        if md.offset <= last[md.partition]:
            broken.append((i, keys[i], md.partition, md.offset, last[md.partition]))
        last[md.partition] = md.offset
    assert not broken, f"written before records that precede them: {broken[:5]}"


# ---- 2. every codec ------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codec_round_trip(kafka, codec):
    topic = unique_topic(f"sh-codec-{codec}")
    partitions = 3
    create_topic(kafka, topic, partitions)
    t0 = wall_ms()
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers,
                          "compression.type": codec}, workers=WORKERS) as p:
        w = Workload(p, topic, seed=hash(codec) & 0xFFFF)
        w.send(700)
        w.send_batch(1500, keyed=True)
        w.send_batch(800, keyed=False)
        p.flush(timeout=60)
        t1 = wall_ms()
        w.collect(timeout=0)
    records = java_read(kafka.bootstrap_servers, topic, len(w.expected))
    check_exactly_once(f"{codec}/java", w.expected, records, partitions, t0, t1)
    w.check_callbacks()
    if isinstance(kafka, LocalKafka):  # the workers really compressed with this codec
        batches = readers.dump_batches(kafka.nodes[0].spec.data_dir, topic, 0)
        assert batches and {b.codec for b in batches} == {codec}, batches[:3]


# ---- 3. flush, close, context manager, partitions_for -----------------------------------------


def test_flush_waits_for_everything_sent_before(kafka):
    topic = unique_topic("sh-flush")
    create_topic(kafka, topic, 3)
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 30000,
                         "batch.size": 1 << 20}, workers=WORKERS)
    try:
        p.partitions_for(topic)
        futures = [p.send(topic, b"f%d" % i, key=b"k%d" % i) for i in range(300)]
        bf = p.send_batch(topic, [b"b%d" % i for i in range(1000)],
                          keys=[b"bk%d" % i for i in range(1000)])
        time.sleep(0.5)
        assert not any(f.done() for f in futures) and not bf.done()  # lingering
        t = time.monotonic()
        p.flush(timeout=20)
        elapsed = time.monotonic() - t
        assert elapsed < 10, f"flush() took {elapsed:.1f} s: it waited for linger.ms"
        assert all(f.done() for f in futures) and bf.done()
        mds = [f.result(0) for f in futures] + bf.result(0)
        # sent after the flush: close() delivers them (without waiting for linger.ms)
        later = [p.send(topic, b"late%d" % i) for i in range(50)]
        t = time.monotonic()
        pids = worker_pids(p)
        shm = producer_shm(p)
        assert shm <= shm_segments()
        p.close()
        elapsed = time.monotonic() - t
        assert elapsed < 10, f"close() took {elapsed:.1f} s"
        mds += [f.result(0) for f in later]
        assert not any(pid_alive(pid) for pid in pids), "workers still running after close()"
        assert not shm & shm_segments(), "shared memory left after close()"
        p.close()
        p.close(timeout=0)
        with pytest.raises(ProducerClosedError):
            p.send(topic, b"after close")
        with pytest.raises(ProducerClosedError):
            p.send_batch(topic, [b"after close"])
        assert "closed" in repr(p)
    finally:
        p.close(timeout=5)
    records = java_read(kafka.bootstrap_servers, topic, len(mds))
    assert sorted((r.partition, r.offset) for r in records) == \
        sorted((md.partition, md.offset) for md in mds)


def test_context_manager(kafka):
    topic = unique_topic("sh-ctx")
    create_topic(kafka, topic, 2)
    with ShardedProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5000,
                         workers=WORKERS) as p:
        futures = [p.send(topic, b"v%d" % i, key=b"k%d" % i) for i in range(50)]
        pids = worker_pids(p)
        shm = producer_shm(p)
    assert all(f.done() for f in futures)
    assert [f.result(0).partition for f in futures] == \
        [partition_for_key(b"k%d" % i, 2) for i in range(50)]
    assert "closed" in repr(p)
    assert not any(pid_alive(pid) for pid in pids)
    assert not shm & shm_segments()
    with pytest.raises(ProducerClosedError):
        p.send(topic, b"late")
    records = java_read(kafka.bootstrap_servers, topic, 50)
    assert sorted(r.value for r in records) == sorted(b"v%d" % i for i in range(50))


def test_close_with_zero_timeout(kafka):
    """close(timeout=0) with records lingering: returns promptly and every future is
    done, delivered or failed with ProducerClosedError (as Producer.close(0))."""
    topic = unique_topic("sh-closenow")
    create_topic(kafka, topic, 1)
    calls = []
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 20000},
                        workers=WORKERS)
    p.partitions_for(topic)
    futures = [p.send(topic, b"v%d" % i, on_delivery=lambda md, err: calls.append(err))
               for i in range(100)]
    t = time.monotonic()
    p.close(timeout=0)
    elapsed = time.monotonic() - t
    assert elapsed < 8
    assert all(f.done() for f in futures)
    errors = Counter(type(f.exception(0)).__name__ for f in futures)
    print(f"\nclose(timeout=0) took {elapsed:.2f} s: {dict(errors)}")
    assert set(errors) <= {"NoneType", "ProducerClosedError"}, errors
    assert len(calls) == 100


def test_records_that_reach_a_worker_before_its_snapshot_go_once_it_arrives(kafka):
    """The parent sends metadata snapshots and records down different channels: a
    worker can get a record for a topic whose leader it does not know yet. Its sender
    waits for the snapshot, and the snapshot's arrival wakes it (here snapshots reach the
    workers 0.5 s late; the sender would otherwise sleep until delivery.timeout.ms)."""
    topic = unique_topic("sh-late-snapshot")
    create_topic(kafka, topic, 1)
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        broadcast = p._broadcast_snapshot

        def late(snapshot):
            threading.Timer(0.5, broadcast, args=(snapshot,)).start()

        p._metadata.listeners[p._metadata.listeners.index(broadcast)] = late
        t = time.monotonic()
        md = p.send(topic, b"first").result(timeout=20)
        took = time.monotonic() - t
    assert (md.topic, md.offset) == (topic, 0)
    assert took < 5, f"delivered after {took:.1f} s"


def test_partitions_for(kafka):
    kafka = local_only(kafka)
    topic = unique_topic("sh-parts")
    create_topic(kafka, topic, 4)
    node_id = kafka.nodes[0].node_id
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        infos = p.partitions_for(topic)
        assert sorted(i.partition for i in infos) == [0, 1, 2, 3]
        assert all(i.topic == topic and i.leader == node_id for i in infos)
        assert all(tuple(i.replicas) == (node_id,) for i in infos)
        auto = unique_topic("sh-auto")  # the test broker auto-creates (1 partition)
        infos = p.partitions_for(auto)
        assert [i.partition for i in infos] == [0]
        md = p.send(auto, b"into the auto-created topic").result(timeout=30)
    assert (md.topic, md.partition, md.offset) == (auto, 0, 0)


def test_send_from_many_threads(kafka):
    """send() is thread-safe: four threads at once, every record exactly once, each
    thread's records in its send order within a partition."""
    topic = unique_topic("sh-threads")
    partitions = 4
    create_topic(kafka, topic, partitions)
    per_thread = 5000
    results: dict[int, list] = {}
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        p.partitions_for(topic)
        barrier = threading.Barrier(4)

        def work(t: int) -> None:
            barrier.wait()
            results[t] = [p.send(topic, b"t%d-%d" % (t, i), key=b"key-%d" % (i % 300))
                          for i in range(per_thread)]

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        p.flush(timeout=60)
    records = java_read(kafka.bootstrap_servers, topic, 4 * per_thread)
    by_pos = {(r.partition, r.offset): r for r in records}
    assert len(records) == len(by_pos) == 4 * per_thread
    for t, futures in results.items():
        last: dict[int, int] = defaultdict(lambda: -1)
        for i, f in enumerate(futures):
            md = f.result(timeout=0)
            r = by_pos.pop((md.partition, md.offset))
            assert (r.key, r.value) == (b"key-%d" % (i % 300), b"t%d-%d" % (t, i))
            assert md.partition == partition_for_key(r.key, partitions)
            assert md.offset > last[md.partition]
            last[md.partition] = md.offset
    assert not by_pos


def test_flush_and_close_from_a_delivery_callback(kafka):
    """As Producer (and Java): flush() inside an on_delivery callback raises at once
    (it would wait for the thread it runs on), and close() inside one does not wait for
    that thread; neither may stall the other records' deliveries."""
    topic = unique_topic("sh-cbclose")
    create_topic(kafka, topic, 2)
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers}, workers=WORKERS)
    outcomes: dict[str, tuple[str, float]] = {}
    done = {"flush": threading.Event(), "close": threading.Event()}

    def calling(what):
        def callback(md, err):
            t = time.monotonic()
            try:
                getattr(p, what)(timeout=3)  # a timeout: a deadlock here heals itself
                outcome = "returned"
            except BaseException as e:  # noqa: BLE001 - reported below
                outcome = repr(e)
            outcomes[what] = (outcome, round(time.monotonic() - t, 2))
            done[what].set()
        return callback

    shm = producer_shm(p)
    try:
        p.partitions_for(topic)
        p.send(topic, b"flush from here", on_delivery=calling("flush"))
        assert done["flush"].wait(15)
        others = [p.send(topic, b"other %d" % i) for i in range(20)]
        assert all(f.exception(timeout=15) is None for f in others)
        p.send(topic, b"close from here", on_delivery=calling("close"))
        assert done["close"].wait(15)
        print(f"\nfrom a callback (outcome, seconds): {outcomes}")
        assert outcomes["flush"][0].startswith("RuntimeError") and outcomes["flush"][1] < 1, \
            outcomes
        assert outcomes["close"][0] == "returned" and outcomes["close"][1] < 1, outcomes
        assert wait_until(lambda: not shm & shm_segments(), 10) is not None, \
            f"shared memory left: {sorted(shm & shm_segments())}"
    finally:
        p.close(timeout=5)
        if shm & shm_segments():  # close() went wrong half-way: finish its work
            p._teardown()


# ---- 4. backpressure: a paused broker fills the ring ------------------------------------


def test_full_ring_blocks_for_max_block_ms_then_buffer_full(own_kafka):
    """The broker is paused (SIGSTOP): nothing is acknowledged, so the ring fills (its
    space is freed only on acknowledgement); send() then blocks max.block.ms and raises
    BufferFullError. After SIGCONT everything that was accepted is written."""
    k = own_kafka
    node = k.nodes[0].node_id
    topic = unique_topic("sh-full")
    create_topic(k, topic, 1)
    p = ShardedProducer({"bootstrap.servers": k.bootstrap_servers,
                         "buffer.memory": 1 << 20, "max.block.ms": 2000, "linger.ms": 0,
                         "request.timeout.ms": 60000, "delivery.timeout.ms": 120000},
                        workers=WORKERS)
    futures = []
    try:
        assert p.send(topic, b"warm-up").result(timeout=30).offset == 0
        value = b"x" * 1000
        k.kill(node, signal.SIGSTOP)
        try:
            t_start = time.monotonic()
            while True:
                t = time.monotonic()
                try:
                    futures.append(p.send(topic, value + b"%d" % len(futures)))
                except BufferFullError as e:
                    blocked = time.monotonic() - t
                    error = e
                    break
                assert time.monotonic() - t_start < 60, \
                    f"{len(futures)} records of 1 KB sent and the ring is still not full"
            print(f"\nring full after {len(futures)} records of 1 KB; send() blocked "
                  f"{blocked:.2f} s, then {error!r}")
            assert 1.9 <= blocked < 5.0, f"send() blocked {blocked:.2f} s, max.block.ms=2000"
            assert "max.block.ms" in str(error), str(error)
            # ~1 MiB ring of ~1 KB records (plus up to a few hundred staged in the parent)
            assert 500 <= len(futures) <= 2000, len(futures)
            assert not any(f.done() for f in futures)
            t = time.monotonic()
            with pytest.raises(BufferFullError):
                p.send_batch(topic, [value] * 10)
            assert 1.9 <= time.monotonic() - t < 5.0
        finally:
            k.kill(node, signal.SIGCONT)
        p.flush(timeout=60)
        after = p.send(topic, b"after the pause")
        mds = [f.result(timeout=0) for f in futures] + [after.result(timeout=30)]
    finally:
        p.close(timeout=30)
    offsets = [md.offset for md in mds]
    assert offsets == list(range(1, len(futures) + 2))  # in order, after the warm-up
    records = readers.by_partition_offset(java_read(k.bootstrap_servers, topic, len(mds) + 1))
    assert [r.value for r in records] == [b"warm-up"] + \
        [value + b"%d" % i for i in range(len(futures))] + [b"after the pause"]


def test_time_in_the_ring_counts_towards_delivery_timeout(kafka):
    """A worker that does not read its ring (SIGSTOP) for longer than delivery.timeout.ms:
    its records expire as they would in Producer's accumulator (KafkaTimeoutError, not
    written), for send() and send_batch() records alike; later records go through."""
    topic = unique_topic("sh-ring-expiry")
    create_topic(kafka, topic, 1)
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0,
                          "request.timeout.ms": 1000, "delivery.timeout.ms": 1500},
                         workers=1) as p:
        assert p.send(topic, b"warm-up").result(timeout=30).offset == 0
        pid = p._workers[0].process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            late = [p.send(topic, b"late-%d" % i) for i in range(20)]
            late_batch = p.send_batch(topic, [b"late-batch-%d" % i for i in range(20)])
            time.sleep(2.5)
        finally:
            os.kill(pid, signal.SIGCONT)
        errors = [f.exception(timeout=30) for f in late]
        batch_errors = [e for _, e in late_batch.errors(timeout=30)]
        assert len(batch_errors) == 20
        after = p.send(topic, b"after").result(timeout=30)
    assert all(isinstance(e, KafkaTimeoutError) for e in errors + batch_errors), \
        {type(e).__name__ for e in errors + batch_errors}
    assert "delivery.timeout.ms=1500" in str(errors[0]), str(errors[0])
    assert after.offset == 1
    records = java_read(kafka.bootstrap_servers, topic, 2)
    assert [r.value for r in records] == [b"warm-up", b"after"]


def test_send_batch_cut_short_by_a_full_ring(own_kafka):
    """A send_batch() larger than the room left in the ring of a paused broker: the ring
    takes part of it, then send_batch blocks max.block.ms and raises BufferFullError.
    The records the ring took are written once the broker is back. on_delivery must be
    called once per record: delivered for exactly those on the broker, BufferFullError
    for the others."""
    k = own_kafka
    node = k.nodes[0].node_id
    topic = unique_topic("sh-cut")
    create_topic(k, topic, 1)
    calls: list = []
    values = [b"y" * 1000 + b"%d" % i for i in range(2000)]  # ~2 MB for a 1 MiB ring
    p = ShardedProducer({"bootstrap.servers": k.bootstrap_servers,
                         "buffer.memory": 1 << 20, "max.block.ms": 2000, "linger.ms": 0,
                         "request.timeout.ms": 60000}, workers=WORKERS)
    try:
        p.send(topic, b"warm-up").result(timeout=30)
        k.kill(node, signal.SIGSTOP)
        try:
            with pytest.raises(BufferFullError):
                p.send_batch(topic, values, on_delivery=lambda md, err: calls.append((md, err)))
        finally:
            k.kill(node, signal.SIGCONT)
        p.flush(timeout=60)
        wait_until(lambda: len(calls) >= len(values), 10)
    finally:
        p.close(timeout=30)
    records = java_read(k.bootstrap_servers, topic, 2, idle_timeout=5)
    written = [r for r in records if r.value != b"warm-up"]
    delivered = [md for md, err in calls if err is None]
    errors = Counter(type(err).__name__ for _, err in calls if err is not None)
    print(f"\ncut short: {len(written)} of {len(values)} written, {len(calls)} on_delivery "
          f"calls: {len(delivered)} delivered, errors {dict(errors)}")
    assert 0 < len(written) < len(values)
    assert len(calls) == len(values), \
        f"on_delivery called {len(calls)} times for {len(values)} records"
    assert sorted((md.partition, md.offset) for md in delivered) == \
        sorted((r.partition, r.offset) for r in written)
    assert set(errors) == {"BufferFullError"}


# ---- 5. records too large for the ring, records near max.request.size ---------------------


def test_record_larger_than_the_ring(kafka):
    """buffer.memory=1 MiB gives 1 MiB rings; max.request.size=4 MiB would allow more:
    a record larger than the ring fails with RecordTooLargeError (on the future and
    on_delivery, not raised); send_batch with such a record raises with nothing sent.
    Records that nearly fill the ring go through, one after another."""
    topic = unique_topic("sh-ringlarge")
    create_topic(kafka, topic, 1)
    calls = []
    rnd = random.Random(5)
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers,
                          "buffer.memory": 1 << 20, "max.request.size": 4 << 20},
                         workers=WORKERS) as p:
        big = b"x" * ((1 << 20) + 1000)
        try:
            fut = p.send(topic, big, on_delivery=lambda md, err: calls.append(err))
        except RecordTooLargeError as e:
            pytest.fail(f"send() raised {e!r}; Producer puts RecordTooLargeError on the future")
        err = fut.exception(timeout=5)
        assert isinstance(err, RecordTooLargeError), repr(err)
        assert "buffer.memory" in str(err), str(err)
        assert len(calls) == 1 and calls[0] is err
        with pytest.raises(RecordTooLargeError):
            p.send_batch(topic, [b"small", big])
        near = [rnd.randbytes(1_000_000) for _ in range(4)]
        futures = [p.send(topic, v) for v in near]
        bf = p.send_batch(topic, near[:2])
        mds = [f.result(timeout=60) for f in futures] + bf.result(timeout=60)
    assert [md.offset for md in mds] == list(range(6))
    records = readers.by_partition_offset(java_read(kafka.bootstrap_servers, topic, 6))
    assert [r.value for r in records] == near + near[:2]


def test_records_at_max_request_size(kafka):
    """A record exactly at max.request.size (Java's upper-bound estimate) goes through;
    one byte more fails with RecordTooLargeError naming max.request.size."""
    topic = unique_topic("sh-maxreq")
    create_topic(kafka, topic, 1)
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        limit = p.config.max_request_size
        n = limit - record_size_upper_bound(None, b"", None)
        fits = random.Random(9).randbytes(n)
        ok = p.send(topic, fits)
        too = p.send(topic, fits + b"!")
        err = too.exception(timeout=5)
        assert isinstance(err, RecordTooLargeError) and "max.request.size" in str(err), err
        md = ok.result(timeout=60)
    assert md.offset == 0
    records = java_read(kafka.bootstrap_servers, topic, 1)
    assert [r.value for r in records] == [fits]


# ---- 6. faults ---------------------------------------------------------------------------


def test_worker_sigkill_mid_stream(kafka):
    """SIGKILL one worker while records stream: the parent replaces it; every record is
    delivered (future succeeded and the record is on the broker where the future says) or
    failed with WorkerLostError; every acknowledged record is on the broker. Records in
    flight at the kill may be written twice (the replacement has a new producer id)."""
    topic = unique_topic("sh-wkill")
    partitions = 6
    create_topic(kafka, topic, partitions)
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers}, workers=WORKERS)
    per_batch, batches = 500, 60
    sent: list[tuple[list[bytes], list[bytes], object]] = []  # (values, keys, future)
    singles: list[tuple[bytes, bytes, object]] = []
    raised: list[BaseException] = []
    progress = threading.Event()

    def stream():
        for b in range(batches):
            values = [b"b%d" % (b * per_batch + j) for j in range(per_batch)]
            keys = [b"k%d" % ((b * per_batch + j) % 997) for j in range(per_batch)]
            try:
                sent.append((values, keys, p.send_batch(topic, values, keys=keys)))
                for j in range(20):
                    v, key = b"s%d-%d" % (b, j), b"k%d" % j
                    singles.append((v, key, p.send(topic, v, key=key)))
            except Exception as e:  # noqa: BLE001 - reported below
                raised.append(e)
            if b == batches // 3:
                progress.set()
            time.sleep(0.01)

    victim = p._workers[0]
    try:
        # Both workers up and delivering first: the kill hits a worker that has read
        # (and had acknowledged) frames, not one still starting.
        for f in [p.send(topic, b"warm-up", partition=i) for i in range(partitions)]:
            f.result(timeout=60)
        ring_at_start = repr(victim.records)
        thread = threading.Thread(target=stream)
        thread.start()
        assert progress.wait(60)
        old_pid = victim.process.pid
        ring_at_kill = repr(victim.records)
        os.kill(old_pid, signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive()
        p.flush(timeout=60)
        replaced = wait_until(lambda: victim.process.pid != old_pid
                              and victim.process.is_alive(), 10)
        state = (victim.generation, victim.lost, victim.process.exitcode)
    finally:
        p.close(timeout=30)

    # What the futures say.
    acked: dict[bytes, tuple[int, int]] = {}
    failed: Counter = Counter()
    failed_values: set[bytes] = set()
    not_done = 0
    for values, keys, fut in sent:
        if not fut.done():
            not_done += len(values)
            continue
        for i, md, err in fut._each():  # per-record outcome of a partly failed batch
            if err is None:
                acked[values[i]] = (md.partition, md.offset)
                assert md.partition == partition_for_key(keys[i], partitions)
            else:
                failed[type(err).__name__] += 1
                failed_values.add(values[i])
    for v, key, fut in singles:
        if not fut.done():
            not_done += 1
            continue
        err = fut.exception(0)
        if err is None:
            md = fut.result(0)
            acked[v] = (md.partition, md.offset)
        else:
            failed[type(err).__name__] += 1
            failed_values.add(v)
    total = sum(len(v) for v, _, _ in sent) + len(singles)

    records = java_read(kafka.bootstrap_servers, topic, len(acked) + partitions,
                        idle_timeout=5)
    by_pos = {(r.partition, r.offset): r.value for r in records}
    on_broker = Counter(r.value for r in records)
    warm = on_broker.pop(b"warm-up", 0)
    all_values = {v for values, _, _ in sent for v in values} | {v for v, _, _ in singles}
    lost = [v for v, pos in acked.items() if by_pos.get(pos) != v]
    duplicates = sum(c - 1 for c in on_broker.values() if c > 1)
    unacked_written = len(failed_values & set(on_broker))
    print(f"\nworker kill: {total} records, {len(acked)} acknowledged, failed {dict(failed)}, "
          f"{not_done} not done, send raised {[repr(e) for e in raised[:2]]} "
          f"({len(raised)} calls); on the broker {len(records)} records, {duplicates} "
          f"duplicate(s), {unacked_written} failed record(s) written anyway; replacement "
          f"after {replaced} s, worker state (generation, lost, exit) {state}; victim's ring "
          f"after the warm-up {ring_at_start}, at the kill {ring_at_kill}")

    problems = Problems("worker SIGKILL")
    if warm < partitions:
        problems.add(f"{warm} warm-up records on the broker, {partitions} were delivered")
    if lost:
        problems.add(f"{len(lost)} acknowledged record(s) not where the future says, e.g. "
                     f"{lost[:3]}")
    if set(on_broker) - all_values:
        problems.add(f"records on the broker that were never sent: "
                     f"{list(set(on_broker) - all_values)[:3]}")
    if not_done:
        problems.add(f"{not_done} future(s) not done after flush()")
    if set(failed) - {"WorkerLostError"}:
        problems.add(f"records failed with other errors than WorkerLostError: {dict(failed)}")
    if raised:
        problems.add(f"send()/send_batch() raised {len(raised)} time(s): {raised[0]!r}")
    if replaced is None or state[1] is not None:
        problems.add(f"the worker was not replaced by a healthy one: generation {state[0]}, "
                     f"lost {state[1]!r}, exit code {state[2]}")
    if len(acked) < total * 0.9:
        problems.add(f"only {len(acked)} of {total} records delivered: the replacement "
                     f"should carry on (failed: {dict(failed)})")
    # per-partition order of what was acknowledged, in send order
    last: dict[int, int] = defaultdict(lambda: -1)
    order = [v for values, _, _ in sent for v in values]
    for v in order:
        pos = acked.get(v)
        if pos is not None:
            if pos[1] <= last[pos[0]]:
                problems.add(f"{v!r}: offset {pos[1]} on partition {pos[0]} is not after "
                             f"{last[pos[0]]}")
            last[pos[0]] = pos[1]
    problems.check()


def test_a_worker_that_cannot_be_restarted_is_lost(kafka, monkeypatch):
    """A worker dies and its replacement cannot be started (no process, say): the
    producer gives it up at once, failing what it held with WorkerLostError, instead of
    waiting forever for a worker that is neither running nor lost; flush() returns."""
    topic = unique_topic("sh-norestart")
    create_topic(kafka, topic, 2)
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers}, workers=WORKERS)
    try:
        victim = p._feeder.worker_for(topic, 0)
        assert p.send(topic, b"warm-up", partition=0).result(timeout=60).offset == 0

        def cannot_start(w):
            raise OSError("no more processes")

        monkeypatch.setattr(p._supervisor, "_start", cannot_start)
        os.kill(victim.process.pid, signal.SIGSTOP)  # holds what it is sent
        held = [p.send(topic, b"held-%d" % i, partition=0) for i in range(5)]
        time.sleep(0.3)  # staged, framed, read or not: the worker holds them
        os.kill(victim.process.pid, signal.SIGKILL)
        gone = wait_until(lambda: victim.lost is not None, 10)
        assert gone is not None, "the worker was neither restarted nor given up"
        assert "could not be restarted" in str(victim.lost)
        errors = [f.exception(timeout=10) for f in held]
        assert all(isinstance(e, WorkerLostError) for e in errors), errors
        t = time.monotonic()
        p.flush(timeout=10)
        assert time.monotonic() - t < 10
    finally:
        p.close(timeout=10)


def test_worker_lost_after_too_many_deaths(kafka):
    """A worker killed again and again (4 times within a minute) is given up: the
    producer says so with WorkerLostError on what it held and on what is sent to its
    partitions afterwards (raised or on the future, but never a future that hangs);
    the other worker's partitions carry on; flush() and close() return."""
    topic = unique_topic("sh-wlost")
    create_topic(kafka, topic, 2)
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers}, workers=WORKERS)
    try:
        victim = p._feeder.worker_for(topic, 0)
        assert p._feeder.worker_for(topic, 1) is not victim
        for f in [p.send(topic, b"warm-up", partition=i) for i in range(2)]:
            f.result(timeout=60)
        kills = 0
        while victim.lost is None and kills < 6:
            pid = victim.process.pid
            os.kill(pid, signal.SIGKILL)
            kills += 1
            wait_until(lambda: victim.lost is not None or (
                victim.process.pid != pid and victim.process.is_alive()), 10)
        assert isinstance(victim.lost, WorkerLostError), (kills, victim.lost)

        outcomes = []
        for attempt in ("send", "send_batch"):
            try:
                if attempt == "send":
                    fut = p.send(topic, b"to a lost worker", partition=0)
                else:
                    fut = p.send_batch(topic, [b"to a lost worker"] * 3, partition=0)
            except WorkerLostError:
                outcomes.append(f"{attempt}: raised")
                continue
            try:
                err = fut.exception(timeout=5)
            except KafkaTimeoutError:
                outcomes.append(f"{attempt}: HANGS (future not done after 5 s)")
                continue
            outcomes.append(f"{attempt}: future failed with {err!r}")
        print(f"\nlost after {kills} kills; {outcomes}")
        assert all(o.endswith("raised") or "failed with WorkerLostError" in o
                   for o in outcomes), outcomes
        assert p.send(topic, b"still fine", partition=1).result(timeout=30).offset == 1
        t = time.monotonic()
        p.flush(timeout=10)
        assert time.monotonic() - t < 10
    finally:
        t = time.monotonic()
        p.close(timeout=10)
        assert time.monotonic() - t < 20


def test_parent_sigkill_leaves_no_workers_or_shared_memory(kafka, tmp_path):
    topic = unique_topic("sh-pkill")
    create_topic(kafka, topic, 4)
    child = Child("kill", kafka.bootstrap_servers, topic, tmp_path)
    try:
        parent, workers, tracker, shm = parse_ready(child.expect("READY "))
        assert len(workers) == WORKERS and len(shm) == 2 * WORKERS
        assert set(shm) <= shm_segments(f"fp-{parent}-")
        child.wait_sent(3000)
        os.kill(parent, signal.SIGKILL)
        child.proc.wait(10)
        gone = wait_until(lambda: not any(pid_alive(pid) for pid in workers), 15)
        left = [pid for pid in workers if pid_alive(pid)]
        assert gone is not None and gone < 5.0, \
            f"worker(s) {left} still running {gone or 15} s after the parent was killed"
        unlinked = wait_until(lambda: not shm_segments(f"fp-{parent}-"), 10)
        assert unlinked is not None, \
            f"shared memory left in /dev/shm: {sorted(shm_segments(f'fp-{parent}-'))}"
        if tracker is not None:
            assert wait_until(lambda: not pid_alive(tracker), 10) is not None, \
                "the resource tracker outlived its parent"
        print(f"\nparent kill: workers gone after {gone:.2f} s, shm unlinked after "
              f"{unlinked:.2f} s more")
    finally:
        child.close()
        for pid in workers if "workers" in locals() else ():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["sigint", "sigint-early"])
def test_ctrl_c_flushes_and_exits(kafka, tmp_path, mode):
    """SIGINT to the child's process group (as a terminal's Ctrl-C) while it sends inside
    ``with ShardedProducer(...)``: it flushes, every record whose send() returned is on
    the broker exactly once, and it exits as Python does on KeyboardInterrupt with no
    worker left behind. ``sigint``: once both workers delivered records; ``sigint-early``:
    right after the constructor returned, while the spawned workers still start up (the
    terminal's Ctrl-C reaches them too)."""
    topic = unique_topic("sh-sigint")
    create_topic(kafka, topic, 4)
    child = Child(mode, kafka.bootstrap_servers, topic, tmp_path)
    try:
        parent, workers, tracker, shm = parse_ready(child.expect("READY "))
        child.wait_sent(5000 if mode == "sigint" else 1000)
        os.killpg(child.proc.pid, signal.SIGINT)
        try:
            code = child.proc.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child did not exit within 60 s of Ctrl-C; stderr:\n"
                        f"{child.stderr()[-3000:]}")
        result = child.result or child.expect("RESULT ", 5)
        stderr = child.stderr()
        assert code in (-signal.SIGINT, 130, 1), (code, stderr[-3000:])
        assert "KeyboardInterrupt" in stderr, stderr[-3000:]
        print(f"\n{mode}: exit code {code}, {result}")
        _, n_sent, delivered, failed, kinds = result.split()
        n_sent, delivered, failed = int(n_sent), int(delivered), int(failed)
        assert (delivered, failed, kinds) == (n_sent, 0, "-"), result
        gone = wait_until(lambda: not any(pid_alive(pid) for pid in workers), 5)
        assert gone is not None, "workers still running after the parent exited"
        assert not shm_segments(f"fp-{parent}-")
    finally:
        child.close()
    warm = 4 if mode == "sigint" else 0
    records = java_read(kafka.bootstrap_servers, topic, n_sent + warm)
    values = Counter(r.value for r in records)
    assert values.pop(b"warm-up", 0) == warm
    assert not [v for v, c in values.items() if c > 1], "records written twice"
    want = {b"%d" % i for i in range(n_sent)}
    # a record interrupted inside send() may or may not have been queued
    assert want <= set(values) <= want | {b"%d" % n_sent}, \
        (len(want - set(values)), sorted(set(values) - want)[:3])


def test_a_topic_in_use_is_not_forgotten_after_metadata_max_idle_ms(kafka):
    """send()'s C fast path does not mark the topic used itself; the parent's stager
    does, so a topic that is sent to all the time stays in the metadata past
    metadata.max.idle.ms (and one that is not is forgotten)."""
    topic, idle_topic = unique_topic("sh-busy"), unique_topic("sh-idle")
    for name in (topic, idle_topic):
        create_topic(kafka, name, 2)
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers,
                          "metadata.max.idle.ms": 5000}, workers=WORKERS) as p:
        p.send(idle_topic, b"once").result(timeout=30)
        deadline = time.monotonic() + 7
        futures = []
        while time.monotonic() < deadline:
            futures += [p.send(topic, b"v", key=b"k%d" % i) for i in range(100)]
            time.sleep(0.05)
        assert all(f.result(timeout=30).offset >= 0 for f in futures)
        requested = p._metadata.topics_to_request(monotonic_ms())
    assert topic in requested and idle_topic not in requested, requested


def test_a_batch_over_the_topics_limit_is_split_in_the_worker(kafka):
    """The worker's engine splits a batch the broker refuses as too large (as Producer);
    the parts, written apart, come back to the parent as separate reports: every record
    is delivered once, in order, where its future says, for send() and send_batch()."""
    topic = unique_topic("sh-split")
    create_topic(kafka, topic, 1, config={"max.message.bytes": "2000"})
    values = [b"%04d-" % i + bytes(200) for i in range(60)]
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 200},
                         workers=WORKERS) as p:
        batch = p.send_batch(topic, values[:30])
        singles = [p.send(topic, v) for v in values[30:]]
        offsets = [md.offset for md in batch.result(timeout=30)]
        offsets += [f.result(timeout=30).offset for f in singles]
    assert offsets == list(range(60))
    records = java_read(kafka.bootstrap_servers, topic, 60)
    assert [r.value for r in records] == values


def test_partitions_added_while_running(kafka):
    """Partitions added to a topic are picked up after metadata.max.age.ms: new keyed
    records go to murmur2(key) % the new count, on the new partitions too."""
    topic = unique_topic("sh-grow")
    create_topic(kafka, topic, 2)
    keys = [b"key-%d" % i for i in range(600)]
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers,
                          "metadata.max.age.ms": 1000}, workers=WORKERS) as p:
        before = p.send_batch(topic, [b"before-%d" % i for i in range(600)], keys=keys)
        mds_before = before.result(timeout=30)
        alter_partitions(kafka.bootstrap_servers, topic, 6)
        seen = wait_until(lambda: len(p.partitions_for(topic)) == 6, 15, 0.1)
        assert seen is not None, "the producer did not see the new partitions in 15 s"
        after = p.send_batch(topic, [b"after-%d" % i for i in range(600)], keys=keys)
        singles = [p.send(topic, b"single-%d" % i, key=k) for i, k in enumerate(keys[:100])]
        mds_after = after.result(timeout=30)
        mds_single = [f.result(timeout=30) for f in singles]
    assert [md.partition for md in mds_before] == [partition_for_key(k, 2) for k in keys]
    assert [md.partition for md in mds_after] == [partition_for_key(k, 6) for k in keys]
    assert [md.partition for md in mds_single] == [partition_for_key(k, 6) for k in keys[:100]]
    assert {md.partition for md in mds_after} == set(range(6))
    records = java_read(kafka.bootstrap_servers, topic, 1300)
    by_pos = {(r.partition, r.offset): r.value for r in records}
    assert len(records) == 1300
    for prefix, mds in (("before", mds_before), ("after", mds_after), ("single", mds_single)):
        for i, md in enumerate(mds):
            assert by_pos[(md.partition, md.offset)] == b"%s-%d" % (prefix.encode(), i)


def test_leader_killed_mid_stream_exactly_once_in_order(kafka_cluster3):
    """Three brokers, RF 3, min.insync.replicas=2, acks=all and idempotence (the
    defaults): the leader of partition 0 gets SIGKILL 30% into a stream of send()
    records. The workers ask the parent for fresh metadata (NOT_LEADER_OR_FOLLOWER,
    dropped connections) and carry on: every record is stored exactly once, in send
    order per partition, where its future says."""
    cluster = kafka_cluster3
    topic = unique_topic("sh-failover")
    partitions, n, rate = 6, 60_000, 20_000
    cluster.create_topic(topic, partitions=partitions, replication_factor=3,
                         config={"min.insync.replicas": 2})
    settled = wait_until(
        lambda: all(p.leader >= 0 and len(p.isr) == 3
                    for p in cluster.metadata([topic]).topics[topic].partitions), 30, 0.2)
    assert settled is not None, "no leader or full ISR on every partition in 30 s"
    victim = {p.partition: p.leader
              for p in cluster.metadata([topic]).topics[topic].partitions}[0]
    futures: dict[tuple[int, int], object] = {}
    p = ShardedProducer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all",
                         "linger.ms": 5}, workers=WORKERS)
    try:
        for f in [p.send(topic, b"warm-up", partition=i) for i in range(partitions)]:
            f.result(timeout=60)
        t0 = time.monotonic()
        for i in range(n):
            part, seq = i % partitions, i // partitions
            futures[(part, seq)] = p.send(topic, b"%d:%d:" % (part, seq) + b"x" * 40,
                                          partition=part)
            if i % 1000 == 999:
                ahead = (i + 1) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            if i == int(n * 0.3):
                cluster.kill(victim, signal.SIGKILL)
        p.flush(timeout=120)
    finally:
        p.close(timeout=30)
    errors = Counter(repr(f.exception(0))[:100] for f in futures.values()
                     if f.exception(0) is not None)
    assert not errors, errors.most_common(3)
    records = java_read(cluster.bootstrap_servers, topic, n + partitions, idle_timeout=15)
    bad = Problems("leader killed")
    at = {(r.partition, r.offset): r.value for r in records}
    seqs: dict[int, list[int]] = defaultdict(list)
    for r in readers.by_partition_offset(records):
        if r.value == b"warm-up":
            continue
        part, seq = (int(x) for x in r.value.split(b":")[:2])
        if part != r.partition:
            bad.add(f"{r.value[:20]!r} on partition {r.partition}")
        seqs[r.partition].append(seq)
    for part in range(partitions):
        want = list(range(n // partitions))
        if seqs[part] != want:
            dups = sum(c - 1 for c in Counter(seqs[part]).values() if c > 1)
            bad.add(f"partition {part}: {len(seqs[part])} records, {dups} duplicate(s), "
                    f"{len(set(want) - set(seqs[part]))} missing, in order: "
                    f"{seqs[part] == sorted(seqs[part])}")
    for (part, seq), f in futures.items():
        md = f.result(0)
        if at.get((md.partition, md.offset), b"").split(b":")[:2] != [b"%d" % part,
                                                                      b"%d" % seq]:
            bad.add(f"future of {part}:{seq} says {md.partition}/{md.offset}")
    bad.check()


# ---- 7. many small records, records near max.request.size ---------------------------------


def test_many_small_records(kafka):
    topic = unique_topic("sh-small")
    partitions = 4
    create_topic(kafka, topic, partitions)
    n = 200_000
    values = [b"%010d" % i for i in range(n)]
    keyed_values = [b"K%09d" % i for i in range(50_000)]
    keys = [b"%d" % (i % 10007) for i in range(50_000)]
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        p.partitions_for(topic)
        t = time.monotonic()
        unkeyed = p.send_batch(topic, values)
        keyed = p.send_batch(topic, keyed_values, keys=keys)
        mds = unkeyed.result(timeout=120)
        kmds = keyed.result(timeout=120)
        elapsed = time.monotonic() - t
    print(f"\n{n + len(keyed_values)} small records in {elapsed:.2f} s")
    records = java_read(kafka.bootstrap_servers, topic, n + len(keyed_values))
    assert len(records) == n + len(keyed_values)
    by_pos = {(r.partition, r.offset): r for r in records}
    bad = Problems("small records")
    for v, md in zip(values, mds):
        r = by_pos.get((md.partition, md.offset))
        if r is None or r.value != v or r.key is not None:
            bad.add(f"{v!r}: future {md.partition}/{md.offset}, read {r}")
    for v, k, md in zip(keyed_values, keys, kmds):
        r = by_pos.get((md.partition, md.offset))
        if r is None or (r.key, r.value) != (k, v):
            bad.add(f"{v!r}: future {md.partition}/{md.offset}, read {r}")
        if md.partition != partition_for_key(k, partitions):
            bad.add(f"{k!r} on {md.partition}")
    bad.check()
    assert len({md.partition for md in mds}) >= 2  # sticky partitions rotate


def test_large_records(kafka):
    """900 KB values (near the 1 MiB max.request.size), by send() and send_batch(), on two
    partitions owned by different workers, with lz4."""
    topic = unique_topic("sh-large")
    create_topic(kafka, topic, 2)
    rnd = random.Random(7)
    values = [rnd.randbytes(900_000) if i % 2 else b"z" * 900_000 for i in range(10)]
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers,
                          "compression.type": "lz4"}, workers=WORKERS) as p:
        owners = {p._feeder.worker_for(topic, 0).index, p._feeder.worker_for(topic, 1).index}
        futures = [p.send(topic, v, partition=i % 2) for i, v in enumerate(values[:6])]
        bf = p.send_batch(topic, values[6:8], partition=0)
        bf2 = p.send_batch(topic, values[8:], partition=1)
        mds = [f.result(timeout=60) for f in futures] + bf.result(60) + bf2.result(60)
    assert owners == {0, 1}
    records = java_read(kafka.bootstrap_servers, topic, len(values))
    by_pos = {(r.partition, r.offset): r.value for r in records}
    assert len(records) == len(values)
    for i, md in enumerate(mds):
        assert by_pos[(md.partition, md.offset)] == values[i], i


# ---- 8. a broker that cannot be reached ---------------------------------------------------


def test_broker_down_futures_expire_and_flush_returns(own_kafka):
    """The only broker is killed: records sent after that fail with KafkaTimeoutError once
    delivery.timeout.ms passes, on_delivery says so, flush() and close() return."""
    k = own_kafka
    topic = unique_topic("sh-down")
    create_topic(k, topic, 2)
    p = ShardedProducer({"bootstrap.servers": k.bootstrap_servers, "linger.ms": 0,
                         "delivery.timeout.ms": 4000, "request.timeout.ms": 2000,
                         "max.block.ms": 2000}, workers=WORKERS)
    calls = []
    try:
        warm = p.send_batch(topic, [b"w%d" % i for i in range(100)],
                            keys=[b"k%d" % i for i in range(100)])
        assert len(warm.result(timeout=30)) == 100
        k.kill(k.nodes[0].node_id)  # SIGKILL
        t0 = time.monotonic()
        futures = [p.send(topic, b"v%d" % i, key=b"k%d" % i,
                          on_delivery=lambda md, err: calls.append(err)) for i in range(50)]
        bf = p.send_batch(topic, [b"b%d" % i for i in range(100)],
                          keys=[b"k%d" % i for i in range(100)])
        flusher = threading.Thread(target=p.flush)
        flusher.start()
        flusher.join(30)
        elapsed = time.monotonic() - t0
        assert not flusher.is_alive(), "flush() still waiting 30 s after the broker died"
        assert elapsed < 4 + 6, f"flush() returned after {elapsed:.1f} s, " \
                                f"delivery.timeout.ms=4000"
        errors = [f.exception(0) for f in futures]
        assert all(isinstance(e, KafkaTimeoutError) for e in errors), \
            Counter(repr(e)[:80] for e in errors)
        assert len(calls) == 50 and all(isinstance(e, KafkaTimeoutError) for e in calls)
        batch_errors = bf.errors(0)
        assert len(batch_errors) == 100 and \
            all(isinstance(e, KafkaTimeoutError) for _, e in batch_errors), batch_errors[:2]
        print(f"\nbroker down: flush returned after {elapsed:.1f} s; error: {errors[0]}")
    finally:
        t = time.monotonic()
        p.close(timeout=10)
        assert time.monotonic() - t < 20


def test_workers_answer_questions_by_request_id(kafka):
    """The control channel is request/answer: many threads asking at once each get the
    answer to their own question; status names the process that answers; an unknown
    question fails with the known ones; a worker that dies before answering fails the
    question with WorkerLostError (not a timeout), and its replacement answers next."""
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                         workers=WORKERS) as p:
        answers: dict[int, object] = {}
        failures: list[BaseException] = []

        def ask(i: int) -> None:
            try:
                answers[i] = p._workers[i % WORKERS].ask("ping", [i, "x" * i], timeout=20)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not failures, failures
        assert answers == {i: [i, "x" * i] for i in range(40)}

        for w in p._workers:
            status = w.ask("status")
            assert (status["pid"], status["generation"]) == (w.process.pid, 0)
        with pytest.raises(Exception, match="unknown question 'nope'.*ping, status"):
            p._workers[0].ask("nope")

        victim = p._workers[0]
        first_pid = victim.process.pid
        os.kill(first_pid, signal.SIGSTOP)  # cannot answer
        box: list[BaseException] = []
        asker = threading.Thread(target=lambda: box.append(
            pytest.raises(WorkerLostError, victim.ask, "status", timeout=30).value))
        asker.start()
        time.sleep(0.3)
        t = time.monotonic()
        os.kill(first_pid, signal.SIGKILL)
        asker.join(30)
        assert box and "before it answered" in str(box[0]), box
        assert time.monotonic() - t < 10
        assert wait_until(lambda: victim.process.pid != first_pid, 30) is not None
        # asked while the replacement starts, the question waits for it
        status = victim.ask("status", timeout=30)
        assert (status["pid"], status["generation"]) == (victim.process.pid, 1)
