# cython: language_level=3
"""Record batch v2 (magic 2): the only record format Kafka 4.x accepts.

Layout (org.apache.kafka.common.record.DefaultRecordBatch; big-endian):

    offset  field                 type
         0  baseOffset            int64
         8  batchLength           int32   bytes after this field
        12  partitionLeaderEpoch  int32
        16  magic                 int8    = 2
        17  crc                   uint32  CRC-32C of bytes 21..end
        21  attributes            int16   bits 0-2 codec, 3 timestamp type,
                                          4 transactional, 5 control
        23  lastOffsetDelta       int32
        27  baseTimestamp         int64
        35  maxTimestamp          int64
        43  producerId            int64
        51  producerEpoch         int16
        53  baseSequence          int32
        57  recordCount           int32
        61  records               (compressed as one block when a codec is set)

    Record (DefaultRecord), varints zig-zag encoded:
        length varint, attributes int8 (0), timestampDelta varlong, offsetDelta varint,
        keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
        headerCount varint, then per header: keyLength varint, key (UTF-8),
        valueLength varint (-1 = null), value
"""

from collections import namedtuple

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.long cimport PyLong_AsLongLong, PyLong_Check
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int16_t, int32_t, int64_t, uint32_t
from libc.string cimport memcpy

from fastprod._ext.buffers cimport get_buffer
from fastprod._ext.crc32c cimport crc32c_update
from fastprod._ext.varint cimport (raise_corrupt, read_varint32, read_varint64,
                                   size_of_uvarint64, size_of_varint32, size_of_varint64,
                                   write_varint32, write_varint64)

from fastprod._ext import codecs
from fastprod.errors import CorruptRecordError


cdef extern from "fp_bytes.h" nogil:
    void fp_put_u16(char *p, unsigned short v)
    void fp_put_u32(char *p, uint32_t v)
    void fp_put_u64(char *p, unsigned long long v)
    unsigned short fp_get_u16(const char *p)
    uint32_t fp_get_u32(const char *p)
    unsigned long long fp_get_u64(const char *p)

cdef extern from "Python.h":
    int PyBUF_READ

COMPRESSION_NONE = codecs.NONE
COMPRESSION_GZIP = codecs.GZIP
COMPRESSION_SNAPPY = codecs.SNAPPY
COMPRESSION_LZ4 = codecs.LZ4
COMPRESSION_ZSTD = codecs.ZSTD

# Java's MemoryRecordsBuilder pads its compressed-size estimate by 5%.
cdef double COMPRESSION_RATE_ESTIMATION_FACTOR = 1.05

RECORD_BATCH_OVERHEAD = OVERHEAD


cdef inline int64_t _as_int64(object value, str what) except? -1:
    # Cython's own conversion would truncate a float; Kafka fields are integers.
    if not PyLong_Check(value):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return PyLong_AsLongLong(value)


cdef inline int32_t _as_int32(object value, str what) except? -1:
    cdef int64_t v = _as_int64(value, what)
    if v < -0x80000000 or v > 0x7FFFFFFF:
        raise OverflowError(f"{what} {v} does not fit in a signed 32-bit int")
    return <int32_t>v


cdef inline Py_ssize_t _bytes_len(object obj, Py_buffer *view, bint *held,
                                  const char **ptr, str what) except -2:
    """Length of a key or value (-1 for None) and a pointer to its bytes."""
    if obj is None:
        return -1
    if type(obj) is bytes:
        ptr[0] = PyBytes_AS_STRING(obj)
        return PyBytes_GET_SIZE(obj)
    if isinstance(obj, str):
        raise TypeError(f"{what} must be bytes-like or None, not str (serialize it first)")
    get_buffer(obj, view, what)
    held[0] = True
    ptr[0] = <const char *>view.buf
    return view.len


