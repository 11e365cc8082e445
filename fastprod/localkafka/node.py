"""One Kafka KRaft node (broker+controller) as a child JVM: format, start, signal, stop."""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from . import cds, jars
from .config import NodeSpec, tool_log4j2_xml

log = logging.getLogger("fastprod.localkafka")

_WATCHDOG = pathlib.Path(__file__).with_name("_watchdog.py")

# Kafka's own scripts use G1 and a 1 GB heap; a test broker on a 2-core box starts
# faster and stays lighter with a small heap and the serial collector.
DEFAULT_HEAP = "512m"
BROKER_JVM_OPTS = (
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-UsePerfData",  # no /tmp/hsperfdata_* files
    "-Djava.awt.headless=true",
)
# Short-lived tools: C1 only and a tiny heap; they run for well under a second.
TOOL_JVM_OPTS = (
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)


class KafkaStartError(RuntimeError):
    """A local Kafka node failed to format or start; the message ends with its log tail."""


class _Lifeline:
    """The write end of a pipe that every watchdog watches; it closes when we die.

    Kept for the whole life of this process (never closed explicitly), non-inheritable
    so other subprocesses don't keep it open.
    """

    _lock = threading.Lock()
    _fds: tuple[int, int] | None = None
    _pid: int | None = None

    @classmethod
    def read_fd(cls) -> int:
        with cls._lock:
            if cls._fds is None or cls._pid != os.getpid():  # a forked child makes its own
                cls._fds = os.pipe()
                cls._pid = os.getpid()
            return cls._fds[0]


def tail(path: pathlib.Path, lines: int = 50) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 256 * lines))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def first_errors(path: pathlib.Path, limit: int = 30) -> str:
    """The first ERROR/FATAL records of a log (each with its exception line or two): the
    root cause of a failed start usually sits hundreds of lines above the shutdown noise."""
    out: list[str] = []
    follow = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line.startswith("[") and ("] ERROR " in line or "] FATAL " in line):
                    out.append(line)
                    follow = 3
                elif follow and not line.startswith("[") and not line.lstrip().startswith(("at ", "...")):
                    out.append(line)
                    follow -= 1
                else:
                    follow = 0 if line.startswith("[") else follow
                if len(out) >= limit:
                    break
    except OSError:
        pass
    return "\n".join(out)


def tool_command(
    main_class: str, args: Sequence[str] = (), *, log4j_file: pathlib.Path | None = None
) -> list[str]:
    """The java command line for a Kafka tool or any class on the Kafka classpath (e.g.
    ``org.apache.kafka.tools.consumer.ConsoleConsumer``), with the fast-start flags and
    the CDS archive if there is one; for callers that need a Popen of their own."""
    cmd = [jars.java_executable(), *TOOL_JVM_OPTS, *cds.use_args()]
    cmd.append(f"-Dlog4j2.configurationFile={log4j_file or _default_tool_log4j()}")
    return [*cmd, "-cp", jars.classpath(), main_class, *args]


