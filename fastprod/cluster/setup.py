"""Connection set-up as an ordered list of steps, one list for every connection.

    TCP connect -> [TLS handshake] -> ApiVersions -> [SASL handshake + authenticate] -> ready

``plan(security)`` gives the steps for a security.protocol; a BrokerConnection runs
them in order (``BrokerConnection.advance``) and is READY after the last. Producer,
ShardedProducer's parent and every worker build their connections through
``security_from_config`` and this list, so they cannot set up differently. Each step
is a stateless object: what one connection's step holds (its SSL socket, its SASL
client) lives on the connection. Nothing blocks: a step that waits for the socket
says which event it wants (``conn.wants_write``) and resumes in ``on_io``; a step that
waits for a Kafka response resumes in the handler of its (internal) request.

Failures raise from the step: NetworkError for what a retry may cure, an
AuthenticationError subclass (SslAuthenticationError, SaslAuthenticationError,
UnsupportedSaslMechanismError, SecurityProtocolMismatchError, OAuthTokenError) for
what it will not; NetworkClient backs off and reports those to whoever waits on the
cluster.
"""

from __future__ import annotations

import enum
import errno
import logging
import random
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastprod import protocol
from fastprod._version import __version__
from fastprod.errors import (
    IllegalSaslStateError,
    NetworkError,
    ProtocolError,
    SaslAuthenticationError,
    SecurityProtocolMismatchError,
    SslAuthenticationError,
    UnsupportedSaslMechanismError,
)
from fastprod.protocol.messages.api_versions import ApiVersionsRequest
from fastprod.protocol.messages.sasl_authenticate import SaslAuthenticateRequest
from fastprod.protocol.messages.sasl_handshake import SaslHandshakeRequest

if TYPE_CHECKING:
    from fastprod.cluster.connection import BrokerConnection
    from fastprod.cluster.sasl import SaslSettings

log = logging.getLogger("fastprod.network")

API_VERSIONS_VERSION = 3  # flexible; brokers that lack it answer in v0 (KIP-511)
SASL_HANDSHAKE_KEY = SaslHandshakeRequest.API_KEY
SASL_AUTHENTICATE_KEY = SaslAuthenticateRequest.API_KEY
_ILLEGAL_SASL_STATE = 34
_UNSUPPORTED_SASL_MECHANISM = 33
# Java's client re-authenticates at 85-95% of the session lifetime (KIP-368).
_REAUTH_LOW, _REAUTH_HIGH = 0.85, 0.95


