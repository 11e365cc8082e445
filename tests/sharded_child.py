"""A ShardedProducer in a process of its own, for tests/integration/test_sharded.py to kill or Ctrl-C.

Usage: python tests/sharded_child.py MODE BOOTSTRAP TOPIC

Every mode constructs ``ShardedProducer(workers=2)`` (spawn: hence the __main__ guard),
sends one ``b"warm-up"`` record to each partition and waits until they are delivered
(so both workers are up), prints one line ``READY <parent pid> <worker pids...> TRACKER
<resource tracker pid> SHM <segment names...>`` and then sends records ``b"%d" % i``
(key ``b"k%d" % (i % 64)``) one send() at a time, printing ``SENT <n>`` every 1000.

- ``kill``: sends until killed (the test SIGKILLs this process).
- ``sigint``: the same inside ``with ShardedProducer(...)``; on Ctrl-C the ``with``
  block closes the producer (flush), then this prints
  ``RESULT <records whose send() returned> <delivered> <failed> <error types>`` and
  re-raises the KeyboardInterrupt, so the exit status is Python's own for Ctrl-C.
- ``sigint-early``: as ``sigint`` without the warm-up: READY comes right after the
  constructor, while the spawned workers are still starting.

Anything unexpected goes to stderr with exit status 3.
"""

from __future__ import annotations

import os
import pathlib
import sys
import traceback

_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from fastprod.sharded import ShardedProducer  # noqa: E402


def _ready_line(producer: ShardedProducer) -> str:
    from multiprocessing import resource_tracker

    pids = [str(w.process.pid) for w in producer._workers]
    shm = []
    for w in producer._workers:
        shm += [w.records_shm.name, w.reports_shm.name]
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    return f"READY {os.getpid()} {' '.join(pids)} TRACKER {tracker} SHM {' '.join(shm)}"


def _send_forever(producer: ShardedProducer, topic: str, futures: list) -> None:
    i = 0
    while True:
        futures.append(producer.send(topic, b"%d" % i, key=b"k%d" % (i % 64)))
        i += 1
        if i % 1000 == 0:
            # one write call: a Ctrl-C between print's pieces would glue lines together
            sys.stdout.write(f"SENT {i}\n")
            sys.stdout.flush()


def _warm_up(producer: ShardedProducer, topic: str) -> None:
    """One record per partition, delivered: every worker is up and connected."""
    partitions = len(producer.partitions_for(topic))
    for f in [producer.send(topic, b"warm-up", partition=p) for p in range(partitions)]:
        f.result(60)


def main() -> int:
    mode, bootstrap, topic = sys.argv[1:4]
    config = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    futures: list = []
    if mode == "kill":
        producer = ShardedProducer(config, workers=2)
        _warm_up(producer, topic)
        print(_ready_line(producer), flush=True)
        _send_forever(producer, topic, futures)
        return 0
    if mode in ("sigint", "sigint-early"):
        try:
            with ShardedProducer(config, workers=2) as producer:
                if mode == "sigint":
                    _warm_up(producer, topic)
                print(_ready_line(producer), flush=True)
                _send_forever(producer, topic, futures)
        except KeyboardInterrupt:
            delivered = failed = 0
            kinds: set[str] = set()
            for f in futures:
                if not f.done():
                    kinds.add("NOT-DONE")
                    failed += 1
                    continue
                e = f.exception(0)
                if e is None:
                    delivered += 1
                else:
                    failed += 1
                    kinds.add(type(e).__name__)
            kinds_text = ",".join(sorted(kinds)) or "-"
            print(f"\nRESULT {len(futures)} {delivered} {failed} {kinds_text}", flush=True)
            raise
        return 0
    print(f"unknown mode {mode!r}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(3)
