# cython: language_level=3
"""The producer's per-record structures, and the append fast path.

Everything here is touched once per record, so it is C: ProducerBatch (the records of
one partition on their way into one record batch), RecordFuture (what send() returns),
ProduceRequestResult (one batch's outcome, shared by its futures), TopicQueues (the
accumulator's per-topic deques) and FastLock (the accumulator's lock).

``SendFastPath.send`` is Producer.send for the common case: bytes (or None) key and
value with the pass-through serializers, no headers, a topic whose metadata is known,
the built-in partitioner, and an open batch with room. It appends under the
accumulator's lock and returns the future; anything else (a new batch, a sticky
partition switch, blocking for memory or metadata, a custom serializer or partitioner)
goes to the Python path, ``Producer._send``, which is the reference behaviour. The
policy (when batches are ready, drained, retried, expired) stays in
fastprod/engine/accumulator.py and sender.py.

Ownership: a ProducerBatch is guarded by the accumulator's lock until drained, then
owned by the sender thread; ``complete`` may race with an aborting thread and the first
completion wins (Java's ProducerBatch.finalState).
"""

cimport cython
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.exc cimport PyErr_CheckSignals
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyCallable_Check
from cpython.pythread cimport (NOWAIT_LOCK, PY_LOCK_ACQUIRED, WAIT_LOCK, PyLockStatus,
                               PyThread_acquire_lock, PyThread_allocate_lock,
                               PyThread_free_lock, PyThread_release_lock,
                               PyThread_type_lock)
from libc.stdint cimport int16_t, int32_t, int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef extern from "Python.h":
    void PyObject_GC_Track(object)
    void PyObject_GC_UnTrack(object)
    bint PyObject_GC_IsTracked(object)


cdef extern from "pythread.h":
    ctypedef long long PY_TIMEOUT_T
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock, PY_TIMEOUT_T microseconds,
                                             int intr_flag) nogil

from fastprod._ext.batch cimport OVERHEAD, BatchBuilder
from fastprod._ext.placement cimport key_partition

import logging
import threading
from collections import namedtuple

from fastprod._ext.batch import set_producer_state as _restamp
from fastprod.errors import KafkaTimeoutError

log = logging.getLogger("fastprod.accumulator")

cdef enum:
    NO_TIMESTAMP = -1
    # The longest a wait sleeps before it looks for a signal that went to another thread.
    WAIT_SLICE_US = 200000




# ---- the accumulator's lock ------------------------------------------------------

cdef class FastLock:
    """A mutex C code can take in nanoseconds; Python uses it as ``with lock:``.

    Waiting for it releases the GIL, so a thread blocked here never stops the holder.
    (Declared, with take and give, in accumulate.pxd for ShardedProducer's shard.pyx.)
    """

    def __cinit__(self):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    def __enter__(self):
        self.take()
        return self

    def __exit__(self, *exc_info):
        self.give()
        return False


# ---- results and futures -----------------------------------------------------------

class RecordMetadata(namedtuple("RecordMetadata", "topic partition offset timestamp "
                                "serialized_key_size serialized_value_size")):
    """Where a record was written. ``offset`` is -1 with acks=0 (the broker said
    nothing); the sizes are -1 for a null key or value."""

    __slots__ = ()


