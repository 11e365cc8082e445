"""fastprod.kernels BatchBuilder / read_batch / set_producer_state: record batch v2.

What we write is read by two independent decoders, kafka-python's
(``kafka.record.MemoryRecords``/``DefaultRecordBatch``) and the Java client's own
(``MemoryRecords``/``DefaultRecordBatch`` via tests/java/KernelOracle.java), for every
codec; what they write (kafka-python's ``DefaultRecordBatchBuilder``, Java's
``MemoryRecordsBuilder``) is read by ``read_batch``. No broker is involved.
"""

from __future__ import annotations

import array
import gzip
import random
import struct

import crc32c as crc32c_pkg
import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.codec import snappy_encode as kp_snappy_encode
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder
from kafka.record.memory_records import MemoryRecords

from fastprod.errors import CorruptRecordError
from fastprod.kernels import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    RECORD_BATCH_OVERHEAD,
    BatchBuilder,
    Record,
    RecordBatch,
    read_batch,
    set_producer_state,
)

try:
    import javatools
except ImportError:  # tests/ imported as a package
    from tests import javatools

CODECS = [COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4,
          COMPRESSION_ZSTD]
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
codec_param = pytest.mark.parametrize("codec", CODECS, ids=[CODEC_NAMES[c] for c in CODECS])

# header offsets (DefaultRecordBatch)
OFF_LENGTH, OFF_LEADER_EPOCH, OFF_MAGIC, OFF_CRC, OFF_ATTRIBUTES = 8, 12, 16, 17, 21
OFF_LAST_OFFSET_DELTA, OFF_BASE_TS, OFF_MAX_TS, OFF_PID, OFF_EPOCH = 23, 27, 35, 43, 51
OFF_BASE_SEQ, OFF_COUNT = 53, 57
HEADER = 61

BIG = 1 << 30  # a batch_size nothing reaches


# ---- helpers ----------------------------------------------------------------------

def fix_crc(buf: bytearray) -> bytearray:
    """Recompute the CRC of a (deliberately modified) batch, so the reader gets past it."""
    struct.pack_into(">I", buf, OFF_CRC, crc32c_pkg.crc32c(bytes(buf[OFF_ATTRIBUTES:])))
    return buf


def build(records, codec=COMPRESSION_NONE, level=None, **build_kwargs) -> bytes:
    """records: [(timestamp, key, value, headers)], offset deltas 0, 1, 2, ..."""
    b = BatchBuilder(codec, BIG, level)
    for i, (ts, key, value, headers) in enumerate(records):
        assert b.append(i, ts, key, value, headers) > 0
    return b.build(**build_kwargs)


def kp_read(buf):
    """kafka-python's decoding: [(batch, [(offset, ts, key, value, headers)])]; CRCs checked."""
    out = []
    records = MemoryRecords(bytes(buf))
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc(), "kafka-python: CRC-32C mismatch"
        recs = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
        out.append((batch, recs))
    return out


def as_tuples(batch: RecordBatch):
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch.records]


def expected_tuples(records, base_offset=0):
    out = []
    for i, (ts, key, value, headers) in enumerate(records):
        hs = [(k.decode() if isinstance(k, bytes) else k, None if v is None else bytes(v))
              for k, v in (headers or [])]
        out.append((base_offset + i, ts,
                    None if key is None else bytes(key),
                    None if value is None else bytes(value), hs))
    return out


def mixed_records(rng: random.Random, n: int, base_ts: int = 1_700_000_000_000):
    """Keys/values None, empty, short, long; headers with str/bytes keys and None values;
    timestamps going backwards and far forwards."""
    recs = []
    for i in range(n):
        kind = i % 7
        key = [None, b"", b"k", f"key-{i}".encode(), rng.randbytes(rng.randrange(0, 40)),
               "ключ-é-🔑".encode(), bytes(300)][kind]
        value = [b"v" * (i % 50), None, b"", rng.randbytes(rng.randrange(0, 2000)),
                 (b"compressible payload %d " % i) * 20, "значение".encode(), b"\x00"][
                     (i * 3) % 7]
        headers = []
        if i % 3 == 0:
            headers = [("trace-id", f"{i:016x}".encode()), ("empty", b""), ("none", None)]
        elif i % 3 == 1:
            headers = [(b"bytes-key", b"x"), ("ключ", "значение".encode())]
        ts = base_ts + [0, -1, 1, -(2**31), 2**35, -5000, 123456789][i % 7] + i
        recs.append((ts, key, value, headers))
    return recs


def compressible_records(n: int, base_ts: int = 1_600_000_000_000):
    return [(base_ts + i, f"key-{i % 10}".encode(), (b"the same value again %d " % (i % 5)) * 10,
             [("h", b"hv")] if i % 2 else []) for i in range(n)]


# ---- constants and types -----------------------------------------------------------

def test_constants():
    assert (COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4,
            COMPRESSION_ZSTD) == (0, 1, 2, 3, 4)
    assert RECORD_BATCH_OVERHEAD == 61


def test_record_and_batch_types():
    buf = build([(1000, b"k", b"v", [("h", None)])], producer_id=5, producer_epoch=1,
                base_sequence=0, is_transactional=True)
    batch = read_batch(buf)
    assert isinstance(batch, RecordBatch) and isinstance(batch, tuple)
    assert isinstance(batch.records[0], Record)
    assert batch.records[0] == Record(0, 1000, b"k", b"v", [("h", None)])
    assert batch.magic == 2
    assert batch.compression_type == 0
    assert batch.timestamp_type == 0
    assert batch.is_transactional is True
    assert batch.is_control is False
    assert batch.size_in_bytes == batch.batch_length + 12 == len(buf)


# ---- what we write, independent readers check ---------------------------------------

@codec_param
def test_kafka_python_reads_ours(codec):
    rng = random.Random(codec)
    records = mixed_records(rng, 500)
    buf = build(records, codec)
    [(kbatch, krecs)] = kp_read(buf)
    assert krecs == expected_tuples(records)
    assert kbatch.compression_type == codec
    assert kbatch.magic == 2
    assert kbatch.records_count == 500
    assert kbatch.last_offset_delta == 499
    assert kbatch.first_timestamp == records[0][0]
    assert kbatch.max_timestamp == max(r[0] for r in records)
    assert kbatch.producer_id == -1 and kbatch.producer_epoch == -1
    assert kbatch.base_sequence == -1
    assert not kbatch.is_transactional
    # and we read it back the same
    batch = read_batch(buf)
    assert as_tuples(batch) == expected_tuples(records)
    assert batch.compression_type == codec


