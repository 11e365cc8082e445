"""Key and value serializers: turn what the caller passes to ``send()`` into bytes.

A serializer is a callable ``(value) -> bytes | None``. ``None`` always means a null key
or value (a tombstone when it is the value), as in Java: every serializer here returns
``None`` for ``None``, and custom serializers are not called with ``None`` at all.

Built-in serializers, by short name or by the Java class name (with or without the
``org.apache.kafka.common.serialization.`` package), with the bytes the Java serializer
of the same name writes:

======================  ==============================  ==================================
name                    Java class                      accepts -> writes
======================  ==============================  ==================================
``bytes``               ByteArraySerializer (also       bytes (returned as is, no copy),
                        ByteBufferSerializer,           bytearray, memoryview (copied)
                        BytesSerializer)
``str``, ``string``     StringSerializer                str -> UTF-8
``int``, ``integer``    IntegerSerializer               int -> 4 bytes big-endian signed
``long``                LongSerializer                  int -> 8 bytes big-endian signed
``short``               ShortSerializer                 int -> 2 bytes big-endian signed
``float``               FloatSerializer                 float/int -> 4-byte IEEE 754 single
``double``              DoubleSerializer                float/int -> 8-byte IEEE 754 double
``bool``, ``boolean``   BooleanSerializer               bool -> ``b"\\x01"`` / ``b"\\x00"``
``uuid``                UUIDSerializer                  uuid.UUID -> its string form, as
                                                        UTF-8 (36 lowercase characters)
``json``                (none)                          JSON, compact separators, UTF-8,
                                                        non-ASCII kept, NaN/Infinity refused
``msgpack``             (none)                          msgpack (``msgpack.packb``)
======================  ==============================  ==================================

Note that ``float`` is Java's 4-byte FloatSerializer, not a Python float (which is a
double): use ``double`` for 8 bytes. ``int`` serializers accept ``int`` and anything with
``__index__`` (numpy integers) but not ``bool``; a value outside the type's range raises
``ValueError``. A ``str`` that cannot be encoded as UTF-8 (a lone surrogate) raises
``UnicodeEncodeError``, where Java's ``String.getBytes`` would write ``?`` instead.

**The default** (no ``key.serializer`` / ``value.serializer`` given) is ``bytes`` that also
takes ``str`` as UTF-8: that is what makes both ``send(topic, b"x")`` and
``send(topic, "x")`` work without configuration. Anything else raises ``TypeError``
saying which serializer to configure.

**Custom serializers** (``resolve_serializer``): a callable ``(value) -> bytes``; an object
with a ``serialize(value)`` method; a class, instantiated with no arguments and then used
as one of the former; or a ``"module:Name"`` string naming any of these. Only the
one-argument shape is supported: the topic and headers are not passed (unlike Java's
``serialize(topic, data)``). What a custom serializer returns is checked: bytes or None
(bytearray and memoryview are copied to bytes), anything else raises ``TypeError``.

**Hot path.** ``send()`` may skip the call entirely: ``is_bytes_passthrough(ser)`` says that
``ser(v) is v`` whenever ``type(v) is bytes``; ``is_str_utf8(ser)`` says that
``ser(v) == v.encode()`` whenever ``type(v) is str``. Built-in serializers are plain
functions (no bound-method or ``__call__`` indirection) and are stateless, so one object
may be shared by all threads.
"""

from __future__ import annotations

import difflib
import json
import numbers
import operator
import struct
import uuid
from typing import Any, Callable, Optional

from fastprod.config import import_module_attr
from fastprod.errors import ConfigError

__all__ = [
    "BUILTIN_NAMES",
    "Serializer",
    "is_bytes_passthrough",
    "is_str_utf8",
    "resolve_serializer",
    "serializer_name",
]

Serializer = Callable[[Any], Optional[bytes]]

JAVA_PACKAGE = "org.apache.kafka.common.serialization."

# Attributes set on every serializer resolve_serializer returns.
_NAME_ATTR = "_fastprod_serializer_name"
_BYTES_ATTR = "_fastprod_bytes_passthrough"
_STR_ATTR = "_fastprod_str_utf8"


def _role(is_key: bool) -> str:
    return "key" if is_key else "value"


def _type_name(value: Any) -> str:
    return type(value).__name__


def _mark(fn: Serializer, name: str, *, bytes_passthrough: bool = False,
          str_utf8: bool = False) -> Serializer:
    setattr(fn, _NAME_ATTR, name)
    setattr(fn, _BYTES_ATTR, bytes_passthrough)
    setattr(fn, _STR_ATTR, str_utf8)
    return fn


# --- the built-ins: each factory takes the role ("key"/"value") for error messages ---

_BUFFER_TYPES = (bytes, bytearray, memoryview)


def _make_bytes(role: str) -> Serializer:
    def serialize(value: Any) -> bytes | None:
        if type(value) is bytes:
            return value
        if value is None:
            return None
        if isinstance(value, _BUFFER_TYPES):
            return bytes(value)
        raise TypeError(f"{role} serializer 'bytes' expects bytes, bytearray or memoryview, "
                        f"got {_type_name(value)}")

    return _mark(serialize, "bytes", bytes_passthrough=True)


