"""Smoke test: our generated protocol codecs talk to the real broker over a plain socket."""

from __future__ import annotations

import socket
import struct

import pytest

from fastprod import protocol
from fastprod.protocol.messages.api_versions import ApiVersionsRequest, ApiVersionsResponse
from fastprod.protocol.messages.metadata import MetadataRequest, MetadataResponse

pytestmark = pytest.mark.integration


def _roundtrip(sock: socket.socket, api_key: int, version: int, cid: int, message):
    sock.sendall(protocol.encode_request(api_key, version, cid, "smoke-test", message))
    (size,) = struct.unpack(">i", _read(sock, 4))
    got_cid, response = protocol.decode_response(api_key, version, _read(sock, size))
    assert got_cid == cid
    return response


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "the broker closed the connection"
        buf += chunk
    return buf


def test_api_versions_and_metadata_against_the_broker(kafka):
    host, port = kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        versions = _roundtrip(sock, protocol.API_VERSIONS_KEY, 3, 1,
                              ApiVersionsRequest(client_software_name="fastprod",
                                                 client_software_version="test"))
        assert isinstance(versions, ApiVersionsResponse)
        assert versions.error_code == 0
        chosen = protocol.negotiate_versions(versions)
        # Kafka 4.x: Produce v3..v13; we never go below v3, and zstd needs v7+.
        assert chosen[protocol.PRODUCE_KEY] >= 7
        assert chosen[3] >= 12  # Metadata
        metadata = _roundtrip(sock, 3, chosen[3], 2, MetadataRequest(topics=[]))
        assert isinstance(metadata, MetadataResponse)
        assert [b.port for b in metadata.brokers] == [int(port)]
        assert metadata.cluster_id
