"""Delivery results: one shared result per batch, a small future per record.

As in the Java client (ProduceRequestResult / FutureRecordMetadata), the batch owns the
only synchronisation object; a record's future is a few slots pointing at it, so a
record costs no lock or event of its own.

Threads: ``ProduceRequestResult.complete`` runs on the sender thread (or the thread
that aborts the batch); ``RecordFuture`` methods may be called from any thread.
"""

from __future__ import annotations

import threading
from typing import Callable, NamedTuple

from fastprod.errors import KafkaTimeoutError

NO_TIMESTAMP = -1

# Guards RecordFuture._callbacks between add_done_callback and completion; callbacks
# added through the future are rare (on_delivery travels with the batch instead).
_callbacks_lock = threading.Lock()


class RecordMetadata(NamedTuple):
    """Where a record was written. ``offset`` is -1 when acks=0 (the broker said nothing)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    serialized_key_size: int
    serialized_value_size: int


DeliveryCallback = Callable[["RecordMetadata | None", "BaseException | None"], object]


class ProduceRequestResult:
    """The outcome of one batch: base offset, log-append time or error, then a latch."""

    __slots__ = ("topic", "partition", "base_offset", "log_append_time", "error",
                 "record_errors", "_event")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.base_offset = -1
        self.log_append_time = NO_TIMESTAMP
        self.error: BaseException | None = None
        # relative offset -> exception, for brokers that reject single records (KIP-467)
        self.record_errors: dict[int, BaseException] | None = None
        self._event = threading.Event()

    def set(self, base_offset: int, log_append_time: int, error: BaseException | None,
            record_errors: dict[int, BaseException] | None = None) -> None:
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self.error = error
        self.record_errors = record_errors

    def done(self) -> None:
        self._event.set()

    def is_done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class RecordFuture:
    """The future result of one ``send()``: a RecordMetadata, or the error that failed it."""

    __slots__ = ("_result", "_relative_offset", "_timestamp", "_key_size", "_value_size",
                 "_callbacks")

    def __init__(self, result: ProduceRequestResult, relative_offset: int, timestamp: int,
                 key_size: int, value_size: int) -> None:
        self._result = result
        self._relative_offset = relative_offset
        self._timestamp = timestamp
        self._key_size = key_size
        self._value_size = value_size
        self._callbacks: list[Callable[[RecordFuture], object]] | None = None

    def done(self) -> bool:
        return self._result.is_done()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Block until delivered; raise the delivery error, or KafkaTimeoutError."""
        error = self.exception(timeout)
        if error is not None:
            raise error
        return self._metadata()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self._result.wait(timeout):
            raise KafkaTimeoutError(f"record not delivered within {timeout} s")
        return self._error()

    def add_done_callback(self, fn: Callable[[RecordFuture], object]) -> None:
        """Call ``fn(future)`` once the record is delivered or failed.

        Runs on the sender thread, or at once in this thread if already done.
        """
        with _callbacks_lock:
            # The batch is marked done before its futures' callbacks are taken, so a
            # callback added after that point runs here instead, exactly once.
            if not self._result.is_done():
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def _error(self) -> BaseException | None:
        errors = self._result.record_errors
        if errors is not None and self._relative_offset in errors:
            return errors[self._relative_offset]
        return self._result.error

    def _metadata(self) -> RecordMetadata:
        result = self._result
        offset = -1 if result.base_offset < 0 else result.base_offset + self._relative_offset
        timestamp = (result.log_append_time if result.log_append_time != NO_TIMESTAMP
                     else self._timestamp)
        return RecordMetadata(result.topic, result.partition, offset, timestamp,
                              self._key_size, self._value_size)

    def _run_callbacks(self) -> None:
        """Called by whoever completed the batch, after ProduceRequestResult.done()."""
        with _callbacks_lock:
            callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for fn in callbacks:
                fn(self)

    def __repr__(self) -> str:
        if not self.done():
            return f"<RecordFuture {self._result.topic}-{self._result.partition} pending>"
        error = self._error()
        state = f"failed: {error!r}" if error else f"offset={self._metadata().offset}"
        return f"<RecordFuture {self._result.topic}-{self._result.partition} {state}>"
