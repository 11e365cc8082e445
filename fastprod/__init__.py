"""fastprod: a fast Apache Kafka producer for Python with the Java producer's guarantees."""

from fastprod import errors, kernels  # kernels first: fails clearly if not compiled
from fastprod.errors import (
    ConfigError,
    CorruptRecordError,
    FastprodError,
    ProtocolError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorruptRecordError",
    "FastprodError",
    "ProtocolError",
    "errors",
    "kernels",
]
