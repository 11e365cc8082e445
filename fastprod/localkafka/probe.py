"""A tiny raw Kafka Metadata/CreateTopics client (stdlib only).

Used to decide when a local broker is ready, and by tests to look at the cluster, without
depending on the real protocol package (which is written separately and will replace this).
Metadata v4 and CreateTopics v4 are the newest non-flexible versions, so plain ``struct``
is enough: request header v1, no compact strings, no tagged fields. CreateTopics over the
wire saves a JVM start (~1 s) per topic compared to the Java TopicCommand.
"""

from __future__ import annotations

import itertools
import socket
import struct
from dataclasses import dataclass, field

METADATA_API_KEY = 3
METADATA_VERSION = 4
CREATE_TOPICS_API_KEY = 19
CREATE_TOPICS_VERSION = 4  # newest non-flexible; Kafka 4 still accepts 2+
TOPIC_ALREADY_EXISTS = 36
CLIENT_ID = b"fastprod-localkafka-probe"

_correlation = itertools.count(1)


class ProbeError(Exception):
    """The broker could not be reached, or answered something we could not parse."""


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None


@dataclass(frozen=True)
class PartitionInfo:
    error_code: int
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class TopicInfo:
    error_code: int
    name: str
    is_internal: bool
    partitions: tuple[PartitionInfo, ...]


@dataclass(frozen=True)
class ClusterMetadata:
    brokers: tuple[BrokerInfo, ...]
    cluster_id: str | None
    controller_id: int
    topics: dict[str, TopicInfo] = field(default_factory=dict)

    @property
    def broker_ids(self) -> set[int]:
        return {b.node_id for b in self.brokers}


def _string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def _request(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    # Request header v1: api_key, api_version, correlation_id, client_id (nullable string).
    header = struct.pack(">hhi", api_key, version, correlation_id)
    header += struct.pack(">h", len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def encode_metadata_request(
    correlation_id: int, topics: list[str] | None, allow_auto_create: bool = False
) -> bytes:
    if topics is None:
        body = struct.pack(">i", -1)  # null array = all topics
    else:
        body = struct.pack(">i", len(topics)) + b"".join(_string(t) for t in topics)
    body += struct.pack(">?", allow_auto_create)
    return _request(METADATA_API_KEY, METADATA_VERSION, correlation_id, body)


def encode_create_topics_request(
    correlation_id: int,
    name: str,
    partitions: int,
    replication_factor: int,
    config: dict[str, str] | None,
    timeout_ms: int,
) -> bytes:
    body = struct.pack(">i", 1) + _string(name) + struct.pack(">ih", partitions, replication_factor)
    body += struct.pack(">i", 0)  # no manual assignments
    cfg = config or {}
    body += struct.pack(">i", len(cfg))
    body += b"".join(_string(k) + _string(None if v is None else str(v)) for k, v in cfg.items())
    body += struct.pack(">i?", timeout_ms, False)  # timeout_ms, validate_only
    return _request(CREATE_TOPICS_API_KEY, CREATE_TOPICS_VERSION, correlation_id, body)


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ProbeError("truncated response")
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return vals

    def i16(self) -> int:
        return self.take(">h")[0]

    def i32(self) -> int:
        return self.take(">i")[0]

    def boolean(self) -> bool:
        return self.take(">?")[0]

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        if self.pos + n > len(self.buf):
            raise ProbeError("truncated response")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode()

    def array(self, item):  # type: ignore[no-untyped-def]
        n = self.i32()
        return tuple(item() for _ in range(max(n, 0)))


def decode_metadata_response(buf: bytes, correlation_id: int) -> ClusterMetadata:
    r = _Reader(buf)
    if r.i32() != correlation_id:  # response header v0
        raise ProbeError("correlation id mismatch")
    r.i32()  # throttle_time_ms
    brokers = r.array(lambda: BrokerInfo(r.i32(), r.string() or "", r.i32(), r.string()))
    cluster_id = r.string()
    controller_id = r.i32()

    def partition() -> PartitionInfo:
        return PartitionInfo(r.i16(), r.i32(), r.i32(), r.array(r.i32), r.array(r.i32))

    def topic() -> TopicInfo:
        return TopicInfo(r.i16(), r.string() or "", r.boolean(), r.array(partition))

    topics = r.array(topic)
    return ClusterMetadata(brokers, cluster_id, controller_id, {t.name: t for t in topics})


def decode_create_topics_response(buf: bytes, correlation_id: int) -> dict[str, tuple[int, str | None]]:
    """-> {topic: (error_code, error_message)}"""
    r = _Reader(buf)
    if r.i32() != correlation_id:
        raise ProbeError("correlation id mismatch")
    r.i32()  # throttle_time_ms
    return {name: (err, msg) for name, err, msg in r.array(lambda: (r.string() or "", r.i16(), r.string()))}


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 16))
        if not chunk:
            raise ProbeError("connection closed by broker")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def metadata(
    host: str, port: int, topics: list[str] | None = None, timeout: float = 2.0
) -> ClusterMetadata:
    """Send one Metadata v4 request to host:port and return the parsed response.

    ``topics=None`` asks for all topics. Raises ProbeError (or OSError subclasses wrapped
    in it) if the broker is not reachable or answers garbage.
    """
    cid = next(_correlation) & 0x7FFFFFFF
    resp = _roundtrip(host, port, encode_metadata_request(cid, topics), timeout)
    return decode_metadata_response(resp, cid)


def create_topic(
    host: str,
    port: int,
    name: str,
    partitions: int = 1,
    replication_factor: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, str | None]:
    """Send CreateTopics for one topic; return (error_code, error_message), (0, None) = ok."""
    cid = next(_correlation) & 0x7FFFFFFF
    req = encode_create_topics_request(
        cid, name, partitions, replication_factor, config, int(timeout * 1000)
    )
    results = decode_create_topics_response(_roundtrip(host, port, req, timeout + 5), cid)
    if name not in results:
        raise ProbeError(f"CreateTopics response did not mention {name!r}")
    return results[name]


def _roundtrip(host: str, port: int, request: bytes, timeout: float) -> bytes:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            return _recv_exact(sock, size)
    except OSError as e:
        raise ProbeError(f"{host}:{port}: {e}") from e


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """'h1:p1,h2:p2' -> [(h1, p1), (h2, p2)]."""
    out = []
    for part in bootstrap.split(","):
        part = part.strip()
        if not part:
            continue
        host, _, port = part.rpartition(":")
        out.append((host.strip("[]") or "127.0.0.1", int(port)))
    return out
