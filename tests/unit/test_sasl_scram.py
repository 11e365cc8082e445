"""SCRAM-SHA-256/512 client (fastprod/cluster/sasl/scram.py) against RFC 7677's test
vector and against server messages that must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from fastprod.cluster.sasl.scram import ScramClient
from fastprod.config import Password
from fastprod.errors import SaslAuthenticationError

# RFC 7677 section 3
NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = ("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_client() -> ScramClient:
    return ScramClient("SCRAM-SHA-256", "user", Password("pencil"), nonce=NONCE)


def test_rfc7677_vector() -> None:
    c = rfc_client()
    assert c.initial() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert c.respond(SERVER_FIRST.encode()) == CLIENT_FINAL.encode()
    assert not c.complete
    assert c.respond(SERVER_FINAL.encode()) is None
    assert c.complete


def test_a_wrong_server_signature_is_refused() -> None:
    c = rfc_client()
    c.respond(SERVER_FIRST.encode())
    bad = "v=" + base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(SaslAuthenticationError, match="signature is wrong"):
        c.respond(bad.encode())
    assert not c.complete


@pytest.mark.parametrize("server_first,match", [
    ("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),
    (f"r={NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce"),  # not extended
    (f"r={NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1024", "iterations"),
    (f"r={NONCE}x,i=4096", "lacks"),
    ("e=unknown-user", "refused"),
    ("garbage", "malformed"),
])
def test_bad_server_first_messages(server_first: str, match: str) -> None:
    with pytest.raises(SaslAuthenticationError, match=match):
        rfc_client().respond(server_first.encode())


def test_server_error_in_final_message() -> None:
    c = rfc_client()
    c.respond(SERVER_FIRST.encode())
    with pytest.raises(SaslAuthenticationError, match="invalid-proof"):
        c.respond(b"e=invalid-proof")


def _server_side(mechanism: str, user: str, password: str, client: ScramClient) -> None:
    """An independent server (RFC 5802 written out here) checks the client's proof
    and sends its signature: the whole exchange for SHA-512 and a user name with
    the characters SCRAM escapes."""
    h = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    first = client.initial().decode()
    assert first.startswith("n,,")
    bare = first[3:]
    attrs = dict(p.split("=", 1) for p in bare.split(","))
    assert attrs["n"].replace("=2C", ",").replace("=3D", "=") == user
    nonce = attrs["r"] + "server-part"
    salt = b"0123456789abcdef"
    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i=4096"
    final = client.respond(server_first.encode()).decode()
    without_proof, proof_part = final.rsplit(",p=", 1)
    salted = hashlib.pbkdf2_hmac(h, password.encode(), salt, 4096)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored = hashlib.new(h, client_key).digest()
    auth = f"{bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored, auth, h).digest()
    recovered = bytes(a ^ b for a, b in zip(base64.b64decode(proof_part), sig))
    assert hashlib.new(h, recovered).digest() == stored, "the client's proof is wrong"
    server_sig = hmac.new(hmac.new(salted, b"Server Key", h).digest(), auth, h).digest()
    assert client.respond(b"v=" + base64.b64encode(server_sig)) is None
    assert client.complete


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_exchange_with_an_independent_server(mechanism: str) -> None:
    user = "a,b=c"
    _server_side(mechanism, user, "s3cret", ScramClient(mechanism, user, Password("s3cret")))


def test_repr_hides_the_password() -> None:
    assert "pencil" not in repr(rfc_client())
