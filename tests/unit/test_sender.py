"""Sender.run_once against a fake NetworkClient and a fake clock: what goes out, and
what each answer (success, broker error, disconnect, silence) does to the futures.
Many scenarios are ports of Java's SenderTest; where fastprod differs from Java the
test states Java's behaviour and is marked xfail(strict) with the deviation."""

from __future__ import annotations

import pytest

from fastprod.engine.sender import Sender
from fastprod.engine.transaction_manager import TransactionManager
from fastprod.errors import (
    InvalidRecordError,
    InvalidTimestampError,
    KafkaError,
    KafkaTimeoutError,
    NetworkError,
    NotLeaderOrFollowerError,
    ProducerClosedError,
    NotEnoughReplicasError,
    RecordTooLargeError,
    UnsupportedVersionError,
)
from fastprod.kernels import COMPRESSION_ZSTD, RECORD_BATCH_OVERHEAD, BatchBuilder, read_batch
from tests.fakes import (
    INIT_PRODUCER_ID,
    FakeClock,
    FakeNetworkClient,
    PartitionResult,
    init_producer_id_response,
    make_accumulator,
    make_metadata,
)

TOPIC = "test"
TP0 = (TOPIC, 0)
TP1 = (TOPIC, 1)
PID = 343434
# SenderTest's constants
REQUEST_TIMEOUT = 5000
DELIVERY_TIMEOUT_MS = 1500
METADATA_MAX_AGE = 300_000
TIMESTAMP = 1_700_000_000_000

# error codes
LEADER_NOT_AVAILABLE, NOT_LEADER = 5, 6
REQUEST_TIMED_OUT, MESSAGE_TOO_LARGE, NOT_ENOUGH_REPLICAS = 7, 10, 19
INVALID_TIMESTAMP = 32
OUT_OF_ORDER, DUPLICATE_SEQUENCE, UNKNOWN_PRODUCER_ID = 45, 46, 59
INVALID_RECORD = 87


class Harness:
    """Sender + accumulator + metadata + fake client, all on one fake clock."""

    def __init__(self, *, acks=-1, retries=2**31 - 1, idempotent=False,
                 max_in_flight=5, linger_ms=0, batch_size=16 * 1024, retry_backoff_ms=0,
                 delivery_timeout_ms=DELIVERY_TIMEOUT_MS, leaders=None, produce_version=9,
                 compression_type=0, buffer_memory=1024 * 1024):
        self.clock = FakeClock()
        self.metadata = make_metadata(leaders or {TOPIC: [0, 0, 1]}, now_ms=self.clock(),
                                      metadata_max_age_ms=METADATA_MAX_AGE)
        self.tm = None
        if idempotent:
            self.tm = TransactionManager(transaction_timeout_ms=60000,
                                         retry_backoff_ms=retry_backoff_ms or 100)
        self.acc = make_accumulator(batch_size=batch_size, linger_ms=linger_ms,
                                    retry_backoff_ms=retry_backoff_ms,
                                    retry_backoff_max_ms=retry_backoff_ms * 10,
                                    delivery_timeout_ms=delivery_timeout_ms,
                                    compression_type=compression_type,
                                    buffer_memory=buffer_memory, transaction_manager=self.tm,
                                    clock=self.clock)
        self.client = FakeNetworkClient(self.metadata, api_versions={0: produce_version},
                                        max_in_flight=max_in_flight)
        self.sender = Sender(self.client, self.metadata, self.acc, acks=acks, retries=retries,
                             max_request_size=1024 * 1024, request_timeout_ms=REQUEST_TIMEOUT,
                             delivery_timeout_ms=delivery_timeout_ms,
                             guarantee_message_order=max_in_flight == 1,
                             transaction_manager=self.tm, clock=self.clock)

    def append(self, partition=0, value=b"value", key=b"key", callback=None):
        return self.acc.append(TOPIC, partition, TIMESTAMP, key, value, None, callback, 1000,
                               self.clock(), self.metadata.snapshot).future

    def run_once(self):
        self.sender.run_once(self.clock())

    def sleep(self, ms):
        self.clock.sleep(ms)

    def produce_requests(self):
        return self.client.requests()

    def in_flight(self):
        return len(self.client.pending())

    def respond(self, results, request=None):
        self.client.respond_produce(results, request)

    def init_producer_id(self, producer_id=PID, epoch=0):
        self.run_once()  # sends InitProducerId
        [request] = self.client.pending(INIT_PRODUCER_ID)
        self.client.respond(init_producer_id_response(producer_id, epoch), request,
                            api_key=INIT_PRODUCER_ID)
        self.run_once()  # receives it
        assert self.tm.has_producer_id()
        return request

    def acknowledge_first_batch(self, partition=0, offset=0):
        """Send one batch to the partition and acknowledge it: until then a fresh
        partition takes one batch at a time (see test_a_fresh_partition_...)."""
        future = self.append(partition)
        self.run_once()
        self.respond({(TOPIC, partition): offset})
        self.run_once()
        assert future.result(0).offset == offset

    def memory_all_returned(self):
        return self.acc.pool.available_memory == self.acc.pool.total_memory


def sequences(request):
    return {tp: read_batch(records).base_sequence for tp, records in request.records().items()}


def header(request, tp=TP0):
    batch = read_batch(request.records()[tp])
    return batch.producer_id, batch.producer_epoch, batch.base_sequence


@pytest.fixture
def make():
    return Harness


# ---- what goes out -----------------------------------------------------------------------

