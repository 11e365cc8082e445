# CRC-32C for other kernels (batch.pyx cimports this; Cython shares the one table).
from libc.stdint cimport uint32_t


cdef uint32_t crc32c_update(uint32_t crc, const char *data, size_t length) noexcept nogil
