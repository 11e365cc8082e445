"""metrics() of both producers against an independent truth: what the Java consumer
reads, what the broker stored (its log segments), and errors and retries forced on
purpose (issue 11)."""

from __future__ import annotations

import os
import uuid

import pytest

from fastprod import Producer, ShardedProducer
from fastprod.localkafka import LocalKafka
from tests import readers
from tests.helpers import settle, unique_topic, wait_until

pytestmark = pytest.mark.integration

RECORDS = 6000


def make(kind: str, kafka, **config):
    config = {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 20, **config}
    return Producer(config) if kind == "producer" else ShardedProducer(config, workers=2)


def totals(p) -> dict[tuple[str, str], float]:
    """(group, name) -> value of the metrics without topic/node/worker tags, and the
    topic metrics by (group, name, topic)."""
    out: dict = {}
    for name, metric in p.metrics().items():
        extra = set(name.tags) - {"client-id"}
        if not extra:
            out[(name.group, name.name)] = metric.value()
        elif extra == {"topic"}:
            out[(name.group, name.name, name.tags["topic"])] = metric.value()
    return out


@pytest.mark.parametrize("kind", ["producer", "sharded"])
def test_counts_match_what_was_written(kafka, kind):
    """record-send-total is what the Java consumer reads; batch-size-avg and the
    number of batches are those the broker stored; buffer-available-bytes is all of
    buffer.memory again once flushed; nothing failed or was retried."""
    topic = unique_topic(f"metrics-{kind}")
    kafka.create_topic(topic, partitions=3)
    settle(kafka.bootstrap_servers, topic, 3)
    values = [os.urandom(40).hex().encode() for _ in range(RECORDS)]
    keys = [uuid.uuid4().bytes for _ in range(RECORDS)]
    with make(kind, kafka) as p:
        future = p.send_batch(topic, values, keys=keys)
        for i in range(200):  # and the send() path
            p.send(topic, b"one-%d" % i, key=b"k%d" % i)
        p.flush()
        assert not future.errors()
        m = totals(p)
        sent = RECORDS + 200
        assert m[("producer-metrics", "record-send-total")] == sent
        assert m[("producer-topic-metrics", "record-send-total", topic)] == sent
        assert m[("producer-metrics", "record-error-total")] == 0
        assert m[("producer-metrics", "record-retry-total")] == 0
        assert m[("producer-metrics", "requests-in-flight")] == 0
        assert m[("producer-metrics", "connection-count")] >= 1
        assert m[("producer-metrics", "outgoing-byte-total")] > sum(map(len, values))
        assert m[("producer-metrics", "request-latency-max")] >= \
            m[("producer-metrics", "request-latency-avg")] > 0
        workers = 1 if kind == "producer" else 2
        # (a batch's memory comes back just after its future completes)
        wait_until(lambda: (lambda t: t[("producer-metrics", "buffer-available-bytes")] ==
                            t[("producer-metrics", "buffer-total-bytes")] > 0)(totals(p)),
                   10, "buffer-available-bytes back to buffer-total-bytes")
        batch_avg = m[("producer-metrics", "batch-size-avg")]
        batch_max = m[("producer-metrics", "batch-size-max")]
        per_request = m[("producer-metrics", "records-per-request-avg")]
    read = readers.java_read(kafka.bootstrap_servers, topic, expected=sent)
    assert len(read) == sent
    if isinstance(kafka, LocalKafka):
        stored = [b for part in range(3)
                  for b in readers.dump_batches(kafka.nodes[0].spec.data_dir, topic, part)]
        assert sum(b.count for b in stored) == sent
        sizes = [b.size for b in stored]
        if workers == 1:  # one producer: its averages are exact
            assert batch_avg == pytest.approx(sum(sizes) / len(sizes))
        else:  # the mean of the two workers' averages
            assert min(sizes) <= batch_avg <= max(sizes)
        assert batch_max == max(sizes)
        # a request holds at least one batch and at most one per partition
        assert sent / len(stored) <= per_request * workers + 1e-9
        assert per_request <= sent


@pytest.mark.parametrize("kind", ["producer", "sharded"])
def test_errors_are_counted(kafka, kind):
    """A record over the topic's max.message.bytes fails: record-error-total counts it,
    for the producer and for its topic; a good record beside it is not counted.
    (Retries: tests/faults/test_proxy_faults.py, where answers can be lost.)"""
    big = unique_topic(f"metrics-big-{kind}")
    kafka.create_topic(big, config={"max.message.bytes": 2000})
    settle(kafka.bootstrap_servers, big, 1)
    with make(kind, kafka) as p:
        assert p.send(big, b"x" * 5000).exception(timeout=30) is not None
        assert p.send(big, b"small").result(timeout=30).offset >= 0
        m = totals(p)
    assert m[("producer-topic-metrics", "record-error-total", big)] == 1
    assert m[("producer-metrics", "record-error-total")] == 1
    assert m[("producer-metrics", "record-send-total")] == 2  # each attempt counts
    assert m[("producer-metrics", "record-retry-total")] == 0


def test_transaction_calls_are_timed(kafka):
    """txn-*-time-ns-total add up the time of each call; one that was not made is 0."""
    topic = unique_topic("metrics-txn")
    kafka.create_topic(topic)
    settle(kafka.bootstrap_servers, topic, 1)
    with Producer({"bootstrap.servers": kafka.bootstrap_servers,
                   "transactional.id": unique_topic("metrics-txn-id")}) as p:
        p.init_transactions()
        p.begin_transaction()
        p.send(topic, b"in a transaction")
        p.commit_transaction()
        m = totals(p)
    assert m[("producer-metrics", "txn-init-time-ns-total")] > 0
    assert m[("producer-metrics", "txn-begin-time-ns-total")] > 0
    assert m[("producer-metrics", "txn-commit-time-ns-total")] > 0
    assert m[("producer-metrics", "txn-abort-time-ns-total")] == 0
    assert m[("producer-metrics", "flush-time-ns-total")] == 0
    assert m[("producer-metrics", "record-send-total")] == 1
