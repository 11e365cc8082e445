"""Transactions against a real Apache Kafka 4.3.1: what consumers are allowed to see.

fastprod speaks the classic transaction protocol (AddPartitionsToTxn before the first
batch to a partition; fastprod/engine/transactions.py). Every test checks the outcome
with readers that share no code with fastprod (tests/readers.py): Kafka's own Java
consumer in read_committed (what a transaction promises) and read_uncommitted (proof
that aborted records really were written, so their absence means something), plus
kafka-python for consumer-group offsets and for the last stable offset (LSO), which an
open transaction holds back.

- commit/abort interleaved over several transactions (send and send_batch, keyed and
  unkeyed, explicit partitions, headers): read_committed sees exactly the committed
  records, at the offsets the futures reported, in send order per partition;
- send_offsets_to_transaction with a group id string, a ConsumerGroupMetadata and a live
  kafka-python group member: offsets appear with the commit, never with an abort, and a
  stale member's offsets are refused;
- fencing by a second producer with the same transactional.id;
- a producer killed (SIGKILL) inside a transaction: the broker aborts it after
  transaction.timeout.ms, or the next producer with the same id aborts it at once;
- calls in the wrong state, and an abortable error (a record over the topic's
  max.message.bytes) followed by abort and a new transaction;
- one transaction over two topics on three brokers (replication 3).

Deviations from the Java producer are strict xfails; fastprod bugs are (non-strict,
timing-dependent) xfails whose reason says what goes wrong (see the "fastprod bugs"
section at the end, and CoordinatorRetryStall).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from fastprod import KafkaTimeoutError, Producer, ProducerClosedError, RecordTooLargeError
from fastprod.engine.futures import BatchFuture
from fastprod.engine.transactions import ConsumerGroupMetadata
from fastprod.errors import (
    IllegalGenerationError,
    IllegalStateError,
    InvalidProducerEpochError,
    ProducerFencedError,
    TransactionAbortedError,
    UnknownMemberIdError,
)
from fastprod.localkafka import LocalKafka

try:
    import readers
except ImportError:  # tests/ imported as a package
    from tests import readers

pytestmark = pytest.mark.integration

# init/commit/abort/send_offsets take milliseconds on a healthy broker; this only bounds
# how long a broken call can hold the test.
CALL_TIMEOUT = 30.0
# Where the coordinator-retry stall (CoordinatorRetryStall below) can strike: long enough
# for a retried coordinator request (retry.backoff.ms = 100) many times over.
STALL_TIMEOUT = 5.0
CHILD = Path(__file__).resolve().parents[1] / "txn_child.py"


class CoordinatorRetryStall(Exception):
    """fastprod bug: a coordinator request answered with a retriable error is never sent
    again, so the user's call waits until its timeout.

    TxnRequest._common maps CONCURRENT_TRANSACTIONS (and the other retriable codes) to
    Outcome.RETRY; TransactionManager.request_done puts the request back and sets
    ``_next_request_ms = now + retry.backoff.ms``. On the next round ``next_request``
    returns None (backoff), ``Sender._maybe_send_transactional_request`` returns False,
    and ``run_once`` polls with the timeout of ``send_producer_data``, which is unbounded
    when no batch is queued and the producer has an id. Nothing wakes the sender when the
    backoff ends, so the request stays queued (until some unrelated wakeup). Java's
    Sender sleeps retryBackoffMs and sends the retry (TransactionManager.nextRequest /
    Sender.maybeSendAndPollTransactionalRequest).

    The broker answers CONCURRENT_TRANSACTIONS whenever a request of the next transaction
    (or the KIP-360 epoch bump after an abort) reaches the coordinator before it has
    written the markers of the previous one, which is common: AddOffsetsToTxn right after
    commit_transaction(); InitProducerId right after the EndTxn of an abort that follows a
    failed send; AddPartitionsToTxn right after a commit when the transaction is then
    aborted at once (the abort drops the queued batches, the retried AddPartitionsToTxn
    and the EndTxn wait forever). While batches are queued the sender polls with timeout
    0, so a transaction that goes on sending records does not stall."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(kafka, name: str, partitions: int = 1, replication_factor: int = 1,
                 config: dict | None = None, timeout: float = 30.0) -> None:
    """Create a topic and wait until every partition's leader serves it (right after
    CreateTopics a leader may still answer NOT_LEADER_OR_FOLLOWER for a moment)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    kafka.create_topic(name, partitions=partitions, replication_factor=replication_factor,
                       config=config)
    deadline = time.monotonic() + timeout
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers,
                         "group.id": "fastprod-test-settle"})
    try:
        for p in range(partitions):
            while True:
                try:
                    consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5,
                                                   cached=False)
                    break
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    finally:
        consumer.close()


@pytest.fixture
def producers():
    """make(bootstrap, **config) -> Producer; every producer made is closed afterwards."""
    made: list[Producer] = []

    def make(bootstrap: str, **config) -> Producer:
        producer = Producer({"bootstrap.servers": bootstrap, **config})
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close(5)


def txn_producer(make, kafka, transactional_id: str | None = None, **config) -> Producer:
    """A transactional producer, initialized."""
    producer = make(kafka.bootstrap_servers,
                    **{"transactional.id": transactional_id or unique("txn"), **config})
    producer.init_transactions(CALL_TIMEOUT)
    return producer


def end_transaction(producer: Producer, commit: bool, stalls: list[str] | None = None,
                    timeout: float = STALL_TIMEOUT) -> None:
    """commit or abort where the coordinator-retry stall can strike. Without ``stalls``:
    raise CoordinatorRetryStall instead of a plain timeout. With ``stalls``: note the
    stall and call again, which wakes the sender thread and keeps waiting for the same
    request (as the KafkaTimeoutError message allows), so the test can check the rest
    and raise CoordinatorRetryStall at its end."""
    call = producer.commit_transaction if commit else producer.abort_transaction
    try:
        call(timeout)
    except KafkaTimeoutError as e:
        if stalls is None:
            raise CoordinatorRetryStall(f"{call.__name__}() did not complete within "
                                        f"{timeout} s (stalled retry)") from e
        stalls.append(f"{call.__name__}() stalled for {timeout} s")
        call(CALL_TIMEOUT)


def raise_stalls(stalls: list[str]) -> None:
    if stalls:
        raise CoordinatorRetryStall("; ".join(stalls))


def error_chain(exc: BaseException | None) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def assert_fenced(exc: BaseException) -> None:
    """A call on a fenced producer: IllegalStateError (fastprod) or ProducerFencedError /
    InvalidProducerEpochError itself (Java), with the broker's fencing error in the chain."""
    assert isinstance(exc, (IllegalStateError, ProducerFencedError, InvalidProducerEpochError)), \
        repr(exc)
    assert any(isinstance(e, (ProducerFencedError, InvalidProducerEpochError))
               for e in error_chain(exc)), f"no fencing error behind {exc!r}"


