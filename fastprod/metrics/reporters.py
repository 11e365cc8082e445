"""metric.reporters: Java's MetricsReporter shape, the loader, and LoggingReporter.

A reporter is told of every metric of a producer: ``init(metrics)`` once with those that
exist, ``metric_change(metric)`` for each added later, ``metric_removal(metric)``, and
``close()`` when the producer closes. ``configure(config)`` comes first, with the
producer's effective config (every key by its Java name). Reporters read values with
``metric.value()`` when they report, as Java's do: nothing is copied per record.

``metric.reporters`` takes "module:Class" or "module.Class" strings, classes (made with
no arguments) and ready-made instances. Java's default, JmxReporter, is accepted and
does nothing: there is no JMX in Python.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastprod.clock import monotonic_ms
from fastprod.errors import ConfigError
from fastprod.metrics.core import Metric, MetricName

log = logging.getLogger("fastprod.metrics")

JMX_REPORTER = "org.apache.kafka.common.metrics.JmxReporter"
LOG_INTERVAL_KEY = "fastprod.metrics.log.interval.ms"
_KEY = "metric.reporters"
_METHODS = ("init", "metric_change", "metric_removal", "close")


class MetricsReporter:
    """Java's MetricsReporter, every method doing nothing: subclass it and override what
    you need (any object with these methods will do as well)."""

    def configure(self, config: Mapping[str, Any]) -> None:
        """The producer's effective config, before init()."""

    def init(self, metrics: list[Metric]) -> None:
        """The metrics that exist when the reporter is installed."""

    def metric_change(self, metric: Metric) -> None:
        """A metric was added (or replaced)."""

    def metric_removal(self, metric: Metric) -> None:
        """A metric was removed."""

    def close(self) -> None:
        """The producer is closing: release threads, sockets, registrations."""


# ---- loading -------------------------------------------------------------------------------

def load_reporters(config: Mapping[str, Any]) -> list[Any]:
    """The reporters named by ``config["metric.reporters"]``, made and configured.

    ``config`` is a ProducerConfig (or a mapping of Java names). ConfigError names a
    spec that cannot be imported, made or configured, or is not a reporter; those made
    before it are closed again."""
    specs = config.get(_KEY) or ()
    settings = dict(config.items())
    loaded: list[Any] = []
    try:
        for spec in specs:
            reporter = _make(spec)
            if reporter is None:
                continue
            configure = getattr(reporter, "configure", None)
            if callable(configure):
                try:
                    configure(settings)
                except ConfigError:
                    raise
                except Exception as exc:
                    raise ConfigError(f"{_KEY}: {_describe(spec)} failed to configure: "
                                      f"{exc}") from exc
            loaded.append(reporter)
    except BaseException:
        close_reporters(loaded)
        raise
    return loaded


def close_reporters(reporters: Iterable[Any]) -> None:
    """Close each reporter; one that raises is logged and does not stop the others."""
    for reporter in reporters:
        try:
            reporter.close()
        except Exception:
            log.exception("metrics reporter %r failed to close", reporter)


def _make(spec: Any) -> Any:
    """The reporter instance for one spec; None for JmxReporter."""
    if isinstance(spec, str):
        spec = spec.strip()
        if spec == JMX_REPORTER:
            log.debug("%s: %s has no Python counterpart; ignored", _KEY, JMX_REPORTER)
            return None
        if spec.startswith("org.apache.kafka."):
            raise ConfigError(f"{_KEY}: {spec!r} names a Java class, which has no Python "
                              f"counterpart: give a Python class or 'module:Class'")
        target = _import(spec)
    else:
        target = spec
    if isinstance(target, type) or (callable(target) and not _is_reporter(target)):
        try:
            target = target()
        except Exception as exc:
            raise ConfigError(f"{_KEY}: cannot make a reporter from {_describe(spec)}: "
                              f"{exc}") from exc
    missing = [m for m in _METHODS if not callable(getattr(target, m, None))]
    if missing:
        raise ConfigError(f"{_KEY}: {_describe(spec)} is not a MetricsReporter: it has no "
                          + ", ".join(f"{m}()" for m in missing))
    return target


def _is_reporter(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in _METHODS)


def _import(spec: str) -> Any:
    """"module:Class", or Java's dotted "module.Class" (the last dot splits)."""
    if ":" not in spec:
        module_name, _, attr = spec.rpartition(".")
        if not module_name or not attr:
            raise ConfigError(f"{_KEY}: {spec!r} is not of the form 'module:Class' or "
                              f"'module.Class'")
        spec = f"{module_name}:{attr}"
    from fastprod.config import import_module_attr  # (config reads this module's keys)

    return import_module_attr(spec, _KEY)


