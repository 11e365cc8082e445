"""OAUTHBEARER tokens (fastprod/cluster/sasl/oauthbearer.py): the refresh time, the
provider's cache and fallback, the client's messages, and OIDC client credentials
(KIP-768) against a token endpoint served on loopback by http.server."""

from __future__ import annotations

import base64
import json
import random
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from fastprod.cluster.sasl import sasl_from_config
from fastprod.cluster.sasl.oauthbearer import (
    ClientCredentials,
    OAuthBearerClient,
    OAuthBearerToken,
    RefreshPolicy,
    TokenProvider,
    client_credentials_fetcher,
    token_from_jwt,
)
from fastprod.config import Password, ProducerConfig
from fastprod.errors import ConfigError, OAuthTokenError

SECRET = "oidc-client-secret-123"


def jwt(exp: float, iat: float | None = None, sub: str = "alice") -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    claims = {"sub": sub, "exp": exp, **({"iat": iat} if iat is not None else {})}
    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.c2ln"


def test_token_from_jwt_reads_the_times() -> None:
    t = token_from_jwt(jwt(2000, 1000))
    assert (t.expires_at_ms, t.issued_at_ms, t.principal) == (2_000_000, 1_000_000, "alice")
    for bad in ("a.b", "x.!!!.y", jwt(2000).replace(".", ".e30", 1)):
        with pytest.raises(OAuthTokenError):
            token_from_jwt(bad)


def test_refresh_time_follows_javas_rules() -> None:
    rng = random.Random(1)
    hour = OAuthBearerToken("t", expires_at_ms=3_600_000, issued_at_ms=0)
    at = RefreshPolicy(0.8, 0.05, 60, 300).refresh_at_ms(hour, 0, rng)
    assert 0.8 * 3_600_000 <= at <= 0.85 * 3_600_000
    # the buffer wins over the window: no later than 300 s before expiry
    ten_min = OAuthBearerToken("t", expires_at_ms=600_000, issued_at_ms=0)
    assert RefreshPolicy(0.8, 0.0, 60, 300).refresh_at_ms(ten_min, 0, rng) == 300_000
    # the minimum period wins over the buffer, but never past expiry
    two_min = OAuthBearerToken("t", expires_at_ms=120_000, issued_at_ms=0)
    assert RefreshPolicy(0.8, 0.0, 60, 300).refresh_at_ms(two_min, 0, rng) == 60_000
    assert RefreshPolicy(0.8, 0.0, 900, 300).refresh_at_ms(two_min, 0, rng) == 120_000


def test_provider_caches_refreshes_and_falls_back() -> None:
    now = [0]
    fetched = []
    fail = [False]

    def fetch() -> OAuthBearerToken:
        if fail[0]:
            raise OAuthTokenError("endpoint down")
        fetched.append(now[0])
        return OAuthBearerToken(f"t{len(fetched)}", now[0] + 10_000, now[0])

    p = TokenProvider(fetch, RefreshPolicy(0.8, 0.0, 0, 0), "test", wall_ms=lambda: now[0])
    assert p.token().value == "t1"
    now[0] = 7_999
    assert p.token().value == "t1" and fetched == [0]  # cached until 80% of the lifetime
    now[0] = 8_000
    assert p.token().value == "t2"
    now[0] = 16_500
    fail[0] = True
    assert p.token().value == "t2"  # refresh failed, the old token is still valid
    now[0] = 18_000
    with pytest.raises(OAuthTokenError, match="endpoint down"):
        p.token()


def test_a_callback_that_raises_or_returns_junk() -> None:
    def boom():
        raise RuntimeError("no idp")

    p = TokenProvider(boom, RefreshPolicy(), "the token callback")
    with pytest.raises(OAuthTokenError, match="the token callback failed: RuntimeError"):
        p.token()
    cfg = ProducerConfig({"bootstrap.servers": "a:1", "security.protocol": "SASL_SSL",
                          "sasl.mechanism": "OAUTHBEARER",
                          "sasl.login.callback.handler.class": lambda: 42})
    client = sasl_from_config(cfg).new_client()
    with pytest.raises(OAuthTokenError, match="returned int"):
        client.initial()


