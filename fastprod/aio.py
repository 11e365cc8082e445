"""asyncio producers: AIOProducer (around Producer) and AIOShardedProducer (around
ShardedProducer).

    async with AIOProducer({"bootstrap.servers": "localhost:9092"}) as producer:
        metadata = await producer.send("events", b"v", key=b"k")
        future = producer.send_nowait("events", b"w")    # an asyncio.Future
        await producer.send_batch("events", [b"a", b"b"])
        await producer.flush()

Nothing here blocks the event loop. The synchronous send() blocks in only two cases:
the topic's metadata is not known yet, or the buffer (buffer.memory; a worker's ring
for ShardedProducer) is too full to open a new batch. Both are visible without
blocking, so a send that cannot block is made on the loop thread itself (the C fast
path, about a microsecond: a thread hop per record would cost 20-50 times that), and
one that could block is handed to a single backlog thread, where it waits up to
max.block.ms as usual while the caller awaits. Once a record waits in the backlog,
every later send from the loop queues behind it, so records keep the order in which
they were sent. (Why not "send with a zero block time, then retry": the block time is
a setting of the wrapped producer, not of a call, and retrying from the loop would
need polling; a thread waits on the producer's own condition and takes the buffer
space in the order it was asked for.) The check reads the buffer's free memory
against batch.size plus the record's size; if another thread uses the same producer
at the same moment, a loop-thread send can still block briefly for memory.

Results: the delivery callback runs on the producer's sender thread (or, for
ShardedProducer, its reports thread) and hands the result to the loop with
``loop.call_soon_threadsafe``, one wake-up for however many results arrived since the
last one, so futures are completed on the loop thread. If the loop is closed by then,
the results are dropped with a warning on the ``fastprod.aio`` logger; the sender
thread never sees an exception.

Cancellation: cancelling ``await send(...)`` (or the future of ``send_nowait``) cancels
only the wait. The record was already handed to the producer (or to the backlog, which
always sends it), so it is still delivered, exactly once as far as the producer goes;
if it then fails, the error is logged, since nobody awaits it any more.

``asyncio.wrap_future`` accepts only ``concurrent.futures.Future`` objects, and
RecordFuture is a C type (fastprod/_ext/accumulate.pyx) kept to a few fields so that a
record costs no lock of its own; it cannot subclass that Python class without losing
this. ``fastprod.aio.wrap_future(future)`` is the adapter: it turns a RecordFuture or a
BatchFuture (or a concurrent.futures.Future) into an asyncio future completed on the
loop thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from fastprod.engine.futures import BatchFuture, RecordFuture, RecordMetadata
from fastprod.errors import KafkaTimeoutError, ProducerClosedError
from fastprod.front import Headers
from fastprod.producer import Producer
from fastprod.sharded import ShardedProducer

log = logging.getLogger("fastprod.aio")

__all__ = ["AIOProducer", "AIOShardedProducer", "wrap_future"]

P = TypeVar("P", Producer, ShardedProducer)


class _ToLoop:
    """Results from other threads to futures of one loop, completed on the loop thread.

    ``put`` may run on any thread; ``_drain`` runs on the loop. One
    call_soon_threadsafe (a write to the loop's wake-up pipe) per run of results, not
    per result: ``_scheduled`` is cleared before draining, so a result put after the
    drain started either is seen by it or schedules the next one.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: collections.deque[tuple[asyncio.Future[Any], Any, BaseException | None]] \
            = collections.deque()
        self._scheduled = False
        self._dropped = 0

    def put(self, future: asyncio.Future[Any], result: Any,
            error: BaseException | None) -> None:
        if self.loop.is_closed():
            self._drop(1)
            return
        self._queue.append((future, result, error))
        if not self._scheduled:
            self._scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # closed between the check and the call
                self._drop(len(self._queue))
                self._queue.clear()

    def _drop(self, count: int) -> None:
        first = self._dropped == 0
        self._dropped += count
        if first:
            log.warning("the event loop of this producer is closed: delivery results are "
                        "dropped (the records themselves are still delivered or failed "
                        "by the producer); close the AIOProducer before its loop ends")
        else:
            log.debug("event loop closed: %d delivery results dropped so far", self._dropped)

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        while queue:
            future, result, error = queue.popleft()
            if future.done():  # cancelled by its caller: the record went anyway
                if error is not None:
                    log.warning("a send whose wait was cancelled failed: %r", error)
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


class _AIOBase(Generic[P]):
    """What AIOProducer and AIOShardedProducer share; ``producer`` is the wrapped
    synchronous producer."""

    producer: P

    def __init__(self, producer: P) -> None:
        self.producer = producer
        self._batch_size = max(producer.config.batch_size, 1)
        self._to_loop: _ToLoop | None = None
        # The backlog: sends that could block, in order, on one thread. _queued is
        # bumped on the loop thread, _done on the backlog thread; equal means empty.
        self._backlog = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"fastprod-aio-{producer.client_id}")
        self._queued = 0
        self._done = 0
        self._closing = False

    # ---- the loop -------------------------------------------------------------------

    def _bind(self) -> _ToLoop:
        """The loop of the first call is this producer's. (Sends do not check it again,
        per record: a future of one loop awaited on another fails in asyncio itself.)"""
        loop = asyncio.get_running_loop()
        to_loop = self._to_loop
        if to_loop is None:
            to_loop = self._to_loop = _ToLoop(loop)
        elif to_loop.loop is not loop:
            raise RuntimeError(f"this {type(self).__name__} is used by another event loop "
                               f"({to_loop.loop!r}); use one producer per loop")
        return to_loop

    def _would_block(self, topic: Any, value: Any, key: Any, partition: Any) -> bool:
        """Could the synchronous send() block (unknown metadata, too little buffer)?"""
        raise NotImplementedError

    # ---- sending --------------------------------------------------------------------

    def send_nowait(self, topic: str, value: Any = None, key: Any = None,
                    partition: int | None = None, timestamp: int | None = None,
                    headers: Headers | None = None) -> asyncio.Future[RecordMetadata]:
        """Queue one record; returns an asyncio future of its RecordMetadata at once.

        Bad arguments (a value the serializer refuses, a bad topic name, ...) raise here
        when the record is queued at once, or fail the future when it waits in the
        backlog for buffer space or metadata."""
        to_loop = self._to_loop or self._bind()
        if self._closing:
            raise ProducerClosedError("cannot send: the producer is closed")
        future: asyncio.Future[RecordMetadata] = asyncio.Future(loop=to_loop.loop)
        done = functools.partial(to_loop.put, future)
        if self._queued == self._done and not self._would_block(topic, value, key, partition):
            self.producer.send(topic, value, key, partition, timestamp, headers, done)
        else:
            self._submit(self._send_waiting, future, to_loop,
                         (topic, value, key, partition, timestamp, headers, done))
        return future

    async def send(self, topic: str, value: Any = None, key: Any = None,
                   partition: int | None = None, timestamp: int | None = None,
                   headers: Headers | None = None) -> RecordMetadata:
        """Send one record and wait until it is written: its RecordMetadata, or the
        delivery error. Cancelling the wait does not withdraw the record."""
        return await self.send_nowait(topic, value, key, partition, timestamp, headers)

    async def send_batch(self, topic: str, values: Sequence[Any],
                         keys: Sequence[Any] | None = None, partition: int | None = None,
                         timestamp: int | None = None) -> list[RecordMetadata]:
        """As the producer's send_batch, awaited: the RecordMetadata of every record in
        input order, or the first error. Runs on the backlog thread (a large batch
        waits there for buffer space), after the sends queued before it."""
        to_loop = self._bind()
        if self._closing:
            raise ProducerClosedError("cannot send: the producer is closed")
        future: asyncio.Future[BatchFuture] = to_loop.loop.create_future()
        self._submit(self._send_batch_waiting, future, to_loop,
                     (topic, values, keys, partition, timestamp))
        batch = await future
        return batch.result(0)

    def _submit(self, fn: Any, future: asyncio.Future[Any], to_loop: _ToLoop,
                args: tuple[Any, ...]) -> None:
        self._queued += 1
        try:
            self._backlog.submit(fn, future, to_loop, args)
        except RuntimeError as exc:  # the backlog was shut down: closed
            self._queued -= 1
            raise ProducerClosedError("cannot send: the producer is closed") from exc

    def _send_waiting(self, future: asyncio.Future[Any], to_loop: _ToLoop,
                      args: tuple[Any, ...]) -> None:
        """(backlog thread) A send that may block up to max.block.ms."""
        try:
            self.producer.send(*args)
        except BaseException as exc:
            to_loop.put(future, None, exc)
        finally:
            self._done += 1

    def _send_batch_waiting(self, future: asyncio.Future[Any], to_loop: _ToLoop,
                            args: tuple[Any, ...]) -> None:
        try:
            batch = self.producer.send_batch(*args)
        except BaseException as exc:
            to_loop.put(future, None, exc)
        else:
            batch.add_done_callback(lambda b: to_loop.put(future, b, None))
        finally:
            self._done += 1

    async def _backlog_sent(self, timeout: float | None) -> None:
        """Wait until every send queued in the backlog so far was handed to the producer."""
        if self._queued == self._done:
            return
        to_loop = self._bind()
        marker: asyncio.Future[None] = to_loop.loop.create_future()
        self._queued += 1

        def reached(future: asyncio.Future[None], to_loop: _ToLoop, args: Any) -> None:
            self._done += 1
            to_loop.put(future, None, None)

        self._backlog.submit(reached, marker, to_loop, ())
        try:
            await asyncio.wait_for(asyncio.shield(marker), timeout)
        except asyncio.TimeoutError:
            raise KafkaTimeoutError(f"the sends waiting for buffer space were not queued "
                                    f"within {timeout} s") from None

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # ---- flush, close, metadata -----------------------------------------------------

    async def flush(self, timeout: float | None = None) -> None:
        """Send everything queued (the backlog included) and wait until every record sent
        before this call is delivered or failed; KafkaTimeoutError after ``timeout``
        seconds. The loop keeps running meanwhile (the wait is on another thread)."""
        self._bind()
        start = time.monotonic()
        await self._backlog_sent(timeout)
        left = None if timeout is None else max(timeout - (time.monotonic() - start), 0.0)
        await self._in_thread(self.producer.flush, left)

    async def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (the backlog included), then stop; as the producer's
        close(). Every future from this producer is resolved when it returns. Safe to
        call more than once."""
        self._closing = True
        start = time.monotonic()
        try:
            await self._backlog_sent(timeout)
        except KafkaTimeoutError:
            pass  # close() fails what is still pending instead
        left = None if timeout is None else max(timeout - (time.monotonic() - start), 0.0)
        await self._in_thread(self.producer.close, left)
        # The backlog thread ends once its queue is empty; nothing waits in it any more
        # unless the timeout passed, and then the closed producer refuses at once.
        self._backlog.shutdown(wait=False)
        # Results handed over by the close are already queued on the loop before the
        # executor's answer; one turn of the loop runs them.
        await asyncio.sleep(0)

    def metrics(self) -> Any:
        """The producer's metrics (see Producer.metrics)."""
        return self.producer.metrics()

    async def partitions_for(self, topic: str) -> list[Any]:
        """The topic's partitions, waiting for its metadata off the loop thread."""
        return await self._in_thread(self.producer.partitions_for, topic)

    async def __aenter__(self) -> "_AIOBase[P]":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} around {self.producer!r}>"


