"""The compiled per-byte and per-record kernels, re-exported from ``fastprod._ext``.

- ``crc32c(data, value=0)``: CRC-32C (Castagnoli); hardware instructions when the CPU has
  them, a table otherwise; ``crc32c_implementation()`` says which was chosen.
- ``murmur2(data)``, ``to_positive(h)``, ``partition_for_key(key, n)``: bit-for-bit the
  Java client's ``Utils.murmur2`` and ``BuiltInPartitioner.partitionForKey``;
  ``topic_worker_seed(topic)``, ``worker_for_partition(seed, p, workers)``: the
  ShardedProducer worker that owns a partition (the C send paths use the same inline
  rules, fastprod/_ext/placement.pxd).
- zig-zag varint (int32) and varlong (int64), unsigned varint (uint32): encode/decode.
- ``BatchBuilder``: record batch v2 writer; ``read_batch``: decoder and verifier;
  ``set_producer_state``: restamp producer id, epoch, sequence of a built batch.

There is no pure-Python fallback: without the compiled extensions fastprod is not fast,
so importing it fails and says how to build them.
"""

from __future__ import annotations

try:
    from fastprod._ext.batch import (
        COMPRESSION_GZIP,
        COMPRESSION_LZ4,
        COMPRESSION_NONE,
        COMPRESSION_SNAPPY,
        COMPRESSION_ZSTD,
        RECORD_BATCH_OVERHEAD,
        BatchBuilder,
        Record,
        max_bytes_len,
        RecordBatch,
        read_batch,
        set_producer_state,
    )
    from fastprod._ext.crc32c import crc32c, crc32c_implementation
    from fastprod._ext.murmur2 import (
        murmur2,
        partition_for_key,
        split_by_key_partition,
        to_positive,
        topic_worker_seed,
        worker_for_partition,
    )
    from fastprod._ext.varint import (
        decode_unsigned_varint,
        decode_varint,
        decode_varlong,
        encode_unsigned_varint,
        encode_varint,
        encode_varlong,
        size_of_unsigned_varint,
        size_of_varint,
        size_of_varlong,
    )
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "fastprod's compiled extensions (fastprod._ext) are missing or stale: "
        f"{exc}. Build them with `pip install -e .` (or `python setup.py build_ext "
        "--inplace`) from the source tree; this needs Cython and a C compiler."
    ) from exc

__all__ = [
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "RECORD_BATCH_OVERHEAD",
    "BatchBuilder",
    "Record",
    "RecordBatch",
    "crc32c",
    "crc32c_implementation",
    "decode_unsigned_varint",
    "decode_varint",
    "decode_varlong",
    "encode_unsigned_varint",
    "encode_varint",
    "encode_varlong",
    "max_bytes_len",
    "murmur2",
    "partition_for_key",
    "read_batch",
    "set_producer_state",
    "size_of_unsigned_varint",
    "size_of_varint",
    "size_of_varlong",
    "split_by_key_partition",
    "to_positive",
    "topic_worker_seed",
    "worker_for_partition",
]
