import sys

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:  # stub-only: type checkers bundle typing_extensions
    from typing_extensions import Buffer

def encode_varint(value: int) -> bytes:
    """Zig-zag varint of a signed 32-bit int (OverflowError outside int32)."""

def decode_varint(buf: Buffer, pos: int = 0) -> tuple[int, int]:
    """Decode a zig-zag int32 at ``pos``: returns (value, position after it)."""

def encode_varlong(value: int) -> bytes:
    """Zig-zag varint of a signed 64-bit int (OverflowError outside int64)."""

def decode_varlong(buf: Buffer, pos: int = 0) -> tuple[int, int]: ...
def encode_unsigned_varint(value: int) -> bytes:
    """Unsigned varint of a uint32 (used by the flexible protocol versions)."""

def decode_unsigned_varint(buf: Buffer, pos: int = 0) -> tuple[int, int]: ...
def size_of_varint(value: int) -> int: ...
def size_of_varlong(value: int) -> int: ...
def size_of_unsigned_varint(value: int) -> int: ...
