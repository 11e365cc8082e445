# What ShardedProducer's send path (shard.pyx) shares with Producer's (accumulate.pyx).

from cpython.pythread cimport (NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock,
                               PyThread_release_lock, PyThread_type_lock)
from libc.stdint cimport int64_t
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec


cdef inline int64_t _wall_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000


cdef class FastLock:
    cdef PyThread_type_lock _lock

    cdef inline void take(self):
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)

    cdef inline void give(self):
        PyThread_release_lock(self._lock)


cdef class StickyState:
    cdef public int64_t partition
    cdef public int64_t produced_bytes


cdef class SendPathBase:
    cdef object snapshot         # the newest ClusterSnapshot, pushed by set_snapshot
    cdef dict snapshot_topics    # its topics: topic -> partitions
    cdef object slow_send
    cdef public bint closed
    cdef bint key_passthrough
    cdef bint value_passthrough
    cdef bint partitioner_builtin
    cdef bint ignore_keys
    cdef int64_t sticky_batch_size
