"""``fastprod ingest``: generate N JSON events, produce them with fastprod, read them back.

The main command of the demo (``./run-demo``). ``run_ingest(options, reporter)``:

1. without ``options.bootstrap``, starts a one-node local Kafka (``LocalKafka``) and stops
   it at the end, also on Ctrl-C or an error;
2. creates the topic (or uses an existing one) and notes its end offsets;
3. produces ``options.records`` small JSON events (``EventGenerator``, ~``value_size``
   bytes each) with ``Producer.send_batch`` in chunks (or ``send()`` per record), timing
   the produce phase from the first send to the completion of ``flush()``;
4. asks an independent reader (kafka-python's KafkaConsumer if installed, else Kafka's
   own Java tools from the broker jars) how many records the topic gained, and with
   ``verify="full"`` reads them all back and compares every key and value byte for byte
   with what was generated.

Library code: it logs under ``fastprod.ingest`` and prints nothing. What a user sees
(progress bar, summary lines) goes through the ``Reporter`` the caller passes in; the
CLI passes a ``ConsoleReporter``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

log = logging.getLogger("fastprod.ingest")

MODES = ("batch", "send")
VERIFY_LEVELS = ("none", "count", "full")
READERS = ("auto", "kafka-python", "java")
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")

MB = 1_000_000  # MB/s figures are decimal megabytes of value bytes


class IngestError(RuntimeError):
    """The run could not be carried out (no reader for the check, bad topic, ...)."""


# ---- options and results ---------------------------------------------------------------------


@dataclass
class IngestOptions:
    records: int = 1_000_000
    bootstrap: str | None = None  # None: start a local one-node Kafka for the run
    topic: str | None = None  # None: a new topic named fastprod-ingest-<time>-<random>
    partitions: int = 6  # for a topic we create
    replication_factor: int | None = None  # None: 1 locally, the broker's default otherwise
    compression: str = "lz4"
    value_size: int = 100  # approximate size of each JSON value in bytes
    keyed: bool = False  # key every record with its user id (murmur2 partitioning)
    mode: str = "batch"  # batch: send_batch per chunk; send: send() per record
    chunk_size: int = 10_000  # records per generated chunk / send_batch call
    verify: str = "count"  # none | count (end offsets) | full (read everything back)
    reader: str = "auto"  # auto | kafka-python | java
    producer_config: dict[str, Any] = field(default_factory=dict)  # extra Java-style configs
    seed: int = 1  # the event generator's seed
    verify_timeout: float = 60.0  # seconds without progress before a full read gives up

    def validate(self) -> None:
        if self.records < 1:
            raise ValueError(f"records must be >= 1, got {self.records}")
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be >= 1, got {self.chunk_size}")
        if self.value_size < 1:
            raise ValueError(f"value size must be >= 1, got {self.value_size}")
        for name, value, allowed in (("mode", self.mode, MODES), ("verify", self.verify, VERIFY_LEVELS),
                                     ("reader", self.reader, READERS)):  # fmt: skip
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass
class ProduceStats:
    topic: str
    records: int  # records handed to the producer
    value_bytes: int
    seconds: float  # first send to flush() complete
    generate_seconds: float  # of which spent generating events
    delivered: int = 0
    failed: int = 0
    first_error: BaseException | None = None
    mode: str = "batch"
    compression: str = "lz4"
    chunk_size: int = 0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")

    @property
    def mb_per_second(self) -> float:
        return self.value_bytes / MB / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class VerifyResult:
    level: str  # count | full
    reader: str  # how we looked: "kafka-python", "Java GetOffsetShell", ...
    expected: int
    found: int  # records the topic gained (count) or records read back (full)
    per_partition: dict[int, int] = field(default_factory=dict)
    missing: int = 0  # full only: ids never seen
    duplicates: int = 0  # full only: ids seen more than once
    mismatched: int = 0  # full only: key or value differs from what was generated
    foreign: int = 0  # full only: records that are not ours (unparseable id, out of range)

    @property
    def ok(self) -> bool:
        return (self.found == self.expected and not self.missing and not self.duplicates
                and not self.mismatched and not self.foreign)  # fmt: skip


@dataclass
class IngestResult:
    bootstrap: str
    topic: str
    local_broker: bool
    produce: ProduceStats
    verify: VerifyResult | None

    @property
    def ok(self) -> bool:
        return self.produce.failed == 0 and (self.verify is None or self.verify.ok)


# ---- reporting -------------------------------------------------------------------------------


class Reporter:
    """What ``run_ingest`` tells its caller. The base class ignores everything."""

    def progress_start(self, label: str, total: int) -> None:
        """A phase with a progress bar begins (``produce``, ``read back``)."""

    def progress(self, done: int) -> None:
        """Called a few times per second from a helper thread while a phase runs."""

    def progress_end(self, done: int) -> None:
        """The phase ended (also on an error or Ctrl-C)."""

    def produced(self, stats: ProduceStats) -> None:
        """The produce phase is over (before the read-back)."""

    def verified(self, result: VerifyResult) -> None:
        """The independent reader's verdict."""


