"""An ssl.SSLContext from the Java client's ssl.* keys.

Trust: ssl.truststore.certificates (inline PEM), else ssl.truststore.location (a PEM
file or a PKCS12 store with ssl.truststore.password), else the system's trust store.
Client certificate (mTLS): ssl.keystore.key + ssl.keystore.certificate.chain (inline
PEM), or ssl.keystore.location (PEM with the key and its chain, or PKCS12 with
ssl.keystore.password); an encrypted key takes ssl.key.password.
ssl.endpoint.identification.algorithm "https" (the default) checks the broker's host
name against its certificate; "" checks only the chain. ssl.enabled.protocols bounds
the TLS versions; ssl.cipher.suites (OpenSSL or IANA names) limits the TLS 1.2 suites
(OpenSSL does not let Python restrict TLS 1.3's).

The store type is read from ssl.*.type when the user set it, else from the file's
first bytes, so a PEM file works without setting the type to PEM (Java's default is
JKS). JKS cannot be read outside Java: a ConfigError says how to convert it.
PKCS12 needs the ``cryptography`` package.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

from fastprod.config import Password
from fastprod.errors import ConfigError

log = logging.getLogger("fastprod.network")

__all__ = ["ssl_context_from_config"]

_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
             "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.value if isinstance(value, Password) else str(value)


def ssl_context_from_config(cfg: Mapping[str, Any],
                            user_set: frozenset[str] = frozenset()) -> ssl.SSLContext:
    """The client SSLContext for ``cfg`` (a ProducerConfig or a mapping of Java names
    to parsed values); ``user_set`` names the keys the user gave (for the store types)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _protocols(ctx, cfg)
    _ciphers(ctx, cfg)
    _trust(ctx, cfg, user_set)
    _key(ctx, cfg, user_set)
    algorithm = (cfg["ssl.endpoint.identification.algorithm"] or "").strip()
    if algorithm.lower() == "https":
        ctx.check_hostname = True
    elif algorithm == "":
        ctx.check_hostname = False  # the chain is still verified
    else:
        raise ConfigError(f"ssl.endpoint.identification.algorithm={algorithm!r} is not "
                          "supported: use 'https' (check host names) or '' (do not)")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _protocols(ctx: ssl.SSLContext, cfg: Mapping[str, Any]) -> None:
    enabled = list(cfg["ssl.enabled.protocols"] or ())
    unknown = [p for p in enabled if p not in _VERSIONS]
    if unknown:
        raise ConfigError(f"ssl.enabled.protocols: unknown protocol(s) {unknown}; use "
                          + ", ".join(_VERSIONS))
    protocol = cfg["ssl.protocol"]
    if protocol and protocol not in ("TLS", *_VERSIONS):
        raise ConfigError(f"ssl.protocol={protocol!r} is not one of TLS, "
                          + ", ".join(_VERSIONS))
    if not enabled:
        enabled = ["TLSv1.2", "TLSv1.3"]
    versions = sorted(_VERSIONS[p] for p in enabled)
    try:
        ctx.minimum_version = versions[0]
        ctx.maximum_version = versions[-1]
    except (ValueError, ssl.SSLError) as exc:
        raise ConfigError(f"ssl.enabled.protocols={enabled}: {exc}") from None


def _ciphers(ctx: ssl.SSLContext, cfg: Mapping[str, Any]) -> None:
    suites = [s for s in (cfg["ssl.cipher.suites"] or ()) if s]
    if not suites:
        return
    names = [_openssl_cipher_name(s) for s in suites if not _is_tls13_suite(s)]
    if not names:
        return  # TLS 1.3 suites only: OpenSSL's TLS 1.3 defaults stay
    try:
        ctx.set_ciphers(":".join(names))
    except ssl.SSLError:
        raise ConfigError(f"ssl.cipher.suites: none of {suites} is a cipher suite this "
                          "OpenSSL knows (give OpenSSL names such as "
                          "ECDHE-RSA-AES128-GCM-SHA256, or IANA names)") from None


def _is_tls13_suite(name: str) -> bool:
    return name in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                    "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                    "TLS_AES_128_CCM_8_SHA256")


def _openssl_cipher_name(name: str) -> str:
    """IANA (Java) names to OpenSSL's for the common ECDHE/DHE AEAD suites; others as
    given (OpenSSL names pass through)."""
    if not name.startswith("TLS_"):
        return name
    body = name[4:]
    kx, sep, rest = body.partition("_WITH_")
    if not sep:
        return name
    kx = {"ECDHE_RSA": "ECDHE-RSA", "ECDHE_ECDSA": "ECDHE-ECDSA", "DHE_RSA": "DHE-RSA",
          "RSA": ""}.get(kx)
    if kx is None:
        return name
    rest = (rest.replace("AES_128_GCM", "AES128-GCM").replace("AES_256_GCM", "AES256-GCM")
            .replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305")
            .replace("AES_128_CBC", "AES128").replace("AES_256_CBC", "AES256")
            .replace("_", "-"))
    return f"{kx}-{rest}" if kx else rest


# ---- stores ---------------------------------------------------------------------------