cdef list _normalize_headers(object headers):
    """[(key UTF-8 bytes, value bytes or None)], checking types."""
    cdef list out = []
    for header in headers:
        if not isinstance(header, tuple) or len(<tuple>header) != 2:
            raise TypeError(
                f"each header must be a (key, value) tuple, not {type(header).__name__}")
        key, value = <tuple>header
        if isinstance(key, str):
            key = (<str>key).encode("utf-8")
        elif type(key) is not bytes:
            raise TypeError(f"header key must be str or bytes, not {type(key).__name__}")
        if value is not None and type(value) is not bytes:
            if isinstance(value, str):
                raise TypeError("header value must be bytes-like or None, not str")
            try:
                value = bytes(memoryview(value))
            except TypeError:
                raise TypeError(f"header value must be bytes-like or None, "
                                f"not {type(value).__name__}") from None
        out.append((key, value))
    return out


cdef class BatchBuilder:
    """Writes one record batch v2. Not thread-safe: one owner at a time.

    Records are encoded straight into a growing buffer behind 61 bytes reserved for the
    header; ``build`` compresses them (if a codec is set) and writes header and CRC.
    ``batch_size`` is the capacity the accumulator asked for: the first record always
    fits; a later one is refused (``append`` returns -1) when the estimated batch size
    would pass it. Like Java's MemoryRecordsBuilder, a compressed batch is estimated as
    uncompressed size x ``estimated_compression_ratio`` x 1.05.
    """

    # fields are declared in batch.pxd, so that accumulate.pyx can call _append in C

    def __cinit__(self, compression_type=0, batch_size=16384, compression_level=None):
        _as_int32(compression_type, "compression_type")
        _as_int32(batch_size, "batch_size")
        if compression_level is not None:
            _as_int32(compression_level, "compression_level")
        self.compression_level = codecs.check_level(compression_type, compression_level)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.compression_type = compression_type
        self.batch_size = batch_size
        self._capacity = max(batch_size, 1024) + OVERHEAD
        self._buf = <char *>PyMem_Realloc(NULL, self._capacity)
        if self._buf == NULL:
            raise MemoryError()
        self._pos = OVERHEAD
        self._count = 0
        self._last_offset_delta = -1
        self._max_record = 0
        self.estimated_compression_ratio = 1.0

    def __dealloc__(self):
        PyMem_Free(self._buf)

    @property
    def record_count(self):
        return self._count

    @property
    def size_in_bytes(self):
        return self._pos

    @property
    def max_record_size(self):
        """The encoded size of the largest record appended (for record-size-max)."""
        return self._max_record

    @property
    def estimated_compression_ratio(self):
        return self._ratio

    @estimated_compression_ratio.setter
    def estimated_compression_ratio(self, double ratio):
        if not ratio > 0:
            raise ValueError(f"estimated_compression_ratio must be positive, got {ratio}")
        self._ratio = ratio
        if self.compression_type == COMPRESSION_NONE:
            self._size_factor = 1.0
        else:
            self._size_factor = ratio * COMPRESSION_RATE_ESTIMATION_FACTOR

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self._pos + extra
        if need <= self._capacity:
            return 0
        cdef Py_ssize_t capacity = max(need, self._capacity * 2)
        cdef char *buf = <char *>PyMem_Realloc(self._buf, capacity)
        if buf == NULL:
            raise MemoryError()
        self._buf = buf
        self._capacity = capacity
        return 0

    def append(self, offset_delta, timestamp, key, value, headers=None):
        """Append one record; returns its encoded size in bytes, or -1 if it does not fit."""
        return self._append(_as_int32(offset_delta, "offset_delta"),
                            _as_int64(timestamp, "timestamp"), key, value, headers)

    def append_many(self, first_offset_delta, timestamp, values, keys=None,
                    Py_ssize_t start=0, stop=None):
        """Append ``values[start:stop]`` (keyed by ``keys[i]`` when given), offset deltas
        counting up from ``first_offset_delta``, one timestamp, no headers, until the
        batch is full. Returns how many records were taken. The loop runs in C: this is
        the path for bulk sends."""
        cdef int32_t offset_delta = _as_int32(first_offset_delta, "first_offset_delta")
        cdef int64_t ts = _as_int64(timestamp, "timestamp")
        cdef Py_ssize_t i, end
        if type(values) is not list and type(values) is not tuple:
            values = list(values)
        end = len(values) if stop is None else min(<Py_ssize_t>stop, len(values))
        if keys is not None:
            if type(keys) is not list and type(keys) is not tuple:
                keys = list(keys)
            if len(keys) < end:
                raise ValueError(f"{len(keys)} keys for {end} values")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        i = start
        while i < end:
            if self._append(offset_delta, ts, None if keys is None else keys[i],
                            values[i], None) < 0:
                break
            offset_delta += 1
            i += 1
        return i - start

    cdef Py_ssize_t _append(self, int32_t offset_delta, int64_t timestamp, object key,
                            object value, object headers) except -2:
        cdef Py_buffer kview, vview
        cdef bint kheld = False, vheld = False
        cdef const char *kptr = NULL
        cdef const char *vptr = NULL
        cdef Py_ssize_t klen, vlen, body, total, hsize = 0
        cdef int64_t ts_delta
        cdef list hdrs = None
        cdef char *p

        if offset_delta <= self._last_offset_delta:
            raise ValueError(f"offset_delta {offset_delta} must be greater than the previous "
                             f"one ({self._last_offset_delta})")
        ts_delta = 0 if self._count == 0 else timestamp - self._base_timestamp
        if headers:
            hdrs = _normalize_headers(headers)
            for hk, hv in hdrs:
                hsize += size_of_varint32(<int32_t>len(<bytes>hk)) + len(<bytes>hk)
                if hv is None:
                    hsize += 1
                else:
                    hsize += size_of_varint32(<int32_t>len(<bytes>hv)) + len(<bytes>hv)
        try:
            klen = _bytes_len(key, &kview, &kheld, &kptr, "record key")
            vlen = _bytes_len(value, &vview, &vheld, &vptr, "record value")
            body = (1 + size_of_varint64(ts_delta) + size_of_varint32(offset_delta)
                    + size_of_varint32(<int32_t>klen) + (klen if klen > 0 else 0)
                    + size_of_varint32(<int32_t>vlen) + (vlen if vlen > 0 else 0)
                    + size_of_varint32(0 if hdrs is None else <int32_t>len(hdrs)) + hsize)
            if body > 0x7FFFFFFF - 5:
                raise OverflowError(f"record of {body} bytes is too large for a batch")
            total = size_of_varint32(<int32_t>body) + body
            if self._count > 0:
                if self._size_factor == 1.0:
                    if self._pos + total > self.batch_size:
                        return -1
                elif (OVERHEAD + (self._pos - OVERHEAD) * self._size_factor + total
                        > self.batch_size):
                    return -1
            if self._pos + total > self._capacity:
                self._reserve(total)
            p = self._buf + self._pos
            p += write_varint32(p, <int32_t>body)
            p[0] = 0  # record attributes: unused
            p += 1
            p += write_varint64(p, ts_delta)
            p += write_varint32(p, offset_delta)
            p += write_varint32(p, <int32_t>klen)
            if klen > 0:
                memcpy(p, kptr, klen)
                p += klen
            p += write_varint32(p, <int32_t>vlen)
            if vlen > 0:
                memcpy(p, vptr, vlen)
                p += vlen
            if hdrs is None:
                p[0] = 0
                p += 1
            else:
                p += write_varint32(p, <int32_t>len(hdrs))
                for hk, hv in hdrs:
                    p += write_varint32(p, <int32_t>len(<bytes>hk))
                    memcpy(p, PyBytes_AS_STRING(hk), len(<bytes>hk))
                    p += len(<bytes>hk)
                    if hv is None:
                        p += write_varint32(p, -1)
                    else:
                        p += write_varint32(p, <int32_t>len(<bytes>hv))
                        memcpy(p, PyBytes_AS_STRING(hv), len(<bytes>hv))
                        p += len(<bytes>hv)
        finally:
            if kheld:
                PyBuffer_Release(&kview)
            if vheld:
                PyBuffer_Release(&vview)

        self._pos += total
        if total > self._max_record:
            self._max_record = total
        if self._count == 0:
            self._base_timestamp = timestamp
            self._max_timestamp = timestamp
        elif timestamp > self._max_timestamp:
            self._max_timestamp = timestamp
        self._count += 1
        self._last_offset_delta = offset_delta
        return total

    def build(self, int64_t producer_id=-1, int16_t producer_epoch=-1,
              int32_t base_sequence=-1, bint is_transactional=False,
              int64_t base_offset=0, int32_t partition_leader_epoch=-1):
        """Compress the records, write header and CRC-32C, and return the batch bytes."""
        cdef object payload
        cdef const char *src
        cdef Py_ssize_t length
        cdef bytes out
        cdef char *p
        if self._count == 0:
            raise ValueError("cannot build a record batch with no records")
        if self.compression_type == COMPRESSION_NONE:
            src = self._buf + OVERHEAD
            length = self._pos - OVERHEAD
        else:
            payload = codecs.compress(
                self.compression_type,
                PyMemoryView_FromMemory(self._buf + OVERHEAD, self._pos - OVERHEAD, PyBUF_READ),
                self.compression_level)
            src = PyBytes_AS_STRING(payload)
            length = PyBytes_GET_SIZE(payload)
        if length > 0x7FFFFFFF - OVERHEAD:
            raise OverflowError(f"record batch of {length} bytes is too large")
        out = PyBytes_FromStringAndSize(NULL, OVERHEAD + length)
        p = PyBytes_AS_STRING(out)
        memcpy(p + OVERHEAD, src, length)
        fp_put_u64(p, <unsigned long long>base_offset)
        fp_put_u32(p + OFF_BATCH_LENGTH, <uint32_t>(OVERHEAD + length - LOG_OVERHEAD))
        fp_put_u32(p + OFF_LEADER_EPOCH, <uint32_t>partition_leader_epoch)
        p[OFF_MAGIC] = 2
        fp_put_u16(p + OFF_ATTRIBUTES, <unsigned short>(
            self.compression_type | (TRANSACTIONAL_FLAG if is_transactional else 0)))
        fp_put_u32(p + OFF_LAST_OFFSET_DELTA, <uint32_t>self._last_offset_delta)
        fp_put_u64(p + OFF_BASE_TIMESTAMP, <unsigned long long>self._base_timestamp)
        fp_put_u64(p + OFF_MAX_TIMESTAMP, <unsigned long long>self._max_timestamp)
        fp_put_u64(p + OFF_PRODUCER_ID, <unsigned long long>producer_id)
        fp_put_u16(p + OFF_PRODUCER_EPOCH, <unsigned short>producer_epoch)
        fp_put_u32(p + OFF_BASE_SEQUENCE, <uint32_t>base_sequence)
        fp_put_u32(p + OFF_RECORD_COUNT, <uint32_t>self._count)
        _write_crc(p, OVERHEAD + length)
        return out


