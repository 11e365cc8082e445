"""SASL OAUTHBEARER (RFC 7628, KIP-255) with tokens from a callback or from an OIDC
token endpoint by the client credentials grant (KIP-768).

A token is fetched when a connection first needs one and kept until its refresh time:
a fraction of its lifetime (sasl.login.refresh.window.factor, plus up to
sasl.login.refresh.window.jitter), at most sasl.login.refresh.buffer.seconds before
it expires, at least sasl.login.refresh.min.period.seconds after it was fetched, as
Java's ExpiringCredentialRefreshingLogin computes it. Every authentication (first or
KIP-368 re-authentication) asks the provider, so a connection never presents a token
past its refresh time. If a refresh fails while the old token is still valid, the old
one is used (and the failure logged); once it has expired, the failure is the
connection's error.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from fastprod.config import Password
from fastprod.errors import ConfigError, OAuthTokenError

log = logging.getLogger("fastprod.sasl")


@dataclass(frozen=True)
class OAuthBearerToken:
    """A token a callback may return: the compact JWS, when it expires (epoch ms), and
    optionally when it was issued and the principal (for logs)."""

    value: str = field(repr=False)
    expires_at_ms: int
    issued_at_ms: int | None = None
    principal: str | None = None


def token_from_jwt(jwt: str) -> OAuthBearerToken:
    """Read exp / iat / sub from a JWT's payload (no signature check: the broker
    checks it, the client only needs the times)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise OAuthTokenError(f"the OAUTHBEARER token is not a JWT (it has {len(parts)} "
                              "dot-separated parts, not 3)")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        raise OAuthTokenError("the OAUTHBEARER token's payload is not base64url JSON") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), (int, float)):
        raise OAuthTokenError("the OAUTHBEARER token has no numeric 'exp' claim")
    iat = claims.get("iat")
    return OAuthBearerToken(jwt, int(claims["exp"] * 1000),
                            int(iat * 1000) if isinstance(iat, (int, float)) else None,
                            claims.get("sub") if isinstance(claims.get("sub"), str) else None)


@dataclass(frozen=True)
class RefreshPolicy:
    window_factor: float = 0.8
    window_jitter: float = 0.05
    min_period_s: int = 60
    buffer_s: int = 300

    def refresh_at_ms(self, token: OAuthBearerToken, now_ms: int,
                      rng: random.Random) -> int:
        expires = token.expires_at_ms
        start = token.issued_at_ms if token.issued_at_ms is not None else now_ms
        lifetime = max(expires - start, 0)
        at = start + int(lifetime * (self.window_factor + self.window_jitter * rng.random()))
        at = min(at, expires - self.buffer_s * 1000)
        at = max(at, min(now_ms + self.min_period_s * 1000, expires))
        return at


