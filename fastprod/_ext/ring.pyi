"""Single-producer single-consumer ring of frames in shared memory (see ring.pyx)."""

from collections.abc import Sequence
import sys

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:  # stub-only: type checkers bundle typing_extensions
    from typing_extensions import Buffer
from types import TracebackType
from typing import ClassVar

HEADER_SIZE: int  # 512: the ring header in front of the data region
RECORDS_KIND: int  # 1: first payload byte of a records frame
RECORDS_HEADER_SIZE: int  # 32: bytes of a records frame before its records

Header = tuple[str | bytes, bytes | None]

class Ring:
    """One SPSC ring over a writable buffer, e.g. ``SharedMemory.buf``.

    ``create=True`` writes a fresh header; the capacity is ``len(buf) - 512``, a power of
    two from 4096 to 2**31 (ValueError otherwise). ``create=False`` attaches to an existing
    ring, checking magic, version and capacity. The Ring holds an export of ``buf`` until
    ``close()``: close it before ``SharedMemory.close()``.
    """

    HEADER_SIZE: ClassVar[int]  # 512

    def __init__(self, buf: Buffer, create: bool = False) -> None: ...
    def close(self) -> None:
        """Release the buffer (idempotent); later calls raise ValueError."""
    def __enter__(self) -> Ring: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def capacity(self) -> int: ...
    @property
    def write_pos(self) -> int: ...
    @property
    def read_pos(self) -> int: ...
    @property
    def release_pos(self) -> int: ...
    def free_space(self) -> int:
        """capacity - (write_pos - release_pos)."""

    # producer side
    def try_write(self, frame: Buffer) -> bool:
        """Copy one frame; False (nothing written) when it does not fit now.
        RecordTooLargeError when it is larger than capacity - 8 bytes."""
    def try_write_records(
        self,
        topic_index: int,
        partition: int,
        timestamp: int,
        first_id: int,
        values: Sequence[bytes | None],
        keys: Sequence[bytes | None] | None = None,
        start: int = 0,
        stop: int | None = None,
        headers: Sequence[Sequence[Header] | None] | None = None,
        created_ms: int = -1,
    ) -> int:
        """Encode ``values[start:stop]`` (lists or tuples) as one records frame straight
        into the ring; returns how many records it took, 0 when not even the first fits
        now. ``first_id`` is the id of ``values[start]``; ``created_ms`` the monotonic
        time the first of them was sent (-1: unknown). Raises, publishing nothing:
        TypeError (naming the index) for an item that is not bytes or None,
        RecordTooLargeError when ``values[start]`` alone can never fit."""
    def set_producer_waiting(self, flag: bool) -> None: ...
    @property
    def producer_waiting(self) -> bool: ...
    @property
    def consumer_waiting(self) -> bool:
        """Read by the producer after a write: must it wake the consumer?"""

    # consumer side
    def read(self) -> memoryview | bytes | None:
        """The next payload (a read-only view into the ring, or a bytes copy when it
        wraps), or None when empty; advances read_pos. A view is valid until release()
        passes read_end_pos()."""
    def read_end_pos(self) -> int:
        """read_pos right after the last frame read() returned."""
    def release(self, pos: int) -> None:
        """release_pos = pos (a frame end, release_pos <= pos <= read_pos; else ValueError)."""
    def rewind(self) -> None:
        """read_pos = release_pos: read again what was never acknowledged."""
    def set_consumer_waiting(self, flag: bool) -> None: ...

class RecordsFrame:
    """A decoded records frame. ``keys`` is None when no record has a key; ``headers``
    is None when no record has a header, else one entry per record (None for none)."""

    kind: int
    topic_index: int
    partition: int
    timestamp: int
    first_id: int
    created_ms: int
    count: int
    keys: list[bytes | None] | None
    values: list[bytes | None]
    headers: list[list[tuple[str, bytes | None]] | None] | None
    def __init__(
        self,
        topic_index: int,
        partition: int,
        timestamp: int,
        first_id: int,
        values: list[bytes | None],
        keys: list[bytes | None] | None = None,
        headers: list[list[tuple[str, bytes | None]] | None] | None = None,
        created_ms: int = -1,
    ) -> None: ...

def decode_records(payload: Buffer) -> RecordsFrame:
    """Decode a records frame payload; CorruptRecordError if truncated or malformed."""

def encode_frame_size(payload_len: int) -> int:
    """Ring bytes a frame with this many payload bytes takes (length field and padding)."""
