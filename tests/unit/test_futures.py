"""Delivery results: RecordFuture (one per send, in C), ProduceRequestResult (one per
batch), the on_delivery callbacks, and BatchFuture (one per send_batch). Batches are
completed by hand, as the sender would."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from fastprod.engine.accumulator import UNKNOWN_PARTITION
from fastprod.engine.futures import BatchFuture, RecordMetadata, failed_future
from fastprod.errors import (
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    NotLeaderOrFollowerError,
    RecordTooLargeError,
)
from fastprod.kernels import partition_for_key, split_by_key_partition
from tests.fakes import make_accumulator, make_snapshot

TOPIC = "t"
SNAP = make_snapshot({TOPIC: [0, 1, 2]})


def append(acc, partition=0, value=b"value", key=b"key", timestamp=1000, callback=None):
    return acc.append(TOPIC, partition, timestamp, key, value, None, callback, 1000, 0,
                      SNAP).future


def only_batch(acc, partition=0):
    [batch] = acc.topics[TOPIC].deques[partition]
    return batch


# ---- RecordFuture ----------------------------------------------------------------------

def test_result_is_the_record_metadata():
    acc = make_accumulator()
    futures = [append(acc, value=b"v" * i, key=None if i == 2 else b"k",
                      timestamp=1000 + i) for i in range(3)]
    futures.append(append(acc, value=None, key=b"k", timestamp=2000))
    assert not any(f.done() for f in futures)
    only_batch(acc).complete(500, -1)
    assert all(f.done() for f in futures)
    assert [f.exception() for f in futures] == [None] * 4
    assert [f.result() for f in futures] == [
        RecordMetadata(TOPIC, 0, 500, 1000, 1, 0),
        RecordMetadata(TOPIC, 0, 501, 1001, 1, 1),
        RecordMetadata(TOPIC, 0, 502, 1002, -1, 2),
        RecordMetadata(TOPIC, 0, 503, 2000, 1, -1),
    ]


def test_log_append_time_replaces_the_create_time():
    acc = make_accumulator()
    futures = [append(acc, timestamp=1000 + i) for i in range(2)]
    only_batch(acc).complete(10, 99_999)
    assert [f.result().timestamp for f in futures] == [99_999, 99_999]


def test_acks_0_offset_is_minus_one():
    acc = make_accumulator()
    future = append(acc)
    only_batch(acc).complete(-1, -1)
    assert future.result().offset == -1


def test_result_and_exception_time_out_while_pending():
    acc = make_accumulator()
    future = append(acc)
    with pytest.raises(KafkaTimeoutError):
        future.result(timeout=0.01)
    with pytest.raises(KafkaTimeoutError):
        future.exception(timeout=0)
    assert not future.done()
    assert "pending" in repr(future)


def test_result_waits_for_another_thread():
    acc = make_accumulator()
    future = append(acc)
    got = []
    thread = threading.Thread(target=lambda: got.append(future.result(timeout=5)))
    thread.start()
    time.sleep(0.01)
    only_batch(acc).complete(7, -1)
    thread.join(5)
    assert got[0].offset == 7


def test_a_failed_batch_fails_every_future():
    acc = make_accumulator()
    futures = [append(acc) for _ in range(3)]
    error = NotLeaderOrFollowerError("gone")
    assert only_batch(acc).complete(-1, -1, error)
    for future in futures:
        assert future.exception() is error
        with pytest.raises(NotLeaderOrFollowerError):
            future.result()
    assert "failed" in repr(futures[0])


def test_record_errors_fail_only_their_records():
    acc = make_accumulator()
    futures = [append(acc) for _ in range(3)]
    top = InvalidRecordError("batch rejected")
    bad = InvalidRecordError("record 1 is bad")
    only_batch(acc).complete(-1, -1, top, {1: bad})
    assert futures[1].exception() is bad
    assert futures[0].exception() is top and futures[2].exception() is top


def test_a_batch_completes_once():
    acc = make_accumulator()
    future = append(acc)
    batch = only_batch(acc)
    assert batch.complete(3, -1)
    assert not batch.abort(KafkaError("late"))
    assert not batch.complete(9, -1)
    assert future.result().offset == 3 and batch.is_done()


def test_add_done_callback_before_completion_runs_once_at_completion():
    acc = make_accumulator()
    future = append(acc)
    calls = []
    future.add_done_callback(calls.append)
    future.add_done_callback(lambda f: calls.append(("second", f.done())))
    assert calls == []
    batch = only_batch(acc)
    batch.complete(0, -1)
    batch.complete(0, -1)
    assert calls == [future, ("second", True)]


def test_add_done_callback_after_completion_runs_at_once():
    acc = make_accumulator()
    future = append(acc)
    only_batch(acc).complete(0, -1)
    calls = []
    future.add_done_callback(calls.append)
    assert calls == [future]


def test_a_raising_callback_does_not_stop_the_others(caplog):
    acc = make_accumulator()
    future = append(acc)
    calls = []

    def boom(f):
        raise RuntimeError("boom")

    future.add_done_callback(boom)
    future.add_done_callback(calls.append)
    with caplog.at_level(logging.ERROR, logger="fastprod"):
        only_batch(acc).complete(0, -1)
    assert calls == [future]
    assert "boom" in caplog.text


def test_callbacks_added_from_many_threads_each_run_exactly_once():
    acc = make_accumulator()
    futures = [append(acc) for _ in range(200)]
    counts = [0] * len(futures)
    lock = threading.Lock()

    def bump(i):
        def cb(_):
            with lock:
                counts[i] += 1
        return cb

    def adder():
        for i, f in enumerate(futures):
            f.add_done_callback(bump(i))

    threads = [threading.Thread(target=adder) for _ in range(4)]
    for t in threads:
        t.start()
    only_batch(acc).complete(0, -1)
    for t in threads:
        t.join()
    assert counts == [4] * len(futures)


def test_on_delivery_gets_metadata_or_error_per_record():
    acc = make_accumulator()
    seen = []
    for i in range(3):
        append(acc, timestamp=10 + i, callback=lambda md, err, i=i: seen.append((i, md, err)))
    bad = InvalidRecordError("no")
    only_batch(acc).complete(40, -1, InvalidRecordError("top"), {2: bad})
    assert [(i, md, type(err)) for i, md, err in seen][:2] == \
        [(0, None, InvalidRecordError), (1, None, InvalidRecordError)]
    assert seen[2] == (2, None, bad)

    acc2 = make_accumulator()
    seen.clear()
    for i in range(2):
        append(acc2, timestamp=10 + i, callback=lambda md, err, i=i: seen.append((i, md, err)))
    only_batch(acc2).complete(40, -1)
    assert seen == [(0, RecordMetadata(TOPIC, 0, 40, 10, 3, 5), None),
                    (1, RecordMetadata(TOPIC, 0, 41, 11, 3, 5), None)]


def test_on_delivery_runs_before_the_future_is_done():
    acc = make_accumulator()
    done_in_callback = []
    future = None

    def cb(md, err):
        done_in_callback.append(future.done())

    future = append(acc, callback=cb)
    only_batch(acc).complete(0, -1)
    assert done_in_callback == [False]


def test_failed_future():
    error = RecordTooLargeError("too big")
    future = failed_future(TOPIC, 2, error)
    assert future.done() and future.exception() is error
    with pytest.raises(RecordTooLargeError):
        future.result()


# ---- BatchFuture -----------------------------------------------------------------------

def send_batch(acc, values, keys=None, partition=None, on_delivery=None, timestamp=5000):
    """Producer.send_batch's use of the accumulator and BatchFuture."""
    future = BatchFuture(TOPIC, keys, values, timestamp, on_delivery)
    if partition is not None:
        groups = {partition: (range(len(values)), keys, values)}
    elif keys is not None:
        groups = split_by_key_partition(keys, values, len(SNAP.topics[TOPIC]))
    else:
        groups = {UNKNOWN_PARTITION: (range(len(values)), keys, values)}
    for p, (indices, group_keys, group_values) in groups.items():
        def on_segment(batch, first, start, count, indices=indices):
            future.add_segment(batch.result, first, indices[start:start + count])
            if batch.hooks is None:
                batch.hooks = []
            batch.hooks.append(future.segment_done)

        acc.append_many(TOPIC, p, timestamp, group_keys, group_values, 1000, 0, SNAP,
                        on_segment)
    future.seal()
    return future