# ---- independent readers -----------------------------------------------------------------


def java(kafka, topic: str, expected: int, isolation: str) -> list[readers.Record]:
    return readers.by_partition_offset(readers.java_read(
        kafka.bootstrap_servers, topic, expected, isolation=isolation))


def java_many(kafka, *reads: tuple[str, int, str]) -> list[list[readers.Record]]:
    """Several Java reads (topic, expected, isolation) in parallel JVMs."""
    with ThreadPoolExecutor(len(reads)) as ex:
        futures = [ex.submit(java, kafka, *r) for r in reads]
        return [f.result() for f in futures]


class EndOffsets:
    """End offsets seen by kafka-python: the high watermark (read_uncommitted) and the
    last stable offset (read_committed), which an open transaction holds back."""

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer

        self._consumers = {
            iso: KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=iso,
                               enable_auto_commit=False, client_id=f"fastprod-test-{iso}")
            for iso in ("read_uncommitted", "read_committed")}

    def __call__(self, topic: str, partitions: int, isolation: str) -> dict[int, int]:
        from kafka import TopicPartition as KTP

        ends = self._consumers[isolation].end_offsets(
            [KTP(topic, p) for p in range(partitions)], timeout_ms=10_000)
        return {tp.partition: offset for tp, offset in ends.items()}

    def hw(self, topic: str, partitions: int) -> dict[int, int]:
        return self(topic, partitions, "read_uncommitted")

    def lso(self, topic: str, partitions: int) -> dict[int, int]:
        return self(topic, partitions, "read_committed")

    def wait_stable(self, topic: str, partitions: int, timeout: float) -> float:
        """Wait until no transaction holds the LSO back on any partition; returns the
        seconds waited."""
        t0 = time.monotonic()
        while True:
            hw, lso = self.hw(topic, partitions), self.lso(topic, partitions)
            if hw == lso:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{topic}: LSO {lso} still behind the high watermark "
                                     f"{hw} after {timeout} s: a transaction is still open")
            time.sleep(0.1)

    def close(self) -> None:
        for c in self._consumers.values():
            c.close()


@contextlib.contextmanager
def end_offsets(bootstrap: str):
    eo = EndOffsets(bootstrap)
    try:
        yield eo
    finally:
        eo.close()


