"""TransactionManager (idempotence) with the accumulator that stamps sequences in drain:
producer id, per-partition sequences, in-order retries and the epoch bump. The sender's
side (responses, DUPLICATE_SEQUENCE_NUMBER, OUT_OF_ORDER_SEQUENCE_NUMBER) is in
test_sender.py."""

from __future__ import annotations

import pytest

from fastprod.engine.transaction_manager import TransactionManager
from fastprod.errors import (
    ClusterAuthorizationError,
    InvalidRecordError,
    NetworkError,
    OutOfOrderSequenceError,
)
from fastprod.kernels import RECORD_BATCH_OVERHEAD, BatchBuilder, read_batch
from tests.fakes import init_producer_id_response, make_accumulator, make_snapshot

TOPIC = "t"
SNAP = make_snapshot({TOPIC: [0, 0]})
RECORD = BatchBuilder(0, 1 << 20).append(0, 0, None, b"v")
BIG = 2**31 - 1
PID = 343434


def setup(records_per_batch=1, producer_id=PID):
    tm = TransactionManager(transaction_timeout_ms=60000, retry_backoff_ms=100)
    acc = make_accumulator(batch_size=RECORD_BATCH_OVERHEAD + records_per_batch * RECORD,
                           transaction_manager=tm)
    if producer_id is not None:
        tm.init_request()
        tm.handle_init_response(init_producer_id_response(producer_id, 0), None, 0)
    return tm, acc


def append(acc, partition=0, n=1):
    return [acc.append(TOPIC, partition, 0, None, b"v", None, None, 1000, 0, SNAP).future
            for _ in range(n)]


def drain(acc, now_ms=0):
    return [b for bs in acc.drain(SNAP, {0}, BIG, now_ms).values() for b in bs]


def acknowledge_first_batch(tm, acc, partition=0):
    """A fresh partition takes one batch at a time until it acknowledges one; send and
    acknowledge a one-record batch so that later ones pipeline (sequence 1 is next)."""
    append(acc, partition)
    [batch] = drain(acc)
    assert batch.base_sequence == 0
    tm.on_acknowledged(batch)


def header(batch):
    decoded = read_batch(batch.records())  # also checks the CRC
    return decoded.producer_id, decoded.producer_epoch, decoded.base_sequence


# ---- producer id ---------------------------------------------------------------------------

def test_nothing_drains_before_a_producer_id():
    tm, acc = setup(producer_id=None)
    append(acc)
    assert not tm.has_producer_id()
    assert acc.ready(SNAP, 0).ready_nodes == {0}
    assert drain(acc) == []
    assert tm.needs_init(0, 0)
    request = tm.init_request()
    assert request.transactional_id is None
    assert (request.producer_id, request.producer_epoch) == (-1, -1)
    assert not tm.needs_init(0, 0)  # one request at a time
    tm.handle_init_response(init_producer_id_response(PID, 0), None, 5)
    assert tm.has_producer_id() and not tm.needs_init(5, 0)
    [batch] = drain(acc)
    assert header(batch) == (PID, 0, 0)


def test_a_retriable_init_error_is_retried_after_the_backoff():
    tm, _ = setup(producer_id=None)
    tm.init_request()
    tm.handle_init_response(None, NetworkError("disconnected"), 1000)
    assert not tm.needs_init(1099, 0)
    assert tm.needs_init(1100, 0)
    tm.init_request()
    tm.handle_init_response(init_producer_id_response(-1, -1, error=15), None, 1200)
    assert tm.fatal_error is None and tm.needs_init(1300, 0)  # COORDINATOR_NOT_AVAILABLE


def test_a_fatal_init_error_stops_the_producer():
    tm, acc = setup(producer_id=None)
    tm.init_request()
    tm.handle_init_response(init_producer_id_response(-1, -1, error=31), None, 0)
    assert isinstance(tm.fatal_error, ClusterAuthorizationError)
    assert not tm.needs_init(10_000, 0)
    append(acc)
    assert drain(acc) == []


# ---- sequences -----------------------------------------------------------------------------

