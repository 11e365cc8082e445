"""Java's client metrics (org.apache.kafka.common.metrics), as the producer uses them.

A ``Metrics`` registry holds named metrics; a ``Sensor`` records values (a batch's
size, a request's latency) into the statistics of its metrics: windowed ones (Avg,
Max, Rate over ``metrics.num.samples`` windows of ``metrics.sample.window.ms``) and
cumulative ones (totals). Values are computed when read, as in Java, so recording
costs one lock and a few additions. The engine records per batch and per request,
never per record.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastprod.clock import monotonic_ms

log = logging.getLogger("fastprod.metrics")

FOLD_INTERVAL_MS = 100  # how stale a rate's window may be: 0.3% of the default 30 s


class MetricName:
    """A metric's identity: name, group and tags (the description is not part of it),
    as Java's MetricName."""

    __slots__ = ("name", "group", "description", "tags", "_key")

    def __init__(self, name: str, group: str, description: str = "",
                 tags: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.group = group
        self.description = description
        self.tags: dict[str, str] = dict(tags or {})
        self._key = (name, group, frozenset(self.tags.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricName) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(self.tags.items()))
        return f"MetricName({self.group}:{self.name}{' {' + tags + '}' if tags else ''})"


@dataclass(frozen=True)
class MetricConfig:
    samples: int = 2  # metrics.num.samples
    window_ms: int = 30_000  # metrics.sample.window.ms
    event_window: int = 2**63 - 1


class Stat(Protocol):
    def record(self, config: MetricConfig, value: float, now_ms: int) -> None: ...
    def record_many(self, config: MetricConfig, total: float, count: int, largest: float,
                    now_ms: int) -> None: ...
    def measure(self, config: MetricConfig, now_ms: int) -> float: ...


# ---- cumulative statistics ---------------------------------------------------------------

class CumulativeSum:
    """The sum of every value recorded (Java's CumulativeSum: the -total metrics)."""

    def __init__(self) -> None:
        self.total = 0.0

    def record(self, config: MetricConfig, value: float, now_ms: int) -> None:
        self.total += value

    def record_many(self, config: MetricConfig, total: float, count: int, largest: float,
                    now_ms: int) -> None:
        self.total += total

    def measure(self, config: MetricConfig, now_ms: int) -> float:
        return self.total


class CumulativeCount(CumulativeSum):
    """How many values were recorded, whatever they were."""

    def record(self, config: MetricConfig, value: float, now_ms: int) -> None:
        self.total += 1

    def record_many(self, config: MetricConfig, total: float, count: int, largest: float,
                    now_ms: int) -> None:
        self.total += count


class Value:
    """The last value recorded."""

    def __init__(self) -> None:
        self.value = 0.0

    def record(self, config: MetricConfig, value: float, now_ms: int) -> None:
        self.value = value

    def record_many(self, config: MetricConfig, total: float, count: int, largest: float,
                    now_ms: int) -> None:
        self.value = largest

    def measure(self, config: MetricConfig, now_ms: int) -> float:
        return self.value


# ---- sampled statistics ------------------------------------------------------------------

class _Sample:
    __slots__ = ("initial", "count", "start_ms", "last_ms", "value")

    def __init__(self, initial: float, now_ms: int) -> None:
        self.initial = initial
        self.reset(now_ms)

    def reset(self, now_ms: int) -> None:
        self.count = 0
        self.start_ms = now_ms
        self.last_ms = now_ms
        self.value = self.initial

    def complete(self, now_ms: int, config: MetricConfig) -> bool:
        return now_ms - self.start_ms >= config.window_ms or self.count >= config.event_window


class SampledStat:
    """A value kept over ``samples`` windows (one more is kept while the oldest
    expires); the windows are combined when measured (Java's SampledStat)."""

    initial = 0.0

    def __init__(self) -> None:
        self._samples: list[_Sample] = []
        self._current = 0

    def record(self, config: MetricConfig, value: float, now_ms: int) -> None:
        sample = self._current_sample(now_ms)
        if sample.complete(now_ms, config):
            sample = self._advance(config, now_ms)
        self.update(sample, value)
        sample.count += 1
        sample.last_ms = now_ms

    def record_many(self, config: MetricConfig, total: float, count: int, largest: float,
                    now_ms: int) -> None:
        """``count`` values at once, summing to ``total``, the largest ``largest``."""
        sample = self._current_sample(now_ms)
        if sample.complete(now_ms, config):
            sample = self._advance(config, now_ms)
        self.update_many(sample, total, count, largest)
        sample.count += count
        sample.last_ms = now_ms

    def _current_sample(self, now_ms: int) -> _Sample:
        if not self._samples:
            self._samples.append(_Sample(self.initial, now_ms))
        return self._samples[self._current]

    def _advance(self, config: MetricConfig, now_ms: int) -> _Sample:
        self._current = (self._current + 1) % (config.samples + 1)
        if self._current >= len(self._samples):
            self._samples.append(_Sample(self.initial, now_ms))
        else:
            self._samples[self._current].reset(now_ms)
        return self._samples[self._current]

    def purge(self, config: MetricConfig, now_ms: int) -> None:
        """Samples with no event inside the monitored span count as empty."""
        expire = config.samples * config.window_ms
        for sample in self._samples:
            if now_ms - sample.last_ms >= expire:
                sample.reset(now_ms)

    def oldest_start_ms(self, now_ms: int) -> int:
        self._current_sample(now_ms)
        return min(s.start_ms for s in self._samples)

    def measure(self, config: MetricConfig, now_ms: int) -> float:
        self.purge(config, now_ms)
        return self.combine(self._samples)

    def update(self, sample: _Sample, value: float) -> None:
        raise NotImplementedError

    def update_many(self, sample: _Sample, total: float, count: int, largest: float) -> None:
        sample.value += total  # a sum (Avg, WindowedSum); Max and counts override

    def combine(self, samples: list[_Sample]) -> float:
        raise NotImplementedError


class WindowedSum(SampledStat):
    def update(self, sample: _Sample, value: float) -> None:
        sample.value += value

    def combine(self, samples: list[_Sample]) -> float:
        return sum(s.value for s in samples)


class WindowedCount(WindowedSum):
    def update(self, sample: _Sample, value: float) -> None:
        sample.value += 1

    def update_many(self, sample: _Sample, total: float, count: int, largest: float) -> None:
        sample.value += count


class Avg(SampledStat):
    """The mean of the values in the windows; NaN when there are none (as Java)."""

    def update(self, sample: _Sample, value: float) -> None:
        sample.value += value

    def combine(self, samples: list[_Sample]) -> float:
        count = sum(s.count for s in samples)
        return math.nan if count == 0 else sum(s.value for s in samples) / count


class Max(SampledStat):
    initial = -math.inf

    def update(self, sample: _Sample, value: float) -> None:
        sample.value = max(sample.value, value)

    def update_many(self, sample: _Sample, total: float, count: int, largest: float) -> None:
        sample.value = max(sample.value, largest)

    def combine(self, samples: list[_Sample]) -> float:
        if not any(s.count for s in samples):
            return math.nan
        return max(s.value for s in samples)


class Rate:
    """Per second: what ``stat`` (a sum by default, a count for event rates) holds over
    the windows, divided by the time they span; while fewer than samples - 1 windows
    have passed, the missing ones count as empty (Java's Rate.windowSize), so the
    first seconds do not report a burst as a rate."""

    def __init__(self, stat: SampledStat | None = None) -> None:
        self.stat = WindowedSum() if stat is None else stat

    def record(self, config: MetricConfig, value: float, now_ms: int) -> None:
        self.stat.record(config, value, now_ms)

    def record_many(self, config: MetricConfig, total: float, count: int, largest: float,
                    now_ms: int) -> None:
        self.stat.record_many(config, total, count, largest, now_ms)

    def measure(self, config: MetricConfig, now_ms: int) -> float:
        value = self.stat.measure(config, now_ms)
        return value / (self.window_ms(config, now_ms) / 1000.0)

    def window_ms(self, config: MetricConfig, now_ms: int) -> int:
        self.stat.purge(config, now_ms)
        elapsed = now_ms - self.stat.oldest_start_ms(now_ms)
        full = elapsed // config.window_ms
        if full < config.samples - 1:
            elapsed += (config.samples - 1 - full) * config.window_ms
        return max(elapsed, 1)


# ---- metrics and sensors -----------------------------------------------------------------

class Metric:
    """What metrics() maps each MetricName to: ``metric_name()`` and ``value()``."""

    _name: MetricName

    def metric_name(self) -> MetricName:
        return self._name

    @property
    def name(self) -> MetricName:
        return self._name

    def value(self) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r} = {self.value()}>"


