"""Integration tests of fastprod's Producer against a real Apache Kafka 4.3.1 broker.

Everything written is read back by readers that share no code with fastprod
(tests/readers.py): the Java KafkaConsumer from the broker's own jars and librdkafka
(confluent-kafka). Raw batch boundaries come from Kafka's DumpLogSegments on the broker's
log directory. Every test makes its own topic(s) with a unique name.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import pytest

from fastprod import (
    ConfigError,
    KafkaTimeoutError,
    Producer,
    ProducerClosedError,
    RecordTooLargeError,
)
from fastprod.kernels import partition_for_key
from fastprod.localkafka import LocalKafka

try:
    import readers
    from helpers import Problems, settle
except ImportError:  # tests/ imported as a package
    from tests import readers
    from tests.helpers import Problems, settle

CREATE_TIME = readers.CREATE_TIME
Record = readers.Record
by_partition_offset = readers.by_partition_offset
java_read = readers.java_read

pytestmark = pytest.mark.integration

# The five codecs, 100k records each, both readers on every one: 7-14 s per codec on a
# 2-core machine (building the workload once, produce ~1 s, Java read ~2.5 s, librdkafka
# read ~2 s, the checks ~1 s each); the whole file takes about 2-2.5 minutes.
CODEC_RECORDS = 100_000
CODEC_PARTITIONS = 4
JAVA_SAMPLE = 3000  # keys whose partition the Java client itself computes

EXPLICIT_TS_BASE = 1_600_000_000_000


# ---- helpers ------------------------------------------------------------------------


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def local_only(kafka) -> LocalKafka:
    if not isinstance(kafka, LocalKafka):
        pytest.skip("needs a broker started by fastprod.localkafka (log dir access)")
    return kafka


def create_topic(kafka, name: str, partitions: int = 1, replication_factor: int = 1,
                 config: dict | None = None, timeout: float = 30.0) -> None:
    """Create a topic and wait until every partition's leader really serves it.

    Right after CreateTopics, metadata already names the leaders while the leaders may
    still answer NOT_LEADER_OR_FOLLOWER for a moment (ListOffsets and Produce alike).
    The producer must cope with that (test_produce_right_after_topic_creation), but the
    other tests are about other things: they start on a settled topic."""
    kafka.create_topic(name, partitions=partitions, replication_factor=replication_factor,
                       config=config)
    settle(kafka.bootstrap_servers, name, partitions, timeout)


@dataclass
class Sent:
    """One send() and what the broker should hold for it."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int | None  # None: left to the producer (wall clock)
    send_args: dict


def _utf8(x):
    return x.encode("utf-8") if isinstance(x, str) else x


def make_workload(n: int, seed: int = 1234, *, null_keys: bool = False) -> list[Sent]:
    """Keyed records with a mix of values (tombstones, random, repetitive), keys (bytes,
    str), headers (none, empty, duplicates, null and empty values, non-ASCII names, dict)
    and timestamps (every third explicit, the rest defaulted)."""
    rnd = random.Random(seed)
    blocks = [rnd.randbytes(rnd.randrange(0, 300)) for _ in range(32)]
    blocks += [(b"value %d, " % i) * rnd.randrange(1, 30) for i in range(32)]
    header_variants: list = [
        None,
        [],
        [("trace-id", b"abc123")],
        [("dup", b"1"), ("dup", b"2"), ("null", None), ("empty", b"")],
        [("sch\u00fcssel-\u2603", b"\x00\xff\x80"), ("s", "text \u00e9")],
        {"dict-header": b"x" * 40, "other": None},
        [("", b"")],
    ]
    out = []
    for i in range(n):
        if null_keys and i % 4 == 0:
            key = None
        elif i % 5 == 0:
            key = f"cl\u00e9-{i % 7919}"  # str key: the default serializer writes UTF-8
        elif i % 5 == 1:
            key = rnd.randbytes(rnd.randrange(0, 24))  # includes the empty key
        else:
            key = b"user-%d" % rnd.randrange(50_000)
        if i % 97 == 0:
            value = None  # a tombstone
        elif i % 101 == 1:
            value = b""
        elif i % 89 == 2:
            value = f"texte \u00e0 {i} \U0001f600"  # str: the default serializer writes UTF-8
        else:
            value = blocks[i % len(blocks)] + b"#%d" % i
        hv = header_variants[i % len(header_variants)]
        if hv is None:
            headers: tuple = ()
        elif isinstance(hv, dict):
            headers = tuple((k, _utf8(v)) for k, v in hv.items())
        else:
            headers = tuple((k, _utf8(v)) for k, v in hv)
        ts = EXPLICIT_TS_BASE + i if i % 3 == 0 else None
        args = {"value": value, "key": key}
        if hv is not None:
            args["headers"] = hv
        if ts is not None:
            args["timestamp"] = ts
        out.append(Sent(_utf8(key), _utf8(value), headers, ts, args))
    return out


