"""A tiny OAuth 2 / OIDC identity provider on loopback for a secured local Kafka.

- A signing key (RSA 2048, RS256: what every JWT library and Kafka's jose4j accept) whose
  public half is served as a JWKS document at ``/jwks``; the broker's
  OAuthBearerValidatorCallbackHandler validates tokens against it.
- ``mint_token``: a signed JWT with ``sub``, ``exp``, ``iat``, ``aud``, ``iss``, ``scope``
  (any claim can be overridden or dropped, to make tokens the broker must refuse).
- ``/token``: an OIDC token endpoint for the client_credentials grant (KIP-768), client
  id/secret by HTTP Basic or in the form, answering
  ``{"access_token", "expires_in", "token_type"}``.

The server runs on a daemon thread of the process that starts it. A detached broker
(``fastprod broker start --security``) outlives that process, so it reads the JWKS from a
file instead (``jwks_file``) and no token endpoint is offered there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import pathlib
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("fastprod.localkafka")

DEFAULT_AUDIENCE = "fastprod-local"
DEFAULT_ISSUER = "fastprod-local-idp"
DEFAULT_LIFETIME_S = 3600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class SigningKey:
    """An RS256 key with a key id; ``jwks()`` is its public JWKS document."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]

    def jwks(self) -> dict[str, Any]:
        pub = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _uint(pub.n), "e": _uint(pub.e)}]}

    def sign(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signing_input = (_b64url(json.dumps(dict(header), separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(dict(claims), separators=(",", ":")).encode()))
        sig = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)


class IdentityProvider:
    """Signs tokens for ``clients`` (client id -> secret) and serves JWKS + token endpoint."""

    def __init__(
        self,
        clients: Mapping[str, str],
        *,
        audience: str = DEFAULT_AUDIENCE,
        issuer: str = DEFAULT_ISSUER,
        token_lifetime_s: int = DEFAULT_LIFETIME_S,
    ) -> None:
        self.clients = dict(clients)
        self.audience = audience
        self.issuer = issuer
        self.token_lifetime_s = token_lifetime_s
        self.key = SigningKey()
        self.tokens_issued = 0
        #: For failure tests: "garbage" makes /token answer 200 with a body that is not
        #: JSON, "error" a 500; None (the default) answers normally.
        self.token_failure: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secrets
        return f"<IdentityProvider {self.base_url or 'not serving'} clients={sorted(self.clients)}>"

    # -- tokens ----------------------------------------------------------------------------
    def mint_token(
        self,
        sub: str = "alice",
        *,
        lifetime_s: float | None = None,
        scope: str | None = "kafka",
        audience: str | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """A JWT signed with this provider's key. ``lifetime_s`` may be negative (an
        expired token); ``kid`` overrides the key id (an unknown key); a claim given as
        ``None`` in ``claims`` is dropped (e.g. ``exp=None``), others are added/replaced."""
        now = int(time.time())
        life = self.token_lifetime_s if lifetime_s is None else lifetime_s
        body: dict[str, Any] = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.audience if audience is None else audience,
            "iat": now,
            "exp": int(now + life),
            "jti": uuid.uuid4().hex,
        }
        if scope is not None:
            body["scope"] = scope
        for k, v in claims.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key.kid if kid is None else kid}
        with self._lock:
            self.tokens_issued += 1
        return self.key.sign(header, body)

    def write_jwks(self, path: pathlib.Path) -> pathlib.Path:
        path.write_text(json.dumps(self.key.jwks()))
        return path

    # -- HTTP ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str | None:
        if self._server is None:
            return None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return f"{self._require_url()}/jwks"

    @property
    def token_endpoint_url(self) -> str:
        return f"{self._require_url()}/token"

    def _require_url(self) -> str:
        url = self.base_url
        if url is None:
            raise RuntimeError("the identity provider is not serving; call serve() first")
        return url

    def serve(self, port: int = 0) -> IdentityProvider:
        """Start the HTTP server on 127.0.0.1 (port 0: any free port) on a daemon thread."""
        if self._server is not None:
            return self
        idp = self

        class Handler(_Handler):
            provider = idp

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fastprod-idp",
                                        daemon=True)
        self._thread.start()
        log.info("identity provider serving JWKS and tokens at %s", self.base_url)
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # -- the token endpoint's logic (no HTTP in it, so unit tests call it directly) -----------
    def token_response(self, form: Mapping[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for a token request, per RFC 6749 section 4.4/5.2."""
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "only client_credentials is supported"}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return 401, {"error": "invalid_client", "error_description": "bad Basic header"}
            user, _, pw = raw.partition(":")
            client_id, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)
        expected = self.clients.get(client_id or "")
        if expected is None or secret is None or not hmac.compare_digest(expected, secret):
            return 401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
        scope = form.get("scope") or "kafka"
        token = self.mint_token(client_id or "", scope=scope)
        return 200, {"access_token": token, "token_type": "Bearer",
                     "expires_in": self.token_lifetime_s, "scope": scope}


class _Handler(BaseHTTPRequestHandler):
    provider: IdentityProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        log.debug("idp: " + format, *args)

    def _reply(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.split("?")[0] == "/jwks":
            self._reply(200, self.provider.key.jwks())
        else:
            self._reply(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if self.path.split("?")[0] != "/token":
            self._reply(404, {"error": "not_found"})
            return
        failure = self.provider.token_failure
        if failure == "garbage":
            data = b"<html>this is not a token</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if failure == "error":
            self._reply(500, {"error": "server_error", "error_description": "failing on purpose"})
            return
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        status, reply = self.provider.token_response(form, self.headers.get("Authorization"))
        self._reply(status, reply)
