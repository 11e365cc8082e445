"""Security for a local Kafka: TLS and SASL listeners, users, and the client settings.

A secured node keeps its PLAINTEXT listener (inter-broker traffic, the readiness probe,
``create_topic``) and adds one listener per kind, each on its own loopback port:

=============  ==============  ===============================================================
listener       protocol        what it is for
=============  ==============  ===============================================================
SSL            SSL             server certificate only
MTLS           SSL             ``ssl.client.auth=required``: the client certificate is checked
SASL_PLAINTEXT SASL_PLAINTEXT  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER
SASL_SSL       SASL_SSL        the same mechanisms over TLS
REAUTH         SASL_PLAINTEXT  as SASL_PLAINTEXT with a short ``connections.max.reauth.ms``
                               (KIP-368 re-authentication tests)
WRONG_HOST     SSL             a CA-signed certificate for another host name
EXPIRED        SSL             a CA-signed certificate that expired yesterday
UNTRUSTED      SSL             a certificate from a CA no truststore here holds
=============  ==============  ===============================================================

PLAIN users live in the listeners' JAAS config, SCRAM users (SHA-256 and SHA-512) are
written into the cluster metadata at storage-format time (``--add-scram``), OAUTHBEARER
tokens are validated against the JWKS of ``oauth.IdentityProvider``.

``SecureEndpoints`` is what tests and users get: bootstrap addresses per listener and
client configurations in the Java client's keys (``client_config``) or librdkafka's
(``librdkafka_config``).
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import certs as _certs
from .certs import CertFiles, CertSet
from .config import NodeSpec
from .oauth import DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_LIFETIME_S, IdentityProvider

if TYPE_CHECKING:
    from .cluster import LocalKafka

log = logging.getLogger("fastprod.localkafka")

PLAINTEXT = "PLAINTEXT"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_USERS: Mapping[str, str] = {"alice": "alice-secret", "bob": "bob-secret"}
#: Session lifetime on the REAUTH listener: long enough for a connection to do real work,
#: short enough that a test sees several re-authentications in a few seconds.
DEFAULT_REAUTH_MS = 5000
#: The JVM system property (Kafka 4) listing the URLs OAuth code may contact.
ALLOWED_URLS_PROPERTY = "org.apache.kafka.sasl.oauthbearer.allowed.urls"

_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
_OAUTH_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
_OAUTH_LOGIN_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"


@dataclass(frozen=True)
class Listener:
    name: str  # the listener name in server.properties
    protocol: str  # its security protocol
    cert: str | None = None  # which CertSet entry the broker presents
    client_auth: bool = False
    sasl: bool = False
    reauth: bool = False


LISTENERS: tuple[Listener, ...] = (
    Listener("SSL", "SSL", cert="broker"),
    Listener("MTLS", "SSL", cert="broker", client_auth=True),
    Listener("SASL_PLAINTEXT", "SASL_PLAINTEXT", sasl=True),
    Listener("SASL_SSL", "SASL_SSL", cert="broker", sasl=True),
    Listener("REAUTH", "SASL_PLAINTEXT", sasl=True, reauth=True),
    Listener("WRONG_HOST", "SSL", cert="wrong_host"),
    Listener("EXPIRED", "SSL", cert="expired"),
    Listener("UNTRUSTED", "SSL", cert="untrusted"),
)
LISTENER_NAMES = (PLAINTEXT, *(lst.name for lst in LISTENERS))
_BY_NAME = {lst.name: lst for lst in LISTENERS}


@dataclass(frozen=True)
class SecurityOptions:
    """What a secured LocalKafka sets up; every field has a working default."""

    users: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))
    reauth_ms: int = DEFAULT_REAUTH_MS
    oauth_audience: str = DEFAULT_AUDIENCE
    oauth_issuer: str = DEFAULT_ISSUER
    #: expires_in of the tokens the token endpoint hands out (short: refresh tests).
    token_lifetime_s: int = DEFAULT_LIFETIME_S
    #: Serve JWKS and the token endpoint over HTTP from this process. A detached broker
    #: outlives us, so it reads the JWKS from a file and has no token endpoint.
    serve_http: bool = True

    def __repr__(self) -> str:  # the passwords stay out of logs and tracebacks
        return (f"SecurityOptions(users={sorted(self.users)}, reauth_ms={self.reauth_ms}, "
                f"serve_http={self.serve_http})")


def _quote(value: str) -> str:
    """A JAAS option value: double-quoted, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas(module: str, **options: str) -> str:
    """A one-entry JAAS config in Java's syntax, e.g. ``Module required a="b";``."""
    opts = "".join(f" {k}={_quote(v)}" for k, v in options.items())
    return f"{module} required{opts};"


