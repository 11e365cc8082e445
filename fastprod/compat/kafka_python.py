"""kafka-python's KafkaProducer on fastprod:
``from fastprod.compat.kafka_python import KafkaProducer``.

``KafkaProducer(**configs)`` takes kafka-python's keyword names (mapped to Java's
below); ``send(topic, value=None, key=None, headers=None, partition=None,
timestamp_ms=None)`` returns a FutureRecordMetadata with ``get(timeout)``,
``add_callback``, ``add_errback``, ``succeeded()``, ``failed()``; ``flush``, ``close``,
``metrics()`` (kafka-python's ``{group: {name: value}}``), ``partitions_for`` (a set of
partition ids). Serializers are called as kafka-python calls them (also on None).

What differs, on purpose: the Java producer's defaults apply where kafka-python's
differ (acks=all, enable.idempotence=true, linger.ms=5); errors are fastprod's
exceptions (``fastprod.errors``: KafkaTimeoutError, BufferFullError, ...), not
``kafka.errors``; callbacks run on the sender thread, as in kafka-python.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from fastprod.cluster.snapshot import TopicPartition
from fastprod.engine.futures import RecordFuture
from fastprod.errors import ConfigError, KafkaTimeoutError
from fastprod.producer import Producer

log = logging.getLogger("fastprod.compat.kafka_python")

__all__ = ["FutureRecordMetadata", "KafkaProducer", "RecordMetadata", "translate_config"]

# kafka-python keyword -> Java config name (same meaning and unit)
_RENAMED = {
    "bootstrap_servers": "bootstrap.servers",
    "client_id": "client.id",
    "acks": "acks",
    "compression_type": "compression.type",
    "retries": "retries",
    "batch_size": "batch.size",
    "linger_ms": "linger.ms",
    "buffer_memory": "buffer.memory",
    "connections_max_idle_ms": "connections.max.idle.ms",
    "max_block_ms": "max.block.ms",
    "max_request_size": "max.request.size",
    "metadata_max_age_ms": "metadata.max.age.ms",
    "retry_backoff_ms": "retry.backoff.ms",
    "retry_backoff_max_ms": "retry.backoff.max.ms",
    "request_timeout_ms": "request.timeout.ms",
    "receive_buffer_bytes": "receive.buffer.bytes",
    "send_buffer_bytes": "send.buffer.bytes",
    "reconnect_backoff_ms": "reconnect.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "max_in_flight_requests_per_connection": "max.in.flight.requests.per.connection",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "enable_idempotence": "enable.idempotence",
    "delivery_timeout_ms": "delivery.timeout.ms",
    "transactional_id": "transactional.id",
    "transaction_timeout_ms": "transaction.timeout.ms",
    "metrics_num_samples": "metrics.num.samples",
    "metrics_sample_window_ms": "metrics.sample.window.ms",
    "client_dns_lookup": "client.dns.lookup",
}

# kafka-python keywords with no equivalent: (closest Java key, why)
_NO_EQUIVALENT = {
    "partitioner": ("partitioner.class", "kafka-python's partitioner is called as "
                    "(key_bytes, all_partitions, available); fastprod's default already "
                    "places keys as Java (and kafka-python's default) do; give a "
                    "partitioner.class for anything else"),
    "api_version": ("(none)", "the versions are always negotiated with ApiVersions"),
    "api_version_auto_timeout_ms": ("(none)", "the versions are always negotiated"),
    "allow_auto_create_topics": ("(none)", "whether a topic is created on first use is "
                                 "the broker's auto.create.topics.enable"),
    "selector": ("(none)", "fastprod has its own network client"),
    "socket_options": ("send.buffer.bytes / receive.buffer.bytes", "no raw socket options"),
    "sock_chunk_bytes": ("(none)", "no raw socket options"),
    "sock_chunk_buffer_count": ("(none)", "no raw socket options"),
    "metric_group_prefix": ("(none)", "metric groups are Java's"),
    "metrics_enabled": ("(none)", "metrics are always kept (they are cheap)"),
    "metric_reporters": ("metric.reporters", "kafka-python reporters are classes of its "
                         "own"),
    "kafka_client": ("(none)", "fastprod has its own network client"),
    "wakeup_timeout_ms": ("(none)", "no such wait"),
    "bootstrap_topics_filter": ("(none)", "metadata is fetched for topics in use"),
    "ssl_context": ("ssl.*", "TLS is not supported yet"),
    "ssl_check_hostname": ("ssl.endpoint.identification.algorithm", "TLS is not supported yet"),
    "ssl_cafile": ("ssl.truststore.location", "TLS is not supported yet"),
    "ssl_certfile": ("ssl.keystore.location", "TLS is not supported yet"),
    "ssl_keyfile": ("ssl.keystore.location", "TLS is not supported yet"),
    "ssl_password": ("ssl.key.password", "TLS is not supported yet"),
    "ssl_crlfile": ("ssl.*", "TLS is not supported yet"),
    "ssl_ciphers": ("ssl.cipher.suites", "TLS is not supported yet"),
    "sasl_kerberos_service_name": ("sasl.kerberos.service.name", "GSSAPI is not supported"),
    "sasl_kerberos_domain_name": ("sasl.kerberos.service.name", "GSSAPI is not supported"),
    "sasl_oauth_token_provider": ("sasl.jaas.config", "OAUTHBEARER is not supported"),
}

_LOCAL = ("key_serializer", "value_serializer")


def translate_config(configs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Java producer config, what the compat layer keeps: the serializers) for
    kafka-python keywords; ConfigError for an unknown one or one with no equivalent."""
    java: dict[str, Any] = {}
    local: dict[str, Any] = {}
    for key, value in configs.items():
        if key in _NO_EQUIVALENT:
            closest, why = _NO_EQUIVALENT[key]
            raise ConfigError(f"{key}={value!r} (kafka-python) has no equivalent in "
                              f"fastprod: {why}; the closest Java producer key is {closest}")
        if key in _LOCAL:
            if value is not None and not callable(value) and not callable(
                    getattr(value, "serialize", None)):
                raise ConfigError(f"{key} must be a callable (value) -> bytes or a "
                                  f"Serializer, not {type(value).__name__}")
            local[key] = value
            continue
        name = _RENAMED.get(key)
        if name is None:
            import difflib
            close = difflib.get_close_matches(key, [*_RENAMED, *_LOCAL], n=3)
            raise ConfigError(f"unknown kafka-python config {key!r}"
                              + (f"; did you mean {', '.join(close)}?" if close else ""))
        java[name] = value
    servers = java.get("bootstrap.servers")
    if isinstance(servers, (list, tuple)):
        java["bootstrap.servers"] = ",".join(servers)
    acks = java.get("acks")
    if isinstance(acks, int):
        java["acks"] = "all" if acks == -1 else str(acks)
    if "compression.type" in java and java["compression.type"] is None:
        java["compression.type"] = "none"
    return java, local


