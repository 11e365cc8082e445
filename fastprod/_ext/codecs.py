"""Compression of a record batch's records section, framed as the Java client frames it.

- gzip: a gzip stream (GZIPOutputStream); level -1 is zlib's default (6).
- snappy: xerial framing (snappy-java's SnappyOutputStream): the header
  ``\\x82SNAPPY\\x00`` + version 1 + compatible version 1 (big-endian int32 each), then
  per 32 KiB of input a big-endian int32 length and a raw snappy block. Readers also
  accept raw snappy, which some clients write.
- lz4: the LZ4 frame format with independent 64 KiB blocks, no content size and no
  checksums (Kafka's Lz4BlockOutputStream). Java's default level 9 means lz4's fast
  compressor; any other level means LZ4HC at that level.
- zstd: a zstd frame (needs Produce v7+ on the wire).

The codec libraries are imported on first use so that ``import fastprod`` stays cheap.
Compressor objects that are not thread-safe are kept per thread.
"""

from __future__ import annotations

import struct
import sys
import threading
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    if sys.version_info >= (3, 12):
        from collections.abc import Buffer
    else:
        from typing_extensions import Buffer

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

# Java's CompressionType defaults and valid ranges (None: the codec takes no level).
DEFAULT_LEVELS: dict[int, int | None] = {NONE: None, GZIP: -1, SNAPPY: None, LZ4: 9, ZSTD: 3}
LEVEL_RANGES = {GZIP: (1, 9), LZ4: (1, 17), ZSTD: (-131072, 22)}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_INT32 = struct.Struct(">i")

_local = threading.local()


def check_level(codec: int, level: int | None) -> int | None:
    """The level to use for ``codec``: Java's default for None, else a validated level."""
    if codec not in NAMES:
        raise ValueError(f"unknown compression type {codec!r}: expected one of {sorted(NAMES)}")
    if level is None or codec in (NONE, SNAPPY):
        return DEFAULT_LEVELS[codec]
    low, high = LEVEL_RANGES[codec]
    if not (low <= level <= high or (codec == GZIP and level == -1)):
        raise ValueError(
            f"{NAMES[codec]} compression level {level} is outside [{low}, {high}]")
    return level


def compress(codec: int, data: Buffer, level: int | None) -> bytes:
    if codec == GZIP:
        c = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED,
                             16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
    if codec == SNAPPY:
        return _snappy_xerial(data)
    if codec == LZ4:
        import lz4.frame

        return bytes(lz4.frame.compress(
            data,
            compression_level=0 if level == DEFAULT_LEVELS[LZ4] else level,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            block_checksum=False,
            store_size=False,
        ))
    if codec == ZSTD:
        return bytes(_zstd_compressor(3 if level is None else level).compress(data))
    raise ValueError(f"unknown compression type {codec!r}")


def decompress(codec: int, data: Buffer) -> bytes:
    if codec == GZIP:
        return _gunzip(data)
    if codec == SNAPPY:
        return _snappy_unframe(data)
    if codec == LZ4:
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    if codec == ZSTD:
        # A streaming decoder: frames from other writers may not record their size.
        # read_across_frames: a writer may have flushed several frames into one batch.
        return bytes(_zstd_decompressor().decompressobj(read_across_frames=True)
                     .decompress(data))
    raise ValueError(f"unknown compression type {codec!r}")


def _gunzip(data: Buffer) -> bytes:
    """Every gzip member, as Java's GZIPInputStream reads them (zlib stops at one)."""
    out = []
    rest = bytes(data)
    while rest:
        d = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header
        out.append(d.decompress(rest))
        if not d.eof:
            raise ValueError("truncated gzip stream")
        rest = d.unused_data
    return b"".join(out)


def _snappy_xerial(data: Buffer) -> bytes:
    import snappy

    view = memoryview(data)
    parts = [_XERIAL_HEADER]
    for start in range(0, len(view), _XERIAL_BLOCK):
        block = snappy.compress(bytes(view[start:start + _XERIAL_BLOCK]))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _snappy_unframe(data: Buffer) -> bytes:
    import snappy

    view = memoryview(data)
    if bytes(view[:8]) != XERIAL_MAGIC:
        return bytes(snappy.decompress(bytes(view)))
    if len(view) < 16:
        raise ValueError("truncated xerial snappy header")
    out = []
    pos = 16
    while pos < len(view):
        if pos + 4 > len(view):
            raise ValueError("truncated xerial snappy block length")
        (length,) = _INT32.unpack_from(view, pos)
        pos += 4
        if length < 0 or pos + length > len(view):
            raise ValueError(f"xerial snappy block of {length} bytes overruns the data")
        out.append(snappy.decompress(bytes(view[pos:pos + length])))
        pos += length
    return b"".join(out)


def _zstd_compressor(level: int) -> Any:
    cache = getattr(_local, "zstd", None)
    if cache is None:
        cache = _local.zstd = {}
    c = cache.get(level)
    if c is None:
        import zstandard

        c = cache[level] = zstandard.ZstdCompressor(level=level)
    return c


def _zstd_decompressor() -> Any:
    d = getattr(_local, "zstd_d", None)
    if d is None:
        import zstandard

        d = _local.zstd_d = zstandard.ZstdDecompressor()
    return d
