"""fastprod.serializers: built-ins write the bytes Java's serializers write; custom specs.

The expected byte strings were printed by Apache Kafka 4.3.1's own serializers
(org.apache.kafka.common.serialization.*Serializer.serialize).
"""

from __future__ import annotations

import json
import math
import types
import uuid

import msgpack
import pytest

from fastprod.errors import ConfigError
from fastprod.serializers import (
    BUILTIN_NAMES,
    is_bytes_passthrough,
    is_str_utf8,
    resolve_serializer,
    serializer_name,
)


def ser(spec, value, is_key=False):
    return resolve_serializer(spec, is_key=is_key)(value)


JAVA_BYTES = [
    ("int", 0, "00000000"),
    ("int", 1, "00000001"),
    ("int", -1, "ffffffff"),
    ("int", 0x01020304, "01020304"),
    ("int", -(2**31), "80000000"),
    ("int", 2**31 - 1, "7fffffff"),
    ("int", -256, "ffffff00"),
    ("long", 0, "0000000000000000"),
    ("long", -1, "ffffffffffffffff"),
    ("long", 0x0102030405060708, "0102030405060708"),
    ("long", -(2**63), "8000000000000000"),
    ("long", 2**63 - 1, "7fffffffffffffff"),
    ("long", 1234567890123, "0000011f71fb04cb"),
    ("short", 0, "0000"),
    ("short", -2, "fffe"),
    ("short", 0x0102, "0102"),
    ("short", -32768, "8000"),
    ("short", 32767, "7fff"),
    ("float", 0.0, "00000000"),
    ("float", -0.0, "80000000"),
    ("float", 1.5, "3fc00000"),
    ("float", 0.1, "3dcccccd"),
    ("float", math.nan, "7fc00000"),
    ("float", math.inf, "7f800000"),
    ("float", 1.401298464324817e-45, "00000001"),  # Float.MIN_VALUE
    ("float", 3.4028234663852886e38, "7f7fffff"),  # Float.MAX_VALUE
    ("float", -3.25, "c0500000"),
    ("double", 0.0, "0000000000000000"),
    ("double", -0.0, "8000000000000000"),
    ("double", 1.5, "3ff8000000000000"),
    ("double", 0.1, "3fb999999999999a"),
    ("double", math.nan, "7ff8000000000000"),
    ("double", -math.inf, "fff0000000000000"),
    ("double", 5e-324, "0000000000000001"),
    ("double", 1.7976931348623157e308, "7fefffffffffffff"),
    ("double", -3.25, "c00a000000000000"),
    ("bool", True, "01"),
    ("bool", False, "00"),
    ("uuid", uuid.UUID("123E4567-E89B-12D3-A456-426614174000"),
     "31323365343536372d653839622d313264332d613435362d343236363134313734303030"),
    ("str", "h\u00e9\u20ac\U0001F600", "68c3a9e282acf09f9880"),
]


@pytest.mark.parametrize("name,value,expected", JAVA_BYTES)
def test_java_bytes(name, value, expected):
    assert ser(name, value).hex() == expected
    assert ser(name, value, is_key=True).hex() == expected


@pytest.mark.parametrize("java,short", [
    ("ByteArraySerializer", "bytes"), ("ByteBufferSerializer", "bytes"),
    ("BytesSerializer", "bytes"), ("StringSerializer", "str"),
    ("IntegerSerializer", "int"), ("LongSerializer", "long"), ("ShortSerializer", "short"),
    ("FloatSerializer", "float"), ("DoubleSerializer", "double"),
    ("BooleanSerializer", "bool"), ("UUIDSerializer", "uuid"),
])
def test_java_class_names(java, short):
    builtin = resolve_serializer(short, is_key=False)
    assert resolve_serializer(java, is_key=False) is builtin
    assert resolve_serializer("org.apache.kafka.common.serialization." + java,
                              is_key=False) is builtin
    assert f"org.apache.kafka.common.serialization.{java}" in BUILTIN_NAMES