cdef class ProduceRequestResult:
    """The outcome of one batch: base offset, log-append time or error, then a latch.

    The latch is a bare C lock held from creation until ``done``: waiting is acquiring
    it (with the GIL released) and handing it straight back, which costs far less per
    batch than a threading.Event.

    The cyclic GC tracks a result only once it holds an error (whose traceback can lead
    back to it): ShardedProducer makes one per send() record, and tracking them all
    cost a collection every 700 records.
    """

    cdef public str topic
    cdef public int partition
    cdef public int64_t base_offset
    cdef public int64_t log_append_time
    cdef readonly object error
    # relative offset -> exception, for brokers that reject single records (KIP-467)
    cdef readonly object record_errors
    # A batch split on MESSAGE_TOO_LARGE: (first relative offset, base offset, log-append
    # time) of each part, which the broker wrote apart; None otherwise.
    cdef readonly list runs
    cdef PyThread_type_lock _latch
    cdef bint _done

    def __cinit__(self):
        self._latch = PyThread_allocate_lock()
        if self._latch == NULL:
            raise MemoryError()
        PyThread_acquire_lock(self._latch, WAIT_LOCK)
        PyObject_GC_UnTrack(self)

    def __dealloc__(self):
        if self._latch != NULL:
            if not self._done:
                PyThread_release_lock(self._latch)
            PyThread_free_lock(self._latch)

    def __init__(self, str topic, int partition):
        self.topic = topic
        self.partition = partition
        self.base_offset = -1
        self.log_append_time = NO_TIMESTAMP

    def set(self, int64_t base_offset, int64_t log_append_time, error, record_errors=None):
        self.base_offset = base_offset
        self.log_append_time = log_append_time
        self._set_error(error)
        self.record_errors = record_errors
        if record_errors is not None:
            self._track()

    def set_split(self, list runs, record_errors):
        """The outcome of a batch whose parts were written apart (``runs``, see above)."""
        runs.sort()
        self.runs = runs
        self.set(runs[0][1], runs[0][2], None, record_errors)

    cpdef int64_t offset_of(self, int64_t rel):
        """The offset of the record at relative offset ``rel`` (-1 if unknown)."""
        cdef int64_t start, base
        if self.runs is None:
            return -1 if self.base_offset < 0 else self.base_offset + rel
        for start, base, _ in reversed(self.runs):
            if start <= rel:
                return -1 if base < 0 else base + rel - start
        return -1

    cpdef int64_t append_time_of(self, int64_t rel):
        """The log-append time of the record at ``rel`` (-1: the topic uses CreateTime)."""
        cdef int64_t start
        if self.runs is None:
            return self.log_append_time
        for start, _, log_append_time in reversed(self.runs):
            if start <= rel:
                return log_append_time
        return NO_TIMESTAMP

    def pieces(self, int64_t first, int64_t count):
        """[(relative offset, count, its offset, its log-append time)]: the records
        first..first+count in runs the broker wrote contiguously (one, unless split)."""
        cdef int64_t start, end, stop = first + count, lo, hi
        if self.runs is None:
            return [(first, count, self.offset_of(first), self.log_append_time)]
        out = []
        for k, (start, base, log_append_time) in enumerate(self.runs):
            end = self.runs[k + 1][0] if k + 1 < len(self.runs) else stop
            lo = max(start, first)
            hi = min(end, stop)
            if lo < hi:
                out.append((lo, hi - lo, -1 if base < 0 else base + lo - start,
                            log_append_time))
        return out

    cdef inline void _set_error(self, error):
        self.error = error
        if error is not None:
            self._track()

    cdef inline void _track(self):
        if not PyObject_GC_IsTracked(self):
            PyObject_GC_Track(self)

    def done(self):
        if not self._done:
            self._done = True
            PyThread_release_lock(self._latch)

    def is_done(self):
        return self._done

    def wait(self, timeout=None):
        """True once done; False if ``timeout`` seconds (None: forever) pass first.

        Ctrl-C raises KeyboardInterrupt here at once, as in threading's waits: the
        lock wait is interruptible (a signal ends it with PY_LOCK_INTR) and lasts at
        most WAIT_SLICE_US, so Python's signal handlers run in time even if the signal
        was delivered to another thread."""
        cdef PY_TIMEOUT_T micros
        cdef PyLockStatus status
        cdef double deadline = 0.0, left
        if self._done:
            return True
        if timeout is not None:
            left = max(<double>timeout, 0.0)
            deadline = _monotonic_s() + left
        while True:
            if timeout is None:
                micros = WAIT_SLICE_US
            else:
                micros = <PY_TIMEOUT_T>(min(left, WAIT_SLICE_US / 1e6) * 1e6)
            with nogil:
                status = PyThread_acquire_lock_timed(self._latch, micros, 1)
            if status == PY_LOCK_ACQUIRED:
                PyThread_release_lock(self._latch)
                return True
            PyErr_CheckSignals()  # raises the KeyboardInterrupt of a Ctrl-C
            if timeout is not None:
                left = deadline - _monotonic_s()
                if left <= 0:
                    return self._done


cdef inline double _monotonic_s() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


# Guards RecordFuture._callbacks between add_done_callback and completion; callbacks
# added through the future are rare (on_delivery travels with the batch instead).
_callbacks_lock = threading.Lock()


