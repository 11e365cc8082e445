"""SASL for broker connections: the mechanisms and their credentials, from the config.

``sasl_from_config`` turns sasl.mechanism, sasl.jaas.config (or sasl.username /
sasl.password) and the sasl.oauthbearer.* / sasl.login.* keys into a ``SaslSettings``,
which makes one ``SaslClient`` per authentication. The exchange itself (SaslHandshake,
then SaslAuthenticate until the mechanism is complete) is a step of the connection
set-up in fastprod/cluster/setup.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from fastprod.cluster.sasl.jaas import (
    OAUTHBEARER_MODULE,
    PLAIN_MODULE,
    SCRAM_MODULE,
    JaasEntry,
    parse_jaas_config,
)
from fastprod.cluster.sasl.oauthbearer import (
    ClientCredentials,
    OAuthBearerClient,
    OAuthBearerToken,
    RefreshPolicy,
    TokenProvider,
    callback_fetcher,
    client_credentials_fetcher,
    unsecured_fetcher,
)
from fastprod.cluster.sasl.plain import PlainClient
from fastprod.cluster.sasl.scram import ScramClient
from fastprod.config import Password
from fastprod.errors import ConfigError

__all__ = ["OAuthBearerToken", "SaslClient", "SaslSettings", "SUPPORTED_MECHANISMS",
           "sasl_from_config"]

SUPPORTED_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_JAVA_LOGIN_HANDLER = ("org.apache.kafka.common.security.oauthbearer."
                       "OAuthBearerLoginCallbackHandler")
_MODULES = {"PLAIN": PLAIN_MODULE, "SCRAM-SHA-256": SCRAM_MODULE,
            "SCRAM-SHA-512": SCRAM_MODULE, "OAUTHBEARER": OAUTHBEARER_MODULE}


class SaslClient(Protocol):
    """One authentication's client side: ``initial()`` is the first token sent;
    ``respond(server_token)`` the next one, or None once ``complete``."""

    mechanism: str
    complete: bool

    def initial(self) -> bytes: ...

    def respond(self, challenge: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class SaslSettings:
    mechanism: str
    new_client: Callable[[], SaslClient]
    principal: str | None = None  # for messages; never a secret

    def __repr__(self) -> str:
        who = f" as {self.principal!r}" if self.principal else ""
        return f"<SaslSettings {self.mechanism}{who}>"


def sasl_from_config(cfg: Mapping[str, Any]) -> SaslSettings:
    """The SASL settings of a config whose security.protocol is SASL_*; ConfigError for
    a mechanism fastprod cannot do or credentials that are missing or malformed."""
    mechanism = str(cfg["sasl.mechanism"]).upper()
    if mechanism == "GSSAPI":
        raise ConfigError(
            "sasl.mechanism=GSSAPI (Kerberos, the Java default) is not supported by "
            "fastprod; set sasl.mechanism to one of " + ", ".join(SUPPORTED_MECHANISMS))
    if mechanism not in SUPPORTED_MECHANISMS:
        raise ConfigError(f"sasl.mechanism={cfg['sasl.mechanism']!r} is not supported; "
                          "use one of " + ", ".join(SUPPORTED_MECHANISMS))
    entry = _jaas_entry(cfg, mechanism)
    if mechanism == "OAUTHBEARER":
        return _oauthbearer(cfg, entry)
    username, password = _user_password(cfg, entry, mechanism)
    if mechanism == "PLAIN":
        return SaslSettings(mechanism, lambda: PlainClient(username, password), username)
    return SaslSettings(mechanism, lambda: ScramClient(mechanism, username, password),
                        username)


def _jaas_entry(cfg: Mapping[str, Any], mechanism: str) -> JaasEntry | None:
    jaas = cfg["sasl.jaas.config"]
    if jaas is None:
        return None
    entry = parse_jaas_config(jaas.value if isinstance(jaas, Password) else str(jaas))
    expected = _MODULES[mechanism]
    if entry.module != expected:
        raise ConfigError(f"sasl.jaas.config names {entry.module}, but sasl.mechanism="
                          f"{mechanism} needs {expected}")
    return entry


def _user_password(cfg: Mapping[str, Any], entry: JaasEntry | None,
                   mechanism: str) -> tuple[str, Password]:
    if entry is not None:
        missing = [k for k in ("username", "password") if k not in entry.options]
        if missing:
            raise ConfigError(f"sasl.jaas.config for {mechanism} lacks "
                              + " and ".join(missing))
        return entry.options["username"], Password(entry.options["password"])
    if cfg["sasl.username"] is None:
        raise ConfigError(f"sasl.mechanism={mechanism} needs credentials: set sasl.jaas.config "
                          f"('{_MODULES[mechanism]} required username=\"...\" "
                          "password=\"...\";') or sasl.username and sasl.password")
    return cfg["sasl.username"], cfg["sasl.password"]


def _oauthbearer(cfg: Mapping[str, Any], entry: JaasEntry | None) -> SaslSettings:
    options = dict(entry.options) if entry is not None else {}
    policy = RefreshPolicy(cfg["sasl.login.refresh.window.factor"],
                           cfg["sasl.login.refresh.window.jitter"],
                           cfg["sasl.login.refresh.min.period.seconds"],
                           cfg["sasl.login.refresh.buffer.seconds"])
    callback = cfg["sasl.login.callback.handler.class"]
    url = cfg["sasl.oauthbearer.token.endpoint.url"]
    if callback == _JAVA_LOGIN_HANDLER:
        callback = None  # Java's OIDC handler: what the token endpoint URL does here
    if callback is not None:
        if isinstance(callback, str):
            from fastprod.config import _import_object
            callback = _import_object("sasl.login.callback.handler.class", callback)
        fetch, what, principal = callback_fetcher(callback), "the token callback", None
    elif url is not None:
        client_id = options.get("clientId") or cfg[
            "sasl.oauthbearer.client.credentials.client.id"]
        secret = options.get("clientSecret")
        secret_pw = Password(secret) if secret is not None else cfg[
            "sasl.oauthbearer.client.credentials.client.secret"]
        if not client_id or secret_pw is None:
            raise ConfigError(
                "sasl.oauthbearer.token.endpoint.url is set but the client credentials are "
                "not: give clientId and clientSecret in sasl.jaas.config (or "
                "sasl.oauthbearer.client.credentials.client.id/.secret)")
        connect = cfg["sasl.login.connect.timeout.ms"]
        read = cfg["sasl.login.read.timeout.ms"]
        cc = ClientCredentials(
            url, client_id, secret_pw, options.get("scope") or cfg["sasl.oauthbearer.scope"],
            connect_timeout_s=(connect or 10000) / 1000.0,
            read_timeout_s=(read or 10000) / 1000.0,
            retry_backoff_ms=cfg["sasl.login.retry.backoff.ms"],
            retry_backoff_max_ms=cfg["sasl.login.retry.backoff.max.ms"],
            urlencode_header=cfg["sasl.oauthbearer.header.urlencode"])
        fetch, what, principal = client_credentials_fetcher(cc), url, client_id
    elif "unsecuredLoginStringClaim_sub" in options:
        fetch = unsecured_fetcher(options)
        what = principal = options["unsecuredLoginStringClaim_sub"]
        what = "an unsecured (unsigned) token"
    else:
        raise ConfigError(
            "sasl.mechanism=OAUTHBEARER needs a token source: "
            "sasl.oauthbearer.token.endpoint.url (OIDC client credentials), "
            "sasl.login.callback.handler.class (a Python callable returning a JWT), or "
            "unsecuredLoginStringClaim_sub in sasl.jaas.config")
    extensions = {k[len("extension_"):]: v for k, v in options.items()
                  if k.startswith("extension_")}
    provider = TokenProvider(fetch, policy, what)
    return SaslSettings("OAUTHBEARER", lambda: OAuthBearerClient(provider, extensions),
                        principal)
