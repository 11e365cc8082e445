"""fastprod.aio against a real broker: what the awaited results say is checked against
what the Java consumer reads back (tests/readers.py), and "the loop is never blocked" is
checked with a heartbeat task that must keep ticking while sends wait for buffer space.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid

import pytest

from fastprod import BufferFullError, ProducerClosedError
from fastprod.aio import AIOProducer, AIOShardedProducer, wrap_future

try:
    import proxy as faultproxy
    import readers
except ImportError:  # tests/ imported as a package
    from tests import proxy as faultproxy
    from tests import readers

pytestmark = pytest.mark.integration


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Heartbeat:
    """A task that ticks every ``interval`` s and records the longest gap between ticks:
    a loop blocked by a send shows up as a gap as long as the block."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.ticks = 0
        self.longest_gap = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now
            self.ticks += 1

    def start(self) -> "Heartbeat":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


def test_send_nowait_batch_flush_match_what_the_broker_holds(kafka):
    topic = unique_topic("aio-basic")
    kafka.create_topic(topic, partitions=3)

    async def main():
        async with AIOProducer(bootstrap_servers=kafka.bootstrap_servers,
                               linger_ms=5) as producer:
            sent = []
            for i in range(30):
                md = await producer.send(topic, b"send-%d" % i, key=b"k%d" % (i % 5),
                                         headers=[("n", b"%d" % i)])
                sent.append((md, b"k%d" % (i % 5), b"send-%d" % i, (("n", b"%d" % i),)))
            futures = [producer.send_nowait(topic, b"nowait-%d" % i, key=b"k%d" % (i % 5))
                       for i in range(200)]
            assert all(isinstance(f, asyncio.Future) for f in futures)
            for i, md in enumerate(await asyncio.gather(*futures)):
                sent.append((md, b"k%d" % (i % 5), b"nowait-%d" % i, ()))
            values = [b"batch-%d" % i for i in range(500)]
            keys = [b"k%d" % (i % 5) for i in range(500)]
            metas = await producer.send_batch(topic, values, keys)
            sent.extend((md, k, v, ()) for md, k, v in zip(metas, keys, values))
            late = producer.send_nowait(topic, b"late", key=b"k0")
            await producer.flush()
            assert late.done()  # flush waits for what was sent before it
            sent.append((late.result(), b"k0", b"late", ()))
        return sent

    sent = asyncio.run(main())
    records = readers.java_read(kafka.bootstrap_servers, topic, expected=len(sent))
    assert len(records) == len(sent)
    by_position = {(r.partition, r.offset): r for r in records}
    for md, key, value, headers in sent:
        r = by_position[(md.partition, md.offset)]
        assert (r.key, r.value, r.headers) == (key, value, headers)
    # order per key is the order of sending (each key has one partition)
    for k in range(5):
        key = b"k%d" % k
        ordered = [r.value for r in readers.by_partition_offset(records) if r.key == key]
        assert ordered == [v for _, kk, v, _ in sent if kk == key]


def test_record_future_and_batch_future_through_wrap_future(kafka):
    topic = unique_topic("aio-wrap")

    async def main():
        async with AIOProducer(bootstrap_servers=kafka.bootstrap_servers) as aio:
            sync = aio.producer
            md = await wrap_future(sync.send(topic, b"one"))
            metas = await wrap_future(sync.send_batch(topic, [b"two", b"three"]))
            with pytest.raises(TypeError, match="RecordFuture"):
                wrap_future(object())  # type: ignore[arg-type]
            return md, metas

    md, metas = asyncio.run(main())
    records = readers.by_partition_offset(readers.java_read(kafka.bootstrap_servers, topic, 3))
    assert [(r.offset, r.value) for r in records] == [
        (md.offset, b"one"), (metas[0].offset, b"two"), (metas[1].offset, b"three")]