def send_all(producer: Producer, topic: str, sent: list[Sent], on_delivery_every: int = 0,
             deliveries: list | None = None) -> tuple[list, int, int]:
    """send() every record; returns (futures, wall ms before, wall ms after)."""
    futures = []
    t0 = int(time.time() * 1000)
    for i, s in enumerate(sent):
        if on_delivery_every and i % on_delivery_every == 0:
            def cb(md, err, i=i):
                deliveries.append((i, md, err, threading.current_thread().name))
            futures.append(producer.send(topic, **s.send_args, on_delivery=cb))
        else:
            futures.append(producer.send(topic, **s.send_args))
    producer.flush(timeout=120)
    t1 = int(time.time() * 1000)
    return futures, t0, t1


def check_delivered(label: str, sent: list[Sent], futures: list, records: list[Record],
                    num_partitions: int, t0: int, t1: int, *,
                    keyed_partitioning: bool = True) -> list:
    """Every sent record is in ``records`` exactly once, where its future says, with the
    same key, value, headers and timestamp; offsets grow in send order per partition;
    keyed records sit on murmur2(key) % partitions. Returns the RecordMetadata list."""
    metas = [f.result(timeout=60) for f in futures]
    bad = Problems(label)
    if len(records) != len(sent):
        bad.add(f"reader returned {len(records)} records, {len(sent)} were sent")
    by_pos: dict[tuple[int, int], Record] = {}
    for r in records:
        if (r.partition, r.offset) in by_pos:
            bad.add(f"offset {r.partition}/{r.offset} read twice")
        by_pos[(r.partition, r.offset)] = r
    last_offset: dict[int, int] = defaultdict(lambda: -1)
    for i, (s, md) in enumerate(zip(sent, metas)):
        r = by_pos.pop((md.partition, md.offset), None)
        if r is None:
            bad.add(f"#{i}: future says {md.partition}/{md.offset}, the reader has no such record")
            continue
        if md.offset <= last_offset[md.partition]:
            bad.add(f"#{i}: offset {md.offset} on partition {md.partition} is not after "
                    f"{last_offset[md.partition]} (send order broken)")
        last_offset[md.partition] = md.offset
        if (r.key, r.value, r.headers) != (s.key, s.value, s.headers):
            bad.add(f"#{i} at {md.partition}/{md.offset}: read key={r.key!r:.60} "
                    f"value={r.value!r:.60} headers={r.headers!r:.120}, sent key={s.key!r:.60} "
                    f"value={s.value!r:.60} headers={s.headers!r:.120}")
        if r.timestamp_type != CREATE_TIME:
            bad.add(f"#{i}: timestamp type {r.timestamp_type}")
        if s.timestamp is not None:
            if r.timestamp != s.timestamp or md.timestamp != s.timestamp:
                bad.add(f"#{i}: explicit timestamp {s.timestamp}, read {r.timestamp}, "
                        f"future says {md.timestamp}")
        elif r.timestamp != md.timestamp or not t0 <= r.timestamp <= t1:
            bad.add(f"#{i}: default timestamp read {r.timestamp}, future says {md.timestamp}, "
                    f"sent between {t0} and {t1}")
        if keyed_partitioning and s.key is not None and \
                md.partition != partition_for_key(s.key, num_partitions):
            bad.add(f"#{i}: key {s.key!r} on partition {md.partition}, murmur2 says "
                    f"{partition_for_key(s.key, num_partitions)}")
        key_size = -1 if s.key is None else len(s.key)
        value_size = -1 if s.value is None else len(s.value)
        if (md.serialized_key_size, md.serialized_value_size) != (key_size, value_size):
            bad.add(f"#{i}: metadata sizes {md.serialized_key_size}/{md.serialized_value_size}"
                    f", expected {key_size}/{value_size}")
    for pos in list(by_pos)[:3]:
        bad.add(f"record at {pos[0]}/{pos[1]} was read but no future points at it")
    bad.check()
    return metas


def assert_same_records(label: str, a: list[Record], b: list[Record]) -> None:
    a, b = by_partition_offset(a), by_partition_offset(b)
    if a == b:
        return
    bad = Problems(label)
    if len(a) != len(b):
        bad.add(f"{len(a)} records vs {len(b)}")
    for x, y in zip(a, b):
        if x != y:
            bad.add(f"{x!r:.300} != {y!r:.300}")
    bad.check()


