# cython: language_level=3
"""Single-producer single-consumer ring of frames in shared memory.

The sharded producer's parent -> worker path: the parent writes records frames (and
msgpack control frames) into a ``multiprocessing.shared_memory`` buffer, the worker reads
them. No I/O and no policy here: waking the other side, deciding when to release, and
what a control frame means belong to fastprod/sharded/.

Buffer layout (counters native-endian, each on its own 64-byte cache line):

    offset  field              type  written by
         0  magic              u32   creator: 0x47525046 ("FPRG")
         4  version            u32   creator: 1
         8  capacity           u64   creator: data bytes, a power of two, 4 KiB .. 2 GiB
        64  write_pos          u64   producer: release store after copying a frame
       128  read_pos           u64   consumer: end of the frames it has read
       192  release_pos        u64   consumer: end of the frames acknowledged by the broker
       256  consumer_waiting   u32   consumer: 1 while it sleeps (or is about to)
       320  producer_waiting   u32   producer: 1 while it waits for room
       384  reserved           (to 512)
       512  data               capacity bytes

Positions are byte counters that only grow; a position's place in the data region is
``pos & (capacity - 1)``. Always ``release_pos <= read_pos <= write_pos`` and
``write_pos - release_pos <= capacity``. Space is free again only up to release_pos:
[release_pos, read_pos) has been read but not acknowledged, and a replacement consumer
reads it again after ``rewind()``.

Frame: u32 payload length (little-endian), the payload, zero to seven bytes of padding to
the next multiple of 8. Positions stay multiples of 8, so the length field never wraps;
the payload may wrap around the end of the data region and is copied in two parts. A
payload holds at most ``capacity - 8`` bytes.

Records frame payload (kind 1; little-endian; offsets in bytes):

     0  kind         u8    1
     1  flags        u8    bit 0 has_keys, bit 1 has_headers
     2  reserved     u16   0
     4  topic_index  u32
     8  partition    i32
    12  count        u32
    16  timestamp    i64
    24  first_id     u64   record id of the first record; the others count up from it
    32  created_ms   i64   CLOCK_MONOTONIC ms when the first record was sent (-1: unknown),
                           so time spent in the ring counts towards delivery.timeout.ms
    40  count records, each:
          key_len i32 (-1 = null), key bytes            only if has_keys
          value_len i32 (-1 = null), value bytes
          header_count u16, then per header:            only if has_headers
            key_len u16, key (UTF-8), value_len i32 (-1 = null), value bytes

A payload whose first byte is not 1 is opaque here (control messages, kind 2 and up,
written with ``try_write``).

Memory ordering (GCC __atomic builtins, fp_atomic.h): the producer copies a frame, then
stores write_pos with release; the consumer loads write_pos with acquire before it reads
the frame. The consumer stores release_pos with release once it is done with the bytes;
the producer loads it with acquire before it overwrites them. The waiting flags are a
Dekker handshake: ``set_*_waiting`` is a seq_cst store and the ``*_waiting`` getters
start with a seq_cst fence, so "publish, then look at the flag" on one side and "set the
flag, then look at the counter" on the other cannot both miss each other.

Ownership: one producer and one consumer, each in one thread (they may be one Ring
object or two, in one process or two). The producer owns write_pos and producer_waiting,
the consumer read_pos, release_pos and consumer_waiting. A Ring holds a buffer export of
``buf`` until ``close()``: close the Ring (and drop the memoryviews ``read`` returned)
before ``SharedMemory.close()``.
"""

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_Check
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.sequence cimport PySequence_Fast_ITEMS
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy, memset

from fastprod._ext.buffers cimport get_buffer

from fastprod.errors import CorruptRecordError, RecordTooLargeError


cdef extern from "fp_atomic.h" nogil:
    uint64_t fp_load_acquire_u64(const uint64_t *p)
    void fp_store_release_u64(uint64_t *p, uint64_t v)
    uint32_t fp_load_acquire_u32(const uint32_t *p)
    void fp_store_release_u32(uint32_t *p, uint32_t v)
    void fp_store_seq_cst_u32(uint32_t *p, uint32_t v)
    void fp_fence_seq_cst()
    void fp_put_le16(char *p, uint16_t v)
    void fp_put_le32(char *p, uint32_t v)
    void fp_put_le64(char *p, uint64_t v)
    uint16_t fp_get_le16(const char *p)
    uint32_t fp_get_le32(const char *p)
    uint64_t fp_get_le64(const char *p)

# The bytes fast path on borrowed references (no reference counting in the loop).
cdef extern from "Python.h":
    bint _is_bytes "PyBytes_CheckExact"(PyObject *o)
    char *_bytes_ptr "PyBytes_AS_STRING"(PyObject *o)
    Py_ssize_t _bytes_size "PyBytes_GET_SIZE"(PyObject *o)