def test_aliases_and_case():
    assert resolve_serializer("string", is_key=True) is resolve_serializer("str", is_key=True)
    assert resolve_serializer("integer", is_key=True) is resolve_serializer("int", is_key=True)
    assert resolve_serializer("JSON", is_key=True) is resolve_serializer("json", is_key=True)
    # key and value serializers differ only in their error messages
    assert resolve_serializer("int", is_key=True) is not resolve_serializer("int", is_key=False)


@pytest.mark.parametrize("name", ["bytes", "str", "int", "long", "short", "float", "double",
                                  "bool", "uuid", "json", "msgpack", None])
def test_none_is_null(name):
    assert ser(name, None) is None
    assert ser(name, None, is_key=True) is None


def test_round_trips():
    import struct

    for v in (0, 7, -123456, 2**31 - 1):
        assert struct.unpack(">i", ser("int", v))[0] == v
    for v in (0, -(2**40), 2**62):
        assert struct.unpack(">q", ser("long", v))[0] == v
    for v in (0.5, -1e300, math.pi):
        assert struct.unpack(">d", ser("double", v))[0] == v
    assert struct.unpack(">f", ser("float", 0.25))[0] == 0.25
    assert ser("float", 3) == ser("float", 3.0)  # ints are accepted as floats
    u = uuid.uuid4()
    assert uuid.UUID(ser("uuid", u).decode()) == u
    assert ser("str", "héllo").decode("utf-8") == "héllo"
    doc = {"a": [1, 2.5, None, True], "b": "é€😀", "c": {"d": ""}}
    assert json.loads(ser("json", doc)) == doc
    assert msgpack.unpackb(ser("msgpack", doc)) == doc
    assert msgpack.unpackb(ser("msgpack", b"\x00\xff")) == b"\x00\xff"


def test_int_accepts_index_objects():
    class Index:
        def __index__(self):
            return 258

    assert ser("short", Index()) == b"\x01\x02"


def test_json_is_compact_utf8():
    assert ser("json", {"k": [1, 2], "é": "€"}) == '{"k":[1,2],"é":"€"}'.encode()
    assert ser("json", "x") == b'"x"'
    assert ser("json", 0) == b"0"


def test_bytes_pass_through_without_copy():
    value = b"payload" * 10
    for spec in ("bytes", None):
        s = resolve_serializer(spec, is_key=False)
        assert s(value) is value
        assert is_bytes_passthrough(s)
    assert ser("bytes", bytearray(b"ab")) == b"ab"
    assert type(ser("bytes", bytearray(b"ab"))) is bytes
    assert ser("bytes", memoryview(b"abcd")[1:3]) == b"bc"


def test_default_accepts_bytes_and_str():
    s = resolve_serializer(None, is_key=False)
    assert s("x") == b"x"
    assert s("é") == "é".encode("utf-8")
    assert s(b"x") == b"x"
    assert s(bytearray(b"x")) == b"x"
    assert is_str_utf8(s) and is_bytes_passthrough(s)
    assert not is_bytes_passthrough(resolve_serializer("str", is_key=False))
    assert is_str_utf8(resolve_serializer("str", is_key=False))
    assert not is_str_utf8(resolve_serializer("json", is_key=False))


def test_str_subclass():
    class S(str):
        pass

    assert ser("str", S("ab")) == b"ab"
    assert ser(None, S("ab")) == b"ab"