class KafkaMetric(Metric):
    """One named metric: a statistic of a sensor, or a gauge (a function of the time)."""

    def __init__(self, metric_name: MetricName, stat: Stat | None, config: MetricConfig,
                 clock: Callable[[], int], lock: Any, gauge: Callable[[int], float] | None
                 = None, refresh: Callable[[int], None] | None = None) -> None:
        self._name = metric_name
        self._refresh = refresh  # folds the registry's tallies before a stat is read
        self._stat = stat
        self._gauge = gauge
        self._config = config
        self._clock = clock
        self._lock = lock

    def value(self) -> float:
        now_ms = self._clock()
        if self._gauge is not None:
            return float(self._gauge(now_ms))
        assert self._stat is not None
        if self._refresh is not None:
            self._refresh(now_ms)
        with self._lock:
            return float(self._stat.measure(self._config, now_ms))


class Tally:
    """Values recorded for some sensors and not yet handed to them.

    A Sensor.record takes a lock and updates every stat's window (about a microsecond
    for a meter, an average and a max); the sender thread, which records each request
    and answer, adds to a tally instead (a few additions) and the registry folds the
    tallies into their sensors with one record_many each: every ~100 ms from the
    sender's poll loop (so rates stay in the right window) and before any metric is
    read (so a read is never stale).

    Only the recording thread writes ``total`` and ``count``, and they only grow: a fold
    on another thread reads them without a lock and hands on the difference since the
    last fold. A value whose count is not yet visible is handed on by the next fold.
    The fold resets ``largest``; a value being compared at that moment can count in one
    window's max and in the next window's sum, never be dropped from both.
    """

    __slots__ = ("sensors", "total", "count", "largest", "_folded_total", "_folded_count")

    def __init__(self, sensors: tuple[Sensor, ...]) -> None:
        self.sensors = sensors
        self.total: float = 0
        self.count = 0
        self.largest = float("-inf")
        self._folded_total: float = 0
        self._folded_count = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        if value > self.largest:
            self.largest = value

    def add_many(self, total: float, count: int, largest: float) -> None:
        self.total += total
        self.count += count
        if largest > self.largest:
            self.largest = largest

    def fold(self, now_ms: int) -> None:
        count = self.count
        if count == self._folded_count:
            return
        total = self.total
        largest = self.largest
        self.largest = float("-inf")
        for sensor in self.sensors:
            sensor.record_many(total - self._folded_total, count - self._folded_count,
                               largest, now_ms)
        self._folded_total = total
        self._folded_count = count