def read_in_order(records: list[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = defaultdict(list)
    for r in by_partition_offset(records):
        out[r.partition].append(r)
    return out


# ---- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def codec_workload() -> list[Sent]:
    return make_workload(CODEC_RECORDS)


@pytest.fixture(scope="module")
def java_partitions(codec_workload) -> dict[bytes, int]:
    """The Java client's own BuiltInPartitioner.partitionForKey for a sample of keys."""
    try:
        from javatools import oracle
    except ImportError:
        from tests.javatools import oracle

    keys = list(dict.fromkeys(s.key for s in codec_workload if s.key is not None))[:JAVA_SAMPLE]
    results = oracle().murmur2(keys, [CODEC_PARTITIONS])
    return {k: r[2][0] for k, r in zip(keys, results)}


@pytest.fixture(scope="module")
def kafka_no_autocreate():
    """A dedicated one-node broker with auto.create.topics.enable=false."""
    with LocalKafka(nodes=1, auto_create_topics=False) as k:
        yield k


# ---- every codec, two independent readers --------------------------------------------


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codec_round_trip_two_readers(kafka, codec, codec_workload, java_partitions):
    topic = unique_topic(f"codec-{codec}")
    create_topic(kafka, topic, partitions=CODEC_PARTITIONS)
    deliveries: list = []
    with Producer({"bootstrap.servers": kafka.bootstrap_servers,
                   "compression.type": codec}) as producer:
        futures, t0, t1 = send_all(producer, topic, codec_workload, on_delivery_every=100,
                                   deliveries=deliveries)
    n = len(codec_workload)

    java = java_read(kafka.bootstrap_servers, topic, n)
    metas = check_delivered(f"{codec}/java", codec_workload, futures, java,
                            CODEC_PARTITIONS, t0, t1)
    rdk = readers.confluent_read(kafka.bootstrap_servers, topic, n)
    check_delivered(f"{codec}/librdkafka", codec_workload, futures, rdk,
                    CODEC_PARTITIONS, t0, t1)
    assert_same_records(f"{codec}: java vs librdkafka", java, rdk)

    # The Java client itself puts the sampled keys where fastprod did.
    bad = Problems(f"{codec}: partition vs Java's partitionForKey")
    for s, md in zip(codec_workload, metas):
        want = java_partitions.get(s.key)
        if want is not None and md.partition != want:
            bad.add(f"key {s.key!r}: fastprod {md.partition}, Java {want}")
    bad.check()

    # on_delivery: once per record it was given to, on the sender thread, same metadata.
    assert sorted(i for i, *_ in deliveries) == list(range(0, n, 100))
    for i, md, err, thread in deliveries:
        assert err is None, (i, err)
        assert md == metas[i], (i, md, metas[i])
        assert thread.startswith("fastprod-sender"), thread


# ---- acks and idempotence -------------------------------------------------------------


@pytest.mark.parametrize("acks, idempotence", [
    ("0", False), ("0", None), ("1", False), ("1", None), ("all", False), ("all", None),
], ids=["acks0-noidem", "acks0-default", "acks1-noidem", "acks1-default",
        "acksall-noidem", "acksall-default"])
def test_acks(kafka, acks, idempotence):
    """acks 0/1/all, with enable.idempotence=false or left at its default (true, which
    the Java producer turns off by itself when acks is not 'all')."""
    kafka = local_only(kafka)
    topic = unique_topic(f"acks{acks}")
    partitions = 3
    create_topic(kafka, topic, partitions=partitions)
    config = {"bootstrap.servers": kafka.bootstrap_servers, "acks": acks,
              # bounds the test's time if a batch is never completed (expires instead)
              "delivery.timeout.ms": 20000, "request.timeout.ms": 10000}
    if idempotence is not None:
        config["enable.idempotence"] = idempotence
    sent = make_workload(5000, seed=7, null_keys=True)
    with Producer(config) as producer:
        assert producer.config.enable_idempotence is (acks == "all" and idempotence is None)
        futures, t0, t1 = send_all(producer, topic, sent)
    records = java_read(kafka.bootstrap_servers, topic, len(sent))

    if acks == "0":
        # The broker says nothing: offsets are -1, but the partition is known and every
        # record arrives, in send order within its partition.
        metas = [f.result(timeout=30) for f in futures]
        assert all(md.offset == -1 for md in metas)
        assert len(records) == len(sent)
        want: dict[int, list] = defaultdict(list)
        for s, md in zip(sent, metas):
            assert s.key is None or md.partition == partition_for_key(s.key, partitions)
            want[md.partition].append((s.key, s.value, s.headers))
        got = {p: [(r.key, r.value, r.headers) for r in rs]
               for p, rs in read_in_order(records).items()}
        assert got == dict(want)
    else:
        check_delivered(f"acks={acks}", sent, futures, records, partitions, t0, t1)
    if acks == "all" and idempotence is None:
        # No transactions: read_committed consumers see exactly the same records.
        for read in (java_read, readers.confluent_read):
            committed = read(kafka.bootstrap_servers, topic, len(sent),
                             isolation="read_committed")
            assert_same_records(f"{read.__name__} read_committed", committed, records)

    # The batches on disk carry a producer id and sequence numbers exactly when the
    # producer is idempotent.
    idempotent = acks == "all" and idempotence is None
    for p in range(partitions):
        batches = readers.dump_batches(kafka.nodes[0].spec.data_dir, topic, p)
        assert sum(b.count for b in batches) == len(read_in_order(records)[p])
        if idempotent:
            assert len({(b.producer_id, b.producer_epoch) for b in batches}) == 1, batches[:3]
            assert batches[0].producer_id >= 0 and batches[0].producer_epoch >= 0
            assert batches[0].base_sequence == 0
            for prev, b in zip(batches, batches[1:]):
                assert b.base_sequence == prev.last_sequence + 1, (prev, b)
            for b in batches:
                assert b.last_sequence - b.base_sequence + 1 == b.count, b
        else:
            assert all(b.producer_id == -1 and b.base_sequence == -1 for b in batches), \
                batches[:3]


@pytest.mark.parametrize("idempotence", [None, False], ids=["idempotent", "not-idempotent"])
def test_produce_right_after_topic_creation(kafka, idempotence):
    """Right after CreateTopics the new leaders may still answer NOT_LEADER_OR_FOLLOWER
    to the first Produce requests while a later request, a few ms on, is accepted; with
    idempotence the retried batches then meet OUT_OF_ORDER_SEQUENCE_NUMBER. Fresh
    topics, small batches and no linger make that race likely (most rounds hit it).

    What must hold, as with the Java producer: with idempotence, records of a partition
    are written in send order and at most once; every future resolves. Without it,
    order may change (retries with 5 requests in flight) but nothing is lost or doubled.
    Java 4.3.1 itself keeps the order here but, in about one round in four, keeps
    retrying OUT_OF_ORDER_SEQUENCE_NUMBER until delivery.timeout.ms expires the batches;
    fastprod sends one batch at a time to a partition until it acknowledged one, so with
    idempotence no record may fail either (see tests/integration/test_fresh_partitions.py)."""
    config = {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0,
              "batch.size": 2000, "delivery.timeout.ms": 15000, "request.timeout.ms": 10000}
    if idempotence is not None:
        config["enable.idempotence"] = idempotence
    n, partitions = 20_000, 8
    values = [b"v%d" % i for i in range(n)]
    keys = [b"k%d" % i for i in range(n)]
    problems = Problems(f"fresh topics, idempotence={idempotence}")
    for _ in range(4):
        topic = unique_topic("fresh")
        kafka.create_topic(topic, partitions=partitions)  # not settled, on purpose
        with Producer(config) as p:
            futures = [p.send(topic, v, key=k) for k, v in zip(keys, values)]
            p.flush(timeout=60)
        assert all(f.done() for f in futures)
        errors = defaultdict(int)
        delivered = {}
        for i, f in enumerate(futures):
            e = f.exception(timeout=0)
            if e is None:
                delivered[i] = f.result(timeout=0)
            else:
                errors[type(e).__name__] += 1
        records = java_read(kafka.bootstrap_servers, topic, len(delivered),
                            idle_timeout=3.0)
        by_pos = {(r.partition, r.offset): r for r in records}
        index = {v: i for i, v in enumerate(values)}
        read_ids = [index[r.value] for r in by_partition_offset(records)]
        if len(set(read_ids)) != len(read_ids):
            problems.add(f"{topic}: {len(read_ids) - len(set(read_ids))} record(s) written twice")
        for i, md in delivered.items():
            r = by_pos.get((md.partition, md.offset))
            if r is None or r.value != values[i]:
                problems.add(f"{topic}: #{i} future says {md.partition}/{md.offset}, "
                             f"the log has {r and r.value!r}")
            if md.partition != partition_for_key(keys[i], partitions):
                problems.add(f"{topic}: #{i} on partition {md.partition}")
        if idempotence is None:
            last: dict[int, tuple[int, int]] = {}
            for i in sorted(delivered):
                md = delivered[i]
                prev = last.get(md.partition)
                if prev is not None and md.offset <= prev[0]:
                    problems.add(f"{topic}: send order broken on partition {md.partition}: "
                                 f"#{i} at offset {md.offset}, #{prev[1]} (sent before it) at "
                                 f"offset {prev[0]} ({dict(errors) or 'no'} failures)")
                last[md.partition] = (md.offset, i)
            if errors:
                problems.add(f"{topic}: records failed with idempotence: {dict(errors)}")
        elif errors:
            problems.add(f"{topic}: records failed without idempotence: {dict(errors)}")
        elif len(records) != n:
            problems.add(f"{topic}: {len(records)} records in the log, {n} sent")
    problems.check()


def test_acks0_record_completes_once_written(kafka):
    """acks=0: a record's future completes (offset -1) as soon as its request is written,
    as Java's NetworkClient does in handleCompletedSends, also when nothing else is
    going on on that connection."""
    topic = unique_topic("acks0quiet")
    create_topic(kafka, topic, partitions=1)
    calls = []
    with Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "0", "linger.ms": 0,
                   "delivery.timeout.ms": 15000, "request.timeout.ms": 10000}) as p:
        # (create_topic waited for the leader to settle: a Produce with acks=0 that the
        # broker rejects, e.g. NOT_LEADER_OR_FOLLOWER, makes it close the connection.)
        p.partitions_for(topic)
        for i in range(3):
            t0 = time.monotonic()
            fut = p.send(topic, b"quiet %d" % i, on_delivery=lambda md, err: calls.append(err))
            try:
                md = fut.result(timeout=5)
            except KafkaTimeoutError:
                pytest.fail(f"record {i}: acks=0 future not done {time.monotonic() - t0:.1f} s "
                            f"after send() (Java completes an acks=0 send once it is written)")
            assert (md.partition, md.offset) == (0, -1)
    assert calls == [None, None, None]
    records = java_read(kafka.bootstrap_servers, topic, 3)
    assert [r.value for r in by_partition_offset(records)] == [b"quiet 0", b"quiet 1", b"quiet 2"]


