"""What parent and workers say to each other, besides the records themselves.

Every message is a small dataclass; on the wire it is one tag byte and a msgpack list
of its fields. Where each kind travels:

- records ring (parent -> worker): records frames (tag 1, fastprod/_ext/ring.pyx) and
  TopicRegistration, which precedes the first records frame naming its topic index;
- reports ring (worker -> parent): Report, per completed piece of a frame;
- control pipe, parent -> worker: Snapshot, Flush, Shutdown, and Ask (a question that
  the worker answers with an Answer carrying the same request id);
- control pipe, worker -> parent: Refresh and Answer.

Errors travel as [code or None, class name, message] and come back as the same class.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

import msgpack

from fastprod import errors
from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo

# Tags 1 (records frame), 2 and 3 are ring frame kinds: ring.pyx and the worker read the
# first byte of a ring frame to tell them apart.
TAG_TOPIC = 2
TAG_REPORT = 3

class Message:
    """A message kind: subclasses are dataclasses with a TAG and msgpack-able fields
    (those that are not override to_wire and from_wire)."""

    TAG: ClassVar[int]
    __slots__ = ()

    def to_wire(self) -> list[Any]:
        return [getattr(self, name) for name in _FIELDS[type(self)]]

    @classmethod
    def from_wire(cls, items: list[Any]) -> Message:
        return cls(*items)


_BY_TAG: dict[int, type[Message]] = {}
_FIELDS: dict[type[Message], tuple[str, ...]] = {}
M = TypeVar("M", bound=type[Message])


def _register(cls: M) -> M:
    if cls.TAG in _BY_TAG:
        raise AssertionError(f"tag {cls.TAG} used twice")
    _BY_TAG[cls.TAG] = cls
    _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return cls


@_register
@dataclass(slots=True)
class TopicRegistration(Message):
    """The topic that records frames of this ring name by ``index``."""

    TAG = TAG_TOPIC
    index: int
    name: str


@_register
@dataclass(slots=True)
class Report(Message):
    """Records frame_id+start .. +count were written at base_offset.. (or failed with
    error; record_errors: {position relative to start: error} for single records)."""

    TAG = TAG_REPORT
    frame_id: int
    start: int
    count: int
    partition: int
    base_offset: int
    log_append_time: int
    error: list[Any] | None
    record_errors: dict[int, list[Any]] | None


@_register
@dataclass(slots=True)
class Snapshot(Message):
    """The parent's metadata; the worker numbers the snapshots it publishes itself."""

    TAG = 10
    snapshot: ClusterSnapshot

    def to_wire(self) -> list[Any]:
        s = self.snapshot
        return [s.version, s.cluster_id, s.controller_id,
                [[n.node_id, n.host, n.port, n.rack] for n in s.nodes.values()],
                {topic: [[p.partition, p.leader, p.leader_epoch, list(p.replicas),
                          list(p.isr), list(p.offline_replicas)] for p in parts]
                 for topic, parts in s.topics.items()},
                {topic: uuid.bytes for topic, uuid in s.topic_ids.items()},
                dict(s.topic_errors)]

    @classmethod
    def from_wire(cls, items: list[Any]) -> Snapshot:
        version, cluster_id, controller_id, nodes, topics, topic_ids, topic_errors = items
        return cls(ClusterSnapshot(
            version=version, cluster_id=cluster_id, controller_id=controller_id,
            nodes={n[0]: Node(n[0], n[1], n[2], n[3]) for n in nodes},
            topics={topic: tuple(PartitionInfo(topic, p[0], p[1], p[2], tuple(p[3]),
                                               tuple(p[4]), tuple(p[5])) for p in parts)
                    for topic, parts in topics.items()},
            topic_errors=topic_errors,
            topic_ids={topic: UUID(bytes=b) for topic, b in topic_ids.items()}))


@_register
@dataclass(slots=True)
class Flush(Message):
    """Send what is batched now, without waiting for linger.ms (flush() in the parent)."""

    TAG = 11


@_register
@dataclass(slots=True)
class Shutdown(Message):
    """Deliver what is queued within timeout_ms, then exit."""

    TAG = 12
    timeout_ms: int


@_register
@dataclass(slots=True)
class Ask(Message):
    """A question for the worker (see Worker.QUESTIONS); answered by an Answer with the
    same request_id."""

    TAG = 13
    request_id: int
    question: str
    argument: Any = None


@_register
@dataclass(slots=True)
class Answer(Message):
    TAG = 14
    request_id: int
    value: Any
    error: list[Any] | None = None


@_register
@dataclass(slots=True)
class Refresh(Message):
    """The worker needs fresh metadata, for these topics among others."""

    TAG = 15
    topics: list[str]


class MalformedMessage(errors.KafkaError):
    """A frame or pipe message that is not one of the kinds above."""


def encode(message: Message) -> bytes:
    return bytes((message.TAG,)) + msgpack.packb(message.to_wire(), use_bin_type=True)


def decode(payload: bytes | memoryview) -> Message:
    """The message in ``payload`` (a view into a ring is copied: it may be released)."""
    cls = _BY_TAG.get(payload[0]) if len(payload) else None
    if cls is None:
        raise MalformedMessage(f"unknown message tag {payload[0] if len(payload) else None}")
    try:
        items = msgpack.unpackb(bytes(payload[1:]), raw=False, strict_map_key=False)
        return cls.from_wire(items)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise MalformedMessage(f"undecodable {cls.__name__}: {exc}") from exc


def encode_error(error: BaseException | None) -> list[Any] | None:
    if error is None:
        return None
    return [getattr(error, "code", None), type(error).__name__, str(error)]


def decode_error(data: list[Any] | None) -> BaseException | None:
    if data is None:
        return None
    code, name, message = data
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(message)
        except TypeError:
            pass
    if code is not None:
        return errors.error_for_code(code, message)
    return errors.KafkaError(f"{name}: {message}")


def drain(conn: Any) -> None:
    """Empty a wake-up pipe that poll or select found readable. Its bytes only say
    "look", so one raw read takes them all, message framing and all."""
    try:
        os.read(conn.fileno(), 65536)
    except OSError:
        pass
