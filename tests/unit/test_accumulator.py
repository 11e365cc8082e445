"""RecordAccumulator: append, ready, drain, expiry, retries, memory and the sticky
partitioner, driven with ``now_ms`` by hand (no clock, no sleeping; only the buffer
memory tests wait, ~50 ms). Many scenarios are ports of Java's RecordAccumulatorTest;
where fastprod differs from Java the test states Java's behaviour and is marked
xfail(strict) with the deviation in its reason."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from fastprod._ext.accumulate import SendFastPath
from fastprod.engine.accumulator import UNKNOWN_PARTITION, record_size_upper_bound
from fastprod.engine.batch import split_batch
from fastprod.engine.transaction_manager import TransactionManager
from fastprod.errors import BufferFullError, KafkaError, ProducerClosedError
from fastprod.kernels import (
    COMPRESSION_GZIP,
    RECORD_BATCH_OVERHEAD,
    BatchBuilder,
    partition_for_key,
    read_batch,
)
from fastprod.partitioners import record_partition
from tests.fakes import (
    SequentialRandom,
    init_producer_id_response,
    make_accumulator,
    make_snapshot,
)

TOPIC = "test"
KEY = b"key"
VALUE = b"value"
MAX_BLOCK_MS = 1000
BIG = 2**31 - 1

# Java's fixture: partitions 0 and 1 led by node 0, partition 2 by node 1.
SNAP = make_snapshot({TOPIC: [0, 0, 1]})


def record_size(key=KEY, value=VALUE, offset_delta=0) -> int:
    """Java's DefaultRecord.sizeInBytes for a record without headers."""
    return BatchBuilder(0, 1 << 20).append(offset_delta, 0, key, value)


MSG_SIZE = record_size()


def expected_num_appends(batch_size: int, key=KEY, value=VALUE) -> int:
    """Java's expectedNumAppends: records that fit ``batch_size`` bytes of records."""
    size = offset_delta = 0
    while True:
        size += record_size(key, value, offset_delta)
        if size > batch_size:
            return offset_delta
        offset_delta += 1


def append(acc, partition=0, *, key=KEY, value=VALUE, now_ms=0, snapshot=SNAP, topic=TOPIC,
           callback=None, max_block_ms=MAX_BLOCK_MS, timestamp=0):
    return acc.append(topic, partition, timestamp, key, value, None, callback, max_block_ms,
                      now_ms, snapshot)


def deque_of(acc, partition, topic=TOPIC):
    info = acc.topics.get(topic)
    return None if info is None else info.deques.get(partition)


def drained(batches: dict) -> dict[int, list[tuple[str, int]]]:
    return {node: [(b.topic, b.partition) for b in bs] for node, bs in batches.items()}


def values(batch) -> list[bytes]:
    return [r.value for r in read_batch(batch.records()).records]


# ---- linger, full batches, batch.size ------------------------------------------------------

def test_linger():
    linger_ms = 10
    acc = make_accumulator(batch_size=1024 + RECORD_BATCH_OVERHEAD, linger_ms=linger_ms)
    append(acc, now_ms=0)
    result = acc.ready(SNAP, 0)
    assert result.ready_nodes == set()
    assert result.next_ready_check_delay_ms == linger_ms
    assert acc.ready(SNAP, linger_ms - 1).ready_nodes == set()
    assert acc.ready(SNAP, linger_ms).ready_nodes == {0}
    batches = acc.drain(SNAP, {0}, BIG, linger_ms)[0]
    assert len(batches) == 1
    records = read_batch(batches[0].records()).records
    assert [(r.key, r.value) for r in records] == [(KEY, VALUE)]


