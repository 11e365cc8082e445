"""Transactional coordinator requests: what the TransactionManager asks of the
transaction and group coordinators, and how each answer moves it on.

Java's TransactionManager.TxnRequestHandler subclasses, one small class each:
FindCoordinator, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
EndTxn. The sender sends one at a time (``TransactionManager.next_request``) to the
coordinator it names, and hands the response to ``handle``, which returns one of
DONE, RETRY (after retry.backoff.ms) or LOOKUP (find the coordinator again, then retry).

This client speaks the classic protocol ("transactions v1"): partitions are added with
AddPartitionsToTxn before the first batch to them, and the epoch only changes when a
lost sequence forces a bump. The versions are capped where the newer ones mean
transactions v2 (Produce v12, EndTxn v5, TxnOffsetCommit v5) or broker-to-broker use
(AddPartitionsToTxn v4+), as the Java client does when v2 is not in use.

Threads: built and handled on the sender thread; ``result`` is what the user's
``commit_transaction()`` (etc.) waits on.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import TYPE_CHECKING, Any

from fastprod.cluster.snapshot import Node
from fastprod.errors import ERRORS_BY_NAME, KafkaError, KafkaTimeoutError, error_for_code
from fastprod.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnRequest
from fastprod.protocol.messages.add_partitions_to_txn import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
)
from fastprod.protocol.messages.end_txn import EndTxnRequest
from fastprod.protocol.messages.find_coordinator import FindCoordinatorRequest
from fastprod.protocol.messages.init_producer_id import InitProducerIdRequest
from fastprod.protocol.messages.txn_offset_commit import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

if TYPE_CHECKING:
    from fastprod.engine.transaction_manager import TransactionManager
    from fastprod.protocol.base import Message
    from fastprod.protocol.messages.add_offsets_to_txn import AddOffsetsToTxnResponse
    from fastprod.protocol.messages.add_partitions_to_txn import AddPartitionsToTxnResponse
    from fastprod.protocol.messages.end_txn import EndTxnResponse
    from fastprod.protocol.messages.find_coordinator import FindCoordinatorResponse
    from fastprod.protocol.messages.init_producer_id import InitProducerIdResponse
    from fastprod.protocol.messages.txn_offset_commit import TxnOffsetCommitResponse

# {(topic, partition): (offset, metadata)}
Offsets = dict[tuple[str, int], tuple[int, "str | None"]]

log = logging.getLogger("fastprod.transactions")

# Max versions for a transactions-v1 client (see the module docstring).
PRODUCE_MAX_VERSION_V1 = 11
_FIND_COORDINATOR, _INIT_PRODUCER_ID, _ADD_PARTITIONS, _ADD_OFFSETS = 10, 22, 24, 25
_END_TXN, _TXN_OFFSET_COMMIT = 26, 28


def _codes(*names: str) -> set[int]:
    return {ERRORS_BY_NAME[name].code for name in names}


_COORDINATOR_LOAD_IN_PROGRESS = ERRORS_BY_NAME["COORDINATOR_LOAD_IN_PROGRESS"].code
_COORDINATOR_NOT_AVAILABLE = ERRORS_BY_NAME["COORDINATOR_NOT_AVAILABLE"].code
_OPERATION_NOT_ATTEMPTED = ERRORS_BY_NAME["OPERATION_NOT_ATTEMPTED"].code
_CONCURRENT_TRANSACTIONS = ERRORS_BY_NAME["CONCURRENT_TRANSACTIONS"].code
# The coordinator moved: find it again, then retry.
_NOT_COORDINATOR_CODES = _codes("COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR")
# Java's TransactionManager.ADD_PARTITIONS_RETRY_BACKOFF_MS
ADD_PARTITIONS_RETRY_BACKOFF_MS = 20

# Transient: retry the same request after retry.backoff.ms.
_RETRY_CODES = _codes("COORDINATOR_LOAD_IN_PROGRESS", "CONCURRENT_TRANSACTIONS",
                      "REQUEST_TIMED_OUT", "UNKNOWN_TOPIC_OR_PARTITION", "NETWORK_EXCEPTION",
                      "OPERATION_NOT_ATTEMPTED")
# After these the transactional producer can only be closed (Java's fatal errors).
# INVALID_PRODUCER_EPOCH is not among them: on a Produce response it only aborts the
# transaction (KIP-588); from a coordinator it means fenced (see TxnRequest._common).
FATAL_CODES = _codes("PRODUCER_FENCED", "INVALID_TXN_STATE",
                     "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED",
                     "UNSUPPORTED_VERSION", "INVALID_PRODUCER_ID_MAPPING")
_INVALID_PRODUCER_EPOCH = ERRORS_BY_NAME["INVALID_PRODUCER_EPOCH"].code
_PRODUCER_FENCED = ERRORS_BY_NAME["PRODUCER_FENCED"].code


class Outcome(enum.Enum):
    DONE = "done"
    RETRY = "retry"
    LOOKUP = "lookup"


class CoordinatorType(enum.IntEnum):
    GROUP = 0
    TRANSACTION = 1


class TransactionalRequestResult:
    """What a user call (init/commit/abort/send_offsets) waits for."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.error: BaseException | None = None
        self._done = threading.Event()

    def done(self, error: BaseException | None = None) -> None:
        if not self._done.is_set():
            self.error = error
            self._done.set()

    def is_done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float) -> None:
        if not self._done.wait(timeout_s):
            raise KafkaTimeoutError(
                f"{self.operation} did not complete within {timeout_s * 1000:.0f} ms; "
                f"it may be called again to keep waiting")
        if self.error is not None:
            raise self.error


