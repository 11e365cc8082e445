"""Independent readers for the integration tests: what did the broker really store?

Two consumers that share no code with fastprod, both returning ``list[Record]`` in the
order they read (sort with ``by_partition_offset`` to compare):

- ``java_read``: Kafka's own ``KafkaConsumer<byte[], byte[]>`` from the same 4.3.1 jars
  the broker runs (``tests/java/ConsumeAll.java``, compiled once per session, one JVM per
  read), isolation.level read_uncommitted or read_committed; ``client_config`` (Java
  keys, e.g. ``kafka_secure.client_config("SASL_SSL", "SCRAM-SHA-512")``) reads over a
  secured listener;
- ``confluent_read``: confluent-kafka's ``Consumer`` (librdkafka), same options.

Both read every partition of a topic from the beginning and stop once they hold at least
``expected`` records and have reached the end offset of every partition (so records
beyond ``expected`` are seen too), or when ``idle_timeout`` seconds pass with no new
record, or after ``max_time`` seconds.

And one look below the consumer API: ``dump_batches`` runs Kafka's ``DumpLogSegments``
on a broker's log directory and returns the record batches as written (base/last offset,
count, codec, producer id, sizes), to see where batches begin and end.
"""

from __future__ import annotations

import atexit
import base64
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

JAVA_DIR = Path(__file__).resolve().parent / "java"
CONSUMER_CLASS = "ConsumeAll"

CREATE_TIME = "CREATE_TIME"
LOG_APPEND_TIME = "LOG_APPEND_TIME"


class Record(NamedTuple):
    """One record as a consumer saw it; the same shape from every reader."""

    partition: int
    offset: int
    timestamp: int
    timestamp_type: str  # CREATE_TIME or LOG_APPEND_TIME (Java's TimestampType names)
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


class ReadError(RuntimeError):
    """A reader failed (the JVM exited non-zero, librdkafka reported an error)."""


def by_partition_offset(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.partition, r.offset))


# ---- the Java consumer -------------------------------------------------------------------


@dataclass(frozen=True)
class _JavaConsumer:
    classpath: str
    log4j_file: str


