"""The compression codecs by config name: ids, levels and the Produce version they need.

``compression.type`` takes Java's names ``none``, ``gzip``, ``snappy``, ``lz4``, ``zstd``
(lowercase, as Java's validator); the id is what a record batch stores in bits 0-2 of its
attributes. Levels come from ``compression.gzip.level`` (default -1, zlib's default),
``compression.lz4.level`` (default 9) and ``compression.zstd.level`` (default 3), as in
Java 3.8+ (KIP-390); snappy and none take no level. The framing and the level ranges
live in ``fastprod._ext.codecs``; this module only maps names onto them.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping, Optional, Union

from fastprod._ext import codecs
from fastprod.errors import ConfigError

__all__ = [
    "CODECS",
    "LEVEL_CONFIGS",
    "codec_id",
    "codec_name",
    "compression_from_config",
    "level_for",
    "min_produce_version",
]

# compression.type -> the codec id written in the record batch attributes
CODECS: dict[str, int] = {name: codec for codec, name in codecs.NAMES.items()}

# codec id -> the config key of its level
LEVEL_CONFIGS: dict[int, str] = {
    codecs.GZIP: "compression.gzip.level",
    codecs.LZ4: "compression.lz4.level",
    codecs.ZSTD: "compression.zstd.level",
}

# Kafka 4.x rejects Produce below v3; zstd needs v7 (KIP-110).
_MIN_PRODUCE_VERSION = 3
_MIN_PRODUCE_VERSION_ZSTD = 7


def codec_id(name: str) -> int:
    """The codec id of a ``compression.type`` name: ``codec_id("lz4") == 3``."""
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name).lower(), CODECS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"compression.type: unknown compression type {name!r}, expected "
                          f"one of {', '.join(CODECS)}{hint}") from None


def codec_name(codec: int) -> str:
    """The ``compression.type`` name of a codec id."""
    try:
        return codecs.NAMES[codec]
    except (KeyError, TypeError):
        raise ValueError(f"unknown compression codec id {codec!r}, expected one of "
                         f"{sorted(codecs.NAMES)}") from None


def _as_id(codec: Union[str, int]) -> int:
    if isinstance(codec, str):
        return codec_id(codec)
    codec_name(codec)  # validates
    return codec


def level_for(name: Union[str, int], config: Optional[Mapping[str, Any]] = None
              ) -> Optional[int]:
    """The level to compress with: the codec's ``compression.<codec>.level`` from
    ``config`` (Java names), or Java's default when it is absent or None. None for
    ``none`` and ``snappy``. Raises ``ConfigError`` for a level out of the codec's range.
    """
    codec = _as_id(name)
    key = LEVEL_CONFIGS.get(codec)
    level = None if key is None or config is None else config.get(key)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        raise ConfigError(f"{key}: expected an int, got {type(level).__name__} {level!r}")
    try:
        return codecs.check_level(codec, level)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def compression_from_config(config: Mapping[str, Any]) -> tuple[int, Optional[int]]:
    """``(codec id, level)`` from ``compression.type`` (default ``none``) and its level."""
    codec = codec_id(config.get("compression.type", "none"))
    return codec, level_for(codec, config)


def min_produce_version(codec: Union[str, int]) -> int:
    """The lowest Produce request version that may carry batches of this codec."""
    return _MIN_PRODUCE_VERSION_ZSTD if _as_id(codec) == codecs.ZSTD else _MIN_PRODUCE_VERSION