def test_sequences_per_partition_grow_by_record_count():
    tm, acc = setup(records_per_batch=3)
    append(acc, 0, 3)
    append(acc, 0, 2)  # second batch of partition 0
    append(acc, 1, 3)
    first = drain(acc)
    assert sorted((b.partition, header(b)) for b in first) == [
        (0, (PID, 0, 0)), (1, (PID, 0, 0))]
    assert drain(acc) == []  # partition 0 has acknowledged nothing yet: one at a time
    tm.on_acknowledged(next(b for b in first if b.partition == 0))
    [second] = drain(acc)
    assert (second.partition, header(second)) == (0, (PID, 0, 3))
    append(acc, 0, 1)
    [third] = drain(acc)  # pipelined: the second is still in flight
    assert header(third) == (PID, 0, 5)
    assert not third.is_transactional


def test_sequences_wrap_at_2_to_the_31():
    """Java's DefaultRecordBatch.incrementSequence: sequences are int32 and wrap to 0."""
    tm, acc = setup(records_per_batch=3)
    tm._next_sequence[(TOPIC, 0)] = 2**31 - 2  # as if 2**31 - 2 records were sent
    append(acc, 0, 3)
    append(acc, 0, 3)
    [a] = drain(acc)
    assert a.base_sequence == 2**31 - 2 and header(a)[2] == 2**31 - 2
    tm.on_acknowledged(a)
    [b] = drain(acc)
    assert b.base_sequence == 1  # 2**31 - 2 + 3 records
    # b is the next batch the broker expects: a sequence error on it is a real gap
    tm.on_sequence_error(b, OutOfOrderSequenceError())
    assert not tm.has_producer_id()


# ---- retries -------------------------------------------------------------------------------

def test_a_retried_batch_keeps_its_sequence_and_waits_to_be_first_in_flight():
    tm, acc = setup()
    acknowledge_first_batch(tm, acc)
    append(acc, 0, 3)
    a, b, c = drain(acc), drain(acc), drain(acc)
    a, b, c = a[0], b[0], c[0]
    assert [x.base_sequence for x in (a, b, c)] == [1, 2, 3]
    # b's request failed and is retried; a (sequence 0) is still in flight
    acc.reenqueue(b, 10)
    assert drain(acc, 1000) == []  # b may not overtake a
    append(acc, 0)                 # a new batch queues behind the retry
    assert drain(acc, 1000) == []
    tm.on_acknowledged(a)
    [retry] = drain(acc, 1000)
    assert retry is b and header(b) == (PID, 0, 2)
    tm.on_acknowledged(b)
    [new] = drain(acc, 1000)
    assert new.base_sequence == 4   # c (3) is still in flight: a new batch may go


def test_the_first_in_flight_batch_is_retried_at_once():
    tm, acc = setup()
    acknowledge_first_batch(tm, acc)
    append(acc, 0, 2)
    a, b = drain(acc)[0], drain(acc)[0]
    acc.reenqueue(a, 10)
    [retry] = drain(acc, 1000)
    assert retry is a and a.base_sequence == 1
    assert b.base_sequence == 2


def test_retries_go_back_in_sequence_order():
    tm, acc = setup()
    acknowledge_first_batch(tm, acc)
    append(acc, 0, 3)
    batches = [drain(acc)[0] for _ in range(3)]
    for i in (1, 2, 0):  # responses can come back in any order across leaders
        acc.reenqueue(batches[i], 10)
    order = []
    for _ in range(3):
        [retry] = drain(acc, 1000)
        order.append(retry.base_sequence)
        tm.on_acknowledged(retry)
    assert order == [1, 2, 3]


def test_a_sequence_error_on_a_later_batch_does_not_bump_the_epoch():
    """Java's TransactionManager.canRetry: OUT_OF_ORDER_SEQUENCE_NUMBER for a batch that
    is not the next one the broker expects only means an earlier batch is being retried."""
    tm, acc = setup()
    acknowledge_first_batch(tm, acc)
    append(acc, 0, 2)
    a, b = drain(acc)[0], drain(acc)[0]
    acc.reenqueue(a, 10)  # a failed with a retriable error
    tm.on_sequence_error(b, OutOfOrderSequenceError())
    assert tm.has_producer_id()
    # ... but on the batch right after the last acknowledged one it is a real gap
    tm.on_sequence_error(a, OutOfOrderSequenceError())
    assert not tm.has_producer_id()


