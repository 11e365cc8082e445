"""BufferPool: the buffer.memory budget. Java's BufferPoolTest scenarios; blocking is
real time, kept to tens of milliseconds."""

from __future__ import annotations

import threading
import time

import pytest

from fastprod.engine.buffer_pool import BufferPool
from fastprod.errors import BufferFullError, KafkaTimeoutError, RecordTooLargeError


def wait_until(predicate, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


class Allocation(threading.Thread):
    """allocate() on another thread; ``error`` holds what it raised."""

    def __init__(self, pool, size, max_block_ms=5000):
        super().__init__(daemon=True)
        self.pool, self.size, self.max_block_ms = pool, size, max_block_ms
        self.error = None
        self.done = threading.Event()
        self.start()

    def run(self):
        try:
            self.pool.allocate(self.size, self.max_block_ms)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
        finally:
            self.done.set()


def test_allocate_and_deallocate_account_for_memory():
    pool = BufferPool(1000)
    pool.allocate(300, 0)
    pool.allocate(700, 0)
    assert pool.available_memory == 0
    pool.deallocate(300)
    assert pool.available_memory == 300
    pool.deallocate(700)
    assert pool.available_memory == pool.total_memory == 1000


def test_more_than_the_whole_pool_is_refused_at_once():
    pool = BufferPool(1000)
    start = time.monotonic()
    with pytest.raises(RecordTooLargeError):
        pool.allocate(1001, 10_000)
    assert time.monotonic() - start < 0.5
    assert pool.available_memory == 1000


def test_allocate_blocks_until_max_block_ms_then_raises():
    pool = BufferPool(100)
    pool.allocate(80, 0)
    start = time.monotonic()
    with pytest.raises(BufferFullError) as info:
        pool.allocate(50, 50)
    elapsed = time.monotonic() - start
    assert 0.045 <= elapsed < 1.0
    assert isinstance(info.value, KafkaTimeoutError)  # Java: BufferExhaustedException
    assert "max.block.ms" in str(info.value)
    # the timed-out waiter is gone and took nothing
    assert pool.queued == 0 and pool.available_memory == 20


def test_max_block_ms_runs_on_the_pools_clock():
    """A fake clock that jumps 10 s ahead when read makes a 5 s max.block.ms pass at
    the first look, without the test waiting 5 s."""
    now = [0]

    def clock() -> int:
        now[0] += 10_000
        return now[0]

    pool = BufferPool(100, clock)
    pool.allocate(80, 0)
    start = time.monotonic()
    with pytest.raises(BufferFullError, match="5000 ms"):
        pool.allocate(50, 5000)
    assert time.monotonic() - start < 1.0


def test_max_block_ms_zero_fails_at_once_when_full():
    pool = BufferPool(100)
    pool.allocate(100, 0)
    with pytest.raises(BufferFullError):
        pool.allocate(1, 0)


def test_delayed_allocation_goes_on_when_memory_is_returned():
    pool = BufferPool(100)
    pool.allocate(100, 0)
    waiter = Allocation(pool, 60)
    wait_until(lambda: pool.queued == 1)
    assert not waiter.done.is_set()
    pool.deallocate(50)  # not enough yet
    time.sleep(0.01)
    assert not waiter.done.is_set()
    pool.deallocate(50)
    assert waiter.done.wait(2) and waiter.error is None
    assert pool.available_memory == 40 and pool.queued == 0


def test_waiters_are_served_in_arrival_order():
    """A large request is not starved by small ones that arrive after it."""
    pool = BufferPool(100)
    pool.allocate(100, 0)
    large = Allocation(pool, 80)
    wait_until(lambda: pool.queued == 1)
    small = Allocation(pool, 10)
    wait_until(lambda: pool.queued == 2)
    pool.deallocate(50)  # enough for the small one, but the large one is first
    time.sleep(0.02)
    assert not large.done.is_set() and not small.done.is_set()
    pool.deallocate(50)
    assert large.done.wait(2) and small.done.wait(2)
    assert large.error is None and small.error is None
    assert pool.available_memory == 10


def test_the_next_waiter_gets_memory_when_the_first_times_out():
    pool = BufferPool(100)
    pool.allocate(100, 0)
    first = Allocation(pool, 100, max_block_ms=50)
    wait_until(lambda: pool.queued == 1)
    second = Allocation(pool, 30)
    wait_until(lambda: pool.queued == 2)
    pool.deallocate(40)
    assert first.done.wait(2) and isinstance(first.error, BufferFullError)
    assert second.done.wait(2) and second.error is None
    assert pool.available_memory == 10


def test_close_wakes_every_waiter_with_an_error():
    pool = BufferPool(100)
    pool.allocate(100, 0)
    waiters = [Allocation(pool, 10) for _ in range(3)]
    wait_until(lambda: pool.queued == 3)
    pool.close()
    for waiter in waiters:
        assert waiter.done.wait(2)
        assert isinstance(waiter.error, BufferFullError)
    with pytest.raises(BufferFullError):
        pool.allocate(1, 0)
    assert pool.queued == 0


def test_many_threads_never_exceed_the_budget():
    pool = BufferPool(1000)
    in_use = [0]
    peak = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        try:
            for _ in range(200):
                pool.allocate(100, 2000)
                with lock:
                    in_use[0] += 100
                    peak[0] = max(peak[0], in_use[0])
                with lock:
                    in_use[0] -= 100
                pool.deallocate(100)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert peak[0] <= 1000
    assert pool.available_memory == 1000 and pool.queued == 0
