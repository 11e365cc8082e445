"""A ShardedProducer worker process: the in-process engine, fed from a ring.

Its main thread reads records frames from the parent's ring and appends them to the
accumulator, as a user thread calls send() on a Producer; the engine's own sender
thread (the same Sender, NetworkClient and idempotence as Producer) batches,
compresses, sends and retries. When a batch completes, the records of each frame in
it are reported to the parent through the reports ring, and the frame's ring space is
released once all its records are answered, oldest first: whatever a dead worker
leaves unacknowledged is still in the ring for its replacement to send.

The worker knows the cluster only through the snapshots its parent sends; a refresh
it needs (leader moved, unknown topic) is asked of the parent. It ignores Ctrl-C (the
parent decides when to stop) and exits when its parent is gone.

Threads: the main thread owns the records ring's read side and the frame list's
appends; the sender thread completes batches. ``_lock`` guards the frame list, the
ring's release position and the reports ring's write side, which both threads touch.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Callable

from fastprod._ext.ring import Ring, decode_records
from fastprod.clock import monotonic_ms
from fastprod.config import ProducerConfig
from fastprod.engine.build import build_engine
from fastprod.errors import KafkaTimeoutError
from fastprod.sharded import messages
from fastprod.sharded.messages import (
    TAG_TOPIC,
    Answer,
    Ask,
    Flush,
    Report,
    Shutdown,
    Snapshot,
    TopicRegistration,
)
from fastprod.sharded.worker_metadata import WorkerMetadata

log = logging.getLogger("fastprod.sharded")

_IDLE_WAIT_S = 0.1


@dataclass
class WorkerSpec:
    """Everything a worker needs, pickled to it by the spawn start method."""

    index: int
    generation: int
    config: dict[str, Any]
    records_name: str
    reports_name: str
    control: Any  # multiprocessing Connection, both ways
    wake: Any  # parent -> worker: records are waiting
    parent_wake: Any  # worker -> parent: reports are waiting
    parent_pid: int
    log_level: int
    topics: dict[int, str]  # registered before this worker started (their frames are gone)


def main(spec: WorkerSpec) -> None:
    # Ctrl-C is the parent's to handle; it started us with SIGINT blocked, so that a
    # Ctrl-C during our start-up cannot kill us either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    logging.basicConfig(level=spec.log_level,
                        format=f"%(asctime)s fastprod-worker-{spec.index} %(name)s %(message)s")
    Worker(spec).run()


class Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._records_shm = _attach(spec.records_name)
        self._reports_shm = _attach(spec.reports_name)
        self.records = Ring(self._records_shm.buf)
        self.reports = Ring(self._reports_shm.buf)
        self._control_lock = threading.Lock()
        self.metadata = WorkerMetadata(spec.control, self._control_lock)
        cfg = ProducerConfig(spec.config)
        self.max_block_ms = cfg.max_block_ms
        self.delivery_timeout_ms = cfg.delivery_timeout_ms
        self.engine = build_engine(cfg, self.metadata, fetcher=None)
        self._lock = threading.Lock()
        # [ring end position, records not yet answered], oldest first
        self._frames: collections.deque[list[int]] = collections.deque()
        self._backlog: collections.deque[bytes] = collections.deque()
        self._topics: dict[int, str] = dict(spec.topics)
        self._shutdown_deadline: float | None = None
        self._flushing = False

    # ---- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        self.engine.start(f"fastprod-worker-{self.spec.index}-sender")
        # Control messages (snapshots above all) must get through even while the main
        # thread is blocked appending to a full accumulator.
        threading.Thread(target=self._run_control, daemon=True,
                         name=f"fastprod-worker-{self.spec.index}-control").start()
        self.records.rewind()  # a replacement re-sends what its predecessor left
        log.debug("worker %d (generation %d) started", self.spec.index, self.spec.generation)
        try:
            while True:
                item = self._next_frame()
                if item is None:
                    if not self._idle():
                        break
                    continue
                if item is not True:
                    self._append(*item)
        finally:
            self._stop()

    def _idle(self) -> bool:
        """Nothing to read: flush what waits, maybe sleep. False: time to exit."""
        self._flush_backlog()
        self.metadata.send_request()
        with self._lock:
            if self._flushing and not self.engine.accumulator.has_incomplete():
                self.engine.accumulator.end_flush()
                self._flushing = False
        if self._shutdown_deadline is not None:
            return False
        if os.getppid() != self.spec.parent_pid:
            log.warning("worker %d: the parent process is gone; exiting", self.spec.index)
            self._shutdown_deadline = time.monotonic() + 2.0
            return False
        self.records.set_consumer_waiting(True)
        try:
            if self.records.write_pos == self.records.read_pos:
                if self.spec.wake.poll(_IDLE_WAIT_S):
                    messages.drain(self.spec.wake)
        finally:
            self.records.set_consumer_waiting(False)
        return True

    def _run_control(self) -> None:
        """The control thread: snapshots, flush, shutdown and questions from the parent."""
        control = self.spec.control
        try:
            while True:
                message = messages.decode(control.recv_bytes())
                if type(message) is Snapshot:
                    self.metadata.set_snapshot(message.snapshot)
                    # Batches may wait for this (a leader it did not know): the sender
                    # sleeps until woken, as no metadata refresh of its own wakes it.
                    self.engine.sender.wakeup()
                elif type(message) is Flush:
                    with self._lock:
                        if not self._flushing:
                            self.engine.accumulator.begin_flush()
                            self._flushing = True
                    self.engine.sender.wakeup()
                elif type(message) is Shutdown:
                    self._shutdown_deadline = time.monotonic() + message.timeout_ms / 1000
                    return
                elif type(message) is Ask:
                    self._answer(message)
                else:
                    log.error("worker %d: unexpected %s on the control pipe",
                              self.spec.index, type(message).__name__)
        except (EOFError, OSError):
            log.warning("worker %d: the parent closed its pipe; exiting", self.spec.index)
            self._shutdown_deadline = time.monotonic() + 2.0
            # A main thread blocked on a full accumulator must not wait out max.block.ms.
            self.engine.accumulator.pool.close()

    # ---- questions ----------------------------------------------------------------------

    def _status(self, argument: Any) -> dict[str, Any]:
        with self._lock:
            frames = len(self._frames)
            backlog = len(self._backlog)
        return {"pid": os.getpid(), "generation": self.spec.generation,
                "unanswered_frames": frames, "reports_backlog": backlog,
                "incomplete_batches": len(self.engine.accumulator.incomplete_batches())}

    def _ping(self, argument: Any) -> Any:
        return argument

    def _metrics(self, argument: Any) -> list[list[Any]]:
        """[name, group, description, tags, value] of every metric of this worker."""
        return [[n.name, n.group, n.description, n.tags, m.value()]
                for n, m in self.engine.metrics.metrics.metrics().items()]

    # What the parent can ask (messages.Ask): name -> method(self, argument) -> answer
    QUESTIONS: dict[str, Callable[[Any, Any], Any]] = {
        "status": _status, "ping": _ping, "metrics": _metrics}

    def _answer(self, ask: Ask) -> None:
        handler = self.QUESTIONS.get(ask.question)
        try:
            if handler is None:
                raise ValueError(f"unknown question {ask.question!r} (known: "
                                 f"{', '.join(sorted(self.QUESTIONS))})")
            answer = Answer(ask.request_id, handler(self, ask.argument))
        except Exception as exc:
            answer = Answer(ask.request_id, None, messages.encode_error(exc))
        data = messages.encode(answer)
        with self._control_lock:
            self.spec.control.send_bytes(data)

    # ---- records in ---------------------------------------------------------------------------

    def _next_frame(self):
        """(records frame, its state) or True (a topic registration) or None (empty).
        Under the lock: the sender thread releases ring space, and must not release a
        frame read but not yet counted."""
        with self._lock:
            payload = self.records.read()
            if payload is None:
                return None
            if payload[0] == TAG_TOPIC:
                topic = messages.decode(payload)
                assert type(topic) is TopicRegistration
                self._topics[topic.index] = topic.name
                del payload
                self._release_done_locked()
                return True
            frame = decode_records(payload)
            del payload
            state = [self.records.read_end_pos(), frame.count]
            self._frames.append(state)
            return frame, state

    def _append(self, frame, state) -> None:
        topic = self._topics[frame.topic_index]
        appended = 0

        def on_segment(batch, first_delta, start, count):
            nonlocal appended
            appended = start + count
            if batch.hooks is None:
                batch.hooks = []
            batch.hooks.append(lambda: self._report_batch(batch, first_delta, frame.first_id,
                                                          start, count, state))

        accumulator = self.engine.accumulator
        sent_ms = _sent_ms(frame)
        waited_ms = monotonic_ms() - sent_ms
        if waited_ms >= self.delivery_timeout_ms:
            # Expired in the ring: fail them unsent, as Producer's accumulator would.
            error = KafkaTimeoutError(
                f"expiring {frame.count} record(s) for {topic}-{frame.partition}: {waited_ms} "
                f"ms has passed since they were sent (delivery.timeout.ms="
                f"{self.delivery_timeout_ms}), waiting in worker {self.spec.index}'s ring")
            self._report(Report(frame.first_id, 0, frame.count, frame.partition, -1, -1,
                                messages.encode_error(error), None), state, frame.count)
            return
        try:
            if frame.headers is None:
                wake = accumulator.append_many(
                    topic, frame.partition, frame.timestamp, frame.keys, frame.values,
                    self.max_block_ms, sent_ms, self.metadata.snapshot, on_segment)
            else:
                wake = self._append_with_headers(topic, frame, state, sent_ms)
                appended = frame.count
        except Exception as exc:  # e.g. BufferFullError: those records fail, reported
            log.warning("worker %d: appending to %s-%d failed: %s", self.spec.index, topic,
                        frame.partition, exc)
            self._report(Report(frame.first_id, appended, frame.count - appended,
                                frame.partition, -1, -1, messages.encode_error(exc), None),
                         state, frame.count - appended)
            wake = True
        if wake:
            self.engine.sender.wakeup()

    def _append_with_headers(self, topic: str, frame, state, sent_ms: int) -> bool:
        wake = False
        for i in range(frame.count):
            def on_delivery(metadata, error, i=i):
                self._report(Report(frame.first_id, i, 1, frame.partition,
                                    -1 if metadata is None else metadata.offset,
                                    -1 if metadata is None else metadata.timestamp,
                                    messages.encode_error(error), None), state, 1)
            result = self.engine.accumulator.append(
                topic, frame.partition, frame.timestamp,
                None if frame.keys is None else frame.keys[i], frame.values[i],
                frame.headers[i], on_delivery, self.max_block_ms, sent_ms,
                self.metadata.snapshot)
            wake |= result.batch_is_full or result.new_batch_created
        return wake

    # ---- reports out (sender thread, mostly) --------------------------------------------------

    def _report_batch(self, batch, first_delta: int, frame_id: int, start: int, count: int,
                      state) -> None:
        result = batch.result
        error = messages.encode_error(result.error)
        # one piece, unless the batch was split and its parts written apart
        for rel, n, base, log_append_time in result.pieces(first_delta, count):
            record_errors = None
            if result.record_errors:
                record_errors = {r - rel: messages.encode_error(e)
                                 for r, e in result.record_errors.items() if rel <= r < rel + n}
            self._report(Report(frame_id, start + rel - first_delta, n, batch.partition, base,
                                log_append_time, error, record_errors), state, n)

    def _report(self, report: Report, state, count: int) -> None:
        frame = messages.encode(report)
        with self._lock:
            if self._backlog or not self.reports.try_write(frame):
                self._backlog.append(frame)
            state[1] -= count
            self._release_done_locked()
        if self.reports.consumer_waiting:
            try:
                self.spec.parent_wake.send_bytes(b"\0")
            except OSError:
                pass

    def _flush_backlog(self) -> None:
        with self._lock:
            while self._backlog and self.reports.try_write(self._backlog[0]):
                self._backlog.popleft()

    def _release_done_locked(self) -> None:
        """Give back the ring space of the oldest frames whose records are all answered
        (a topic frame counts as answered once read)."""
        frames = self._frames
        end = None
        while frames and frames[0][1] <= 0:
            end = frames.popleft()[0]
        if not frames:
            end = self.records.read_pos  # everything read is answered (topic frames too)
        if end is not None and end > self.records.release_pos:
            self.records.release(end)

    # ---- stopping ---------------------------------------------------------------------------

    def _stop(self) -> None:
        deadline = self._shutdown_deadline or time.monotonic()
        engine = self.engine
        engine.sender.initiate_close()
        engine.thread.join(max(deadline - time.monotonic(), 0))
        if engine.thread.is_alive():
            engine.sender.force_close()
            engine.thread.join()
        # Hand the last reports over while the parent still reads them.
        while self._backlog and time.monotonic() < deadline + 1.0:
            self._flush_backlog()
            if self._backlog:
                time.sleep(0.01)
        try:
            self.spec.parent_wake.send_bytes(b"\0")
        except OSError:
            pass
        self.records.close()
        self.reports.close()
        self._records_shm.close()
        self._reports_shm.close()
        log.debug("worker %d stopped", self.spec.index)


def _attach(name: str) -> shared_memory.SharedMemory:
    # Spawned children share the parent's resource tracker, which keeps a set of names:
    # attaching registers the name again, harmlessly, and the parent's unlink (or the
    # tracker, if the parent is killed) removes the segment once.
    return shared_memory.SharedMemory(name=name)


def _sent_ms(frame) -> int:
    """When the frame's records were sent (the parent's monotonic clock is this one):
    their batches date from then, so time spent in the ring counts towards
    delivery.timeout.ms and linger.ms, as time in the accumulator does in Producer."""
    now = monotonic_ms()
    return now if frame.created_ms < 0 else min(frame.created_ms, now)