cdef enum:
    RING_MAGIC = 0x47525046  # "FPRG" little-endian
    RING_VERSION = 1
    RING_HEADER_SIZE = 512
    CACHE_LINE = 64
    OFF_MAGIC = 0
    OFF_VERSION = 4
    OFF_CAPACITY = 8
    OFF_WRITE_POS = 1 * CACHE_LINE
    OFF_READ_POS = 2 * CACHE_LINE
    OFF_RELEASE_POS = 3 * CACHE_LINE
    OFF_CONSUMER_WAITING = 4 * CACHE_LINE
    OFF_PRODUCER_WAITING = 5 * CACHE_LINE
    MIN_CAPACITY = 4096
    FRAME_ALIGN = 8
    FRAME_LENGTH_SIZE = 4
    # records frame
    KIND_RECORDS = 1
    FLAG_HAS_KEYS = 1
    FLAG_HAS_HEADERS = 2
    REC_HEADER_SIZE = 40
    OFF_R_FLAGS = 1
    OFF_R_TOPIC_INDEX = 4
    OFF_R_PARTITION = 8
    OFF_R_COUNT = 12
    OFF_R_TIMESTAMP = 16
    OFF_R_FIRST_ID = 24
    OFF_R_CREATED_MS = 32
    MAX_HEADER_COUNT = 0xFFFF
    MAX_HEADER_KEY = 0xFFFF
    # copies at least this large run without the GIL
    NOGIL_COPY_MIN = 64 * 1024

cdef uint64_t MAX_CAPACITY = 1ULL << 31  # frame lengths are u32, record lengths i32

HEADER_SIZE = RING_HEADER_SIZE
RECORDS_KIND = KIND_RECORDS
RECORDS_HEADER_SIZE = REC_HEADER_SIZE


# ---- primitives ---------------------------------------------------------------------

cdef inline uint64_t _frame_size(uint64_t payload_len) noexcept nogil:
    """Ring bytes a frame with this payload takes: length field, payload, padding."""
    return (FRAME_LENGTH_SIZE + payload_len + (FRAME_ALIGN - 1)) & ~(<uint64_t>FRAME_ALIGN - 1)


cdef inline uint64_t _put(char *data, uint64_t mask, uint64_t pos, const char *src,
                          size_t n) noexcept nogil:
    """Copy ``n`` bytes to position ``pos`` of the data region, wrapping; returns pos + n."""
    cdef size_t idx = <size_t>(pos & mask)
    cdef size_t room = <size_t>(mask + 1) - idx
    if n <= room:
        memcpy(data + idx, src, n)
    else:
        memcpy(data + idx, src, room)
        memcpy(data, src + room, n - room)
    return pos + n


cdef inline uint64_t _put_u32(char *data, uint64_t mask, uint64_t pos,
                              uint32_t v) noexcept nogil:
    cdef char tmp[4]
    fp_put_le32(tmp, v)
    return _put(data, mask, pos, tmp, 4)


cdef inline void _get(const char *data, uint64_t mask, uint64_t pos, char *dst,
                      size_t n) noexcept nogil:
    """Copy ``n`` bytes from position ``pos`` of the data region, wrapping."""
    cdef size_t idx = <size_t>(pos & mask)
    cdef size_t room = <size_t>(mask + 1) - idx
    if n <= room:
        memcpy(dst, data + idx, n)
    else:
        memcpy(dst, data + idx, room)
        memcpy(dst + room, data, n - room)


cdef inline int _raise_corrupt(str message) except -1:
    raise CorruptRecordError(message)


cdef inline int _check_int(object value, str what) except -1:
    if not PyLong_Check(value):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return 0


cdef inline str _type_name(PyObject *o):
    return type(<object>o).__name__


# ---- headers of one record (the slow path: only when headers are given) ---------------

cdef Py_ssize_t _header_key(object key, const char **ptr, Py_ssize_t index,
                            bint validate) except -1:
    """UTF-8 bytes of a header key (str, or bytes that are UTF-8)."""
    cdef Py_ssize_t size
    if isinstance(key, str):
        ptr[0] = PyUnicode_AsUTF8AndSize(key, &size)
    elif type(key) is bytes:
        ptr[0] = PyBytes_AS_STRING(key)
        size = PyBytes_GET_SIZE(key)
        if validate:
            try:
                PyUnicode_DecodeUTF8(ptr[0], size, NULL)
            except UnicodeDecodeError as exc:
                raise ValueError(f"header key in headers[{index}] is not UTF-8: {exc}") from None
    else:
        raise TypeError(f"header key in headers[{index}] must be str or bytes, "
                        f"not {type(key).__name__}")
    if size > MAX_HEADER_KEY:
        raise ValueError(f"header key in headers[{index}] is {size} bytes; "
                         f"a records frame takes at most {MAX_HEADER_KEY}")
    return size


