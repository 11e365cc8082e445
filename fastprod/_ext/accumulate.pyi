"""Per-record results, futures and the producer batch (see accumulate.pyx)."""

from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, NamedTuple

from fastprod._ext.batch import BatchBuilder
from fastprod.partitioners import BuiltInPartitioner

DeliveryCallback = Callable[["RecordMetadata | None", "BaseException | None"], object]

class FastLock:
    """A bare C lock: ``with lock:``."""

    def __enter__(self) -> bool: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

class RecordMetadata(NamedTuple):
    """Where a record was written. ``offset`` is -1 with acks=0; the sizes are -1 for a
    null key or value."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    serialized_key_size: int
    serialized_value_size: int

class ProduceRequestResult:
    """The outcome of one batch, shared by the futures of its records."""

    topic: str
    partition: int
    base_offset: int
    log_append_time: int
    @property
    def error(self) -> BaseException | None: ...
    @property
    def record_errors(self) -> dict[int, BaseException] | None: ...
    @property
    def runs(self) -> list[tuple[int, int, int]] | None: ...
    def __init__(self, topic: str, partition: int) -> None: ...
    def set(self, base_offset: int, log_append_time: int, error: BaseException | None,
            record_errors: dict[int, BaseException] | None = None) -> None: ...
    def set_split(self, runs: list[tuple[int, int, int]],
                  record_errors: dict[int, BaseException] | None) -> None: ...
    def offset_of(self, rel: int) -> int: ...
    def append_time_of(self, rel: int) -> int: ...
    def pieces(self, first: int, count: int) -> list[tuple[int, int, int, int]]: ...
    def done(self) -> None: ...
    def is_done(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...

class RecordFuture:
    """The future of one sent record: ``result(timeout)`` is its RecordMetadata, or
    raises the error it failed with."""

    def __init__(self, result: ProduceRequestResult, relative_offset: int, timestamp: int,
                 key_size: int, value_size: int) -> None: ...
    def done(self) -> bool: ...
    def result(self, timeout: float | None = None) -> RecordMetadata: ...
    def exception(self, timeout: float | None = None) -> BaseException | None: ...
    def add_done_callback(self, fn: Callable[[RecordFuture], object]) -> None: ...
    def error(self) -> BaseException | None: ...
    def metadata(self) -> RecordMetadata | None: ...

def complete_futures(futures: list[RecordFuture], callbacks: list[Any],
                     positions: list[int], start: int, base_offset: int,
                     log_append_time: int, error: BaseException | None,
                     errors: dict[int, BaseException] | None) -> None: ...
def run_future_callbacks(future: RecordFuture) -> None: ...
def failed_future(topic: str, partition: int, error: BaseException) -> RecordFuture: ...

class ProducerBatch:
    """The records of one partition on their way into one record batch v2."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    builder: BatchBuilder
    @property
    def result(self) -> ProduceRequestResult: ...
    futures: list[RecordFuture]
    callbacks: list[tuple[RecordFuture, DeliveryCallback]] | None
    hooks: list[Callable[[], object]] | None
    created_ms: int
    last_attempt_ms: int
    drained_ms: int
    attempts: int
    in_retry: bool
    record_count: int
    full: bool
    reserved_bytes: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    is_transactional: bool
    current_leader_epoch: int
    leader_changed_attempts: int
    last_error: BaseException | None
    @property
    def parent(self) -> ProducerBatch | None: ...
    @property
    def parent_start(self) -> int: ...
    def __init__(self, topic: str, partition: int, builder: BatchBuilder, now_ms: int,
                 reserved_bytes: int = 0) -> None: ...
    def try_append(self, timestamp: int, key: bytes | None, value: bytes | None,
                   headers: Sequence[tuple[str, bytes | None]] | None,
                   callback: DeliveryCallback | None) -> tuple[RecordFuture | None, int]: ...
    def append_many(self, timestamp: int, keys: Sequence[bytes | None] | None,
                    values: Sequence[bytes | None], start: int,
                    stop: int) -> tuple[int, int]: ...
    @property
    def estimated_size_in_bytes(self) -> int: ...
    def records(self) -> bytes: ...
    def set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int,
                           is_transactional: bool) -> None: ...
    def has_reached_delivery_timeout(self, delivery_timeout_ms: int, now_ms: int) -> bool: ...
    def maybe_update_leader_epoch(self, leader_epoch: int) -> None: ...
    @property
    def leader_changed_for_retry(self) -> bool: ...
    def reenqueued(self, now_ms: int) -> None: ...
    def is_done(self) -> bool: ...
    def complete(self, base_offset: int, log_append_time: int,
                 error: BaseException | None = None,
                 record_errors: dict[int, BaseException] | None = None) -> bool: ...
    def append_copy(self, timestamp: int, key: bytes | None, value: bytes | None,
                    headers: Any) -> bool: ...
    def set_parent(self, root: ProducerBatch, start: int) -> None: ...
    def expect_parts(self, replaced: ProducerBatch, count: int) -> None: ...
    def abort(self, error: BaseException) -> None: ...

class StickyState:
    """The built-in partitioner's sticky partition (-1: none yet) and the bytes
    appended to it since it was chosen."""

    partition: int
    produced_bytes: int

class TopicQueues:
    """The accumulator's state for one topic."""

    deques: dict[int, deque[ProducerBatch]]
    partitioner: BuiltInPartitioner
    compression_ratio: float
    def __init__(self, partitioner: BuiltInPartitioner) -> None: ...

class SendPathBase:
    """What the C send paths of both producers share."""

    closed: bool
    def set_snapshot(self, snapshot: Any) -> None: ...

class SendFastPath(SendPathBase):
    """Producer.send for the common case; everything else goes to ``slow_send``."""

    def __init__(self, lock: FastLock, topics: dict[str, TopicQueues], snapshot: Any,
                 slow_send: Callable[..., RecordFuture], *, txn: Any = None,
                 txn_open: Any = None, key_passthrough: bool, value_passthrough: bool,
                 partitioner_builtin: bool, ignore_keys: bool,
                 sticky_batch_size: int) -> None: ...
    def send(self, topic: str, value: Any = None, key: Any = None,
             partition: int | None = None, timestamp: int | None = None,
             headers: Any = None,
             on_delivery: DeliveryCallback | None = None) -> RecordFuture: ...