cdef inline void _write_crc(char *batch, Py_ssize_t size) noexcept nogil:
    fp_put_u32(batch + OFF_CRC, crc32c_update(0, batch + OFF_ATTRIBUTES, size - OFF_ATTRIBUTES))


def set_producer_state(batch, int64_t producer_id, int16_t producer_epoch,
                       int32_t base_sequence, bint is_transactional=False):
    """Restamp producer id, epoch, base sequence and transactional bit; recompute the CRC."""
    cdef Py_buffer view
    cdef char *p
    cdef Py_ssize_t size
    cdef unsigned short attributes
    try:
        PyObject_GetBuffer(batch, &view, PyBUF_WRITABLE)
    except (TypeError, BufferError):
        raise TypeError(f"set_producer_state() batch must be a writable bytes-like object "
                        f"(bytearray, memoryview), not {type(batch).__name__}") from None
    try:
        p = <char *>view.buf
        if view.len < OVERHEAD:
            raise_corrupt(f"record batch of {view.len} bytes is shorter than its header")
        if p[OFF_MAGIC] != 2:
            raise_corrupt(f"unsupported record batch magic {p[OFF_MAGIC]}, expected 2")
        size = <int32_t>fp_get_u32(p + OFF_BATCH_LENGTH) + <Py_ssize_t>LOG_OVERHEAD
        if size < OVERHEAD or size > view.len:
            raise_corrupt(f"record batch length {size} does not fit a buffer of {view.len}")
        attributes = fp_get_u16(p + OFF_ATTRIBUTES) & ~TRANSACTIONAL_FLAG
        if is_transactional:
            attributes |= TRANSACTIONAL_FLAG
        fp_put_u16(p + OFF_ATTRIBUTES, attributes)
        fp_put_u64(p + OFF_PRODUCER_ID, <unsigned long long>producer_id)
        fp_put_u16(p + OFF_PRODUCER_EPOCH, <unsigned short>producer_epoch)
        fp_put_u32(p + OFF_BASE_SEQUENCE, <uint32_t>base_sequence)
        _write_crc(p, size)
    finally:
        PyBuffer_Release(&view)


