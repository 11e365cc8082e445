"""Metadata: when to refresh, which topics to ask for, the snapshot an update builds,
and what a send waiting for an unknown topic is told. Time is passed in; only
await_topic waits (tens of milliseconds)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from fastprod.cluster.snapshot import Node, PartitionInfo
from fastprod.errors import (
    InvalidTopicError,
    KafkaTimeoutError,
    ProducerClosedError,
    TopicAuthorizationError,
)
from tests.fakes import make_metadata, metadata_response

MAX_AGE = 300_000
BACKOFF = 100
BACKOFF_MAX = 1000


def fresh(**kwargs):
    kwargs.setdefault("metadata_max_age_ms", MAX_AGE)
    kwargs.setdefault("refresh_backoff_ms", BACKOFF)
    kwargs.setdefault("refresh_backoff_max_ms", BACKOFF_MAX)
    return make_metadata(**kwargs)


# ---- when to refresh -------------------------------------------------------------------

def test_a_new_metadata_wants_an_update_at_once():
    assert fresh().time_to_next_update(0) == 0


def test_max_age_after_a_successful_update():
    metadata = fresh()
    metadata.on_request_sent(1000)
    metadata.update(metadata_response({}), 1000)
    assert metadata.time_to_next_update(1000) == MAX_AGE
    assert metadata.time_to_next_update(1000 + MAX_AGE - 1) == 1
    assert metadata.time_to_next_update(1000 + MAX_AGE) == 0


def test_request_update_is_honoured_after_the_backoff():
    metadata = fresh()
    metadata.update(metadata_response({}), 1000)
    metadata.request_update()
    assert metadata.time_to_next_update(1000) == BACKOFF
    assert metadata.time_to_next_update(1000 + BACKOFF) == 0


def test_backoff_grows_exponentially_after_failures_and_resets_on_success():
    """Java's Metadata.timeToAllowUpdate: refresh backoff after the n-th failure is
    retry.backoff.ms * 2**(n-1), at most retry.backoff.max.ms (no jitter here)."""
    metadata = fresh()
    now = 0
    for failures, backoff in enumerate([100, 200, 400, 800, 1000, 1000], start=1):
        metadata.on_request_sent(now)
        metadata.failed_update(now, "connection refused")
        assert metadata.time_to_next_update(now) == backoff, failures
        assert metadata.time_to_next_update(now + backoff) == 0
        now += backoff
    metadata.update(metadata_response({}), now)
    metadata.request_update()
    assert metadata.time_to_next_update(now) == BACKOFF
    assert metadata.last_failure == "connection refused"


def test_an_update_missing_a_requested_topic_asks_again():
    metadata = fresh()
    metadata.add_topic("present", 0)
    metadata.add_topic("missing", 0)
    metadata.update(metadata_response({"present": [0]}), 0)
    assert metadata.time_to_next_update(0) == BACKOFF  # again, after the backoff
    metadata.update(metadata_response({"present": [0], "missing": [0]}), BACKOFF)
    assert metadata.time_to_next_update(BACKOFF) == MAX_AGE


def test_a_leaderless_partition_asks_again():
    metadata = fresh()
    metadata.add_topic("t", 0)
    metadata.update(metadata_response({"t": [0, -1]}), 0)
    assert metadata.time_to_next_update(0) == BACKOFF


def test_adding_a_new_topic_requests_an_update_but_touching_a_known_one_does_not():
    metadata = fresh(leaders={"t": [0]})
    assert metadata.time_to_next_update(0) == MAX_AGE
    metadata.add_topic("t", 10)
    metadata.touch("t", 20)
    assert metadata.time_to_next_update(20) == MAX_AGE - 20
    metadata.add_topic("u", 30)
    assert metadata.time_to_next_update(30) == BACKOFF - 30


# ---- topics to request -------------------------------------------------------------------

def test_topics_idle_past_max_idle_are_dropped():
    metadata = fresh(metadata_max_idle_ms=1000)
    metadata.add_topic("busy", 0)
    metadata.add_topic("idle", 0)
    metadata.touch("busy", 900)
    assert sorted(metadata.topics_to_request(500)) == ["busy", "idle"]
    assert metadata.topics_to_request(1500) == ["busy"]
    assert metadata.topics_to_request(1800) == ["busy"]
    assert metadata.topics_to_request(1901) == []
    metadata.add_topic("idle", 2000)  # sent to again: asked for again
    assert metadata.topics_to_request(2000) == ["idle"]


def test_a_topic_idle_exactly_max_idle_is_dropped():
    metadata = fresh(metadata_max_idle_ms=1000)
    metadata.add_topic("t", 0)
    assert metadata.topics_to_request(1000) == []


# ---- the snapshot ------------------------------------------------------------------------

def test_update_builds_an_immutable_versioned_snapshot():
    metadata = fresh()
    seen = []
    metadata.listeners.append(seen.append)
    before = metadata.snapshot
    metadata.add_topic("t", 0)
    snapshot = metadata.update(metadata_response({"t": [1, -1, 2], "u": [0]}), 0)
    assert snapshot is metadata.snapshot and seen == [snapshot]
    assert snapshot.version == before.version + 1
    assert before.topics == {}  # the old one did not change
    assert snapshot.cluster_id == "test-cluster" and snapshot.controller_id == 0
    assert snapshot.nodes == {i: Node(i, "localhost", 9092 + i) for i in range(3)}
    assert [p.leader for p in snapshot.topics["t"]] == [1, -1, 2]
    assert snapshot.topics["t"][0] == PartitionInfo("t", 0, 1, 7, (1,), (1,), ())
    assert [p.partition for p in snapshot.available_partitions_for_topic("t")] == [0, 2]
    assert snapshot.leader_for("t", 2) == Node(2, "localhost", 9094)
    assert snapshot.leader_for("t", 1) is None
    assert snapshot.leader_for("t", 9) is None
    assert snapshot.partition_count("u") == 1 and snapshot.partition_count("v") is None
    assert snapshot.topic_ids["t"] == uuid.uuid5(uuid.NAMESPACE_DNS, "t")
    with pytest.raises(AttributeError):
        snapshot.version = 99  # type: ignore[misc]
    second = metadata.update(metadata_response({"t": [1, 1, 2]}), 10)
    assert second.version == snapshot.version + 1
    assert [p.leader for p in snapshot.topics["t"]] == [1, -1, 2]


def test_update_records_topic_errors():
    metadata = fresh()
    response = metadata_response({"ok": [0], "electing": [-1]},
                                 topic_errors={"nope": 3, "bad name": 17, "secret": 29,
                                               "electing": 5})
    snapshot = metadata.update(response, 0)
    assert snapshot.topic_errors == {"nope": 3, "bad name": 17, "secret": 29, "electing": 5}
    assert set(snapshot.topics) == {"ok", "electing"}  # LEADER_NOT_AVAILABLE keeps them
    assert [p.leader for p in snapshot.topics["electing"]] == [-1]


def test_a_leader_missing_from_the_brokers_is_no_leader():
    metadata = fresh()
    snapshot = metadata.update(metadata_response({"t": [0, 5]}), 0)
    assert snapshot.leader_for("t", 1) is None
    assert [p.partition for p in snapshot.available_partitions_for_topic("t")] == [0]


def test_metadata_with_an_older_leader_epoch_is_ignored():
    """Java's Metadata.updateLatestMetadata: a lagging broker's answer (an older leader
    epoch) does not move a partition back to its former leader; a newer or equal epoch,
    or none, is taken."""
    metadata = fresh()
    metadata.update(metadata_response({"t": [1, 1]}, leader_epochs={("t", 0): 8,
                                                                    ("t", 1): 3}), 0)
    snapshot = metadata.update(metadata_response({"t": [0, 0]}, leader_epochs={
        ("t", 0): 7, ("t", 1): 4}), 10)
    assert (snapshot.topics["t"][0].leader, snapshot.topics["t"][0].leader_epoch) == (1, 8)
    assert (snapshot.topics["t"][1].leader, snapshot.topics["t"][1].leader_epoch) == (0, 4)
    snapshot = metadata.update(metadata_response({"t": [0, 1]}, leader_epochs={
        ("t", 0): 8, ("t", 1): 4}), 20)
    assert [p.leader for p in snapshot.topics["t"]] == [0, 1]  # same epoch: taken


def test_a_recreated_topic_starts_its_leader_epochs_over():
    """A new topic id (deleted and created again) resets the epochs seen: its first
    leaders have low epochs and must be taken."""
    metadata = fresh()
    metadata.update(metadata_response({"t": [1]}, leader_epochs={("t", 0): 8}), 0)
    response = metadata_response({"t": [2]}, leader_epochs={("t", 0): 0})
    response.topics[0].topic_id = uuid.uuid4()
    snapshot = metadata.update(response, 10)
    assert (snapshot.topics["t"][0].leader, snapshot.topics["t"][0].leader_epoch) == (2, 0)


def test_a_topic_deleted_then_created_again_starts_its_epochs_over():
    """Deleted (gone from a response), then back with a new id: its low epochs count."""
    metadata = fresh()
    metadata.update(metadata_response({"t": [1]}, leader_epochs={("t", 0): 8}), 0)
    metadata.update(metadata_response({}), 10)  # deleted
    response = metadata_response({"t": [2]}, leader_epochs={("t", 0): 0})
    response.topics[0].topic_id = uuid.uuid4()
    snapshot = metadata.update(response, 20)
    assert (snapshot.topics["t"][0].leader, snapshot.topics["t"][0].leader_epoch) == (2, 0)


def test_fatal_topic_errors_fail_await_topic_at_once():
    metadata = fresh()
    metadata.update(metadata_response({}, topic_errors={"bad name": 17, "secret": 29}), 0)
    start = time.monotonic()
    with pytest.raises(InvalidTopicError):
        metadata.await_topic("bad name", 10_000, lambda: None)
    with pytest.raises(TopicAuthorizationError):
        metadata.await_topic("secret", 10_000, lambda: None)
    assert time.monotonic() - start < 1


# ---- await_topic ------------------------------------------------------------------------

def test_await_topic_returns_once_an_update_brings_the_topic():
    metadata = fresh()
    wakeups = []

    def updater():
        while not wakeups:
            time.sleep(0.001)
        metadata.update(metadata_response({"t": [0, 1]}), 0)

    thread = threading.Thread(target=updater)
    thread.start()
    snapshot = metadata.await_topic("t", 5000, lambda: wakeups.append(1))
    thread.join()
    assert len(snapshot.topics["t"]) == 2
    assert "t" in metadata.topics_to_request(0)


def test_await_topic_timeout_names_the_bootstrap_servers_when_no_broker_answered():
    metadata = fresh(bootstrap=(("kafka-a", 9092), ("kafka-b", 19092)))
    metadata.failed_update(0, "connection refused")
    start = time.monotonic()
    with pytest.raises(KafkaTimeoutError) as info:
        metadata.await_topic("t", 50, lambda: None)
    assert 0.045 <= time.monotonic() - start < 1
    message = str(info.value)
    assert "'t'" in message and "50 ms" in message
    assert "kafka-a:9092" in message and "kafka-b:19092" in message
    assert "connection refused" in message


def test_await_topic_timeout_says_when_the_topic_does_not_exist():
    metadata = fresh()
    metadata.update(metadata_response({}, topic_errors={"t": 3}), 0)
    with pytest.raises(KafkaTimeoutError) as info:
        metadata.await_topic("t", 20, lambda: None)
    assert "does not exist" in str(info.value)
    assert "tried" not in str(info.value)


def test_await_topic_fails_when_closed():
    metadata = fresh()
    threading.Timer(0.01, metadata.close).start()
    with pytest.raises(ProducerClosedError):
        metadata.await_topic("t", 5000, lambda: None)