def test_idempotence_requires_acks_all(kafka):
    with pytest.raises(ConfigError, match="acks"):
        Producer({"bootstrap.servers": kafka.bootstrap_servers, "acks": "1",
                  "enable.idempotence": True})


# ---- linger.ms and batch.size as seen in the log ----------------------------------------


def _varint_size(v: int) -> int:
    z = (v << 1) ^ (v >> 63)
    n = 1
    while z >= 0x80:
        z >>= 7
        n += 1
    return n


def _plain_record_size(value_len: int, offset_delta: int) -> int:
    """Bytes of one record in a v2 batch (DefaultRecord.sizeInBytes): null key, no
    headers, timestamp delta 0."""
    body = (1 + _varint_size(0) + _varint_size(offset_delta) + _varint_size(-1)
            + _varint_size(value_len) + value_len + _varint_size(0))
    return _varint_size(body) + body


def _java_batch_counts(n: int, value_len: int, batch_size: int) -> list[int]:
    """How Java's accumulator splits n equal records: a batch takes the next record while
    header + records + that record <= batch.size (MemoryRecordsBuilder.hasRoomFor)."""
    counts = []
    while n:
        size, count = RECORD_BATCH_OVERHEAD, 0
        while count < n:
            rec = _plain_record_size(value_len, count)
            if count and size + rec > batch_size:
                break
            size += rec
            count += 1
        counts.append(count)
        n -= count
    return counts