def _size(value: Any, key: Any, unknown: int) -> int:
    """The record's bytes as far as known before serializing; ``unknown`` for a value or
    key a serializer has yet to turn into bytes."""
    if type(value) is bytes:
        size = len(value)
    elif value is None:
        size = 0
    else:
        return unknown
    if key is None:
        return size
    if type(key) is bytes:
        return size + len(key)
    return unknown


class AIOProducer(_AIOBase[Producer]):
    """An asyncio Producer: ``AIOProducer(config)`` takes what Producer takes (or
    ``AIOProducer(producer=existing)``). Transactions too, awaited."""

    def __init__(self, config: Mapping[str, Any] | None = None, *,
                 producer: Producer | None = None, **kwargs: Any) -> None:
        if producer is None:
            producer = Producer(config, **kwargs)
        elif config is not None or kwargs:
            raise TypeError("give either a config or producer=, not both")
        super().__init__(producer)

    def _would_block(self, topic: Any, value: Any, key: Any, partition: Any) -> bool:
        producer = self.producer
        if producer._closed or type(topic) is not str:
            return False  # send() raises at once
        parts = producer._metadata.snapshot.topics.get(topic)
        if parts is None or (type(partition) is int and partition >= len(parts)):
            return True  # send() would wait for metadata
        pool = producer._accumulator.pool
        if pool.queued:
            return True  # others wait for memory already: it is handed out in order
        # Opening a batch reserves max(batch.size, record); appending reserves nothing.
        return pool.available_memory < self._batch_size + _size(value, key, self._batch_size)

    # ---- transactions: after the backlog, on a thread ---------------------------------

    async def init_transactions(self, timeout: float | None = None) -> None:
        await self._in_thread(self.producer.init_transactions, timeout)

    async def begin_transaction(self) -> None:
        await self._backlog_sent(None)
        self.producer.begin_transaction()

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, Any],
                                          group_metadata: Any,
                                          timeout: float | None = None) -> None:
        await self._backlog_sent(None)
        await self._in_thread(self.producer.send_offsets_to_transaction, offsets,
                              group_metadata, timeout)

    async def commit_transaction(self, timeout: float | None = None) -> None:
        """Commit, after every send of the transaction (the backlog too) is queued."""
        await self._backlog_sent(None)
        await self._in_thread(self.producer.commit_transaction, timeout)

    async def abort_transaction(self, timeout: float | None = None) -> None:
        await self._backlog_sent(None)
        await self._in_thread(self.producer.abort_transaction, timeout)

    async def __aenter__(self) -> "AIOProducer":
        return self


