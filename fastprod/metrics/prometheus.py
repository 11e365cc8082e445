"""PrometheusReporter: a producer's metrics on prometheus_client (``pip install
fastprod[prometheus]``).

Java's JMX-style names become Prometheus names: the group without its ``-metrics``
suffix, prefixed ``kafka_``, then the metric name, dashes as underscores; tags become
labels. ``record-send-rate`` of ``producer-metrics`` with tag client-id is
``kafka_producer_record_send_rate{client_id="..."}``; ``producer-topic-metrics`` gives
``kafka_producer_topic_...{topic=...}``, ``producer-node-metrics`` ``kafka_producer_node_
...{node_id=...}``. ``-total`` metrics are counters, the rest gauges.

Values are read when Prometheus scrapes (a custom collector calls ``metric.value()``),
so nothing runs between scrapes. Every producer of a process that reports into the same
registry shares one collector there, and their series differ by client_id, so several
producers never collide; a port is served once per process and shared likewise.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from fastprod.errors import ConfigError
from fastprod.metrics.core import Metric, MetricName
from fastprod.metrics.reporters import MetricsReporter, int_setting, refresh_sources

log = logging.getLogger("fastprod.metrics")

PORT_KEY = "fastprod.metrics.prometheus.port"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _require_prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError("PrometheusReporter needs prometheus_client: "
                          "pip install fastprod[prometheus]") from None
    return prometheus_client


def prometheus_name(name: MetricName) -> tuple[str, dict[str, str]]:
    """The Prometheus metric name and labels of a Java-style MetricName."""
    group = name.group
    if group.endswith("-metrics"):
        group = group[: -len("-metrics")]
    return (_sanitize(f"kafka_{group}_{name.name}"),
            {_label(k): str(v) for k, v in name.tags.items()})


def _sanitize(text: str) -> str:
    return _INVALID.sub("_", text)


def _label(tag: str) -> str:
    label = _sanitize(tag)
    if label[:1].isdigit() or label.startswith("__"):  # __ is reserved by Prometheus
        label = "tag_" + label.lstrip("_")
    return label


class PrometheusReporter(MetricsReporter):
    """Registers a producer's metrics into ``registry`` (prometheus_client's default
    REGISTRY if None) and, if ``port`` is set (or ``fastprod.metrics.prometheus.port``
    in the config: 0 for any free port), serves ``/metrics`` on ``addr``:port. After
    init() the bound port is ``self.port``."""

    def __init__(self, registry: Any = None, port: int | None = None,
                 addr: str = "0.0.0.0") -> None:
        prom = _require_prometheus()
        self.registry = prom.REGISTRY if registry is None else registry
        self._port_given = port is not None
        self._want_port = int_setting({PORT_KEY: port}, PORT_KEY, None, 0, 65535)
        self.addr = addr
        self.port: int | None = None
        self._metrics: dict[MetricName, Metric] = {}
        self._lock = threading.Lock()
        self._collector: _SharedCollector | None = None
        self._server: _Server | None = None

    def configure(self, config: Mapping[str, Any]) -> None:
        if not self._port_given:
            self._want_port = int_setting(config, PORT_KEY, None, 0, 65535)

    def init(self, metrics: list[Metric]) -> None:
        with self._lock:
            for metric in metrics:
                self._metrics[metric.metric_name()] = metric
        if self._collector is None:
            self._collector = _SharedCollector.attach(self.registry, self)
        if self._want_port is not None and self._server is None:
            self._server = _Server.acquire(self.addr, self._want_port, self.registry)
            self.port = self._server.port

    def metric_change(self, metric: Metric) -> None:
        with self._lock:
            self._metrics[metric.metric_name()] = metric

    def metric_removal(self, metric: Metric) -> None:
        with self._lock:
            self._metrics.pop(metric.metric_name(), None)

    def close(self) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            collector.detach(self)
        server, self._server = self._server, None
        if server is not None:
            server.release()

    def current_metrics(self) -> list[Metric]:
        """The metrics to show at this scrape (gathered ones brought up to date first)."""
        with self._lock:
            metrics = list(self._metrics.values())
        refresh_sources(metrics)
        with self._lock:  # refreshing may have announced new ones
            return list(self._metrics.values())


class _SharedCollector:
    """The one collector of a registry: every PrometheusReporter registered there
    contributes its metrics, merged into one family per Prometheus name."""

    _by_registry: dict[int, _SharedCollector] = {}
    _class_lock = threading.Lock()

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.reporters: list[PrometheusReporter] = []
        self._warned: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    @classmethod
    def attach(cls, registry: Any, reporter: PrometheusReporter) -> _SharedCollector:
        with cls._class_lock:
            collector = cls._by_registry.get(id(registry))
            if collector is None:
                collector = cls._by_registry[id(registry)] = cls(registry)
                registry.register(collector)
            collector.reporters.append(reporter)
            return collector

    def detach(self, reporter: PrometheusReporter) -> None:
        with self._class_lock:
            if reporter in self.reporters:
                self.reporters.remove(reporter)
            if not self.reporters and self._by_registry.get(id(self.registry)) is self:
                del self._by_registry[id(self.registry)]
                self.registry.unregister(self)

    def describe(self) -> list[Any]:
        # Names change as topics and brokers appear: nothing to declare up front (and
        # registering must not read values).
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import Metric as Family

        with self._class_lock:
            reporters = list(self.reporters)
        families: dict[str, Any] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        for reporter in reporters:
            for metric in reporter.current_metrics():
                name = metric.metric_name()
                prom, labels = prometheus_name(name)
                counter = prom.endswith("_total")
                key = (prom, tuple(sorted(labels.items())))
                if key in seen:  # two producers with the same client.id
                    if key not in self._warned:
                        self._warned.add(key)
                        log.warning("Prometheus: %s%s is reported twice (two producers "
                                    "with the same client.id?); showing the first",
                                    prom, labels)
                    continue
                try:
                    value = metric.value()
                except Exception:
                    log.debug("Prometheus: reading %r failed", name, exc_info=True)
                    continue
                seen.add(key)
                base = prom[: -len("_total")] if counter else prom
                family = families.get(base)
                if family is None:
                    family = families[base] = Family(
                        base, name.description or name.name, "counter" if counter else "gauge")
                family.add_sample(prom, labels, value)
        yield from families.values()


class _Server:
    """One HTTP server per (addr, port, registry) in the process, shared by the
    reporters that ask for it and stopped with the last; port 0 always starts a new
    one on a free port."""

    _servers: dict[tuple[str, int, int], _Server] = {}
    _class_lock = threading.Lock()

    def __init__(self, addr: str, port: int, registry: Any) -> None:
        from prometheus_client import start_http_server

        try:
            self.httpd, self.thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            raise ConfigError(f"{PORT_KEY}={port}: cannot serve Prometheus metrics on "
                              f"{addr or '*'}:{port}: {exc}") from exc
        self.port: int = self.httpd.server_port
        self.key = (addr, self.port, id(registry))
        self.users = 0
        log.info("serving Prometheus metrics on %s:%d/metrics", addr, self.port)

    @classmethod
    def acquire(cls, addr: str, port: int, registry: Any) -> _Server:
        with cls._class_lock:
            server = cls._servers.get((addr, port, id(registry))) if port else None
            if server is None:
                server = cls(addr, port, registry)
                cls._servers[server.key] = server
            server.users += 1
            return server

    def release(self) -> None:
        with self._class_lock:
            self.users -= 1
            if self.users > 0:
                return
            self._servers.pop(self.key, None)
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