class TokenProvider:
    """The current token of one producer (shared by its connections; thread-safe)."""

    def __init__(self, fetch: Callable[[], OAuthBearerToken], policy: RefreshPolicy,
                 what: str, wall_ms: Callable[[], int] | None = None) -> None:
        self._fetch = fetch
        self._policy = policy
        self.what = what  # for messages: "the token callback", "https://idp/token"
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._lock = threading.Lock()
        self._token: OAuthBearerToken | None = None
        self._refresh_at_ms = 0
        self._rng = random.Random()
        self.fetches = 0

    def __repr__(self) -> str:
        return f"<TokenProvider from {self.what}>"

    def token(self) -> OAuthBearerToken:
        with self._lock:
            now = self._wall_ms()
            if self._token is not None and now < self._refresh_at_ms:
                return self._token
            try:
                token = self._fetch()
                self.fetches += 1
            except OAuthTokenError as exc:
                if self._token is not None and now < self._token.expires_at_ms:
                    log.warning("refreshing the OAUTHBEARER token from %s failed (%s); "
                                "using the current one until it expires", self.what, exc)
                    return self._token
                raise
            except Exception as exc:  # noqa: BLE001 - a user's callback may raise anything
                raise OAuthTokenError(f"{self.what} failed: {type(exc).__name__}: "
                                      f"{exc}") from None
            if token.expires_at_ms <= now:
                raise OAuthTokenError(f"{self.what} returned a token that has already "
                                      "expired")
            self._token = token
            self._refresh_at_ms = self._policy.refresh_at_ms(token, now, self._rng)
            log.debug("OAUTHBEARER token from %s for %s expires in %d s, refresh in %d s",
                      self.what, token.principal, (token.expires_at_ms - now) // 1000,
                      (self._refresh_at_ms - now) // 1000)
            return token


def callback_fetcher(callback: Any) -> Callable[[], OAuthBearerToken]:
    """A user's token callback: a callable (or a class, made with no arguments, whose
    instances are callable) returning a JWT string or an OAuthBearerToken."""
    fn = callback() if isinstance(callback, type) else callback
    if not callable(fn):
        raise ConfigError("sasl.login.callback.handler.class must be a callable (or a class "
                          "of callables) that returns a token")

    def fetch() -> OAuthBearerToken:
        got = fn()
        if isinstance(got, OAuthBearerToken):
            return got
        if isinstance(got, str):
            return token_from_jwt(got)
        raise OAuthTokenError(f"the token callback returned {type(got).__name__}, not a "
                              "JWT string or an OAuthBearerToken")
    return fetch


@dataclass(frozen=True)
class ClientCredentials:
    url: str
    client_id: str
    client_secret: Password = field(repr=False)
    scope: str | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 10000
    urlencode_header: bool = False


def client_credentials_fetcher(cc: ClientCredentials) -> Callable[[], OAuthBearerToken]:
    """KIP-768: POST grant_type=client_credentials with HTTP basic auth; retried on
    connection errors and 5xx answers with exponential backoff for at most
    sasl.login.retry.backoff.max.ms, as Java's HttpJwtRetriever."""

    def fetch() -> OAuthBearerToken:
        deadline = time.monotonic() + cc.retry_backoff_max_ms / 1000.0
        backoff = cc.retry_backoff_ms / 1000.0
        while True:
            try:
                return _request_token(cc)
            except _Retriable as exc:
                if time.monotonic() + backoff > deadline:
                    raise OAuthTokenError(f"the OAuth token endpoint {cc.url} failed: "
                                          f"{exc}") from None
                log.debug("OAuth token endpoint %s: %s; retrying in %.1f s", cc.url, exc,
                          backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, cc.retry_backoff_max_ms / 1000.0)
    return fetch


class _Retriable(Exception):
    pass


def _request_token(cc: ClientCredentials) -> OAuthBearerToken:
    cid, secret = cc.client_id, cc.client_secret.value
    if cc.urlencode_header:
        cid, secret = urllib.parse.quote(cid, safe=""), urllib.parse.quote(secret, safe="")
    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    form = {"grant_type": "client_credentials"}
    if cc.scope:
        form["scope"] = cc.scope
    request = urllib.request.Request(
        cc.url, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Authorization": f"Basic {basic}", "Accept": "application/json",
                 "Content-Type": "application/x-www-form-urlencoded",
                 "Cache-Control": "no-cache"})
    try:
        # one timeout for both: urllib has no separate connect timeout
        with urllib.request.urlopen(request, timeout=max(cc.connect_timeout_s,
                                                         cc.read_timeout_s)) as answer:
            body = answer.read(1 << 20)
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc)
        if exc.code >= 500:
            raise _Retriable(f"HTTP {exc.code}{detail}") from None
        raise OAuthTokenError(f"the OAuth token endpoint {cc.url} refused the client "
                              f"credentials of {cc.client_id!r}: HTTP {exc.code}{detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Retriable(f"cannot reach it ({reason})") from None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    # The body is not shown: an answer that is almost a token may hold one.
    if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str) \
            or not doc["access_token"]:
        raise OAuthTokenError(f"the OAuth token endpoint {cc.url} answered {len(body)} bytes "
                              "that are not JSON with an 'access_token'")
    token = token_from_jwt(doc["access_token"])
    expires_in = doc.get("expires_in")
    if isinstance(expires_in, (int, float)) and expires_in > 0:
        now = int(time.time() * 1000)
        token = OAuthBearerToken(token.value, min(token.expires_at_ms,
                                                  now + int(expires_in * 1000)),
                                 token.issued_at_ms, token.principal)
    return token


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read(4096))
    except (ValueError, OSError):
        return ""
    if isinstance(doc, dict):
        parts = [str(doc[k])[:200] for k in ("error", "error_description") if k in doc]
        return f" ({': '.join(parts)})" if parts else ""
    return ""


def unsecured_fetcher(options: dict[str, str],
                      lifetime_s: int = 3600) -> Callable[[], OAuthBearerToken]:
    """Java's OAuthBearerUnsecuredLoginCallbackHandler: an unsigned JWT (alg none) with
    the sub from unsecuredLoginStringClaim_sub; only for brokers set up to accept it."""
    sub = options["unsecuredLoginStringClaim_sub"]
    lifetime_s = int(options.get("unsecuredLoginLifetimeSeconds", lifetime_s))

    def fetch() -> OAuthBearerToken:
        now = int(time.time())
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
        jwt = f"{enc({'alg': 'none'})}.{enc({'sub': sub, 'iat': now, 'exp': now + lifetime_s})}."
        return OAuthBearerToken(jwt, (now + lifetime_s) * 1000, now * 1000, sub)
    return fetch


class OAuthBearerClient:
    mechanism = "OAUTHBEARER"

    def __init__(self, provider: TokenProvider, extensions: dict[str, str] | None = None) -> None:
        self._provider = provider
        self._extensions = extensions or {}
        self.complete = False
        self._failed: str | None = None
        self.token: OAuthBearerToken | None = None

    def __repr__(self) -> str:
        return f"<OAuthBearerClient {self._provider.what}>"

    def initial(self) -> bytes:
        self.token = self._provider.token()
        ext = "".join(f"\x01{k}={v}" for k, v in sorted(self._extensions.items()))
        return f"n,,\x01auth=Bearer {self.token.value}{ext}\x01\x01".encode()

    def respond(self, challenge: bytes) -> bytes | None:
        if not challenge:
            self.complete = True
            return None
        # RFC 7628 3.2.2: the server's error JSON; answer %x01, the broker then fails
        # the SaslAuthenticate with an error code (the message joins this detail).
        try:
            doc = json.loads(challenge)
            self._failed = f"status {doc.get('status')!r}" + (
                f", scope {doc['scope']!r}" if doc.get("scope") else "")
        except (ValueError, AttributeError):
            self._failed = "an unreadable error"
        return b"\x01"

    @property
    def failure_detail(self) -> str | None:
        return self._failed
