"""fastprod.kernels.crc32c: CRC-32C (Castagnoli) as used by record batch v2.

Checked against the RFC 3720 (iSCSI) vectors and, on random buffers of many sizes and
alignments, against the independent ``crc32c`` package from PyPI.
"""

from __future__ import annotations

import array
import json
import os
import random
import subprocess
import sys
import textwrap

import crc32c as crc32c_pkg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastprod.kernels import crc32c, crc32c_implementation


def reference(data, value: int = 0) -> int:
    return crc32c_pkg.crc32c(data, value)


ISCSI_READ_PDU = bytes.fromhex(
    "01c00000000000000000000000000000"
    "14000000000004000000001400000018"
    "28000000000000000200000000000000"
)

KNOWN = [
    pytest.param(bytes(32), 0x8A9136AA, id="rfc3720-32-zeros"),
    pytest.param(b"\xff" * 32, 0x62A8AB43, id="rfc3720-32-ones"),
    pytest.param(bytes(range(32)), 0x46DD794E, id="rfc3720-ascending"),
    pytest.param(bytes(range(31, -1, -1)), 0x113FDB5C, id="rfc3720-descending"),
    pytest.param(ISCSI_READ_PDU, 0xD9963A56, id="rfc3720-iscsi-read-pdu"),
    pytest.param(b"123456789", 0xE3069283, id="check-123456789"),
    pytest.param(b"", 0, id="empty"),
]


@pytest.mark.parametrize(("data", "expected"), KNOWN)
def test_known_vectors(data, expected):
    assert crc32c(data) == expected
    assert crc32c(data, 0) == expected


def _sizes() -> list[int]:
    sizes = set(range(301))
    for block in (256, 8192, 3 * 8192):
        k = 1
        while block * k <= 70000:
            for d in (-1, 0, 1):
                sizes.add(block * k + d)
            k += 1
    sizes.update([511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537, 70000])
    return sorted(sizes)


SIZES = _sizes()


def test_random_buffers_every_size():
    rng = random.Random(0xC0FFEE)
    base = rng.randbytes(max(SIZES) + 64)
    mismatches = []
    for size in SIZES:
        start = rng.randrange(0, 64)
        data = base[start:start + size]
        got, want = crc32c(data), reference(data)
        if got != want:
            mismatches.append((size, start, hex(got), hex(want)))
    assert not mismatches, f"(size, start, got, expected): {mismatches[:20]}"


@pytest.mark.parametrize("offset", range(16))
def test_alignment(offset):
    """Slices of a memoryview start at every offset 0..15 from the allocation."""
    rng = random.Random(offset)
    base = bytearray(rng.randbytes(70000 + 32))
    view = memoryview(base)
    sizes = [s for s in SIZES if s % 7 == 0 or s < 40 or s % 256 in (0, 1, 255)
             or s % 8192 in (0, 1, 8191)]
    mismatches = []
    for size in sizes:
        chunk = view[offset:offset + size]
        got, want = crc32c(chunk), reference(chunk)
        if got != want:
            mismatches.append((offset, size, hex(got), hex(want)))
    assert not mismatches, f"(offset, size, got, expected): {mismatches[:20]}"


def test_seeded_with_previous_crc():
    rng = random.Random(7)
    for _ in range(500):
        data = rng.randbytes(rng.randrange(0, 3000))
        value = rng.getrandbits(32)
        assert crc32c(data, value) == reference(data, value), (len(data), value)
    for value in (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF):
        assert crc32c(b"kafka", value) == reference(b"kafka", value)
        assert crc32c(b"", value) == value


def test_incremental_continuation():
    rng = random.Random(11)
    data = rng.randbytes(100_000)
    whole = reference(data)
    for cut in [0, 1, 2, 3, 7, 8, 9, 255, 256, 257, 8191, 8192, 8193, 24575, 24576, 24577,
                50_000, 99_999, 100_000]:
        a, b = data[:cut], data[cut:]
        assert crc32c(b, crc32c(a)) == whole, cut
    # many small pieces
    crc, pos = 0, 0
    while pos < len(data):
        step = rng.randrange(0, 1000)
        crc = crc32c(memoryview(data)[pos:pos + step], crc)
        pos += step
    assert crc == whole


