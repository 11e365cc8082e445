"""Connection set-up steps (fastprod/cluster/setup.py) without a broker: the order of
the steps for each security.protocol, and a failure at each step. The broker is a
thread on a loopback socket that speaks the Kafka protocol through fastprod.protocol's
codecs and, for TLS, Python's ssl on the server side (real handshakes, certificates
made by fastprod.localkafka.certs); nothing of ssl is mocked."""

from __future__ import annotations

import socket
import ssl
import struct
import threading

import pytest

from fastprod import protocol
from fastprod.clock import monotonic_ms
from fastprod.cluster import setup
from fastprod.cluster.client import ClientOptions, NetworkClient
from fastprod.cluster.connection import SocketOptions, State
from fastprod.cluster.setup import ConnectionSecurity, plan, security_from_config
from fastprod.config import ProducerConfig
from fastprod.errors import (
    SaslAuthenticationError,
    SecurityProtocolMismatchError,
    SslAuthenticationError,
    UnsupportedSaslMechanismError,
)
from fastprod.protocol.messages.api_versions import ApiVersion, ApiVersionsResponse
from fastprod.protocol.messages.sasl_authenticate import SaslAuthenticateResponse
from fastprod.protocol.messages.sasl_handshake import SaslHandshakeResponse

try:
    import fakes
except ImportError:  # tests/ imported as a package
    from tests import fakes

certs_mod = pytest.importorskip("fastprod.localkafka.certs")
pytest.importorskip("cryptography")
_SIZE = struct.Struct(">i")
PASSWORD = "broker-side-secret-9"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return certs_mod.make_certs(tmp_path_factory.mktemp("certs"))


def cfg(**kw) -> ProducerConfig:
    return ProducerConfig({"bootstrap.servers": "127.0.0.1:1", **kw})


# ---- the order ---------------------------------------------------------------------------


def test_step_order_for_each_protocol(certs):
    ca = str(certs.ca.cert_pem)
    sasl = {"sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"}
    names = lambda c: [s.name for s in plan(security_from_config(c))]
    assert names(cfg()) == ["TCP connect", "ApiVersions"]
    assert names(cfg(**{"security.protocol": "SSL", "ssl.truststore.location": ca})) == [
        "TCP connect", "TLS handshake", "ApiVersions"]
    assert names(cfg(**{"security.protocol": "SASL_PLAINTEXT"}, **sasl)) == [
        "TCP connect", "ApiVersions", "SASL authenticate"]
    assert names(cfg(**{"security.protocol": "SASL_SSL", "ssl.truststore.location": ca},
                     **sasl)) == ["TCP connect", "TLS handshake", "ApiVersions",
                                  "SASL authenticate"]
    # each step's state is what the connection shows while it runs
    assert [s.state for s in plan(security_from_config(cfg(
        **{"security.protocol": "SASL_SSL", "ssl.truststore.location": ca}, **sasl)))] == [
        State.CONNECTING, State.HANDSHAKING, State.NEGOTIATING, State.AUTHENTICATING]


def test_gssapi_is_refused_when_the_producer_is_built():
    with pytest.raises(Exception, match="GSSAPI .*not supported"):
        security_from_config(cfg(**{"security.protocol": "SASL_SSL"}))


# ---- a fake broker -----------------------------------------------------------------------


