# BatchBuilder's C interface, for the accumulator's append fast path (accumulate.pyx).

from libc.stdint cimport int32_t, int64_t


cdef class BatchBuilder:
    cdef char *_buf
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _pos
    cdef int32_t _count
    cdef int32_t _last_offset_delta
    cdef int64_t _base_timestamp
    cdef int64_t _max_timestamp
    cdef readonly int compression_type
    cdef readonly Py_ssize_t batch_size
    cdef readonly object compression_level
    cdef double _ratio
    cdef double _size_factor

    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef Py_ssize_t _append(self, int32_t offset_delta, int64_t timestamp, object key,
                            object value, object headers) except -2