def test_simple_send(make):
    """Java's testSimple: send, answer, the future has the offset."""
    h = make()
    future = h.append()
    h.run_once()
    [request] = h.produce_requests()
    assert request.node_id == 0 and request.expect_response
    assert request.message.acks == -1 and request.message.timeout_ms == REQUEST_TIMEOUT
    assert request.message.transactional_id is None
    assert request.partitions() == [TP0]
    [record] = read_batch(request.records()[TP0]).records
    assert (record.key, record.value, record.timestamp) == (b"key", b"value", TIMESTAMP)
    assert not future.done()
    h.respond({TP0: 10})
    h.run_once()
    assert future.result(0).offset == 10
    assert h.in_flight() == 0 and h.memory_all_returned()
    assert not h.acc.has_incomplete()


def test_one_request_per_node_with_every_ready_partition(make):
    h = make()
    for p in (0, 1, 2, 0):
        h.append(p)
    h.run_once()
    by_node = {r.node_id: sorted(r.partitions()) for r in h.produce_requests()}
    assert by_node == {0: [TP0, TP1], 1: [(TOPIC, 2)]}


@pytest.mark.parametrize("acks", [1, -1])
def test_acks_1_and_all_complete_with_base_offset_plus_relative_offset(make, acks):
    h = make(acks=acks)
    futures = [h.append() for _ in range(3)]
    delivered = []
    futures.append(h.append(callback=lambda md, err: delivered.append((md, err))))
    h.run_once()
    [request] = h.produce_requests()
    assert request.message.acks == acks
    h.respond({TP0: PartitionResult(base_offset=500, log_append_time_ms=42)})
    h.run_once()
    assert [f.result(0).offset for f in futures] == [500, 501, 502, 503]
    assert {f.result(0).timestamp for f in futures} == {42}  # LogAppendTime
    assert delivered[0][0].offset == 503 and delivered[0][1] is None


def test_acks_0_completes_with_offset_minus_one_once_written(make):
    h = make(acks=0)
    futures = [h.append() for _ in range(2)]
    h.run_once()
    [request] = h.produce_requests()
    assert request.message.acks == 0 and not request.expect_response
    assert all(f.done() for f in futures)
    assert [f.result(0).offset for f in futures] == [-1, -1]
    assert futures[0].result(0).timestamp == TIMESTAMP
    assert h.memory_all_returned()


def test_topic_ids_from_produce_v13(make):
    h = make(produce_version=13)
    future = h.append()
    h.run_once()
    [request] = h.produce_requests()
    [topic_data] = request.message.topic_data
    assert topic_data.topic_id == h.metadata.snapshot.topic_ids[TOPIC]
    h.respond({TP0: 7})  # answered by topic id
    h.run_once()
    assert future.result(0).offset == 7


def test_unsupported_produce_version_fails_the_batches(make):
    h = make(compression_type=COMPRESSION_ZSTD, produce_version=6)  # zstd needs v7
    future = h.append()
    h.run_once()
    assert h.produce_requests() == []
    assert isinstance(future.exception(0), UnsupportedVersionError)
    assert h.memory_all_returned()


def test_node_not_ready_waits_for_the_connection(make):
    h = make()
    h.client.not_ready.add(0)
    h.client.connection_delays[0] = 40
    future = h.append()
    h.run_once()
    assert h.produce_requests() == [] and not future.done()
    assert h.client.polls[-1] == 40
    h.client.not_ready.clear()
    h.run_once()
    assert len(h.produce_requests()) == 1


def test_unknown_leader_requests_a_metadata_update(make):
    h = make(leaders={TOPIC: [0, -1]})
    assert h.metadata.time_to_next_update(h.clock()) > 0
    h.append(1)
    h.run_once()
    assert h.produce_requests() == []
    assert TOPIC in h.metadata.topics_to_request(h.clock())
    h.sleep(100)
    assert h.metadata.time_to_next_update(h.clock()) == 0


def test_sending_a_batch_keeps_its_topic_from_going_idle(make):
    """send()'s C fast path does not mark the topic used; the sender does, per batch,
    so a topic in constant use is not forgotten after metadata.max.idle.ms."""
    h = make()
    h.metadata.metadata_max_idle_ms = 1000
    for _ in range(3):
        h.sleep(600)
        h.append()
        h.run_once()
        h.respond({TP0: 0})
        h.run_once()
    assert TOPIC in h.metadata.topics_to_request(h.clock())
    h.sleep(1000)  # then unused
    assert TOPIC not in h.metadata.topics_to_request(h.clock())


def test_poll_timeout_is_the_linger_left(make):
    h = make(linger_ms=50)
    h.append()
    h.run_once()
    assert h.client.polls[-1] == 50
    h.sleep(20)
    h.run_once()
    assert h.client.polls[-1] == 30
    h.sleep(30)
    h.run_once()
    assert len(h.produce_requests()) == 1


def test_poll_timeout_covers_the_delivery_timeout_of_queued_batches(make):
    """Java's RecordAccumulator.nextExpiryTimeMs: a batch that cannot be sent (no
    leader) still bounds the sender's sleep, so it expires on time."""
    h = make(leaders={TOPIC: [-1]})
    future = h.append()
    h.run_once()
    assert h.client.polls[-1] <= DELIVERY_TIMEOUT_MS
    h.sleep(DELIVERY_TIMEOUT_MS - 10)
    h.run_once()
    assert h.client.polls[-1] <= 10
    h.sleep(10)
    h.run_once()
    assert isinstance(future.exception(0), KafkaTimeoutError)


# ---- retriable errors --------------------------------------------------------------------

