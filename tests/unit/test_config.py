"""Unit tests of fastprod.config: the table against Java, parsing, validators, cross rules.

Pure and fast: no broker, no JVM.
"""

from __future__ import annotations

import logging
import pickle
from collections import OrderedDict
from typing import Any

import pytest

from fastprod.config import CONFIG_DEFS, REQUIRED, Password, ProducerConfig, Type
from fastprod.errors import ConfigError

BOOT = {"bootstrap.servers": "localhost:9092"}

# ----------------------------------------------------------------------------------------
# Every producer config of Kafka 4.3.1 with its Java type and default, transcribed from
# ProducerConfig.java (its static ConfigDef, with CommonClientConfigs, SslConfigs and
# SaslConfigs for the shared keys), as ProducerConfig.configDef() reports them.
# REQUIRED is Java's ConfigDef.NO_DEFAULT_VALUE.
# ----------------------------------------------------------------------------------------

JAVA_CONFIGS: dict[str, tuple[str, object]] = {
    "bootstrap.servers": ("LIST", REQUIRED),
    "client.dns.lookup": ("STRING", "use_all_dns_ips"),
    "buffer.memory": ("LONG", 33554432),
    "retries": ("INT", 2147483647),
    "acks": ("STRING", "all"),
    "compression.type": ("STRING", "none"),
    "compression.gzip.level": ("INT", -1),
    "compression.lz4.level": ("INT", 9),
    "compression.zstd.level": ("INT", 3),
    "batch.size": ("INT", 16384),
    "partitioner.adaptive.partitioning.enable": ("BOOLEAN", True),
    "partitioner.availability.timeout.ms": ("LONG", 0),
    "partitioner.ignore.keys": ("BOOLEAN", False),
    "linger.ms": ("LONG", 5),
    "delivery.timeout.ms": ("INT", 120000),
    "client.id": ("STRING", ""),
    "send.buffer.bytes": ("INT", 131072),
    "receive.buffer.bytes": ("INT", 32768),
    "max.request.size": ("INT", 1048576),
    "reconnect.backoff.ms": ("LONG", 50),
    "reconnect.backoff.max.ms": ("LONG", 1000),
    "retry.backoff.ms": ("LONG", 100),
    "retry.backoff.max.ms": ("LONG", 1000),
    "enable.metrics.push": ("BOOLEAN", True),
    "max.block.ms": ("LONG", 60000),
    "request.timeout.ms": ("INT", 30000),
    "metadata.max.age.ms": ("LONG", 300000),
    "metadata.max.idle.ms": ("LONG", 300000),
    "metrics.sample.window.ms": ("LONG", 30000),
    "metrics.num.samples": ("INT", 2),
    "metrics.recording.level": ("STRING", "INFO"),
    "metric.reporters": ("LIST", ("org.apache.kafka.common.metrics.JmxReporter",)),
    "max.in.flight.requests.per.connection": ("INT", 5),
    "key.serializer": ("CLASS", REQUIRED),
    "value.serializer": ("CLASS", REQUIRED),
    "socket.connection.setup.timeout.ms": ("LONG", 10000),
    "socket.connection.setup.timeout.max.ms": ("LONG", 30000),
    "connections.max.idle.ms": ("LONG", 540000),
    "partitioner.class": ("CLASS", None),
    "interceptor.classes": ("LIST", ()),
    "security.protocol": ("STRING", "PLAINTEXT"),
    "security.providers": ("STRING", None),
    "ssl.protocol": ("STRING", "TLSv1.3"),
    "ssl.provider": ("STRING", None),
    "ssl.cipher.suites": ("LIST", ()),
    "ssl.enabled.protocols": ("LIST", ("TLSv1.2", "TLSv1.3")),
    "ssl.keystore.type": ("STRING", "JKS"),
    "ssl.keystore.location": ("STRING", None),
    "ssl.keystore.password": ("PASSWORD", None),
    "ssl.key.password": ("PASSWORD", None),
    "ssl.keystore.key": ("PASSWORD", None),
    "ssl.keystore.certificate.chain": ("PASSWORD", None),
    "ssl.truststore.certificates": ("PASSWORD", None),
    "ssl.truststore.type": ("STRING", "JKS"),
    "ssl.truststore.location": ("STRING", None),
    "ssl.truststore.password": ("PASSWORD", None),
    "ssl.keymanager.algorithm": ("STRING", "SunX509"),
    "ssl.trustmanager.algorithm": ("STRING", "PKIX"),
    "ssl.endpoint.identification.algorithm": ("STRING", "https"),
    "ssl.secure.random.implementation": ("STRING", None),
    "ssl.engine.factory.class": ("CLASS", None),
    "sasl.kerberos.service.name": ("STRING", None),
    "sasl.kerberos.kinit.cmd": ("STRING", "/usr/bin/kinit"),
    "sasl.kerberos.ticket.renew.window.factor": ("DOUBLE", 0.8),
    "sasl.kerberos.ticket.renew.jitter": ("DOUBLE", 0.05),
    "sasl.kerberos.min.time.before.relogin": ("LONG", 60000),
    "sasl.login.refresh.window.factor": ("DOUBLE", 0.8),
    "sasl.login.refresh.window.jitter": ("DOUBLE", 0.05),
    "sasl.login.refresh.min.period.seconds": ("SHORT", 60),
    "sasl.login.refresh.buffer.seconds": ("SHORT", 300),
    "sasl.mechanism": ("STRING", "GSSAPI"),
    "sasl.jaas.config": ("PASSWORD", None),
    "sasl.client.callback.handler.class": ("CLASS", None),
    "sasl.login.callback.handler.class": ("CLASS", None),
    "sasl.login.class": ("CLASS", None),
    "sasl.login.connect.timeout.ms": ("INT", None),
    "sasl.login.read.timeout.ms": ("INT", None),
    "sasl.login.retry.backoff.max.ms": ("LONG", 10000),
    "sasl.login.retry.backoff.ms": ("LONG", 100),
    "sasl.oauthbearer.jwt.retriever.class": (
        "CLASS", "org.apache.kafka.common.security.oauthbearer.DefaultJwtRetriever"),
    "sasl.oauthbearer.jwt.validator.class": (
        "CLASS", "org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator"),
    "sasl.oauthbearer.scope": ("STRING", None),
    "sasl.oauthbearer.client.credentials.client.id": ("STRING", None),
    "sasl.oauthbearer.client.credentials.client.secret": ("PASSWORD", None),
    "sasl.oauthbearer.assertion.algorithm": ("STRING", "RS256"),
    "sasl.oauthbearer.assertion.claim.aud": ("STRING", None),
    "sasl.oauthbearer.assertion.claim.exp.seconds": ("INT", 300),
    "sasl.oauthbearer.assertion.claim.iss": ("STRING", None),
    "sasl.oauthbearer.assertion.claim.jti.include": ("BOOLEAN", False),
    "sasl.oauthbearer.assertion.claim.nbf.seconds": ("INT", 60),
    "sasl.oauthbearer.assertion.claim.sub": ("STRING", None),
    "sasl.oauthbearer.assertion.file": ("STRING", None),
    "sasl.oauthbearer.assertion.private.key.file": ("STRING", None),
    "sasl.oauthbearer.assertion.private.key.passphrase": ("PASSWORD", None),
    "sasl.oauthbearer.assertion.template.file": ("STRING", None),
    "sasl.oauthbearer.scope.claim.name": ("STRING", "scope"),
    "sasl.oauthbearer.sub.claim.name": ("STRING", "sub"),
    "sasl.oauthbearer.token.endpoint.url": ("STRING", None),
    "sasl.oauthbearer.jwks.endpoint.url": ("STRING", None),
    "sasl.oauthbearer.jwks.endpoint.refresh.ms": ("LONG", 3600000),
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": ("LONG", 10000),
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms": ("LONG", 100),
    "sasl.oauthbearer.clock.skew.seconds": ("INT", 30),
    "sasl.oauthbearer.expected.audience": ("LIST", ()),
    "sasl.oauthbearer.expected.issuer": ("STRING", None),
    "sasl.oauthbearer.header.urlencode": ("BOOLEAN", False),
    "enable.idempotence": ("BOOLEAN", True),
    "transaction.timeout.ms": ("INT", 60000),
    "transactional.id": ("STRING", None),
    "transaction.two.phase.commit.enable": ("BOOLEAN", False),
    "metadata.recovery.strategy": ("STRING", "rebootstrap"),
    "metadata.recovery.rebootstrap.trigger.ms": ("LONG", 300000),
    "config.providers": ("LIST", ()),
}

