"""The drop-ins run the producer examples of confluent-kafka and kafka-python (our own
versions of examples/producer.py, the getting-started and transactions examples of
confluent-kafka, and kafka-python's README and usage page), once with the original
client and once with fastprod.compat; the Java consumer (tests/readers.py) then reads
both topics and what the broker holds must be the same: keys, values, headers,
partitions and order. What the delivery callbacks and futures reported is checked
against the broker too.

Keyed records: confluent-kafka runs with partitioner=murmur2_random, librdkafka's
Java-compatible partitioner (its default, consistent_random, hashes with CRC32 and
fastprod refuses it); kafka-python's default partitioner is Java's murmur2 already.
Unkeyed examples write to one-partition topics, where placement cannot differ.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from fastprod.compat import confluent as fp_confluent
from fastprod.compat import kafka_python as fp_kafka_python

try:
    import readers
except ImportError:  # tests/ imported as a package
    from tests import readers

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka_python_original = pytest.importorskip("kafka")

pytestmark = pytest.mark.integration


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stored(bootstrap: str, topic: str, expected: int) -> dict[int, list[tuple]]:
    """partition -> [(key, value, headers)] in offset order, as the Java consumer reads."""
    out: dict[int, list[tuple]] = {}
    for r in readers.by_partition_offset(readers.java_read(bootstrap, topic, expected)):
        out.setdefault(r.partition, []).append((r.key, r.value, r.headers))
    return out


def run_both(kafka_fixture, partitions: int, example, originals, dropins, expected: int):
    """Run ``example(client_module, topic)`` with each client on its own topic; return
    (original's reports, drop-in's reports) after checking the broker holds the same."""
    bootstrap = kafka_fixture.bootstrap_servers
    results = []
    topics = []
    for module in (originals, dropins):
        topic = unique_topic("compat")
        kafka_fixture.create_topic(topic, partitions=partitions)
        results.append(example(module, topic, bootstrap))
        topics.append(topic)
    original, dropin = (stored(bootstrap, t, expected) for t in topics)
    assert sum(map(len, original.values())) == expected
    assert dropin == original
    return results


def check_reports(kafka_fixture, topic_reports):
    """Every reported (partition, offset) holds the reported value."""
    for topic, reports in topic_reports:
        records = readers.java_read(kafka_fixture.bootstrap_servers, topic, len(reports))
        at = {(r.partition, r.offset): r.value for r in records}
        for partition, offset, value in reports:
            assert at[(partition, offset)] == value


# ---- confluent-kafka --------------------------------------------------------------------


class ConfluentModules:
    """What a confluent-kafka script imports, from the original or from the drop-in."""

    def __init__(self, producer_class, kafka_error, message_checks: bool) -> None:
        self.Producer = producer_class
        self.KafkaError = kafka_error
        self.message_checks = message_checks


ORIGINAL_CONFLUENT = ConfluentModules(confluent_kafka.Producer, confluent_kafka.KafkaError,
                                      False)
DROPIN_CONFLUENT = ConfluentModules(fp_confluent.Producer, fp_confluent.KafkaError, True)


def confluent_lines_example(ck: ConfluentModules, topic: str, bootstrap: str):
    """examples/producer.py: lines from stdin, produce with a delivery callback, poll(0)
    after each, BufferError -> poll and retry, flush at the end."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    reports = []
    lines = [f"line {i}: {'x' * (i % 50)}" for i in range(2000)]

    def delivery_callback(err, msg):
        assert threading.current_thread() is threading.main_thread()  # served by poll()
        if err:
            reports.append(("error", str(err)))
        else:
            reports.append((msg.partition(), msg.offset(), msg.value()))

    for line in lines:
        while True:
            try:
                p.produce(topic, line.rstrip(), callback=delivery_callback)
                break
            except BufferError:
                p.poll(1)
        p.poll(0)
    remaining = p.flush(30)
    assert remaining == 0 and len(p) == 0
    assert len(reports) == len(lines)
    return topic, reports