def test_not_leader_requests_metadata_and_retries(make):
    h = make(retry_backoff_ms=100)
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=NOT_LEADER)})
    h.run_once()
    assert not future.done()
    assert h.metadata.time_to_next_update(h.clock()) <= 100  # update requested
    h.run_once()
    assert len(h.produce_requests()) == 1  # still backing off
    h.sleep(100)
    h.run_once()
    requests = h.produce_requests()
    assert len(requests) == 2 and requests[1].partitions() == [TP0]
    assert requests[1].records() == requests[0].records()  # the same batch again
    h.respond({TP0: 3})
    h.run_once()
    assert future.result(0).offset == 3 and h.memory_all_returned()


def test_not_leader_with_the_new_leader_retries_to_it_at_once(make):
    """KIP-951, Java's testWhenProduceResponseReturnsWithALeaderShipChangeErrorAndNew
    LeaderInformation: the new leader a NOT_LEADER_OR_FOLLOWER answer names goes into
    the metadata at once, and the retry goes to it without the retry backoff."""
    from fastprod.protocol.messages.produce import (
        LeaderIdAndEpoch,
        NodeEndpoint,
        PartitionProduceResponse,
        ProduceResponse,
        TopicProduceResponse,
    )

    h = make(retry_backoff_ms=100, produce_version=10)
    future = h.append(0)
    h.run_once()
    h.client.respond(ProduceResponse(
        responses=[TopicProduceResponse(name=TOPIC, partition_responses=[
            PartitionProduceResponse(index=0, error_code=NOT_LEADER, base_offset=-1,
                                     current_leader=LeaderIdAndEpoch(2, 8))])],
        node_endpoints=[NodeEndpoint(2, "localhost", 9094)]))
    h.run_once()
    assert h.metadata.snapshot.topics[TOPIC][0].leader == 2
    h.run_once()
    retry = h.produce_requests()[-1]
    assert len(h.produce_requests()) == 2 and retry.node_id == 2
    assert not future.done()


def test_a_new_leader_hint_with_an_old_epoch_is_ignored(make):
    from fastprod.protocol.messages.produce import (
        LeaderIdAndEpoch,
        PartitionProduceResponse,
        ProduceResponse,
        TopicProduceResponse,
    )

    h = make(retry_backoff_ms=100, produce_version=10)
    h.append(0)
    h.run_once()
    h.client.respond(ProduceResponse(responses=[TopicProduceResponse(
        name=TOPIC, partition_responses=[PartitionProduceResponse(
            index=0, error_code=NOT_LEADER, base_offset=-1,
            current_leader=LeaderIdAndEpoch(1, 7))])]))  # epoch 7: what we know already
    h.run_once()
    assert h.metadata.snapshot.topics[TOPIC][0].leader == 0
    h.run_once()
    assert len(h.produce_requests()) == 1  # backing off: no retry yet


def test_a_retriable_error_that_is_not_about_metadata_does_not_refresh_it(make):
    h = make()
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=NOT_ENOUGH_REPLICAS)})
    h.run_once()
    assert not future.done()
    assert h.metadata.time_to_next_update(h.clock()) > 1000
    h.run_once()
    assert len(h.produce_requests()) == 2


def test_disconnect_retries_and_refreshes_metadata(make):
    h = make()
    futures = [h.append(0), h.append(1)]
    h.run_once()
    [request] = h.produce_requests()
    h.client.disconnect(0)
    h.run_once()
    assert not any(f.done() for f in futures)
    assert h.metadata.time_to_next_update(h.clock()) <= 100
    h.run_once()
    [_, retry] = h.produce_requests()
    assert sorted(retry.partitions()) == [TP0, TP1]
    h.respond({TP0: 1, TP1: 2})
    h.run_once()
    assert [f.result(0).offset for f in futures] == [1, 2]


def test_a_request_timeout_is_retried(make):
    h = make()
    future = h.append()
    h.run_once()
    h.client.fail(KafkaTimeoutError("request timed out"))
    h.run_once()
    h.run_once()
    assert len(h.produce_requests()) == 2 and not future.done()


def test_a_partition_missing_from_the_response_is_retried(make):
    h = make()
    futures = [h.append(0), h.append(1)]
    h.run_once()
    h.respond({TP0: 5})
    h.run_once()
    assert futures[0].result(0).offset == 5 and not futures[1].done()
    h.run_once()
    assert h.produce_requests()[-1].partitions() == [TP1]


def test_retries_0_means_no_retry(make):
    """Java's testCanRetryWithoutIdempotence, the other way round."""
    h = make(retries=0)
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=NOT_LEADER)})
    h.run_once()
    assert isinstance(future.exception(0), NotLeaderOrFollowerError)
    h.run_once()
    assert len(h.produce_requests()) == 1 and h.memory_all_returned()


def test_retries_stop_after_retries_attempts(make):
    """Java's testRetries: retries=1 allows one retry."""
    h = make(retries=1)
    future = h.append()
    h.run_once()
    h.client.disconnect(0)
    h.run_once()
    h.run_once()
    assert len(h.produce_requests()) == 2 and not future.done()
    h.client.disconnect(0)
    h.run_once()
    assert isinstance(future.exception(0), NetworkError)
    h.run_once()
    assert len(h.produce_requests()) == 2


