"""fastprod.localkafka's security parts without a broker: certificates, listener config,
SCRAM format arguments, JAAS text, the identity provider and the client settings."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import pathlib
import urllib.error
import urllib.request

import pytest

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402

from fastprod.localkafka import certs, security  # noqa: E402
from fastprod.localkafka.config import NodeSpec  # noqa: E402
from fastprod.localkafka.oauth import IdentityProvider  # noqa: E402


@pytest.fixture(scope="module")
def certset(tmp_path_factory) -> certs.CertSet:
    return certs.make_certs(tmp_path_factory.mktemp("certs"))


def _load(path: pathlib.Path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)}


def _signed_by(cert, ca) -> bool:
    try:
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except Exception:  # noqa: BLE001 - InvalidSignature
        return False
    return True


# -- certificates ------------------------------------------------------------------------------
def test_broker_certificate_names_loopback_and_is_signed_by_the_ca(certset):
    ca, broker = _load(certset.ca.cert_pem), _load(certset.broker.cert_pem)
    assert _sans(broker) == {"127.0.0.1", "localhost"}
    assert ipaddress.ip_address("127.0.0.1") in broker.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert _signed_by(broker, ca) and not _signed_by(broker, _load(certset.untrusted_ca.cert_pem))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    now = datetime.datetime.now(datetime.timezone.utc)
    assert broker.not_valid_before_utc < now < broker.not_valid_after_utc
    # what a server presents: the certificate, then its CA
    chain = x509.load_pem_x509_certificates(certset.broker.chain_pem.read_bytes())
    assert chain == [broker, ca]


def test_failure_certificates(certset):
    ca, bad_ca = _load(certset.ca.cert_pem), _load(certset.untrusted_ca.cert_pem)
    wrong, expired, untrusted = (_load(c.cert_pem) for c in (certset.wrong_host, certset.expired,
                                                              certset.untrusted))
    assert _sans(wrong) == {certs.WRONG_HOST} and _signed_by(wrong, ca)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert expired.not_valid_after_utc < now and _signed_by(expired, ca)
    assert _sans(expired) == {"127.0.0.1", "localhost"}
    assert _signed_by(untrusted, bad_ca) and not _signed_by(untrusted, ca)


def test_client_certificate_in_every_format(certset):
    c = certset.client
    cert = _load(c.cert_pem)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
    key = serialization.load_pem_private_key(c.key_pem.read_bytes(), None)
    with pytest.raises(TypeError):  # encrypted: needs the password
        serialization.load_pem_private_key(c.key_pem_encrypted.read_bytes(), None)
    key2 = serialization.load_pem_private_key(c.key_pem_encrypted.read_bytes(), c.password.encode())
    assert key.private_numbers() == key2.private_numbers()
    p12_key, p12_cert, p12_cas = pkcs12.load_key_and_certificates(c.pkcs12.read_bytes(), c.password.encode())
    assert p12_cert == cert and p12_key.private_numbers() == key.private_numbers()
    assert p12_cas == [_load(certset.ca.cert_pem)]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(c.pkcs12.read_bytes(), b"wrong")
    assert oct(c.key_pem.stat().st_mode & 0o777) == "0o600"


def test_keytool_command_imports_the_ca(certset, tmp_path):
    cmd = certs.keytool_truststore_command("keytool", certset.ca.cert_pem, tmp_path / "t.p12")
    assert cmd[:2] == ["keytool", "-importcert"]
    assert cmd[cmd.index("-file") + 1] == str(certset.ca.cert_pem)
    assert cmd[cmd.index("-storetype") + 1] == "PKCS12"


# -- broker config ---------------------------------------------------------------------------------
def _node(tmp_path) -> NodeSpec:
    names = [lst.name for lst in security.LISTENERS]
    return NodeSpec(1, 9000, 9001, tmp_path, listener_ports={n: 9100 + i for i, n in enumerate(names)})


def test_listener_properties(certset, tmp_path):
    node = _node(tmp_path)
    props = security.listener_properties(node, certset, users={"alice": "pw-a"},
                                         jwks_url="http://127.0.0.1:1/jwks", reauth_ms=4000)
    listeners = props["listeners"].split(",")
    assert listeners[:2] == ["PLAINTEXT://127.0.0.1:9000", "CONTROLLER://127.0.0.1:9001"]
    assert len(listeners) == 2 + len(security.LISTENERS)
    assert "CONTROLLER" not in props["advertised.listeners"]
    pmap = dict(x.split(":") for x in props["listener.security.protocol.map"].split(","))
    assert pmap["MTLS"] == "SSL" and pmap["REAUTH"] == "SASL_PLAINTEXT" and pmap["PLAINTEXT"] == "PLAINTEXT"
    assert props["listener.name.mtls.ssl.client.auth"] == "required"
    assert "listener.name.ssl.ssl.client.auth" not in props
    assert props["listener.name.expired.ssl.keystore.location"] == str(certset.expired.pkcs12)
    assert props["listener.name.untrusted.ssl.keystore.location"] == str(certset.untrusted.pkcs12)
    for lst in ("sasl_plaintext", "sasl_ssl", "reauth"):
        assert props[f"listener.name.{lst}.sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
        assert 'user_alice="pw-a"' in props[f"listener.name.{lst}.plain.sasl.jaas.config"]
        assert props[f"listener.name.{lst}.oauthbearer.sasl.server.callback.handler.class"].endswith(
            "OAuthBearerValidatorCallbackHandler")
    assert props["listener.name.reauth.connections.max.reauth.ms"] == "4000"
    assert "listener.name.sasl_plaintext.connections.max.reauth.ms" not in props
    assert props["sasl.oauthbearer.jwks.endpoint.url"] == "http://127.0.0.1:1/jwks"
    # inter-broker traffic stays on PLAINTEXT: the props do not touch it
    assert "inter.broker.listener.name" not in props


def test_listener_properties_need_every_port(certset, tmp_path):
    node = NodeSpec(1, 9000, 9001, tmp_path, listener_ports={"SSL": 9100})
    with pytest.raises(ValueError, match="MTLS"):
        security.listener_properties(node, certset, users={}, jwks_url="x", reauth_ms=1)


def test_scram_format_args():
    args = security.scram_format_args({"alice": "a-pw", "bob": "b-pw"})
    pairs = list(zip(args[::2], args[1::2]))
    assert all(flag == "--add-scram" for flag, _ in pairs)
    assert {v for _, v in pairs} == {
        "SCRAM-SHA-256=[name=alice,password=a-pw]", "SCRAM-SHA-512=[name=alice,password=a-pw]",
        "SCRAM-SHA-256=[name=bob,password=b-pw]", "SCRAM-SHA-512=[name=bob,password=b-pw]"}
    with pytest.raises(ValueError, match="may not"):
        security.scram_format_args({"eve": "a,b"})


def test_jaas_quotes_values():
    assert security.jaas("M", username="a", password='p"q\\r') == r'M required username="a" password="p\"q\\r";'
    assert security.jaas("M") == "M required;"


def test_options_repr_hides_passwords():
    opts = security.SecurityOptions(users={"alice": "top-secret"})
    assert "top-secret" not in repr(opts) and "alice" in repr(opts)


# -- identity provider -----------------------------------------------------------------------------
def _claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _verify(idp: IdentityProvider, token: str) -> dict:
    jwk = idp.key.jwks()["keys"][0]
    n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big")
    e = int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=="), "big")
    head, body, sig = token.split(".")
    rsa.RSAPublicNumbers(e, n).public_key().verify(
        base64.urlsafe_b64decode(sig + "=="), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return json.loads(base64.urlsafe_b64decode(head + "=="))


@pytest.fixture(scope="module")
def idp():
    p = IdentityProvider({"alice": "alice-secret"}, audience="aud-1").serve()
    yield p
    p.close()


def test_minted_token_verifies_against_the_jwks(idp):
    token = idp.mint_token("carol", scope="kafka write", team="x")
    header = _verify(idp, token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": idp.key.kid}
    c = _claims(token)
    assert (c["sub"], c["aud"], c["scope"], c["team"]) == ("carol", "aud-1", "kafka write", "x")
    assert c["exp"] - c["iat"] == idp.token_lifetime_s
    assert "exp" not in _claims(idp.mint_token(exp=None))
    assert _claims(idp.mint_token(lifetime_s=-60))["exp"] < c["iat"]


def test_token_endpoint_logic(idp):
    basic = "Basic " + base64.b64encode(b"alice:alice-secret").decode()
    status, body = idp.token_response({"grant_type": "client_credentials"}, basic)
    assert status == 200 and _claims(body["access_token"])["sub"] == "alice"
    assert idp.token_response({"grant_type": "client_credentials", "client_id": "alice",
                               "client_secret": "alice-secret", "scope": "s1"}, None)[1]["scope"] == "s1"
    assert idp.token_response({"grant_type": "client_credentials", "client_id": "alice",
                               "client_secret": "nope"}, None)[0] == 401
    assert idp.token_response({"grant_type": "password"}, basic)[0] == 400
    assert idp.token_response({"grant_type": "client_credentials"}, "Basic !!!")[0] == 401
    assert "alice-secret" not in repr(idp)


def test_http_endpoints(idp):
    with urllib.request.urlopen(idp.jwks_url, timeout=5) as resp:
        assert json.load(resp) == idp.key.jwks()
    data = b"grant_type=client_credentials&client_id=alice&client_secret=alice-secret"
    with urllib.request.urlopen(urllib.request.Request(idp.token_endpoint_url, data=data), timeout=5) as resp:
        body = json.load(resp)
    assert body["token_type"] == "Bearer" and body["expires_in"] == idp.token_lifetime_s
    _verify(idp, body["access_token"])
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(idp.token_endpoint_url, data=b"grant_type=x"), timeout=5)
    assert info.value.code == 400


# -- client settings --------------------------------------------------------------------------------
class _FakeNode:
    def __init__(self, spec):
        self.spec = spec


class _FakeKafka:
    """Just the attributes SecureEndpoints reads: nodes' specs and bootstrap_servers."""

    def __init__(self, specs):
        self.nodes = [_FakeNode(s) for s in specs]
        self.bootstrap_servers = ",".join(s.address for s in specs)


