"""The edges of the public API: a bad argument gets a clear exception naming it and what is
accepted, at the call, from both producers and from both of their send paths.

``send`` of an instance is a C method (SendFastPath.send / shard.SendPath.send) that
hands anything unusual to the Python reference (``_send``); every check here runs
through the instance's ``send`` (the C path, on a topic whose metadata is known so that
the C path does not fall back for that reason alone), through the class's ``send`` (the
Python path) and, for Producer, through a producer with an interceptor configured (which
takes the Python path for every record).

Also: flush() after close(), the ``fastprod`` logger's NullHandler (the library never
prints), and the exit code reported for a SIGKILLed ShardedProducer worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from fastprod import ConfigError, Producer, ProducerConfig, ShardedProducer
from fastprod.engine.futures import BatchFuture, ProduceRequestResult, RecordFuture
from fastprod.errors import InvalidTopicError

try:
    from test_sharded import create_topic, wait_until
except ImportError:  # tests/ imported as a package
    from tests.integration.test_sharded import create_topic, wait_until


class PassThrough:
    """An interceptor that changes nothing: it makes Producer take the Python path."""

    def on_send(self, record):
        return record


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def topic(kafka):
    name = unique_topic("edges")
    create_topic(kafka, name, 2)
    return name


@pytest.fixture(scope="module")
def producers(kafka, topic):
    """One of each, every one with the topic's metadata known (so the C paths run)."""
    config = {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0}
    made = {
        "producer": Producer(config),
        "intercepted": Producer(config, interceptor_classes=[PassThrough]),
        "sharded": ShardedProducer(config, workers=1),
    }
    try:
        for p in made.values():
            p.send(topic, b"warm-up").result(timeout=60)
        assert type(made["producer"].send).__name__ == "builtin_function_or_method"
        assert type(made["sharded"].send).__name__ == "builtin_function_or_method"
        assert type(made["intercepted"].send).__name__ == "method"
        yield made
    finally:
        for p in made.values():
            p.close(timeout=10)


# (producer, how send is called): the instance's send is C unless interceptors are set;
# the class's send is the Python reference path.
SEND_PATHS = ["producer-c", "producer-py", "intercepted-py", "sharded-c", "sharded-py"]


def _send_fn(producers, path: str):
    name, how = path.split("-")
    p = producers[name]
    if how == "c":
        return p.send
    return lambda *args, **kwargs: type(p).send(p, *args, **kwargs)


@pytest.fixture(params=SEND_PATHS)
def send(request, producers):
    return _send_fn(producers, request.param)


@pytest.fixture(params=["producer", "sharded"])
def batch_producer(request, producers):
    return producers[request.param]


# ---- timestamp -------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp", [2**70, 2**63, -1, 1.5, "now"])
def test_send_timestamp_out_of_range(send, topic, timestamp):
    """2**70 raised OverflowError ("int too large to convert to C long") before."""
    with pytest.raises(ValueError, match=r"timestamp must be a non-negative int .*2\*\*63"):
        send(topic, b"v", timestamp=timestamp)


def test_send_timestamp_at_the_int64_limit_is_accepted(send, topic):
    """Accepted by send(); the broker may refuse it (log.message.timestamp.after.max.ms)."""
    from fastprod.errors import InvalidTimestampError

    error = send(topic, b"v", timestamp=2**63 - 1).exception(timeout=30)
    assert error is None or isinstance(error, InvalidTimestampError), error


@pytest.mark.parametrize("timestamp", [2**70, 2**63, -5])
def test_send_batch_timestamp_out_of_range(batch_producer, topic, timestamp):
    with pytest.raises(ValueError, match=r"timestamp must be a non-negative int .*2\*\*63"):
        batch_producer.send_batch(topic, [b"a", b"b"], timestamp=timestamp)


# ---- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [123, "notalist", b"x", [("k", 1)], [("k",)],
                                     [(1, b"v")], {"k": 1.5}, [b"kv"]])