class Sensor:
    """Records values into the statistics of its metrics, all under one lock."""

    def __init__(self, registry: Metrics, name: str, config: MetricConfig) -> None:
        self.name = name
        self._registry = registry
        self._config = config
        self._stats: list[Stat] = []
        self._lock = threading.Lock()
        self._clock = registry.clock

    def add(self, metric_name: MetricName, stat: Stat) -> Sensor:
        self._stats.append(stat)
        self._registry._register(KafkaMetric(metric_name, stat, self._config,
                                             self._clock, self._lock,
                                             refresh=self._registry.fold))
        return self

    def add_meter(self, rate_name: MetricName, total_name: MetricName,
                  count_events: bool = False) -> Sensor:
        """A -rate and a -total metric (Java's Meter): of the values recorded, or of
        how many were recorded with ``count_events``."""
        self.add(rate_name, Rate(WindowedCount() if count_events else WindowedSum()))
        return self.add(total_name, CumulativeCount() if count_events else CumulativeSum())

    def record(self, value: float = 1.0, now_ms: int | None = None) -> None:
        if now_ms is None:
            now_ms = self._clock()
        config = self._config
        with self._lock:
            for stat in self._stats:
                stat.record(config, value, now_ms)

    def record_many(self, total: float, count: int, largest: float,
                    now_ms: int | None = None) -> None:
        """As ``count`` calls of record() whose values sum to ``total`` (the largest
        ``largest``), at the cost of one: the sender aggregates a request's batches."""
        if count <= 0:
            return
        if now_ms is None:
            now_ms = self._clock()
        config = self._config
        with self._lock:
            for stat in self._stats:
                stat.record_many(config, total, count, largest, now_ms)


