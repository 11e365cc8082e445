"""The parent's write side: which worker owns a partition, the sticky partition of
unkeyed records, and putting records into the owner's ring (staging send() records
into runs that a ``fastprod-stager`` thread frames about a millisecond later; framing
send_batch groups at once), waiting up to max.block.ms while a ring is full."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastprod._ext.accumulate import FastLock
from fastprod.clock import monotonic_ms
from fastprod.cluster.snapshot import ClusterSnapshot
from fastprod.engine.futures import BatchFuture
from fastprod.errors import BufferFullError, WorkerLostError
from fastprod.kernels import topic_worker_seed, worker_for_partition
from fastprod.partitioners import BuiltInPartitioner
from fastprod.sharded.handle import WorkerHandle

_STAGE_MS = 1  # how long a staged send() record may wait for more


class Feeder:
    def __init__(self, handles: list[WorkerHandle], batch_size: int, max_block_ms: int,
                 metadata: Any, stop: threading.Event, name: str) -> None:
        self.handles = handles
        self.batch_size = batch_size
        self._max_block_ms = max_block_ms
        self._metadata = metadata
        self._stop = stop
        # shared with the C send path (fastprod/_ext/shard.pyx SendPath)
        self.sticky: dict[str, BuiltInPartitioner] = {}
        self.sticky_lock = FastLock()
        self.stager_wake = threading.Event()
        self._topic_seed: dict[str, int] = {}
        self.stager = threading.Thread(target=self._run_stager, daemon=True, name=name)

    # ---- placement --------------------------------------------------------------------

    def worker_for(self, topic: str, partition: int) -> WorkerHandle:
        seed = self._topic_seed.get(topic)
        if seed is None:
            seed = self._topic_seed[topic] = topic_worker_seed(topic)
        return self.handles[worker_for_partition(seed, partition, len(self.handles))]

    def sticky_partition(self, topic: str, snapshot: ClusterSnapshot, size: int) -> int:
        """The partition of an unkeyed record of ``size`` bytes. The parent cannot see
        the workers' batches, so the partition switches after batch.size bytes."""
        with self.sticky_lock:
            partitioner = self.sticky.get(topic)
            if partitioner is None:
                partitioner = self.sticky[topic] = BuiltInPartitioner(topic, self.batch_size)
            p = partitioner.peek_partition(snapshot)
            partitioner.update_partition_info(size, snapshot, enforce_switch=True)
            return p

    # ---- send(): staged runs ------------------------------------------------------------

    def stage(self, w: WorkerHandle, topic: str, p: int, timestamp: int,
              value: bytes | None, key: bytes | None, headers: Any, future: Any,
              on_delivery: Any, remaining_ms: int) -> None:
        deadline = None
        while not w.shard.stage(topic, p, timestamp, value, key, headers or None, future,
                                on_delivery):
            if deadline is None:
                deadline = time.monotonic() + remaining_ms / 1000.0
            self.wait_for_ring(w, deadline)
        if not self.stager_wake.is_set():
            self.stager_wake.set()

    def _run_stager(self) -> None:
        """Frame staged send() records about a millisecond after they were staged."""
        while not self._stop.is_set():
            self.stager_wake.wait(0.5)
            time.sleep(_STAGE_MS / 1000.0)
            self.stager_wake.clear()
            if self.frame_all_runs():
                self.stager_wake.set()  # a ring was full: try again shortly

    def frame_all_runs(self) -> bool:
        """Frame every staged run; True if some records are still waiting."""
        left = False
        now_ms = monotonic_ms()
        for w in self.handles:
            if w.shard.runs:
                # In use: send()'s C fast path does not mark it, so keep
                # metadata.max.idle.ms from forgetting it (list() copies atomically).
                for topic in {topic for topic, _ in list(w.shard.runs)}:
                    self._metadata.touch(topic, now_ms)
                left |= w.shard.frame_runs()
                w.wake_worker()
        return left

    def wait_for_ring(self, w: WorkerHandle, deadline: float) -> None:
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

    # ---- send_batch(): frames at once ---------------------------------------------------

    def send_sticky(self, topic: str, snapshot: ClusterSnapshot, indices: Any, keys: Any,
                    values: Any, timestamp: int, future: BatchFuture, now_ms: int,
                    deadline_ms: int) -> None:
        """Unkeyed records: runs of about batch.size bytes per sticky partition."""
        first = values[0]
        per_record = 12 + (0 if first is None else len(first))
        run = max(1, self.batch_size // per_record)
        for start in range(0, len(values), run):
            stop = min(start + run, len(values))
            p = self.sticky_partition(topic, snapshot, (stop - start) * per_record)
            self.write_group(topic, p, timestamp, indices, keys, values, start, stop, future,
                             now_ms, deadline_ms)

    def write_group(self, topic: str, p: int, timestamp: int, indices: Any, keys: Any,
                    values: Any, start: int, stop: int, future: BatchFuture, now_ms: int,
                    deadline_ms: int) -> None:
        """Frame values[start:stop] into the owning worker's ring, as many frames as the
        ring takes at a time, blocking (up to max.block.ms) while it is full."""
        w = self.worker_for(topic, p)
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
                self.wait_for_ring(w, deadline)

    def framed_indices(self, future: BatchFuture) -> set[int]:
        """Input positions of a send_batch's records already in some ring: the workers
        will report them, so a failure of the call must not fail them too."""
        placed: set[int] = set()
        for w in self.handles:
            with w.shard.lock:
                entries = list(w.pending.values())  # (reports remove entries meanwhile)
            for entry in entries:
                if entry.future is future:
                    placed.update(entry.indices)
        return placed
