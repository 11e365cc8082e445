"""BufferPool: the ``buffer.memory`` budget shared by all open and in-flight batches.

Java's BufferPool hands out ByteBuffers; here every batch owns its bytes (the Cython
builder allocates them), so the pool only accounts: ``allocate`` reserves a batch's
capacity, blocking up to ``max.block.ms`` while the budget is spent, and ``deallocate``
returns it when the batch is completed. Waiters are served in arrival order, so a
large request is not starved by a stream of small ones.

Thread-safe: any thread may allocate; the sender thread deallocates.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

from fastprod.clock import Clock, monotonic_ms
from fastprod.errors import BufferFullError, RecordTooLargeError


class BufferPool:
    def __init__(self, total_memory: int, clock: Clock = monotonic_ms) -> None:
        self.total_memory = total_memory
        self.clock = clock  # max.block.ms runs on it
        # Called when a thread starts to wait for memory: the engine wakes its sender
        # there, so that what is queued goes out and frees memory even when the waiting
        # thread (a send_batch filling batch after batch) has not woken it yet.
        self.on_wait: Callable[[], object] | None = None
        # Called with the nanoseconds a thread waited, once it has memory or gives up
        # (the bufferpool-wait-ratio metric); wait_ns_total sums them.
        self.on_waited: Callable[[float], object] | None = None
        self.wait_ns_total = 0
        self._available = total_memory
        self._lock = threading.Lock()
        self._waiters: collections.deque[threading.Condition] = collections.deque()
        self._closed = False

    @property
    def available_memory(self) -> int:
        return self._available

    @property
    def queued(self) -> int:
        """How many threads are blocked waiting for memory (the accumulator's
        ``exhausted`` signal: batches should go out now to free some)."""
        return len(self._waiters)

    def allocate(self, size: int, max_block_ms: int) -> None:
        if size > self.total_memory:
            raise RecordTooLargeError(
                f"a batch of {size} bytes is larger than buffer.memory "
                f"({self.total_memory} bytes)")
        with self._lock:
            if self._closed:
                raise BufferFullError("the producer is closed")
            if not self._waiters and self._available >= size:
                self._available -= size
                return
            me = threading.Condition(self._lock)
            self._waiters.append(me)
            if self.on_wait is not None:
                self.on_wait()
            deadline_ms = self.clock() + max_block_ms
            started_ns = time.perf_counter_ns()
            try:
                while self._waiters[0] is not me or self._available < size:
                    remaining = (deadline_ms - self.clock()) / 1000.0
                    if remaining <= 0:
                        raise BufferFullError(
                            f"failed to allocate {size} bytes within max.block.ms "
                            f"({max_block_ms} ms): buffer.memory ({self.total_memory} bytes) "
                            f"is full")
                    me.wait(remaining)
                    if self._closed:
                        raise BufferFullError("the producer was closed while waiting for memory")
                self._available -= size
            finally:
                self._waiters.remove(me)
                if self._waiters and self._available > 0:
                    self._waiters[0].notify()
                waited = time.perf_counter_ns() - started_ns
                self.wait_ns_total += waited
                if self.on_waited is not None:
                    self.on_waited(waited)

    def deallocate(self, size: int) -> None:
        with self._lock:
            self._available += size
            if self._waiters:
                self._waiters[0].notify()

    def close(self) -> None:
        """Wake every waiter with an error (the producer is shutting down)."""
        with self._lock:
            self._closed = True
            for waiter in self._waiters:
                waiter.notify()