# No cycle runs through a future (it points at its batch's result, which points at
# nothing), except through callbacks added with add_done_callback, which completion
# drops; leaving futures out of the cyclic GC saves a collection every 700 records.
@cython.no_gc
@cython.freelist(1024)
cdef class RecordFuture:
    """The future result of one ``send()``: a RecordMetadata, or the error that failed it.

    ``add_done_callback`` callbacks run on the sender thread (or at once if done).
    """

    cdef readonly ProduceRequestResult _result
    cdef int32_t _relative_offset
    cdef int64_t _timestamp
    cdef int32_t _key_size
    cdef int32_t _value_size
    cdef list _callbacks

    def __init__(self, ProduceRequestResult result, int32_t relative_offset,
                 int64_t timestamp, int32_t key_size, int32_t value_size):
        self._result = result
        self._relative_offset = relative_offset
        self._timestamp = timestamp
        self._key_size = key_size
        self._value_size = value_size

    def done(self):
        return self._result._done

    def result(self, timeout=None):
        """Block until delivered; raise the delivery error, or KafkaTimeoutError."""
        error = self.exception(timeout)
        if error is not None:
            raise error
        return self.metadata()

    def exception(self, timeout=None):
        if not self._result.wait(timeout):
            raise KafkaTimeoutError(f"record not delivered within {timeout} s")
        return self.error()

    def add_done_callback(self, fn):
        """Call ``fn(future)`` once the record is delivered or failed."""
        if not PyCallable_Check(fn):
            raise TypeError(f"add_done_callback(fn): fn must be callable (called as "
                            f"fn(future)), not {type(fn).__name__}")
        with _callbacks_lock:
            # The batch is marked done before its futures' callbacks are taken, so a
            # callback added after that point runs here instead, exactly once.
            if not self._result._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    cpdef object error(self):
        """The error that failed this record, or None (valid once done)."""
        errors = self._result.record_errors
        if errors is not None and self._relative_offset in errors:
            return errors[self._relative_offset]
        return self._result.error

    cpdef object metadata(self):
        """The RecordMetadata (valid once done without error)."""
        cdef ProduceRequestResult r = self._result
        cdef int64_t log_append_time
        if r.runs is None:
            offset = -1 if r.base_offset < 0 else r.base_offset + self._relative_offset
            log_append_time = r.log_append_time
        else:
            offset = r.offset_of(self._relative_offset)
            log_append_time = r.append_time_of(self._relative_offset)
        timestamp = log_append_time if log_append_time != NO_TIMESTAMP else self._timestamp
        return RecordMetadata(r.topic, r.partition, offset, timestamp, self._key_size,
                              self._value_size)

    cdef void _run_callbacks(self):
        with _callbacks_lock:
            callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for fn in callbacks:
                try:
                    fn(self)
                except Exception:
                    log.exception("future callback for %s-%d raised", self._result.topic,
                                  self._result.partition)

    def __repr__(self):
        where = f"{self._result.topic}-{self._result.partition}"
        if not self.done():
            return f"<RecordFuture {where} pending>"
        error = self.error()
        state = f"failed: {error!r}" if error else f"offset={self.metadata().offset}"
        return f"<RecordFuture {where} {state}>"


@cython.boundscheck(True)
def complete_futures(list futures, list callbacks, list positions, Py_ssize_t start,
                     int64_t base_offset, int64_t log_append_time, error, dict errors):
    """Complete ``futures[i]`` for each i in ``positions`` as records written at
    base_offset + (i - start) (or failed with ``error``, or ``errors[i - start]``):
    outcome, on_delivery callback, latch, then future callbacks, as ProducerBatch does.
    ShardedProducer's parent completes its send() records from worker reports here."""
    cdef RecordFuture future
    cdef ProduceRequestResult result
    cdef Py_ssize_t i, rel
    for i in positions:
        future = futures[i]
        result = future._result
        rel = i - start
        result.base_offset = -1 if base_offset < 0 else base_offset + rel
        result.log_append_time = log_append_time
        result._set_error(errors.get(rel, error) if errors else error)
        callback = callbacks[i]
        if callback is not None:
            try:
                record_error = result.error
                callback(None if record_error is not None else future.metadata(), record_error)
            except Exception:
                log.exception("on_delivery callback raised")
        result.done()
        if future._callbacks is not None:
            future._run_callbacks()


