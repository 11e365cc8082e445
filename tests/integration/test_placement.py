"""One placement rule for every send path (fastprod/_ext/placement.pxd).

The key -> partition rule is Java's (checked bit for bit against the Java client in
tests/unit/test_murmur2.py); here every path of both producers is run over the same keys and
partition count against the real broker, and each record must land where the rule
says. The partition -> worker rule of ShardedProducer is checked against its
definition, and the parent's Python path against its C path.
"""

from __future__ import annotations

import random
import uuid

import pytest

from fastprod import Producer, ShardedProducer
from fastprod.kernels import (
    murmur2,
    partition_for_key,
    split_by_key_partition,
    topic_worker_seed,
    worker_for_partition,
)

PARTITIONS = 7
KEYS = [b"user-%d" % i for i in range(300)] + [random.Random(3).randbytes(n)
                                              for n in range(1, 40)]


class Marker:
    """An interceptor that changes nothing: it only sends Producer down its Python path."""

    def on_send(self, record):
        return record


def paths(bootstrap: str):
    """(name, producer, send function) for every way a keyed record can be placed."""
    base = {"bootstrap.servers": bootstrap, "linger.ms": 0}
    producer = Producer(base)
    python_path = Producer({**base, "interceptor.classes": [Marker]})
    sharded = ShardedProducer(base, workers=2)

    def each(send):
        return lambda topic: [send(topic, b"v", key=k) for k in KEYS]

    def batch(p):
        return lambda topic: p.send_batch(topic, [b"v"] * len(KEYS), keys=KEYS).result(60)

    return [
        ("Producer.send (C)", producer, each(producer.send)),
        ("Producer.send (Python)", python_path, each(python_path.send)),
        ("Producer.send_batch", producer, batch(producer)),
        ("ShardedProducer.send (C)", sharded, each(sharded.send)),
        ("ShardedProducer._send (Python)", sharded,
         each(lambda t, v, key: sharded._send(t, v, key, None, None, None, None))),
        ("ShardedProducer.send_batch", sharded, batch(sharded)),
    ]


@pytest.mark.integration
def test_every_send_path_puts_a_key_where_the_java_rule_does(kafka):
    topic = f"placement-{uuid.uuid4().hex[:10]}"
    kafka.create_topic(topic, partitions=PARTITIONS)
    want = [partition_for_key(k, PARTITIONS) for k in KEYS]
    all_paths = paths(kafka.bootstrap_servers)
    try:
        for name, producer, send in all_paths:
            results = send(topic)
            got = [r.result(60).partition if hasattr(r, "result") else r.partition
                   for r in results]
            assert got == want, name
    finally:
        for producer in {id(p): p for _, p, _ in all_paths}.values():
            producer.close(30)


def test_split_by_key_partition_is_partition_for_key():
    groups = split_by_key_partition(KEYS, list(range(len(KEYS))), PARTITIONS)
    for p, (indices, keys, _) in groups.items():
        assert all(partition_for_key(k, PARTITIONS) == p for k in keys)
    assert sorted(i for g in groups.values() for i in g[0]) == list(range(len(KEYS)))


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_worker_rule(workers):
    """Each partition has one worker: the topic's seed (toPositive(murmur2(name)))
    plus the partition, modulo the worker count; consecutive partitions go round."""
    for topic in ("events", "t", "ü-topic", "x" * 249):
        seed = topic_worker_seed(topic)
        assert seed == murmur2(topic.encode()) & 0x7FFFFFFF
        owners = [worker_for_partition(seed, p, workers) for p in range(50)]
        assert owners == [(seed + p) % workers for p in range(50)]
        assert set(owners) == set(range(workers))


@pytest.mark.integration
def test_sharded_python_and_c_paths_pick_the_same_worker(kafka):
    """A record placed by the C path and one placed by the Python path of the same
    partition are staged for the same worker."""
    topic = f"placement-w-{uuid.uuid4().hex[:10]}"
    kafka.create_topic(topic, partitions=PARTITIONS)
    with ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers}, workers=3) as sp:
        sp.partitions_for(topic)
        for p in range(PARTITIONS):
            handle = sp._feeder.worker_for(topic, p)
            index = sp._workers.index(handle)
            assert index == worker_for_partition(topic_worker_seed(topic), p, 3)
            assert sp._send_path.worker_index(topic, p) == index