class State(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"  # TCP connect in progress
    HANDSHAKING = "handshaking"  # TLS handshake
    NEGOTIATING = "negotiating"  # ApiVersions in flight
    AUTHENTICATING = "authenticating"  # SASL (also while re-authenticating, KIP-368)
    READY = "ready"


SETTING_UP = (State.CONNECTING, State.HANDSHAKING, State.NEGOTIATING, State.AUTHENTICATING)


@dataclass(frozen=True)
class ConnectionSecurity:
    """What security.protocol asks of each connection: TLS (an SSLContext) and SASL."""

    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    sasl: SaslSettings | None = None

    def __repr__(self) -> str:
        return f"<ConnectionSecurity {self.protocol} sasl={self.sasl!r}>"


PLAINTEXT = ConnectionSecurity()


def security_from_config(cfg: Mapping[str, Any],
                         user_set: frozenset[str] = frozenset()) -> ConnectionSecurity:
    """The ConnectionSecurity of a producer config (Java names to parsed values)."""
    from fastprod.cluster.sasl import sasl_from_config
    from fastprod.cluster.tls import ssl_context_from_config

    proto = str(cfg["security.protocol"]).upper()
    ctx = ssl_context_from_config(cfg, user_set) if proto in ("SSL", "SASL_SSL") else None
    sasl = sasl_from_config(cfg) if proto in ("SASL_PLAINTEXT", "SASL_SSL") else None
    return ConnectionSecurity(proto, ctx, sasl)


# ---- the steps --------------------------------------------------------------------------


class Step:
    """One set-up step; ``begin`` starts it on ``conn``, which calls ``conn.advance``
    when it is done."""

    name = "step"
    state = State.CONNECTING

    def begin(self, conn: BrokerConnection, now_ms: int) -> None:
        raise NotImplementedError

    def on_io(self, conn: BrokerConnection, mask_write: bool, now_ms: int) -> None:
        """The socket is ready (steps that wait on a response never get this)."""

    def __repr__(self) -> str:
        return f"<{self.name}>"


class TcpConnect(Step):
    name = "TCP connect"
    state = State.CONNECTING

    def begin(self, conn: BrokerConnection, now_ms: int) -> None:
        conn.open_socket(now_ms)

    def on_io(self, conn: BrokerConnection, mask_write: bool, now_ms: int) -> None:
        if not mask_write:
            return
        assert conn.sock is not None
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise NetworkError(f"connect to {conn.address} failed: "
                               f"{errno.errorcode.get(err, err)}")
        conn.connected()
        conn.advance(now_ms)


class TlsHandshake(Step):
    name = "TLS handshake"
    state = State.HANDSHAKING

    def begin(self, conn: BrokerConnection, now_ms: int) -> None:
        ctx = conn.options.security.ssl_context
        assert ctx is not None and conn.sock is not None
        conn.sock = ctx.wrap_socket(conn.sock, server_hostname=conn.host,
                                    do_handshake_on_connect=False)
        conn.tls = True
        self.on_io(conn, True, now_ms)

    def on_io(self, conn: BrokerConnection, mask_write: bool, now_ms: int) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            conn.wants_write = False
            return
        except ssl.SSLWantWriteError:
            conn.wants_write = True
            return
        except ssl.SSLCertVerificationError as exc:
            raise SslAuthenticationError(tls_failure(conn, cert_reason(exc))) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError) as exc:
            raise SslAuthenticationError(tls_failure(
                conn, f"the broker closed the connection during the handshake ({exc}); "
                "is it a PLAINTEXT or SASL_PLAINTEXT listener, or does it require a "
                "client certificate?")) from None
        except ssl.SSLError as exc:
            raise SslAuthenticationError(tls_failure(conn, ssl_reason(exc))) from None
        except OSError as exc:
            raise NetworkError(f"TLS handshake with {conn.address} failed: {exc}") from None
        conn.wants_write = False
        log.debug("TLS with node %d (%s): %s %s", conn.node_id, conn.address,
                  sock.version(), (sock.cipher() or ("?",))[0])
        conn.advance(now_ms)


def tls_failure(conn: BrokerConnection, reason: str) -> str:
    return f"TLS handshake with node {conn.node_id} ({conn.address}) failed: {reason}"


def cert_reason(exc: ssl.SSLCertVerificationError) -> str:
    message = exc.verify_message or ssl_reason(exc)
    code = exc.verify_code
    if code in (18, 19, 20, 21):  # self-signed, self-signed in chain, unknown issuer
        return (f"the broker's certificate is not trusted ({message}): its CA is not in "
                "ssl.truststore.location / ssl.truststore.certificates")
    if code == 10:
        return f"the broker's certificate has expired ({message})"
    if code in (62, 64):  # host name, IP address
        return (f"host name mismatch ({message}); set "
                "ssl.endpoint.identification.algorithm='' only if you accept that")
    return f"certificate verify failed: {message}"


def ssl_reason(exc: ssl.SSLError) -> str:
    reason = exc.reason or str(exc)
    return reason.lower().replace("_", " ")


class ApiVersions(Step):
    name = "ApiVersions"
    state = State.NEGOTIATING

    def begin(self, conn: BrokerConnection, now_ms: int) -> None:
        conn.send_internal(protocol.API_VERSIONS_KEY, API_VERSIONS_VERSION,
                           ApiVersionsRequest(client_software_name="fastprod",
                                              client_software_version=__version__),
                           lambda response: self._done(conn, response), now_ms)

    def _done(self, conn: BrokerConnection, response) -> None:
        if response.error_code != 0:
            raise ProtocolError(f"ApiVersions to {conn.address} failed with error code "
                                f"{response.error_code}")
        conn.api_versions = protocol.negotiate_versions(response)
        conn.advance(conn.last_activity_ms)