@functools.lru_cache(maxsize=None)
def _java_consumer() -> _JavaConsumer:
    """Compile tests/java/ConsumeAll.java once per session."""
    from fastprod import localkafka
    from fastprod.localkafka.config import tool_log4j2_xml

    if shutil.which("javac") is None and shutil.which("java") is None:
        raise ReadError("a JDK (java and javac on PATH) is needed for the Java reader")
    kafka_cp = localkafka.classpath()
    classdir = tempfile.mkdtemp(prefix="fastprod-readers-")
    atexit.register(shutil.rmtree, classdir, ignore_errors=True)
    proc = subprocess.run(
        ["javac", "-nowarn", "-d", classdir, "-cp", kafka_cp,
         str(JAVA_DIR / f"{CONSUMER_CLASS}.java")],
        capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise ReadError(f"javac {CONSUMER_CLASS}.java failed:\n{proc.stdout}\n{proc.stderr}")
    log4j = Path(classdir) / "log4j2.xml"
    log4j.write_text(tool_log4j2_xml())  # client logs: warnings to stderr only
    # Kafka's jars first, so the broker's class-data-sharing archive (same classpath
    # prefix) applies to this JVM too.
    return _JavaConsumer(kafka_cp + os.pathsep + classdir, str(log4j))


# Keys ConsumeAll sets itself: a client_config may not change what is read or how.
_FIXED_CONSUMER_KEYS = frozenset({
    "bootstrap.servers", "key.deserializer", "value.deserializer", "enable.auto.commit",
    "isolation.level", "max.poll.records", "check.crcs", "client.id"})
_OAUTH_URL_KEYS = ("sasl.oauthbearer.token.endpoint.url", "sasl.oauthbearer.jwks.endpoint.url")
_ALLOWED_URLS_PROPERTY = "org.apache.kafka.sasl.oauthbearer.allowed.urls"


def _properties_text(config: dict[str, str]) -> str:
    """java.util.Properties text: backslashes and newlines escaped, and = : space in keys."""
    def esc(text: str, key: bool) -> str:
        out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        if key:
            out = out.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ")
        return out
    return "".join(f"{esc(k, True)}={esc(str(v), False)}\n" for k, v in config.items())


def java_read(bootstrap: str, topic: str, expected: int = -1, *,
              isolation: str = "read_uncommitted", idle_timeout: float = 10.0,
              max_time: float = 120.0,
              client_config: dict[str, str] | None = None) -> list[Record]:
    """Read ``topic`` with the Java KafkaConsumer (one JVM); see the module doc.

    ``client_config``: more Java consumer settings (security.protocol, ssl.*, sasl.*);
    its bootstrap.servers, if any, must agree with ``bootstrap``. OAuth URLs in it are
    added to Kafka 4's allowed-URLs system property for that JVM."""
    from fastprod.localkafka import cds, java_executable

    if isolation not in ("read_uncommitted", "read_committed"):
        raise ValueError(f"isolation must be read_uncommitted or read_committed, "
                         f"not {isolation!r}")
    extra = dict(client_config or {})
    if extra.get("bootstrap.servers", bootstrap) != bootstrap:
        raise ValueError(f"client_config bootstrap.servers {extra['bootstrap.servers']!r} "
                         f"is not {bootstrap!r}")
    extra.pop("bootstrap.servers", None)
    fixed = sorted(_FIXED_CONSUMER_KEYS & extra.keys())
    if fixed:
        raise ValueError(f"java_read sets {fixed} itself; leave them out of client_config")
    jc = _java_consumer()
    jvm_props = []
    urls = [extra[k] for k in _OAUTH_URL_KEYS if k in extra]
    if urls:
        jvm_props.append(f"-D{_ALLOWED_URLS_PROPERTY}={','.join(urls)}")
    cmd = [java_executable(), "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           "-XX:-UsePerfData", *cds.use_args(), f"-Dlog4j2.configurationFile={jc.log4j_file}",
           *jvm_props, "-cp", jc.classpath, CONSUMER_CLASS, bootstrap, topic, str(expected),
           str(int(idle_timeout * 1000)), str(int(max_time * 1000)), isolation]
    props_file = None
    if extra:
        # A file, not the command line: the settings hold passwords (0600, removed after).
        fd, props_file = tempfile.mkstemp(prefix="fastprod-consumer-", suffix=".properties")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_properties_text(extra))
        cmd.append(props_file)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=max_time + 60, check=False)
    finally:
        if props_file is not None:
            os.unlink(props_file)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise ReadError(f"java {CONSUMER_CLASS} {topic} exited {proc.returncode}:\n{stderr}")
    records = [_from_json(line) for line in proc.stdout.splitlines() if line]
    done = [line for line in stderr.splitlines() if line.startswith("DONE ")]
    if not done or int(done[-1].split()[1]) != len(records):
        raise ReadError(f"java {CONSUMER_CLASS} output is incomplete ({len(records)} "
                        f"records parsed):\n{stderr}")
    return records


def _b64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


def _from_json(line: bytes) -> Record:
    d = json.loads(line)
    return Record(d["p"], d["o"], d["ts"], d["tt"], _b64(d["k"]), _b64(d["v"]),
                  tuple((k, _b64(v)) for k, v in d["h"]))


# ---- librdkafka (confluent-kafka) ----------------------------------------------------------


def confluent_read(bootstrap: str, topic: str, expected: int = -1, *,
                   isolation: str = "read_uncommitted", idle_timeout: float = 10.0,
                   max_time: float = 120.0) -> list[Record]:
    """Read ``topic`` with confluent-kafka's Consumer (librdkafka); see the module doc."""
    return confluent_read_topics(bootstrap, [topic], expected, isolation=isolation,
                                 idle_timeout=idle_timeout, max_time=max_time)[topic]