cdef Py_ssize_t _headers_size(object headers, Py_ssize_t index) except -1:
    """Encoded size of one record's headers (count included), checking every type."""
    cdef Py_ssize_t size = 2, n
    cdef const char *ptr
    if headers is None:
        return size
    if type(headers) is not list and type(headers) is not tuple:
        raise TypeError(f"headers[{index}] must be a list of (key, value) tuples or None, "
                        f"not {type(headers).__name__}")
    n = len(headers)
    if n > MAX_HEADER_COUNT:
        raise ValueError(f"headers[{index}] has {n} headers; a records frame takes at "
                         f"most {MAX_HEADER_COUNT} per record")
    for header in headers:
        if type(header) is not tuple or len(<tuple>header) != 2:
            raise TypeError(f"headers[{index}] items must be (key, value) tuples, "
                            f"not {type(header).__name__}")
        size += 2 + _header_key((<tuple>header)[0], &ptr, index, True) + 4
        value = (<tuple>header)[1]
        if value is not None:
            if type(value) is not bytes:
                raise TypeError(f"header value in headers[{index}] must be bytes or None, "
                                f"not {type(value).__name__}")
            size += PyBytes_GET_SIZE(value)
    return size


cdef int _write_headers(char *data, uint64_t mask, uint64_t *pos, object headers,
                        Py_ssize_t index) except -1:
    """Write headers that _headers_size accepted (nothing here allocates)."""
    cdef const char *ptr
    cdef Py_ssize_t klen, vlen
    cdef char tmp[2]
    if headers is None:
        fp_put_le16(tmp, 0)
        pos[0] = _put(data, mask, pos[0], tmp, 2)
        return 0
    fp_put_le16(tmp, <uint16_t>len(headers))
    pos[0] = _put(data, mask, pos[0], tmp, 2)
    for header in headers:
        klen = _header_key((<tuple>header)[0], &ptr, index, False)
        fp_put_le16(tmp, <uint16_t>klen)
        pos[0] = _put(data, mask, pos[0], tmp, 2)
        pos[0] = _put(data, mask, pos[0], ptr, <size_t>klen)
        value = (<tuple>header)[1]
        if value is None:
            pos[0] = _put_u32(data, mask, pos[0], <uint32_t>-1)
        else:
            vlen = PyBytes_GET_SIZE(value)
            pos[0] = _put_u32(data, mask, pos[0], <uint32_t>vlen)
            pos[0] = _put(data, mask, pos[0], PyBytes_AS_STRING(value), <size_t>vlen)
    return 0


# ---- the ring ------------------------------------------------------------------------