def complete_all(acc, error_for=None):
    """Complete every queued batch; offsets 100, 200, ... by batch."""
    offset = 100
    for p, dq in sorted(acc.topics[TOPIC].deques.items()):
        while dq:
            batch = dq.popleft()
            error = None if error_for is None else error_for(batch)
            if isinstance(error, tuple):
                batch.complete(-1, -1, *error)
            else:
                batch.complete(offset if error is None else -1, -1, error)
            offset += 100


def test_batch_future_results_come_in_input_order():
    acc = make_accumulator(batch_size=200)
    keys = [b"key-%d" % (i % 7) for i in range(60)]
    values = [b"value-%02d" % i for i in range(60)]
    delivered = []
    future = send_batch(acc, values, keys,
                        on_delivery=lambda md, err: delivered.append((md, err)))
    assert len(future) == 60
    segments = sum(len(dq) for dq in acc.topics[TOPIC].deques.values())
    assert segments > 3
    assert not future.done()
    complete_all(acc)
    assert future.done()
    results = future.result(0)
    assert [md.partition for md in results] == [partition_for_key(k, 3) for k in keys]
    assert [(md.serialized_key_size, md.serialized_value_size, md.timestamp)
            for md in results] == [(len(k), len(v), 5000) for k, v in zip(keys, values)]
    # offsets: per partition, consecutive within each batch, in input order
    by_partition = {}
    for md in results:
        by_partition.setdefault(md.partition, []).append(md.offset)
    for offsets in by_partition.values():
        assert offsets == sorted(offsets)
    assert len(delivered) == 60 and all(err is None for _, err in delivered)
    assert sorted(md for md, _ in delivered) == sorted(results)
    assert future.errors() == [] and future.exception() is None