def _describe(spec: Any) -> str:
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, type):
        return f"{spec.__module__}:{spec.__qualname__}"
    return repr(spec)


# ---- helpers shared by the reporters shipped here ----------------------------------------

def refresh_sources(metrics: Iterable[Metric]) -> None:
    """Bring gathered metrics up to date once before reading many of them.

    ShardedProducer's reporters see metrics whose values come from asking the worker
    processes; each such metric has a ``source`` with ``refresh()``. Calling it once per
    report (instead of per value) costs one round of questions per scrape or log line,
    and announces metrics new since the last round before they are listed."""
    seen: set[int] = set()
    for metric in metrics:
        source = getattr(metric, "source", None)
        if source is not None and id(source) not in seen:
            seen.add(id(source))
            source.refresh()


def int_setting(config: Mapping[str, Any], key: str, default: int | None, low: int,
                high: int | None = None) -> int | None:
    """An int setting of a reporter from ``config``; a ProducerConfig validated it
    already, a plain mapping is checked here."""
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(f"invalid value {value!r} for config {key!r}: expected an "
                          f"integer {bound}")
    return value


# ---- LoggingReporter -----------------------------------------------------------------------

class LoggingReporter(MetricsReporter):
    """Logs a one-line JSON summary of every metric at INFO to ``fastprod.metrics``
    every ``fastprod.metrics.log.interval.ms`` (default 60 s), from a daemon thread
    that close() stops.

    The line is ``{"client_id": ..., "metrics": {"group:name{tag=v}": value}}``; the
    client-id tag is left out of the keys (it is the line's client_id), values that are
    not finite (an average with no sample yet) are null. ``interval_ms`` given here wins
    over the config; ``clock`` (ms) and ``wait`` (seconds -> True once stopped) are for
    tests."""

    def __init__(self, interval_ms: int | None = None, *,
                 logger: logging.Logger | None = None,
                 clock: Callable[[], int] = monotonic_ms,
                 wait: Callable[[float], bool] | None = None) -> None:
        if interval_ms is not None:
            interval_ms = int_setting({LOG_INTERVAL_KEY: interval_ms}, LOG_INTERVAL_KEY,
                                      None, 1)
        self._interval_given = interval_ms is not None
        self.interval_ms: int = 60_000 if interval_ms is None else interval_ms
        self.client_id = ""
        self._logger = logger or log
        self._clock = clock
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._metrics: dict[MetricName, Metric] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def configure(self, config: Mapping[str, Any]) -> None:
        if not self._interval_given:
            self.interval_ms = int_setting(config, LOG_INTERVAL_KEY, 60_000, 1) or 60_000
        self.client_id = str(config.get("client.id") or "")

    def init(self, metrics: list[Metric]) -> None:
        with self._lock:
            for metric in metrics:
                self._metrics[metric.metric_name()] = metric
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self.run, daemon=True,
                                            name=f"fastprod-metrics-log-{self.client_id}")
            self._thread.start()

    def metric_change(self, metric: Metric) -> None:
        with self._lock:
            self._metrics[metric.metric_name()] = metric

    def metric_removal(self, metric: Metric) -> None:
        with self._lock:
            self._metrics.pop(metric.metric_name(), None)

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def run(self) -> None:
        """The reporting loop (the thread's target): one line per interval until
        close(). Ticks missed (a long pause) are skipped, not logged in a burst."""
        interval = self.interval_ms
        due = self._clock() + interval
        while not self._stop.is_set():
            delay_ms = due - self._clock()
            if delay_ms > 0 and self._wait(delay_ms / 1000.0):
                return
            if self._stop.is_set():
                return
            try:
                self.report()
            except Exception:  # one bad tick must not end the reporting
                self._logger.warning("metrics summary failed", exc_info=True)
            due += interval
            now = self._clock()
            if due <= now:
                due = now + interval

    def report(self) -> None:
        """Log the summary line now."""
        self._logger.info("%s", self.summary_line())

    def summary_line(self) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        refresh_sources(metrics)
        values: dict[str, float | int | None] = {}
        for metric in sorted(metrics, key=lambda m: _key(m.metric_name())):
            values[_key(metric.metric_name())] = _json_number(metric.value())
        return json.dumps({"client_id": self.client_id, "metrics": values},
                          separators=(",", ":"), allow_nan=False)


def _key(name: MetricName) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted(name.tags.items()) if k != "client-id")
    return f"{name.group}:{name.name}" + (f"{{{tags}}}" if tags else "")


def _json_number(value: float) -> float | int | None:
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