def test_next_ready_check_delay():
    """Java's testNextReadyCheckDelay."""
    linger_ms = 10
    batch_size = 1025
    acc = make_accumulator(batch_size=batch_size + RECORD_BATCH_OVERHEAD, linger_ms=linger_ms)
    appends = expected_num_appends(batch_size)
    for _ in range(appends):
        append(acc, 0, now_ms=0)
    result = acc.ready(SNAP, 0)
    assert result.ready_nodes == set()
    assert result.next_ready_check_delay_ms == linger_ms

    for _ in range(appends):
        append(acc, 2, now_ms=linger_ms // 2)
    result = acc.ready(SNAP, linger_ms // 2)
    assert result.ready_nodes == set()
    assert result.next_ready_check_delay_ms == linger_ms // 2  # node 0's batch

    for _ in range(appends + 1):  # one batch full: sendable at once
        append(acc, 1, now_ms=linger_ms // 2)
    result = acc.ready(SNAP, linger_ms // 2)
    assert result.ready_nodes == {0}
    assert result.next_ready_check_delay_ms <= linger_ms


def test_full_batch_is_ready_at_once():
    """Java's testFull: the record that does not fit opens a second batch and makes the
    partition ready before linger.ms; the first batch holds exactly what fitted."""
    batch_size = 1025
    acc = make_accumulator(batch_size=batch_size + RECORD_BATCH_OVERHEAD, linger_ms=10)
    appends = expected_num_appends(batch_size)
    for _ in range(appends):
        result = append(acc, 0)
        assert not result.batch_is_full
        assert len(deque_of(acc, 0)) == 1
        assert acc.ready(SNAP, 0).ready_nodes == set()
    result = append(acc, 0)
    assert result.batch_is_full and result.new_batch_created
    assert len(deque_of(acc, 0)) == 2
    assert acc.ready(SNAP, 0).ready_nodes == {0}
    batches = acc.drain(SNAP, {0}, BIG, 0)[0]
    assert len(batches) == 1
    assert values(batches[0]) == [VALUE] * appends
    assert len(batches[0].records()) <= batch_size + RECORD_BATCH_OVERHEAD


def test_batch_filled_exactly_is_full():
    n = 4
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + n * MSG_SIZE, linger_ms=10_000)
    for _ in range(n):
        append(acc, 0)
    assert len(deque_of(acc, 0)) == 1
    assert acc.ready(SNAP, 0).ready_nodes == {0}


def test_batch_size_is_respected_and_records_keep_their_order():
    batch_size = 300
    acc = make_accumulator(batch_size=batch_size)
    sent = [b"v%03d" % i for i in range(100)]
    futures = [append(acc, 0, value=v, key=None).future for v in sent]
    dq = deque_of(acc, 0)
    assert len(dq) > 3
    got = []
    for batch in list(dq):
        assert len(batch.records()) <= batch_size
        got.extend(values(batch))
    assert got == sent
    # Each record's future points into its batch at its own offset delta.
    base = 1000
    for batch in list(dq):
        batch.complete(base, -1)
        base += batch.record_count
    assert [f.result(0).offset for f in futures] == list(range(1000, 1100))


@pytest.mark.parametrize("codec", [0, COMPRESSION_GZIP])
def test_record_larger_than_batch_size_gets_a_batch_of_its_own(codec):
    """Java's testAppendLarge."""
    batch_size = 512
    big = bytes(2 * batch_size)
    acc = make_accumulator(batch_size=batch_size + RECORD_BATCH_OVERHEAD,
                           compression_type=codec)
    append(acc, 0, value=big)
    assert acc.ready(SNAP, 0).ready_nodes == {0}
    dq = deque_of(acc, 0)
    assert len(dq) == 1
    batch = read_batch(dq[0].records())
    assert batch.base_offset == 0
    assert [(r.offset, r.key, r.value, r.timestamp) for r in batch.records] == \
        [(0, KEY, big, 0)]


# ---- ready: leaders ----------------------------------------------------------------------

def test_ready_reports_topics_without_a_leader():
    snap = make_snapshot({TOPIC: [0, -1], "other": [1]})
    acc = make_accumulator()
    append(acc, 1, snapshot=snap)                       # partition without a leader
    append(acc, 0, snapshot=snap, topic="unknown")      # topic not in the snapshot
    append(acc, 0, snapshot=snap, topic="other")
    result = acc.ready(snap, 0)
    assert result.unknown_leader_topics == {TOPIC, "unknown"}
    assert result.ready_nodes == {1}
    assert drained(acc.drain(snap, {0, 1}, BIG, 0)) == {1: [("other", 0)]}


def test_ready_treats_a_leader_missing_from_the_nodes_as_unknown():
    snap = make_snapshot({TOPIC: [5]})  # node 5 is not among the brokers
    acc = make_accumulator()
    append(acc, 0, snapshot=snap)
    result = acc.ready(snap, 0)
    assert result.ready_nodes == set()
    assert result.unknown_leader_topics == {TOPIC}


# ---- drain -------------------------------------------------------------------------------

def test_drain_takes_one_batch_per_partition_and_respects_the_request_size():
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + MSG_SIZE)  # one record each
    for p in (0, 0, 1):
        append(acc, p)
    first = acc.drain(SNAP, {0}, BIG, 0)
    assert sorted(drained(first)[0]) == [(TOPIC, 0), (TOPIC, 1)]
    second = acc.drain(SNAP, {0}, BIG, 0)
    assert drained(second) == {0: [(TOPIC, 0)]}
    assert acc.drain(SNAP, {0}, BIG, 0) == {}


def test_partial_drain():
    """Java's testPartialDrain: a request holds only what fits max.request.size."""
    acc = make_accumulator(batch_size=1024 + RECORD_BATCH_OVERHEAD, linger_ms=10)
    appends = 1024 // MSG_SIZE + 1
    for p in (0, 1):
        for _ in range(appends):
            append(acc, p)
    assert acc.ready(SNAP, 0).ready_nodes == {0}
    batches = acc.drain(SNAP, {0}, 1024, 0)[0]
    assert len(batches) == 1


def test_a_batch_larger_than_the_request_size_still_goes_alone():
    acc = make_accumulator(batch_size=100)
    append(acc, 0, value=bytes(500))
    append(acc, 1, value=bytes(500))
    assert len(acc.drain(SNAP, {0}, 200, 0)[0]) == 1
    assert len(acc.drain(SNAP, {0}, 200, 0)[0]) == 1


def test_drain_of_a_node_without_partitions_is_empty():
    acc = make_accumulator(batch_size=10, linger_ms=10)
    append(acc, 0)
    assert acc.drain(make_snapshot({TOPIC: [0]}), {1}, BIG, 0) == {}


def test_drain_rotates_fairly_across_calls():
    """Java's testDrainBatches: node 0 leads p0, p1; node 1 leads p2, p3."""
    snap = make_snapshot({TOPIC: [0, 0, 1, 1]})
    batch_size = len(VALUE) + RECORD_BATCH_OVERHEAD
    acc = make_accumulator(batch_size=batch_size, linger_ms=10)

    def add(*partitions):
        for p in partitions:
            append(acc, p, snapshot=snap)

    def drain(max_size=batch_size):
        return drained(acc.drain(snap, {0, 1}, max_size, 0))

    add(0, 1, 2, 3)
    assert drain() == {0: [(TOPIC, 0)], 1: [(TOPIC, 2)]}
    add(0, 2)
    # the drain index moved on: the partitions left behind go first now
    assert drain() == {0: [(TOPIC, 1)], 1: [(TOPIC, 3)]}
    assert drain() == {0: [(TOPIC, 0)], 1: [(TOPIC, 2)]}
    add(1, 2, 3)
    acc.mute((TOPIC, 3))
    assert drain() == {0: [(TOPIC, 1)], 1: [(TOPIC, 2)]}
    add(0, 1, 2)
    acc.unmute((TOPIC, 3))
    assert drain(BIG) == {0: [(TOPIC, 0), (TOPIC, 1)], 1: [(TOPIC, 2), (TOPIC, 3)]}


def test_muted_partitions_are_neither_ready_nor_drained():
    """Java's testMutedPartitions."""
    batch_size = 1025
    acc = make_accumulator(batch_size=batch_size + RECORD_BATCH_OVERHEAD, linger_ms=10)
    for _ in range(expected_num_appends(batch_size)):
        append(acc, 0)
        assert acc.ready(SNAP, 0).ready_nodes == set()
    now = 2000
    acc.mute((TOPIC, 0))
    assert acc.ready(SNAP, now).ready_nodes == set()
    acc.unmute((TOPIC, 0))
    assert acc.ready(SNAP, now).ready_nodes == {0}
    acc.mute((TOPIC, 0))
    assert acc.drain(SNAP, {0}, BIG, now) == {}
    acc.unmute((TOPIC, 0))
    assert len(acc.drain(SNAP, {0}, BIG, now)[0]) == 1


# ---- retries -----------------------------------------------------------------------------

def test_retry_backoff():
    """Java's testRetryBackoff (without jitter): a reenqueued batch waits
    retry.backoff.ms, while other partitions of the node go at once."""
    linger_ms = 2**31 // 16
    retry_backoff_ms = 2**31 // 8
    acc = make_accumulator(batch_size=1024 + RECORD_BATCH_OVERHEAD, linger_ms=linger_ms,
                           retry_backoff_ms=retry_backoff_ms,
                           retry_backoff_max_ms=retry_backoff_ms * 10,
                           delivery_timeout_ms=BIG)
    now = 0
    append(acc, 0, now_ms=now)
    assert acc.ready(SNAP, now + linger_ms + 1).ready_nodes == {0}
    batches = acc.drain(SNAP, {0}, BIG, now + linger_ms + 1)
    assert drained(batches) == {0: [(TOPIC, 0)]}

    acc.reenqueue(batches[0][0], now)
    append(acc, 1, now_ms=now)
    assert acc.ready(SNAP, now + linger_ms + 1).ready_nodes == {0}
    batches = acc.drain(SNAP, {0}, BIG, now + linger_ms + 1)
    assert drained(batches) == {0: [(TOPIC, 1)]}  # partition 0 backs off

    assert acc.ready(SNAP, now + retry_backoff_ms + 1).ready_nodes == {0}
    batches = acc.drain(SNAP, {0}, BIG, now + retry_backoff_ms + 1)
    assert drained(batches) == {0: [(TOPIC, 0)]}


def test_exponential_retry_backoff():
    """Java's testExponentialRetryBackoff, exactly (fastprod has no jitter):
    retry n waits min(retry.backoff.ms * 2**(n-1), retry.backoff.max.ms)."""
    acc = make_accumulator(batch_size=1024 + RECORD_BATCH_OVERHEAD, linger_ms=2**31 // 16,
                           retry_backoff_ms=100, retry_backoff_max_ms=1000,
                           delivery_timeout_ms=BIG)
    append(acc, 0, now_ms=0)
    assert acc.ready(SNAP, 0).ready_nodes == set()
    acc.begin_flush()  # a flush overrides the long linger, but not the retry backoff
    [batch] = acc.drain(SNAP, {0}, BIG, 0)[0]
    now = 0
    for attempt, backoff in enumerate([100, 200, 400, 800, 1000, 1000], start=1):
        acc.reenqueue(batch, now)
        assert batch.attempts == attempt
        result = acc.ready(SNAP, now + backoff - 1)
        assert result.ready_nodes == set()
        assert result.next_ready_check_delay_ms == 1
        assert acc.drain(SNAP, {0}, BIG, now + backoff - 1) == {}
        assert acc.ready(SNAP, now + backoff).ready_nodes == {0}
        [batch] = acc.drain(SNAP, {0}, BIG, now + backoff)[0]
        now += backoff


def test_reenqueue_puts_the_batch_back_at_the_head():
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + MSG_SIZE)
    append(acc, 0, value=b"first")
    [first] = acc.drain(SNAP, {0}, BIG, 0)[0]
    append(acc, 0, value=b"second")
    append(acc, 0, value=b"third")
    acc.reenqueue(first, 5)
    assert [values(b) for b in deque_of(acc, 0)] == [[b"first"], [b"second"], [b"third"]]
    assert first.in_retry and first.attempts == 1 and first.last_attempt_ms == 5


def test_reenqueue_with_sequences_keeps_sequence_order():
    """Java's insertInSequenceOrder: retries of several in-flight batches come back in
    any order and are put back in sequence order, ahead of batches never sent."""
    tm = TransactionManager(transaction_timeout_ms=60000, retry_backoff_ms=100)
    tm.handle_init_response(init_producer_id_response(7, 0), None, 0)
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + MSG_SIZE,
                           transaction_manager=tm)
    append(acc, 0, value=b"first")
    [[first]] = acc.drain(SNAP, {0}, BIG, 0).values()
    tm.on_acknowledged(first)  # acknowledged once: batches may pipeline
    for i in range(3):
        append(acc, 0, value=b"%d" % i)
    sent = [acc.drain(SNAP, {0}, BIG, 0)[0][0] for _ in range(3)]
    assert [b.base_sequence for b in sent] == [1, 2, 3]
    append(acc, 0, value=b"new")
    for i in (2, 0, 1):
        acc.reenqueue(sent[i], 10)
    dq = deque_of(acc, 0)
    assert [b.base_sequence for b in dq] == [1, 2, 3, -1]
    assert values(dq[3]) == [b"new"]