def test_a_record_sent_while_its_partition_retries_is_not_lost(make):
    h = make()
    first = h.append(value=b"first")
    h.run_once()
    h.respond({TP0: PartitionResult(error=NOT_LEADER)})
    h.run_once()
    second = h.append(value=b"second")
    h.run_once()
    h.respond({TP0: 10})
    h.run_once()
    h.run_once()
    if h.in_flight():
        h.respond({TP0: 11})
        h.run_once()
    sent = [r.value for req in h.produce_requests()[1:]
            for r in read_batch(req.records()[TP0]).records]
    assert sent.count(b"second") == 1
    assert first.result(0).offset == 10 and second.result(0).offset == 11


# ---- errors that fail the batch ----------------------------------------------------------

def test_message_too_large_for_one_record_fails_with_record_too_large(make):
    h = make()
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=MESSAGE_TOO_LARGE)})
    h.run_once()
    assert isinstance(future.exception(0), RecordTooLargeError)
    assert h.memory_all_returned()
    h.run_once()
    assert len(h.produce_requests()) == 1


def _answer_parts(h, futures, first_offset=100):
    """Run the sender, answering each produce request with offsets 100, 200, ...;
    the values of each batch sent, in order."""
    sent = []
    for _ in range(20):
        h.run_once()
        for request in h.client.pending():
            sent.append([r.value for r in read_batch(request.records()[TP0]).records])
            h.respond({TP0: first_offset * len(sent)}, request)
        if all(f.done() for f in futures) and not h.in_flight():
            return sent
    raise AssertionError(f"not done after 20 rounds; sent {sent}")


@pytest.mark.parametrize("idempotent", [False, True])
def test_message_too_large_splits_a_batch_of_several_records(make, idempotent):
    """Java's Sender.completeBatch + splitAndReenqueue: a batch of several records the
    broker finds too large is split and the parts resent (not counted as a retry: this
    works with retries=0), each record with its own offset; with idempotence the parts
    carry the batch's sequence numbers."""
    h = make(retries=0, idempotent=idempotent)
    if idempotent:
        h.init_producer_id()
    futures = [h.append(value=b"v%d" % i) for i in range(4)]
    h.run_once()
    [first] = h.client.pending()
    h.respond({TP0: PartitionResult(error=MESSAGE_TOO_LARGE)}, first)
    h.run_once()
    assert not any(f.done() for f in futures)
    sent = _answer_parts(h, futures)
    # batch.size is larger than the batch: halves, so a lower broker limit converges
    assert sent == [[b"v0", b"v1"], [b"v2", b"v3"]]
    assert [f.result(0).offset for f in futures] == [100, 101, 200, 201]
    if idempotent:
        resent = h.produce_requests()[1:]
        assert [header(r)[2] for r in resent] == [0, 2]
    assert h.memory_all_returned() and not h.acc.has_incomplete()


def test_a_split_batch_whose_part_fails_fails_only_that_part(make):
    h = make(retries=0)
    futures = [h.append(value=b"v%d" % i) for i in range(4)]
    h.run_once()
    h.respond({TP0: PartitionResult(error=MESSAGE_TOO_LARGE)})
    h.run_once()  # the answer: split
    h.run_once()  # the first part out (one batch of a partition per request)
    h.respond({TP0: 7})
    h.run_once()  # the second part out, the first answered
    h.respond({TP0: PartitionResult(error=NOT_ENOUGH_REPLICAS)})
    h.run_once()
    assert [f.result(0).offset for f in futures[:2]] == [7, 8]
    assert all(isinstance(f.exception(0), NotEnoughReplicasError) for f in futures[2:])


def test_record_errors_fail_the_named_records(make):
    """Java's testRecordErrorPropagatedToApplication, for the records it names."""
    h = make()
    futures = [h.append() for _ in range(5)]
    h.run_once()
    h.respond({TP0: PartitionResult(error=INVALID_RECORD, base_offset=-1,
                                    record_errors=[(0, "0"), (2, "2"), (3, None)])})
    h.run_once()
    assert all(f.done() for f in futures)
    for i in (0, 2):
        error = futures[i].exception(0)
        assert isinstance(error, InvalidRecordError) and str(error) == str(i)
    assert isinstance(futures[3].exception(0), InvalidRecordError)
    assert str(futures[3].exception(0)) == InvalidRecordError.default_message
    for i in (1, 4):
        assert isinstance(futures[i].exception(0), KafkaError)
    h.run_once()
    assert len(h.produce_requests()) == 1 and h.memory_all_returned()


def test_records_not_named_in_record_errors_get_a_generic_error(make):
    h = make()
    futures = [h.append() for _ in range(3)]
    h.run_once()
    h.respond({TP0: PartitionResult(error=INVALID_RECORD, base_offset=-1,
                                    record_errors=[(0, "bad")])})
    h.run_once()
    assert isinstance(futures[0].exception(0), InvalidRecordError)
    assert type(futures[1].exception(0)) is KafkaError


def test_several_record_errors_are_invalid_record_errors(make):
    h = make()
    futures = [h.append() for _ in range(3)]
    h.run_once()
    h.respond({TP0: PartitionResult(error=INVALID_TIMESTAMP, base_offset=-1,
                                    record_errors=[(0, "too old"), (1, "too new")])})
    h.run_once()
    assert type(futures[0].exception(0)) is InvalidRecordError


def test_a_single_record_error_keeps_the_partition_error_class(make):
    h = make()
    futures = [h.append() for _ in range(2)]
    h.run_once()
    h.respond({TP0: PartitionResult(error=INVALID_TIMESTAMP, base_offset=-1,
                                    record_errors=[(1, "too old")])})
    h.run_once()
    error = futures[1].exception(0)
    assert isinstance(error, InvalidTimestampError) and str(error) == "too old"


