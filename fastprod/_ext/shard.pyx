# cython: language_level=3
"""ShardedProducer's parent-side state for one worker: the send() records staged per
partition (``Run``), the frames written to the worker's records ring and not yet
reported (``Pending``), and the topics registered in that ring.

Every change to this state is one call into this module, made under the shard's lock
and without running Python code between its steps. So another thread never sees it
half-done, and a KeyboardInterrupt, which Python raises only between bytecodes, never
lands between staging a record and its future, or between writing a frame and
registering what it holds (a frame in the ring without its entry would be answered by
reports nobody can match; a record without its future would crash the completion).
The Python code that does run is before or after a whole step: the topic's
registration frame is built before anything is written, and a send_batch future's
``expect``/``segment_done`` change its counter in one statement.
"""

from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.object cimport PyCallable_Check
from libc.stdint cimport int64_t, uint64_t


cdef extern from "Python.h":
    int PyGC_Disable()  # 3.10+: the previous state
    int PyGC_Enable()
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from fastprod._ext.accumulate cimport FastLock, SendPathBase, StickyState, _wall_ms
from fastprod._ext.placement cimport key_partition, topic_seed, worker_index

from fastprod._ext.accumulate import ProduceRequestResult, RecordFuture
from fastprod.errors import ProducerClosedError


cdef inline int64_t _monotonic_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000


cdef class Pending:
    """Records of one frame sent to a worker, waiting for its reports: either a run of
    send() records (``futures``, one RecordFuture each, and their ``callbacks``) or a
    slice of one send_batch() (``future``, a BatchFuture, and the records' input
    ``indices``). ``done`` marks what was reported (reports repeat after a restart)."""

    cdef readonly str topic
    cdef readonly object future
    cdef readonly list futures
    cdef readonly list callbacks
    cdef readonly object indices   # a list or range
    cdef readonly Py_ssize_t count
    cdef readonly bytearray done

    cdef Py_ssize_t _left

    def waitables(self):
        return [self.future] if self.futures is None else self.futures

    def mark(self, Py_ssize_t start, Py_ssize_t count):
        """Mark records start..start+count (frame positions) reported; the positions
        that were not already, in order."""
        cdef Py_ssize_t i, stop = start + count
        cdef unsigned char *done = self.done
        fresh = []
        if start < 0 or stop > self.count:
            raise IndexError(f"report of records {start}..{stop} for a frame of {self.count}")
        for i in range(start, stop):
            if not done[i]:
                done[i] = 1
                fresh.append(i)
        self._left -= len(fresh)
        return fresh

    @property
    def all_done(self):
        return self._left == 0


cdef Pending _pending(str topic, Py_ssize_t count, object future, object indices,
                      list futures, list callbacks):
    cdef Pending entry = Pending.__new__(Pending)
    entry.topic = topic
    entry.count = count
    entry.future = future
    entry.indices = indices
    entry.futures = futures
    entry.callbacks = callbacks
    entry.done = bytearray(count)
    entry._left = count
    return entry


cdef class Run:
    """Consecutive send() records for one partition and millisecond, staged to be
    framed together: one frame and one report per batch instead of one per record.
    Records before ``start`` are framed already."""

    cdef readonly str topic
    cdef readonly int partition
    cdef readonly int64_t timestamp
    cdef readonly int64_t created_ms  # monotonic, when its first record was staged
    cdef readonly list values
    cdef readonly list keys
    cdef readonly list headers
    cdef readonly list futures
    cdef readonly list callbacks
    cdef readonly bint has_key
    cdef readonly bint has_headers
    cdef readonly Py_ssize_t start

    def unframed_futures(self):
        return self.futures[self.start:]


