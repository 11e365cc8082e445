"""fastprod.kernels varints: zig-zag int32 (varint), zig-zag int64 (varlong), uint32."""

from __future__ import annotations

import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.util import decode_varint as kp_decode_varint
from kafka.record.util import encode_varint as kp_encode_varint
from kafka.record.util import size_of_varint as kp_size_of_varint

from fastprod.errors import CorruptRecordError
from fastprod.kernels import (
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

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT32_MAX = 2**32 - 1

# the errors a truncated or malformed varint may raise: never IndexError, never a crash
DECODE_ERRORS = (CorruptRecordError, ValueError)


def kp_encode(value: int) -> bytes:
    out = bytearray()
    kp_encode_varint(value, out.append)
    return bytes(out)


ZIGZAG_KNOWN = [
    (0, "00"), (-1, "01"), (1, "02"), (-2, "03"), (2, "04"), (63, "7e"), (-64, "7f"),
    (64, "8001"), (-65, "8101"), (8191, "fe7f"), (-8192, "ff7f"), (8192, "808001"),
    (INT32_MAX, "feffffff0f"), (INT32_MIN, "ffffffff0f"),
]
VARLONG_ONLY_KNOWN = [
    (INT32_MAX + 1, "8080808010"), (INT32_MIN - 1, "8180808010"),
    (INT64_MAX, "feffffffffffffffff01"), (INT64_MIN, "ffffffffffffffffff01"),
    (2**35, "808080808002"),
]
UNSIGNED_KNOWN = [
    (0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16383, "ff7f"),
    (16384, "808001"), (2**31 - 1, "ffffffff07"), (2**31, "8080808008"),
    (UINT32_MAX, "ffffffff0f"),
]

INT32_EDGES = [0, 1, -1, 63, -63, 64, -64, 65, -65, 127, 128, -128, 8191, 8192, -8192, -8193,
               2**20, -(2**20), 2**21 - 1, 2**27, 2**28 - 1, 2**28, -(2**28),
               INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1]
INT64_EDGES = INT32_EDGES + [INT32_MAX + 1, INT32_MIN - 1, 2**35, -(2**35), 2**42, 2**49,
                             2**56, 2**62, -(2**62), INT64_MAX, INT64_MIN, INT64_MAX - 1,
                             INT64_MIN + 1]
UINT32_EDGES = [0, 1, 127, 128, 255, 256, 16383, 16384, 2**21 - 1, 2**21, 2**28 - 1, 2**28,
                2**31 - 1, 2**31, UINT32_MAX - 1, UINT32_MAX]


@pytest.mark.parametrize(("value", "hexenc"), ZIGZAG_KNOWN)
def test_known_zigzag_encodings(value, hexenc):
    enc = bytes.fromhex(hexenc)
    assert encode_varint(value) == enc
    assert encode_varlong(value) == enc
    assert decode_varint(enc) == (value, len(enc))
    assert decode_varlong(enc) == (value, len(enc))
    assert size_of_varint(value) == len(enc)
    assert size_of_varlong(value) == len(enc)


@pytest.mark.parametrize(("value", "hexenc"), VARLONG_ONLY_KNOWN)
def test_known_varlong_encodings(value, hexenc):
    enc = bytes.fromhex(hexenc)
    assert encode_varlong(value) == enc
    assert decode_varlong(enc) == (value, len(enc))
    assert size_of_varlong(value) == len(enc)


@pytest.mark.parametrize(("value", "hexenc"), UNSIGNED_KNOWN)
def test_known_unsigned_encodings(value, hexenc):
    enc = bytes.fromhex(hexenc)
    assert encode_unsigned_varint(value) == enc
    assert decode_unsigned_varint(enc) == (value, len(enc))
    assert size_of_unsigned_varint(value) == len(enc)


@pytest.mark.parametrize("value", INT32_EDGES)
def test_varint_round_trip_edges(value):
    enc = encode_varint(value)
    assert type(enc) is bytes
    assert decode_varint(enc) == (value, len(enc))
    assert size_of_varint(value) == len(enc)
    assert enc == kp_encode(value)


@pytest.mark.parametrize("value", INT64_EDGES)
def test_varlong_round_trip_edges(value):
    enc = encode_varlong(value)
    assert type(enc) is bytes
    assert decode_varlong(enc) == (value, len(enc))
    assert size_of_varlong(value) == len(enc)
    assert enc == kp_encode(value)
    assert kp_decode_varint(enc, 0) == (value, len(enc))
    assert size_of_varlong(value) == kp_size_of_varint(value)


@pytest.mark.parametrize("value", UINT32_EDGES)
def test_unsigned_round_trip_edges(value):
    enc = encode_unsigned_varint(value)
    assert type(enc) is bytes
    assert decode_unsigned_varint(enc) == (value, len(enc))
    assert size_of_unsigned_varint(value) == len(enc)


@pytest.mark.parametrize("value", [INT32_MAX + 1, INT32_MIN - 1, 2**40, -(2**40), 2**64])
def test_varint_overflow(value):
    with pytest.raises(OverflowError):
        encode_varint(value)
    with pytest.raises(OverflowError):
        size_of_varint(value)


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**64, 2**100, -(2**100)])
def test_varlong_overflow(value):
    with pytest.raises(OverflowError):
        encode_varlong(value)
    with pytest.raises(OverflowError):
        size_of_varlong(value)


