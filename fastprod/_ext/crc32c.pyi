import sys

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:  # stub-only: type checkers bundle typing_extensions
    from typing_extensions import Buffer

def crc32c(data: Buffer, value: int = 0) -> int:
    """CRC-32C of ``data``, continuing from ``value`` (the CRC of what came before)."""

def crc32c_implementation() -> str:
    """Which implementation runs here: "sse4.2", "armv8-crc" or "table"."""
