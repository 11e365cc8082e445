"""Unit tests of the shared-memory SPSC ring (fastprod/_ext/ring.pyx).

Pure and fast, except the last test: a spawned consumer process reading 200k records
through a 64 KiB ring while this process writes them, with the waiting-flag handshake.
"""

from __future__ import annotations

import multiprocessing
import random
import struct
import threading
import time
import zlib
from multiprocessing import shared_memory

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastprod._ext.ring import (
    HEADER_SIZE,
    RECORDS_HEADER_SIZE,
    RECORDS_KIND,
    RecordsFrame,
    Ring,
    decode_records,
    encode_frame_size,
)
from fastprod.errors import CorruptRecordError, RecordTooLargeError

CAP = 4096


def make_ring(capacity: int = CAP) -> tuple[Ring, bytearray]:
    buf = bytearray(HEADER_SIZE + capacity)
    return Ring(buf, create=True), buf


def advance_to(ring: Ring, offset: int) -> None:
    """Write, read and release frames so that every counter sits at ``offset`` mod capacity."""
    while ring.write_pos % ring.capacity != offset:
        gap = (offset - ring.write_pos) % ring.capacity  # a multiple of 8
        assert ring.try_write(bytes(gap - 4))  # a frame of exactly gap bytes
        ring.read()
        ring.release(ring.read_end_pos())


def records_payload(values, keys=None, headers=None, **fields) -> bytes:
    """The payload try_write_records writes for these records (via a throwaway ring)."""
    ring, _ = make_ring(1 << 16)
    args = dict(topic_index=1, partition=2, timestamp=3, first_id=4)
    args.update(fields)
    assert ring.try_write_records(values=values, keys=keys, headers=headers,
                                  **args) == len(values)
    return bytes(ring.read())


# ---- create and attach ---------------------------------------------------------------

def test_create_and_attach_over_a_bytearray():
    ring, buf = make_ring()
    assert Ring.HEADER_SIZE == HEADER_SIZE == 512
    assert (ring.capacity, ring.free_space()) == (CAP, CAP)
    assert (ring.write_pos, ring.read_pos, ring.release_pos) == (0, 0, 0)
    assert ring.read() is None
    assert ring.try_write(b"\x02control")
    other = Ring(buf)  # attach: sees the same header and counters
    assert (other.capacity, other.write_pos) == (CAP, 16)
    assert bytes(other.read()) == b"\x02control"
    assert ring.read_pos == 16
    assert ring.free_space() == CAP - 16
    other.release(other.read_end_pos())
    assert ring.free_space() == CAP


def test_create_and_attach_over_shared_memory():
    shm = shared_memory.SharedMemory(create=True, size=HEADER_SIZE + 65536)
    try:
        producer = Ring(shm.buf, create=True)
        peer = shared_memory.SharedMemory(name=shm.name)
        consumer = Ring(peer.buf)
        assert consumer.capacity == 65536
        assert producer.try_write_records(0, 5, 1, 10, [b"a", b"bb"]) == 2
        frame = decode_records(consumer.read())
        assert (frame.partition, frame.first_id, frame.values) == (5, 10, [b"a", b"bb"])
        # the Ring holds an export of the buffer until it is closed
        with pytest.raises(BufferError):
            peer.close()
        consumer.close()
        consumer.close()  # idempotent
        assert consumer.closed
        with pytest.raises(ValueError, match="closed"):
            consumer.read()
        peer.close()
        with producer:
            assert producer.read_pos == producer.write_pos
        assert producer.closed
        shm.close()
    finally:
        shm.unlink()


def test_read_views_keep_shared_memory_mapped():
    """A memoryview from read() blocks SharedMemory.close() instead of dangling."""
    shm = shared_memory.SharedMemory(create=True, size=HEADER_SIZE + CAP)
    try:
        ring = Ring(shm.buf, create=True)
        ring.try_write(b"payload")
        view = ring.read()
        assert isinstance(view, memoryview) and view.readonly
        ring.close()
        with pytest.raises(BufferError):
            shm.close()
        assert bytes(view) == b"payload"
        view.release()
        shm.close()
    finally:
        shm.unlink()