def test_a_non_retriable_error_is_not_retried(make):
    h = make()
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=INVALID_RECORD, error_message="no nulls")})
    h.run_once()
    error = future.exception(0)
    assert isinstance(error, InvalidRecordError) and "no nulls" in str(error)


# ---- delivery.timeout.ms ------------------------------------------------------------------

def test_a_queued_batch_expires_after_delivery_timeout(make):
    h = make()
    h.client.not_ready.add(0)
    future = h.append()
    h.run_once()
    h.sleep(DELIVERY_TIMEOUT_MS - 1)
    h.run_once()
    assert not future.done()
    h.sleep(1)
    h.run_once()
    error = future.exception(0)
    assert isinstance(error, KafkaTimeoutError) and "delivery.timeout.ms" in str(error)
    assert h.memory_all_returned() and not h.acc.has_undrained()


def test_a_retry_storm_logs_once_per_partition_and_error_kind_per_period(make, caplog):
    h = make(retry_backoff_ms=1, delivery_timeout_ms=10**9)
    h.append(0)
    h.append(1)

    def fail_all(code, rounds):
        for _ in range(rounds):
            h.run_once()
            for request in h.client.pending():
                h.respond({tp: PartitionResult(error=code, base_offset=-1)
                           for tp in request.partitions()}, request)
            h.run_once()
            h.sleep(200)

    caplog.set_level("WARNING", logger="fastprod")
    fail_all(NOT_ENOUGH_REPLICAS, 20)  # 4 s
    fail_all(NOT_LEADER, 3)
    warnings = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(warnings) == 4, warnings  # 2 partitions x 2 error kinds
    caplog.clear()
    h.sleep(10_000)
    fail_all(NOT_ENOUGH_REPLICAS, 1)
    warnings = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(warnings) == 2
    assert all("19 more retries after NotEnoughReplicasError" in w for w in warnings)


@pytest.mark.parametrize("where", ["queued", "in flight"])
def test_an_expired_batch_names_the_broker_error_it_was_retried_for(make, where):
    """A batch that expires after retrying NOT_ENOUGH_REPLICAS says so (and has it as
    its cause), not only that delivery.timeout.ms passed."""
    h = make(retry_backoff_ms=100)
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=NOT_ENOUGH_REPLICAS, base_offset=-1)})
    h.run_once()
    h.sleep(100)
    h.run_once()  # the retry goes out
    assert h.in_flight() == 1
    if where == "queued":
        h.respond({TP0: PartitionResult(error=NOT_ENOUGH_REPLICAS, base_offset=-1)})
        h.run_once()
    h.sleep(DELIVERY_TIMEOUT_MS)
    h.run_once()
    error = future.exception(0)
    assert isinstance(error, KafkaTimeoutError) and "delivery.timeout.ms" in str(error)
    assert isinstance(error.__cause__, NotEnoughReplicasError)
    assert "NotEnoughReplicasError" in str(error)
    assert ("retried 2 time(s)" if where == "queued" else "retried 1 time(s)") in str(error)


def test_an_in_flight_batch_expires_and_its_late_answer_is_ignored(make):
    """Java's testInflightBatchesExpireOnDeliveryTimeout and testNoDoubleDeallocation."""
    h = make()
    future = h.append()
    h.run_once()
    h.sleep(DELIVERY_TIMEOUT_MS)
    h.run_once()
    assert isinstance(future.exception(0), KafkaTimeoutError)
    assert h.memory_all_returned()
    h.respond({TP0: 0})
    h.run_once()
    assert isinstance(future.exception(0), KafkaTimeoutError)
    assert h.memory_all_returned()


def test_an_expired_batch_is_not_retried(make):
    """Java's testExpiredBatchDoesNotRetry."""
    h = make()
    future = h.append()
    h.run_once()
    h.sleep(DELIVERY_TIMEOUT_MS)
    h.respond({TP0: PartitionResult(error=NOT_LEADER)})
    h.run_once()  # expires it, then gets the retriable answer
    assert isinstance(future.exception(0), KafkaTimeoutError)
    h.run_once()
    h.run_once()
    assert len(h.produce_requests()) == 1 and h.in_flight() == 0


def test_a_retry_past_delivery_timeout_fails_instead(make):
    h = make(delivery_timeout_ms=1000)
    future = h.append()
    h.run_once()
    h.sleep(999)
    h.respond({TP0: PartitionResult(error=NOT_LEADER)})
    h.clock.sleep(1)  # the answer comes at 1000 ms
    h.client.poll(0, h.clock())
    assert isinstance(future.exception(0), NotLeaderOrFollowerError)


def test_expired_batches_in_several_partitions(make):
    """Java's testExpiredBatchesInMultiplePartitions."""
    h = make()
    futures = [h.append(0), h.append(1)]
    h.run_once()
    h.sleep(DELIVERY_TIMEOUT_MS)
    h.respond({TP0: 0})
    h.run_once()
    assert all(isinstance(f.exception(0), KafkaTimeoutError) for f in futures)


# ---- ordering: max.in.flight.requests.per.connection=1 -----------------------------------

def test_max_in_flight_1_mutes_the_partition_while_in_flight(make):
    """Java's testSendInOrder."""
    h = make(max_in_flight=1)
    first = h.append(0)
    h.run_once()
    assert h.acc.ready(h.metadata.snapshot, h.clock()).ready_nodes == set()
    second = h.append(0)
    h.run_once()
    assert len(h.produce_requests()) == 1  # muted
    h.respond({TP0: 1})
    h.run_once()
    h.run_once()
    assert len(h.produce_requests()) == 2
    h.respond({TP0: 2})
    h.run_once()
    assert [first.result(0).offset, second.result(0).offset] == [1, 2]


