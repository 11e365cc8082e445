"""Metrics with the Java producer's names, groups and arithmetic (see core.py), and the
reporters that show them (reporters.py, prometheus.py)."""

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
    Rate,
    Sensor,
    Tally,
    Value,
    WindowedCount,
    WindowedSum,
)
from fastprod.metrics.prometheus import PrometheusReporter, prometheus_name
from fastprod.metrics.reporters import (
    JMX_REPORTER,
    LoggingReporter,
    MetricsReporter,
    close_reporters,
    load_reporters,
)

__all__ = ["Avg", "CumulativeCount", "CumulativeSum", "KafkaMetric", "Max", "Metric", "MetricConfig",
           "MetricName", "Metrics", "MetricsReporter", "Rate", "Sensor", "Tally", "Value",
           "WindowedCount", "WindowedSum", "JMX_REPORTER", "LoggingReporter",
           "PrometheusReporter", "close_reporters", "load_reporters", "prometheus_name"]
