# cython: language_level=3
"""Python wrappers around the varint primitives in varint.pxd."""

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_Check
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

from fastprod._ext.buffers cimport get_buffer


cdef inline object _int_arg(object value):
    # Without this check Cython's C-int conversion would truncate floats and Decimals.
    if not PyLong_Check(value):
        raise TypeError(f"value must be an int, not {type(value).__name__}")
    return value


def encode_varint(value_obj):
    """Zig-zag varint of a signed 32-bit int."""
    cdef int32_t value = _int_arg(value_obj)
    cdef char buf[5]
    return PyBytes_FromStringAndSize(buf, write_varint32(buf, value))


def encode_varlong(value_obj):
    """Zig-zag varint of a signed 64-bit int."""
    cdef int64_t value = _int_arg(value_obj)
    cdef char buf[10]
    return PyBytes_FromStringAndSize(buf, write_varint64(buf, value))


def encode_unsigned_varint(value_obj):
    """Unsigned varint of a uint32."""
    cdef uint32_t value = _int_arg(value_obj)
    cdef char buf[5]
    return PyBytes_FromStringAndSize(buf, write_uvarint64(buf, value))


def size_of_varint(value_obj):
    cdef int32_t value = _int_arg(value_obj)
    return size_of_varint32(value)


def size_of_varlong(value_obj):
    cdef int64_t value = _int_arg(value_obj)
    return size_of_varint64(value)


def size_of_unsigned_varint(value_obj):
    cdef uint32_t value = _int_arg(value_obj)
    return size_of_uvarint64(value)


cdef inline int _check_pos(Py_ssize_t pos, Py_ssize_t length) except -1:
    if pos < 0 or pos > length:
        raise IndexError(f"position {pos} is outside a buffer of {length} bytes")
    return 0


def decode_varint(buf, Py_ssize_t pos=0):
    """Decode a zig-zag int32 at ``pos``; returns (value, position after it)."""
    cdef Py_buffer view
    cdef int32_t value
    get_buffer(buf, &view, "decode_varint() buf")
    try:
        _check_pos(pos, view.len)
        value = read_varint32(<const char *>view.buf, view.len, &pos)
    finally:
        PyBuffer_Release(&view)
    return value, pos


def decode_varlong(buf, Py_ssize_t pos=0):
    """Decode a zig-zag int64 at ``pos``; returns (value, position after it)."""
    cdef Py_buffer view
    cdef int64_t value
    get_buffer(buf, &view, "decode_varlong() buf")
    try:
        _check_pos(pos, view.len)
        value = read_varint64(<const char *>view.buf, view.len, &pos)
    finally:
        PyBuffer_Release(&view)
    return value, pos


def decode_unsigned_varint(buf, Py_ssize_t pos=0):
    """Decode an unsigned varint (uint32) at ``pos``; returns (value, position after it)."""
    cdef Py_buffer view
    cdef uint64_t value
    get_buffer(buf, &view, "decode_unsigned_varint() buf")
    try:
        _check_pos(pos, view.len)
        value = read_uvarint(<const char *>view.buf, view.len, &pos, 5)
    finally:
        PyBuffer_Release(&view)
    if value > 0xFFFFFFFF:
        raise_corrupt("unsigned varint does not fit in 32 bits")
    return value, pos
