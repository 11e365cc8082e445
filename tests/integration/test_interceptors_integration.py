"""interceptor.classes in both producers against the real broker: what on_send makes of a
record is what the broker holds; on_acknowledgement sees every success and every
failure; an interceptor that raises is logged once and production goes on."""

from __future__ import annotations

import logging
import threading

import pytest

from fastprod import Producer, ShardedProducer
from tests import readers
from tests.helpers import settle, unique_topic

pytestmark = pytest.mark.integration

RECORDS = 40
ACKS: list[tuple[object, object]] = []
ACKS_LOCK = threading.Lock()


class Stamp:
    def on_send(self, record):
        return record._replace(value=b"stamped:" + record.value,
                               headers=[*(record.headers or ()), ("via", b"interceptor")])

    def on_acknowledgement(self, metadata, error):
        with ACKS_LOCK:
            ACKS.append((metadata, error))


class Broken:
    def on_send(self, record):
        raise RuntimeError("on_send is broken")

    def on_acknowledgement(self, metadata, error):
        raise RuntimeError("on_acknowledgement is broken")


@pytest.mark.parametrize("kind", ["producer", "sharded"])
def test_interceptors_shape_what_is_written_and_see_every_outcome(kafka, kind, caplog):
    topic = unique_topic(f"interceptors-{kind}")
    kafka.create_topic(topic, partitions=2, config={"max.message.bytes": 2000})
    settle(kafka.bootstrap_servers, topic, 2)
    ACKS.clear()
    config = {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 5,
              "interceptor.classes": [Stamp, Broken]}
    caplog.set_level(logging.ERROR, logger="fastprod")
    with (Producer(config) if kind == "producer" else ShardedProducer(config, workers=2)) as p:
        futures = [p.send(topic, b"v%d" % i, key=b"k%d" % i) for i in range(RECORDS)]
        too_big = p.send(topic, b"x" * 5000, key=b"big")
        for f in futures:
            f.result(timeout=30)
        assert too_big.exception(timeout=30) is not None
        p.flush()
    with ACKS_LOCK:
        acks = list(ACKS)
    successes = [m for m, e in acks if e is None]
    failures = [e for m, e in acks if e is not None]
    assert len(successes) == RECORDS and len(failures) == 1, acks
    assert "large" in str(failures[0]).lower()
    assert sorted((m.partition, m.offset) for m in successes) == \
        sorted((f.result().partition, f.result().offset) for f in futures)

    records = readers.java_read(kafka.bootstrap_servers, topic, RECORDS)
    assert sorted(r.value for r in records) == sorted(b"stamped:v%d" % i for i in range(RECORDS))
    assert all(("via", b"interceptor") in r.headers for r in records)
    assert {r.key for r in records} == {b"k%d" % i for i in range(RECORDS)}

    for phase in ("on_send", "on_acknowledgement"):
        logged = [r for r in caplog.records if f"{phase} is broken" in str(r.exc_info)
                  or f"interceptor {phase}" in r.getMessage()]
        assert len(logged) == 1, (phase, [r.getMessage() for r in logged])
