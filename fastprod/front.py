"""What both producers do in the caller's thread before a record is queued: check it,
serialize it, wait for its topic's metadata, pick its partition (Java's
KafkaProducer.doSend up to the accumulator). ``Producer`` then appends to its
in-process accumulator; ``ShardedProducer`` frames into a worker's ring.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastprod._ext.accumulate import RecordFuture, failed_future
from fastprod.clock import monotonic_ms, wall_ms
from fastprod.cluster.snapshot import ClusterSnapshot, PartitionInfo
from fastprod.engine.accumulator import UNKNOWN_PARTITION, record_size_upper_bound
from fastprod.errors import (
    IllegalStateError,
    InvalidTopicError,
    KafkaTimeoutError,
    ProducerClosedError,
    RecordTooLargeError,
)
from fastprod.kernels import max_bytes_len, split_by_key_partition
from fastprod.interceptors import Interceptors, ProducerRecord
from fastprod.partitioners import PartitionerConfig, record_partition, resolve_partitioner
from fastprod.serializers import is_bytes_passthrough, resolve_serializer

# what a small record adds to a batch besides its value (length, attributes, deltas,
# key length, header count): its share towards the sticky partition's switch
_RECORD_OVERHEAD = 12

log = logging.getLogger("fastprod.producer")

Headers = Sequence[tuple[str, "bytes | None"]] | Mapping[str, "bytes | None"]


class ProducerFront:
    """Caller-thread logic shared by Producer and ShardedProducer.

    Subclasses set: _closed, _metadata, _max_block_ms, _max_request_size,
    _buffer_memory, _key_serializer, _value_serializer, _key_passthrough,
    _value_passthrough, _partitioner, _partitioner_config, _interceptors,
    ``_wakeup()`` (nudge whoever fetches metadata) and ``_sticky_partition(topic,
    snapshot, size)`` (the built-in partitioner's sticky partition for a record of
    ``size`` bytes, counted towards its switch).
    """

    def _setup_front(self, cfg) -> None:
        """The caller-side settings both producers take from a ProducerConfig."""
        self.client_id = cfg.client_id  # "producer-N" unless set, as in Java
        self._key_serializer = resolve_serializer(cfg.key_serializer, is_key=True)
        self._value_serializer = resolve_serializer(cfg.value_serializer, is_key=False)
        self._key_passthrough = is_bytes_passthrough(self._key_serializer)
        self._value_passthrough = is_bytes_passthrough(self._value_serializer)
        self._partitioner = resolve_partitioner(cfg.partitioner_class, cfg.as_dict())
        self._partitioner_config = PartitionerConfig.from_config(cfg)
        self._interceptors = Interceptors.from_config(cfg.resolve("interceptor.classes"),
                                                      cfg.as_dict())
        self._max_block_ms = cfg.max_block_ms
        self._max_request_size = cfg.max_request_size
        self._buffer_memory = cfg.buffer_memory

    def _prepare(self, topic: str, value: Any, key: Any, partition: int | None,
                 timestamp: int | None, headers: Headers | None, now_ms: int):
        """(key bytes, value bytes, headers, timestamp, snapshot, partition or
        UNKNOWN_PARTITION for sticky, ms left of max.block.ms) for one record."""
        if type(topic) is not str or not topic:
            raise TypeError(f"topic must be a non-empty str, not {topic!r}")
        if partition is not None and (type(partition) is not int or partition < 0):
            raise ValueError(f"partition must be a non-negative int, not {partition!r}")
        key_bytes = key if key is None or (self._key_passthrough and type(key) is bytes) \
            else self._key_serializer(key)
        value_bytes = value if value is None or (
            self._value_passthrough and type(value) is bytes) else self._value_serializer(value)
        if headers is not None:
            headers = check_headers(headers)
        timestamp = check_timestamp(timestamp)
        snapshot, remaining_ms = self._snapshot_for(topic, partition, now_ms)
        p = record_partition(topic, partition, key, key_bytes, value, value_bytes, snapshot,
                             self._partitioner, self._partitioner_config.ignore_keys)
        return key_bytes, value_bytes, headers, timestamp, snapshot, p, remaining_ms

    def _record_too_large(self, key_bytes, value_bytes, headers) -> RecordTooLargeError | None:
        size = record_size_upper_bound(key_bytes, value_bytes, headers)
        if size <= self._max_request_size and size <= self._buffer_memory:
            return None
        which = "max.request.size" if size > self._max_request_size else "buffer.memory"
        limit = min(self._max_request_size, self._buffer_memory)
        return RecordTooLargeError(f"the record is {size} bytes when serialized, which is "
                                   f"larger than {limit}, the value of {which}")

    def _intercept(self, topic: str, value: Any, key: Any, partition: int | None,
                   timestamp: int | None, headers: Any, on_delivery: Any) -> tuple:
        """interceptor.classes: each on_send may replace the record (before it is
        serialized and partitioned, as in Java), and on_acknowledgement runs before the
        caller's on_delivery. The record's fields and the callback to use."""
        assert self._interceptors is not None
        record = self._interceptors.on_send(
            ProducerRecord(topic, value, key, partition, timestamp, headers))
        return (*record, self._interceptors.wrap_callback(on_delivery))

    def _prepare_batch(self, topic: str, values: Sequence[Any], keys: Sequence[Any] | None,
                       partition: int | None, timestamp: int | None, now_ms: int,
                       on_delivery=None):
        """For send_batch: (values, keys, timestamp, snapshot, {partition: (input
        indices, keys, values)}, ms left), or None when there are no records. Every
        record is serialized and checked before any is queued."""
        if self._closed:
            raise ProducerClosedError("cannot send: the producer is closed")
        if self._interceptors is not None:
            raise IllegalStateError("send_batch() does not run interceptor.classes; use "
                                    "send() for each record when interceptors are configured")
        if type(topic) is not str or not topic:
            raise TypeError(f"topic must be a non-empty str, not {topic!r}")
        check_callback(on_delivery, "on_delivery")
        values = self._serialize_all(_check_sequence(values, "values"), self._value_serializer,
                                     self._value_passthrough)
        if keys is not None:
            keys = self._serialize_all(_check_sequence(keys, "keys", "None or "),
                                       self._key_serializer, self._key_passthrough)
            if len(keys) != len(values):
                raise ValueError(f"send_batch got {len(keys)} keys for {len(values)} values")
        timestamp = check_timestamp(timestamp)
        if partition is not None and (type(partition) is not int or partition < 0):
            raise ValueError(f"partition must be a non-negative int, not {partition!r}")
        longest = max_bytes_len(values) + (0 if keys is None else max(max_bytes_len(keys), 0))
        if longest + record_size_upper_bound(None, None, None) > min(self._max_request_size,
                                                                     self._buffer_memory):
            sizes = [len(v or b"") + (0 if keys is None else len(keys[i] or b""))
                     for i, v in enumerate(values)]
            i = max(range(len(sizes)), key=sizes.__getitem__)
            raise RecordTooLargeError(
                f"record {i} of the batch is {sizes[i]} bytes (key and value), larger than "
                f"max.request.size ({self._max_request_size}) or buffer.memory allows")
        if not values:
            if topic not in self._metadata.snapshot.topics:
                validate_topic(topic)
            return None
        snapshot, remaining_ms = self._snapshot_for(topic, partition, now_ms)
        num_partitions = len(snapshot.topics[topic])
        if partition is not None:
            groups = {partition: (range(len(values)), keys, values)}
        elif self._partitioner is not None:
            groups = self._group_with_partitioner(topic, keys, values, snapshot)
        elif keys is not None and not self._partitioner_config.ignore_keys:
            groups = split_by_key_partition(keys, values, num_partitions)
            if UNKNOWN_PARTITION in groups and len(groups) > 1:
                groups = self._place_null_keys(topic, keys, values, groups, snapshot)
        else:
            groups = {UNKNOWN_PARTITION: (range(len(values)), keys, values)}
        return values, keys, timestamp, snapshot, groups, remaining_ms

    def _place_null_keys(self, topic, keys, values, groups, snapshot):
        """Keyed and null-key records mixed: the null-key ones take their sticky
        partitions now, in input order (switching after batch.size bytes), so that every
        partition gets its records in input order, as from send() one at a time."""
        where = [0] * len(values)
        for p, (indices, _, _) in groups.items():
            for i in indices:
                where[i] = p
        for i in groups[UNKNOWN_PARTITION][0]:
            value = values[i]
            where[i] = self._sticky_partition(topic, snapshot, _RECORD_OVERHEAD + (
                0 if value is None else len(value)))
        out: dict[int, tuple[list[int], list, list]] = {}
        for i, p in enumerate(where):
            group = out.get(p)
            if group is None:
                group = out[p] = ([], [], [])
            group[0].append(i)
            group[1].append(keys[i])
            group[2].append(values[i])
        return out

    def _serialize_all(self, items: Sequence[Any], serializer, passthrough: bool) -> list:
        if type(items) is not list and type(items) is not tuple:
            items = list(items)
        if passthrough and max_bytes_len(items) != -2:
            return items
        return [item if item is None or (passthrough and type(item) is bytes)
                else serializer(item) for item in items]

    def _group_with_partitioner(self, topic, keys, values, snapshot):
        groups: dict[int, tuple[list[int], list | None, list]] = {}
        for i, value in enumerate(values):
            key = None if keys is None else keys[i]
            p = record_partition(topic, None, key, key, value, value, snapshot,
                                 self._partitioner)
            group = groups.get(p)
            if group is None:
                group = groups[p] = ([], None if keys is None else [], [])
            group[0].append(i)
            if keys is not None:
                group[1].append(key)
            group[2].append(value)
        return groups

    def _snapshot_for(self, topic: str, partition: int | None,
                      now_ms: int) -> tuple[ClusterSnapshot, int]:
        """A snapshot that knows the topic (and partition), and the ms of max.block.ms
        left after waiting for it."""
        snapshot = self._metadata.snapshot
        parts = snapshot.topics.get(topic)
        if parts is None or (partition is not None and partition >= len(parts)):
            snapshot = self._wait_on_metadata(topic, partition, now_ms)
            return snapshot, max(self._max_block_ms - (monotonic_ms() - now_ms), 0)
        self._metadata.touch(topic, now_ms)
        return snapshot, self._max_block_ms

    def _wait_on_metadata(self, topic: str, partition: int | None,
                          now_ms: int) -> ClusterSnapshot:
        """Java's waitOnMetadata: block until the topic (and partition) is known."""
        # Only a topic missing from the snapshot gets here (every send's first, then
        # none): the fast path pays nothing for the check.
        validate_topic(topic)
        self._metadata.add_topic(topic, now_ms)
        snapshot = self._metadata.await_topic(topic, self._max_block_ms, self._wakeup)
        if partition is not None:
            deadline = now_ms + self._max_block_ms
            while partition >= len(snapshot.topics[topic]):
                left = deadline - monotonic_ms()
                if left <= 0:
                    raise KafkaTimeoutError(
                        f"partition {partition} of topic {topic!r} with partition count "
                        f"{len(snapshot.topics[topic])} is not present in metadata after "
                        f"{self._max_block_ms} ms")
                self._metadata.request_update()
                snapshot = self._metadata.await_topic(topic, left, self._wakeup)
                if partition >= len(snapshot.topics[topic]):
                    time.sleep(min(left, 100) / 1000.0)
        return snapshot

    def partitions_for(self, topic: str) -> list[PartitionInfo]:
        """The topic's partitions (leader, replicas, ISR), waiting up to max.block.ms."""
        snapshot = self._metadata.snapshot
        if topic not in snapshot.topics:
            snapshot = self._wait_on_metadata(topic, None, monotonic_ms())
        return list(snapshot.topics[topic])


