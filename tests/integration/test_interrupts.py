"""Ctrl-C reaches every blocking call: SIGINT -> KeyboardInterrupt out of the wait at once.

Each test runs the call in a child process of its own (a session of its own, so SIGINT
goes to its whole process group as a terminal's Ctrl-C does), waits until the child's
main thread sleeps in the call, sends SIGINT and checks that the child raised
KeyboardInterrupt from that very line, long before the wait would have ended by itself
(max.block.ms and delivery.timeout.ms are two minutes here).

What keeps the calls waiting:

- a broker of this module's own behind tests/proxy.py's FaultProxy (``proxied_kafka`` in
  tests/conftest.py) with STALL_RESPONSE armed: the first produce request reaches the
  broker and neither its answer nor any later one on that connection comes back, so
  records stay pending (futures, flush, close, a full buffer.memory, commit);
- a listening socket that accepts connections and never answers: a producer
  bootstrapped there waits for metadata (send) or for its coordinator (init_transactions).

Before the fix, the waits on a batch's C latch (RecordFuture.result/exception, flush,
both producers) ignored SIGINT until they ended; Producer.close() was interrupted but
left the record pending; ShardedProducer.close() ignored the second Ctrl-C. The waits
on threading's Event and Condition (BatchFuture, a full buffer, metadata, transactional
calls) were interruptible already: their tests keep them so. About 40 s in all, the
module's broker start included.

The children leave through os._exit once the interrupt is seen (a live Producer would
otherwise be closed at exit, waiting for its pending records); the close() tests exit
normally, since a close() given up by Ctrl-C must not wait again at exit.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

try:
    import proxy as faultproxy
except ImportError:  # tests/ imported as a package
    from tests import proxy as faultproxy

ROOT = Path(__file__).resolve().parents[2]
# The calls below would block for two minutes; Ctrl-C must end them within about a
# second. The bound leaves room for a loaded machine (the child's exit included).
INTERRUPT_WITHIN_S = 3.0
LONG_MS = 120_000

CHILD = '''\
import logging, os, signal, sys, time, traceback
# Python leaves SIGINT ignored if it was ignored when it started (a background job):
# this child is about Ctrl-C, so it always gets Python's own handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {root!r})
logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="LOG %(message)s")
logging.getLogger("fastprod").setLevel(logging.INFO)
from fastprod import Producer
from fastprod.sharded import ShardedProducer

config = {config!r}
topic = {topic!r}


def ready():
    sys.stdout.write("READY\\n")
    sys.stdout.flush()


def main():
{body}


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        if {fast_exit!r}:
            os._exit(130)
        raise
    print("RETURNED", flush=True)
'''


class Child:
    """The child script in its own session; stdout lines collected by a thread."""

    def __init__(self, tmp_path: Path, body: str, config: dict, topic: str,
                 fast_exit: bool = True) -> None:
        source = CHILD.format(root=str(ROOT), config=config, topic=topic,
                              body=textwrap.indent(textwrap.dedent(body).strip(), "    "),
                              fast_exit=fast_exit)
        self.path = tmp_path / "child.py"
        self.path.write_text(source)
        # the line the interrupt must come from
        self.blocking_line = next(i for i, line in enumerate(source.splitlines(), 1)
                                  if "# BLOCKS" in line)
        self.stderr_path = tmp_path / "child.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([sys.executable, str(self.path)], stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def expect(self, text: str, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: any(text in line for line in self.lines)
                                       or self.proc.poll() is not None, timeout):
                pytest.fail(f"no {text!r} from the child in {timeout} s; stdout:\n"
                            f"{self.output()}\nstderr:\n{self.stderr()[-3000:]}")
        if not any(text in line for line in self.lines):
            pytest.fail(f"the child exited ({self.proc.returncode}) before {text!r}; "
                        f"stdout:\n{self.output()}\nstderr:\n{self.stderr()[-3000:]}")

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-30:])

    def wait_blocked(self, timeout: float = 30.0) -> None:
        """Until the main thread has slept (state S) for 0.3 s on end: it is in the wait."""
        stat = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/stat")
        deadline = time.monotonic() + timeout
        asleep_since = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, \
                f"the child exited; stdout:\n{self.output()}\nstderr:\n{self.stderr()[-3000:]}"
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
            now = time.monotonic()
            if state != "S":
                asleep_since = None
            elif asleep_since is None:
                asleep_since = now
            elif now - asleep_since >= 0.3:
                return
            time.sleep(0.02)
        pytest.fail("the child's main thread never settled into a wait")

    def interrupt(self) -> float:
        """Ctrl-C to the child's process group; returns when it was sent."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return time.monotonic()

    def wait_exit(self, sent: float, within: float = INTERRUPT_WITHIN_S) -> float:
        try:
            self.proc.wait(within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child was still waiting {within} s after Ctrl-C; "
                        f"stdout:\n{self.output()}\nstderr:\n{self.stderr()[-3000:]}")
        return time.monotonic() - sent

    def assert_interrupted_in_call(self) -> None:
        stderr = self.stderr()
        assert "KeyboardInterrupt" in stderr, (self.proc.returncode, stderr[-3000:])
        assert self.proc.returncode in (130, -signal.SIGINT), (self.proc.returncode,
                                                               stderr[-3000:])
        frames = re.findall(rf'File "{re.escape(str(self.path))}", line (\d+)', stderr)
        assert frames and int(frames[-1]) == self.blocking_line, \
            f"KeyboardInterrupt not raised by the blocking call (line " \
            f"{self.blocking_line}):\n{stderr[-3000:]}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        else:  # whatever is left in its group (a ShardedProducer's workers)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._stderr.close()


