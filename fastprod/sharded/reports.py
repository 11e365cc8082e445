"""The ``fastprod-reports`` thread: reads what the workers say (reports of written
records, refresh requests, answers) and notices when one dies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fastprod.sharded import messages
from fastprod.sharded.completion import complete
from fastprod.sharded.handle import WorkerHandle
from fastprod.sharded.messages import Answer, Refresh, Report
from fastprod.sharded.supervisor import CONTROL, EXIT, WAKE, Supervisor

log = logging.getLogger("fastprod.sharded")


class ReportsReader:
    """Completes futures and runs callbacks, so on_delivery runs on this thread.
    ``done`` is set when the thread ends: close() waits on it, not with Thread.join,
    which a Ctrl-C can leave saying the thread ended while it runs (bpo-45274)."""

    def __init__(self, supervisor: Supervisor, on_refresh: Callable[[list[str]], None],
                 stop: threading.Event, name: str) -> None:
        self._supervisor = supervisor
        self._on_refresh = on_refresh
        self._stop = stop
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._poll()
                except Exception:
                    log.exception("unexpected error in the reports thread")
        finally:
            self.done.set()

    def _poll(self) -> None:
        live = [w for w in self._supervisor.handles if w.lost is None]
        for w in live:
            w.reports.set_consumer_waiting(True)
        # Sleep unless reports arrived meanwhile; look at the pipes and exits either way.
        idle = all(w.reports.write_pos == w.reports.read_pos for w in live)
        woken = self._supervisor.select(0.1 if idle else 0)
        for w in live:
            w.reports.set_consumer_waiting(False)
        for w in live:
            if (w, WAKE) in woken:
                messages.drain(w.parent_wake)
            self.read_reports(w)
            if (w, CONTROL) in woken:
                self._read_control(w)
            if (w, EXIT) in woken:
                self.read_reports(w)
                self._supervisor.on_death(w)

    @staticmethod
    def read_reports(w: WorkerHandle) -> None:
        """Complete what ``w`` reported. Only this thread calls it while it runs."""
        ring = w.reports
        while True:
            payload = ring.read()
            if payload is None:
                return
            report = messages.decode(payload)
            del payload  # the view must go before the space is released
            ring.release(ring.read_end_pos())
            if type(report) is Report:
                complete(w, report)
            else:
                log.error("worker %d: unexpected %s in the reports ring", w.index,
                          type(report).__name__)

    def _read_control(self, w: WorkerHandle) -> None:
        try:
            while w.control.poll():
                message = messages.decode(w.control.recv_bytes())
                if type(message) is Refresh:
                    self._on_refresh(message.topics)
                elif type(message) is Answer:
                    w.answered(message)
                else:
                    log.error("worker %d: unexpected %s on the control pipe", w.index,
                              type(message).__name__)
        except (EOFError, OSError):
            pass  # the worker died; the sentinel says so
        except messages.MalformedMessage as exc:
            log.error("worker %d: %s", w.index, exc)
