from collections.abc import Buffer

def murmur2(data: Buffer) -> int:
    """Java's ``Utils.murmur2``: a signed 32-bit hash, seed 0x9747b28c."""

def to_positive(h: int) -> int:
    """Java's ``Utils.toPositive``: ``h & 0x7fffffff``."""

def partition_for_key(key: Buffer, num_partitions: int) -> int:
    """The partition the Java producer picks for a non-null key."""