# ---- the epoch bump ------------------------------------------------------------------------

def test_epoch_bump_waits_for_no_in_flight_requests_then_resets_and_restamps():
    tm, acc = setup()
    acknowledge_first_batch(tm, acc, 0)
    append(acc, 0, 2)
    append(acc, 1, 1)
    first = drain(acc)                     # p0 seq 1, p1 seq 0
    p0 = next(b for b in first if b.partition == 0)
    [second] = drain(acc)                  # p0 seq 2
    assert second.base_sequence == 2
    # p1's batch is answered; p0's first batch failed for good after it was sent: its
    # sequence is a hole
    tm.on_acknowledged(next(b for b in first if b.partition == 1))
    tm.on_failed(p0, InvalidRecordError("rejected"), rejected=True)  # the broker said no
    assert not tm.has_producer_id()
    acc.reenqueue(second, 10)              # the next one comes back to be retried
    append(acc, 1)                         # and new work keeps arriving
    assert drain(acc, 1000) == []          # nothing goes while the bump is pending
    assert not tm.needs_init(1000, requests_in_flight=1)
    assert tm.needs_init(1000, requests_in_flight=0)
    request = tm.init_request()
    assert (request.producer_id, request.producer_epoch) == (PID, 0)
    tm.handle_init_response(init_producer_id_response(PID, 1), None, 1000)
    assert tm.has_producer_id()
    batches = drain(acc, 1000)
    assert sorted((b.partition, header(b)) for b in batches) == [
        (0, (PID, 1, 0)), (1, (PID, 1, 0))]  # both restart at 0 with the new epoch
    assert any(b is second for b in batches)  # restamped, CRC rewritten


def test_a_failure_of_a_batch_never_sent_does_not_bump():
    tm, acc = setup()
    append(acc)
    [batch] = acc.expired_batches(10**9)
    tm.on_failed(batch, InvalidRecordError("expired"))
    assert tm.has_producer_id()


def test_acknowledgements_of_an_old_epoch_are_ignored():
    tm, acc = setup()
    append(acc, 0, 2)
    old = drain(acc)[0]
    tm.request_epoch_bump("test")
    tm.init_request()
    tm.handle_init_response(init_producer_id_response(PID + 1, 0), None, 0)
    tm.on_acknowledged(old)       # a late answer to the old producer id
    tm.on_failed(old, InvalidRecordError("late"))
    assert tm.has_producer_id()
    [new] = drain(acc)
    assert header(new) == (PID + 1, 0, 0)


@pytest.mark.parametrize("error_code", [45, 59])
def test_sequence_errors_are_mapped(error_code):
    from fastprod.errors import error_for_code

    tm, acc = setup()
    append(acc)
    [a] = drain(acc)
    tm.on_sequence_error(a, error_for_code(error_code))
    assert not tm.has_producer_id()


@pytest.mark.parametrize("first", [True, False])
def test_concurrent_transactions_on_the_first_partitions_retries_sooner(first):
    """Java's maybeOverrideRetryBackoffMs: CONCURRENT_TRANSACTIONS on a transaction's
    first AddPartitionsToTxn (the previous transaction's markers are being written) is
    retried after 20 ms, not retry.backoff.ms; later in the transaction, the usual."""
    from fastprod.engine.transactions import AddPartitions, Outcome
    from fastprod.protocol.messages.add_partitions_to_txn import (
        AddPartitionsToTxnPartitionResult,
        AddPartitionsToTxnResponse,
        AddPartitionsToTxnTopicResult,
    )

    tm = TransactionManager(transaction_timeout_ms=60000, retry_backoff_ms=100,
                            transactional_id="txn")
    if not first:
        tm.partitions_added({("t", 1)})
    request = AddPartitions(tm, {("t", 0)})
    response = AddPartitionsToTxnResponse(results_by_topic_v3_and_below=[
        AddPartitionsToTxnTopicResult(name="t", results_by_partition=[
            AddPartitionsToTxnPartitionResult(partition_index=0, partition_error_code=51)])])
    outcome = request.handle(response)
    assert outcome is Outcome.RETRY
    tm.request_done(request, outcome, 1000)
    assert tm.next_request_delay_ms(1000) == (20 if first else 100)
