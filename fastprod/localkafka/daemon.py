"""A detached local Kafka that outlives the process starting it (``fastprod broker ...``).

The JVMs run without the watchdog, in their own sessions; a JSON state file in the cache
dir remembers pids, ports and dirs so later commands can report on them and stop them.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import signal
import time
from collections.abc import Mapping
from typing import Any

from . import jars, probe
from .cluster import LocalKafka

log = logging.getLogger("fastprod.localkafka")


def broker_home() -> pathlib.Path:
    return jars.cache_root() / "broker"


def state_file() -> pathlib.Path:
    return broker_home() / "state.json"


def read_state() -> dict[str, Any] | None:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None


def _write_state(state: Mapping[str, Any]) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def _jvm_alive(pid: int, properties_file: str) -> bool:
    """True if pid is still *our* broker JVM (pids get reused) and not a zombie."""
    try:
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return False
    return b"kafka.Kafka" in cmdline and properties_file.encode() in cmdline


def start_detached(
    nodes: int = 1,
    port: int | None = None,
    *,
    num_partitions: int = 1,
    auto_create_topics: bool = True,
    broker_config: Mapping[str, object] | None = None,
    heap: str | None = None,
    security: bool = False,
) -> dict[str, Any]:
    """Start a cluster that keeps running after we exit; return the saved state.

    ``security``: add the TLS/SASL listeners of fastprod.localkafka.security; the state
    then holds ``security`` with the certificate dir, the users and, per listener, the
    Java client settings (``client_configs``; OAUTHBEARER is left out: its token
    endpoint would have to outlive this process too)."""
    st = status()
    if st is not None and st["alive"]:
        raise RuntimeError(
            f"a local Kafka is already running at {st['bootstrap_servers']}; "
            "stop it first (fastprod broker stop)"
        )
    workdir = broker_home() / "run"
    shutil.rmtree(workdir, ignore_errors=True)
    kw: dict[str, Any] = {} if heap is None else {"heap": heap}
    k = LocalKafka(
        nodes,
        port=port,
        num_partitions=num_partitions,
        auto_create_topics=auto_create_topics,
        broker_config=broker_config,
        workdir=workdir,
        detached=True,
        security=security,
        **kw,
    )
    k.start()
    state = {
        "kafka_version": jars.KAFKA_VERSION,
        "bootstrap_servers": k.bootstrap_servers,
        "cluster_id": k.cluster_id,
        "workdir": str(workdir),
        "started_at": time.time(),
        "startup_seconds": k.startup_seconds,
        "nodes": [
            {
                "node_id": n.node_id,
                "pid": n.pid,
                "port": n.port,
                "controller_port": n.spec.controller_port,
                "dir": str(n.spec.dir),
                "properties_file": str(n.spec.properties_file),
                "server_log": str(n.spec.server_log),
            }
            for n in k.nodes
        ],
    }
    if k.secure is not None:
        state["security"] = _security_state(k)
    _write_state(state)
    return state


def _security_state(k: LocalKafka) -> dict[str, Any]:
    from .security import LISTENER_NAMES, SCRAM_MECHANISMS

    sec = k.secure
    assert sec is not None
    configs: dict[str, dict[str, str]] = {}
    for name in LISTENER_NAMES:
        if sec.security_protocol(name).startswith("SASL_"):
            for mech in ("PLAIN", *SCRAM_MECHANISMS):
                configs[f"{name}/{mech}"] = sec.client_config(name, mech)
        else:
            configs[name] = sec.client_config(name)
    return {
        "dir": str(sec.certs.dir),
        "ca_pem": str(sec.ca_pem),
        "users": sorted(sec.users),
        "listeners": {name: sec.bootstrap(name) for name in LISTENER_NAMES},
        "client_configs": configs,
    }


def status() -> dict[str, Any] | None:
    """The saved state plus, per node, whether its JVM lives and answers Metadata.
    None if nothing was started."""
    state = read_state()
    if state is None:
        return None
    for n in state["nodes"]:
        n["running"] = _jvm_alive(n["pid"], n["properties_file"])
        try:
            md = probe.metadata("127.0.0.1", n["port"], [], timeout=2.0)
            n["answers"] = True
            n["brokers"] = sorted(md.broker_ids)
        except probe.ProbeError as e:
            n["answers"] = False
            n["error"] = str(e)
    state["alive"] = any(n["running"] for n in state["nodes"])
    state["healthy"] = all(n["running"] and n["answers"] for n in state["nodes"])
    return state


def stop_detached(keep_data: bool = False, grace: float | None = None) -> bool:
    """Stop the detached cluster (SIGTERM, then SIGKILL after a grace period) and delete
    its data unless ``keep_data``. Returns False if there was nothing to stop."""
    state = read_state()
    if state is None:
        return False
    # As in LocalKafka: a whole-cluster shutdown makes the last KRaft leader wait 5 s for
    # a successor; don't wait for that when the data is going away anyway.
    grace = (15.0 if keep_data else 2.0) if grace is None else grace
    live = [n for n in state["nodes"] if _jvm_alive(n["pid"], n["properties_file"])]
    for n in live:
        try:
            os.kill(n["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_jvm_alive(n["pid"], n["properties_file"]) for n in live):
        time.sleep(0.05)
    for n in live:
        if _jvm_alive(n["pid"], n["properties_file"]):
            log.info("node %d did not stop in %.0fs, killing it", n["node_id"], grace)
            try:
                os.kill(n["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_jvm_alive(n["pid"], n["properties_file"]) for n in live):
        time.sleep(0.05)
    if not keep_data:
        shutil.rmtree(state["workdir"], ignore_errors=True)
    state_file().unlink(missing_ok=True)
    return True