def test_a_record_appended_after_a_retry_is_sent():
    acc = make_accumulator(linger_ms=0)
    append(acc, 0, value=b"one")
    [batch] = acc.drain(SNAP, {0}, BIG, 0)[0]
    acc.reenqueue(batch, 10)
    second = append(acc, 0, value=b"two", now_ms=10)
    assert second.new_batch_created
    sent = [v for b in deque_of(acc, 0) for v in values(b)]
    assert sent == [b"one", b"two"]


def test_fast_path_does_not_append_to_a_retried_batch():
    acc = make_accumulator(linger_ms=0)
    append(acc, 0, value=b"one")
    [batch] = acc.drain(SNAP, {0}, BIG, 0)[0]
    acc.reenqueue(batch, 10)
    fast = SendFastPath(acc.lock, acc.topics, SNAP, lambda *args: "slow",
                        key_passthrough=True, value_passthrough=True,
                        partitioner_builtin=True, ignore_keys=False,
                        sticky_batch_size=acc.batch_size)
    assert fast.send(TOPIC, b"two", None, 0, 0) == "slow"
    assert batch.record_count == 1


# ---- expiry --------------------------------------------------------------------------------

def test_expired_batches_after_delivery_timeout():
    """Java's testExpiredBatches and doExpireBatchSingle: a batch expires
    delivery.timeout.ms after it was created, whether or not its partition is muted,
    and a retried batch counts from its creation too."""
    delivery_timeout_ms = 3200
    linger_ms = 300
    batch_size = 1025
    acc = make_accumulator(batch_size=batch_size + RECORD_BATCH_OVERHEAD, linger_ms=linger_ms,
                           delivery_timeout_ms=delivery_timeout_ms)
    for _ in range(expected_num_appends(batch_size) + 1):  # two batches, the first full
        append(acc, 0, now_ms=0)
    assert acc.ready(SNAP, 0).ready_nodes == {0}
    assert acc.expired_batches(delivery_timeout_ms - 1) == []
    acc.mute((TOPIC, 0))
    expired = acc.expired_batches(delivery_timeout_ms)
    assert len(expired) == 2 and expired[0].record_count > expired[1].record_count
    assert all(b.full for b in expired)
    assert not acc.has_undrained()
    acc.unmute((TOPIC, 0))
    assert acc.expired_batches(delivery_timeout_ms) == []

    now = 10_000
    append(acc, 0, now_ms=now)
    [batch] = acc.drain(SNAP, {0}, BIG, now + linger_ms)[0]
    acc.reenqueue(batch, now + 1000)
    assert acc.expired_batches(now + delivery_timeout_ms - 1) == []
    assert acc.expired_batches(now + delivery_timeout_ms) == [batch]


