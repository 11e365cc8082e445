# BatchBuilder's C interface, for the accumulator's append fast path (accumulate.pyx).

from libc.stdint cimport int32_t, int64_t


# The record batch v2 header (the layout is drawn at the top of batch.pyx): its size
# and where each field starts, and the attribute bits.
cdef enum:
    OVERHEAD = 61
    OFF_BATCH_LENGTH = 8
    OFF_LEADER_EPOCH = 12
    OFF_MAGIC = 16
    OFF_CRC = 17
    OFF_ATTRIBUTES = 21
    OFF_LAST_OFFSET_DELTA = 23
    OFF_BASE_TIMESTAMP = 27
    OFF_MAX_TIMESTAMP = 35
    OFF_PRODUCER_ID = 43
    OFF_PRODUCER_EPOCH = 51
    OFF_BASE_SEQUENCE = 53
    OFF_RECORD_COUNT = 57
    LOG_OVERHEAD = 12  # baseOffset + batchLength precede what batchLength counts
    TRANSACTIONAL_FLAG = 0x10
    CONTROL_FLAG = 0x20
    TIMESTAMP_TYPE_FLAG = 0x08
    CODEC_MASK = 0x07


cdef class BatchBuilder:
    cdef char *_buf
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _pos
    cdef int32_t _count
    cdef int32_t _last_offset_delta
    cdef Py_ssize_t _max_record  # the largest record's encoded size (record-size-max)
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