def _make_default(role: str) -> Serializer:
    def serialize(value: Any) -> bytes | None:
        t = type(value)  # exact types first: cheaper than isinstance, but mypy's
        if t is bytes:   # narrowing does not follow them
            return value  # type: ignore[no-any-return]
        if t is str:
            return value.encode()  # type: ignore[no-any-return]
        if value is None:
            return None
        if isinstance(value, str):
            return str.encode(value)
        if isinstance(value, _BUFFER_TYPES):
            return bytes(value)
        raise TypeError(
            f"{role} serializer (default) expects bytes or str, got {_type_name(value)}; "
            f"set {role}.serializer (for example 'json', 'int', 'msgpack' or a callable) "
            "to send other types")

    return _mark(serialize, "default (bytes or str)", bytes_passthrough=True, str_utf8=True)


def _make_str(role: str) -> Serializer:
    def serialize(value: Any) -> bytes | None:
        if type(value) is str:
            return value.encode()
        if value is None:
            return None
        if isinstance(value, str):
            return str.encode(value)
        raise TypeError(f"{role} serializer 'str' expects str, got {_type_name(value)}")

    return _mark(serialize, "str", str_utf8=True)


def _make_integer(name: str, fmt: str, bits: int) -> Callable[[str], Serializer]:
    pack = struct.Struct(fmt).pack
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def factory(role: str) -> Serializer:
        def as_int(value: Any) -> int:
            if not isinstance(value, bool):
                try:
                    return operator.index(value)
                except TypeError:
                    pass
            raise TypeError(f"{role} serializer {name!r} expects int, got {_type_name(value)}")

        def serialize(value: Any) -> bytes | None:
            if type(value) is not int:
                if value is None:
                    return None
                value = as_int(value)
            try:
                return pack(value)
            except struct.error:
                raise ValueError(f"{role} serializer {name!r} expects an int in "
                                 f"[{low}, {high}], got {value}") from None

        return _mark(serialize, name)

    return factory


def _make_real(name: str, fmt: str) -> Callable[[str], Serializer]:
    pack = struct.Struct(fmt).pack

    def factory(role: str) -> Serializer:
        def serialize(value: Any) -> bytes | None:
            if type(value) is not float:
                if value is None:
                    return None
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError(f"{role} serializer {name!r} expects float or int, "
                                    f"got {_type_name(value)}")
            try:
                return pack(value)
            except (OverflowError, struct.error):
                raise ValueError(f"{role} serializer {name!r}: {value!r} is out of range "
                                 f"for a {struct.calcsize(fmt) * 8}-bit float") from None

        return _mark(serialize, name)

    return factory


def _make_bool(role: str) -> Serializer:
    true, false = b"\x01", b"\x00"

    def serialize(value: Any) -> bytes | None:
        if value is True:
            return true
        if value is False:
            return false
        if value is None:
            return None
        raise TypeError(f"{role} serializer 'bool' expects bool, got {_type_name(value)}")

    return _mark(serialize, "bool")


def _make_uuid(role: str) -> Serializer:
    def serialize(value: Any) -> bytes | None:
        if isinstance(value, uuid.UUID):
            return str(value).encode("ascii")
        if value is None:
            return None
        raise TypeError(f"{role} serializer 'uuid' expects uuid.UUID, got {_type_name(value)}")

    return _mark(serialize, "uuid")