def test_only_the_expired_head_of_a_queue_is_removed():
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + MSG_SIZE,
                           delivery_timeout_ms=100)
    append(acc, 0, now_ms=0)
    append(acc, 0, now_ms=50)
    assert [b.created_ms for b in acc.expired_batches(120)] == [0]
    assert [b.created_ms for b in deque_of(acc, 0)] == [50]


# ---- flush, close, abort -------------------------------------------------------------------

def test_flush_makes_everything_ready():
    """Java's testFlush."""
    acc = make_accumulator(batch_size=4 * 1024 + RECORD_BATCH_OVERHEAD, linger_ms=BIG)
    futures = [append(acc, i % 3).future for i in range(100)]
    assert acc.has_incomplete()
    assert acc.ready(SNAP, 0).ready_nodes == set()
    acc.begin_flush()
    result = acc.ready(SNAP, 0)
    assert result.ready_nodes == {0, 1}
    batches = acc.drain(SNAP, result.ready_nodes, BIG, 0)
    assert not acc.has_undrained() and acc.has_incomplete()
    assert not acc.await_flush_completion(0.001)
    for node_batches in batches.values():
        for batch in node_batches:
            batch.complete(0, -1)
            acc.deallocate(batch)
    assert acc.await_flush_completion(0)
    acc.end_flush()
    assert not acc.has_incomplete()
    assert all(f.done() for f in futures)
    assert acc.ready(SNAP, 0).ready_nodes == set()


def test_close_makes_everything_ready_and_refuses_appends():
    acc = make_accumulator(linger_ms=BIG)
    append(acc, 0)
    append(acc, 2)
    assert acc.ready(SNAP, 0).ready_nodes == set()
    acc.close()
    assert acc.ready(SNAP, 0).ready_nodes == {0, 1}
    with pytest.raises(ProducerClosedError):
        append(acc, 0)