@pytest.fixture
def endpoints(certset, tmp_path):
    material = security.SecurityMaterial(security.SecurityOptions())
    material.certs = certset
    names = [lst.name for lst in security.LISTENERS]
    specs = [NodeSpec(i, 9000 + i, 9010 + i, tmp_path,
                      listener_ports={n: 9100 + 10 * i + j for j, n in enumerate(names)})
             for i in (1, 2)]
    yield security.SecureEndpoints(_FakeKafka(specs), material)  # type: ignore[arg-type]
    material.close()


def test_bootstrap_per_listener(endpoints):
    assert endpoints.bootstrap() == "127.0.0.1:9001,127.0.0.1:9002"
    assert endpoints.bootstrap("ssl") == "127.0.0.1:9110,127.0.0.1:9120"
    assert endpoints.security_protocol("MTLS") == "SSL"
    with pytest.raises(ValueError, match="unknown listener 'TLS'"):
        endpoints.bootstrap("TLS")


def test_java_client_config(endpoints):
    ssl_cfg = endpoints.client_config("SSL")
    assert ssl_cfg == {"bootstrap.servers": endpoints.bootstrap("SSL"), "security.protocol": "SSL",
                       "ssl.truststore.type": "PEM", "ssl.truststore.location": str(endpoints.ca_pem)}
    mtls = endpoints.client_config("MTLS")
    assert mtls["security.protocol"] == "SSL" and mtls["ssl.keystore.location"] == str(endpoints.client_p12)
    scram = endpoints.client_config("SASL_SSL", "scram-sha-512", user="bob")
    assert scram["sasl.mechanism"] == "SCRAM-SHA-512"
    assert scram["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                         'username="bob" password="bob-secret";')
    plain = endpoints.client_config("SASL_PLAINTEXT", password="other")
    assert "ssl.truststore.location" not in plain and 'password="other"' in plain["sasl.jaas.config"]
    oauth = endpoints.client_config("SASL_SSL", "OAUTHBEARER")
    assert oauth["sasl.oauthbearer.token.endpoint.url"] == endpoints.token_endpoint_url
    assert 'clientId="alice" clientSecret="alice-secret"' in oauth["sasl.jaas.config"]
    with pytest.raises(ValueError, match="GSSAPI"):
        endpoints.client_config("SASL_SSL", "GSSAPI")
    with pytest.raises(ValueError, match="mallory"):
        endpoints.client_config("SASL_SSL", user="mallory")
    assert endpoints.client_config("PLAINTEXT") == {"bootstrap.servers": endpoints.bootstrap(),
                                                    "security.protocol": "PLAINTEXT"}


def test_librdkafka_config(endpoints):
    mtls = endpoints.librdkafka_config("MTLS")
    assert mtls["ssl.ca.location"] == str(endpoints.ca_pem)
    assert mtls["ssl.certificate.location"] == str(endpoints.client_cert_pem)
    scram = endpoints.librdkafka_config("SASL_SSL", "SCRAM-SHA-256")
    assert (scram["sasl.username"], scram["sasl.password"]) == ("alice", "alice-secret")
    oauth = endpoints.librdkafka_config("SASL_PLAINTEXT", "OAUTHBEARER")
    assert oauth["sasl.oauthbearer.method"] == "oidc" and "ssl.ca.location" not in oauth


def test_render_client_properties(endpoints):
    text = security.render_client_properties(endpoints.client_config("SSL"), skip=("bootstrap.servers",))
    assert text.splitlines() == ["security.protocol=SSL", "ssl.truststore.type=PEM",
                                 f"ssl.truststore.location={endpoints.ca_pem}"]


def test_token_endpoint_failure_modes(idp):
    data = b"grant_type=client_credentials&client_id=alice&client_secret=alice-secret"
    try:
        idp.token_failure = "garbage"
        with urllib.request.urlopen(urllib.request.Request(idp.token_endpoint_url, data=data), timeout=5) as resp:
            with pytest.raises(json.JSONDecodeError):
                json.load(resp)
        idp.token_failure = "error"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(urllib.request.Request(idp.token_endpoint_url, data=data), timeout=5)
        assert info.value.code == 500
    finally:
        idp.token_failure = None
    with urllib.request.urlopen(urllib.request.Request(idp.token_endpoint_url, data=data), timeout=5) as resp:
        assert "access_token" in json.load(resp)


def test_token_lifetime_option():
    material = security.SecurityMaterial(security.SecurityOptions(token_lifetime_s=7, serve_http=False))
    status, body = material.idp.token_response(
        {"grant_type": "client_credentials", "client_id": "alice", "client_secret": "alice-secret"}, None)
    assert status == 200 and body["expires_in"] == 7
    assert _claims(body["access_token"])["exp"] - _claims(body["access_token"])["iat"] == 7
