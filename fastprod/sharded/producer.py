"""ShardedProducer: the Producer API, with the partitions sharded across worker processes.

The parent (this process) owns the metadata (bootstrap, periodic and on-demand refresh,
in a ``fastprod-metadata`` thread) and the partitioner. ``send``/``send_batch``
serialize and partition in the caller's thread, as Producer does (fastprod/front.py),
then frame the records into the shared-memory ring of the worker that owns the
partition; each partition belongs to exactly one worker, so order and idempotent
sequences per partition hold. Each worker (fastprod/sharded/worker.py) runs the same
engine as Producer and reports what it wrote; a ``fastprod-reports`` thread here turns
the reports into completed futures and callbacks, and watches the workers.

Backpressure: a ring's space is freed only when the broker has acknowledged the
records in it, so a full ring blocks send() up to max.block.ms, then BufferFullError.
delivery.timeout.ms runs from send(): each frame carries when its records were sent,
and a worker fails unsent what waited in the ring past it (as Producer's accumulator).
A worker that dies is replaced; the replacement re-sends what is still unacknowledged
in the ring (at-least-once for those records: the new worker has a new producer id).
After too many deaths, the worker's records fail with WorkerLostError.

Unkeyed records: the parent cannot see the workers' batches, so its sticky partition
switches after batch.size bytes (Java also waits for the batch to be full).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import selectors
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from multiprocessing import shared_memory
from typing import Any

from fastprod._ext.accumulate import FastLock, complete_futures
from fastprod._ext.ring import Ring
from fastprod._ext.shard import Pending, SendPath, Shard
from fastprod.clock import monotonic_ms
from fastprod.config import ProducerConfig
from fastprod.engine.accumulator import UNKNOWN_PARTITION
from fastprod.engine.build import build_metadata, build_network_client
from fastprod.engine.futures import (
    BatchFuture,
    DeliveryCallback,
    ProduceRequestResult,
    RecordFuture,
)
from fastprod.errors import (
    BufferFullError,
    ConfigError,
    KafkaTimeoutError,
    ProducerClosedError,
    WorkerLostError,
)
from fastprod.front import Headers, ProducerFront, check_callback, failed
from fastprod.kernels import topic_worker_seed, worker_for_partition
from fastprod.partitioners import BuiltInPartitioner
from fastprod.sharded import wire
from fastprod.sharded.worker import WorkerSpec, main as worker_main

log = logging.getLogger("fastprod.sharded")

_REPORTS_RING_BYTES = 4 << 20
_MIN_RING_BYTES = 1 << 20
_RUN_MAX = 512  # send() records staged per frame at most
_STAGE_MS = 1  # how long a staged send() record may wait for more
# what woke the reports thread (selector key data: (worker handle, what))
_WAKE, _CONTROL, _EXIT = "wake", "control", "exit"
_MAX_RESTARTS = 3  # within _RESTART_WINDOW_S, then the worker's records fail
_RESTART_WINDOW_S = 60.0
# Keys the parent handles itself; the workers get records already serialized and
# partitioned.
_PARENT_ONLY = {"key.serializer", "value.serializer", "partitioner.class",
                "interceptor.classes"}


class _WorkerHandle:
    """The parent's side of one worker: its rings, pipes, process and pending frames."""

    def __init__(self, index: int, ring_bytes: int) -> None:
        self.index = index
        tag = secrets.token_hex(4)
        self.records_shm = shared_memory.SharedMemory(
            create=True, size=Ring.HEADER_SIZE + ring_bytes, name=f"fp-{os.getpid()}-{tag}-r{index}")
        self.reports_shm = shared_memory.SharedMemory(
            create=True, size=Ring.HEADER_SIZE + _REPORTS_RING_BYTES,
            name=f"fp-{os.getpid()}-{tag}-a{index}")
        self.records = Ring(self.records_shm.buf, create=True)
        self.reports = Ring(self.reports_shm.buf, create=True)
        # staged send() records, frames awaiting reports, registered topics
        self.shard = Shard(self.records, _RUN_MAX, _topic_frame)
        self.pending: dict[int, Pending] = self.shard.pending
        self.control_lock = threading.Lock()
        self.process = None
        self.control = self.wake = self.parent_wake = None
        self.generation = 0
        self.deaths: list[float] = []
        self.lost: BaseException | None = None
        self.stopping = False

    def send_control(self, message: dict) -> None:
        with self.control_lock:
            try:
                self.control.send_bytes(wire.pack(0, message))
            except (OSError, AttributeError):
                pass  # dead: the reports thread replaces it and resends a snapshot

    def wake_worker(self) -> None:
        if self.records.consumer_waiting:
            try:
                self.wake.send_bytes(b"\0")
            except OSError:
                pass

    def close(self) -> None:
        for ring in (self.records, self.reports):
            ring.close()
        for shm in (self.records_shm, self.reports_shm):
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass


class ShardedProducer(ProducerFront):
    """A Kafka producer whose batching, compression and network work run in ``workers``
    processes (default: one per CPU). The API is Producer's: switch with one line.

    ``on_delivery`` callbacks and future callbacks run on the parent's
    ``fastprod-reports`` thread. Transactions are not supported here (use Producer).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, workers: int | None = None,
                 *, start_method: str = "spawn", **kwargs: Any) -> None:
        cfg = self.config = ProducerConfig(config, **kwargs)
        if cfg.transactional_id is not None:
            raise ConfigError("transactional.id is not supported by ShardedProducer (each "
                              "worker is its own producer); use Producer for transactions")
        if cfg.security_protocol != "PLAINTEXT":
            raise ConfigError(f"security.protocol={cfg.security_protocol} is not supported "
                              f"yet: only PLAINTEXT is")
        if start_method not in ("spawn", "forkserver"):
            raise ConfigError(f"start_method must be 'spawn' or 'forkserver', not "
                              f"{start_method!r}: workers must not inherit threads or sockets")
        count = (os.cpu_count() or 1) if workers is None else workers
        if type(count) is not int or count < 1:
            raise ConfigError(f"workers must be a positive int, not {workers!r}")
        self._setup_front(cfg)
        if self._interceptors is not None:
            raise ConfigError("interceptor.classes is not supported by ShardedProducer yet")
        self._batch_size = max(cfg.batch_size, 1)
        ring_bytes = max(_MIN_RING_BYTES, _next_pow2(cfg.buffer_memory // count))
        self._buffer_memory = ring_bytes - 64  # one record must fit a ring
        self._sticky: dict[str, BuiltInPartitioner] = {}
        self._sticky_lock = FastLock()
        self._topic_hash: dict[str, int] = {}
        self._closed = False
        self._close_lock = threading.Lock()
        self._stop = threading.Event()
        # Set when the reports thread ends: close() waits on it, not with Thread.join,
        # which a Ctrl-C can leave saying the thread ended while it runs (bpo-45274).
        self._reports_done = threading.Event()
        self._torn_down = False
        self._stager_wake = threading.Event()
        self._context = multiprocessing.get_context(start_method)
        worker_config = {k: v for k, v in cfg.originals.items() if k not in _PARENT_ONLY}
        # The ring bounds the record bytes a worker holds; its accumulator reserves whole
        # batches, so give it room for partly filled ones on top.
        worker_config["buffer.memory"] = 2 * ring_bytes
        self._worker_config = worker_config

        self._metadata = build_metadata(cfg)
        self._client = build_network_client(cfg, self._metadata, self._metadata,
                                            client_id=f"{cfg.client_id}-metadata")
        # What wakes the reports thread: each worker's wake-up pipe, control pipe and
        # exit (its sentinel). Touched only by that thread once it runs.
        self._selector = selectors.DefaultSelector()
        self._workers: list[_WorkerHandle] = []
        try:
            for i in range(count):
                handle = _WorkerHandle(i, ring_bytes)
                self._workers.append(handle)
                self._start_worker(handle)
        except BaseException:
            self._teardown()
            raise
        self._metadata.listeners.append(self._broadcast_snapshot)
        # send() is the C fast path; it hands anything unusual to _send below.
        self._send_path = SendPath(
            self._workers, self._sticky, self._sticky_lock, self._metadata.snapshot,
            self._send, self._stager_wake, key_passthrough=self._key_passthrough,
            value_passthrough=self._value_passthrough,
            partitioner_builtin=self._partitioner is None,
            ignore_keys=self._partitioner_config.ignore_keys,
            sticky_batch_size=self._batch_size)
        self._metadata.listeners.append(self._send_path.set_snapshot)
        self.send = self._send_path.send  # type: ignore[method-assign]
        self._metadata_thread = threading.Thread(target=self._run_metadata, daemon=True,
                                                 name=f"fastprod-metadata-{self.client_id}")
        self._reports_thread = threading.Thread(target=self._run_reports, daemon=True,
                                                name=f"fastprod-reports-{self.client_id}")
        self._metadata_thread.start()
        self._reports_thread.start()
        self._stager_thread = threading.Thread(target=self._run_stager, daemon=True,
                                               name=f"fastprod-stager-{self.client_id}")
        self._stager_thread.start()
        log.info("sharded producer %s started with %d workers", self.client_id, count)

    # ---- workers ----------------------------------------------------------------------------

    def _start_worker(self, w: _WorkerHandle) -> None:
        ctx = self._context
        parent_control, child_control = ctx.Pipe(duplex=True)
        wake_recv, wake_send = ctx.Pipe(duplex=False)
        report_recv, report_send = ctx.Pipe(duplex=False)
        config = dict(self._worker_config)
        config["client.id"] = f"{self.client_id}-w{w.index}"
        with w.shard.lock:
            topics = {index: topic for topic, index in w.shard.topics.items()}
        spec = WorkerSpec(index=w.index, generation=w.generation, config=config,
                          records_name=w.records_shm.name, reports_name=w.reports_shm.name,
                          control=child_control, wake=wake_recv, parent_wake=report_send,
                          parent_pid=os.getpid(), log_level=logging.getLogger().level,
                          topics=topics)
        process = ctx.Process(target=worker_main, args=(spec,), daemon=True,
                              name=f"fastprod-worker-{w.index}")
        # Started with SIGINT blocked (the worker ignores it once up): a Ctrl-C meant for
        # the parent must not kill a worker still starting.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for end in (child_control, wake_recv, report_send):
            end.close()
        w.process, w.control, w.wake, w.parent_wake = (process, parent_control, wake_send,
                                                      report_recv)
        self._watch(w)
        if self._metadata.snapshot.version:
            w.send_control(wire.encode_snapshot(self._metadata.snapshot))

    def _worker_for(self, topic: str, partition: int) -> _WorkerHandle:
        seed = self._topic_hash.get(topic)
        if seed is None:
            seed = self._topic_hash[topic] = topic_worker_seed(topic)
        return self._workers[worker_for_partition(seed, partition, len(self._workers))]

    def _broadcast_snapshot(self, snapshot) -> None:
        message = wire.encode_snapshot(snapshot)
        for w in self._workers:
            w.send_control(message)

    # ---- sending ----------------------------------------------------------------------------

    def send(self, topic: str, value: Any = None, key: Any = None,
             partition: int | None = None, timestamp: int | None = None,
             headers: Headers | None = None,
             on_delivery: DeliveryCallback | None = None) -> RecordFuture:
        """As Producer.send; the record goes to the worker that owns its partition.
        (The instance's send is SendPath.send, in C, which calls _send when needed.)"""
        return self._send(topic, value, key, partition, timestamp, headers, on_delivery)

    def _send(self, topic: str, value: Any = None, key: Any = None,
              partition: int | None = None, timestamp: int | None = None,
              headers: Headers | None = None,
              on_delivery: DeliveryCallback | None = None) -> RecordFuture:
        if self._closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        check_callback(on_delivery, "on_delivery")
        key_bytes, value_bytes, headers, timestamp, snapshot, p, remaining_ms = \
            self._prepare(topic, value, key, partition, timestamp, headers, monotonic_ms())
        too_large = self._record_too_large(key_bytes, value_bytes, headers)
        if too_large is not None:
            return failed(topic, p, too_large, on_delivery)
        if p == UNKNOWN_PARTITION:
            p = self._sticky_partition(topic, snapshot, (0 if value_bytes is None else
                                                         len(value_bytes)) + (
                0 if key_bytes is None else len(key_bytes)))
        w = self._worker_for(topic, p)
        if w.lost is not None:
            return failed(topic, p, WorkerLostError(
                f"worker {w.index} for {topic}-{p} is lost: {w.lost}"), on_delivery)
        future = RecordFuture(ProduceRequestResult(topic, p), 0, timestamp,
                              -1 if key_bytes is None else len(key_bytes),
                              -1 if value_bytes is None else len(value_bytes))
        deadline = None
        while not w.shard.stage(topic, p, timestamp, value_bytes, key_bytes, headers or None,
                                future, on_delivery):
            if deadline is None:
                deadline = time.monotonic() + remaining_ms / 1000.0
            self._wait_for_ring(w, deadline)
        if not self._stager_wake.is_set():
            self._stager_wake.set()
        return future

    def _run_stager(self) -> None:
        """Frame staged send() records about a millisecond after they were staged."""
        while not self._stop.is_set():
            self._stager_wake.wait(0.5)
            time.sleep(_STAGE_MS / 1000.0)
            self._stager_wake.clear()
            if self._frame_all_runs():
                self._stager_wake.set()  # a ring was full: try again shortly

    def _frame_all_runs(self) -> bool:
        """Frame every staged run; True if some records are still waiting."""
        left = False
        now_ms = monotonic_ms()
        for w in self._workers:
            if w.shard.runs:
                # In use: send()'s C fast path does not mark it, so keep
                # metadata.max.idle.ms from forgetting it (list() copies atomically).
                for topic in {topic for topic, _ in list(w.shard.runs)}:
                    self._metadata.touch(topic, now_ms)
                left |= w.shard.frame_runs()
                w.wake_worker()
        return left

    def _wait_for_ring(self, w: _WorkerHandle, deadline: float) -> None:
        """The worker's ring is full: wait a little, or raise after max.block.ms."""
        if w.lost is not None:
            raise WorkerLostError(f"worker {w.index} is lost: {w.lost}")
        if time.monotonic() >= deadline:
            raise BufferFullError(
                f"the ring of worker {w.index} stayed full for max.block.ms "
                f"({self._max_block_ms} ms): the broker is not acknowledging fast enough")
        w.records.set_producer_waiting(True)
        w.wake_worker()
        time.sleep(0.001)
        w.records.set_producer_waiting(False)

    def send_batch(self, topic: str, values: Sequence[Any], keys: Sequence[Any] | None = None,
                   partition: int | None = None, timestamp: int | None = None,
                   on_delivery: DeliveryCallback | None = None) -> BatchFuture:
        """As Producer.send_batch: many records at once, one future for all."""
        if self._closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        now_ms = monotonic_ms()
        prepared = self._prepare_batch(topic, values, keys, partition, timestamp, now_ms,
                                       on_delivery)
        if prepared is None:
            future = BatchFuture(topic, keys, [], 0, on_delivery)
            future.seal()
            return future
        values, keys, timestamp, snapshot, groups, remaining_ms = prepared
        future = BatchFuture(topic, keys, values, timestamp, on_delivery)
        deadline_ms = now_ms + remaining_ms
        try:
            for p, (indices, group_keys, group_values) in groups.items():
                if p == UNKNOWN_PARTITION:
                    self._send_sticky(topic, snapshot, indices, group_keys, group_values,
                                      timestamp, future, now_ms, deadline_ms)
                else:
                    self._write_group(topic, p, timestamp, indices, group_keys, group_values,
                                      0, len(group_values), future, now_ms, deadline_ms)
        except BaseException as exc:
            future.fail(exc, placed=self._framed_indices(future))
            exc.future = future  # type: ignore[union-attr]  # which records were queued
            raise
        finally:
            future.seal()
        return future

    def _framed_indices(self, future: BatchFuture) -> set[int]:
        """Input positions of a send_batch's records already in some ring: the workers
        will report them, so a failure of the call must not fail them too."""
        placed: set[int] = set()
        for w in self._workers:
            with w.shard.lock:
                entries = list(w.pending.values())  # (reports remove entries meanwhile)
            for entry in entries:
                if entry.future is future:
                    placed.update(entry.indices)
        return placed

    def _send_sticky(self, topic, snapshot, indices, keys, values, timestamp, future,
                     now_ms, deadline_ms) -> None:
        """Unkeyed records: runs of about batch.size bytes per sticky partition."""
        first = values[0]
        per_record = 12 + (0 if first is None else len(first))
        run = max(1, self._batch_size // per_record)
        for start in range(0, len(values), run):
            stop = min(start + run, len(values))
            p = self._sticky_partition(topic, snapshot, (stop - start) * per_record)
            self._write_group(topic, p, timestamp, indices, keys, values, start, stop, future,
                              now_ms, deadline_ms)

    def _write_group(self, topic, p, timestamp, indices, keys, values, start, stop, future,
                     now_ms, deadline_ms) -> None:
        """Frame values[start:stop] into the owning worker's ring, as many frames as the
        ring takes at a time, blocking (up to max.block.ms) while it is full."""
        w = self._worker_for(topic, p)
        deadline = time.monotonic() + max(deadline_ms - monotonic_ms(), 0) / 1000.0
        while start < stop:
            if w.lost is not None:
                raise WorkerLostError(f"worker {w.index} for {topic}-{p} is lost: {w.lost}")
            written = w.shard.frame_slice(topic, p, timestamp, values, keys, indices, start,
                                          stop, future, now_ms)
            if written:
                start += written
                w.wake_worker()
            else:
                self._wait_for_ring(w, deadline)

    def _sticky_partition(self, topic: str, snapshot, size: int) -> int:
        with self._sticky_lock:
            partitioner = self._sticky.get(topic)
            if partitioner is None:
                partitioner = self._sticky[topic] = BuiltInPartitioner(topic, self._batch_size)
            p = partitioner.peek_partition(snapshot)
            partitioner.update_partition_info(size, snapshot, enforce_switch=True)
            return p

    # ---- reports ----------------------------------------------------------------------------

    def _run_reports(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._poll_reports()
                except Exception:
                    log.exception("unexpected error in the reports thread")
        finally:
            self._reports_done.set()

    def _poll_reports(self) -> None:
        live = [w for w in self._workers if w.lost is None]
        for w in live:
            w.reports.set_consumer_waiting(True)
        # Sleep unless reports arrived meanwhile; look at the pipes and exits either way.
        idle = all(w.reports.write_pos == w.reports.read_pos for w in live)
        ready = self._selector.select(0.1 if idle else 0)
        for w in live:
            w.reports.set_consumer_waiting(False)
        woken = {key.data for key, _ in ready}
        for w in live:
            if (w, _WAKE) in woken:
                wire.drain(w.parent_wake)
            self._read_reports(w)
            if (w, _CONTROL) in woken:
                self._read_control(w)
            if (w, _EXIT) in woken:
                self._unwatch(w)
                if not w.stopping:
                    self._read_reports(w)
                    self._on_worker_death(w)

    def _watch(self, w: _WorkerHandle) -> None:
        for fileobj, what in ((w.parent_wake, _WAKE), (w.control, _CONTROL),
                              (w.process.sentinel, _EXIT)):
            self._selector.register(fileobj, selectors.EVENT_READ, (w, what))

    def _unwatch(self, w: _WorkerHandle) -> None:
        for fileobj in (w.parent_wake, w.control, w.process.sentinel):
            try:
                self._selector.unregister(fileobj)
            except (KeyError, ValueError):
                pass

    def _read_reports(self, w: _WorkerHandle) -> None:
        while True:
            payload = w.reports.read()
            if payload is None:
                return
            message = wire.unpack(payload)
            del payload  # the view must go before the space is released
            w.reports.release(w.reports.read_end_pos())
            self._complete(w, *message)

    def _complete(self, w, frame_id, start, count, partition, base_offset, log_append_time,
                  error, record_errors) -> None:
        entry = w.pending.get(frame_id)
        if entry is None:
            return  # a repeat after a restart, already done
        fresh = entry.mark(start, count)
        if not fresh:
            return
        error = wire.decode_error(error)
        errors = None
        if record_errors:
            errors = {int(rel): wire.decode_error(e) for rel, e in record_errors.items()}
        if entry.futures is not None:  # send() records
            complete_futures(entry.futures, entry.callbacks, fresh, start, base_offset,
                             log_append_time, error, errors)
        else:
            result = ProduceRequestResult(entry.topic, partition)
            result.set(base_offset, log_append_time, error, errors)
            result.done()
            first = fresh[0]
            if fresh == list(range(first, first + len(fresh))):
                entry.future.add_completed(result, first - start,
                                           entry.indices[first:first + len(fresh)])
            else:  # some were reported already: one segment per record
                for i in fresh:
                    single = ProduceRequestResult(entry.topic, partition)
                    single.set(-1 if base_offset < 0 else base_offset + i - start,
                               log_append_time, error)
                    single.done()
                    entry.future.add_completed(single, 0, entry.indices[i:i + 1])
        if entry.all_done:
            del w.pending[frame_id]
            if entry.indices is not None:
                entry.future.segment_done()

    def _read_control(self, w: _WorkerHandle) -> None:
        try:
            while w.control.poll():
                message = wire.unpack(w.control.recv_bytes())
                if message.get("t") == "refresh":
                    now_ms = monotonic_ms()
                    for topic in message.get("topics", ()):
                        self._metadata.add_topic(topic, now_ms)
                    self._metadata.request_update()
                    self._client.wakeup()
        except (EOFError, OSError):
            pass  # the worker died; the sentinel says so

    def _on_worker_death(self, w: _WorkerHandle) -> None:
        # The sentinel is ready when the process is gone, maybe before it can be
        # reaped: until then exitcode is None. join reaps it (at once: it is dead).
        w.process.join(5)
        code = _describe_exit(w.process.exitcode)
        now = time.monotonic()
        w.deaths = [t for t in w.deaths if now - t < _RESTART_WINDOW_S] + [now]
        log.error("worker %d died (exit code %s) with %d frame(s) unacknowledged", w.index,
                  code, len(w.pending))
        for conn in (w.control, w.wake, w.parent_wake):
            conn.close()
        if len(w.deaths) > _MAX_RESTARTS or self._closed:
            w.lost = WorkerLostError(f"worker {w.index} died {len(w.deaths)} time(s) "
                                     f"(last exit code {code})")
            w.stopping = True
            self._fail_pending(w, w.lost)
            return
        w.generation += 1
        try:
            self._start_worker(w)
        except Exception as exc:  # cannot spawn (out of processes or descriptors...)
            log.error("worker %d could not be restarted: %s", w.index, exc)
            w.lost = WorkerLostError(f"worker {w.index} died and could not be restarted: "
                                     f"{exc}")
            w.stopping = True
            self._fail_pending(w, w.lost)

    def _fail_pending(self, w: _WorkerHandle, error: BaseException) -> None:
        for run in w.shard.take_runs():
            complete_futures(run.futures, run.callbacks, list(range(run.start, len(run.futures))),
                             run.start, -1, -1, error, None)
        for frame_id, entry in list(w.pending.items()):
            if not entry.all_done:
                self._complete(w, frame_id, 0, entry.count, -1, -1, -1,
                               wire.encode_error(error), None)

    # ---- metadata ---------------------------------------------------------------------------

    def _run_metadata(self) -> None:
        while not self._stop.is_set():
            try:
                now_ms = monotonic_ms()
                self._client.poll(min(self._metadata.time_to_next_update(now_ms), 1000),
                                  now_ms)
            except Exception:
                log.exception("unexpected error in the metadata thread")
                time.sleep(0.1)

    def _wakeup(self) -> None:
        self._client.wakeup()

    # ---- flush and close --------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent before this call is delivered or failed. After
        close() it returns at once: close resolved every future."""
        if threading.current_thread() is self._reports_thread:
            raise RuntimeError("flush() cannot be called from a delivery callback")
        if self._closed and self._stop.is_set():  # closed, the rings gone
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = []
        for w in self._workers:
            waiting += w.shard.waitables()
            w.shard.frame_runs()
            w.send_control({"t": "flush"})
            w.wake_worker()
        self._stager_wake.set()
        for future in waiting:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            try:
                future.exception(left)
            except KafkaTimeoutError:
                raise KafkaTimeoutError(f"flush() did not complete within {timeout} s") \
                    from None

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, stop the workers, and fail whatever is still pending
        after ``timeout`` seconds. Safe to call more than once."""
        if threading.current_thread() is self._reports_thread:
            # From a delivery callback: closing waits for this very thread, so it
            # happens on another one (as Producer, it does not wait here).
            log.warning("close() called from a callback: closing in the background")
            threading.Thread(target=self.close, args=(timeout,), daemon=True,
                             name=f"fastprod-close-{self.client_id}").start()
            return
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._send_path.closed = True
        log.info("closing sharded producer %s", self.client_id)
        try:
            self._close_gracefully(timeout)
        except BaseException:
            # Ctrl-C while close() waits (often the second: the first ended a wait inside
            # a ``with`` block, whose exit brought us here): stop waiting, now.
            log.warning("close() interrupted: stopping the workers, pending records fail")
            self._close_now()
            raise

    def _close_gracefully(self, timeout: float | None) -> None:
        try:
            self.flush(timeout)
        except KafkaTimeoutError:
            log.warning("close(): records still pending after %s s", timeout)
        grace_ms = 0 if timeout is not None else self.config.delivery_timeout_ms
        for w in self._workers:
            w.stopping = True
            w.send_control({"t": "shutdown", "timeout_ms": grace_ms})
            w.wake_worker()
        for w in self._workers:
            if w.process is not None:
                w.process.join(None if timeout is None else max(timeout, 1.0) + 5.0)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()
        self._stop.set()
        self._reports_done.wait()
        for w in self._workers:
            self._read_reports(w)
            self._fail_pending(w, ProducerClosedError(
                "the producer was closed before the record was sent"))
        self._teardown()

    def _close_now(self) -> None:
        """Kill the workers, fail every record still pending, release everything."""
        self._stop.set()
        for w in self._workers:
            w.stopping = True
            if w.process is not None and w.process.is_alive():
                w.process.kill()
        for w in self._workers:
            if w.process is not None:
                w.process.join()
        if self._reports_done.wait(5):  # that thread owns the pending entries till then
            for w in self._workers:
                self._read_reports(w)
                self._fail_pending(w, ProducerClosedError(
                    "the producer was closed (interrupted) before the record was sent"))
        self._teardown()

    def _teardown(self) -> None:
        if self._torn_down:  # a Ctrl-C during the first one: do not release twice
            return
        self._torn_down = True
        self._stop.set()
        self._metadata.close()
        # Every thread that touches the rings stops before their memory is unmapped.
        current = threading.current_thread()
        for name in ("_stager_thread", "_reports_thread", "_metadata_thread"):
            thread = getattr(self, name, None)
            if thread is not None and thread is not current and thread.is_alive():
                self._stager_wake.set()
                self._client.wakeup()
                thread.join(5)
        self._client.close()
        for w in self._workers:
            if w.process is not None and w.process.is_alive():
                w.process.kill()
                w.process.join()
            with w.shard.lock:  # no send() is writing into it
                w.close()
        self._selector.close()

    def __enter__(self) -> "ShardedProducer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._workers)} workers"
        return f"<ShardedProducer {self.client_id} {state}>"


def _call(on_delivery, future: RecordFuture) -> None:
    if on_delivery is None:
        return
    try:
        error = future.error()
        on_delivery(None if error is not None else future.metadata(), error)
    except Exception:
        log.exception("on_delivery callback raised")


def _describe_exit(code: int | None) -> str:
    """-9 -> "-9 (killed by SIGKILL)"; a negative exitcode is the signal's number."""
    if code is None or code >= 0:
        return str(code)
    try:
        return f"{code} (killed by {signal.Signals(-code).name})"
    except ValueError:
        return f"{code} (killed by signal {-code})"


def _topic_frame(index: int, topic: str) -> bytes:
    return wire.pack(wire.KIND_TOPIC, [index, topic])


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p