def failed(topic: str, partition: int, error: BaseException,
           on_delivery=None) -> RecordFuture:
    """A future that failed before its record was queued (Java's FutureFailure); the
    callback hears of it at once."""
    if on_delivery is not None:
        try:
            on_delivery(None, error)
        except Exception:
            log.exception("on_delivery callback raised")
    return failed_future(topic, partition, error)


# A record's timestamp is an int64 on the wire.
_MAX_TIMESTAMP = 2**63 - 1


def check_timestamp(timestamp: int | None) -> int:
    if timestamp is None:
        return wall_ms()
    if type(timestamp) is not int or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError(f"timestamp must be a non-negative int of ms since the epoch below "
                         f"2**63 (an int64 on the wire), or None for now; not {timestamp!r}")
    return timestamp


def check_callback(fn: Any, name: str) -> None:
    """A callback is checked when it is given, not when it would have run."""
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be callable (called as {name}(metadata, error)) or "
                        f"None, not {type(fn).__name__}")


def _check_sequence(items: Any, name: str, alternative: str = "") -> Any:
    """send_batch's values and keys: a sequence of items, never one bytes or str (whose
    elements would be sent as records)."""
    if isinstance(items, (str, bytes, bytearray, memoryview)) or not isinstance(
            items, Iterable):
        raise TypeError(f"{name} must be {alternative}a sequence of {name} (list, tuple, "
                        f"...), not {type(items).__name__}; a bytes or str object is not "
                        f"accepted as the sequence")
    return items


