"""ProducerFront (fastprod/front.py), the caller-side checks and placement both producers
share, on a fake cluster: no broker, no sender."""

from __future__ import annotations

import itertools

import pytest

from fastprod.config import ProducerConfig
from fastprod.engine.accumulator import UNKNOWN_PARTITION
from fastprod.errors import InvalidTopicError, RecordTooLargeError
from fastprod.front import ProducerFront, check_headers, check_timestamp, validate_topic
from fastprod.kernels import partition_for_key

try:
    import fakes
except ImportError:  # tests/ imported as a package
    from tests import fakes

PARTITIONS = 3


class Front(ProducerFront):
    """The least a producer sets up around ProducerFront."""

    def __init__(self, **config) -> None:
        self._setup_front(ProducerConfig({"bootstrap.servers": "localhost:9092", **config}))
        self._closed = False
        self._metadata = fakes.make_metadata({"t": [0] * PARTITIONS})
        self._sticky = itertools.cycle(range(PARTITIONS))
        self.sticky_calls: list[int] = []

    def _wakeup(self) -> None: ...

    def _sticky_partition(self, topic, snapshot, size) -> int:
        self.sticky_calls.append(size)
        return next(self._sticky)


def test_prepare_serializes_and_places_a_keyed_record():
    front = Front()
    key, value, headers, ts, snapshot, p, left = front._prepare(
        "t", "välue", b"k", None, 5, {"h": "x"}, 0)
    assert (key, value, headers, ts) == (b"k", "välue".encode(), [("h", b"x")], 5)
    assert p == partition_for_key(b"k", PARTITIONS) and left == front._max_block_ms
    assert front._prepare("t", b"v", None, None, None, None, 0)[5] == UNKNOWN_PARTITION
    assert front._prepare("t", b"v", b"k", 2, None, None, 0)[5] == 2


def test_send_batch_groups_by_java_partition_in_input_order():
    front = Front()
    keys = [b"k%d" % i for i in range(30)]
    values = [b"v%d" % i for i in range(30)]
    *_, groups, _ = front._prepare_batch("t", values, keys, None, 7, 0)
    for p, (indices, group_keys, group_values) in groups.items():
        assert list(indices) == sorted(indices)
        assert all(partition_for_key(k, PARTITIONS) == p for k in group_keys)
        assert group_values == [values[i] for i in indices]
    assert sorted(i for g in groups.values() for i in g[0]) == list(range(30))


def test_null_keys_among_keyed_ones_take_sticky_partitions_in_input_order():
    front = Front()
    keys = [b"a", None, b"b", None]
    *_, groups, _ = front._prepare_batch("t", [b"1", b"22", b"3", b"4444"], keys, None,
                                         None, 0)
    assert UNKNOWN_PARTITION not in groups
    assert front.sticky_calls == [12 + 2, 12 + 4]  # each counted towards the switch


def test_an_empty_batch_is_none_and_a_too_large_record_is_refused():
    front = Front(**{"max.request.size": 1000})
    assert front._prepare_batch("t", [], None, None, None, 0) is None
    with pytest.raises(RecordTooLargeError, match="record 1 of the batch"):
        front._prepare_batch("t", [b"x", b"y" * 2000], None, None, None, 0)
    assert isinstance(front._record_too_large(None, b"y" * 2000, None), RecordTooLargeError)
    assert front._record_too_large(None, b"y" * 10, None) is None


@pytest.mark.parametrize("bad", [-1, 2**63, 1.5, "1"])
def test_timestamps_are_non_negative_int64(bad):
    with pytest.raises(ValueError):
        check_timestamp(bad)
    assert check_timestamp(0) == 0 and check_timestamp(2**63 - 1) == 2**63 - 1


def test_headers_as_pairs_or_a_mapping():
    assert check_headers([("a", b"1"), ("b", None), ("c", "ü")]) == [
        ("a", b"1"), ("b", None), ("c", "ü".encode())]
    assert check_headers({"a": b"1"}) == [("a", b"1")]
    for bad in ("notalist", 123, [("k", 1)], [(1, b"v")]):
        with pytest.raises(TypeError, match="header"):
            check_headers(bad)


@pytest.mark.parametrize("name", ["", ".", "..", "a b", "é", "x" * 250])
def test_topic_names_kafka_refuses(name):
    with pytest.raises(InvalidTopicError):
        validate_topic(name)


def test_topic_names_kafka_takes():
    for name in ("events", "a.b_c-D9", "x" * 249):
        validate_topic(name)