@pytest.mark.parametrize("name,value,message", [
    ("int", "1", "value serializer 'int' expects int, got str"),
    ("int", 1.0, "value serializer 'int' expects int, got float"),
    ("int", True, "value serializer 'int' expects int, got bool"),
    ("long", b"1", "value serializer 'long' expects int, got bytes"),
    ("float", "1.0", "value serializer 'float' expects float or int, got str"),
    ("double", True, "value serializer 'double' expects float or int, got bool"),
    ("str", b"x", "value serializer 'str' expects str, got bytes"),
    ("bytes", "x", "value serializer 'bytes' expects bytes, bytearray or memoryview, got str"),
    ("bool", 1, "value serializer 'bool' expects bool, got int"),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000",
     "value serializer 'uuid' expects uuid.UUID, got str"),
    (None, 5, "value serializer (default) expects bytes or str, got int"),
    ("json", object(), "value serializer 'json' cannot encode object"),
    ("msgpack", object(), "value serializer 'msgpack' cannot encode object"),
])
def test_type_errors(name, value, message):
    with pytest.raises(TypeError) as info:
        ser(name, value)
    assert message in str(info.value)


def test_key_role_in_messages():
    with pytest.raises(TypeError, match="^key serializer 'int' expects int, got str$"):
        ser("int", "x", is_key=True)


@pytest.mark.parametrize("name,value", [
    ("int", 2**31), ("int", -(2**31) - 1), ("short", 40000), ("long", 2**63),
    ("float", 1e300), ("msgpack", 2**70), ("json", math.nan),
])
def test_value_errors(name, value):
    with pytest.raises(ValueError, match=f"value serializer '{name}'"):
        ser(name, value)


def test_json_refuses_circular():
    a = []
    a.append(a)
    with pytest.raises(ValueError):
        ser("json", a)


# --- custom serializers ---

def upper(value):
    return value.upper().encode()


class Upper:
    def serialize(self, value):
        return value.upper().encode()


class CallableUpper:
    def __call__(self, value):
        return value.upper().encode()


def test_custom_callable():
    s = resolve_serializer(upper, is_key=False)
    assert s("ab") == b"AB"
    assert s(None) is None  # custom serializers are not called with None
    assert not is_bytes_passthrough(s)
    assert "upper" in serializer_name(s)
    assert resolve_serializer(s, is_key=False) is s  # idempotent


def test_custom_class_and_instances():
    assert resolve_serializer(Upper, is_key=True)("ab") == b"AB"
    assert resolve_serializer(Upper(), is_key=True)("ab") == b"AB"
    assert resolve_serializer(CallableUpper, is_key=True)("ab") == b"AB"
    assert resolve_serializer(lambda v: bytearray(b"x"), is_key=True)(1) == b"x"


def test_module_colon_name(monkeypatch):
    mod = types.ModuleType("fp_test_sermod")
    mod.upper = upper
    mod.Upper = Upper
    mod.ns = types.SimpleNamespace(fn=upper)
    monkeypatch.setitem(__import__("sys").modules, "fp_test_sermod", mod)
    assert resolve_serializer("fp_test_sermod:upper", is_key=False)("a") == b"A"
    assert resolve_serializer("fp_test_sermod:Upper", is_key=False)("a") == b"A"
    assert resolve_serializer("fp_test_sermod:ns.fn", is_key=False)("a") == b"A"
    assert resolve_serializer("json:dumps", is_key=False)  # any importable callable


def test_custom_bad_return():
    s = resolve_serializer(lambda v: 42, is_key=False)
    with pytest.raises(TypeError, match="returned int, expected bytes or None"):
        s("x")


@pytest.mark.parametrize("spec,match", [
    ("strng", "did you mean"),
    ("Strng", "unknown serializer 'Strng'"),
    ("no_such_module_xyz:thing", "cannot import module 'no_such_module_xyz'"),
    ("json:no_such_attr", "has no attribute 'no_such_attr'"),
    (":x", "not of the form 'module:Name'"),
    (42, "is not a serializer"),
    (object(), "is not a serializer"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match) as info:
        resolve_serializer(spec, is_key=False)
    assert "value.serializer" in str(info.value)


def test_class_needing_arguments():
    class Needs:
        def __init__(self, x):
            pass

    with pytest.raises(ConfigError, match="key.serializer: could not instantiate"):
        resolve_serializer(Needs, is_key=True)