# ---- reading --------------------------------------------------------------------

Record = namedtuple("Record", "offset timestamp key value headers")

_RecordBatchFields = namedtuple(
    "RecordBatch",
    "base_offset batch_length partition_leader_epoch magic crc attributes "
    "last_offset_delta base_timestamp max_timestamp producer_id producer_epoch "
    "base_sequence records size_in_bytes")


class RecordBatch(_RecordBatchFields):
    """A decoded record batch v2; ``records`` holds absolute offsets."""

    __slots__ = ()

    @property
    def compression_type(self):
        return self.attributes & CODEC_MASK

    @property
    def timestamp_type(self):
        return 1 if self.attributes & TIMESTAMP_TYPE_FLAG else 0

    @property
    def is_transactional(self):
        return bool(self.attributes & TRANSACTIONAL_FLAG)

    @property
    def is_control(self):
        return bool(self.attributes & CONTROL_FLAG)


cdef object _read_bytes(const char *buf, Py_ssize_t end, Py_ssize_t *pos, str what):
    cdef int32_t length = read_varint32(buf, end, pos)
    if length == -1:
        return None
    if length < -1 or length > end - pos[0]:
        raise_corrupt(f"{what} length {length} overruns its record")
    out = PyBytes_FromStringAndSize(buf + pos[0], length)
    pos[0] += length
    return out