def interrupted(tmp_path: Path, body: str, config: dict, topic: str,
                fast_exit: bool = True) -> list[str]:
    """Run ``body`` in a child, Ctrl-C it once it blocks on the ``# BLOCKS`` line, and
    check it raised KeyboardInterrupt there at once; returns the child's stdout lines."""
    child = Child(tmp_path, body, config, topic, fast_exit)
    try:
        child.expect("READY")
        child.wait_blocked()
        took = child.wait_exit(child.interrupt())
        child.assert_interrupted_in_call()
        print(f"\ninterrupted {took:.2f} s after SIGINT")
        return child.lines
    finally:
        child.close()


# ---- what keeps the calls waiting ------------------------------------------------------


@pytest.fixture(scope="module")
def stall_topic(proxied_kafka):
    kafka, _ = proxied_kafka
    name = f"intr-{uuid.uuid4().hex[:12]}"
    kafka.create_topic(name, partitions=1)
    return name


@pytest.fixture
def stalled(proxied_kafka, stall_topic):
    """(config, topic): a broker that takes the first produce request and never answers
    it, nor anything after it on that connection."""
    _, proxy = proxied_kafka
    proxy.arm(faultproxy.Fault(faultproxy.STALL_RESPONSE, api_key=faultproxy.PRODUCE))
    config = {"bootstrap.servers": proxy.address, "max.block.ms": LONG_MS,
              "delivery.timeout.ms": LONG_MS, "request.timeout.ms": LONG_MS - 10_000,
              "linger.ms": 0}
    try:
        yield config, stall_topic
    finally:
        proxy.disarm()
        proxy.reset_connections()


