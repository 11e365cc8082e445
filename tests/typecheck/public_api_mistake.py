"""Planted mistakes mypy must report (tests/unit/test_seams.py)."""

from fastprod import Producer


def use(producer: Producer) -> int:
    metadata = producer.send("t", b"v").result(timeout="x")  # not a float
    return metadata.ofset  # misspelled field
