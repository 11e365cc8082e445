# FastLock's C interface, for ShardedProducer's staging (shard.pyx).

from cpython.pythread cimport (NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock,
                               PyThread_release_lock, PyThread_type_lock)


cdef class FastLock:
    cdef PyThread_type_lock _lock

    cdef inline void take(self):
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)

    cdef inline void give(self):
        PyThread_release_lock(self._lock)