@pytest.mark.parametrize("size", [512 + 4095, 512 + 6000, 512 + 2048, 100])
def test_create_needs_a_power_of_two_capacity_of_at_least_4096(size):
    with pytest.raises(ValueError):
        Ring(bytearray(size), create=True)


def test_create_needs_a_writable_buffer():
    with pytest.raises(TypeError, match="writable"):
        Ring(bytes(512 + 4096), create=True)
    with pytest.raises(TypeError):
        Ring(memoryview(bytearray(512 + 4096)).toreadonly())


def test_attach_checks_magic_version_and_capacity():
    with pytest.raises(ValueError, match="magic"):
        Ring(bytearray(512 + 4096))
    _, buf = make_ring()
    bad = bytearray(buf)
    bad[4] = 9
    with pytest.raises(ValueError, match="version"):
        Ring(bad)
    bad = bytearray(buf)
    bad[8:16] = (8192).to_bytes(8, "little")  # larger than the buffer
    with pytest.raises(ValueError, match="capacity"):
        Ring(bad)
    bad = bytearray(buf)
    bad[8:16] = (5000).to_bytes(8, "little")
    with pytest.raises(ValueError, match="capacity"):
        Ring(bad)
    # attaching to a larger buffer (a page-rounded mapping) is fine
    Ring(buf + bytearray(4096))


def test_attach_rejects_inconsistent_counters():
    ring, buf = make_ring()
    ring.try_write(b"x")
    buf[192:200] = (64).to_bytes(8, "little")  # release_pos past read_pos and write_pos
    with pytest.raises(ValueError, match="inconsistent"):
        Ring(buf)


def test_encode_frame_size():
    assert [encode_frame_size(n) for n in (0, 1, 4, 5, 12, 13)] == [8, 8, 8, 16, 16, 24]
    with pytest.raises(ValueError):
        encode_frame_size(-1)


# ---- frames --------------------------------------------------------------------------

def test_frames_round_trip_in_order():
    ring, _ = make_ring()
    frames = [bytes([2]) + bytes(range(n)) for n in range(0, 60)]
    for frame in frames:
        assert ring.try_write(frame)
        got = ring.read()
        assert isinstance(got, memoryview) and bytes(got) == frame
        ring.release(ring.read_end_pos())
    assert ring.read() is None


def test_frames_accept_any_bytes_like_and_empty_payloads():
    ring, _ = make_ring()
    assert ring.try_write(bytearray(b"ab"))
    assert ring.try_write(memoryview(b"xcd")[1:])
    assert ring.try_write(b"")
    assert [bytes(ring.read()) for _ in range(3)] == [b"ab", b"cd", b""]
    with pytest.raises(TypeError, match="frame must be a bytes-like"):
        ring.try_write("text")


def test_frames_wrap_at_every_offset():
    for offset in range(0, CAP, 8):
        check_frames_at(offset)


def check_frames_at(offset: int) -> None:
    ring, _ = make_ring()
    advance_to(ring, offset)
    rng = random.Random(offset)
    for size in [*range(0, 40), 100, 257, 1000, CAP - 8]:
        payload = rng.randbytes(size)
        start = ring.write_pos
        assert ring.try_write(payload), (offset, size)
        got = ring.read()
        wraps = (start + 4) % CAP + size > CAP
        assert isinstance(got, bytes if wraps else memoryview)
        assert bytes(got) == payload
        assert ring.read_end_pos() == start + encode_frame_size(size)
        ring.release(ring.read_end_pos())


def test_full_ring_refuses_without_a_partial_write():
    ring, _ = make_ring()
    frame = bytes(1000)  # takes 1008
    written = 0
    while ring.try_write(frame):
        written += 1
    assert written == CAP // 1008
    before = (ring.write_pos, ring.free_space())
    assert ring.free_space() == CAP - written * 1008
    assert not ring.try_write(frame)
    assert ring.try_write_records(0, 0, 0, 0, [bytes(1000)]) == 0
    assert (ring.write_pos, ring.free_space()) == before
    # reading does not free space: only release does
    ring.read()
    assert not ring.try_write(frame)
    ring.release(ring.read_end_pos())
    assert ring.free_space() == CAP - (written - 1) * 1008
    assert ring.try_write(frame)
    # a frame that takes exactly the free space fits
    assert ring.try_write(bytes(ring.free_space() - 4))
    assert ring.free_space() == 0
    assert not ring.try_write(b"")


