"""confluent-kafka's Producer on fastprod: ``from fastprod.compat.confluent import Producer``.

What carries over: ``Producer(conf)`` with librdkafka's config names (mapped to Java's
below), ``produce(...)``, ``poll(timeout)`` running delivery callbacks as ``(err, msg)``
on the calling thread, ``flush(timeout)`` returning how many messages are still
queued, ``len(producer)``, ``list_topics``, ``produce_batch``, the transactional calls,
``BufferError`` when the queue is full, ``KafkaException`` wrapping a ``KafkaError``.

What differs, on purpose: the producer underneath is fastprod's, with the Java
producer's defaults (acks=all, idempotence on, linger.ms=5, buffer.memory 32 MiB) where
librdkafka's differ, and keyed records go where the Java producer puts them
(librdkafka's ``murmur2_random``; its default ``consistent_random`` uses CRC32 and is
refused). A produce() to a topic whose metadata is not known yet waits for it (up to
max.block.ms) instead of queueing. ``purge()`` is not provided.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastprod import errors as fp_errors
from fastprod.compat import buffer_would_block
from fastprod.engine.futures import RecordMetadata
from fastprod.errors import BufferFullError, ConfigError, KafkaTimeoutError
from fastprod.producer import Producer as _FastProducer

log = logging.getLogger("fastprod.compat.confluent")

__all__ = ["KafkaError", "KafkaException", "Message", "Producer", "TopicPartition",
           "TIMESTAMP_NOT_AVAILABLE", "TIMESTAMP_CREATE_TIME", "TIMESTAMP_LOG_APPEND_TIME",
           "translate_config"]

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2


# ---- errors ----------------------------------------------------------------------------


class KafkaError:
    """confluent-kafka's KafkaError shape: ``code()``, ``name()``, ``str()``,
    ``retriable()``, ``fatal()``, ``txn_requires_abort()``; ``exception()`` is the
    fastprod exception it stands for. Broker errors keep Kafka's code; client-side
    failures take librdkafka's negative codes."""

    # librdkafka's local codes for the failures fastprod raises itself
    _MSG_TIMED_OUT = -192
    _QUEUE_FULL = -184
    _MSG_SIZE_TOO_LARGE = -175  # librdkafka spells it so (MSG_SIZE_TOO_LARGE is 10)
    _TIMED_OUT = -185
    _STATE = -172
    _INVALID_ARG = -186
    _FATAL = -150
    _DESTROY = -197
    UNKNOWN = -1
    NO_ERROR = 0
    MSG_SIZE_TOO_LARGE = 10
    UNKNOWN_TOPIC_OR_PART = 3
    NOT_ENOUGH_REPLICAS = 19
    TOPIC_AUTHORIZATION_FAILED = 29
    INVALID_PRODUCER_EPOCH = 47

    def __init__(self, code: int, reason: str | None = None, fatal: bool = False,
                 retriable: bool = False, txn_requires_abort: bool = False,
                 exception: BaseException | None = None) -> None:
        self._code = code
        self._reason = reason if reason is not None else str(code)
        self._fatal = fatal
        self._retriable = retriable
        self._txn_requires_abort = txn_requires_abort
        self._exception = exception

    @classmethod
    def from_exception(cls, exc: BaseException) -> "KafkaError":
        if isinstance(exc, KafkaTimeoutError):  # a delivery or call that ran out of time
            code = cls._MSG_TIMED_OUT
        elif isinstance(exc, fp_errors.KafkaError) and exc.code is not None and exc.code >= 0:
            code = exc.code
        elif isinstance(exc, BufferFullError):
            code = cls._QUEUE_FULL
        elif isinstance(exc, fp_errors.RecordTooLargeError):
            code = cls._MSG_SIZE_TOO_LARGE
        elif isinstance(exc, fp_errors.IllegalStateError):
            code = cls._STATE
        else:
            code = cls.UNKNOWN
        fatal = isinstance(exc, (fp_errors.ProducerFencedError,
                                 fp_errors.TransactionalIdAuthorizationError))
        return cls(code, str(exc), fatal=fatal,
                   retriable=bool(getattr(exc, "retriable", False)),
                   txn_requires_abort=isinstance(exc, fp_errors.KafkaError) and not fatal,
                   exception=exc)

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        exc = self._exception
        if isinstance(exc, fp_errors.KafkaError) and exc.code == self._code:
            return exc.name
        for attr, value in vars(KafkaError).items():
            if value == self._code and type(value) is int and attr.lstrip("_").isupper():
                return attr
        return str(self._code)

    def str(self) -> str:
        return self._reason

    def fatal(self) -> bool:
        return self._fatal

    def retriable(self) -> bool:
        return self._retriable

    def txn_requires_abort(self) -> bool:
        return self._txn_requires_abort

    def exception(self) -> BaseException | None:
        return self._exception

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        return isinstance(other, int) and self._code == other

    def __hash__(self) -> int:
        return hash(self._code)

    def __str__(self) -> str:
        return self._reason

    def __repr__(self) -> str:
        return f"KafkaError{{code={self.name()},val={self._code},str=\"{self._reason}\"}}"