# fastprod stores these Java types under its own, finer types.
JAVA_TYPE = {Type.CLASS_LIST: "LIST", Type.SERIALIZER: "CLASS"}
# Where fastprod's default differs from Java's, and why (see the config.py docstring).
DEFAULT_EXCEPTIONS = {
    "key.serializer": None,  # Java requires it; bytes and str pass through by default
    "value.serializer": None,
}


def make(**kwargs: Any) -> ProducerConfig:
    return ProducerConfig(BOOT, **kwargs)


def error_of(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        ProducerConfig(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------------------
# The table against Java
# ----------------------------------------------------------------------------------------


def test_table_has_every_java_config() -> None:
    java_keys = {k for k, d in CONFIG_DEFS.items() if d.java}
    assert java_keys == set(JAVA_CONFIGS)
    assert {k for k, d in CONFIG_DEFS.items() if not d.java} == {
        "sasl.username", "sasl.password", "fastprod.metrics.log.interval.ms",
        "fastprod.metrics.prometheus.port"}


@pytest.mark.parametrize("key", sorted(JAVA_CONFIGS))
def test_type_and_default_equal_java(key: str) -> None:
    java_type, java_default = JAVA_CONFIGS[key]
    definition = CONFIG_DEFS[key]
    assert JAVA_TYPE.get(definition.type, definition.type.name) == java_type
    expected = DEFAULT_EXCEPTIONS.get(key, java_default)
    assert definition.default == expected and type(definition.default) is type(expected)


def test_effective_defaults() -> None:
    cfg = make()
    for key, definition in CONFIG_DEFS.items():
        if key in ("bootstrap.servers", "client.id", "acks"):
            continue
        assert cfg[key] == definition.default, key
    assert cfg.acks == -1 and cfg["acks"] == -1  # "all" normalized
    assert cfg.enable_idempotence is True
    assert cfg.retries == 2147483647 and cfg.delivery_timeout_ms == 120000
    assert cfg.batch_size == 16384 and cfg.linger_ms == 5
    assert cfg.client_id.startswith("producer-")


def test_design_list_is_supported() -> None:
    names = """bootstrap.servers key.serializer value.serializer acks buffer.memory retries
        batch.size linger.ms client.id compression.type compression.gzip.level
        compression.lz4.level compression.zstd.level max.in.flight.requests.per.connection
        client.dns.lookup connections.max.idle.ms delivery.timeout.ms max.block.ms
        max.request.size partitioner.class partitioner.ignore.keys
        partitioner.adaptive.partitioning.enable partitioner.availability.timeout.ms
        receive.buffer.bytes send.buffer.bytes request.timeout.ms enable.idempotence
        interceptor.classes metadata.max.age.ms metadata.max.idle.ms metric.reporters
        reconnect.backoff.ms reconnect.backoff.max.ms retry.backoff.ms retry.backoff.max.ms
        transaction.timeout.ms transactional.id security.protocol sasl.mechanism
        sasl.jaas.config sasl.username sasl.password ssl.keystore.location
        ssl.truststore.location""".split()
    assert not set(names) - set(CONFIG_DEFS)


def test_every_key_has_one_doc_line_and_a_unique_attribute() -> None:
    attrs = [d.attr for d in CONFIG_DEFS.values()]
    assert len(attrs) == len(set(attrs))
    for definition in CONFIG_DEFS.values():
        assert definition.doc and "\n" not in definition.doc, definition.name
        assert len(definition.doc) <= 90, definition.name


def test_required_bootstrap_servers() -> None:
    message = error_of()
    assert "missing required config 'bootstrap.servers'" in message
    assert "bootstrap_servers=" in message


# ----------------------------------------------------------------------------------------
# Parsing: Python values and Java-properties strings
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "given", "expected"),
    [
        ("batch.size", "16384", 16384),
        ("batch.size", " 100 ", 100),
        ("batch.size", 0, 0),
        ("linger.ms", "+7", 7),
        ("buffer.memory", 2**40, 2**40),
        ("sasl.login.refresh.min.period.seconds", "900", 900),
        ("sasl.login.refresh.window.factor", "0.9", 0.9),
        ("sasl.login.refresh.window.factor", 1, 1.0),
        ("enable.idempotence", "true", True),
        ("enable.idempotence", " TRUE ", True),
        ("partitioner.ignore.keys", "False", False),
        ("partitioner.ignore.keys", True, True),
        ("acks", "all", -1),
        ("acks", "-1", -1),
        ("acks", -1, -1),
        ("acks", "0", 0),
        ("acks", 1, 1),
        ("client.id", " me ", "me"),
        ("compression.type", "zstd", "zstd"),
        ("security.protocol", "sasl_ssl", "SASL_SSL"),
        ("metadata.recovery.strategy", "REBOOTSTRAP", "rebootstrap"),
        ("sasl.oauthbearer.assertion.algorithm", "es256", "ES256"),
        ("ssl.enabled.protocols", "TLSv1.3", ("TLSv1.3",)),
        ("ssl.cipher.suites", "a:1,b:2", ("a:1", "b:2")),
        ("ssl.cipher.suites", " a , b ", ("a", "b")),
        ("ssl.cipher.suites", ["a", "b", "a"], ("a", "b")),  # Java 4.x drops duplicates
        ("ssl.cipher.suites", "", ()),
        ("interceptor.classes", "m.a:I, m.b:J", ("m.a:I", "m.b:J")),
        ("metric.reporters", [], ()),
        ("transactional.id", "tx", "tx"),
    ],
)
def test_parsing(key: str, given: object, expected: object) -> None:
    cfg = ProducerConfig({**BOOT, key: given})
    assert cfg[key] == expected and type(cfg[key]) is type(expected)
    assert cfg.originals[key] == given