def test_too_large_frame_raises():
    ring, _ = make_ring()
    with pytest.raises(RecordTooLargeError, match="never fit"):
        ring.try_write(bytes(CAP - 7))
    assert ring.try_write(bytes(CAP - 8))  # the largest frame fills the empty ring
    assert ring.free_space() == 0
    with pytest.raises(RecordTooLargeError):
        ring.try_write(bytes(CAP - 7))  # even when full: it can never fit


def test_release_must_be_monotonic_and_within_what_was_read():
    ring, _ = make_ring()
    for i in range(3):
        ring.try_write(bytes([2, i]))
    ring.read()
    first_end = ring.read_end_pos()
    with pytest.raises(ValueError):
        ring.release(first_end + 8)  # past read_pos
    with pytest.raises(ValueError):
        ring.release(first_end - 1)  # not a frame boundary
    with pytest.raises(ValueError):
        ring.release(-8)
    ring.release(first_end)
    ring.release(first_end)  # the same position again is fine
    ring.read()
    with pytest.raises(ValueError):
        ring.release(0)  # backwards
    assert ring.release_pos == first_end


def test_rewind_reads_unacknowledged_frames_again():
    ring, buf = make_ring()
    for i in range(4):
        ring.try_write(bytes([2, i]))
    got = [bytes(ring.read()) for _ in range(3)]
    ends = ring.read_end_pos()
    assert got == [b"\x02\x00", b"\x02\x01", b"\x02\x02"]
    ring.release(8)  # the first frame was acknowledged
    assert ring.read_pos == ends
    # a replacement consumer attaches and reads from release_pos again
    replacement = Ring(buf)
    replacement.rewind()
    assert replacement.read_pos == replacement.read_end_pos() == 8
    again = []
    while (frame := replacement.read()) is not None:
        again.append(bytes(frame))
    assert again == [b"\x02\x01", b"\x02\x02", b"\x02\x03"]
    replacement.release(replacement.read_end_pos())
    assert ring.free_space() == CAP


def test_one_ring_object_shared_by_a_producer_and_a_consumer_thread():
    """Large frames copy without the GIL; the other side's calls go on meanwhile."""
    ring, _ = make_ring(1 << 20)
    frames = [bytes([i]) * (100_000 + i) for i in range(200)]
    got = []

    def consume():
        while len(got) < len(frames):
            payload = ring.read()
            if payload is None:
                time.sleep(0.0001)
                continue
            got.append(bytes(payload))
            del payload
            ring.release(ring.read_end_pos())

    consumer = threading.Thread(target=consume)
    consumer.start()
    for frame in frames:
        while not ring.try_write(frame):
            time.sleep(0.0001)
    consumer.join(timeout=30)
    assert got == frames


def test_waiting_flags():
    ring, buf = make_ring()
    other = Ring(buf)
    assert not ring.consumer_waiting and not ring.producer_waiting
    other.set_consumer_waiting(True)
    assert ring.consumer_waiting and not ring.producer_waiting
    ring.set_producer_waiting(True)
    assert other.producer_waiting
    other.set_consumer_waiting(False)
    ring.set_producer_waiting(False)
    assert not ring.consumer_waiting and not other.producer_waiting


def test_corrupt_frame_length_in_the_ring_raises():
    ring, buf = make_ring()
    ring.try_write(b"abc")
    buf[HEADER_SIZE:HEADER_SIZE + 4] = (100).to_bytes(4, "little")  # more than published
    with pytest.raises(CorruptRecordError, match="declares 100"):
        ring.read()
    assert ring.read_pos == 0


# ---- records frames ------------------------------------------------------------------

