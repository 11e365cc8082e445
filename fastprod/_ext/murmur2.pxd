# murmur2 for other kernels (the append fast path partitions keyed records with it).

from libc.stdint cimport int32_t, uint32_t


cdef inline int32_t murmur2_raw(const unsigned char *data, Py_ssize_t length) noexcept nogil:
    cdef uint32_t m = 0x5bd1e995
    cdef uint32_t h = (<uint32_t>0x9747b28cU) ^ <uint32_t>length
    cdef uint32_t k
    cdef Py_ssize_t i, tail = length & ~3
    for i in range(0, tail, 4):
        k = (<uint32_t>data[i] | (<uint32_t>data[i + 1] << 8) |
             (<uint32_t>data[i + 2] << 16) | (<uint32_t>data[i + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h *= m
        h ^= k
    # Java's switch falls through from case 3 to case 1.
    cdef Py_ssize_t rest = length & 3
    if rest == 3:
        h ^= <uint32_t>data[tail + 2] << 16
    if rest >= 2:
        h ^= <uint32_t>data[tail + 1] << 8
    if rest >= 1:
        h ^= <uint32_t>data[tail]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return <int32_t>h
