"""SASL SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side.

client-first -> server-first (nonce, salt, iterations) -> client-final (proof) ->
server-final (the server's signature, checked: a broker that does not know the
password cannot make it, so a man in the middle cannot pose as the cluster).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastprod.config import Password
from fastprod.errors import SaslAuthenticationError

# Kafka's ScramMechanism refuses fewer iterations; so do we, so that a fake server
# cannot make the salted password cheap to guess.
MIN_ITERATIONS = 4096
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_GS2_HEADER = "n,,"


def _sasl_name(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _fields(message: str, what: str) -> dict[str, str]:
    out = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise SaslAuthenticationError(f"SCRAM: the broker's {what} is malformed")
        out.setdefault(key, value)
    return out


class ScramClient:
    def __init__(self, mechanism: str, username: str, password: Password,
                 nonce: str | None = None) -> None:
        self.mechanism = mechanism
        self._hash = _HASHES[mechanism]
        self.username = username
        self._password = password
        self._nonce = nonce if nonce is not None else secrets.token_urlsafe(24)
        self._first_bare = f"n={_sasl_name(username)},r={self._nonce}"
        self._server_signature: bytes | None = None
        self.complete = False

    def __repr__(self) -> str:
        return f"<ScramClient {self.mechanism} user={self.username!r}>"

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self._hash).digest()

    def initial(self) -> bytes:
        return (_GS2_HEADER + self._first_bare).encode()

    def respond(self, challenge: bytes) -> bytes | None:
        if self._server_signature is None:
            return self._client_final(challenge.decode("utf-8", "replace"))
        self._check_server_final(challenge.decode("utf-8", "replace"))
        return None

    def _client_final(self, server_first: str) -> bytes:
        f = _fields(server_first, "first message")
        if "e" in f:
            raise SaslAuthenticationError(f"SCRAM: the broker refused: {f['e']}")
        nonce, salt_b64, iterations = f.get("r"), f.get("s"), f.get("i")
        if not nonce or not salt_b64 or not iterations:
            raise SaslAuthenticationError("SCRAM: the broker's first message lacks r, s or i")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise SaslAuthenticationError("SCRAM: the broker's nonce does not extend ours")
        try:
            count = int(iterations)
            salt = base64.b64decode(salt_b64, validate=True)
        except ValueError:
            raise SaslAuthenticationError("SCRAM: the broker's salt or iteration count "
                                          "is malformed") from None
        if count < MIN_ITERATIONS:
            raise SaslAuthenticationError(f"SCRAM: the broker asks for {count} iterations, "
                                          f"fewer than the minimum {MIN_ITERATIONS}")
        salted = hashlib.pbkdf2_hmac(self._hash, self._password.value.encode(), salt, count)
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        channel = base64.b64encode(_GS2_HEADER.encode()).decode()
        without_proof = f"c={channel},r={nonce}"
        auth_message = f"{self._first_bare},{server_first},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self._server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def _check_server_final(self, server_final: str) -> None:
        f = _fields(server_final, "final message")
        if "e" in f:
            raise SaslAuthenticationError(f"SCRAM: the broker refused: {f['e']}")
        try:
            got = base64.b64decode(f.get("v", ""), validate=True)
        except ValueError:
            got = b""
        assert self._server_signature is not None
        if not got or not hmac.compare_digest(got, self._server_signature):
            raise SaslAuthenticationError(
                "SCRAM: the broker's signature is wrong: it does not know this user's "
                "credentials (a different cluster, or someone in between)")
        self.complete = True