def test_cancelled_sends_are_still_written_exactly_once(kafka):
    """Cancelling an awaiting send cancels the wait, never the record: both while the
    record waits in the backlog (the topic's metadata is not known yet) and once it
    was handed to the producer at once."""
    topic = unique_topic("aio-cancel")
    kafka.create_topic(topic, partitions=2)

    async def main():
        async with AIOProducer(bootstrap_servers=kafka.bootstrap_servers,
                               linger_ms=50) as producer:
            # metadata unknown: these wait in the backlog
            first = [asyncio.ensure_future(producer.send(topic, b"b-%d" % i))
                     for i in range(50)]
            await asyncio.sleep(0)
            assert producer._queued > producer._done, "expected the backlog to be used"
            for t in first[::2]:
                t.cancel()
            kept = [await t for t in first[1::2]]
            # metadata known now: these go to the producer on the loop thread
            second = [asyncio.ensure_future(producer.send(topic, b"d-%d" % i))
                      for i in range(50)]
            await asyncio.sleep(0)
            for t in second[::2]:
                t.cancel()
            kept += [await t for t in second[1::2]]
            await producer.flush()
            assert all(t.cancelled() for t in first[::2] + second[::2])
            return kept

    kept = asyncio.run(main())
    records = readers.java_read(kafka.bootstrap_servers, topic, expected=100)
    values = sorted(r.value for r in records)
    assert values == sorted([b"b-%d" % i for i in range(50)] + [b"d-%d" % i for i in range(50)])
    by_position = {(r.partition, r.offset): r.value for r in records}
    assert all(by_position[(md.partition, md.offset)] is not None for md in kept)


def test_closed_loop_drops_results_with_a_log_line(kafka, caplog):
    topic = unique_topic("aio-closed-loop")
    holder = {}

    async def main():
        producer = AIOProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=1000)
        holder["p"] = producer
        await producer.send(topic, b"warm")
        for i in range(100):
            producer.send_nowait(topic, b"v-%d" % i)  # results never awaited
        # the loop ends here, before linger.ms lets the batch go

    caplog.set_level(logging.DEBUG, logger="fastprod")
    asyncio.run(main())
    sync = holder["p"].producer
    sender = sync._thread
    sync.flush(30)  # completes the 100 futures of a closed loop on the sender thread
    assert sender.is_alive()
    warnings = [r for r in caplog.records if r.name == "fastprod.aio"
                and r.levelno == logging.WARNING and "loop" in r.getMessage()]
    assert len(warnings) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    sync.send(topic, b"after").result(30)  # the sender thread still works
    sync.close()
    records = readers.java_read(kafka.bootstrap_servers, topic, expected=102)
    assert sorted(r.value for r in records) == sorted(
        [b"warm", b"after"] + [b"v-%d" % i for i in range(100)])


# A stalled connection (tests/proxy.py STALL_RESPONSE: the broker's answers held back
# until request.timeout.ms closes it) keeps every batch sent on it, and its buffer
# memory, for 3 s; four 16000-byte records (one batch each) fill buffer.memory.
SMALL_BUFFER = {"buffer.memory": 65536, "batch.size": 16384, "linger.ms": 0,
                "request.timeout.ms": 3000, "delivery.timeout.ms": 60000,
                "retry.backoff.ms": 100}


