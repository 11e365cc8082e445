"""BrokerConnection and NetworkClient against bytes a broker should never send.

No broker: the client's connection is one end of a socketpair (or, for the handshake,
a loopback socket the test accepts), the test plays the broker on the other end and
writes a response frame with the right correlation id whose body cannot be read. The
request it answers must fail at once with a ProtocolError (it must not wait for
delivery.timeout.ms), the connection must end closed, and the other requests in
flight on it fail as network errors (retried like any request lost with its
connection). Every api key the producer has codecs for, at every version.
"""

from __future__ import annotations

import random
import socket
import struct

import pytest

from fastprod import protocol
from fastprod.clock import monotonic_ms
from fastprod.cluster.client import ClientOptions, NetworkClient
from fastprod.cluster.connection import BrokerConnection, SocketOptions, State
from fastprod.errors import NetworkError, ProtocolError

try:
    import fakes
except ImportError:  # tests/ imported as a package
    from tests import fakes

_SIZE = struct.Struct(">i")
ALL_VERSIONS = {key: (info.min_version, info.max_version)
                for key, info in protocol.APIS.items()}


# ---- the broker's end of the socket ----------------------------------------------------


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "the client closed the connection before sending a whole request"
        out += chunk
    return bytes(out)


def recv_request(sock: socket.socket):
    """(header, request) of the next request frame the client wrote."""
    (size,) = _SIZE.unpack(recv_exactly(sock, 4))
    return protocol.decode_request(recv_exactly(sock, size))


def sized(frame: bytes) -> bytes:
    return _SIZE.pack(len(frame)) + frame


def peer_closed(sock: socket.socket) -> bool:
    """The client's end is closed: recv sees EOF (or a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# ---- a NetworkClient whose node 0 is a socketpair --------------------------------------


def socketpair_client():
    metadata = fakes.make_metadata({"t": [0]}, now_ms=monotonic_ms())
    client = NetworkClient(metadata, ClientOptions(SocketOptions()))
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(5)
    node = metadata.snapshot.nodes[0]
    conn = BrokerConnection(0, node.host, node.port, SocketOptions())
    conn.sock = ours
    conn.state = State.READY  # as after the ApiVersions handshake
    conn.api_versions = protocol.negotiate_versions(ALL_VERSIONS)
    client._conns[0] = conn
    client._register(conn)
    return client, conn, peer


def poll_until(client: NetworkClient, done, polls: int = 50) -> None:
    """Poll (100 ms at most each time) until ``done()``, for at most ``polls`` rounds."""
    for _ in range(polls):
        if done():
            return
        client.poll(100, monotonic_ms())


def poll_until_closed(client: NetworkClient, conn: BrokerConnection) -> None:
    """Poll until the connection is closed: the handlers of its requests run in the
    same poll, so what they got is known then."""
    poll_until(client, lambda: conn.state is State.DISCONNECTED)


class Calls:
    """A response handler that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, BaseException | None]] = []

    def __call__(self, response, error) -> None:
        self.calls.append((response, error))


# ---- undecodable bodies behind the right correlation id ----------------------------------

# Each takes a response frame (no size prefix: correlation id, header tags, body) and
# returns one with the same correlation id that the decoder must refuse.


