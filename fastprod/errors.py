"""Exceptions raised by fastprod.

Three families, as in asyncpg: errors the broker reports (``KafkaError`` subclasses,
one per Kafka error code), misuse of the API (``ConfigError``, ``TypeError``), and
internal protocol errors (``ProtocolError``, ``CorruptRecordError``).

This module imports nothing from fastprod: the compiled kernels depend on it.
"""

from __future__ import annotations


class FastprodError(Exception):
    """Base class of every exception fastprod raises on its own account."""


class ConfigError(FastprodError, ValueError):
    """A configuration key is unknown or its value is not accepted."""


class ProtocolError(FastprodError):
    """Bytes from the wire do not follow the Kafka protocol (truncated or malformed)."""


class CorruptRecordError(ProtocolError):
    """A record batch is truncated, malformed, or fails its CRC-32C check.

    ``expected_crc`` and ``actual_crc`` are set when the CRC does not match: the
    value stored in the batch header and the one computed over its bytes.
    """

    def __init__(self, message: str, expected_crc: int | None = None,
                 actual_crc: int | None = None) -> None:
        super().__init__(message)
        self.expected_crc = expected_crc
        self.actual_crc = actual_crc
