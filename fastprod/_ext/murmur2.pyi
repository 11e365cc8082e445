from collections.abc import Sequence
import sys

if sys.version_info >= (3, 12):
    from collections.abc import Buffer
else:  # stub-only: type checkers bundle typing_extensions
    from typing_extensions import Buffer

def murmur2(data: Buffer) -> int:
    """Java's ``Utils.murmur2``: a signed 32-bit hash, seed 0x9747b28c."""

def to_positive(h: int) -> int:
    """Java's ``Utils.toPositive``: ``h & 0x7fffffff``."""

def partition_for_key(key: Buffer, num_partitions: int) -> int:
    """The partition the Java producer picks for a non-null key."""

def split_by_key_partition(
    keys: Sequence[Buffer | None], values: Sequence[object], num_partitions: int
) -> dict[int, tuple[list[int], list[Buffer | None], list[object]]]:
    """Group records by the partition Java picks for their key: {partition: (input
    indices, keys, values)}; None keys under -1 (they go to the sticky partition)."""

def topic_worker_seed(topic: str) -> int:
    """ShardedProducer: where the topic's partitions start among the workers."""

def worker_for_partition(seed: int, partition: int, workers: int) -> int:
    """ShardedProducer: the worker that owns ``partition`` of the topic with ``seed``."""
