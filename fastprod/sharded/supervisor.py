"""Worker supervision: start the worker processes, watch their pipes and exits, replace
one that dies (what it left unanswered is still in its ring, and the replacement sends
it), give up on one that dies too often (its records fail with WorkerLostError), and
stop them all."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import time
from collections.abc import Callable
from typing import Any

from fastprod.cluster.snapshot import ClusterSnapshot
from fastprod.errors import WorkerLostError
from fastprod.sharded.completion import fail_pending
from fastprod.sharded.handle import WorkerHandle
from fastprod.sharded.messages import Message, Shutdown, Snapshot
from fastprod.sharded.worker import WorkerSpec, main as worker_main

log = logging.getLogger("fastprod.sharded")

MAX_RESTARTS = 3  # within RESTART_WINDOW_S, then the worker's records fail
RESTART_WINDOW_S = 60.0
# what a selector event is about (its key data: (handle, what))
WAKE, CONTROL, EXIT = "wake", "control", "exit"


class Supervisor:
    """Owns the handles and the selector over their pipes and process sentinels. After
    start-up, only the reports thread calls select and on_death."""

    def __init__(self, count: int, ring_bytes: int, worker_config: dict[str, Any],
                 client_id: str, context: Any,
                 snapshot: Callable[[], ClusterSnapshot]) -> None:
        self._worker_config = worker_config
        self._client_id = client_id
        self._context = context
        self._snapshot = snapshot
        self._selector = selectors.DefaultSelector()
        self.closing = False
        self.handles: list[WorkerHandle] = []
        try:
            for i in range(count):
                self.handles.append(WorkerHandle(i, ring_bytes))
                self._start(self.handles[-1])
        except BaseException:
            self.close()
            raise

    def _start(self, w: WorkerHandle) -> None:
        ctx = self._context
        parent_control, child_control = ctx.Pipe(duplex=True)
        wake_recv, wake_send = ctx.Pipe(duplex=False)
        report_recv, report_send = ctx.Pipe(duplex=False)
        config = dict(self._worker_config)
        config["client.id"] = f"{self._client_id}-w{w.index}"
        with w.shard.lock:
            topics = {index: topic for topic, index in w.shard.topics.items()}
        spec = WorkerSpec(index=w.index, generation=w.generation, config=config,
                          records_name=w.records_shm.name, reports_name=w.reports_shm.name,
                          control=child_control, wake=wake_recv, parent_wake=report_send,
                          parent_pid=os.getpid(), log_level=logging.getLogger().level,
                          topics=topics)
        process = ctx.Process(target=worker_main, args=(spec,), daemon=True,
                              name=f"fastprod-worker-{w.index}")
        # Started with SIGINT blocked (the worker ignores it once up): a Ctrl-C meant for
        # the parent must not kill a worker still starting.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for end in (child_control, wake_recv, report_send):
            end.close()
        w.process, w.control, w.wake, w.parent_wake = (process, parent_control, wake_send,
                                                      report_recv)
        for fileobj, what in ((w.parent_wake, WAKE), (w.control, CONTROL),
                              (w.process.sentinel, EXIT)):
            self._selector.register(fileobj, selectors.EVENT_READ, (w, what))
        snapshot = self._snapshot()
        if snapshot.version:
            w.send_control(Snapshot(snapshot))

    def select(self, timeout: float) -> set[tuple[WorkerHandle, str]]:
        return {key.data for key, _ in self._selector.select(timeout)}

    def broadcast(self, message: Message) -> None:
        for w in self.handles:
            w.send_control(message)

    def on_death(self, w: WorkerHandle) -> None:
        """``w``'s process ended (its last reports are read): replace it or give up."""
        for fileobj in (w.parent_wake, w.control, w.process.sentinel):
            try:
                self._selector.unregister(fileobj)
            except (KeyError, ValueError):
                pass
        if w.stopping:
            return
        # The sentinel is ready when the process is gone, maybe before it can be
        # reaped: until then exitcode is None. join reaps it (at once: it is dead).
        w.process.join(5)
        code = describe_exit(w.process.exitcode)
        now = time.monotonic()
        w.deaths = [t for t in w.deaths if now - t < RESTART_WINDOW_S] + [now]
        log.error("worker %d died (exit code %s) with %d frame(s) unacknowledged", w.index,
                  code, len(w.pending))
        for conn in (w.control, w.wake, w.parent_wake):
            conn.close()
        w.fail_questions(WorkerLostError(f"worker {w.index} died (exit code {code}) "
                                         f"before it answered"))
        if len(w.deaths) > MAX_RESTARTS or self.closing:
            self._give_up(w, WorkerLostError(f"worker {w.index} died {len(w.deaths)} "
                                             f"time(s) (last exit code {code})"))
            return
        w.generation += 1
        try:
            self._start(w)
        except Exception as exc:  # cannot spawn (out of processes or descriptors...)
            log.error("worker %d could not be restarted: %s", w.index, exc)
            self._give_up(w, WorkerLostError(
                f"worker {w.index} died and could not be restarted: {exc}"))

    @staticmethod
    def _give_up(w: WorkerHandle, error: WorkerLostError) -> None:
        w.lost = error
        w.stopping = True
        fail_pending(w, error)

    def shut_down(self, grace_ms: int, timeout: float | None) -> None:
        """Ask every worker to deliver what it holds within grace_ms and exit; wait for
        them (a worker still running after the timeout is killed)."""
        for w in self.handles:
            w.stopping = True
            w.send_control(Shutdown(grace_ms))
            w.wake_worker()
        for w in self.handles:
            if w.process is not None:
                w.process.join(None if timeout is None else max(timeout, 1.0) + 5.0)
        self.kill()

    def kill(self) -> None:
        for w in self.handles:
            w.stopping = True
            if w.process is not None and w.process.is_alive():
                w.process.kill()
        for w in self.handles:
            if w.process is not None:
                w.process.join()

    def close(self) -> None:
        """Release the rings; every thread that touches them has stopped."""
        self.kill()
        for w in self.handles:
            with w.shard.lock:  # no send() is writing into it
                w.close()
        self._selector.close()


def describe_exit(code: int | None) -> str:
    """-9 -> "-9 (killed by SIGKILL)"; a negative exitcode is the signal's number."""
    if code is None or code >= 0:
        return str(code)
    try:
        return f"{code} (killed by {signal.Signals(-code).name})"
    except ValueError:
        return f"{code} (killed by signal {-code})"