@pytest.mark.parametrize("value", [-1, -(2**31), UINT32_MAX + 1, 2**64])
def test_unsigned_overflow(value):
    with pytest.raises(OverflowError):
        encode_unsigned_varint(value)
    with pytest.raises(OverflowError):
        size_of_unsigned_varint(value)


@pytest.mark.parametrize("func", [encode_varint, encode_varlong, encode_unsigned_varint,
                                  size_of_varint, size_of_varlong, size_of_unsigned_varint])
@pytest.mark.parametrize("bad", ["1", 1.5, None, b"\x01"], ids=["str", "float", "None", "bytes"])
def test_encode_type_errors(func, bad):
    with pytest.raises(TypeError):
        func(bad)


DECODERS = [decode_varint, decode_varlong, decode_unsigned_varint]


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("bad", ["00", 0, None, [0]], ids=["str", "int", "None", "list"])
def test_decode_type_errors(decode, bad):
    with pytest.raises(TypeError):
        decode(bad)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("data", [b"", b"\x80", b"\xff", b"\x80\x80", b"\xff\xff\xff",
                                  b"\xff\xff\xff\xff"],
                         ids=["empty", "80", "ff", "8080", "ffx3", "ffx4"])
def test_decode_truncated(decode, data):
    with pytest.raises(DECODE_ERRORS) as info:
        decode(data)
    assert not isinstance(info.value, IndexError)
    assert str(info.value)


@pytest.mark.parametrize("decode", DECODERS)
def test_decode_truncated_at_every_length(decode):
    enc = {decode_varint: encode_varint(INT32_MIN),
           decode_varlong: encode_varlong(INT64_MIN),
           decode_unsigned_varint: encode_unsigned_varint(UINT32_MAX)}[decode]
    for cut in range(len(enc)):
        with pytest.raises(DECODE_ERRORS):
            decode(enc[:cut])
        # truncated in the middle of a bigger buffer, reading at a position
        buf = b"\x00" * 5 + enc[:cut]
        with pytest.raises(DECODE_ERRORS):
            decode(buf, 5)


@pytest.mark.parametrize(("decode", "too_long"), [
    (decode_varint, b"\x80" * 5 + b"\x01"),
    (decode_varint, b"\xff" * 6 + b"\x00"),
    (decode_unsigned_varint, b"\x80" * 5 + b"\x01"),
    (decode_varlong, b"\x80" * 10 + b"\x01"),
    (decode_varlong, b"\xff" * 11 + b"\x00"),
])
def test_decode_too_long(decode, too_long):
    """More continuation bytes than the type allows (Java: "Varint is too long")."""
    with pytest.raises(DECODE_ERRORS):
        decode(too_long)


def test_decode_at_position():
    values = [0, -1, 300, INT32_MIN, INT32_MAX, 64, -65]
    buf = b"junk" + b"".join(encode_varint(v) for v in values)
    pos = 4
    for v in values:
        got, pos = decode_varint(buf, pos)
        assert got == v
    assert pos == len(buf)
    with pytest.raises(DECODE_ERRORS):
        decode_varint(buf, pos)

    longs = [0, INT64_MIN, INT64_MAX, 2**40, -1]
    buf = bytes(3) + b"".join(encode_varlong(v) for v in longs)
    pos = 3
    for v in longs:
        got, pos = decode_varlong(buf, pos)
        assert got == v
    assert pos == len(buf)

    unsigned = [0, 128, UINT32_MAX, 1]
    buf = b"\xff" + b"".join(encode_unsigned_varint(v) for v in unsigned)
    pos = 1
    for v in unsigned:
        got, pos = decode_unsigned_varint(buf, pos)
        assert got == v
    assert pos == len(buf)


