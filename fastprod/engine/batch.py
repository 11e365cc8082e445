"""ProducerBatch: the records of one partition on their way into one record batch v2.

Ownership: the accumulator's lock guards a batch until ``drain`` hands it to the sender
thread; from then on only the sender thread touches it, except ``complete``, which an
aborting thread (close with a timeout) may race with the sender: the first completion
wins, as with Java's ProducerBatch.finalState.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from fastprod.engine.futures import DeliveryCallback, ProduceRequestResult, RecordFuture
from fastprod.kernels import BatchBuilder

log = logging.getLogger("fastprod.engine")


class ProducerBatch:
    __slots__ = ("topic", "partition", "builder", "result", "futures", "callbacks",
                 "created_ms", "last_attempt_ms", "last_append_ms", "drained_ms",
                 "attempts", "in_retry", "record_count", "full", "reserved_bytes",
                 "producer_id", "producer_epoch", "base_sequence", "is_transactional",
                 "hooks", "_records", "_completed", "_lock")

    def __init__(self, topic: str, partition: int, builder: BatchBuilder, now_ms: int,
                 reserved_bytes: int = 0) -> None:
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.result = ProduceRequestResult(topic, partition)
        self.futures: list[RecordFuture] = []
        self.callbacks: list[tuple[RecordFuture, DeliveryCallback]] | None = None
        self.created_ms = now_ms
        self.last_attempt_ms = now_ms
        self.last_append_ms = now_ms
        self.drained_ms = -1
        self.attempts = 0
        self.in_retry = False
        self.record_count = 0
        self.full = False
        self.reserved_bytes = reserved_bytes
        self.producer_id = -1
        self.producer_epoch = -1
        self.base_sequence = -1
        self.is_transactional = False
        # called after completion, e.g. by the send_batch futures with records in here
        self.hooks: list[Callable[[], object]] | None = None
        self._records: bytes | None = None
        self._completed = False
        self._lock = threading.Lock()

    def try_append(self, timestamp: int, key: bytes | None, value: bytes | None,
                   headers, callback: DeliveryCallback | None, now_ms: int) -> int:
        """Append a record and its future (``futures[-1]``); returns the bytes it took,
        or -1 when the batch has no room left for it."""
        appended = self.builder.append(self.record_count, timestamp, key, value, headers)
        if appended < 0:
            self.full = True
            return -1
        future = RecordFuture(self.result, self.record_count, timestamp,
                              -1 if key is None else len(key),
                              -1 if value is None else len(value))
        self.futures.append(future)
        if callback is not None:
            if self.callbacks is None:
                self.callbacks = []
            self.callbacks.append((future, callback))
        self.record_count += 1
        self.last_append_ms = now_ms
        return appended

    def append_many(self, timestamp: int, keys, values, start: int, stop: int,
                    now_ms: int) -> tuple[int, int]:
        """Append ``values[start:stop]`` (keys alike) until full, in C, with no
        per-record future; returns (records taken, bytes they took)."""
        before = self.builder.size_in_bytes
        count = self.builder.append_many(self.record_count, timestamp, values, keys,
                                         start, stop)
        if count < stop - start:
            self.full = True
        if count:
            self.record_count += count
            self.last_append_ms = now_ms
        return count, self.builder.size_in_bytes - before

    @property
    def estimated_size_in_bytes(self) -> int:
        return self.builder.size_in_bytes

    def records(self) -> bytes:
        """The encoded batch: built on first use (at drain), reused by every retry."""
        if self._records is None:
            self._records = self.builder.build(
                producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                base_sequence=self.base_sequence, is_transactional=self.is_transactional)
        return self._records

    def set_producer_state(self, producer_id: int, producer_epoch: int,
                           base_sequence: int, is_transactional: bool) -> None:
        """Stamp idempotence state; a batch built already is restamped in place."""
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.is_transactional = is_transactional
        if self._records is not None:
            from fastprod.kernels import set_producer_state

            buf = bytearray(self._records)
            set_producer_state(buf, producer_id, producer_epoch, base_sequence,
                               is_transactional)
            self._records = bytes(buf)

    def has_reached_delivery_timeout(self, delivery_timeout_ms: int, now_ms: int) -> bool:
        return now_ms - self.created_ms >= delivery_timeout_ms

    def reenqueued(self, now_ms: int) -> None:
        self.attempts += 1
        self.last_attempt_ms = now_ms
        self.last_append_ms = now_ms
        self.in_retry = True

    def is_done(self) -> bool:
        return self._completed

    def complete(self, base_offset: int, log_append_time: int,
                 error: BaseException | None = None,
                 record_errors: dict[int, BaseException] | None = None) -> bool:
        """Resolve every future and run the callbacks; False if already completed."""
        with self._lock:
            if self._completed:
                return False
            self._completed = True
        self.result.set(base_offset, log_append_time, error, record_errors)
        self.result.done()
        if self.callbacks is not None:
            for future, callback in self.callbacks:
                record_error = future._error()
                try:
                    if record_error is None:
                        callback(future._metadata(), None)
                    else:
                        callback(None, record_error)
                except Exception:  # a user callback must not kill the sender thread
                    log.exception("on_delivery callback for %s-%d raised",
                                  self.topic, self.partition)
        if self.hooks is not None:
            for hook in self.hooks:
                try:
                    hook()
                except Exception:
                    log.exception("completion hook for %s-%d raised", self.topic,
                                  self.partition)
        for future in self.futures:
            if future._callbacks is not None:
                try:
                    future._run_callbacks()
                except Exception:
                    log.exception("future callback for %s-%d raised", self.topic,
                                  self.partition)
        return True

    def abort(self, error: BaseException) -> bool:
        return self.complete(-1, -1, error)

    def __repr__(self) -> str:
        return (f"<ProducerBatch {self.topic}-{self.partition} records={self.record_count} "
                f"attempts={self.attempts}>")
