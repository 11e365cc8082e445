"""Producer: the engine in-process, the caller's thread plus one sender thread.

``send()`` serializes, partitions and appends to the accumulator in the caller's thread
and returns a RecordFuture at once; the sender thread (``fastprod-sender``) batches,
compresses, sends, retries and completes the futures.

Callbacks: ``on_delivery(metadata, error)`` and ``RecordFuture.add_done_callback``
run on the sender thread, as in the Java client; keep them short, and do not call
``flush()`` or ``close()`` from one (``close()`` there does not wait).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastprod.clock import monotonic_ms, wall_ms
from fastprod.cluster.snapshot import ClusterSnapshot, PartitionInfo
from fastprod.config import ProducerConfig
from fastprod.engine.accumulator import UNKNOWN_PARTITION, record_size_upper_bound
from fastprod.engine.build import build_engine, build_metadata
from fastprod._ext.accumulate import SendFastPath
from fastprod.engine.futures import (
    BatchFuture,
    DeliveryCallback,
    RecordFuture,
    RecordMetadata,
    failed_future,
)
from fastprod.engine.transaction_manager import TransactionManager
from fastprod.engine.transactions import ConsumerGroupMetadata
from fastprod.kernels import max_bytes_len, split_by_key_partition
from fastprod.errors import (
    IllegalStateError,
    KafkaTimeoutError,
    ProducerClosedError,
    RecordTooLargeError,
)
from fastprod.interceptors import Interceptors, ProducerRecord
from fastprod.partitioners import (
    PartitionerConfig,
    record_partition,
    resolve_partitioner,
    uses_on_new_batch,
)
from fastprod.serializers import is_bytes_passthrough, resolve_serializer

log = logging.getLogger("fastprod")

Headers = Sequence[tuple[str, "bytes | None"]] | Mapping[str, "bytes | None"]

# Producers not closed yet. The sender is a daemon thread (a forgotten producer must not
# keep the interpreter alive), so at exit each one is closed here: what was accepted is
# delivered or fails within delivery.timeout.ms instead of vanishing with the thread.
_live_producers: "weakref.WeakSet[Producer]" = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for producer in list(_live_producers):
        producer.close(producer.config.delivery_timeout_ms / 1000.0)


class Producer:
    """A Kafka producer with the Java client's behaviour.

    ``Producer({"bootstrap.servers": "localhost:9092", "linger.ms": 10})`` or
    ``Producer(bootstrap_servers="localhost:9092", linger_ms=10)``; every key is a Java
    producer config name (see ``fastprod.config``).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        cfg = self.config = ProducerConfig(config, **kwargs)
        self.client_id = cfg.client_id  # "producer-N" unless set, as in Java
        self._key_serializer = resolve_serializer(cfg.key_serializer, is_key=True)
        self._value_serializer = resolve_serializer(cfg.value_serializer, is_key=False)
        self._key_passthrough = is_bytes_passthrough(self._key_serializer)
        self._value_passthrough = is_bytes_passthrough(self._value_serializer)
        self._partitioner = resolve_partitioner(cfg.partitioner_class, cfg.as_dict())
        self._abort_on_new_batch = uses_on_new_batch(self._partitioner)
        self._interceptors = Interceptors.from_config(cfg.resolve("interceptor.classes"),
                                                      cfg.as_dict())
        self._partitioner_config = PartitionerConfig.from_config(cfg)
        self._max_block_ms = cfg.max_block_ms
        self._max_request_size = cfg.max_request_size
        self._buffer_memory = cfg.buffer_memory

        engine = self._engine = build_engine(cfg, build_metadata(cfg))
        self._metadata = engine.metadata
        self._transaction_manager = engine.transaction_manager
        self._accumulator = engine.accumulator
        self._client = engine.client
        self._sender = engine.sender
        batch_size = engine.batch_size
        # send() is the C fast path; it hands anything unusual to _send below.
        self._fast_path = SendFastPath(
            self._accumulator.lock, self._accumulator.topics, self._metadata.snapshot, self._send,
            key_passthrough=self._key_passthrough, value_passthrough=self._value_passthrough,
            partitioner_builtin=self._partitioner is None,
            ignore_keys=self._partitioner_config.ignore_keys, sticky_batch_size=batch_size)
        self._metadata.listeners.append(self._fast_path.set_snapshot)
        # Interceptors see every record, and a transaction adds each new partition: both
        # take the Python path.
        if self._interceptors is None and cfg.transactional_id is None:
            self.send = self._fast_path.send  # type: ignore[method-assign]
        self._closed = False
        self._close_lock = threading.Lock()
        engine.start(f"fastprod-sender-{self.client_id}")
        self._thread = engine.thread
        _live_producers.add(self)
        log.info("producer %s started (bootstrap %s)", self.client_id,
                 ",".join(cfg.bootstrap_servers))

    # ---- sending ----------------------------------------------------------------------

    def send(self, topic: str, value: Any = None, key: Any = None,
             partition: int | None = None, timestamp: int | None = None,
             headers: Headers | None = None,
             on_delivery: DeliveryCallback | None = None) -> RecordFuture:
        """Queue one record; returns its future at once (blocking only while metadata
        is unknown or the buffer is full, up to max.block.ms).

        ``on_delivery(metadata, error)`` runs on the sender thread once the record is
        written (metadata set) or has failed (error set).
        """
        return self._send(topic, value, key, partition, timestamp, headers, on_delivery)

    def _send(self, topic: str, value: Any, key: Any, partition: int | None,
              timestamp: int | None, headers: Headers | None,
              on_delivery: DeliveryCallback | None) -> RecordFuture:
        """The whole of send(): the reference path, and the fast path's fallback."""
        if self._closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        if self._interceptors is not None:
            record = self._interceptors.on_send(
                ProducerRecord(topic, value, key, partition, timestamp, headers))
            topic, value, key, partition, timestamp, headers = record
            on_delivery = self._interceptors.wrap_callback(on_delivery)
        if type(topic) is not str or not topic:
            raise TypeError(f"topic must be a non-empty str, not {topic!r}")
        if partition is not None and (type(partition) is not int or partition < 0):
            raise ValueError(f"partition must be a non-negative int, not {partition!r}")
        key_bytes = key if key is None or (self._key_passthrough and type(key) is bytes) \
            else self._key_serializer(key)
        value_bytes = value if value is None or (
            self._value_passthrough and type(value) is bytes) else self._value_serializer(value)
        if headers is not None:
            headers = _check_headers(headers)
        if timestamp is None:
            timestamp = wall_ms()
        elif type(timestamp) is not int or timestamp < 0:
            raise ValueError(f"timestamp must be a non-negative int (ms), not {timestamp!r}")

        now_ms = monotonic_ms()
        snapshot = self._metadata.snapshot
        parts = snapshot.topics.get(topic)
        if parts is None or (partition is not None and partition >= len(parts)):
            snapshot = self._wait_on_metadata(topic, partition, now_ms)
            remaining_ms = max(self._max_block_ms - (monotonic_ms() - now_ms), 0)
        else:
            self._metadata.touch(topic, now_ms)
            remaining_ms = self._max_block_ms
        p = record_partition(topic, partition, key, key_bytes, value, value_bytes, snapshot,
                             self._partitioner, self._partitioner_config.ignore_keys)

        size = record_size_upper_bound(key_bytes, value_bytes, headers)
        if size > self._max_request_size or size > self._buffer_memory:
            which = ("max.request.size" if size > self._max_request_size else "buffer.memory")
            limit = min(self._max_request_size, self._buffer_memory)
            return _failed(topic, p, RecordTooLargeError(
                f"the record is {size} bytes when serialized, which is larger than {limit}, "
                f"the value of {which}"), on_delivery)
        tm = self._transaction_manager
        if tm is not None and tm.is_transactional:
            tm.check_ready_for_send()
        abort = self._abort_on_new_batch and partition is None
        result = self._accumulator.append(topic, p, timestamp, key_bytes, value_bytes, headers,
                                          on_delivery, remaining_ms, now_ms, snapshot,
                                          abort_on_new_batch=abort)
        if result.abort_for_new_batch:
            # A 3.x-style partitioner (UniformSticky) picks a new partition for a new batch.
            self._partitioner.on_new_batch(topic, snapshot, p)
            p = record_partition(topic, None, key, key_bytes, value, value_bytes, snapshot,
                                 self._partitioner, self._partitioner_config.ignore_keys)
            result = self._accumulator.append(topic, p, timestamp, key_bytes, value_bytes,
                                              headers, on_delivery, remaining_ms, now_ms,
                                              snapshot)
        if tm is not None and tm.is_transactional:
            # After the append: only now is the sticky partition known (Java does the same).
            tm.maybe_add_partition((topic, result.partition))
        if result.batch_is_full or result.new_batch_created:
            self._sender.wakeup()
        return result.future

    def send_batch(self, topic: str, values: Sequence[Any], keys: Sequence[Any] | None = None,
                   partition: int | None = None, timestamp: int | None = None,
                   on_delivery: DeliveryCallback | None = None) -> BatchFuture:
        """Queue many records at once: the fast path. One timestamp (default: now) and
        no headers for all of them; ``keys`` is None or one key per value. Returns one
        BatchFuture whose ``result()`` is the RecordMetadata of every record in input
        order. Keyed records go where the Java producer would put them, unkeyed ones to
        the sticky partition. ``on_delivery`` is called once per record.

        Every value and key is serialized before any is queued, so a bad one raises
        here with nothing sent.
        """
        if self._closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        if self._interceptors is not None:
            raise IllegalStateError("send_batch() does not run interceptor.classes; use "
                                    "send() for each record when interceptors are configured")
        if type(topic) is not str or not topic:
            raise TypeError(f"topic must be a non-empty str, not {topic!r}")
        values = self._serialize_all(values, self._value_serializer, self._value_passthrough)
        if keys is not None:
            keys = self._serialize_all(keys, self._key_serializer, self._key_passthrough)
            if len(keys) != len(values):
                raise ValueError(f"send_batch got {len(keys)} keys for {len(values)} values")
        if timestamp is None:
            timestamp = wall_ms()
        elif type(timestamp) is not int or timestamp < 0:
            raise ValueError(f"timestamp must be a non-negative int (ms), not {timestamp!r}")
        if partition is not None and (type(partition) is not int or partition < 0):
            raise ValueError(f"partition must be a non-negative int, not {partition!r}")
        longest = max_bytes_len(values) + (0 if keys is None else max(max_bytes_len(keys), 0))
        if longest + record_size_upper_bound(None, None, None) > min(self._max_request_size,
                                                                     self._buffer_memory):
            sizes = [len(v or b"") + (0 if keys is None else len(keys[i] or b""))
                     for i, v in enumerate(values)]
            i = max(range(len(sizes)), key=sizes.__getitem__)
            raise RecordTooLargeError(
                f"record {i} of the batch is {sizes[i]} bytes (key and value), larger than "
                f"max.request.size ({self._max_request_size}) or buffer.memory allows")
        future = BatchFuture(topic, keys, values, timestamp, on_delivery)
        if not values:
            future.seal()
            return future

        now_ms = monotonic_ms()
        snapshot = self._metadata.snapshot
        parts = snapshot.topics.get(topic)
        if parts is None or (partition is not None and partition >= len(parts)):
            snapshot = self._wait_on_metadata(topic, partition, now_ms)
            parts = snapshot.topics[topic]
        else:
            self._metadata.touch(topic, now_ms)
        remaining_ms = max(self._max_block_ms - (monotonic_ms() - now_ms), 0)

        if partition is not None:
            groups = {partition: (range(len(values)), keys, values)}
        elif self._partitioner is not None:
            groups = self._group_with_partitioner(topic, keys, values, snapshot)
        elif keys is not None and not self._partitioner_config.ignore_keys:
            groups = split_by_key_partition(keys, values, len(parts))
        else:
            groups = {UNKNOWN_PARTITION: (range(len(values)), keys, values)}

        tm = self._transaction_manager
        transactional = tm is not None and tm.is_transactional
        if transactional:
            tm.check_ready_for_send()
        partitions_used: set[int] = set()
        wake = False
        try:
            for p, (indices, group_keys, group_values) in groups.items():
                def on_segment(batch, first, start, count, indices=indices):
                    future.add_segment(batch.result, first, indices[start:start + count])
                    if batch.hooks is None:
                        batch.hooks = []
                    batch.hooks.append(future.segment_done)
                    partitions_used.add(batch.partition)

                wake |= self._accumulator.append_many(
                    topic, p, timestamp, group_keys, group_values, remaining_ms, now_ms,
                    snapshot, on_segment)
        except BaseException as exc:
            future.fail(exc)
            raise
        finally:
            if transactional:
                for p in partitions_used:
                    tm.maybe_add_partition((topic, p))
            future.seal()
            if wake:
                self._sender.wakeup()
        return future

    def _serialize_all(self, items: Sequence[Any], serializer, passthrough: bool) -> list:
        if type(items) is not list and type(items) is not tuple:
            items = list(items)
        if passthrough and max_bytes_len(items) != -2:
            return items
        return [item if item is None or (passthrough and type(item) is bytes)
                else serializer(item) for item in items]

    def _group_with_partitioner(self, topic, keys, values, snapshot):
        groups: dict[int, tuple[list[int], list | None, list]] = {}
        for i, value in enumerate(values):
            key = None if keys is None else keys[i]
            p = record_partition(topic, None, key, key, value, value, snapshot,
                                 self._partitioner)
            group = groups.get(p)
            if group is None:
                group = groups[p] = ([], None if keys is None else [], [])
            group[0].append(i)
            if keys is not None:
                group[1].append(key)
            group[2].append(value)
        return groups

    def _wait_on_metadata(self, topic: str, partition: int | None,
                          now_ms: int) -> ClusterSnapshot:
        """Java's waitOnMetadata: block until the topic (and partition) is known."""
        self._metadata.add_topic(topic, now_ms)
        snapshot = self._metadata.await_topic(topic, self._max_block_ms, self._sender.wakeup)
        if partition is not None:
            deadline = now_ms + self._max_block_ms
            while partition >= len(snapshot.topics[topic]):
                left = deadline - monotonic_ms()
                if left <= 0:
                    raise KafkaTimeoutError(
                        f"partition {partition} of topic {topic!r} with partition count "
                        f"{len(snapshot.topics[topic])} is not present in metadata after "
                        f"{self._max_block_ms} ms")
                self._metadata.request_update()
                snapshot = self._metadata.await_topic(topic, left, self._sender.wakeup)
                if partition >= len(snapshot.topics[topic]):
                    _sleep_ms(min(left, 100))
        return snapshot

    # ---- flush, close, metadata ------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued now and wait until every record sent before this call
        is delivered or failed. KafkaTimeoutError if ``timeout`` seconds pass first."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("flush() cannot be called from a delivery callback")
        self._accumulator.begin_flush()
        self._sender.wakeup()
        try:
            if not self._accumulator.await_flush_completion(timeout):
                raise KafkaTimeoutError(f"flush() did not complete within {timeout} s")
        finally:
            self._accumulator.end_flush()

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, then stop. After ``timeout`` seconds (None: no limit)
        whatever is still pending fails with ProducerClosedError, so no future is left
        unresolved. Safe to call more than once."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._fast_path.closed = True
                log.info("closing producer %s", self.client_id)
        if threading.current_thread() is self._thread:
            log.warning("close() called from a callback: not waiting for pending records")
            self._sender.force_close()
            return
        if timeout is not None and timeout <= 0:
            self._sender.force_close()
        else:
            self._sender.initiate_close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._sender.force_close()
            self._thread.join()
        _live_producers.discard(self)
        if self._interceptors is not None:
            self._interceptors.close()
        if self._partitioner is not None and hasattr(self._partitioner, "close"):
            self._partitioner.close()

    # ---- transactions ---------------------------------------------------------------

    def init_transactions(self, timeout: float | None = None) -> None:
        """Register transactional.id with its coordinator: fences any older producer
        with the same id and aborts its open transaction. Call once, first.
        KafkaTimeoutError after ``timeout`` seconds (default max.block.ms); calling it
        again keeps waiting for the same request."""
        self._txn_call(self._txn().initialize(), timeout)

    def begin_transaction(self) -> None:
        """Start a transaction: records sent from now on commit or abort together."""
        self._txn().begin()

    def send_offsets_to_transaction(self, offsets: Mapping[Any, Any], group_metadata: Any,
                                    timeout: float | None = None) -> None:
        """Commit consumer offsets as part of the transaction (consume-transform-produce).

        ``offsets`` maps TopicPartition or (topic, partition) to the next offset to read
        (an int, or an (offset, metadata) pair); ``group_metadata`` is the consumer's
        group id, or a ConsumerGroupMetadata (or any object with ``group_id`` and
        optionally ``generation_id``, ``member_id``, ``group_instance_id``)."""
        group = _group_metadata(group_metadata)
        normalized = {}
        for tp, value in offsets.items():
            topic, partition = (tp.topic, tp.partition) if hasattr(tp, "topic") else tp
            offset, metadata = (value, None) if isinstance(value, int) else (
                value.offset, getattr(value, "metadata", None)) if hasattr(value, "offset") \
                else value
            if type(offset) is not int or offset < 0:
                raise ValueError(f"offset for {topic}-{partition} must be a non-negative "
                                 f"int, not {offset!r}")
            normalized[(topic, partition)] = (offset, metadata)
        self._txn_call(self._txn().send_offsets(normalized, group), timeout)

    def commit_transaction(self, timeout: float | None = None) -> None:
        """Flush, then commit: every record of the transaction becomes visible to
        read_committed consumers at once. Raises the error that broke the transaction,
        if a send failed (then abort_transaction() is the way on)."""
        self._txn_call(self._txn().begin_commit(), timeout)

    def abort_transaction(self, timeout: float | None = None) -> None:
        """Drop unsent records (their futures fail with TransactionAbortedError) and abort:
        read_committed consumers never see any record of the transaction."""
        self._txn_call(self._txn().begin_abort(), timeout)

    def _txn(self) -> TransactionManager:
        if self._closed:
            raise ProducerClosedError("the producer is closed")
        tm = self._transaction_manager
        if tm is None or not tm.is_transactional:
            raise IllegalStateError("transactional methods need transactional.id to be set "
                                    "in the producer config")
        return tm

    def _txn_call(self, result, timeout: float | None) -> None:
        self._sender.wakeup()
        result.wait(self._max_block_ms / 1000.0 if timeout is None else timeout)

    def partitions_for(self, topic: str) -> list[PartitionInfo]:
        """The topic's partitions (leader, replicas, ISR), waiting up to max.block.ms."""
        snapshot = self._metadata.snapshot
        if topic not in snapshot.topics:
            snapshot = self._wait_on_metadata(topic, None, monotonic_ms())
        return list(snapshot.topics[topic])

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Producer {self.client_id} {'closed' if self._closed else 'open'}>"


