"""fastprod/sharded/messages.py: every kind survives the wire, and what is not a message
is refused with MalformedMessage instead of being taken for another kind."""

from __future__ import annotations

import uuid

import pytest

from fastprod import errors
from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo
from fastprod.sharded import messages
from fastprod.sharded.messages import (
    TAG_REPORT,
    TAG_TOPIC,
    Answer,
    Ask,
    Flush,
    MalformedMessage,
    Refresh,
    Report,
    Shutdown,
    Snapshot,
    TopicRegistration,
)


def snapshot() -> ClusterSnapshot:
    return ClusterSnapshot(
        version=7, cluster_id="c1", controller_id=2,
        nodes={1: Node(1, "127.0.0.1", 9092, None), 2: Node(2, "localhost", 9093, "r2")},
        topics={"t": (PartitionInfo("t", 0, 1, 5, (1, 2), (1,), (2,)),
                      PartitionInfo("t", 1, -1, 3, (2,), (), (2,)))},
        topic_errors={"gone": 3},
        topic_ids={"t": uuid.UUID(int=42)})


@pytest.mark.parametrize("message", [
    TopicRegistration(3, "orders"),
    Report(10, 2, 5, 1, 100, -1, None, None),
    Report(10, 0, 3, 0, -1, -1, [7, "RequestTimedOutError", "late"], {1: [10, "X", "m"]}),
    Flush(),
    Shutdown(1500),
    Ask(9, "status"),
    Ask(10, "ping", {"a": [1, b"x"]}),
    Answer(9, {"pid": 1}),
    Answer(11, None, [None, "ValueError", "unknown question"]),
    Refresh(["a", "b"]),
], ids=lambda m: type(m).__name__)
def test_round_trip(message):
    assert messages.decode(messages.encode(message)) == message


def test_snapshot_round_trip_keeps_every_field():
    back = messages.decode(messages.encode(Snapshot(snapshot())))
    assert isinstance(back, Snapshot)
    assert back.snapshot == snapshot()


def test_ring_kinds_are_the_tags_the_worker_reads():
    """The worker tells a topic registration from a records frame (tag 1) by its first
    byte; the parent reads reports from their ring the same way."""
    assert messages.encode(TopicRegistration(0, "t"))[0] == TAG_TOPIC == 2
    assert messages.encode(Report(0, 0, 1, 0, 0, 0, None, None))[0] == TAG_REPORT == 3
    tags = [messages.encode(m)[0] for m in (Snapshot(snapshot()), Flush(), Shutdown(0),
                                            Ask(1, "q"), Answer(1, 0), Refresh([]))]
    assert len(set(tags)) == len(tags) and 1 not in tags


@pytest.mark.parametrize("payload", [
    b"", b"\x01anything", b"\xff\x90", bytes((TAG_TOPIC,)) + b"\xc1",
    bytes((TAG_TOPIC,)) + b"\x93\x01\xa1t\x05",  # three fields for two
    messages.encode(Report(1, 0, 1, 0, 0, 0, None, None))[:-3],
], ids=["empty", "records-tag", "unknown-tag", "bad-msgpack", "extra-field", "truncated"])
def test_what_is_not_a_message_is_refused(payload):
    with pytest.raises(MalformedMessage):
        messages.decode(payload)


def test_a_view_into_a_ring_is_copied():
    buf = bytearray(messages.encode(TopicRegistration(1, "t")))
    decoded = messages.decode(memoryview(buf))
    buf[:] = b"\0" * len(buf)
    assert decoded == TopicRegistration(1, "t")


def test_errors_come_back_as_their_class():
    sent = errors.NotLeaderOrFollowerError("moved")
    back = messages.decode_error(messages.encode_error(sent))
    assert type(back) is errors.NotLeaderOrFollowerError and "moved" in str(back)
    assert messages.encode_error(None) is None and messages.decode_error(None) is None
    # a class fastprod does not have: by code if it has one, else a KafkaError naming it
    by_code = messages.decode_error([7, "SomethingElse", "x"])
    assert type(by_code) is type(errors.error_for_code(7, "x"))
    other = messages.decode_error([None, "ValueError", "bad"])
    assert isinstance(other, errors.KafkaError) and "ValueError: bad" in str(other)