cdef list _read_records(const char *buf, Py_ssize_t end, int32_t count,
                        int64_t base_offset, int64_t base_timestamp,
                        int64_t log_append_time):
    """Decode ``count`` records; ``log_append_time`` >= 0 replaces every record's
    timestamp (a LOG_APPEND_TIME batch carries the broker's time in maxTimestamp)."""
    cdef list records = []
    cdef Py_ssize_t pos = 0, record_end
    cdef int32_t length, header_count, hklen, i, j
    cdef int64_t ts_delta
    cdef int32_t offset_delta
    cdef list headers
    for i in range(count):
        length = read_varint32(buf, end, &pos)
        if length < 1 or length > end - pos:
            raise_corrupt(f"record {i} length {length} overruns the batch")
        record_end = pos + length
        pos += 1  # attributes, unused
        ts_delta = read_varint64(buf, record_end, &pos)
        offset_delta = read_varint32(buf, record_end, &pos)
        key = _read_bytes(buf, record_end, &pos, "key")
        value = _read_bytes(buf, record_end, &pos, "value")
        header_count = read_varint32(buf, record_end, &pos)
        if header_count < 0 or header_count > record_end - pos:
            raise_corrupt(f"header count {header_count} is invalid")
        headers = []
        for j in range(header_count):
            hklen = read_varint32(buf, record_end, &pos)
            if hklen < 0 or hklen > record_end - pos:
                raise_corrupt(f"header key length {hklen} overruns its record")
            try:
                hkey = PyUnicode_DecodeUTF8(buf + pos, hklen, NULL)
            except UnicodeDecodeError as exc:
                raise CorruptRecordError(f"header key is not UTF-8: {exc}") from None
            pos += hklen
            headers.append((hkey, _read_bytes(buf, record_end, &pos, "header value")))
        if pos != record_end:
            raise_corrupt(f"record {i} has {record_end - pos} bytes past its last field")
        records.append(Record(
            base_offset + offset_delta,
            log_append_time if log_append_time >= 0 else base_timestamp + ts_delta,
            key, value, headers))
    if pos != end:
        raise_corrupt(f"{end - pos} bytes remain after the batch's {count} records")
    return records


