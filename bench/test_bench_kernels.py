"""Micro-benchmarks of the Cython kernels against what other Python clients use.

- crc32c on 1 MiB and on 100-byte buffers: fastprod vs the ``crc32c`` package (C, SSE4.2).
- murmur2 on 16-byte keys: fastprod vs kafka-python's pure-Python ``murmur2``.
- building 64 KiB record batches of 100-byte values (key None, no headers): fastprod's
  ``BatchBuilder`` vs aiokafka's C ``DefaultRecordBatchBuilder``, with the same per-record
  Python loop and the same arguments; compression none and lz4. Note on lz4: each uses
  its default level, which is not the same compressor: fastprod follows Java (level 9
  means lz4's fast compressor), aiokafka runs LZ4HC at level 9 through cramjam.

Groups pair a fastprod benchmark with its baseline; ``extra_info`` carries what
bench/report_kernels.py needs (bytes per call, records per call, role).
"""

from __future__ import annotations

import random

import crc32c as crc32c_pkg
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from kafka.partitioner.default import murmur2 as py_murmur2

from fastprod.kernels import BatchBuilder, crc32c, murmur2, read_batch

RNG = random.Random(2024)
MIB = RNG.randbytes(1 << 20)
SMALL = RNG.randbytes(100)
KEY16 = RNG.randbytes(16)

BATCH_SIZE = 64 * 1024
VALUE_SIZE = 100
TIMESTAMP = 1_700_000_000_000