class AIOShardedProducer(_AIOBase[ShardedProducer]):
    """An asyncio ShardedProducer: ``AIOShardedProducer(config, workers=4)`` takes what
    ShardedProducer takes (or ``AIOShardedProducer(producer=existing)``). Results come
    from the parent's reports thread, completed on the loop thread."""

    def __init__(self, config: Mapping[str, Any] | None = None, workers: int | None = None,
                 *, producer: ShardedProducer | None = None, **kwargs: Any) -> None:
        if producer is None:
            producer = ShardedProducer(config, workers, **kwargs)
        elif config is not None or workers is not None or kwargs:
            raise TypeError("give either a config or producer=, not both")
        super().__init__(producer)
        self._rings = [w.records for w in producer._workers]
        # A ring this free takes a full staged run of ordinary records at once.
        self._ring_headroom = min(r.capacity for r in self._rings) // 4

    def _would_block(self, topic: Any, value: Any, key: Any, partition: Any) -> bool:
        producer = self.producer
        if producer._closed or type(topic) is not str:
            return False
        parts = producer._metadata.snapshot.topics.get(topic)
        if parts is None or (type(partition) is int and partition >= len(parts)):
            return True
        need = self._ring_headroom + _size(value, key, self._batch_size)
        # Which ring the record goes to is decided inside send(): ask all of them.
        for ring in self._rings:
            if ring.free_space() < need:
                return True
        return False

    async def __aenter__(self) -> "AIOShardedProducer":
        return self


_T = TypeVar("_T")


def wrap_future(future: RecordFuture | BatchFuture | concurrent.futures.Future[Any],
                *, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
    """An asyncio future for a fastprod future (what ``asyncio.wrap_future`` does for a
    concurrent.futures.Future, which RecordFuture is not: see the module doc).

    A RecordFuture's asyncio future resolves to its RecordMetadata or its error; a
    BatchFuture's to the list of RecordMetadata or the first error. Completed on the
    loop thread; cancelling it does not withdraw the record."""
    if isinstance(future, concurrent.futures.Future):
        return asyncio.wrap_future(future, loop=loop)
    if not isinstance(future, (RecordFuture, BatchFuture)):
        raise TypeError(f"wrap_future() takes a RecordFuture, BatchFuture or "
                        f"concurrent.futures.Future, not {type(future).__name__}")
    loop = asyncio.get_running_loop() if loop is None else loop
    to_loop = _ToLoop(loop)
    out: asyncio.Future[Any] = loop.create_future()

    def done(f: Any) -> None:
        try:
            to_loop.put(out, f.result(0), None)
        except BaseException as exc:
            to_loop.put(out, None, exc)

    future.add_done_callback(done)
    return out