def run_future_callbacks(RecordFuture future):
    """Run the add_done_callback callbacks of a future whose result was completed
    outside a ProducerBatch (ShardedProducer's parent completes them from reports)."""
    future._run_callbacks()


cpdef RecordFuture failed_future(str topic, int partition, error):
    """A future that failed before its record reached a batch (Java's FutureFailure)."""
    result = ProduceRequestResult(topic, partition)
    result.set(-1, -1, error)
    result.done()
    return RecordFuture(result, 0, -1, -1, -1)


# ---- batches ------------------------------------------------------------------------

cdef inline Py_ssize_t _estimated_size(BatchBuilder b, Py_ssize_t pos) noexcept:
    """Java's estimatedSizeInBytes of a batch with ``pos`` bytes written so far."""
    if b.compression_type == 0:
        return pos
    return OVERHEAD + <Py_ssize_t>((pos - OVERHEAD) * b._size_factor)


cdef class ProducerBatch:
    """The records of one partition on their way into one record batch v2."""

    cdef readonly str topic
    cdef readonly int partition
    cdef public BatchBuilder builder
    cdef readonly ProduceRequestResult result
    cdef public list futures
    cdef public list callbacks  # (future, on_delivery) pairs, or None
    cdef public list hooks      # called after completion (send_batch futures), or None
    cdef public int64_t created_ms
    cdef public int64_t last_attempt_ms
    cdef public int64_t drained_ms
    cdef public int attempts
    cdef public bint in_retry
    cdef public int32_t record_count
    cdef public bint full
    cdef public int64_t reserved_bytes
    cdef public int64_t producer_id
    cdef public int16_t producer_epoch
    cdef public int32_t base_sequence
    cdef public bint is_transactional
    # KIP-951: the leader epoch it was last headed for, and the attempt at which it
    # changed (a retry to a new leader skips the backoff)
    cdef public int32_t current_leader_epoch
    cdef public int leader_changed_attempts
    cdef public object last_error  # what its last retry was for: the cause if it expires
    # split on MESSAGE_TOO_LARGE: a part knows the batch it came from and where
    cdef readonly ProducerBatch parent
    cdef readonly int32_t parent_start
    cdef list _split_runs
    cdef dict _split_errors
    cdef int _split_left
    cdef object _records
    cdef bint _completed
    cdef object _lock

    def __init__(self, str topic, int partition, BatchBuilder builder, int64_t now_ms,
                 int64_t reserved_bytes=0):
        self.topic = topic
        self.partition = partition
        self.builder = builder
        self.result = ProduceRequestResult(topic, partition)
        self.futures = []
        self.created_ms = now_ms
        self.last_attempt_ms = now_ms
        self.drained_ms = -1
        self.reserved_bytes = reserved_bytes
        self.producer_id = -1
        self.producer_epoch = -1
        self.base_sequence = -1
        self.current_leader_epoch = -1
        self.leader_changed_attempts = -1
        self._lock = threading.Lock()

    cdef RecordFuture _append(self, int64_t timestamp, object key, object value,
                              object headers, object callback, int *appended):
        """Append a record; its future, or None (batch now full) with appended = -1.
        ``appended``: how much the batch's estimated size grew (Java's appendedBytes,
        which the sticky partitioner counts: with compression, the estimated compressed
        bytes)."""
        cdef Py_ssize_t before = self.builder._pos
        cdef Py_ssize_t size = self.builder._append(self.record_count, timestamp, key,
                                                    value, headers)
        cdef RecordFuture future
        if size < 0:
            self.full = True
            appended[0] = -1
            return None
        # Fields set directly: no argument tuple to build and parse, once per record.
        future = RecordFuture.__new__(RecordFuture)
        future._result = self.result
        future._relative_offset = self.record_count
        future._timestamp = timestamp
        future._key_size = -1 if key is None else (
            PyBytes_GET_SIZE(key) if type(key) is bytes else len(key))
        future._value_size = -1 if value is None else (
            PyBytes_GET_SIZE(value) if type(value) is bytes else len(value))
        self.futures.append(future)
        if callback is not None:
            if self.callbacks is None:
                self.callbacks = []
            self.callbacks.append((future, callback))
        self.record_count += 1
        # (The estimated encoded size, as Java's isFull: with compression, the records
        # times the topic's compression ratio.)
        if (OVERHEAD + (self.builder._pos - OVERHEAD) * self.builder._size_factor >= self.builder.batch_size
                and self.record_count > 1):
            # Java's isFull: no room left, so it is ready at once. A batch holding one
            # record larger than batch.size is not full in Java (its write limit is that
            # record's size estimate), so the next record closes it instead.
            self.full = True
        appended[0] = <int>(_estimated_size(self.builder, self.builder._pos)
                            - _estimated_size(self.builder, before))
        return future

    def try_append(self, int64_t timestamp, key, value, headers, callback):
        """Append a record; returns (its future, the bytes it took), or (None, -1) when
        the batch has no room left for it."""
        cdef int appended
        future = self._append(timestamp, key, value, headers, callback, &appended)
        return future, appended

    def append_many(self, int64_t timestamp, keys, values, Py_ssize_t start,
                    Py_ssize_t stop):
        """Append ``values[start:stop]`` (keys alike) until full, in C, with no
        per-record future; returns (records taken, bytes they took)."""
        cdef Py_ssize_t before = self.builder._pos
        count = self.builder.append_many(self.record_count, timestamp, values, keys,
                                         start, stop)
        if count < stop - start:
            self.full = True
        self.record_count += count
        return count, (_estimated_size(self.builder, self.builder._pos)
                       - _estimated_size(self.builder, before))

    @property
    def estimated_size_in_bytes(self):
        """The encoded size once built: exact without compression, else Java's
        estimate (records x the topic's ratio x 1.05, plus the header)."""
        if self._records is not None:
            return len(self._records)
        return _estimated_size(self.builder, self.builder._pos)

    def records(self):
        """The encoded batch: built on first use (at drain), reused by every retry."""
        if self._records is None:
            self._records = self.builder.build(
                producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                base_sequence=self.base_sequence, is_transactional=self.is_transactional)
        return self._records

    def set_producer_state(self, int64_t producer_id, int16_t producer_epoch,
                           int32_t base_sequence, bint is_transactional):
        """Stamp idempotence state; a batch built already is restamped in place."""
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.is_transactional = is_transactional
        if self._records is not None:
            buf = bytearray(self._records)
            _restamp(buf, producer_id, producer_epoch, base_sequence, is_transactional)
            self._records = bytes(buf)

    def has_reached_delivery_timeout(self, int64_t delivery_timeout_ms, int64_t now_ms):
        return now_ms - self.created_ms >= delivery_timeout_ms

    def maybe_update_leader_epoch(self, int32_t leader_epoch):
        """Java's maybeUpdateLeaderEpoch: note a newer leader epoch of the partition."""
        if leader_epoch >= 0 and self.current_leader_epoch < leader_epoch:
            self.current_leader_epoch = leader_epoch
            self.leader_changed_attempts = self.attempts

    @property
    def leader_changed_for_retry(self):
        """Java's hasLeaderChangedForTheOngoingRetry: retried, and the partition has had
        a new leader since the failed attempt (so no backoff: KIP-951)."""
        return self.attempts >= 1 and self.attempts == self.leader_changed_attempts

    def reenqueued(self, int64_t now_ms):
        self.attempts += 1
        self.last_attempt_ms = now_ms
        self.in_retry = True

    def is_done(self):
        return self._completed

    def complete(self, int64_t base_offset, int64_t log_append_time, error=None,
                 record_errors=None):
        """Resolve every future and run the callbacks; False if already completed."""
        with self._lock:
            if self._completed:
                return False
            self._completed = True
        if self.parent is not None:
            self.parent._part_done(self, base_offset, log_append_time, error, record_errors)
        # As in Java: the outcome is set first (callbacks read it), the latch released
        # last, so whoever waits on a future or flush() sees the callbacks done.
        self.result.set(base_offset, log_append_time, error, record_errors)
        self._notify()
        return True

    # ---- splitting (the layout is fastprod/engine/split.py's; this is the bookkeeping
    # that completion, which runs here, depends on) ---------------------------------------

    def append_copy(self, int64_t timestamp, key, value, headers):
        """Append a record whose future lives elsewhere (a split part's records answer
        through the batch they came from); False if the batch has no room for it. The
        first record of a batch always fits."""
        if self.builder._append(self.record_count, timestamp, key, value, headers) < 0:
            return False
        self.record_count += 1
        return True

    def set_parent(self, ProducerBatch root, int32_t start):
        """Make this a part of ``root``'s split, holding its records from ``start``: closed
        for appends, completing through ``root``."""
        self.parent = root
        self.parent_start = start
        self.full = True

    def expect_parts(self, ProducerBatch replaced, int count):
        """This (root) batch now completes when ``count`` parts made of ``replaced`` have
        completed: ``replaced`` is this batch (its first split) or one of its parts
        (split again: that part is gone, only its own parts will answer)."""
        if replaced is self:
            self._split_runs = []
            self._split_errors = {}
            self._split_left = count
            return
        with replaced._lock:
            replaced._completed = True
        with self._lock:
            self._split_left += count - 1

    cdef _part_done(self, ProducerBatch part, int64_t base_offset, int64_t log_append_time,
                    error, record_errors):
        """One part of this split batch is complete; the last one completes this one."""
        cdef int32_t i
        with self._lock:
            self._split_runs.append((part.parent_start, base_offset, log_append_time))
            for i in range(part.record_count):
                e = record_errors.get(i, error) if record_errors else error
                if e is not None:
                    self._split_errors[part.parent_start + i] = e
            self._split_left -= 1
            if self._split_left > 0 or self._completed:
                return
            self._completed = True
        self.result.set_split(self._split_runs, self._split_errors or None)
        self._notify()

    cdef _notify(self):
        """Callbacks, the latch, completion hooks, future callbacks: the outcome is set."""
        cdef RecordFuture future
        if self.callbacks is not None:
            for future, callback in self.callbacks:
                record_error = future.error()
                try:
                    if record_error is None:
                        callback(future.metadata(), None)
                    else:
                        callback(None, record_error)
                except Exception:  # a user callback must not kill the sender thread
                    log.exception("on_delivery callback for %s-%d raised",
                                  self.topic, self.partition)
        self.result.done()
        if self.hooks is not None:
            for hook in self.hooks:
                try:
                    hook()
                except Exception:
                    log.exception("completion hook for %s-%d raised", self.topic,
                                  self.partition)
        for future in self.futures:
            if future._callbacks is not None:
                future._run_callbacks()

    def abort(self, error):
        return self.complete(-1, -1, error)

    def __repr__(self):
        return (f"<ProducerBatch {self.topic}-{self.partition} records={self.record_count} "
                f"attempts={self.attempts}>")


