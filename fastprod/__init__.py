"""fastprod: a fast Apache Kafka producer for Python with the Java producer's guarantees."""

from fastprod import errors, kernels  # kernels first: fails clearly if not compiled
from fastprod.cluster.snapshot import PartitionInfo, TopicPartition
from fastprod.config import ProducerConfig
from fastprod.engine.futures import RecordFuture, RecordMetadata
from fastprod.errors import (
    BufferFullError,
    ConfigError,
    CorruptRecordError,
    FastprodError,
    KafkaError,
    KafkaTimeoutError,
    ProducerClosedError,
    ProtocolError,
    RecordTooLargeError,
)
from fastprod.partitioners import Partitioner, RoundRobinPartitioner, UniformStickyPartitioner
from fastprod.producer import Producer
from fastprod.sharded import ShardedProducer

from fastprod._version import __version__

__all__ = [
    "BufferFullError",
    "ConfigError",
    "CorruptRecordError",
    "FastprodError",
    "KafkaError",
    "KafkaTimeoutError",
    "PartitionInfo",
    "Partitioner",
    "Producer",
    "ProducerClosedError",
    "ProducerConfig",
    "ProtocolError",
    "RecordFuture",
    "RecordMetadata",
    "RecordTooLargeError",
    "RoundRobinPartitioner",
    "ShardedProducer",
    "TopicPartition",
    "UniformStickyPartitioner",
    "errors",
    "kernels",
]