class GroupOffsets:
    """A group's committed offsets as kafka-python's KafkaConsumer.committed() reads them
    (OffsetFetch; the reader never joins the group)."""

    def __init__(self, bootstrap: str, group: str) -> None:
        from kafka import KafkaConsumer

        self.group = group
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                       enable_auto_commit=False)

    def get(self, topic: str, partitions: int) -> dict[int, tuple[int, str] | None]:
        from kafka import TopicPartition as KTP

        out = {}
        for p in range(partitions):
            om = self._consumer.committed(KTP(topic, p), metadata=True)
            out[p] = None if om is None else (om.offset, om.metadata or "")
        return out

    def wait_for(self, topic: str, partitions: int, want: dict, timeout: float = 15.0) -> dict:
        """Poll until the committed offsets equal ``want`` (the markers of a committed
        transaction reach __consumer_offsets shortly after commit_transaction returns);
        returns what was last read."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.get(topic, partitions)
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def close(self) -> None:
        self._consumer.close()


def java_group_offsets(kafka, *groups: str) -> dict[str, dict[tuple[str, int], int]]:
    """Committed offsets as Kafka's own kafka-consumer-groups tool reports them
    (ConsumerGroupCommand --describe --offsets): {group: {(topic, partition): offset}}."""
    from fastprod.localkafka import run_tool

    args = ["--bootstrap-server", kafka.bootstrap_servers, "--describe", "--offsets"]
    for group in groups:
        args += ["--group", group]
    proc = run_tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", args)
    assert proc.returncode == 0, proc.stdout
    out: dict[str, dict[tuple[str, int], int]] = {g: {} for g in groups}
    for line in proc.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[0] in out and cols[2].isdigit():
            out[cols[0]][(cols[1], int(cols[2]))] = -1 if cols[3] == "-" else int(cols[3])
    return out


# ---- 1. read_committed sees every committed record and no aborted one --------------------


@dataclass
class Rec:
    seq: int  # global send order
    txn: int
    key: bytes | None
    value: bytes
    headers: tuple
    partition: int = -1
    offset: int = -1
    written: bool = False  # acknowledged by the broker (committed or not)


def _queue_workload(producer: Producer, topic: str, txn: int, partitions: int,
                    recs: list[Rec]) -> list[tuple[list[Rec], object]]:
    """One transaction's records: send() keyed (bytes and str keys, some with headers),
    unkeyed and to explicit partitions, then send_batch() keyed and unkeyed."""
    pending: list[tuple[list[Rec], object]] = []

    def add(value: bytes, key, headers=None) -> Rec:
        key_bytes = key.encode() if isinstance(key, str) else key
        rec = Rec(len(recs), txn, key_bytes, value, tuple(headers or ()))
        recs.append(rec)
        return rec

    def one(value: bytes, key=None, partition=None, headers=None) -> None:
        rec = add(value, key, headers)
        pending.append(([rec], producer.send(topic, value, key=key, partition=partition,
                                             headers=headers)))

    for i in range(20):
        headers = [("txn", b"%d" % txn), ("i", b"%d" % i)] if i % 3 == 0 else None
        one(b"t%d:keyed:%d" % (txn, i), key=b"key-%d" % (i % 7), headers=headers)
    for i in range(5):
        one(b"t%d:strkey:%d" % (txn, i), key=f"str-key-{i}")
    for i in range(15):
        one(b"t%d:unkeyed:%d" % (txn, i))
    for i in range(10):
        one(b"t%d:explicit:%d" % (txn, i), partition=(i + txn) % partitions)

    values = [b"t%d:batch-keyed:%d" % (txn, i) for i in range(40)]
    keys = [b"bk-%d" % (i % 11) for i in range(40)]
    batch_recs = [add(v, k) for v, k in zip(values, keys)]
    pending.append((batch_recs, producer.send_batch(topic, values, keys=keys)))

    values = [b"t%d:batch-unkeyed:%d" % (txn, i) for i in range(40)]
    batch_recs = [add(v, None) for v in values]
    pending.append((batch_recs, producer.send_batch(topic, values)))
    return pending


def _settle(pending, must_succeed: bool) -> None:
    """Record where each record went; with must_succeed=False (an abort before the
    records were flushed) a record either was written or failed with
    TransactionAbortedError (its batch never left)."""
    for recs, future in pending:
        if not isinstance(future, BatchFuture):
            error = future.exception(CALL_TIMEOUT)
            if error is None:
                md = future.result(0)
                recs[0].partition, recs[0].offset, recs[0].written = md.partition, md.offset, True
            else:
                assert not must_succeed, f"{recs[0].value!r} failed: {error!r}"
                assert isinstance(error, TransactionAbortedError), repr(error)
            continue
        errors = dict(future.errors(CALL_TIMEOUT))
        if not errors:
            for rec, md in zip(recs, future.result(0)):
                rec.partition, rec.offset, rec.written = md.partition, md.offset, True
            continue
        assert not must_succeed, f"send_batch failed: {errors}"
        for i, rec in enumerate(recs):
            if i in errors:
                assert isinstance(errors[i], TransactionAbortedError), repr(errors[i])
            else:
                rec.written = True  # written; its offset is not public for a partial batch


def _check_read(records: list[readers.Record], want: list[Rec], what: str) -> None:
    """``records`` hold exactly ``want``: same values (no extra, no duplicate), at the
    offsets the futures reported, with their keys and headers, in send order per
    partition."""
    got = Counter(r.value for r in records)
    expected = Counter(rec.value for rec in want)
    extra, missing = got - expected, expected - got
    assert not extra and not missing, (
        f"{what}: {sum(extra.values())} unexpected record(s) (e.g. "
        f"{sorted(extra)[:5]}), {sum(missing.values())} missing (e.g. {sorted(missing)[:5]})")
    by_value = {rec.value: rec for rec in want}
    last_seq: dict[int, int] = defaultdict(lambda: -1)
    for r in records:
        rec = by_value[r.value]
        if rec.offset >= 0:
            assert (r.partition, r.offset) == (rec.partition, rec.offset), \
                f"{what}: {r.value!r} at {r.partition}/{r.offset}, future said " \
                f"{rec.partition}/{rec.offset}"
        assert r.key == rec.key, f"{what}: {r.value!r} key {r.key!r} != {rec.key!r}"
        assert r.headers == rec.headers, f"{what}: {r.value!r} headers {r.headers!r}"
        assert rec.seq > last_seq[r.partition], \
            f"{what}: partition {r.partition} out of send order at {r.value!r}"
        last_seq[r.partition] = rec.seq


def test_read_committed_sees_exactly_the_committed_records(kafka, producers):
    topic = unique("txn-mixed")
    partitions = 4
    create_topic(kafka, topic, partitions)
    producer = txn_producer(producers, kafka)
    plan = ["commit", "abort", "commit", "abort-unflushed", "commit", "commit", "abort",
            "commit"]
    recs: list[Rec] = []
    stalls: list[str] = []
    for txn, outcome in enumerate(plan):
        producer.begin_transaction()
        pending = _queue_workload(producer, topic, txn, partitions, recs)
        if outcome == "commit":
            producer.commit_transaction(CALL_TIMEOUT)
            _settle(pending, must_succeed=True)
        elif outcome == "abort":
            producer.flush(CALL_TIMEOUT)  # every record written, then aborted
            _settle(pending, must_succeed=True)
            producer.abort_transaction(CALL_TIMEOUT)
        else:  # abort with records still queued: those fail, never reach the log
            end_transaction(producer, commit=False, stalls=stalls)
            _settle(pending, must_succeed=False)

    committed = [r for r in recs if plan[r.txn] == "commit"]
    written = [r for r in recs if r.written]
    aborted_written = [r for r in written if plan[r.txn] != "commit"]
    assert len(aborted_written) >= 2 * 130, "the flushed aborts must have written records"
    assert {r.partition for r in committed} == set(range(partitions))

    rc, ru = java_many(kafka, (topic, len(committed), "read_committed"),
                       (topic, len(written), "read_uncommitted"))
    _check_read(rc, committed, "Java read_committed")
    _check_read(ru, written, "Java read_uncommitted")
    # librdkafka filters aborted transactions its own way (aborted-transaction list in
    # the fetch response): it must agree.
    lr = readers.confluent_read(kafka.bootstrap_servers, topic, len(committed),
                                isolation="read_committed")
    _check_read(readers.by_partition_offset(lr), committed, "librdkafka read_committed")
    raise_stalls(stalls)  # everything else held


# ---- 2. send_offsets_to_transaction ------------------------------------------------------


def test_send_offsets_to_transaction(kafka, producers):
    """Offsets committed in a transaction appear with its commit and never with its abort:
    a bare group id string, ConsumerGroupMetadata, and a live kafka-python group member's
    group_metadata() (consume-transform-produce); a stale member is refused (abortable)."""
    from kafka import KafkaConsumer, OffsetAndMetadata
    from kafka import TopicPartition as KTP

    src, out = unique("txn-src"), unique("txn-out")
    create_topic(kafka, src, 2)
    create_topic(kafka, out, 2)
    seed = producers(kafka.bootstrap_servers)
    for i in range(40):
        seed.send(src, b"src:%d" % i, partition=i % 2)
    seed.flush(CALL_TIMEOUT)

    producer = txn_producer(producers, kafka)
    visible: list[bytes] = []  # out records of committed transactions

    def out_records(tag: str, n: int = 3) -> list[bytes]:
        values = [b"%s:%d" % (tag.encode(), i) for i in range(n)]
        for i, v in enumerate(values):
            producer.send(out, v, partition=i % 2)
        return values

    group = unique("txn-group")
    offsets = GroupOffsets(kafka.bootstrap_servers, group)
    try:
        # Every transaction sends records before its offsets, as a consume-transform-
        # produce loop does (an offsets-only transaction right after a commit can stall:
        # test_offsets_only_transaction_right_after_a_commit).
        producer.begin_transaction()
        visible += out_records("str-commit")
        producer.send_offsets_to_transaction({(src, 0): 5, (src, 1): (7, "meta-1")},
                                             group, CALL_TIMEOUT)
        producer.commit_transaction(CALL_TIMEOUT)
        want = {0: (5, ""), 1: (7, "meta-1")}
        assert offsets.wait_for(src, 2, want) == want

        producer.begin_transaction()
        out_records("cgm-abort")
        producer.send_offsets_to_transaction(
            {KTP(src, 0): OffsetAndMetadata(9, "aborted", -1), KTP(src, 1): 11},
            ConsumerGroupMetadata(group), CALL_TIMEOUT)
        producer.flush(CALL_TIMEOUT)
        producer.abort_transaction(CALL_TIMEOUT)

        producer.begin_transaction()
        visible += out_records("cgm-commit")
        producer.send_offsets_to_transaction({(src, 1): 13}, ConsumerGroupMetadata(group),
                                             CALL_TIMEOUT)
        producer.commit_transaction(CALL_TIMEOUT)
        # Once this commit shows, the abort before it has been decided: partition 0
        # keeps the first commit's offset, never the aborted 9.
        want = {0: (5, ""), 1: (13, "")}
        assert offsets.wait_for(src, 2, want) == want
    finally:
        offsets.close()

    # A live group member (classic protocol, kafka-python) reads src; the transformed
    # records and its positions commit together, with its generation and member id.
    live_group = unique("txn-live")
    consumer = KafkaConsumer(src, bootstrap_servers=kafka.bootstrap_servers,
                             group_id=live_group, enable_auto_commit=False,
                             auto_offset_reset="earliest", isolation_level="read_committed")
    live_offsets = GroupOffsets(kafka.bootstrap_servers, live_group)
    try:
        consumed = []
        deadline = time.monotonic() + 30
        while len(consumed) < 40 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                consumed += batch
        assert len(consumed) == 40
        member = consumer.group_metadata()
        assert member.generation_id >= 1 and member.member_id, member
        positions = {p: consumer.position(KTP(src, p)) for p in range(2)}
        assert positions == {0: 20, 1: 20}

        producer.begin_transaction()
        for rec in consumed:
            producer.send(out, rec.value.replace(b"src:", b"live:"), partition=rec.partition)
            visible.append(rec.value.replace(b"src:", b"live:"))
        producer.send_offsets_to_transaction(
            {KTP(src, p): OffsetAndMetadata(pos, "live", -1) for p, pos in positions.items()},
            ConsumerGroupMetadata(member.group_id, member.generation_id, member.member_id,
                                  member.group_instance_id), CALL_TIMEOUT)
        producer.commit_transaction(CALL_TIMEOUT)
        want = {0: (20, "live"), 1: (20, "live")}
        assert live_offsets.wait_for(src, 2, want) == want

        # The member leaves: its metadata is stale. The group coordinator refuses the
        # offsets (Java: CommitFailedException); the transaction can only abort.
        consumer.close()
        consumer = None
        producer.begin_transaction()
        out_records("stale-abort")
        with pytest.raises((UnknownMemberIdError, IllegalGenerationError)):
            producer.send_offsets_to_transaction({KTP(src, 0): 1}, member, CALL_TIMEOUT)
        with pytest.raises(IllegalStateError):
            producer.commit_transaction(CALL_TIMEOUT)
        producer.abort_transaction(CALL_TIMEOUT)
        assert live_offsets.get(src, 2) == want
    finally:
        if consumer is not None:
            consumer.close()
        live_offsets.close()

    # The records went with their offsets: only the committed transactions' are visible.
    # And Kafka's own tool reads the same offsets as kafka-python did.
    with ThreadPoolExecutor(2) as ex:
        rc = ex.submit(java, kafka, out, len(visible), "read_committed")
        tool = ex.submit(java_group_offsets, kafka, group, live_group)
        assert Counter(r.value for r in rc.result()) == Counter(visible)
        assert tool.result() == {group: {(src, 0): 5, (src, 1): 13},
                                 live_group: {(src, 0): 20, (src, 1): 20}}


# ---- 3. fencing --------------------------------------------------------------------------


def _fence(make, kafka, topic: str, tag: str) -> tuple[Producer, Producer, str]:
    """p1 opens a transaction and writes to partition 0; p2, same transactional.id,
    calls init_transactions(): p1 is fenced and its transaction aborted."""
    tid = unique(f"fence-{tag}")
    p1 = txn_producer(make, kafka, tid)
    p1.begin_transaction()
    futures = [p1.send(topic, b"p1-%s:%d" % (tag.encode(), i), partition=0) for i in range(3)]
    p1.flush(CALL_TIMEOUT)
    for f in futures:
        f.result(0)  # in the log, uncommitted
    p2 = txn_producer(make, kafka, tid)
    return p1, p2, tid


def test_fencing_by_a_new_producer_with_the_same_transactional_id(kafka, producers):
    topic = unique("txn-fence")
    create_topic(kafka, topic, 2)
    p2_values: list[bytes] = []
    p1_values: list[bytes] = []

    def p2_commits(p2: Producer, tag: str) -> None:
        p2.begin_transaction()
        values = [b"p2-%s:%d" % (tag.encode(), i) for i in range(2)]
        for v in values:
            p2.send(topic, v, partition=0)
        p2.commit_transaction(CALL_TIMEOUT)
        p2_values.extend(values)

    # (a) p1's next send goes to a partition not yet in its transaction: the
    # AddPartitionsToTxn is refused with PRODUCER_FENCED.
    p1, p2, _ = _fence(producers, kafka, topic, "new")
    late = p1.send(topic, b"p1-new:late", partition=1)  # state is only known on the wire
    assert isinstance(late.exception(CALL_TIMEOUT), ProducerFencedError)
    with pytest.raises(Exception) as excinfo:
        p1.commit_transaction(CALL_TIMEOUT)
    assert_fenced(excinfo.value)
    p2_commits(p2, "new")

    # (b) p1's next send goes to a partition already in its transaction: the Produce
    # request itself is refused (INVALID_PRODUCER_EPOCH, as for the Java producer).
    p1, p2, _ = _fence(producers, kafka, topic, "added")
    late = p1.send(topic, b"p1-added:late", partition=0)
    assert isinstance(late.exception(CALL_TIMEOUT), InvalidProducerEpochError)
    with pytest.raises(Exception) as excinfo:
        p1.commit_transaction(CALL_TIMEOUT)
    assert_fenced(excinfo.value)
    p2_commits(p2, "added")

    # (c) p1 commits straight away: EndTxn is refused with PRODUCER_FENCED.
    p1, p2, _ = _fence(producers, kafka, topic, "commit")
    with pytest.raises(ProducerFencedError):
        p1.commit_transaction(CALL_TIMEOUT)
    p2_commits(p2, "commit")

    for tag in ("new", "added", "commit"):
        p1_values += [b"p1-%s:%d" % (tag.encode(), i) for i in range(3)]
    rc, ru = java_many(kafka, (topic, len(p2_values), "read_committed"),
                       (topic, len(p2_values) + len(p1_values), "read_uncommitted"))
    assert Counter(r.value for r in rc) == Counter(p2_values)
    # p1's records were written (then aborted by p2's init_transactions); the late ones
    # never were.
    assert Counter(r.value for r in ru) == Counter(p2_values + p1_values)


# ---- 4. a producer killed inside a transaction -------------------------------------------


@pytest.fixture(scope="module")
def kafka_quick_txn_abort():
    """A broker that looks for timed-out transactions every second (default: 10 s)."""
    with LocalKafka(nodes=1, broker_config={
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000}) as k:
        yield k


class Child:
    """tests/txn_child.py in a subprocess: one committed transaction, then one left open."""

    def __init__(self, bootstrap: str, topic: str, transactional_id: str, timeout_ms: int,
                 count: int) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), bootstrap, topic, transactional_id, str(timeout_ms),
             str(count)], stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def wait_open(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = "(timeout)"
            if line is not None and line.startswith("OPEN"):
                return
            if line is None or line == "(timeout)":
                self.kill()
                self._stderr.seek(0)
                raise AssertionError(f"txn_child did not open its transaction ({line}):\n"
                                     f"{self._stderr.read().decode(errors='replace')[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        self.kill()
        self.proc.stdout.close()
        self._stderr.close()


def _killed_inside_a_transaction(kafka, topic: str, timeout_ms: int, count: int) -> str:
    """Run the child until its second transaction is written and open, SIGKILL it, and
    check that the open transaction holds the LSO back. Returns its transactional.id."""
    tid = unique("killed")
    child = Child(kafka.bootstrap_servers, topic, tid, timeout_ms, count)
    try:
        child.wait_open()
        child.kill()
    finally:
        child.close()
    assert child.proc.returncode == -signal.SIGKILL
    return tid


def _check_only_committed(kafka, topic: str, count: int, more: list[bytes] = ()) -> None:
    committed = [b"committed:%d" % i for i in range(count)] + list(more)
    dangling = [b"dangling:%d" % i for i in range(count)]
    rc, ru = java_many(kafka, (topic, len(committed), "read_committed"),
                       (topic, len(committed) + count, "read_uncommitted"))
    assert Counter(r.value for r in rc) == Counter(committed)
    assert Counter(r.value for r in ru) == Counter(committed + dangling)


def test_killed_producer_transaction_is_aborted_when_it_times_out(kafka_quick_txn_abort):
    kafka = kafka_quick_txn_abort
    topic, partitions, count = unique("txn-killed-timeout"), 3, 12
    create_topic(kafka, topic, partitions)
    with end_offsets(kafka.bootstrap_servers) as eo:
        _killed_inside_a_transaction(kafka, topic, 3000, count)
        t_kill = time.monotonic()
        lso, hw = eo.lso(topic, partitions), eo.hw(topic, partitions)
        assert lso != hw, f"the killed producer's transaction should hold the LSO back: " \
                          f"LSO {lso}, high watermark {hw}"
        # transaction.timeout.ms=3000, checked every second by this broker
        eo.wait_stable(topic, partitions, timeout=30)
        waited = time.monotonic() - t_kill
    assert waited < 15, f"the broker took {waited:.1f} s to abort the timed-out transaction"
    _check_only_committed(kafka, topic, count)


def test_killed_producer_transaction_is_aborted_by_the_next_producer(kafka, producers):
    topic, partitions, count = unique("txn-killed-fenced"), 3, 12
    create_topic(kafka, topic, partitions)
    with end_offsets(kafka.bootstrap_servers) as eo:
        # A long transaction timeout: only the new producer can end it within the test.
        tid = _killed_inside_a_transaction(kafka, topic, 600_000, count)
        lso, hw = eo.lso(topic, partitions), eo.hw(topic, partitions)
        assert lso != hw, f"the killed producer's transaction should hold the LSO back: " \
                          f"LSO {lso}, high watermark {hw}"
        t0 = time.monotonic()
        successor = txn_producer(producers, kafka, tid)  # init_transactions aborts it
        took = time.monotonic() - t0
        assert took < 20, f"init_transactions took {took:.1f} s"
        # InitProducerId completes once the coordinator has written the abort markers.
        eo.wait_stable(topic, partitions, timeout=5)
    successor.begin_transaction()
    after = [b"after:%d" % i for i in range(4)]
    for v in after:
        successor.send(topic, v)
    successor.commit_transaction(CALL_TIMEOUT)
    _check_only_committed(kafka, topic, count, after)


# ---- 5. calls in the wrong state ---------------------------------------------------------


def test_transactional_methods_need_transactional_id(kafka, producers):
    producer = producers(kafka.bootstrap_servers)
    calls = {
        "init_transactions": lambda: producer.init_transactions(1),
        "begin_transaction": producer.begin_transaction,
        "send_offsets_to_transaction":
            lambda: producer.send_offsets_to_transaction({("t", 0): 1}, "g", 1),
        "commit_transaction": lambda: producer.commit_transaction(1),
        "abort_transaction": lambda: producer.abort_transaction(1),
    }
    for name, call in calls.items():
        with pytest.raises(IllegalStateError, match="transactional.id"):
            call()
    # The producer itself still works (non-transactional sends).
    topic = unique("txn-none")
    create_topic(kafka, topic)
    producer.send(topic, b"plain").result(CALL_TIMEOUT)


def test_calls_in_the_wrong_state(kafka, producers):
    topic = unique("txn-states")
    create_topic(kafka, topic, 2)
    producer = producers(kafka.bootstrap_servers, **{"transactional.id": unique("states")})

    def raises(call, match: str | None = None) -> IllegalStateError:
        with pytest.raises(IllegalStateError, match=match) as excinfo:
            call()
        return excinfo.value

    # before init_transactions()
    raises(producer.begin_transaction, "init_transactions")
    raises(lambda: producer.send(topic, b"x"))
    raises(lambda: producer.send_batch(topic, [b"x", b"y"]))
    raises(lambda: producer.send_offsets_to_transaction({(topic, 0): 1}, "g", 1))
    raises(lambda: producer.commit_transaction(1))
    raises(lambda: producer.abort_transaction(1))

    producer.init_transactions(CALL_TIMEOUT)
    raises(lambda: producer.init_transactions(1))  # only once
    # ready, no transaction
    raises(lambda: producer.send(topic, b"x"), "begin_transaction")
    raises(lambda: producer.send(topic, b"x", key=b"k", partition=1), "begin_transaction")
    raises(lambda: producer.send_batch(topic, [b"x"], keys=[b"k"]), "begin_transaction")
    raises(lambda: producer.send_offsets_to_transaction({(topic, 0): 1}, "g", 1))
    raises(lambda: producer.commit_transaction(1))
    raises(lambda: producer.abort_transaction(1))

    producer.begin_transaction()
    raises(producer.begin_transaction)  # twice
    f = producer.send(topic, b"in-txn", partition=0)
    producer.commit_transaction(CALL_TIMEOUT)
    assert f.result(0).offset == 0
    # after a commit: ready again, so the same rules hold
    raises(lambda: producer.send(topic, b"x"))
    raises(lambda: producer.commit_transaction(1))
    producer.begin_transaction()
    producer.abort_transaction(CALL_TIMEOUT)  # an empty transaction aborts at once
    raises(lambda: producer.abort_transaction(1))

    producer.close(5)
    for call in (producer.begin_transaction, lambda: producer.send(topic, b"x"),
                 lambda: producer.commit_transaction(1), lambda: producer.init_transactions(1)):
        with pytest.raises(ProducerClosedError):
            call()


def test_a_fenced_producer_refuses_every_call(kafka, producers):
    """After a fatal error the producer can only be closed. fastprod raises
    IllegalStateError caused by the ProducerFencedError; Java throws ProducerFencedException
    from begin/commit/abort/sendOffsets and a KafkaException caused by it from send."""
    topic = unique("txn-fatal")
    create_topic(kafka, topic, 2)
    p1, p2, _ = _fence(producers, kafka, topic, "fatal")
    with pytest.raises(ProducerFencedError):
        p1.commit_transaction(CALL_TIMEOUT)
    calls = {
        "begin_transaction": p1.begin_transaction,
        "send": lambda: p1.send(topic, b"x", partition=0).result(CALL_TIMEOUT),
        "send_batch": lambda: p1.send_batch(topic, [b"x"]).result(CALL_TIMEOUT),
        "send_offsets_to_transaction":
            lambda: p1.send_offsets_to_transaction({(topic, 0): 1}, "g", CALL_TIMEOUT),
        "commit_transaction": lambda: p1.commit_transaction(CALL_TIMEOUT),
        "abort_transaction": lambda: p1.abort_transaction(CALL_TIMEOUT),
        "init_transactions": lambda: p1.init_transactions(CALL_TIMEOUT),
    }
    for name, call in calls.items():
        with pytest.raises(Exception) as excinfo:
            call()
        assert not isinstance(excinfo.value, KafkaTimeoutError), f"{name}: {excinfo.value!r}"
        assert_fenced(excinfo.value)
    p1.close(5)
    # The new producer is unaffected.
    p2.begin_transaction()
    p2.send(topic, b"p2", partition=1)
    p2.commit_transaction(CALL_TIMEOUT)


def test_abortable_error_then_abort_then_a_new_transaction(kafka, producers):
    """A record over the topic's max.message.bytes fails in the broker: the transaction
    can no longer commit (nor send, nor take offsets), abort works, and the next
    transaction commits. The failed batch left a sequence hole, so the abort also bumps
    the epoch (KIP-360, InitProducerId with the current id and epoch) as Java does."""
    topic = unique("txn-too-large")
    create_topic(kafka, topic, 2, config={"max.message.bytes": 1000})
    producer = txn_producer(producers, kafka, **{"max.request.size": 10_000_000})
    producer.begin_transaction()
    ok = producer.send(topic, b"before-the-failure", partition=1)
    producer.flush(CALL_TIMEOUT)
    ok.result(0)
    big = producer.send(topic, b"x" * 5000, partition=0)  # alone in its batch
    assert isinstance(big.exception(CALL_TIMEOUT), RecordTooLargeError)

    for call in (lambda: producer.send(topic, b"y", partition=1),
                 lambda: producer.send_batch(topic, [b"y"]),
                 lambda: producer.send_offsets_to_transaction({(topic, 0): 1}, "g", 1),
                 producer.begin_transaction):
        with pytest.raises(IllegalStateError):
            call()
    for _ in range(2):  # and it stays so
        with pytest.raises(IllegalStateError) as excinfo:
            producer.commit_transaction(CALL_TIMEOUT)
        assert any(isinstance(e, RecordTooLargeError) for e in error_chain(excinfo.value))

    end_transaction(producer, commit=False)
    producer.begin_transaction()
    after = [b"after:%d" % i for i in range(4)]
    futures = [producer.send(topic, v, partition=i % 2) for i, v in enumerate(after)]
    producer.commit_transaction(CALL_TIMEOUT)
    for f in futures:
        f.result(0)
    rc, ru = java_many(kafka, (topic, len(after), "read_committed"),
                       (topic, len(after) + 1, "read_uncommitted"))
    assert Counter(r.value for r in rc) == Counter(after)
    assert Counter(r.value for r in ru) == Counter(after + [b"before-the-failure"])


# ---- 6. two topics, three brokers --------------------------------------------------------


def test_transaction_over_two_topics_on_three_brokers(kafka_cluster3, producers):
    kafka = kafka_cluster3
    a, b = unique("txn-3a"), unique("txn-3b")
    parts = {a: 3, b: 2}
    for topic, n in parts.items():
        create_topic(kafka, topic, n, replication_factor=3,
                     config={"min.insync.replicas": 2})
    leaders = {p.leader for t in parts for p in kafka.metadata([t]).topics[t].partitions}
    producer = txn_producer(producers, kafka, **{"acks": "all"})
    visible: dict[str, list[bytes]] = {a: [], b: []}
    everything: dict[str, list[bytes]] = {a: [], b: []}

    def write(tag: str) -> dict[str, list[bytes]]:
        sent = {}
        for topic in parts:
            keyed = [b"%s:%s:keyed:%d" % (tag.encode(), topic[-4:].encode(), i)
                     for i in range(30)]
            for i, v in enumerate(keyed):
                producer.send(topic, v, key=b"k%d" % i)
            batch = [b"%s:%s:batch:%d" % (tag.encode(), topic[-4:].encode(), i)
                     for i in range(50)]
            producer.send_batch(topic, batch)
            sent[topic] = keyed + batch
            everything[topic] += sent[topic]
        producer.flush(CALL_TIMEOUT)
        return sent

    with end_offsets(kafka.bootstrap_servers) as eo:
        producer.begin_transaction()
        sent = write("first")
        # Written to every partition of both topics, visible on none of them.
        for topic, n in parts.items():
            assert all(v > 0 for v in eo.hw(topic, n).values()), topic
            assert eo.lso(topic, n) == {p: 0 for p in range(n)}, topic
        producer.commit_transaction(CALL_TIMEOUT)
        for topic, n in parts.items():
            visible[topic] += sent[topic]
            eo.wait_stable(topic, n, timeout=15)

        producer.begin_transaction()
        write("aborted")
        producer.abort_transaction(CALL_TIMEOUT)

        producer.begin_transaction()
        sent = write("last")
        producer.commit_transaction(CALL_TIMEOUT)
        for topic, n in parts.items():
            visible[topic] += sent[topic]
            eo.wait_stable(topic, n, timeout=15)

    rca, rcb, rua = java_many(kafka, (a, len(visible[a]), "read_committed"),
                              (b, len(visible[b]), "read_committed"),
                              (a, len(everything[a]), "read_uncommitted"))
    assert Counter(r.value for r in rca) == Counter(visible[a])
    assert Counter(r.value for r in rcb) == Counter(visible[b])
    assert Counter(r.value for r in rua) == Counter(everything[a])
    assert len(leaders) >= 2, f"partition leaders {leaders}: the transaction should span " \
                              f"several brokers"


def _java_string_hash(s: str) -> int:
    h = 0
    for ch in s:  # String.hashCode over UTF-16 code units (ASCII here)
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - 2**32 if h >= 2**31 else h


def transaction_coordinator(kafka, transactional_id: str) -> int:
    """The broker coordinating ``transactional_id``: the leader of its __transaction_state
    partition, Utils.abs(transactionalId.hashCode()) % partition count (as the broker's
    TransactionStateManager.partitionFor computes it)."""
    md = kafka.metadata(["__transaction_state"]).topics["__transaction_state"]
    h = _java_string_hash(transactional_id)
    index = (0 if h == -2**31 else abs(h)) % len(md.partitions)
    return next(p.leader for p in md.partitions if p.partition == index)


def test_commit_survives_a_transaction_coordinator_crash(kafka_cluster3, producers):
    """SIGKILL the transaction coordinator's broker between the last record and the
    commit: the producer finds the new coordinator (the __transaction_state partition has
    replicas on the other two brokers) and the commit goes through, as with Java's
    producer (EndTxn disconnected -> FindCoordinator -> EndTxn again)."""
    kafka = kafka_cluster3
    topic = unique("txn-coord-crash")
    create_topic(kafka, topic, 3, replication_factor=3, config={"min.insync.replicas": 2})
    tid = unique("coord-crash")
    producer = txn_producer(producers, kafka, tid, acks="all")
    producer.begin_transaction()
    values = [b"survives:%d" % i for i in range(30)]
    for i, v in enumerate(values):
        producer.send(topic, v, key=b"k%d" % i)
    producer.flush(CALL_TIMEOUT)
    coordinator = transaction_coordinator(kafka, tid)
    kafka.kill(coordinator)
    t0 = time.monotonic()
    # The coordinator moves after broker.session.timeout.ms (3 s here) and a leader
    # election; 20 s is plenty.
    producer.commit_transaction(20)
    took = time.monotonic() - t0
    rc = java(kafka, topic, len(values), "read_committed")
    assert Counter(r.value for r in rc) == Counter(values), f"commit took {took:.1f} s"


# ---- deviations from the Java producer (strict xfails) -----------------------------------


def test_commit_after_fencing_raises_producer_fenced_error(kafka, producers):
    topic = unique("txn-fence-java")
    create_topic(kafka, topic, 2)
    p1, _, _ = _fence(producers, kafka, topic, "java")
    assert isinstance(p1.send(topic, b"late", partition=1).exception(CALL_TIMEOUT),
                      ProducerFencedError)
    with pytest.raises(ProducerFencedError):
        p1.commit_transaction(CALL_TIMEOUT)


def test_invalid_producer_epoch_on_produce_is_abortable(kafka, producers):
    topic = unique("txn-epoch-java")
    create_topic(kafka, topic, 2)
    p1, _, _ = _fence(producers, kafka, topic, "epoch")
    assert isinstance(p1.send(topic, b"late", partition=0).exception(CALL_TIMEOUT),
                      InvalidProducerEpochError)
    with pytest.raises(InvalidProducerEpochError):
        p1.commit_transaction(CALL_TIMEOUT)
    with pytest.raises(ProducerFencedError):
        p1.abort_transaction(CALL_TIMEOUT)


# ---- regressions: coordinator retries -----------------------------------------------------
#
# Each of these repeats its race until the broker answers CONCURRENT_TRANSACTIONS at least
# once; a transactional request retried after it used to be never sent again (the
# sender's poll was not bounded by the retry backoff), and the call stalled.


def test_offsets_only_transaction_right_after_a_commit(kafka, producers):
    """commit_transaction(), then at once a transaction with only offsets: the
    AddOffsetsToTxn meets the previous transaction's markers (CONCURRENT_TRANSACTIONS)
    and must be retried after retry.backoff.ms."""
    topic = unique("txn-stall-offsets")
    create_topic(kafka, topic, 1)
    producer = txn_producer(producers, kafka)
    group = unique("txn-stall-group")
    for i in range(50):
        producer.begin_transaction()
        producer.send(topic, b"r%d" % i, partition=0)
        producer.commit_transaction(CALL_TIMEOUT)
        producer.begin_transaction()
        try:
            producer.send_offsets_to_transaction({(topic, 0): i + 1}, group, STALL_TIMEOUT)
        except KafkaTimeoutError as e:
            raise CoordinatorRetryStall(f"round {i}: send_offsets_to_transaction() did not "
                                        f"complete within {STALL_TIMEOUT} s") from e
        end_transaction(producer, commit=True)


def test_abort_after_a_failed_send_completes(kafka, producers):
    """A failed batch makes the abort bump the epoch: InitProducerId right after the
    EndTxn, which the coordinator answers CONCURRENT_TRANSACTIONS until its abort markers
    are written; the retry must go out."""
    topic = unique("txn-stall-abort")
    create_topic(kafka, topic, 1, config={"max.message.bytes": 1000})
    producer = txn_producer(producers, kafka, **{"max.request.size": 10_000_000})
    for i in range(25):
        producer.begin_transaction()
        big = producer.send(topic, b"x" * 5000, partition=0)
        assert isinstance(big.exception(CALL_TIMEOUT), RecordTooLargeError)
        end_transaction(producer, commit=False)