class RecordMetadata(NamedTuple):
    """kafka-python's RecordMetadata fields."""

    topic: str
    partition: int
    topic_partition: TopicPartition
    offset: int
    timestamp: int
    checksum: None
    serialized_key_size: int
    serialized_value_size: int
    serialized_header_size: int


class FutureRecordMetadata:
    """kafka-python's future of a send(): ``get(timeout)``, ``add_callback``,
    ``add_errback``, ``succeeded()``, ``failed()``, ``is_done``, ``value``,
    ``exception``. Callbacks run on the sender thread (or at once if done)."""

    def __init__(self, future: RecordFuture, header_size: int) -> None:
        self._future = future
        self._header_size = header_size

    def _metadata(self) -> RecordMetadata:
        m = self._future.metadata()
        return RecordMetadata(m.topic, m.partition, TopicPartition(m.topic, m.partition),
                              m.offset, m.timestamp, None, m.serialized_key_size,
                              m.serialized_value_size, self._header_size)

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """The RecordMetadata; raises the delivery error, or KafkaTimeoutError."""
        error = self._future.exception(timeout)
        if error is not None:
            raise error
        return self._metadata()

    @property
    def is_done(self) -> bool:
        return self._future.done()

    def succeeded(self) -> bool:
        return self._future.done() and self._future.error() is None

    def failed(self) -> bool:
        return self._future.done() and self._future.error() is not None

    @property
    def value(self) -> RecordMetadata | None:
        return self._metadata() if self.succeeded() else None

    @property
    def exception(self) -> BaseException | None:
        return self._future.error() if self._future.done() else None

    def add_callback(self, f: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> "FutureRecordMetadata":
        """``f(*args, record_metadata, **kwargs)`` once delivered."""
        def run(_: RecordFuture) -> None:
            if self._future.error() is None:
                f(*args, self._metadata(), **kwargs)
        self._future.add_done_callback(run)
        return self

    def add_errback(self, f: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> "FutureRecordMetadata":
        """``f(*args, exception, **kwargs)`` if the send failed."""
        def run(_: RecordFuture) -> None:
            error = self._future.error()
            if error is not None:
                f(*args, error, **kwargs)
        self._future.add_done_callback(run)
        return self

    def add_both(self, f: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> "FutureRecordMetadata":
        self.add_callback(f, *args, **kwargs)
        return self.add_errback(f, *args, **kwargs)


def _serialize(serializer: Any, topic: str, data: Any) -> Any:
    # as kafka-python: a Serializer's serialize(topic, data), else f(data), None included
    if serializer is None:
        return data
    method = getattr(serializer, "serialize", None)
    if method is not None:
        return method(topic, data)
    return serializer(data)


class KafkaProducer:
    """kafka-python's KafkaProducer, backed by fastprod's Producer (``self.producer``)."""

    def __init__(self, **configs: Any) -> None:
        java, local = translate_config(configs)
        self._key_serializer = local.get("key_serializer")
        self._value_serializer = local.get("value_serializer")
        self.config = configs
        self.producer = Producer(java)

    def send(self, topic: str, value: Any = None, key: Any = None, headers: Any = None,
             partition: int | None = None,
             timestamp_ms: int | None = None) -> FutureRecordMetadata:
        if value is None and key is None:
            raise ValueError("need at least one of key or value (kafka-python's rule)")
        key_bytes = _serialize(self._key_serializer, topic, key)
        value_bytes = _serialize(self._value_serializer, topic, value)
        header_size = -1
        if headers:
            header_size = sum(len(k.encode("utf-8")) + (0 if v is None else len(v))
                              for k, v in headers)
        future = self.producer.send(topic, value_bytes, key_bytes, partition, timestamp_ms,
                                    headers)
        return FutureRecordMetadata(future, header_size)

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued and wait (KafkaTimeoutError after ``timeout`` s)."""
        self.producer.flush(timeout)

    def close(self, timeout: float | None = None, null_logger: bool = False) -> None:
        self.producer.close(timeout)

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids, waiting up to max.block.ms for its metadata."""
        return {p.partition for p in self.producer.partitions_for(topic)}

    def metrics(self, raw: bool = False) -> dict[str, dict[str, Any]]:
        """kafka-python's shape: ``{group: {name: value}}`` (tags dropped, so a metric
        per node or topic appears once, as in kafka-python; ``raw=True`` gives the
        KafkaMetric objects)."""
        out: dict[str, dict[str, Any]] = collections.defaultdict(dict)
        for name, metric in self.producer.metrics().items():
            out[name.group][name.name] = metric if raw else metric.value()
        return dict(out)

    # ---- transactions, as kafka-python 2.1+ ------------------------------------------

    def init_transactions(self) -> None:
        self.producer.init_transactions()

    def begin_transaction(self) -> None:
        self.producer.begin_transaction()

    def send_offsets_to_transaction(self, offsets: Any, consumer_group_id: Any) -> None:
        self.producer.send_offsets_to_transaction(offsets, consumer_group_id)

    def commit_transaction(self) -> None:
        self.producer.commit_transaction()

    def abort_transaction(self) -> None:
        self.producer.abort_transaction()

    def __enter__(self) -> "KafkaProducer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ += ["KafkaTimeoutError"]