def read_batch(buf, bint verify_crc=True):
    """Decode and verify the record batch v2 at the start of ``buf``."""
    cdef Py_buffer view
    cdef const char *p
    cdef Py_ssize_t size
    cdef int32_t batch_length, count
    cdef uint32_t stored_crc, actual_crc
    cdef int attributes, codec
    get_buffer(buf, &view, "read_batch() buf")
    try:
        p = <const char *>view.buf
        if view.len < OVERHEAD:
            raise_corrupt(f"record batch truncated: {view.len} bytes, the header alone is "
                          f"{OVERHEAD}")
        if p[OFF_MAGIC] != 2:
            raise_corrupt(f"unsupported record batch magic {p[OFF_MAGIC]}, expected 2")
        batch_length = <int32_t>fp_get_u32(p + OFF_BATCH_LENGTH)
        size = <Py_ssize_t>batch_length + LOG_OVERHEAD
        if size < OVERHEAD:
            raise_corrupt(f"record batch length {batch_length} is shorter than its header")
        if size > view.len:
            raise_corrupt(f"record batch truncated: it declares {size} bytes, "
                          f"{view.len} are present")
        stored_crc = fp_get_u32(p + OFF_CRC)
        if verify_crc:
            actual_crc = crc32c_update(0, p + OFF_ATTRIBUTES, size - OFF_ATTRIBUTES)
            if actual_crc != stored_crc:
                raise CorruptRecordError(
                    f"record batch CRC mismatch: stored 0x{stored_crc:08x}, "
                    f"computed 0x{actual_crc:08x}",
                    expected_crc=stored_crc, actual_crc=actual_crc)
        attributes = fp_get_u16(p + OFF_ATTRIBUTES)
        count = <int32_t>fp_get_u32(p + OFF_RECORD_COUNT)
        if count < 0:
            raise_corrupt(f"negative record count {count}")
        base_offset = <int64_t>fp_get_u64(p)
        base_timestamp = <int64_t>fp_get_u64(p + OFF_BASE_TIMESTAMP)
        max_timestamp = <int64_t>fp_get_u64(p + OFF_MAX_TIMESTAMP)
        log_append_time = max_timestamp if attributes & TIMESTAMP_TYPE_FLAG else -1
        codec = attributes & CODEC_MASK
        if codec == COMPRESSION_NONE:
            records = _read_records(p + OVERHEAD, size - OVERHEAD, count,
                                    base_offset, base_timestamp, log_append_time)
        else:
            if codec not in codecs.NAMES:
                raise_corrupt(f"unknown compression codec {codec}")
            try:
                data = codecs.decompress(
                    codec, PyBytes_FromStringAndSize(p + OVERHEAD, size - OVERHEAD))
            except CorruptRecordError:
                raise
            except Exception as exc:
                raise CorruptRecordError(
                    f"cannot decompress {codecs.NAMES[codec]} records: {exc}") from exc
            records = _read_records(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), count,
                                    base_offset, base_timestamp, log_append_time)
        return RecordBatch(
            base_offset, batch_length, <int32_t>fp_get_u32(p + OFF_LEADER_EPOCH), 2,
            stored_crc, attributes, <int32_t>fp_get_u32(p + OFF_LAST_OFFSET_DELTA),
            base_timestamp, max_timestamp,
            <int64_t>fp_get_u64(p + OFF_PRODUCER_ID),
            <int16_t>fp_get_u16(p + OFF_PRODUCER_EPOCH),
            <int32_t>fp_get_u32(p + OFF_BASE_SEQUENCE), records, size)
    finally:
        PyBuffer_Release(&view)


def max_bytes_len(items):
    """The longest item's length if every item is exactly ``bytes`` or None (-1 for
    an empty or all-None sequence), else -2: one C pass that tells the bulk send path
    whether it can skip the serializer and whether any record is too large."""
    cdef Py_ssize_t longest = -1, n
    if type(items) is not list and type(items) is not tuple:
        return -2
    for item in items:
        if item is None:
            continue
        if type(item) is not bytes:
            return -2
        n = PyBytes_GET_SIZE(item)
        if n > longest:
            longest = n
    return longest