cdef class Ring:
    """One SPSC ring over a writable buffer (``SharedMemory.buf``); see the module doc.

    ``create=True`` writes a fresh header: the capacity is ``len(buf) - 512``, which must
    be a power of two from 4 KiB to 2 GiB. ``create=False`` attaches to a ring another
    Ring created, checking its magic, version and capacity.
    """

    HEADER_SIZE = RING_HEADER_SIZE

    cdef Py_buffer _view
    cdef bint _held
    cdef bint _writing         # the producer copies without the GIL
    cdef bint _reading         # the consumer copies without the GIL
    cdef char *_data
    cdef uint64_t _capacity
    cdef uint64_t _mask
    cdef uint64_t *_write_pos
    cdef uint64_t *_read_pos
    cdef uint64_t *_release_pos
    cdef uint32_t *_consumer_waiting
    cdef uint32_t *_producer_waiting
    cdef uint64_t _read_end    # consumer: read_pos after the last frame read() returned
    cdef object _readonly      # read-only memoryview of buf: read() slices it

    def __init__(self, buf, bint create=False):
        cdef char *base
        cdef uint64_t capacity, release, read, write
        if self._held:
            raise RuntimeError("Ring.__init__ called twice")
        try:
            PyObject_GetBuffer(buf, &self._view, PyBUF_WRITABLE)
        except (TypeError, BufferError) as exc:
            raise TypeError(f"Ring buf must be a writable contiguous buffer "
                            f"(SharedMemory.buf, bytearray), not {type(buf).__name__}: "
                            f"{exc}") from None
        self._held = True
        try:
            base = <char *>self._view.buf
            if (<uintptr_t>base) % 8 != 0:
                raise ValueError("Ring buf must be 8-byte aligned (the counters are atomics)")
            if self._view.len < RING_HEADER_SIZE + MIN_CAPACITY:
                raise ValueError(f"Ring buf of {self._view.len} bytes is too small: the header "
                                 f"takes {RING_HEADER_SIZE} and the data at least {MIN_CAPACITY}")
            if create:
                capacity = <uint64_t>(self._view.len - RING_HEADER_SIZE)
                if capacity & (capacity - 1) or capacity > MAX_CAPACITY:
                    raise ValueError(
                        f"Ring capacity (len(buf) - {RING_HEADER_SIZE} = {capacity}) must be "
                        f"a power of two from {MIN_CAPACITY} to {MAX_CAPACITY}")
                memset(base, 0, RING_HEADER_SIZE)
                (<uint32_t *>(base + OFF_VERSION))[0] = RING_VERSION
                (<uint64_t *>(base + OFF_CAPACITY))[0] = capacity
                # the magic last: whoever sees it sees the whole header
                fp_store_release_u32(<uint32_t *>(base + OFF_MAGIC), RING_MAGIC)
            else:
                magic = fp_load_acquire_u32(<uint32_t *>(base + OFF_MAGIC))
                if magic != RING_MAGIC:
                    raise ValueError(f"not a ring: magic 0x{magic:08x}, expected "
                                     f"0x{RING_MAGIC:08x} (was it created with create=True?)")
                version = (<uint32_t *>(base + OFF_VERSION))[0]
                if version != RING_VERSION:
                    raise ValueError(f"ring version {version}, this build reads {RING_VERSION}")
                capacity = (<uint64_t *>(base + OFF_CAPACITY))[0]
                if (capacity < MIN_CAPACITY or capacity > MAX_CAPACITY
                        or capacity & (capacity - 1)
                        or capacity > <uint64_t>(self._view.len - RING_HEADER_SIZE)):
                    raise ValueError(f"ring capacity {capacity} in the header does not fit a "
                                     f"buffer of {self._view.len} bytes")
            self._data = base + RING_HEADER_SIZE
            self._capacity = capacity
            self._mask = capacity - 1
            self._write_pos = <uint64_t *>(base + OFF_WRITE_POS)
            self._read_pos = <uint64_t *>(base + OFF_READ_POS)
            self._release_pos = <uint64_t *>(base + OFF_RELEASE_POS)
            self._consumer_waiting = <uint32_t *>(base + OFF_CONSUMER_WAITING)
            self._producer_waiting = <uint32_t *>(base + OFF_PRODUCER_WAITING)
            # loaded in this order, each only grows: a live ring still satisfies these
            release = fp_load_acquire_u64(self._release_pos)
            read = fp_load_acquire_u64(self._read_pos)
            write = fp_load_acquire_u64(self._write_pos)
            if not (release <= read <= write) or (release | read | write) % FRAME_ALIGN:
                raise ValueError(f"ring counters are inconsistent: release_pos {release}, "
                                 f"read_pos {read}, write_pos {write}")
            self._read_end = read
            view = memoryview(buf)
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            self._readonly = view.toreadonly()
        except BaseException:
            self._release_buffer()
            raise

    def __dealloc__(self):
        if self._held:
            PyBuffer_Release(&self._view)

    cdef void _release_buffer(self) noexcept:
        if self._held:
            PyBuffer_Release(&self._view)
            self._held = False
        self._data = NULL

    cdef inline int _check_producer(self) except -1:
        if self._data == NULL:
            raise ValueError("the ring is closed")
        if self._writing:
            raise RuntimeError("two threads write to one ring: it has a single producer")
        return 0

    cdef inline int _check_consumer(self) except -1:
        if self._data == NULL:
            raise ValueError("the ring is closed")
        if self._reading:
            raise RuntimeError("two threads read from one ring: it has a single consumer")
        return 0

    def close(self):
        """Release the buffer export (idempotent); memoryviews from read() keep their own."""
        if self._writing or self._reading:
            raise RuntimeError("cannot close the ring while another thread copies")
        self._release_buffer()
        if self._readonly is not None:
            self._readonly.release()
            self._readonly = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def closed(self):
        return self._data == NULL

    @property
    def capacity(self):
        return self._capacity

    @property
    def write_pos(self):
        self._check_open()
        return fp_load_acquire_u64(self._write_pos)

    @property
    def read_pos(self):
        self._check_open()
        return fp_load_acquire_u64(self._read_pos)

    @property
    def release_pos(self):
        self._check_open()
        return fp_load_acquire_u64(self._release_pos)

    cdef inline int _check_open(self) except -1:
        if self._data == NULL:
            raise ValueError("the ring is closed")
        return 0

    cdef uint64_t _free(self) except? 0xFFFFFFFFFFFFFFFF:
        """Free bytes now (producer side), or CorruptRecordError if the counters are off."""
        cdef uint64_t release = fp_load_acquire_u64(self._release_pos)
        cdef uint64_t write = fp_load_acquire_u64(self._write_pos)
        if write - release > self._capacity or write < release:
            _raise_corrupt(f"ring counters are inconsistent: write_pos {write}, "
                           f"release_pos {release}, capacity {self._capacity}")
        return self._capacity - (write - release)

    def free_space(self):
        """capacity - (write_pos - release_pos): bytes the producer may fill now."""
        self._check_open()
        return self._free()

    # ---- producer side ---------------------------------------------------------------

    def try_write(self, frame):
        """Copy one frame (any bytes-like payload); False, writing nothing, when it does
        not fit now. RecordTooLargeError if it can never fit (over capacity - 8 bytes)."""
        cdef Py_buffer src
        cdef uint64_t need, write, pos
        cdef char *data
        cdef uint64_t mask
        self._check_producer()
        get_buffer(frame, &src, "frame")
        try:
            if <uint64_t>src.len > self._capacity - FRAME_ALIGN:
                raise RecordTooLargeError(
                    f"a frame of {src.len} bytes can never fit a ring of capacity "
                    f"{self._capacity} (at most {self._capacity - FRAME_ALIGN})")
            need = _frame_size(<uint64_t>src.len)
            if self._free() < need:
                return False
            data = self._data
            mask = self._mask
            write = fp_load_acquire_u64(self._write_pos)
            pos = _put_u32(data, mask, write, <uint32_t>src.len)
            if src.len >= NOGIL_COPY_MIN:
                self._writing = True
                with nogil:
                    _put(data, mask, pos, <const char *>src.buf, <size_t>src.len)
                self._writing = False
            else:
                _put(data, mask, pos, <const char *>src.buf, <size_t>src.len)
            fp_store_release_u64(self._write_pos, write + need)
            return True
        finally:
            PyBuffer_Release(&src)

    def try_write_records(self, topic_index, partition, timestamp, first_id, values,
                          keys=None, Py_ssize_t start=0, stop=None, headers=None,
                          created_ms=-1):
        """Encode ``values[start:stop]`` (with ``keys[i]``, ``headers[i]``) as one records
        frame straight into the ring; returns how many records it took (as many as fit,
        0 when not even the first fits now). ``first_id`` is the id of ``values[start]``.
        Nothing is published when it raises: TypeError for an item that is not bytes or
        None, RecordTooLargeError when ``values[start]`` alone can never fit."""
        cdef Py_ssize_t end
        self._check_producer()
        # Cython's own conversion would truncate a float
        _check_int(topic_index, "topic_index")
        _check_int(partition, "partition")
        _check_int(timestamp, "timestamp")
        _check_int(first_id, "first_id")
        _check_int(created_ms, "created_ms")
        if type(values) is not list and type(values) is not tuple:
            raise TypeError(f"values must be a list or tuple, not {type(values).__name__}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        end = len(values)
        if stop is not None:
            if stop < 0:
                raise ValueError(f"stop must be >= 0 or None, got {stop}")
            if stop < end:
                end = stop
        if keys is not None:
            if type(keys) is not list and type(keys) is not tuple:
                raise TypeError(f"keys must be a list, a tuple or None, not {type(keys).__name__}")
            if len(keys) < end:
                raise ValueError(f"{len(keys)} keys for {end} values")
        if headers is not None:
            if type(headers) is not list and type(headers) is not tuple:
                raise TypeError(f"headers must be a list, a tuple or None, "
                                f"not {type(headers).__name__}")
            if len(headers) < end:
                raise ValueError(f"{len(headers)} headers for {end} values")
        if start >= end:
            return 0
        return self._write_records(topic_index, partition, timestamp, first_id, values, keys,
                                   headers, start, end, created_ms)

    cdef Py_ssize_t _write_records(self, uint32_t topic_index, int32_t partition,
                                   int64_t timestamp, uint64_t first_id, object values,
                                   object keys, object headers, Py_ssize_t start,
                                   Py_ssize_t end, int64_t created_ms) except -1:
        cdef char *data = self._data
        cdef uint64_t mask = self._mask
        cdef int64_t max_payload = <int64_t>self._capacity - FRAME_ALIGN
        cdef int64_t budget = <int64_t>self._free() - FRAME_LENGTH_SIZE
        cdef uint64_t write = fp_load_acquire_u64(self._write_pos)
        cdef uint64_t pos = write + FRAME_LENGTH_SIZE + REC_HEADER_SIZE
        cdef int64_t size = REC_HEADER_SIZE, record
        cdef bint has_keys = keys is not None, has_headers = headers is not None
        cdef PyObject **vitems = PySequence_Fast_ITEMS(values)
        cdef PyObject **kitems = PySequence_Fast_ITEMS(keys) if has_keys else NULL
        cdef PyObject **hitems = PySequence_Fast_ITEMS(headers) if has_headers else NULL
        cdef PyObject *v
        cdef PyObject *k = NULL
        cdef Py_ssize_t i = start, vlen, klen = -1, hsize = 0
        cdef char head[FRAME_LENGTH_SIZE + REC_HEADER_SIZE]
        if budget > max_payload:
            budget = max_payload

        while i < end:
            record = 4
            if has_headers:
                # may allocate (UTF-8 of a str key), so may run a finalizer that touches
                # the lists: look the items up again afterwards
                hsize = _headers_size(<object>hitems[i], i)
                record += hsize
                if (len(values) < end or len(keys if has_keys else values) < end
                        or len(headers) < end):
                    raise RuntimeError("values, keys or headers changed size during "
                                       "try_write_records")
                vitems = PySequence_Fast_ITEMS(values)
                kitems = PySequence_Fast_ITEMS(keys) if has_keys else NULL
                hitems = PySequence_Fast_ITEMS(headers)
            v = vitems[i]
            if v == <PyObject *>None:
                vlen = -1
            elif _is_bytes(v):
                vlen = _bytes_size(v)
                record += vlen
            else:
                raise TypeError(f"values[{i}] must be bytes or None, not {_type_name(v)}")
            if has_keys:
                k = kitems[i]
                if k == <PyObject *>None:
                    klen = -1
                    record += 4
                elif _is_bytes(k):
                    klen = _bytes_size(k)
                    record += 4 + klen
                else:
                    raise TypeError(f"keys[{i}] must be bytes or None, not {_type_name(k)}")
            if size + record > budget:
                if i == start and REC_HEADER_SIZE + record > max_payload:
                    raise RecordTooLargeError(
                        f"record {i} takes {REC_HEADER_SIZE + record} bytes as a records "
                        f"frame; a ring of capacity {self._capacity} takes at most "
                        f"{max_payload}")
                break
            if has_keys:
                pos = _put_u32(data, mask, pos, <uint32_t>klen)
                if klen > 0:
                    pos = _put(data, mask, pos, _bytes_ptr(k), <size_t>klen)
            pos = _put_u32(data, mask, pos, <uint32_t>vlen)
            if vlen > 0:
                pos = _put(data, mask, pos, _bytes_ptr(v), <size_t>vlen)
            if has_headers:
                _write_headers(data, mask, &pos, <object>hitems[i], i)
            size += record
            i += 1

        if i == start:
            return 0
        fp_put_le32(head, <uint32_t>size)
        head[FRAME_LENGTH_SIZE] = KIND_RECORDS
        head[FRAME_LENGTH_SIZE + OFF_R_FLAGS] = <char>(
            (FLAG_HAS_KEYS if has_keys else 0) | (FLAG_HAS_HEADERS if has_headers else 0))
        fp_put_le16(head + FRAME_LENGTH_SIZE + 2, 0)
        fp_put_le32(head + FRAME_LENGTH_SIZE + OFF_R_TOPIC_INDEX, topic_index)
        fp_put_le32(head + FRAME_LENGTH_SIZE + OFF_R_PARTITION, <uint32_t>partition)
        fp_put_le32(head + FRAME_LENGTH_SIZE + OFF_R_COUNT, <uint32_t>(i - start))
        fp_put_le64(head + FRAME_LENGTH_SIZE + OFF_R_TIMESTAMP, <uint64_t>timestamp)
        fp_put_le64(head + FRAME_LENGTH_SIZE + OFF_R_FIRST_ID, first_id)
        fp_put_le64(head + FRAME_LENGTH_SIZE + OFF_R_CREATED_MS, <uint64_t>created_ms)
        _put(data, mask, write, head, FRAME_LENGTH_SIZE + REC_HEADER_SIZE)
        fp_store_release_u64(self._write_pos, write + _frame_size(<uint64_t>size))
        return i - start

    def set_producer_waiting(self, bint flag):
        """Producer: raise the flag before re-checking for room and sleeping; the flag is
        stored with a full fence, so the re-check sees any release that missed it."""
        self._check_open()
        fp_store_seq_cst_u32(self._producer_waiting, 1 if flag else 0)

    @property
    def producer_waiting(self):
        """Consumer, after release(): must it wake the producer? (fenced load)"""
        self._check_open()
        fp_fence_seq_cst()
        return fp_load_acquire_u32(self._producer_waiting) != 0

    @property
    def consumer_waiting(self):
        """Producer, after a write: must it wake the consumer? (fenced load)"""
        self._check_open()
        fp_fence_seq_cst()
        return fp_load_acquire_u32(self._consumer_waiting) != 0

    # ---- consumer side ---------------------------------------------------------------

    def read(self):
        """The next frame's payload, or None when the ring is empty; advances read_pos.

        A memoryview into the ring (no copy) when the payload does not wrap, else a bytes
        copy. A view stays valid until ``release`` passes ``read_end_pos()``: decode it
        (or copy it) before releasing."""
        cdef uint64_t read, write, length, total, start
        cdef char *data = self._data
        cdef char *dst
        cdef object out
        self._check_consumer()
        read = fp_load_acquire_u64(self._read_pos)
        write = fp_load_acquire_u64(self._write_pos)
        if read == write:
            return None
        if write < read or write - read > self._capacity or read % FRAME_ALIGN:
            _raise_corrupt(f"ring counters are inconsistent: read_pos {read}, "
                           f"write_pos {write}, capacity {self._capacity}")
        length = fp_get_le32(data + (read & self._mask))
        total = _frame_size(length)
        if length > self._capacity - FRAME_ALIGN or total > write - read:
            _raise_corrupt(f"ring frame at position {read} declares {length} bytes; "
                           f"{write - read} are published")
        start = (read + FRAME_LENGTH_SIZE) & self._mask
        if start + length <= self._capacity:
            out = self._readonly[RING_HEADER_SIZE + start:RING_HEADER_SIZE + start + length]
        else:
            out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>length)
            dst = PyBytes_AS_STRING(out)
            if length >= NOGIL_COPY_MIN:
                self._reading = True
                with nogil:
                    _get(data, self._mask, read + FRAME_LENGTH_SIZE, dst, length)
                self._reading = False
            else:
                _get(data, self._mask, read + FRAME_LENGTH_SIZE, dst, length)
        self._read_end = read + total
        fp_store_release_u64(self._read_pos, read + total)
        return out

    def read_end_pos(self):
        """read_pos right after the last frame read() returned: what to release() once
        that frame's records are acknowledged."""
        return self._read_end

    def release(self, pos):
        """Free the ring up to ``pos`` (a frame end between release_pos and read_pos)."""
        cdef uint64_t p, release, read
        self._check_consumer()
        _check_int(pos, "release position")
        if pos < 0:
            raise ValueError(f"release position must be >= 0, got {pos}")
        p = pos
        release = fp_load_acquire_u64(self._release_pos)
        read = fp_load_acquire_u64(self._read_pos)
        if p < release or p > read or p % FRAME_ALIGN:
            raise ValueError(f"release position {p} must be a frame end between release_pos "
                             f"{release} and read_pos {read}")
        fp_store_release_u64(self._release_pos, p)

    def rewind(self):
        """read_pos = release_pos: read again what was read but never acknowledged."""
        cdef uint64_t release
        self._check_consumer()
        release = fp_load_acquire_u64(self._release_pos)
        fp_store_release_u64(self._read_pos, release)
        self._read_end = release

    def set_consumer_waiting(self, bint flag):
        """Consumer: raise the flag, re-check write_pos, then sleep (see producer_waiting)."""
        self._check_open()
        fp_store_seq_cst_u32(self._consumer_waiting, 1 if flag else 0)

    def __repr__(self):
        if self._data == NULL:
            return "<Ring closed>"
        return (f"<Ring capacity={self._capacity} write_pos={self.write_pos} "
                f"read_pos={self.read_pos} release_pos={self.release_pos}>")


