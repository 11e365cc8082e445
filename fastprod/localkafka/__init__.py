"""Fetch, configure, start and stop a real local Apache Kafka (tests, demo, benchmarks).

Standard library (plus the JDK and Maven it drives) and, in probe.py, fastprod.protocol's
generated pure-Python codecs for Metadata and CreateTopics; nothing here uses the kernels.
"""

from .cluster import ExternalKafka, LocalKafka
from .jars import KAFKA_VERSION, FetchError, classpath, ensure_jars, java_executable
from .node import KafkaNode, KafkaStartError, run_tool, tool_command
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
    "tool_command",
]
