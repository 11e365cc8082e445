from collections.abc import Sequence
import sys

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:  # stub-only: type checkers bundle typing_extensions
    from typing_extensions import Buffer
from typing import NamedTuple

COMPRESSION_NONE: int  # 0
COMPRESSION_GZIP: int  # 1
COMPRESSION_SNAPPY: int  # 2
COMPRESSION_LZ4: int  # 3
COMPRESSION_ZSTD: int  # 4
RECORD_BATCH_OVERHEAD: int  # 61: the v2 header, baseOffset through record count

Header = tuple[str | bytes, Buffer | None]

class BatchBuilder:
    """Writes one record batch v2 (magic 2).

    ``batch_size`` is a capacity, not a hard limit: the first record is always
    accepted; a later one is refused (``append`` returns -1) when the batch would grow
    past it (for a compressed batch, by the estimate described below). ``compression_level`` None means the Java default.
    """

    def __init__(
        self,
        compression_type: int = 0,
        batch_size: int = 16384,
        compression_level: int | None = None,
    ) -> None: ...
    def append(
        self,
        offset_delta: int,
        timestamp: int,
        key: Buffer | None,
        value: Buffer | None,
        headers: Sequence[Header] | None = None,
    ) -> int:
        """Append one record; returns the bytes it took (its encoded size), or -1
        when it does not fit. ``offset_delta`` must grow with every record."""
    def append_many(
        self,
        first_offset_delta: int,
        timestamp: int,
        values: Sequence[Buffer | None],
        keys: Sequence[Buffer | None] | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> int:
        """Append ``values[start:stop]`` (with ``keys[i]``), one timestamp, no headers,
        until the batch is full; returns how many were taken. The bulk-send path."""
    @property
    def record_count(self) -> int: ...
    @property
    def size_in_bytes(self) -> int:
        """Uncompressed size of the batch so far, header included."""
    @property
    def max_record_size(self) -> int:
        """The encoded size of the largest record appended."""
    @property
    def compression_type(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def compression_level(self) -> int | None: ...
    estimated_compression_ratio: float
    """Compressed/uncompressed size expected for this batch (set by the accumulator from
    earlier batches of the topic, as Java's CompressionRatioEstimator does); a
    compressed batch is full when uncompressed size x ratio x 1.05 reaches batch_size."""
    def build(
        self,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        is_transactional: bool = False,
        base_offset: int = 0,
        partition_leader_epoch: int = -1,
    ) -> bytes:
        """Compress the records, write the header and CRC-32C, return the batch.
        May be called more than once; the builder still accepts appends after."""

class Record(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]

class RecordBatch(NamedTuple):
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records: list[Record]
    size_in_bytes: int  # bytes consumed from the buffer: batch_length + 12
    @property
    def compression_type(self) -> int: ...
    @property
    def timestamp_type(self) -> int: ...
    @property
    def is_transactional(self) -> bool: ...
    @property
    def is_control(self) -> bool: ...

def read_batch(buf: Buffer, verify_crc: bool = True) -> RecordBatch:
    """Decode the record batch at the start of ``buf``. Raises CorruptRecordError on
    a CRC mismatch (with expected and actual CRC), truncation or malformed data."""

def set_producer_state(
    batch: bytearray | memoryview,
    producer_id: int,
    producer_epoch: int,
    base_sequence: int,
    is_transactional: bool = False,
) -> None:
    """Rewrite producer id, epoch, base sequence and the transactional bit of a built
    batch in place and recompute its CRC (a retry after an epoch bump needs this)."""

def max_bytes_len(items: object) -> int:
    """Longest length if ``items`` is a list/tuple of only bytes and None (-1 if there
    are no bytes), else -2."""
