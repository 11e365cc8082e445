"""The parent's side of one worker: its rings, its pipes, its process, the frames it has
not answered yet, and the questions asked of it."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing import shared_memory
from typing import Any

from fastprod._ext.ring import Ring
from fastprod._ext.shard import Pending, Shard
from fastprod.errors import KafkaTimeoutError, WorkerLostError
from fastprod.sharded import messages
from fastprod.sharded.messages import Answer, Ask, Message, TopicRegistration

REPORTS_RING_BYTES = 4 << 20
RUN_MAX = 512  # send() records staged per frame at most


class WorkerHandle:
    """Rings and pipes outlive the processes: a replacement attaches to the same rings
    (what its predecessor left unanswered is still there) and gets new pipes."""

    def __init__(self, index: int, ring_bytes: int) -> None:
        self.index = index
        tag = secrets.token_hex(4)
        self.records_shm = shared_memory.SharedMemory(
            create=True, size=Ring.HEADER_SIZE + ring_bytes,
            name=f"fp-{os.getpid()}-{tag}-r{index}")
        self.reports_shm = shared_memory.SharedMemory(
            create=True, size=Ring.HEADER_SIZE + REPORTS_RING_BYTES,
            name=f"fp-{os.getpid()}-{tag}-a{index}")
        self.records = Ring(self.records_shm.buf, create=True)
        self.reports = Ring(self.reports_shm.buf, create=True)
        # staged send() records, frames awaiting reports, registered topics
        self.shard = Shard(self.records, RUN_MAX, _topic_frame)
        self.pending: dict[int, Pending] = self.shard.pending
        self.control_lock = threading.Lock()
        self.process: Any = None
        self.control: Any = None  # Connection, both ways
        self.wake: Any = None  # -> worker: records are waiting
        self.parent_wake: Any = None  # <- worker: reports are waiting
        self.generation = 0
        self.deaths: list[float] = []
        self.lost: BaseException | None = None
        self.stopping = False
        self._request_ids = itertools.count(1)
        self._questions: dict[int, Future[Any]] = {}

    def send_control(self, message: Message) -> bool:
        """False if the worker is dead (the reports thread replaces it, and the new one
        gets the current snapshot)."""
        data = messages.encode(message)
        with self.control_lock:
            try:
                self.control.send_bytes(data)
                return True
            except (OSError, AttributeError):
                return False

    def wake_worker(self) -> None:
        if self.records.consumer_waiting:
            try:
                self.wake.send_bytes(b"\0")
            except OSError:
                pass

    # ---- questions ----------------------------------------------------------------------

    def ask(self, question: str, argument: Any = None, timeout: float = 10.0) -> Any:
        """Ask the worker ``question`` and wait for its answer (the reports thread reads
        it). Raises WorkerLostError if the worker dies first, KafkaTimeoutError after
        ``timeout`` seconds, and the worker's error if it could not answer."""
        if self.lost is not None:
            raise WorkerLostError(f"worker {self.index} is lost: {self.lost}")
        future: Future[Any] = Future()
        with self.control_lock:
            request_id = next(self._request_ids)
            self._questions[request_id] = future
        try:
            if not self.send_control(Ask(request_id, question, argument)):
                raise WorkerLostError(f"worker {self.index} is not running")
            try:
                return future.result(timeout)
            except FutureTimeout:
                raise KafkaTimeoutError(f"worker {self.index} did not answer {question!r} "
                                        f"within {timeout} s") from None
        finally:
            with self.control_lock:
                self._questions.pop(request_id, None)

    def answered(self, answer: Answer) -> None:
        with self.control_lock:
            future = self._questions.pop(answer.request_id, None)
        if future is None:
            return  # asked of a predecessor, or given up on
        error = messages.decode_error(answer.error)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(answer.value)

    def fail_questions(self, error: BaseException) -> None:
        """The worker died: what it was asked, it will never answer."""
        with self.control_lock:
            waiting, self._questions = self._questions, {}
        for future in waiting.values():
            future.set_exception(error)

    def close(self) -> None:
        for ring in (self.records, self.reports):
            ring.close()
        for shm in (self.records_shm, self.reports_shm):
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass


def _topic_frame(index: int, topic: str) -> bytes:
    return messages.encode(TopicRegistration(index, topic))