def _store_type(key_prefix: str, path: str, cfg: Mapping[str, Any],
                user_set: frozenset[str]) -> str:
    declared = str(cfg[f"{key_prefix}.type"]).upper()
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise ConfigError(f"{key_prefix}.location={path!r} cannot be read: "
                          f"{exc.strerror}") from None
    if head.startswith((_JKS_MAGIC, _JCEKS_MAGIC)) or (
            declared in ("JKS", "JCEKS") and f"{key_prefix}.type" in user_set):
        raise ConfigError(
            f"{key_prefix}.location={path!r} is a Java KeyStore (JKS), which only Java "
            f"reads; convert it to PKCS12 with: keytool -importkeystore -srckeystore "
            f"{path} -destkeystore {os.path.splitext(path)[0]}.p12 -deststoretype PKCS12, "
            f"then set {key_prefix}.location to the .p12 file")
    if f"{key_prefix}.type" in user_set and declared in ("PEM", "PKCS12"):
        return declared
    return "PEM" if b"-----BEGIN" in head or head.lstrip()[:1] == b"-" else "PKCS12"


def _trust(ctx: ssl.SSLContext, cfg: Mapping[str, Any], user_set: frozenset[str]) -> None:
    inline = _secret(cfg["ssl.truststore.certificates"])
    path = cfg["ssl.truststore.location"]
    if inline:
        _load_ca(ctx, "ssl.truststore.certificates", cadata=inline)
    elif path:
        kind = _store_type("ssl.truststore", path, cfg, user_set)
        if kind == "PEM":
            _load_ca(ctx, "ssl.truststore.location", cafile=path)
        else:
            certs = _pkcs12(path, _secret(cfg["ssl.truststore.password"]),
                            "ssl.truststore")[2]
            if not certs:
                raise ConfigError(f"ssl.truststore.location={path!r} holds no certificate")
            _load_ca(ctx, "ssl.truststore.location", cadata="".join(certs))
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)


def _load_ca(ctx: ssl.SSLContext, key: str, **where: str) -> None:
    try:
        ctx.load_verify_locations(**where)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"{key}: no usable PEM certificate ({_reason(exc)})") from None


def _key(ctx: ssl.SSLContext, cfg: Mapping[str, Any], user_set: frozenset[str]) -> None:
    key_pem = _secret(cfg["ssl.keystore.key"])
    chain_pem = _secret(cfg["ssl.keystore.certificate.chain"])
    path = cfg["ssl.keystore.location"]
    key_password = _secret(cfg["ssl.key.password"])
    if key_pem or chain_pem:
        if not (key_pem and chain_pem):
            raise ConfigError("ssl.keystore.key and ssl.keystore.certificate.chain go "
                              "together: give both (PEM) or neither")
        _load_chain(ctx, "ssl.keystore.key", chain_pem + "\n" + key_pem, key_password)
    elif path:
        kind = _store_type("ssl.keystore", path, cfg, user_set)
        if kind == "PEM":
            try:
                ctx.load_cert_chain(path, password=key_password or None)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ConfigError(f"ssl.keystore.location={path!r}: cannot load the key and "
                                  f"certificate ({_reason(exc)}; an encrypted key needs "
                                  "ssl.key.password)") from None
        else:
            store_password = _secret(cfg["ssl.keystore.password"])
            key, cert, extra = _pkcs12(path, store_password, "ssl.keystore",
                                       key_password=key_password)
            if key is None or cert is None:
                raise ConfigError(f"ssl.keystore.location={path!r} holds no private key "
                                  "with its certificate")
            _load_chain(ctx, "ssl.keystore.location", cert + "".join(extra) + key, None)


def _load_chain(ctx: ssl.SSLContext, key: str, pem: str, password: str | None) -> None:
    """load_cert_chain reads files only: a private (0600) temporary file, removed at once."""
    fd, tmp = tempfile.mkstemp(prefix="fastprod-key-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        ctx.load_cert_chain(tmp, password=password or None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot load the key and certificate ({_reason(exc)}; "
                          "an encrypted key needs ssl.key.password)") from None
    finally:
        os.unlink(tmp)


def _pkcs12(path: str, password: str | None, key_prefix: str,
            key_password: str | None = None) -> tuple[str | None, str | None, list[str]]:
    """(key PEM, certificate PEM, other certificates PEM) of a PKCS12 file."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError:
        raise ConfigError(
            f"{key_prefix}.location={path!r} is PKCS12, which needs the 'cryptography' "
            "package (pip install cryptography), or convert it to PEM with: openssl "
            f"pkcs12 -in {path} -out store.pem -nodes") from None
    with open(path, "rb") as f:
        data = f.read()
    last: Exception | None = None
    # Java's PKCS12 keys often share the store's password; try the key's, then the store's.
    for pw in dict.fromkeys([password, key_password]):
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(
                data, pw.encode() if pw else None)
            break
        except ValueError as exc:
            last = exc
    else:
        raise ConfigError(f"{key_prefix}.location={path!r}: cannot open the PKCS12 store "
                          f"(wrong {key_prefix}.password, or not PKCS12): "
                          f"{_reason(last)}") from None
    pem = serialization.Encoding.PEM
    key_out = None if key is None else key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    cert_out = None if cert is None else cert.public_bytes(pem).decode()
    return key_out, cert_out, [c.public_bytes(pem).decode() for c in extra]


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return str(exc).replace("\n", " ")[:200]
