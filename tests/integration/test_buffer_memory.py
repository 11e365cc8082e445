"""send_batch() with more records than buffer.memory holds, against the real broker.

The call waits for memory while the sender drains what it queued (it used to block for
max.block.ms with nobody waking the sender, raise BufferFullError after writing part of
the records, and leave the caller no way to tell which). When it does fail part-way,
the exception carries the call's BatchFuture.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from fastprod import Producer, ShardedProducer
from fastprod.errors import BufferFullError
from tests.readers import confluent_read

pytestmark = pytest.mark.integration

PRODUCERS = {"Producer": lambda cfg: Producer(cfg),
             "ShardedProducer": lambda cfg: ShardedProducer(cfg, workers=1)}


def distinct_values(n: int, size: int = 60) -> list[bytes]:
    prefix = os.urandom(8).hex().encode()
    return [prefix + b"-%010d-" % i + b"v" * (size - 28) for i in range(n)]


@pytest.mark.parametrize("kind", list(PRODUCERS))
def test_send_batch_of_ten_times_buffer_memory_succeeds(kafka, kind):
    topic = f"bigbatch-{uuid.uuid4().hex[:10]}"
    kafka.create_topic(topic, partitions=2)
    buffer_memory = 1 << 20
    values = distinct_values(10 * buffer_memory // 60)
    keys = [b"k%d" % i for i in range(len(values))]
    with PRODUCERS[kind]({"bootstrap.servers": kafka.bootstrap_servers,
                          "buffer.memory": buffer_memory, "max.block.ms": 20000}) as producer:
        producer.partitions_for(topic)
        time.sleep(0.5)  # the sender has nothing to do: it sleeps until woken
        future = producer.send_batch(topic, values, keys=keys)
        assert future.errors(timeout=60) == []
    records = confluent_read(kafka.bootstrap_servers, topic, expected=len(values))
    assert sorted(r.value for r in records) == sorted(values)
    assert all(r.key == keys[int(r.value[17:27])] for r in records)


@pytest.mark.parametrize("kind", list(PRODUCERS))
def test_send_batch_failing_part_way_carries_its_future(kafka, kind):
    """The broker freezes (SIGSTOP) once the producer knows the topic: nothing is
    acknowledged, memory is not freed, and send_batch gives up after max.block.ms. Its
    exception holds the future of every record of the call: the ones not queued failed
    with it, the queued ones are delivered (or fail) as usual, once the broker wakes."""
    if not hasattr(kafka, "kill"):
        pytest.skip("needs a broker the test can pause (not FASTPROD_BOOTSTRAP)")
    topic = f"stuck-{uuid.uuid4().hex[:10]}"
    kafka.create_topic(topic, partitions=1)
    values = distinct_values(40_000)  # ~2.4 MB against 1 MiB of buffer.memory
    with PRODUCERS[kind]({"bootstrap.servers": kafka.bootstrap_servers,
                          "buffer.memory": 1 << 20, "max.block.ms": 1000,
                          "linger.ms": 0}) as producer:
        producer.partitions_for(topic)
        kafka.kill(1, signal.SIGSTOP)
        try:
            with pytest.raises(BufferFullError) as raised:
                producer.send_batch(topic, values)
        finally:
            kafka.kill(1, signal.SIGCONT)
        future = raised.value.future
        assert len(future) == len(values)
        errors = dict(future.errors(timeout=150))
    not_queued = sorted(i for i, e in errors.items() if e is raised.value)
    assert 0 < len(not_queued) < len(values)
    assert not_queued == list(range(not_queued[0], len(values)))  # the tail of the input
    delivered = {values[i] for i in range(len(values)) if i not in errors}
    records = confluent_read(kafka.bootstrap_servers, topic, expected=len(delivered))
    assert sorted(r.value for r in records) == sorted(delivered)
