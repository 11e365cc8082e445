"""ShardedProducer.metrics(): its workers' metrics, each tagged worker=N, and their
totals under the plain names, with the parent's own (its metadata connections, flush).

Totals: sums for counts, totals, rates and bytes; the largest value for -max metrics and
metadata-age; the mean of the workers that have a value for averages and ratios (not
weighted by how much each worker recorded)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from fastprod.metrics import KafkaMetric, Metric, MetricName
from fastprod.sharded.handle import WorkerHandle

_LARGEST = ("-max", "metadata-age")
_MEAN = ("-avg", "-ratio", "compression-rate")


class MeasuredMetric(Metric):
    """A metric's value as measured when metrics() was called (a worker's metrics are
    read by asking it, so they are not live as Producer's are)."""

    def __init__(self, metric_name: MetricName, value: float) -> None:
        self._name = metric_name
        self._value = value

    def value(self) -> float:
        return self._value


def gather(own: dict[MetricName, KafkaMetric], handles: list[WorkerHandle], client_id: str,
           timeout: float) -> dict[MetricName, MeasuredMetric]:
    """Ask every live worker for its metrics (a lost one has none) and combine them."""
    out: dict[MetricName, MeasuredMetric] = {}
    parts: dict[MetricName, list[float]] = defaultdict(list)
    for name, metric in own.items():
        parts[name].append(metric.value())
    for w in handles:
        if w.lost is not None:
            continue
        for raw_name, group, description, tags, value in w.ask("metrics", timeout=timeout):
            tags = {**tags, "client-id": client_id}
            total_name = MetricName(raw_name, group, description, tags)
            parts[total_name].append(value)
            worker_name = MetricName(raw_name, group, description,
                                     {**tags, "worker": str(w.index)})
            out[worker_name] = MeasuredMetric(worker_name, _float(value))
    for name, values in parts.items():
        out[name] = MeasuredMetric(name, _combine(name.name, values))
    return out


def _combine(name: str, values: list[Any]) -> float:
    numbers = [_float(v) for v in values]
    present = [v for v in numbers if not math.isnan(v)]
    if name.endswith(_LARGEST):
        return max(present) if present else math.nan
    if name.endswith(_MEAN):
        return sum(present) / len(present) if present else math.nan
    return sum(present)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
