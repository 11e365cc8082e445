"""What parent and workers say to each other, besides the records themselves.

- Records ring (parent -> worker): records frames (kind 1, fastprod/_ext/ring.pyx) and
  topic registrations (kind 2: msgpack [index, name]) that precede the first records
  frame naming that index, so a worker always knows a topic before its records.
- Reports ring (worker -> parent): kind 3, msgpack [frame_id, start, count, partition,
  base_offset, log_append_time, error, record_errors]: the records frame_id+start ..
  +count were written at base_offset.. (or failed with error).
- Control pipe (both ways, msgpack dicts): metadata snapshots, flush and shutdown to
  the worker; refresh requests to the parent.

Errors travel as [code or None, class name, message] and come back as the same class.
"""

from __future__ import annotations

import os
from uuid import UUID

import msgpack

from fastprod import errors
from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo

KIND_TOPIC = 2
KIND_REPORT = 3


def pack(kind: int, obj) -> bytes:
    return bytes((kind,)) + msgpack.packb(obj, use_bin_type=True)


def unpack(payload):
    return msgpack.unpackb(bytes(payload[1:]), raw=False, strict_map_key=False)


def encode_error(error: BaseException | None):
    if error is None:
        return None
    return [getattr(error, "code", None), type(error).__name__, str(error)]


def decode_error(data) -> BaseException | None:
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


def encode_snapshot(s: ClusterSnapshot) -> dict:
    return {
        "t": "snapshot", "v": s.version, "c": s.cluster_id, "k": s.controller_id,
        "n": [[n.node_id, n.host, n.port, n.rack] for n in s.nodes.values()],
        "p": {topic: [[p.partition, p.leader, p.leader_epoch, list(p.replicas), list(p.isr),
                       list(p.offline_replicas)] for p in parts]
              for topic, parts in s.topics.items()},
        "i": {topic: uuid.bytes for topic, uuid in s.topic_ids.items()},
        "e": dict(s.topic_errors),
    }


def decode_snapshot(d: dict) -> ClusterSnapshot:
    return ClusterSnapshot(
        version=d["v"], cluster_id=d["c"], controller_id=d["k"],
        nodes={n[0]: Node(n[0], n[1], n[2], n[3]) for n in d["n"]},
        topics={topic: tuple(PartitionInfo(topic, p[0], p[1], p[2], tuple(p[3]), tuple(p[4]),
                                           tuple(p[5])) for p in parts)
                for topic, parts in d["p"].items()},
        topic_errors=d["e"],
        topic_ids={topic: UUID(bytes=b) for topic, b in d["i"].items()})


def drain(conn) -> None:
    """Empty a wake-up pipe that poll or select found readable. Its bytes only say
    "look", so one raw read takes them all, message framing and all."""
    try:
        os.read(conn.fileno(), 65536)
    except OSError:
        pass