def test_batch_future_is_done_only_when_sealed_and_every_segment_is_done():
    acc = make_accumulator()
    future = BatchFuture(TOPIC, None, [b"a", b"b"], 0, None)
    acc.append_many(TOPIC, 0, 0, None, [b"a", b"b"], 1000, 0, SNAP,
                    lambda batch, first, start, count: (
                        future.add_segment(batch.result, first, range(start, start + count)),
                        setattr(batch, "hooks", [future.segment_done])))
    only_batch(acc).complete(0, -1)
    assert not future.done()  # the sending thread has not sealed it yet
    future.seal()
    assert future.done()
    assert [md.offset for md in future.result()] == [0, 1]


def test_batch_future_errors_and_on_delivery_per_record():
    acc = make_accumulator(batch_size=150)
    values = [b"%02d" % i for i in range(30)]
    seen = []
    future = send_batch(acc, values, partition=1,
                        on_delivery=lambda md, err: seen.append((md, err)))
    batches = list(acc.topics[TOPIC].deques[1])
    assert len(batches) >= 3
    failing = batches[1]
    bad = InvalidRecordError("record 1 of the second batch")
    complete_all(acc, lambda b: (InvalidRecordError("second"), {1: bad}) if b is failing
                 else None)
    first = batches[0].record_count
    errors = future.errors()
    assert [i for i, _ in errors] == list(range(first, first + failing.record_count))
    assert errors[1][1] is bad
    assert future.exception() is not None
    with pytest.raises(InvalidRecordError):
        future.result()
    assert len(seen) == 30
    assert sum(err is not None for _, err in seen) == failing.record_count
    expected = []
    for k, batch in enumerate(batches):
        if batch is not failing:
            expected += range(100 * (k + 1), 100 * (k + 1) + batch.record_count)
    assert sorted(md.offset for md, err in seen if err is None) == expected