RECORD_BATCH_OVERHEAD = 61


def test_linger_collects_one_batch(kafka):
    kafka = local_only(kafka)
    topic = unique_topic("linger")
    create_topic(kafka, topic, partitions=1)
    with Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 1000}) as p:
        p.partitions_for(topic)  # metadata first, so the sends below are quick
        t0 = time.monotonic()
        futures = [p.send(topic, b"lingering %d" % i) for i in range(10)]
        sent_in = time.monotonic() - t0
        metas = [f.result(timeout=10) for f in futures]
        waited = time.monotonic() - t0
    assert sent_in < 0.5, sent_in
    assert waited >= 0.9, f"delivered after {waited:.3f} s although linger.ms=1000"
    assert [md.offset for md in metas] == list(range(10))
    batches = readers.dump_batches(kafka.nodes[0].spec.data_dir, topic, 0)
    assert [(b.base_offset, b.count) for b in batches] == [(0, 10)], batches


@pytest.mark.parametrize("batch_size", [1024, None], ids=["batch1024", "default16384"])
def test_batch_size_bounds_batches(kafka, batch_size):
    kafka = local_only(kafka)
    topic = unique_topic("batchsize")
    create_topic(kafka, topic, partitions=1)
    value_len = 100
    n = 2000
    config = {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 500,
              "compression.type": "none"}
    if batch_size is not None:
        config["batch.size"] = batch_size
    with Producer(config) as p:
        limit = p.config.batch_size
        assert limit == (batch_size or 16384)
        p.partitions_for(topic)
        futures = [p.send(topic, bytes([i % 256]) * value_len, partition=0,
                          timestamp=EXPLICIT_TS_BASE) for i in range(n)]
        p.flush(timeout=30)
    assert [f.result().offset for f in futures] == list(range(n))
    batches = readers.dump_batches(kafka.nodes[0].spec.data_dir, topic, 0)
    assert sum(b.count for b in batches) == n
    # As the Java accumulator does it: a batch takes records while they fit in batch.size
    # (records past offset delta 63 are a byte longer: the delta's varint grows).
    want = _java_batch_counts(n, value_len, limit)
    assert [b.count for b in batches] == want, ([b.count for b in batches], want)
    for b in batches:
        assert b.size <= limit, b
        assert b.size == RECORD_BATCH_OVERHEAD + sum(
            _plain_record_size(value_len, d) for d in range(b.count)), b


# ---- three brokers: every batch to its partition's leader -------------------------------


