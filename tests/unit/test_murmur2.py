"""fastprod.kernels.murmur2 / to_positive / partition_for_key against the Java client.

The reference values are computed at test time by the Apache Kafka client itself
(``Utils.murmur2``, ``Utils.toPositive``, ``BuiltInPartitioner.partitionForKey``) in one
JVM run over thousands of keys: see tests/java/KernelOracle.java and tests/javatools.py.
"""

from __future__ import annotations

import array
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from fastprod.kernels import murmur2, partition_for_key, to_positive

try:
    import javatools
except ImportError:  # tests/ imported as a package
    from tests import javatools

PARTITION_COUNTS = [1, 2, 3, 7, 12, 100, 1000, 2**31 - 1]

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
JAVA_UTILS_TEST = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
    (b"", 275646681),
]

# kafka-python / aiokafka test_partitioner: the partition out of 1000, as the Java
# client's partitioner picks it.
KAFKA_PYTHON_1000 = [
    (b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566),
    (b"\x00 ", 742),
]


@pytest.mark.parametrize(("key", "expected"), JAVA_UTILS_TEST)
def test_kafka_utils_test_vectors(key, expected):
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), KAFKA_PYTHON_1000)
def test_kafka_python_partition_vectors(key, expected):
    assert partition_for_key(key, 1000) == expected
    assert to_positive(murmur2(key)) % 1000 == expected


def _random_keys() -> list[bytes]:
    rng = random.Random(20240601)
    keys: list[bytes] = [b""]
    # every tail length (len % 4 == 1, 2, 3) and short keys, with high bytes (sign
    # extension of Java's signed bytes)
    for length in range(1, 8):
        for _ in range(60):
            keys.append(rng.randbytes(length))
        keys.append(b"\xff" * length)
        keys.append(b"\x80" * length)
        keys.append(b"\x7f" * length)
        keys.append(b"\x00" * length)
    for length in range(8, 64):
        for _ in range(10):
            keys.append(rng.randbytes(length))
    for _ in range(1500):
        keys.append(rng.randbytes(rng.randrange(0, 300)))
    for length in (1000, 1001, 1002, 1003, 4096, 65537, 100_003):
        keys.append(rng.randbytes(length))
    # text keys as they come out of a str serializer
    words = ["user", "órder", "ключ", "键", "🔑", "key-", "\u00e9t\u00e9", "Ωmega", "\x00"]
    for i in range(600):
        text = "".join(rng.choice(words) for _ in range(rng.randrange(0, 8))) + str(i)
        keys.append(text.encode("utf-8"))
    for i in range(300):
        keys.append(str(i).encode())
        keys.append(f"customer-{i:08d}".encode())
    keys.extend(k for k, _ in JAVA_UTILS_TEST)
    keys.extend(k for k, _ in KAFKA_PYTHON_1000)
    return keys


def test_against_java_client():
    javatools.require_java()
    keys = _random_keys()
    java = javatools.oracle().murmur2(keys, PARTITION_COUNTS)
    failures = []
    for key, (jhash, jpositive, jparts) in zip(keys, java):
        got_hash = murmur2(key)
        got_pos = to_positive(got_hash)
        got_parts = [partition_for_key(key, n) for n in PARTITION_COUNTS]
        if (got_hash, got_pos, got_parts) != (jhash, jpositive, jparts):
            failures.append(
                f"key={key[:40].hex()}{'...' if len(key) > 40 else ''} (len {len(key)}): "
                f"java murmur2={jhash} toPositive={jpositive} partitions={jparts}, "
                f"fastprod {got_hash} {got_pos} {got_parts}")
    assert len(java) == len(keys) > 3000
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:20])


@given(st.binary(max_size=200))
@settings(max_examples=500, deadline=None)
def test_matches_kafka_python_pure_python(key):
    # kafka-python returns the same 32 bits as an unsigned int
    expected = kafka_python_murmur2(key)
    if expected >= 2**31:
        expected -= 2**32
    assert murmur2(key) == expected


def test_result_is_signed_int32():
    rng = random.Random(1)
    seen_negative = seen_positive = False
    for _ in range(2000):
        h = murmur2(rng.randbytes(rng.randrange(0, 40)))
        assert type(h) is int
        assert -(2**31) <= h < 2**31
        seen_negative |= h < 0
        seen_positive |= h >= 0
    assert seen_negative and seen_positive


def test_buffer_types():
    raw = "clé-utilisateur-42".encode()
    want = murmur2(raw)
    for obj in (bytearray(raw), memoryview(raw), memoryview(bytearray(raw)),
                array.array("B", raw), array.array("b", raw)):
        assert murmur2(obj) == want, type(obj)
        assert partition_for_key(obj, 12) == partition_for_key(raw, 12)
    padded = b"xyz" + raw + b"tail"
    assert murmur2(memoryview(padded)[3:3 + len(raw)]) == want
    for offset in range(8):
        base = bytearray(offset) + raw
        assert murmur2(memoryview(base)[offset:]) == want


@pytest.mark.parametrize(("h", "expected"), [
    (0, 0), (1, 1), (-1, 0x7FFFFFFF), (2**31 - 1, 2**31 - 1), (-(2**31), 0),
    (-790332482, 1357151166), (275646681, 275646681), (-2, 0x7FFFFFFE),
])
def test_to_positive(h, expected):
    assert to_positive(h) == expected


@pytest.mark.parametrize("h", [2**31, -(2**31) - 1, 2**40])
def test_to_positive_out_of_int32(h):
    """Outside int32: exactly h & 0x7fffffff, as Java's toPositive on the low bits."""
    assert to_positive(h) == h & 0x7FFFFFFF


def test_partition_for_key_is_to_positive_mod_n():
    rng = random.Random(9)
    for _ in range(2000):
        key = rng.randbytes(rng.randrange(0, 50))
        n = rng.choice(PARTITION_COUNTS + [rng.randrange(1, 5000)])
        assert partition_for_key(key, n) == to_positive(murmur2(key)) % n


@pytest.mark.parametrize("bad", ["key", 42, None, [1, 2], 3.5],
                         ids=["str", "int", "None", "list", "float"])
def test_murmur2_type_error(bad):
    with pytest.raises(TypeError) as info:
        murmur2(bad)
    msg = str(info.value).lower()
    assert any(w in msg for w in ("bytes-like", "buffer", "bytes")), msg


@pytest.mark.parametrize("bad", ["key", 42, None, [1, 2]], ids=["str", "int", "None", "list"])
def test_partition_for_key_type_error(bad):
    with pytest.raises(TypeError):
        partition_for_key(bad, 10)


@pytest.mark.parametrize("n", [0, -1, -12, -(2**31)])
def test_partition_for_key_bad_partition_count(n):
    with pytest.raises(ValueError):
        partition_for_key(b"key", n)


def test_partition_for_key_partition_count_type():
    with pytest.raises(TypeError):
        partition_for_key(b"key", "12")
    with pytest.raises(TypeError):
        partition_for_key(b"key", 12.0)
    # more partitions than an int32 holds: the plain modulo
    assert partition_for_key(b"key", 2**31) == to_positive(murmur2(b"key"))


def test_to_positive_type_error():
    with pytest.raises(TypeError):
        to_positive("1")
    with pytest.raises(TypeError):
        to_positive(None)