@pytest.fixture
def silent_broker():
    """host:port of a socket that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for s in held:
            s.close()
        listener.close()


# ---- Producer ------------------------------------------------------------------------------

RECORD_WAITS = {
    "RecordFuture.result": "f.result()",
    "RecordFuture.exception": "f.exception()",
    "flush": "p.flush()",
}


@pytest.mark.parametrize("call", list(RECORD_WAITS))
def test_producer_record_waits(stalled, tmp_path, call):
    interrupted(tmp_path, f"""
        p = Producer(config)
        f = p.send(topic, b"x")
        ready()
        {RECORD_WAITS[call]}  # BLOCKS
    """, *stalled)


BATCH_WAITS = {
    "BatchFuture.result": "f.result()",
    "BatchFuture.errors": "f.errors()",
    "BatchFuture.exception": "f.exception()",
}


@pytest.mark.parametrize("call", list(BATCH_WAITS))
def test_producer_batch_future_waits(stalled, tmp_path, call):
    interrupted(tmp_path, f"""
        p = Producer(config)
        f = p.send_batch(topic, [b"a", b"b", b"c"])
        ready()
        {BATCH_WAITS[call]}  # BLOCKS
    """, *stalled)


def test_producer_close(stalled, tmp_path):
    """close() gives up at Ctrl-C: the stalled record fails at once (ProducerClosedError)
    rather than staying pending, and the interpreter's exit does not wait for it again
    (the producer is a global, as in a script, so the close at exit sees it)."""
    lines = interrupted(tmp_path, """
        global p
        p = Producer(config)
        f = p.send(topic, b"x")
        ready()
        try:
            p.close()  # BLOCKS
        finally:
            print("FUTURE", type(f.exception(10)).__name__, flush=True)
    """, *stalled, fast_exit=False)
    assert "FUTURE ProducerClosedError" in lines, lines


def test_send_blocked_on_a_full_buffer(stalled, tmp_path):
    interrupted(tmp_path, """
        p = Producer(config)
        ready()
        while True:
            p.send(topic, bytes(1000))  # BLOCKS
    """, {**stalled[0], "buffer.memory": 4096, "batch.size": 2048}, stalled[1])


def test_send_blocked_on_metadata(silent_broker, tmp_path):
    interrupted(tmp_path, """
        p = Producer(config)
        ready()
        p.send(topic, b"x")  # BLOCKS
    """, {"bootstrap.servers": silent_broker, "max.block.ms": LONG_MS}, "intr-nowhere")


def test_init_transactions(silent_broker, tmp_path):
    interrupted(tmp_path, """
        p = Producer(config)
        ready()
        p.init_transactions()  # BLOCKS
    """, {"bootstrap.servers": silent_broker, "max.block.ms": LONG_MS,
          "transactional.id": f"intr-{uuid.uuid4().hex[:8]}"}, "intr-nowhere")


def test_commit_transaction(stalled, tmp_path):
    interrupted(tmp_path, """
        p = Producer(config)
        p.init_transactions(60)
        p.begin_transaction()
        p.send(topic, b"x")
        ready()
        p.commit_transaction()  # BLOCKS
    """, {**stalled[0], "transactional.id": f"intr-{uuid.uuid4().hex[:8]}"}, stalled[1])


def test_abort_transaction(stalled, tmp_path):
    """abort_transaction() waits for the produce request in flight (stalled) before it
    may end the transaction."""
    interrupted(tmp_path, """
        from fastprod import KafkaTimeoutError
        p = Producer(config)
        p.init_transactions(60)
        p.begin_transaction()
        p.send(topic, b"x")
        try:
            p.flush(2)  # the record is sent (not left undrained, which abort drops)
        except KafkaTimeoutError:
            pass
        ready()
        p.abort_transaction()  # BLOCKS
    """, {**stalled[0], "transactional.id": f"intr-{uuid.uuid4().hex[:8]}"}, stalled[1])


# ---- ShardedProducer ---------------------------------------------------------------------

SHARDED_WAITS = {
    "RecordFuture.result": "f.result()",
    "flush": "p.flush()",
}


@pytest.mark.parametrize("call", list(SHARDED_WAITS))
def test_sharded_waits(stalled, tmp_path, call):
    interrupted(tmp_path, f"""
        p = ShardedProducer(config, workers=1)
        f = p.send(topic, b"x")
        ready()
        {SHARDED_WAITS[call]}  # BLOCKS
    """, *stalled)


def test_sharded_second_ctrl_c_during_close(stalled, tmp_path):
    """The first Ctrl-C ends the wait in the ``with`` block, whose close() then flushes;
    a second Ctrl-C stops that wait too: the child exits with KeyboardInterrupt at once,
    the pending record failed (ProducerClosedError), and no worker is left behind."""
    child = Child(tmp_path, """
        f = None
        try:
            with ShardedProducer(config, workers=1) as p:
                f = p.send(topic, b"x")
                sys.stdout.write("WORKER %d\\n" % p._workers[0].process.pid)
                ready()
                f.result()  # BLOCKS
        finally:
            print("FUTURE", f and type(f.exception(10)).__name__, flush=True)
    """, *stalled, fast_exit=False)
    try:
        child.expect("READY")
        worker = int(next(line for line in child.lines if line.startswith("WORKER"))
                     .split()[1])
        child.wait_blocked()
        child.interrupt()
        child.expect("closing sharded producer", timeout=INTERRUPT_WITHIN_S)
        child.wait_blocked()
        took = child.wait_exit(child.interrupt())
        stderr = child.stderr()
        assert stderr.count("KeyboardInterrupt") >= 1, stderr[-3000:]
        assert child.proc.returncode in (130, -signal.SIGINT), (child.proc.returncode,
                                                                stderr[-3000:])
        assert "FUTURE ProducerClosedError" in child.lines, child.output()
        print(f"\nsecond Ctrl-C: exited {took:.2f} s after it")
        deadline = time.monotonic() + 5
        while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(worker), "the worker outlived its parent"
    finally:
        child.close()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
