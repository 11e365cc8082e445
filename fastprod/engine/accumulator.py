"""RecordAccumulator: per-partition queues of batches between send() and the sender.

The shape is Java's RecordAccumulator: ``append`` from the caller's thread; ``ready``,
``drain``, ``expired_batches`` and ``reenqueue`` from the sender thread, each taking the
current immutable ClusterSnapshot and ``now_ms`` (a monotonic clock in milliseconds)
as arguments, so unit tests drive it with a fake clock.

Threads: one lock guards the deques, the partitioners' sticky state and the sets below.
Memory for a new batch is reserved from the BufferPool outside the lock, because that
may block for up to max.block.ms.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Literal, NamedTuple

from fastprod.clock import Clock, monotonic_ms
from fastprod.cluster.snapshot import ClusterSnapshot
from fastprod._ext.accumulate import FastLock, ProducerBatch, TopicQueues
from fastprod.engine.buffer_pool import BufferPool
from fastprod.errors import ProducerClosedError
from fastprod.engine.futures import DeliveryCallback, RecordFuture
from fastprod.kernels import RECORD_BATCH_OVERHEAD, BatchBuilder
from fastprod.partitioners import BuiltInPartitioner

if TYPE_CHECKING:
    from fastprod.engine.transaction_manager import TransactionManager

Queue = collections.deque[ProducerBatch]  # one partition's batches, oldest first

UNKNOWN_PARTITION = -1

# Java's CompressionRatioEstimator: move the per-topic estimate quickly towards worse
# ratios (to keep batches under batch.size) and slowly towards better ones.
_RATIO_DETERIORATE_STEP = 0.05
_RATIO_IMPROVING_STEP = 0.005

TP = tuple[str, int]


class AppendResult(NamedTuple):
    future: RecordFuture | None
    partition: int
    batch_is_full: bool
    new_batch_created: bool
    abort_for_new_batch: bool


class ReadyCheckResult(NamedTuple):
    ready_nodes: set[int]
    next_ready_check_delay_ms: int
    unknown_leader_topics: set[str]


def record_size_upper_bound(key: bytes | None, value: bytes | None, headers: Any) -> int:
    """A record's largest possible encoded size, batch header included (Java's
    AbstractRecords.estimateSizeInBytesUpperBound for magic 2)."""
    size = RECORD_BATCH_OVERHEAD + 21 + 5 + 5  # length, attributes, deltas, lengths
    size += 0 if key is None else len(key)
    size += 0 if value is None else len(value)
    if headers:
        for hkey, hvalue in headers:
            size += 10 + len(hkey) * 4 + (0 if hvalue is None else len(hvalue))
    return size


class RecordAccumulator:
    def __init__(self, *, batch_size: int, compression_type: int,
                 compression_level: int | None, linger_ms: int, retry_backoff_ms: int,
                 retry_backoff_max_ms: int, delivery_timeout_ms: int, pool: BufferPool,
                 partitioner_factory: Callable[[str], BuiltInPartitioner],
                 transaction_manager: TransactionManager | None = None,
                 enable_adaptive_partitioning: bool = True,
                 partition_availability_timeout_ms: int = 0,
                 clock: Clock = monotonic_ms) -> None:
        self.clock = clock  # for the deadlines of blocking calls; the rest takes now_ms
        self.batch_size = batch_size
        self.compression_type = compression_type
        self.compression_level = compression_level
        self.linger_ms = linger_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.retry_backoff_max_ms = retry_backoff_max_ms
        self.delivery_timeout_ms = delivery_timeout_ms
        self.next_expiry_ms = 2**63 - 1  # of the queued batches, as of expired_batches
        self.pool = pool
        self._partitioner_factory = partitioner_factory
        # partitioner.adaptive.partitioning.enable, partitioner.availability.timeout.ms
        self.enable_adaptive_partitioning = enable_adaptive_partitioning
        self.partition_availability_timeout_ms = partition_availability_timeout_ms
        self._node_stats: dict[int, list[int]] = {}
        self.transaction_manager = transaction_manager
        # Shared with the C fast path of Producer.send (SendFastPath), which appends to
        # open batches under this same lock.
        self.lock = self._lock = FastLock()
        self.topics: dict[str, TopicQueues] = {}
        self._topics = self.topics
        self._incomplete: set[ProducerBatch] = set()
        self._muted: set[TP] = set()
        self._drain_index: dict[int, int] = {}
        self._flushes_in_progress = 0
        self._appends_in_progress = 0
        self._closed = False
        self._nodes_cache: tuple[int, dict[int, list[TP]]] = (-1, {})

    # ---- caller thread -------------------------------------------------------------

    def append(self, topic: str, partition: int, timestamp: int, key: bytes | None,
               value: bytes | None, headers: Any, callback: DeliveryCallback | None,
               max_block_ms: int, now_ms: int, snapshot: ClusterSnapshot,
               abort_on_new_batch: bool = False) -> AppendResult:
        """Append a record to its partition's open batch, opening one if needed.

        ``partition`` UNKNOWN_PARTITION means "sticky": the built-in partitioner picks it
        and switches after batch.size bytes, as in Java (KIP-794).
        """
        reserved = 0
        info = self._begin_append(topic)
        try:
            while True:
                with self._lock:
                    sticky = partition == UNKNOWN_PARTITION
                    effective, dq = self._deque_for(info, partition, snapshot)
                    result = self._try_append(dq, effective, timestamp, key, value, headers,
                                              callback, now_ms)
                    if result is None and reserved:
                        result = self._append_new_batch(info, topic, effective, dq, timestamp,
                                                        key, value, headers, callback, now_ms,
                                                        reserved)
                        reserved = 0
                    if result is not None:
                        if sticky:
                            info.partitioner.update_partition_info(
                                result[1], snapshot, enforce_switch=_all_full(dq))
                        return result[0]
                if abort_on_new_batch:
                    return AppendResult(None, effective, False, False, True)
                # Reserve memory outside the lock: this may block for max.block.ms.
                need = max(self.batch_size, record_size_upper_bound(key, value, headers))
                self.pool.allocate(need, max_block_ms)
                reserved = need
        finally:
            with self._lock:
                self._appends_in_progress -= 1
            if reserved:  # another thread opened a batch we could use
                self.pool.deallocate(reserved)

    def sticky_partition(self, topic: str, snapshot: ClusterSnapshot, size: int) -> int:
        """The built-in partitioner's sticky partition for a record of ``size`` bytes
        placed by the caller (send_batch's null-key records among keyed ones), counted
        towards the switch."""
        with self._lock:
            info = self._topics.get(topic)
            if info is None:
                info = self._topics[topic] = TopicQueues(self._partitioner_factory(topic))
            partition = info.partitioner.peek_partition(snapshot)
            info.partitioner.update_partition_info(size, snapshot, enforce_switch=True)
            return partition

    def _begin_append(self, topic: str) -> TopicQueues:
        with self._lock:
            self._appends_in_progress += 1
            info = self._topics.get(topic)
            if info is None:
                info = self._topics[topic] = TopicQueues(self._partitioner_factory(topic))
            return info

    def _deque_for(self, info: TopicQueues, partition: int,
                   snapshot: ClusterSnapshot) -> tuple[int, Queue]:
        """(partition, its deque) for an append; the sticky one for UNKNOWN_PARTITION.
        Called with the lock held."""
        if self._closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        if partition == UNKNOWN_PARTITION:
            return self._sticky_deque(info, snapshot)
        dq = info.deques.get(partition)
        if dq is None:
            dq = info.deques[partition] = collections.deque()
        return partition, dq

    @staticmethod
    def _sticky_deque(info: TopicQueues, snapshot: ClusterSnapshot) -> tuple[int, Queue]:
        """The sticky partition and its deque. If every batch there is full, finish a
        switch that was held back so as not to leave a half-filled batch (Java's
        partitionChanged + updatePartitionInfo(0, enforce) in append)."""
        partitioner = info.partitioner
        while True:
            partition = partitioner.peek_partition(snapshot)
            dq = info.deques.get(partition)
            if dq is None:
                dq = info.deques[partition] = collections.deque()
            if not (_all_full(dq) and
                    partitioner.update_partition_info(0, snapshot, enforce_switch=True)):
                return partition, dq

    def _try_append(self, dq: Queue, partition: int, timestamp: int, key: bytes | None,
                    value: bytes | None, headers: Any, callback: DeliveryCallback | None,
                    now_ms: int) -> tuple[AppendResult, int] | None:
        if not dq:
            return None
        last = dq[-1]
        if last.full:
            return None
        future, appended = last.try_append(timestamp, key, value, headers, callback)
        if future is None:
            return None
        full = len(dq) > 1 or last.full
        return AppendResult(future, partition, full, False, False), appended

    def _append_new_batch(self, info: TopicQueues, topic: str, partition: int, dq: Queue,
                          timestamp: int, key: bytes | None, value: bytes | None,
                          headers: Any, callback: DeliveryCallback | None, now_ms: int,
                          reserved: int) -> tuple[AppendResult, int]:
        batch = self._new_batch(info, topic, partition, now_ms, reserved)
        # The first record goes in before the batch joins its queue: if encoding it
        # raises, no empty batch is left where the partition's next records would go.
        future, appended = batch.try_append(timestamp, key, value, headers, callback)
        assert future is not None  # the first record always fits
        self._enqueue_new(dq, batch)
        full = len(dq) > 1 or batch.full
        return AppendResult(future, partition, full, True, False), appended + RECORD_BATCH_OVERHEAD

    def _new_batch(self, info: TopicQueues, topic: str, partition: int, now_ms: int,
                   reserved: int) -> ProducerBatch:
        builder = BatchBuilder(self.compression_type, self.batch_size,
                               self.compression_level)
        if self.compression_type:
            builder.estimated_compression_ratio = info.compression_ratio
        return ProducerBatch(topic, partition, builder, now_ms, reserved)

    def _enqueue_new(self, dq: Queue, batch: ProducerBatch) -> None:
        dq.append(batch)
        self._incomplete.add(batch)

    def append_many(self, topic: str, partition: int, timestamp: int,
                    keys: Sequence[Any] | None, values: Sequence[Any],
                    max_block_ms: int, now_ms: int, snapshot: ClusterSnapshot,
                    on_segment: Callable[[ProducerBatch, int, int, int], object]) -> bool:
        """Append every ``values[i]`` (with ``keys[i]``), in order, filling batches.

        ``on_segment(batch, first_offset_delta, start, count)`` is called (under the
        lock) for each run of records placed in one batch. ``partition`` may be
        UNKNOWN_PARTITION: the sticky partition, switched as records are appended.
        ``now_ms`` dates new batches (a worker of ShardedProducer passes when the
        records were sent); blocking for memory lasts max_block_ms from this call.
        Returns True when a batch was opened or filled (the sender should wake up).
        """
        total = len(values)
        start = 0
        wake = False
        reserved = 0
        deadline_ms = self.clock() + max_block_ms
        info = self._begin_append(topic)
        try:
            while start < total:
                with self._lock:
                    sticky = partition == UNKNOWN_PARTITION
                    effective, dq = self._deque_for(info, partition, snapshot)
                    batch = dq[-1] if dq and not dq[-1].full else None
                    new = batch is None and reserved
                    if new:
                        batch = self._new_batch(info, topic, effective, now_ms, reserved)
                    if batch is not None:
                        first = batch.record_count
                        count, nbytes = batch.append_many(timestamp, keys, values, start,
                                                          total)
                        if new:  # queued once it holds records (see _append_new_batch)
                            self._enqueue_new(dq, batch)
                            reserved = 0
                            wake = True
                            nbytes += RECORD_BATCH_OVERHEAD
                        if count:
                            on_segment(batch, first, start, count)
                            start += count
                            if sticky:
                                info.partitioner.update_partition_info(
                                    nbytes, snapshot, enforce_switch=_all_full(dq))
                        if batch.full:
                            wake = True
                        if count:
                            continue
                # Reserve memory outside the lock: this may block until the deadline.
                key = None if keys is None else keys[start]
                need = max(self.batch_size, record_size_upper_bound(key, values[start], None))
                self.pool.allocate(need, max(deadline_ms - self.clock(), 0))
                reserved = need
        finally:
            with self._lock:
                self._appends_in_progress -= 1
            if reserved:
                self.pool.deallocate(reserved)
        return wake

    # ---- sender thread -------------------------------------------------------------

    def _partitions_by_node(self, snapshot: ClusterSnapshot) -> dict[int, list[TP]]:
        version, by_node = self._nodes_cache
        if version != snapshot.version:
            by_node = {}
            for topic, parts in snapshot.topics.items():
                for p in parts:
                    if p.leader >= 0:
                        by_node.setdefault(p.leader, []).append((topic, p.partition))
            self._nodes_cache = (snapshot.version, by_node)
        return by_node

    def _backoff_ms(self, batch: ProducerBatch) -> int:
        """Exponential retry backoff (Java's ExponentialBackoff without jitter); none for
        a retry to a new leader (KIP-951)."""
        if batch.attempts <= 0 or batch.leader_changed_for_retry:
            return 0
        backoff = self.retry_backoff_ms * (2 ** (batch.attempts - 1))
        return int(min(backoff, self.retry_backoff_max_ms))

    def ready(self, snapshot: ClusterSnapshot, now_ms: int) -> ReadyCheckResult:
        """Which leaders have a batch worth sending now, and how long until the next."""
        ready_nodes: set[int] = set()
        unknown: set[str] = set()
        next_delay = 2**31 - 1
        with self._lock:
            exhausted = self.pool.queued > 0
            force = exhausted or self._closed or self._flushes_in_progress > 0
            for topic, info in self._topics.items():
                parts = snapshot.topics.get(topic)
                # Java's partitionReady: queue sizes for adaptive partitioning, once the
                # topic has a queue for every partition (else its switching is uniform).
                sizes: list[int] | None = None
                ids: list[int] = []
                if (self.enable_adaptive_partitioning and parts is not None
                        and len(info.deques) >= len(parts)):
                    sizes = [0] * len(info.deques)
                    ids = [0] * len(info.deques)
                slot = -1
                for partition, dq in info.deques.items():
                    leader = leader_epoch = -1
                    if parts is not None and partition < len(parts):
                        leader = parts[partition].leader
                        leader_epoch = parts[partition].leader_epoch
                    has_leader = leader >= 0 and leader in snapshot.nodes
                    if has_leader and sizes is not None:
                        slot += 1
                        ids[slot] = partition
                        sizes[slot] = 0
                    if not dq:
                        continue
                    if not has_leader:
                        unknown.add(topic)
                        continue
                    batch = dq[0]
                    batch.maybe_update_leader_epoch(leader_epoch)  # KIP-951
                    if sizes is not None:
                        sizes[slot] = len(dq)
                        if self._unavailable(leader):
                            slot -= 1  # left out: its slot goes to the next partition
                    if leader in ready_nodes or (topic, partition) in self._muted:
                        continue
                    next_delay = min(next_delay, max(
                        batch.created_ms + self.delivery_timeout_ms - now_ms, 0))
                    backoff = self._backoff_ms(batch) if batch.in_retry else 0
                    waited = now_ms - batch.last_attempt_ms
                    backing_off = batch.in_retry and waited < backoff
                    time_to_wait = backoff if batch.in_retry else self.linger_ms
                    full = len(dq) > 1 or batch.full
                    expired = waited >= time_to_wait
                    if (full or expired or force) and not backing_off:
                        ready_nodes.add(leader)
                    else:
                        next_delay = min(next_delay, max(time_to_wait - waited, 0))
                update = getattr(info.partitioner, "update_partition_load_stats", None)
                if update is not None:
                    update(sizes, ids, slot + 1)
        return ReadyCheckResult(ready_nodes, next_delay, unknown)

    def update_node_latency_stats(self, node: int, now_ms: int, can_drain: bool) -> None:
        """Java's updateNodeLatencyStats (the sender, for every node ready() names): a
        node that stays ready without being drained for partitioner.availability.
        timeout.ms has its partitions left out of adaptive partitioning."""
        if self.partition_availability_timeout_ms <= 0:
            return
        stats = self._node_stats.setdefault(node, [now_ms, now_ms])  # [ready, drained]
        if can_drain:
            stats[1] = now_ms
        stats[0] = now_ms

    def _unavailable(self, node: int) -> bool:
        if self.partition_availability_timeout_ms <= 0:
            return False
        stats = self._node_stats.get(node)
        return stats is not None and stats[0] - stats[1] > self.partition_availability_timeout_ms

    def drain(self, snapshot: ClusterSnapshot, nodes: set[int], max_size: int,
              now_ms: int) -> dict[int, list[ProducerBatch]]:
        """Take at most one batch per partition for each ready node, up to max_size
        bytes of encoded batches per node, starting where the last drain of that node
        stopped (fairness). Each batch is taken under the lock but encoded (compressed)
        after it is released, so compression never blocks send()."""
        by_node = self._partitions_by_node(snapshot)
        out: dict[int, list[ProducerBatch]] = {}
        for node in nodes:
            tps = by_node.get(node)
            if tps:
                batches = self._drain_node(node, tps, max_size, now_ms, snapshot)
                if batches:
                    out[node] = batches
        return out

    def _drain_node(self, node: int, tps: list[TP], max_size: int, now_ms: int,
                    snapshot: ClusterSnapshot) -> list[ProducerBatch]:
        ready: list[ProducerBatch] = []
        size = 0  # encoded bytes taken so far, as Java counts them
        with self._lock:
            start = i = self._drain_index.get(node, 0) % len(tps)
        while True:
            with self._lock:
                current = i
                i = (i + 1) % len(tps)
                batch = self._take(tps[current], ready, size, max_size, now_ms, snapshot)
                if batch is False:  # the request is full: the next drain starts here
                    i = current
            if batch is False:
                break
            if batch is not None:
                size += len(batch.records())
                self._update_compression_ratio(batch)
                ready.append(batch)
            if i == start:
                break
        with self._lock:
            self._drain_index[node] = i
        return ready

    def _take(self, tp: TP, ready: list[ProducerBatch], size: int, max_size: int,
              now_ms: int, snapshot: ClusterSnapshot) -> ProducerBatch | Literal[False] | None:
        """The first batch of ``tp`` if it may go now, None if not, False if it would
        overflow the request. Called with the lock held."""
        topic, partition = tp
        info = self._topics.get(topic)
        dq = None if info is None else info.deques.get(partition)
        if not dq or tp in self._muted:
            return None
        first = dq[0]
        # the leader epoch it goes to (KIP-951: a retry to a newer one skips the backoff)
        first.maybe_update_leader_epoch(snapshot.topics[topic][partition].leader_epoch)
        if first.in_retry and now_ms - first.last_attempt_ms < self._backoff_ms(first):
            return None
        tm = self.transaction_manager
        if tm is not None and tm.should_stop_drain(first, tp):
            return None
        # The first batch always goes, so a batch larger than max_size leaves alone.
        if ready and size + first.estimated_size_in_bytes > max_size:
            return False
        batch = dq.popleft()
        # Closed for appends from now on: its bytes are encoded once, and a retry puts
        # it back at the head, where send() must not add to it.
        batch.full = True
        if tm is not None:
            tm.stamp(batch)
        batch.drained_ms = now_ms
        return batch

    def _update_compression_ratio(self, batch: ProducerBatch) -> None:
        """Java's CompressionRatioEstimator, fed with records-only sizes."""
        if not self.compression_type or batch.in_retry:
            return
        uncompressed = batch.builder.size_in_bytes - RECORD_BATCH_OVERHEAD
        if uncompressed <= 0:
            return
        observed = (len(batch.records()) - RECORD_BATCH_OVERHEAD) / uncompressed
        with self._lock:
            info = self._topics.get(batch.topic)
            if info is None:
                return
            current = info.compression_ratio
            if observed > current:
                info.compression_ratio = max(current + _RATIO_DETERIORATE_STEP, observed)
            elif observed < current:
                info.compression_ratio = max(current - _RATIO_IMPROVING_STEP, observed)

    def expired_batches(self, now_ms: int) -> list[ProducerBatch]:
        """Remove and return queued batches past delivery.timeout.ms (oldest first), and
        note when the next one will be (``next_expiry_ms``: Java's nextExpiryTimeMs,
        which bounds the sender's sleep)."""
        expired = []
        soonest = 2**63 - 1
        with self._lock:
            for info in self._topics.values():
                for dq in info.deques.values():
                    while dq and dq[0].has_reached_delivery_timeout(self.delivery_timeout_ms,
                                                                    now_ms):
                        batch = dq.popleft()
                        batch.full = True
                        expired.append(batch)
                    if dq:
                        soonest = min(soonest, dq[0].created_ms + self.delivery_timeout_ms)
            self.next_expiry_ms = soonest
        return expired

    def reenqueue(self, batch: ProducerBatch, now_ms: int) -> None:
        """Put a batch that must be retried back at the head of its partition's queue;
        a batch with a sequence goes in sequence order among the other retries."""
        batch.reenqueued(now_ms)
        with self._lock:
            info = self._topics[batch.topic]
            _insert_at_head(info.deques.setdefault(batch.partition, collections.deque()),
                            batch)

    def reenqueue_split(self, batch: ProducerBatch, parts: list[ProducerBatch]) -> None:
        """Java's splitAndReenqueue: the parts of a batch the broker found too large go
        to the head of its partition's queue, as if never tried (in sequence order among
        other retries), and the topic's compression estimate goes back to no better
        than 1 so that new batches are not as overfull."""
        with self._lock:
            info = self._topics[batch.topic]
            if self.compression_type:
                info.compression_ratio = max(1.0, info.compression_ratio)
            dq = info.deques.setdefault(batch.partition, collections.deque())
            for part in reversed(parts):
                self._incomplete.add(part)
                _insert_at_head(dq, part)
        self.deallocate(batch)  # the parts complete it; they hold no pool memory

    def mute(self, tp: TP) -> None:
        with self._lock:
            self._muted.add(tp)

    def unmute(self, tp: TP) -> None:
        with self._lock:
            self._muted.discard(tp)

    def deallocate(self, batch: ProducerBatch) -> None:
        """A batch is completed: give back its memory and forget it."""
        with self._lock:
            self._incomplete.discard(batch)
        if batch.reserved_bytes:
            self.pool.deallocate(batch.reserved_bytes)
            batch.reserved_bytes = 0

    # ---- flush and close -----------------------------------------------------------

    def begin_flush(self) -> None:
        with self._lock:
            self._flushes_in_progress += 1

    def end_flush(self) -> None:
        with self._lock:
            self._flushes_in_progress -= 1

    def await_flush_completion(self, timeout_s: float | None) -> bool:
        """Wait until every batch created so far is completed; False on timeout."""
        with self._lock:
            pending = set(self._incomplete)
        deadline = None if timeout_s is None else self.clock() + timeout_s * 1000
        for batch in pending:
            # A part split again completes only through the batch it came from (nested
            # parts report to the first batch): wait on that one.
            while batch.parent is not None:
                batch = batch.parent
            left_s = None if deadline is None else max(deadline - self.clock(), 0) / 1000
            if not batch.result.wait(left_s):
                return False
        return True

    def has_undrained(self) -> bool:
        with self._lock:
            return any(dq for info in self._topics.values() for dq in info.deques.values())

    def has_incomplete(self) -> bool:
        with self._lock:
            return bool(self._incomplete)

    def appends_in_progress(self) -> bool:
        return self._appends_in_progress > 0

    def close(self) -> None:
        """No more appends; what is queued still goes out (ready treats it as full)."""
        with self._lock:
            self._closed = True

    def abort_undrained_batches(self, error: BaseException) -> None:
        """Fail every batch still queued (forced close, fatal error)."""
        with self._lock:
            batches = [b for info in self._topics.values() for dq in info.deques.values()
                       for b in dq]
            for info in self._topics.values():
                for dq in info.deques.values():
                    dq.clear()
        for batch in batches:
            batch.abort(error)
            self.deallocate(batch)

    def incomplete_batches(self) -> list[ProducerBatch]:
        with self._lock:
            return list(self._incomplete)

    def queued_bytes_by_partition(self, topic: str) -> dict[int, int]:
        with self._lock:
            info = self._topics.get(topic)
            if info is None:
                return {}
            return {p: sum(b.estimated_size_in_bytes for b in dq)
                    for p, dq in info.deques.items()}


def _insert_at_head(dq: Queue, batch: ProducerBatch) -> None:
    """A retried (or split) batch goes back to the head of its queue; one with a
    sequence number goes in sequence order among the other retries there."""
    if batch.base_sequence < 0:
        dq.appendleft(batch)
        return
    i = 0
    while i < len(dq) and 0 <= dq[i].base_sequence < batch.base_sequence:
        i += 1
    dq.insert(i, batch)


def _all_full(dq: Queue) -> bool:
    """Java's allBatchesFull: only switch sticky partitions once no batch is half open."""
    return not dq or dq[-1].full