class TxnRequest:
    """One coordinator request. Subclasses say what to send and what an answer means.

    ``priority`` orders the queue as Java's does: find the coordinator, then get the
    producer id, then add partitions or offsets, and end the transaction last."""

    api_key: int
    priority: int = 2
    max_version: int = 32767
    coordinator: CoordinatorType | None = CoordinatorType.TRANSACTION
    coordinator_key: str = ""
    retry_backoff_ms: int | None = None  # None: retry.backoff.ms

    def __init__(self, tm: TransactionManager,
                 result: TransactionalRequestResult | None = None) -> None:
        self.tm = tm
        self.result = result or TransactionalRequestResult(type(self).__name__)

    def build(self, version: int) -> Message:
        raise NotImplementedError

    def handle(self, response: Any) -> Outcome:
        """``response``: the decoded answer to build()'s request."""
        raise NotImplementedError

    @property
    def transactional_id(self) -> str:
        """Every request but InitProducerId exists only for a transactional producer."""
        tid = self.tm.transactional_id
        if tid is None:
            raise KafkaError(f"{type(self).__name__} needs a transactional.id")
        return tid

    def fail(self, error: BaseException) -> None:
        """The request will not be retried: report the error and move the state."""
        self.tm.transition_to_error(error)
        self.result.done(error)

    def _common(self, code: int) -> Outcome | None:
        """The coordinator error handling all handlers share (None: not handled)."""
        if code in _NOT_COORDINATOR_CODES:
            self.tm.forget_coordinator(self.coordinator)
            return Outcome.LOOKUP
        if code in _RETRY_CODES:
            return Outcome.RETRY
        if code == _INVALID_PRODUCER_EPOCH:  # Java: the coordinator fenced us
            code = _PRODUCER_FENCED
        if code in FATAL_CODES:
            self.fail(error_for_code(code))
            return Outcome.DONE
        return None


class FindCoordinator(TxnRequest):
    api_key = _FIND_COORDINATOR
    priority = 0
    coordinator = None  # any broker answers

    def __init__(self, tm: TransactionManager, coordinator_type: CoordinatorType,
                 key: str) -> None:
        super().__init__(tm)
        self.coordinator_type = coordinator_type
        self.key = key

    def build(self, version: int) -> FindCoordinatorRequest:
        if version >= 4:
            return FindCoordinatorRequest(key_type=int(self.coordinator_type),
                                          coordinator_keys=[self.key])
        return FindCoordinatorRequest(key=self.key, key_type=int(self.coordinator_type))

    def handle(self, response: FindCoordinatorResponse) -> Outcome:
        if response.coordinators:
            c = response.coordinators[0]
            code, node = c.error_code, Node(c.node_id, c.host, c.port)
        else:
            code, node = response.error_code, Node(response.node_id, response.host,
                                                   response.port)
        if code == 0:
            self.tm.set_coordinator(self.coordinator_type, node)
            self.result.done()
            return Outcome.DONE
        if code in (_COORDINATOR_NOT_AVAILABLE, _COORDINATOR_LOAD_IN_PROGRESS):
            return Outcome.RETRY
        # An authorization failure for the group only aborts the transaction.
        error = error_for_code(code)
        if self.coordinator_type is CoordinatorType.GROUP:
            self.tm.transition_to_abortable(error)
            self.result.done(error)
        else:
            self.fail(error)
        return Outcome.DONE


