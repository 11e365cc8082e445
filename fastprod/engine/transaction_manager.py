"""TransactionManager: producer id, epoch, sequence numbers, and transactions.

Java's TransactionManager. Idempotence: with enable.idempotence the broker keeps the last five batches of each (producer id,
partition) and drops a batch whose sequence it has already written, so retries cannot
duplicate. The rules that keep that promise:

- no batch leaves before InitProducerId gave us an id and epoch;
- sequences are assigned in ``drain`` (under the accumulator's lock), in queue order,
  and a retried batch keeps its sequence;
- a retried batch goes out only when it is the oldest unacknowledged one of its
  partition, so a retry never overtakes the batch before it;
- when a sequence is lost for good (a batch failed or expired after it was sent, or
  the broker reports a gap), the epoch is bumped (KIP-360): wait until nothing is in
  flight, ask InitProducerId again with the current id and epoch, restart every
  partition at sequence 0; queued batches are stamped again as they drain.

Transactions (transactional.id): the state machine below (Java's State and
isTransitionValid) moves on user calls (init, begin, commit, abort, send offsets) and
on coordinator answers; the coordinator requests themselves are in
fastprod/engine/transactions.py and go out one at a time from the sender thread
(``next_request``). A partition is added to the transaction (AddPartitionsToTxn) before
its first batch may drain. A batch that fails inside a transaction puts it in
ABORTABLE_ERROR: nothing more is sent and commit raises, until the user aborts.

Threads: sequences and in-flight batches belong to the sender thread (drain runs on
it too); the transaction state is also changed by user threads, under ``_lock``.
"""

from __future__ import annotations

import bisect
import enum
import logging
import threading

from fastprod.cluster.snapshot import Node
from fastprod.engine.batch import ProducerBatch
from fastprod.engine.transactions import (
    AddOffsets,
    AddPartitions,
    ConsumerGroupMetadata,
    CoordinatorType,
    EndTxn,
    FindCoordinator,
    InitProducerId,
    Outcome,
    TransactionalRequestResult,
    TxnRequest,
    is_fatal,
)
from fastprod.errors import (
    IllegalStateError,
    InvalidProducerEpochError,
    ProducerFencedError,
    KafkaError,
    TransactionAbortedError,
    error_for_code,
)
from fastprod.protocol.messages.init_producer_id import InitProducerIdRequest

log = logging.getLogger("fastprod.transactions")

TP = tuple[str, int]
_SEQUENCE_MODULUS = 2**31


class TxnState(enum.Enum):
    UNINITIALIZED = "UNINITIALIZED"
    INITIALIZING = "INITIALIZING"
    READY = "READY"
    IN_TRANSACTION = "IN_TRANSACTION"
    COMMITTING_TRANSACTION = "COMMITTING_TRANSACTION"
    ABORTING_TRANSACTION = "ABORTING_TRANSACTION"
    ABORTABLE_ERROR = "ABORTABLE_ERROR"
    FATAL_ERROR = "FATAL_ERROR"


S = TxnState
# target -> the states it may be entered from (Java's isTransitionValid)
_VALID_SOURCES = {
    S.UNINITIALIZED: {S.UNINITIALIZED},
    S.INITIALIZING: {S.UNINITIALIZED, S.ABORTING_TRANSACTION},
    S.READY: {S.INITIALIZING, S.COMMITTING_TRANSACTION, S.ABORTING_TRANSACTION},
    S.IN_TRANSACTION: {S.READY},
    S.COMMITTING_TRANSACTION: {S.IN_TRANSACTION},
    S.ABORTING_TRANSACTION: {S.IN_TRANSACTION, S.ABORTABLE_ERROR},
    S.ABORTABLE_ERROR: {S.IN_TRANSACTION, S.COMMITTING_TRANSACTION, S.ABORTABLE_ERROR,
                        S.INITIALIZING},
    S.FATAL_ERROR: set(S),
}