def _default_tool_log4j() -> pathlib.Path:
    # Without a config log4j2 complains about the missing config on every tool run.
    path = jars.kafka_home() / "tool-log4j2.xml"
    text = tool_log4j2_xml()
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def run_tool(
    main_class: str,
    args: Sequence[str],
    *,
    log4j_file: pathlib.Path | None = None,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a Kafka Java tool (TopicCommand, ...) to completion; stdout+stderr in .stdout."""
    return subprocess.run(
        tool_command(main_class, args, log4j_file=log4j_file),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


class KafkaNode:
    """A node's process. ``spec`` (id, ports, dir) never changes, so restarts reuse them.

    ``watchdog=True`` runs the JVM under _watchdog.py so it dies with this Python
    process; ``watchdog=False`` is for the CLI's detached brokers, which must outlive it.
    """

    def __init__(
        self,
        spec: NodeSpec,
        *,
        heap: str = DEFAULT_HEAP,
        jvm_args: Sequence[str] = (),
        watchdog: bool = True,
        cleanup_dir_on_orphan: bool = False,
    ) -> None:
        self.spec = spec
        self.heap = heap
        self.jvm_args = tuple(jvm_args)
        self.watchdog = watchdog
        self.cleanup_dir_on_orphan = cleanup_dir_on_orphan
        self.proc: subprocess.Popen[bytes] | None = None
        self._java_pid: int | None = None
        self._term_sent = False
        self._cds_flags: list[str] | None = None
        self._cds_tmp: pathlib.Path | None = None

    # -- identity ----------------------------------------------------------------------
    @property
    def node_id(self) -> int:
        return self.spec.node_id

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def address(self) -> str:
        return self.spec.address

    @property
    def pid(self) -> int | None:
        """The JVM's pid (not the watchdog's), or None when not running."""
        if not self.is_running():
            return None
        if self._java_pid is None and self.proc is not None:
            pidfile = self.spec.dir / "java.pid"
            deadline = time.monotonic() + 5
            while self._java_pid is None and time.monotonic() < deadline:
                try:
                    self._java_pid = int(pidfile.read_text())
                except (OSError, ValueError):
                    time.sleep(0.01)
        return self._java_pid

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<KafkaNode {self.node_id} {self.address} {state}>"

    # -- lifecycle ---------------------------------------------------------------------
    def format(self, cluster_id: str, extra_args: Sequence[str] = ()) -> subprocess.Popen[str]:
        """Start formatting the data dir; the caller waits (nodes format in parallel).
        ``extra_args``: more StorageTool arguments, e.g. ``--add-scram`` users."""
        cmd = tool_command(
            "kafka.tools.StorageTool",
            ["format", "--cluster-id", cluster_id, "--config", str(self.spec.properties_file),
             "--ignore-formatted", *extra_args],
        )  # fmt: skip
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def java_command(self) -> list[str]:
        return [
            jars.java_executable(),
            f"-Xmx{self.heap}",
            "-Xms64m",
            *BROKER_JVM_OPTS,
            *(self._cds_flags if self._cds_flags is not None else cds.use_args()),
            f"-Dlog4j2.configurationFile={self.spec.log4j_file}",
            f"-Dkafka.logs.dir={self.spec.dir}",
            *self.jvm_args,
            "-cp",
            jars.classpath(),
            "kafka.Kafka",
            str(self.spec.properties_file),
        ]

    def start(self, record_cds: bool = False) -> None:
        """Spawn the JVM and return at once; see ``LocalKafka`` for waiting until ready.

        ``record_cds``: if this machine has no CDS archive yet, let this JVM record one
        at exit (published by ``stop()``). Needs the watchdog mode: someone must be
        around at exit to publish it.
        """
        if self.is_running():
            return
        self._cds_flags, self._cds_tmp = None, None
        if record_cds and self.watchdog:
            rec = cds.record_args()
            if rec is not None:
                self._cds_flags, self._cds_tmp = rec
        self._java_pid = None
        self._term_sent = False
        (self.spec.dir / "java.pid").unlink(missing_ok=True)
        java = self.java_command()
        out = open(self.spec.stdout_log, "ab")
        try:
            if self.watchdog:
                lifeline = _Lifeline.read_fd()
                cleanup = str(self.spec.dir) if self.cleanup_dir_on_orphan else "-"
                cmd = [
                    sys.executable, "-I", "-S", str(_WATCHDOG),
                    str(lifeline), str(self.spec.dir / "java.pid"), "10", cleanup, "--", *java,
                ]  # fmt: skip
                pass_fds: tuple[int, ...] = (lifeline,)
            else:
                cmd, pass_fds = java, ()
            # A new session: Ctrl-C in the terminal goes to Python (which then stops us in
            # order) rather than straight to the JVMs, and killpg reaches exactly our tree.
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                start_new_session=True,
                cwd=self.spec.dir,
            )
        finally:
            out.close()
        if not self.watchdog:
            self._java_pid = self.proc.pid
        log.info("node %d starting on %s (pid %d)", self.node_id, self.address, self.proc.pid)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the JVM. SIGKILL takes the whole process group (watchdog too)."""
        if not self.is_running():
            return
        assert self.proc is not None
        if sig == signal.SIGKILL:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, sig: int = signal.SIGKILL, wait: bool = True) -> None:
        """Simulate a crash (default SIGKILL); waits for the process to be gone."""
        self.send_signal(sig)
        if wait and sig in (signal.SIGKILL, signal.SIGTERM) and self.proc is not None:
            self.proc.wait()
            self._wait_java_gone()
            self._finish_cds()

    def terminate(self) -> None:
        """Send SIGTERM once (the watchdog forwards it to the JVM) and return."""
        if self.is_running() and not self._term_sent:
            assert self.proc is not None
            self._term_sent = True
            try:
                self.proc.terminate()
            except ProcessLookupError:
                pass
            # A node paused with SIGSTOP would sit on the SIGTERM until the grace ran out.
            if self._java_pid is not None:
                try:
                    os.kill(self._java_pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def stop(self, grace: float = 15.0) -> None:
        """Controlled shutdown: SIGTERM, then SIGKILL after ``grace`` seconds."""
        proc = self.proc
        if proc is None:
            return
        if self._cds_tmp is not None:
            grace = max(grace, 30.0)  # writing the archive at exit takes a moment
        if proc.poll() is None:
            self.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.info("node %d did not stop in %.0fs, killing it", self.node_id, grace)
                # Only while the group leader is unreaped is its pgid surely still ours.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._wait_java_gone()
        self._finish_cds()
        log.info("node %d stopped (exit %s)", self.node_id, proc.returncode)

    def _wait_java_gone(self, timeout: float = 10.0) -> None:
        # After killpg the watchdog is reaped at once but the JVM may take a few ms more to
        # die (and then sits briefly as a zombie of init). Only return once it is dead, so a
        # restart finds its ports free and callers can trust "stopped".
        if not self.watchdog:
            return
        pid = self._java_pid
        if pid is None:
            try:
                pid = int((self.spec.dir / "java.pid").read_text())
            except (OSError, ValueError):
                return  # the watchdog never got to start it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    state = fh.read().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                return
            if state in ("Z", "X"):
                return
            time.sleep(0.01)
        log.warning("JVM %d of node %d still alive after %.0fs", pid, self.node_id, timeout)

    def _finish_cds(self) -> None:
        tmp, self._cds_tmp = self._cds_tmp, None
        if tmp is None or self.proc is None:
            return
        # 143 = the JVM exited on our SIGTERM after running its exit path (which dumps).
        if self.proc.returncode in (0, 143):
            cds.publish(tmp)
        else:
            tmp.unlink(missing_ok=True)

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 50) -> str:
        """First errors and last ``lines`` lines of the node's logs, for error messages."""
        parts = []
        errors = first_errors(self.spec.server_log)
        if errors:
            parts.append(f"--- first errors in {self.spec.server_log} ---\n{errors}")
        for path in (self.spec.server_log, self.spec.stdout_log):
            text = tail(path, lines)
            if text.strip():
                parts.append(f"--- {path} (last {lines} lines) ---\n{text}")
        return "\n".join(parts) or f"(no log output in {self.spec.dir})"
