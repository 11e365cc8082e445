"""The producer's memory stays flat over 20 million records.

send_batch() of 20,000,000 distinct ~100-byte records to the session broker in 200
rounds of 100,000, each round flushed and every record checked for an error. The
resident set size after the first round and after the last must differ by less than
10 MB: a leak of a byte per record would show as 20 MB, one of 100 bytes per batch
(of 16 KB) as 14 MB.

RSS is read from /proc/self/status after gc.collect() and glibc's malloc_trim(0), so
that heap memory glibc holds free does not count. Rounds of 100,000 (11 MB of values),
not 1,000,000: the values of a round are small objects in CPython's arenas, and a few
long-lived objects allocated meanwhile keep an arena from being returned; with 133 MB
of values per round that pinning alone grew RSS by 10-14 MB over 20 rounds under
pytest (pymalloc's bytes in allocated blocks +23 KB, its arenas +13 MB), with 11 MB per
round it levels off after a few rounds. (One send_batch() of 1,000,000 records, 110 MB,
also does not fit the default buffer.memory of 32 MB.)
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import gc
import logging
import os
import time

import pytest

from fastprod import Producer

try:
    from helpers import unique_topic
except ImportError:  # tests/ imported as a package
    from tests.helpers import unique_topic

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                 reason="reads VmRSS from /proc/self/status (Linux)")]

log = logging.getLogger("tests.faults")

ROUNDS = 200
PER_ROUND = 100_000
VALUE_SIZE = 100
MAX_GROWTH = 10 * 1024 * 1024

_libc_name = ctypes.util.find_library("c")
_malloc_trim = getattr(ctypes.CDLL(_libc_name), "malloc_trim", None) if _libc_name else None


def rss_bytes() -> int:
    """Resident set size once garbage is collected and free heap memory returned."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line in /proc/self/status")


def census() -> collections.Counter:
    """Objects the garbage collector tracks, by type: says what grew, if RSS did."""
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def test_rss_flat_over_20_million_records(kafka):
    topic = unique_topic("memory")
    kafka.create_topic(topic, partitions=4, replication_factor=1)
    # Distinct values, cheap to make: "<round:3><index:7>" then padding. The indexes are
    # written once; each round writes its number into every value with three
    # extended-slice assignments and cuts one bytes copy of the pattern into values.
    pad = b"m" * (VALUE_SIZE - 10)
    pattern = bytearray(b"".join(b"000%07d" % i + pad for i in range(PER_ROUND)))
    offsets = range(0, PER_ROUND * VALUE_SIZE, VALUE_SIZE)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 5})
    rss = []
    try:
        for r in range(ROUNDS):
            t0 = time.monotonic()
            digits = b"%03d" % r
            for k in range(3):
                pattern[k::VALUE_SIZE] = digits[k:k + 1] * PER_ROUND
            blob = bytes(pattern)
            values = [blob[o:o + VALUE_SIZE] for o in offsets]
            del blob
            future = producer.send_batch(topic, values)
            producer.flush(timeout=120)
            assert future.done(), f"round {r}: flush returned before the records were sent"
            errors = [e for _, e in future.errors(timeout=0)]
            assert not errors, (f"round {r}: {len(errors)} of {PER_ROUND} records failed, "
                                f"first: {errors[0]!r}")
            del values, future
            rss.append(rss_bytes())
            log.debug("round %d: %.1f s, RSS %.1f MB", r, time.monotonic() - t0,
                      rss[-1] / 1e6)
            if r == 0:
                first = census()
    finally:
        producer.close(timeout=30)
    grown = census()
    grown.subtract(first)
    growth = rss[-1] - rss[0]
    assert growth < MAX_GROWTH, (
        f"RSS grew by {growth / 1e6:.1f} MB from the first round to the last "
        f"(MB every 10 rounds: {[round(x / 1e6, 1) for x in rss[::10]]}); "
        f"tracked objects that grew: {[kv for kv in grown.most_common(8) if kv[1] > 0]}")