def test_records_round_trip_with_keys_none_and_headers():
    ring, _ = make_ring()
    values = [b"v0", None, b"", b"v3" * 50]
    keys = [b"k0", None, b"", None]
    headers = [[("a", b"1"), ("b", None)], None, [], [(b"bytes-key", b"")]]
    assert ring.try_write_records(7, -1, -5, 2**64 - 10, values, keys, headers=headers) == 4
    payload = ring.read()
    assert payload[0] == RECORDS_KIND
    frame = decode_records(payload)
    assert isinstance(frame, RecordsFrame)
    assert (frame.kind, frame.topic_index, frame.partition, frame.timestamp,
            frame.first_id, frame.count) == (1, 7, -1, -5, 2**64 - 10, 4)
    assert frame.values == values
    assert frame.keys == keys
    assert frame.headers == [[("a", b"1"), ("b", None)], None, None, [("bytes-key", b"")]]


def test_records_without_keys_or_headers_decode_as_none():
    ring, _ = make_ring()
    ring.try_write_records(0, 0, 0, 0, [b"a", b"b"])
    ring.try_write_records(0, 0, 0, 2, [b"a", b"b"], [None, None], headers=[None, []])
    first, second = decode_records(ring.read()), decode_records(ring.read())
    assert (first.keys, first.headers) == (None, None)
    assert (second.keys, second.headers) == (None, None)
    assert second.values == [b"a", b"b"]


def test_records_frame_layout():
    payload = records_payload([b"xy", None], [None, b"k"], topic_index=0x01020304,
                              partition=-2, timestamp=-3, first_id=0x0A0B0C0D0E0F1011,
                              created_ms=123456789)
    assert payload[:RECORDS_HEADER_SIZE] == struct.pack(
        "<BBHIiIqQq", 1, 1, 0, 0x01020304, -2, 2, -3, 0x0A0B0C0D0E0F1011, 123456789)
    assert decode_records(payload).created_ms == 123456789
    assert decode_records(records_payload([b"v"])).created_ms == -1  # not given
    assert payload[RECORDS_HEADER_SIZE:] == (
        struct.pack("<i", -1) + struct.pack("<i", 2) + b"xy"  # key null, value
        + struct.pack("<i", 1) + b"k" + struct.pack("<i", -1))  # key, value null


def test_records_frame_layout_with_headers():
    payload = records_payload([b"v"], headers=[[("h", None), ("ij", b"z")]])
    assert payload[1] == 2  # has_headers
    assert payload[RECORDS_HEADER_SIZE:] == (
        struct.pack("<i", 1) + b"v" + struct.pack("<H", 2)
        + struct.pack("<H", 1) + b"h" + struct.pack("<i", -1)
        + struct.pack("<H", 2) + b"ij" + struct.pack("<i", 1) + b"z")


def test_records_take_as_many_as_fit_then_continue():
    ring, _ = make_ring()
    values = [bytes([i]) * 100 for i in range(100)]
    ids, got = 1000, []
    start = 0
    while start < len(values):
        n = ring.try_write_records(0, 3, 9, ids + start, values, start=start)
        if n == 0:
            frame = decode_records(ring.read())
            ring.release(ring.read_end_pos())
            assert frame.first_id == ids + len(got)
            got += frame.values
            continue
        if start + n < len(values):  # the next record did not fit in what was left
            assert ring.free_space() < 104
        start += n
    while (payload := ring.read()) is not None:
        frame = decode_records(payload)
        assert frame.first_id == ids + len(got)
        got += frame.values
    assert got == values


def test_records_start_and_stop():
    ring, _ = make_ring()
    values = [b"0", b"1", b"2", b"3", b"4"]
    keys = [b"k0", b"k1", b"k2", b"k3", b"k4"]
    assert ring.try_write_records(0, 0, 0, 1, values, keys, start=1, stop=3) == 2
    assert ring.try_write_records(0, 0, 0, 3, values, keys, start=3, stop=99) == 2
    assert ring.try_write_records(0, 0, 0, 5, values, start=5) == 0  # empty range
    assert ring.try_write_records(0, 0, 0, 5, values, start=4, stop=2) == 0
    a, b = decode_records(ring.read()), decode_records(ring.read())
    assert (a.values, a.keys, a.first_id) == ([b"1", b"2"], [b"k1", b"k2"], 1)
    assert (b.values, b.keys, b.first_id) == ([b"3", b"4"], [b"k3", b"k4"], 3)
    assert ring.read() is None
    with pytest.raises(ValueError):
        ring.try_write_records(0, 0, 0, 0, values, start=-1)
    with pytest.raises(ValueError, match="keys"):
        ring.try_write_records(0, 0, 0, 0, values, keys[:2])
    assert ring.try_write_records(0, 0, 0, 0, values, keys[:2], stop=2) == 2


