"""ProducerBatch: the records of one partition on their way into one record batch v2,
and how a batch the broker refused as too large is split.

The batch is touched once per record, so it lives in C (fastprod/_ext/accumulate.pyx);
splitting happens once per refused batch, so its layout is decided here.
"""

from __future__ import annotations

from fastprod._ext.accumulate import ProducerBatch
from fastprod._ext.batch import BatchBuilder, read_batch

__all__ = ["ProducerBatch", "split_batch"]

_SEQUENCE_MOD = 1 << 31  # sequence numbers wrap at Integer.MAX_VALUE + 1, as in Java


def split_batch(batch: ProducerBatch, split_size: int) -> list[ProducerBatch]:
    """Java's ProducerBatch.split: the records of ``batch`` in new batches of up to
    ``split_size`` bytes (estimated as uncompressed; a batch's first record always
    fits), dated from ``batch``'s creation, closed for appends, each with its share of
    the sequence numbers. The first batch split (the root) completes, with every
    record's future, when all parts have; a part split again hands its records to the
    root, so nesting stays one level deep."""
    root = batch if batch.parent is None else batch.parent
    offset = 0 if batch.parent is None else batch.parent_start  # of batch within root
    builder = batch.builder
    parts: list[ProducerBatch] = []
    part = None
    for rel, record in enumerate(read_batch(batch.records()).records):
        if part is not None and part.append_copy(record.timestamp, record.key,
                                                 record.value, record.headers):
            continue
        part = ProducerBatch(batch.topic, batch.partition,
                             BatchBuilder(builder.compression_type, split_size,
                                          builder.compression_level),
                             batch.created_ms)
        part.set_parent(root, offset + rel)
        part.append_copy(record.timestamp, record.key, record.value, record.headers)
        parts.append(part)
    if batch.base_sequence >= 0:
        for part in parts:
            part.set_producer_state(
                batch.producer_id, batch.producer_epoch,
                (batch.base_sequence + part.parent_start - offset) % _SEQUENCE_MOD,
                batch.is_transactional)
    root.expect_parts(batch, len(parts))
    return parts
