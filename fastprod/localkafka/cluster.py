"""LocalKafka: a real Apache Kafka (KRaft, every node broker+controller) on 127.0.0.1."""

from __future__ import annotations

import atexit
import logging
import os
import pathlib
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from . import jars, probe
from .config import (
    NodeSpec,
    free_ports,
    log4j2_xml,
    new_cluster_id,
    render_properties,
    server_properties,
)
from .node import DEFAULT_HEAP, KafkaNode, KafkaStartError

if TYPE_CHECKING:
    from .security import SecureEndpoints, SecurityMaterial, SecurityOptions

log = logging.getLogger("fastprod.localkafka")

DEFAULT_START_TIMEOUT = 90.0
_PORT_RETRIES = 3
# REQUEST_TIMED_OUT, NOT_CONTROLLER (mid-election), THROTTLING_QUOTA_EXCEEDED. Not
# INVALID_REPLICATION_FACTOR: retrying it would turn "RF 3 on one broker" into a timeout.
_RETRIABLE_CREATE_ERRORS = {7, 41, 89}


class _Bootstrap:
    """What LocalKafka and an external broker (FASTPROD_BOOTSTRAP) have in common."""

    bootstrap_servers: str

    def _addresses(self) -> list[tuple[str, int]]:
        return probe.parse_bootstrap(self.bootstrap_servers)

    def metadata(self, topics: list[str] | None = None, timeout: float = 5.0) -> probe.ClusterMetadata:
        """A Metadata response from the first node that answers."""
        errors = []
        for host, port in self._addresses():
            try:
                return probe.metadata(host, port, topics, timeout=timeout)
            except probe.ProbeError as e:
                errors.append(str(e))
        raise probe.ProbeError("no node answered Metadata: " + "; ".join(errors))

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        config: Mapping[str, object] | None = None,
        *,
        exist_ok: bool = False,
        timeout: float = 30.0,
    ) -> None:
        """Create a topic and wait until every node knows a leader for every partition."""
        cfg = {k: str(v) for k, v in (config or {}).items()}
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            for host, port in self._addresses():
                try:
                    err, msg = probe.create_topic(
                        host, port, name, partitions, replication_factor, cfg, timeout=timeout
                    )
                except probe.ProbeError as e:
                    last = e
                    continue
                if err == probe.TOPIC_ALREADY_EXISTS and exist_ok:
                    err = 0
                if err in _RETRIABLE_CREATE_ERRORS:
                    last = RuntimeError(f"error {err}: {msg}")
                    continue
                if err:
                    raise RuntimeError(f"CreateTopics {name!r} failed: error {err}: {msg}")
                self.wait_for_topic(
                    name,
                    partitions=None if exist_ok else partitions,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not create topic {name!r}: {last}")
            time.sleep(0.2)

    def wait_for_topic(self, name: str, partitions: int | None = None, timeout: float = 30.0) -> None:
        """Wait until every reachable node reports ``name`` with a leader for each partition."""
        deadline = time.monotonic() + timeout
        while True:
            ok = True
            for host, port in self._addresses():
                try:
                    md = probe.metadata(host, port, [name])
                except probe.ProbeError:
                    continue  # a node that is down is not our business here
                t = md.topics.get(name)
                if (
                    t is None
                    or t.error_code
                    or not t.partitions
                    or (partitions is not None and len(t.partitions) != partitions)
                    or any(p.leader < 0 or p.error_code for p in t.partitions)
                ):
                    ok = False
                    break
            if ok:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name!r} not ready after {timeout:.0f}s")
            time.sleep(0.05)