def test_records_wrap_at_every_offset():
    for offset in range(0, CAP, 8):
        check_records_at(offset)


def check_records_at(offset: int) -> None:
    ring, _ = make_ring()
    advance_to(ring, offset)
    values = [bytes([offset % 251]) * n for n in (0, 1, 3, 7, 30)] + [None]
    keys = [b"key", None, b"", b"k" * 9, None, b"x"]
    headers = [None, [("h", b"vv")], None, [], [("abc", None), ("d", b"e" * 5)], None]
    for _ in range(3):
        assert ring.try_write_records(1, 2, 3, 4, values, keys, headers=headers) == 6
        frame = decode_records(ring.read())
        ring.release(ring.read_end_pos())
        assert frame.values == values and frame.keys == keys, offset
        assert frame.headers == [h or None for h in headers], offset


def test_records_type_errors_name_the_index_and_publish_nothing():
    ring, _ = make_ring()
    with pytest.raises(TypeError, match=r"values\[2\].*str"):
        ring.try_write_records(0, 0, 0, 0, [b"a", None, "text"])
    with pytest.raises(TypeError, match=r"keys\[1\].*int"):
        ring.try_write_records(0, 0, 0, 0, [b"a", b"b"], [b"k", 5])
    with pytest.raises(TypeError, match=r"values\[0\].*bytearray"):
        ring.try_write_records(0, 0, 0, 0, [bytearray(b"a")])
    with pytest.raises(TypeError, match=r"headers\[1\]"):
        ring.try_write_records(0, 0, 0, 0, [b"a", b"b"], headers=[None, [("k", "str")]])
    with pytest.raises(TypeError, match=r"headers\[0\]"):
        ring.try_write_records(0, 0, 0, 0, [b"a"], headers=[[("k",)]])
    with pytest.raises(TypeError, match=r"headers\[0\]"):
        ring.try_write_records(0, 0, 0, 0, [b"a"], headers=[[(5, b"v")]])
    with pytest.raises(ValueError, match="UTF-8"):
        ring.try_write_records(0, 0, 0, 0, [b"a"], headers=[[(b"\xff", b"v")]])
    with pytest.raises(TypeError, match="values must be a list"):
        ring.try_write_records(0, 0, 0, 0, iter([b"a"]))
    with pytest.raises(TypeError, match="partition must be an int"):
        ring.try_write_records(0, 1.0, 0, 0, [b"a"])
    with pytest.raises(OverflowError):
        ring.try_write_records(0, 2**31, 0, 0, [b"a"])
    assert ring.write_pos == 0 and ring.read() is None


def test_records_too_large():
    ring, _ = make_ring()
    biggest = CAP - 8 - RECORDS_HEADER_SIZE - 4  # one record filling a frame of capacity
    with pytest.raises(RecordTooLargeError):
        ring.try_write_records(0, 0, 0, 0, [bytes(biggest + 1)])
    with pytest.raises(RecordTooLargeError):
        ring.try_write_records(0, 0, 0, 0, [b"v"], [bytes(biggest - 4)])
    # a record that can never fit later in the list ends the frame; it raises when first
    values = [b"small", bytes(CAP)]
    assert ring.try_write_records(0, 0, 0, 0, values) == 1
    with pytest.raises(RecordTooLargeError):
        ring.try_write_records(0, 0, 0, 1, values, start=1)
    ring.read()
    ring.release(ring.read_end_pos())
    assert ring.try_write_records(0, 0, 0, 0, [bytes(biggest)]) == 1
    assert ring.free_space() == 0
    assert decode_records(ring.read()).values == [bytes(biggest)]


