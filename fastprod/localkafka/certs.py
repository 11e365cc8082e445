"""Test certificates for a secured local Kafka, made with the ``cryptography`` package.

One CA signs a broker certificate (SAN 127.0.0.1 and localhost) and a client certificate
(for mTLS); for failure tests it also signs a certificate for a host name nobody uses and
one that expired yesterday, and a second CA that nobody trusts signs one more broker
certificate. Every certificate is written as PEM (certificate, unencrypted key, key
encrypted with the store password) and as a PKCS12 keystore with that password.

EC P-256 keys: generated in microseconds and cheap in TLS handshakes, which matters on a
2-core test machine; every client fastprod is compared with (Java, librdkafka, Python's
ssl) handles them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

#: The password of every PKCS12 store and encrypted PEM key made here (test material only).
STORE_PASSWORD = "fastprod-store-pw"
BROKER_HOSTS = ("127.0.0.1", "localhost")
#: SAN of the certificate made for host-name verification failures.
WRONG_HOST = "wrong-host.invalid"


def _crypto():  # type: ignore[no-untyped-def]
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import pkcs12
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "a secured local Kafka needs the 'cryptography' package to make its certificates "
            "(pip install cryptography, or pip install 'fastprod[test]')"
        ) from e
    return x509, hashes, serialization, ec, pkcs12, ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertFiles:
    """One certificate and its key on disk, in every format the clients need."""

    name: str
    cert_pem: pathlib.Path  # the certificate alone
    chain_pem: pathlib.Path  # the certificate then its CA (what a server presents)
    key_pem: pathlib.Path  # PKCS8, unencrypted
    key_pem_encrypted: pathlib.Path  # PKCS8, encrypted with STORE_PASSWORD
    pkcs12: pathlib.Path  # key + certificate + CA, STORE_PASSWORD
    password: str = STORE_PASSWORD


@dataclass(frozen=True)
class CaFiles:
    name: str
    cert_pem: pathlib.Path
    key_pem: pathlib.Path


@dataclass(frozen=True)
class CertSet:
    """Everything ``make_certs`` writes. ``ca`` signs ``broker``/``client``/``wrong_host``/
    ``expired``; ``untrusted_ca`` (which no truststore here holds) signs ``untrusted``."""

    dir: pathlib.Path
    ca: CaFiles
    untrusted_ca: CaFiles
    broker: CertFiles
    client: CertFiles
    wrong_host: CertFiles
    expired: CertFiles
    untrusted: CertFiles
    #: PKCS12 truststore holding ``ca`` (made by keytool: Java only trusts PKCS12
    #: certificate entries that carry its own trust attribute); None until
    #: ``make_pkcs12_truststore`` ran.
    truststore_p12: pathlib.Path | None = None
    password: str = STORE_PASSWORD


def _write(path: pathlib.Path, data: bytes, private: bool = False) -> pathlib.Path:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)
    return path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key():  # type: ignore[no-untyped-def]
    _, _, _, ec, *_ = _crypto()
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca(dir: pathlib.Path, name: str, common_name: str) -> tuple[CaFiles, object, object]:
    x509, hashes, serialization, _, _, _, NameOID = _crypto()
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CaFiles(
        name,
        _write(dir / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)),
        _write(dir / f"{name}-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), private=True),
    )
    return files, cert, key


def _make_leaf(
    dir: pathlib.Path,
    name: str,
    common_name: str,
    hosts: Sequence[str],
    ca_cert,  # type: ignore[no-untyped-def]
    ca_key,  # type: ignore[no-untyped-def]
    *,
    server: bool,
    expired: bool = False,
) -> CertFiles:
    x509, hashes, serialization, _, pkcs12, EKU, NameOID = _crypto()
    key = _new_key()
    now = _now()
    if expired:
        not_before, not_after = now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)
    else:
        not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([EKU.SERVER_AUTH if server else EKU.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        names: list = []  # x509.GeneralName
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    encrypted = serialization.BestAvailableEncryption(STORE_PASSWORD.encode())
    return CertFiles(
        name,
        _write(dir / f"{name}.pem", pem),
        _write(dir / f"{name}-chain.pem", pem + ca_pem),
        _write(dir / f"{name}-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), private=True),
        _write(dir / f"{name}-key-encrypted.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encrypted),
            private=True),
        _write(dir / f"{name}.p12", pkcs12.serialize_key_and_certificates(
            name.encode(), key, cert, [ca_cert], encrypted), private=True),
    )


def make_certs(dir: str | os.PathLike[str]) -> CertSet:
    """Make the CAs and certificates in ``dir`` (created if missing; files overwritten)."""
    out = pathlib.Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    ca, ca_cert, ca_key = _make_ca(out, "ca", "fastprod local test CA")
    bad_ca, bad_cert, bad_key = _make_ca(out, "untrusted-ca", "fastprod untrusted test CA")
    return CertSet(
        dir=out,
        ca=ca,
        untrusted_ca=bad_ca,
        broker=_make_leaf(out, "broker", "localhost", BROKER_HOSTS, ca_cert, ca_key, server=True),
        client=_make_leaf(out, "client", "fastprod-client", (), ca_cert, ca_key, server=False),
        wrong_host=_make_leaf(out, "wrong-host", WRONG_HOST, (WRONG_HOST,), ca_cert, ca_key,
                              server=True),
        expired=_make_leaf(out, "expired", "localhost", BROKER_HOSTS, ca_cert, ca_key,
                           server=True, expired=True),
        untrusted=_make_leaf(out, "untrusted", "localhost", BROKER_HOSTS, bad_cert, bad_key,
                             server=True),
    )


def keytool_truststore_command(keytool: str, ca_pem: pathlib.Path, out: pathlib.Path) -> list[str]:
    """The keytool command that writes a PKCS12 truststore with ``ca_pem`` as a trusted
    entry (the form Java reads; cryptography cannot add Java's trust attribute)."""
    return [keytool, "-importcert", "-noprompt", "-storetype", "PKCS12", "-alias", "ca",
            "-file", str(ca_pem), "-keystore", str(out), "-storepass", STORE_PASSWORD]