def test_confluent_producer_example(kafka):
    (t1, r1), (t2, r2) = run_both(kafka, 1, confluent_lines_example, ORIGINAL_CONFLUENT,
                                  DROPIN_CONFLUENT, 2000)
    assert [r[2] for r in r1] == [r[2] for r in r2]  # reports in the same order
    check_reports(kafka, [(t1, r1), (t2, r2)])


def confluent_getting_started(ck: ConfluentModules, topic: str, bootstrap: str):
    """The getting-started producer: keyed purchases, a callback with (err, msg), headers
    and explicit timestamps added, poll(10000) at the end, then flush."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all",
                     "partitioner": "murmur2_random"})
    users = ["eabara", "jsmith", "sgarcia", "jbernard", "htanaka", "awalther"]
    products = ["book", "alarm clock", "t-shirts", "gift card", "batteries"]
    seen = []

    def delivery_callback(err, msg):
        assert err is None, err
        seen.append((msg.partition(), msg.offset(), msg.value()))
        if ck.message_checks:  # the drop-in's Message has confluent-kafka's methods
            assert msg.topic() == topic and msg.error() is None
            assert msg.timestamp()[0] == fp_confluent.TIMESTAMP_CREATE_TIME
            assert msg.latency() is not None and msg.latency() >= 0
            assert msg.key() in {u.encode() for u in users}

    for i in range(300):
        user, product = users[i % len(users)], products[(i * 7) % len(products)]
        p.produce(topic, product, user, callback=delivery_callback,
                  headers=[("n", str(i).encode()), ("src", b"shop")],
                  timestamp=1_700_000_000_000 + i)
    p.poll(10000)
    p.flush()
    assert len(seen) == 300
    return topic, seen


def test_confluent_getting_started_keyed_with_headers(kafka):
    (t1, r1), (t2, r2) = run_both(kafka, 3, confluent_getting_started, ORIGINAL_CONFLUENT,
                                  DROPIN_CONFLUENT, 300)
    check_reports(kafka, [(t1, r1), (t2, r2)])


def confluent_transactions(ck: ConfluentModules, topic: str, bootstrap: str):
    """eos-transactions.py's producer side: init, then a committed and an aborted
    transaction; read_committed readers see only the committed one."""
    p = ck.Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                     "transactional.id": f"txn-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(50):
        p.produce(topic, b"committed-%d" % i, b"k%d" % (i % 4))
        p.poll(0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, b"aborted-%d" % i, b"k%d" % (i % 4))
    p.abort_transaction(30)
    p.flush(10)
    return topic


def test_confluent_transactions(kafka):
    bootstrap = kafka.bootstrap_servers
    topics = []
    for ck in (ORIGINAL_CONFLUENT, DROPIN_CONFLUENT):
        topic = unique_topic("compat-txn")
        kafka.create_topic(topic, partitions=2)
        topics.append(confluent_transactions(ck, topic, bootstrap))
    seen = []
    for topic in topics:
        records = readers.java_read(bootstrap, topic, 50, isolation="read_committed")
        seen.append(sorted((r.partition, r.offset, r.key, r.value) for r in records))
        assert all(r.value.startswith(b"committed-") for r in records)
        assert len(records) == 50
    # same partitions and the same order within them (offsets may differ by markers)
    assert [(p, k, v) for p, _, k, v in seen[0]] == [(p, k, v) for p, _, k, v in seen[1]]


def test_confluent_queue_full_raises_buffer_error_as_the_original(kafka):
    topic = unique_topic("compat-full")
    kafka.create_topic(topic, partitions=1)
    for ck in (ORIGINAL_CONFLUENT, DROPIN_CONFLUENT):
        p = ck.Producer({"bootstrap.servers": kafka.bootstrap_servers,
                         "queue.buffering.max.messages": 10, "linger.ms": 100})
        for i in range(10):
            p.produce(topic, b"v%d" % i)
        with pytest.raises(BufferError):
            p.produce(topic, b"one too many")
        assert len(p) == 10
        assert p.flush(30) == 0
        p.produce(topic, b"after flush")  # room again once the reports are served
        assert p.flush(30) == 0
    assert len(readers.java_read(kafka.bootstrap_servers, topic, 22)) == 22


def test_confluent_dropin_stats_cb_and_list_topics(kafka):
    topic = unique_topic("compat-stats")
    kafka.create_topic(topic, partitions=3)
    stats = []
    p = fp_confluent.Producer({"bootstrap.servers": kafka.bootstrap_servers,
                               "statistics.interval.ms": 100,
                               "stats_cb": lambda s: stats.append(json.loads(s))})
    for i in range(100):
        p.produce(topic, b"v%d" % i)
    assert p.flush(30) == 0
    import time
    time.sleep(0.15)
    p.poll(0)
    assert stats and stats[-1]["type"] == "producer"
    assert stats[-1]["txmsgs"] == 100 and stats[-1]["msg_cnt"] == 0
    assert stats[-1]["tx"] >= 1 and stats[-1]["tx_bytes"] > 0
    md = p.list_topics(topic)
    assert sorted(md.topics[topic].partitions) == [0, 1, 2]
    assert md.brokers and all(b.port > 0 for b in md.brokers.values())
    original = confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap_servers})
    assert sorted(original.list_topics(topic, timeout=10).topics[topic].partitions) == [0, 1, 2]
    p.close()


# ---- kafka-python -----------------------------------------------------------------------


def kafka_python_readme(producer_class, topic: str, bootstrap: str):
    """kafka-python's README and usage page: raw bytes, future.get, keyed, a JSON
    value_serializer, a str key_serializer, headers, callbacks and errbacks, flush."""
    results = []
    p = producer_class(bootstrap_servers=bootstrap, retries=5)
    for _ in range(100):
        p.send(topic, b"some_message_bytes", key=b"raw")
    future = p.send(topic, b"another_message", key=b"raw")
    md = future.get(timeout=60)
    results.append((md.topic, md.partition, md.offset))
    p.send(topic, key=b"foo", value=b"bar")
    p.send(topic, value=b"c29tZSB2YWx1ZQ==", key=b"h",
           headers=[("content-encoding", b"base64")])
    ok, bad = [], []
    for i in range(20):
        p.send(topic, b"cb-%d" % i, key=b"k%d" % i).add_callback(
            lambda m, tag: ok.append((tag, m.partition, m.offset)), tag=i).add_errback(
            lambda e: bad.append(e))
    p.flush()
    p.close()
    assert len(ok) == 20 and not bad
    j = producer_class(bootstrap_servers=bootstrap,
                       value_serializer=lambda v: json.dumps(v).encode("utf-8"),
                       key_serializer=str.encode)
    for i in range(30):
        j.send(topic, {"foo": "bar", "n": i}, key="ping-%d" % (i % 3))
    j.flush()
    j.close()
    return results


def test_kafka_python_readme_examples(kafka):
    r1, r2 = run_both(kafka, 3, kafka_python_readme, kafka_python_original.KafkaProducer,
                      fp_kafka_python.KafkaProducer, 153)
    assert r1[0][1] == r2[0][1]  # the same partition for the keyed record


def test_kafka_python_future_shape_and_metrics(kafka):
    topic = unique_topic("compat-kp")
    kafka.create_topic(topic, partitions=2)
    original = kafka_python_original.KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    dropin = fp_kafka_python.KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    for p in (original, dropin):
        f = p.send(topic, b"v", key=b"k", timestamp_ms=1_650_000_000_000)
        md = f.get(timeout=30)
        assert f.succeeded() and not f.failed() and f.is_done
        assert (md.topic, md.timestamp, md.serialized_key_size, md.serialized_value_size) \
            == (topic, 1_650_000_000_000, 1, 1)
        assert md.topic_partition.partition == md.partition
        assert p.partitions_for(topic) == {0, 1}
        metrics = p.metrics()
        assert metrics["producer-metrics"]["record-send-rate"] >= 0  # both shapes
        if p is dropin:
            assert metrics["producer-metrics"]["record-send-total"] == 1
        p.close()
    records = readers.java_read(kafka.bootstrap_servers, topic, 2)
    assert {(r.partition, r.key, r.value, r.timestamp) for r in records} == {
        (records[0].partition, b"k", b"v", 1_650_000_000_000)}
