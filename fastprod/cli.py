"""The ``fastprod`` command.

One argparse subparser per command group; each handler is a small function taking the
parsed namespace and returning an exit code. Heavy modules are imported inside handlers so
``fastprod --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from collections.abc import Sequence

from fastprod._version import __version__


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


# -- fastprod broker ... ----------------------------------------------------------------------
def _broker_fetch(args: argparse.Namespace) -> int:
    from fastprod.localkafka import jars

    print(jars.ensure_jars())
    return 0


def _broker_classpath(args: argparse.Namespace) -> int:
    from fastprod.localkafka import jars

    print(jars.classpath())
    return 0


def _broker_start(args: argparse.Namespace) -> int:
    from fastprod.localkafka import daemon

    state = daemon.start_detached(
        args.nodes,
        args.port,
        num_partitions=args.partitions,
        auto_create_topics=not args.no_auto_create_topics,
        broker_config=dict(args.config),
        heap=args.heap,
        security=args.security is not None,
    )
    pids = ", ".join(str(n["pid"]) for n in state["nodes"])
    if args.security is None:
        print(state["bootstrap_servers"])
    else:
        _print_security(state["security"], args.security.upper(), args.sasl_mechanism)
    print(
        f"Kafka {state['kafka_version']}: {len(state['nodes'])} node(s) up in "
        f"{state['startup_seconds']:.1f}s (pids {pids}); logs in {state['workdir']}; "
        "stop with: fastprod broker stop",
        file=sys.stderr,
    )
    return 0


def _print_security(sec: dict, listener: str, mechanism: str) -> None:
    """The client settings of one listener on stdout (paste them into a client's
    config), every listener's address on stderr."""
    from fastprod.localkafka.security import render_client_properties

    sasl = listener.startswith("SASL_")
    cfg = sec["client_configs"][f"{listener}/{mechanism}" if sasl else listener]
    who = f", {mechanism} as {sec['users'][0]}" if sasl else ""
    print(f"# fastprod local Kafka: {listener} listener{who}")
    print(render_client_properties(cfg), end="")
    print("listeners (PLAINTEXT stays for tools; MTLS wants client.p12 or client.pem + "
          "client-key.pem from the certificates dir; WRONG_HOST/EXPIRED/UNTRUSTED present bad "
          "certificates on purpose):", file=sys.stderr)
    _print_listeners(sec, sys.stderr)
    print(f"users (PLAIN and SCRAM-SHA-256/512): {', '.join(sec['users'])}; "
          f"certificates in {sec['dir']}", file=sys.stderr)


def _print_listeners(sec: dict, out) -> None:  # type: ignore[no-untyped-def]
    for name, addr in sec["listeners"].items():
        print(f"  {name:<15} {addr}", file=out)


def _broker_status(args: argparse.Namespace) -> int:
    from fastprod.localkafka import daemon

    st = daemon.status()
    if st is None:
        print("not running")
        return 1
    print(f"bootstrap.servers={st['bootstrap_servers']}  cluster.id={st['cluster_id']}")
    for n in st["nodes"]:
        if n["answers"]:
            state = f"answers Metadata, brokers {n['brokers']}"
        elif n["running"]:
            state = f"running but not answering ({n['error']})"
        else:
            state = "not running"
        print(f"  node {n['node_id']}  127.0.0.1:{n['port']}  pid {n['pid']}  {state}")
    if "security" in st:
        print(f"secured listeners (certificates in {st['security']['dir']}):")
        _print_listeners(st["security"], sys.stdout)
    if st["healthy"]:
        return 0
    print("degraded" if st["alive"] else "stopped (stale state; `fastprod broker stop` cleans up)")
    return 1


def _broker_stop(args: argparse.Namespace) -> int:
    from fastprod.localkafka import daemon

    if not daemon.stop_detached(keep_data=args.keep_data):
        print("not running")
        return 0
    print("stopped")
    return 0