def test_abort_undrained_batches_fails_every_queued_future():
    """Java's testAbortUnsentBatches: queued batches fail with the cause, drained ones
    are left to the sender."""
    acc = make_accumulator(batch_size=128 + RECORD_BATCH_OVERHEAD, linger_ms=BIG)
    errors = []
    futures = [append(acc, i % 3, callback=lambda md, e: errors.append(e)).future
               for i in range(100)]
    acc.close()
    result = acc.ready(SNAP, 0)
    drained_batches = [b for bs in acc.drain(SNAP, result.ready_nodes, BIG, 0).values()
                       for b in bs]
    in_flight = sum(b.record_count for b in drained_batches)
    assert 0 < in_flight < 100
    cause = KafkaError("aborted")
    acc.abort_undrained_batches(cause)
    assert not acc.has_undrained()
    assert acc.has_incomplete()  # the drained ones
    assert len(errors) == 100 - in_flight and all(e is cause for e in errors)
    assert sum(f.done() for f in futures) == 100 - in_flight
    assert all(f.exception(0) is cause for f in futures if f.done())
    assert all(not b.is_done() for b in drained_batches)
    reserved = sum(b.reserved_bytes for b in drained_batches)
    assert acc.pool.available_memory == acc.pool.total_memory - reserved


# ---- buffer.memory -------------------------------------------------------------------------

def test_memory_is_reserved_per_batch_and_returned_on_deallocate():
    acc = make_accumulator(batch_size=1000, buffer_memory=10_000)
    append(acc, 0)
    append(acc, 1)
    append(acc, 1)
    big = bytes(3000)
    append(acc, 2, value=big)
    need_big = record_size_upper_bound(KEY, big, None)
    assert acc.pool.available_memory == 10_000 - 2 * 1000 - need_big
    batches = [b for bs in acc.drain(SNAP, {0, 1}, BIG, 0).values() for b in bs]
    for batch in batches:
        batch.complete(0, -1)
        acc.deallocate(batch)
        acc.deallocate(batch)  # twice is harmless
    assert acc.pool.available_memory == 10_000


def test_append_raises_buffer_full_after_max_block_ms():
    acc = make_accumulator(batch_size=100, buffer_memory=150)
    append(acc, 0)
    start = time.monotonic()
    with pytest.raises(BufferFullError):
        append(acc, 1, max_block_ms=50)
    assert 0.04 <= time.monotonic() - start < 1.0
    assert acc.pool.available_memory == 50  # nothing leaked by the failed append
    assert not acc.appends_in_progress()


def test_a_blocked_append_goes_on_when_memory_is_returned():
    acc = make_accumulator(batch_size=100, buffer_memory=150, linger_ms=BIG)
    append(acc, 0)
    done = []
    thread = threading.Thread(target=lambda: done.append(append(acc, 1, max_block_ms=5000)))
    thread.start()
    deadline = time.monotonic() + 2
    while acc.pool.queued == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert acc.pool.queued == 1
    # a thread waiting for memory makes every partition ready (Java's "exhausted")
    assert acc.ready(SNAP, 0).ready_nodes == {0}
    [batch] = acc.drain(SNAP, {0}, BIG, 0)[0]
    batch.complete(0, -1)
    acc.deallocate(batch)
    thread.join(2)
    assert done and done[0].new_batch_created and done[0].partition == 1
    assert acc.pool.available_memory == 50


# ---- the sticky partitioner ----------------------------------------------------------------

def test_uniform_built_in_partitioner():
    """Java's testUniformBuiltInPartitioner: switch after batch.size bytes, but only
    once no half-filled batch is left behind."""
    rng = SequentialRandom()
    batch_size = 1024
    acc = make_accumulator(batch_size=batch_size, rng=rng)
    large = bytes(batch_size)

    def send(value):
        return append(acc, UNKNOWN_PARTITION, key=None, value=value).partition

    assert send(VALUE) == 0 and rng.calls == 1
    # over the sticky limit, but the switch waits: the batch is not full
    assert send(large) == 0 and rng.calls == 1
    assert send(large) == 1 and rng.calls == 2
    assert send(large) == 2 and rng.calls == 3
    assert send(large) == 0 and rng.calls == 4