def encode_frame_size(Py_ssize_t payload_len):
    """Ring bytes a frame with ``payload_len`` payload bytes takes (length field and
    padding included): what it costs in free_space()."""
    if payload_len < 0:
        raise ValueError(f"payload_len must be >= 0, got {payload_len}")
    return _frame_size(<uint64_t>payload_len)


# ---- decoding a records frame ---------------------------------------------------------

cdef class RecordsFrame:
    """A decoded records frame: ``count`` records with ids ``first_id`` ...

    ``keys`` is None when no record has a key; ``headers`` is None when no record has a
    header, else one entry per record: a list of (str, bytes | None) or None."""

    cdef readonly int kind
    cdef readonly uint32_t topic_index
    cdef readonly int32_t partition
    cdef readonly int64_t timestamp
    cdef readonly uint64_t first_id
    cdef readonly int64_t created_ms
    cdef readonly uint32_t count
    cdef readonly object keys
    cdef readonly object values
    cdef readonly object headers

    def __init__(self, uint32_t topic_index, int32_t partition, int64_t timestamp,
                 uint64_t first_id, list values, keys=None, headers=None,
                 int64_t created_ms=-1):
        self.kind = KIND_RECORDS
        self.created_ms = created_ms
        self.topic_index = topic_index
        self.partition = partition
        self.timestamp = timestamp
        self.first_id = first_id
        self.count = len(values)
        self.values = values
        self.keys = keys
        self.headers = headers

    def __repr__(self):
        return (f"RecordsFrame(topic_index={self.topic_index}, partition={self.partition}, "
                f"timestamp={self.timestamp}, first_id={self.first_id}, count={self.count}, "
                f"keys={'None' if self.keys is None else '[...]'}, "
                f"headers={'None' if self.headers is None else '[...]'})")