class InitProducerId(TxnRequest):
    api_key = _INIT_PRODUCER_ID
    priority = 1

    def build(self, version: int) -> InitProducerIdRequest:
        return InitProducerIdRequest(
            transactional_id=self.tm.transactional_id,
            transaction_timeout_ms=self.tm.transaction_timeout_ms,
            producer_id=self.tm.producer_id, producer_epoch=self.tm.producer_epoch)

    def handle(self, response: InitProducerIdResponse) -> Outcome:
        code = response.error_code
        if code == 0:
            self.tm.set_producer_id(response.producer_id, response.producer_epoch)
            self.tm.transition_to_ready()
            self.result.done()
            return Outcome.DONE
        return self._common(code) or self._fatal(code)

    def _fatal(self, code: int) -> Outcome:
        self.fail(error_for_code(code))
        return Outcome.DONE


class AddPartitions(TxnRequest):
    api_key = _ADD_PARTITIONS
    max_version = 3  # v4+ is for brokers verifying on a client's behalf

    def __init__(self, tm: TransactionManager, partitions: set[tuple[str, int]]) -> None:
        super().__init__(tm)
        self.partitions = partitions

    def build(self, version: int) -> AddPartitionsToTxnRequest:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(self.partitions):
            by_topic.setdefault(topic, []).append(partition)
        return AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=self.transactional_id,
            v3_and_below_producer_id=self.tm.producer_id,
            v3_and_below_producer_epoch=self.tm.producer_epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(name=t, partitions=ps)
                                 for t, ps in by_topic.items()])

    def handle(self, response: AddPartitionsToTxnResponse) -> Outcome:
        errors: dict[tuple[str, int], int] = {}
        for topic in response.results_by_topic_v3_and_below:
            for p in topic.results_by_partition:
                if p.partition_error_code:
                    errors[(topic.name, p.partition_index)] = p.partition_error_code
        if not errors:
            self.tm.partitions_added(self.partitions)
            self.result.done()
            return Outcome.DONE
        codes = set(errors.values())
        if _CONCURRENT_TRANSACTIONS in codes and not self.tm.has_partitions_in_transaction():
            # Java's maybeOverrideRetryBackoffMs: the first partitions of a transaction
            # wait for the previous one's markers; retry sooner than retry.backoff.ms.
            self.retry_backoff_ms = ADD_PARTITIONS_RETRY_BACKOFF_MS
        for code in codes - {_OPERATION_NOT_ATTEMPTED}:
            outcome = self._common(code)
            if outcome is not None:
                return outcome
        # e.g. TOPIC_AUTHORIZATION_FAILED: the transaction cannot go on, but can abort.
        code = next(iter(codes - {_OPERATION_NOT_ATTEMPTED}), _OPERATION_NOT_ATTEMPTED)
        error = error_for_code(code, f"adding {sorted(errors)} to the transaction failed")
        self.tm.transition_to_abortable(error)
        self.result.done(error)
        return Outcome.DONE


class AddOffsets(TxnRequest):
    api_key = _ADD_OFFSETS

    def __init__(self, tm: TransactionManager, offsets: Offsets, group: ConsumerGroupMetadata) -> None:
        super().__init__(tm, TransactionalRequestResult("send_offsets_to_transaction"))
        self.offsets = offsets
        self.group = group

    def build(self, version: int) -> AddOffsetsToTxnRequest:
        return AddOffsetsToTxnRequest(
            transactional_id=self.transactional_id, producer_id=self.tm.producer_id,
            producer_epoch=self.tm.producer_epoch, group_id=self.group.group_id)

    def handle(self, response: AddOffsetsToTxnResponse) -> Outcome:
        code = response.error_code
        if code == 0:
            # Now the offsets themselves, to the group's coordinator; same user result.
            self.tm.enqueue(TxnOffsetCommit(self.tm, self.offsets, self.group, self.result))
            return Outcome.DONE
        outcome = self._common(code)
        if outcome is not None:
            return outcome
        error = error_for_code(code)
        self.tm.transition_to_abortable(error)
        self.result.done(error)
        return Outcome.DONE