def test_send_bad_headers(send, topic, headers):
    """123, b"x" and "notalist" gave errors that did not say what headers may be (or
    for a str, iterated its characters)."""
    with pytest.raises(TypeError, match=r"headers must be .*\(str, bytes\|str\|None\) "
                                        r"pairs or a mapping"):
        send(topic, b"v", headers=headers)


def test_send_good_headers(send, topic):
    for headers in ([("a", b"1"), ("b", None), ("c", "x")], {"a": b"1"}, (("a", b"1"),), []):
        send(topic, b"v", headers=headers).result(timeout=30)


# ---- send_batch's values and keys ----------------------------------------------------


@pytest.mark.parametrize("values", [None, b"abc", "abc", 5, bytearray(b"ab")])
def test_send_batch_values_must_be_a_sequence(batch_producer, topic, values):
    """"abc" was sent as three records "a", "b", "c"; None and 5 gave "not iterable"."""
    with pytest.raises(TypeError, match=r"values must be a sequence of values "
                                        r"\(list, tuple, \.\.\.\)"):
        batch_producer.send_batch(topic, values)


@pytest.mark.parametrize("keys", [b"ab", "ab", 5])
def test_send_batch_keys_must_be_a_sequence(batch_producer, topic, keys):
    with pytest.raises(TypeError, match=r"keys must be None or a sequence"):
        batch_producer.send_batch(topic, [b"x", b"y"], keys=keys)


# ---- config ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [ProducerConfig, Producer,
                                  lambda c: ShardedProducer(c, workers=1)])
@pytest.mark.parametrize("config", [[("bootstrap.servers", "localhost:9092")],
                                    "bootstrap.servers=localhost:9092"])
def test_config_must_be_a_mapping(make, config):
    """A list of pairs raised AttributeError ('list' object has no attribute 'items')."""
    with pytest.raises(ConfigError, match=r"config must be a mapping \(dict\) of Java "
                                          r"config names"):
        make(config)


# ---- callbacks -------------------------------------------------------------------------


def test_send_on_delivery_must_be_callable(send, topic):
    """Was accepted, and failed only at delivery (logged on the sender thread)."""
    with pytest.raises(TypeError, match=r"on_delivery must be callable"):
        send(topic, b"v", on_delivery="notcallable")


def test_send_batch_on_delivery_must_be_callable(batch_producer, topic):
    with pytest.raises(TypeError, match=r"on_delivery must be callable"):
        batch_producer.send_batch(topic, [b"v"], on_delivery="notcallable")


def test_add_done_callback_must_be_callable():
    pending = RecordFuture(ProduceRequestResult("t", 0), 0, 0, -1, -1)
    done_result = ProduceRequestResult("t", 0)
    done_result.done()
    done = RecordFuture(done_result, 0, 0, -1, -1)
    batch = BatchFuture("t", None, [b"v"], 0, None)  # pending until sealed
    for future in (pending, done, batch):
        with pytest.raises(TypeError, match=r"add_done_callback\(fn\): fn must be callable"):
            future.add_done_callback("notcallable")


# ---- topic names -----------------------------------------------------------------------

BAD_TOPICS = [
    ("bad topic!", r"contains ' ', '!'"),
    ("t\u00f3pico", r"contains '\u00f3'"),
    ("a" * 250, r"250 characters, longer than 249"),
    (".", r"cannot be '\.' or '\.\.'"),
    ("..", r"cannot be '\.' or '\.\.'"),
]


@pytest.mark.parametrize("name,why", BAD_TOPICS)
def test_send_invalid_topic_name(send, name, why):
    """Checked before any metadata request, and saying why (Java's Topic.validate)."""
    with pytest.raises(InvalidTopicError, match=r"is illegal: .*" + why):
        send(name, b"v")


@pytest.mark.parametrize("name,why", BAD_TOPICS[:3])
def test_send_batch_and_partitions_for_invalid_topic_name(batch_producer, name, why):
    for call in (lambda: batch_producer.send_batch(name, [b"v"]),
                 lambda: batch_producer.send_batch(name, []),
                 lambda: batch_producer.partitions_for(name)):
        with pytest.raises(InvalidTopicError, match=r"is illegal: .*" + why):
            call()