def confluent_read_topics(bootstrap: str, topics: list[str], expected: int = -1, *,
                          isolation: str = "read_uncommitted", idle_timeout: float = 10.0,
                          max_time: float = 120.0) -> dict[str, list[Record]]:
    """``confluent_read`` of several topics with one consumer (``expected``: records in
    all of them), which saves librdkafka's start-up per topic."""
    from confluent_kafka import (
        OFFSET_BEGINNING,
        TIMESTAMP_CREATE_TIME,
        TIMESTAMP_LOG_APPEND_TIME,
        Consumer,
        KafkaException,
        TopicPartition,
    )

    if isolation not in ("read_uncommitted", "read_committed"):
        raise ValueError(f"isolation must be read_uncommitted or read_committed, "
                         f"not {isolation!r}")
    ts_types = {TIMESTAMP_CREATE_TIME: CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME: LOG_APPEND_TIME}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"fastprod-test-{uuid.uuid4().hex}",  # never joined: we assign()
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "isolation.level": isolation,
        "check.crcs": True,
        "client.id": "fastprod-test-confluent-read",
    })
    start = time.monotonic()
    try:
        assignment = []
        positions: dict[tuple[str, int], int] = {}
        for topic in topics:
            md = consumer.list_topics(topic, timeout=max_time)
            tmd = md.topics.get(topic)
            if tmd is None or tmd.error is not None:
                raise ReadError(f"librdkafka: no metadata for topic {topic!r}: "
                                f"{tmd.error if tmd else 'missing'}")
            for p in sorted(tmd.partitions):
                assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
                positions[(topic, p)] = 0
        consumer.assign(assignment)
        records: dict[str, list[Record]] = {topic: [] for topic in topics}
        count = 0
        last_data = time.monotonic()
        while True:
            batch = consumer.consume(num_messages=10000, timeout=0.1)
            now = time.monotonic()
            for m in batch:
                err = m.error()
                if err is not None:
                    raise ReadError(f"librdkafka: {err}")
                ts_type, ts = m.timestamp()
                records[m.topic()].append(Record(
                    m.partition(), m.offset(), ts, ts_types.get(ts_type, str(ts_type)),
                    m.key(), m.value(), tuple(m.headers() or ())))
                positions[(m.topic(), m.partition())] = m.offset() + 1
            count += len(batch)
            if batch:
                last_data = now
            if 0 <= expected <= count and _confluent_at_end(consumer, bootstrap, positions):
                return records
            if now - last_data >= idle_timeout or now - start >= max_time:
                return records
    except KafkaException as e:
        raise ReadError(f"librdkafka: {e}") from e
    finally:
        consumer.close()


def _confluent_at_end(consumer, bootstrap: str, positions: dict[tuple[str, int], int]) -> bool:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    # One ListOffsets round for every partition (get_watermark_offsets asks one at a time).
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest()
                                  for topic, p in positions}, request_timeout=10)
    for tp, future in futures.items():
        high = future.result().offset
        if positions[(tp.topic, tp.partition)] < high:
            # read_committed: the high watermark can sit past a commit marker we never
            # see as a record, so also accept the consumer's own position there.
            own = consumer.position([TopicPartition(tp.topic, tp.partition)])[0].offset
            if own < high:
                return False
    return True


# ---- raw batches as stored on disk (DumpLogSegments) ---------------------------------------


class Batch(NamedTuple):
    """One record batch as DumpLogSegments prints it."""

    base_offset: int
    last_offset: int
    count: int
    base_sequence: int
    last_sequence: int
    producer_id: int
    producer_epoch: int
    is_transactional: bool
    is_control: bool
    codec: str
    size: int
    max_timestamp: int | None
    timestamp_type: str | None  # CreateTime or LogAppendTime


_BATCH_LINE = re.compile(r"^baseOffset: ")
_FIELD = re.compile(r"(\w+): (\S+)")


def dump_batches(data_dir: str | os.PathLike[str], topic: str, partition: int) -> list[Batch]:
    """Every batch in the log segments of ``topic``-``partition`` under a broker's log dir
    (``kafka.nodes[i].spec.data_dir``), via ``org.apache.kafka.tools.DumpLogSegments``."""
    from fastprod.localkafka import run_tool
    from fastprod.localkafka.config import tool_log4j2_xml

    pdir = Path(data_dir) / f"{topic}-{partition}"
    segments = sorted(str(p) for p in pdir.glob("*.log"))
    if not segments:
        raise ReadError(f"no log segments in {pdir}")
    log4j = Path(_java_consumer().log4j_file)
    if not log4j.exists():
        log4j.write_text(tool_log4j2_xml())
    proc = run_tool("org.apache.kafka.tools.DumpLogSegments",
                    ["--files", ",".join(segments)], log4j_file=log4j)
    if proc.returncode != 0:
        raise ReadError(f"DumpLogSegments {pdir} exited {proc.returncode}:\n{proc.stdout}")
    batches = []
    for line in proc.stdout.splitlines():
        if not _BATCH_LINE.match(line):
            continue
        f = dict(_FIELD.findall(line))
        ts_type = next((t for t in ("CreateTime", "LogAppendTime") if f"{t}:" in line), None)
        batches.append(Batch(
            int(f["baseOffset"]), int(f["lastOffset"]), int(f["count"]),
            int(f["baseSequence"]), int(f["lastSequence"]), int(f["producerId"]),
            int(f["producerEpoch"]), f["isTransactional"] == "true",
            f["isControl"] == "true", f["compresscodec"], int(f["size"]),
            int(f[ts_type]) if ts_type else None, ts_type))
    return batches
