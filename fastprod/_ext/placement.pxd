# Where a record goes, written once: the partition of a keyed record (the Java
# producer's BuiltInPartitioner.partitionForKey) and the ShardedProducer worker that
# owns a partition. Every kernel that places records cimports these, and
# fastprod.kernels exposes them to Python (partition_for_key, topic_seed,
# worker_for_partition). Two copies of the worker rule that drifted apart would send
# one partition's records to two workers: per-partition order and idempotent
# sequences would break silently.

from fastprod._ext.murmur2 cimport murmur2_raw


cdef inline Py_ssize_t key_partition(const unsigned char *key, Py_ssize_t length,
                                     Py_ssize_t num_partitions) noexcept nogil:
    """toPositive(murmur2(key)) % numPartitions, as Java; num_partitions > 0."""
    return <Py_ssize_t>(murmur2_raw(key, length) & 0x7fffffff) % num_partitions


cdef inline Py_ssize_t topic_seed(const unsigned char *name, Py_ssize_t length) noexcept nogil:
    """Where a topic's partitions start among the workers (toPositive(murmur2 of its
    UTF-8 name)): topics with few partitions do not all land on worker 0."""
    return <Py_ssize_t>(murmur2_raw(name, length) & 0x7fffffff)


cdef inline Py_ssize_t worker_index(Py_ssize_t seed, Py_ssize_t partition,
                                    Py_ssize_t workers) noexcept nogil:
    """The worker that owns ``partition`` of the topic with ``seed``; workers > 0."""
    return (seed + partition) % workers
