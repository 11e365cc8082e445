# cython: language_level=3
"""murmur2 exactly as the Java client's ``Utils.murmur2`` computes it.

The Java producer picks a keyed record's partition as
``toPositive(murmur2(keyBytes)) % numPartitions`` (BuiltInPartitioner.partitionForKey);
matching it bit for bit is what keeps a key on the same partition whichever client
wrote it. Java works in signed 32-bit ints with unsigned shifts (>>>), which is plain
uint32_t arithmetic here; the result is reinterpreted as int32.
"""

from cpython.buffer cimport PyBuffer_Release

from fastprod._ext.buffers cimport get_buffer
from fastprod._ext.placement cimport key_partition, topic_seed, worker_index


cdef inline int32_t murmur2_of(object data, str what) except? -1:
    cdef Py_buffer view
    cdef int32_t h
    if type(data) is bytes:  # the common case: no buffer acquisition
        return murmur2_raw(<const unsigned char *><char *>data, len(<bytes>data))
    get_buffer(data, &view, what)
    try:
        h = murmur2_raw(<const unsigned char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return h


def murmur2(data):
    """Java's ``Utils.murmur2(data)``: a signed 32-bit int."""
    return murmur2_of(data, "murmur2() data")


def to_positive(h):
    """Java's ``Utils.toPositive``: clear the sign bit of a 32-bit int."""
    return h & 0x7fffffff


cdef inline Py_ssize_t partition_of(object key, Py_ssize_t num_partitions,
                                    str what) except -1:
    cdef Py_buffer view
    if type(key) is bytes:  # the common case: no buffer acquisition
        return key_partition(<const unsigned char *><char *>key, len(<bytes>key),
                             num_partitions)
    get_buffer(key, &view, what)
    try:
        return key_partition(<const unsigned char *>view.buf, view.len, num_partitions)
    finally:
        PyBuffer_Release(&view)


def partition_for_key(key, Py_ssize_t num_partitions):
    """The partition the Java producer chooses for a non-null serialized key."""
    if num_partitions <= 0:
        raise ValueError(f"num_partitions must be positive, got {num_partitions}")
    return partition_of(key, num_partitions, "partition_for_key() key")


def topic_worker_seed(str topic):
    """ShardedProducer: where the topic's partitions start among the workers."""
    cdef bytes name = topic.encode()
    return topic_seed(<const unsigned char *><char *>name, len(name))


def worker_for_partition(Py_ssize_t seed, Py_ssize_t partition, Py_ssize_t workers):
    """ShardedProducer: the worker (0 .. workers - 1) that owns ``partition`` of the
    topic whose ``topic_worker_seed`` is ``seed``."""
    if workers <= 0 or seed < 0 or partition < 0:
        raise ValueError(f"seed, partition and workers must be non-negative (workers "
                         f"positive), got {seed}, {partition}, {workers}")
    return worker_index(seed, partition, workers)


def split_by_key_partition(keys, values, Py_ssize_t num_partitions):
    """Group records by the partition the Java producer picks for their key.

    Returns {partition: (indices, keys, values)} with the records' positions in the
    input and their keys and values in input order; records whose key is None are
    under partition -1 (they take the sticky partition, as in Java). The loop runs in
    C: this is the keyed bulk-send path.
    """
    cdef Py_ssize_t i, n, p
    cdef dict groups = {}
    cdef tuple group
    if num_partitions <= 0:
        raise ValueError(f"num_partitions must be positive, got {num_partitions}")
    if type(keys) is not list and type(keys) is not tuple:
        keys = list(keys)
    if type(values) is not list and type(values) is not tuple:
        values = list(values)
    n = len(values)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} values")
    for i in range(n):
        key = keys[i]
        if key is None:
            p = -1
        else:
            p = partition_of(key, num_partitions, "key")
        group = groups.get(p)
        if group is None:
            group = groups[p] = ([], [], [])
        (<list>group[0]).append(i)
        (<list>group[1]).append(key)
        (<list>group[2]).append(values[i])
    return groups