class SaslAuthenticate(Step):
    """SaslHandshake (v1: the tokens go in SaslAuthenticate requests, KIP-152), then
    SaslAuthenticate until the mechanism is complete. Also re-runs on a READY
    connection to re-authenticate (KIP-368)."""

    name = "SASL authenticate"
    state = State.AUTHENTICATING

    def begin(self, conn: BrokerConnection, now_ms: int) -> None:
        sasl = conn.options.security.sasl
        assert sasl is not None
        version = conn.api_versions.get(SASL_HANDSHAKE_KEY)
        if version is None or version < 1:
            raise ProtocolError(f"node {conn.node_id} ({conn.address}) cannot do "
                                "SaslHandshake v1 (a broker older than Kafka 1.0?)")
        conn.send_internal(SASL_HANDSHAKE_KEY, version,
                           SaslHandshakeRequest(mechanism=sasl.mechanism),
                           lambda response: self._on_handshake(conn, response), now_ms)

    def _on_handshake(self, conn: BrokerConnection, response) -> None:
        sasl = conn.options.security.sasl
        assert sasl is not None
        if response.error_code == _UNSUPPORTED_SASL_MECHANISM:
            raise UnsupportedSaslMechanismError(
                f"node {conn.node_id} ({conn.address}) does not enable SASL mechanism "
                f"{sasl.mechanism}; it enables: {', '.join(response.mechanisms) or 'none'}")
        if response.error_code == _ILLEGAL_SASL_STATE:
            raise SecurityProtocolMismatchError(
                f"node {conn.node_id} ({conn.address}) does not use SASL on this listener: "
                f"security.protocol={conn.options.security.protocol} does not match it "
                "(PLAINTEXT or SSL?)")
        if response.error_code != 0:
            raise IllegalSaslStateError(f"SaslHandshake with {conn.address} failed with "
                                        f"error code {response.error_code}")
        client = conn.sasl_client = sasl.new_client()
        self._send_token(conn, client.initial())

    def _send_token(self, conn: BrokerConnection, token: bytes) -> None:
        version = conn.api_versions.get(SASL_AUTHENTICATE_KEY, 0)
        conn.send_internal(SASL_AUTHENTICATE_KEY, version,
                           SaslAuthenticateRequest(auth_bytes=token),
                           lambda response: self._on_authenticate(conn, response),
                           conn.last_activity_ms)

    def _on_authenticate(self, conn: BrokerConnection, response) -> None:
        sasl = conn.options.security.sasl
        client = conn.sasl_client
        assert sasl is not None and client is not None
        if response.error_code != 0:
            detail = getattr(client, "failure_detail", None)
            who = f" of {sasl.principal!r}" if sasl.principal else ""
            raise SaslAuthenticationError(
                f"SASL {sasl.mechanism} authentication{who} with node {conn.node_id} "
                f"({conn.address}) failed: {response.error_message or 'no reason given'}"
                + (f" ({detail})" if detail else ""))
        token = client.respond(response.auth_bytes)
        if token is not None:
            self._send_token(conn, token)
            return
        if not client.complete:
            raise IllegalSaslStateError(f"SASL {sasl.mechanism} with {conn.address}: the "
                                        "exchange ended before the mechanism completed")
        conn.sasl_client = None
        lifetime = getattr(response, "session_lifetime_ms", 0) or 0
        now_ms = conn.last_activity_ms
        conn.reauth_at_ms = (now_ms + int(lifetime * random.uniform(_REAUTH_LOW, _REAUTH_HIGH))
                             if lifetime > 0 else None)
        log.debug("SASL %s with node %d (%s) done%s", sasl.mechanism, conn.node_id,
                  conn.address, f"; session lifetime {lifetime} ms" if lifetime else "")
        conn.advance(now_ms)


TCP_CONNECT = TcpConnect()
TLS_HANDSHAKE = TlsHandshake()
API_VERSIONS = ApiVersions()
SASL_AUTHENTICATE = SaslAuthenticate()


def plan(security: ConnectionSecurity) -> tuple[Step, ...]:
    """The set-up steps of a connection, in order (READY follows the last)."""
    steps: list[Step] = [TCP_CONNECT]
    if security.ssl_context is not None:
        steps.append(TLS_HANDSHAKE)
    steps.append(API_VERSIONS)
    if security.sasl is not None:
        steps.append(SASL_AUTHENTICATE)
    return tuple(steps)
