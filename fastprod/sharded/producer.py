"""ShardedProducer: the Producer API, with the partitions sharded across worker processes.

The parent (this process) owns the metadata (bootstrap, periodic and on-demand refresh,
in a ``fastprod-metadata`` thread) and the partitioner. ``send``/``send_batch``
serialize and partition in the caller's thread, as Producer does (fastprod/front.py),
then frame the records into the shared-memory ring of the worker that owns the
partition (feeder.py); each partition belongs to exactly one worker, so order and
idempotent sequences per partition hold. Each worker (worker.py) runs the same engine
as Producer and reports what it wrote; a ``fastprod-reports`` thread (reports.py)
turns the reports into completed futures and callbacks (completion.py), and the
supervisor (supervisor.py) replaces a worker that dies. messages.py lists what the
processes say to each other.

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
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastprod._ext.shard import SendPath
from fastprod.clock import monotonic_ms
from fastprod.cluster.snapshot import ClusterSnapshot
from fastprod.config import ProducerConfig
from fastprod.engine.accumulator import UNKNOWN_PARTITION
from fastprod.engine.producer_metrics import timed
from fastprod.engine.build import build_metadata, build_metrics, build_network_client
from fastprod.engine.futures import (
    BatchFuture,
    DeliveryCallback,
    ProduceRequestResult,
    RecordFuture,
)
from fastprod.errors import ConfigError, KafkaTimeoutError, ProducerClosedError, WorkerLostError
from fastprod.front import Headers, ProducerFront, check_callback, failed
from fastprod.metrics import MetricName
from fastprod.sharded.completion import fail_pending
from fastprod.sharded.feeder import Feeder
from fastprod.sharded.handle import WorkerHandle
from fastprod.metrics import load_reporters
from fastprod.sharded.metrics import GatheredMetrics, MeasuredMetric, gather
from fastprod.sharded.messages import Flush, Snapshot
from fastprod.sharded.reports import ReportsReader
from fastprod.sharded.supervisor import Supervisor

log = logging.getLogger("fastprod.sharded")

_MIN_RING_BYTES = 1 << 20
# Keys the parent handles itself; the workers get records already serialized and
# partitioned.
_PARENT_ONLY = {"key.serializer", "value.serializer", "partitioner.class",
                "interceptor.classes", "metric.reporters", "fastprod.metrics.log.interval.ms",
                "fastprod.metrics.prometheus.port"}
# How long one round of the reporters' questions to the workers may take: a Prometheus
# scrape (10 s timeout by default) must answer even while a worker is stuck.
_REPORTER_GATHER_TIMEOUT_S = 5.0


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
        if start_method not in ("spawn", "forkserver"):
            raise ConfigError(f"start_method must be 'spawn' or 'forkserver', not "
                              f"{start_method!r}: workers must not inherit threads or sockets")
        count = (os.cpu_count() or 1) if workers is None else workers
        if type(count) is not int or count < 1:
            raise ConfigError(f"workers must be a positive int, not {workers!r}")
        self._setup_front(cfg)
        # Made and configured before any worker starts, so a bad spec fails at once;
        # they start (init) once the workers can answer.
        reporters = load_reporters(cfg)
        ring_bytes = max(_MIN_RING_BYTES, _next_pow2(cfg.buffer_memory // count))
        self._buffer_memory = ring_bytes - 64  # one record must fit a ring
        self._closed = False
        self._close_lock = threading.Lock()
        self._stop = threading.Event()
        self._torn_down = False
        self._reporter_view: GatheredMetrics | None = None
        worker_config = {k: v for k, v in cfg.originals.items() if k not in _PARENT_ONLY}
        # The ring bounds the record bytes a worker holds; its accumulator reserves whole
        # batches, so give it room for partly filled ones on top.
        worker_config["buffer.memory"] = 2 * ring_bytes

        self._metadata = build_metadata(cfg)
        # the parent's own metrics: its metadata connections and its calls
        self._producer_metrics = build_metrics(cfg)
        self._client = build_network_client(cfg, self._metadata, self._metadata,
                                            client_id=f"{cfg.client_id}-metadata",
                                            metrics=self._producer_metrics)
        try:
            self._supervisor = Supervisor(count, ring_bytes, worker_config, self.client_id,
                                          multiprocessing.get_context(start_method),
                                          lambda: self._metadata.snapshot)
        except BaseException:
            self._metadata.close()
            self._client.close()
            raise
        self._workers: list[WorkerHandle] = self._supervisor.handles
        self._feeder = Feeder(self._workers, max(cfg.batch_size, 1), self._max_block_ms,
                              self._metadata, self._stop,
                              name=f"fastprod-stager-{self.client_id}")
        self._reports = ReportsReader(self._supervisor, self._on_refresh, self._stop,
                                      name=f"fastprod-reports-{self.client_id}")
        self._metadata.listeners.append(self._broadcast_snapshot)
        # send() is the C fast path; it hands anything unusual to _send below.
        self._send_path = SendPath(
            self._workers, self._feeder.sticky, self._feeder.sticky_lock,
            self._metadata.snapshot, self._send, self._feeder.stager_wake,
            key_passthrough=self._key_passthrough, value_passthrough=self._value_passthrough,
            partitioner_builtin=self._partitioner is None,
            ignore_keys=self._partitioner_config.ignore_keys,
            sticky_batch_size=self._feeder.batch_size)
        self._metadata.listeners.append(self._send_path.set_snapshot)
        # Interceptors see every record: they take the Python path.
        if self._interceptors is None:
            self.send = self._send_path.send  # type: ignore[method-assign]
        self._metadata_thread = threading.Thread(target=self._run_metadata, daemon=True,
                                                 name=f"fastprod-metadata-{self.client_id}")
        self._metadata_thread.start()
        self._reports.start()
        self._reporter_view = self._start_reporters(reporters)
        self._feeder.stager.start()
        log.info("sharded producer %s started with %d workers", self.client_id, count)

    def _broadcast_snapshot(self, snapshot: ClusterSnapshot) -> None:
        self._supervisor.broadcast(Snapshot(snapshot))

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
        check_callback(on_delivery, "on_delivery")  # before interceptors wrap it
        if self._interceptors is not None:  # (on_acknowledgement: on the reports thread)
            topic, value, key, partition, timestamp, headers, on_delivery = self._intercept(
                topic, value, key, partition, timestamp, headers, on_delivery)
        key_bytes, value_bytes, headers, timestamp, snapshot, p, remaining_ms = \
            self._prepare(topic, value, key, partition, timestamp, headers, monotonic_ms())
        too_large = self._record_too_large(key_bytes, value_bytes, headers)
        if too_large is not None:
            return failed(topic, p, too_large, on_delivery)
        if p == UNKNOWN_PARTITION:
            p = self._sticky_partition(topic, snapshot, (
                0 if value_bytes is None else len(value_bytes)) + (
                0 if key_bytes is None else len(key_bytes)))
        w = self._feeder.worker_for(topic, p)
        if w.lost is not None:
            return failed(topic, p, WorkerLostError(
                f"worker {w.index} for {topic}-{p} is lost: {w.lost}"), on_delivery)
        future = RecordFuture(ProduceRequestResult(topic, p), 0, timestamp,
                              -1 if key_bytes is None else len(key_bytes),
                              -1 if value_bytes is None else len(value_bytes))
        self._feeder.stage(w, topic, p, timestamp, value_bytes, key_bytes, headers, future,
                           on_delivery, remaining_ms)
        return future

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
        feeder = self._feeder
        try:
            for p, (indices, group_keys, group_values) in groups.items():
                if p == UNKNOWN_PARTITION:
                    feeder.send_sticky(topic, snapshot, indices, group_keys, group_values,
                                       timestamp, future, now_ms, deadline_ms)
                else:
                    feeder.write_group(topic, p, timestamp, indices, group_keys, group_values,
                                       0, len(group_values), future, now_ms, deadline_ms)
        except BaseException as exc:
            future.fail(exc, placed=feeder.framed_indices(future))
            exc.future = future  # type: ignore[union-attr]  # which records were queued
            raise
        finally:
            future.seal()
        return future

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

    def _on_refresh(self, topics: list[str]) -> None:
        """A worker needs fresh metadata (reports thread)."""
        now_ms = monotonic_ms()
        for topic in topics:
            self._metadata.add_topic(topic, now_ms)
        self._metadata.request_update()
        self._client.wakeup()

    def _wakeup(self) -> None:
        self._client.wakeup()

    def _sticky_partition(self, topic: str, snapshot: ClusterSnapshot, size: int) -> int:
        return self._feeder.sticky_partition(topic, snapshot, size)

    # ---- metrics, flush and close -----------------------------------------------------------

    def metrics(self, timeout: float = 10.0) -> dict[MetricName, MeasuredMetric]:
        """Producer's metrics, gathered from the workers (fastprod/sharded/metrics.py):
        each worker's tagged worker=N, and their totals under the plain names. Values
        are measured at this call (each worker is asked, within ``timeout`` s)."""
        if self._closed and self._stop.is_set():
            return {}
        return gather(self._producer_metrics.metrics.metrics(), self._workers,
                      self.client_id, timeout)

    def _start_reporters(self, reporters: list[Any]) -> GatheredMetrics | None:
        """metric.reporters run here in the parent, over the totals and worker=N metrics
        that metrics() returns: a view asks the workers when a reporter reads (see
        GatheredMetrics), since the workers' registries are in other processes."""
        if not reporters:
            return None
        view = GatheredMetrics(self._gather_for_reporters, reporters,
                               timeout=_REPORTER_GATHER_TIMEOUT_S,
                               own=self._producer_metrics.metrics.metrics)
        try:
            view.start()
        except BaseException:
            view.close()
            self.close(0)
            raise
        return view

    def _close_reporters(self) -> None:
        view, self._reporter_view = self._reporter_view, None
        if view is not None:
            view.close()

    def _gather_for_reporters(self, timeout: float) -> dict[MetricName, MeasuredMetric]:
        if self._stop.is_set():
            raise ProducerClosedError("the producer is closed")
        return gather(self._producer_metrics.metrics.metrics(), self._workers,
                      self.client_id, timeout)

    @timed("flush")
    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent before this call is delivered or failed. After
        close() it returns at once: close resolved every future."""
        if threading.current_thread() is self._reports.thread:
            raise RuntimeError("flush() cannot be called from a delivery callback")
        if self._closed and self._stop.is_set():  # closed, the rings gone
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = []
        for w in self._workers:
            waiting += w.shard.waitables()
            w.shard.frame_runs()
            w.send_control(Flush())
            w.wake_worker()
        self._feeder.stager_wake.set()
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
        if threading.current_thread() is self._reports.thread:
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
            self._supervisor.closing = True
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
        self._close_reporters()  # before the workers go: they must not be asked then
        grace_ms = 0 if timeout is not None else self.config.delivery_timeout_ms
        self._supervisor.shut_down(grace_ms, timeout)
        self._stop.set()
        self._reports.done.wait()
        self._fail_unanswered("the producer was closed before the record was sent")
        self._teardown()

    def _close_now(self) -> None:
        """Kill the workers, fail every record still pending, release everything."""
        self._stop.set()
        self._supervisor.kill()
        if self._reports.done.wait(5):  # that thread owns the pending entries till then
            self._fail_unanswered(
                "the producer was closed (interrupted) before the record was sent")
        self._teardown()

    def _fail_unanswered(self, reason: str) -> None:
        """The workers are gone and the reports thread has ended: complete what they
        reported last, and fail the rest."""
        for w in self._workers:
            self._reports.read_reports(w)
            fail_pending(w, ProducerClosedError(reason))

    def _teardown(self) -> None:
        if self._torn_down:  # a Ctrl-C during the first one: do not release twice
            return
        self._torn_down = True
        self._close_reporters()
        self._stop.set()
        self._metadata.close()
        # Every thread that touches the rings stops before their memory is unmapped.
        current = threading.current_thread()
        for thread in (self._feeder.stager, self._reports.thread, self._metadata_thread):
            if thread is not current and thread.is_alive():
                self._feeder.stager_wake.set()
                self._client.wakeup()
                thread.join(5)
        self._client.close()
        self._supervisor.close()
        self._producer_metrics.metrics.close()
        if self._interceptors is not None:
            self._interceptors.close()

    def __enter__(self) -> ShardedProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._workers)} workers"
        return f"<ShardedProducer {self.client_id} {state}>"


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p
