"""Micro-benchmarks of the shared-memory ring (fastprod/_ext/ring.pyx), per record.

- write: ``Ring.try_write_records`` of 10,000 x 100-byte values in one call (one records
  frame), keys None, no headers: the parent's cost per record in ShardedProducer.
- write-keyed: the same with 16-byte keys.
- read: ``Ring.read`` + ``decode_records`` + ``release`` of such a frame: the worker's
  cost per record before its accumulator.

The ring is emptied (or filled) in each round's untimed setup. ``extra_info["records"]``
gives the records per call: ns/record = median / records. Run:
``python -m pytest bench/test_bench_ring.py``.
"""

from __future__ import annotations

import random

import pytest

from fastprod._ext.ring import HEADER_SIZE, Ring, decode_records

N = 10_000
VALUE_SIZE = 100
CAPACITY = 2 << 20  # 2 MiB: one frame of 10,000 records (~1.04 MB) fits
ROUNDS = 300

RNG = random.Random(5)
VALUES = [RNG.randbytes(VALUE_SIZE) for _ in range(N)]
KEYS = [RNG.randbytes(16) for _ in range(N)]


def _ring() -> Ring:
    return Ring(bytearray(HEADER_SIZE + CAPACITY), create=True)


def _drain(ring: Ring) -> None:
    while ring.read() is not None:
        pass
    ring.release(ring.read_end_pos())


def _bench_write(benchmark, keys) -> None:
    ring = _ring()
    benchmark.extra_info.update(records=N, value_size=VALUE_SIZE)

    def setup():
        _drain(ring)

    result = benchmark.pedantic(ring.try_write_records, args=(0, 0, 0, 0, VALUES, keys),
                                setup=setup, rounds=ROUNDS, warmup_rounds=5)
    assert result == N
    frame = decode_records(ring.read())
    assert frame.values == VALUES and frame.keys == keys
    benchmark.extra_info["ns_per_record"] = benchmark.stats.stats.median / N * 1e9


@pytest.mark.benchmark(group="ring-write")
def test_ring_write_records(benchmark):
    _bench_write(benchmark, None)


@pytest.mark.benchmark(group="ring-write")
def test_ring_write_records_keyed(benchmark):
    _bench_write(benchmark, KEYS)


@pytest.mark.benchmark(group="ring-read")
def test_ring_read_decode(benchmark):
    ring = _ring()
    benchmark.extra_info.update(records=N, value_size=VALUE_SIZE)

    def setup():
        _drain(ring)
        assert ring.try_write_records(0, 0, 0, 0, VALUES) == N

    def read_decode():
        frame = decode_records(ring.read())
        ring.release(ring.read_end_pos())
        return frame

    frame = benchmark.pedantic(read_decode, setup=setup, rounds=ROUNDS, warmup_rounds=5)
    assert frame.count == N and frame.values[-1] == VALUES[-1]
    benchmark.extra_info["ns_per_record"] = benchmark.stats.stats.median / N * 1e9
