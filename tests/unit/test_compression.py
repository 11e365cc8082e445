"""fastprod.compression: codec ids, levels from config, minimum Produce versions."""

from __future__ import annotations

import pytest

from fastprod import kernels
from fastprod.compression import (
    CODECS,
    codec_id,
    codec_name,
    compression_from_config,
    level_for,
    min_produce_version,
)
from fastprod.errors import ConfigError


def test_codec_ids_match_the_batch_attributes():
    assert CODECS == {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
    assert codec_id("none") == kernels.COMPRESSION_NONE
    assert codec_id("gzip") == kernels.COMPRESSION_GZIP
    assert codec_id("snappy") == kernels.COMPRESSION_SNAPPY
    assert codec_id("lz4") == kernels.COMPRESSION_LZ4 == 3
    assert codec_id("zstd") == kernels.COMPRESSION_ZSTD
    for name, codec in CODECS.items():
        assert codec_name(codec) == name


@pytest.mark.parametrize("name,match", [
    ("gzp", "did you mean 'gzip'"),
    ("GZIP", "did you mean 'gzip'"),  # Java's validator is case-sensitive
    ("brotli", "expected one of none, gzip, snappy, lz4, zstd"),
    (None, "unknown compression type None"),
])
def test_unknown_codec(name, match):
    with pytest.raises(ConfigError, match=match) as info:
        codec_id(name)
    assert "compression.type" in str(info.value)


def test_unknown_codec_id():
    with pytest.raises(ValueError, match="unknown compression codec id 9"):
        codec_name(9)


def test_java_default_levels():
    assert level_for("gzip", {}) == -1
    assert level_for("lz4", {}) == 9
    assert level_for("zstd", {}) == 3
    assert level_for("zstd") == 3
    assert level_for("none", {}) is None
    assert level_for("snappy", {"compression.zstd.level": 5}) is None
    # None in the config means "unset"
    assert level_for("lz4", {"compression.lz4.level": None}) == 9


def test_levels_from_config():
    config = {"compression.gzip.level": 1, "compression.lz4.level": 17,
              "compression.zstd.level": -7}
    assert level_for("gzip", config) == 1
    assert level_for("lz4", config) == 17
    assert level_for("zstd", config) == -7
    assert level_for(codec_id("zstd"), config) == -7  # ids work too


@pytest.mark.parametrize("key,level", [
    ("compression.gzip.level", 0),
    ("compression.gzip.level", 10),
    ("compression.lz4.level", 0),
    ("compression.lz4.level", 18),
    ("compression.zstd.level", 23),
    ("compression.zstd.level", -131073),
])
def test_levels_out_of_range(key, level):
    codec = key.split(".")[1]
    with pytest.raises(ConfigError, match=key):
        level_for(codec, {key: level})


def test_level_must_be_an_int():
    with pytest.raises(ConfigError, match="compression.lz4.level: expected an int"):
        level_for("lz4", {"compression.lz4.level": "9"})
    with pytest.raises(ConfigError):
        level_for("gzip", {"compression.gzip.level": True})


def test_compression_from_config():
    assert compression_from_config({}) == (0, None)
    assert compression_from_config({"compression.type": "gzip"}) == (1, -1)
    assert compression_from_config({"compression.type": "zstd",
                                    "compression.zstd.level": 10}) == (4, 10)


def test_min_produce_version():
    assert min_produce_version("zstd") == 7
    assert min_produce_version(codec_id("zstd")) == 7
    for name in ("none", "gzip", "snappy", "lz4"):
        assert min_produce_version(name) == 3
    with pytest.raises(ConfigError):
        min_produce_version("brotli")
