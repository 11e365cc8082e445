"""fastprod.localkafka: jars, config, the raw probe, starting/stopping real Kafka nodes,
the pytest fixtures and the ``fastprod broker`` CLI."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from fastprod.localkafka import (
    ExternalKafka,
    KafkaStartError,
    LocalKafka,
    classpath,
    ensure_jars,
    jars,
    probe,
    run_tool,
)
from fastprod.localkafka.config import NodeSpec, new_cluster_id, render_properties, server_properties

REPO = pathlib.Path(__file__).resolve().parents[2]


def _pid_alive(pid: int) -> bool:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _wait_until(cond, timeout: float, step: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _our_jvms(marker: str) -> list[int]:
    """Pids of live JVMs whose command line mentions ``marker`` (a dir of ours)."""
    pids = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if b"java" in cmd and marker.encode() in cmd and _pid_alive(int(d.name)):
            pids.append(int(d.name))
    return pids


# -- unit: no broker needed ------------------------------------------------------------------
def test_cluster_id_looks_like_a_kafka_uuid() -> None:
    for _ in range(50):
        cid = new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert set(cid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_config_replication_factors_follow_cluster_size(tmp_path: pathlib.Path) -> None:
    one = [NodeSpec(1, 9092, 9093, tmp_path / "n1")]
    p1 = server_properties(one[0], one, num_partitions=4, auto_create_topics=False)
    assert p1["process.roles"] == "broker,controller"
    assert p1["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert p1["offsets.topic.replication.factor"] == "1"
    assert p1["transaction.state.log.min.isr"] == "1"
    assert p1["num.partitions"] == "4"
    assert p1["auto.create.topics.enable"] == "false"
    assert p1["group.initial.rebalance.delay.ms"] == "0"

    three = [NodeSpec(i, 9000 + i, 9100 + i, tmp_path / f"n{i}") for i in (1, 2, 3)]
    p3 = server_properties(three[1], three, overrides={"min.insync.replicas": 2})
    assert p3["node.id"] == "2"
    assert p3["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert p3["controller.quorum.voters"] == "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    assert p3["offsets.topic.replication.factor"] == "3"
    assert p3["transaction.state.log.replication.factor"] == "3"
    assert p3["transaction.state.log.min.isr"] == "2"
    assert p3["min.insync.replicas"] == "2"
    assert "log.dirs=" + str(tmp_path / "n2" / "data") in render_properties(p3)


def test_metadata_request_bytes() -> None:
    req = probe.encode_metadata_request(7, ["ab"])
    size, api_key, version, cid, client_len = struct.unpack_from(">ihhih", req)
    assert size == len(req) - 4
    assert (api_key, version, cid) == (3, 4, 7)
    body = req[4 + 10 + client_len :]
    assert body == struct.pack(">ih2s?", 1, 2, b"ab", False)
    assert probe.encode_metadata_request(1, None).endswith(struct.pack(">i?", -1, False))


def test_metadata_response_parsing() -> None:
    def s(x: str) -> bytes:
        return struct.pack(">h", len(x)) + x.encode()

    resp = struct.pack(">ii", 5, 0)  # correlation id, throttle
    resp += struct.pack(">i", 1) + struct.pack(">i", 1) + s("127.0.0.1") + struct.pack(">ih", 9092, -1)
    resp += s("cid") + struct.pack(">i", 1)
    resp += struct.pack(">i", 1) + struct.pack(">h", 0) + s("t") + struct.pack(">?", False)
    resp += struct.pack(">i", 1) + struct.pack(">hiii", 0, 0, 1, 1) + struct.pack(">i", 1)
    resp += struct.pack(">ii", 1, 1)
    md = probe.decode_metadata_response(resp, 5)
    assert md.broker_ids == {1} and md.cluster_id == "cid" and md.controller_id == 1
    assert md.topics["t"].partitions[0].leader == 1
    with pytest.raises(probe.ProbeError):
        probe.decode_metadata_response(resp[:-3], 5)


def test_parse_bootstrap() -> None:
    assert probe.parse_bootstrap("127.0.0.1:1, localhost:2,") == [("127.0.0.1", 1), ("localhost", 2)]


def test_probe_refused_port_raises_probe_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(probe.ProbeError):
        probe.metadata("127.0.0.1", port, timeout=1)


def _s(x: str | None) -> bytes:
    """A non-flexible (int16 length) Kafka string."""
    if x is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(x)) + x.encode()


def test_create_topics_request_bytes() -> None:
    req = probe.encode_create_topics_request(9, "t1", 3, 2, {"retention.ms": "1000", "x": None},
                                             7000)
    size, api_key, version, cid, client_len = struct.unpack_from(">ihhih", req)
    assert size == len(req) - 4
    assert (api_key, version, cid) == (19, 4, 9)
    body = req[4 + 10 + client_len :]
    assert body == (struct.pack(">i", 1) + _s("t1") + struct.pack(">ihi", 3, 2, 0)
                    + struct.pack(">i", 2) + _s("retention.ms") + _s("1000") + _s("x") + _s(None)
                    + struct.pack(">i?", 7000, False))


def test_create_topics_response_parsing() -> None:
    resp = struct.pack(">ii", 4, 0)  # correlation id, throttle
    resp += struct.pack(">i", 2) + _s("a") + struct.pack(">h", 0) + _s(None)
    resp += _s("b") + struct.pack(">h", 36) + _s("Topic 'b' already exists.")
    assert probe.decode_create_topics_response(resp, 4) == {
        "a": (0, None), "b": (probe.TOPIC_ALREADY_EXISTS, "Topic 'b' already exists.")}
    with pytest.raises(probe.ProbeError):
        probe.decode_create_topics_response(resp[:-3], 4)
    with pytest.raises(probe.ProbeError, match="correlation id"):
        probe.decode_create_topics_response(resp, 5)


@pytest.mark.parametrize("size", [-1, 2**31 - 1])
def test_probe_bad_frame_size_raises_probe_error(size: int) -> None:
    """A peer that answers with a negative or absurd size prefix is a ProbeError, not a
    ValueError or a 2 GiB read."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def answer() -> None:
            conn, _ = server.accept()
            with conn, contextlib.suppress(OSError):
                conn.recv(1024)
                conn.sendall(struct.pack(">i", size) + b"\0" * 8)
                conn.recv(1024)  # until the probe closes its end

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(probe.ProbeError, match="size"):
            probe.metadata("127.0.0.1", server.getsockname()[1], timeout=2)
        thread.join(5)