cdef class Shard:
    """The parent's side of one worker's records ring (see the module docstring).
    ``lock`` guards it; Python code takes it only to read a consistent view."""

    cdef readonly object ring
    cdef readonly FastLock lock
    cdef readonly dict runs      # (topic, partition) -> Run
    cdef readonly dict pending   # id of a frame's first record -> Pending
    cdef readonly dict topics    # topic -> its index in this ring
    cdef readonly uint64_t next_id
    cdef Py_ssize_t run_max
    cdef object topic_frame      # (index, topic) -> the frame that registers it

    def __init__(self, ring, Py_ssize_t run_max, topic_frame):
        self.ring = ring
        self.lock = FastLock()
        self.runs = {}
        self.pending = {}
        self.topics = {}
        self.next_id = 0
        self.run_max = run_max
        self.topic_frame = topic_frame

    def stage(self, str topic, int partition, int64_t timestamp, value, key, headers,
              future, callback):
        """Stage one send() record; False, staging nothing, when its run is full and the
        ring has no room to take it now (wait for the worker, then call again)."""
        cdef Run run
        where = (topic, partition)
        self.lock.take()
        try:
            run = self.runs.get(where)
            if run is not None and run.timestamp != timestamp:
                self._frame_run(where, run)
                run = self.runs.get(where)
            if run is None:
                run = Run.__new__(Run)
                run.topic, run.partition, run.timestamp = topic, partition, timestamp
                run.created_ms = _monotonic_ms()
                run.values, run.keys, run.headers = [], [], []
                run.futures, run.callbacks = [], []
                self.runs[where] = run
            elif len(run.values) - run.start >= self.run_max:
                return False
            run.values.append(value)
            run.keys.append(key)
            run.headers.append(headers)
            run.futures.append(future)
            run.callbacks.append(callback)
            if key is not None:
                run.has_key = True
            if headers is not None:
                run.has_headers = True
            if len(run.values) - run.start >= self.run_max:
                self._frame_run(where, run)
            return True
        finally:
            self.lock.give()

    def frame_runs(self):
        """Frame every staged run as far as the ring takes it; True if some wait still."""
        self.lock.take()
        try:
            for where, run in list(self.runs.items()):
                self._frame_run(where, run)
            return bool(self.runs)
        finally:
            self.lock.give()

    def frame_slice(self, str topic, int partition, int64_t timestamp, values, keys,
                    indices, Py_ssize_t start, Py_ssize_t stop, future, int64_t created_ms):
        """Frame values[start:stop] of a send_batch() (``indices``: their input
        positions, ``future``: its BatchFuture, told to ``expect`` the frame, sent at
        monotonic ``created_ms``), after any staged send() records of the partition; how
        many the ring took (0: none now)."""
        cdef Py_ssize_t written = 0
        cdef Run run
        where = (topic, partition)
        future.expect()
        self.lock.take()
        try:
            run = self.runs.get(where)
            if run is not None:  # earlier send() records go first
                self._frame_run(where, run)
            if where not in self.runs:
                written = self._frame(topic, partition, timestamp, values, keys, None, start,
                                      stop, future, indices, None, None, created_ms)
        finally:
            self.lock.give()
            if written == 0:
                future.segment_done()  # undo expect()
        return written

    def take_runs(self):
        """Remove and return the staged runs (their worker is lost)."""
        self.lock.take()
        try:
            runs = list(self.runs.values())
            self.runs.clear()
            return runs
        finally:
            self.lock.give()

    def waitables(self):
        """The futures of everything staged or framed and not yet reported (a
        send_batch() future once, however many frames it has here)."""
        cdef Run run
        cdef Pending entry
        waiting = []
        batches = set()
        self.lock.take()
        try:
            for run in self.runs.values():
                waiting += run.futures[run.start:]
            for entry in self.pending.values():
                if entry.futures is not None:
                    waiting += entry.futures
                elif id(entry.future) not in batches:
                    batches.add(id(entry.future))
                    waiting.append(entry.future)
            return waiting
        finally:
            self.lock.give()

    cdef int _frame_run(self, tuple where, Run run) except -1:
        cdef Py_ssize_t written, stop
        while run.start < len(run.values):
            stop = len(run.values)
            written = self._frame(run.topic, run.partition, run.timestamp, run.values,
                                  run.keys if run.has_key else None,
                                  run.headers if run.has_headers else None, run.start, stop,
                                  None, None, run.futures, run.callbacks, run.created_ms)
            if written == 0:
                return 0  # the ring is full: the rest waits in the run
            run.start += written
        del self.runs[where]
        return 0

    cdef Py_ssize_t _frame(self, str topic, int partition, int64_t timestamp, values,
                           keys, headers, Py_ssize_t start, Py_ssize_t stop,
                           object future, object indices, list futures,
                           list callbacks, int64_t created_ms) except -1:
        """One frame of values[start:stop], as many as fit, and its Pending entry."""
        cdef Py_ssize_t written, index
        if self.ring.closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        index = self._register_topic(topic)
        if index < 0:
            return 0
        # No report of the frame can be read before its entry is here: the ring's writer
        # holds the GIL throughout, and so does this, as long as no Python code runs in
        # between, which a garbage collection (finalizers, gc callbacks) could do.
        gc_was_on = PyGC_Disable()
        try:
            written = self.ring.try_write_records(index, partition, timestamp, self.next_id,
                                                  values, keys, start, stop, headers,
                                                  created_ms)
            if written:
                self.pending[self.next_id] = _pending(
                    topic, written, future,
                    None if indices is None else indices[start:start + written],
                    None if futures is None else futures[start:start + written],
                    None if callbacks is None else callbacks[start:start + written])
                self.next_id += written
        finally:
            if gc_was_on:
                PyGC_Enable()
        return written

    cdef Py_ssize_t _register_topic(self, str topic) except -2:
        """The topic's index in the ring, writing its registration frame first if
        needed; -1 if the ring has no room for it now."""
        index = self.topics.get(topic)
        if index is not None:
            return index
        frame = self.topic_frame(len(self.topics), topic)
        if not self.ring.try_write(frame):
            return -1
        self.topics[topic] = len(self.topics)
        return len(self.topics) - 1


