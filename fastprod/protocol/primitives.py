"""Kafka wire primitives: readers over a memoryview, writers appending to a bytearray.

Readers take ``(buf, pos)`` and return ``(value, new_pos)``; they check every length
against the end of ``buf`` and raise :class:`~fastprod.errors.ProtocolError` on
truncated or malformed input. Fixed-width fields are read by the generated code with
precompiled ``struct.Struct`` objects; a short buffer there raises ``struct.error``,
which ``Message.decode_from`` turns into ``ProtocolError`` (one ``try`` per message
instead of one bounds check per field).

Encodings (https://kafka.apache.org/protocol#protocol_types):

- STRING / NULLABLE_STRING: int16 length (-1 = null), UTF-8 bytes.
- BYTES / NULLABLE_BYTES / RECORDS: int32 length (-1 = null), bytes.
- ARRAY: int32 count (-1 = null), elements.
- Flexible versions (KIP-482): COMPACT_* use an unsigned varint of length + 1 (0 = null),
  and every struct ends with a tagged-fields section: uvarint count, then for each field
  uvarint tag, uvarint size, data, in ascending tag order.
"""

from __future__ import annotations

import struct
import uuid

from fastprod.errors import ProtocolError

__all__ = [
    "UUID_ZERO",
    "read_uvarint", "write_uvarint",
    "read_string", "read_nullable_string", "read_compact_string",
    "read_compact_nullable_string",
    "read_bytes", "read_nullable_bytes", "read_compact_bytes", "read_compact_nullable_bytes",
    "read_array_len", "read_nullable_array_len", "read_compact_array_len",
    "read_compact_nullable_array_len",
    "read_tag", "skip_tagged_fields",
    "write_string", "write_nullable_string", "write_compact_string",
    "write_compact_nullable_string",
    "write_bytes", "write_nullable_bytes", "write_compact_bytes", "write_compact_nullable_bytes",
    "write_tagged_fields",
]

UUID_ZERO = uuid.UUID(int=0)

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_NULL16 = b"\xff\xff"
_NULL32 = b"\xff\xff\xff\xff"


def _truncated(what: str, pos: int, need: int, have: int) -> ProtocolError:
    return ProtocolError(f"truncated {what} at offset {pos}: need {need} bytes, {have} left")


# -- unsigned varint (lengths, counts and tags of flexible versions) -------------------

def read_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """An unsigned 32-bit varint: at most 5 bytes, the 5th holding the top 4 bits."""
    end = len(buf)
    if pos >= end:
        raise _truncated("unsigned varint", pos, 1, 0)
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    start = pos
    pos += 1
    for shift in (7, 14, 21):
        if pos >= end:
            raise _truncated("unsigned varint", start, pos - start + 1, end - start)
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
    if pos >= end:
        raise _truncated("unsigned varint", start, 5, end - start)
    b = buf[pos]
    if b > 0x0F:
        raise ProtocolError(f"unsigned varint at offset {start} is longer than 5 bytes "
                            "or exceeds 32 bits")
    return value | (b << 28), pos + 1


def write_uvarint(out: bytearray, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"unsigned varint out of range: {value}")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


# -- lengths ---------------------------------------------------------------------------

def _read_len16(buf: memoryview, pos: int) -> tuple[int, int]:
    if pos + 2 > len(buf):
        raise _truncated("int16 length", pos, 2, len(buf) - pos)
    (n,) = _INT16.unpack_from(buf, pos)
    if n < -1:
        raise ProtocolError(f"negative length {n} at offset {pos}")
    return n, pos + 2


def _read_len32(buf: memoryview, pos: int) -> tuple[int, int]:
    if pos + 4 > len(buf):
        raise _truncated("int32 length", pos, 4, len(buf) - pos)
    (n,) = _INT32.unpack_from(buf, pos)
    if n < -1:
        raise ProtocolError(f"negative length {n} at offset {pos}")
    return n, pos + 4


def _read_compact_len(buf: memoryview, pos: int) -> tuple[int, int]:
    # Most lengths fit in one byte: skip the general varint reader for them.
    if pos < len(buf):
        b = buf[pos]
        if b < 0x80:
            return b - 1, pos + 1
    n, pos = read_uvarint(buf, pos)
    return n - 1, pos


def _slice(buf: memoryview, pos: int, n: int, what: str) -> memoryview:
    end = pos + n
    if end > len(buf):
        raise _truncated(what, pos, n, len(buf) - pos)
    return buf[pos:end]


def _decode_utf8(raw: memoryview, pos: int) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"string at offset {pos} is not valid UTF-8: {exc}") from None


def _null_error(what: str, pos: int) -> ProtocolError:
    return ProtocolError(f"null {what} at offset {pos} where the schema forbids null")


# -- strings ---------------------------------------------------------------------------

def read_string(buf: memoryview, pos: int) -> tuple[str, int]:
    n, p = _read_len16(buf, pos)
    if n < 0:
        raise _null_error("string", pos)
    return _decode_utf8(_slice(buf, p, n, "string"), p), p + n


def read_nullable_string(buf: memoryview, pos: int) -> tuple[str | None, int]:
    n, p = _read_len16(buf, pos)
    if n < 0:
        return None, p
    return _decode_utf8(_slice(buf, p, n, "string"), p), p + n