def _make_json(role: str) -> Serializer:
    # allow_nan=False: NaN and Infinity are not JSON; other readers would choke on them.
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode

    def serialize(value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            return encode(value).encode()
        except TypeError as exc:
            raise TypeError(f"{role} serializer 'json' cannot encode "
                            f"{_type_name(value)}: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"{role} serializer 'json' cannot encode "
                             f"{_type_name(value)}: {exc}") from exc

    return _mark(serialize, "json")


def _make_msgpack(role: str) -> Serializer:
    try:
        import msgpack
    except ImportError as exc:  # pragma: no cover - msgpack is a dependency
        raise ConfigError(f"{role}.serializer 'msgpack' needs the msgpack package "
                          f"(pip install msgpack): {exc}") from exc
    packb = msgpack.packb

    def serialize(value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            return bytes(packb(value))
        except TypeError as exc:
            raise TypeError(f"{role} serializer 'msgpack' cannot encode "
                            f"{_type_name(value)}: {exc}") from exc
        except (OverflowError, ValueError) as exc:
            raise ValueError(f"{role} serializer 'msgpack' cannot encode "
                             f"{_type_name(value)}: {exc}") from exc

    return _mark(serialize, "msgpack")


_FACTORIES: dict[str, Callable[[str], Serializer]] = {
    "bytes": _make_bytes,
    "str": _make_str,
    "int": _make_integer("int", ">i", 32),
    "long": _make_integer("long", ">q", 64),
    "short": _make_integer("short", ">h", 16),
    "float": _make_real("float", ">f"),
    "double": _make_real("double", ">d"),
    "bool": _make_bool,
    "uuid": _make_uuid,
    "json": _make_json,
    "msgpack": _make_msgpack,
}

# Every accepted spelling -> the canonical built-in name.
_ALIASES: dict[str, str] = {name: name for name in _FACTORIES}
_ALIASES.update({"string": "str", "integer": "int", "boolean": "bool"})
for _java, _name in {
    "ByteArraySerializer": "bytes",
    "ByteBufferSerializer": "bytes",
    "BytesSerializer": "bytes",
    "StringSerializer": "str",
    "IntegerSerializer": "int",
    "LongSerializer": "long",
    "ShortSerializer": "short",
    "FloatSerializer": "float",
    "DoubleSerializer": "double",
    "BooleanSerializer": "bool",
    "UUIDSerializer": "uuid",
}.items():
    _ALIASES[_java] = _name
    _ALIASES[JAVA_PACKAGE + _java] = _name
del _java, _name

BUILTIN_NAMES: tuple[str, ...] = tuple(sorted(_ALIASES))

# Built-ins are stateless: one function per (name, role), shared by every producer.
_cache: dict[tuple[str, bool], Serializer] = {}


def _builtin(name: str, is_key: bool) -> Serializer:
    ser = _cache.get((name, is_key))
    if ser is None:
        factory = _make_default if name == "default" else _FACTORIES[name]
        ser = _cache[(name, is_key)] = factory(_role(is_key))
    return ser


# --- custom serializers ---

def _describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{name}" if module and module != "builtins" else name


def _wrap_custom(fn: Callable[[Any], Any], is_key: bool) -> Serializer:
    role = _role(is_key)
    label = _describe(fn)

    def serialize(value: Any) -> bytes | None:
        if value is None:
            return None
        out = fn(value)
        if type(out) is bytes or out is None:
            return out
        if isinstance(out, _BUFFER_TYPES):
            return bytes(out)
        raise TypeError(f"{role} serializer {label} returned {_type_name(out)}, "
                        "expected bytes or None")

    return _mark(serialize, label)


def _from_string(spec: str, is_key: bool, key: str) -> Serializer:
    name = _ALIASES.get(spec) or _ALIASES.get(spec.lower())
    if name is not None:
        return _builtin(name, is_key)
    if ":" in spec:
        return _from_object(import_module_attr(spec, key), is_key, key, spec)
    close = difflib.get_close_matches(spec, BUILTIN_NAMES, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"{key}: unknown serializer {spec!r}. Expected one of "
        f"{', '.join(sorted(_FACTORIES))} (or a Java serializer class name), "
        f"'module:Name', a callable, or an object with serialize(value){hint}")


def _from_object(obj: Any, is_key: bool, key: str, spec: Any) -> Serializer:
    if getattr(obj, _NAME_ATTR, None) is not None:
        return obj  # type: ignore[no-any-return]  # already resolved
    if isinstance(obj, str):
        return _from_string(obj, is_key, key)
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(f"{key}: could not instantiate serializer class "
                              f"{_describe(obj)} with no arguments: {exc}") from exc
    method = getattr(obj, "serialize", None)
    if callable(method):
        return _wrap_custom(method, is_key)
    if callable(obj):
        return _wrap_custom(obj, is_key)
    raise ConfigError(
        f"{key}: {spec!r} is not a serializer: expected a built-in name, 'module:Name', "
        "a callable (value) -> bytes, an object with serialize(value), or such a class")


def resolve_serializer(spec: Any, *, is_key: bool) -> Serializer:
    """The serializer for ``key.serializer`` (``is_key=True``) or ``value.serializer``.

    ``spec`` is None (the default: bytes, or str as UTF-8), a built-in name or Java class
    name, ``"module:Name"``, a callable ``(value) -> bytes``, an object with a
    ``serialize(value)`` method, or a class (instantiated with no arguments). A
    serializer returned by this function is returned unchanged. Raises ``ConfigError``
    for a spec that is none of these.
    """
    if spec is None:
        return _builtin("default", is_key)
    key = f"{_role(is_key)}.serializer"
    if isinstance(spec, str):
        return _from_string(spec, is_key, key)
    return _from_object(spec, is_key, key, spec)


def is_bytes_passthrough(serializer: Serializer) -> bool:
    """True when ``serializer(v) is v`` for every ``v`` with ``type(v) is bytes``."""
    return getattr(serializer, _BYTES_ATTR, False)


def is_str_utf8(serializer: Serializer) -> bool:
    """True when ``serializer(v) == v.encode("utf-8")`` for every ``v`` with ``type(v) is str``."""
    return getattr(serializer, _STR_ATTR, False)


def serializer_name(serializer: Serializer) -> str:
    """A short description of a serializer, for error messages and logs."""
    return getattr(serializer, _NAME_ATTR, None) or _describe(serializer)