cdef class SendPath(SendPathBase):
    """ShardedProducer.send for the common case: bytes (or None) key and bytes value
    with the pass-through serializers, no headers, no explicit partition or timestamp,
    a topic whose metadata is known, the built-in partitioner, a live worker and room
    to stage. Everything else, including waiting for room, goes to ``slow_send``
    (ShardedProducer._send, the reference behaviour)."""

    cdef list handles            # ShardedProducer's _WorkerHandle per worker
    cdef list shards             # their Shards
    cdef Py_ssize_t workers
    cdef dict topic_hash         # topic -> murmur2 of its name: picks the worker
    cdef dict sticky             # topic -> BuiltInPartitioner, shared with slow_send
    cdef FastLock sticky_lock
    cdef object stager_wake      # a threading.Event the stager thread waits on

    def __init__(self, list handles, dict sticky, FastLock sticky_lock, snapshot, slow_send,
                 stager_wake, **settings):
        super().__init__(snapshot, slow_send, **settings)
        self.handles = handles
        self.shards = [h.shard for h in handles]
        self.workers = len(handles)
        self.topic_hash = {}
        self.sticky = sticky
        self.sticky_lock = sticky_lock
        self.stager_wake = stager_wake

    cdef Py_ssize_t _worker_of(self, str topic, Py_ssize_t p) except -1:
        h = self.topic_hash.get(topic)
        if h is None:
            name = topic.encode()
            h = self.topic_hash[topic] = topic_seed(<const unsigned char *><char *>name,
                                                    PyBytes_GET_SIZE(name))
        return worker_index(<Py_ssize_t>h, p, self.workers)

    def worker_index(self, str topic, Py_ssize_t partition):
        """The worker ``send`` stages a record of ``partition`` for."""
        return self._worker_of(topic, partition)

    def send(self, topic, value=None, key=None, partition=None, timestamp=None,
             headers=None, on_delivery=None):
        """Queue one record; returns its RecordFuture at once (ShardedProducer.send: this is
        its C fast path, which an instance's ``send`` is bound to; see
        help(ShardedProducer.send)). Bound, not called from a Python method: such a wrapper
        measured about 0.1 µs more per record, 10-15% of send() on the caller's side."""
        cdef int64_t ts, size
        cdef Py_ssize_t num_partitions, p, klen = -1
        cdef StickyState state = None
        cdef Shard shard
        if (self.closed or partition is not None or timestamp is not None
                or headers is not None or type(topic) is not str
                or type(value) is not bytes or not self.value_passthrough
                or PyBytes_GET_SIZE(value) >= 65536  # always fits the ring
                or (key is not None and (type(key) is not bytes or not self.key_passthrough
                                         or PyBytes_GET_SIZE(key) >= 65536))
                or not self.partitioner_builtin
                # refused by slow_send, with the Python path's error
                or (on_delivery is not None and not PyCallable_Check(on_delivery))):
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        parts = self.snapshot_topics.get(topic)
        if parts is None:
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        num_partitions = len(parts)
        size = PyBytes_GET_SIZE(value)
        if key is not None:
            klen = PyBytes_GET_SIZE(key)
            size += klen
        if key is not None and not self.ignore_keys:
            p = key_partition(<const unsigned char *><char *>key, klen, num_partitions)
        else:
            partitioner = self.sticky.get(topic)
            if partitioner is None:
                return self.slow_send(topic, value, key, partition, timestamp, headers,
                                      on_delivery)
            state = partitioner.state
            p = state.partition
            if not 0 <= p < num_partitions:
                return self.slow_send(topic, value, key, partition, timestamp, headers,
                                      on_delivery)
        index = self._worker_of(topic, p)
        if self.handles[index].lost is not None:
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        shard = self.shards[index]
        ts = _wall_ms()
        future = RecordFuture(ProduceRequestResult(topic, p), 0, ts, klen,
                              PyBytes_GET_SIZE(value))
        if not shard.stage(topic, p, ts, value, key, None, future, on_delivery):
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        if state is not None:
            # Count the record towards the sticky partition, as slow_send does (here, in
            # C, because it runs per record); a switch is left to the partitioner.
            self.sticky_lock.take()
            try:
                if state.partition == p and state.produced_bytes + size < self.sticky_batch_size:
                    state.produced_bytes += size
                    partitioner = None
            finally:
                self.sticky_lock.give()
            if partitioner is not None:
                with self.sticky_lock:
                    partitioner.update_partition_info(size, self.snapshot, enforce_switch=True)
        if not self.stager_wake.is_set():
            self.stager_wake.set()
        return future