def read_compact_string(buf: memoryview, pos: int) -> tuple[str, int]:
    n, p = _read_compact_len(buf, pos)
    if n < 0:
        raise _null_error("string", pos)
    return _decode_utf8(_slice(buf, p, n, "string"), p), p + n


def read_compact_nullable_string(buf: memoryview, pos: int) -> tuple[str | None, int]:
    n, p = _read_compact_len(buf, pos)
    if n < 0:
        return None, p
    return _decode_utf8(_slice(buf, p, n, "string"), p), p + n


def write_string(out: bytearray, value: str) -> None:
    raw = value.encode()
    if len(raw) > 0x7FFF:
        raise ValueError(f"string of {len(raw)} bytes does not fit an int16 length")
    out += _INT16.pack(len(raw))
    out += raw


def write_nullable_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += _NULL16
    else:
        write_string(out, value)


def write_compact_string(out: bytearray, value: str) -> None:
    raw = value.encode()
    write_uvarint(out, len(raw) + 1)
    out += raw


def write_compact_nullable_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out.append(0)
    else:
        write_compact_string(out, value)


# -- bytes and records (records are an opaque record-batch buffer on this layer) -------

def read_bytes(buf: memoryview, pos: int) -> tuple[bytes, int]:
    n, p = _read_len32(buf, pos)
    if n < 0:
        raise _null_error("bytes", pos)
    return bytes(_slice(buf, p, n, "bytes")), p + n


def read_nullable_bytes(buf: memoryview, pos: int) -> tuple[bytes | None, int]:
    n, p = _read_len32(buf, pos)
    if n < 0:
        return None, p
    return bytes(_slice(buf, p, n, "bytes")), p + n


def read_compact_bytes(buf: memoryview, pos: int) -> tuple[bytes, int]:
    n, p = _read_compact_len(buf, pos)
    if n < 0:
        raise _null_error("bytes", pos)
    return bytes(_slice(buf, p, n, "bytes")), p + n


def read_compact_nullable_bytes(buf: memoryview, pos: int) -> tuple[bytes | None, int]:
    n, p = _read_compact_len(buf, pos)
    if n < 0:
        return None, p
    return bytes(_slice(buf, p, n, "bytes")), p + n


def write_bytes(out: bytearray, value: bytes | bytearray | memoryview) -> None:
    out += _INT32.pack(len(value))
    out += value


def write_nullable_bytes(out: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    if value is None:
        out += _NULL32
    else:
        out += _INT32.pack(len(value))
        out += value


def write_compact_bytes(out: bytearray, value: bytes | bytearray | memoryview) -> None:
    write_uvarint(out, len(value) + 1)
    out += value


def write_compact_nullable_bytes(out: bytearray,
                                 value: bytes | bytearray | memoryview | None) -> None:
    if value is None:
        out.append(0)
    else:
        write_uvarint(out, len(value) + 1)
        out += value


# -- array counts ----------------------------------------------------------------------
# ``min_size`` is the smallest encoding of one element: a count that cannot fit in the
# bytes left is rejected before anything loops over it or allocates for it.

def _check_count(n: int, pos: int, buf: memoryview, min_size: int) -> None:
    if n * min_size > len(buf) - pos:
        raise ProtocolError(f"array of {n} elements at offset {pos} does not fit in the "
                            f"{len(buf) - pos} bytes left")


def read_array_len(buf: memoryview, pos: int, min_size: int) -> tuple[int, int]:
    n, p = _read_len32(buf, pos)
    if n < 0:
        raise _null_error("array", pos)
    _check_count(n, p, buf, min_size)
    return n, p


def read_nullable_array_len(buf: memoryview, pos: int, min_size: int) -> tuple[int, int]:
    """The element count, or -1 for a null array."""
    n, p = _read_len32(buf, pos)
    _check_count(n, p, buf, min_size)
    return n, p


def read_compact_array_len(buf: memoryview, pos: int, min_size: int) -> tuple[int, int]:
    n, p = _read_compact_len(buf, pos)
    if n < 0:
        raise _null_error("array", pos)
    if n * min_size > len(buf) - p:
        _check_count(n, p, buf, min_size)
    return n, p


def read_compact_nullable_array_len(buf: memoryview, pos: int,
                                    min_size: int) -> tuple[int, int]:
    """The element count, or -1 for a null array."""
    n, p = _read_compact_len(buf, pos)
    _check_count(n, p, buf, min_size)
    return n, p


# -- tagged fields -----------------------------------------------------------------------

def read_tag(buf: memoryview, pos: int) -> tuple[int, int, int]:
    """One tagged field's header: ``(tag, data_start, data_end)``, bounds-checked."""
    tag, pos = read_uvarint(buf, pos)
    size, pos = read_uvarint(buf, pos)
    end = pos + size
    if end > len(buf):
        raise _truncated(f"tagged field {tag}", pos, size, len(buf) - pos)
    return tag, pos, end


def skip_tagged_fields(buf: memoryview, pos: int) -> int:
    """Skip a tagged-fields section whose tags this version does not know."""
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        _tag, _start, pos = read_tag(buf, pos)
    return pos


def write_tagged_fields(out: bytearray, fields: list[tuple[int, bytearray]]) -> None:
    """``fields`` holds (tag, encoded value) in ascending tag order."""
    write_uvarint(out, len(fields))
    for tag, data in fields:
        write_uvarint(out, tag)
        write_uvarint(out, len(data))
        out += data
