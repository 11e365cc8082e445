"""The ``fastprod produce`` subcommand: its arguments and its handler. Imported when the
parser is built, so it stays light: the producer is imported only when a run starts."""

from __future__ import annotations

import argparse
import codecs
import sys

FORMATS = ("lines", "jsonl", "csv", "tsv", "file")
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")

EPILOG = """\
exit codes:
  0    every record read was acknowledged by the broker
  1    some records failed (the producer reported an error for them)
  2    bad command line, -X or --config value (nothing sent)
  3    an input could not be read (missing, unreadable, corrupt), or --strict stopped
       at a malformed record
  4    malformed records were skipped; every other record was acknowledged
  5    no broker: none given and no local one running, or unreachable
  130  interrupted (Ctrl-C); what was read before was flushed

Config precedence: the command's bulk-loading defaults (batch.size=262144,
linger.ms=20; the Java producer's own defaults otherwise), then --config FILE, then the
options above (--acks, --compression, --bootstrap-servers), then -X, each over the one
before.
Input compressed with gzip, zstd, lz4 (frame) or bz2 is read transparently.
"""


def unescape(text: str) -> bytes:
    """A delimiter as typed on a shell: backslash escapes (\\n, \\t, \\0, \\x1e) allowed."""
    try:
        return codecs.escape_decode(text.encode("utf-8"))[0]  # type: ignore[attr-defined]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"bad escape in {text!r}: {e}") from None


def _header(text: str) -> tuple[str, bytes]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected -H NAME=VALUE, got {text!r}")
    return key, value.encode("utf-8")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "produce",
        help="produce the records of files or stdin (lines, JSON Lines, CSV/TSV, whole files)",
        description="Read records from FILEs (globs and directories expand to their files "
                    "in sorted order; none or '-' is stdin) and produce them to TOPIC. "
                    "Progress on stderr; a summary at the end (--json for a machine).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("files", metavar="FILE", nargs="*", help="inputs (default: stdin)")
    f = p.add_argument_group("input")
    f.add_argument("--format", "-f", choices=FORMATS, default="lines",
                   help="lines (default), jsonl, csv, tsv, or file (each file one record)")
    f.add_argument("--delimiter", "-D", type=unescape, default=b"\n", metavar="DELIM",
                   help=r"record delimiter of --format lines (default \n; escapes allowed)")
    f.add_argument("--key-delimiter", "-K", type=unescape, default=None, metavar="DELIM",
                   help=r"lines are KEY<DELIM>VALUE, as kcat -K (e.g. -K '\t'); "
                        "a line without it has no key")
    f.add_argument("--key-field", metavar="FIELD", help="jsonl: key from this field (a name, or a JSON pointer /a/b)")
    f.add_argument("--value-field", metavar="FIELD", help="jsonl: the value is this field, not the whole line")
    f.add_argument("--timestamp-field", metavar="FIELD", help="jsonl: record timestamp (ms since epoch or ISO 8601)")
    f.add_argument("--headers-field", metavar="FIELD", help='jsonl: headers from an object {"name": "value"} or [[name, value], ...]')
    f.add_argument("--key-column", metavar="COLUMN", help="csv/tsv: key from this column (header name or 0-based index)")
    f.add_argument("--no-header", action="store_true", help="csv/tsv: the first row is data, not column names")
    f.add_argument("--value-as", choices=("raw", "json"), default="raw",
                   help="csv/tsv: the value is the raw row (default) or a JSON object of it")
    f.add_argument("--strict", action="store_true", help="stop at the first malformed record (default: skip and count it)")
    r = p.add_argument_group("records and producer")
    r.add_argument("--header", "-H", type=_header, action="append", default=[], metavar="NAME=VALUE",
                   help="a header on every record (repeatable)")
    r.add_argument("--partition", "-p", type=_non_negative, default=None, help="send every record to this partition")
    r.add_argument("--bootstrap-servers", "-b", metavar="HOST:PORT[,...]",
                   help="the cluster (default: the running `fastprod broker`)")
    r.add_argument("--compression", choices=COMPRESSIONS, default=None, help="compression.type")
    r.add_argument("--acks", choices=("all", "-1", "0", "1"), default=None, help="acks (default all)")
    r.add_argument("--config", metavar="FILE", help="producer config in Java properties format (client.properties)")
    r.add_argument("-X", dest="props", action="append", default=[], metavar="KEY=VALUE",
                   help="a producer config with its Java name, e.g. -X linger.ms=20 (repeatable; wins over --config)")
    r.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="send through a ShardedProducer with N worker processes")
    r.add_argument("--rate", type=_positive_float, default=None, metavar="RECORDS_PER_S", help="at most this many records per second")
    o = p.add_argument_group("run")
    o.add_argument("--dry-run", action="store_true", help="read and count, send nothing (no broker needed)")
    o.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    o.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=run_command)


# Like kafka-console-producer, the command has its own defaults for its job, bulk loading
# from files: batches of 256 KiB rather than Java's 16 KiB (librdkafka, behind kcat, uses
# 1 MB) and a 20 ms linger to fill them. Measured in bench/RESULTS.md; --config/-X override.
CLI_DEFAULTS = {"batch.size": "262144", "linger.ms": "20"}


def _config(args: argparse.Namespace) -> dict[str, str]:
    from .properties import load_properties, parse_option

    config: dict[str, str] = dict(CLI_DEFAULTS)
    if args.config:
        config.update(load_properties(args.config))
    if args.bootstrap_servers:
        config["bootstrap.servers"] = args.bootstrap_servers
    if args.compression:
        config["compression.type"] = args.compression
    if args.acks:
        config["acks"] = args.acks
    for text in args.props:
        key, value = parse_option(text)
        config[key] = value
    return config


def run_command(args: argparse.Namespace) -> int:
    from .console import ConsoleReporter, format_summary, summary_json
    from .properties import PropertiesError
    from .readers import ReadOptions
    from .run import EXIT_USAGE, NullReporter, ProduceError, ProduceOptions, run_produce

    try:
        config = _config(args)
    except PropertiesError as e:
        print(f"fastprod produce: {e}", file=sys.stderr)
        return EXIT_USAGE
    read = ReadOptions(format=args.format, delimiter=args.delimiter,
                       key_delimiter=args.key_delimiter, key_field=args.key_field,
                       value_field=args.value_field, timestamp_field=args.timestamp_field,
                       headers_field=args.headers_field, key_column=args.key_column,
                       header=not args.no_header, value_as=args.value_as)
    opts = ProduceOptions(topic=args.topic, files=list(args.files), read=read,
                          headers=list(args.header), partition=args.partition,
                          workers=args.workers, config=config, rate=args.rate,
                          dry_run=args.dry_run, strict=args.strict)
    reporter = NullReporter() if args.no_progress else ConsoleReporter()
    try:
        summary = run_produce(opts, reporter)
    except ProduceError as e:
        print(f"fastprod produce: {e}", file=sys.stderr)
        return e.exit_code
    print(format_summary(summary), file=sys.stderr)
    if args.json:
        print(summary_json(summary), flush=True)
    return summary.exit_code