def test_bootstrap_servers_forms() -> None:
    assert make().bootstrap_servers == ("localhost:9092",)
    cfg = ProducerConfig(bootstrap_servers=" k1:9092 , k2:9093,k1:9092")
    assert cfg.bootstrap_servers == ("k1:9092", "k2:9093")
    cfg = ProducerConfig(bootstrap_servers=["[::1]:9092", "SASL_SSL://broker-1.example:9093"])
    assert cfg.bootstrap_servers == ("[::1]:9092", "broker-1.example:9093")
    assert cfg.bootstrap_addresses == (("::1", 9092), ("broker-1.example", 9093))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "expected a non-empty list of host:port addresses"),
        ([], "expected a non-empty list of host:port addresses"),
        ("localhost", "the port is missing"),
        ("localhost:", "the port must be a number from 1 to 65535"),
        ("localhost:abc", "the port must be a number from 1 to 65535"),
        ("localhost:0", "the port must be a number from 1 to 65535"),
        ("localhost:70000", "the port must be a number from 1 to 65535"),
        (":9092", "the port is missing"),
        ("::1:9092", "write an IPv6 address in brackets"),
        ("[::1]9092", "write an IPv6 address as [address]:port"),
        ("a b:9092", "the host name has characters a host cannot have"),
        ("a:1,,b:2", "with no empty items"),
        (5, "expected a list of strings"),
    ],
)
def test_bootstrap_servers_rejected(value: object, why: str) -> None:
    message = error_of(bootstrap_servers=value)
    assert "'bootstrap.servers'" in message and why in message