class ExternalKafka(_Bootstrap):
    """A broker someone else runs (``FASTPROD_BOOTSTRAP``): no node control."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    def __repr__(self) -> str:
        return f"<ExternalKafka {self.bootstrap_servers}>"


class LocalKafka(_Bootstrap):
    """A local Kafka cluster of ``nodes`` KRaft nodes, each broker and controller.

    Example::

        with LocalKafka(nodes=3) as kafka:
            kafka.create_topic("t", partitions=3, replication_factor=3)
            Producer(bootstrap_servers=kafka.bootstrap_servers)...
            kafka.kill(2)          # crash a node
            kafka.start_node(2)    # same data dir and port

    ``port`` fixes the first client port (node i listens on port + i); otherwise free
    ports are picked. ``broker_config`` overrides any server.properties key.
    ``workdir`` defaults to a fresh temp dir that ``stop()`` deletes (``keep_data``
    keeps it); in a given workdir the node dirs (node1, ...) are recreated on start. ``detached=True`` starts JVMs that outlive this Python process (CLI).

    ``security=True`` (or a ``security.SecurityOptions``) adds TLS and SASL listeners
    beside PLAINTEXT, with certificates, users and an OAuth identity provider made at
    start; ``secure`` then describes them (see fastprod.localkafka.security).
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        port: int | None = None,
        num_partitions: int = 1,
        auto_create_topics: bool = True,
        broker_config: Mapping[str, object] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        keep_data: bool = False,
        heap: str = DEFAULT_HEAP,
        jvm_args: Sequence[str] = (),
        detached: bool = False,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        security: SecurityOptions | bool = False,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {nodes}")
        self.num_nodes = nodes
        self.fixed_port = port
        self.num_partitions = num_partitions
        self.auto_create_topics = auto_create_topics
        self.broker_config = dict(broker_config or {})
        self.heap = heap
        self.jvm_args = tuple(jvm_args)
        self.detached = detached
        self.start_timeout = start_timeout
        self._owns_workdir = workdir is None
        self.keep_data = keep_data or detached
        self.workdir = pathlib.Path(workdir) if workdir is not None else None
        self.cluster_id = new_cluster_id()
        self.nodes: list[KafkaNode] = []
        self.startup_seconds: float | None = None
        self._paused: set[int] = set()
        self._lock = threading.RLock()
        self._security_options: SecurityOptions | None = None
        if security:
            from .security import SecurityOptions

            opts = security if isinstance(security, SecurityOptions) else SecurityOptions()
            if detached and opts.serve_http:
                # Nobody would be left to serve the JWKS: the broker reads it from a file.
                import dataclasses

                opts = dataclasses.replace(opts, serve_http=False)
            self._security_options = opts
        self._security: SecurityMaterial | None = None
        self.secure: SecureEndpoints | None = None

    # -- public properties -------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        if not self.nodes:
            raise RuntimeError("LocalKafka is not started")
        return ",".join(n.address for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no node {node_id}; nodes are {[n.node_id for n in self.nodes]}")

    def running_nodes(self) -> list[KafkaNode]:
        return [n for n in self.nodes if n.is_running()]

    def _addresses(self) -> list[tuple[str, int]]:
        # Ask running nodes first so metadata()/create_topic() don't stall on a killed one.
        ordered = self.running_nodes() + [n for n in self.nodes if not n.is_running()]
        return [("127.0.0.1", n.port) for n in ordered]

    def __repr__(self) -> str:
        return f"<LocalKafka nodes={self.nodes!r}>"

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> LocalKafka:
        if not self.nodes:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start / stop --------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> LocalKafka:
        """Write configs, format storage, start every node and wait until all answer
        Metadata listing every broker. Raises KafkaStartError with the log tail."""
        if self.running_nodes():
            raise RuntimeError(f"{self!r} is already started")
        timeout = self.start_timeout if timeout is None else timeout
        t0 = time.monotonic()
        jars.ensure_jars()
        if not self.detached:
            _register(self)
        try:
            if self._security_options is not None and self._security is None:
                from .security import SecurityMaterial

                self._security = SecurityMaterial(self._security_options)
            for attempt in range(1, _PORT_RETRIES + 1):
                try:
                    self._start_once(timeout)
                    break
                except KafkaStartError as e:
                    # Free ports are picked then released, so another process may grab one
                    # before the JVM binds it; pick again rather than fail the test run.
                    if self.fixed_port is None and "Address already in use" in str(e) and attempt < _PORT_RETRIES:
                        log.warning("port race on start (attempt %d), retrying with new ports", attempt)
                        self._teardown(remove=True)
                        continue
                    raise
        except BaseException:
            self.stop()
            raise
        if self._security is not None:
            from .security import SecureEndpoints

            self.secure = SecureEndpoints(self, self._security)
        self.startup_seconds = time.monotonic() - t0
        log.info(
            "Kafka %s: %d node(s) ready at %s in %.1fs",
            jars.KAFKA_VERSION, self.num_nodes, self.bootstrap_servers, self.startup_seconds,
        )  # fmt: skip
        return self

    def _start_once(self, timeout: float) -> None:
        if self.workdir is None or (self._owns_workdir and not self.workdir.exists()):
            self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="fastprod-kafka-"))
            self._owns_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        specs = self._make_specs()
        cleanup = self._owns_workdir and not self.keep_data
        jvm_args = self.jvm_args
        truststore_job = None
        if self._security is not None:
            # Certificates are made afresh in each attempt: a port-race retry deletes the
            # workdir. keytool's truststore runs while the nodes format.
            truststore_job = self._security.prepare(self.workdir / "security")
            jvm_args = (*jvm_args, *self._security.jvm_args())
        self.nodes = [
            KafkaNode(
                s,
                heap=self.heap,
                jvm_args=jvm_args,
                watchdog=not self.detached,
                cleanup_dir_on_orphan=cleanup,
            )
            for s in specs
        ]
        for s in specs:
            # Always a fresh node dir: a new cluster id each start, and a retry after a
            # port race must not find storage formatted for other ports.
            shutil.rmtree(s.dir, ignore_errors=True)
            s.dir.mkdir(parents=True)
            overrides: dict[str, object] = {}
            if self._security is not None:
                overrides.update(self._security.broker_properties(s))
            overrides.update(self.broker_config)
            props = server_properties(
                s,
                specs,
                num_partitions=self.num_partitions,
                auto_create_topics=self.auto_create_topics,
                overrides=overrides,
            )
            s.properties_file.write_text(render_properties(props))
            s.log4j_file.write_text(log4j2_xml(s.server_log))
        self._format()
        if self._security is not None:
            self._security.finish_truststore(truststore_job)
        for i, n in enumerate(self.nodes):
            n.start(record_cds=i == 0)
        self.wait_ready(timeout)

    def _make_specs(self) -> list[NodeSpec]:
        assert self.workdir is not None
        n = self.num_nodes
        names: list[str] = []
        if self._security is not None:
            from .security import LISTENERS

            names = [lst.name for lst in LISTENERS]
        if self.fixed_port is not None:
            ports = [self.fixed_port + i for i in range(n)]
            rest = free_ports(n * (1 + len(names)))
        else:
            rest = free_ports(n * (2 + len(names)))
            ports, rest = rest[:n], rest[n:]
        ctrl, rest = rest[:n], rest[n:]
        return [
            NodeSpec(
                node_id=i + 1,
                port=ports[i],
                controller_port=ctrl[i],
                dir=self.workdir / f"node{i + 1}",
                listener_ports=dict(zip(names, rest[i * len(names):(i + 1) * len(names)])),
            )
            for i in range(n)
        ]

    def _format(self) -> None:
        # ~0.5 s of JVM per node; run them side by side.
        extra = self._security.format_args() if self._security is not None else []
        procs = [(n, n.format(self.cluster_id, extra)) for n in self.nodes]
        failures = []
        for n, p in procs:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                failures.append(f"node {n.node_id}: exit {p.returncode}\n" + "\n".join(out.splitlines()[-50:]))
        if failures:
            raise KafkaStartError("formatting Kafka storage failed:\n" + "\n".join(failures))

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT, nodes: Iterable[int] | None = None) -> None:
        """Wait until each given node (default: all running) answers Metadata listing every
        running broker. Raises KafkaStartError with the log tail if a node dies or we time out."""
        targets = [self.node(i) for i in nodes] if nodes is not None else self.running_nodes()
        deadline = time.monotonic() + timeout
        pending = {n.node_id: n for n in targets}
        last_err: dict[int, str] = {}
        while pending:
            expected = {n.node_id for n in self.running_nodes()} - self._paused
            for node_id, n in list(pending.items()):
                if not n.is_running():
                    raise KafkaStartError(
                        f"Kafka node {node_id} exited with code {n.exit_code()} during startup\n"
                        + n.log_tail()
                    )
                try:
                    md = probe.metadata("127.0.0.1", n.port, [], timeout=2.0)
                except probe.ProbeError as e:
                    last_err[node_id] = str(e)
                    continue
                if expected <= md.broker_ids:
                    del pending[node_id]
                else:
                    last_err[node_id] = f"brokers registered {sorted(md.broker_ids)}, want {sorted(expected)}"
            if not pending:
                return
            if time.monotonic() > deadline:
                details = "\n".join(
                    f"node {i}: {last_err.get(i, 'no answer')}\n{n.log_tail()}" for i, n in pending.items()
                )
                raise KafkaStartError(f"Kafka not ready after {timeout:.0f}s:\n{details}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node (controlled shutdown, SIGKILL after a grace period) and delete
        the temp workdir unless ``keep_data``. Safe to call twice."""
        with self._lock:
            self._teardown(remove=not self.keep_data)
            if self._security is not None and not self.detached:
                self._security.close()  # a detached broker serves no HTTP from us
                self._security = None
            _unregister(self)

    def _teardown(self, remove: bool) -> None:
        # Stop all nodes at once: sequential controlled shutdowns of a 3-node cluster would
        # each wait for the remaining quorum.
        for n in self.nodes:
            n.terminate()
        # The last KRaft leader cannot hand over when every voter is leaving and waits 5 s
        # for a successor; when the data is about to be deleted there is nothing to wait for.
        grace = 1.0 if remove else 15.0
        for n in self.nodes:
            n.stop(grace)
        if remove and self._owns_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- per-node control (failure tests) --------------------------------------------------
    def kill(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one node's JVM (default SIGKILL: a crash). SIGSTOP/SIGCONT work
        too, to simulate a hung broker."""
        self.node(node_id).kill(sig)
        if sig == signal.SIGSTOP:
            self._paused.add(node_id)
        elif sig in (signal.SIGCONT, signal.SIGKILL, signal.SIGTERM):
            self._paused.discard(node_id)

    @property
    def healthy(self) -> bool:
        """Every node running and none paused by ``kill(.., SIGSTOP)``."""
        return bool(self.nodes) and not self._paused and all(n.is_running() for n in self.nodes)

    def stop_node(self, node_id: int, grace: float = 15.0) -> None:
        """Controlled shutdown of one node; its data dir and ports are kept."""
        self.node(node_id).stop(grace)

    def start_node(self, node_id: int, wait: bool = True, timeout: float | None = None) -> None:
        """Start a stopped/killed node again with the same data dir and ports."""
        n = self.node(node_id)
        n.start()
        if wait:
            self.wait_ready(self.start_timeout if timeout is None else timeout, nodes=[node_id])

    def restart_node(self, node_id: int, wait: bool = True, timeout: float | None = None) -> None:
        self.stop_node(node_id)
        self.start_node(node_id, wait=wait, timeout=timeout)

    def ensure_running(self, timeout: float | None = None) -> None:
        """Undo a previous test's damage: resume paused nodes, start killed or stopped
        ones (same dirs and ports) and wait until the whole cluster is ready again."""
        if not self.nodes:
            raise RuntimeError("LocalKafka is not started")
        for n in self.nodes:
            if n.is_running():
                n.send_signal(signal.SIGCONT)
            else:
                n.start()
        self._paused.clear()
        self.wait_ready(self.start_timeout if timeout is None else timeout)

    def log_tail(self, node_id: int | None = None, lines: int = 50) -> str:
        nodes = self.nodes if node_id is None else [self.node(node_id)]
        return "\n".join(f"=== node {n.node_id} ===\n{n.log_tail(lines)}" for n in nodes)


# -- last-resort cleanup ------------------------------------------------------------------
# The watchdog already guarantees no JVM outlives us; these hooks make the normal exit
# paths (end of script, SIGTERM) also shut the brokers down cleanly and delete temp dirs.
# Strong references: a cluster nobody holds on to must still be stopped at exit.
_live: set[LocalKafka] = set()
_hooks_installed = False


def _stop_all() -> None:
    for k in list(_live):
        try:
            k.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            log.exception("stopping %r at exit failed", k)


def _on_sigterm(signum: int, frame: object) -> None:
    _stop_all()
    # Then die the way SIGTERM would have killed us, so the exit status stays honest.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register(k: LocalKafka) -> None:
    global _hooks_installed
    _live.add(k)
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    # Only take SIGTERM if nobody else handles it; never from a non-main thread.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(k: LocalKafka) -> None:
    _live.discard(k)