def test_built_in_partitioner_avoids_fractional_batches():
    """Java's testBuiltInPartitionerFractionalBatches: with linger, each batch sent is
    between half and all of batch.size."""
    batch_size = 512
    value = bytes(32)
    acc = make_accumulator(batch_size=batch_size, linger_ms=10, rng=random.Random(1))
    now = 0
    for _ in range(10):
        for _ in range(batch_size * 2 // 3 // len(value)):
            append(acc, UNKNOWN_PARTITION, key=None, value=value, now_ms=now)
        now += 10
        nodes = acc.ready(SNAP, now).ready_nodes
        assert len(nodes) == 1
        [batches] = acc.drain(SNAP, nodes, BIG, now).values()
        assert len(batches) == 1
        assert batch_size // 2 < len(batches[0].records()) < batch_size


def test_append_many_fills_sticky_partitions_like_append():
    """append_many (send_batch's path) and one append per record (send's path) put the
    same records in the same batches of the same partitions."""
    snap = make_snapshot({TOPIC: [0, 1, 2, 0, 1]})
    vals = [os.urandom(random.Random(i).randrange(1, 300)) for i in range(400)]

    one = make_accumulator(batch_size=1000, rng=random.Random(7))
    for v in vals:
        append(one, UNKNOWN_PARTITION, key=None, value=v, snapshot=snap)

    many = make_accumulator(batch_size=1000, rng=random.Random(7))
    segments = []
    many.append_many(TOPIC, UNKNOWN_PARTITION, 0, None, vals, MAX_BLOCK_MS, 0, snap,
                     lambda batch, first, start, count: segments.append(
                         (batch.partition, first, start, count)))

    def layout(acc):
        return {p: [values(b) for b in dq] for p, dq in acc.topics[TOPIC].deques.items()
                if dq}

    assert len(layout(one)) > 1  # the sticky partition did switch
    assert layout(many) == layout(one)
    assert sum(s[3] for s in segments) == len(vals)
    assert [s[2] for s in segments] == sorted(s[2] for s in segments)


def test_append_many_to_a_partition_splits_across_batches():
    acc = make_accumulator(batch_size=300)
    segments = []
    vals = [b"%03d" % i for i in range(100)]
    keys = [b"k%d" % i for i in range(100)]
    wake = acc.append_many(TOPIC, 1, 0, keys, vals, MAX_BLOCK_MS, 0, SNAP,
                           lambda batch, first, start, count: segments.append(
                               (batch, first, start, count)))
    assert wake
    dq = deque_of(acc, 1)
    assert [s[0] for s in segments] == list(dq)
    assert all(s[1] == 0 for s in segments)
    assert [v for b in dq for v in values(b)] == vals
    assert [r.key for b in dq for r in read_batch(b.records()).records] == keys


def test_sticky_switch_counts_the_batch_header_like_java():
    rng = SequentialRandom()
    n = 4
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + n * record_size(None),
                           rng=rng)
    partitions = [append(acc, UNKNOWN_PARTITION, key=None).partition for _ in range(n + 1)]
    # Java: produced = 61 + 4 records = batch.size and the batch is full: switch
    assert partitions == [0] * n + [1]


def test_sticky_switch_with_compression_counts_estimated_compressed_bytes():
    """As Java (appendedBytes = the growth of estimatedSizeInBytes): with compression the
    sticky partitioner counts estimated compressed bytes, so a partition gets a batch's
    worth of compressed data before the switch."""
    rng = SequentialRandom()
    batch_size = 2000
    acc = make_accumulator(batch_size=batch_size, compression_type=COMPRESSION_GZIP,
                           rng=rng)
    append(acc, UNKNOWN_PARTITION, key=None)  # create the topic's state
    acc.topics[TOPIC].compression_ratio = 0.1  # Java: CompressionRatioEstimator.setEstimation
    acc.abort_undrained_batches(KafkaError("reset"))
    value = bytes(100)
    # ~107 bytes a record, estimated 107 x 0.1 x 1.05 ~ 11: ~160 records fit a batch
    # (Java's hasRoomFor adds a record's uncompressed size, so each batch closes just
    # short of batch.size estimated bytes and never forces the switch), so the switch
    # comes at 2 x batch.size estimated bytes, ~320 records; counting uncompressed
    # bytes would switch after ~36.
    first = append(acc, UNKNOWN_PARTITION, key=None, value=value).partition
    before_switch = 1
    while append(acc, UNKNOWN_PARTITION, key=None, value=value).partition == first:
        before_switch += 1
        assert before_switch < 1000, "the sticky partition never switched"
    assert 300 <= before_switch <= 340, before_switch


def test_adaptive_built_in_partitioner():
    """Java's testAdaptiveBuiltInPartitioner: partitions are chosen with weights
    max(queue)+1-queue."""
    rng = SequentialRandom()
    batch_size = 128
    acc = make_accumulator(batch_size=batch_size, rng=rng)
    large = bytes(batch_size)
    queue_sizes = [1, 7, 2]
    for p, n in enumerate(queue_sizes):
        for _ in range(n):
            append(acc, p, key=None, value=large)
        assert len(deque_of(acc, p)) == n
    acc.ready(SNAP, 0)
    partitioner = acc.topics[TOPIC].partitioner
    assert partitioner.load_stats_range_end() == sum(8 - q for q in queue_sizes)
    append(acc, UNKNOWN_PARTITION, key=None, value=large)
    frequencies = [0, 0, 0]
    for _ in range(2 * partitioner.load_stats_range_end()):
        frequencies[append(acc, UNKNOWN_PARTITION, key=None, value=large).partition] += 1
    assert frequencies == [2 * (8 - q) for q in queue_sizes]


def test_adaptive_partitioning_off_switches_uniformly():
    rng = SequentialRandom()
    acc = make_accumulator(batch_size=128, rng=rng)
    acc.enable_adaptive_partitioning = False
    for p, n in enumerate([1, 7, 2]):
        for _ in range(n):
            append(acc, p, key=None, value=bytes(128))
    acc.ready(SNAP, 0)
    assert acc.topics[TOPIC].partitioner.load_stats_range_end() is None