def test_class_and_serializer_values_are_stored_as_given() -> None:
    def serialize(value: object) -> bytes:
        return b""

    cfg = make(key_serializer="str", value_serializer=serialize, partitioner_class=OrderedDict,
               interceptor_classes=[OrderedDict, "collections:Counter"])
    assert cfg.key_serializer == "str" and cfg.value_serializer is serialize
    assert cfg.partitioner_class is OrderedDict
    assert cfg.interceptor_classes == (OrderedDict, "collections:Counter")


# ----------------------------------------------------------------------------------------
# Rejections: every message names the key, the value and what is accepted
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("batch.size", -1, "an integer >= 0 (32-bit)"),
        ("batch.size", "abc", "an integer >= 0 (32-bit)"),
        ("batch.size", 1.5, "an integer >= 0 (32-bit)"),
        ("batch.size", True, "an integer >= 0 (32-bit)"),
        ("batch.size", 2**31, "an integer >= 0 (32-bit)"),
        ("linger.ms", -5, "an integer >= 0 (64-bit)"),
        ("linger.ms", 2**63, "an integer >= 0 (64-bit)"),
        ("buffer.memory", -1, "an integer >= 0 (64-bit)"),
        ("retries", -1, "an integer from 0 to 2147483647 (32-bit)"),
        ("max.in.flight.requests.per.connection", 0, "an integer >= 1 (32-bit)"),
        ("metadata.max.idle.ms", 4999, "an integer >= 5000 (64-bit)"),
        ("metrics.num.samples", 0, "an integer >= 1 (32-bit)"),
        ("send.buffer.bytes", -2, "an integer >= -1 (32-bit)"),
        ("receive.buffer.bytes", -2, "an integer >= -1 (32-bit)"),
        ("compression.gzip.level", 0, "an integer from 1 to 9, or -1 (32-bit)"),
        ("compression.gzip.level", 10, "an integer from 1 to 9, or -1 (32-bit)"),
        ("compression.lz4.level", 18, "an integer from 1 to 17 (32-bit)"),
        ("compression.lz4.level", 0, "an integer from 1 to 17 (32-bit)"),
        ("compression.zstd.level", 23, "an integer from -131072 to 22 (32-bit)"),
        ("compression.zstd.level", -131073, "an integer from -131072 to 22 (32-bit)"),
        ("sasl.login.refresh.window.factor", 0.4, "a number from 0.5 to 1.0"),
        ("sasl.login.refresh.window.jitter", 0.3, "a number from 0.0 to 0.25"),
        ("sasl.login.refresh.window.jitter", "x", "a number from 0.0 to 0.25"),
        ("sasl.login.refresh.min.period.seconds", 901, "an integer from 0 to 900 (16-bit)"),
        ("sasl.login.refresh.buffer.seconds", 3601, "an integer from 0 to 3600 (16-bit)"),
        ("sasl.login.refresh.buffer.seconds", 2**15, "an integer from 0 to 3600 (16-bit)"),
        ("sasl.oauthbearer.assertion.claim.exp.seconds", 86401,
         "an integer from 0 to 86400 (32-bit)"),
        ("sasl.oauthbearer.assertion.claim.nbf.seconds", -1,
         "an integer from 0 to 3600 (32-bit)"),
        ("acks", "ALL", "one of 'all', '-1', '0', '1' (or the int -1, 0, 1)"),
        ("acks", 2, "one of 'all', '-1', '0', '1' (or the int -1, 0, 1)"),
        ("acks", True, "one of 'all', '-1', '0', '1' (or the int -1, 0, 1)"),
        ("compression.type", "GZIP", "one of 'none', 'gzip', 'snappy', 'lz4', 'zstd'"),
        ("compression.type", "brotli", "one of 'none', 'gzip', 'snappy', 'lz4', 'zstd'"),
        ("client.dns.lookup", "default",
         "one of 'use_all_dns_ips', 'resolve_canonical_bootstrap_servers_only'"),
        ("security.protocol", "TLS",
         "one of 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL' (any case)"),
        ("metadata.recovery.strategy", "retry", "one of 'rebootstrap', 'none' (any case)"),
        ("metrics.recording.level", "info", "one of 'INFO', 'DEBUG', 'TRACE'"),
        ("sasl.oauthbearer.assertion.algorithm", "HS256", "one of 'ES256', 'RS256' (any case)"),
        ("transactional.id", "", "a non-empty string"),
        ("transactional.id", "  ", "a non-empty string"),
        ("enable.idempotence", "yes", 'True or False (or the strings "true" and "false")'),
        ("enable.idempotence", 1, 'True or False (or the strings "true" and "false")'),
        ("client.id", 42, "a string"),
        ("ssl.cipher.suites", "a,,b", "with no empty items"),
        ("ssl.cipher.suites", [1], "a list of strings"),
        ("interceptor.classes", [42], "a list of classes, callables or"),
        ("interceptor.classes", "not a class!", "a list of classes, callables or"),
        ("partitioner.class", "bad name", 'a class, a callable, or a "module:Name" string'),
        ("partitioner.class", 42, 'a class, a callable, or a "module:Name" string'),
        ("key.serializer", 42, "a serializer name, a callable, or a serializer class"),
        ("value.serializer", "", "a serializer name, a callable, or a serializer class"),
    ],
)
def test_validator_rejections(key: str, value: object, accepted: str) -> None:
    message = error_of({**BOOT, key: value})
    assert message.startswith(f"invalid value {value!r} for config {key!r}: expected ")
    assert accepted in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("compression.gzip.level", -1), ("compression.gzip.level", 1),
        ("compression.gzip.level", 9), ("compression.lz4.level", 1),
        ("compression.lz4.level", 17), ("compression.zstd.level", -131072),
        ("compression.zstd.level", 22), ("retries", 0), ("send.buffer.bytes", -1),
        ("metadata.max.idle.ms", 5000), ("sasl.login.refresh.window.factor", 0.5),
    ],
)
def test_validator_bounds_are_inclusive(key: str, value: object) -> None:
    assert ProducerConfig({**BOOT, key: value})[key] == value