cdef class StickyState:
    """The built-in partitioner's sticky partition for unkeyed records (-1: none yet)
    and the bytes appended to it since it was chosen."""

    def __init__(self):
        self.partition = -1
        self.produced_bytes = 0


cdef class TopicQueues:
    """The accumulator's state for one topic: a deque of batches per partition and the
    built-in partitioner, whose sticky state the fast path reads in C."""

    cdef public dict deques
    cdef public object partitioner
    cdef StickyState sticky
    cdef public double compression_ratio

    def __init__(self, partitioner):
        self.deques = {}
        self.partitioner = partitioner
        state = getattr(partitioner, "state", None)
        self.sticky = state if isinstance(state, StickyState) else None
        self.compression_ratio = 1.0


# ---- Producer.send, fast ----------------------------------------------------------------

cdef class SendPathBase:
    """What the C send paths of Producer (SendFastPath) and ShardedProducer
    (shard.SendPath) share: the newest metadata snapshot, the settings that decide
    whether a record may take the fast path, and ``slow_send`` for the rest."""

    def __init__(self, snapshot, slow_send, *, bint key_passthrough,
                 bint value_passthrough, bint partitioner_builtin, bint ignore_keys,
                 int64_t sticky_batch_size):
        self.set_snapshot(snapshot)
        self.slow_send = slow_send
        self.key_passthrough = key_passthrough
        self.value_passthrough = value_passthrough
        self.partitioner_builtin = partitioner_builtin
        self.ignore_keys = ignore_keys
        self.sticky_batch_size = sticky_batch_size

    def set_snapshot(self, snapshot):
        """Metadata calls this with every new snapshot."""
        topics = snapshot.topics
        self.snapshot_topics = topics if type(topics) is dict else dict(topics)
        self.snapshot = snapshot