def scram_format_args(users: Mapping[str, str]) -> list[str]:
    """``kafka-storage format`` arguments that create every user for both SCRAM hashes."""
    for name, password in users.items():
        for text in (name, password):
            if any(c in text for c in ",=[]\"") or not text:
                raise ValueError(f"SCRAM user names/passwords may not be empty or contain , = [ ] \": {name!r}")
    return [arg for mech in SCRAM_MECHANISMS for name, pw in users.items()
            for arg in ("--add-scram", f"{mech}=[name={name},password={pw}]")]


def listener_properties(
    node: NodeSpec,
    certs: CertSet,
    *,
    users: Mapping[str, str],
    jwks_url: str,
    reauth_ms: int,
    audience: str = DEFAULT_AUDIENCE,
    issuer: str = DEFAULT_ISSUER,
) -> dict[str, str]:
    """server.properties keys that add the secured listeners to ``node`` (its
    ``listener_ports`` hold one port per name in LISTENERS)."""
    missing = [lst.name for lst in LISTENERS if lst.name not in node.listener_ports]
    if missing:
        raise ValueError(f"node {node.node_id} has no port for listeners {missing}")
    ports = node.listener_ports
    listeners = [f"PLAINTEXT://127.0.0.1:{node.port}", f"CONTROLLER://127.0.0.1:{node.controller_port}"]
    advertised = [f"PLAINTEXT://127.0.0.1:{node.port}"]
    proto_map = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    props: dict[str, str] = {}
    plain_jaas = jaas(_PLAIN_MODULE, **{f"user_{u}": pw for u, pw in users.items()})
    for lst in LISTENERS:
        url = f"{lst.name}://127.0.0.1:{ports[lst.name]}"
        listeners.append(url)
        advertised.append(url)
        proto_map.append(f"{lst.name}:{lst.protocol}")
        prefix = f"listener.name.{lst.name.lower()}."
        if lst.cert is not None:
            cf: CertFiles = getattr(certs, lst.cert)
            props.update({
                prefix + "ssl.keystore.type": "PKCS12",
                prefix + "ssl.keystore.location": str(cf.pkcs12),
                prefix + "ssl.keystore.password": cf.password,
                prefix + "ssl.key.password": cf.password,
            })
        if lst.client_auth:
            props.update({
                prefix + "ssl.client.auth": "required",
                prefix + "ssl.truststore.type": "PEM",
                prefix + "ssl.truststore.location": str(certs.ca.cert_pem),
            })
        if lst.sasl:
            props[prefix + "sasl.enabled.mechanisms"] = ",".join(MECHANISMS)
            props[prefix + "plain.sasl.jaas.config"] = plain_jaas
            for mech in SCRAM_MECHANISMS:
                props[prefix + f"{mech.lower()}.sasl.jaas.config"] = jaas(_SCRAM_MODULE)
            props[prefix + "oauthbearer.sasl.jaas.config"] = jaas(_OAUTH_MODULE)
            props[prefix + "oauthbearer.sasl.server.callback.handler.class"] = _OAUTH_VALIDATOR
        if lst.reauth:
            # Read per listener and mechanism (SaslChannelBuilder); set it for each.
            props[prefix + "connections.max.reauth.ms"] = str(reauth_ms)
            for mech in MECHANISMS:
                props[prefix + f"{mech.lower()}.connections.max.reauth.ms"] = str(reauth_ms)
    props.update({
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": ",".join(proto_map),
        "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
        "sasl.oauthbearer.expected.audience": audience,
        "sasl.oauthbearer.expected.issuer": issuer,
    })
    return props


