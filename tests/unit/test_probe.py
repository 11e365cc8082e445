"""fastprod.localkafka.probe against a fake broker on loopback that parses requests and
writes answers with fastprod.protocol's broker-side codecs; and the leaf rule of
fastprod/_version.py (any layer may import it without pulling in the package face)."""

from __future__ import annotations

import ast
import pathlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest

from fastprod import protocol
from fastprod.localkafka import probe
from fastprod.protocol.messages.create_topics import (
    CreatableTopicResult,
    CreateTopicsRequest,
    CreateTopicsResponse,
)
from fastprod.protocol.messages.metadata import (
    MetadataRequest,
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError
        buf += chunk
    return buf


@pytest.fixture
def fake_broker() -> Iterator[Callable[[Callable[[object, object], bytes]], int]]:
    """start(answer) -> port: each connection reads one request, decoded with
    protocol.decode_request, and sends ``answer(header, request)``."""
    servers: list[socket.socket] = []
    seen: list = []

    def start(answer: Callable[[object, object], bytes]) -> int:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        servers.append(srv)

        def loop() -> None:
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                with conn:
                    (size,) = struct.unpack(">i", _recv(conn, 4))
                    header, request = protocol.decode_request(_recv(conn, size))
                    seen.append((header, request))
                    conn.sendall(answer(header, request))

        threading.Thread(target=loop, daemon=True).start()
        return srv.getsockname()[1]

    start.seen = seen  # type: ignore[attr-defined]
    yield start
    for s in servers:
        s.close()


def _metadata_answer(header, request) -> bytes:
    assert isinstance(request, MetadataRequest)
    topics = [MetadataResponseTopic(
        error_code=0, name=t.name, is_internal=False,
        partitions=[MetadataResponsePartition(error_code=0, partition_index=0, leader_id=2,
                                              replica_nodes=[2, 3], isr_nodes=[2])])
        for t in request.topics or []]
    response = MetadataResponse(
        brokers=[MetadataResponseBroker(node_id=2, host="127.0.0.1", port=1234, rack="r1"),
                 MetadataResponseBroker(node_id=3, host="127.0.0.1", port=1235, rack=None)],
        cluster_id="cid", controller_id=3, topics=topics)
    return protocol.encode_response(header.request_api_key, header.request_api_version,
                                    header.correlation_id, response)


def test_metadata_round_trip(fake_broker):
    port = fake_broker(_metadata_answer)
    md = probe.metadata("127.0.0.1", port, ["t1"], timeout=5)
    assert md.broker_ids == {2, 3} and md.controller_id == 3 and md.cluster_id == "cid"
    assert md.brokers[0] == probe.BrokerInfo(2, "127.0.0.1", 1234, "r1")
    t = md.topics["t1"]
    assert t.partitions[0] == probe.PartitionInfo(0, 0, 2, (2, 3), (2,))
    header, request = fake_broker.seen[-1]
    assert (header.request_api_key, header.request_api_version) == (MetadataRequest.API_KEY, 4)
    assert header.client_id == probe.CLIENT_ID
    assert [x.name for x in request.topics] == ["t1"] and not request.allow_auto_topic_creation


def test_metadata_of_all_topics_sends_null(fake_broker):
    port = fake_broker(_metadata_answer)
    probe.metadata("127.0.0.1", port, None, timeout=5)
    assert fake_broker.seen[-1][1].topics is None


def test_create_topic_round_trip(fake_broker):
    def answer(header, request) -> bytes:
        assert isinstance(request, CreateTopicsRequest)
        (topic,) = request.topics
        assert (topic.name, topic.num_partitions, topic.replication_factor) == ("t2", 3, 1)
        assert {c.name: c.value for c in topic.configs} == {"cleanup.policy": "compact"}
        resp = CreateTopicsResponse(topics=[CreatableTopicResult(
            name="t2", error_code=probe.TOPIC_ALREADY_EXISTS, error_message="exists")])
        return protocol.encode_response(header.request_api_key, header.request_api_version,
                                        header.correlation_id, resp)

    port = fake_broker(answer)
    err = probe.create_topic("127.0.0.1", port, "t2", 3, 1, {"cleanup.policy": "compact"}, timeout=5)
    assert err == (probe.TOPIC_ALREADY_EXISTS, "exists")
    assert fake_broker.seen[-1][0].request_api_version == probe.CREATE_TOPICS_VERSION


def test_answer_to_another_request_is_refused(fake_broker):
    def answer(header, request) -> bytes:
        frame = _metadata_answer(header, request)
        return frame[:4] + struct.pack(">i", header.correlation_id + 1) + frame[8:]

    port = fake_broker(answer)
    with pytest.raises(probe.ProbeError, match="correlation"):
        probe.metadata("127.0.0.1", port, [], timeout=5)


@pytest.mark.parametrize("frame", [struct.pack(">i", -1), struct.pack(">i", 2**30)])
def test_bad_size_prefix_is_refused(fake_broker, frame):
    port = fake_broker(lambda h, r: frame)
    with pytest.raises(probe.ProbeError, match="response size"):
        probe.metadata("127.0.0.1", port, [], timeout=5)


def test_garbage_answer_is_a_probe_error(fake_broker):
    port = fake_broker(lambda h, r: struct.pack(">ii", 6, h.correlation_id) + b"\xff\xff")
    with pytest.raises(probe.ProbeError, match="bad MetadataResponse"):
        probe.metadata("127.0.0.1", port, [], timeout=5)


def test_closed_connection_is_a_probe_error(fake_broker):
    port = fake_broker(lambda h, r: b"\0\0")
    with pytest.raises(probe.ProbeError, match="closed"):
        probe.metadata("127.0.0.1", port, [], timeout=5)


def test_probe_has_no_hand_written_frames():
    """Every request/response passes through fastprod.protocol: the probe only frames
    the size prefix itself."""
    tree = ast.parse((ROOT / "fastprod/localkafka/probe.py").read_text())
    packs = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("pack", "pack_into")]
    assert not packs
    calls = {n.func.attr for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert {"encode_request", "decode_response"} <= calls


# -- _version.py is a leaf ---------------------------------------------------------------------
def _imports(path: pathlib.Path) -> list[str]:
    mods = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods.append("." * node.level + (node.module or ""))
    return mods


def test_version_module_imports_nothing_from_fastprod():
    mods = _imports(ROOT / "fastprod/_version.py")
    assert not [m for m in mods if m.startswith((".", "fastprod"))], mods


def test_connection_set_up_takes_the_version_from_the_leaf():
    """ApiVersions (cluster/setup.py) sends the client's version: from _version.py, and no
    module of cluster/ imports it from the package face (the arrow that ran back up)."""
    assert "fastprod._version" in _imports(ROOT / "fastprod/cluster/setup.py")
    for path in sorted((ROOT / "fastprod/cluster").rglob("*.py")):
        tree = ast.parse(path.read_text())
        face = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module == "fastprod" and any(a.name == "__version__" for a in n.names)]
        assert not face, f"{path.name} must not import __version__ from the package face"
