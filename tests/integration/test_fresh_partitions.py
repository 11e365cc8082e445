"""Records sent to a partition the producer has never written to are not lost.

A broker before KAFKA-15591's fix accepts any first sequence number from a producer id
it has no state for on a partition. So if the first batch sent to a brand-new partition
fails retriably (the leader is still loading it: NOT_LEADER_OR_FOLLOWER) while the
second one is accepted, the broker takes the second as the start of the producer's
sequence, and every retry of the first is OUT_OF_ORDER_SEQUENCE_NUMBER until
delivery.timeout.ms: a gap. The Java producer loses those records; fastprod keeps one
batch in flight per partition until the partition has acknowledged one, and recovers a
batch rejected as out of order when no earlier batch of its partition is outstanding.

Each test creates topics and produces at once, many times over, and checks with
librdkafka that every record is there, once, in order.
"""

from __future__ import annotations

import os
import uuid

import pytest

from fastprod import Producer
from fastprod.localkafka import probe
from tests.readers import confluent_read_topics

pytestmark = pytest.mark.integration

RUNS = 50


def create_now(kafka, partitions: int, config: dict[str, str] | None = None) -> str:
    """CreateTopics and return at once: no waiting until leaders are known."""
    name = f"fresh-{uuid.uuid4().hex[:12]}"
    host, port = probe.parse_bootstrap(kafka.bootstrap_servers)[0]
    err, msg = probe.create_topic(host, port, name, partitions, 1, config or {}, timeout=30)
    assert err == 0, f"CreateTopics {name}: error {err}: {msg}"
    return name


def check_all_there(bootstrap: str, sent: dict[str, list[bytes]]) -> None:
    """Every topic holds exactly the values sent to it, in send order per partition."""
    read = confluent_read_topics(bootstrap, list(sent),
                                 sum(len(v) for v in sent.values()), idle_timeout=5)
    for topic, values in sent.items():
        records = read[topic]
        got = [r.value for r in records]
        assert sorted(got) == sorted(values), (
            f"{topic}: {len(got)} records read, {len(set(got))} distinct, "
            f"{len(values)} sent")
        position = {v: i for i, v in enumerate(values)}
        by_partition: dict[int, list[int]] = {}
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            by_partition.setdefault(r.partition, []).append(position[r.value])
        for p, order in by_partition.items():
            assert order == sorted(order), f"{topic}-{p}: records out of send order"


def produce_fresh(kafka, runs: int, partitions: int, count: int, config: dict[str, str],
                  producer_config: dict) -> list[str]:
    """``runs`` times: create a topic and at once send_batch ``count`` distinct records
    to it (one producer: every topic is new to it); returns what went wrong (failed
    records per run), after checking each topic's content."""
    problems = []
    sent = {}
    with Producer({"bootstrap.servers": kafka.bootstrap_servers,
                   "delivery.timeout.ms": 20000, "request.timeout.ms": 10000,
                   **producer_config}) as producer:
        for run in range(runs):
            topic = create_now(kafka, partitions, config)
            values = [b"%04d-%06d-" % (run, i) + os.urandom(48).hex().encode()
                      for i in range(count)]
            future = producer.send_batch(topic, values)
            producer.flush(60)
            errors = future.errors()
            if errors:
                problems.append(f"run {run} ({topic}): {len(errors)} of {count} failed, "
                                f"first: {errors[0][1]!r}")
            else:
                sent[topic] = values
    check_all_there(kafka.bootstrap_servers, sent)
    return problems


def test_create_then_produce_loses_nothing(kafka):
    problems = produce_fresh(kafka, RUNS, partitions=3, count=1000, config={},
                             producer_config={})
    assert not problems, f"{len(problems)} of {RUNS} runs lost records:\n" + "\n".join(problems)


def test_split_on_a_fresh_partition_loses_nothing(kafka):
    """A batch too large for the topic is split (MESSAGE_TOO_LARGE) on a partition
    that has not acknowledged anything yet: its parts carry the batch's sequences."""
    problems = produce_fresh(kafka, RUNS, partitions=1, count=500,
                             config={"max.message.bytes": "2000"},
                             producer_config={"compression.type": "lz4"})
    assert not problems, f"{len(problems)} of {RUNS} runs lost records:\n" + "\n".join(problems)