def test_full_buffer_awaits_without_blocking_the_loop(proxied_kafka):
    kafka, proxy = proxied_kafka
    stuck, good = unique_topic("aio-stuck"), unique_topic("aio-good")
    kafka.create_topic(stuck, partitions=1)
    kafka.create_topic(good, partitions=1)

    async def main():
        async with AIOProducer({**SMALL_BUFFER, "max.block.ms": 30000,
                                "bootstrap.servers": kafka.bootstrap_servers}) as producer:
            await producer.send(good, b"warm")
            await producer.partitions_for(stuck)
            fault = proxy.arm(faultproxy.Fault(faultproxy.STALL_RESPONSE))
            beat = Heartbeat().start()
            stuck_futures = [producer.send_nowait(stuck, b"x" * 16000) for _ in range(6)]
            ok = producer.send_nowait(good, b"ok")
            await asyncio.sleep(1.0)
            assert fault.fired.is_set()
            assert not ok.done(), "the buffer should be full: the send should still wait"
            assert producer._queued > producer._done  # waiting in the backlog
            ticks_while_full = beat.ticks
            metadata = await asyncio.wait_for(ok, 30)
            await beat.stop()
            stuck_metadata = await asyncio.gather(*stuck_futures)
            return metadata, stuck_metadata, ticks_while_full, beat.longest_gap

    try:
        metadata, stuck_metadata, ticks_while_full, longest_gap = asyncio.run(main())
    finally:
        proxy.disarm()
    assert ticks_while_full >= 30  # 10 ms ticks over the first second: the loop ran
    assert longest_gap < 0.5, f"the loop stalled for {longest_gap:.3f} s"
    records = readers.java_read(kafka.bootstrap_servers, good, expected=2)
    assert [(r.offset, r.value) for r in readers.by_partition_offset(records)] == [
        (0, b"warm"), (1, b"ok")]
    assert metadata.offset == 1
    records = readers.java_read(kafka.bootstrap_servers, stuck, expected=6)
    assert sorted(r.offset for r in records) == sorted(m.offset for m in stuck_metadata) \
        == list(range(6))


def test_full_buffer_fails_after_max_block_ms_without_blocking_the_loop(proxied_kafka):
    kafka, proxy = proxied_kafka
    stuck = unique_topic("aio-stuck")
    kafka.create_topic(stuck, partitions=1)

    async def main():
        producer = AIOProducer({**SMALL_BUFFER, "max.block.ms": 700,
                                "bootstrap.servers": kafka.bootstrap_servers})
        await producer.partitions_for(stuck)
        proxy.arm(faultproxy.Fault(faultproxy.STALL_RESPONSE))
        beat = Heartbeat().start()
        futures = [producer.send_nowait(stuck, b"x" * 16000) for _ in range(4)]
        started = time.monotonic()
        with pytest.raises(BufferFullError, match="max.block.ms"):
            await producer.send(stuck, b"x" * 16000)
        waited = time.monotonic() - started
        await beat.stop()
        await producer.close(10)
        with pytest.raises(ProducerClosedError):
            producer.send_nowait(stuck, b"after close")
        await asyncio.gather(*futures, return_exceptions=True)
        return waited, beat

    try:
        waited, beat = asyncio.run(main())
    finally:
        proxy.disarm()
    assert 0.6 <= waited < 5
    assert beat.ticks >= 0.5 * waited / beat.interval
    assert beat.longest_gap < 0.5, f"the loop stalled for {beat.longest_gap:.3f} s"


def test_sharded_send_and_batch(kafka):
    topic = unique_topic("aio-sharded")
    kafka.create_topic(topic, partitions=4)

    async def main():
        async with AIOShardedProducer({"bootstrap.servers": kafka.bootstrap_servers},
                                      workers=2) as producer:
            beat = Heartbeat().start()
            one = await producer.send(topic, b"one", key=b"a", headers={"h": b"1"})
            many = await asyncio.gather(*(producer.send_nowait(topic, b"n-%d" % i,
                                                               key=b"k%d" % i)
                                          for i in range(300)))
            batch = await producer.send_batch(topic, [b"b-%d" % i for i in range(300)])
            await producer.flush()
            await beat.stop()
            assert threading.current_thread() is threading.main_thread()
            return one, many, batch

    one, many, batch = asyncio.run(main())
    records = readers.java_read(kafka.bootstrap_servers, topic, expected=601)
    by_position = {(r.partition, r.offset): r for r in records}
    assert len(records) == 601
    r = by_position[(one.partition, one.offset)]
    assert (r.key, r.value, r.headers) == (b"a", b"one", (("h", b"1"),))
    for i, md in enumerate(many):
        assert by_position[(md.partition, md.offset)].value == b"n-%d" % i
    for i, md in enumerate(batch):
        assert by_position[(md.partition, md.offset)].value == b"b-%d" % i
