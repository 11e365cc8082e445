# Borrowing the bytes of any buffer-protocol object, with a TypeError that names the
# expected type (Python's own message says "a bytes-like object is required").

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_CheckBuffer, PyObject_GetBuffer


cdef inline int get_buffer(object obj, Py_buffer *view, str what) except -1:
    """Fill ``view`` with the contiguous bytes of ``obj``; caller must PyBuffer_Release."""
    if not PyObject_CheckBuffer(obj):
        raise TypeError(
            f"{what} must be a bytes-like object (bytes, bytearray, memoryview), "
            f"not {type(obj).__name__}")
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except BufferError as exc:
        raise TypeError(f"{what} must be a contiguous bytes-like object: {exc}") from None
    return 0