def test_records_frame_constructor():
    frame = RecordsFrame(1, 2, 3, 4, [b"v"], [b"k"])
    assert (frame.kind, frame.count, frame.values, frame.keys, frame.headers) == (
        1, 1, [b"v"], [b"k"], None)
    assert "first_id=4" in repr(frame)


# ---- decoding bad payloads -----------------------------------------------------------

VALID = records_payload([b"value", None, b""], [None, b"key", b""],
                        headers=[[("h", b"x")], None, [("", None)]])


def test_every_truncation_is_corrupt():
    for end in range(len(VALID)):
        with pytest.raises(CorruptRecordError):
            decode_records(VALID[:end])
    decode_records(VALID)


def test_trailing_bytes_wrong_kind_and_flags_are_corrupt():
    with pytest.raises(CorruptRecordError, match="remain"):
        decode_records(VALID + b"\0")
    with pytest.raises(CorruptRecordError, match="kind"):
        decode_records(b"\x02" + VALID[1:])
    with pytest.raises(CorruptRecordError, match="flags"):
        decode_records(VALID[:1] + b"\x07" + VALID[2:])
    huge_count = VALID[:12] + struct.pack("<I", 2**32 - 1) + VALID[16:]
    with pytest.raises(CorruptRecordError, match="declares"):
        decode_records(huge_count)
    with pytest.raises(TypeError):
        decode_records("text")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_garbage_raises_only_corrupt_record_error(data):
    for payload in (data, b"\x01" + data, b"\x01\x03\x00\x00" + data):
        try:
            frame = decode_records(payload)
        except CorruptRecordError:
            continue
        assert frame.count == len(frame.values)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_decode_bit_flips_raise_only_corrupt_record_error(index, xor):
    data = bytearray(VALID)
    data[index] ^= xor
    try:
        decode_records(bytes(data))
    except CorruptRecordError:
        pass


values_st = st.lists(st.none() | st.binary(max_size=40), min_size=1, max_size=20)
header_st = st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_records_round_trip_property(data):
    values = data.draw(values_st)
    n = len(values)
    keys = data.draw(st.none() | st.lists(st.none() | st.binary(max_size=20),
                                          min_size=n, max_size=n))
    headers = data.draw(st.none() | st.lists(st.none() | st.lists(header_st, max_size=3),
                                             min_size=n, max_size=n))
    fields = dict(topic_index=data.draw(st.integers(0, 2**32 - 1)),
                  partition=data.draw(st.integers(-2**31, 2**31 - 1)),
                  timestamp=data.draw(st.integers(-2**63, 2**63 - 1)),
                  first_id=data.draw(st.integers(0, 2**64 - 1)))
    frame = decode_records(records_payload(values, keys, headers, **fields))
    assert (frame.topic_index, frame.partition, frame.timestamp, frame.first_id) == (
        fields["topic_index"], fields["partition"], fields["timestamp"], fields["first_id"])
    assert frame.values == values
    assert frame.keys == (keys if keys and any(k is not None for k in keys) else None)
    expected_headers = None
    if headers and any(headers):
        expected_headers = [h or None for h in headers]
    assert frame.headers == expected_headers


# ---- two processes -------------------------------------------------------------------

N_STRESS = 200_000
STRESS_SEED = 1234
CONTROL_EVERY = 50  # frames between control frames
WAIT_TIMEOUT_S = 5.0


def stress_sizes() -> list[int]:
    rng = random.Random(STRESS_SEED)
    # mostly small records, now and then one that takes most of the 64 KiB ring
    return [rng.randrange(40_000, 65_000) if rng.random() < 0.0005 else rng.randrange(300)
            for _ in range(N_STRESS)]