def test_none_only_where_the_default_is_none() -> None:
    assert make(transactional_id=None).transactional_id is None
    assert make(partitioner_class=None).partitioner_class is None
    assert error_of({**BOOT, "batch.size": None}) == (
        "invalid value None for config 'batch.size': leave it out to use the default 16384")
    assert "it is required" in error_of(bootstrap_servers=None)


# ----------------------------------------------------------------------------------------
# Unknown keys and close matches
# ----------------------------------------------------------------------------------------


def test_unknown_key_suggests_close_matches() -> None:
    assert error_of({**BOOT, "batch.sise": 100}) == (
        "unknown config 'batch.sise' = 100 — did you mean 'batch.size'?")
    assert error_of(bootstrap_servers="a:1", batch_sise=100) == (
        "unknown config 'batch.sise' (keyword batch_sise) = 100 — did you mean 'batch.size'?")
    message = error_of({**BOOT, "retry.backof.ms": 1})
    assert "did you mean 'retry.backoff.ms'" in message
    assert message.count("'retry.backoff") + message.count("'reconnect") <= 4


def test_unknown_key_with_underscores_suggests_the_dotted_name() -> None:
    message = error_of({**BOOT, "linger_ms": 10})
    assert message.startswith("unknown config 'linger_ms' = 10 — did you mean 'linger.ms'")


def test_unknown_key_without_match() -> None:
    message = error_of({**BOOT, "zzz": 1})
    assert message == ("unknown config 'zzz' = 1 — no producer config has a similar name "
                       "(see fastprod.config.CONFIG_DEFS)")