class KafkaException(Exception):
    """What confluent-kafka raises: ``args[0]`` is the KafkaError."""

    def __init__(self, error: KafkaError | str, *args: Any) -> None:
        if isinstance(error, str):
            error = KafkaError(KafkaError.UNKNOWN, error)
        super().__init__(error, *args)

    @property
    def error(self) -> KafkaError:
        return self.args[0]

    def __str__(self) -> str:
        return str(self.args[0])


def _raise_as_kafka_exception(exc: BaseException) -> None:
    raise KafkaException(KafkaError.from_exception(exc)) from exc


# ---- messages --------------------------------------------------------------------------


class Message:
    """The delivery report's message, as confluent-kafka's Message: methods, not fields."""

    __slots__ = ("_topic", "_partition", "_offset", "_key", "_value", "_headers",
                 "_timestamp", "_error", "_latency")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, headers: list[tuple[str, bytes | None]] | None,
                 timestamp: tuple[int, int], error: KafkaError | None,
                 latency: float | None) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._timestamp = timestamp
        self._error = error
        self._latency = latency

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        """(timestamp type, ms): TIMESTAMP_CREATE_TIME or TIMESTAMP_LOG_APPEND_TIME."""
        return self._timestamp

    def error(self) -> KafkaError | None:
        return self._error

    def latency(self) -> float | None:
        """Seconds from produce() to the delivery report."""
        return self._latency

    def __len__(self) -> int:
        return 0 if self._value is None else len(self._value)

    def __repr__(self) -> str:
        return (f"<Message {self._topic}-{self._partition}@{self._offset} "
                f"error={self._error!r}>")


class TopicPartition:
    """confluent-kafka's TopicPartition (for send_offsets_to_transaction)."""

    def __init__(self, topic: str, partition: int = -1, offset: int = -1001,
                 metadata: str | None = None) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
        self.error: KafkaError | None = None

    def __repr__(self) -> str:
        return f"TopicPartition{{topic={self.topic},partition={self.partition},offset={self.offset}}}"


# ---- list_topics -----------------------------------------------------------------------


class BrokerMetadata:
    def __init__(self, id: int, host: str, port: int) -> None:
        self.id, self.host, self.port = id, host, port

    def __repr__(self) -> str:
        return f"BrokerMetadata({self.id}, {self.host}:{self.port})"


class PartitionMetadata:
    def __init__(self, id: int, leader: int, replicas: list[int], isrs: list[int]) -> None:
        self.id, self.leader, self.replicas, self.isrs = id, leader, replicas, isrs
        self.error: KafkaError | None = None


class TopicMetadata:
    def __init__(self, topic: str, partitions: dict[int, PartitionMetadata],
                 error: KafkaError | None = None) -> None:
        self.topic, self.partitions, self.error = topic, partitions, error


class ClusterMetadata:
    def __init__(self, cluster_id: str | None, controller_id: int,
                 brokers: dict[int, BrokerMetadata], topics: dict[str, TopicMetadata]) -> None:
        self.cluster_id = cluster_id
        self.controller_id = controller_id
        self.brokers = brokers
        self.topics = topics
        self.orig_broker_id = -1
        self.orig_broker_name: str | None = None


# ---- configuration ---------------------------------------------------------------------

