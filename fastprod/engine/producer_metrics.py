"""The Java producer's metrics, recorded by the engine per request and per batch.

Names, groups and tags are Java's (SenderMetricsRegistry, Selector, BufferPool,
KafkaProducer): group ``producer-metrics`` with tag client-id; ``producer-topic-metrics``
adds topic; ``producer-node-metrics`` adds node-id ("node-1"). Nothing is recorded per
record: a produce request's batches are summed in one pass, added to tallies that the
registry folds into the sensors (Sensor.record_many) every ~100 ms and before a read,
so the C send paths stay as they are and a request costs the sender a few additions.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from fastprod.metrics import Avg, CumulativeSum, Max, MetricName, Metrics, Rate, Sensor, Tally

GROUP = "producer-metrics"
TOPIC_GROUP = "producer-topic-metrics"
NODE_GROUP = "producer-node-metrics"


_TIMED_CALLS = {
    "flush": "flush()",
    "txn-init": "init_transactions()",
    "txn-begin": "begin_transaction()",
    "txn-send-offsets": "send_offsets_to_transaction()",
    "txn-commit": "commit_transaction()",
    "txn-abort": "abort_transaction()",
}


F = TypeVar("F", bound=Callable[..., Any])


def timed(op: str) -> Callable[[F], F]:
    """Add the time a producer method took (when it returns) to ``<op>-time-ns-total``;
    the producer keeps its ProducerMetrics in ``_producer_metrics``."""
    def wrap(method: F) -> F:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            result = method(self, *args, **kwargs)
            self._producer_metrics.call_time[op].record(time.perf_counter_ns() - started)
            return result
        return call  # type: ignore[return-value]
    return wrap


class ProducerMetrics:
    """What the sender, the network client and the buffer pool record into."""

    def __init__(self, metrics: Metrics, client_id: str) -> None:
        self.metrics = metrics
        self.tags = {"client-id": client_id}
        m = self._sensor
        self.batch_size = m("batch-size", avg=("batch-size-avg",
                                                "The average number of bytes sent per "
                                                "partition per request."),
                            max=("batch-size-max", "The maximum number of bytes sent per "
                                                   "partition per request."))
        self.compression = m("compression-rate", avg=(
            "compression-rate-avg", "The average compression rate of record batches, "
                                    "compressed size / uncompressed size."))
        self.queue_time = m("queue-time", avg=(
            "record-queue-time-avg", "The average time in ms record batches spent in the "
                                     "send buffer."),
            max=("record-queue-time-max", "The maximum time in ms record batches spent "
                                          "in the send buffer."))
        self.request_time = m("request-time", avg=(
            "request-latency-avg", "The average request latency in ms."),
            max=("request-latency-max", "The maximum request latency in ms."))
        self.records_per_request = m(
            "records-per-request",
            meter=("record-send", "records sent", False),
            avg=("records-per-request-avg", "The average number of records per request."))
        self.retries = m("record-retries", meter=("record-retry", "retried record sends",
                                                   False))
        self.errors = m("errors", meter=("record-error", "record sends that resulted in "
                                                         "errors", False))
        self.record_size = m("record-size", avg=("record-size-avg",
                                                  "The average record size."),
                             max=("record-size-max", "The maximum record size."))
        self.splits = m("batch-split", meter=("batch-split", "record batch splits", True))
        self.throttle = m("produce-throttle-time", avg=(
            "produce-throttle-time-avg", "The average time in ms a request was throttled "
                                         "by a broker."),
            max=("produce-throttle-time-max", "The maximum time in ms a request was "
                                              "throttled by a broker."))
        self._topics: dict[str, tuple[Sensor, Sensor, Sensor, Sensor, Sensor]] = {}
        tally = metrics.tally
        self._batch_sizes = tally(self.batch_size)
        self._compression = tally(self.compression)
        self._queue_times = tally(self.queue_time)
        self._record_sizes = tally(self.record_size)
        self._records_per_request = tally(self.records_per_request)
        self._throttles = tally(self.throttle)
        self._latencies: dict[int, Tally] = {}
        self._topic_tallies: dict[str, tuple[Tally, Tally, Tally]] = {}
        # KafkaProducer's own: how long its blocking calls took, in ns, summed
        self.call_time = {op: metrics.sensor(f"{op}-time").add(self.name(
            f"{op}-time-ns-total", f"Total time in ns the producer spent in {what}."),
            CumulativeSum()) for op, what in _TIMED_CALLS.items()}

    # ---- naming ---------------------------------------------------------------------------

    def name(self, name: str, description: str, group: str = GROUP,
             **tags: str) -> MetricName:
        return MetricName(name, group, description, {**self.tags, **tags})

    def _sensor(self, sensor_name: str, *, avg: tuple[str, str] | None = None,
                max: tuple[str, str] | None = None,
                meter: tuple[str, str, bool] | None = None, group: str = GROUP,
                tags: dict[str, str] | None = None) -> Sensor:
        sensor = self.metrics.sensor(sensor_name)
        tags = tags or {}
        if meter is not None:
            base, what, count_events = meter
            sensor.add_meter(
                self.name(f"{base}-rate", f"The average number of {what} per second.",
                          group, **tags),
                self.name(f"{base}-total", f"The total number of {what}.", group, **tags),
                count_events=count_events)
        if avg is not None:
            sensor.add(self.name(avg[0], avg[1], group, **tags), Avg())
        if max is not None:
            sensor.add(self.name(max[0], max[1], group, **tags), Max())
        return sensor

    def gauge(self, name: str, description: str, value: Callable[[], float],
              group: str = GROUP, **tags: str) -> None:
        self.metrics.add_gauge(self.name(name, description, group, **tags),
                               lambda now_ms: value())

    # ---- recording ------------------------------------------------------------------------
    # The sender thread adds to tallies (metrics.core.Tally) and the registry folds them
    # into the sensors; see Tally for why. Rare events (retries, errors, splits) and the
    # user threads' records go straight to their sensors.

    def record_request(self, batches: Iterable[Any], now_ms: int) -> None:
        """A produce request is sent with ``batches`` (each counts once per attempt, as
        in Java's updateProduceRequestMetrics)."""
        records = n = 0
        size_sum = size_max = ratio_sum = queue_sum = queue_max = rec_max = 0.0
        per_topic: dict[str, list[float]] = {}
        for batch in batches:
            count = batch.record_count
            size = len(batch.records())
            builder = batch.builder
            written = builder.size_in_bytes
            ratio = size / written if written else 1.0
            queued = now_ms - batch.created_ms if batch.drained_ms < 0 else \
                batch.drained_ms - batch.created_ms
            records += count
            n += 1
            size_sum += size
            ratio_sum += ratio
            queue_sum += queued
            if size > size_max:
                size_max = size
            if queued > queue_max:
                queue_max = queued
            largest = builder.max_record_size
            if largest > rec_max:
                rec_max = largest
            t = per_topic.get(batch.topic)
            if t is None:
                per_topic[batch.topic] = [count, size, ratio, 1]
            else:
                t[0] += count
                t[1] += size
                t[2] += ratio
                t[3] += 1
        if not n:
            return
        self._batch_sizes.add_many(size_sum, n, size_max)
        self._compression.add_many(ratio_sum, n, ratio_sum / n)
        self._queue_times.add_many(queue_sum, n, queue_max)
        self._record_sizes.add_many(rec_max * n, n, rec_max)
        self._records_per_request.add(records)
        for topic, (t_records, t_bytes, t_ratios, t_batches) in per_topic.items():
            tallies = self._topic_tallies.get(topic)
            if tallies is None:
                tallies = self._topic_tallies[topic] = self._new_topic_tallies(topic)
            tallies[0].add(t_records)
            tallies[1].add(t_bytes)
            tallies[2].add_many(t_ratios, int(t_batches), t_ratios / t_batches)

    def record_answer(self, node_id: int, latency_ms: float, throttle_ms: int | None) -> None:
        """A produce request to ``node_id`` was answered after ``latency_ms`` (or failed:
        ``throttle_ms`` None)."""
        tally = self._latencies.get(node_id)
        if tally is None:
            tally = self._latencies[node_id] = self.metrics.tally(
                self.request_time, self._node_latency(node_id))
        tally.add(latency_ms)
        if throttle_ms is not None:
            self._throttles.add(throttle_ms)

    def record_retries(self, topic: str, count: int, now_ms: int) -> None:
        self.retries.record(count, now_ms)
        self._topic(topic)[3].record(count, now_ms)

    def record_errors(self, topic: str, count: int, now_ms: int) -> None:
        self.errors.record(count, now_ms)
        self._topic(topic)[4].record(count, now_ms)

    def _node_latency(self, node_id: int) -> Sensor:
        return self._sensor(
            f"node-{node_id}.latency", group=NODE_GROUP, tags={"node-id": f"node-{node_id}"},
            avg=("request-latency-avg", "The average request latency in ms."),
            max=("request-latency-max", "The maximum request latency in ms."))

    def _new_topic_tallies(self, topic: str) -> tuple[Tally, Tally, Tally]:
        sends, byte_sensor, compression, _, _ = self._topic(topic)
        tally = self.metrics.tally
        return tally(sends), tally(byte_sensor), tally(compression)

    def _topic(self, topic: str) -> tuple[Sensor, Sensor, Sensor, Sensor, Sensor]:
        sensors = self._topics.get(topic)
        if sensors is None:
            tags = {"topic": topic}
            t = f"topic.{topic}"
            sensors = self._topics[topic] = (
                self._sensor(f"{t}.records-per-batch", group=TOPIC_GROUP, tags=tags,
                             meter=("record-send", "records sent", False)),
                self._sensor(f"{t}.bytes", group=TOPIC_GROUP, tags=tags,
                             meter=("byte", "bytes sent", False)),
                self._sensor(f"{t}.compression-rate", group=TOPIC_GROUP, tags=tags,
                             avg=("compression-rate", "The average compression rate of "
                                                      "record batches for a topic.")),
                self._sensor(f"{t}.record-retries", group=TOPIC_GROUP, tags=tags,
                             meter=("record-retry", "retried record sends", False)),
                self._sensor(f"{t}.record-errors", group=TOPIC_GROUP, tags=tags,
                             meter=("record-error", "record sends that resulted in errors",
                                    False)))
        return sensors


class NetworkMetrics:
    """Java's Selector metrics, kept by the NetworkClient of one engine (or of a
    ShardedProducer's parent, for its metadata connections)."""

    def __init__(self, pm: ProducerMetrics) -> None:
        self.pm = pm
        s = pm._sensor
        self.created = s("connections-created", meter=("connection-creation",
                                                       "new connections established", True))
        self.closed = s("connections-closed", meter=("connection-close",
                                                     "connections closed", True))
        self.sent = s("bytes-sent", meter=("outgoing-byte", "outgoing bytes sent to all "
                                                            "servers", False))
        self.requests = s("requests-sent", meter=("request", "requests sent", True),
                          avg=("request-size-avg", "The average size of requests sent."),
                          max=("request-size-max", "The maximum size of any request sent."))
        self.received = s("bytes-received", meter=("incoming-byte", "bytes read off all "
                                                                    "sockets", False))
        self.responses = s("responses-received", meter=("response", "responses received",
                                                        True))
        io_wait = pm.metrics.sensor("io-wait-time")
        io_wait.add(pm.name("io-wait-ratio", "The fraction of time the I/O thread spent "
                                             "waiting."), TimeRatio())
        io_wait.add(pm.name("io-wait-time-ns-total", "The total time the I/O thread spent "
                                                     "waiting, in ns."), CumulativeSum())
        self._io_wait = pm.metrics.tally(io_wait)
        self._nodes: dict[int, tuple[Sensor, Sensor, Sensor, Sensor]] = {}
        self._tallies: dict[int, tuple[Tally, Tally]] = {}

    def node(self, node_id: int) -> tuple[Sensor, Sensor, Sensor, Sensor]:
        sensors = self._nodes.get(node_id)
        if sensors is None:
            tags = {"node-id": f"node-{node_id}"}
            s = self.pm._sensor
            n = f"node-{node_id}"
            sensors = self._nodes[node_id] = (
                s(f"{n}.bytes-sent", group=NODE_GROUP, tags=tags,
                  meter=("outgoing-byte", "outgoing bytes", False)),
                s(f"{n}.requests-sent", group=NODE_GROUP, tags=tags,
                  meter=("request", "requests sent", True),
                  avg=("request-size-avg", "The average size of requests sent."),
                  max=("request-size-max", "The maximum size of any request sent.")),
                s(f"{n}.bytes-received", group=NODE_GROUP, tags=tags,
                  meter=("incoming-byte", "bytes received", False)),
                s(f"{n}.responses-received", group=NODE_GROUP, tags=tags,
                  meter=("response", "responses received", True)))
        return sensors

    def request_sent(self, node_id: int, size: int) -> None:
        tallies = self._tallies.get(node_id)
        if tallies is None:
            tallies = self._new_tallies(node_id)
        tallies[0].add(size)

    def response_received(self, node_id: int, size: int) -> None:
        tallies = self._tallies.get(node_id)
        if tallies is None:
            tallies = self._new_tallies(node_id)
        tallies[1].add(size)

    def waited(self, ns: int, now_ms: int) -> None:
        """The I/O thread waited ``ns`` in select; once a round, so the round's folding
        is done here too."""
        self._io_wait.add(ns)
        self.pm.metrics.maybe_fold(now_ms)

    def _new_tallies(self, node_id: int) -> tuple[Tally, Tally]:
        # a request's size counts in four sensors, an answer's in four: one tally each
        bytes_sent, requests, bytes_received, responses = self.node(node_id)
        tally = self.pm.metrics.tally
        tallies = self._tallies[node_id] = (
            tally(self.sent, self.requests, bytes_sent, requests),
            tally(self.received, self.responses, bytes_received, responses))
        return tallies


class TimeRatio(Rate):
    """A rate of nanoseconds per nanosecond: the fraction of time (Java's
    Rate(TimeUnit.NANOSECONDS))."""

    def measure(self, config, now_ms):  # type: ignore[no-untyped-def]
        return self.stat.measure(config, now_ms) / (self.window_ms(config, now_ms) * 1e6)


__all__ = ["GROUP", "NODE_GROUP", "TOPIC_GROUP", "NetworkMetrics", "ProducerMetrics",
           "TimeRatio", "timed"]