def _group_metadata(group: Any) -> ConsumerGroupMetadata:
    if isinstance(group, ConsumerGroupMetadata):
        return group
    if isinstance(group, str):
        return ConsumerGroupMetadata(group)
    group_id = getattr(group, "group_id", None)
    if group_id is None:
        raise TypeError(f"group_metadata must be a group id (str) or have a group_id, "
                        f"not {type(group).__name__}")
    return ConsumerGroupMetadata(group_id, getattr(group, "generation_id", -1),
                                getattr(group, "member_id", "") or "",
                                getattr(group, "group_instance_id", None))


def _check_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    items: Iterable = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for item in items:
        try:
            key, value = item
        except (TypeError, ValueError):
            raise TypeError(f"headers must be (str, bytes) pairs, got {item!r}") from None
        if type(key) is not str:
            raise TypeError(f"header key must be str, not {type(key).__name__}")
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            if isinstance(value, str):
                value = value.encode("utf-8")
            else:
                raise TypeError(f"header {key!r} value must be bytes, str or None, "
                                f"not {type(value).__name__}")
        out.append((key, value))
    return out


def _failed(topic: str, partition: int, error: BaseException,
            on_delivery: DeliveryCallback | None) -> RecordFuture:
    """A future that failed before its record reached a batch (Java's FutureFailure)."""
    if on_delivery is not None:
        try:
            on_delivery(None, error)
        except Exception:
            log.exception("on_delivery callback raised")
    return failed_future(topic, partition, error)


def _sleep_ms(ms: int) -> None:
    import time

    time.sleep(ms / 1000.0)


__all__ = ["BatchFuture", "Producer", "RecordFuture", "RecordMetadata"]