def test_a_retry_with_max_in_flight_1_keeps_order(make):
    h = make(max_in_flight=1, leaders={TOPIC: [0, 1]})
    first = h.append(0, value=b"1")
    h.run_once()
    second = h.append(0, value=b"2")
    h.client.disconnect(0)
    h.run_once()
    h.run_once()
    requests = h.produce_requests()
    assert [r.value for r in read_batch(requests[1].records()[TP0]).records] == [b"1"]
    h.respond({TP0: 1})
    h.run_once()
    h.run_once()
    assert [r.value for r in read_batch(h.produce_requests()[2].records()[TP0]).records] \
        == [b"2"]
    assert first.result(0).offset == 1 and not second.done()


def test_without_ordering_requests_are_pipelined(make):
    h = make(max_in_flight=5)
    h.append(0)
    h.run_once()
    h.append(0)
    h.run_once()
    assert h.in_flight() == 2


def test_an_expired_in_flight_batch_keeps_its_partition_muted_until_answered(make):
    h = make(max_in_flight=1, leaders={TOPIC: [0, 1]})
    h.client.max_in_flight = 5  # e.g. the leader moved: another connection could take it
    first = h.append(0)
    h.run_once()
    h.sleep(DELIVERY_TIMEOUT_MS // 2)
    h.append(0)
    h.run_once()
    assert len(h.produce_requests()) == 1
    h.sleep(DELIVERY_TIMEOUT_MS // 2)
    h.run_once()  # the first batch expires
    assert isinstance(first.exception(0), KafkaTimeoutError)
    h.run_once()
    assert len(h.produce_requests()) == 1  # still muted: no answer yet
    h.respond({TP0: 0})
    h.run_once()
    h.run_once()
    assert len(h.produce_requests()) == 2


# ---- idempotence -------------------------------------------------------------------------

def one_record_batches(make, **kwargs):
    size = BatchBuilder(0, 1 << 20).append(0, 0, b"key", b"value")
    return make(idempotent=True, batch_size=RECORD_BATCH_OVERHEAD + size, **kwargs)


def test_no_produce_before_a_producer_id(make):
    h = make(idempotent=True)
    future = h.append()
    h.run_once()
    assert h.produce_requests() == []
    [init] = h.client.pending(INIT_PRODUCER_ID)
    assert init.message.transactional_id is None and init.message.producer_id == -1
    h.client.respond(init_producer_id_response(PID, 0), init, api_key=INIT_PRODUCER_ID)
    h.run_once()
    h.run_once()
    [request] = h.produce_requests()
    assert header(request) == (PID, 0, 0)
    h.respond({TP0: 0})
    h.run_once()
    assert future.result(0).offset == 0


def test_idempotence_with_multiple_in_flight_requests(make):
    """Java's testIdempotenceWithMultipleInflights, once the partition has
    acknowledged a batch of this producer."""
    h = one_record_batches(make)
    h.init_producer_id()
    h.acknowledge_first_batch()
    f1 = h.append()
    h.run_once()
    f2 = h.append()
    h.run_once()
    assert h.in_flight() == 2
    assert [sequences(r)[TP0] for r in h.produce_requests()[1:]] == [1, 2]
    h.respond({TP0: 1})
    h.run_once()
    assert f1.result(0).offset == 1 and not f2.done()
    h.respond({TP0: 2})
    h.run_once()
    assert f2.result(0).offset == 2 and h.in_flight() == 0


def test_a_fresh_partition_takes_one_batch_at_a_time_until_it_acknowledges_one(make):
    """A broker with no state for this producer on a partition takes any first
    sequence (KAFKA-15591): if the first batch fails retriably and the second gets
    through, the first is out of order for good. So the second waits for the first
    acknowledgement (Java sends both, and loses the first batch's records)."""
    h = one_record_batches(make, retry_backoff_ms=50)
    h.init_producer_id()
    f1 = h.append()
    h.run_once()
    f2 = h.append()
    h.run_once()
    assert h.in_flight() == 1  # f2's batch waits
    [r1] = h.client.pending()
    assert sequences(r1) == {TP0: 0}
    h.respond({TP0: PartitionResult(error=NOT_LEADER, base_offset=-1)}, r1)
    h.run_once()
    h.sleep(50)
    h.run_once()
    [retry] = h.client.pending()
    assert header(retry) == (PID, 0, 0)  # the retry goes first, still alone
    h.respond({TP0: 0}, retry)
    h.run_once()
    h.run_once()
    [r2] = h.client.pending()
    assert header(r2) == (PID, 0, 1)
    f3 = h.append()
    h.run_once()
    assert h.in_flight() == 2  # acknowledged once: pipelined from now on
    h.respond({TP0: 1})
    h.respond({TP0: 2})
    h.run_once()
    assert [f.result(0).offset for f in (f1, f2, f3)] == [0, 1, 2]


def test_other_partitions_do_not_wait_for_a_fresh_one(make):
    h = one_record_batches(make)
    h.init_producer_id()
    h.acknowledge_first_batch(partition=1)
    h.append(0)
    h.append(0)
    h.append(1)
    h.append(1)
    h.run_once()
    h.run_once()
    counts = {}
    for request in h.client.pending():
        for tp in request.partitions():
            counts[tp] = counts.get(tp, 0) + 1
    assert counts == {TP0: 1, TP1: 2}


def test_a_batch_overtaken_at_a_broker_without_our_state_is_resent_not_lost(make):
    """The broker lost its state for the producer (say producer.id.expiration.ms passed
    while idle), the oldest batch failed retriably and a later one was taken as the
    first sequence: no retry of the oldest can succeed. It is resent under a bumped
    epoch (after the batch that overtook it) instead of failing after
    delivery.timeout.ms as in Java."""
    h = one_record_batches(make, retry_backoff_ms=50)
    h.init_producer_id()
    h.acknowledge_first_batch()
    f1 = h.append()
    h.run_once()
    f2 = h.append()
    h.run_once()
    r1, r2 = h.client.pending()
    h.respond({TP0: PartitionResult(error=NOT_LEADER, base_offset=-1)}, r1)
    h.respond({TP0: 7}, r2)  # sequence 2 accepted as a first sequence
    h.run_once()
    assert f2.result(0).offset == 7
    h.sleep(50)
    h.run_once()
    [retry] = h.client.pending()
    assert header(retry) == (PID, 0, 1)
    h.respond({TP0: PartitionResult(error=OUT_OF_ORDER, base_offset=-1)}, retry)
    h.run_once()
    assert not f1.done() and not h.tm.has_producer_id()
    h.run_once()
    [bump] = h.client.pending(INIT_PRODUCER_ID)
    h.client.respond(init_producer_id_response(PID, 1), bump, api_key=INIT_PRODUCER_ID)
    h.run_once()
    h.sleep(100)
    h.run_once()
    [resent] = h.client.pending()
    assert header(resent) == (PID, 1, 0)
    h.respond({TP0: 8}, resent)
    h.run_once()
    assert f1.result(0).offset == 8


def test_idempotent_retries_go_one_at_a_time_in_order(make):
    """Java's testIdempotenceWithMultipleInflightsRetriedInOrder."""
    h = one_record_batches(make, retry_backoff_ms=50)
    h.init_producer_id()
    h.acknowledge_first_batch()
    futures = []
    for _ in range(3):
        futures.append(h.append())
        h.run_once()
    f1, f2, f3 = futures
    assert h.in_flight() == 3
    r1, r2, r3 = h.client.pending()
    h.respond({TP0: PartitionResult(error=LEADER_NOT_AVAILABLE, base_offset=-1)}, r1)
    h.run_once()
    f4 = h.append()  # queued behind the retries; must wait for the first three
    assert h.in_flight() == 2
    h.respond({TP0: PartitionResult(error=OUT_OF_ORDER, base_offset=-1)}, r2)
    h.run_once()
    h.respond({TP0: PartitionResult(error=OUT_OF_ORDER, base_offset=-1)}, r3)
    h.run_once()
    assert h.in_flight() == 0 and not any(f.done() for f in futures)
    assert h.tm.has_producer_id()  # r2, r3 only followed r1: no epoch bump
    h.sleep(50)
    h.run_once()   # resend r1's batch
    h.run_once()   # nothing more: one in flight while retrying
    assert h.in_flight() == 1
    assert sequences(h.client.pending()[0]) == {TP0: 1}
    for expected_sequence, future in ((1, f1), (2, f2), (3, f3)):
        [request] = h.client.pending()
        assert header(request) == (PID, 0, expected_sequence)
        h.respond({TP0: expected_sequence})
        h.run_once()  # answer; the next retry goes on the next run
        assert future.result(0).offset == expected_sequence
        h.run_once()
    [request] = h.client.pending()
    assert header(request) == (PID, 0, 4)  # the new batch, out of retry mode
    h.respond({TP0: 4})
    h.run_once()
    assert f4.result(0).offset == 4


def test_duplicate_sequence_is_success_without_an_offset(make):
    """Java's testCorrectHandlingOfDuplicateSequenceError."""
    h = one_record_batches(make)
    h.init_producer_id()
    h.acknowledge_first_batch()
    f1 = h.append()
    h.run_once()
    f2 = h.append()
    h.run_once()
    r1, r2 = h.client.pending()
    h.respond({TP0: 1000}, r2)
    h.run_once()
    assert f2.result(0).offset == 1000
    h.respond({TP0: PartitionResult(error=DUPLICATE_SEQUENCE, base_offset=-1)}, r1)
    h.run_once()
    assert f1.exception(0) is None and f1.result(0).offset == -1
    assert h.tm.has_producer_id() and h.in_flight() == 0
    h.append()
    h.run_once()
    assert header(h.produce_requests()[-1]) == (PID, 0, 3)


def test_out_of_order_sequence_bumps_the_epoch_and_retries(make):
    """Java's testEpochBumpOnOutOfOrderSequenceForNextBatch: OUT_OF_ORDER_SEQUENCE_NUMBER
    for the batch right after the last acknowledged one is a real gap: bump the epoch,
    restart at sequence 0, retry; the records are not failed."""
    h = make(idempotent=True, retry_backoff_ms=100)
    h.init_producer_id()
    f1 = [h.append(), h.append()]
    h.run_once()
    h.respond({TP0: 0})
    h.run_once()
    f2 = h.append()
    h.run_once()
    assert header(h.produce_requests()[-1]) == (PID, 0, 2)
    h.respond({TP0: PartitionResult(error=OUT_OF_ORDER, base_offset=-1)})
    h.run_once()
    assert not f2.done()
    assert not h.tm.has_producer_id()
    h.run_once()  # nothing in flight: the bump goes now
    [bump] = h.client.pending(INIT_PRODUCER_ID)
    assert (bump.message.producer_id, bump.message.producer_epoch) == (PID, 0)
    assert h.in_flight() == 0
    h.client.respond(init_producer_id_response(PID, 1), bump, api_key=INIT_PRODUCER_ID)
    h.run_once()
    h.sleep(100)
    h.run_once()
    assert header(h.produce_requests()[-1]) == (PID, 1, 0)
    h.respond({TP0: 2})
    h.run_once()
    assert [f.result(0).offset for f in f1] == [0, 1] and f2.result(0).offset == 2


def test_epoch_bump_waits_for_requests_in_flight(make):
    h = one_record_batches(make)
    h.init_producer_id()
    h.append(0)
    h.run_once()
    h.append(1)
    h.run_once()
    r0, r1 = h.produce_requests()
    h.respond({TP0: PartitionResult(error=OUT_OF_ORDER, base_offset=-1)}, r0)
    h.run_once()
    h.run_once()
    assert h.client.pending(INIT_PRODUCER_ID) == []  # r1 is still in flight
    h.respond({TP1: 0}, r1)
    h.run_once()
    h.run_once()
    assert len(h.client.pending(INIT_PRODUCER_ID)) == 1


def test_unknown_producer_id_is_retried_after_a_bump(make):
    h = make(idempotent=True)
    h.init_producer_id()
    future = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=UNKNOWN_PRODUCER_ID, base_offset=-1,
                                    log_start_offset=100)})
    h.run_once()
    assert not future.done() and not h.tm.has_producer_id()
    h.run_once()
    [bump] = h.client.pending(INIT_PRODUCER_ID)
    h.client.respond(init_producer_id_response(PID + 1, 0), bump, api_key=INIT_PRODUCER_ID)
    h.run_once()
    h.run_once()
    assert header(h.produce_requests()[-1]) == (PID + 1, 0, 0)


