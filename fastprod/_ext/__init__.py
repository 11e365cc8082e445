"""Cython kernels. Import them through ``fastprod.kernels``.

Layering (as in asyncpg): C headers for intrinsics -> ``.pxd`` inline primitives ->
``cdef class`` builders -> thin ``def`` wrappers. No I/O here; this package imports
nothing from fastprod except ``fastprod.errors``.

Producer policy (when batches are ready, drained, retried, split, expired; the
transaction's state) lives in fastprod/engine/. What of it runs here runs once per
record, where a call into Python would cost more than the work itself, and each
``.pyx`` says so where it does:
- the placement rules (placement.pxd: key -> partition, partition -> worker), one copy
  used by both producers' C send paths and by their Python paths through kernels.py;
- the sticky partitioner's byte count on the C send paths (accumulate.pyx,
  shard.pyx), which hand the partition switch itself to the Python partitioner;
- the transaction gate on the C send path: a set lookup in the TransactionManager's
  ``partitions_in_txn``, the call to add a partition only when it is new;
- ProducerBatch's completion and split bookkeeping (the split's layout is
  fastprod/engine/batch.py's).
"""
