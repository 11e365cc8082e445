"""fastprod: a fast Apache Kafka producer for Python with the Java producer's guarantees."""

import logging

# The library never prints: without this, an application that configured no logging
# would get fastprod's warnings on stderr from logging's lastResort handler.
logging.getLogger("fastprod").addHandler(logging.NullHandler())

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