# librdkafka name -> Java name, same meaning and unit
_RENAMED = {
    "metadata.broker.list": "bootstrap.servers",
    "queue.buffering.max.ms": "linger.ms",
    "message.max.bytes": "max.request.size",
    "compression.codec": "compression.type",
    "message.timeout.ms": "delivery.timeout.ms",
    "request.required.acks": "acks",
    "message.send.max.retries": "retries",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "topic.metadata.refresh.interval.ms": "metadata.max.age.ms",
    "socket.send.buffer.bytes": "send.buffer.bytes",
    "socket.receive.buffer.bytes": "receive.buffer.bytes",
    "sasl.mechanisms": "sasl.mechanism",
}

# librdkafka settings with no Java equivalent: the closest Java key, and why
_NO_EQUIVALENT = {
    "batch.num.messages": ("batch.size", "Java batches by bytes, not by message count"),
    "queue.buffering.backpressure.threshold": (
        "max.in.flight.requests.per.connection", "Java has no backpressure threshold"),
    "sticky.partitioning.linger.ms": (
        "partitioner.class", "the Java built-in partitioner switches after batch.size "
        "bytes, not after a time"),
    "socket.timeout.ms": ("request.timeout.ms", "there is no separate socket timeout"),
    "enable.gapless.guarantee": ("enable.idempotence", "idempotence is always gapless"),
    "debug": ("the fastprod.* loggers", "configure them with the logging module"),
    "log_level": ("the fastprod.* loggers", "configure them with the logging module"),
    "logger": ("the fastprod.* loggers", "configure them with the logging module"),
    "throttle_cb": ("the produce-throttle-time-avg metric", "see Producer.metrics()"),
    "oauth_cb": ("sasl.jaas.config", "OAUTHBEARER is not supported"),
    "group.id": ("(none)", "group.id is a consumer setting"),
    "api.version.request": ("(none)", "ApiVersions is always used"),
    "broker.version.fallback": ("(none)", "ApiVersions is always used"),
    "ssl.ca.location": ("ssl.truststore.location", "TLS is not supported yet"),
    "ssl.certificate.location": ("ssl.keystore.location", "TLS is not supported yet"),
    "ssl.key.location": ("ssl.keystore.location", "TLS is not supported yet"),
}

_CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
_LOCAL = ("statistics.interval.ms", "queue.buffering.max.messages", "stats_cb",
          "error_cb", "on_delivery", "dr_msg_cb", "dr_cb", "delivery.report.only.error",
          "partitioner", "compression.level", "queue.buffering.max.kbytes")

QUEUE_MAX_MESSAGES = 100_000  # librdkafka's default queue.buffering.max.messages


def _refuse(key: str, closest: str, why: str, value: Any) -> ConfigError:
    return ConfigError(f"{key}={value!r} (librdkafka) has no equivalent in fastprod: "
                       f"{why}; the closest Java producer key is {closest}")


