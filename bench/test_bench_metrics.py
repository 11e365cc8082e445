"""Micro-benchmark of what the metrics cost the sender per produce request.

One round is what the sender thread records for one request and its answer: the
request's batches (record_request), the bytes sent and received (the network client),
the latency, the throttle time, and one I/O wait. The request is the shape the
end-to-end benchmark produces: 6 partitions of one topic on one node, 160 records of
100 bytes per batch, so ``extra_info["records"]`` records per round and
ns/record = median / records. Compare it with the CPU per record in bench/RESULTS.md's
end-to-end table (issue 11's budget: metrics may add at most 3% of it). Run:
``python -m pytest bench/test_bench_metrics.py``.
"""

from __future__ import annotations

import pytest

from fastprod.engine.build import build_metrics
from fastprod.config import ProducerConfig
from fastprod.engine.producer_metrics import NetworkMetrics

PARTITIONS = 6
RECORDS_PER_BATCH = 160
BATCH_BYTES = RECORDS_PER_BATCH * 120


class _Builder:
    size_in_bytes = BATCH_BYTES
    max_record_size = 120


class _Batch:
    """The fields of a ProducerBatch that record_request reads."""

    record_count = RECORDS_PER_BATCH
    builder = _Builder()
    topic = "events"
    created_ms = 1_000
    drained_ms = 1_004

    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def records(self) -> bytes:
        return self._payload


BATCHES = [_Batch(bytes(BATCH_BYTES)) for _ in range(PARTITIONS)]


@pytest.fixture
def recorder():
    pm = build_metrics(ProducerConfig({"bootstrap.servers": "localhost:9092"}))
    net = NetworkMetrics(pm)
    clock = iter(range(10**12))

    def one_request() -> None:
        now = next(clock)
        pm.record_request(BATCHES, now)
        net.request_sent(1, PARTITIONS * BATCH_BYTES + 80)
        net.waited(250_000, now)  # folds every 100 ms of this fake clock
        net.response_received(1, 200)
        pm.record_answer(1, 3, 0)

    return one_request


def test_metrics_per_request(benchmark, recorder) -> None:
    benchmark.extra_info["records"] = PARTITIONS * RECORDS_PER_BATCH
    benchmark.pedantic(recorder, rounds=20_000, warmup_rounds=1_000)