def truncated(frame: bytes) -> bytes:
    return frame[:4 + (len(frame) - 4) // 2]


def no_body(frame: bytes) -> bytes:
    return frame[:4]


def trailing_bytes(frame: bytes) -> bytes:
    return frame + b"\x00\x07junk"


def all_ones(frame: bytes) -> bytes:
    return frame[:4] + b"\xff" * (len(frame) - 4)


def random_body(frame: bytes) -> bytes:
    rnd = random.Random(frame)
    return frame[:4] + rnd.randbytes(rnd.randint(1, 3 * len(frame)))


GARBLES = [truncated, no_body, trailing_bytes, all_ones, random_body]


def undecodable(api_key: int, version: int, correlation_id: int, garble) -> bytes | None:
    """The garbled response frame (size-prefixed), or None when the garbled bytes happen
    to decode (a response of fixed-width fields only reads any bytes of its length)."""
    info = protocol.APIS[api_key]
    frame = protocol.encode_response(api_key, version, correlation_id, info.response())[4:]
    bad = garble(frame)
    try:
        protocol.decode_response(api_key, version, bad)
    except ProtocolError:
        return sized(bad)
    return None


API_CASES = [pytest.param(key, id=info.name) for key, info in sorted(protocol.APIS.items())]


@pytest.mark.parametrize("garble", GARBLES, ids=lambda g: g.__name__)
@pytest.mark.parametrize("api_key", API_CASES)
def test_undecodable_response_fails_its_request_and_closes(api_key, garble):
    info = protocol.APIS[api_key]
    tried = 0
    for version in range(info.min_version, info.max_version + 1):
        client, conn, peer = socketpair_client()
        try:
            handler = Calls()
            client.send(0, api_key, info.request(), handler, monotonic_ms(), version=version)
            header, _ = recv_request(peer)
            assert (header.request_api_key, header.request_api_version) == (api_key, version)
            frame = undecodable(api_key, version, header.correlation_id, garble)
            if frame is None:
                continue
            tried += 1
            peer.sendall(frame)
            poll_until_closed(client, conn)
            where = f"{info.name} v{version}, {garble.__name__}"
            assert handler.calls, f"{where}: the handler was never called (request stranded)"
            assert len(handler.calls) == 1, f"{where}: handler called {handler.calls}"
            response, error = handler.calls[0]
            assert response is None, where
            assert isinstance(error, ProtocolError), f"{where}: {error!r}"
            assert f"correlation id {header.correlation_id}" in str(error), str(error)
            assert conn.state is State.DISCONNECTED and conn.sock is None, where
            assert not conn.in_flight, where
            assert peer_closed(peer), f"{where}: the client's end is still open"
        finally:
            peer.close()
            client.close()
    assert tried, f"no version of {info.name} made an undecodable frame with {garble.__name__}"


def produce_request():
    return protocol.APIS[protocol.PRODUCE_KEY].request(acks=-1, timeout_ms=1000)


def test_requests_behind_the_bad_response_fail_as_network_errors():
    """Three Produce requests in flight: the first is answered well and the second
    with a garbled body, in one segment; the third never gets an answer. The first
    gets its response, the second a ProtocolError, the third a NetworkError (retried
    like any request lost with its connection), and the connection is closed."""
    client, conn, peer = socketpair_client()
    try:
        version = conn.api_versions[protocol.PRODUCE_KEY]
        handlers = [Calls(), Calls(), Calls()]
        for h in handlers:
            client.send(0, protocol.PRODUCE_KEY, produce_request(), h, monotonic_ms())
        cids = [recv_request(peer)[0].correlation_id for _ in handlers]
        info = protocol.APIS[protocol.PRODUCE_KEY]
        good = protocol.encode_response(protocol.PRODUCE_KEY, version, cids[0],
                                        info.response(throttle_time_ms=3))
        bad = undecodable(protocol.PRODUCE_KEY, version, cids[1], truncated)
        peer.sendall(good + bad)
        poll_until_closed(client, conn)
        first, second, third = (h.calls for h in handlers)
        assert len(first) == 1 and first[0][1] is None, first
        assert first[0][0].throttle_time_ms == 3
        assert len(second) == 1 and second[0][0] is None, second
        assert isinstance(second[0][1], ProtocolError), second
        assert len(third) == 1 and third[0][0] is None, third
        assert isinstance(third[0][1], NetworkError), third
        assert not isinstance(third[0][1], ProtocolError), third
        assert conn.state is State.DISCONNECTED and peer_closed(peer)
    finally:
        peer.close()
        client.close()


def test_bad_response_error_is_retriable_like_a_lost_connection():
    """The request whose answer could not be read may have been carried out by the
    broker, like one whose connection dropped: its error must say "retry" to the sender
    and the transaction manager (a NetworkError) and must not pass for a rejection."""
    client, conn, peer = socketpair_client()
    try:
        handler = Calls()
        client.send(0, protocol.PRODUCE_KEY, produce_request(), handler, monotonic_ms())
        cid = recv_request(peer)[0].correlation_id
        peer.sendall(undecodable(protocol.PRODUCE_KEY, conn.api_versions[0], cid, no_body))
        poll_until_closed(client, conn)
        assert handler.calls, "the handler was never called"
        error = handler.calls[0][1]
        assert isinstance(error, ProtocolError) and isinstance(error, NetworkError), repr(error)
        assert error.retriable
    finally:
        peer.close()
        client.close()


@pytest.mark.parametrize("size", [0x7FFFFFFF, -1, 2], ids=["huge", "negative", "tiny"])
def test_impossible_frame_size_fails_the_first_request(size):
    """A size prefix no response can have (0x7fffffff would make us wait for 2 GiB):
    the connection closes at once, the first request in flight fails with a
    ProtocolError, the next one as a network error."""
    client, conn, peer = socketpair_client()
    try:
        handlers = [Calls(), Calls()]
        for h in handlers:
            client.send(0, protocol.PRODUCE_KEY, produce_request(), h, monotonic_ms())
        cid = recv_request(peer)[0].correlation_id
        recv_request(peer)
        peer.sendall(_SIZE.pack(size) + _SIZE.pack(cid) + b"\0" * 16)
        poll_until_closed(client, conn)
        first, second = (h.calls for h in handlers)
        assert first and isinstance(first[0][1], ProtocolError), first
        assert second and isinstance(second[0][1], NetworkError), second
        assert not isinstance(second[0][1], ProtocolError), second
        assert conn.state is State.DISCONNECTED and peer_closed(peer)
    finally:
        peer.close()
        client.close()


def test_wrong_correlation_id_fails_the_first_request():
    client, conn, peer = socketpair_client()
    try:
        handler = Calls()
        client.send(0, protocol.PRODUCE_KEY, produce_request(), handler, monotonic_ms())
        cid = recv_request(peer)[0].correlation_id
        info = protocol.APIS[protocol.PRODUCE_KEY]
        peer.sendall(protocol.encode_response(0, conn.api_versions[0], cid + 1,
                                              info.response()))
        poll_until_closed(client, conn)
        assert handler.calls and isinstance(handler.calls[0][1], ProtocolError), \
            handler.calls
        assert conn.state is State.DISCONNECTED and peer_closed(peer)
    finally:
        peer.close()
        client.close()


@pytest.mark.parametrize("garble", GARBLES, ids=lambda g: g.__name__)
def test_undecodable_api_versions_during_the_handshake(garble):
    """The producer's own ApiVersions request (the handshake): a garbled answer is a
    failed connection attempt (closed, reconnect backoff), raised nowhere."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    metadata = fakes.make_metadata(bootstrap=(("127.0.0.1", port),))
    client = NetworkClient(metadata, ClientOptions(SocketOptions()))
    node = metadata.bootstrap_nodes[0]
    try:
        assert not client.ready(node, monotonic_ms())  # starts connecting
        listener.settimeout(5)
        peer, _ = listener.accept()
        peer.settimeout(5)
        conn = client._conns[node.node_id]
        poll_until(client, lambda: conn.state is State.NEGOTIATING)
        header, _ = recv_request(peer)
        assert header.request_api_key == protocol.API_VERSIONS_KEY
        frame = undecodable(protocol.API_VERSIONS_KEY, header.request_api_version,
                            header.correlation_id, garble)
        assert frame is not None
        peer.sendall(frame)
        poll_until(client, lambda: conn.state is State.DISCONNECTED)
        assert conn.state is State.DISCONNECTED
        assert client.is_connection_failed(node.node_id)
        assert client.connection_delay(node.node_id, monotonic_ms()) > 0
        assert peer_closed(peer)
        peer.close()
    finally:
        listener.close()
        client.close()
