"""Delivery results: one shared result per batch, a small future per record.

As in the Java client (ProduceRequestResult / FutureRecordMetadata), the batch owns the
only synchronisation object; a record's future is a few fields pointing at it, so a
record costs no lock or event of its own. The per-record types are C
(fastprod/_ext/accumulate.pyx); BatchFuture, one per send_batch() call, is here.

Threads: results are completed on the sender thread (or the thread that aborts a
batch); futures may be read from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Callable

from fastprod._ext.accumulate import (
    ProduceRequestResult,
    RecordFuture,
    RecordMetadata,
    failed_future,
)
from fastprod.errors import KafkaTimeoutError

log = logging.getLogger("fastprod.futures")

__all__ = ["BatchFuture", "DeliveryCallback", "ProduceRequestResult", "RecordFuture",
           "RecordMetadata", "failed_future"]

NO_TIMESTAMP = -1

DeliveryCallback = Callable[["RecordMetadata | None", "BaseException | None"], object]


class BatchFuture:
    """The future of one ``send_batch()``: done when every record is delivered or failed.

    The records may span several partitions and batches; each run of records placed in
    one producer batch is a segment, completed by that batch. No per-record object is
    made until someone asks for the per-record results.

    Threads: segments are added by the sending thread and completed by the sender
    thread; the counter starts at one for the sending thread's ``seal()``, so the
    future cannot complete while segments are still being added.
    """

    __slots__ = ("topic", "_segments", "_keys", "_values", "_timestamp", "_on_delivery",
                 "_pending", "_lock", "_event", "_callbacks", "__weakref__")

    def __init__(self, topic: str, keys: Sequence[Any] | None, values: Sequence[Any],
                 timestamp: int,
                 on_delivery: DeliveryCallback | None) -> None:
        self.topic = topic
        # (batch result, offset delta of the first record, input indices)
        self._segments: list[tuple[ProduceRequestResult, int, range | list[int]]] = []
        self._keys = keys
        self._values = values
        self._timestamp = timestamp
        self._on_delivery = on_delivery
        self._pending = 1
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list[Callable[[BatchFuture], object]] = []

    def __len__(self) -> int:
        return len(self._values)

    # ---- engine side ----------------------------------------------------------------

    def add_segment(self, result: ProduceRequestResult, first_offset_delta: int,
                    indices: range | list[int]) -> None:
        with self._lock:
            self._pending += 1
        self._segments.append((result, first_offset_delta, indices))

    def segment_done(self) -> None:
        with self._lock:
            self._pending -= 1
            finished = self._pending == 0
        if finished:
            self._finish()

    seal = segment_done  # the sending thread's own token

    def expect(self) -> None:
        """One more segment will be completed later (ShardedProducer: a frame sent to a
        worker, whose reports arrive with their results already done)."""
        with self._lock:
            self._pending += 1

    def add_completed(self, result: ProduceRequestResult, first_offset_delta: int,
                      indices: range | list[int]) -> None:
        """Records answered for a segment announced with ``expect``."""
        self._segments.append((result, first_offset_delta, indices))

    def fail(self, error: BaseException, placed: set[int] | None = None) -> None:
        """Fail the records not placed in any batch (send_batch stopped half-way);
        ``placed``: positions queued elsewhere that will still be answered."""
        placed = set() if placed is None else set(placed)
        for _, _, indices in self._segments:
            placed.update(indices)
        missing = [i for i in range(len(self._values)) if i not in placed]
        if missing:
            result = ProduceRequestResult(self.topic, -1)
            result.set(-1, -1, error)
            result.done()
            self._segments.append((result, 0, missing))

    def _finish(self) -> None:
        self._event.set()
        if self._on_delivery is not None:
            callback = self._on_delivery
            for i, metadata, error in self._each():
                try:
                    callback(metadata, error)
                except Exception:
                    log.exception("on_delivery callback raised")
        for fn in self._callbacks:
            fn(self)

    # ---- user side ------------------------------------------------------------------

    def done(self) -> bool:
        return self._event.is_set()

    def add_done_callback(self, fn: Callable[[BatchFuture], object]) -> None:
        if not callable(fn):
            raise TypeError(f"add_done_callback(fn): fn must be callable (called as "
                            f"fn(future)), not {type(fn).__name__}")
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(fn)
                return
        fn(self)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The first error of any record, or None when all were delivered."""
        self._wait(timeout)
        for result, first, indices in self._segments:
            if result.error is not None:
                return result.error
            if result.record_errors:  # the batch's, which may hold other callers' records
                end = first + len(indices)
                for rel, error in sorted(result.record_errors.items()):
                    if first <= rel < end:
                        return error
        return None

    def result(self, timeout: float | None = None) -> list[RecordMetadata]:
        """RecordMetadata of every record in input order; raises the first error."""
        error = self.exception(timeout)
        if error is not None:
            raise error
        out: list[RecordMetadata | None] = [None] * len(self._values)
        for i, metadata, _ in self._each():
            out[i] = metadata
        return out  # type: ignore[return-value]

    def errors(self, timeout: float | None = None) -> list[tuple[int, BaseException]]:
        """(input index, error) for every record that failed, in the order the records
        were placed in batches. Costs a step per batch and per failed record: nothing
        per delivered one, so checking every future is cheap."""
        self._wait(timeout)
        failed: list[tuple[int, BaseException]] = []
        for result, first, indices in self._segments:
            error, record_errors = result.error, result.record_errors
            if error is not None:
                if record_errors:
                    failed.extend((i, record_errors.get(first + j, error))
                                  for j, i in enumerate(indices))
                else:
                    failed.extend((i, error) for i in indices)
            elif record_errors:  # the batch's, which may hold other callers' records
                end = first + len(indices)
                failed.extend((indices[rel - first], e) for rel, e in
                              sorted(record_errors.items()) if first <= rel < end)
        return failed

    def _wait(self, timeout: float | None) -> None:
        if not self._event.wait(timeout):
            raise KafkaTimeoutError(f"send_batch not complete within {timeout} s")

    def _each(self) -> Iterator[tuple[int, RecordMetadata | None, BaseException | None]]:
        keys, values, ts = self._keys, self._values, self._timestamp
        for result, first, indices in self._segments:
            base = result.base_offset
            record_errors = result.record_errors
            timestamp = (result.log_append_time if result.log_append_time != NO_TIMESTAMP
                         else ts)
            split = result.runs is not None  # written in parts (MESSAGE_TOO_LARGE)
            for j, i in enumerate(indices):
                error = result.error
                if record_errors and first + j in record_errors:
                    error = record_errors[first + j]
                if error is not None:
                    yield i, None, error
                    continue
                key = None if keys is None else keys[i]
                value = values[i]
                if split:
                    offset = result.offset_of(first + j)
                    log_append_time = result.append_time_of(first + j)
                    timestamp = log_append_time if log_append_time != NO_TIMESTAMP else ts
                else:
                    offset = -1 if base < 0 else base + first + j
                yield i, RecordMetadata(
                    self.topic, result.partition, offset, timestamp,
                    -1 if key is None else len(key), -1 if value is None else len(value)), None
