"""PrometheusReporter against a real broker: the endpoint is scraped over HTTP and its
kafka_producer_record_send_total is what the Java consumer read back and what metrics()
says, for Producer and for ShardedProducer (2 workers, totals and worker=N series, and
LoggingReporter's JSON line beside it)."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fastprod import Producer, ShardedProducer
from fastprod.metrics import LoggingReporter, PrometheusReporter
from tests import readers
from tests.helpers import settle, unique_topic, wait_until

pytestmark = pytest.mark.integration

RECORDS = 3000


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(p, name: str, group: str = "producer-metrics", **tags: str) -> float:
    values = [m.value() for n, m in p.metrics().items()
              if n.name == name and n.group == group
              and set(n.tags) - {"client-id"} == set(tags)
              and all(n.tags[k] == v for k, v in tags.items())]
    assert len(values) == 1, (name, tags, values)
    return values[0]


def produce(p, topic: str) -> int:
    values = [b"v-%06d" % i for i in range(RECORDS)]
    future = p.send_batch(topic, values, keys=[b"k%d" % (i % 97) for i in range(RECORDS)])
    for i in range(100):
        p.send(topic, b"one-%d" % i)
    p.flush()
    assert not future.errors()
    return RECORDS + 100


def test_producer_endpoint_from_config_matches_the_java_consumer(kafka):
    """The reporter named in metric.reporters, its port in the config."""
    topic = unique_topic("prom-producer")
    kafka.create_topic(topic, partitions=3)
    settle(kafka.bootstrap_servers, topic, 3)
    port = free_port()
    client_id = f"prom-{topic}"
    config = {"bootstrap.servers": kafka.bootstrap_servers, "client.id": client_id,
              "linger.ms": 10,
              "metric.reporters": "fastprod.metrics.prometheus:PrometheusReporter",
              "fastprod.metrics.prometheus.port": port}
    with Producer(config) as p:
        before = scrape(port)
        ours = (("client_id", client_id),)
        assert before[("kafka_producer_record_send_total", ours)] == 0
        sent = produce(p, topic)
        got = scrape(port)
        assert got[("kafka_producer_record_send_total", ours)] == sent
        assert got[("kafka_producer_record_send_total", ours)] == \
            metric(p, "record-send-total")
        assert got[("kafka_producer_topic_record_send_total",
                    (("client_id", client_id), ("topic", topic)))] == sent
        assert got[("kafka_producer_record_error_total", ours)] == 0
        assert got[("kafka_producer_request_total", ours)] == metric(p, "request-total") > 0
        nodes = [labels for (name, labels) in got
                 if name == "kafka_producer_node_request_latency_avg"
                 and dict(labels)["client_id"] == client_id]
        assert nodes and all(dict(labels)["node_id"].startswith("node-") for labels in nodes)
    read = readers.java_read(kafka.bootstrap_servers, topic, expected=sent)
    assert len(read) == sent
    with pytest.raises(OSError):  # close() stopped the server
        scrape(port)


def test_sharded_endpoint_shows_totals_and_workers(kafka, caplog):
    """An instance in metric.reporters on its own registry and a free port: the totals
    are what the Java consumer read and what metrics() says, the worker=N series add up
    to them; a LoggingReporter beside it logs the same total."""
    topic = unique_topic("prom-sharded")
    kafka.create_topic(topic, partitions=4)
    settle(kafka.bootstrap_servers, topic, 4)
    reporter = PrometheusReporter(registry=CollectorRegistry(), port=0, addr="127.0.0.1")
    client_id = f"prom-{topic}"
    config = {"bootstrap.servers": kafka.bootstrap_servers, "client.id": client_id,
              "linger.ms": 10, "metric.reporters": [reporter, LoggingReporter],
              "fastprod.metrics.log.interval.ms": 100}
    caplog.set_level(logging.INFO, logger="fastprod.metrics")
    with ShardedProducer(config, workers=2) as p:
        assert reporter.port
        sent = produce(p, topic)
        got = scrape(reporter.port)
        total = got[("kafka_producer_record_send_total", (("client_id", client_id),))]
        assert total == sent == metric(p, "record-send-total")
        per_worker = [got[("kafka_producer_record_send_total",
                           (("client_id", client_id), ("worker", str(w))))] for w in (0, 1)]
        assert sum(per_worker) == sent
        assert per_worker == [metric(p, "record-send-total", worker=str(w)) for w in (0, 1)]
        # the topic's metrics appeared after the first scrape's view was made
        assert got[("kafka_producer_topic_record_send_total",
                    (("client_id", client_id), ("topic", topic)))] == sent

        def logged_total():
            for record in reversed(caplog.records):
                if record.name == "fastprod.metrics" and record.getMessage().startswith(
                        '{"client_id":"%s"' % client_id):
                    line = json.loads(record.getMessage())["metrics"]
                    return line.get("producer-metrics:record-send-total")
            return None

        wait_until(lambda: logged_total() == sent, 10, "a JSON line with every record")
    read = readers.java_read(kafka.bootstrap_servers, topic, expected=sent)
    assert len(read) == sent
    with pytest.raises(OSError):
        scrape(reporter.port)
