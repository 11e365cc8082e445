"""ShardedProducer.metrics(): its workers' metrics, each tagged worker=N, and their
totals under the plain names, with the parent's own (its metadata connections, flush).

Totals: sums for counts, totals, rates and bytes; the largest value for -max metrics and
metadata-age; the mean of the workers that have a value for averages and ratios (not
weighted by how much each worker recorded)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from fastprod.clock import monotonic_ms
from fastprod.metrics import KafkaMetric, Metric, MetricName
from fastprod.sharded.handle import WorkerHandle

log = logging.getLogger("fastprod.metrics")

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
    """Ask every live worker for its metrics (a lost one has none) and combine them,
    all within ``timeout`` seconds (KafkaTimeoutError after)."""
    out: dict[MetricName, MeasuredMetric] = {}
    parts: dict[MetricName, list[float]] = defaultdict(list)
    for name, metric in own.items():
        parts[name].append(metric.value())
    deadline = time.monotonic() + timeout
    for w in handles:
        if w.lost is not None:
            continue
        left = max(deadline - time.monotonic(), 0.001)
        for raw_name, group, description, tags, value in w.ask("metrics", timeout=left):
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


# ---- what ShardedProducer's metric.reporters see ------------------------------------------

class GatheredMetric(Metric):
    """A metric of a GatheredMetrics view: its value is the one of the view's last
    round of questions (refreshed first if that is older than a second)."""

    def __init__(self, metric_name: MetricName, source: GatheredMetrics) -> None:
        self._name = metric_name
        self.source = source  # fastprod.metrics.reporters.refresh_sources looks for it

    def value(self) -> float:
        return self.source.value_of(self._name)


class GatheredMetrics:
    """A registry-like view of ShardedProducer's metrics for its reporters, which run in
    the parent, where the user's process (and its Prometheus endpoint or log) is.

    The workers' metrics live in other processes, so instead of a registry that tells
    reporters of every change, this view asks the workers (the same gather() as
    metrics()) when a reporter reads: the reporters shipped with fastprod refresh it
    once per scrape or log line (refresh_sources), any other reporter's value() calls
    refresh it when the last round is older than ``max_age_ms``. Nothing runs between
    reports, and the workers' hot paths never see the reporters. Each round waits at
    most ``timeout`` seconds for all the workers (a scrape must not hang on a stuck
    worker); a round that fails keeps the last values. Metrics that appear (a new topic
    or broker) are announced with metric_change, those that vanish with metric_removal.
    """

    def __init__(self, gather_all: Callable[[float], dict[MetricName, MeasuredMetric]],
                 reporters: list[Any], timeout: float = 5.0, max_age_ms: int = 1000,
                 clock: Callable[[], int] = monotonic_ms,
                 own: Callable[[], dict[MetricName, KafkaMetric]] | None = None) -> None:
        self._gather = gather_all
        # The parent's own metrics, when the very first round fails (workers still
        # starting): the reporters then hold at least these, whose source is this view,
        # so their next report asks the workers again.
        self._own = own
        self.reporters = list(reporters)
        self.timeout = timeout
        self.max_age_ms = max_age_ms
        self._clock = clock
        self._metrics: dict[MetricName, GatheredMetric] = {}
        self._values: dict[MetricName, float] = {}
        self._refreshed_ms: int | None = None
        self._failing = False
        self._closed = False
        # Re-entrant: a reporter told of a new metric may read values at once.
        self._lock = threading.RLock()

    def start(self) -> None:
        """The first round, then init() of every reporter with what it found."""
        with self._lock:
            self._refresh(announce=False)
            metrics = list(self._metrics.values())
        for reporter in self.reporters:
            reporter.init(list(metrics))

    def metrics(self) -> dict[MetricName, GatheredMetric]:
        with self._lock:
            return dict(self._metrics)

    def refresh(self) -> None:
        """Ask the workers now."""
        with self._lock:
            self._refresh(announce=True)

    def value_of(self, name: MetricName) -> float:
        with self._lock:
            last = self._refreshed_ms
            if last is None or self._clock() - last >= self.max_age_ms:
                self._refresh(announce=True)
            return self._values.get(name, math.nan)

    def _refresh(self, announce: bool) -> None:
        if self._closed:
            return
        try:
            gathered = self._gather(self.timeout)
        except Exception as exc:  # a worker lost or too slow: keep the last values
            self._refreshed_ms = self._clock()
            if not self._failing:
                log.warning("metrics for the reporters: could not gather the workers' "
                            "metrics (%s); showing the last values", exc)
            self._failing = True
            if self._metrics or self._own is None:
                return
            gathered = {name: MeasuredMetric(name, _float(m.value()))
                        for name, m in self._own().items()}
        else:
            self._failing = False
        self._refreshed_ms = self._clock()
        self._values = {name: m.value() for name, m in gathered.items()}
        added = [GatheredMetric(m.metric_name(), self) for name, m in gathered.items()
                 if name not in self._metrics]
        removed = [self._metrics.pop(name) for name in list(self._metrics)
                   if name not in gathered]
        for metric in added:
            self._metrics[metric.metric_name()] = metric
        if not announce:
            return
        for reporter in self.reporters:
            for metric in removed:
                _tell(reporter.metric_removal, metric)
            for metric in added:
                _tell(reporter.metric_change, metric)

    def close(self) -> None:
        """Stop asking (the workers are going away) and close the reporters."""
        from fastprod.metrics import close_reporters

        with self._lock:
            self._closed = True
        close_reporters(self.reporters)
        self.reporters = []


def _tell(call: Callable[[Any], None], metric: Metric) -> None:
    try:
        call(metric)
    except Exception:  # a reporter's bug must not break the others, or the scrape
        log.exception("metrics reporter %r failed", call)
