"""``run_produce``: read the inputs, send their records, account for every one.

Each record read ends in exactly one of: delivered (acknowledged), failed (the producer
reported an error: too large, timed out, ...), skipped (malformed input) or not sent
(the run stopped before the record was handed to the producer). ``Summary`` holds the
counts and the exit code (``EXIT_CODES``).

Library code: logs under ``fastprod.produce``; the user-facing output goes through the
``Reporter`` the caller passes (the CLI's prints progress and the summary).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .inputs import InputError, Source, expand, is_decompress_error, open_source
from .readers import ReadOptions, UsageError, reader_for
from .records import Chunk, Header, Malformed

log = logging.getLogger("fastprod.produce")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_SKIPPED = 4
EXIT_BROKER = 5
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "every record read was acknowledged by the broker",
    EXIT_FAILED: "some records failed (the producer reported an error for them)",
    EXIT_USAGE: "bad command line, -X or --config value (nothing sent)",
    EXIT_INPUT: "an input could not be read (missing, unreadable, corrupt), or --strict "
                "stopped at a malformed record",
    EXIT_SKIPPED: "malformed records were skipped; every other record was acknowledged",
    EXIT_BROKER: "no broker: none given and no local one running, or unreachable",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); what was read before was flushed",
}
MAX_FAILURES_SHOWN = 5


class ProduceError(Exception):
    """The run cannot start or had to stop; ``exit_code`` says which kind."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class ProduceOptions:
    topic: str
    files: list[str] = field(default_factory=list)
    read: ReadOptions = field(default_factory=ReadOptions)
    headers: list[Header] = field(default_factory=list)  # -H, added to every record
    partition: int | None = None
    workers: int | None = None  # None: Producer; N: ShardedProducer with N workers
    config: dict[str, Any] = field(default_factory=dict)  # Java names, -X over --config
    rate: float | None = None  # records per second, None: as fast as possible
    dry_run: bool = False
    strict: bool = False


@dataclass
class Summary:
    topic: str
    read: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    not_sent: int = 0
    bytes: int = 0  # key + value bytes read
    seconds: float = 0.0
    files: int = 0
    dry_run: bool = False
    interrupted: bool = False
    stopped: str | None = None  # why reading stopped early
    stop_code: int = EXIT_OK  # the exit code that reason calls for
    malformed: list[str] = field(default_factory=list)  # the first few, with file:line
    failures: list[str] = field(default_factory=list)  # the first few, with file:line
    failure_kinds: dict[str, int] = field(default_factory=dict)
    exit_code: int = EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exit_meaning"] = EXIT_CODES[self.exit_code]
        return d


class Reporter(Protocol):
    def start(self, total_bytes: int | None) -> None: ...
    def update(self, records: int, nbytes: int, position: int, failed: int) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    def start(self, total_bytes: int | None) -> None: pass
    def update(self, records: int, nbytes: int, position: int, failed: int) -> None: pass
    def note(self, message: str) -> None: pass
    def finish(self) -> None: pass