@pytest.mark.parametrize("decode", DECODERS)
def test_decode_position_out_of_range(decode):
    buf = b"\x02\x04\x06"
    with pytest.raises(DECODE_ERRORS):  # at the end: nothing left to read, a truncation
        decode(buf, 3)
    for pos in (4, 100, 2**31, 2**62):
        with pytest.raises(DECODE_ERRORS + (IndexError, OverflowError)):
            decode(buf, pos)
    for pos in (-1, -3, -100, -(2**62)):
        # a negative position must never read before the buffer
        with pytest.raises(DECODE_ERRORS + (IndexError, OverflowError)):
            decode(buf, pos)
    with pytest.raises((OverflowError, ValueError, IndexError) + DECODE_ERRORS):
        decode(buf, 2**64)
    with pytest.raises(TypeError):
        decode(buf, "0")


@pytest.mark.parametrize("decode", DECODERS)
def test_decode_buffer_types(decode):
    raw = b"\x00\xac\x02\x7f"
    want = decode(raw, 1)
    for obj in (bytearray(raw), memoryview(raw), memoryview(bytearray(raw)),
                array.array("B", raw)):
        assert decode(obj, 1) == want, type(obj)
    # a slice: positions are relative to the slice
    assert decode(memoryview(raw)[1:]) == (want[0], want[1] - 1)


def test_decode_ignores_trailing_bytes():
    assert decode_varint(b"\x02\xff\xff") == (1, 1)
    assert decode_varlong(bytes.fromhex("8001") + b"rest") == (64, 2)
    assert decode_unsigned_varint(bytes.fromhex("ac02") + b"\x80") == (300, 2)


@given(st.integers(INT32_MIN, INT32_MAX))
@settings(max_examples=1000, deadline=None)
def test_varint_property(value):
    enc = encode_varint(value)
    assert decode_varint(enc) == (value, len(enc))
    assert decode_varint(b"\x00\x00" + enc + b"\x01", 2) == (value, 2 + len(enc))
    assert size_of_varint(value) == len(enc)
    assert enc == kp_encode(value)
    assert kp_decode_varint(enc, 0) == (value, len(enc))
    assert encode_varlong(value) == enc


@given(st.integers(INT64_MIN, INT64_MAX))
@settings(max_examples=1000, deadline=None)
def test_varlong_property(value):
    enc = encode_varlong(value)
    assert decode_varlong(enc) == (value, len(enc))
    assert decode_varlong(b"\x07" + enc, 1) == (value, 1 + len(enc))
    assert size_of_varlong(value) == len(enc) == kp_size_of_varint(value)
    assert enc == kp_encode(value)
    assert kp_decode_varint(enc, 0) == (value, len(enc))


@given(st.integers(0, UINT32_MAX))
@settings(max_examples=1000, deadline=None)
def test_unsigned_property(value):
    enc = encode_unsigned_varint(value)
    assert decode_unsigned_varint(enc) == (value, len(enc))
    assert size_of_unsigned_varint(value) == len(enc)
    # unsigned varint is the plain LEB128 of the value
    expected = bytearray()
    v = value
    while v >= 0x80:
        expected.append((v & 0x7F) | 0x80)
        v >>= 7
    expected.append(v)
    assert enc == bytes(expected)


@given(st.binary(max_size=12), st.integers(0, 12))
@settings(max_examples=1000, deadline=None)
def test_decode_garbage_never_crashes(data, pos):
    for decode, lo, hi in ((decode_varint, INT32_MIN, INT32_MAX),
                           (decode_varlong, INT64_MIN, INT64_MAX),
                           (decode_unsigned_varint, 0, UINT32_MAX)):
        try:
            value, end = decode(data, pos)
        except DECODE_ERRORS as exc:
            assert not isinstance(exc, IndexError)
            continue
        except (IndexError, OverflowError):
            # only a position past the end may be refused this way
            assert pos > len(data)
            continue
        assert lo <= value <= hi
        assert pos < end <= len(data)