class TransactionManager:
    def __init__(self, *, transaction_timeout_ms: int, retry_backoff_ms: int,
                 transactional_id: str | None = None) -> None:
        self.transactional_id = transactional_id
        self.transaction_timeout_ms = transaction_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.producer_id = -1
        self.producer_epoch = -1
        self.fatal_error: BaseException | None = None
        self._epoch_bump_required = False
        self._init_in_flight = False
        self._next_init_ms = 0
        self._next_sequence: dict[TP, int] = {}
        self._last_acked: dict[TP, int] = {}
        # stamped batches not yet completed, by sequence (after a bump, a partition's
        # may still carry the old epoch: see _after_bump)
        self._in_flight: dict[TP, list[ProducerBatch]] = {}
        self._rewrite: set[TP] = set()  # partitions renumbered by the next bump
        self._stale: set[TP] = set()  # partitions with batches of the old epoch left
        # partition -> (last sequence of a failed batch, why): written or not is unknown
        self._unresolved: dict[TP, tuple[int, str]] = {}
        # transactions
        self._lock = threading.Lock()
        self.state = TxnState.UNINITIALIZED
        self.last_error: BaseException | None = None
        # pending coordinator requests, by priority (stable within one priority)
        self._queue: list[TxnRequest] = []
        self._in_flight_request: TxnRequest | None = None
        self._next_request_ms = 0
        self._coordinators: dict[CoordinatorType, Node] = {}
        self._new_partitions: set[TP] = set()
        self._pending_partitions: set[TP] = set()
        # Read-only outside this class: the C send path (SendFastPath) reads it once per
        # record of a transaction, where a method call would cost more than the append.
        self.partitions_in_txn: set[TP] = set()
        self._transaction_started = False
        self._txn_epoch_bump_required = False

    @property
    def is_transactional(self) -> bool:
        return self.transactional_id is not None

    # ---- producer id ----------------------------------------------------------------

    def has_producer_id(self) -> bool:
        return self.producer_id >= 0 and not self._epoch_bump_required

    def needs_init(self, now_ms: int, requests_in_flight: int) -> bool:
        """Whether to send InitProducerId now. A bump waits until no produce request
        of the old epoch is on the wire."""
        if (self.is_transactional or self._init_in_flight or self.fatal_error is not None
                or now_ms < self._next_init_ms):
            return False
        if self.producer_id < 0:
            return True
        return self._epoch_bump_required and requests_in_flight == 0

    def init_request(self) -> InitProducerIdRequest:
        self._init_in_flight = True
        return InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=self.transaction_timeout_ms,
            producer_id=self.producer_id, producer_epoch=self.producer_epoch)

    def handle_init_response(self, response, error: BaseException | None,
                             now_ms: int) -> None:
        self._init_in_flight = False
        if error is None and response.error_code:
            error = error_for_code(response.error_code)
        if error is not None:
            if isinstance(error, KafkaError) and not error.retriable and \
                    not getattr(error, "invalid_metadata", False):
                log.error("InitProducerId failed: %s", error)
                self.fatal_error = error
            else:
                log.info("InitProducerId failed, retrying: %s", error)
                self._next_init_ms = now_ms + self.retry_backoff_ms
            return
        bumped = self.producer_id >= 0
        self.producer_id = response.producer_id
        self.producer_epoch = response.producer_epoch
        self._epoch_bump_required = False
        if not bumped:
            self._next_sequence.clear()
            self._last_acked.clear()
            self._in_flight.clear()
        else:
            self._after_bump()
        log.info("%s producer id %d epoch %d", "bumped to" if bumped else "got",
                 self.producer_id, self.producer_epoch)

    def _after_bump(self) -> None:
        """Java's bumpIdempotentProducerEpoch: the partitions whose sequences broke
        start again at 0 with their unacknowledged batches renumbered in order; every
        other partition keeps its stamped batches as they are (one of them may be
        written already, and only its old epoch and sequence let the broker see the
        repeat) and starts at 0 once they are all answered."""
        for tp in self._rewrite:
            sequence = 0
            for batch in self._in_flight.get(tp, ()):
                batch.set_producer_state(self.producer_id, self.producer_epoch, sequence,
                                         self.is_transactional)
                sequence = (sequence + batch.record_count) % _SEQUENCE_MODULUS
            self._next_sequence[tp] = sequence
            self._last_acked.pop(tp, None)
        self._stale = {tp for tp, batches in self._in_flight.items()
                       if batches and tp not in self._rewrite}
        for tp in list(self._next_sequence):
            if tp not in self._rewrite:
                del self._next_sequence[tp]
                self._last_acked.pop(tp, None)
        self._rewrite.clear()

    def request_epoch_bump(self, reason: str, tp: TP | None = None) -> None:
        if not self._epoch_bump_required:
            log.warning("bumping the producer epoch: %s", reason)
        self._epoch_bump_required = True
        if tp is not None:
            self._rewrite.add(tp)

    # ---- sequences (called from drain) ----------------------------------------------

    def should_stop_drain(self, first: ProducerBatch, tp: TP) -> bool:
        """Java's shouldStopDrainBatchesForPartition."""
        if not self.has_producer_id():
            return True
        if self.is_transactional and (
                tp not in self.partitions_in_txn or
                self.state in (S.ABORTABLE_ERROR, S.ABORTING_TRANSACTION, S.FATAL_ERROR)):
            return True
        in_flight = self._in_flight.get(tp)
        if tp in self._stale:
            if in_flight:
                # Old-epoch batches go first, in order; new ones wait for them all.
                return first.base_sequence < 0 or in_flight[0] is not first
            self._stale.discard(tp)  # all answered: start at 0 with the new epoch
        if self._is_current(first):
            # A retry: it may only go when it is the oldest unacknowledged batch.
            return bool(in_flight) and in_flight[0] is not first
        # Nothing new while a failed batch's fate is unknown (Java: unresolved).
        if tp in self._unresolved:
            return True
        # Until the partition has acknowledged a batch of this epoch, one batch at a
        # time: a broker with no state for us there takes any first sequence
        # (KAFKA-15591), so a second batch that overtook a retried first one would
        # leave the first out of order for good. Java pipelines here and loses it.
        return bool(in_flight) and tp not in self._last_acked

    def stamp(self, batch: ProducerBatch) -> None:
        """Give a drained batch its sequence (a retry keeps its own)."""
        tp = (batch.topic, batch.partition)
        if self._is_current(batch) or (tp in self._stale and batch.base_sequence >= 0):
            return
        sequence = self._next_sequence.get(tp, 0)
        batch.set_producer_state(self.producer_id, self.producer_epoch, sequence,
                                 self.is_transactional)
        self._next_sequence[tp] = (sequence + batch.record_count) % _SEQUENCE_MODULUS
        in_flight = self._in_flight.setdefault(tp, [])
        if not in_flight or in_flight[-1].base_sequence < sequence:
            in_flight.append(batch)  # the usual case: sequences only grow
        else:
            keys = [b.base_sequence for b in in_flight]
            in_flight.insert(bisect.bisect(keys, sequence), batch)

    def _is_current(self, batch: ProducerBatch) -> bool:
        return (batch.base_sequence >= 0 and batch.producer_id == self.producer_id and
                batch.producer_epoch == self.producer_epoch)

    # ---- outcomes ---------------------------------------------------------------------

    def on_acknowledged(self, batch: ProducerBatch) -> None:
        tp = (batch.topic, batch.partition)
        self._remove(tp, batch)
        if not self._is_current(batch):
            self._maybe_resolve(tp)
            return  # an old-epoch batch: the new epoch's sequences start afresh
        last = (batch.base_sequence + batch.record_count - 1) % _SEQUENCE_MODULUS
        self._last_acked[tp] = last
        unresolved = self._unresolved.get(tp)
        if unresolved is not None and batch.base_sequence > unresolved[0]:
            del self._unresolved[tp]  # written after the hole: the broker had it
        self._maybe_resolve(tp)

    def on_failed(self, batch: ProducerBatch, error: BaseException,
                  rejected: bool = False) -> None:
        """A stamped batch failed for good: its sequence is a hole only a bump closes.
        ``rejected``: the broker answered with an error, so it surely was not written
        (and neither was anything sent after it). Inside a transaction, the
        transaction can then only be aborted."""
        if self.is_transactional and not isinstance(error, TransactionAbortedError):
            self.transition_to_error(error)
        tp = (batch.topic, batch.partition)
        in_flight = self._in_flight.get(tp)
        if not in_flight or batch not in in_flight:
            return
        self._remove(tp, batch)
        reason = f"{batch.topic}-{batch.partition} lost sequence {batch.base_sequence}: {error}"
        if self.is_transactional:
            # Bumped by InitProducerId after the abort (KIP-360), not mid-transaction.
            if not isinstance(error, TransactionAbortedError):
                self._txn_epoch_bump_required = True
            return
        # Java's unresolved sequence: the batches of the partition still in flight go
        # on as they are (renumbering them could write one after a batch sent later);
        # if one after the hole is acknowledged, the broker had the failed batch after
        # all; if none is, the epoch is bumped once they are all answered.
        if rejected:
            self.request_epoch_bump(reason, tp)
            return
        last = (batch.base_sequence + batch.record_count - 1) % _SEQUENCE_MODULUS
        self._unresolved[tp] = (last, reason)
        self._maybe_resolve(tp)

    def _maybe_resolve(self, tp: TP) -> None:
        pending = self._unresolved.get(tp)
        if pending is not None and not self._in_flight.get(tp):
            del self._unresolved[tp]
            self.request_epoch_bump(pending[1], tp)

    def on_sequence_error(self, batch: ProducerBatch, error: BaseException) -> None:
        """OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on a batch we will retry.

        As Java's canRetry: if the batch is the next one after the last acknowledged,
        the broker lost our state (or an earlier batch failed): bump. Otherwise retry
        as it is, since an earlier batch will close the gap; except when no earlier
        batch is outstanding and a later one was acknowledged: that one overtook it at a
        broker that had no state for us (it takes any first sequence, KAFKA-15591), and
        no retry of this sequence can ever succeed. Java retries it until
        delivery.timeout.ms and loses it; fastprod bumps the epoch and resends it
        renumbered, so it is written after the batch that overtook it: out of order,
        but not lost."""
        tp = (batch.topic, batch.partition)
        last_acked = self._last_acked.get(tp)
        expected = 0 if last_acked is None else (last_acked + 1) % _SEQUENCE_MODULUS
        if batch.base_sequence == expected:
            self.request_epoch_bump(f"{tp[0]}-{tp[1]}: {error}", tp)
            return
        in_flight = self._in_flight.get(tp)
        overtaken = last_acked is not None and \
            (last_acked - batch.base_sequence) % _SEQUENCE_MODULUS < _SEQUENCE_MODULUS // 2
        if overtaken and in_flight and in_flight[0] is batch:
            log.warning("%s-%d: sequence %d was overtaken by a later batch (the broker "
                        "took %d as the first); resending its records under a new epoch, "
                        "after the ones that overtook them", tp[0], tp[1],
                        batch.base_sequence, last_acked)
            self.request_epoch_bump(f"{tp[0]}-{tp[1]}: {error}", tp)

    def on_split(self, batch: ProducerBatch, parts: list[ProducerBatch]) -> None:
        """A stamped batch was split (MESSAGE_TOO_LARGE: the broker wrote none of it):
        its parts, which carry its sequence numbers, take its place in flight."""
        tp = (batch.topic, batch.partition)
        in_flight = self._in_flight.get(tp)
        if in_flight and batch in in_flight:
            i = in_flight.index(batch)
            in_flight[i:i + 1] = parts

    def _remove(self, tp: TP, batch: ProducerBatch) -> None:
        in_flight = self._in_flight.get(tp)
        if in_flight and batch in in_flight:
            in_flight.remove(batch)

    # ---- transactions: user calls ---------------------------------------------------------

    def _transition(self, target: TxnState, error: BaseException | None = None) -> None:
        """Move to ``target``; the caller holds ``_lock``."""
        if self.state not in _VALID_SOURCES[target]:
            raise IllegalStateError(f"TransactionalId {self.transactional_id}: invalid "
                                    f"transition attempted from state {self.state.value} "
                                    f"to state {target.value}")
        if error is not None:
            self.last_error = error
        elif target is not S.ABORTABLE_ERROR:
            self.last_error = None
        log.debug("transactional id %s: %s -> %s", self.transactional_id, self.state.value,
                  target.value)
        self.state = target

    def _ensure_transactional(self) -> None:
        if not self.is_transactional:
            raise IllegalStateError("transactional methods need transactional.id to be set")

    def _raise_if_failed(self, operation: str) -> None:
        """After a fatal error every call raises that error again (Java's
        maybeFailWithError), so ``except ProducerFencedError: close()`` works."""
        if self.state is S.FATAL_ERROR:
            _fail_with(self.last_error, f"{operation}: the producer hit a fatal error and "
                                        f"can only be closed")

    def initialize(self) -> TransactionalRequestResult:
        """init_transactions(): find the coordinator, get the producer id (and fence
        any earlier producer with the same transactional.id)."""
        self._ensure_transactional()
        with self._lock:
            self._raise_if_failed("init_transactions")
            if self.state is S.INITIALIZING and self._init_result is not None:
                return self._init_result  # a retry after a timeout: keep waiting
            self._transition(S.INITIALIZING)
            self.producer_id, self.producer_epoch = -1, -1
            request = InitProducerId(self, TransactionalRequestResult("init_transactions"))
            self._init_result = request.result
            self._enqueue_locked(request)
            return request.result

    _init_result: TransactionalRequestResult | None = None

    def begin(self) -> None:
        self._ensure_transactional()
        with self._lock:
            self._raise_if_failed("begin_transaction")
            if self.state is not S.READY:
                raise IllegalStateError(f"cannot begin a transaction in state "
                                        f"{self.state.value}" + (
                                            " (call init_transactions() first)"
                                            if self.state is S.UNINITIALIZED else ""))
            self._transition(S.IN_TRANSACTION)

    def begin_commit(self) -> TransactionalRequestResult:
        self._ensure_transactional()
        with self._lock:
            self._raise_if_failed("commit_transaction")
            if self.state is S.COMMITTING_TRANSACTION and self._end_result is not None:
                return self._end_result
            if self.state is S.ABORTABLE_ERROR:
                _fail_with(self.last_error, "commit: an earlier send in this transaction "
                           "failed; abort_transaction() is the way out")
            if self.state is not S.IN_TRANSACTION:
                raise IllegalStateError(f"cannot commit in state {self.state.value}: "
                                        f"no transaction was begun")
            self._transition(S.COMMITTING_TRANSACTION)
            return self._enqueue_end(committed=True)

    def begin_abort(self) -> TransactionalRequestResult:
        self._ensure_transactional()
        with self._lock:
            self._raise_if_failed("abort_transaction")
            if self.state is S.ABORTING_TRANSACTION and self._end_result is not None:
                return self._end_result
            if self.state not in (S.IN_TRANSACTION, S.ABORTABLE_ERROR):
                raise IllegalStateError(
                    f"cannot abort in state {self.state.value}" + (
                        ": no transaction was begun" if self.state is S.READY else ""))
            self._transition(S.ABORTING_TRANSACTION)
            self._new_partitions.clear()  # never added: nothing to abort there
            return self._enqueue_end(committed=False)

    _end_result: TransactionalRequestResult | None = None

    def _enqueue_end(self, committed: bool) -> TransactionalRequestResult:
        request = EndTxn(self, committed)
        self._end_result = request.result
        self._enqueue_locked(request)
        return request.result

    def send_offsets(self, offsets: dict[TP, tuple[int, str | None]],
                     group: ConsumerGroupMetadata) -> TransactionalRequestResult:
        self._ensure_transactional()
        with self._lock:
            self._raise_if_failed("send_offsets_to_transaction")
            if self.state is S.ABORTABLE_ERROR:
                raise IllegalStateError("cannot send offsets: the transaction must be "
                                        "aborted") from self.last_error
            if self.state is not S.IN_TRANSACTION:
                raise IllegalStateError(f"cannot send offsets in state {self.state.value}: "
                                        f"begin_transaction() first")
            self._transaction_started = True
            request = AddOffsets(self, offsets, group)
            self._enqueue_locked(request)
            return request.result

    def check_ready_for_send(self) -> None:
        """Java's failIfNotReadyForSend: records of a transactional producer need an
        open transaction."""
        state = self.state
        if state is S.IN_TRANSACTION:
            return
        if state is S.ABORTABLE_ERROR:
            raise IllegalStateError(
                "cannot send: an earlier send in this transaction failed "
                f"({self.last_error!r}); abort_transaction() first") from self.last_error
        self._raise_if_failed("send")
        raise IllegalStateError(f"cannot send in state {state.value}: records of a "
                                f"transactional producer need begin_transaction() first")

    def has_partitions_in_transaction(self) -> bool:
        return bool(self.partitions_in_txn)

    def maybe_add_partition(self, tp: TP) -> None:
        """Called by send() for each record of a transactional producer."""
        if tp in self.partitions_in_txn:
            return
        with self._lock:
            if tp not in self._pending_partitions:
                self._new_partitions.add(tp)

    # ---- transactions: sender side ------------------------------------------------------

    def next_request(self, has_incomplete_batches: bool, now_ms: int) -> TxnRequest | None:
        """The coordinator request to send now, if any (Java's nextRequest)."""
        with self._lock:
            if self._in_flight_request is not None or now_ms < self._next_request_ms:
                return None
            # Partitions sent to since the last AddPartitionsToTxn (a commit may already
            # have begun: they still go before its EndTxn, by priority).
            if self._new_partitions and self.state in (S.IN_TRANSACTION,
                                                       S.COMMITTING_TRANSACTION) and \
                    not any(isinstance(r, AddPartitions) for r in self._queue):
                self._pending_partitions |= self._new_partitions
                self._enqueue_locked(AddPartitions(self, set(self._new_partitions)))
                self._new_partitions.clear()
                self._transaction_started = True
            while self._queue:
                request = self._queue[0]
                if isinstance(request, EndTxn):
                    if has_incomplete_batches:
                        return None  # EndTxn only once every batch is answered
                    if not self._transaction_started:
                        self._queue.pop(0)  # nothing was added: nothing to end
                        self._finish_transaction_locked(request.result)
                        continue
                if self.state is S.FATAL_ERROR:
                    self._queue.pop(0)
                    request.result.done(self.last_error)
                    continue
                if request.coordinator is not None and \
                        request.coordinator not in self._coordinators:
                    key = request.coordinator_key or self.transactional_id
                    request = FindCoordinator(self, request.coordinator, key)
                else:
                    self._queue.pop(0)
                self._in_flight_request = request
                return request
            return None

    def next_request_delay_ms(self, now_ms: int) -> int:
        """How long the sender may sleep before a queued coordinator request is due
        (a retry waiting out retry.backoff.ms); large when none waits."""
        if self._queue and self._in_flight_request is None:
            return max(self._next_request_ms - now_ms, 0)
        return 2**31 - 1

    def _enqueue_locked(self, request: TxnRequest) -> None:
        i = len(self._queue)
        while i > 0 and self._queue[i - 1].priority > request.priority:
            i -= 1
        self._queue.insert(i, request)

    def coordinator(self, kind: CoordinatorType | None) -> Node | None:
        return None if kind is None else self._coordinators.get(kind)

    def set_coordinator(self, kind: CoordinatorType, node: Node) -> None:
        self._coordinators[kind] = node

    def forget_coordinator(self, kind: CoordinatorType | None) -> None:
        if kind is not None:
            self._coordinators.pop(kind, None)

    def request_done(self, request: TxnRequest, outcome: Outcome, now_ms: int) -> None:
        """After a response (or a failure to send): retry, look up, or move on."""
        with self._lock:
            self._in_flight_request = None
            if outcome is Outcome.DONE:
                return
            if outcome is Outcome.LOOKUP:
                self.forget_coordinator(request.coordinator)
            self._enqueue_first_locked(request)
            backoff = request.retry_backoff_ms
            self._next_request_ms = now_ms + (self.retry_backoff_ms if backoff is None
                                              else backoff)

    def _enqueue_first_locked(self, request: TxnRequest) -> None:
        """Put a request back ahead of the others of its priority (a retry)."""
        i = 0
        while i < len(self._queue) and self._queue[i].priority < request.priority:
            i += 1
        self._queue.insert(i, request)

    def enqueue(self, request: TxnRequest) -> None:
        """A handler asks for a follow-up request (AddOffsets -> TxnOffsetCommit)."""
        with self._lock:
            self._enqueue_first_locked(request)

    def set_producer_id(self, producer_id: int, producer_epoch: int) -> None:
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self._epoch_bump_required = False
        self._txn_epoch_bump_required = False
        self._next_sequence.clear()
        self._last_acked.clear()
        self._in_flight.clear()
        log.info("transactional id %s: producer id %d epoch %d", self.transactional_id,
                 producer_id, producer_epoch)

    def transition_to_ready(self) -> None:
        with self._lock:
            self._transition(S.READY)

    def transition_to_abortable(self, error: BaseException) -> None:
        with self._lock:
            if self.state in (S.IN_TRANSACTION, S.COMMITTING_TRANSACTION, S.ABORTABLE_ERROR):
                self._transition(S.ABORTABLE_ERROR, error)
            elif self.state is S.ABORTING_TRANSACTION:
                self.last_error = error

    def transition_to_error(self, error: BaseException) -> None:
        """Fatal errors end the producer; anything else only aborts the transaction."""
        if is_fatal(error):
            with self._lock:
                self._transition(S.FATAL_ERROR, error)
                self.fatal_error = error
                for request in self._queue:
                    request.result.done(error)
                self._queue.clear()
        else:
            self.transition_to_abortable(error)

    def partitions_added(self, partitions: set[TP]) -> None:
        with self._lock:
            self.partitions_in_txn |= partitions
            self._pending_partitions -= partitions

    def transaction_ended(self, result: TransactionalRequestResult) -> None:
        with self._lock:
            self._finish_transaction_locked(result)

    def _finish_transaction_locked(self, result: TransactionalRequestResult) -> None:
        self.partitions_in_txn.clear()
        self._pending_partitions.clear()
        self._new_partitions.clear()
        self._transaction_started = False
        self._end_result = None
        if self._txn_epoch_bump_required and self.state is S.ABORTING_TRANSACTION:
            # A sequence was lost in the aborted transaction: bump the epoch (KIP-360)
            # before the next one; the user's abort completes with the bump.
            self._transition(S.INITIALIZING)
            self._enqueue_first_locked(InitProducerId(self, result))
            return
        self._transition(S.READY)
        result.done()

    def is_aborting(self) -> bool:
        return self.state in (S.ABORTING_TRANSACTION, S.ABORTABLE_ERROR)

    def is_completing(self) -> bool:
        return self.state in (S.COMMITTING_TRANSACTION, S.ABORTING_TRANSACTION)

    def abort_error(self) -> BaseException:
        """What undrained batches of an aborting transaction fail with."""
        return self.last_error or TransactionAbortedError(
            "failing batch since the transaction was aborted")

    def close(self, error: BaseException) -> None:
        """The producer is closing: whoever waits on a transactional call stops."""
        with self._lock:
            for request in self._queue:
                request.result.done(error)
            self._queue.clear()
            if self._in_flight_request is not None:
                self._in_flight_request.result.done(error)


def _fail_with(error: BaseException | None, what: str) -> None:
    """Java's maybeFailWithError: fencing errors again as themselves (so that
    ``except ProducerFencedError`` works), anything else wrapped, with it as the cause."""
    if isinstance(error, (ProducerFencedError, InvalidProducerEpochError)):
        raise type(error)(f"cannot {what} ({error})") from error
    raise IllegalStateError(f"cannot {what} ({error!r})") from error