class MetricsReporter(Protocol):
    """Java's MetricsReporter: told of every metric added and removed."""

    def init(self, metrics: list[KafkaMetric]) -> None: ...
    def metric_change(self, metric: KafkaMetric) -> None: ...
    def metric_removal(self, metric: KafkaMetric) -> None: ...
    def close(self) -> None: ...


class Metrics:
    """The registry of one producer (Java's Metrics). ``clock`` gives milliseconds: the
    clock the engine records with (monotonic; only differences matter), or a test's."""

    def __init__(self, config: MetricConfig | None = None,
                 reporters: list[MetricsReporter] | None = None,
                 clock: Callable[[], int] = monotonic_ms) -> None:
        self.config = config or MetricConfig()
        self.clock = clock
        self._metrics: dict[MetricName, KafkaMetric] = {}
        self._sensors: dict[str, Sensor] = {}
        self._lock = threading.Lock()
        self._reporters = list(reporters or [])
        for reporter in self._reporters:
            reporter.init([])
        self._tallies: list[Tally] = []
        self._fold_lock = threading.Lock()
        self._next_fold_ms = 0

    def tally(self, *sensors: Sensor) -> Tally:
        """A Tally whose values go to every one of ``sensors`` (recorded the same)."""
        tally = Tally(sensors)
        with self._fold_lock:
            self._tallies.append(tally)
        return tally

    def fold(self, now_ms: int | None = None) -> None:
        """Hand every tally's values to its sensors."""
        if now_ms is None:
            now_ms = self.clock()
        with self._fold_lock:  # two folds at once would hand the same values on twice
            self._next_fold_ms = now_ms + FOLD_INTERVAL_MS
            for tally in self._tallies:
                tally.fold(now_ms)

    def maybe_fold(self, now_ms: int) -> None:
        """fold() if the last one is FOLD_INTERVAL_MS old: the recording thread's loop
        calls this each round."""
        if now_ms >= self._next_fold_ms:
            self.fold(now_ms)

    def sensor(self, name: str) -> Sensor:
        """The sensor called ``name``, made on first use."""
        with self._lock:
            sensor = self._sensors.get(name)
            if sensor is None:
                sensor = self._sensors[name] = Sensor(self, name, self.config)
            return sensor

    def get_sensor(self, name: str) -> Sensor | None:
        return self._sensors.get(name)

    def add_gauge(self, metric_name: MetricName, gauge: Callable[[int], float]) -> None:
        """A metric measured when read: ``gauge(now_ms)``."""
        self._register(KafkaMetric(metric_name, None, self.config, self.clock, None, gauge))

    def _register(self, metric: KafkaMetric) -> None:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"a metric named {metric.name!r} already exists")
            self._metrics[metric.name] = metric
        for reporter in self._reporters:
            reporter.metric_change(metric)

    def remove(self, metric_name: MetricName) -> None:
        with self._lock:
            metric = self._metrics.pop(metric_name, None)
        if metric is not None:
            for reporter in self._reporters:
                reporter.metric_removal(metric)

    def metrics(self) -> dict[MetricName, KafkaMetric]:
        """A copy of the registry, as the producers' metrics() returns it."""
        with self._lock:
            return dict(self._metrics)

    def __iter__(self) -> Iterator[KafkaMetric]:
        return iter(self.metrics().values())

    def add_reporter(self, reporter: MetricsReporter) -> None:
        reporter.init(list(self.metrics().values()))
        self._reporters.append(reporter)

    def close(self) -> None:
        for reporter in self._reporters:
            try:
                reporter.close()
            except Exception:  # a reporter must not stop the producer's close
                log.exception("metrics reporter %r failed to close", reporter)
        self._reporters.clear()