def test_a_batch_failed_after_it_was_sent_bumps_the_epoch(make):
    """Java's handleFailedBatch: an idempotent batch that fails for good after it was
    sent leaves a hole in the sequence; the epoch is bumped before the next send."""
    h = one_record_batches(make)
    h.init_producer_id()
    f1 = h.append()
    h.run_once()
    h.respond({TP0: PartitionResult(error=INVALID_RECORD, base_offset=-1)})
    h.run_once()
    assert isinstance(f1.exception(0), InvalidRecordError)
    assert not h.tm.has_producer_id()
    h.append()
    h.run_once()
    assert len(h.client.pending(INIT_PRODUCER_ID)) == 1
    assert len(h.produce_requests()) == 1


def test_expiry_of_a_retried_batch_does_not_bump_if_later_batches_succeed(make):
    h = one_record_batches(make)
    h.init_producer_id()
    h.acknowledge_first_batch()
    f1 = h.append()
    h.run_once()
    h.sleep(1000)
    f2 = h.append()
    h.run_once()
    r1, r2 = h.client.pending()
    h.respond({TP0: PartitionResult(error=REQUEST_TIMED_OUT, base_offset=-1)}, r1)
    h.client.not_ready.add(0)
    h.run_once()
    h.sleep(600)
    h.run_once()  # the first batch expires in the queue
    assert isinstance(f1.exception(0), KafkaTimeoutError)
    f3 = h.append()
    h.respond({TP0: 2}, r2)
    h.run_once()
    assert f2.result(0).offset == 2
    h.client.not_ready.clear()
    h.run_once()
    h.run_once()
    assert h.client.pending(INIT_PRODUCER_ID) == []
    assert header(h.produce_requests()[-1]) == (PID, 0, 3)
    assert not f3.done()


