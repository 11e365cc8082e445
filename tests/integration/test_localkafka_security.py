"""The secured local Kafka (``kafka_secure``) checked with clients that share no code with
fastprod: librdkafka (confluent-kafka) writes over each listener and mechanism, the Java
consumer from the broker's own jars reads the records back over the same listener;
Python's ``ssl`` names the reason of each certificate failure; SaslHandshake and
SaslAuthenticate are sent by hand (fastprod.protocol's generated codecs, nothing of
fastprod's connection code) to see the enabled mechanisms and the session lifetime.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from fastprod import protocol
from fastprod.localkafka.security import MECHANISMS, SecureEndpoints

try:
    from readers import java_read
except ImportError:  # tests/ imported as a package
    from tests.readers import java_read

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient  # noqa: E402
pytestmark = pytest.mark.integration

SASL_LISTENERS = ("SASL_PLAINTEXT", "SASL_SSL")
N = 50


def _topic(prefix: str) -> str:
    return f"sec-{prefix.lower().replace('_', '-')}-{uuid.uuid4().hex[:8]}"


def _produce(cfg: dict, topic: str, n: int = N) -> list[bytes]:
    """Write n records with librdkafka over ``cfg``'s listener; every one acknowledged."""
    values = [f"{topic}-{i}".encode() for i in range(n)]
    acked: list[bytes] = []
    errors: list[object] = []

    def on_delivery(err, msg):
        (errors if err is not None else acked).append(err if err is not None else msg.value())

    p = confluent_kafka.Producer({**cfg, "acks": "all", "enable.idempotence": True,
                                  "error_cb": errors.append})
    for v in values:
        p.produce(topic, value=v, key=v[-2:], on_delivery=on_delivery)
    assert p.flush(30) == 0, f"records left unsent; errors: {errors}"
    assert not errors, errors
    assert sorted(acked) == sorted(values)  # partitions ack in any order
    return values


def _librdkafka_errors(cfg: dict, seconds: float = 6.0) -> list:
    """The errors librdkafka reports while it tries to reach the cluster with ``cfg``."""
    errors: list = []
    p = confluent_kafka.Producer({**cfg, "error_cb": errors.append,
                                  "reconnect.backoff.ms": 200, "reconnect.backoff.max.ms": 1000})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not errors:
        try:
            p.list_topics(timeout=1)
            break
        except confluent_kafka.KafkaException:
            pass
    p.poll(0.1)
    return errors