def test_at_most_three_matches() -> None:
    message = error_of({**BOOT, "sasl.oauthbearer.jwks.url": "x"})
    assert message == (
        "unknown config 'sasl.oauthbearer.jwks.url' = 'x' — did you mean "
        "'sasl.oauthbearer.jwks.endpoint.url', 'sasl.oauthbearer.scope' or "
        "'sasl.oauthbearer.token.endpoint.url'?")
    assert error_of({**BOOT, "retry.ms": 1}).endswith(
        "did you mean 'retry.backoff.ms' or 'retries'?")


def test_unknown_secret_is_not_shown() -> None:
    for key in ("sasl.pasword", "ssl.keystore.pw", "oauth.client.secret"):
        message = error_of({**BOOT, key: "hunter2"})
        assert "hunter2" not in message and "'[hidden]'" in message
    assert "did you mean 'sasl.password'" in error_of({**BOOT, "sasl.pasword": "x"})


# ----------------------------------------------------------------------------------------
# kwargs, the mapping, and the object
# ----------------------------------------------------------------------------------------


def test_kwargs_map_underscores_to_dots() -> None:
    cfg = ProducerConfig(bootstrap_servers="a:1", max_in_flight_requests_per_connection=3,
                         compression_type="lz4", ssl_endpoint_identification_algorithm="")
    assert cfg["max.in.flight.requests.per.connection"] == 3
    assert cfg.compression_type == "lz4" and cfg.ssl_endpoint_identification_algorithm == ""
    assert set(cfg.originals) == {"bootstrap.servers", "max.in.flight.requests.per.connection",
                                  "compression.type", "ssl.endpoint.identification.algorithm"}


def test_mapping_and_kwargs_combine() -> None:
    cfg = ProducerConfig({"bootstrap.servers": "a:1", "acks": "1"}, linger_ms=20)
    assert (cfg.acks, cfg.linger_ms) == (1, 20)
    assert cfg.is_user_set("acks") and cfg.is_user_set("linger.ms")
    assert not cfg.is_user_set("batch.size")


def test_same_key_twice_is_an_error() -> None:
    assert error_of({**BOOT, "linger.ms": 5}, linger_ms=5) == (
        "config 'linger.ms' is given twice: in the mapping and as the keyword linger_ms")


def test_non_string_key() -> None:
    assert "config keys must be strings" in error_of({**BOOT, 5: 1})


def test_frozen() -> None:
    cfg = make()
    with pytest.raises(AttributeError):
        cfg.batch_size = 1
    with pytest.raises(AttributeError):
        del cfg.batch_size
    with pytest.raises(TypeError):
        cfg["batch.size"] = 1
    with pytest.raises(TypeError):
        cfg.originals["x"] = 1  # type: ignore[index]
    values = cfg.as_dict()
    values["batch.size"] = 1
    assert cfg.batch_size == 16384


def test_reading() -> None:
    cfg = make(linger_ms=7)
    assert cfg.linger_ms == cfg["linger.ms"] == cfg.get("linger.ms") == 7
    assert "linger.ms" in cfg and "linger_ms" not in cfg
    assert len(cfg) == len(CONFIG_DEFS) and list(cfg) == list(CONFIG_DEFS)
    assert cfg.as_dict() == dict(cfg.items())
    with pytest.raises(AttributeError, match="did you mean linger_ms"):
        cfg.linger_mss  # noqa: B018
    with pytest.raises(KeyError, match=r"did you mean 'linger\.ms'"):
        cfg["linger.mss"]
    with pytest.raises(ConfigError, match=r"unknown config 'linger\.mss'"):
        cfg.is_user_set("linger.mss")


def test_copy_from_another_config_keeps_user_set_keys() -> None:
    cfg = make(acks=1)
    copy = ProducerConfig(cfg, linger_ms=9)
    assert copy.acks == 1 and copy.linger_ms == 9
    assert set(copy.originals) == {"bootstrap.servers", "acks", "linger.ms"}


def test_pickle_round_trip() -> None:
    cfg = make(ssl_key_password="pw", acks=0)
    copy = pickle.loads(pickle.dumps(cfg))
    assert copy == cfg and copy.client_id == cfg.client_id
    assert copy.originals == cfg.originals and copy.ssl_key_password.value == "pw"


def test_resolve_imports_lazily() -> None:
    cfg = make(partitioner_class="collections:OrderedDict",
               interceptor_classes=["collections.Counter", OrderedDict],
               ssl_engine_factory_class="collections:abc.Mapping")
    assert cfg.partitioner_class == "collections:OrderedDict"  # stored as given
    assert cfg.resolve("partitioner.class") is OrderedDict
    from collections import Counter
    from collections.abc import Mapping

    assert cfg.resolve("interceptor.classes") == (Counter, OrderedDict)
    assert cfg.resolve("ssl.engine.factory.class") is Mapping
    assert make().resolve("partitioner.class") is None


