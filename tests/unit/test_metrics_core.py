"""fastprod/metrics/core.py against the arithmetic of Java's metrics (fake clock)."""

from __future__ import annotations

import math

import pytest

from fastprod.metrics import (
    Avg,
    CumulativeSum,
    Max,
    MetricConfig,
    MetricName,
    Metrics,
    Rate,
    WindowedCount,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def registry(samples: int = 2, window_ms: int = 1000) -> tuple[Metrics, Clock]:
    clock = Clock()
    return Metrics(MetricConfig(samples=samples, window_ms=window_ms), clock=clock), clock


def test_names_are_equal_by_name_group_and_tags_not_description():
    a = MetricName("record-send-rate", "producer-metrics", "x", {"client-id": "c"})
    b = MetricName("record-send-rate", "producer-metrics", "other", {"client-id": "c"})
    assert a == b and hash(a) == hash(b)
    assert a != MetricName("record-send-rate", "producer-metrics", "x", {"client-id": "d"})
    assert a != MetricName("record-send-rate", "producer-topic-metrics", "x",
                           {"client-id": "c"})


def test_rate_counts_missing_windows_as_empty_at_first():
    """Java's Rate.windowSize: 3 events in the first 60 ms of 2 x 1 s windows are
    3 / 1.06 s, not 3 / 0.06 s."""
    m, clock = registry()
    name = MetricName("r", "g")
    m.sensor("s").add(name, Rate(WindowedCount()))
    start = clock.now
    for dt in (0, 30, 60):
        clock.now = start + dt
        m.sensor("s").record()
    assert m.metrics()[name].value() == pytest.approx(3 / 1.06)
    clock.now = start + 1500  # one full window passed: no padding
    assert m.metrics()[name].value() == pytest.approx(3 / 1.5)


def test_windows_expire():
    m, clock = registry()
    avg, mx, total = MetricName("avg", "g"), MetricName("max", "g"), MetricName("total", "g")
    m.sensor("s").add(avg, Avg()).add(mx, Max()).add(total, CumulativeSum())
    assert math.isnan(m.metrics()[avg].value()) and math.isnan(m.metrics()[mx].value())
    for v in (10, 20, 60):
        m.sensor("s").record(v)
    assert m.metrics()[avg].value() == pytest.approx(30)
    assert m.metrics()[mx].value() == 60
    clock.now += 1200  # a second window
    m.sensor("s").record(0)
    assert m.metrics()[avg].value() == pytest.approx(90 / 4)
    clock.now += 2500  # both windows have no event within samples x window: gone
    assert math.isnan(m.metrics()[avg].value()) and math.isnan(m.metrics()[mx].value())
    assert m.metrics()[total].value() == 90  # cumulative: never expires


def test_meter_and_gauge_and_reporters():
    seen: list[tuple[str, MetricName]] = []

    class Reporter:
        def init(self, metrics):
            seen.extend(("init", x.metric_name()) for x in metrics)

        def metric_change(self, metric):
            seen.append(("change", metric.metric_name()))

        def metric_removal(self, metric):
            seen.append(("removal", metric.metric_name()))

        def close(self):
            seen.append(("close", None))

    m, clock = registry()
    m.add_reporter(Reporter())
    rate, total = MetricName("bytes-rate", "g"), MetricName("bytes-total", "g")
    m.sensor("bytes").add_meter(rate, total)
    gauge = MetricName("buffer", "g")
    m.add_gauge(gauge, lambda now: 42)
    m.sensor("bytes").record(500)
    m.sensor("bytes").record(1500)
    assert m.metrics()[total].value() == 2000
    assert m.metrics()[rate].value() == pytest.approx(2000 / 1.0)  # padded to one window
    assert m.metrics()[gauge].value() == 42
    with pytest.raises(ValueError, match="already exists"):
        m.add_gauge(gauge, lambda now: 0)
    m.remove(gauge)
    assert gauge not in m.metrics()
    m.close()
    assert seen == [("change", rate), ("change", total), ("change", gauge),
                    ("removal", gauge), ("close", None)]


def test_record_many_is_as_many_records():
    """The sender records a request's batches in one call; the values must be those of
    one call per batch."""
    names = [MetricName(n, "g") for n in ("avg", "max", "rate", "total", "count-rate")]
    one, clock1 = registry()
    many, clock2 = registry()
    for m in (one, many):
        s = m.sensor("s")
        s.add(names[0], Avg()).add(names[1], Max()).add_meter(names[2], names[3])
        s.add(names[4], Rate(WindowedCount()))
    values = [100, 300, 50, 700]
    for v in values:
        one.sensor("s").record(v)
    many.sensor("s").record_many(sum(values), len(values), max(values))
    clock1.now += 1100
    clock2.now += 1100
    one.sensor("s").record(5)
    many.sensor("s").record_many(5, 1, 5)
    assert {n: one.metrics()[n].value() for n in names} == \
        {n: many.metrics()[n].value() for n in names}


def _meter_avg_max(metrics: Metrics, name: str):
    sensor = metrics.sensor(name)
    sensor.add_meter(MetricName(f"{name}-rate", "g"), MetricName(f"{name}-total", "g"))
    sensor.add(MetricName(f"{name}-avg", "g"), Avg())
    sensor.add(MetricName(f"{name}-max", "g"), Max())
    return sensor


def _value(metrics: Metrics, name: str) -> float:
    return metrics.metrics()[MetricName(name, "g")].value()


def test_a_tally_reaches_its_sensors_when_a_metric_is_read():
    metrics, clock = registry()
    a, b = _meter_avg_max(metrics, "a"), _meter_avg_max(metrics, "b")
    tally = metrics.tally(a, b)
    for v in (3, 9, 6):
        tally.add(v)
    tally.add_many(12, 2, 7)
    # no fold has run: reading folds first, so nothing read is stale
    for name in ("a", "b"):
        assert _value(metrics, f"{name}-total") == 30
        assert _value(metrics, f"{name}-avg") == 6
        assert _value(metrics, f"{name}-max") == 9
    tally.add(1)
    clock.now += 1
    assert _value(metrics, "a-total") == 31
    assert _value(metrics, "a-max") == 9  # same window: the max of both folds


def test_maybe_fold_folds_at_most_every_interval():
    from fastprod.metrics.core import FOLD_INTERVAL_MS

    metrics, clock = registry(window_ms=10_000)
    sensor = _meter_avg_max(metrics, "a")
    total = sensor._stats[1]  # the CumulativeSum, read without the fold a read does
    tally = metrics.tally(sensor)
    tally.add(5)
    metrics.maybe_fold(clock.now)
    assert total.measure(metrics.config, clock.now) == 5
    tally.add(5)
    metrics.maybe_fold(clock.now + FOLD_INTERVAL_MS - 1)
    assert total.measure(metrics.config, clock.now) == 5
    metrics.maybe_fold(clock.now + FOLD_INTERVAL_MS)
    assert total.measure(metrics.config, clock.now) == 10


def test_folds_on_another_thread_lose_and_double_nothing():
    """The sender adds while a reader folds: every value ends up counted exactly once
    (a loop of runs: the interleavings vary)."""
    import threading

    for _ in range(20):
        metrics, _clock = registry()
        sensor = _meter_avg_max(metrics, "a")
        tally = metrics.tally(sensor)
        n = 20_000
        done = threading.Event()

        def add() -> None:
            for i in range(n):
                tally.add(i % 7)
            done.set()

        writer = threading.Thread(target=add)
        writer.start()
        while not done.is_set():
            metrics.fold()
        writer.join()
        expected = sum(i % 7 for i in range(n))
        assert _value(metrics, "a-total") == expected
        assert _value(metrics, "a-avg") == pytest.approx(expected / n)
        assert _value(metrics, "a-max") == 6