def test_jars_are_cached_and_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    libs = ensure_jars()
    assert (libs / jars.MARKER).is_file()
    names = {p.name for p in libs.glob("*.jar")}
    for prefix in ("kafka-clients-4.3.1", "kafka_2.13-4.3.1", "kafka-tools-4.3.1", "log4j-slf4j-impl-"):
        assert any(n.startswith(prefix) for n in names), prefix
    assert not str(libs).startswith(str(REPO))
    # Idempotent: a second call must not run Maven again.
    monkeypatch.setattr(jars.subprocess, "run", lambda *a, **k: pytest.fail("mvn ran again"))
    assert ensure_jars() == libs
    cp = classpath().split(os.pathsep)
    assert len(cp) == len(names) and all(os.path.isfile(p) for p in cp)


def test_cli_help() -> None:
    from fastprod.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["broker", "start", "--nodes", "3", "--port", "19092", "--config", "a=b"])
    assert (args.nodes, args.port, args.config) == (3, 19092, [("a", "b")])
    with pytest.raises(SystemExit):
        parser.parse_args(["broker", "start", "--nodes", "2"])


# -- integration: real brokers ------------------------------------------------------------------
@pytest.mark.integration
def test_single_broker_answers_metadata(kafka: LocalKafka | ExternalKafka) -> None:
    md = kafka.metadata()
    assert len(md.brokers) >= 1
    if isinstance(kafka, LocalKafka):
        assert md.broker_ids == {1}
        assert md.cluster_id == kafka.cluster_id
        assert kafka.bootstrap_servers == f"127.0.0.1:{kafka.nodes[0].port}"
        assert kafka.nodes[0].pid is not None and _pid_alive(kafka.nodes[0].pid)
        assert kafka.startup_seconds is not None

    kafka.create_topic("lk-single", partitions=3, config={"retention.ms": 3600000})
    t = kafka.metadata(["lk-single"]).topics["lk-single"]
    assert t.error_code == 0 and len(t.partitions) == 3
    assert all(p.leader >= 0 for p in t.partitions)
    kafka.create_topic("lk-single", partitions=3, exist_ok=True)
    with pytest.raises(RuntimeError, match="already exists"):
        kafka.create_topic("lk-single", partitions=3)


