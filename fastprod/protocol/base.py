"""Base classes of the generated messages and the schema metadata they carry.

Every generated class is a ``@dataclass(slots=True)``; a top-level request, response or
header also derives from :class:`Message`, which owns version checks and the dispatch to
the generated per-version encoder and decoder functions (``_ENCODERS[version - MIN]``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from fastprod.errors import ProtocolError

__all__ = ["V_MAX", "FieldSpec", "Struct", "Message", "Buffer", "absent_field_error",
           "not_nullable_error", "bad_tagged_field_error"]

#: Open-ended version ranges ("9+") end here, like Java's Short.MAX_VALUE.
V_MAX = 0x7FFF

Buffer = bytes | bytearray | memoryview
Range = tuple[int, int]
_M = TypeVar("_M", bound="Message")


def _in(version: int, r: Range | None) -> bool:
    return r is not None and r[0] <= version <= r[1]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a schema, as metadata (the codecs are generated straight-line code).

    ``type`` is the schema's type string (``"int32"``, ``"[]int32"``, ``"[]NodeEndpoint"``);
    ``struct`` is the generated class for a struct or array-of-struct field. Version
    ranges are inclusive ``(low, high)`` tuples, ``None`` meaning "no versions".
    """

    name: str
    type: str
    versions: Range
    nullable_versions: Range | None = None
    tagged_versions: Range | None = None
    tag: int | None = None
    ignorable: bool = False
    entity_type: str | None = None
    struct: type[Struct] | None = None
    #: Field-level override of the message's flexible versions (only the request
    #: header's client_id has one: it stays a non-compact string forever).
    flexible_versions: Range | None = None
    has_flexible_override: bool = False

    def present(self, version: int) -> bool:
        return _in(version, self.versions)

    def nullable(self, version: int) -> bool:
        return _in(version, self.nullable_versions)

    def tagged(self, version: int) -> bool:
        return _in(version, self.tagged_versions)

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")


class Struct:
    """A (possibly nested) schema struct. Subclasses are generated dataclasses."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[FieldSpec, ...]] = ()


def _unsupported(cls: type, version: int) -> ValueError:
    return ValueError(f"{cls.__name__} has no version {version} "
                      f"(valid versions {cls.MIN_VERSION}-{cls.MAX_VERSION})")  # type: ignore[attr-defined]


class Message(Struct):
    """A top-level request, response or header schema."""

    __slots__ = ()
    #: None for the request and response headers.
    API_KEY: ClassVar[int | None]
    MIN_VERSION: ClassVar[int]
    MAX_VERSION: ClassVar[int]
    #: First flexible version, or None when no version is flexible.
    FLEXIBLE_MIN_VERSION: ClassVar[int | None]
    #: The schema's latest version is still in development; brokers may not accept it.
    LATEST_VERSION_UNSTABLE: ClassVar[bool] = False
    SCHEMA_FILE: ClassVar[str]
    _ENCODERS: ClassVar[tuple[Callable[[Any, bytearray], None], ...]]
    _DECODERS: ClassVar[tuple[Callable[[memoryview, int], tuple[Any, int]], ...]]

    @classmethod
    def is_flexible(cls, version: int) -> bool:
        return cls.FLEXIBLE_MIN_VERSION is not None and version >= cls.FLEXIBLE_MIN_VERSION

    def encode_into(self, out: bytearray, version: int) -> None:
        """Append this message's encoding at ``version`` to ``out``.

        Raises ValueError for a version outside the schema's ``validVersions``, or when a
        field that this version cannot carry (and the schema does not mark ignorable)
        holds a non-default value, as Java's UnsupportedVersionException does.
        """
        cls = type(self)
        index = version - cls.MIN_VERSION
        if index < 0 or version > cls.MAX_VERSION:
            raise _unsupported(cls, version)
        cls._ENCODERS[index](self, out)

    def encode(self, version: int) -> bytes:
        out = bytearray()
        self.encode_into(out, version)
        return bytes(out)

    @classmethod
    def decode_from(cls: type[_M], buf: Buffer, pos: int, version: int) -> tuple[_M, int]:
        """Decode one message at ``buf[pos:]``; return it and the offset just past it.

        Raises ProtocolError, and nothing else, when the bytes are truncated or malformed.
        """
        index = version - cls.MIN_VERSION
        if index < 0 or version > cls.MAX_VERSION:
            raise _unsupported(cls, version)
        view = buf if type(buf) is memoryview else memoryview(buf)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        try:
            return cls._DECODERS[index](view, pos)
        except (struct.error, IndexError, ValueError) as exc:
            # Fixed-width fields are unpacked without explicit bounds checks.
            raise ProtocolError(f"malformed or truncated {cls.__name__} v{version} "
                                f"at offset {pos}: {exc}") from exc

    @classmethod
    def decode(cls: type[_M], buf: Buffer, version: int) -> _M:
        """Decode a message that must fill ``buf`` exactly."""
        message, end = cls.decode_from(buf, 0, version)
        size = memoryview(buf).nbytes
        if end != size:
            raise ProtocolError(f"{cls.__name__} v{version}: {size - end} trailing bytes "
                                f"after the message")
        return message


# -- errors raised by the generated code ----------------------------------------------

def absent_field_error(struct_name: str, field: str, versions: str) -> ValueError:
    """A non-ignorable field holds a value the chosen version cannot carry."""
    return ValueError(f"{struct_name}.{field} is only supported in versions {versions}; "
                      "leave it at its default or pick another version")


def not_nullable_error(struct_name: str, field: str, versions: str) -> ValueError:
    return ValueError(f"{struct_name}.{field} may only be None in versions {versions}")


def bad_tagged_field_error(struct_name: str, tag: int) -> ProtocolError:
    return ProtocolError(f"{struct_name}: tagged field {tag} does not fill its declared size")