def translate_config(conf: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Java producer config, settings the compat layer keeps itself) for a
    librdkafka config. Keys librdkafka shares with Java pass through; ConfigError for
    one with no equivalent, naming the closest Java key."""
    if not isinstance(conf, Mapping):
        raise TypeError(f"conf must be a dict of librdkafka settings, not "
                        f"{type(conf).__name__}")
    flat = dict(conf)
    nested = flat.pop("default.topic.config", None)
    if nested is not None:
        flat = {**dict(nested), **flat}
    java: dict[str, Any] = {}
    local: dict[str, Any] = {}
    for key, value in flat.items():
        if key in _NO_EQUIVALENT:
            raise _refuse(key, *_NO_EQUIVALENT[key], value)
        if key in _LOCAL:
            local[key] = value
            continue
        name = _RENAMED.get(key, key)
        if name in java:
            raise ConfigError(f"{key} and another name for {name} are both set")
        java[name] = value
    if "acks" in java and isinstance(java["acks"], int):
        java["acks"] = "all" if java["acks"] == -1 else str(java["acks"])
    codec = java.get("compression.type")
    if codec is not None and codec not in _CODECS:
        raise ConfigError(f"compression.codec/compression.type={codec!r} is not one of "
                          f"{', '.join(_CODECS)} (librdkafka's 'inherit' has no Java "
                          f"equivalent; compression.type takes a codec)")
    kbytes = local.pop("queue.buffering.max.kbytes", None)
    if kbytes is not None:
        if type(kbytes) is not int or kbytes <= 0:
            raise ConfigError(f"queue.buffering.max.kbytes must be a positive int, not "
                              f"{kbytes!r} (it sets buffer.memory, in KiB)")
        java["buffer.memory"] = kbytes * 1024
    level = local.pop("compression.level", None)
    if level is not None:
        if codec in (None, "none", "snappy"):
            raise ConfigError(f"compression.level={level!r} needs compression.type gzip, "
                              f"lz4 or zstd (it maps to compression.<codec>.level), not "
                              f"{codec!r}")
        if not (type(level) is int and level >= 0):  # librdkafka's -1: the codec default
            if level != -1:
                raise ConfigError(f"compression.level must be an int, not {level!r}")
        else:
            java[f"compression.{codec}.level"] = level
    partitioner = local.pop("partitioner", None)
    if partitioner is not None and partitioner != "murmur2_random":
        raise ConfigError(
            f"partitioner={partitioner!r} (librdkafka) has no equivalent: fastprod places "
            f"keyed records as the Java producer does, which is librdkafka's "
            f"'murmur2_random'; use that, or a partitioner.class")
    max_messages = local.get("queue.buffering.max.messages", QUEUE_MAX_MESSAGES)
    if type(max_messages) is not int or max_messages <= 0:
        raise ConfigError(f"queue.buffering.max.messages must be a positive int, not "
                          f"{max_messages!r}")
    local["queue.buffering.max.messages"] = max_messages
    interval = local.get("statistics.interval.ms", 0)
    if type(interval) is not int or interval < 0:
        raise ConfigError(f"statistics.interval.ms must be a non-negative int, not "
                          f"{interval!r}")
    for name in ("stats_cb", "error_cb", "on_delivery", "dr_msg_cb", "dr_cb"):
        fn = local.get(name)
        if fn is not None and not callable(fn):
            raise ConfigError(f"{name} must be callable, not {type(fn).__name__}")
    return java, local


# ---- the producer ----------------------------------------------------------------------

DeliveryCallback = Callable[[KafkaError | None, Message], object]

_Report = tuple[Any, RecordMetadata | None, BaseException | None, str, int, Any, Any, Any,
                float]


def _as_bytes(item: Any, what: str) -> bytes | None:
    if item is None or type(item) is bytes:
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"{what} must be bytes, str or None (confluent-kafka's Producer takes "
                    f"no serializer), not {type(item).__name__}")


class Producer:
    """confluent-kafka's Producer, backed by fastprod's (``self.producer``)."""

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        java, local = translate_config({**dict(conf or {}), **kwargs})
        self._max_messages: int = local["queue.buffering.max.messages"]
        self._stats_interval = local.get("statistics.interval.ms", 0) / 1000.0
        self._stats_cb = local.get("stats_cb")
        self._error_cb = local.get("error_cb")
        self._default_cb = local.get("on_delivery") or local.get("dr_msg_cb") or local.get(
            "dr_cb")
        self._only_errors = str(local.get("delivery.report.only.error", False)).lower() in (
            "true", "1")
        self.producer = _FastProducer(java)
        self._reports: collections.deque[_Report] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._outstanding = 0  # produced, report not served by poll() yet (len())
        self._next_stats = time.monotonic() + self._stats_interval

    # ---- producing ------------------------------------------------------------------

    def produce(self, topic: str, value: Any = None, key: Any = None, partition: int = -1,
                on_delivery: DeliveryCallback | None = None,
                callback: DeliveryCallback | None = None, timestamp: int = 0,
                headers: Any = None) -> None:
        """Queue a message; its delivery report is served by a later poll() or flush().
        BufferError when queue.buffering.max.messages or buffer.memory is reached."""
        cb = on_delivery if on_delivery is not None else callback
        if cb is None:
            cb = self._default_cb
        elif not callable(cb):
            raise TypeError(f"on_delivery must be callable, not {type(cb).__name__}")
        value = _as_bytes(value, "value")
        key = _as_bytes(key, "key")
        if self._outstanding >= self._max_messages:
            raise BufferError(f"Local: Queue full ({self._outstanding} messages, "
                              f"queue.buffering.max.messages={self._max_messages})")
        if buffer_would_block(self.producer, value, key):
            raise BufferError("Local: Queue full (buffer.memory is used up by messages "
                              "not yet delivered: call poll() or flush())")
        if headers is not None:
            headers = [(k, _as_bytes(v, "header value")) for k, v in (
                headers.items() if isinstance(headers, Mapping) else headers)]
        started = time.monotonic()

        def delivered(metadata: RecordMetadata | None, error: BaseException | None) -> None:
            with self._ready:
                self._reports.append((cb, metadata, error, topic, partition, key, value,
                                      headers, started))
                self._ready.notify()

        try:
            self.producer.send(topic, value, key, None if partition == -1 else partition,
                               None if not timestamp else timestamp, headers, delivered)
        except BufferFullError as exc:  # another thread took the memory meanwhile
            raise BufferError(f"Local: Queue full ({exc})") from exc
        except (fp_errors.KafkaError, fp_errors.IllegalStateError) as exc:
            _raise_as_kafka_exception(exc)
        with self._ready:
            self._outstanding += 1

    def produce_batch(self, topic: str, messages: Sequence[dict[str, Any]],
                      partition: int = -1, timestamp: int = 0,
                      on_delivery: DeliveryCallback | None = None,
                      callback: DeliveryCallback | None = None) -> int:
        """Each message a dict (value, key, partition, timestamp, headers, callback);
        returns how many were queued; the others get an ``_error`` KafkaError."""
        queued = 0
        for m in messages:
            try:
                self.produce(topic, m.get("value"), m.get("key"),
                             m.get("partition", partition),
                             m.get("callback") or on_delivery or callback,
                             None, m.get("timestamp", timestamp), m.get("headers"))
                queued += 1
            except BufferError as exc:
                m["_error"] = KafkaError(KafkaError._QUEUE_FULL, str(exc))
            except KafkaException as exc:
                m["_error"] = exc.args[0]
        return queued

    # ---- reports --------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> int:
        """Serve delivery reports (callbacks as ``(err, msg)`` on this thread), waiting
        up to ``timeout`` seconds (None or -1: until one arrives) for the first; also
        stats_cb when statistics.interval.ms is due. Returns how many were served."""
        if timeout is not None and timeout < 0:
            timeout = None
        with self._ready:
            if not self._reports and timeout != 0:
                self._ready.wait_for(lambda: self._reports, timeout)
            reports = list(self._reports)
            self._reports.clear()
        for report in reports:
            self._serve(report)
        with self._ready:
            self._outstanding -= len(reports)
        self._maybe_stats()
        return len(reports)

    def _serve(self, report: _Report) -> None:
        cb, metadata, error, topic, partition, key, value, headers, started = report
        kerr = None if error is None else KafkaError.from_exception(error)
        if kerr is not None and kerr.fatal() and self._error_cb is not None:
            self._error_cb(kerr)
        if cb is None or (self._only_errors and kerr is None):
            return
        if metadata is not None:
            msg = Message(metadata.topic, metadata.partition, metadata.offset, key, value,
                          headers, (TIMESTAMP_CREATE_TIME, metadata.timestamp), None,
                          time.monotonic() - started)
        else:
            msg = Message(topic, partition, -1001, key, value, headers,
                          (TIMESTAMP_NOT_AVAILABLE, -1), kerr, time.monotonic() - started)
        cb(kerr, msg)

    def _maybe_stats(self) -> None:
        if self._stats_cb is None or not self._stats_interval:
            return
        now = time.monotonic()
        if now < self._next_stats:
            return
        self._next_stats = now + self._stats_interval
        self._stats_cb(json.dumps(self.stats()))

    def stats(self) -> dict[str, Any]:
        """What stats_cb receives (as JSON): librdkafka's top-level counters that map
        onto fastprod's metrics, and every metric under ``"fastprod"`` by
        ``group:name[:tags]``."""
        totals: dict[str, float] = collections.defaultdict(float)
        every: dict[str, float] = {}
        for name, metric in self.producer.metrics().items():
            value = metric.value()
            tags = ",".join(f"{k}={v}" for k, v in sorted(name.tags.items())
                            if k != "client-id")
            every[f"{name.group}:{name.name}" + (f":{tags}" if tags else "")] = value
            if name.group in ("producer-metrics", "producer-topic-metrics"):
                totals[f"{name.group}:{name.name}"] += value
        return {
            "name": self.producer.client_id, "client_id": self.producer.client_id,
            "type": "producer", "ts": time.monotonic_ns() // 1000, "time": int(time.time()),
            "msg_cnt": len(self), "msg_max": self._max_messages,
            "tx": int(totals["producer-metrics:request-total"]),
            "tx_bytes": int(totals["producer-metrics:outgoing-byte-total"]),
            "rx": int(totals["producer-metrics:response-total"]),
            "rx_bytes": int(totals["producer-metrics:incoming-byte-total"]),
            "txmsgs": int(totals["producer-topic-metrics:record-send-total"]),
            "txmsg_bytes": int(totals["producer-topic-metrics:byte-total"]),
            "fastprod": every,
        }

    def flush(self, timeout: float | None = None) -> int:
        """Send everything now, wait for it and serve its reports; returns how many
        messages are still queued (0 unless ``timeout`` seconds passed first)."""
        if timeout is not None and timeout < 0:
            timeout = None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self.producer.flush(timeout)
        except KafkaTimeoutError:
            pass
        while True:
            self.poll(0)
            if len(self) == 0:
                return 0
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return len(self)
            self.poll(0.1 if left is None else min(left, 0.1))

    def __len__(self) -> int:
        return self._outstanding

    def __bool__(self) -> bool:  # len() 0 must not make the producer falsy
        return True

    def list_topics(self, topic: str | None = None,
                    timeout: float = -1) -> ClusterMetadata:
        """The cluster's brokers and topics (as known; with ``topic``, that topic's
        metadata is fetched first)."""
        if topic is not None:
            try:
                self.producer.partitions_for(topic)
            except fp_errors.KafkaError as exc:
                _raise_as_kafka_exception(exc)
        snapshot = self.producer._metadata.snapshot
        brokers = {n.node_id: BrokerMetadata(n.node_id, n.host, n.port)
                   for n in snapshot.nodes.values()}
        names = [topic] if topic is not None else list(snapshot.topics)
        topics = {}
        for name in names:
            parts = {p.partition: PartitionMetadata(p.partition, p.leader, list(p.replicas),
                                                    list(p.isr))
                     for p in snapshot.topics.get(name, ())}
            topics[name] = TopicMetadata(name, parts)
        return ClusterMetadata(snapshot.cluster_id, snapshot.controller_id, brokers, topics)

    # ---- transactions ---------------------------------------------------------------

    def _txn(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except (fp_errors.KafkaError, fp_errors.IllegalStateError) as exc:
            _raise_as_kafka_exception(exc)

    def init_transactions(self, timeout: float | None = None) -> None:
        self._txn(self.producer.init_transactions, _seconds(timeout))

    def begin_transaction(self) -> None:
        self._txn(self.producer.begin_transaction)

    def send_offsets_to_transaction(self, positions: Sequence[Any], group_metadata: Any,
                                    timeout: float | None = None) -> None:
        offsets = {(tp.topic, tp.partition): tp.offset for tp in positions}
        self._txn(self.producer.send_offsets_to_transaction, offsets, group_metadata,
                  _seconds(timeout))

    def commit_transaction(self, timeout: float | None = None) -> None:
        self._txn(self.producer.commit_transaction, _seconds(timeout))
        self.poll(0)  # the transaction's reports, as librdkafka serves them by now

    def abort_transaction(self, timeout: float | None = None) -> None:
        self._txn(self.producer.abort_transaction, _seconds(timeout))
        self.poll(0)

    def close(self, timeout: float | None = None) -> None:
        """Not in confluent-kafka (it closes on garbage collection): flush, then close."""
        self.flush(timeout)
        self.producer.close(timeout)


def _seconds(timeout: float | None) -> float | None:
    return None if timeout is None or timeout < 0 else timeout