def test_resolve_errors() -> None:
    with pytest.raises(ConfigError, match="cannot be imported"):
        make(partitioner_class="no_such_module_xyz:P").resolve("partitioner.class")
    with pytest.raises(ConfigError, match="cannot be imported"):
        make(partitioner_class="collections:NoSuchThing").resolve("partitioner.class")
    with pytest.raises(ConfigError, match="names a Java class"):
        make().resolve("metric.reporters")
    with pytest.raises(ConfigError, match="does not name classes"):
        make(key_serializer="json").resolve("key.serializer")


# ----------------------------------------------------------------------------------------
# Passwords
# ----------------------------------------------------------------------------------------


def test_password_never_shown() -> None:
    cfg = make(ssl_key_password="hunter2", sasl_jaas_config="x password=\"hunter3\";",
               ssl_truststore_password=Password("hunter4"))
    sasl = make(sasl_username="u", sasl_password="hunter5")
    for text in (repr(cfg), str(cfg), repr(cfg.originals), repr(cfg.as_dict()), repr(sasl),
                 str(cfg.ssl_key_password), repr(cfg.ssl_key_password)):
        for secret in ("hunter2", "hunter3", "hunter4", "hunter5"):
            assert secret not in text
    assert "[hidden]" in repr(cfg)
    assert cfg.ssl_key_password.value == "hunter2"
    assert cfg.ssl_truststore_password == Password("hunter4")
    assert sasl.sasl_password.value == "hunter5" and sasl.sasl_username == "u"


def test_password_rejection_hides_the_value() -> None:
    message = error_of({**BOOT, "ssl.key.password": 12345})
    assert "12345" not in message and "'ssl.key.password'" in message


def test_password_pickles() -> None:
    assert pickle.loads(pickle.dumps(Password("x"))) == Password("x")


# ----------------------------------------------------------------------------------------
# Cross-field rules: idempotence (Java postProcessAndValidateIdempotenceConfigs, 4.3.1)
# ----------------------------------------------------------------------------------------


def test_idempotence_on_by_default() -> None:
    cfg = make()
    assert cfg.enable_idempotence is True and not cfg.is_user_set("enable.idempotence")