@codec_param
def test_many_small_records(codec):
    records = [(1_000 + i, None if i % 2 else b"%d" % i, b"x" * (i % 17), None)
               for i in range(10_000)]
    buf = build(records, codec)
    [(_, krecs)] = kp_read(buf)
    assert krecs == expected_tuples(records)
    assert as_tuples(read_batch(buf)) == expected_tuples(records)


@pytest.mark.parametrize(("codec", "level"), [
    (COMPRESSION_GZIP, 1), (COMPRESSION_GZIP, 9), (COMPRESSION_GZIP, -1),
    (COMPRESSION_LZ4, 1), (COMPRESSION_LZ4, 9), (COMPRESSION_LZ4, 12), (COMPRESSION_LZ4, 17),
    (COMPRESSION_ZSTD, 1), (COMPRESSION_ZSTD, 19), (COMPRESSION_ZSTD, -5),
    (COMPRESSION_ZSTD, 22),
])
def test_compression_levels(codec, level):
    records = compressible_records(300)
    buf = build(records, codec, level)
    [(kbatch, krecs)] = kp_read(buf)
    assert kbatch.compression_type == codec
    assert krecs == expected_tuples(records)
    assert as_tuples(read_batch(buf)) == expected_tuples(records)


@pytest.mark.parametrize(("codec", "level"), [
    (COMPRESSION_GZIP, 0), (COMPRESSION_GZIP, 10), (COMPRESSION_LZ4, 0), (COMPRESSION_LZ4, 18),
    (COMPRESSION_ZSTD, 23),
])
def test_bad_compression_level(codec, level):
    with pytest.raises(ValueError):
        BatchBuilder(codec, 16384, level)


@pytest.mark.parametrize("codec", [-1, 5, 6, 7, 8, 255])
def test_bad_compression_type(codec):
    with pytest.raises((ValueError, OverflowError)):
        BatchBuilder(codec)


def test_bad_batch_size():
    for size in (0, -1):
        with pytest.raises(ValueError):
            BatchBuilder(0, size)
    with pytest.raises(TypeError):
        BatchBuilder(0, "16384")


@pytest.mark.parametrize("codec", [COMPRESSION_GZIP, COMPRESSION_SNAPPY, COMPRESSION_LZ4,
                                   COMPRESSION_ZSTD], ids=["gzip", "snappy", "lz4", "zstd"])
def test_large_values(codec):
    """Megabyte values: several snappy chunks (32 KiB) and lz4 blocks (64 KiB)."""
    rng = random.Random(99)
    records = [(1, b"big", rng.randbytes(300_000) + bytes(700_000), None),
               (2, None, b"small", [("h", rng.randbytes(100_000))])]
    buf = build(records, codec)
    [(kbatch, krecs)] = kp_read(buf)
    assert kbatch.compression_type == codec
    assert krecs == expected_tuples(records)
    assert as_tuples(read_batch(buf)) == expected_tuples(records)


def test_compressed_payload_framing():
    records = compressible_records(200)
    payload = {c: build(records, c)[HEADER:] for c in CODECS}
    assert payload[COMPRESSION_GZIP][:2] == b"\x1f\x8b"
    # xerial framing, as snappy-java's SnappyOutputStream writes it
    assert payload[COMPRESSION_SNAPPY][:8] == b"\x82SNAPPY\x00"
    assert payload[COMPRESSION_SNAPPY][8:16] == struct.pack(">ii", 1, 1)
    assert payload[COMPRESSION_ZSTD][:4] == b"\x28\xb5\x2f\xfd"
    lz = payload[COMPRESSION_LZ4]
    assert lz[:4] == b"\x04\x22\x4d\x18", "LZ4 frame magic"
    flg = lz[4]
    assert flg >> 6 == 0b01, "LZ4 frame version"
    assert flg & 0x20, "LZ4 blocks must be independent: Kafka rejects linked blocks"
    assert flg & 0x02 == 0 and flg & 0x01 == 0, "reserved/dict-id bits"
    # the whole payload is one valid frame that lz4 decodes to the records section
    assert lz4.frame.decompress(lz) == build(records, COMPRESSION_NONE)[HEADER:]


def test_lz4_multi_block_frame_is_independent():
    rng = random.Random(4)
    records = [(i, None, rng.randbytes(20_000) + bytes(20_000), None) for i in range(20)]
    lz = build(records, COMPRESSION_LZ4)[HEADER:]
    assert lz[4] & 0x20
    # every block decodes on its own (a linked block would need the previous one)
    bd = lz[5]
    max_block = {4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22}[(bd >> 4) & 7]
    pos = 7 + (8 if lz[4] & 0x08 else 0)
    blocks = 0
    import lz4.block
    while True:
        (size,) = struct.unpack_from("<I", lz, pos)
        pos += 4
        if size == 0:
            break
        data = lz[pos:pos + (size & 0x7FFFFFFF)]
        pos += size & 0x7FFFFFFF
        if lz[4] & 0x10:
            pos += 4  # block checksum
        if not size & 0x80000000:
            lz4.block.decompress(data, uncompressed_size=max_block)
        blocks += 1
    assert blocks > 1


# ---- what they write, we read -------------------------------------------------------

@codec_param
def test_we_read_kafka_python(codec):
    records = compressible_records(400) + mixed_records(random.Random(1), 100)
    kb = KpBuilder(magic=2, compression_type=codec, is_transactional=False,
                   producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=BIG)
    for i, (ts, key, value, headers) in enumerate(records):
        kb.append(i, timestamp=ts, key=key, value=value,
                  headers=[(k.decode() if isinstance(k, bytes) else k, v) for k, v in headers])
    buf = bytes(kb.build())
    # kafka-python falls back to no compression when it does not help: make sure it did
    assert struct.unpack_from(">h", buf, OFF_ATTRIBUTES)[0] & 7 == codec
    batch = read_batch(buf)
    assert batch.compression_type == codec
    assert as_tuples(batch) == expected_tuples(records)
    assert batch.last_offset_delta == len(records) - 1
    assert batch.base_timestamp == records[0][0]
    assert batch.max_timestamp == max(r[0] for r in records)
    assert batch.size_in_bytes == len(buf)


