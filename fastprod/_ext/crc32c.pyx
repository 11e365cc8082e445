# cython: language_level=3
"""CRC-32C (Castagnoli) with the hardware instruction when the CPU has one.

The implementation lives in fp_crc32c.h; this module picks it once at import and wraps
it for Python. Values are the finalized CRC (pre- and post-inverted, as Kafka and the
``crc32c`` package compute it), and ``value`` continues a previous one.
"""

from cpython.buffer cimport PyBuffer_Release
from libc.stdint cimport uint32_t

from fastprod._ext.buffers cimport get_buffer


cdef extern from "fp_crc32c.h" nogil:
    int fp_crc32c_impl
    int FP_CRC32C_SSE42
    int FP_CRC32C_ARMV8
    void fp_crc32c_init()
    uint32_t fp_crc32c_raw(uint32_t crc, const char *p, size_t length)

# Below this size releasing the GIL costs more than the CRC itself.
cdef enum:
    GIL_RELEASE_BYTES = 32768

fp_crc32c_init()


cdef uint32_t crc32c_update(uint32_t crc, const char *data, size_t length) noexcept nogil:
    return ~fp_crc32c_raw(~crc, data, length)


def crc32c(data, value=0):
    """CRC-32C of ``data`` (any contiguous bytes-like object), continuing from ``value``."""
    cdef Py_buffer view
    cdef uint32_t crc
    if not isinstance(value, int):
        raise TypeError(f"crc32c() value must be an int, not {type(value).__name__}")
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"crc32c() value must be an unsigned 32-bit int, got {value}")
    crc = value
    get_buffer(data, &view, "crc32c() data")
    try:
        if view.len >= GIL_RELEASE_BYTES:
            with nogil:
                crc = crc32c_update(crc, <const char *>view.buf, view.len)
        else:
            crc = crc32c_update(crc, <const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return crc


def crc32c_implementation():
    """Which implementation this process uses: "sse4.2", "armv8-crc" or "table"."""
    if fp_crc32c_impl == FP_CRC32C_SSE42:
        return "sse4.2"
    if fp_crc32c_impl == FP_CRC32C_ARMV8:
        return "armv8-crc"
    return "table"