@pytest.mark.integration
def test_single_broker_round_trip_with_another_client(kafka: LocalKafka | ExternalKafka) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    kafka.create_topic("lk-roundtrip", partitions=1, exist_ok=True)
    p = confluent_kafka.Producer({"bootstrap.servers": kafka.bootstrap_servers})
    p.produce("lk-roundtrip", key=b"k", value=b"hello")
    assert p.flush(30) == 0
    c = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": "lk", "enable.auto.commit": False}
    )
    try:
        # assign(), not subscribe(): no group join, so no wait for __consumer_offsets.
        c.assign([confluent_kafka.TopicPartition("lk-roundtrip", 0, confluent_kafka.OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        msg = None
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                break
        assert msg is not None and msg.value() == b"hello"
    finally:
        c.close()


@pytest.mark.integration
def test_java_tools_run_from_classpath(kafka: LocalKafka | ExternalKafka) -> None:
    kafka.create_topic("lk-tools", partitions=2, exist_ok=True)
    out = run_tool(
        "org.apache.kafka.tools.TopicCommand",
        ["--bootstrap-server", kafka.bootstrap_servers, "--describe", "--topic", "lk-tools"],
    )
    assert out.returncode == 0, out.stdout
    assert "PartitionCount: 2" in out.stdout


@pytest.mark.integration
def test_three_node_cluster_comes_up(kafka_cluster3: LocalKafka) -> None:
    k = kafka_cluster3
    assert len(k.bootstrap_servers.split(",")) == 3
    for n in k.nodes:
        md = probe.metadata("127.0.0.1", n.port)
        assert md.broker_ids == {1, 2, 3}
        assert md.cluster_id == k.cluster_id
    k.create_topic("lk-rf3", partitions=3, replication_factor=3, config={"min.insync.replicas": 2})
    t = k.metadata(["lk-rf3"]).topics["lk-rf3"]
    assert {p.leader for p in t.partitions} <= {1, 2, 3}
    assert all(sorted(p.isr) == [1, 2, 3] for p in t.partitions)


@pytest.mark.integration
def test_kill_and_restart_a_node(kafka_cluster3: LocalKafka) -> None:
    k = kafka_cluster3
    node = k.node(2)
    port, data, pid = node.port, node.spec.data_dir, node.pid
    assert pid is not None
    k.kill(2)  # SIGKILL: a crash
    assert not node.is_running() and not _pid_alive(pid)
    with pytest.raises(probe.ProbeError):
        probe.metadata("127.0.0.1", port, timeout=1)
    # The survivors keep answering.
    assert k.metadata().brokers
    assert not k.healthy

    t0 = time.monotonic()
    k.start_node(2)
    restart = time.monotonic() - t0
    assert node.is_running() and node.port == port and node.spec.data_dir == data
    assert node.pid != pid
    md = probe.metadata("127.0.0.1", port)
    assert md.broker_ids == {1, 2, 3} and md.cluster_id == k.cluster_id
    assert restart < 30

    # Graceful stop and restart of another node.
    k.restart_node(3)
    assert k.healthy and probe.metadata("127.0.0.1", k.node(3).port).broker_ids == {1, 2, 3}


def _wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """SIGSTOP takes effect asynchronously: wait until the kernel shows the JVM stopped,
    so a request already being answered cannot make the probe below succeed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                time.sleep(0.2)  # let an in-flight answer drain before probing
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop within {timeout} s")


@pytest.mark.integration
def test_paused_node_is_resumed_by_ensure_running(kafka_cluster3: LocalKafka) -> None:
    k = kafka_cluster3
    k.kill(3, signal.SIGSTOP)  # a hung broker: the port accepts but nobody answers
    _wait_stopped(k.node(3).pid)
    assert not k.healthy
    with pytest.raises(probe.ProbeError):
        probe.metadata("127.0.0.1", k.node(3).port, timeout=0.5)
    k.ensure_running()
    assert k.healthy
    assert probe.metadata("127.0.0.1", k.node(3).port).broker_ids == {1, 2, 3}


@pytest.mark.integration
def test_a_test_that_leaves_a_node_dead(kafka_cluster3: LocalKafka) -> None:
    kafka_cluster3.kill(1)
    assert not kafka_cluster3.healthy


@pytest.mark.integration
def test_the_next_test_gets_the_cluster_healed(kafka_cluster3: LocalKafka) -> None:
    # Relies on running right after the previous test (file order): the plugin's
    # pytest_runtest_setup hook restarted node 1 before this test began.
    assert kafka_cluster3.healthy
    assert probe.metadata("127.0.0.1", kafka_cluster3.node(1).port).broker_ids == {1, 2, 3}


@pytest.mark.integration
def test_failed_start_raises_with_log_tail(tmp_path: pathlib.Path) -> None:
    # The port is taken, so the broker itself (not the formatter) fails to bind.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        k = LocalKafka(port=port, workdir=tmp_path / "busy", start_timeout=60)
        with pytest.raises(KafkaStartError) as ei:
            k.start()
    msg = str(ei.value)
    assert "server.log" in msg and "Address already in use" in msg
    assert len(msg.splitlines()) > 10  # a real tail, not just one line
    assert not k.running_nodes()
    assert not _our_jvms(str(tmp_path))


@pytest.mark.integration
def test_bad_config_raises_with_the_reason(tmp_path: pathlib.Path) -> None:
    k = LocalKafka(broker_config={"num.io.threads": "lots"}, workdir=tmp_path / "bad")
    with pytest.raises(KafkaStartError, match="num.io.threads"):
        k.start()
    assert not k.running_nodes()


_OWNER = textwrap.dedent(
    """
    import sys, time
    from fastprod.localkafka import LocalKafka
    k = LocalKafka().start()
    print(k.nodes[0].pid, k.workdir, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.integration
def test_no_orphan_jvm_when_the_owner_is_killed() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        line = owner.stdout.readline()  # type: ignore[union-attr]
        assert line, "owner process failed to start Kafka"
        pid_s, workdir = line.split()
        pid = int(pid_s)
        assert _pid_alive(pid)
        owner.kill()  # SIGKILL: no atexit, no finally, nothing runs in the owner
        owner.wait()
        assert _wait_until(lambda: not _pid_alive(pid), timeout=20), "JVM outlived its owner"
        # The watchdog also removes the temp dir nobody else will clean.
        assert _wait_until(lambda: not os.path.exists(workdir), timeout=5)
    finally:
        if owner.poll() is None:
            owner.kill()


def _cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "fastprod", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.integration
def test_cli_start_status_stop(tmp_path: pathlib.Path) -> None:
    # A private cache root (so a developer's own `fastprod broker` is untouched) that
    # shares the downloaded jars.
    ensure_jars()
    (tmp_path / f"kafka-{jars.KAFKA_VERSION}").symlink_to(jars.kafka_home())
    env = dict(os.environ, FASTPROD_CACHE=str(tmp_path))

    assert "not running" in _cli("broker", "status", env=env, check=False).stdout
    started = _cli("broker", "start", env=env)
    bootstrap = started.stdout.strip()
    host, port = probe.parse_bootstrap(bootstrap)[0]
    try:
        # The CLI process has exited; the broker lives on.
        assert probe.metadata(host, port).broker_ids == {1}
        status = _cli("broker", "status", env=env)
        assert "answers Metadata" in status.stdout and bootstrap in status.stdout
        again = _cli("broker", "start", env=env, check=False)
        assert again.returncode != 0 and "already running" in again.stderr
    finally:
        stopped = _cli("broker", "stop", env=env)
    assert "stopped" in stopped.stdout
    with pytest.raises(probe.ProbeError):
        probe.metadata(host, port, timeout=1)
    assert not _our_jvms(str(tmp_path))
    assert _cli("broker", "status", env=env, check=False).returncode == 1
