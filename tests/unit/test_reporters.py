"""metric.reporters: loading, the reporter lifecycle, LoggingReporter's JSON line on a
fake clock, PrometheusReporter's names and collector, and ShardedProducer's gathered
view (with a fake gather in place of the workers)."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fastprod.config import ProducerConfig
from fastprod.engine.build import build_metrics
from fastprod.errors import ConfigError
from fastprod.metrics import (
    JMX_REPORTER,
    LoggingReporter,
    MetricName,
    Metrics,
    MetricsReporter,
    PrometheusReporter,
    load_reporters,
    prometheus_name,
)
from fastprod.sharded.metrics import GatheredMetrics, MeasuredMetric


class FakeClock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Recorder(MetricsReporter):
    """Writes down every call, in order."""

    instances: list[Recorder] = []

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.config: dict = {}
        Recorder.instances.append(self)

    def configure(self, config):
        self.config = dict(config)
        self.calls.append(("configure", None))

    def init(self, metrics):
        self.calls.append(("init", sorted(m.metric_name().name for m in metrics)))

    def metric_change(self, metric):
        self.calls.append(("change", metric.metric_name()))

    def metric_removal(self, metric):
        self.calls.append(("removal", metric.metric_name()))

    def close(self):
        self.calls.append(("close", None))


class NotAReporter:
    def init(self, metrics):
        pass


class BrokenConfigure(Recorder):
    def configure(self, config):
        raise RuntimeError("no disk for the summaries")


def cfg(**kwargs) -> ProducerConfig:
    return ProducerConfig({"bootstrap.servers": "127.0.0.1:9092", "client.id": "c1"}, **kwargs)


# ---- loading -------------------------------------------------------------------------------

def test_default_jmx_reporter_is_accepted_and_does_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="fastprod.metrics"):
        assert load_reporters(cfg()) == []
    assert cfg().metric_reporters == (JMX_REPORTER,)
    assert any("JmxReporter" in r.getMessage() and r.levelno == logging.DEBUG
               for r in caplog.records)


def test_load_by_colon_spec_dotted_spec_class_and_instance():
    ready = Recorder()
    loaded = load_reporters(cfg(metric_reporters=[
        f"{__name__}:Recorder", f"{__name__}.Recorder", Recorder, ready, JMX_REPORTER]))
    assert len(loaded) == 4 and all(isinstance(r, Recorder) for r in loaded)
    assert loaded[3] is ready
    assert len({id(r) for r in loaded}) == 4
    # configured with the effective config: the user's keys, the defaults, client.id
    for r in loaded:
        assert r.calls == [("configure", None)]
        assert r.config["client.id"] == "c1"
        assert r.config["fastprod.metrics.log.interval.ms"] == 60000
        assert r.config["linger.ms"] == 5


def test_the_shipped_reporters_by_the_names_the_readme_gives():
    loaded = load_reporters(cfg(metric_reporters=[
        "fastprod.metrics.LoggingReporter", "fastprod.metrics.PrometheusReporter"],
        fastprod_metrics_log_interval_ms=1234))
    assert [type(r) for r in loaded] == [LoggingReporter, PrometheusReporter]
    assert loaded[0].interval_ms == 1234 and loaded[0].client_id == "c1"
    assert loaded[1]._want_port is None  # no port configured: nothing served


def test_a_comma_separated_string_works_too():
    loaded = load_reporters(cfg(metric_reporters=f"{JMX_REPORTER}, {__name__}:Recorder"))
    assert [type(r) for r in loaded] == [Recorder]


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:Reporter", "cannot import module 'no_such_module_xyz'"),
    (f"{__name__}:Nope", "has no attribute 'Nope'"),
    ("Reporter", "is not of the form"),
    (f"{__name__}:NotAReporter", "is not a MetricsReporter: it has no metric_change(), "
                                 "metric_removal(), close()"),
    ("org.apache.kafka.common.metrics.KafkaYammerMetrics", "names a Java class"),
])
def test_a_bad_spec_is_a_config_error_naming_it(spec, message):
    with pytest.raises(ConfigError, match="metric.reporters") as info:
        load_reporters(cfg(metric_reporters=[spec]))
    assert message in str(info.value)
    assert spec.split(":")[0] in str(info.value)


def test_a_reporter_that_cannot_be_made_or_configured():
    def factory():
        raise ValueError("boom")

    with pytest.raises(ConfigError, match="cannot make a reporter from .*boom"):
        load_reporters(cfg(metric_reporters=[factory]))
    Recorder.instances.clear()
    with pytest.raises(ConfigError, match="BrokenConfigure failed to configure: no disk"):
        load_reporters(cfg(metric_reporters=[Recorder, BrokenConfigure]))
    first = Recorder.instances[0]
    assert first.calls[-1] == ("close", None)  # those made before it are closed again


def test_config_validation_of_the_reporter_keys():
    assert cfg()["fastprod.metrics.prometheus.port"] is None
    assert cfg(fastprod_metrics_prometheus_port="0").fastprod_metrics_prometheus_port == 0
    with pytest.raises(ConfigError, match="fastprod.metrics.prometheus.port.*0 to 65535"):
        cfg(fastprod_metrics_prometheus_port=65536)
    with pytest.raises(ConfigError, match="fastprod.metrics.log.interval.ms.*>= 1"):
        cfg(fastprod_metrics_log_interval_ms=0)
    with pytest.raises(ConfigError, match="metric.reporters"):
        cfg(metric_reporters=[42])


# ---- the lifecycle through the registry ----------------------------------------------------

def test_build_metrics_tells_the_reporters_of_every_metric_and_close_closes_them():
    reporter = Recorder()
    pm = build_metrics(cfg(), [reporter])
    assert reporter.calls[0] == ("init", [])  # Java's Metrics: init([]) then changes
    changed = {n for kind, n in reporter.calls if kind == "change"}
    assert set(pm.metrics.metrics()) == changed
    assert MetricName("record-send-total", "producer-metrics", "",
                      {"client-id": "c1"}) in changed
    pm.metrics.close()
    assert reporter.calls[-1] == ("close", None)


def test_producer_close_closes_its_reporters():
    from fastprod import Producer

    reporter = Recorder()
    p = Producer(cfg(metric_reporters=[reporter], max_block_ms=100))
    assert ("init", []) in reporter.calls
    assert reporter.calls[-1][0] == "change"
    p.close(1)
    assert reporter.calls[-1] == ("close", None)


# ---- LoggingReporter -----------------------------------------------------------------------

def registry_with_values(clock: FakeClock, client_id: str = "c1") -> Metrics:
    m = Metrics(clock=clock)
    tags = {"client-id": client_id}
    m.sensor("sends").add_meter(MetricName("record-send-rate", "producer-metrics", "", tags),
                                MetricName("record-send-total", "producer-metrics", "", tags))
    m.add_gauge(MetricName("record-send-total", "producer-topic-metrics", "",
                           {**tags, "topic": "t1"}), lambda now: 7)
    m.add_gauge(MetricName("batch-size-avg", "producer-metrics", "", tags),
                lambda now: math.nan)
    return m


def test_logging_reporter_line_is_one_json_object():
    clock = FakeClock()
    m = registry_with_values(clock)
    r = LoggingReporter(interval_ms=1000, clock=clock)
    r.configure({"client.id": "c1"})
    r.init(list(m))
    r.close()  # no thread needed for summary_line
    m.sensor("sends").record(3)
    line = r.summary_line()
    assert "\n" not in line
    doc = json.loads(line)
    assert doc == {"client_id": "c1", "metrics": {
        "producer-metrics:batch-size-avg": None,  # NaN is not JSON
        "producer-metrics:record-send-rate": pytest.approx(3 / 30.0),
        "producer-metrics:record-send-total": 3,
        "producer-topic-metrics:record-send-total{topic=t1}": 7}}


def test_logging_reporter_ticks_on_the_clock_and_skips_missed_ticks(caplog):
    clock = FakeClock()
    m = registry_with_values(clock)
    r = LoggingReporter(clock=clock)
    r.configure({"client.id": "c1", "fastprod.metrics.log.interval.ms": 5000})
    assert r.interval_ms == 5000
    waits: list[float] = []
    logged_at: list[int] = []

    def wait(seconds: float) -> bool:  # the fake clock jumps instead of sleeping
        waits.append(seconds)
        clock.now += int(seconds * 1000)
        if len(logged_at) == 2:
            clock.now += 12_000  # a long pause after the second line: two ticks missed
        return len(logged_at) >= 4 or len(waits) > 20  # (never loop forever)

    r._wait = wait
    r._metrics = {x.metric_name(): x for x in m}

    class Catch(logging.Handler):
        def emit(self, record):
            logged_at.append(clock.now)
            m.sensor("sends").record(1)

    handler = Catch()
    logging.getLogger("fastprod.metrics").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="fastprod.metrics"):
            start = clock.now
            r.run()  # in this thread: returns when wait() says stopped
    finally:
        logging.getLogger("fastprod.metrics").removeHandler(handler)
    assert logged_at == [start + 5000, start + 10000, start + 27000, start + 32000]
    assert waits[:2] == [5.0, 5.0]


def test_logging_reporter_thread_logs_and_stops_on_close(caplog):
    clock = FakeClock()
    m = registry_with_values(clock)
    r = LoggingReporter(interval_ms=20)
    r.configure({"client.id": "c1"})
    with caplog.at_level(logging.INFO, logger="fastprod.metrics"):
        r.init(list(m))
        thread = r._thread
        assert thread is not None and thread.daemon
        deadline = threading.Event()
        for _ in range(200):
            if any(rec.getMessage().startswith('{"client_id":"c1"') for rec in caplog.records):
                break
            deadline.wait(0.01)
        r.close()
    assert not thread.is_alive()
    lines = [json.loads(rec.getMessage()) for rec in caplog.records
             if rec.name == "fastprod.metrics" and rec.getMessage().startswith("{")]
    assert lines and lines[0]["metrics"]["producer-topic-metrics:record-send-total{topic=t1}"] == 7


def test_logging_reporter_interval_validation():
    with pytest.raises(ConfigError, match="fastprod.metrics.log.interval.ms"):
        LoggingReporter(interval_ms=0)
    r = LoggingReporter(interval_ms=250)
    r.configure({"fastprod.metrics.log.interval.ms": 9000})
    assert r.interval_ms == 250  # the constructor's wins
    with pytest.raises(ConfigError, match=">= 1"):
        LoggingReporter().configure({"fastprod.metrics.log.interval.ms": -5})


# ---- Prometheus ---------------------------------------------------------------------------

@pytest.mark.parametrize("group, name, tags, expected", [
    ("producer-metrics", "record-send-rate", {"client-id": "a"},
     ("kafka_producer_record_send_rate", {"client_id": "a"})),
    ("producer-topic-metrics", "byte-total", {"client-id": "a", "topic": "t.x-1"},
     ("kafka_producer_topic_byte_total", {"client_id": "a", "topic": "t.x-1"})),
    ("producer-node-metrics", "request-latency-avg", {"client-id": "a", "node-id": "node-1"},
     ("kafka_producer_node_request_latency_avg", {"client_id": "a", "node_id": "node-1"})),
    ("producer-metrics", "txn-init-time-ns-total", {"client-id": "a", "worker": "0"},
     ("kafka_producer_txn_init_time_ns_total", {"client_id": "a", "worker": "0"})),
    ("odd group", "x.y", {"9tag": "v"}, ("kafka_odd_group_x_y", {"tag_9tag": "v"})),
])
def test_prometheus_names(group, name, tags, expected):
    assert prometheus_name(MetricName(name, group, "", tags)) == expected


def scrape(registry) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(registry) -> dict[str, str]:
    return {f.name: f.type for f in
            text_string_to_metric_families(generate_latest(registry).decode())}


def test_prometheus_reads_values_at_scrape_time_with_types():
    registry = CollectorRegistry()
    clock = FakeClock()
    m = Metrics(clock=clock)
    r = PrometheusReporter(registry=registry)
    r.init([])
    m.add_reporter(r)  # init([]) then changes, as build_metrics does
    m.close()
    r = PrometheusReporter(registry=registry)
    m = registry_with_values(clock)
    m.add_reporter(r)
    total = ("kafka_producer_record_send_total", (("client_id", "c1"),))
    assert scrape(registry)[total] == 0
    m.sensor("sends").record(5)
    assert scrape(registry)[total] == 5  # read at scrape time, no copy in between
    got = scrape(registry)
    assert got[("kafka_producer_topic_record_send_total",
                (("client_id", "c1"), ("topic", "t1")))] == 7
    assert math.isnan(got[("kafka_producer_batch_size_avg", (("client_id", "c1"),))])
    kinds = families(registry)
    assert kinds["kafka_producer_record_send"] == "counter"
    assert kinds["kafka_producer_record_send_rate"] == "gauge"
    m.close()
    assert scrape(registry) == {}
    assert list(registry.collect()) == []  # the collector left the registry with the last


def test_several_producers_in_one_registry_do_not_collide(caplog):
    registry = CollectorRegistry()
    clock = FakeClock()
    a, b, dup = (registry_with_values(clock, cid) for cid in ("a", "b", "a"))
    ra, rb, rdup = (PrometheusReporter(registry=registry) for _ in range(3))
    a.add_reporter(ra)
    b.add_reporter(rb)
    a.sensor("sends").record(2)
    b.sensor("sends").record(9)
    got = scrape(registry)
    assert got[("kafka_producer_record_send_total", (("client_id", "a"),))] == 2
    assert got[("kafka_producer_record_send_total", (("client_id", "b"),))] == 9
    with caplog.at_level(logging.WARNING, logger="fastprod.metrics"):
        dup.add_reporter(rdup)  # same client.id: shown once, with a warning
        got = scrape(registry)
    assert got[("kafka_producer_record_send_total", (("client_id", "a"),))] == 2
    assert any("reported twice" in r.getMessage() for r in caplog.records)
    b.remove(MetricName("record-send-total", "producer-topic-metrics", "",
                        {"client-id": "b", "topic": "t1"}))
    got = scrape(registry)
    assert ("kafka_producer_topic_record_send_total",
            (("client_id", "b"), ("topic", "t1"))) not in got
    b.close()
    got = scrape(registry)
    assert ("kafka_producer_record_send_total", (("client_id", "b"),)) not in got
    a.close()
    dup.close()


def test_prometheus_serves_on_a_free_port_and_stops_on_close():
    registry = CollectorRegistry()
    m = registry_with_values(FakeClock())
    r = PrometheusReporter(registry=registry, addr="127.0.0.1")
    r.configure({"fastprod.metrics.prometheus.port": 0})
    m.add_reporter(r)
    assert r.port and r.port > 0
    body = urllib.request.urlopen(f"http://127.0.0.1:{r.port}/metrics", timeout=5).read()
    assert b'kafka_producer_record_send_total{client_id="c1"} 0.0' in body
    # a second reporter asking for the same port shares the server
    r2 = PrometheusReporter(registry=registry, port=r.port, addr="127.0.0.1")
    m2 = registry_with_values(FakeClock(), "c2")
    m2.add_reporter(r2)
    assert r2.port == r.port
    m.close()
    body = urllib.request.urlopen(f"http://127.0.0.1:{r.port}/metrics", timeout=5).read()
    assert b'client_id="c2"' in body and b'client_id="c1"' not in body
    port = r.port
    m2.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()


def test_prometheus_port_in_use_is_a_config_error():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = PrometheusReporter(registry=CollectorRegistry(), port=port, addr="127.0.0.1")
        with pytest.raises(ConfigError, match=f"fastprod.metrics.prometheus.port={port}"):
            r.init([])
    with pytest.raises(ConfigError, match="0 to 65535"):
        PrometheusReporter(port=70000)


def test_prometheus_client_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install fastprod\[prometheus\]"):
        PrometheusReporter()
    with pytest.raises(ConfigError, match=r"pip install fastprod\[prometheus\]"):
        load_reporters(cfg(metric_reporters="fastprod.metrics.prometheus:PrometheusReporter"))


# ---- ShardedProducer's gathered view -------------------------------------------------------

class FakeWorkers:
    """Stands in for gather(): answers from a dict the test edits, counts the rounds."""

    def __init__(self) -> None:
        self.values: dict[MetricName, float] = {}
        self.rounds = 0
        self.fail: Exception | None = None

    def __call__(self, timeout: float) -> dict[MetricName, MeasuredMetric]:
        assert timeout == 5.0
        self.rounds += 1
        if self.fail is not None:
            raise self.fail
        return {n: MeasuredMetric(n, v) for n, v in self.values.items()}


def name(metric: str, **tags: str) -> MetricName:
    return MetricName(metric, "producer-metrics", "", {"client-id": "s", **tags})


def test_gathered_view_announces_refreshes_and_survives_a_failed_round(caplog):
    workers, clock = FakeWorkers(), FakeClock()
    total, w0 = name("record-send-total"), name("record-send-total", worker="0")
    workers.values = {total: 10, w0: 10}
    reporter = Recorder()
    view = GatheredMetrics(workers, [reporter], clock=clock)
    view.start()
    assert reporter.calls == [("init", ["record-send-total", "record-send-total"])]
    metric = view.metrics()[total]
    assert metric.value() == 10 and workers.rounds == 1  # fresh: no new round
    workers.values = {total: 25, w0: 20, name("record-send-total", worker="1"): 5}
    assert metric.value() == 10  # younger than max_age_ms
    clock.now += 1000
    assert metric.value() == 25 and workers.rounds == 2
    assert reporter.calls[-1] == ("change", name("record-send-total", worker="1"))
    workers.values = {total: 30, w0: 30}  # worker 1 gone
    view.refresh()  # what the shipped reporters do once per report
    assert reporter.calls[-1] == ("removal", name("record-send-total", worker="1"))
    assert metric.value() == 30
    workers.fail = TimeoutError("worker 0 did not answer")
    with caplog.at_level(logging.WARNING, logger="fastprod.metrics"):
        view.refresh()
        view.refresh()
    assert metric.value() == 30  # the last values stay
    assert sum("could not gather" in r.getMessage() for r in caplog.records) == 1
    view.close()
    rounds = workers.rounds
    clock.now += 10_000
    assert metric.value() == 30 and workers.rounds == rounds  # closed: no more asking
    assert reporter.calls[-1] == ("close", None)


def test_prometheus_over_a_gathered_view_asks_once_per_scrape():
    workers, clock = FakeWorkers(), FakeClock()
    total = name("record-send-total")
    workers.values = {total: 1}
    registry = CollectorRegistry()
    view = GatheredMetrics(workers, [PrometheusReporter(registry=registry)], clock=clock)
    view.start()
    workers.values = {total: 4, name("record-send-total", worker="0"): 4}
    got = scrape(registry)  # within max_age, yet a scrape refreshes: current values
    assert workers.rounds == 2
    assert got[("kafka_producer_record_send_total", (("client_id", "s"),))] == 4
    assert got[("kafka_producer_record_send_total",
                (("client_id", "s"), ("worker", "0")))] == 4  # new this round, listed
    view.close()
    assert scrape(registry) == {}


def test_gathered_view_starts_with_the_parents_metrics_while_workers_do_not_answer():
    workers, clock = FakeWorkers(), FakeClock()
    workers.fail = TimeoutError("worker 0 is still starting")
    own = Metrics(clock=clock)
    flush = MetricName("flush-time-ns-total", "producer-metrics", "", {"client-id": "s"})
    own.add_gauge(flush, lambda now: 3)
    reporter = Recorder()
    view = GatheredMetrics(workers, [reporter], clock=clock, own=own.metrics)
    view.start()
    assert reporter.calls == [("init", ["flush-time-ns-total"])]
    assert view.metrics()[flush].value() == 3
    workers.fail = None
    workers.values = {flush: 3, name("record-send-total"): 8}
    view.refresh()  # the next report asks again and announces the workers' metrics
    assert reporter.calls[-1] == ("change", name("record-send-total"))
    assert view.metrics()[name("record-send-total")].value() == 8
    view.close()