@given(st.binary(max_size=2000), st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_concat_property(a, b):
    assert crc32c(b, crc32c(a)) == crc32c(a + b) == reference(a + b)


def _buffer_types(raw: bytes):
    yield "bytes", raw
    yield "bytearray", bytearray(raw)
    yield "memoryview(bytes)", memoryview(raw)
    yield "memoryview(bytearray)", memoryview(bytearray(raw))
    yield "array('B')", array.array("B", raw)
    yield "array('b')", array.array("b", raw)
    if len(raw) >= 8 and len(raw) % 8 == 0:
        yield "memoryview.cast('B', shape)", memoryview(raw).cast("B", (len(raw) // 8, 8))


@pytest.mark.parametrize("size", [0, 1, 8, 64, 1000, 65536])
def test_buffer_protocol_types(size):
    raw = random.Random(size).randbytes(size)
    want = reference(raw)
    for name, obj in _buffer_types(raw):
        assert crc32c(obj) == want, name


@pytest.mark.parametrize("typecode", ["H", "I", "L", "Q", "d"])
def test_wide_item_buffers_hash_their_bytes(typecode):
    """A buffer with items wider than a byte is hashed as its raw bytes (as the crc32c
    package and zlib.crc32 do)."""
    arr = array.array(typecode, range(100)) if typecode != "d" else array.array("d", [1.5] * 100)
    assert crc32c(arr) == reference(arr.tobytes())
    assert crc32c(memoryview(arr)) == reference(arr.tobytes())


def test_non_contiguous_buffer_is_refused_or_hashed_correctly():
    raw = bytes(range(200))
    view = memoryview(raw)[::2]
    try:
        got = crc32c(view)
    except (TypeError, ValueError, BufferError):
        return
    assert got == reference(view.tobytes())


@pytest.mark.parametrize("bad", ["123456789", 12345, None, [1, 2, 3], 1.5, object()],
                         ids=["str", "int", "None", "list", "float", "object"])
def test_type_error_names_expected_type(bad):
    with pytest.raises(TypeError) as info:
        crc32c(bad)
    msg = str(info.value).lower()
    assert any(word in msg for word in ("bytes-like", "buffer", "bytes")), msg


@pytest.mark.parametrize("value", [-1, 2**32, 2**64, -(2**31) - 1])
def test_out_of_range_previous_value(value):
    """``value`` is a uint32: a value outside it is refused (or, like the crc32c
    package, reduced modulo 2**32), never silently truncated to something else."""
    try:
        got = crc32c(b"abc", value)
    except (OverflowError, ValueError):
        return
    assert got == reference(b"abc", value & 0xFFFFFFFF)


def test_value_type_error():
    with pytest.raises(TypeError):
        crc32c(b"abc", "0")
    with pytest.raises(TypeError):
        crc32c(b"abc", 1.0)


def test_does_not_modify_input():
    buf = bytearray(random.Random(3).randbytes(5000))
    copy = bytes(buf)
    crc32c(buf)
    crc32c(memoryview(buf)[13:4000], 99)
    assert buf == copy


def test_returns_unsigned_python_int():
    for data in (b"\xff" * 32, b"123456789", bytes(1000)):
        got = crc32c(data)
        assert type(got) is int
        assert 0 <= got <= 0xFFFFFFFF


def test_implementation_name():
    impl = crc32c_implementation()
    assert impl in ("sse4.2", "armv8-crc", "table")
    # this machine's CPU: the hardware path should be used where it exists
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    except OSError:
        return
    if os.environ.get("FASTPROD_CRC32C") == "table":
        assert impl == "table", impl
    elif " sse4_2" in cpuinfo and os.uname().machine in ("x86_64", "AMD64"):
        assert impl == "sse4.2", impl
    elif " crc32" in cpuinfo and os.uname().machine in ("aarch64", "arm64"):
        assert impl == "armv8-crc", impl


_SUBPROCESS_CHECK = textwrap.dedent("""
    import json, random, sys
    import crc32c as pkg
    from fastprod.kernels import crc32c, crc32c_implementation
    rng = random.Random(5)
    bad = []
    sizes = list(range(0, 300)) + [1023, 1024, 1025, 8191, 8192, 8193, 24576, 24577, 70000]
    for size in sizes:
        for offset in (0, 1, 3, 7):
            data = memoryview(rng.randbytes(size + 8))[offset:offset + size]
            value = rng.getrandbits(32)
            if crc32c(data, value) != pkg.crc32c(data, value):
                bad.append([size, offset, value])
    print(json.dumps({"impl": crc32c_implementation(), "bad": bad[:20],
                      "check": crc32c(b"123456789")}))
""")


def _forced_table_env() -> dict | None:
    """The environment variable that forces the table fallback, if the kernel has one."""
    from pathlib import Path

    ext = Path(__file__).resolve().parents[2] / "fastprod" / "_ext"
    source = ""
    for path in [*ext.glob("*crc32c*.pyx"), *ext.glob("*crc32c*.h")]:
        source += path.read_text()
    if "FASTPROD_CRC32C" in source:
        return {"FASTPROD_CRC32C": "table"}
    return None


def test_table_fallback_in_subprocess():
    env_extra = _forced_table_env()
    if env_extra is None:
        pytest.skip("the crc32c kernel has no switch to force the table implementation")
    env = dict(os.environ, **env_extra)
    proc = subprocess.run([sys.executable, "-c", _SUBPROCESS_CHECK], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["impl"] == "table"
    assert result["check"] == 0xE3069283
    assert result["bad"] == [], "(size, offset, value) mismatching the crc32c package"