def test_batch_future_fail_covers_records_never_placed():
    values = [b"a", b"b", b"c"]
    future = BatchFuture(TOPIC, None, values, 0, None)
    acc = make_accumulator()
    acc.append_many(TOPIC, 0, 0, None, values[:1], 1000, 0, SNAP,
                    lambda batch, first, start, count: (
                        future.add_segment(batch.result, first, range(start, start + count)),
                        setattr(batch, "hooks", [future.segment_done])))
    error = KafkaTimeoutError("buffer full")
    future.fail(error)
    future.seal()
    assert not future.done()
    only_batch(acc).complete(0, -1)
    assert future.done()
    assert future.errors() == [(1, error), (2, error)]


def test_batch_future_add_done_callback_and_timeout():
    acc = make_accumulator()
    future = send_batch(acc, [b"x"], partition=0)
    with pytest.raises(KafkaTimeoutError):
        future.result(timeout=0.01)
    with pytest.raises(KafkaTimeoutError):
        future.errors(timeout=0)
    calls = []
    future.add_done_callback(calls.append)
    complete_all(acc)
    assert calls == [future]
    future.add_done_callback(calls.append)
    assert calls == [future, future]


def test_empty_batch_future_is_done_when_sealed():
    future = BatchFuture(TOPIC, None, [], 0, None)
    future.seal()
    assert future.done() and future.result() == []


def test_results_join_the_cyclic_gc_only_with_an_error():
    """A result is left out of the cyclic GC (one per ShardedProducer send() record)
    until it holds an error, whose traceback can make a cycle through it; such a
    cycle is still collected."""
    import gc
    import weakref

    from fastprod._ext.accumulate import ProduceRequestResult

    result = ProduceRequestResult("t", 0)
    result.set(5, -1, None)
    assert not gc.is_tracked(result)

    class Holder:
        pass

    def fail() -> tuple[ProduceRequestResult, weakref.ref]:
        r = ProduceRequestResult("t", 0)
        holder = Holder()
        holder.result = r
        try:
            raise ValueError("boom")
        except ValueError as exc:
            r.set(-1, -1, exc)  # exc -> traceback -> this frame -> r -> exc
        return r, weakref.ref(holder)

    r, holder = fail()
    assert gc.is_tracked(r)
    del r
    gc.collect()
    assert holder() is None, "the cycle through the result's error was not collected"


def test_a_batch_futures_outcome_ignores_errors_of_other_records_in_its_batch():
    """A send_batch() shares a record batch with other records (a send() of someone
    else, say) that the broker rejected (KIP-467): its own records are fine."""
    from fastprod._ext.accumulate import ProduceRequestResult

    result = ProduceRequestResult("t", 0)
    result.set(10, -1, None, {2: InvalidRecordError("someone else's record")})
    result.done()
    future = BatchFuture("t", None, [b"a", b"b"], 0, None)
    future.expect()
    future.add_completed(result, 0, [0, 1])  # relative offsets 0 and 1 of the batch
    future.segment_done()
    future.seal()
    assert future.exception(0) is None
    assert [md.offset for md in future.result(0)] == [10, 11]


class _Unwalkable:
    """A segment's input positions that fail the test if anything walks them."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        raise AssertionError("a segment without errors was walked record by record")

    def __getitem__(self, i):
        raise AssertionError("a segment without errors was walked record by record")


def test_errors_of_a_batch_future_cost_nothing_per_delivered_record():
    from fastprod._ext.accumulate import ProduceRequestResult

    n = 10_000
    future = BatchFuture(TOPIC, None, [b"v"] * (3 * n + 2), 0, None)
    future.expect()
    for k in range(3):
        result = ProduceRequestResult(TOPIC, k)
        result.set(100 * k, -1, None)
        future.add_completed(result, 0, _Unwalkable(n))
    failed = ProduceRequestResult(TOPIC, 0)
    bad = InvalidRecordError("one bad record")
    failed.set(-1, -1, None, {1: bad})
    future.add_completed(failed, 0, [3 * n, 3 * n + 1])
    future.segment_done()
    future.seal()
    assert future.errors() == [(3 * n + 1, bad)]
    assert future.exception() is bad
