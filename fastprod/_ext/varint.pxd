# Varint primitives (Kafka's ByteUtils): zig-zag varint for int32, varlong for int64,
# and unsigned varint for uint32. Inline so the batch encoder pays no call.
#
# Writers assume the caller reserved room (at most 5 bytes for 32-bit, 10 for 64-bit).
# Readers take the end of the buffer and raise CorruptRecordError instead of reading
# past it or accepting an over-long encoding.

from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t


cdef inline int raise_corrupt(str message) except -1:
    # Imported here: a .pxd cannot import at module level, and this is the error path.
    from fastprod.errors import CorruptRecordError
    raise CorruptRecordError(message)


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline int size_of_uvarint64(uint64_t v) noexcept nogil:
    # 7 bits per byte: ceil(significant bits / 7), with 0 taking one byte.
    return (70 - __builtin_clzll(v | 1)) // 7


cdef inline int size_of_varint32(int32_t v) noexcept nogil:
    return size_of_uvarint64(<uint32_t>((<uint32_t>v << 1) ^ <uint32_t>(v >> 31)))


cdef inline int size_of_varint64(int64_t v) noexcept nogil:
    return size_of_uvarint64((<uint64_t>v << 1) ^ <uint64_t>(v >> 63))


cdef inline int write_uvarint64(char *p, uint64_t v) noexcept nogil:
    cdef int n = 0
    while v >= 0x80:
        p[n] = <char>((v & 0x7f) | 0x80)
        v >>= 7
        n += 1
    p[n] = <char>v
    return n + 1


cdef inline int write_varint32(char *p, int32_t v) noexcept nogil:
    return write_uvarint64(p, <uint32_t>((<uint32_t>v << 1) ^ <uint32_t>(v >> 31)))


cdef inline int write_varint64(char *p, int64_t v) noexcept nogil:
    return write_uvarint64(p, (<uint64_t>v << 1) ^ <uint64_t>(v >> 63))


cdef inline uint64_t read_uvarint(const char *buf, Py_ssize_t end, Py_ssize_t *pos,
                                  int max_bytes) except? 0xFFFFFFFFFFFFFFFF:
    """Read an unsigned varint of at most ``max_bytes`` bytes at ``pos[0]``."""
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef Py_ssize_t i = pos[0]
    cdef unsigned char b
    while True:
        if i >= end:
            raise_corrupt("truncated varint")
        b = <unsigned char>buf[i]
        i += 1
        result |= <uint64_t>(b & 0x7f) << shift
        if b < 0x80:
            break
        shift += 7
        if shift >= 7 * max_bytes:
            raise_corrupt(f"varint longer than {max_bytes} bytes")
    pos[0] = i
    return result


cdef inline int32_t read_varint32(const char *buf, Py_ssize_t end, Py_ssize_t *pos) except? -1:
    cdef uint64_t raw = read_uvarint(buf, end, pos, 5)
    if raw > 0xFFFFFFFF:
        raise_corrupt("varint does not fit in 32 bits")
    cdef uint32_t u = <uint32_t>raw
    return <int32_t>((u >> 1) ^ (0 - (u & 1)))


cdef inline int64_t read_varint64(const char *buf, Py_ssize_t end, Py_ssize_t *pos) except? -1:
    cdef uint64_t u = read_uvarint(buf, end, pos, 10)
    return <int64_t>((u >> 1) ^ (0 - (u & 1)))
