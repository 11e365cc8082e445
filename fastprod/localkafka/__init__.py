"""Fetch, configure, start and stop a real local Apache Kafka (tests, demo, benchmarks).

Standard library (plus the JDK and Maven it drives) and, in probe.py, fastprod.protocol's
generated pure-Python codecs for Metadata and CreateTopics; nothing here uses the kernels.
A secured broker (``LocalKafka(security=True)``, security.py) also needs the
``cryptography`` package for its certificates and tokens (imported only then).
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
    "SecureEndpoints",
    "SecurityOptions",
    "classpath",
    "ensure_jars",
    "java_executable",
    "run_tool",
    "tool_command",
]


def __getattr__(name: str) -> object:
    # The security names load security.py (http.server, certificates) only when used,
    # so the plain broker and the CLI import no more than before.
    if name in ("SecureEndpoints", "SecurityOptions"):
        from . import security

        return getattr(security, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