def _add_broker(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    broker = sub.add_parser(
        "broker",
        help="run a local Apache Kafka for development and demos",
        description="Run a real local Apache Kafka (KRaft) on 127.0.0.1, detached.",
    )
    bsub = broker.add_subparsers(dest="broker_command", metavar="COMMAND", required=True)

    p = bsub.add_parser("start", help="start a broker (or 3-node cluster) and return")
    p.add_argument("--nodes", type=int, choices=(1, 3), default=1, help="number of nodes (default 1)")
    p.add_argument("--port", type=int, default=None, help="client port of node 1 (node i: PORT+i-1); default: free ports")
    p.add_argument("--partitions", type=int, default=1, help="num.partitions for auto-created topics")
    p.add_argument("--no-auto-create-topics", action="store_true", help="auto.create.topics.enable=false")
    p.add_argument("--config", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="any server.properties override (repeatable)")  # fmt: skip
    p.add_argument("--heap", default=None, help="JVM max heap per node (default 512m)")
    p.add_argument("--security", nargs="?", const="sasl_ssl", default=None,
                   choices=("ssl", "mtls", "sasl_plaintext", "sasl_ssl"), metavar="KIND",
                   help="add TLS and SASL listeners (every kind) beside PLAINTEXT and print the "
                        "client settings of KIND: ssl, mtls, sasl_plaintext or sasl_ssl (default)")  # fmt: skip
    p.add_argument("--sasl-mechanism", default="PLAIN", choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
                   help="mechanism of the printed SASL settings (default PLAIN)")  # fmt: skip
    p.set_defaults(func=_broker_start)

    p = bsub.add_parser("status", help="show whether the local broker runs and answers")
    p.set_defaults(func=_broker_status)

    p = bsub.add_parser("stop", help="stop the local broker and delete its data")
    p.add_argument("--keep-data", action="store_true", help="keep the data/log dir")
    p.set_defaults(func=_broker_stop)

    p = bsub.add_parser("fetch", help="download the Kafka jars (Maven) and print their dir")
    p.set_defaults(func=_broker_fetch)

    p = bsub.add_parser("classpath", help="print the Java classpath of the Kafka jars")
    p.set_defaults(func=_broker_classpath)


# -- fastprod ingest ----------------------------------------------------------------------------
def _stdin_has_data(wait: float = 0.2) -> bool:
    """True when records are piped or redirected into the command (`cat f | fastprod
    ingest`); a terminal, /dev/null, or a pipe that stays empty and open is not."""
    import os
    import select
    import stat

    try:
        st = os.fstat(0)
    except OSError:  # no stdin at all
        return False
    if stat.S_ISREG(st.st_mode):
        return st.st_size > 0
    if not stat.S_ISFIFO(st.st_mode) and not stat.S_ISSOCK(st.st_mode):
        return False
    readable, _, _ = select.select([0], [], [], wait)
    return bool(readable) and bool(os.read(0, 1))  # at EOF: readable with nothing in it


def _ingest(args: argparse.Namespace) -> int:
    from fastprod import ingest

    if _stdin_has_data():
        print("fastprod ingest: error: ingest produces synthetic demo events and does not "
              "read stdin; to produce your own records use `fastprod produce TOPIC` "
              "(stdin or files; see `fastprod produce --help`)", file=sys.stderr)
        return 2
    if not args.verbose:  # the command narrates at INFO; other libraries stay at WARNING
        logging.getLogger("fastprod").setLevel(logging.INFO)
    opts = ingest.IngestOptions(
        records=args.records, bootstrap=args.bootstrap, topic=args.topic,
        partitions=args.partitions, replication_factor=args.replication_factor,
        compression=args.compression, value_size=args.value_size, keyed=args.keyed,
        mode=args.mode, chunk_size=args.chunk_size,
        verify="none" if args.no_verify else args.verify, reader=args.reader,
        producer_config=dict(args.producer_config),
    )  # fmt: skip
    result = ingest.run_ingest(opts, ingest.ConsoleReporter())
    return 0 if result.ok else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_ingest(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ingest",
        help="produce N JSON events with fastprod, time it, and read them back",
        description="Generate small JSON events, produce them with fastprod (progress on "
        "stderr), report records/s and MB/s, then check with an independent consumer that "
        "the topic holds them all. Without --bootstrap a local one-node Kafka is started "
        "for the run and stopped at the end.",
    )
    p.add_argument("--records", "-n", type=_positive, default=1_000_000, help="records to produce (default 1000000)")
    p.add_argument("--bootstrap", metavar="HOST:PORT[,...]", help="an existing Kafka; default: start a local one")
    p.add_argument("--topic", help="topic (created if missing; default: a new fastprod-ingest-* topic)")
    p.add_argument("--partitions", type=_positive, default=6, help="partitions of a created topic (default 6)")
    p.add_argument("--replication-factor", type=int, default=None,
                   help="of a created topic (default 1 locally, the broker's default otherwise)")  # fmt: skip
    p.add_argument("--compression", choices=("none", "gzip", "snappy", "lz4", "zstd"), default="lz4",
                   help="compression.type (default lz4)")  # fmt: skip
    p.add_argument("--value-size", type=_positive, default=100, help="approximate bytes per JSON value (default 100)")
    p.add_argument("--keyed", action="store_true", help="key each record with its user id")
    p.add_argument("--mode", choices=("batch", "send"), default="batch",
                   help="batch: send_batch() per chunk (default); send: send() per record")  # fmt: skip
    p.add_argument("--chunk-size", type=_positive, default=10_000, help="records per send_batch() (default 10000)")
    p.add_argument("--verify", choices=("count", "full", "none"), default="count",
                   help="count: end offsets (default); full: read every record back and compare")  # fmt: skip
    p.add_argument("--no-verify", action="store_true", help="skip the read-back (same as --verify none)")
    p.add_argument("--reader", choices=("auto", "kafka-python", "java"), default="auto",
                   help="independent reader for the check (auto: kafka-python if installed, else Java)")  # fmt: skip
    p.add_argument("--producer-config", "-X", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="extra producer config, Java names, e.g. -X linger.ms=20 (repeatable)")  # fmt: skip
    p.set_defaults(func=_ingest)


# -- entry point ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastprod", description="fastprod: a fast Apache Kafka producer")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version",
                        version=f"fastprod {__version__} (Python {platform.python_version()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_broker(sub)
    _add_ingest(sub)
    from fastprod.produce.cli import add_parser as _add_produce

    _add_produce(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a CLI reports, it does not dump tracebacks
        if args.verbose:
            raise
        print(f"fastprod: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
