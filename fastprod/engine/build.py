"""Engine: the accumulator, sender, network client and transaction manager of one
producer, wired from a ProducerConfig. ``Producer`` builds one in-process; each worker
of ``ShardedProducer`` builds one around the metadata its parent sends it. One
construction, so the two can never drift apart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastprod.clock import Clock, monotonic_ms
from fastprod.cluster.client import ClientOptions, NetworkClient
from fastprod.cluster.connection import SocketOptions
from fastprod.cluster.setup import ConnectionSecurity, security_from_config
from fastprod.compression import compression_from_config
from fastprod.config import ProducerConfig
from fastprod.engine.accumulator import RecordAccumulator
from fastprod.engine.buffer_pool import BufferPool
from fastprod.engine.producer_metrics import NetworkMetrics, ProducerMetrics, TimeRatio
from fastprod.engine.seams import ClusterView, MetadataFetcher
from fastprod.engine.sender import Sender
from fastprod.engine.transaction_manager import TransactionManager
from fastprod.metrics import MetricConfig, Metrics
from fastprod.partitioners import BuiltInPartitioner, PartitionerConfig


@dataclass
class Engine:
    config: ProducerConfig
    metadata: ClusterView  # Metadata, or a worker's view of its parent's
    accumulator: RecordAccumulator
    client: NetworkClient
    sender: Sender
    transaction_manager: TransactionManager | None
    batch_size: int
    metrics: ProducerMetrics
    thread: threading.Thread | None = None
    # Set when the sender thread ends. close() waits on it, not with Thread.join: a
    # join interrupted by Ctrl-C marks the thread stopped while it still runs (CPython
    # 3.11, bpo-45274's fix), so a later join would return at once.
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self, name: str) -> None:
        """Start the sender thread (a daemon: see Producer for why)."""
        self.thread = threading.Thread(target=self._run_sender, daemon=True, name=name)
        self.thread.start()

    def _run_sender(self) -> None:
        try:
            self.sender.run()
        finally:
            self.stopped.set()


_OWN = object()


def build_metrics(cfg: ProducerConfig, reporters: list | None = None) -> ProducerMetrics:
    """The metrics registry of one producer (or one ShardedProducer worker), telling
    ``reporters`` (fastprod.metrics.load_reporters) of every metric it gets."""
    registry = Metrics(MetricConfig(samples=cfg.metrics_num_samples,
                                    window_ms=max(cfg.metrics_sample_window_ms, 1)),
                       reporters=reporters)
    return ProducerMetrics(registry, cfg.client_id)


def build_engine(cfg: ProducerConfig, metadata: ClusterView,
                 fetcher: MetadataFetcher | None | object = _OWN,
                 clock: Clock = monotonic_ms, metrics: ProducerMetrics | None = None,
                 reporters: list | None = None) -> Engine:
    """The engine around ``metadata``; its network client fetches metadata through
    ``fetcher`` (by default ``metadata`` itself, a Metadata; None for a worker of
    ShardedProducer, whose parent fetches). Every part reads time from ``clock`` and
    records into ``metrics`` (by default a registry of its own, which tells
    ``reporters`` of its metrics)."""
    security = security_from_config(cfg, frozenset(cfg.originals))
    tm = None
    if cfg.enable_idempotence:
        tm = TransactionManager(transaction_timeout_ms=cfg.transaction_timeout_ms,
                                retry_backoff_ms=cfg.retry_backoff_ms,
                                transactional_id=cfg.transactional_id)
    codec, level = compression_from_config(cfg)
    batch_size = max(cfg.batch_size, 1)  # batch.size=0 means one record per batch
    partitioning = PartitionerConfig.from_config(cfg)
    accumulator = RecordAccumulator(
        batch_size=batch_size, compression_type=codec, compression_level=level,
        linger_ms=cfg.linger_ms, retry_backoff_ms=cfg.retry_backoff_ms,
        retry_backoff_max_ms=cfg.retry_backoff_max_ms,
        delivery_timeout_ms=cfg.delivery_timeout_ms, pool=BufferPool(cfg.buffer_memory, clock),
        partitioner_factory=lambda topic: BuiltInPartitioner(topic, batch_size),
        transaction_manager=tm,
        enable_adaptive_partitioning=partitioning.enable_adaptive_partitioning,
        partition_availability_timeout_ms=partitioning.partition_availability_timeout_ms,
        clock=clock)
    pm = build_metrics(cfg, reporters) if metrics is None else metrics
    client = build_network_client(cfg, metadata, metadata if fetcher is _OWN else fetcher,
                                  clock=clock, metrics=pm, security=security)
    sender = Sender(
        client, metadata, accumulator, acks=cfg.acks, retries=cfg.retries,
        max_request_size=cfg.max_request_size, request_timeout_ms=cfg.request_timeout_ms,
        delivery_timeout_ms=cfg.delivery_timeout_ms,
        guarantee_message_order=cfg.max_in_flight_requests_per_connection == 1,
        transaction_manager=tm, transactional_id=cfg.transactional_id, clock=clock,
        metrics=pm)
    accumulator.pool.on_wait = sender.wakeup
    _engine_gauges(pm, accumulator.pool, client, metadata, clock)
    return Engine(cfg, metadata, accumulator, client, sender, tm, batch_size, pm)


def _engine_gauges(pm: ProducerMetrics, pool: BufferPool, client: NetworkClient,
                   metadata: ClusterView, clock: Clock) -> None:
    pm.gauge("buffer-total-bytes", "The maximum amount of buffer memory the client can "
             "use (whether or not it is currently used).", lambda: pool.total_memory)
    pm.gauge("buffer-available-bytes", "The total amount of buffer memory that is not "
             "being used (either unallocated or in the free list).",
             lambda: pool.available_memory)
    pm.gauge("waiting-threads", "The number of user threads blocked waiting for buffer "
             "memory to enqueue their records.", lambda: pool.queued)
    pm.gauge("bufferpool-wait-time-ns-total", "The total time in ns an appender waits "
             "for space allocation.", lambda: pool.wait_ns_total)
    waits = pm.metrics.sensor("bufferpool-wait-time")
    waits.add(pm.name("bufferpool-wait-ratio", "The fraction of time an appender waits "
                                               "for space allocation."), TimeRatio())
    pool.on_waited = waits.record
    pm.gauge("requests-in-flight", "The current number of in-flight requests awaiting a "
             "response.", client.in_flight_count)

    def age_s() -> float:
        last = getattr(metadata, "last_success_ms", None)
        return 0.0 if last is None else (clock() - last) / 1000.0

    pm.gauge("metadata-age", "The age in seconds of the current producer metadata being "
             "used.", age_s)


def build_network_client(cfg: ProducerConfig, metadata: ClusterView,
                         fetcher: MetadataFetcher | None, client_id: str | None = None,
                         clock: Clock = monotonic_ms,
                         metrics: ProducerMetrics | None = None,
                         security: ConnectionSecurity | None = None) -> NetworkClient:
    """The network client of a producer (or of ShardedProducer's parent, which only
    fetches metadata: it passes its own ``client_id``), recording the connection
    metrics into ``metrics`` if given. Its connections are set up with ``security``
    (by default made from ``cfg``: TLS context, SASL mechanism and credentials)."""
    if security is None:
        security = security_from_config(cfg, frozenset(cfg.originals))
    client = NetworkClient(metadata, ClientOptions(
        socket=SocketOptions(send_buffer_bytes=cfg.send_buffer_bytes,
                             receive_buffer_bytes=cfg.receive_buffer_bytes,
                             client_id=client_id or cfg.client_id,
                             client_dns_lookup=cfg.client_dns_lookup,
                             security=security),
        max_in_flight=cfg.max_in_flight_requests_per_connection,
        request_timeout_ms=cfg.request_timeout_ms,
        reconnect_backoff_ms=cfg.reconnect_backoff_ms,
        reconnect_backoff_max_ms=cfg.reconnect_backoff_max_ms,
        connections_max_idle_ms=cfg.connections_max_idle_ms,
        connection_setup_timeout_ms=cfg.socket_connection_setup_timeout_ms,
        connection_setup_timeout_max_ms=cfg.socket_connection_setup_timeout_max_ms),
        fetcher, clock)
    if metrics is not None:
        client.metrics = NetworkMetrics(metrics)
        metrics.gauge("connection-count", "The current number of active connections.",
                      client.connection_count)
    return client


def build_metadata(cfg: ProducerConfig):
    from fastprod.cluster.metadata import Metadata

    return Metadata(list(cfg.bootstrap_addresses), metadata_max_age_ms=cfg.metadata_max_age_ms,
                    metadata_max_idle_ms=cfg.metadata_max_idle_ms,
                    refresh_backoff_ms=cfg.retry_backoff_ms,
                    refresh_backoff_max_ms=cfg.retry_backoff_max_ms)