def _values(n: int) -> list[bytes]:
    """100-byte values that look like small JSON events (lz4 finds something to do)."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        v = (b'{"id":%08d,"user":"user-%05d","event":"click","ts":%d,"pad":"'
             % (i, rng.randrange(100_000), TIMESTAMP + i))
        v += rng.choice([b"a", b"b", b"c"]) * (VALUE_SIZE - len(v) - 2) + b'"}'
        assert len(v) == VALUE_SIZE
        out.append(v)
    return out


def _records_per_batch(codec: int) -> int:
    """How many 100-byte records both builders take before the 64 KiB batch is full.

    The two size checks differ (fastprod, like Java, estimates a compressed batch at
    uncompressed size x 1.05), so each loop appends the count both accept: the same work.
    """
    b = BatchBuilder(codec, BATCH_SIZE)
    n = 0
    while b.append(n, TIMESTAMP, None, bytes(VALUE_SIZE), []) != -1:
        n += 1
    a = AioBuilder(2, codec, False, -1, -1, -1, BATCH_SIZE)
    m = 0
    while a.append(m, TIMESTAMP, None, bytes(VALUE_SIZE), []) is not None:
        m += 1
    return min(n, m)


N_RECORDS = {codec: _records_per_batch(codec) for codec in (0, 3)}
VALUES = {codec: _values(n) for codec, n in N_RECORDS.items()}


def test_aiokafka_builder_is_the_c_one():
    assert AioBuilder.__module__ == "aiokafka.record._crecords.default_records", (
        f"aiokafka's C extension is not in use ({AioBuilder.__module__}): the comparison "
        "would be against pure Python")


# ---- crc32c ---------------------------------------------------------------------------

@pytest.mark.benchmark(group="crc32c-1MiB")
def test_crc32c_1mib_fastprod(benchmark):
    benchmark.extra_info.update(role="fastprod", bytes=len(MIB))
    assert benchmark(crc32c, MIB) == crc32c_pkg.crc32c(MIB)


@pytest.mark.benchmark(group="crc32c-1MiB")
def test_crc32c_1mib_crc32c_package(benchmark):
    benchmark.extra_info.update(role="baseline", bytes=len(MIB))
    assert benchmark(crc32c_pkg.crc32c, MIB) == crc32c(MIB)


@pytest.mark.benchmark(group="crc32c-100B")
def test_crc32c_100b_fastprod(benchmark):
    benchmark.extra_info.update(role="fastprod", bytes=len(SMALL))
    assert benchmark(crc32c, SMALL) == crc32c_pkg.crc32c(SMALL)


@pytest.mark.benchmark(group="crc32c-100B")
def test_crc32c_100b_crc32c_package(benchmark):
    benchmark.extra_info.update(role="baseline", bytes=len(SMALL))
    assert benchmark(crc32c_pkg.crc32c, SMALL) == crc32c(SMALL)


# ---- murmur2 --------------------------------------------------------------------------

@pytest.mark.benchmark(group="murmur2-16B")
def test_murmur2_16b_fastprod(benchmark):
    benchmark.extra_info.update(role="fastprod", bytes=16)
    assert benchmark(murmur2, KEY16) & 0xFFFFFFFF == py_murmur2(KEY16)


@pytest.mark.benchmark(group="murmur2-16B")
def test_murmur2_16b_kafka_python(benchmark):
    benchmark.extra_info.update(role="baseline", bytes=16)
    assert benchmark(py_murmur2, KEY16) == murmur2(KEY16) & 0xFFFFFFFF


# ---- record batch building ------------------------------------------------------------

def _fastprod_batch(codec: int) -> bytes:
    b = BatchBuilder(codec, BATCH_SIZE)
    append = b.append
    ts = TIMESTAMP
    for i, value in enumerate(VALUES[codec]):
        append(i, ts, None, value, [])
    return b.build()


def _fastprod_batch_bulk(codec: int) -> bytes:
    b = BatchBuilder(codec, BATCH_SIZE)
    assert b.append_many(0, TIMESTAMP, VALUES[codec]) == N_RECORDS[codec]
    return b.build()


def _aiokafka_batch(codec: int) -> bytes:
    b = AioBuilder(2, codec, False, -1, -1, -1, BATCH_SIZE)
    append = b.append
    ts = TIMESTAMP
    for i, value in enumerate(VALUES[codec]):
        append(i, ts, None, value, [])
    return b.build()


def _check(buf, codec: int) -> None:
    batch = read_batch(buf)
    assert len(batch.records) == N_RECORDS[codec]
    assert batch.compression_type == codec
    assert batch.records[-1].value == VALUES[codec][-1]


@pytest.mark.parametrize("codec", [0, 3], ids=["none", "lz4"])
def test_batch_build_fastprod(benchmark, codec):
    benchmark.group = f"batch-64KiB-{'none' if codec == 0 else 'lz4'}"
    benchmark.extra_info.update(role="fastprod", records=N_RECORDS[codec],
                                value_size=VALUE_SIZE)
    _check(benchmark(_fastprod_batch, codec), codec)


@pytest.mark.parametrize("codec", [0, 3], ids=["none", "lz4"])
def test_batch_build_aiokafka(benchmark, codec):
    benchmark.group = f"batch-64KiB-{'none' if codec == 0 else 'lz4'}"
    benchmark.extra_info.update(role="baseline", records=N_RECORDS[codec],
                                value_size=VALUE_SIZE)
    _check(bytes(benchmark(_aiokafka_batch, codec)), codec)


@pytest.mark.benchmark(group="batch-64KiB-none-bulk")
def test_batch_build_fastprod_bulk(benchmark):
    """fastprod's bulk path (append_many: the loop runs in C, as send_batch uses it)
    against aiokafka's only way, the per-record loop."""
    benchmark.extra_info.update(role="fastprod", records=N_RECORDS[0], value_size=VALUE_SIZE)
    _check(benchmark(_fastprod_batch_bulk, 0), 0)


@pytest.mark.benchmark(group="batch-64KiB-none-bulk")
def test_batch_build_aiokafka_for_bulk(benchmark):
    benchmark.extra_info.update(role="baseline", records=N_RECORDS[0], value_size=VALUE_SIZE)
    _check(bytes(benchmark(_aiokafka_batch, 0)), 0)