def test_longest_legal_topic_name_is_accepted(kafka, batch_producer):
    name = "x-" + uuid.uuid4().hex + "_." + "z" * (249 - 36)
    assert len(name) == 249
    create_topic(kafka, name, 1)
    assert batch_producer.send(name, b"v").result(timeout=30).offset == 0


# ---- flush after close -----------------------------------------------------------------


@pytest.mark.parametrize("make", [Producer, lambda c: ShardedProducer(c, workers=1)])
def test_flush_after_close_returns(kafka, topic, make):
    """ShardedProducer.flush() after close() raised ValueError "the ring is closed"."""
    p = make({"bootstrap.servers": kafka.bootstrap_servers})
    future = p.send(topic, b"before close")
    p.close(timeout=30)
    assert future.done()
    p.flush()
    p.flush(timeout=0)


# ---- the library never prints ----------------------------------------------------------

_WARN = """
import logging, sys
if sys.argv[1] == "configured":
    logging.basicConfig(level=logging.WARNING)
import fastprod
# a WARNING from the config rules, no broker needed
fastprod.ProducerConfig({"bootstrap.servers": "localhost:9092", "retry.backoff.ms": 5000,
                         "retry.backoff.max.ms": 1000})
"""


def test_library_logs_nothing_to_stderr_when_logging_is_not_configured():
    """Without a handler anywhere, logging's lastResort printed fastprod's WARNINGs to
    stderr; the NullHandler on the fastprod logger keeps them for the application."""
    def run(mode):
        return subprocess.run([sys.executable, "-c", _WARN, mode], capture_output=True,
                              text=True, timeout=60, check=True)

    configured = run("configured")
    assert "retry.backoff.ms=5000 is greater than retry.backoff.max.ms" in configured.stderr
    assert run("unconfigured").stderr == ""


def test_fastprod_logger_has_a_null_handler():
    handlers = logging.getLogger("fastprod").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers), handlers


# ---- a SIGKILLed worker's exit code ----------------------------------------------------


# Before the fix about half the deaths read "exit code None" (the race): six kills make
# a pass without the fix unlikely (about 1 in 60). Three per worker: a fourth within a
# minute would give the worker up instead of replacing it.
KILLS = 6


def test_sigkilled_worker_is_reported_with_its_signal(kafka, topic, caplog):
    """The exit code was read before the process was reaped: "exit code None"."""
    caplog.set_level(logging.ERROR, logger="fastprod.sharded")
    p = ShardedProducer({"bootstrap.servers": kafka.bootstrap_servers}, workers=2)
    try:
        p.send(topic, b"warm-up").result(timeout=60)
        for i in range(KILLS):
            w = p._workers[i % 2]
            pid = w.process.pid
            os.kill(pid, signal.SIGKILL)
            assert wait_until(lambda: w.process.pid != pid and w.process.is_alive(), 30) \
                is not None, "the killed worker was not replaced"
        deaths = [r.getMessage() for r in caplog.records if "died" in r.getMessage()]
        assert len(deaths) == KILLS, deaths
        assert all("exit code -9 (killed by SIGKILL)" in m for m in deaths), deaths
        for partition in range(2):
            assert p.send(topic, b"after", partition=partition).result(timeout=60).offset >= 0
    finally:
        t = time.monotonic()
        p.close(timeout=10)
        assert time.monotonic() - t < 30


@pytest.mark.parametrize("cls", ["Producer", "ShardedProducer"])
def test_an_instances_send_has_the_documented_signature(cls):
    """send() is bound to a C method per instance: help() and inspect.signature() still
    show the arguments of the documented method (embedsignature), and its docstring
    points to it."""
    import inspect

    import fastprod

    kind = getattr(fastprod, cls)
    producer = kind({"bootstrap.servers": "127.0.0.1:1"}, **(
        {"workers": 1} if cls == "ShardedProducer" else {}))
    try:
        documented = list(inspect.signature(kind.send).parameters)[1:]  # without self
        assert list(inspect.signature(producer.send).parameters) == documented
        assert f"help({cls}.send)" in producer.send.__doc__
    finally:
        producer.close(0)
