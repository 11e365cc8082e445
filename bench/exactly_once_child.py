"""One run of bench/exactly_once.py in a fresh process: ``python bench/exactly_once_child.py SPEC``.

SPEC_JSON keys:

    client       fastprod-batch (send_batch in chunks of ``chunk``) | fastprod-send (send()
                 per record) | confluent (produce() + poll(0) per record)
    mode         plain (acks=all, no idempotence) | idempotent | transactional
    bootstrap, topic, warmup_topic, records, value_size, chunk
    txn_every    transactional mode: begin / commit every this many records
    config       the client's own config dict (bootstrap.servers added here)
    broker_pid   JVM pid of the broker, or null

The timed window runs from the first send (transactional: the first
begin_transaction()) to the end of the last commit_transaction() (or flush()); the
transactional producer's init_transactions() and one warm-up transaction to another
topic come before it. CPU of this process (every thread: getrusage RUSAGE_SELF), broker
CPU and machine CPU as in bench/sharded_child.py (whose helpers this uses).

The last line on stdout is one JSON object; anything else goes to stderr.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _common import confluent_produce  # noqa: E402
from sharded_child import WARMUP_RECORDS, Window, make_values  # noqa: E402  (also puts ROOT on sys.path)


def _chunks(n: int, every: int | None):
    """(start, stop) of each transaction, or one span for everything."""
    if not every:
        yield 0, n
        return
    for i in range(0, n, every):
        yield i, min(i + every, n)


def run_fastprod(spec: dict, values: list) -> dict:
    from fastprod import Producer

    txn = spec["mode"] == "transactional"
    batch = spec["client"] == "fastprod-batch"
    p = Producer({"bootstrap.servers": spec["bootstrap"], **spec["config"]})
    try:
        if txn:
            p.init_transactions()
            p.begin_transaction()
        if batch:
            p.send_batch(spec["warmup_topic"], values[:WARMUP_RECORDS])
        else:
            for v in values[:WARMUP_RECORDS]:
                p.send(spec["warmup_topic"], v)
        if txn:
            p.commit_transaction()
        else:
            p.flush()
        topic, n, chunk = spec["topic"], len(values), spec["chunk"]
        p.partitions_for(topic)

        window = Window(spec.get("broker_pid"))
        send, send_batch = p.send, p.send_batch
        transactions = 0
        futures = []  # as a careful user: every future checked, inside the window
        window.start()
        for start, stop in _chunks(n, spec["txn_every"] if txn else None):
            if txn:
                p.begin_transaction()
            if batch:
                futures += [send_batch(topic, values[i:min(i + chunk, stop)])
                            for i in range(start, stop, chunk)]
            else:
                futures += [send(topic, values[i]) for i in range(start, stop)]
            if txn:
                p.commit_transaction()
                transactions += 1
        if not txn:
            p.flush()
        failed = sum(len(f.errors()) for f in futures) if batch else \
            sum(f.exception() is not None for f in futures)
        out = window.stop()
        if failed:
            raise RuntimeError(f"fastprod: {failed} records failed")
    finally:
        p.close()
    out["transactions"] = transactions
    return out


def run_confluent(spec: dict, values: list) -> dict:
    from confluent_kafka import Producer

    txn = spec["mode"] == "transactional"
    failed = []  # as a careful user: a delivery report per record, errors kept

    def on_delivery(err, msg) -> None:
        if err is not None:
            failed.append(err)

    p = Producer({"bootstrap.servers": spec["bootstrap"], "on_delivery": on_delivery,
                  **spec["config"]})
    if txn:
        p.init_transactions(60)
        p.begin_transaction()
    for v in values[:WARMUP_RECORDS]:
        p.produce(spec["warmup_topic"], v)
        p.poll(0)
    if txn:
        p.commit_transaction(60)
    else:
        p.flush(60)
    topic, n = spec["topic"], len(values)
    p.list_topics(topic, timeout=10)

    window = Window(spec.get("broker_pid"))
    buffer_full = transactions = 0
    window.start()
    for start, stop in _chunks(n, spec["txn_every"] if txn else None):
        if txn:
            p.begin_transaction()
        buffer_full += confluent_produce(p, topic, values[start:stop])
        if txn:
            p.commit_transaction(120)  # flushes first
            transactions += 1
    left = 0 if txn else p.flush(120)
    out = window.stop()
    if left or failed:
        raise RuntimeError(f"confluent: {left} records undelivered, {len(failed)} failed")
    out["buffer_full_waits"] = buffer_full
    out["transactions"] = transactions
    return out


RUNNERS = {"fastprod-batch": run_fastprod, "fastprod-send": run_fastprod,
           "confluent": run_confluent}


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("fastprod_root"):
        sys.path.insert(0, spec["fastprod_root"])  # before fastprod is first imported
    n = spec["records"]
    values = make_values(max(n, WARMUP_RECORDS), spec["value_size"])
    out = RUNNERS[spec["client"]](spec, values[:n])
    out["records"] = n
    if "fastprod" in sys.modules:
        out["fastprod_file"] = sys.modules["fastprod"].__file__
    out["payload_bytes"] = n * spec["value_size"]
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