def test_a_late_sequence_error_for_an_expired_batch_does_not_bump_again(make):
    h = one_record_batches(make)
    h.init_producer_id()
    f1 = h.append()
    h.run_once()
    [old] = h.produce_requests()
    h.sleep(DELIVERY_TIMEOUT_MS)
    h.run_once()  # expires the in-flight batch: its sequence is lost, bump
    assert isinstance(f1.exception(0), KafkaTimeoutError)
    h.run_once()
    [bump] = h.client.pending(INIT_PRODUCER_ID)
    h.client.respond(init_producer_id_response(PID + 1, 0), bump, api_key=INIT_PRODUCER_ID)
    h.run_once()
    assert h.tm.has_producer_id()
    h.respond({TP0: PartitionResult(error=OUT_OF_ORDER, base_offset=-1)}, old)
    h.run_once()
    assert isinstance(f1.exception(0), KafkaTimeoutError)
    assert h.tm.has_producer_id()


# ---- close ---------------------------------------------------------------------------------

def test_graceful_close_sends_what_is_queued(make):
    h = make(linger_ms=10_000)
    futures = [h.append(0), h.append(2)]
    h.client.on_send = lambda request: h.client.respond_produce(
        {tp: 7 for tp in request.partitions()}, request)
    h.sender.initiate_close()
    h.sender.run()
    assert [f.result(0).offset for f in futures] == [7, 7]
    assert h.client.closed and h.memory_all_returned()
    with pytest.raises(ProducerClosedError):
        h.append(0)


def test_force_close_fails_everything_pending(make):
    h = make()
    in_flight = h.append(0)
    h.run_once()
    queued = h.append(2)
    h.client.not_ready.add(1)
    h.run_once()
    h.sender.force_close()
    h.sender.run()
    for future in (in_flight, queued):
        assert isinstance(future.exception(0), ProducerClosedError)
    assert h.client.closed and h.memory_all_returned()
