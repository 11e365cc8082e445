"""Checked by mypy in tests/unit/test_seams.py, never run: what send() returns is typed."""

from fastprod import Producer


def use(producer: Producer) -> int:
    metadata = producer.send("t", b"v").result(timeout=1.0)
    batch = producer.send_batch("t", [b"a", b"b"])
    return metadata.offset + metadata.partition + len(batch.result())
