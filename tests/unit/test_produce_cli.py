"""`fastprod produce` without a broker: exit codes, messages, --dry-run counts, --json."""

from __future__ import annotations

import json
import socket

import pytest

from fastprod import cli
from fastprod.produce import EXIT_CODES
from fastprod.produce.cli import EPILOG, unescape
from fastprod.produce.run import (EXIT_BROKER, EXIT_INPUT, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE,
                                  ProduceError, ProduceOptions, resolve_bootstrap, run_produce)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["produce", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_local_broker(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTPROD_CACHE", str(tmp_path / "cache"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_exit_code_is_documented_in_the_help():
    for code in EXIT_CODES:
        assert f"\n  {code} " in EPILOG


def test_missing_file_fails_before_anything_is_sent(capsys, tmp_path):
    ok = tmp_path / "ok.txt"
    ok.write_text("a\n")
    code, out, err = _run(capsys, "t", str(ok), str(tmp_path / "missing.txt"), "-b", "127.0.0.1:1")
    assert code == EXIT_INPUT == 3
    assert err.strip() == f"fastprod produce: {tmp_path / 'missing.txt'}: no such file"


def test_unknown_x_key_is_one_clear_message(capsys, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\n")
    code, _, err = _run(capsys, "t", str(f), "-b", "127.0.0.1:1", "-X", "linger.msec=5")
    assert code == EXIT_USAGE == 2
    assert err.count("\n") == 1 and "bad producer config: unknown config 'linger.msec'" in err
    assert "linger.ms" in err  # the close match


def test_bad_x_value_and_malformed_x(capsys, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\n")
    code, _, err = _run(capsys, "t", str(f), "-b", "127.0.0.1:1", "-X", "acks=most")
    assert code == EXIT_USAGE and "'acks'" in err and "most" in err
    code, _, err = _run(capsys, "t", str(f), "-b", "127.0.0.1:1", "-X", "acks")
    assert code == EXIT_USAGE and "expected KEY=VALUE" in err


def test_config_file_and_x_wins(capsys, tmp_path):
    props = tmp_path / "client.properties"
    props.write_text("bootstrap.servers=127.0.0.1:1\nlinger.ms=notanumber\n")
    f = tmp_path / "in.txt"
    f.write_text("a\n")
    code, _, err = _run(capsys, "t", str(f), "--config", str(props))
    assert code == EXIT_USAGE and "'linger.ms'" in err
    code, _, err = _run(capsys, "t", str(f), "--config", str(tmp_path / "nope.properties"))
    assert code == EXIT_USAGE and "cannot read config file" in err
    # -X overrides the bad value; the broker port is closed, so the run ends at metadata
    code, _, err = _run(capsys, "t", str(f), "--config", str(props), "-X", "linger.ms=5",
                        "-X", f"bootstrap.servers=127.0.0.1:{_closed_port()}", "-X", "max.block.ms=300")
    assert code == EXIT_BROKER, err


def test_unreachable_broker(capsys, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\n")
    port = _closed_port()
    code, out, err = _run(capsys, "t", str(f), "-b", f"127.0.0.1:{port}", "-X", "max.block.ms=300")
    assert code == EXIT_BROKER == 5
    assert err.startswith(f"fastprod produce: cannot reach the cluster at 127.0.0.1:{port}")
    assert err.count("\n") == 1 and out == ""


def test_no_broker_given_and_none_running(capsys, tmp_path, no_local_broker):
    f = tmp_path / "in.txt"
    f.write_text("a\n")
    code, _, err = _run(capsys, "t", str(f))
    assert code == EXIT_BROKER
    assert "fastprod broker start" in err and "--bootstrap-servers" in err
    with pytest.raises(ProduceError):
        resolve_bootstrap({})
    assert resolve_bootstrap({"bootstrap.servers": "h:1"}) == "h:1"


def test_usage_errors(capsys, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("a\n")
    code, _, err = _run(capsys, "t", str(f), "--key-field", "id", "--dry-run")
    assert code == EXIT_USAGE and "--key-field is for --format jsonl" in err
    code, _, err = _run(capsys, "t", "-", "-", "--dry-run")
    assert code == EXIT_USAGE and "stdin (-) can be read only once" in err
    with pytest.raises(SystemExit) as info:
        cli.main(["produce", "t", "-H", "novalue"])
    assert info.value.code == 2


def test_dry_run_counts_and_json(capsys, tmp_path, no_local_broker):
    f = tmp_path / "in.jsonl"
    f.write_text('{"id":1}\n{"id":2}\nnot json\n{"id":3}\n')
    code, out, err = _run(capsys, "t", str(f), "--format", "jsonl", "--key-field", "id",
                          "--dry-run", "--json", "--no-progress")
    assert code == EXIT_SKIPPED == 4
    summary = json.loads(out)
    assert (summary["read"], summary["skipped"], summary["delivered"], summary["not_sent"]) == (4, 1, 0, 0)
    assert summary["malformed"] == [f"{f}:3: invalid JSON: Expecting value at column 1"]
    assert "dry run: read 4 records" in err and f"{f}:3: invalid JSON" in err


def test_strict_stops_the_run(capsys, tmp_path, no_local_broker):
    f = tmp_path / "in.csv"
    f.write_text("a,b\n1,2\n3\n4,5\n")
    code, out, err = _run(capsys, "t", str(f), "--format", "csv", "--strict", "--dry-run", "--json")
    assert code == EXIT_INPUT
    s = json.loads(out)
    assert s["read"] == 2 and s["skipped"] == 1
    assert s["stopped"].startswith(f"{f}:3: 1 fields where the header has 2")


def test_accounting_invariant_on_dry_run(tmp_path):
    f = tmp_path / "in.txt"
    f.write_bytes(b"x\n" * 12345)
    s = run_produce(ProduceOptions("t", [str(f)], dry_run=True))
    assert (s.read, s.skipped, s.bytes, s.exit_code) == (12345, 0, 12345, EXIT_OK)


def test_corrupt_compressed_input_stops_with_exit_3(tmp_path):
    import gzip

    f = tmp_path / "in.txt.gz"
    f.write_bytes(gzip.compress(b"a\n" * 1000)[:-30])
    s = run_produce(ProduceOptions("t", [str(f)], dry_run=True))
    assert s.exit_code == EXIT_INPUT and "cannot read" in (s.stopped or "")


@pytest.mark.parametrize("text,expected", [(r"\n", b"\n"), (r"\t", b"\t"), (r"\x1e", b"\x1e"),
                                           ("||", b"||"), (r"\r\n", b"\r\n"), (r"\0", b"\0")])
def test_delimiter_escapes(text, expected):
    assert unescape(text) == expected


def test_default_bootstrap_is_the_running_fastprod_broker(tmp_path, monkeypatch):
    from fastprod.localkafka import daemon

    monkeypatch.setenv("FASTPROD_CACHE", str(tmp_path))
    state = daemon.state_file()
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"bootstrap_servers": "127.0.0.1:39999",
                                 "nodes": [{"pid": 1, "properties_file": "x"}]}))
    monkeypatch.setattr(daemon, "_jvm_alive", lambda pid, props: True)
    assert resolve_bootstrap({}) == "127.0.0.1:39999"
    monkeypatch.setattr(daemon, "_jvm_alive", lambda pid, props: False)  # stale state
    with pytest.raises(ProduceError, match="fastprod broker start"):
        resolve_bootstrap({})


def test_ingest_refuses_piped_stdin_and_points_to_produce():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "fastprod", "ingest", "--records", "5"],
                          input=b"my,real,data\n", capture_output=True, cwd=root, timeout=60)
    assert proc.returncode == 2
    assert b"fastprod produce TOPIC" in proc.stderr and b"does not read stdin" in proc.stderr


def test_cli_bulk_defaults_then_config_then_flags_then_x(tmp_path):
    from fastprod.produce.cli import CLI_DEFAULTS, _config

    props = tmp_path / "client.properties"
    props.write_text("linger.ms=50\nacks=1\nclient.id=from-file\n")
    parser = cli.build_parser()
    args = parser.parse_args(["produce", "t"])
    assert _config(args) == CLI_DEFAULTS == {"batch.size": "262144", "linger.ms": "20"}
    args = parser.parse_args(["produce", "t", "--config", str(props), "--acks", "all",
                              "-X", "client.id=from-x", "-b", "h:1"])
    assert _config(args) == {"batch.size": "262144", "linger.ms": "50", "acks": "all",
                             "client.id": "from-x", "bootstrap.servers": "h:1"}
