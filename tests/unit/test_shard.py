"""Unit tests of fastprod/_ext/shard.pyx: ShardedProducer's parent-side staging and
framing for one worker's ring (over a ring in a bytearray, read back with read())."""

from __future__ import annotations

import pytest

from fastprod._ext.accumulate import complete_futures
from fastprod._ext.ring import HEADER_SIZE, RecordsFrame, Ring, decode_records
from fastprod._ext.shard import Shard
from fastprod.clock import monotonic_ms
from fastprod.engine.futures import BatchFuture, ProduceRequestResult, RecordFuture
from fastprod.errors import ProducerClosedError
from fastprod.sharded import messages
from fastprod.sharded.messages import TAG_TOPIC, TopicRegistration


def make_shard(capacity: int = 1 << 16, run_max: int = 4) -> tuple[Shard, Ring]:
    ring = Ring(bytearray(HEADER_SIZE + capacity), create=True)
    return Shard(ring, run_max, lambda i, t: messages.encode(TopicRegistration(i, t))), ring


def future(topic: str = "t", partition: int = 0) -> RecordFuture:
    return RecordFuture(ProduceRequestResult(topic, partition), 0, 0, -1, -1)


def frames(ring: Ring) -> list:
    """Everything written so far: ('topic', [index, name]) or RecordsFrame."""
    out = []
    while (payload := ring.read()) is not None:
        if payload[0] == TAG_TOPIC:
            registration = messages.decode(payload)
            assert isinstance(registration, TopicRegistration)
            out.append(("topic", [registration.index, registration.name]))
        else:
            out.append(decode_records(payload))
        del payload
        ring.release(ring.read_end_pos())
    return out


def test_staged_records_wait_until_framed_then_carry_their_futures():
    shard, ring = make_shard()
    futures = [future() for _ in range(3)]
    for i, f in enumerate(futures):
        assert shard.stage("t", 0, 1000, b"v%d" % i, None, None, f, None)
    assert frames(ring) == [] and list(shard.runs) == [("t", 0)]
    assert shard.waitables() == futures
    assert shard.frame_runs() is False
    written = frames(ring)
    assert written[0] == ("topic", [0, "t"])
    frame = written[1]
    assert isinstance(frame, RecordsFrame)
    assert (frame.topic_index, frame.partition, frame.timestamp, frame.first_id) == (0, 0, 1000, 0)
    assert list(frame.values) == [b"v0", b"v1", b"v2"] and frame.keys is None
    assert shard.runs == {} and list(shard.pending) == [0]
    entry = shard.pending[0]
    assert (entry.topic, entry.count, entry.futures) == ("t", 3, futures)
    assert shard.waitables() == futures and shard.next_id == 3


def test_a_full_run_or_a_new_millisecond_frames_the_run():
    shard, ring = make_shard(run_max=2)
    for i in range(2):
        shard.stage("t", 1, 5, b"a%d" % i, b"k", None, future(), None)
    shard.stage("t", 1, 5, b"b", None, [("h", b"x")], future(), None)
    shard.stage("t", 1, 6, b"c", None, None, future(), None)  # next millisecond
    got = [f for f in frames(ring) if isinstance(f, RecordsFrame)]
    assert [(list(f.values), f.timestamp) for f in got] == [([b"a0", b"a1"], 5), ([b"b"], 5)]
    assert list(got[0].keys) == [b"k", b"k"]
    assert [list(h) for h in got[1].headers] == [[("h", b"x")]]
    assert sorted(shard.pending) == [0, 2] and shard.runs[("t", 1)].values == [b"c"]


def test_stage_refuses_when_the_run_is_full_and_the_ring_has_no_room():
    shard, ring = make_shard(capacity=4096, run_max=2)
    value = b"x" * 1500
    assert shard.stage("t", 0, 1, value, None, None, future(), None)
    assert shard.stage("t", 0, 1, value, None, None, future(), None)  # framed: run full
    assert shard.stage("t", 0, 1, value, None, None, future(), None)
    assert shard.stage("t", 0, 1, value, None, None, future(), None)  # no room: stays
    assert not shard.stage("t", 0, 1, value, None, None, future(), None)
    assert len(shard.runs[("t", 0)].values) - shard.runs[("t", 0)].start == 2
    assert shard.frame_runs() is True  # still no room
    frames(ring)  # the worker takes the first frame
    assert shard.frame_runs() is False
    assert sum(e.count for e in shard.pending.values()) == 4


def test_frame_slice_goes_after_staged_records_and_expects_its_frames():
    shard, ring = make_shard()
    staged = future()
    shard.stage("t", 0, 1, b"first", None, None, staged, None)
    batch = BatchFuture("t", None, [b"a", b"b", b"c"], 1, None)
    assert shard.frame_slice("t", 0, 1, [b"a", b"b", b"c"], None, range(3), 1, 3, batch,
                             4242) == 2
    got = [f for f in frames(ring) if isinstance(f, RecordsFrame)]
    assert [list(f.values) for f in got] == [[b"first"], [b"b", b"c"]]
    # the staged run is dated by the monotonic clock, the slice by its caller
    assert abs(got[0].created_ms - monotonic_ms()) < 1000 and got[1].created_ms == 4242
    entry = shard.pending[1]
    assert (entry.future, list(entry.indices), entry.futures) == (batch, [1, 2], None)
    assert shard.waitables() == [staged, batch]
    assert shard.frame_slice("t", 0, 1, [b"d"], None, [3], 0, 1, batch, 0) == 1
    assert shard.waitables() == [staged, batch]  # once, for its two frames
    batch.segment_done()
    batch.segment_done()  # the frame's segment
    batch.seal()
    assert batch.done()


def test_frame_slice_undoes_expect_when_the_ring_is_full():
    shard, _ = make_shard(capacity=4096)
    batch = BatchFuture("t", None, [b"x" * 3000] * 2, 1, None)
    assert shard.frame_slice("t", 0, 1, [b"x" * 3000] * 2, None, range(2), 0, 2, batch, 0) == 1
    assert shard.frame_slice("t", 0, 1, [b"x" * 3000] * 2, None, range(2), 1, 2, batch, 0) == 0
    batch.segment_done()
    batch.seal()
    assert batch.done()  # only the framed segment was expected


def test_take_runs_and_a_closed_ring():
    shard, ring = make_shard()
    shard.stage("t", 0, 1, b"v", None, None, future(), None)
    runs = shard.take_runs()
    assert [r.values for r in runs] == [[b"v"]] and shard.runs == {}
    shard.stage("t", 0, 1, b"v", None, None, future(), None)
    ring.close()
    with pytest.raises(ProducerClosedError):
        shard.frame_runs()


def test_complete_futures_checks_its_positions():
    """Inconsistent lists raise instead of reading past them."""
    f = future()
    with pytest.raises(IndexError):
        complete_futures([f], [None], [0, 1], 0, 10, -1, None, None)
    with pytest.raises(IndexError):
        complete_futures([f, future()], [None], [1], 0, 10, -1, None, None)


def test_pending_mark_returns_what_was_not_reported_yet():
    shard, _ = make_shard()
    for i in range(3):
        shard.stage("t", 0, 1, b"v", None, None, future(), None)
    shard.frame_runs()
    entry = shard.pending[0]
    assert entry.mark(1, 2) == [1, 2] and not entry.all_done
    assert entry.mark(0, 3) == [0]  # a repeat after a worker restart
    assert entry.all_done and entry.mark(0, 3) == []
    with pytest.raises(IndexError):
        entry.mark(2, 5)