class SecurityMaterial:
    """Certificates, identity provider and per-node config of one secured LocalKafka."""

    def __init__(self, options: SecurityOptions) -> None:
        self.options = options
        self.idp = IdentityProvider(options.users, audience=options.oauth_audience,
                                    issuer=options.oauth_issuer,
                                    token_lifetime_s=options.token_lifetime_s)
        self.certs: CertSet | None = None
        self._jwks_file: pathlib.Path | None = None
        if options.serve_http:
            self.idp.serve()

    def __repr__(self) -> str:
        return f"<SecurityMaterial {self.options!r} certs={self.certs.dir if self.certs else None}>"

    def prepare(self, dir: pathlib.Path) -> subprocess.Popen[bytes] | None:
        """Make the certificates in ``dir``; start keytool on the PKCS12 truststore and
        return it (the caller waits for it while the nodes format), or None without keytool."""
        self.certs = _certs.make_certs(dir)
        if not self.options.serve_http:
            self._jwks_file = self.idp.write_jwks(dir / "jwks.json")
        from . import jars

        keytool = shutil.which("keytool") or str(pathlib.Path(jars.java_executable()).with_name("keytool"))
        if not pathlib.Path(keytool).exists():
            log.warning("no keytool next to java: no PKCS12 truststore in %s", dir)
            return None
        out = dir / "truststore.p12"
        out.unlink(missing_ok=True)
        return subprocess.Popen(_certs.keytool_truststore_command(keytool, self.certs.ca.cert_pem, out),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)

    def finish_truststore(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or self.certs is None:
            return
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"keytool failed ({proc.returncode}): {out.decode(errors='replace')}")
        self.certs = dataclasses.replace(self.certs, truststore_p12=self.certs.dir / "truststore.p12")

    @property
    def jwks_url(self) -> str:
        if self.options.serve_http:
            return self.idp.jwks_url
        if self._jwks_file is None:
            raise RuntimeError("prepare() has not run")
        return self._jwks_file.as_uri()

    def jvm_args(self) -> list[str]:
        return [f"-D{ALLOWED_URLS_PROPERTY}={self.jwks_url}"]

    def format_args(self) -> list[str]:
        return scram_format_args(self.options.users)

    def broker_properties(self, node: NodeSpec) -> dict[str, str]:
        if self.certs is None:
            raise RuntimeError("prepare() has not run")
        o = self.options
        return listener_properties(node, self.certs, users=o.users, jwks_url=self.jwks_url,
                                   reauth_ms=o.reauth_ms, audience=o.oauth_audience,
                                   issuer=o.oauth_issuer)

    def close(self) -> None:
        self.idp.close()