def _fmt_int(n: float) -> str:
    return f"{int(n):,}"


def _fmt_rate(records: int, seconds: float) -> str:
    return _fmt_int(records / seconds) if seconds > 0 else "-"


class ProgressBar:
    """A one-line progress bar: percentage, records, records/s.

    On a terminal it redraws one line in place at most every ``interval`` seconds. On
    anything else (a pipe, a CI log) it writes a plain line every ``line_interval``
    seconds instead, so logs stay readable. ``clock`` is injectable for tests.
    """

    WIDTH = 28

    def __init__(self, label: str, total: int, stream: TextIO, *, tty: bool | None = None,
                 interval: float = 0.2, line_interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.label = label
        self.total = max(total, 0)
        self.stream = stream
        if tty is None:
            isatty = getattr(stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.interval = interval if tty else line_interval
        self.clock = clock
        self.started = clock()
        self._last_draw = self.started
        self._drawn = False  # a TTY line is on screen
        self._last_done = -1  # the count of the last line written
        self._closed = False
        self._lock = threading.Lock()

    def text(self, done: int, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        pct = 100.0 * done / self.total if self.total else 100.0
        rate = _fmt_rate(done, elapsed)
        counts = f"{_fmt_int(done)}/{_fmt_int(self.total)} records"
        if not self.tty:
            return f"{self.label}: {pct:5.1f}%  {counts}  {rate} records/s  {elapsed:.1f}s"
        filled = int(self.WIDTH * min(done, self.total) / self.total) if self.total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        return f"{self.label} [{bar}] {pct:5.1f}%  {counts}  {rate} rec/s  {elapsed:.1f}s"

    def update(self, done: int, *, force: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            now = self.clock()
            if not force and now - self._last_draw < self.interval:
                return
            self._last_draw = now
            self._write(done, now)

    def _write(self, done: int, now: float) -> None:
        self._last_done = done
        if self.tty:
            self.stream.write("\r" + self.text(done, now) + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(self.text(done, now) + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the bar line (before someone else writes to the terminal); the next
        update draws it again."""
        with self._lock:
            if self.tty and self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._drawn = False

    def close(self, done: int) -> None:
        """Draw the final state and end the line."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.tty or done != self._last_done:  # a plain log needs no repeated line
                self._write(done, self.clock())
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()


class _ClearBar(logging.Filter):
    """Attached to the log handlers while a bar is on screen: erase it before a log line."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__()
        self.bar = bar

    def filter(self, record: logging.LogRecord) -> bool:
        self.bar.clear()
        return True


class ConsoleReporter(Reporter):
    """The CLI's reporter: progress bars on ``err`` (stderr), results on ``out`` (stdout)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 tty: bool | None = None) -> None:  # fmt: skip
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.tty = tty
        self._bar: ProgressBar | None = None
        self._filter: _ClearBar | None = None

    def progress_start(self, label: str, total: int) -> None:
        self._bar = ProgressBar(label, total, self.err, tty=self.tty)
        if self._bar.tty:
            self._filter = _ClearBar(self._bar)
            for h in logging.getLogger().handlers:
                h.addFilter(self._filter)

    def progress(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done)

    def progress_end(self, done: int) -> None:
        if self._filter is not None:
            for h in logging.getLogger().handlers:
                h.removeFilter(self._filter)
            self._filter = None
        if self._bar is not None:
            self._bar.close(done)
            self._bar = None

    def _print(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def produced(self, s: ProduceStats) -> None:
        how = (f"send_batch x {_fmt_int(s.chunk_size)}" if s.mode == "batch" else "send() per record")
        self._print(
            f"produced {_fmt_int(s.records)} records ({s.value_bytes / MB:.1f} MB of values) "
            f"to {s.topic} in {s.seconds:.2f} s: {_fmt_rate(s.records, s.seconds)} records/s, "
            f"{s.mb_per_second:.1f} MB/s  [{how}, compression {s.compression}; "
            f"generating the events took {s.generate_seconds:.2f} s of it]"
        )
        if s.failed:
            self._print(f"delivery FAILED for {_fmt_int(s.failed)} records: {s.first_error!r}")

    def verified(self, v: VerifyResult) -> None:
        if v.level == "count":
            head = f"read back ({v.reader}): the topic gained {_fmt_int(v.found)} records"
        else:
            head = f"read back ({v.reader}): read {_fmt_int(v.found)} records"
        parts = ", ".join(f"{p}: {_fmt_int(n)}" for p, n in sorted(v.per_partition.items()))
        if v.ok:
            what = "count and content confirmed" if v.level == "full" else "count confirmed"
            self._print(f"{head}, {_fmt_int(v.expected)} expected: {what}  (per partition {parts})")
            return
        problems = [f"{_fmt_int(v.expected)} expected"]
        for name in ("missing", "duplicates", "mismatched", "foreign"):
            if getattr(v, name):
                problems.append(f"{_fmt_int(getattr(v, name))} {name}")
        self._print(f"{head}: MISMATCH ({', '.join(problems)})  (per partition {parts})")


# ---- the events ------------------------------------------------------------------------------

_EVENTS = (("page_view", 45), ("click", 25), ("scroll", 9), ("search", 7), ("add_to_cart", 7),
           ("purchase", 4), ("login", 2), ("signup", 1))  # fmt: skip
_PAGES = ("/", "/home", "/search", "/cart", "/checkout", "/account", "/products/{}", "/products/{}",
          "/products/{}", "/category/{}", "/blog/{}", "/help")  # fmt: skip
_DEVICES = ("web", "web", "ios", "android", "desktop")
_COUNTRIES = ("US", "US", "DE", "GB", "FR", "IN", "BR", "JP", "NL", "ES", "CA", "PL", "SE")
_WORDS = ("shoes", "red", "jacket", "usb-c", "cable", "coffee", "mug", "lamp", "desk", "kids",
          "sale", "wool", "socks", "phone", "case", "running", "tent", "book", "gift", "tea")  # fmt: skip
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


class EventGenerator:
    """Deterministic, varied JSON click-stream events of about ``value_size`` bytes.

    ``{"id":17,"ts":1764230400004,"user":"user-4711","event":"click","page":"/products/42",
    "device":"ios",...}``: ``id`` is the record's index (0..N-1), ``ts`` grows with it,
    the rest comes from a pool of pre-built tails (user, event, page, device, country,
    session, and event-specific fields) picked in a pseudo-random order. A value costs
    one bytes-format and one concatenation, so generation stays a small part of the run.
    The same ``seed`` and ``ts_base`` give the same bytes, which is how the full
    read-back checks every value.
    """

    POOL = 4096
    ORDER = 1 << 16

    def __init__(self, value_size: int = 100, *, keyed: bool = False, seed: int = 1,
                 ts_base: int | None = None, records_hint: int = 1_000_000) -> None:  # fmt: skip
        self.value_size = value_size
        self.keyed = keyed
        # Four events per millisecond, the last one about now.
        self.ts_base = int(time.time() * 1000) - (records_hint >> 2) if ts_base is None else ts_base
        rnd = random.Random(seed)
        head = len(self._head(records_hint // 2))
        tails, keys = [], []
        for _ in range(self.POOL):
            user = f"user-{min(int(rnd.expovariate(1 / 4000)), 99_998) + 1}"
            tails.append(self._tail(rnd, user, max(value_size - head, 0)).encode())
            keys.append(user.encode())
        self._tails = tails
        self._keys = keys
        self._order = [rnd.randrange(self.POOL) for _ in range(self.ORDER)]

    def _head(self, i: int) -> bytes:
        return b'{"id":%d,"ts":%d' % (i, self.ts_base + (i >> 2))

    @staticmethod
    def _tail(rnd: random.Random, user: str, target: int) -> str:
        """`,"user":...}` of about ``target`` bytes: required fields, then optional ones
        while they fit, then a padding field if a noticeable gap is left."""
        event = rnd.choices([e for e, _ in _EVENTS], [w for _, w in _EVENTS])[0]
        page = rnd.choice(_PAGES).format(rnd.randint(1, 2000) if rnd.random() < 0.8 else rnd.choice(_WORDS))
        optional: list[tuple[str, object]] = [
            ("page", page),
            ("device", rnd.choice(_DEVICES)),
            ("country", rnd.choice(_COUNTRIES)),
            ("session", f"{rnd.getrandbits(48):012x}"),
        ]
        if event == "purchase":
            optional.insert(1, ("amount", round(rnd.uniform(3, 400), 2)))
            optional.insert(2, ("currency", rnd.choice(("EUR", "USD", "GBP"))))
        elif event == "search":
            optional.insert(1, ("query", " ".join(rnd.sample(_WORDS, rnd.randint(1, 3)))))
        elif event in ("click", "add_to_cart"):
            optional.insert(1, ("item", rnd.randint(1, 50_000)))
        fields: dict[str, object] = {"user": user, "event": event}

        def render(d: dict[str, object]) -> str:
            return "," + json.dumps(d, separators=(",", ":"))[1:]

        for name, value in optional:
            trial = {**fields, name: value}
            if len(render(trial)) > target:
                break
            fields = trial
        gap = target - len(render(fields))
        pad = gap - len(',"ref":""')
        if pad >= 4:
            fields["ref"] = "".join(rnd.choice(_ALNUM) for _ in range(pad))
        return render(fields)

    def value(self, i: int) -> bytes:
        return self._head(i) + self._tails[self._order[i & (self.ORDER - 1)]]

    def key(self, i: int) -> bytes | None:
        return self._keys[self._order[i & (self.ORDER - 1)]] if self.keyed else None

    def chunk(self, start: int, count: int) -> tuple[list[bytes], list[bytes] | None]:
        """Values (and keys, or None) of records ``start .. start+count-1``."""
        tails, order, mask, base = self._tails, self._order, self.ORDER - 1, self.ts_base
        stop = start + count
        values = [b'{"id":%d,"ts":%d%b' % (i, base + (i >> 2), tails[order[i & mask]])
                  for i in range(start, stop)]  # fmt: skip
        if not self.keyed:
            return values, None
        keys_pool = self._keys
        return values, [keys_pool[order[i & mask]] for i in range(start, stop)]


_ID_RE = re.compile(rb'\{"id":(\d+),')


def record_id(value: bytes | None) -> int | None:
    """The ``id`` of an event written by EventGenerator, or None."""
    if value is None:
        return None
    m = _ID_RE.match(value)
    return int(m.group(1)) if m else None


# ---- counting deliveries ---------------------------------------------------------------------


class _Tally:
    """Delivered/failed counts, updated from the sender thread, read by the others."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: BaseException | None = None
        self._cond = threading.Condition()

    @property
    def completed(self) -> int:
        return self.delivered + self.failed

    def add(self, delivered: int, failed: int = 0, error: BaseException | None = None) -> None:
        with self._cond:
            self.delivered += delivered
            self.failed += failed
            if error is not None and self.first_error is None:
                self.first_error = error
            self._cond.notify_all()

    def on_record(self, metadata: object, error: BaseException | None) -> None:
        if error is None:
            self.add(1)
        else:
            self.add(0, 1, error)

    def on_batch(self, future: Any) -> None:
        error = future.exception(0)
        if error is None:
            self.add(len(future))
        else:
            failed = len(future.errors(0))
            self.add(len(future) - failed, failed, error)

    def wait_for(self, total: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.completed >= total, timeout)


@contextlib.contextmanager
def _ticker(reporter: Reporter, label: str, total: int, done: Callable[[], int],
            interval: float = 0.1) -> Iterator[None]:  # fmt: skip
    """Run a progress phase: the reporter gets ``done()`` every ``interval`` seconds."""
    reporter.progress_start(label, total)
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            try:
                reporter.progress(done())
            except Exception:  # noqa: BLE001 - a broken display must not stop the run
                log.debug("progress report failed", exc_info=True)

    thread = threading.Thread(target=run, name="fastprod-ingest-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        reporter.progress_end(done())


# ---- the broker and the topic ----------------------------------------------------------------


def default_topic() -> str:
    return f"fastprod-ingest-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


@contextlib.contextmanager
def _broker(bootstrap: str | None) -> Iterator[tuple[Any, bool]]:
    """(an object with create_topic/metadata, started-by-us) for the run."""
    from fastprod.localkafka import KAFKA_VERSION, ExternalKafka, LocalKafka

    if bootstrap:
        yield ExternalKafka(bootstrap), False
        return
    log.info("starting a local Kafka %s (one KRaft node on 127.0.0.1; use --bootstrap for "
             "your own broker)", KAFKA_VERSION)  # fmt: skip
    with LocalKafka(nodes=1, auto_create_topics=False) as kafka:
        try:
            yield kafka, True
        finally:
            log.info("stopping the local Kafka")


def _prepare_topic(kafka: Any, opts: IngestOptions, topic: str) -> tuple[bool, int]:
    """Create ``topic`` unless it exists; (created, partition count)."""
    md = kafka.metadata([topic])
    t = md.topics.get(topic)
    if t is not None and not t.error_code and t.partitions:
        log.info("topic %s exists with %d partitions; appending to it", topic, len(t.partitions))
        return False, len(t.partitions)
    rf = opts.replication_factor
    if rf is None:
        rf = 1 if hasattr(kafka, "nodes") else -1  # -1: the broker's default.replication.factor
    kafka.create_topic(topic, partitions=opts.partitions, replication_factor=rf, exist_ok=True)
    kafka.wait_for_topic(topic, partitions=opts.partitions)
    log.info("created topic %s with %d partitions", topic, opts.partitions)
    return True, opts.partitions


# ---- producing -------------------------------------------------------------------------------


def _producer_config(opts: IngestOptions, bootstrap: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "compression.type": opts.compression,
        "client.id": "fastprod-ingest",
    }
    cfg.update(opts.producer_config)
    return cfg


def produce(producer: Any, topic: str, gen: EventGenerator, opts: IngestOptions,
            reporter: Reporter) -> ProduceStats:  # fmt: skip
    """Produce ``opts.records`` events; return once every one is delivered or failed."""
    n, chunk = opts.records, opts.chunk_size
    tally = _Tally()
    value_bytes = 0
    gen_seconds = 0.0
    perf = time.perf_counter
    with _ticker(reporter, "producing", n, lambda: tally.completed):
        t0 = perf()
        for start in range(0, n, chunk):
            g0 = perf()
            values, keys = gen.chunk(start, min(chunk, n - start))
            value_bytes += sum(map(len, values))
            gen_seconds += perf() - g0
            if opts.mode == "batch":
                producer.send_batch(topic, values, keys).add_done_callback(tally.on_batch)
            else:
                send, on_record = producer.send, tally.on_record
                if keys is None:
                    for v in values:
                        send(topic, v, on_delivery=on_record)
                else:
                    for v, k in zip(values, keys):
                        send(topic, v, k, on_delivery=on_record)
        producer.flush()
        # flush() returns once the batches are complete; the per-batch callbacks that
        # count them run on the sender thread around the same moment.
        if not tally.wait_for(n, 30.0):
            raise IngestError(f"flush() returned but only {tally.completed} of {n} records "
                              "were reported delivered or failed")  # fmt: skip
        seconds = perf() - t0
    return ProduceStats(
        topic=topic, records=n, value_bytes=value_bytes, seconds=seconds,
        generate_seconds=gen_seconds, delivered=tally.delivered, failed=tally.failed,
        first_error=tally.first_error, mode=opts.mode, compression=opts.compression,
        chunk_size=chunk,
    )  # fmt: skip


# ---- reading back ----------------------------------------------------------------------------


def _have_kafka_python() -> bool:
    try:
        import kafka  # noqa: F401
    except ImportError:
        return False
    return True


def choose_reader(preference: str) -> str:
    """``kafka-python`` or ``java``: the independent reader to check with."""
    from fastprod.localkafka import jars

    if preference == "kafka-python" or (preference == "auto" and _have_kafka_python()):
        if not _have_kafka_python():
            raise IngestError("--reader kafka-python: kafka-python is not installed "
                              "(pip install kafka-python)")  # fmt: skip
        return "kafka-python"
    try:
        jars.java_executable()
    except Exception as e:  # noqa: BLE001
        raise IngestError(f"no independent reader to check the topic with: kafka-python is not "
                          f"installed and Java is not usable ({e}); install one, or pass "
                          f"--no-verify") from e  # fmt: skip
    return "java"


class _KafkaPythonReader:
    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaConsumer

        quiet = logging.getLogger("kafka")  # its warnings are about its own event loop
        if quiet.level == logging.NOTSET and not log.isEnabledFor(logging.DEBUG):
            quiet.setLevel(logging.ERROR)
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
            client_id="fastprod-ingest-check", fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024, request_timeout_ms=60_000,
        )  # fmt: skip

    def close(self) -> None:
        self._consumer.close()

    def end_offsets(self, topic: str, partitions: int) -> dict[int, int]:
        from kafka import TopicPartition

        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: off for tp, off in self._consumer.end_offsets(tps).items()}

    def read(self, topic: str, start: dict[int, int], end: dict[int, int],
             on_record: Callable[[int, bytes | None, bytes | None], None],
             idle_timeout: float) -> None:  # fmt: skip
        from kafka import TopicPartition

        c = self._consumer
        todo = {p for p in end if end[p] > start.get(p, 0)}
        tps = {p: TopicPartition(topic, p) for p in todo}
        c.assign(list(tps.values()))
        for p, tp in tps.items():
            c.seek(tp, start.get(p, 0))
        last = time.monotonic()
        while todo:
            batches = c.poll(timeout_ms=500, max_records=50_000)
            if batches:
                last = time.monotonic()
            for tp, records in batches.items():
                stop = end[tp.partition]
                for r in records:
                    if r.offset < stop:
                        on_record(tp.partition, r.key, r.value)
                if records and records[-1].offset >= stop - 1:
                    todo.discard(tp.partition)
            for p in list(todo):  # compacted/aborted gaps: trust the position
                if c.position(tps[p]) >= end[p]:
                    todo.discard(p)
            if todo and time.monotonic() - last > idle_timeout:
                log.warning("no new records for %.0f s; partitions %s not read to the end",
                            idle_timeout, sorted(todo))  # fmt: skip
                return


class _JavaReader:
    """Kafka's own tools from the broker jars: GetOffsetShell for end offsets, the
    console consumer (one per partition, side by side) for a full read."""

    name = "Java"

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def close(self) -> None:
        pass

    def _command(self, main_class: str, args: Sequence[str]) -> list[str]:
        from fastprod.localkafka import tool_command

        return tool_command(main_class, args)

    def end_offsets(self, topic: str, partitions: int) -> dict[int, int]:
        self.name = "Java GetOffsetShell"
        cmd = self._command("org.apache.kafka.tools.GetOffsetShell", [
            "--bootstrap-server", self.bootstrap, "--topic", topic, "--time", "-1"])  # fmt: skip
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        line_re = re.compile(rf"^{re.escape(topic)}:(\d+):(\d+)$")
        out: dict[int, int] = {}
        for line in proc.stdout.splitlines():
            m = line_re.match(line.strip())
            if m:
                out[int(m.group(1))] = int(m.group(2))
        if proc.returncode != 0 or len(out) < partitions:
            raise IngestError(f"GetOffsetShell failed (exit {proc.returncode}, {len(out)} of "
                              f"{partitions} partitions):\n{proc.stdout}{proc.stderr}")  # fmt: skip
        return out

    def read(self, topic: str, start: dict[int, int], end: dict[int, int],
             on_record: Callable[[int, bytes | None, bytes | None], None],
             idle_timeout: float) -> None:  # fmt: skip
        self.name = "Java console consumer"
        lock = threading.Lock()
        procs: list[tuple[int, subprocess.Popen[bytes]]] = []
        for p in sorted(end):
            count = end[p] - start.get(p, 0)
            if count <= 0:
                continue
            args = ["--bootstrap-server", self.bootstrap, "--topic", topic, "--partition", str(p),
                    "--offset", str(start.get(p, 0)), "--max-messages", str(count),
                    "--timeout-ms", str(int(idle_timeout * 1000)),
                    "--formatter-property", "print.key=true",
                    "--formatter-property", "key.separator=\t"]
            procs.append((p, subprocess.Popen(self._command(
                "org.apache.kafka.tools.consumer.ConsoleConsumer", args),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))

        def pump(p: int, proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                key, _, value = line.rstrip(b"\n").partition(b"\t")
                with lock:
                    on_record(p, None if key == b"null" else key, value)

        threads = [threading.Thread(target=pump, args=pe, daemon=True) for pe in procs]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for p, proc in procs:
                if proc.poll() is None:
                    proc.kill()
                _, err = proc.communicate()
                if proc.returncode != 0:
                    log.warning("console consumer for partition %d exited %d: %s", p,
                                proc.returncode, err.decode(errors="replace")[-2000:])  # fmt: skip


@contextlib.contextmanager
def _reader(kind: str, bootstrap: str) -> Iterator[Any]:
    reader = _KafkaPythonReader(bootstrap) if kind == "kafka-python" else _JavaReader(bootstrap)
    try:
        yield reader
    finally:
        reader.close()


def verify(reader: Any, topic: str, partitions: int, start: dict[int, int], n: int,
           gen: EventGenerator, opts: IngestOptions, reporter: Reporter) -> VerifyResult:  # fmt: skip
    """Check with ``reader`` that the topic gained exactly ``n`` records since ``start``
    (and with ``opts.verify == "full"``, that they are exactly the generated ones)."""
    end = reader.end_offsets(topic, partitions)
    gained = {p: end[p] - start.get(p, 0) for p in sorted(end)}
    count = VerifyResult("count", reader.name, n, sum(gained.values()), gained)
    log.info("end offsets (%s): %s", reader.name, dict(sorted(end.items())))
    if opts.verify != "full":
        return count

    seen = bytearray(n)
    result = VerifyResult("full", "", n, 0, {p: 0 for p in end})

    def on_record(p: int, key: bytes | None, value: bytes | None) -> None:
        result.found += 1
        result.per_partition[p] += 1
        i = record_id(value)
        if i is None or not 0 <= i < n:
            result.foreign += 1
            return
        if seen[i]:
            result.duplicates += 1
            return
        seen[i] = 1
        if value != gen.value(i) or key != gen.key(i):
            result.mismatched += 1

    total = count.found
    with _ticker(reporter, "reading back", total, lambda: result.found):
        reader.read(topic, start, end, on_record, opts.verify_timeout)
    result.reader = reader.name
    result.missing = n - sum(seen)
    return result


# ---- the whole run ---------------------------------------------------------------------------


def run_ingest(opts: IngestOptions, reporter: Reporter | None = None) -> IngestResult:
    """Start (or use) a broker, produce, read back. See the module docstring."""
    from fastprod import Producer

    opts.validate()
    reporter = reporter or Reporter()
    reader_kind = choose_reader(opts.reader) if opts.verify != "none" else None
    topic = opts.topic or default_topic()
    gen = EventGenerator(opts.value_size, keyed=opts.keyed, seed=opts.seed, records_hint=opts.records)
    with _broker(opts.bootstrap) as (kafka, local):
        bootstrap = kafka.bootstrap_servers
        _, partitions = _prepare_topic(kafka, opts, topic)
        start = {p: 0 for p in range(partitions)}
        if reader_kind:
            # Where the topic ends now (it may hold older records). ListOffsets also waits
            # until every partition is really served: metadata names a leader a moment
            # before the new leader accepts writes.
            with _reader(reader_kind, bootstrap) as reader:
                start = reader.end_offsets(topic, partitions)
        # The reader is closed while we produce: kafka-python's IO thread would compete
        # for the GIL.
        producer = Producer(_producer_config(opts, bootstrap))
        try:
            stats = produce(producer, topic, gen, opts, reporter)
        except BaseException:
            producer.close(timeout=0)  # Ctrl-C or an error: don't wait for the queue
            raise
        producer.close()
        reporter.produced(stats)
        log.info("produce: %d delivered, %d failed", stats.delivered, stats.failed)
        checked = None
        if reader_kind:
            with _reader(reader_kind, bootstrap) as reader:
                checked = verify(reader, topic, partitions, start, opts.records, gen, opts, reporter)
            reporter.verified(checked)
    return IngestResult(bootstrap, topic, local, stats, checked)


__all__ = [
    "ConsoleReporter",
    "EventGenerator",
    "IngestError",
    "IngestOptions",
    "IngestResult",
    "ProduceStats",
    "ProgressBar",
    "Reporter",
    "VerifyResult",
    "produce",
    "record_id",
    "run_ingest",
]