# Java's org.apache.kafka.common.internals.Topic.validate
_TOPIC_MAX_LENGTH = 249
_TOPIC_ILLEGAL_CHARS = re.compile(r"[^a-zA-Z0-9._-]")


def validate_topic(topic: str) -> None:
    """InvalidTopicError, saying why, for a name the broker would refuse."""
    if not topic:
        raise InvalidTopicError("topic name is illegal: it cannot be empty")
    if topic in (".", ".."):
        raise InvalidTopicError(f"topic name {topic!r} is illegal: it cannot be '.' or '..'")
    if len(topic) > _TOPIC_MAX_LENGTH:
        raise InvalidTopicError(f"topic name {topic[:40]!r}... is illegal: it has "
                                f"{len(topic)} characters, longer than {_TOPIC_MAX_LENGTH}")
    bad = _TOPIC_ILLEGAL_CHARS.findall(topic)
    if bad:
        chars = ", ".join(repr(c) for c in dict.fromkeys(bad))
        raise InvalidTopicError(f"topic name {topic!r} is illegal: it contains {chars}; "
                                f"legal characters are ASCII letters, digits, '.', '_' "
                                f"and '-'")


_HEADERS_ACCEPTED = ("headers must be a list of (str, bytes|str|None) pairs or a mapping "
                     "of str to bytes|str|None")


def check_headers(headers: Headers) -> list[tuple[str, bytes | None]]:
    if isinstance(headers, Mapping):
        items: Iterable = headers.items()
    elif isinstance(headers, (str, bytes, bytearray, memoryview)) or not isinstance(
            headers, Iterable):  # a str is iterable, but its characters are no headers
        raise TypeError(f"{_HEADERS_ACCEPTED}; not {type(headers).__name__}")
    else:
        items = headers
    out = []
    for item in items:
        try:
            key, value = item
        except (TypeError, ValueError):
            raise TypeError(f"{_HEADERS_ACCEPTED}; got the item {item!r}") from None
        if type(key) is not str:
            raise TypeError(f"{_HEADERS_ACCEPTED}; got a {type(key).__name__} key: {key!r}")
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            if isinstance(value, str):
                value = value.encode("utf-8")
            else:
                raise TypeError(f"{_HEADERS_ACCEPTED}; header {key!r} has a "
                                f"{type(value).__name__} value")
        out.append((key, value))
    return out
