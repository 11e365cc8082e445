"""The ``fastprod`` command.

One argparse subparser per command group; each handler is a small function taking the
parsed namespace and returning an exit code. Heavy modules are imported inside handlers so
``fastprod --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


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
    )
    pids = ", ".join(str(n["pid"]) for n in state["nodes"])
    print(state["bootstrap_servers"])
    print(
        f"Kafka {state['kafka_version']}: {len(state['nodes'])} node(s) up in "
        f"{state['startup_seconds']:.1f}s (pids {pids}); logs in {state['workdir']}; "
        "stop with: fastprod broker stop",
        file=sys.stderr,
    )
    return 0


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


# -- entry point ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastprod", description="fastprod: a fast Apache Kafka producer")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_broker(sub)
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
