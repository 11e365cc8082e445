"""Fetch, configure, start and stop a real local Apache Kafka (tests, demo, benchmarks).

Stdlib only: importing this package never needs the compiled kernels.
"""

from .cluster import ExternalKafka, LocalKafka
from .jars import KAFKA_VERSION, FetchError, classpath, ensure_jars, java_executable
from .node import KafkaNode, KafkaStartError, run_tool
from .probe import ClusterMetadata, ProbeError

__all__ = [
    "KAFKA_VERSION",
    "ClusterMetadata",
    "ExternalKafka",
    "FetchError",
    "KafkaNode",
    "KafkaStartError",
    "LocalKafka",
    "ProbeError",
    "classpath",
    "ensure_jars",
    "java_executable",
    "run_tool",
]
