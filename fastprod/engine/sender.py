"""Sender: the background loop that turns ready batches into Produce requests.

Java's Sender, reduced to what a producer without transactions needs (idempotence and
transactions hook in through ``transaction_manager`` later). ``run_once`` is the
straight sequence ready -> connect -> drain -> expire -> send, then one network poll;
responses come back through ``_handle_produce_response`` inside that poll.

Threads: everything here runs on the sender thread, except ``wakeup`` and
``initiate_close``/``force_close``, which only set flags and wake the poll.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from fastprod.clock import Clock, monotonic_ms
from fastprod.engine.accumulator import RecordAccumulator
from fastprod.engine.batch import ProducerBatch, split_batch
from fastprod.engine.producer_metrics import ProducerMetrics
from fastprod.engine.seams import ClusterView, ProducerNetwork
from fastprod.engine.transaction_manager import TxnState
from fastprod.engine.transactions import PRODUCE_MAX_VERSION_V1, Outcome
from fastprod.errors import (
    DuplicateSequenceError,
    FencedLeaderEpochError,
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    NetworkError,
    NotLeaderOrFollowerError,
    OutOfOrderSequenceError,
    ProducerClosedError,
    RecordTooLargeError,
    UnknownProducerIdError,
    UnsupportedVersionError,
    error_for_code,
)
from fastprod.kernels import RECORD_BATCH_OVERHEAD
from fastprod.protocol.messages.init_producer_id import InitProducerIdRequest
from fastprod.protocol.messages.produce import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)

log = logging.getLogger("fastprod.sender")

PRODUCE_KEY = ProduceRequest.API_KEY
INIT_PRODUCER_ID_KEY = InitProducerIdRequest.API_KEY
_DUPLICATE_SEQUENCE_NUMBER = DuplicateSequenceError.code
_MESSAGE_TOO_LARGE = RecordTooLargeError.code  # MESSAGE_TOO_LARGE
_SEQUENCE_ERRORS = {OutOfOrderSequenceError.code, UnknownProducerIdError.code}
# may name the new leader (KIP-951)
_LEADER_MOVED = {NotLeaderOrFollowerError.code, FencedLeaderEpochError.code}
_TOPIC_ID_VERSION = 13  # Produce v13+ names topics by id (KIP-516)
_ZSTD_MIN_VERSION = 7


class Sender:
    def __init__(self, client: ProducerNetwork, metadata: ClusterView,
                 accumulator: RecordAccumulator, *, acks: int, retries: int,
                 max_request_size: int, request_timeout_ms: int, delivery_timeout_ms: int,
                 guarantee_message_order: bool, transaction_manager=None,
                 transactional_id: str | None = None, clock: Clock = monotonic_ms,
                 metrics: ProducerMetrics | None = None) -> None:
        self.clock = clock  # read once per loop and when an answer arrives
        self.metrics = metrics  # recorded per request and per batch, never per record
        self.client = client
        self.metadata = metadata
        self.accumulator = accumulator
        self.acks = acks
        self.retries = retries
        self.max_request_size = max_request_size
        self.request_timeout_ms = request_timeout_ms
        self.delivery_timeout_ms = delivery_timeout_ms
        self.guarantee_message_order = guarantee_message_order
        self.transactional_id = transactional_id
        self.transaction_manager = transaction_manager
        self._flushing_for_txn = False
        self._in_flight: dict[tuple[str, int], list[ProducerBatch]] = defaultdict(list)
        self._retry_log = RetryLog()
        self.running = True
        self._forced = False
        self.fatal_error: BaseException | None = None

    # ---- other threads --------------------------------------------------------------

    def wakeup(self) -> None:
        self.client.wakeup()

    def initiate_close(self) -> None:
        """Stop taking new work once what is queued and in flight is done."""
        self.accumulator.close()
        self.running = False
        self.wakeup()

    def force_close(self) -> None:
        """Stop now: every incomplete batch fails."""
        self._forced = True
        self.initiate_close()

    # ---- the loop -------------------------------------------------------------------

    def run(self) -> None:
        log.debug("sender thread started")
        while self.running:
            self._run_once_safely()
        # Graceful close: deliver what was accepted before close() (Java does the same).
        while not self._forced and (self.accumulator.has_undrained() or
                                    self.client.in_flight_count() > 0):
            self._run_once_safely()
        if self._forced or self.accumulator.has_incomplete():
            error = ProducerClosedError("the producer was closed before the record was sent")
            self.accumulator.abort_undrained_batches(error)
            for batch in self.accumulator.incomplete_batches():
                self._fail_batch(batch, error)
        if self.transaction_manager is not None:
            self.transaction_manager.close(ProducerClosedError("the producer was closed"))
        self.client.close()
        self.metadata.close()
        self.accumulator.pool.close()
        log.debug("sender thread stopped")

    def _run_once_safely(self) -> None:
        try:
            self.run_once(self.clock())
        except Exception:  # the thread must survive anything a response can cause
            log.exception("unexpected error in the fastprod sender thread")

    def run_once(self, now_ms: int) -> None:
        tm = self.transaction_manager
        if tm is not None:
            if tm.is_transactional:
                if self._maybe_send_transactional_request(now_ms):
                    return
            elif tm.fatal_error is not None:
                self.accumulator.abort_undrained_batches(tm.fatal_error)
            elif tm.needs_init(now_ms, sum(len(b) for b in self._in_flight.values())):
                self._send_init_producer_id(now_ms)
        poll_timeout_ms = self.send_producer_data(now_ms)
        if tm is not None:
            if not tm.has_producer_id():
                poll_timeout_ms = min(poll_timeout_ms, tm.retry_backoff_ms)
            if tm.is_transactional:  # wake up for a coordinator retry when it is due
                poll_timeout_ms = min(poll_timeout_ms, max(tm.next_request_delay_ms(now_ms), 1))
        self.client.poll(poll_timeout_ms, now_ms)

    def _maybe_send_transactional_request(self, now_ms: int) -> bool:
        """Java's maybeSendAndPollTransactionalRequest: True when this round was spent
        on the transaction coordinator (a request went out, or one is awaited)."""
        tm = self.transaction_manager
        backoff_ms = tm.retry_backoff_ms
        if tm.state is TxnState.FATAL_ERROR:
            self.accumulator.abort_undrained_batches(tm.last_error)
            self.client.poll(backoff_ms, now_ms)
            return True
        if tm.is_aborting() and self.accumulator.has_incomplete():
            self.accumulator.abort_undrained_batches(tm.abort_error())
        # Commit and abort first flush: every batch goes out (or fails) before EndTxn.
        if tm.is_completing() != self._flushing_for_txn:
            self._flushing_for_txn = not self._flushing_for_txn
            (self.accumulator.begin_flush if self._flushing_for_txn
             else self.accumulator.end_flush)()
        if tm._in_flight_request is not None:
            self.client.poll(backoff_ms, now_ms)
            return True
        request = tm.next_request(self.accumulator.has_incomplete(), now_ms)
        if request is None:
            return False
        node = (tm.coordinator(request.coordinator) if request.coordinator is not None
                else self.client.least_loaded_node(now_ms))
        if node is None or not self.client.ready(node, now_ms):
            # Connecting (or nobody to ask yet): put it back and come again. A
            # coordinator we cannot reach may have moved: look it up again (Java's
            # maybeFindCoordinatorAndRetry).
            lost = (node is not None and request.coordinator is not None and
                    self.client.is_connection_failed(node.node_id))
            tm.request_done(request, Outcome.LOOKUP if lost else Outcome.RETRY, now_ms)
            self.client.poll(backoff_ms, now_ms)
            return True
        broker_version = self.client.api_version(node.node_id, request.api_key)
        if broker_version is None:
            request.fail(UnsupportedVersionError(
                f"node {node.node_id} does not support api key {request.api_key}"))
            tm.request_done(request, Outcome.DONE, now_ms)
            return True
        version = min(broker_version, request.max_version)

        def on_response(response, error) -> None:
            if error is not None:
                outcome = Outcome.LOOKUP if request.coordinator is not None else Outcome.RETRY
            else:
                outcome = request.handle(response)
            tm.request_done(request, outcome, self.clock())

        self.client.send(node.node_id, request.api_key, request.build(version), on_response,
                         now_ms, version=version)
        self.client.poll(backoff_ms, now_ms)
        return True

    def _send_init_producer_id(self, now_ms: int) -> None:
        node = self.client.least_loaded_node(now_ms)
        if node is None or not self.client.ready(node, now_ms):
            return  # connecting; poll and come back
        tm = self.transaction_manager
        self.client.send(node.node_id, INIT_PRODUCER_ID_KEY, tm.init_request(),
                         lambda response, error: tm.handle_init_response(
                             response, error, self.clock()), now_ms)

    def send_producer_data(self, now_ms: int) -> int:
        """Send what is ready; returns how long the poll may sleep."""
        snapshot = self.metadata.snapshot
        result = self.accumulator.ready(snapshot, now_ms)
        if result.unknown_leader_topics:
            for topic in result.unknown_leader_topics:
                self.metadata.add_topic(topic, now_ms)
            self.metadata.request_update()
        ready_nodes = set()
        not_ready_timeout_ms = 2**31 - 1
        for node_id in result.ready_nodes:
            node = snapshot.nodes.get(node_id)
            can_drain = node is not None and self.client.ready(node, now_ms)
            self.accumulator.update_node_latency_stats(node_id, now_ms, can_drain)
            if can_drain:
                ready_nodes.add(node_id)
            else:
                not_ready_timeout_ms = min(not_ready_timeout_ms,
                                           max(self.client.connection_delay(node_id, now_ms), 1))
        batches = self.accumulator.drain(snapshot, ready_nodes, self.max_request_size, now_ms)
        for node_batches in batches.values():
            for batch in node_batches:
                # In use: send()'s C fast path does not mark it (Java's waitOnMetadata
                # does on every send), so keep metadata.max.idle.ms from forgetting it.
                self.metadata.touch(batch.topic, now_ms)
                tp = (batch.topic, batch.partition)
                self._in_flight[tp].append(batch)
                if self.guarantee_message_order:
                    self.accumulator.mute(tp)
        self._expire(now_ms)
        for node_id, node_batches in batches.items():
            self._send_produce_request(node_id, node_batches, now_ms)
        poll_timeout_ms = min(result.next_ready_check_delay_ms, not_ready_timeout_ms,
                              self._next_expiry_ms(now_ms))
        if batches and self.accumulator.has_undrained():
            poll_timeout_ms = 0  # more to send as soon as the requests are out
        return max(poll_timeout_ms, 0)

    # ---- expiry ---------------------------------------------------------------------

    def _expire(self, now_ms: int) -> None:
        queued = self.accumulator.expired_batches(now_ms)
        expired = list(queued)
        for tp, batches in list(self._in_flight.items()):
            for batch in list(batches):
                if batch.has_reached_delivery_timeout(self.delivery_timeout_ms, now_ms):
                    expired.append(batch)
        in_flight_expired = {id(b) for b in expired[len(queued):]}
        for batch in expired:
            self._fail_batch(batch, _expiry_error(batch, now_ms, self.delivery_timeout_ms),
                             # its request is still on the wire: stay muted until answered
                             unmute=id(batch) not in in_flight_expired)

    def _next_expiry_ms(self, now_ms: int) -> int:
        """Until the next batch, queued (as of _expire) or in flight, expires."""
        soonest = min(2**31 - 1, self.accumulator.next_expiry_ms - now_ms)
        for batches in self._in_flight.values():
            for batch in batches:
                soonest = min(soonest, batch.created_ms + self.delivery_timeout_ms - now_ms)
        return soonest

    # ---- requests and responses -----------------------------------------------------

    def _send_produce_request(self, node_id: int, batches: list[ProducerBatch],
                              now_ms: int) -> None:
        version = self.client.api_version(node_id, PRODUCE_KEY)
        if version is not None and self.transactional_id is not None:
            version = min(version, PRODUCE_MAX_VERSION_V1)
        needs = _ZSTD_MIN_VERSION if self.accumulator.compression_type == 4 else 3
        if version is None or version < needs:
            error = UnsupportedVersionError(
                f"node {node_id} does not support Produce v{needs} or newer")
            for batch in batches:
                self._fail_batch(batch, error)
            return
        snapshot = self.metadata.snapshot
        by_topic: dict[str, list[PartitionProduceData]] = defaultdict(list)
        by_tp: dict[tuple[str, int], ProducerBatch] = {}
        for batch in batches:
            by_topic[batch.topic].append(PartitionProduceData(batch.partition, batch.records()))
            by_tp[(batch.topic, batch.partition)] = batch
        topic_data = []
        for topic, partitions in by_topic.items():
            if version >= _TOPIC_ID_VERSION:
                topic_data.append(TopicProduceData(
                    topic_id=snapshot.topic_ids[topic], partition_data=partitions))
            else:
                topic_data.append(TopicProduceData(name=topic, partition_data=partitions))
        request = ProduceRequest(transactional_id=self.transactional_id, acks=self.acks,
                                 timeout_ms=self.request_timeout_ms, topic_data=topic_data)
        ids = {snapshot.topic_ids.get(t): t for t in by_topic} if version >= _TOPIC_ID_VERSION \
            else None

        metrics = self.metrics
        if metrics is not None:
            metrics.record_request(by_tp.values(), now_ms)

        def on_response(response, error) -> None:
            if metrics is not None:
                metrics.record_answer(node_id, self.clock() - now_ms, None if response is None
                                      else response.throttle_time_ms)
            self._handle_produce_response(node_id, by_tp, ids, response, error)

        self.client.send(node_id, PRODUCE_KEY, request, on_response, now_ms,
                         expect_response=self.acks != 0, version=version)

    def _handle_produce_response(self, node_id: int, by_tp, ids, response, error) -> None:
        now_ms = self.clock()
        if error is not None:
            log.debug("produce request to node %d failed: %s", node_id, error)
            for batch in by_tp.values():
                self._complete_batch(batch, error, -1, -1, None, now_ms)
            return
        if response is None:  # acks=0: written, and that is all we will ever know
            for batch in by_tp.values():
                self._complete_batch(batch, None, -1, -1, None, now_ms)
            return
        new_leaders = {}
        for topic_response in response.responses:
            topic = topic_response.name if ids is None else ids.get(topic_response.topic_id)
            for pr in topic_response.partition_responses:
                if pr.error_code in _LEADER_MOVED:
                    leader = pr.current_leader  # KIP-951 (Produce v10+)
                    if leader.leader_id >= 0 and leader.leader_epoch >= 0:
                        new_leaders[(topic, pr.index)] = (leader.leader_id,
                                                          leader.leader_epoch)
                batch = by_tp.pop((topic, pr.index), None)
                if batch is None:
                    log.warning("produce response from node %d for %s-%d that was not asked",
                                node_id, topic, pr.index)
                    continue
                error = None
                if pr.error_code:
                    error = error_for_code(pr.error_code, pr.error_message)
                record_errors = None
                if pr.record_errors:
                    record_errors = _record_errors(pr)
                    # Java: the records the broker did not name fail with a plain error.
                    error = KafkaError(
                        "failed to append record because it was part of a batch which had "
                        "one or more invalid records")
                self._complete_batch(batch, error, pr.base_offset, pr.log_append_time_ms,
                                     record_errors, now_ms)
        if new_leaders:
            # Retried to the new leader without waiting for a metadata refresh, and
            # without the retry backoff (the batch sees the newer leader epoch).
            self.metadata.update_leadership(new_leaders, response.node_endpoints)
        for batch in by_tp.values():  # the broker skipped a partition: treat as retriable
            self._complete_batch(batch, NetworkError(
                f"node {node_id} sent no response for {batch.topic}-{batch.partition}"),
                -1, -1, None, now_ms)

    def _complete_batch(self, batch: ProducerBatch, error: BaseException | None,
                        base_offset: int, log_append_time: int, record_errors,
                        now_ms: int) -> None:
        tm = self.transaction_manager
        code = getattr(error, "code", None)
        if code == _DUPLICATE_SEQUENCE_NUMBER and tm is not None:
            error = None  # the broker has it already (an earlier attempt got through)
        if error is None:
            self._finish(batch)
            if tm is not None:
                tm.on_acknowledged(batch)
            if batch.complete(base_offset, log_append_time):
                self.accumulator.deallocate(batch)
            return
        if code == _MESSAGE_TOO_LARGE and batch.record_count > 1 and not batch.is_done():
            self._split(batch)  # not counted as a retry, as in Java
            return
        if tm is not None and code in _SEQUENCE_ERRORS and not batch.is_done():
            tm.on_sequence_error(batch, error)
        if isinstance(error, KafkaError) and error.invalid_metadata or \
                isinstance(error, NetworkError):
            self.metadata.request_update()
        if record_errors is None and self._can_retry(batch, error, now_ms):
            self._retry_log.retrying(batch, error, now_ms)
            if self.metrics is not None:
                self.metrics.record_retries(batch.topic, batch.record_count, now_ms)
            batch.last_error = error
            self._finish(batch)
            self.accumulator.reenqueue(batch, now_ms)
            return
        if isinstance(error, RecordTooLargeError) or code == _MESSAGE_TOO_LARGE:
            error = RecordTooLargeError(
                f"the batch for {batch.topic}-{batch.partition} ({len(batch.records())} bytes, "
                f"{batch.record_count} records) is larger than the broker accepts: {error}")
        # An error answer: the broker did not write it (nor anything sent after it).
        self._fail_batch(batch, error, record_errors, rejected=True)

    def _split(self, batch: ProducerBatch) -> None:
        """Java's splitAndReenqueue: resend the records in batches of batch.size, or of
        half the batch if that is smaller (Java would resend a batch under batch.size
        whole, again and again, when the broker's limit is below batch.size): every
        split makes at least two parts, so repeated splits end in batches the broker
        takes, or in single records that fail as too large."""
        written = batch.builder.size_in_bytes - RECORD_BATCH_OVERHEAD  # records only
        factor = 1.0 if not self.accumulator.compression_type else 1.05  # as the parts
        size = min(self.accumulator.batch_size,
                   RECORD_BATCH_OVERHEAD + int(written * factor / 2))
        parts = split_batch(batch, size)
        log.warning("%s-%d: a batch of %d records (%d bytes) was too large for the broker; "
                    "resending it as %d batches", batch.topic, batch.partition,
                    batch.record_count, len(batch.records()), len(parts))
        self._finish(batch)
        if self.metrics is not None:
            self.metrics.splits.record(1, self.clock())
        if self.transaction_manager is not None:
            self.transaction_manager.on_split(batch, parts)
        self.accumulator.reenqueue_split(batch, parts)

    def _can_retry(self, batch: ProducerBatch, error: BaseException, now_ms: int) -> bool:
        retriable = isinstance(error, NetworkError) or getattr(error, "retriable", False)
        if self.transaction_manager is not None and \
                getattr(error, "code", None) in _SEQUENCE_ERRORS:
            # Java's TransactionManager.canRetry: the idempotent producer retries every
            # sequence error (after an epoch bump when the gap is real).
            retriable = True
        return (retriable and not batch.is_done() and batch.attempts < self.retries and
                not batch.has_reached_delivery_timeout(self.delivery_timeout_ms, now_ms))

    def _fail_batch(self, batch: ProducerBatch, error: BaseException,
                    record_errors=None, unmute: bool = True, rejected: bool = False) -> None:
        self._finish(batch, unmute)
        if self.transaction_manager is not None:
            # Timeouts and lost connections leave it unknown whether it was written.
            rejected = rejected and not isinstance(error, (NetworkError, KafkaTimeoutError))
            self.transaction_manager.on_failed(batch, error, rejected)
        if batch.complete(-1, -1, error, record_errors):
            if self.metrics is not None:
                self.metrics.record_errors(batch.topic, batch.record_count, self.clock())
            self.accumulator.deallocate(batch)

    def _finish(self, batch: ProducerBatch, unmute: bool = True) -> None:
        """The batch is no longer in flight (answered, expired or failed)."""
        tp = (batch.topic, batch.partition)
        batches = self._in_flight.get(tp)
        if batches is not None and batch in batches:
            batches.remove(batch)
            if not batches:
                del self._in_flight[tp]
        if self.guarantee_message_order and unmute:
            self.accumulator.unmute(tp)


class RetryLog:
    """A retry storm logs one WARNING per partition and error kind per period, with a
    count of the retries it did not log (each one is logged at DEBUG)."""

    def __init__(self, period_ms: int = 10_000) -> None:
        self.period_ms = period_ms
        self._last: dict[tuple[str, int, str], list[int]] = {}  # -> [logged at, held back]

    def retrying(self, batch: ProducerBatch, error: BaseException, now_ms: int) -> None:
        key = (batch.topic, batch.partition, type(error).__name__)
        entry = self._last.get(key)
        if entry is not None and now_ms - entry[0] < self.period_ms:
            entry[1] += 1
            log.debug("retrying %s-%d (attempt %d) after %s", batch.topic, batch.partition,
                      batch.attempts + 1, error)
            return
        held_back = 0 if entry is None else entry[1]
        if len(self._last) > 1000:  # forget partitions that have been quiet a while
            self._last = {k: v for k, v in self._last.items()
                          if now_ms - v[0] < self.period_ms}
        self._last[key] = [now_ms, 0]
        log.warning("retrying %s-%d (attempt %d) after %s%s", batch.topic, batch.partition,
                    batch.attempts + 1, error,
                    f" ({held_back} more retries after {type(error).__name__} in the last "
                    f"{self.period_ms // 1000} s not logged)" if held_back else "")


def _expiry_error(batch: ProducerBatch, now_ms: int,
                  delivery_timeout_ms: int) -> KafkaTimeoutError:
    """The error of a batch past delivery.timeout.ms; it names, and has as its cause,
    the error its last retry was for (the reason it was not written in time)."""
    message = (f"expiring {batch.record_count} record(s) for {batch.topic}-"
               f"{batch.partition}: {now_ms - batch.created_ms} ms has passed since batch "
               f"creation (delivery.timeout.ms={delivery_timeout_ms})")
    cause = batch.last_error
    if cause is not None:
        message += (f"; retried {batch.attempts} time(s), last after "
                    f"{type(cause).__name__}: {cause}")
    error = KafkaTimeoutError(message)
    error.__cause__ = cause
    return error


def _record_errors(pr) -> dict[int, BaseException]:
    """KIP-467 per-record errors. Java uses the partition's error class only when one
    record is named; with several it cannot tell them apart: InvalidRecordError each."""
    if len(pr.record_errors) == 1:
        e = pr.record_errors[0]
        return {e.batch_index: error_for_code(pr.error_code, e.batch_index_error_message
                                              or pr.error_message)}
    return {e.batch_index: InvalidRecordError(e.batch_index_error_message or pr.error_message)
            for e in pr.record_errors}
