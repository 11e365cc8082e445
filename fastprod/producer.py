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
from collections.abc import Mapping, Sequence
from typing import Any

from fastprod.clock import monotonic_ms
from fastprod.config import ProducerConfig
from fastprod.engine.build import build_engine, build_metadata
from fastprod.engine.producer_metrics import timed
from fastprod.front import Headers, ProducerFront, check_callback, failed
from fastprod._ext.accumulate import SendFastPath
from fastprod.engine.futures import (
    BatchFuture,
    DeliveryCallback,
    RecordFuture,
    RecordMetadata,
)
from fastprod.engine.transaction_manager import TransactionManager, TxnState
from fastprod.engine.transactions import ConsumerGroupMetadata
from fastprod.errors import (
    IllegalStateError,
    KafkaTimeoutError,
    ProducerClosedError,
)
from fastprod.metrics import KafkaMetric, MetricName, close_reporters, load_reporters
from fastprod.partitioners import record_partition, uses_on_new_batch

log = logging.getLogger("fastprod.producer")


# Producers not closed yet. The sender is a daemon thread (a forgotten producer must not
# keep the interpreter alive), so at exit each one is closed here: what was accepted is
# delivered or fails within delivery.timeout.ms instead of vanishing with the thread.
_live_producers: "weakref.WeakSet[Producer]" = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for producer in list(_live_producers):
        producer.close(producer.config.delivery_timeout_ms / 1000.0)


class Producer(ProducerFront):
    """A Kafka producer with the Java client's behaviour.

    ``Producer({"bootstrap.servers": "localhost:9092", "linger.ms": 10})`` or
    ``Producer(bootstrap_servers="localhost:9092", linger_ms=10)``; every key is a Java
    producer config name (see ``fastprod.config``).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        cfg = self.config = ProducerConfig(config, **kwargs)
        self._setup_front(cfg)
        self._abort_on_new_batch = uses_on_new_batch(self._partitioner)

        reporters = load_reporters(cfg)
        try:
            engine = self._engine = build_engine(cfg, build_metadata(cfg), reporters=reporters)
        except BaseException:
            close_reporters(reporters)
            raise
        self._producer_metrics = engine.metrics
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
            ignore_keys=self._partitioner_config.ignore_keys, sticky_batch_size=batch_size,
            txn=self._transaction_manager if cfg.transactional_id is not None else None,
            txn_open=TxnState.IN_TRANSACTION)
        self._metadata.listeners.append(self._fast_path.set_snapshot)
        # Interceptors see every record: they take the Python path.
        if self._interceptors is None:
            self.send = self._fast_path.send  # type: ignore[method-assign]
        self._closed = False
        self._close_lock = threading.Lock()
        engine.start(f"fastprod-sender-{self.client_id}")
        self._thread = engine.thread
        self._sender_stopped = engine.stopped
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
        check_callback(on_delivery, "on_delivery")  # before interceptors wrap it
        if self._interceptors is not None:
            topic, value, key, partition, timestamp, headers, on_delivery = self._intercept(
                topic, value, key, partition, timestamp, headers, on_delivery)
        now_ms = monotonic_ms()
        key_bytes, value_bytes, headers, timestamp, snapshot, p, remaining_ms = self._prepare(
            topic, value, key, partition, timestamp, headers, now_ms)

        too_large = self._record_too_large(key_bytes, value_bytes, headers)
        if too_large is not None:
            return failed(topic, p, too_large, on_delivery)
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
        here with nothing sent. More records than buffer.memory holds are fine: the call
        waits while the sender frees memory. If it fails part-way (BufferFullError after
        max.block.ms, KeyboardInterrupt), the exception's ``future`` attribute is this
        call's BatchFuture: the records queued before are delivered as usual, the rest
        fail with that exception.
        """
        now_ms = monotonic_ms()
        prepared = self._prepare_batch(topic, values, keys, partition, timestamp, now_ms,
                                       on_delivery)
        if prepared is None:  # no records
            future = BatchFuture(topic, keys, [], 0, on_delivery)
            future.seal()
            return future
        values, keys, timestamp, snapshot, groups, remaining_ms = prepared
        future = BatchFuture(topic, keys, values, timestamp, on_delivery)

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
            exc.future = future  # type: ignore[union-attr]  # which records were queued
            raise
        finally:
            if transactional:
                for p in partitions_used:
                    tm.maybe_add_partition((topic, p))
            future.seal()
            if wake:
                self._sender.wakeup()
        return future

    # ---- flush, close, metadata ------------------------------------------------------

    def _wakeup(self) -> None:
        self._sender.wakeup()

    def _sticky_partition(self, topic: str, snapshot, size: int) -> int:
        return self._accumulator.sticky_partition(topic, snapshot, size)

    def metrics(self) -> dict[MetricName, KafkaMetric]:
        """The producer's metrics, by name, with Java's names, groups and tags
        (README, "Observing it"): each has ``.value()``, computed when called."""
        return self._producer_metrics.metrics.metrics()

    @timed("flush")
    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued now and wait until every record sent before this call
        is delivered or failed. KafkaTimeoutError if ``timeout`` seconds pass first.
        After close() it returns at once: close resolved every future."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("flush() cannot be called from a delivery callback")
        if self._closed and not self._thread.is_alive():  # closed: nothing is pending
            return
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
        try:
            if not self._sender_stopped.wait(timeout):
                self._sender.force_close()
                self._sender_stopped.wait()
        except BaseException:
            # Ctrl-C: stop waiting. What is pending fails now rather than being waited
            # for again by the close at exit.
            self._sender.force_close()
            _live_producers.discard(self)
            raise
        self._thread.join()
        _live_producers.discard(self)
        if self._interceptors is not None:
            self._interceptors.close()
        if self._partitioner is not None and hasattr(self._partitioner, "close"):
            self._partitioner.close()
        self._producer_metrics.metrics.close()

    # ---- transactions ---------------------------------------------------------------

    @timed("txn-init")
    def init_transactions(self, timeout: float | None = None) -> None:
        """Register transactional.id with its coordinator: fences any older producer
        with the same id and aborts its open transaction. Call once, first.
        KafkaTimeoutError after ``timeout`` seconds (default max.block.ms); calling it
        again keeps waiting for the same request."""
        self._txn_call(self._txn().initialize(), timeout)

    @timed("txn-begin")
    def begin_transaction(self) -> None:
        """Start a transaction: records sent from now on commit or abort together."""
        self._txn().begin()

    @timed("txn-send-offsets")
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

    @timed("txn-commit")
    def commit_transaction(self, timeout: float | None = None) -> None:
        """Flush, then commit: every record of the transaction becomes visible to
        read_committed consumers at once. Raises the error that broke the transaction,
        if a send failed (then abort_transaction() is the way on)."""
        self._txn_call(self._txn().begin_commit(), timeout)

    @timed("txn-abort")
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


__all__ = ["BatchFuture", "Producer", "RecordFuture", "RecordMetadata"]