class SecureEndpoints:
    """A secured local Kafka as clients see it (the ``kafka_secure`` fixture).

    ``bootstrap("SASL_SSL")`` is the listener's bootstrap.servers; ``client_config(...)``
    the Java client's settings for it; the file attributes (``ca_pem``, ``client_p12``,
    ...) and ``users`` for tests that build their own; ``mint_token`` for OAUTHBEARER.
    """

    def __init__(self, kafka: LocalKafka, material: SecurityMaterial) -> None:
        if material.certs is None:
            raise RuntimeError("the security material was never prepared")
        self.kafka = kafka
        self._material = material
        self.certs: CertSet = material.certs
        self.users: dict[str, str] = dict(material.options.users)
        self.mechanisms = MECHANISMS
        self.reauth_ms = material.options.reauth_ms
        self.password = self.certs.password
        c = self.certs
        self.ca_pem = c.ca.cert_pem
        self.truststore_p12 = c.truststore_p12
        self.untrusted_ca_pem = c.untrusted_ca.cert_pem
        self.client_cert_pem = c.client.cert_pem
        self.client_key_pem = c.client.key_pem
        self.client_key_pem_encrypted = c.client.key_pem_encrypted
        self.client_p12 = c.client.pkcs12
        self.idp = material.idp

    def __repr__(self) -> str:
        return f"<SecureEndpoints {self.kafka!r} listeners={list(LISTENER_NAMES)}>"

    # -- addresses -------------------------------------------------------------------------
    def bootstrap(self, protocol: str = PLAINTEXT) -> str:
        """bootstrap.servers of one listener (see LISTENER_NAMES) on every node."""
        name = protocol.upper()
        if name == PLAINTEXT:
            return self.kafka.bootstrap_servers
        if name not in _BY_NAME:
            raise ValueError(f"unknown listener {protocol!r}; one of {', '.join(LISTENER_NAMES)}")
        return ",".join(f"127.0.0.1:{n.spec.listener_ports[name]}" for n in self.kafka.nodes)

    @staticmethod
    def security_protocol(listener: str) -> str:
        """The security.protocol a client sets for ``listener`` (MTLS -> SSL, ...)."""
        name = listener.upper()
        if name == PLAINTEXT:
            return PLAINTEXT
        if name not in _BY_NAME:
            raise ValueError(f"unknown listener {listener!r}; one of {', '.join(LISTENER_NAMES)}")
        return _BY_NAME[name].protocol

    # -- OAUTHBEARER ------------------------------------------------------------------------
    @property
    def jwks_url(self) -> str:
        return self._material.jwks_url

    @property
    def token_endpoint_url(self) -> str:
        return self.idp.token_endpoint_url

    def mint_token(self, sub: str = "alice", **kw: Any) -> str:
        """A JWT the broker accepts (see ``IdentityProvider.mint_token`` for the knobs
        that make ones it refuses)."""
        return self.idp.mint_token(sub, **kw)

    # -- client settings ---------------------------------------------------------------------
    def _credentials(self, mechanism: str, user: str, password: str | None) -> tuple[str, str]:
        mech = mechanism.upper()
        if mech not in MECHANISMS:
            raise ValueError(f"unknown SASL mechanism {mechanism!r}; one of {', '.join(MECHANISMS)}")
        if password is None:
            if user not in self.users:
                raise ValueError(f"unknown user {user!r}; users are {sorted(self.users)}")
            password = self.users[user]
        return mech, password

    def client_config(self, protocol: str, mechanism: str = "PLAIN", user: str = "alice",
                      password: str | None = None) -> dict[str, str]:
        """The Java client's settings for ``protocol`` (a listener name): bootstrap,
        security.protocol, the PEM CA as truststore, the client's PKCS12 keystore for
        MTLS, and for SASL listeners ``mechanism`` with ``user`` (``password``: another
        one than the user's, for failure tests). OAUTHBEARER uses the token endpoint
        (client credentials: client id = user, secret = password)."""
        proto = self.security_protocol(protocol)
        cfg = {"bootstrap.servers": self.bootstrap(protocol), "security.protocol": proto}
        if proto in ("SSL", "SASL_SSL"):
            cfg["ssl.truststore.type"] = "PEM"
            cfg["ssl.truststore.location"] = str(self.ca_pem)
        if protocol.upper() == "MTLS":
            cfg["ssl.keystore.type"] = "PKCS12"
            cfg["ssl.keystore.location"] = str(self.client_p12)
            cfg["ssl.keystore.password"] = self.password
            cfg["ssl.key.password"] = self.password
        if proto.startswith("SASL_"):
            mech, secret = self._credentials(mechanism, user, password)
            cfg["sasl.mechanism"] = mech
            if mech == "PLAIN":
                cfg["sasl.jaas.config"] = jaas(_PLAIN_MODULE, username=user, password=secret)
            elif mech in SCRAM_MECHANISMS:
                cfg["sasl.jaas.config"] = jaas(_SCRAM_MODULE, username=user, password=secret)
            else:
                cfg["sasl.login.callback.handler.class"] = _OAUTH_LOGIN_HANDLER
                cfg["sasl.oauthbearer.token.endpoint.url"] = self.token_endpoint_url
                cfg["sasl.jaas.config"] = jaas(_OAUTH_MODULE, clientId=user, clientSecret=secret,
                                               scope="kafka")
        return cfg

    def librdkafka_config(self, protocol: str, mechanism: str = "PLAIN", user: str = "alice",
                          password: str | None = None) -> dict[str, str]:
        """The same as ``client_config`` in librdkafka's keys (confluent-kafka)."""
        proto = self.security_protocol(protocol)
        cfg = {"bootstrap.servers": self.bootstrap(protocol), "security.protocol": proto}
        if proto in ("SSL", "SASL_SSL"):
            cfg["ssl.ca.location"] = str(self.ca_pem)
        if protocol.upper() == "MTLS":
            cfg["ssl.certificate.location"] = str(self.client_cert_pem)
            cfg["ssl.key.location"] = str(self.client_key_pem)
        if proto.startswith("SASL_"):
            mech, secret = self._credentials(mechanism, user, password)
            cfg["sasl.mechanism"] = mech
            if mech == "OAUTHBEARER":
                cfg.update({
                    "sasl.oauthbearer.method": "oidc",
                    "sasl.oauthbearer.client.id": user,
                    "sasl.oauthbearer.client.secret": secret,
                    "sasl.oauthbearer.token.endpoint.url": self.token_endpoint_url,
                    "sasl.oauthbearer.scope": "kafka",
                })
            else:
                cfg["sasl.username"] = user
                cfg["sasl.password"] = secret
        return cfg

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1,
                     config: Mapping[str, object] | None = None, **kw: Any) -> None:
        """``LocalKafka.create_topic`` (over the PLAINTEXT listener)."""
        self.kafka.create_topic(name, partitions, replication_factor, config, **kw)


def listener_ports_needed() -> int:
    return len(LISTENERS)


def render_client_properties(cfg: Mapping[str, str], skip: Sequence[str] = ()) -> str:
    """``cfg`` as a Java client .properties text (what ``broker start`` prints)."""
    return "".join(f"{k}={v}\n" for k, v in cfg.items() if k not in skip)