def test_client_messages() -> None:
    token = jwt(time.time() + 3600)
    p = TokenProvider(lambda: token_from_jwt(token), RefreshPolicy(), "cb")
    c = OAuthBearerClient(p, {"traceId": "7"})
    assert c.initial() == f"n,,\x01auth=Bearer {token}\x01traceId=7\x01\x01".encode()
    # an error challenge is answered with %x01 and its status kept for the message
    assert c.respond(b'{"status":"invalid_token"}') == b"\x01"
    assert not c.complete and "invalid_token" in c.failure_detail
    c2 = OAuthBearerClient(p)
    c2.initial()
    assert c2.respond(b"") is None and c2.complete
    assert token not in repr(c) and token not in repr(p)


# ---- the token endpoint ------------------------------------------------------------------


class _Endpoint(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.headers["Authorization"], urllib.parse.parse_qs(body.decode())))
        if self.mode == "ok":
            self._answer(200, json.dumps({"access_token": jwt(time.time() + 3600),
                                          "expires_in": 60, "token_type": "Bearer"}))
        elif self.mode == "unauthorized":
            self._answer(401, json.dumps({"error": "invalid_client"}))
        else:
            self._answer(200, "<html>almost a token " + SECRET + "</html>")

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def endpoint():
    server = HTTPServer(("127.0.0.1", 0), _Endpoint)
    _Endpoint.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/token"
    server.shutdown()
    server.server_close()


def _cc(url: str, **kw) -> ClientCredentials:
    return ClientCredentials(url, "fastprod-client", Password(SECRET), "kafka", **kw)


def test_client_credentials_grant(endpoint) -> None:
    _Endpoint.mode = "ok"
    before = time.time() * 1000
    token = client_credentials_fetcher(_cc(endpoint))()
    auth, form = _Endpoint.seen[0]
    assert auth == "Basic " + base64.b64encode(f"fastprod-client:{SECRET}".encode()).decode()
    assert form == {"grant_type": ["client_credentials"], "scope": ["kafka"]}
    # expires_in (60 s) is sooner than the JWT's exp (an hour): the sooner one counts
    assert before + 59_000 <= token.expires_at_ms <= time.time() * 1000 + 61_000


@pytest.mark.parametrize("mode,match", [("unauthorized", "HTTP 401 \\(invalid_client\\)"),
                                        ("garbage", "not JSON with an 'access_token'")])
def test_refused_or_garbage(endpoint, mode, match) -> None:
    _Endpoint.mode = mode
    with pytest.raises(OAuthTokenError, match=match) as info:
        client_credentials_fetcher(_cc(endpoint))()
    assert SECRET not in str(info.value)
    assert len(_Endpoint.seen) == 1  # not retried: it will not get better


def test_endpoint_down_fails_within_the_backoff_budget() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    started = time.monotonic()
    with pytest.raises(OAuthTokenError, match="cannot reach it"):
        client_credentials_fetcher(_cc(f"http://127.0.0.1:{port}/token",
                                       retry_backoff_ms=50, retry_backoff_max_ms=400))()
    assert time.monotonic() - started < 3


def test_config_errors() -> None:
    base = {"bootstrap.servers": "a:1", "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER"}
    with pytest.raises(ConfigError, match="needs a token source"):
        sasl_from_config(ProducerConfig(base))
    with pytest.raises(ConfigError, match="client credentials are not"):
        sasl_from_config(ProducerConfig({**base, "sasl.oauthbearer.token.endpoint.url":
                                         "http://x/t"}))
    jaas = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            f'clientId="c" clientSecret="{SECRET}" scope="kafka";')
    settings = sasl_from_config(ProducerConfig({
        **base, "sasl.oauthbearer.token.endpoint.url": "http://x/t", "sasl.jaas.config": jaas,
        "sasl.login.callback.handler.class":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"}))
    assert SECRET not in repr(settings) and settings.principal == "c"
