"""Metrics with the Java producer's names, groups and arithmetic (see core.py)."""

from fastprod.metrics.core import (
    Avg,
    CumulativeCount,
    CumulativeSum,
    KafkaMetric,
    Max,
    Metric,
    MetricConfig,
    MetricName,
    Metrics,
    MetricsReporter,
    Rate,
    Sensor,
    Tally,
    Value,
    WindowedCount,
    WindowedSum,
)

__all__ = ["Avg", "CumulativeCount", "CumulativeSum", "KafkaMetric", "Max", "Metric", "MetricConfig",
           "MetricName", "Metrics", "MetricsReporter", "Rate", "Sensor", "Tally", "Value",
           "WindowedCount", "WindowedSum"]