def test_leader_routing_three_brokers(kafka_cluster3, caplog):
    cluster = kafka_cluster3
    topic = unique_topic("leaders")
    partitions = 6
    create_topic(cluster, topic, partitions=partitions, replication_factor=3)
    md = cluster.metadata([topic])
    leaders = {p.partition: p.leader for p in md.topics[topic].partitions}
    assert len(leaders) == partitions and all(v >= 0 for v in leaders.values())
    assert len(set(leaders.values())) >= 2, f"leaders not spread: {leaders}"

    sent = make_workload(30_000, seed=99)
    requests: list[tuple[int, list[int]]] = []
    # Bootstrap from one node only: the producer has to find the other leaders itself.
    with caplog.at_level(logging.WARNING, logger="fastprod"):
        producer = Producer({"bootstrap.servers": cluster.nodes[0].address})
        try:
            # A spy on the sender: which node each produce request (and its batches) went to.
            sender = producer._sender
            real = sender._send_produce_request

            def spy(node_id, batches, now_ms):
                requests.append((node_id, [(b.topic, b.partition) for b in batches]))
                return real(node_id, batches, now_ms)

            sender._send_produce_request = spy
            infos = producer.partitions_for(topic)
            assert {i.partition: i.leader for i in infos} == leaders
            assert all(sorted(i.replicas) == [1, 2, 3] for i in infos), infos
            futures, t0, t1 = send_all(producer, topic, sent)
        finally:
            producer.close()

    records = java_read(cluster.bootstrap_servers, topic, len(sent))
    check_delivered("3 brokers", sent, futures, records, partitions, t0, t1)

    assert requests
    wrong = [(node, tp) for node, tps in requests for tp in tps
             if tp[0] == topic and leaders[tp[1]] != node]
    assert not wrong, f"batches sent to a node that is not the leader: {wrong[:5]}"
    assert {node for node, _ in requests} == set(leaders.values())
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage().lower()]
    assert not retries, retries[:5]


# ---- clear failures ------------------------------------------------------------------------


def test_unknown_topic_without_auto_create_times_out(kafka_no_autocreate):
    k = kafka_no_autocreate
    topic = unique_topic("missing")
    with Producer({"bootstrap.servers": k.bootstrap_servers, "max.block.ms": 1500}) as p:
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError) as ei:
            p.send(topic, b"nowhere to go")
        elapsed = time.monotonic() - t0
        assert 1.4 <= elapsed < 4.0, elapsed
        assert topic in str(ei.value) and "1500" in str(ei.value), str(ei.value)

        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError):
            p.partitions_for(topic)
        assert 1.4 <= time.monotonic() - t0 < 4.0

        # Once the topic exists the same producer uses it.
        create_topic(k, topic, partitions=2)
        md = p.send(topic, b"now it exists", key=b"k").result(timeout=30)
    assert md.partition == partition_for_key(b"k", 2) and md.offset == 0
    records = java_read(k.bootstrap_servers, topic, 1)
    assert [(r.partition, r.offset, r.key, r.value) for r in records] == \
        [(md.partition, 0, b"k", b"now it exists")]


def test_wrong_types_raise_in_send_and_queue_nothing(kafka):
    topic = unique_topic("types")
    create_topic(kafka, topic, partitions=1)
    with Producer({"bootstrap.servers": kafka.bootstrap_servers}) as p:
        first = p.send(topic, b"before", key=b"a")
        calls = []
        for kwargs in ({"value": 12345}, {"value": 1.5}, {"value": {"a": 1}},
                       {"value": b"ok", "key": 42}, {"value": b"ok", "key": object()},
                       {"value": b"ok", "headers": [("h", 3)]},
                       {"value": b"ok", "headers": [(b"bytes-name", b"v")]},
                       {"value": b"ok", "headers": ["not a pair"]}):
            with pytest.raises(TypeError):
                p.send(topic, **kwargs, on_delivery=lambda md, err: calls.append(err))
        assert calls == []  # nothing was queued, so nothing is ever reported
        with Producer({"bootstrap.servers": kafka.bootstrap_servers,
                       "value.serializer": "str"}) as p2:
            with pytest.raises(TypeError):
                p2.send(topic, b"bytes where str is configured")
        last = p.send(topic, "after", key="b")
        p.flush(timeout=30)
    assert (first.result().offset, last.result().offset) == (0, 1)
    records = java_read(kafka.bootstrap_servers, topic, 2)
    assert [(r.offset, r.key, r.value) for r in by_partition_offset(records)] == \
        [(0, b"a", b"before"), (1, b"b", b"after")]


def test_record_larger_than_max_request_size(kafka):
    topic = unique_topic("toolarge")
    create_topic(kafka, topic, partitions=1)
    calls = []
    with Producer({"bootstrap.servers": kafka.bootstrap_servers}) as p:  # 1 MiB default
        assert p.config.max_request_size == 1048576
        fut = p.send(topic, b"x" * 1048576, on_delivery=lambda md, err: calls.append(err))
        assert fut.done()
        err = fut.exception(timeout=5)
        assert isinstance(err, RecordTooLargeError), repr(err)
        assert "max.request.size" in str(err)
        with pytest.raises(RecordTooLargeError):
            fut.result()
        assert len(calls) == 1 and calls[0] is err
        ok = p.send(topic, b"small")
    assert ok.result(timeout=30).offset == 0
    records = java_read(kafka.bootstrap_servers, topic, 1)
    assert [r.value for r in records] == [b"small"]