cdef class SendFastPath(SendPathBase):
    """Producer.send for the common case; everything else goes to ``slow_send``."""

    cdef FastLock lock
    cdef dict topics
    cdef object txn             # the TransactionManager of a transactional producer
    cdef object txn_open        # its state inside a transaction (IN_TRANSACTION)

    def __init__(self, FastLock lock, dict topics, snapshot, slow_send, *, txn=None,
                 txn_open=None, **settings):
        super().__init__(snapshot, slow_send, **settings)
        self.lock = lock
        self.topics = topics
        self.txn = txn
        self.txn_open = txn_open

    def send(self, topic, value=None, key=None, partition=None, timestamp=None,
             headers=None, on_delivery=None):
        """Queue one record; returns its RecordFuture at once (Producer.send: this is
        its C fast path, which an instance's ``send`` is bound to; see
        help(Producer.send)). Bound, not called from a Python method: such a wrapper
        measured about 0.1 µs more per record, 10-15% of send() on the caller's side."""
        cdef int64_t ts
        cdef Py_ssize_t num_partitions, p
        cdef bint sticky = False
        cdef int overflow = 0
        future = None
        # (A non-callable on_delivery is refused by slow_send, with the Python path's error.)
        if (self.closed or headers is not None or type(topic) is not str or
                (self.txn is not None and self.txn.state is not self.txn_open) or
                (key is not None and (type(key) is not bytes or not self.key_passthrough)) or
                (value is not None and (type(value) is not bytes or
                                        not self.value_passthrough)) or
                (on_delivery is not None and not PyCallable_Check(on_delivery))):
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        if timestamp is None:
            ts = _wall_ms()
        else:
            # Out of int64 (overflow set) or negative: slow_send raises the ValueError.
            ts = -1
            if type(timestamp) is int:
                ts = PyLong_AsLongLongAndOverflow(timestamp, &overflow)
            if ts < 0 or overflow:
                return self.slow_send(topic, value, key, partition, timestamp, headers,
                                      on_delivery)
        snapshot = self.snapshot
        parts = self.snapshot_topics.get(topic)
        if parts is None:
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        num_partitions = len(parts)
        if partition is not None:
            if type(partition) is not int or not 0 <= partition < num_partitions:
                return self.slow_send(topic, value, key, partition, timestamp, headers,
                                      on_delivery)
            p = partition
        elif not self.partitioner_builtin:
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        elif key is not None and not self.ignore_keys:
            p = key_partition(<const unsigned char *><char *>key, PyBytes_GET_SIZE(key),
                              num_partitions)
        else:
            sticky = True
        self.lock.take()
        try:
            future = self._append_locked(topic, p, sticky, ts, key, value, on_delivery,
                                         snapshot)
        finally:
            self.lock.give()
        if future is None:
            return self.slow_send(topic, value, key, partition, timestamp, headers,
                                  on_delivery)
        if self.txn is not None:
            # A partition new to the transaction is added to it (by the sender thread)
            # before its batches may go, as in the Python path.
            tp = (topic, (<RecordFuture>future)._result.partition)
            if tp not in self.txn.partitions_in_txn:  # a set lookup, not a call: per record
                self.txn.maybe_add_partition(tp)
        return future

    cdef object _append_locked(self, str topic, Py_ssize_t p, bint sticky, int64_t ts,
                               object key, object value, object on_delivery,
                               object snapshot):
        """Append to the open batch, or return None to take the Python path."""
        cdef TopicQueues info = self.topics.get(topic)
        cdef ProducerBatch batch
        cdef StickyState state = None
        cdef int appended
        cdef int64_t produced
        if self.closed or info is None:
            return None
        if sticky:
            # The built-in partitioner's state, read and bumped here under the same
            # lock its methods need; a switch is left to its update_partition_info.
            state = info.sticky
            if state is None or state.partition < 0:
                return None
            p = state.partition
        dq = info.deques.get(p)
        if not dq:
            return None
        batch = dq[len(dq) - 1]  # (wraparound is off in this build: no dq[-1])
        if batch.full:
            return None
        future = batch._append(ts, key, value, None, on_delivery, &appended)
        if future is None:
            return None
        if sticky:
            # The sticky partitioner's count, in C because it runs per record; a switch
            # (rare) is BuiltInPartitioner's, in Python.
            produced = state.produced_bytes + appended
            if produced < self.sticky_batch_size:
                state.produced_bytes = produced
            else:
                info.partitioner.update_partition_info(appended, snapshot,
                                                       enforce_switch=batch.full)
        return future
