"""Producer configuration: one table of every key, validated once into a frozen object.

The table (``CONFIG_DEFS``) follows Kafka 4.3.1's ``ProducerConfig.configDef()``: the
same names, types, defaults and validators, each with one line of documentation. Some keys
are fastprod's own (``ConfigKey.java`` is False): ``sasl.username`` and ``sasl.password``,
a shorter way to give PLAIN/SCRAM credentials than ``sasl.jaas.config``, and the
``fastprod.metrics.*`` settings of the reporters shipped in fastprod.metrics.

``ProducerConfig`` accepts a mapping with Java names, keyword arguments with underscores
for dots, or both::

    ProducerConfig({"bootstrap.servers": "k1:9092,k2:9092"}, acks="all", linger_ms=10)

Values may be Python values or strings as in a Java properties file ("16384", "true",
"a:1,b:2"). Unknown keys and bad values raise ``ConfigError``. The cross-field rules of
the Java producer (idempotence, transactions, delivery timeout, ...) are applied in one
place, ``_apply_cross_field_rules``.

Where fastprod differs from Java on purpose:

- an unknown key is an error (Java only logs it), so that typos do not go unnoticed;
- ``key.serializer`` and ``value.serializer`` default to None (bytes and str pass
  through) instead of being required; their values are stored as given and resolved
  by ``fastprod.serializers``;
- class-valued keys take a Python class, a callable, or a "module:Name" string,
  imported only by ``ProducerConfig.resolve``;
- ``acks`` is normalized to the int -1, 0 or 1, ``security.protocol`` to upper case and
  ``metadata.recovery.strategy`` to lower case;
- a bootstrap address must have a port from 1 to 65535, and an IPv6 address must be in
  brackets ("[::1]:9092").
"""

from __future__ import annotations

import difflib
import enum
import importlib
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastprod.errors import ConfigError

log = logging.getLogger("fastprod.config")

__all__ = [
    "CONFIG_DEFS",
    "REQUIRED",
    "ConfigKey",
    "Password",
    "ProducerConfig",
    "Type",
    "parse_bootstrap_server",
]

INT_MAX = 2**31 - 1
#: Java's MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION_FOR_IDEMPOTENCE.
MAX_IN_FLIGHT_FOR_IDEMPOTENCE = 5


class Type(enum.Enum):
    """The type of a config value, as in Java's ``ConfigDef.Type`` plus fastprod's own."""

    INT = "int"  # 32-bit signed
    LONG = "long"  # 64-bit signed
    SHORT = "short"  # 16-bit signed
    DOUBLE = "double"
    BOOLEAN = "boolean"
    STRING = "string"
    LIST = "list"  # of strings
    PASSWORD = "password"  # a str kept in a Password, hidden in repr and str
    CLASS = "class"  # a class, a callable, or a "module:Name" string
    CLASS_LIST = "class_list"  # Java LIST of class names: classes, callables or strings
    SERIALIZER = "serializer"  # Java CLASS: a serializer name, a callable or a class


class Password:
    """A secret config value: ``str()`` and ``repr()`` never show it; ``.value`` does."""

    __slots__ = ("_value",)

    HIDDEN = "[hidden]"

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Password({self.HIDDEN!r})"

    def __str__(self) -> str:
        return self.HIDDEN

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Password) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Password, self._value))

    def __reduce__(self) -> tuple[type[Password], tuple[str]]:
        return (Password, (self._value,))