def stress_value(i: int, size: int) -> bytes:
    return (i.to_bytes(4, "little") * (size // 4 + 1))[:size]


def stress_key(i: int) -> bytes | None:
    return None if i % 3 == 0 else b"k%d" % i


def stress_consumer(name: str, data_ready, space_ready, results) -> None:
    """Spawned process: read every record, check it, release as it goes."""
    shm = shared_memory.SharedMemory(name=name)
    ring = Ring(shm.buf)
    sizes = stress_sizes()
    next_id = crc = timeouts = frames = controls = 0
    unreleased = []
    error = None
    try:
        while next_id < N_STRESS:
            payload = ring.read()
            if payload is None:
                if unreleased:  # nothing more to read: acknowledge what we hold
                    ring.release(unreleased[-1])
                    unreleased.clear()
                    if ring.producer_waiting:
                        space_ready.release()
                    continue
                ring.set_consumer_waiting(True)
                if ring.write_pos == ring.read_pos:
                    if not data_ready.acquire(timeout=WAIT_TIMEOUT_S):
                        timeouts += 1
                ring.set_consumer_waiting(False)
                continue
            frames += 1
            if payload[0] != RECORDS_KIND:
                assert bytes(payload) == b"\x02" + struct.pack("<Q", next_id), "control frame"
                controls += 1
            else:
                frame = decode_records(payload)
                assert frame.first_id == next_id, (frame.first_id, next_id)
                assert (frame.topic_index, frame.partition) == (3, next_id % 7)
                for j, value in enumerate(frame.values):
                    i = next_id + j
                    assert value == stress_value(i, sizes[i]), f"record {i}"
                    assert frame.keys is None or frame.keys[j] == stress_key(i), f"key {i}"
                    crc = zlib.crc32(value, crc)
                next_id += frame.count
            del payload
            unreleased.append(ring.read_end_pos())
            if len(unreleased) > 3:  # acknowledge with a lag, as a worker does
                ring.release(unreleased.pop(0))
                if ring.producer_waiting:
                    space_ready.release()
        ring.release(ring.read_end_pos())
        if ring.producer_waiting:
            space_ready.release()
    except BaseException as exc:  # reported to the parent
        error = repr(exc)
    results.put(dict(records=next_id, crc=crc, timeouts=timeouts, frames=frames,
                     controls=controls, error=error))
    ring.close()
    shm.close()


def test_two_process_stress_through_a_64k_ring():
    ctx = multiprocessing.get_context("spawn")
    sizes = stress_sizes()
    values = [stress_value(i, n) for i, n in enumerate(sizes)]
    keys = [stress_key(i) for i in range(N_STRESS)]
    expected_crc = 0
    for value in values:
        expected_crc = zlib.crc32(value, expected_crc)
    shm = shared_memory.SharedMemory(create=True, size=HEADER_SIZE + 65536)
    ring = Ring(shm.buf, create=True)
    data_ready, space_ready, results = ctx.Semaphore(0), ctx.Semaphore(0), ctx.Queue()
    consumer = ctx.Process(target=stress_consumer,
                           args=(shm.name, data_ready, space_ready, results))
    consumer.start()
    timeouts = frames = 0

    def write(start: int, control: bool) -> int:
        if control:
            return 1 if ring.try_write(b"\x02" + struct.pack("<Q", start)) else 0
        return ring.try_write_records(3, start % 7, 0, start, values,
                                      keys if start % 2 else None,
                                      start=start, stop=start + 5000)

    try:
        start = 0
        while start < N_STRESS:
            control = frames % CONTROL_EVERY == CONTROL_EVERY - 1
            written = write(start, control)
            if written == 0:
                ring.set_producer_waiting(True)
                written = write(start, control)  # re-check after raising the flag
                if written == 0 and not space_ready.acquire(timeout=WAIT_TIMEOUT_S):
                    timeouts += 1
                ring.set_producer_waiting(False)
                if written == 0:
                    assert consumer.is_alive(), "the consumer died"
                    continue
            frames += 1
            if not control:
                start += written
            if ring.consumer_waiting:
                data_ready.release()
        outcome = results.get(timeout=60)
    finally:
        consumer.join(timeout=30)
        if consumer.is_alive():
            consumer.kill()
        ring.close()
        shm.close()
        shm.unlink()
    assert outcome["error"] is None, outcome["error"]
    assert outcome["records"] == N_STRESS
    assert outcome["crc"] == expected_crc
    assert outcome["controls"] > 0
    assert outcome["timeouts"] == 0 and timeouts == 0, "a wake-up was lost"
    assert consumer.exitcode == 0