def _recv_exactly(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


class FakeBroker:
    """Accepts one connection; optional TLS; answers ApiVersions, SaslHandshake and
    SaslAuthenticate as told. ``seen`` lists the api keys in the order they came."""

    def __init__(self, tls: ssl.SSLContext | None = None, mechanisms=("PLAIN",),
                 auth_error: str | None = None, plaintext_garbage: bytes | None = None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.tls, self.mechanisms, self.auth_error = tls, mechanisms, auth_error
        self.garbage = plaintext_garbage
        self.seen: list[int] = []
        self.tokens: list[bytes] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            sock, _ = self.listener.accept()
            sock.settimeout(10)
            if self.garbage is not None:
                _recv_exactly(sock, 4)
                sock.sendall(self.garbage)
                sock.close()
                return
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            while True:
                (size,) = _SIZE.unpack(_recv_exactly(sock, 4))
                header, request = protocol.decode_request(_recv_exactly(sock, size))
                key, ver, cid = (header.request_api_key, header.request_api_version,
                                 header.correlation_id)
                self.seen.append(key)
                sock.sendall(protocol.encode_response(key, ver, cid, self._answer(key, request)))
        except (EOFError, OSError, ssl.SSLError) as exc:
            self.error = exc

    def _answer(self, key, request):
        if key == protocol.API_VERSIONS_KEY:
            return ApiVersionsResponse(api_keys=[
                ApiVersion(k, info.min_version, info.max_version)
                for k, info in protocol.APIS.items()])
        if key == setup.SASL_HANDSHAKE_KEY:
            ok = request.mechanism in self.mechanisms
            return SaslHandshakeResponse(0 if ok else 33, list(self.mechanisms))
        if key == setup.SASL_AUTHENTICATE_KEY:
            self.tokens.append(request.auth_bytes)
            if self.auth_error:
                return SaslAuthenticateResponse(58, self.auth_error, b"")
            return SaslAuthenticateResponse(0, None, b"", session_lifetime_ms=0)
        raise AssertionError(f"unexpected api key {key}")

    def close(self):
        self.listener.close()


class Fetcher:
    """Records failed_update calls (as Metadata would be told)."""

    def __init__(self, metadata):
        self.metadata = metadata
        self.errors: list = []

    def __getattr__(self, name):
        return getattr(self.metadata, name)

    def failed_update(self, now_ms, reason, error=None):
        self.errors.append(error)
        self.metadata.failed_update(now_ms, reason, error)


def connect(broker: FakeBroker, security: ConnectionSecurity, host="127.0.0.1",
            polls: int = 100):
    metadata = fakes.make_metadata(bootstrap=((host, broker.port),))
    fetcher = Fetcher(metadata)
    client = NetworkClient(metadata, ClientOptions(SocketOptions(security=security)),
                           fetcher=fetcher)
    node = metadata.bootstrap_nodes[0]
    client.ready(node, monotonic_ms())
    conn = client._conns[node.node_id]
    states: list = []
    advance = conn.advance

    def recording_advance(now_ms):  # the state of each step as it ends (steps nest:
        states.append(conn.state)  # a TLS handshake may end inside the TCP step's call)
        advance(now_ms)

    conn.advance = recording_advance
    for _ in range(polls):
        if conn.state is State.READY or fetcher.errors:
            break
        client.poll(50, monotonic_ms())
    states.append(conn.state)
    return client, conn, fetcher, states


def server_ctx(certs, leaf="broker", client_auth=False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    files = getattr(certs, leaf)
    ctx.load_cert_chain(files.chain_pem, files.key_pem)
    if client_auth:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(certs.ca.cert_pem)
    return ctx


def sasl_ssl(certs, **kw) -> ConnectionSecurity:
    return security_from_config(cfg(**{
        "security.protocol": "SASL_SSL", "ssl.truststore.location": str(certs.ca.cert_pem),
        "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": PASSWORD,
        **kw}))


def test_every_step_runs_in_order_to_ready(certs):
    broker = FakeBroker(tls=server_ctx(certs))
    client, conn, fetcher, states = connect(broker, sasl_ssl(certs))
    try:
        assert conn.state is State.READY, (states, fetcher.errors, broker.error)
        assert states == [State.CONNECTING, State.HANDSHAKING, State.NEGOTIATING,
                          State.AUTHENTICATING, State.READY]
        assert broker.seen == [protocol.API_VERSIONS_KEY, setup.SASL_HANDSHAKE_KEY,
                               setup.SASL_AUTHENTICATE_KEY]
        assert broker.tokens == [b"\0alice\0" + PASSWORD.encode()]
        assert conn.tls and conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert not client.is_connection_failed(conn.node_id)
    finally:
        client.close()
        broker.close()


@pytest.mark.parametrize("leaf,host,reason", [
    ("untrusted", "127.0.0.1", "not trusted"),
    ("wrong_host", "127.0.0.1", "host name mismatch"),
    ("expired", "127.0.0.1", "expired"),
])
def test_tls_step_failures(certs, leaf, host, reason):
    broker = FakeBroker(tls=server_ctx(certs, leaf))
    client, conn, fetcher, _ = connect(broker, sasl_ssl(certs), host=host)
    try:
        assert len(fetcher.errors) == 1 and isinstance(fetcher.errors[0], SslAuthenticationError)
        assert reason in str(fetcher.errors[0]) and f"{host}:{broker.port}" in str(fetcher.errors[0])
        assert conn.state is State.DISCONNECTED and client.is_connection_failed(conn.node_id)
        assert broker.seen == []  # nothing was sent in the clear
        with pytest.raises(SslAuthenticationError):  # a waiting send() gets it
            client.metadata.await_topic("t", 1000, lambda: None)
    finally:
        client.close()
        broker.close()


def test_unsupported_mechanism_lists_the_brokers(certs):
    broker = FakeBroker(tls=server_ctx(certs), mechanisms=("SCRAM-SHA-512", "OAUTHBEARER"))
    client, conn, fetcher, _ = connect(broker, sasl_ssl(certs))
    try:
        (err,) = fetcher.errors
        assert isinstance(err, UnsupportedSaslMechanismError)
        assert "PLAIN" in str(err) and "SCRAM-SHA-512, OAUTHBEARER" in str(err)
        assert broker.seen == [protocol.API_VERSIONS_KEY, setup.SASL_HANDSHAKE_KEY]
    finally:
        client.close()
        broker.close()


def test_failed_authentication(certs):
    broker = FakeBroker(tls=server_ctx(certs), auth_error="Invalid username or password")
    client, conn, fetcher, _ = connect(broker, sasl_ssl(certs))
    try:
        (err,) = fetcher.errors
        assert isinstance(err, SaslAuthenticationError)
        assert "'alice'" in str(err) and "Invalid username or password" in str(err)
        assert PASSWORD not in str(err) and PASSWORD not in repr(conn.options)
        assert conn.state is State.DISCONNECTED
        assert client.connection_delay(conn.node_id, monotonic_ms()) > 0  # backs off
    finally:
        client.close()
        broker.close()


def test_plaintext_against_a_tls_answer():
    # what a TLS listener sends to a plaintext ApiVersions: an alert record
    broker = FakeBroker(plaintext_garbage=b"\x15\x03\x03\x00\x02\x02\x32")
    client, conn, fetcher, _ = connect(broker, setup.PLAINTEXT)
    try:
        (err,) = fetcher.errors
        assert isinstance(err, SecurityProtocolMismatchError) and "TLS" in str(err)
    finally:
        client.close()
        broker.close()


def test_tls_against_a_plaintext_listener(certs):
    # a Kafka PLAINTEXT listener reads the ClientHello as an impossible frame size and
    # closes the connection
    broker = FakeBroker(plaintext_garbage=b"")
    client, conn, fetcher, _ = connect(broker, sasl_ssl(certs))
    try:
        (err,) = fetcher.errors
        assert isinstance(err, SslAuthenticationError) and "PLAINTEXT" in str(err)
    finally:
        client.close()
        broker.close()