cdef inline object _read_blob(const char *p, Py_ssize_t n, Py_ssize_t *pos, str what,
                              uint32_t index):
    cdef int32_t length
    if n - pos[0] < 4:
        _raise_corrupt(f"records frame truncated in record {index}'s {what} length")
    length = <int32_t>fp_get_le32(p + pos[0])
    pos[0] += 4
    if length == -1:
        return None
    if length < -1 or length > n - pos[0]:
        _raise_corrupt(f"record {index}'s {what} length {length} overruns the frame "
                       f"({n - pos[0]} bytes left)")
    out = PyBytes_FromStringAndSize(p + pos[0], length)
    pos[0] += length
    return out


cdef object _read_headers(const char *p, Py_ssize_t n, Py_ssize_t *pos, uint32_t index):
    cdef uint16_t count, klen
    cdef uint32_t j
    cdef list out
    if n - pos[0] < 2:
        _raise_corrupt(f"records frame truncated in record {index}'s header count")
    count = fp_get_le16(p + pos[0])
    pos[0] += 2
    if count == 0:
        return None
    if count > (n - pos[0]) // 6:
        _raise_corrupt(f"record {index} declares {count} headers; the frame has room for "
                       f"{(n - pos[0]) // 6}")
    out = PyList_New(count)
    for j in range(count):
        if n - pos[0] < 2:
            _raise_corrupt(f"records frame truncated in record {index}'s header key length")
        klen = fp_get_le16(p + pos[0])
        pos[0] += 2
        if klen > n - pos[0]:
            _raise_corrupt(f"record {index}'s header key length {klen} overruns the frame")
        try:
            key = PyUnicode_DecodeUTF8(p + pos[0], klen, NULL)
        except UnicodeDecodeError as exc:
            raise CorruptRecordError(f"record {index}'s header key is not UTF-8: {exc}") from None
        pos[0] += klen
        item = (key, _read_blob(p, n, pos, "header value", index))
        Py_INCREF(item)
        PyList_SET_ITEM(out, j, item)
    return out