def test_a_node_ready_but_not_drained_is_left_out_after_the_availability_timeout():
    """Java's partitioner.availability.timeout.ms: the partitions of a node that has
    stayed ready but undrained for longer are left out of adaptive partitioning."""
    snap = make_snapshot({TOPIC: [0, 1, 2]})
    rng = SequentialRandom()
    acc = make_accumulator(batch_size=128, rng=rng)
    acc.partition_availability_timeout_ms = 5
    for p, n in enumerate([1, 7, 2]):
        for _ in range(n):
            acc.append(TOPIC, p, 0, None, bytes(128), None, None, 1000, 0, snap)
    for node in (0, 1, 2):
        acc.update_node_latency_stats(node, 0, True)
    acc.update_node_latency_stats(1, 10, False)  # ready for 10 ms, never drained
    acc.ready(snap, 10)
    partitioner = acc.topics[TOPIC].partitioner
    # partitions 0 and 2 (queues 1 and 2): weights 2 + 1 - 1 and 2 + 1 - 2
    assert partitioner.load_stats_range_end() == 3
    chosen = {acc.append(TOPIC, UNKNOWN_PARTITION, 0, None, bytes(128), None, None, 1000, 0,
                         snap).partition for _ in range(30)}
    assert chosen == {0, 2}


# ---- compression ratio ---------------------------------------------------------------------

def test_compression_ratio_estimate_moves_after_each_drain():
    """Java's CompressionRatioEstimator: towards better ratios by 0.005 a batch, towards
    worse ones at once (by at least 0.05)."""
    acc = make_accumulator(batch_size=100_000, compression_type=COMPRESSION_GZIP)
    info = None
    for i in range(3):
        append(acc, 0, value=bytes(1000))  # compresses very well
        acc.drain(SNAP, {0}, BIG, 0)
        info = acc.topics[TOPIC]
        assert info.compression_ratio == pytest.approx(1.0 - 0.005 * (i + 1))
    # a new batch is sized with the estimate
    append(acc, 0)
    assert deque_of(acc, 0)[-1].builder.estimated_compression_ratio == \
        pytest.approx(info.compression_ratio)
    acc.drain(SNAP, {0}, BIG, 0)
    info.compression_ratio = 0.2
    append(acc, 0, value=os.urandom(1000))  # does not compress: ratio ~1
    acc.drain(SNAP, {0}, BIG, 0)
    assert info.compression_ratio > 0.9
    # uncompressed topics keep 1.0
    plain = make_accumulator()
    append(plain, 0, value=bytes(1000))
    plain.drain(SNAP, {0}, BIG, 0)
    assert plain.topics[TOPIC].compression_ratio == 1.0


def test_observed_compression_ratio_excludes_the_batch_header():
    acc = make_accumulator(batch_size=100_000, compression_type=COMPRESSION_GZIP)
    append(acc, 0, value=bytes(2000))
    info = acc.topics[TOPIC]
    info.compression_ratio = 0.05
    [batch] = acc.drain(SNAP, {0}, BIG, 0)[0]
    compressed = len(batch.records()) - RECORD_BATCH_OVERHEAD
    uncompressed = batch.builder.size_in_bytes - RECORD_BATCH_OVERHEAD
    observed = compressed / uncompressed
    assert observed < 0.05
    assert info.compression_ratio == pytest.approx(max(0.05 - 0.005, observed))


def test_drain_counts_compressed_sizes_towards_max_request_size():
    snap = make_snapshot({TOPIC: [0] * 4})
    acc = make_accumulator(batch_size=100_000, compression_type=COMPRESSION_GZIP)
    for p in range(4):
        append(acc, p, value=bytes(1000), snapshot=snap)
    # each batch: ~1070 bytes uncompressed (estimated ~1.1 KB), ~100 compressed
    batches = acc.drain(snap, {0}, 1500, 0)[0]
    assert len(batches) >= 2


# ---- the C fast path matches the Python path ----------------------------------------------

def _slow_sender(acc, snapshot, now_ms=0):
    """Producer._send reduced to what matters here: partition, then append."""

    def send(topic, value, key, partition, timestamp, headers, on_delivery):
        p = record_partition(topic, partition, key, key, value, value, snapshot, None)
        return acc.append(topic, p, timestamp, key, value, headers, on_delivery,
                          MAX_BLOCK_MS, now_ms, snapshot).future

    return send


def _workload(n=2000, seed=3):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = rnd.random()
        value = os.urandom(rnd.randrange(0, 200)) if rnd.random() > 0.05 else None
        key = None
        partition = None
        if kind < 0.3:
            key = b"key-%d" % rnd.randrange(50)
        elif kind < 0.4:
            partition = rnd.randrange(5)
        out.append((value, key, partition, 1_700_000_000_000 + i))
    return out


def test_send_fast_path_and_slow_path_make_the_same_batches():
    snap = make_snapshot({TOPIC: [0, 1, 2, 0, 1]})
    work = _workload()

    def run(fast: bool):
        acc = make_accumulator(batch_size=2048, rng=random.Random(11))
        slow = _slow_sender(acc, snap)
        calls = {"fast": 0, "slow": 0}
        delivered = []

        def counting_slow(*args):
            calls["slow"] += 1
            return slow(*args)

        sender = SendFastPath(acc.lock, acc.topics, snap, counting_slow,
                              key_passthrough=True, value_passthrough=True,
                              partitioner_builtin=True, ignore_keys=False,
                              sticky_batch_size=acc.batch_size)
        futures = []
        for value, key, partition, ts in work:
            def cb(md, err, i=len(futures)):
                delivered.append((i, md, err))
            if fast:
                futures.append(sender.send(TOPIC, value, key, partition, ts, None, cb))
            else:
                futures.append(slow(TOPIC, value, key, partition, ts, None, cb))
        layout = {}
        offset = 0
        for p, dq in sorted(acc.topics[TOPIC].deques.items()):
            layout[p] = []
            for batch in dq:
                records = read_batch(batch.records()).records
                layout[p].append([(r.key, r.value, r.timestamp) for r in records])
                batch.complete(offset, -1)
                offset += 1000
        metadata = [f.result(0) for f in futures]
        return layout, metadata, sorted(delivered, key=lambda d: d[0]), calls["slow"]

    slow_layout, slow_metadata, slow_delivered, _ = run(fast=False)
    fast_layout, fast_metadata, fast_delivered, slow_calls = run(fast=True)
    assert slow_calls < len(work) // 2  # the fast path did most of the work
    assert fast_layout == slow_layout
    assert fast_metadata == slow_metadata
    assert fast_delivered == slow_delivered
    for (value, key, partition, ts), md in zip(work, fast_metadata):
        if key is not None:
            assert md.partition == partition_for_key(key, 5)
        elif partition is not None:
            assert md.partition == partition
        assert md.serialized_value_size == (-1 if value is None else len(value))
        assert md.timestamp == ts