def test_record_larger_than_the_broker_accepts(kafka):
    """max.request.size allows it, the broker (message.max.bytes ~1 MiB) does not: the
    broker's MESSAGE_TOO_LARGE comes back as RecordTooLargeError, on the future and
    through on_delivery on the sender thread; the next record goes through."""
    topic = unique_topic("brokertoolarge")
    create_topic(kafka, topic, partitions=1)
    calls = []
    with Producer({"bootstrap.servers": kafka.bootstrap_servers,
                   "max.request.size": 4 * 1048576, "delivery.timeout.ms": 30000,
                   "request.timeout.ms": 10000}) as p:
        fut = p.send(topic, b"y" * (2 * 1048576), on_delivery=lambda md, err: calls.append(
            (err, threading.current_thread().name)))
        err = fut.exception(timeout=40)
        assert isinstance(err, RecordTooLargeError), repr(err)
        ok = p.send(topic, b"small")
        assert ok.result(timeout=30).offset >= 0
    assert len(calls) == 1 and calls[0][0] is err and calls[0][1].startswith("fastprod-sender")
    records = java_read(kafka.bootstrap_servers, topic, 1)
    assert [r.value for r in records] == [b"small"]


@pytest.mark.parametrize("send_batch", [False, True], ids=["send", "send_batch"])
def test_a_batch_over_the_topics_limit_is_split_and_delivered(kafka, send_batch):
    """The topic takes at most 2,000-byte batches; the producer fills 16 KiB ones. As in
    Java, the broker's MESSAGE_TOO_LARGE makes the producer split them (idempotence on:
    the parts keep the sequence numbers) until they fit: every record is delivered
    once, in order, where its future says."""
    topic = unique_topic("split")
    create_topic(kafka, topic, partitions=1, config={"max.message.bytes": "2000"})
    values = [b"%04d-" % i + bytes(200) for i in range(60)]
    with Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 200}) as p:
        if send_batch:
            offsets = [md.offset for md in p.send_batch(topic, values).result(timeout=30)]
        else:
            futures = [p.send(topic, v) for v in values]
            offsets = [f.result(timeout=30).offset for f in futures]
    assert offsets == list(range(60)), offsets
    records = java_read(kafka.bootstrap_servers, topic, 60)
    assert [r.value for r in records] == values


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def test_no_broker_reachable(kafka):
    port = _closed_port()
    servers = f"127.0.0.1:{port}"
    p = Producer({"bootstrap.servers": servers, "max.block.ms": 1000})
    try:
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError) as ei:
            p.send("anything", b"x")
        elapsed = time.monotonic() - t0
        assert 0.9 <= elapsed < 3.0, elapsed
        assert servers in str(ei.value), str(ei.value)
        assert "1000" in str(ei.value), str(ei.value)
    finally:
        t0 = time.monotonic()
        p.close()
        assert time.monotonic() - t0 < 5.0


def test_close_delivers_pending_records(kafka):
    topic = unique_topic("closepending")
    create_topic(kafka, topic, partitions=3)
    sent = make_workload(3000, seed=5)
    callbacks = []
    p = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 20000,
                  "batch.size": 1 << 20})
    p.partitions_for(topic)
    t0_wall = int(time.time() * 1000)
    futures = [p.send(topic, **s.send_args, on_delivery=lambda md, err: callbacks.append(err))
               for s in sent]
    t1_wall = int(time.time() * 1000)
    assert not any(f.done() for f in futures)  # lingering
    t0 = time.monotonic()
    p.close()
    assert time.monotonic() - t0 < 10.0  # close() does not wait for linger.ms
    assert all(f.done() for f in futures)
    assert len(callbacks) == len(sent) and not any(callbacks)
    records = java_read(kafka.bootstrap_servers, topic, len(sent))
    check_delivered("close", sent, futures, records, 3, t0_wall, t1_wall)


def test_close_with_zero_timeout_fails_pending_records(kafka):
    topic = unique_topic("closenow")
    create_topic(kafka, topic, partitions=1)
    callbacks = []
    p = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 20000})
    p.partitions_for(topic)
    futures = [p.send(topic, b"v%d" % i, on_delivery=lambda md, err: callbacks.append(err))
               for i in range(100)]
    p.close(timeout=0)
    assert all(f.done() for f in futures)
    errors = [f.exception(timeout=0) for f in futures]
    assert all(isinstance(e, ProducerClosedError) for e in errors), errors[:3]
    assert len(callbacks) == 100 and all(isinstance(e, ProducerClosedError) for e in callbacks)


def test_close_twice_and_send_after_close(kafka):
    topic = unique_topic("closetwice")
    create_topic(kafka, topic, partitions=1)
    p = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    fut = p.send(topic, b"one")
    p.close()
    p.close()
    p.close(timeout=0)
    assert fut.result(timeout=0).offset == 0
    with pytest.raises(ProducerClosedError):
        p.send(topic, b"two")
    assert "closed" in repr(p)


def test_context_manager(kafka):
    topic = unique_topic("ctx")
    create_topic(kafka, topic, partitions=2)
    with Producer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5000) as p:
        futures = [p.send(topic, b"v%d" % i, key=b"k%d" % i) for i in range(50)]
    assert all(f.done() for f in futures)
    assert "closed" in repr(p)
    with pytest.raises(ProducerClosedError):
        p.send(topic, b"late")
    records = java_read(kafka.bootstrap_servers, topic, 50)
    assert sorted(r.value for r in records) == sorted(b"v%d" % i for i in range(50))
    for f, i in zip(futures, range(50)):
        assert f.result().partition == partition_for_key(b"k%d" % i, 2)


