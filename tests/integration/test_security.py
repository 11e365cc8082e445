"""fastprod over TLS and SASL against the secured local Kafka (``kafka_secure``).

Every listener x mechanism with Producer, and the SASL_SSL/SSL ones with
ShardedProducer (parent and workers each authenticate); what was written is read back
by the Java consumer from the broker's own jars over the same listener
(java_read(client_config=...)), so nothing of fastprod's checks fastprod. Then the
failures: wrong password, untrusted / wrong-host / expired certificates, TLS against a
PLAINTEXT port and the reverse, an OIDC endpoint that is down, each a clear error from
the first call that needs the cluster, within seconds; secrets appear in no log line,
repr or message. KIP-368 re-authentication on the REAUTH listener (5 s session
lifetime): records sent across several re-authentications all arrive, none failed.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from fastprod.errors import (
    OAuthTokenError,
    SaslAuthenticationError,
    SecurityProtocolMismatchError,
    SslAuthenticationError,
)
from fastprod.localkafka.security import MECHANISMS, jaas
from fastprod.producer import Producer
from fastprod.sharded import ShardedProducer

try:
    from readers import java_read
except ImportError:  # tests/ imported as a package
    from tests.readers import java_read

pytestmark = pytest.mark.integration

N = 200
_OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
CASES = [("SSL", None), ("MTLS", None)] + [
    (listener, mech) for listener in ("SASL_PLAINTEXT", "SASL_SSL") for mech in MECHANISMS]


def _topic(label: str) -> str:
    return f"fp-sec-{label.lower().replace('_', '-')}-{uuid.uuid4().hex[:8]}"


def _config(kafka_secure, listener: str, mechanism: str | None, **extra) -> dict:
    cfg = kafka_secure.client_config(listener, mechanism or "PLAIN")
    cfg.update({k.replace("_", "."): v for k, v in extra.items()})
    return cfg


def _write(producer, topic: str, n: int = N) -> list[bytes]:
    values = [f"{topic}-{i}".encode() for i in range(n)]
    futures = [producer.send(topic, value=v, key=v[-3:]) for v in values]
    producer.flush(60)
    for f in futures:
        f.result(30)
    return values


def _read_back(kafka_secure, listener: str, mechanism: str | None, topic: str,
               expected: list[bytes], isolation: str = "read_uncommitted") -> None:
    cfg = kafka_secure.client_config(listener, mechanism or "PLAIN")
    records = java_read(cfg["bootstrap.servers"], topic, len(expected), client_config=cfg,
                        isolation=isolation)
    assert sorted(r.value for r in records) == sorted(expected)
    assert all(r.key == r.value[-3:] for r in records)


@pytest.mark.parametrize("listener,mechanism", CASES,
                         ids=[f"{a}-{b}" if b else a for a, b in CASES])
def test_producer_every_protocol_and_mechanism(kafka_secure, listener, mechanism):
    topic = _topic(f"{listener}-{mechanism or ''}")
    kafka_secure.create_topic(topic, partitions=3)
    with Producer(_config(kafka_secure, listener, mechanism, linger_ms=5)) as p:
        values = _write(p, topic)
    _read_back(kafka_secure, listener, mechanism, topic, values)


SHARDED_CASES = [("SSL", None)] + [("SASL_SSL", m) for m in MECHANISMS]


@pytest.mark.parametrize("listener,mechanism", SHARDED_CASES,
                         ids=[f"{a}-{b}" if b else a for a, b in SHARDED_CASES])
def test_sharded_producer_over_tls_and_sasl(kafka_secure, listener, mechanism):
    topic = _topic(f"sh-{listener}-{mechanism or ''}")
    kafka_secure.create_topic(topic, partitions=4)
    with ShardedProducer(_config(kafka_secure, listener, mechanism), workers=2) as p:
        values = _write(p, topic, 400)
    _read_back(kafka_secure, listener, mechanism, topic, values)


def test_mtls_with_pem_files_and_inline_pem(kafka_secure):
    base = kafka_secure.client_config("MTLS")
    for key in ("ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password",
                "ssl.key.password"):
        base.pop(key)
    topic = _topic("mtls-pem")
    kafka_secure.create_topic(topic, partitions=2)
    # an encrypted PEM key in a file with its certificate
    pem_file = kafka_secure.client_key_pem_encrypted.parent / "client-chain-enc.pem"
    pem_file.write_text(kafka_secure.client_cert_pem.read_text()
                        + kafka_secure.client_key_pem_encrypted.read_text())
    with Producer({**base, "ssl.keystore.location": str(pem_file),
                   "ssl.key.password": kafka_secure.password}) as p:
        values = _write(p, topic, 50)
    # inline PEM: key + chain, and the CA as ssl.truststore.certificates
    inline = {k: v for k, v in base.items() if not k.startswith("ssl.truststore")}
    with Producer({**inline,
                   "ssl.truststore.certificates": kafka_secure.ca_pem.read_text(),
                   "ssl.keystore.key": kafka_secure.client_key_pem.read_text(),
                   "ssl.keystore.certificate.chain": kafka_secure.client_cert_pem.read_text(),
                   }) as p:
        values += _write(p, topic, 50)
    _read_back(kafka_secure, "MTLS", None, topic, values)


def test_mtls_pkcs12_truststore(kafka_secure):
    cfg = kafka_secure.client_config("MTLS")
    cfg.update({"ssl.truststore.type": "PKCS12",
                "ssl.truststore.location": str(kafka_secure.truststore_p12),
                "ssl.truststore.password": kafka_secure.password})
    topic = _topic("mtls-p12")
    kafka_secure.create_topic(topic)
    with Producer(cfg) as p:
        values = _write(p, topic, 50)
    _read_back(kafka_secure, "MTLS", None, topic, values)


def test_transactions_over_sasl_ssl(kafka_secure):
    topic = _topic("txn")
    kafka_secure.create_topic(topic, partitions=2)
    cfg = _config(kafka_secure, "SASL_SSL", "SCRAM-SHA-512",
                  transactional_id=f"txn-{uuid.uuid4().hex[:8]}")
    with Producer(cfg) as p:
        p.init_transactions(30)
        p.begin_transaction()
        committed = _write(p, topic, 60)
        p.commit_transaction(30)
        p.begin_transaction()
        for i in range(20):
            p.send(topic, value=f"aborted-{i}".encode(), key=b"xyz")
        p.flush(30)
        p.abort_transaction(30)
    _read_back(kafka_secure, "SASL_SSL", "SCRAM-SHA-512", topic, committed,
               isolation="read_committed")


def test_oauthbearer_token_callback(kafka_secure):
    calls = []

    def token() -> str:
        calls.append(1)
        return kafka_secure.mint_token("alice")

    cfg = kafka_secure.client_config("SASL_SSL", "OAUTHBEARER")
    for key in ("sasl.login.callback.handler.class", "sasl.oauthbearer.token.endpoint.url",
                "sasl.jaas.config"):
        cfg.pop(key)
    topic = _topic("oauth-cb")
    kafka_secure.create_topic(topic)
    with Producer({**cfg, "sasl.login.callback.handler.class": token}) as p:
        values = _write(p, topic, 50)
    assert calls  # and one token serves every connection of the producer
    assert len(calls) == 1
    _read_back(kafka_secure, "SASL_SSL", "OAUTHBEARER", topic, values)


# ---- failures ------------------------------------------------------------------------------


def _first_send_fails(cfg: dict, error, within_s: float, caplog) -> BaseException:
    caplog.set_level(logging.DEBUG, logger="fastprod")
    topic = _topic("fail")
    started = time.monotonic()
    with Producer({**cfg, "max.block.ms": 30000, "request.timeout.ms": 10000}) as p:
        with pytest.raises(error) as info:
            p.send(topic, value=b"x")
    elapsed = time.monotonic() - started
    assert elapsed < within_s, f"took {elapsed:.1f} s"
    return info.value


def _assert_no_secret(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_fails_the_first_send_within_seconds(kafka_secure, caplog, mechanism):
    secret = "not-alices-password-42"
    cfg = kafka_secure.client_config("SASL_SSL", mechanism, password=secret)
    exc = _first_send_fails(cfg, SaslAuthenticationError, 10, caplog)
    assert "alice" in str(exc) and mechanism in str(exc)
    # backed off, no retry storm: a handful of attempts at most in those seconds
    attempts = [r for r in caplog.records if "connecting to node" in r.getMessage()]
    assert len(attempts) <= 10, len(attempts)
    _assert_no_secret(secret, str(exc), repr(exc), caplog.text,
                      repr(Producer.__init__), repr(cfg and exc.args))


def test_secrets_stay_out_of_reprs_and_logs(kafka_secure, caplog):
    caplog.set_level(logging.DEBUG, logger="fastprod")
    cfg = kafka_secure.client_config("SASL_SSL", "SCRAM-SHA-256")
    secret = kafka_secure.users["alice"]
    topic = _topic("secret")
    kafka_secure.create_topic(topic)
    with Producer(cfg) as p:
        _write(p, topic, 10)
        shown = [repr(p.config), str(p.config), repr(p.config.originals),
                 repr(p._engine.client.options) if hasattr(p, "_engine") else ""]
    _assert_no_secret(secret, caplog.text, *shown)


@pytest.mark.parametrize("listener,reason", [
    ("UNTRUSTED", "not trusted"), ("WRONG_HOST", "host name mismatch"),
    ("EXPIRED", "expired")])
def test_certificate_failures_name_host_and_reason(kafka_secure, caplog, listener, reason):
    cfg = kafka_secure.client_config(listener)
    exc = _first_send_fails(cfg, SslAuthenticationError, 10, caplog)
    assert cfg["bootstrap.servers"] in str(exc) and reason in str(exc)


def test_tls_against_a_plaintext_port(kafka_secure, caplog):
    cfg = kafka_secure.client_config("SSL")
    cfg["bootstrap.servers"] = kafka_secure.bootstrap("PLAINTEXT")
    exc = _first_send_fails(cfg, SslAuthenticationError, 12, caplog)
    assert "PLAINTEXT" in str(exc)


def test_plaintext_against_a_tls_port(kafka_secure, caplog):
    cfg = {"bootstrap.servers": kafka_secure.bootstrap("SSL")}
    exc = _first_send_fails(cfg, SecurityProtocolMismatchError, 12, caplog)
    assert "TLS" in str(exc)


def test_sasl_against_a_listener_without_sasl(kafka_secure, caplog):
    cfg = kafka_secure.client_config("SASL_PLAINTEXT", "PLAIN")
    cfg["bootstrap.servers"] = kafka_secure.bootstrap("PLAINTEXT")
    exc = _first_send_fails(cfg, SecurityProtocolMismatchError, 12, caplog)
    assert "SASL" in str(exc)


def test_oidc_endpoint_down(kafka_secure, caplog):
    cfg = kafka_secure.client_config("SASL_SSL", "OAUTHBEARER")
    cfg["sasl.oauthbearer.token.endpoint.url"] = "http://127.0.0.1:9/token"
    cfg["sasl.login.retry.backoff.max.ms"] = 500
    exc = _first_send_fails(cfg, OAuthTokenError, 15, caplog)
    assert "127.0.0.1:9" in str(exc)
    _assert_no_secret(kafka_secure.users["alice"], str(exc), caplog.text)


def test_oidc_wrong_client_secret(kafka_secure, caplog):
    secret = "wrong-oidc-secret-77"
    cfg = kafka_secure.client_config("SASL_SSL", "OAUTHBEARER", password=secret)
    exc = _first_send_fails(cfg, OAuthTokenError, 15, caplog)
    _assert_no_secret(secret, str(exc), caplog.text)


# ---- KIP-368 -------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "OAUTHBEARER"])
def test_reauthentication_loses_nothing(kafka_secure, caplog, mechanism):
    caplog.set_level(logging.DEBUG, logger="fastprod.network")
    lifetime_s = kafka_secure.reauth_ms / 1000.0
    topic = _topic(f"reauth-{mechanism}")
    kafka_secure.create_topic(topic, partitions=2)
    cfg = _config(kafka_secure, "REAUTH", mechanism, linger_ms=2)
    values: list[bytes] = []
    futures = []
    with Producer(cfg) as p:
        deadline = time.monotonic() + 2.5 * lifetime_s
        i = 0
        while time.monotonic() < deadline:
            v = f"{topic}-{i}".encode()
            values.append(v)
            futures.append(p.send(topic, value=v, key=v[-3:]))
            i += 1
            time.sleep(0.002)
        p.flush(60)
        errors = [f.exception(30) for f in futures]
    assert not [e for e in errors if e is not None]
    reauths = [r for r in caplog.records if "re-authenticated" in r.getMessage()]
    assert len(reauths) >= 2, "expected re-authentications within 2.5 session lifetimes"
    disconnects = [r for r in caplog.records if "disconnected from node" in r.getMessage()
                   and "closing" not in r.getMessage()]
    assert not disconnects, [r.getMessage() for r in disconnects]
    _read_back(kafka_secure, "REAUTH", mechanism, topic, values)