def _tls_failure(port: int, cafile: str, *, host: str = "127.0.0.1") -> str | None:
    """None if a TLS handshake with certificate and host checks succeeds, else the
    reason OpenSSL gives."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=host):
                return None
        except ssl.SSLCertVerificationError as e:
            return e.verify_message


def _port(secure: SecureEndpoints, listener: str) -> int:
    return int(secure.bootstrap(listener).split(",")[0].rpartition(":")[2])


# -- every listener and mechanism, written by librdkafka, read by the Java consumer ---------
def test_each_listener_advertises_its_own_port(kafka_secure):
    for listener in ("PLAINTEXT", "SSL", "MTLS", "SASL_PLAINTEXT", "SASL_SSL", "REAUTH"):
        md = AdminClient(kafka_secure.librdkafka_config(listener)).list_topics(timeout=20)
        assert {(b.host, b.port) for b in md.brokers.values()} == {("127.0.0.1", _port(kafka_secure, listener))}, listener


@pytest.mark.parametrize("listener", ["SSL", "MTLS"])
def test_tls_listener_roundtrip(kafka_secure, listener):
    topic = _topic(listener)
    kafka_secure.create_topic(topic, partitions=2)
    values = _produce(kafka_secure.librdkafka_config(listener), topic)
    got = java_read(kafka_secure.bootstrap(listener), topic, N,
                    client_config=kafka_secure.client_config(listener))
    assert sorted(r.value for r in got) == sorted(values)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("listener", SASL_LISTENERS)
def test_sasl_roundtrip(kafka_secure, listener, mechanism):
    topic = _topic(f"{listener}-{mechanism}")
    kafka_secure.create_topic(topic, partitions=2)
    values = _produce(kafka_secure.librdkafka_config(listener, mechanism, user="bob"), topic)
    got = java_read(kafka_secure.bootstrap(listener), topic, N,
                    client_config=kafka_secure.client_config(listener, mechanism, user="alice"))
    assert sorted(r.value for r in got) == sorted(values)


def test_java_reads_with_pkcs12_truststore(kafka_secure):
    assert kafka_secure.truststore_p12 is not None and kafka_secure.truststore_p12.is_file()
    topic = _topic("p12")
    kafka_secure.create_topic(topic)
    values = _produce(kafka_secure.librdkafka_config("SSL"), topic, 5)
    cfg = kafka_secure.client_config("SSL")
    cfg.update({"ssl.truststore.type": "PKCS12", "ssl.truststore.location": str(kafka_secure.truststore_p12),
                "ssl.truststore.password": kafka_secure.password})
    got = java_read(kafka_secure.bootstrap("SSL"), topic, 5, client_config=cfg)
    assert [r.value for r in got] == values


# -- authentication failures -------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_is_refused(kafka_secure, mechanism):
    cfg = kafka_secure.librdkafka_config("SASL_SSL", mechanism, password="not-the-password")
    errors = _librdkafka_errors(cfg)
    assert any(e.code() == confluent_kafka.KafkaError._AUTHENTICATION for e in errors), errors
    # and the same user with the right password gets in (the refusal was the password)
    assert not _librdkafka_errors(kafka_secure.librdkafka_config("SASL_SSL", mechanism), 3)


def test_unknown_scram_user_is_refused(kafka_secure):
    cfg = kafka_secure.librdkafka_config("SASL_PLAINTEXT", "SCRAM-SHA-256", user="mallory",
                                         password="x")
    errors = _librdkafka_errors(cfg)
    assert any(e.code() == confluent_kafka.KafkaError._AUTHENTICATION for e in errors), errors


def test_mtls_without_client_certificate_is_refused(kafka_secure):
    ctx = ssl.create_default_context(cafile=str(kafka_secure.ca_pem))
    with socket.create_connection(("127.0.0.1", _port(kafka_secure, "MTLS")), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)) as info:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                # TLS 1.3: the server's verdict on the (missing) client cert comes after
                # the client's side of the handshake finished.
                tls.sendall(b"\0\0\0\0")
                if not tls.recv(1):
                    raise ConnectionError("closed")
    text = str(info.value).upper()
    assert ("CERTIFICATE_REQUIRED" in text or "BAD_CERTIFICATE" in text
            or isinstance(info.value, ConnectionError)), text
    # with the client certificate (PEM, encrypted key) the handshake and a read succeed
    ctx.load_cert_chain(str(kafka_secure.client_cert_pem), str(kafka_secure.client_key_pem_encrypted),
                        password=kafka_secure.password)
    with socket.create_connection(("127.0.0.1", _port(kafka_secure, "MTLS")), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert _sasl_exchange_over(tls, None) is None  # ApiVersions-free: a Metadata answer


def test_certificate_failures_name_their_reason(kafka_secure):
    ca = str(kafka_secure.ca_pem)
    assert _tls_failure(_port(kafka_secure, "SSL"), ca) is None
    assert _tls_failure(_port(kafka_secure, "SSL"), ca, host="localhost") is None
    assert "mismatch" in (_tls_failure(_port(kafka_secure, "WRONG_HOST"), ca) or "")
    assert "mismatch" in (_tls_failure(_port(kafka_secure, "WRONG_HOST"), ca, host="localhost") or "")
    assert "expired" in (_tls_failure(_port(kafka_secure, "EXPIRED"), ca) or "")
    # the broker sends its CA along: OpenSSL then names the chain's self-signed root
    untrusted = ("self-signed certificate in certificate chain", "unable to get local issuer certificate")
    assert _tls_failure(_port(kafka_secure, "UNTRUSTED"), ca) in untrusted
    # a truststore holding only the untrusted CA refuses the good broker
    assert _tls_failure(_port(kafka_secure, "SSL"), str(kafka_secure.untrusted_ca_pem)) in untrusted
    # the wrong-host certificate is otherwise fine: it passes with host checks off
    cfg = kafka_secure.librdkafka_config("WRONG_HOST")
    assert _librdkafka_errors(cfg, 3)
    assert not _librdkafka_errors({**cfg, "ssl.endpoint.identification.algorithm": "none"}, 3)


# -- SASL details seen on the wire -------------------------------------------------------------
_cid = itertools.count(1)


def _send(sock, message, version: int):
    cid = next(_cid)
    sock.sendall(protocol.encode_request(type(message).API_KEY, version, cid, "secb-test", message))
    (size,) = struct.unpack(">i", _recv(sock, 4))
    frame = _recv(sock, size)
    got_cid, response = protocol.decode_response(type(message).API_KEY, version, frame)
    assert got_cid == cid
    return response


def _recv(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed by broker")
        buf += chunk
    return buf


def _sasl_exchange_over(sock, mechanism: str | None, auth: bytes = b""):
    """SaslHandshake v1 (+ one SaslAuthenticate v2 if the mechanism is accepted) on
    ``sock``; None for ``mechanism=None`` after checking a Metadata answer instead."""
    from fastprod.protocol.messages.metadata import MetadataRequest
    from fastprod.protocol.messages.sasl_authenticate import SaslAuthenticateRequest
    from fastprod.protocol.messages.sasl_handshake import SaslHandshakeRequest

    if mechanism is None:
        md = _send(sock, MetadataRequest(topics=[], allow_auto_topic_creation=False), 4)
        assert md.brokers
        return None
    hs = _send(sock, SaslHandshakeRequest(mechanism=mechanism), 1)
    if hs.error_code:
        return hs, None
    return hs, _send(sock, SaslAuthenticateRequest(auth_bytes=auth), 2)


def _plain_session(port: int, user: str, password: str):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return _sasl_exchange_over(sock, "PLAIN", f"\0{user}\0{password}".encode())


def test_broker_enables_every_mechanism(kafka_secure):
    for listener in ("SASL_PLAINTEXT", "REAUTH"):
        with socket.create_connection(("127.0.0.1", _port(kafka_secure, listener)), timeout=10) as sock:
            hs, auth = _sasl_exchange_over(sock, "NO-SUCH-MECH")
        assert hs.error_code == 33 and auth is None  # UNSUPPORTED_SASL_MECHANISM
        assert sorted(hs.mechanisms) == sorted(MECHANISMS)


def test_reauth_listener_sets_a_session_lifetime(kafka_secure):
    _, auth = _plain_session(_port(kafka_secure, "REAUTH"), "alice", kafka_secure.users["alice"])
    assert auth.error_code == 0
    assert 0 < auth.session_lifetime_ms <= kafka_secure.reauth_ms
    _, auth = _plain_session(_port(kafka_secure, "SASL_PLAINTEXT"), "alice", kafka_secure.users["alice"])
    assert auth.error_code == 0 and auth.session_lifetime_ms == 0  # no lifetime elsewhere
    _, auth = _plain_session(_port(kafka_secure, "REAUTH"), "alice", "wrong")
    assert auth.error_code == 58  # SASL_AUTHENTICATION_FAILED


def test_reauth_listener_cuts_off_an_expired_session(kafka_secure):
    """KIP-368 on the broker side: a connection that does not re-authenticate within its
    session lifetime is closed at its next request; before that it is served."""
    from fastprod.protocol.messages.metadata import MetadataRequest

    with socket.create_connection(("127.0.0.1", _port(kafka_secure, "REAUTH")), timeout=10) as sock:
        _, auth = _sasl_exchange_over(sock, "PLAIN", b"\0alice\0" + kafka_secure.users["alice"].encode())
        assert auth.error_code == 0
        started = time.monotonic()
        assert _send(sock, MetadataRequest(topics=[], allow_auto_topic_creation=False), 4).brokers
        time.sleep(max(0.0, auth.session_lifetime_ms / 1000 + 0.5 - (time.monotonic() - started)))
        with pytest.raises((ConnectionError, OSError)):
            _send(sock, MetadataRequest(topics=[], allow_auto_topic_creation=False), 4)


def test_java_consumer_keeps_reading_on_reauth_listener(kafka_secure):
    """A Java consumer that polls for longer than two session lifetimes reads everything
    and ends cleanly (the Java client re-authenticates; this test alone would not tell
    that apart from reconnecting, the one above shows the broker does enforce it)."""
    topic = _topic("reauth")
    kafka_secure.create_topic(topic)
    values = _produce(kafka_secure.librdkafka_config("REAUTH", "SCRAM-SHA-512"), topic, 10)
    # expected > what is there: the consumer polls until idle_timeout, past 2 lifetimes
    idle = 2.5 * kafka_secure.reauth_ms / 1000
    got = java_read(kafka_secure.bootstrap("REAUTH"), topic, 11, idle_timeout=idle,
                    client_config=kafka_secure.client_config("REAUTH", "SCRAM-SHA-512"))
    assert [r.value for r in got] == values


# -- OAUTHBEARER -----------------------------------------------------------------------------------
def _oauth_errors(secure: SecureEndpoints, token: str, seconds: float = 6.0) -> list:
    cfg = secure.librdkafka_config("SASL_SSL", "PLAIN")
    cfg.pop("sasl.username"), cfg.pop("sasl.password")
    cfg["sasl.mechanism"] = "OAUTHBEARER"
    cfg["oauth_cb"] = lambda _config: (token, time.time() + 3600)
    return _librdkafka_errors(cfg, seconds)


def test_minted_tokens_are_validated_by_the_broker(kafka_secure):
    assert not _oauth_errors(kafka_secure, kafka_secure.mint_token("carol"), 3)
    bad = {
        "expired": kafka_secure.mint_token(lifetime_s=-120),
        "wrong audience": kafka_secure.mint_token(audience="someone-else"),
        "unknown key": kafka_secure.mint_token(kid="no-such-key"),
        "no exp": kafka_secure.mint_token(exp=None),
    }
    for why, token in bad.items():
        errors = _oauth_errors(kafka_secure, token)
        assert any(e.code() == confluent_kafka.KafkaError._AUTHENTICATION for e in errors), (why, errors)


def test_token_endpoint_client_credentials(kafka_secure):
    url = kafka_secure.token_endpoint_url
    basic = base64.b64encode(b"alice:" + kafka_secure.users["alice"].encode()).decode()
    req = urllib.request.Request(url, data=b"grant_type=client_credentials&scope=kafka",
                                 headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.load(resp)
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["sub"] == "alice" and claims["scope"] == "kafka"
    assert not _oauth_errors(kafka_secure, body["access_token"], 3)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "alice",
                                   "client_secret": "wrong"}).encode()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=5)
    assert info.value.code == 401
    with urllib.request.urlopen(kafka_secure.jwks_url, timeout=5) as resp:
        assert [k["kid"] for k in json.load(resp)["keys"]] == [kafka_secure.idp.key.kid]


def test_java_oidc_client_gets_its_token_from_the_endpoint(kafka_secure):
    before = kafka_secure.idp.tokens_issued
    topic = _topic("oidc")
    kafka_secure.create_topic(topic)
    values = _produce(kafka_secure.librdkafka_config("SASL_SSL", "OAUTHBEARER"), topic, 5)
    got = java_read(kafka_secure.bootstrap("SASL_SSL"), topic, 5,
                    client_config=kafka_secure.client_config("SASL_SSL", "OAUTHBEARER"))
    assert sorted(r.value for r in got) == sorted(values)
    assert kafka_secure.idp.tokens_issued >= before + 2  # librdkafka's and Java's


def test_java_read_refuses_bad_client_config(kafka_secure):
    with pytest.raises(ValueError, match="isolation.level"):
        java_read(kafka_secure.bootstrap("SSL"), "t", client_config={"isolation.level": "x"})
    with pytest.raises(ValueError, match="bootstrap"):
        java_read(kafka_secure.bootstrap("SSL"), "t",
                  client_config=kafka_secure.client_config("SASL_SSL"))


# -- the three-node secured cluster ------------------------------------------------------------------
def test_secure_cluster_every_node_on_every_listener(kafka_secure_cluster):
    sec = kafka_secure_cluster
    for listener in ("SSL", "SASL_SSL"):
        md = AdminClient(sec.librdkafka_config(listener, "SCRAM-SHA-256")).list_topics(timeout=30)
        assert sorted(b.port for b in md.brokers.values()) == sorted(
            int(a.rpartition(":")[2]) for a in sec.bootstrap(listener).split(","))
    topic = _topic("cluster")
    sec.create_topic(topic, partitions=3, replication_factor=3)
    values = _produce(sec.librdkafka_config("SASL_SSL", "SCRAM-SHA-512"), topic)
    got = java_read(sec.bootstrap("SASL_SSL"), topic, N,
                    client_config=sec.client_config("SASL_SSL", "PLAIN", user="bob"))
    assert sorted(r.value for r in got) == sorted(values)


# -- fastprod broker start --security ------------------------------------------------------------------
def test_cli_prints_settings_the_java_client_uses(tmp_path):
    import os
    import subprocess
    import sys

    from fastprod.localkafka import ensure_jars, jars

    ensure_jars()
    (tmp_path / f"kafka-{jars.KAFKA_VERSION}").symlink_to(jars.kafka_home())
    env = dict(os.environ, FASTPROD_CACHE=str(tmp_path))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fastprod", "broker", *args], capture_output=True,
                              text=True, env=env, timeout=180)

    started = cli("start", "--security", "sasl_ssl", "--sasl-mechanism", "SCRAM-SHA-256")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        lines = [ln for ln in started.stdout.splitlines() if ln and not ln.startswith("#")]
        cfg = dict(ln.split("=", 1) for ln in lines)
        assert cfg["security.protocol"] == "SASL_SSL" and cfg["sasl.mechanism"] == "SCRAM-SHA-256"
        listeners = dict(ln.split() for ln in started.stderr.splitlines() if ln.startswith("  "))
        assert listeners["SASL_SSL"] == cfg["bootstrap.servers"]
        topic = _topic("cli")
        values = _produce({"bootstrap.servers": listeners["PLAINTEXT"]}, topic, 5)
        got = java_read(cfg["bootstrap.servers"], topic, 5, client_config=cfg)
        assert [r.value for r in got] == values
        status = cli("status")
        assert status.returncode == 0 and "SASL_SSL" in status.stdout
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