def test_partitions_for(kafka):
    kafka = local_only(kafka)
    topic = unique_topic("parts")
    create_topic(kafka, topic, partitions=4)
    node_id = kafka.nodes[0].node_id
    with Producer({"bootstrap.servers": kafka.bootstrap_servers}) as p:
        infos = p.partitions_for(topic)
        assert sorted(i.partition for i in infos) == [0, 1, 2, 3]
        for i in infos:
            assert i.topic == topic
            assert i.leader == node_id
            assert tuple(i.replicas) == (node_id,) and tuple(i.isr) == (node_id,)
        # A topic the broker auto-creates (num.partitions=1 on the test broker).
        auto = unique_topic("autocreated")
        infos = p.partitions_for(auto)
        assert [i.partition for i in infos] == [0] and infos[0].leader == node_id
        md = p.send(auto, b"into the auto-created topic").result(timeout=30)
    assert (md.topic, md.partition, md.offset) == (auto, 0, 0)
    records = java_read(kafka.bootstrap_servers, auto, 1)
    assert [r.value for r in records] == [b"into the auto-created topic"]


def test_log_append_time_topic(kafka):
    """On a LogAppendTime topic the broker stamps the time; the futures report it."""
    topic = unique_topic("logappend")
    create_topic(kafka, topic, partitions=2, config={"message.timestamp.type": "LogAppendTime"})
    sent = make_workload(2000, seed=3)
    t0 = int(time.time() * 1000)
    with Producer({"bootstrap.servers": kafka.bootstrap_servers}) as p:
        futures, _, _ = send_all(p, topic, sent)
    t1 = int(time.time() * 1000)
    records = java_read(kafka.bootstrap_servers, topic, len(sent))
    by_pos = {(r.partition, r.offset): r for r in records}
    assert len(by_pos) == len(sent)
    for s, f in zip(sent, futures):
        md = f.result()
        r = by_pos[(md.partition, md.offset)]
        assert (r.key, r.value, r.headers) == (s.key, s.value, s.headers)
        assert r.timestamp_type == readers.LOG_APPEND_TIME
        assert md.timestamp == r.timestamp, (md, r)  # the broker's time, not ours
        assert t0 - 1000 <= r.timestamp <= t1 + 1000


def test_explicit_partition_out_of_range_times_out(kafka):
    topic = unique_topic("norange")
    create_topic(kafka, topic, partitions=2)
    with Producer({"bootstrap.servers": kafka.bootstrap_servers, "max.block.ms": 1000}) as p:
        t0 = time.monotonic()
        with pytest.raises(KafkaTimeoutError) as ei:
            p.send(topic, b"x", partition=5)
        assert 0.9 <= time.monotonic() - t0 < 4.0
        assert "5" in str(ei.value) and topic in str(ei.value), str(ei.value)
        md = p.send(topic, b"y", partition=1).result(timeout=30)
    assert (md.partition, md.offset) == (1, 0)


def test_large_records_each_in_their_own_batch(kafka):
    """Records much larger than batch.size (default 16384) still go, one batch each."""
    kafka = local_only(kafka)
    topic = unique_topic("large")
    create_topic(kafka, topic, partitions=1)
    rnd = random.Random(42)
    values = [rnd.randbytes(900_000), b"z" * 1_000_000, rnd.randbytes(20_000), b"small"]
    with Producer({"bootstrap.servers": kafka.bootstrap_servers, "compression.type": "lz4"}) as p:
        futures = [p.send(topic, v, key=b"k%d" % i) for i, v in enumerate(values)]
    assert [f.result(timeout=30).offset for f in futures] == [0, 1, 2, 3]
    records = by_partition_offset(java_read(kafka.bootstrap_servers, topic, len(values)))
    assert [r.value for r in records] == values
    batches = readers.dump_batches(kafka.nodes[0].spec.data_dir, topic, 0)
    assert [b.count for b in batches[:2]] == [1, 1], batches
    assert sum(b.count for b in batches) == 4


def test_send_from_many_threads(kafka):
    """send() is thread-safe: four threads at once, every record delivered exactly once,
    and each thread's records stay in its send order within a partition."""
    topic = unique_topic("threads")
    partitions = 3
    create_topic(kafka, topic, partitions=partitions)
    per_thread = 10_000
    results: dict[int, list] = {}
    with Producer({"bootstrap.servers": kafka.bootstrap_servers}) as p:
        p.partitions_for(topic)
        barrier = threading.Barrier(4)

        def work(t: int) -> None:
            barrier.wait()
            results[t] = [p.send(topic, b"t%d-%d" % (t, i), key=b"key-%d" % (i % 500))
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
            assert r.value == b"t%d-%d" % (t, i) and r.key == b"key-%d" % (i % 500)
            assert md.partition == partition_for_key(r.key, partitions)
            assert md.offset > last[md.partition]
            last[md.partition] = md.offset
    assert not by_pos
