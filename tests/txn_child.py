"""A transactional producer for tests/integration/test_transactions.py to kill with SIGKILL.

Usage: python tests/txn_child.py BOOTSTRAP TOPIC TRANSACTIONAL_ID TXN_TIMEOUT_MS COUNT

Commits one transaction of COUNT records ("committed:<i>"), prints ``COMMITTED <n>``,
then opens a second transaction, sends COUNT records ("dangling:<i>") round-robin over
the topic's partitions, waits until the broker has acknowledged every one of them
(they are in the log, uncommitted), prints ``OPEN <n>`` and sleeps until killed.
Anything unexpected goes to stderr with exit status 1.
"""

from __future__ import annotations

import pathlib
import sys
import time

_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from fastprod import Producer  # noqa: E402


def main() -> int:
    bootstrap, topic, transactional_id, timeout_ms, count = sys.argv[1:6]
    count_n = int(count)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": int(timeout_ms)})
    producer.init_transactions(30)
    partitions = len(producer.partitions_for(topic))

    producer.begin_transaction()
    futures = [producer.send(topic, b"committed:%d" % i, key=b"k%d" % i)
               for i in range(count_n)]
    producer.commit_transaction(30)
    for f in futures:
        f.result(0)
    print(f"COMMITTED {len(futures)}", flush=True)

    producer.begin_transaction()
    futures = [producer.send(topic, b"dangling:%d" % i, partition=i % partitions)
               for i in range(count_n)]
    producer.flush(30)
    for f in futures:
        f.result(0)  # written: the transaction is open on the broker
    print(f"OPEN {len(futures)}", flush=True)
    while True:  # until SIGKILL: no abort, no close, no atexit
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
