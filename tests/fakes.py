"""Test doubles for the engine's unit tests: a fake clock, hand-built metadata, and a
fake NetworkClient that records what the Sender sends and lets the test answer it.

Java's producer tests use MockTime and MockClient; these are the same idea. Nothing here
opens a socket or sleeps: the test moves the clock and decides what every request gets
back (a generated response message, an error, or a disconnect), and when.
"""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from fastprod.cluster.metadata import Metadata
from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo
from fastprod.engine.accumulator import RecordAccumulator
from fastprod.engine.buffer_pool import BufferPool
from fastprod.errors import NetworkError
from fastprod.partitioners import BuiltInPartitioner
from fastprod.protocol.messages.init_producer_id import InitProducerIdResponse
from fastprod.protocol.messages.metadata import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from fastprod.protocol.messages.produce import (
    BatchIndexAndErrorMessage,
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)

PRODUCE = 0
METADATA = 3
INIT_PRODUCER_ID = 22


# ---- time ------------------------------------------------------------------------------

class FakeClock:
    """Monotonic milliseconds that only move when the test says so (Java's MockTime).

    Call it to read it, so it can stand in for ``fastprod.clock.monotonic_ms``."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, ms: int) -> None:
        self.now_ms += ms


# ---- randomness ------------------------------------------------------------------------

class SequentialRandom:
    """Stands in for random.Random in the built-in partitioner: ``getrandbits`` returns
    0, 1, 2, ... (Java's tests mock BuiltInPartitioner.randomPartition the same way)."""

    def __init__(self, start: int = 0) -> None:
        self.calls = start

    def getrandbits(self, k: int) -> int:
        assert k == 31
        value = self.calls
        self.calls += 1
        return value


# ---- metadata --------------------------------------------------------------------------

NODES = {i: Node(i, "localhost", 9092 + i) for i in range(3)}


def make_snapshot(leaders: dict[str, list[int]], *, nodes: dict[int, Node] | None = None,
                  version: int = 1, topic_ids: dict[str, uuid.UUID] | None = None
                  ) -> ClusterSnapshot:
    """Topics with one partition per entry of ``leaders[topic]`` (its leader's node id,
    -1 for none). Partitions are listed by node in the order given, which is the order
    the accumulator's drain walks them."""
    topics = {t: tuple(PartitionInfo(t, p, leader) for p, leader in enumerate(ls))
              for t, ls in leaders.items()}
    if topic_ids is None:
        topic_ids = {t: uuid.uuid5(uuid.NAMESPACE_DNS, t) for t in leaders}
    return ClusterSnapshot(version=version, cluster_id="test-cluster", controller_id=0,
                           nodes=dict(NODES if nodes is None else nodes), topics=topics,
                           topic_ids=topic_ids)


def metadata_response(leaders: dict[str, list[int]], *, brokers=(0, 1, 2),
                      topic_errors: dict[str, int] | None = None,
                      partition_errors: dict[tuple[str, int], int] | None = None,
                      leader_epochs: dict[tuple[str, int], int] | None = None
                      ) -> MetadataResponse:
    """A MetadataResponse like a broker's: ``leaders[topic][p]`` is partition p's leader
    id (-1 with LEADER_NOT_AVAILABLE unless ``partition_errors`` says otherwise), with
    leader epoch 7 unless ``leader_epochs`` says otherwise."""
    topic_errors = topic_errors or {}
    partition_errors = partition_errors or {}
    leader_epochs = leader_epochs or {}
    topics = []
    for name, ls in leaders.items():
        parts = []
        for p, leader in enumerate(ls):
            error = partition_errors.get((name, p), 5 if leader < 0 else 0)
            replicas = [leader] if leader >= 0 else [0]
            parts.append(MetadataResponsePartition(
                error_code=error, partition_index=p, leader_id=leader,
                leader_epoch=leader_epochs.get((name, p), 7),
                replica_nodes=replicas, isr_nodes=replicas if leader >= 0 else []))
        topics.append(MetadataResponseTopic(
            error_code=topic_errors.get(name, 0), name=name,
            topic_id=uuid.uuid5(uuid.NAMESPACE_DNS, name), partitions=parts))
    for name, code in topic_errors.items():
        if name not in leaders:
            topics.append(MetadataResponseTopic(error_code=code, name=name))
    return MetadataResponse(
        brokers=[MetadataResponseBroker(node_id=i, host="localhost", port=9092 + i)
                 for i in brokers],
        cluster_id="test-cluster", controller_id=0, topics=topics)


def make_metadata(leaders: dict[str, list[int]] | None = None, *, now_ms: int = 0,
                  bootstrap=(("localhost", 9092),), metadata_max_age_ms: int = 300_000,
                  metadata_max_idle_ms: int = 300_000, refresh_backoff_ms: int = 100,
                  refresh_backoff_max_ms: int = 1000) -> Metadata:
    """A Metadata, updated with ``leaders`` (when given) at ``now_ms``."""
    metadata = Metadata(list(bootstrap), metadata_max_age_ms=metadata_max_age_ms,
                        metadata_max_idle_ms=metadata_max_idle_ms,
                        refresh_backoff_ms=refresh_backoff_ms,
                        refresh_backoff_max_ms=refresh_backoff_max_ms)
    if leaders is not None:
        for topic in leaders:
            metadata.add_topic(topic, now_ms)
        metadata.update(metadata_response(leaders), now_ms)
    return metadata


# ---- the accumulator ---------------------------------------------------------------------

def make_accumulator(*, batch_size: int = 16384, buffer_memory: int = 32 * 1024 * 1024,
                     compression_type: int = 0, compression_level: int | None = None,
                     linger_ms: int = 0, retry_backoff_ms: int = 100,
                     retry_backoff_max_ms: int = 1000, delivery_timeout_ms: int = 120_000,
                     rng=None, transaction_manager=None, clock=None) -> RecordAccumulator:
    """A RecordAccumulator as the Producer builds it; ``rng`` (shared by every topic's
    built-in partitioner) makes sticky partition choices deterministic."""

    def partitioner(topic: str) -> BuiltInPartitioner:
        return BuiltInPartitioner(topic, batch_size, rng=rng)

    return RecordAccumulator(
        batch_size=batch_size, compression_type=compression_type,
        compression_level=compression_level, linger_ms=linger_ms,
        retry_backoff_ms=retry_backoff_ms, retry_backoff_max_ms=retry_backoff_max_ms,
        delivery_timeout_ms=delivery_timeout_ms, pool=BufferPool(buffer_memory),
        partitioner_factory=partitioner, transaction_manager=transaction_manager,
        **({} if clock is None else {"clock": clock}))


# ---- responses ---------------------------------------------------------------------------

@dataclass
class PartitionResult:
    """What the broker says about one partition of a Produce request."""

    error: int = 0
    base_offset: int = 0
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    record_errors: list[tuple[int, str | None]] = field(default_factory=list)
    error_message: str | None = None


def produce_response(results: dict[tuple[str, int], PartitionResult | int], *,
                     topic_ids: dict[str, uuid.UUID] | None = None) -> ProduceResponse:
    """A ProduceResponse. ``results[(topic, p)]`` is a PartitionResult or just a base
    offset. With ``topic_ids`` topics are named by id (Produce v13+)."""
    by_topic: dict[str, list[PartitionProduceResponse]] = collections.defaultdict(list)
    for (topic, p), result in results.items():
        if isinstance(result, int):
            result = PartitionResult(base_offset=result)
        by_topic[topic].append(PartitionProduceResponse(
            index=p, error_code=result.error, base_offset=result.base_offset,
            log_append_time_ms=result.log_append_time_ms,
            log_start_offset=result.log_start_offset,
            record_errors=[BatchIndexAndErrorMessage(batch_index=i,
                                                     batch_index_error_message=m)
                           for i, m in result.record_errors],
            error_message=result.error_message))
    responses = []
    for topic, parts in by_topic.items():
        if topic_ids is None:
            responses.append(TopicProduceResponse(name=topic, partition_responses=parts))
        else:
            responses.append(TopicProduceResponse(topic_id=topic_ids[topic],
                                                  partition_responses=parts))
    return ProduceResponse(responses=responses)


def init_producer_id_response(producer_id: int, epoch: int = 0,
                              error: int = 0) -> InitProducerIdResponse:
    return InitProducerIdResponse(error_code=error, producer_id=producer_id,
                                  producer_epoch=epoch)


# ---- the network client ------------------------------------------------------------------

@dataclass
class SentRequest:
    """One request the Sender handed to the client."""

    node_id: int
    api_key: int
    message: Any
    handler: Callable[[Any, BaseException | None], object] | None
    sent_ms: int
    expect_response: bool
    version: int | None
    answered: bool = False

    def partitions(self) -> list[tuple[str, int]]:
        """(topic, partition) of each batch of a Produce request, in request order."""
        return [(t.name, p.index) for t in self.message.topic_data
                for p in t.partition_data]

    def records(self) -> dict[tuple[str, int], bytes]:
        return {(t.name, p.index): p.records for t in self.message.topic_data
                for p in t.partition_data}


class FakeNetworkClient:
    """Java's MockClient for the Sender: every node is connected and ready unless the
    test says otherwise; ``send`` only records; answers queued with ``respond``,
    ``fail`` or ``disconnect`` are handed to the handlers by the next ``poll``, in the
    order they were queued. A request sent with ``expect_response=False`` (acks=0) is
    "written" at the next poll and its handler gets ``(None, None)``.
    """

    def __init__(self, metadata: Metadata, *, api_versions: dict[int, int] | None = None,
                 max_in_flight: int = 5) -> None:
        self.metadata = metadata
        self.api_versions = {PRODUCE: 9, METADATA: 12, INIT_PRODUCER_ID: 4}
        if api_versions:
            self.api_versions.update(api_versions)
        self.max_in_flight = max_in_flight
        self.sent: list[SentRequest] = []             # every request, in order
        self.in_flight: list[SentRequest] = []        # sent, not answered yet
        self._answers: collections.deque = collections.deque()  # (request, response, error)
        self.not_ready: set[int] = set()
        self.failed_connections: set[int] = set()  # nodes whose last connect failed
        self.connection_delays: dict[int, int] = {}
        self.polls: list[int] = []                    # the timeout of every poll
        self.wakeups = 0
        self.closed = False
        # called with each request as it is sent, e.g. to answer it at once
        self.on_send: Callable[[SentRequest], object] | None = None

    # -- what the Sender calls -------------------------------------------------------

    def ready(self, node: Node, now_ms: int) -> bool:
        return self.is_ready(node.node_id)

    def is_ready(self, node_id: int) -> bool:
        return (node_id not in self.not_ready and
                self.in_flight_count(node_id) < self.max_in_flight)

    def connection_delay(self, node_id: int, now_ms: int) -> int:
        return self.connection_delays.get(node_id, 0)

    def is_connection_failed(self, node_id: int) -> bool:
        return node_id in self.failed_connections

    def api_version(self, node_id: int, api_key: int) -> int | None:
        return self.api_versions.get(api_key)

    def in_flight_count(self, node_id: int | None = None) -> int:
        return sum(1 for r in self.in_flight if node_id is None or r.node_id == node_id)

    def least_loaded_node(self, now_ms: int) -> Node | None:
        nodes = [n for n in self.metadata.snapshot.nodes.values()
                 if n.node_id not in self.not_ready]
        if not nodes:
            return None
        return min(nodes, key=lambda n: (self.in_flight_count(n.node_id), n.node_id))

    def send(self, node_id: int, api_key: int, message, handler, now_ms: int,
             expect_response: bool = True, version: int | None = None) -> None:
        assert self.is_ready(node_id), f"send to node {node_id}, which is not ready"
        request = SentRequest(node_id, api_key, message, handler, now_ms, expect_response,
                              version)
        self.sent.append(request)
        if expect_response:
            self.in_flight.append(request)
        else:
            self._answers.append((request, None, None))
        if self.on_send is not None:
            self.on_send(request)

    def poll(self, timeout_ms: int, now_ms: int) -> None:
        self.polls.append(timeout_ms)
        answers, self._answers = self._answers, collections.deque()
        for request, response, error in answers:
            if request.handler is not None:
                request.handler(response, error)

    def wakeup(self) -> None:
        self.wakeups += 1

    def close(self) -> None:
        self.closed = True

    # -- what the test calls ---------------------------------------------------------

    def requests(self, api_key: int | None = PRODUCE) -> list[SentRequest]:
        return [r for r in self.sent if api_key is None or r.api_key == api_key]

    def pending(self, api_key: int | None = PRODUCE) -> list[SentRequest]:
        """Requests still waiting for an answer, oldest first."""
        return [r for r in self.in_flight if api_key is None or r.api_key == api_key]

    def _take(self, request: SentRequest | None, api_key: int | None) -> SentRequest:
        if request is None:
            candidates = self.pending(api_key)
            assert candidates, "no request waiting for an answer"
            request = candidates[0]
        self.in_flight.remove(request)
        request.answered = True
        return request

    def respond(self, response, request: SentRequest | None = None, *,
                api_key: int | None = PRODUCE) -> SentRequest:
        """Answer ``request`` (default: the oldest waiting one of ``api_key``) with a
        response message at the next poll."""
        request = self._take(request, api_key)
        self._answers.append((request, response, None))
        return request

    def respond_produce(self, results, request: SentRequest | None = None) -> SentRequest:
        """Answer a Produce request: ``results`` as for ``produce_response``; by topic id
        when the request was sent as v13+."""
        if request is None:
            request = self.pending(PRODUCE)[0]
        ids = None
        if request.version is not None and request.version >= 13:
            ids = dict(self.metadata.snapshot.topic_ids)
        return self.respond(produce_response(results, topic_ids=ids), request)

    def fail(self, error: BaseException, request: SentRequest | None = None, *,
             api_key: int | None = PRODUCE) -> SentRequest:
        """The request fails with ``error`` (a timeout, say) at the next poll."""
        request = self._take(request, api_key)
        self._answers.append((request, None, error))
        return request

    def disconnect(self, node_id: int) -> list[SentRequest]:
        """The connection to ``node_id`` drops: each of its requests fails with a
        NetworkError at the next poll, as NetworkClient does."""
        dropped = [r for r in self.in_flight if r.node_id == node_id]
        for request in dropped:
            self.fail(NetworkError(f"disconnected from node {node_id}"), request)
        return dropped