cdef RecordsFrame _decode_records(const char *p, Py_ssize_t n):
    cdef RecordsFrame frame
    cdef uint8_t flags
    cdef bint has_keys, has_headers, any_key = False, any_header = False
    cdef uint32_t count, i
    cdef Py_ssize_t pos = REC_HEADER_SIZE, min_record
    cdef list values, keys = None, headers = None
    if n < REC_HEADER_SIZE:
        _raise_corrupt(f"records frame of {n} bytes is shorter than its "
                       f"{REC_HEADER_SIZE}-byte header")
    if <uint8_t>p[0] != KIND_RECORDS:
        _raise_corrupt(f"frame kind {<uint8_t>p[0]} is not a records frame ({KIND_RECORDS})")
    flags = <uint8_t>p[OFF_R_FLAGS]
    if flags & ~(FLAG_HAS_KEYS | FLAG_HAS_HEADERS):
        _raise_corrupt(f"records frame has unknown flags 0x{flags:02x}")
    has_keys = flags & FLAG_HAS_KEYS
    has_headers = flags & FLAG_HAS_HEADERS
    count = fp_get_le32(p + OFF_R_COUNT)
    min_record = 4 + (4 if has_keys else 0) + (2 if has_headers else 0)
    if count > (n - REC_HEADER_SIZE) // min_record:
        _raise_corrupt(f"records frame declares {count} records; its {n} bytes hold at "
                       f"most {(n - REC_HEADER_SIZE) // min_record}")
    values = PyList_New(count)
    if has_keys:
        keys = PyList_New(count)
    if has_headers:
        headers = PyList_New(count)
    for i in range(count):
        if has_keys:
            key = _read_blob(p, n, &pos, "key", i)
            if key is not None:
                any_key = True
            Py_INCREF(key)
            PyList_SET_ITEM(keys, i, key)
        value = _read_blob(p, n, &pos, "value", i)
        Py_INCREF(value)
        PyList_SET_ITEM(values, i, value)
        if has_headers:
            record_headers = _read_headers(p, n, &pos, i)
            if record_headers is not None:
                any_header = True
            Py_INCREF(record_headers)
            PyList_SET_ITEM(headers, i, record_headers)
    if pos != n:
        _raise_corrupt(f"{n - pos} bytes remain after the records frame's {count} records")
    frame = RecordsFrame.__new__(RecordsFrame)
    frame.kind = KIND_RECORDS
    frame.topic_index = fp_get_le32(p + OFF_R_TOPIC_INDEX)
    frame.partition = <int32_t>fp_get_le32(p + OFF_R_PARTITION)
    frame.count = count
    frame.timestamp = <int64_t>fp_get_le64(p + OFF_R_TIMESTAMP)
    frame.first_id = fp_get_le64(p + OFF_R_FIRST_ID)
    frame.created_ms = <int64_t>fp_get_le64(p + OFF_R_CREATED_MS)
    frame.values = values
    frame.keys = keys if any_key else None
    frame.headers = headers if any_header else None
    return frame


def decode_records(payload):
    """Decode a records frame payload (from Ring.read); CorruptRecordError if it is
    truncated or malformed."""
    cdef Py_buffer view
    get_buffer(payload, &view, "decode_records() payload")
    try:
        return _decode_records(<const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