class TxnOffsetCommit(TxnRequest):
    api_key = _TXN_OFFSET_COMMIT
    max_version = 4  # v5 means transactions v2
    coordinator = CoordinatorType.GROUP

    def __init__(self, tm: TransactionManager, offsets: Offsets, group: ConsumerGroupMetadata,
                 result: TransactionalRequestResult) -> None:
        super().__init__(tm, result)
        self.offsets = offsets  # {(topic, partition): (offset, metadata)}
        self.group = group
        self.coordinator_key = group.group_id

    def build(self, version: int) -> TxnOffsetCommitRequest:
        by_topic: dict[str, list[TxnOffsetCommitRequestPartition]] = {}
        for (topic, partition), (offset, metadata) in sorted(self.offsets.items()):
            by_topic.setdefault(topic, []).append(TxnOffsetCommitRequestPartition(
                partition_index=partition, committed_offset=offset,
                committed_metadata=metadata))
        return TxnOffsetCommitRequest(
            transactional_id=self.transactional_id, group_id=self.group.group_id,
            producer_id=self.tm.producer_id, producer_epoch=self.tm.producer_epoch,
            generation_id=self.group.generation_id, member_id=self.group.member_id,
            group_instance_id=self.group.group_instance_id,
            topics=[TxnOffsetCommitRequestTopic(name=t, partitions=ps)
                    for t, ps in by_topic.items()])

    def handle(self, response: TxnOffsetCommitResponse) -> Outcome:
        failed: dict[tuple[str, int], int] = {}
        for topic in response.topics:
            for p in topic.partitions:
                if p.error_code:
                    failed[(topic.name, p.partition_index)] = p.error_code
        if not failed:
            self.result.done()
            return Outcome.DONE
        committed = {tp: v for tp, v in self.offsets.items() if tp not in failed}
        self.offsets = {tp: v for tp, v in self.offsets.items() if tp in failed}
        del committed  # only the failed ones are sent again
        for code in set(failed.values()):
            outcome = self._common(code)
            if outcome is not None:
                return outcome
        # ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID...: the group moved
        # on; Java raises CommitFailedException and the transaction must abort.
        code = next(iter(failed.values()))
        error = error_for_code(code, f"committing offsets for {sorted(failed)} of group "
                                     f"{self.group.group_id!r} failed")
        self.tm.transition_to_abortable(error)
        self.result.done(error)
        return Outcome.DONE


class EndTxn(TxnRequest):
    api_key = _END_TXN
    priority = 3
    max_version = 4  # v5 means transactions v2

    def __init__(self, tm: TransactionManager, committed: bool) -> None:
        super().__init__(tm, TransactionalRequestResult(
            "commit_transaction" if committed else "abort_transaction"))
        self.committed = committed

    def build(self, version: int) -> EndTxnRequest:
        return EndTxnRequest(transactional_id=self.transactional_id,
                             producer_id=self.tm.producer_id,
                             producer_epoch=self.tm.producer_epoch,
                             committed=self.committed)

    def handle(self, response: EndTxnResponse) -> Outcome:
        code = response.error_code
        if code == 0:
            self.tm.transaction_ended(self.result)
            return Outcome.DONE
        return self._common(code) or self._abortable(code)

    def _abortable(self, code: int) -> Outcome:
        error = error_for_code(code)
        self.tm.transition_to_abortable(error)
        self.result.done(error)
        return Outcome.DONE


class ConsumerGroupMetadata:
    """What ``send_offsets_to_transaction`` needs to know of the consumer's group
    (Java's ConsumerGroupMetadata). A bare group id is enough for a consumer that does
    not take part in the group protocol; then no generation is checked."""

    def __init__(self, group_id: str, generation_id: int = -1, member_id: str = "",
                 group_instance_id: str | None = None) -> None:
        if not isinstance(group_id, str) or not group_id:
            raise TypeError(f"group_id must be a non-empty str, not {group_id!r}")
        self.group_id = group_id
        self.generation_id = generation_id
        self.member_id = member_id
        self.group_instance_id = group_instance_id

    def __repr__(self) -> str:
        return (f"ConsumerGroupMetadata({self.group_id!r}, generation={self.generation_id}, "
                f"member={self.member_id!r})")


def is_fatal(error: BaseException) -> bool:
    """Errors after which the transactional producer can only be closed."""
    return isinstance(error, KafkaError) and error.code in FATAL_CODES