class _Tally:
    """Delivery outcomes, counted on the producer's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self.not_sent = 0  # records a failed send_batch never queued (interrupted)
        self.failures: list[str] = []
        self.kinds: dict[str, int] = {}

    def batch_done(self, chunk: Chunk, indices: list[int] | None, future: Any) -> None:
        if future.exception() is None:  # all delivered: no per-record objects
            with self._lock:
                self.delivered += len(future)
            return
        errors = future.errors()
        with self._lock:
            self.delivered += len(future) - len(errors)
            for i, error in errors:
                self._fail(chunk, i if indices is None else indices[i], error)

    def record_done(self, chunk: Chunk, index: int, metadata: Any, error: Any) -> None:
        with self._lock:
            if error is None:
                self.delivered += 1
            else:
                self._fail(chunk, index, error)

    def _fail(self, chunk: Chunk, index: int, error: BaseException) -> None:
        if isinstance(error, KeyboardInterrupt):
            self.not_sent += 1
            return
        self.failed += 1
        kind = type(error).__name__
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if len(self.failures) < MAX_FAILURES_SHOWN:
            self.failures.append(f"{chunk.source}:{chunk.line_of(index)}: {kind}: {error}")


class _Interrupts:
    """Ctrl-C: the first one stops reading (at once when blocked reading input, after
    the current send otherwise); the second one aborts the final flush."""

    class StopReading(Exception):
        pass

    def __init__(self) -> None:
        self.requested = 0
        self.reading = False
        self._previous: Any = None

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested += 1
        if self.requested > 1:
            raise KeyboardInterrupt
        log.info("interrupted: reading stops, what was read is flushed (Ctrl-C again aborts)")
        if self.reading:
            raise self.StopReading


def resolve_bootstrap(config: dict[str, Any]) -> str:
    """bootstrap.servers from the options, else the running ``fastprod broker``."""
    given = config.get("bootstrap.servers")
    if given:
        return str(given)
    from fastprod.localkafka import daemon

    state = daemon.read_state()
    if state is not None and any(daemon._jvm_alive(n["pid"], n["properties_file"])
                                 for n in state["nodes"]):
        return str(state["bootstrap_servers"])
    raise ProduceError("no broker: pass --bootstrap-servers HOST:PORT (or -X bootstrap.servers=...), "
                       "or start a local one with `fastprod broker start`", EXIT_BROKER)


def _make_producer(opts: ProduceOptions) -> tuple[Any, int]:
    """The producer and max.request.size; ProduceError for a bad config or no broker."""
    from fastprod.errors import ConfigError, FastprodError, KafkaTimeoutError

    config = dict(opts.config)
    config["bootstrap.servers"] = resolve_bootstrap(config)
    try:
        with _sigint_blocked():
            if opts.workers:
                from fastprod import ShardedProducer

                producer: Any = ShardedProducer(config, workers=opts.workers)
            else:
                from fastprod import Producer

                producer = Producer(config)
    except (ConfigError, ValueError, TypeError) as e:
        raise ProduceError(f"bad producer config: {e}", EXIT_USAGE) from None
    try:
        partitions = producer.partitions_for(opts.topic)
    except KafkaTimeoutError as e:
        producer.close(timeout=0)
        raise ProduceError(f"cannot reach the cluster at {config['bootstrap.servers']} or get "
                           f"topic {opts.topic!r}: {e}", EXIT_BROKER) from None
    except FastprodError as e:
        producer.close(timeout=0)
        raise ProduceError(f"topic {opts.topic!r}: {e}", EXIT_USAGE) from None
    except BaseException:
        producer.close(timeout=0)
        raise
    if opts.partition is not None and opts.partition >= len(partitions):
        producer.close(timeout=0)
        raise ProduceError(f"-p {opts.partition}: topic {opts.topic!r} has {len(partitions)} "
                           f"partition(s), 0 to {len(partitions) - 1}", EXIT_USAGE)
    max_request = int(getattr(producer, "_max_request_size", 0) or
                      config.get("max.request.size", 1048576))
    return producer, max_request


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Threads started inside inherit a mask without SIGINT, so Ctrl-C is delivered to
    the main thread and interrupts a blocking read of the input at once (a signal taken
    by another thread runs the handler only once the main thread's read returns)."""
    if (not hasattr(signal, "pthread_sigmask")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class _Sender:
    """Hands chunks to the producer: ``send_batch`` when the records have no headers or
    timestamps of their own (the fast path), ``send`` per record otherwise; a record over
    max.request.size goes through ``send``, which fails it with the reason."""

    def __init__(self, producer: Any, opts: ProduceOptions, max_request: int,
                 tally: _Tally) -> None:
        from fastprod.engine.accumulator import record_size_upper_bound

        self.producer = producer
        self.topic = opts.topic
        self.partition = opts.partition
        self.headers = list(opts.headers) or None
        self.tally = tally
        self.limit = max_request - record_size_upper_bound(None, None, None)

    def send(self, chunk: Chunk) -> None:
        if self.headers is None and chunk.headers is None and chunk.timestamps is None:
            self._send_batch(chunk)
        else:
            self._send_each(chunk, range(len(chunk)))

    def _send_batch(self, chunk: Chunk) -> None:
        values, keys = chunk.values, chunk.keys
        longest = max(map(len, values))
        if keys is not None:
            longest += max((len(k) for k in keys if k is not None), default=0)
        indices = None
        if longest > self.limit:  # rare: pick out the records that are too large
            big = [i for i in range(len(values))
                   if len(values[i]) + (len(keys[i] or b"") if keys else 0) > self.limit]
            self._send_each(chunk, big)
            bigset = set(big)
            indices = [i for i in range(len(values)) if i not in bigset]
            if not indices:
                return
            values = [values[i] for i in indices]
            keys = None if keys is None else [keys[i] for i in indices]
        try:
            future = self.producer.send_batch(self.topic, values, keys, partition=self.partition)
        except BaseException as exc:
            future = getattr(exc, "future", None)
            if future is not None:  # what was queued is delivered, the rest failed
                future.add_done_callback(functools.partial(self.tally.batch_done, chunk, indices))
            raise
        future.add_done_callback(functools.partial(self.tally.batch_done, chunk, indices))

    def _send_each(self, chunk: Chunk, indices: Any) -> None:
        send, topic, partition, done = (self.producer.send, self.topic, self.partition,
                                        self.tally.record_done)
        keys, stamps, heads = chunk.keys, chunk.timestamps, chunk.headers
        for i in indices:
            headers = heads[i] if heads is not None else None
            if self.headers:
                headers = (headers or []) + self.headers
            send(topic, chunk.values[i], keys[i] if keys is not None else None,
                 partition, stamps[i] if stamps is not None else None, headers,
                 functools.partial(done, chunk, i))


def _pieces(chunk: Chunk, size: int) -> Iterator[Chunk]:
    """A chunk cut into pieces of ``size`` records (for --rate)."""
    if len(chunk) <= size:
        yield chunk
        return
    for start in range(0, len(chunk), size):
        end = start + size
        yield Chunk(chunk.source, chunk.values[start:end],
                    None if chunk.keys is None else chunk.keys[start:end],
                    None if chunk.timestamps is None else chunk.timestamps[start:end],
                    None if chunk.headers is None else chunk.headers[start:end],
                    None if chunk.lines is None else chunk.lines[start:end],
                    chunk.first_line + start)


def run_produce(opts: ProduceOptions, reporter: Reporter | None = None) -> Summary:
    """Produce every record of ``opts.files`` (stdin when empty) to ``opts.topic``.
    ProduceError (with its exit code) when the run cannot start: bad options, a missing
    file, no broker. Once records flow, problems end up in the returned Summary."""
    reporter = reporter or NullReporter()
    try:
        opts.read.validate()
    except UsageError as e:
        raise ProduceError(str(e), EXIT_USAGE) from None
    if opts.rate is not None and opts.rate <= 0:
        raise ProduceError(f"--rate must be > 0, got {opts.rate}", EXIT_USAGE)
    try:
        sources = expand(opts.files)
    except InputError as e:
        raise ProduceError(str(e), EXIT_INPUT) from None
    if sum(s.is_stdin for s in sources) > 1:
        raise ProduceError("stdin (-) can be read only once", EXIT_USAGE)

    producer = sender = None
    tally = _Tally()
    if not opts.dry_run:
        producer, max_request = _make_producer(opts)
        sender = _Sender(producer, opts, max_request, tally)
    summary = Summary(opts.topic, dry_run=opts.dry_run, files=len(sources))
    bad = Malformed(strict=opts.strict)
    read = reader_for(opts.read)
    known = None if any(s.is_stdin or s.size is None for s in sources) else sum(
        s.size or 0 for s in sources)
    piece = max(1, int(opts.rate / 20)) if opts.rate else 0
    started = time.monotonic()
    reporter.start(known)
    done_bytes = 0  # raw bytes of the finished sources
    with _Interrupts() as interrupts:
        try:
            for source in sources:
                if interrupts.requested:
                    break
                finished = _read_source(source, read, bad, opts, summary, sender, interrupts,
                                        reporter, tally, done_bytes, piece, started)
                done_bytes += finished
                if summary.stopped:
                    break
            summary.interrupted = interrupts.requested > 0
            if producer is not None:
                reporter.note("flushing")
                producer.flush()
                producer.close()
        except KeyboardInterrupt:  # the second Ctrl-C: stop now, fail what is pending
            summary.interrupted = True
            if producer is not None:
                producer.close(timeout=0)
        finally:
            reporter.finish()
    summary.seconds = time.monotonic() - started
    summary.skipped = bad.count
    summary.read += bad.count  # malformed records were read too (and skipped)
    summary.malformed = bad.shown
    summary.delivered, summary.failed = tally.delivered, tally.failed
    summary.failures, summary.failure_kinds = tally.failures, dict(tally.kinds)
    if opts.dry_run:
        summary.delivered = 0
    accounted = summary.delivered + summary.failed + summary.skipped
    summary.not_sent = 0 if opts.dry_run else max(0, summary.read - accounted)
    summary.exit_code = _exit_code(summary)
    return summary


def _read_source(source: Source, read, bad: Malformed, opts: ProduceOptions, summary: Summary,
                 sender: _Sender | None, interrupts: _Interrupts, reporter: Reporter,
                 tally: _Tally, done_bytes: int, piece: int, started: float) -> int:
    """Read and send one source; returns its raw size read."""
    from fastprod.errors import KafkaError

    interrupts.reading = True  # opening peeks at the first bytes: it may block on a pipe
    try:
        stream, counter = open_source(source)
    except InputError as e:
        summary.stopped, summary.stop_code = str(e), EXIT_INPUT
        return 0
    except _Interrupts.StopReading:
        return 0
    finally:
        interrupts.reading = False
    try:
        chunks = read(stream, source.name, bad)
        while True:
            interrupts.reading = True
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            finally:
                interrupts.reading = False
            for part in (_pieces(chunk, piece) if piece else (chunk,)):
                if piece:  # --rate: wait until this piece is due
                    due = started + summary.read / opts.rate  # type: ignore[operator]
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                summary.read += len(part)
                summary.bytes += part.nbytes()
                if sender is not None:
                    sender.send(part)
                reporter.update(summary.read, summary.bytes, done_bytes + counter.count,
                                tally.failed)
            if interrupts.requested:
                break
        if bad.stop:
            summary.stopped, summary.stop_code = bad.stop, EXIT_INPUT
    except _Interrupts.StopReading:
        pass
    except UsageError as e:
        summary.stopped, summary.stop_code = str(e), EXIT_USAGE
    except KafkaError as e:  # e.g. metadata lost for max.block.ms: stop, flush, report
        summary.stopped = f"sending stopped: {type(e).__name__}: {e}"
        summary.stop_code = EXIT_FAILED
    except Exception as e:
        if not is_decompress_error(e):
            raise
        summary.stopped = f"{source.name}: cannot read: {type(e).__name__}: {e}"
        summary.stop_code = EXIT_INPUT
    finally:
        if not source.is_stdin:
            stream.close()
    return counter.count


def _exit_code(s: Summary) -> int:
    if s.interrupted:
        return EXIT_INTERRUPTED
    if s.stopped is not None:
        return s.stop_code
    if s.failed or s.not_sent:
        return EXIT_FAILED
    if s.skipped:
        return EXIT_SKIPPED
    return EXIT_OK