def test_we_read_raw_snappy():
    """Java readers accept raw (unframed) snappy as well as xerial framing."""
    records = compressible_records(100)
    plain = build(records)
    for payload in (snappy.compress(plain[HEADER:]),
                    kp_snappy_encode(plain[HEADER:], xerial_compatible=False),
                    kp_snappy_encode(plain[HEADER:], xerial_compatible=True, xerial_blocksize=1000)):
        buf = bytearray(plain[:HEADER]) + payload
        struct.pack_into(">i", buf, OFF_LENGTH, len(buf) - 12)
        struct.pack_into(">h", buf, OFF_ATTRIBUTES, COMPRESSION_SNAPPY)
        fix_crc(buf)
        assert as_tuples(read_batch(buf)) == expected_tuples(records)


def _recompress(records, codec, compress):
    plain = build(records)
    buf = bytearray(plain[:HEADER]) + compress(plain[HEADER:])
    struct.pack_into(">i", buf, OFF_LENGTH, len(buf) - 12)
    struct.pack_into(">h", buf, OFF_ATTRIBUTES, codec)
    return bytes(fix_crc(buf))


def _two_zstd_frames(data: bytes) -> bytes:
    c = zstandard.ZstdCompressor()
    return c.compress(data[:len(data) // 2]) + c.compress(data[len(data) // 2:])


def _zstd_without_content_size(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_content_size=False).compress(data)


def _lz4_with_content_size_and_checksums(data: bytes) -> bytes:
    return lz4.frame.compress(data, block_linked=False, store_size=True, content_checksum=True,
                              block_checksum=True)


def _two_gzip_members(data: bytes) -> bytes:
    return gzip.compress(data[:len(data) // 2]) + gzip.compress(data[len(data) // 2:])


OTHER_WRITERS = [
    pytest.param(COMPRESSION_ZSTD, _zstd_without_content_size, id="zstd-no-content-size"),
    pytest.param(COMPRESSION_LZ4, _lz4_with_content_size_and_checksums,
                 id="lz4-content-size-checksums"),
    pytest.param(COMPRESSION_ZSTD, _two_zstd_frames, id="zstd-two-frames"),
    pytest.param(COMPRESSION_GZIP, _two_gzip_members, id="gzip-two-members"),
]


@pytest.mark.parametrize(("codec", "compress"), OTHER_WRITERS)
def test_we_read_other_writers_framing(codec, compress):
    """Framings other clients produce and the Java consumer accepts (checked against Java
    in test_java_reads_ours_and_others)."""
    records = compressible_records(300)
    buf = _recompress(records, codec, compress)
    assert as_tuples(read_batch(buf)) == expected_tuples(records)


# ---- Java, both directions, one JVM each ----------------------------------------------

def _java_cases():
    rng = random.Random(77)
    cases = []
    for codec in CODECS:
        cases.append((f"mixed-{CODEC_NAMES[codec]}", mixed_records(rng, 300), codec, {}))
        cases.append((f"compressible-{CODEC_NAMES[codec]}", compressible_records(500), codec,
                      dict(producer_id=123456789012, producer_epoch=7, base_sequence=2**31 - 100,
                           is_transactional=True, base_offset=10_000,
                           partition_leader_epoch=42)))
        cases.append((f"large-{CODEC_NAMES[codec]}",
                      [(5, b"k", rng.randbytes(200_000) + bytes(500_000), None),
                       (4, None, bytes(70_000), [("h", bytes(40_000))])], codec, {}))
    return cases


def _compare_java_batch(name, jb, records, codec, kwargs):
    assert jb.compression_type == codec, name
    assert jb.count == len(records), name
    base_offset = kwargs.get("base_offset", 0)
    assert jb.base_offset == base_offset, name
    assert jb.last_offset == base_offset + len(records) - 1, name
    assert jb.producer_id == kwargs.get("producer_id", -1), name
    assert jb.producer_epoch == kwargs.get("producer_epoch", -1), name
    assert jb.base_sequence == kwargs.get("base_sequence", -1), name
    assert jb.is_transactional == kwargs.get("is_transactional", False), name
    assert jb.partition_leader_epoch == kwargs.get("partition_leader_epoch", -1), name
    assert jb.max_timestamp == max(r[0] for r in records), name
    got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in jb.records]
    assert got == expected_tuples(records, base_offset), name


def test_java_reads_ours_and_others():
    javatools.require_java()
    cases = _java_cases()
    bufs = [build(records, codec, **kwargs) for _, records, codec, kwargs in cases]
    # set_producer_state output, one per codec
    restamped = []
    for codec in CODECS:
        b = bytearray(build(compressible_records(50), codec))
        set_producer_state(b, 99, 3, 1000, True)
        restamped.append(bytes(b))
    others = [_recompress(compressible_records(300), p.values[0], p.values[1])
              for p in OTHER_WRITERS]
    # two checks of the checker: a CRC error is an error to Java too, and Java's view of
    # a LOG_APPEND_TIME batch (test_log_append_time_batches_report_max_timestamp)
    corrupt = bytearray(bufs[0])
    corrupt[-1] ^= 1
    log_append = bytearray(build([(100, None, b"a", None), (200, None, b"b", None)]))
    struct.pack_into(">h", log_append, OFF_ATTRIBUTES, 0x08)
    struct.pack_into(">q", log_append, OFF_MAX_TS, 999_999)
    fix_crc(log_append)
    results = javatools.oracle().read_batches(
        bufs + restamped + others + [bytes(corrupt), bytes(log_append)])
    *results, java_corrupt, java_log_append = results
    assert isinstance(java_corrupt, javatools.JavaError), java_corrupt
    assert "CorruptRecord" in java_corrupt.args[0] or "InvalidRecord" in java_corrupt.args[0]
    assert [r.timestamp for r in java_log_append[0].records] == [999_999, 999_999]
    errors = [(name, r) for (name, *_), r in zip(cases, results) if isinstance(r, Exception)]
    assert not errors, f"Java rejected our batches: {errors}"
    for (name, records, codec, kwargs), res in zip(cases, results):
        [jb] = res
        _compare_java_batch(name, jb, records, codec, kwargs)
    for codec, res in zip(CODECS, results[len(cases):len(cases) + len(CODECS)]):
        assert not isinstance(res, Exception), (CODEC_NAMES[codec], res)
        _compare_java_batch(f"restamped-{CODEC_NAMES[codec]}", res[0], compressible_records(50),
                            codec, dict(producer_id=99, producer_epoch=3, base_sequence=1000,
                                        is_transactional=True))
    # the framings of other writers: Java accepts them, so must read_batch (see above)
    for param, res in zip(OTHER_WRITERS, results[len(cases) + len(CODECS):]):
        assert not isinstance(res, Exception), (param.id, res)
        assert len(res[0].records) == 300, param.id


def test_we_read_java():
    javatools.require_java()
    rng = random.Random(5)
    specs = []
    for codec in CODECS:
        specs.append(javatools.BatchSpec(
            [(ts, k, v, h) for ts, k, v, h in mixed_records(rng, 200)], codec))
        specs.append(javatools.BatchSpec(
            compressible_records(400), codec, producer_id=2**40 + 3, producer_epoch=32767,
            base_sequence=17, is_transactional=True, base_offset=2**33,
            partition_leader_epoch=9))
        specs.append(javatools.BatchSpec(
            [(0, b"k", rng.randbytes(150_000) + bytes(300_000), [("h", None)])], codec))
    # Java refuses negative timestamps: mixed_records' are all positive
    bufs = javatools.oracle().write_batches(specs)
    for spec, buf in zip(specs, bufs):
        name = f"{CODEC_NAMES[spec.compression_type]} pid={spec.producer_id}"
        batch = read_batch(buf)
        assert batch.size_in_bytes == len(buf), name
        assert batch.compression_type == spec.compression_type, name
        assert as_tuples(batch) == expected_tuples(spec.records, spec.base_offset), name
        assert batch.producer_id == spec.producer_id, name
        assert batch.producer_epoch == spec.producer_epoch, name
        assert batch.base_sequence == spec.base_sequence, name
        assert batch.is_transactional == spec.is_transactional, name
        assert batch.partition_leader_epoch == spec.partition_leader_epoch, name
        assert batch.base_offset == spec.base_offset, name
        assert batch.max_timestamp == max(r[0] for r in spec.records), name
        if spec.compression_type == COMPRESSION_NONE:
            # same input, same bytes: our encoder writes exactly what Java writes
            b = BatchBuilder(COMPRESSION_NONE, BIG)
            for i, (ts, k, v, h) in enumerate(spec.records):
                b.append(i, ts, k, v, h)
            ours = b.build(spec.producer_id, spec.producer_epoch, spec.base_sequence,
                           spec.is_transactional, spec.base_offset,
                           spec.partition_leader_epoch)
            assert ours == buf, name


# ---- producer state ----------------------------------------------------------------

@codec_param
def test_producer_fields_round_trip(codec):
    records = compressible_records(30)
    kwargs = dict(producer_id=2**62 + 5, producer_epoch=32767, base_sequence=2**31 - 1,
                  is_transactional=True, base_offset=2**40, partition_leader_epoch=2**31 - 1)
    buf = build(records, codec, **kwargs)
    batch = read_batch(buf)
    assert batch.producer_id == kwargs["producer_id"]
    assert batch.producer_epoch == 32767
    assert batch.base_sequence == 2**31 - 1
    assert batch.is_transactional
    assert batch.base_offset == 2**40
    assert batch.partition_leader_epoch == 2**31 - 1
    assert as_tuples(batch) == expected_tuples(records, 2**40)
    [(kb, krecs)] = kp_read(buf)
    assert kb.producer_id == kwargs["producer_id"]
    assert kb.producer_epoch == 32767
    assert kb.base_sequence == 2**31 - 1
    assert kb.is_transactional
    assert kb.base_offset == 2**40
    assert kb.leader_epoch == 2**31 - 1
    assert krecs == expected_tuples(records, 2**40)


def test_build_defaults_are_java_defaults():
    batch = read_batch(build([(5, None, b"v", None)]))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)
    assert batch.partition_leader_epoch == -1
    assert batch.base_offset == 0
    assert not batch.is_transactional
    assert batch.attributes == 0


@pytest.mark.parametrize(("field", "value"), [
    ("producer_id", 2**63), ("producer_epoch", 2**15), ("producer_epoch", -(2**15) - 1),
    ("base_sequence", 2**31), ("base_offset", -(2**63) - 1),
    ("partition_leader_epoch", 2**31),
])
def test_build_field_overflow(field, value):
    b = BatchBuilder()
    b.append(0, 0, None, b"v")
    with pytest.raises(OverflowError):
        b.build(**{field: value})


@codec_param
def test_set_producer_state(codec):
    records = compressible_records(40)
    original = build(records, codec)
    buf = bytearray(original)
    set_producer_state(buf, 4242, 12, 777, True)
    [(kb, krecs)] = kp_read(buf)  # kafka-python validates the new CRC
    assert (kb.producer_id, kb.producer_epoch, kb.base_sequence) == (4242, 12, 777)
    assert kb.is_transactional
    assert kb.compression_type == codec
    assert krecs == expected_tuples(records)
    batch = read_batch(buf)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (4242, 12, 777)
    assert batch.is_transactional and batch.compression_type == codec
    # only the producer fields, the attributes and the CRC changed
    changed = [i for i in range(len(buf)) if buf[i] != original[i]]
    allowed = set(range(OFF_CRC, OFF_CRC + 4)) | {OFF_ATTRIBUTES, OFF_ATTRIBUTES + 1} | set(
        range(OFF_PID, OFF_COUNT))
    assert set(changed) <= allowed
    # again through a memoryview, clearing the transactional bit (epoch bump on retry)
    set_producer_state(memoryview(buf), 4242, 13, 777, False)
    batch = read_batch(buf)
    assert (batch.producer_epoch, batch.is_transactional) == (13, False)
    assert batch.attributes == codec
    [(kb, _)] = kp_read(buf)
    assert kb.producer_epoch == 13 and not kb.is_transactional
    # back to "no producer"
    set_producer_state(buf, -1, -1, -1)
    batch = read_batch(buf)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (-1, -1, -1)
    assert bytes(buf) == original


def test_set_producer_state_in_a_larger_buffer():
    """A batch inside a bigger buffer (e.g. a request being assembled): only its bytes."""
    a = build([(1, b"a", b"1", None)])
    b = build([(2, b"b", b"2", None)])
    buf = bytearray(a + b)
    set_producer_state(buf, 1, 2, 3)
    first = read_batch(buf)
    assert (first.producer_id, first.producer_epoch, first.base_sequence) == (1, 2, 3)
    assert bytes(buf[len(a):]) == b
    first_bytes = bytes(buf[:len(a)])
    set_producer_state(memoryview(buf)[len(a):], 9, 9, 9)
    second = read_batch(buf[len(a):])
    assert (second.producer_id, second.base_sequence) == (9, 9)
    assert bytes(buf[:len(a)]) == first_bytes


def test_set_producer_state_errors():
    buf = build([(1, b"a", b"1", None)])
    with pytest.raises(TypeError) as info:
        set_producer_state(buf, 1, 1, 1)  # bytes are immutable
    assert "bytearray" in str(info.value) or "writable" in str(info.value)
    with pytest.raises(TypeError):
        set_producer_state(memoryview(buf), 1, 1, 1)  # read-only view
    with pytest.raises(TypeError):
        set_producer_state("batch", 1, 1, 1)
    with pytest.raises(TypeError):
        set_producer_state(None, 1, 1, 1)
    for cut in (0, 10, 60, len(buf) - 1):
        with pytest.raises(CorruptRecordError):
            set_producer_state(bytearray(buf[:cut]), 1, 1, 1)
    bad_magic = bytearray(buf)
    bad_magic[OFF_MAGIC] = 1
    with pytest.raises(CorruptRecordError):
        set_producer_state(bad_magic, 1, 1, 1)
    with pytest.raises(OverflowError):
        set_producer_state(bytearray(buf), 2**63, 1, 1)
    with pytest.raises(OverflowError):
        set_producer_state(bytearray(buf), 1, 2**15, 1)
    with pytest.raises(OverflowError):
        set_producer_state(bytearray(buf), 1, 1, 2**31)


# ---- append / size / fullness ------------------------------------------------------------

@codec_param
def test_size_in_bytes_tracks_what_was_written(codec):
    records = mixed_records(random.Random(8), 200)
    b = BatchBuilder(codec, BIG)
    plain = BatchBuilder(COMPRESSION_NONE, BIG)
    assert b.size_in_bytes == 61 and b.record_count == 0
    assert b.compression_type == codec
    for i, (ts, key, value, headers) in enumerate(records):
        before = b.size_in_bytes
        size = b.append(i, ts, key, value, headers)
        assert size > 0 and b.size_in_bytes == before + size
        assert b.record_count == i + 1
        assert plain.append(i, ts, key, value, headers) == size
        assert len(plain.build()) == b.size_in_bytes
    assert len(plain.build()) == b.size_in_bytes
    if codec == COMPRESSION_NONE:
        assert len(b.build()) == b.size_in_bytes


def test_append_returns_minus_one_when_full_exact_boundary():
    probe = BatchBuilder(COMPRESSION_NONE, BIG)
    rec_size = probe.append(0, 1000, b"key", b"v" * 50, [("h", b"x")])
    assert probe.size_in_bytes == 61 + rec_size
    # room for exactly two records: the second fits to the byte, the third does not
    b = BatchBuilder(COMPRESSION_NONE, 61 + 2 * rec_size)
    assert b.append(0, 1000, b"key", b"v" * 50, [("h", b"x")]) == rec_size
    assert b.append(1, 1000, b"key", b"v" * 50, [("h", b"x")]) == rec_size
    assert b.append(2, 1000, b"key", b"v" * 50, [("h", b"x")]) == -1
    # not a byte left, and the smallest record takes 7
    assert b.append(2, 1000, None, b"", None) == -1
    assert b.record_count == 2 and b.size_in_bytes == 61 + 2 * rec_size
    # one byte less capacity: the second record no longer fits
    c = BatchBuilder(COMPRESSION_NONE, 61 + 2 * rec_size - 1)
    assert c.append(0, 1000, b"key", b"v" * 50, [("h", b"x")]) > 0
    assert c.append(1, 1000, b"key", b"v" * 50, [("h", b"x")]) == -1
    assert c.record_count == 1 and c.size_in_bytes == 61 + rec_size


def test_full_batch_refuses_but_stays_usable():
    b = BatchBuilder(COMPRESSION_NONE, 1000)
    i = 0
    sizes = []
    while True:
        size = b.append(i, 5000 + i, b"k%d" % i, b"value" * 5, None)
        if size == -1:
            break
        sizes.append(b.size_in_bytes)
        i += 1
    assert i > 5
    assert sizes[-1] <= 1000 and sizes == sorted(sizes)
    assert b.record_count == i and b.size_in_bytes == sizes[-1]
    # refused: nothing changed, the same record is refused again, build holds i records
    assert b.append(i, 1, b"k", b"value" * 5, None) == -1
    assert b.record_count == i and b.size_in_bytes == sizes[-1]
    buf = b.build()
    assert len(buf) == sizes[-1]
    batch = read_batch(buf)
    assert len(batch.records) == i
    assert batch.last_offset_delta == i - 1
    assert batch.max_timestamp == 5000 + i - 1  # the refused record's timestamp is not in it
    [(_, krecs)] = kp_read(buf)
    assert len(krecs) == i


@codec_param
def test_first_record_always_fits(codec):
    b = BatchBuilder(codec, 10)
    size = b.append(0, 1, b"key", bytes(100_000), [("h", b"v")])
    assert size > 100_000 and 61 + size == b.size_in_bytes
    assert b.append(1, 1, None, b"", None) == -1
    assert b.record_count == 1
    batch = read_batch(b.build())
    assert batch.records == [Record(0, 1, b"key", bytes(100_000), [("h", b"v")])]


@codec_param
def test_compressed_batches_never_exceed_batch_size_uncompressed(codec):
    b = BatchBuilder(codec, 16384)
    i = 0
    while b.append(i, i, None, b"x" * 100, None) != -1:
        i += 1
    assert b.size_in_bytes <= 16384
    assert i >= 16384 // 120  # and it is not refusing absurdly early


def test_build_twice_and_append_after_build():
    b = BatchBuilder(COMPRESSION_LZ4, BIG)
    b.append(0, 10, b"a", b"1")
    first = b.build()
    assert b.build() == first
    b.append(1, 20, b"b", b"2")
    second = read_batch(b.build(producer_id=1, producer_epoch=0, base_sequence=0))
    assert as_tuples(second) == [(0, 10, b"a", b"1", []), (1, 20, b"b", b"2", [])]
    assert as_tuples(read_batch(first)) == [(0, 10, b"a", b"1", [])]


def test_build_empty_batch_raises():
    with pytest.raises(ValueError):
        BatchBuilder().build()


def test_offset_delta_must_increase():
    b = BatchBuilder()
    b.append(0, 1, None, b"a")
    for bad in (0, -1):
        with pytest.raises(ValueError):
            b.append(bad, 1, None, b"b")
    assert b.record_count == 1
    b.append(1, 1, None, b"b")
    assert [r.offset for r in read_batch(b.build()).records] == [0, 1]


def test_timestamps_base_max_and_deltas():
    ts = [1_000_000, 999_000, 2**40, -5, 1_000_001, 2**62]
    records = [(t, None, b"v", None) for t in ts]
    buf = build(records)
    batch = read_batch(buf)
    assert batch.base_timestamp == ts[0]
    assert batch.max_timestamp == max(ts)
    assert [r.timestamp for r in batch.records] == ts
    [(kb, krecs)] = kp_read(buf)
    assert [r[1] for r in krecs] == ts
    assert kb.max_timestamp == max(ts)


def test_key_value_buffer_types():
    raw = b"0123456789abcdef"
    inputs = [bytearray(raw), memoryview(raw), memoryview(bytearray(raw)), array.array("B", raw),
              memoryview(b"xx" + raw + b"yy")[2:-2]]
    b = BatchBuilder()
    for i, obj in enumerate(inputs):
        b.append(i, i, obj, obj, [("h", obj)])
    batch = read_batch(b.build())
    for r in batch.records:
        assert r.key == raw and r.value == raw and r.headers == [("h", raw)]
        assert type(r.key) is bytes and type(r.value) is bytes


def test_appended_buffers_are_copied():
    value = bytearray(b"before")
    b = BatchBuilder()
    b.append(0, 0, value, value, [("h", value)])
    value[:] = b"AFTER!"
    assert read_batch(b.build()).records[0][2:] == (b"before", b"before", [("h", b"before")])


@pytest.mark.parametrize(("args", "words"), [
    ((None, "text"), ("bytes", "str")),
    (("text", b"v"), ("bytes", "str")),
    ((5, b"v"), ("bytes",)),
    ((None, 5), ("bytes",)),
    ((None, 1.5), ("bytes",)),
    (([1, 2], b"v"), ("bytes",)),
    ((None, {"a": 1}), ("bytes",)),
])
def test_key_value_type_errors(args, words):
    b = BatchBuilder()
    b.append(0, 1, b"ok", b"ok")
    with pytest.raises(TypeError) as info:
        b.append(1, 2, *args)
    msg = str(info.value)
    assert any(w in msg for w in words), msg
    assert b.record_count == 1 and b.size_in_bytes == read_batch(b.build()).size_in_bytes
    assert as_tuples(read_batch(b.build())) == [(0, 1, b"ok", b"ok", [])]


@pytest.mark.parametrize("headers", [
    5,
    [("k", "str value")],
    [(1, b"v")],
    [(None, b"v")],
    [("k",)],
    [("k", b"v", b"extra")],
    ["k"],
    [b"kv"],
    [("ok", b"v"), ("k", 7)],
    [("ok", b"v"), ("k", b"v"), 3],
], ids=["int", "str-value", "int-key", "None-key", "1-tuple", "3-tuple", "str-item",
        "bytes-item", "int-value-late", "int-item-late"])
def test_bad_headers(headers):
    b = BatchBuilder()
    b.append(0, 1, b"ok", b"ok", [("a", b"b")])
    before = b.size_in_bytes
    with pytest.raises(TypeError):
        b.append(1, 2, b"k", b"v", headers)
    # a refused record leaves no trace
    assert b.record_count == 1 and b.size_in_bytes == before
    assert as_tuples(read_batch(b.build())) == [(0, 1, b"ok", b"ok", [("a", b"b")])]
    b.append(1, 2, b"k", b"v", [])
    assert b.record_count == 2


def test_headers_accepted_forms():
    b = BatchBuilder()
    b.append(0, 0, None, b"v", (("tuple", b"1"),))
    b.append(1, 0, None, b"v", [(b"bytes-key", bytearray(b"2"))])
    b.append(2, 0, None, b"v", [])
    b.append(3, 0, None, b"v", None)
    b.append(4, 0, None, b"v", [("", b""), ("ü", None)])
    b.append(5, 0, None, b"v", [(f"h{i}", b"%d" % i) for i in range(300)])
    recs = read_batch(b.build()).records
    assert recs[0].headers == [("tuple", b"1")]
    assert recs[1].headers == [("bytes-key", b"2")]
    assert recs[2].headers == [] and recs[3].headers == []
    assert recs[4].headers == [("", b""), ("ü", None)]
    assert recs[5].headers == [(f"h{i}", b"%d" % i) for i in range(300)]


def test_append_argument_types():
    b = BatchBuilder()
    with pytest.raises(TypeError):
        b.append("0", 1, None, b"v")
    with pytest.raises(TypeError):
        b.append(0, "1", None, b"v")
    with pytest.raises(TypeError):
        b.append(0, None, None, b"v")
    with pytest.raises(OverflowError):
        b.append(0, 2**63, None, b"v")
    with pytest.raises(OverflowError):
        b.append(2**31, 0, None, b"v")
    # a float is not silently truncated into an offset delta or a timestamp
    with pytest.raises(TypeError):
        b.append(0.9, 0, None, b"v")
    with pytest.raises(TypeError):
        b.append(0, 1.7, None, b"v")
    assert b.record_count == 0


def test_non_contiguous_value_refused_or_copied_correctly():
    b = BatchBuilder()
    view = memoryview(bytes(range(100)))[::3]
    try:
        b.append(0, 0, view, view, [("h", view)])
    except TypeError:
        assert b.record_count == 0
        return
    [r] = read_batch(b.build()).records
    assert r.key == r.value == view.tobytes() and r.headers == [("h", view.tobytes())]


# ---- corruption -------------------------------------------------------------------------

@codec_param
def test_crc_mismatch(codec):
    buf = bytearray(build(compressible_records(20), codec))
    stored = struct.unpack_from(">I", buf, OFF_CRC)[0]
    for pos in (OFF_ATTRIBUTES + 2, OFF_PID, HEADER + 3, len(buf) - 1):
        bad = bytearray(buf)
        bad[pos] ^= 0x01
        actual = crc32c_pkg.crc32c(bytes(bad[OFF_ATTRIBUTES:]))
        with pytest.raises(CorruptRecordError) as info:
            read_batch(bad)
        assert info.value.expected_crc == stored, pos
        assert info.value.actual_crc == actual, pos
        assert "crc" in str(info.value).lower()
    # the CRC field itself damaged: detected, and skipped with verify_crc=False
    bad = bytearray(buf)
    bad[OFF_CRC] ^= 0xFF
    with pytest.raises(CorruptRecordError) as info:
        read_batch(bad)
    assert info.value.expected_crc == stored ^ 0xFF000000
    assert info.value.actual_crc == stored
    assert as_tuples(read_batch(bad, verify_crc=False)) == as_tuples(read_batch(buf))
    # the partition leader epoch is outside the CRC: the broker rewrites it freely
    epoch = bytearray(buf)
    struct.pack_into(">i", epoch, OFF_LEADER_EPOCH, 12345)
    assert read_batch(epoch).partition_leader_epoch == 12345


@codec_param
def test_every_truncation_raises(codec):
    buf = build(mixed_records(random.Random(3), 12), codec)
    for verify in (True, False):
        for cut in range(len(buf)):
            with pytest.raises(CorruptRecordError):
                read_batch(buf[:cut], verify)


@codec_param
def test_truncated_records_with_consistent_length(codec):
    """Shorten the records section AND the batch length (and fix the CRC): the declared
    record count can no longer be satisfied."""
    full = build(mixed_records(random.Random(4), 10), codec)
    step = 1 if codec == COMPRESSION_NONE else max(1, (len(full) - HEADER) // 200)
    for cut in range(HEADER, len(full), step):
        buf = bytearray(full[:cut])
        struct.pack_into(">i", buf, OFF_LENGTH, cut - 12)
        fix_crc(buf)
        with pytest.raises(CorruptRecordError):
            read_batch(buf)


def test_trailing_bytes_and_consecutive_batches():
    a = build([(1, b"a", b"1", None)], COMPRESSION_GZIP)
    b = build([(2, b"b", b"2", None), (3, None, None, None)], COMPRESSION_ZSTD)
    buf = a + b + b"\x00\x01partial"
    first = read_batch(buf)
    assert first.size_in_bytes == len(a)
    second = read_batch(memoryview(buf)[first.size_in_bytes:])
    assert second.size_in_bytes == len(b)
    assert [r.value for r in first.records + second.records] == [b"1", b"2", None]
    with pytest.raises(CorruptRecordError):
        read_batch(memoryview(buf)[len(a) + len(b):])


def _corrupt_variants(codec):
    """(name, buffer) pairs: structurally broken batches with a valid CRC."""
    records = [(10, b"key", b"value", [("h", b"x")]), (11, None, b"v2", None),
               (12, b"k3", None, [("a", None), ("b", b"")])]
    good = build(records, codec)
    out = []

    def variant(name, fn):
        buf = bytearray(good)
        fn(buf)
        out.append((name, bytes(fix_crc(buf))))

    variant("count+1", lambda b: struct.pack_into(">i", b, OFF_COUNT, 4))
    variant("count-1", lambda b: struct.pack_into(">i", b, OFF_COUNT, 2))
    variant("count-negative", lambda b: struct.pack_into(">i", b, OFF_COUNT, -1))
    variant("count-huge", lambda b: struct.pack_into(">i", b, OFF_COUNT, 2**31 - 1))
    variant("magic-1", lambda b: b.__setitem__(OFF_MAGIC, 1))
    variant("magic-3", lambda b: b.__setitem__(OFF_MAGIC, 3))
    for attr in (5, 6, 7):
        variant(f"codec-{attr}",
                lambda b, attr=attr: struct.pack_into(">h", b, OFF_ATTRIBUTES, attr))
    if codec != COMPRESSION_NONE:
        variant("codec-none-on-compressed",
                lambda b: struct.pack_into(">h", b, OFF_ATTRIBUTES, 0))
        variant("garbage-payload", lambda b: b.__setitem__(
            slice(HEADER + 4, len(b)), bytes(len(b) - HEADER - 4)))
    else:
        for other in (1, 2, 3, 4):
            variant(f"codec-{other}-on-plain",
                    lambda b, other=other: struct.pack_into(">h", b, OFF_ATTRIBUTES, other))
    # batch length below the header / negative / huge (CRC cannot be "fixed" here: the
    # reader must refuse on the length alone)
    for name, length in (("length-short", 40), ("length-negative", -5),
                         ("length-huge", 2**31 - 1), ("length-min", -(2**31))):
        buf = bytearray(good)
        struct.pack_into(">i", buf, OFF_LENGTH, length)
        out.append((name, bytes(buf)))
    if codec == COMPRESSION_NONE:
        # byte-level damage to the first record (offset 61 = its length varint)
        rec = HEADER

        def set_byte(pos, value):
            variant(f"byte{pos - HEADER}={value:#x}",
                    lambda b: b.__setitem__(pos, value))
        set_byte(rec, 0x00)          # record length 0
        set_byte(rec, 0x01)          # record length -1
        set_byte(rec, 0x7E)          # record length 63 (past the batch)
        set_byte(rec, 0xFF)          # unterminated varint
        set_byte(rec + 4, 0x05)      # key length -3
        set_byte(rec + 4, 0x7E)      # key length 63
        set_byte(rec + 4, 0x04)      # key length 2 (record length mismatch)
        set_byte(rec + 8, 0x7F)      # value length -64
        set_byte(rec + 8, 0x10)      # value length 8
        set_byte(rec + 14, 0x01)     # header count -1
        set_byte(rec + 14, 0x7E)     # header count 63
        set_byte(rec + 15, 0x01)     # header key length -1
        set_byte(rec + 15, 0x7E)     # header key length 63
        set_byte(rec + 16, 0xFF)     # header key not UTF-8
        set_byte(rec + 17, 0x7E)     # header value length 63
        set_byte(rec + 17, 0x05)     # header value length -3
        # the record count says 3, the records section has one extra byte
        buf = bytearray(good) + b"\x00"
        struct.pack_into(">i", buf, OFF_LENGTH, len(buf) - 12)
        out.append(("extra-byte", bytes(fix_crc(buf))))
    return out


@codec_param
def test_malformed_batches_raise_corrupt_record_error(codec):
    problems = []
    for name, buf in _corrupt_variants(codec):
        for verify in (True, False):
            try:
                batch = read_batch(buf, verify)
            except CorruptRecordError:
                continue
            except Exception as exc:  # noqa: BLE001 - the point is which class
                problems.append(f"{name} verify={verify}: {type(exc).__name__}: {exc}")
            else:
                problems.append(f"{name} verify={verify}: accepted, {len(batch.records)} "
                                f"records {batch.records[:3]}")
    assert not problems, "\n".join(problems)


def test_sanity_of_corrupt_variant_offsets():
    """The byte offsets used above really point at the fields they claim to."""
    buf = build([(10, b"key", b"value", [("h", b"x")])])
    rec = buf[HEADER:]
    assert rec[0] == 2 * (len(rec) - 1)  # length varint
    assert rec[1] == 0                   # attributes
    assert rec[2] == 0 and rec[3] == 0   # timestamp delta, offset delta
    assert rec[4] == 6 and rec[5:8] == b"key"
    assert rec[8] == 10 and rec[9:14] == b"value"
    assert rec[14] == 2 and rec[15] == 2 and rec[16:17] == b"h"
    assert rec[17] == 2 and rec[18:19] == b"x"


def test_log_append_time_batches_report_max_timestamp():
    """Java (and kafka-python) give every record of a LOG_APPEND_TIME batch the batch's
    max timestamp (set by the broker), not base timestamp + delta."""
    buf = bytearray(build([(100, None, b"a", None), (200, None, b"b", None)]))
    struct.pack_into(">h", buf, OFF_ATTRIBUTES, 0x08)
    struct.pack_into(">q", buf, OFF_MAX_TS, 999_999)
    fix_crc(buf)
    [(_, krecs)] = kp_read(buf)
    assert [r[1] for r in krecs] == [999_999, 999_999]
    batch = read_batch(buf)
    assert batch.timestamp_type == 1
    assert [r.timestamp for r in batch.records] == [999_999, 999_999]


def test_control_batch_flag():
    buf = bytearray(build([(1, b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00", None)],
                          producer_id=1, producer_epoch=0, base_sequence=-1,
                          is_transactional=True))
    struct.pack_into(">h", buf, OFF_ATTRIBUTES, 0x30)
    fix_crc(buf)
    batch = read_batch(buf)
    assert batch.is_control and batch.is_transactional


@pytest.mark.parametrize("bad", ["batch", None, 5, [0] * 61], ids=["str", "None", "int", "list"])
def test_read_batch_type_errors(bad):
    with pytest.raises(TypeError) as info:
        read_batch(bad)
    assert "bytes" in str(info.value)


def test_read_batch_buffer_types():
    buf = build(compressible_records(5), COMPRESSION_SNAPPY)
    want = as_tuples(read_batch(buf))
    for obj in (bytearray(buf), memoryview(buf), array.array("B", buf),
                memoryview(b"\x00" * 3 + buf)[3:]):
        assert as_tuples(read_batch(obj)) == want


# ---- fuzzing ----------------------------------------------------------------------------

FUZZ_BASES = {c: build(mixed_records(random.Random(10 + c), 6), c) for c in CODECS}


@given(st.binary(max_size=400), st.booleans())
@settings(max_examples=400, deadline=None)
def test_random_garbage_never_crashes(data, verify):
    try:
        read_batch(data, verify)
    except CorruptRecordError:
        pass


@given(st.binary(min_size=0, max_size=300), st.booleans())
@settings(max_examples=400, deadline=None)
def test_garbage_behind_a_plausible_header(body, verify):
    buf = bytearray(HEADER) + body
    struct.pack_into(">i", buf, OFF_LENGTH, len(buf) - 12)
    buf[OFF_MAGIC] = 2
    struct.pack_into(">i", buf, OFF_COUNT, 1 + len(body) % 5)
    fix_crc(buf)
    try:
        read_batch(buf, verify)
    except CorruptRecordError:
        pass


@given(st.sampled_from(CODECS),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                max_size=6),
       st.booleans())
@settings(max_examples=500, deadline=None)
def test_mutated_batches_never_crash(codec, flips, fix):
    buf = bytearray(FUZZ_BASES[codec])
    for pos, value in flips:
        pos = OFF_ATTRIBUTES + pos % (len(buf) - OFF_ATTRIBUTES)
        buf[pos] = value
    if fix:
        fix_crc(buf)
    try:
        batch = read_batch(buf)
    except CorruptRecordError:
        return
    # accepted: then it is consistent with itself
    assert batch.size_in_bytes == len(buf)
    for r in batch.records:
        assert r.key is None or type(r.key) is bytes
        assert r.value is None or type(r.value) is bytes


record_strategy = st.tuples(
    st.integers(-(2**40), 2**40),
    st.one_of(st.none(), st.binary(max_size=64)),
    st.one_of(st.none(), st.binary(max_size=512)),
    st.lists(st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=32))),
             max_size=4),
)


@given(st.sampled_from(CODECS), st.integers(0, 2**41), st.lists(record_strategy, min_size=1,
                                                                  max_size=40))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_property(codec, base_ts, recs):
    records = [(base_ts + d, k, v, h) for d, k, v, h in recs]
    buf = build(records, codec)
    assert as_tuples(read_batch(buf)) == expected_tuples(records)
    [(_, krecs)] = kp_read(buf)
    assert krecs == expected_tuples(records)