def test_send_fast_path_hands_unusual_sends_to_the_slow_path():
    acc = make_accumulator()
    snap = make_snapshot({TOPIC: [0, 1]})
    slow = []
    fast = SendFastPath(acc.lock, acc.topics, snap, lambda *a: slow.append(a) or "slow",
                        key_passthrough=True, value_passthrough=True,
                        partitioner_builtin=True, ignore_keys=False,
                        sticky_batch_size=acc.batch_size)
    append(acc, 0, snapshot=snap)  # an open batch on partition 0
    assert fast.send(TOPIC, b"v", None, 0, 5) != "slow"
    assert fast.send(TOPIC, b"v", None, 0, 5, [("h", b"x")]) == "slow"  # headers
    assert fast.send(TOPIC, "str", None, 0, 5) == "slow"                # not bytes
    assert fast.send("nope", b"v", None, 0, 5) == "slow"                # unknown topic
    assert fast.send(TOPIC, b"v", None, 7, 5) == "slow"                 # bad partition
    assert fast.send(TOPIC, b"v", None, 1, 5) == "slow"                 # no open batch
    assert fast.send(TOPIC, b"v", None, 0, -3) == "slow"                # bad timestamp
    fast.closed = True
    assert fast.send(TOPIC, b"v", None, 0, 5) == "slow"
    assert len(slow) == 7


def test_a_record_that_cannot_be_encoded_leaves_no_empty_batch_behind():
    """try_append raising on the first record of a new batch (here a timestamp that does
    not fit int64; the front refuses it first, but any error there is the same) must
    not leave an empty batch at the tail of the queue: the next records of that
    partition would go into a batch that never becomes ready."""
    acc = make_accumulator(linger_ms=0)
    with pytest.raises(OverflowError):
        acc.append(TOPIC, 0, 2**70, None, b"v", None, None, MAX_BLOCK_MS, 0, SNAP)
    assert list(deque_of(acc, 0)) == [] and not acc.has_incomplete()
    assert acc.pool.available_memory == acc.pool.total_memory
    append(acc, 0, value=b"next")
    [[batch]] = acc.drain(SNAP, acc.ready(SNAP, 0).ready_nodes, BIG, 0).values()
    assert values(batch) == [b"next"]


def test_flush_timeout_bounds_the_whole_wait_not_each_batch():
    """flush(timeout) gave ``timeout`` to each incomplete batch in turn: batches that
    complete one by one, each just within it, kept flush waiting N times as long."""
    import threading
    import time

    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + MSG_SIZE)
    for i in range(6):
        append(acc, i % 2, value=b"%d" % i)  # six one-record batches
    batches = sorted(acc.incomplete_batches(), key=lambda b: b.created_ms)
    assert len(batches) == 6

    def complete_slowly():
        for batch in batches:
            time.sleep(0.15)
            batch.complete(0, -1)

    trickle = threading.Thread(target=complete_slowly)
    started = time.monotonic()
    trickle.start()
    try:
        done = acc.await_flush_completion(0.4)
        waited = time.monotonic() - started
    finally:
        trickle.join()
    assert not done and waited < 0.7, (done, waited)  # one timeout: 6 x 0.15 s is 0.9 s


def test_flush_returns_when_a_part_it_waits_for_was_split_again():
    """A part of a split batch, split again (MESSAGE_TOO_LARGE twice), never completes
    itself: its own parts report to the first batch. A flush that began while it was
    queued waited for it until its timeout (forever with none)."""
    import threading
    import time

    acc = make_accumulator(batch_size=16384)
    for i in range(40):
        append(acc, 0, value=b"%03d" % i + bytes(60))
    [[batch]] = acc.drain(SNAP, {0}, BIG, 0).values()
    parts = split_batch(batch, RECORD_BATCH_OVERHEAD + 20 * 80)
    acc.reenqueue_split(batch, parts)
    outcome = {}

    def flush():
        outcome["done"] = acc.await_flush_completion(10)

    flusher = threading.Thread(target=flush)
    flusher.start()  # waits for the parts, the first among them
    time.sleep(0.1)
    first = acc.drain(SNAP, {0}, BIG, 0)[0][0]
    assert first is parts[0]
    subparts = split_batch(first, RECORD_BATCH_OVERHEAD + 10 * 80)
    acc.reenqueue_split(first, subparts)
    started = time.monotonic()
    while acc.has_undrained():
        for b in acc.drain(SNAP, {0}, BIG, 0)[0]:
            b.complete(0, -1)
            acc.deallocate(b)
    flusher.join()
    assert outcome["done"] and time.monotonic() - started < 5
    assert batch.result.is_done()
