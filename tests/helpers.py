"""Helpers shared by the integration tests that check what a failure left in the log
(tests/faults/): values "<partition>:<sequence>:" make loss,
duplicates and order visible in what an independent reader (tests/readers.py) returns,
independent of what the futures claim.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter, defaultdict

try:
    import readers
except ImportError:  # tests/ imported as a package
    from tests import readers

VALUE_RE = re.compile(rb"^(\d+):(\d+):")


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def value_for(partition: int, seq: int, pad: bytes = b"") -> bytes:
    return b"%d:%d:" % (partition, seq) + pad


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def settle(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> None:
    """Wait until every partition's leader really serves the partition (ListOffsets
    answers): right after CreateTopics a leader may still say NOT_LEADER_OR_FOLLOWER,
    and these tests are about other failures."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "fastprod-failover"})
    deadline = time.monotonic() + timeout
    try:
        for p in range(partitions):
            while True:
                try:
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                                   cached=False)
                    break
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    finally:
        consumer.close()


class Problems:
    """Collect the first few problems and fail once with all of them."""

    def __init__(self, label: str, limit: int = 10) -> None:
        self.label = label
        self.limit = limit
        self.items: list[str] = []
        self.count = 0

    def add(self, msg: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(msg)

    def check(self) -> None:
        if self.count:
            raise AssertionError(f"{self.label}: {self.count} problem(s), first ones:\n  "
                                 + "\n  ".join(self.items))


def parse(records) -> dict[int, list[tuple[int, int]]]:
    """{partition: [(offset, seq), ...]} in offset order, from "<p>:<seq>:" values."""
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for r in readers.by_partition_offset(records):
        m = VALUE_RE.match(r.value or b"")
        assert m, f"unexpected value at {r.partition}/{r.offset}: {r.value!r:.80}"
        assert int(m.group(1)) == r.partition, \
            f"{r.value!r:.40} was written to partition {r.partition}"
        out[r.partition].append((r.offset, int(m.group(2))))
    return out


def check_exactly_once_in_order(label: str, records, expected: dict[int, list[int]],
                                metas: dict[tuple[int, int], object] | None = None) -> None:
    """Each partition holds exactly the expected sequence numbers, each once, in send
    order; and where a future reported (partition, offset), that offset holds that
    record."""
    bad = Problems(label)
    got = parse(records)
    for p in sorted(set(expected) | set(got)):
        seqs = [s for _, s in got.get(p, [])]
        want = expected.get(p, [])
        counts = Counter(seqs)
        dups = sorted(s for s, c in counts.items() if c > 1)
        missing = sorted(set(want) - set(counts))
        extra = sorted(set(counts) - set(want))
        if dups:
            bad.add(f"partition {p}: {len(dups)} sequence(s) written more than once, "
                    f"e.g. {dups[:5]}")
        if missing:
            bad.add(f"partition {p}: {len(missing)} sequence(s) lost, e.g. {missing[:5]}")
        if extra:
            bad.add(f"partition {p}: {len(extra)} unexpected sequence(s), e.g. {extra[:5]}")
        seq_pos = {s: i for i, s in enumerate(want)}
        positions = [seq_pos[s] for s in seqs if s in seq_pos]
        breaks = [(a, b) for a, b in zip(positions, positions[1:]) if b <= a]
        if breaks:
            a, b = breaks[0]
            bad.add(f"partition {p}: send order broken {len(breaks)} time(s), first: "
                    f"sequence {want[b]} stored after {want[a]}")
    if metas:
        check_futures(bad, got, metas)
    bad.check()


def check_futures(bad: Problems, got: dict[int, list[tuple[int, int]]],
                  metas: dict[tuple[int, int], object]) -> None:
    """Where a future reported (partition, offset), that offset holds that record."""
    at = {(p, off): s for p, rows in got.items() for off, s in rows}
    for (p, seq), md in metas.items():
        if md.offset < 0:
            continue  # DUPLICATE_SEQUENCE_NUMBER success: Java gives no offset either
        if md.partition != p or at.get((p, md.offset)) != seq:
            bad.add(f"future of {p}:{seq} says {md.partition}/{md.offset}, which holds "
                    f"sequence {at.get((md.partition, md.offset))}")


def outcomes(futures: dict[tuple[int, int], object], timeout: float = 60):
    """(metadata by (p, seq), errors by (p, seq)) of completed futures."""
    metas, errors = {}, {}
    for key, f in futures.items():
        exc = f.exception(timeout=timeout)
        if exc is None:
            metas[key] = f.result(timeout=0)
        else:
            errors[key] = exc
    return metas, errors


def summarize_errors(errors: dict) -> str:
    kinds = Counter(f"{type(e).__name__}: {str(e)[:120]}" for e in errors.values())
    return "; ".join(f"{n} x {k}" for k, n in kinds.most_common(5))


def retry_errors(caplog, topic: str) -> list[BaseException]:
    """The errors the sender logged a retry for, for this topic's partitions."""
    out = []
    for r in caplog.records:
        msg = r.getMessage()
        if msg.startswith("retrying") and topic in msg:
            out.extend(a for a in r.args or () if isinstance(a, BaseException))
    return out