@pytest.mark.parametrize("conflict", [{"acks": "1"}, {"acks": 0}, {"retries": 0}])
def test_conflict_silently_disables_default_idempotence(
        conflict: dict[str, object], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fastprod.config"):
        cfg = ProducerConfig({**BOOT, **conflict})
    assert cfg.enable_idempotence is False
    assert not cfg.is_user_set("enable.idempotence")
    assert any("idempotence disabled" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("conflict", "fragment"),
    [
        ({"acks": "1"}, "invalid value 1 for config 'acks' with enable.idempotence=True"),
        ({"acks": 0}, "invalid value 0 for config 'acks' with enable.idempotence=True"),
        ({"retries": 0}, "invalid value 0 for config 'retries' with enable.idempotence=True"),
        ({"max.in.flight.requests.per.connection": 6},
         "invalid value 6 for config 'max.in.flight.requests.per.connection' with "
         "enable.idempotence=True: expected at most 5"),
    ],
)
def test_conflict_with_explicit_idempotence_is_an_error(
        conflict: dict[str, object], fragment: str) -> None:
    assert fragment in error_of({**BOOT, "enable.idempotence": True, **conflict})
    assert fragment in error_of({**BOOT, "enable.idempotence": "true", **conflict})


def test_too_many_in_flight_is_an_error_even_with_default_idempotence() -> None:
    # Kafka 4.x: no longer a silent disable (3.x logged a warning instead)
    message = error_of({**BOOT, "max.in.flight.requests.per.connection": 6})
    assert "with idempotence (on by default): expected at most 5" in message
    assert "enable.idempotence=False" in message
    # ... also when another conflict would have disabled idempotence
    assert "expected at most 5" in error_of(
        {**BOOT, "acks": 1, "max.in.flight.requests.per.connection": 6})


def test_idempotence_off_allows_everything() -> None:
    cfg = make(enable_idempotence=False, acks=0, retries=0,
               max_in_flight_requests_per_connection=50)
    assert (cfg.enable_idempotence, cfg.acks, cfg.retries) == (False, 0, 0)
    assert make(max_in_flight_requests_per_connection=5).enable_idempotence is True


def test_explicit_idempotence_with_matching_settings() -> None:
    cfg = make(enable_idempotence=True, acks="all", retries=3,
               max_in_flight_requests_per_connection=5)
    assert cfg.enable_idempotence is True and cfg.acks == -1
    assert make(enable_idempotence=True, acks="-1").acks == -1


def test_transactional_id_needs_idempotence() -> None:
    cfg = make(transactional_id="orders")
    assert cfg.enable_idempotence is True and cfg.transactional_id == "orders"
    for extra in ({"enable_idempotence": False}, {"acks": 1}, {"retries": 0}):
        message = error_of(bootstrap_servers="a:1", transactional_id="orders", **extra)
        assert message.startswith("config 'transactional.id' = 'orders' needs idempotence")


def test_explicit_transactional_id_none_counts_as_set_as_in_java() -> None:
    # Java checks originals().containsKey("transactional.id")
    assert "needs idempotence" in error_of(bootstrap_servers="a:1", transactional_id=None,
                                           acks=1)
    assert make(acks=1).enable_idempotence is False


def test_two_phase_commit_forbids_transaction_timeout() -> None:
    assert make(transaction_two_phase_commit_enable=True).transaction_timeout_ms == 60000
    message = error_of(bootstrap_servers="a:1", transaction_two_phase_commit_enable=True,
                       transaction_timeout_ms=1000)
    assert "'transaction.timeout.ms' cannot be set" in message


# ----------------------------------------------------------------------------------------
# Cross-field rules: delivery timeout (Java KafkaProducer.configureDeliveryTimeout)
# ----------------------------------------------------------------------------------------


def test_user_set_delivery_timeout_below_linger_plus_request_is_an_error() -> None:
    assert error_of(bootstrap_servers="a:1", delivery_timeout_ms=1000) == (
        "invalid value 1000 for config 'delivery.timeout.ms': expected at least linger.ms "
        "+ request.timeout.ms = 5 + 30000 = 30005")


def test_default_delivery_timeout_is_raised_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fastprod.config"):
        cfg = make(linger_ms=100000)
    assert cfg.delivery_timeout_ms == 130000
    assert not cfg.is_user_set("delivery.timeout.ms")
    assert any("delivery.timeout.ms" in r.getMessage() for r in caplog.records)


def test_delivery_timeout_edges() -> None:
    assert make(delivery_timeout_ms=30005).delivery_timeout_ms == 30005
    assert make(delivery_timeout_ms=1000, request_timeout_ms=500,
                linger_ms=0).delivery_timeout_ms == 1000
    # linger.ms is capped to an int, and so is the sum
    cfg = make(linger_ms=9999999999, delivery_timeout_ms=2147483647)
    assert cfg.delivery_timeout_ms == 2147483647
    assert make(linger_ms=9999999999).delivery_timeout_ms == 2147483647


# ----------------------------------------------------------------------------------------
# Cross-field rules: the others
# ----------------------------------------------------------------------------------------


def test_client_id_default_as_in_java() -> None:
    first, second = make().client_id, make().client_id
    assert first.startswith("producer-") and second.startswith("producer-")
    assert int(second.split("-")[1]) > int(first.split("-")[1])
    assert make(transactional_id="tx1").client_id == "producer-tx1"
    assert make(client_id="me", transactional_id="tx1").client_id == "me"
    assert make(client_id="").client_id == ""


def test_reconnect_backoff_max_follows_a_lone_reconnect_backoff(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fastprod.config"):
        assert make(reconnect_backoff_ms=500).reconnect_backoff_max_ms == 500
    assert any("reconnect" in r.getMessage() for r in caplog.records)
    assert make(reconnect_backoff_ms=500,
                reconnect_backoff_max_ms=2000).reconnect_backoff_max_ms == 2000
    assert make().reconnect_backoff_max_ms == 1000


def test_backoff_above_its_maximum_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fastprod.config"):
        cfg = make(retry_backoff_ms=5000, socket_connection_setup_timeout_ms=60000)
    assert cfg.retry_backoff_ms == 5000
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "retry.backoff.ms=5000" in messages
    assert "socket.connection.setup.timeout.ms=60000" in messages


def test_sasl_needs_a_mechanism() -> None:
    assert make(security_protocol="SASL_SSL").sasl_mechanism == "GSSAPI"
    for protocol in ("SASL_SSL", "sasl_plaintext"):
        message = error_of(bootstrap_servers="a:1", security_protocol=protocol,
                           sasl_mechanism="")
        assert "'sasl.mechanism'" in message and "needs a SASL mechanism" in message
    assert make(security_protocol="SSL", sasl_mechanism="").sasl_mechanism == ""


def test_sasl_username_and_password() -> None:
    assert "'sasl.username' is set but 'sasl.password' is not" in error_of(
        bootstrap_servers="a:1", sasl_username="u")
    assert "'sasl.password' is set but 'sasl.username' is not" in error_of(
        bootstrap_servers="a:1", sasl_password="p")
    assert "give the credentials one way only" in error_of(
        bootstrap_servers="a:1", sasl_username="u", sasl_password="p",
        sasl_jaas_config="x")