class _Required:
    """Marks a key that has no default value."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a key that must be given.
REQUIRED: Any = _Required()


class _Invalid(Exception):
    """Raised by parsers and validators with a description of what is accepted."""

    def __init__(self, accepted: str) -> None:
        super().__init__(accepted)
        self.accepted = accepted


# --------------------------------------------------------------------------------------
# Validators: each checks a parsed value, may normalize it, and says what it accepts
# --------------------------------------------------------------------------------------


class Validator:
    """Checks (and may normalize) a parsed value; ``describe()`` says what is accepted."""

    def __call__(self, value: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class Between(Validator):
    """A number in [low, high]; None for an open end; ``also`` lists extra allowed values."""

    def __init__(self, low: float | None, high: float | None = None,
                 also: tuple[int, ...] = ()) -> None:
        self.low, self.high, self.also = low, high, also

    def __call__(self, value: Any) -> Any:
        if value is None or value in self.also:
            return value
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            raise _Invalid(self.describe())
        return value

    def describe(self, noun: str = "a number") -> str:
        if self.high is None:
            text = f"{noun} >= {self.low}"
        elif self.low is None:
            text = f"{noun} <= {self.high}"
        else:
            text = f"{noun} from {self.low} to {self.high}"
        if self.also:
            text += ", or " + " or ".join(str(v) for v in self.also)
        return text


def at_least(low: float) -> Between:
    return Between(low, None)


class OneOf(Validator):
    """One of a fixed set of strings; ``ignore_case`` accepts any case and normalizes it."""

    def __init__(self, *values: str, ignore_case: bool = False) -> None:
        self.values = values
        self.ignore_case = ignore_case

    def __call__(self, value: Any) -> Any:
        if value is None or value in self.values:
            return value
        if self.ignore_case:
            for allowed in self.values:
                if allowed.lower() == value.lower():
                    return allowed
        raise _Invalid(self.describe())

    def describe(self) -> str:
        text = "one of " + ", ".join(repr(v) for v in self.values)
        return text + " (any case)" if self.ignore_case else text


class NonEmptyString(Validator):
    """A non-empty string, or None."""

    def __call__(self, value: Any) -> Any:
        if value == "":
            raise _Invalid(self.describe())
        return value

    def describe(self) -> str:
        return "a non-empty string"


class BootstrapServers(Validator):
    """A non-empty list of "host:port" addresses, normalized to a tuple of strings."""

    def __call__(self, value: Any) -> Any:
        if not value:
            raise _Invalid("a non-empty list of host:port addresses")
        out = []
        for entry in value:
            host, port = parse_bootstrap_server(entry)
            out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return tuple(dict.fromkeys(out))

    def describe(self) -> str:
        return 'a non-empty list of host:port addresses ("k1:9092,k2:9092", "[::1]:9092")'


_HOST_RE = re.compile(r"[0-9A-Za-z\-._%]+")
_SCHEME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_+.-]*://")


def parse_bootstrap_server(address: str) -> tuple[str, int]:
    """Split one bootstrap address into (host, port); ConfigError if it is not valid.

    Accepts "host:port", "[ipv6]:port" and, as Java does, a listener prefix such as
    "SASL_SSL://host:port".
    """
    text = _SCHEME_RE.sub("", address.strip())
    if text.startswith("["):
        close = text.find("]")
        host, sep, port_text = text[1:close], text[close + 1:close + 2], text[close + 2:]
        if close < 0 or sep != ":" or not re.fullmatch(r"[0-9A-Fa-f:.%A-Za-z]+", host):
            raise _bad_address(address, "write an IPv6 address as [address]:port")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise _bad_address(address, "the port is missing")
        if ":" in host:
            raise _bad_address(address, "write an IPv6 address in brackets, as [::1]:9092")
        if not _HOST_RE.fullmatch(host):
            raise _bad_address(address, "the host name has characters a host cannot have")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _bad_address(address, "the port must be a number from 1 to 65535")
    return host, int(port_text)


def _bad_address(address: str, why: str) -> ConfigError:
    return ConfigError(
        f"invalid value {address!r} in config 'bootstrap.servers': {why}; expected "
        f"host:port addresses such as 'k1:9092' or '[::1]:9092'")


# --------------------------------------------------------------------------------------
# Parsers: Python values or Java-properties strings -> the normalized value of a type
# --------------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?[0-9]+")
_CLASS_NAME_RE = re.compile(
    r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*(:[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*)?")
_INT_BITS = {Type.SHORT: 16, Type.INT: 32, Type.LONG: 64}


def _parse_int(value: Any, bits: int) -> int:
    accepted = f"an integer ({bits}-bit)"
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(accepted)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise _Invalid(accepted)
    return value


def _parse_double(value: Any) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Invalid("a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid("a number")
    return float(value)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Invalid('True or False (or the strings "true" and "false")')


def _parse_string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid("a string")
    return value.strip()


def _split_list(value: Any, item_ok: Callable[[Any], bool], accepted: str) -> tuple[Any, ...]:
    """Java 4.x list semantics: comma-separated, trimmed, no empty items, no duplicates."""
    if isinstance(value, str):
        text = value.strip()
        items: list[Any] = [] if not text else [s.strip() for s in text.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [v.strip() if isinstance(v, str) else v for v in value]
    else:
        raise _Invalid(accepted)
    if any(item == "" for item in items):
        raise _Invalid(accepted + ", with no empty items")
    if not all(item_ok(item) for item in items):
        raise _Invalid(accepted)
    return tuple(dict.fromkeys(items)) if all(_hashable(i) for i in items) else tuple(items)


def _hashable(item: Any) -> bool:
    try:
        hash(item)
    except TypeError:
        return False
    return True


def _is_class_spec(item: Any) -> bool:
    if isinstance(item, str):
        return bool(_CLASS_NAME_RE.fullmatch(item))
    return callable(item)


def _parse_list(value: Any) -> tuple[str, ...]:
    return _split_list(value, lambda item: isinstance(item, str),
                       'a list of strings, or one comma-separated string ("a,b")')


def _parse_class(value: Any) -> Any:
    item = value.strip() if isinstance(value, str) else value
    if not _is_class_spec(item):
        raise _Invalid('a class, a callable, or a "module:Name" string')
    return item


def _parse_class_list(value: Any) -> tuple[Any, ...]:
    return _split_list(value, _is_class_spec,
                       'a list of classes, callables or "module:Name" strings')


def _is_reporter_spec(item: Any) -> bool:
    # metric.reporters also takes ready-made reporter instances (Java only takes names).
    return _is_class_spec(item) or callable(getattr(item, "metric_change", None))


def _parse_reporters(value: Any) -> tuple[Any, ...]:
    return _split_list(value, _is_reporter_spec,
                       'a list of MetricsReporter classes or instances, or "module:Name" '
                       'strings')


def _parse_serializer(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if callable(value):
        return value
    raise _Invalid("a serializer name, a callable, or a serializer class")


def _parse_password(value: Any) -> Password:
    if isinstance(value, Password):
        return value
    if isinstance(value, str):
        return Password(value.strip())
    raise _Invalid("a string")


_PARSERS: dict[Type, Callable[[Any], Any]] = {
    Type.SHORT: lambda v: _parse_int(v, 16),
    Type.INT: lambda v: _parse_int(v, 32),
    Type.LONG: lambda v: _parse_int(v, 64),
    Type.DOUBLE: _parse_double,
    Type.BOOLEAN: _parse_bool,
    Type.STRING: _parse_string,
    Type.LIST: _parse_list,
    Type.PASSWORD: _parse_password,
    Type.CLASS: _parse_class,
    Type.CLASS_LIST: _parse_class_list,
    Type.SERIALIZER: _parse_serializer,
}

_ACCEPTED: dict[Type, str] = {
    Type.BOOLEAN: 'True or False (or the strings "true" and "false")',
    Type.STRING: "a string",
    Type.LIST: 'a list of strings, or one comma-separated string ("a,b")',
    Type.PASSWORD: "a string",
    Type.CLASS: 'a class, a callable, or a "module:Name" string',
    Type.CLASS_LIST: 'a list of classes, callables or "module:Name" strings',
    Type.SERIALIZER: "a serializer name, a callable, or a serializer class",
}

_ACKS = {"all": -1, "-1": -1, "0": 0, "1": 1}


def _parse_acks(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in (-1, 0, 1):
        return value
    if isinstance(value, str) and value.strip() in _ACKS:
        return _ACKS[value.strip()]
    raise _Invalid("one of 'all', '-1', '0', '1' (or the int -1, 0, 1)")


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigKey:
    """One producer config: Java name, type, default, validator and a line of doc."""

    name: str
    type: Type
    default: Any
    validator: Validator | None
    doc: str
    java: bool = True  # False for fastprod's own keys
    parse: Callable[[Any], Any] | None = None  # replaces the type's parser

    @property
    def attr(self) -> str:
        """The attribute and keyword-argument name: dots become underscores."""
        return self.name.replace(".", "_")

    @property
    def nullable(self) -> bool:
        return self.default is None

    def accepted(self) -> str:
        """What this key accepts, for error messages."""
        if self.type in _INT_BITS or self.type is Type.DOUBLE:
            noun = "a number" if self.type is Type.DOUBLE else "an integer"
            bits = f" ({_INT_BITS[self.type]}-bit)" if self.type in _INT_BITS else ""
            if isinstance(self.validator, Between):
                return self.validator.describe(noun) + bits
            return noun + bits
        if self.validator is not None:
            return self.validator.describe()
        return _ACCEPTED[self.type]

    def convert(self, value: Any) -> Any:
        """Parse and validate one user value; ConfigError naming key, value and what works."""
        if value is None:
            if self.nullable:
                return None
            hint = "it is required" if self.default is REQUIRED else (
                f"leave it out to use the default {_show(self, self.default)}")
            raise ConfigError(f"invalid value None for config {self.name!r}: {hint}")
        try:
            parsed = (self.parse or _PARSERS[self.type])(value)
            return self.validator(parsed) if self.validator is not None else parsed
        except _Invalid as exc:
            numeric = self.type in _INT_BITS or self.type is Type.DOUBLE
            accepted = self.accepted() if numeric else exc.accepted
            raise ConfigError(f"invalid value {_show(self, value)} for config {self.name!r}: "
                              f"expected {accepted}") from None


def _show(key: ConfigKey, value: Any) -> str:
    """A value for a message; secrets are never shown."""
    if key.type is Type.PASSWORD and value is not None:
        return repr(Password.HIDDEN)
    return repr(value)


_STR, _INT, _LONG, _SHORT, _DBL, _BOOL = (
    Type.STRING, Type.INT, Type.LONG, Type.SHORT, Type.DOUBLE, Type.BOOLEAN)
_LIST, _PW, _CLASS, _CLASSES, _SER = (
    Type.LIST, Type.PASSWORD, Type.CLASS, Type.CLASS_LIST, Type.SERIALIZER)
_GE0 = at_least(0)

_KEYS: tuple[ConfigKey, ...] = (
    # --- connecting --------------------------------------------------------------------
    ConfigKey("bootstrap.servers", _LIST, REQUIRED, BootstrapServers(),
              "host:port addresses of brokers to fetch the first metadata from."),
    ConfigKey("client.dns.lookup", _STR, "use_all_dns_ips",
              OneOf("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only"),
              "Try every IP a host name resolves to, or resolve bootstrap names canonically."),
    ConfigKey("client.id", _STR, "", None,
              "Name sent with every request, for broker logs and quotas."),
    ConfigKey("send.buffer.bytes", _INT, 128 * 1024, at_least(-1),
              "Socket send buffer (SO_SNDBUF); -1 uses the OS default."),
    ConfigKey("receive.buffer.bytes", _INT, 32 * 1024, at_least(-1),
              "Socket receive buffer (SO_RCVBUF); -1 uses the OS default."),
    ConfigKey("reconnect.backoff.ms", _LONG, 50, _GE0,
              "First wait before reconnecting to a broker."),
    ConfigKey("reconnect.backoff.max.ms", _LONG, 1000, _GE0,
              "Upper bound of the exponential reconnect backoff."),
    ConfigKey("socket.connection.setup.timeout.ms", _LONG, 10 * 1000, None,
              "First timeout for establishing a connection."),
    ConfigKey("socket.connection.setup.timeout.max.ms", _LONG, 30 * 1000, None,
              "Upper bound of the exponential connection setup timeout."),
    ConfigKey("connections.max.idle.ms", _LONG, 9 * 60 * 1000, None,
              "Close connections that stayed idle this long."),
    ConfigKey("request.timeout.ms", _INT, 30 * 1000, _GE0,
              "How long to wait for a response before retrying or failing the request."),
    # --- metadata ----------------------------------------------------------------------
    ConfigKey("metadata.max.age.ms", _LONG, 5 * 60 * 1000, _GE0,
              "Refresh metadata at least this often, even without leadership changes."),
    ConfigKey("metadata.max.idle.ms", _LONG, 5 * 60 * 1000, at_least(5000),
              "Forget the metadata of a topic not produced to for this long."),
    ConfigKey("metadata.recovery.strategy", _STR, "rebootstrap",
              OneOf("rebootstrap", "none", ignore_case=True),
              "When no known broker is reachable: bootstrap again, or keep trying known ones."),
    ConfigKey("metadata.recovery.rebootstrap.trigger.ms", _LONG, 5 * 60 * 1000, _GE0,
              "Bootstrap again after metadata could not be fetched for this long."),
    # --- batching and delivery ----------------------------------------------------------
    ConfigKey("acks", _STR, "all", None,
              "Acknowledgements the leader waits for: all (-1), 1 (leader only) or 0 (none).",
              parse=_parse_acks),
    ConfigKey("buffer.memory", _LONG, 32 * 1024 * 1024, _GE0,
              "Bytes of records waiting to be sent; send() blocks when it is full."),
    ConfigKey("batch.size", _INT, 16384, _GE0,
              "Upper size in bytes of a batch of records to one partition."),
    ConfigKey("linger.ms", _LONG, 5, _GE0,
              "How long to wait for more records before sending a batch that is not full."),
    ConfigKey("max.request.size", _INT, 1024 * 1024, _GE0,
              "Upper size in bytes of a produce request, and so of one record."),
    ConfigKey("max.block.ms", _LONG, 60 * 1000, _GE0,
              "How long send() and other calls may block for metadata or buffer memory."),
    ConfigKey("delivery.timeout.ms", _INT, 120 * 1000, _GE0,
              "Time to report success or failure after send() returns, retries included."),
    ConfigKey("retries", _INT, INT_MAX, Between(0, INT_MAX),
              "How many times to resend a batch after a retriable error."),
    ConfigKey("retry.backoff.ms", _LONG, 100, _GE0,
              "First wait before retrying a failed request."),
    ConfigKey("retry.backoff.max.ms", _LONG, 1000, _GE0,
              "Upper bound of the exponential retry backoff."),
    ConfigKey("max.in.flight.requests.per.connection", _INT, 5, at_least(1),
              "Unacknowledged requests per connection; at most 5 with idempotence."),
    ConfigKey("compression.type", _STR, "none", OneOf("none", "gzip", "snappy", "lz4", "zstd"),
              "Codec for record batches."),
    ConfigKey("compression.gzip.level", _INT, -1, Between(1, 9, also=(-1,)),
              "gzip level; -1 is the codec's default."),
    ConfigKey("compression.lz4.level", _INT, 9, Between(1, 17),
              "lz4 level."),
    ConfigKey("compression.zstd.level", _INT, 3, Between(-131072, 22),
              "zstd level."),
    # --- idempotence and transactions ---------------------------------------------------
    ConfigKey("enable.idempotence", _BOOL, True, None,
              "Write each record exactly once per partition, using a producer id and sequences."),
    ConfigKey("transactional.id", _STR, None, NonEmptyString(),
              "Id for transactions that span producer sessions; implies idempotence."),
    ConfigKey("transaction.timeout.ms", _INT, 60000, None,
              "How long a transaction may stay open before the coordinator aborts it."),
    ConfigKey("transaction.two.phase.commit.enable", _BOOL, False, None,
              "Let an external coordinator commit (KIP-939); transactions then never time out."),
    # --- serializers, partitioner, interceptors -----------------------------------------
    ConfigKey("key.serializer", _SER, None, None,
              "Serializer of keys: a name from fastprod.serializers, a callable or a class."),
    ConfigKey("value.serializer", _SER, None, None,
              "Serializer of values: a name from fastprod.serializers, a callable or a class."),
    ConfigKey("partitioner.class", _CLASS, None, None,
              "Custom partitioner; None uses the built-in one (murmur2 of the key, or sticky)."),
    ConfigKey("partitioner.ignore.keys", _BOOL, False, None,
              "Let the built-in partitioner ignore keys and spread all records."),
    ConfigKey("partitioner.adaptive.partitioning.enable", _BOOL, True, None,
              "Send more records to partitions on faster brokers (built-in partitioner)."),
    ConfigKey("partitioner.availability.timeout.ms", _LONG, 0, _GE0,
              "Avoid a partition whose leader has had nothing ready for this long; 0 = never."),
    ConfigKey("interceptor.classes", _CLASSES, (), None,
              "Interceptors that see (and may change) records before they are sent."),
    # --- metrics -------------------------------------------------------------------------
    ConfigKey("metric.reporters", _CLASSES, ("org.apache.kafka.common.metrics.JmxReporter",),
              None, "Reporter classes or instances told of every metric; JmxReporter is a "
              "no-op.", parse=_parse_reporters),
    ConfigKey("metrics.num.samples", _INT, 2, at_least(1),
              "Number of samples kept to compute metrics."),
    ConfigKey("metrics.sample.window.ms", _LONG, 30000, _GE0,
              "Time window of one metrics sample."),
    ConfigKey("metrics.recording.level", _STR, "INFO", OneOf("INFO", "DEBUG", "TRACE"),
              "Highest level of metrics recorded."),
    ConfigKey("enable.metrics.push", _BOOL, True, None,
              "Push client metrics to brokers that ask for them (KIP-714)."),
    ConfigKey("fastprod.metrics.log.interval.ms", _LONG, 60000, at_least(1),
              "How often LoggingReporter logs its one-line JSON summary (fastprod).",
              java=False),
    ConfigKey("fastprod.metrics.prometheus.port", _INT, None, Between(0, 65535),
              "Port PrometheusReporter serves /metrics on; 0 any free port, unset none "
              "(fastprod).", java=False),
    # --- security --------------------------------------------------------------------------
    ConfigKey("security.protocol", _STR, "PLAINTEXT",
              OneOf("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", ignore_case=True),
              "Protocol to talk to brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    ConfigKey("security.providers", _STR, None, None,
              "Java security provider creator classes (no effect in Python)."),
    ConfigKey("config.providers", _LIST, (), None,
              "Names of config providers for indirect values (Java; no effect in Python)."),
    ConfigKey("ssl.protocol", _STR, "TLSv1.3", None,
              "TLS protocol used to build the SSL context."),
    ConfigKey("ssl.provider", _STR, None, None,
              "Security provider of the SSL context; None uses the default."),
    ConfigKey("ssl.cipher.suites", _LIST, (), None,
              "Cipher suites allowed; empty allows the defaults."),
    ConfigKey("ssl.enabled.protocols", _LIST, ("TLSv1.2", "TLSv1.3"), None,
              "TLS protocol versions enabled for connections."),
    ConfigKey("ssl.keystore.type", _STR, "JKS", None,
              "Format of the key store file (PEM for key and certificate files)."),
    ConfigKey("ssl.keystore.location", _STR, None, None,
              "Path of the key store, for client authentication."),
    ConfigKey("ssl.keystore.password", _PW, None, None,
              "Password of the key store file."),
    ConfigKey("ssl.key.password", _PW, None, None,
              "Password of the private key in the key store or in ssl.keystore.key."),
    ConfigKey("ssl.keystore.key", _PW, None, None,
              "Private key in PEM format, given inline."),
    ConfigKey("ssl.keystore.certificate.chain", _PW, None, None,
              "Certificate chain in PEM format, given inline."),
    ConfigKey("ssl.truststore.certificates", _PW, None, None,
              "Trusted certificates in PEM format, given inline."),
    ConfigKey("ssl.truststore.type", _STR, "JKS", None,
              "Format of the trust store file (PEM for certificate files)."),
    ConfigKey("ssl.truststore.location", _STR, None, None,
              "Path of the trust store."),
    ConfigKey("ssl.truststore.password", _PW, None, None,
              "Password of the trust store file."),
    ConfigKey("ssl.keymanager.algorithm", _STR, "SunX509", None,
              "Key manager factory algorithm (Java)."),
    ConfigKey("ssl.trustmanager.algorithm", _STR, "PKIX", None,
              "Trust manager factory algorithm (Java)."),
    ConfigKey("ssl.endpoint.identification.algorithm", _STR, "https", None,
              "Check the broker host name against its certificate ('https'); '' turns it off."),
    ConfigKey("ssl.secure.random.implementation", _STR, None, None,
              "SecureRandom implementation for TLS (Java)."),
    ConfigKey("ssl.engine.factory.class", _CLASS, None, None,
              "Custom factory of SSL engines."),
    ConfigKey("sasl.mechanism", _STR, "GSSAPI", None,
              "SASL mechanism: GSSAPI, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, ..."),
    ConfigKey("sasl.jaas.config", _PW, None, None,
              "JAAS login module line with the SASL credentials."),
    ConfigKey("sasl.username", _STR, None, None,
              "PLAIN/SCRAM user name, instead of sasl.jaas.config (fastprod).", java=False),
    ConfigKey("sasl.password", _PW, None, None,
              "PLAIN/SCRAM password, instead of sasl.jaas.config (fastprod).", java=False),
    ConfigKey("sasl.client.callback.handler.class", _CLASS, None, None,
              "Custom SASL client callback handler."),
    ConfigKey("sasl.login.callback.handler.class", _CLASS, None, None,
              "Custom SASL login callback handler."),
    ConfigKey("sasl.login.class", _CLASS, None, None,
              "Custom SASL login class."),
    ConfigKey("sasl.login.connect.timeout.ms", _INT, None, None,
              "Connect timeout of the login HTTP request (OAUTHBEARER)."),
    ConfigKey("sasl.login.read.timeout.ms", _INT, None, None,
              "Read timeout of the login HTTP request (OAUTHBEARER)."),
    ConfigKey("sasl.login.retry.backoff.ms", _LONG, 100, None,
              "First wait between login attempts (OAUTHBEARER)."),
    ConfigKey("sasl.login.retry.backoff.max.ms", _LONG, 10000, None,
              "Upper bound of the login retry backoff (OAUTHBEARER)."),
    ConfigKey("sasl.login.refresh.window.factor", _DBL, 0.8, Between(0.5, 1.0),
              "Refresh credentials after this fraction of their lifetime."),
    ConfigKey("sasl.login.refresh.window.jitter", _DBL, 0.05, Between(0.0, 0.25),
              "Random jitter added to the refresh time, as a fraction of the lifetime."),
    ConfigKey("sasl.login.refresh.min.period.seconds", _SHORT, 60, Between(0, 900),
              "Least time between two credential refreshes."),
    ConfigKey("sasl.login.refresh.buffer.seconds", _SHORT, 300, Between(0, 3600),
              "Refresh credentials at least this long before they expire."),
    ConfigKey("sasl.kerberos.service.name", _STR, None, None,
              "Kerberos principal name the brokers run as."),
    ConfigKey("sasl.kerberos.kinit.cmd", _STR, "/usr/bin/kinit", None,
              "Path of the kinit command."),
    ConfigKey("sasl.kerberos.ticket.renew.window.factor", _DBL, 0.8, None,
              "Renew the Kerberos ticket after this fraction of its lifetime."),
    ConfigKey("sasl.kerberos.ticket.renew.jitter", _DBL, 0.05, None,
              "Random jitter added to the Kerberos renewal time."),
    ConfigKey("sasl.kerberos.min.time.before.relogin", _LONG, 60000, None,
              "Least time between two Kerberos login refreshes."),
    ConfigKey("sasl.oauthbearer.token.endpoint.url", _STR, None, None,
              "URL of the OAuth/OIDC token endpoint, or a file with the token."),
    ConfigKey("sasl.oauthbearer.scope", _STR, None, None,
              "Scope requested with the client credentials grant."),
    ConfigKey("sasl.oauthbearer.client.credentials.client.id", _STR, None, None,
              "Client id for the client credentials grant."),
    ConfigKey("sasl.oauthbearer.client.credentials.client.secret", _PW, None, None,
              "Client secret for the client credentials grant."),
    ConfigKey("sasl.oauthbearer.jwt.retriever.class", _CLASS,
              "org.apache.kafka.common.security.oauthbearer.DefaultJwtRetriever", None,
              "Class that fetches the JWT (Java default; no Python equivalent)."),
    ConfigKey("sasl.oauthbearer.jwt.validator.class", _CLASS,
              "org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator", None,
              "Class that validates the JWT (Java default; no Python equivalent)."),
    ConfigKey("sasl.oauthbearer.assertion.algorithm", _STR, "RS256",
              OneOf("ES256", "RS256", ignore_case=True),
              "Signing algorithm of the JWT assertion (jwt-bearer grant)."),
    ConfigKey("sasl.oauthbearer.assertion.claim.aud", _STR, None, None,
              "aud claim of the JWT assertion."),
    ConfigKey("sasl.oauthbearer.assertion.claim.exp.seconds", _INT, 300, Between(0, 86400),
              "Lifetime of the JWT assertion (exp claim)."),
    ConfigKey("sasl.oauthbearer.assertion.claim.iss", _STR, None, None,
              "iss claim of the JWT assertion."),
    ConfigKey("sasl.oauthbearer.assertion.claim.jti.include", _BOOL, False, None,
              "Add a random jti claim to the JWT assertion."),
    ConfigKey("sasl.oauthbearer.assertion.claim.nbf.seconds", _INT, 60, Between(0, 3600),
              "How far back the nbf claim of the JWT assertion goes."),
    ConfigKey("sasl.oauthbearer.assertion.claim.sub", _STR, None, None,
              "sub claim of the JWT assertion."),
    ConfigKey("sasl.oauthbearer.assertion.file", _STR, None, None,
              "File with a ready-made JWT assertion."),
    ConfigKey("sasl.oauthbearer.assertion.private.key.file", _STR, None, None,
              "File with the private key that signs the JWT assertion."),
    ConfigKey("sasl.oauthbearer.assertion.private.key.passphrase", _PW, None, None,
              "Passphrase of the assertion's private key."),
    ConfigKey("sasl.oauthbearer.assertion.template.file", _STR, None, None,
              "File with a template of the JWT assertion's header and claims."),
    ConfigKey("sasl.oauthbearer.scope.claim.name", _STR, "scope", None,
              "Name of the scope claim in the token."),
    ConfigKey("sasl.oauthbearer.sub.claim.name", _STR, "sub", None,
              "Name of the subject claim in the token."),
    ConfigKey("sasl.oauthbearer.jwks.endpoint.url", _STR, None, None,
              "URL of the JWKS endpoint to verify tokens."),
    ConfigKey("sasl.oauthbearer.jwks.endpoint.refresh.ms", _LONG, 3600000, None,
              "How often to refresh the JWKS keys."),
    ConfigKey("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", _LONG, 100, None,
              "First wait between JWKS fetch attempts."),
    ConfigKey("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", _LONG, 10000, None,
              "Upper bound of the JWKS fetch backoff."),
    ConfigKey("sasl.oauthbearer.clock.skew.seconds", _INT, 30, None,
              "Clock difference allowed between client and identity provider."),
    ConfigKey("sasl.oauthbearer.expected.audience", _LIST, (), None,
              "Audiences a token must have one of."),
    ConfigKey("sasl.oauthbearer.expected.issuer", _STR, None, None,
              "Issuer a token must have."),
    ConfigKey("sasl.oauthbearer.header.urlencode", _BOOL, False, None,
              "URL-encode the client id and secret in the authorization header."),
)

#: Every producer config by its Java name, in table order.
CONFIG_DEFS: Mapping[str, ConfigKey] = MappingProxyType({k.name: k for k in _KEYS})
_BY_ATTR: dict[str, ConfigKey] = {k.attr: k for k in _KEYS}
#: The defaults, normalized as a user's value would be ("all" -> -1).
_DEFAULT_VALUES: dict[str, Any] = {
    k.name: k.convert(k.default) for k in _KEYS if k.default is not REQUIRED}
_CLASS_TYPES = (Type.CLASS, Type.CLASS_LIST)
_client_id_sequence = itertools.count(1)  # Java PRODUCER_CLIENT_ID_SEQUENCE


def _close_matches(word: str) -> list[str]:
    matches = difflib.get_close_matches(word, list(CONFIG_DEFS), n=3, cutoff=0.6)
    dotted = word.replace("_", ".")
    if dotted in CONFIG_DEFS and dotted not in matches:
        matches = [dotted, *matches[:2]]
    return matches


def _unknown_message(key: str) -> str:
    matches = _close_matches(key)
    if matches:
        quoted = [repr(m) for m in matches]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        return f"did you mean {listed}?"
    return "no producer config has a similar name (see fastprod.config.CONFIG_DEFS)"


_SECRET_WORDS = re.compile(r"pass|secret|jaas|token|credential", re.IGNORECASE)


def _unknown(key: str, value: Any, how: str = "") -> ConfigError:
    """ConfigError for an unknown key; the value is hidden if the key looks secret."""
    secret = (isinstance(value, Password) or bool(_SECRET_WORDS.search(key))
              or any(CONFIG_DEFS[m].type is Type.PASSWORD for m in _close_matches(key)))
    shown = repr(Password.HIDDEN) if secret else repr(value)
    return ConfigError(f"unknown config {key!r}{how} = {shown} — {_unknown_message(key)}")


# --------------------------------------------------------------------------------------
# Cross-field rules: Java's ProducerConfig.postProcessParsedConfig and
# KafkaProducer.configureDeliveryTimeout, in Java's order, in one place.
# --------------------------------------------------------------------------------------


def _apply_cross_field_rules(values: dict[str, Any], user_set: frozenset[str]) -> None:
    """Check and adjust ``values`` (parsed, defaults filled) in place."""
    # CommonClientConfigs.postValidateSaslMechanismConfig
    if values["security.protocol"] in ("SASL_PLAINTEXT", "SASL_SSL") and not values[
            "sasl.mechanism"]:
        raise ConfigError(
            f"invalid value {values['sasl.mechanism']!r} for config 'sasl.mechanism': "
            f"security.protocol={values['security.protocol']} needs a SASL mechanism "
            "such as 'PLAIN', 'SCRAM-SHA-512' or 'OAUTHBEARER'")

    _check_security(values, user_set)

    # CommonClientConfigs.warnDisablingExponentialBackoff
    for low, high in (("retry.backoff.ms", "retry.backoff.max.ms"),
                      ("socket.connection.setup.timeout.ms",
                       "socket.connection.setup.timeout.max.ms")):
        if values[low] > values[high]:
            log.warning("%s=%d is greater than %s=%d: a static value of %d ms will be used",
                        low, values[low], high, values[high], values[high])

    # CommonClientConfigs.postProcessReconnectBackoffConfigs
    if "reconnect.backoff.ms" in user_set and "reconnect.backoff.max.ms" not in user_set:
        log.warning("exponential reconnect backoff disabled: reconnect.backoff.ms is set "
                    "but reconnect.backoff.max.ms is not")
        values["reconnect.backoff.max.ms"] = values["reconnect.backoff.ms"]

    _apply_idempotence_rules(values, user_set)

    # ProducerConfig.maybeOverrideClientId
    if "client.id" not in user_set:
        txn = values["transactional.id"]
        values["client.id"] = f"producer-{txn if txn is not None else next(_client_id_sequence)}"

    # KafkaProducer.configureDeliveryTimeout (linger.ms is capped to an int, as in Java)
    linger_and_request = min(min(values["linger.ms"], INT_MAX) + values["request.timeout.ms"],
                             INT_MAX)
    if values["delivery.timeout.ms"] < linger_and_request:
        if "delivery.timeout.ms" in user_set:
            raise ConfigError(
                f"invalid value {values['delivery.timeout.ms']} for config "
                f"'delivery.timeout.ms': expected at least linger.ms + request.timeout.ms "
                f"= {values['linger.ms']} + {values['request.timeout.ms']} = "
                f"{linger_and_request}")
        log.warning("delivery.timeout.ms should be at least linger.ms + request.timeout.ms; "
                    "setting it to %d", linger_and_request)
        values["delivery.timeout.ms"] = linger_and_request

    # fastprod's sasl.username / sasl.password
    has_user, has_password = values["sasl.username"] is not None, values[
        "sasl.password"] is not None
    if has_user != has_password:
        given, missing = (("sasl.username", "sasl.password") if has_user
                          else ("sasl.password", "sasl.username"))
        raise ConfigError(f"config {given!r} is set but {missing!r} is not: "
                          "give both, or use sasl.jaas.config")
    if has_user and values["sasl.jaas.config"] is not None:
        raise ConfigError("configs 'sasl.username'/'sasl.password' and 'sasl.jaas.config' "
                          "are both set: give the credentials one way only")


_warned_security: set[tuple[str, str]] = set()  # (key, protocol): warned once per process


def _check_security(values: dict[str, Any], user_set: frozenset[str]) -> None:
    """Keys security.protocol never reads are logged once (Java ignores them silently,
    which hides a forgotten security.protocol). The mechanism itself (GSSAPI is not
    supported) is checked when a producer is built (fastprod.cluster.sasl), so that a
    config can still be read and shown."""
    proto = values["security.protocol"]
    sasl = proto in ("SASL_PLAINTEXT", "SASL_SSL")
    tls = proto in ("SSL", "SASL_SSL")
    unused = sorted(k for k in user_set if (k.startswith("ssl.") and not tls)
                    or (k.startswith("sasl.") and not sasl))
    for key in unused:
        if (key, proto) not in _warned_security:
            _warned_security.add((key, proto))
            log.warning("config %r is set but security.protocol=%s does not use it", key,
                        proto)


def _apply_idempotence_rules(values: dict[str, Any], user_set: frozenset[str]) -> None:
    """ProducerConfig.postProcessAndValidateIdempotenceConfigs of Kafka 4.3.1."""
    explicit = "enable.idempotence" in user_set
    idempotent = values["enable.idempotence"]
    disable = False
    if idempotent:
        how = "enable.idempotence=True" if explicit else "idempotence (on by default)"
        if values["retries"] == 0:
            if explicit:
                raise ConfigError(
                    "invalid value 0 for config 'retries' with enable.idempotence=True: "
                    "expected at least 1; the idempotent producer must be able to retry")
            log.info("idempotence disabled because retries is 0")
            disable = True
        if values["acks"] != -1:
            if explicit:
                raise ConfigError(
                    f"invalid value {values['acks']} for config 'acks' with "
                    "enable.idempotence=True: expected 'all' (-1); idempotence needs every "
                    "in-sync replica to acknowledge")
            log.info("idempotence disabled because acks is %d, not 'all'", values["acks"])
            disable = True
        inflight = values["max.in.flight.requests.per.connection"]
        if inflight > MAX_IN_FLIGHT_FOR_IDEMPOTENCE:
            # Since Kafka 4.0 this is an error even when idempotence was not set explicitly.
            raise ConfigError(
                f"invalid value {inflight} for config 'max.in.flight.requests.per.connection'"
                f" with {how}: expected at most {MAX_IN_FLIGHT_FOR_IDEMPOTENCE}; set "
                "enable.idempotence=False to allow more")
    if disable:
        values["enable.idempotence"] = idempotent = False

    if not idempotent and "transactional.id" in user_set:
        raise ConfigError(
            f"config 'transactional.id' = {values['transactional.id']!r} needs idempotence, "
            "which is off (enable.idempotence=False, acks other than 'all', or retries=0)")
    if values["transaction.two.phase.commit.enable"] and "transaction.timeout.ms" in user_set:
        raise ConfigError(
            "config 'transaction.timeout.ms' cannot be set with "
            "transaction.two.phase.commit.enable=True: such transactions never time out")


# --------------------------------------------------------------------------------------
# ProducerConfig
# --------------------------------------------------------------------------------------


class ProducerConfig(Mapping[str, Any]):
    """Validated, immutable producer configuration.

    Read a value as an attribute with underscores (``cfg.batch_size``) or by its Java
    name (``cfg["batch.size"]``); it is also a read-only ``Mapping`` over Java names.
    """

    __slots__ = ("_originals", "_values")
    _values: dict[str, Any]  # effective value of every key, by Java name
    _originals: Mapping[str, Any]  # what the user gave, by Java name

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if isinstance(config, ProducerConfig):
            config = config.originals
        elif config is not None and not isinstance(config, Mapping):
            raise ConfigError(
                f"config must be a mapping (dict) of Java config names to values, e.g. "
                f"{{'bootstrap.servers': 'localhost:9092'}}, or None; not "
                f"{type(config).__name__}")
        given: dict[str, Any] = {}
        for key, value in (config or {}).items():
            if not isinstance(key, str):
                raise ConfigError(f"config keys must be strings, got {key!r}")
            if key not in CONFIG_DEFS:
                raise _unknown(key, value)
            given[key] = value
        for attr, value in kwargs.items():
            definition = _BY_ATTR.get(attr)
            if definition is None:
                raise _unknown(attr.replace("_", "."), value, f" (keyword {attr})")
            if definition.name in given:
                raise ConfigError(
                    f"config {definition.name!r} is given twice: in the mapping and as the "
                    f"keyword {attr}")
            given[definition.name] = value

        values: dict[str, Any] = {}
        for definition in _KEYS:
            if definition.name in given:
                values[definition.name] = definition.convert(given[definition.name])
            elif definition.default is REQUIRED:
                raise ConfigError(
                    f"missing required config {definition.name!r} ({definition.attr}=...): "
                    f"{definition.doc}")
            else:
                values[definition.name] = _DEFAULT_VALUES[definition.name]
        _apply_cross_field_rules(values, frozenset(given))

        originals = {k: (Password(v) if CONFIG_DEFS[k].type is Type.PASSWORD
                         and isinstance(v, str) else v) for k, v in given.items()}
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_originals", MappingProxyType(originals))

    # --- reading ---------------------------------------------------------------------

    def __getattr__(self, attr: str) -> Any:
        definition = _BY_ATTR.get(attr)
        if definition is None or attr.startswith("_"):
            matches = difflib.get_close_matches(attr, list(_BY_ATTR), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(matches)}?" if matches else ""
            raise AttributeError(f"ProducerConfig has no config {attr!r}{hint}")
        return self._values[definition.name]

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"unknown config {key!r} — {_unknown_message(key)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def originals(self) -> Mapping[str, Any]:
        """What the user passed, by Java name (secrets wrapped in Password)."""
        return self._originals

    def is_user_set(self, key: str) -> bool:
        """Whether ``key`` (a Java name) was given, rather than taken from the default."""
        if key not in CONFIG_DEFS:
            raise ConfigError(f"unknown config {key!r} — {_unknown_message(key)}")
        return key in self._originals

    def as_dict(self) -> dict[str, Any]:
        """Every effective value by Java name (a new dict; secrets stay in Password)."""
        return dict(self._values)

    @property
    def bootstrap_addresses(self) -> tuple[tuple[str, int], ...]:
        """bootstrap.servers as (host, port) pairs."""
        return tuple(parse_bootstrap_server(s) for s in self._values["bootstrap.servers"])

    def resolve(self, key: str) -> Any:
        """Import the class(es) named by a class-valued key ("module:Name" or dotted path).

        Classes and callables are returned as given, and None stays None. Serializer keys
        are not resolved here: fastprod.serializers knows their names.
        """
        definition = CONFIG_DEFS.get(key)
        if definition is None or definition.type not in _CLASS_TYPES:
            raise ConfigError(f"config {key!r} does not name classes; resolve() takes one of "
                              + ", ".join(k.name for k in _KEYS if k.type in _CLASS_TYPES))
        value = self._values[key]
        if definition.type is Type.CLASS_LIST:
            return tuple(_import_object(key, item) for item in value)
        return None if value is None else _import_object(key, value)

    # --- immutability and display --------------------------------------------------

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError("ProducerConfig is immutable; build a new one instead")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError("ProducerConfig is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        # The values were validated already: restore them as they are (same client.id).
        return (_restore, (self._values, dict(self._originals)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k!r}: {self._values[k]!r}" for k in self._originals)
        return f"ProducerConfig({{{shown}}})"

    __str__ = __repr__


def _restore(values: dict[str, Any], originals: dict[str, Any]) -> ProducerConfig:
    """Unpickle a ProducerConfig without validating it again."""
    config = ProducerConfig.__new__(ProducerConfig)
    object.__setattr__(config, "_values", dict(values))
    object.__setattr__(config, "_originals", MappingProxyType(dict(originals)))
    return config


def import_module_attr(spec: str, key: str) -> Any:
    """The object named by ``"module:Name"`` (Name may be dotted) for config ``key``;
    ConfigError naming the key and what went wrong. Shared by the serializer and
    partitioner resolvers, which take only this form."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise ConfigError(f"{key}: {spec!r} is not of the form 'module:Name'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{key}: cannot import module {module_name!r} "
                          f"(from {spec!r}): {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{key}: module {module_name!r} has no attribute "
                              f"{attr_path!r} (from {spec!r})") from None
    return obj


def _import_object(key: str, spec: Any) -> Any:
    """A class or callable named by "module:Name" or "package.module.Name"."""
    if not isinstance(spec, str):
        return spec
    module_name, sep, attr_path = spec.partition(":")
    if not sep:
        module_name, _, attr_path = spec.rpartition(".")
    if spec.startswith("org.apache.kafka."):
        raise ConfigError(f"config {key!r} = {spec!r} names a Java class, which has no "
                          "Python counterpart: give a Python class or 'module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"config {key!r} = {spec!r} cannot be imported: {exc}") from None
    return obj
