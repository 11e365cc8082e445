"""What the engine needs from the rest of the producer, as typing Protocols.

The engine (accumulator, sender, network client, transaction manager) runs in two
places: in-process in ``Producer``, around a ``Metadata`` that fetches for itself, and
in each worker of ``ShardedProducer``, around a ``WorkerMetadata`` fed by the parent.
These Protocols are the seams between them: mypy checks that both metadata holders
provide ``ClusterView`` (tests/unit/test_seams.py), and that ``NetworkClient`` and the
tests' fake provide ``ProducerNetwork``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastprod.cluster.snapshot import ClusterSnapshot, Node

TP = tuple[str, int]
ResponseHandler = Callable[[Any, "BaseException | None"], object]


class ClusterView(Protocol):
    """The metadata as the engine and the caller-side front read and nudge it."""

    snapshot: ClusterSnapshot  # the newest; replaced, never changed
    listeners: list[Callable[[ClusterSnapshot], object]]  # called with each new snapshot
    bootstrap_nodes: list[Node]

    def add_topic(self, topic: str, now_ms: int) -> None:
        """Start tracking a topic the producer will send to (and fetch it soon)."""

    def touch(self, topic: str, now_ms: int) -> None:
        """The topic is in use (metadata.max.idle.ms)."""

    def request_update(self) -> None:
        """Fetch fresh metadata soon (a leader moved, a connection dropped)."""

    def update_leadership(self, leaders: dict[TP, tuple[int, int]],
                          endpoints: Any) -> set[TP]:
        """KIP-951: new leaders a produce response named, applied if their epoch is
        newer than any seen; returns the partitions changed."""

    def close(self) -> None: ...


class MetadataFetcher(Protocol):
    """What the network client needs to fetch metadata itself (Java's
    DefaultMetadataUpdater); a ShardedProducer worker has none, its parent fetches."""

    def time_to_next_update(self, now_ms: int) -> int: ...

    def topics_to_request(self, now_ms: int) -> list[str]: ...

    def on_request_sent(self, now_ms: int) -> None: ...

    def failed_update(self, now_ms: int, reason: str,
                      error: BaseException | None = None) -> None:
        """No broker answered; ``error`` (an AuthenticationError) fails the callers
        waiting on metadata at once instead of at max.block.ms."""

    def update(self, response: Any, now_ms: int) -> ClusterSnapshot: ...


class ProducerNetwork(Protocol):
    """What the sender needs from the network (NetworkClient, or a test's fake)."""

    def wakeup(self) -> None: ...

    def ready(self, node: Node, now_ms: int) -> bool: ...

    def connection_delay(self, node_id: int, now_ms: int) -> int: ...

    def is_connection_failed(self, node_id: int) -> bool: ...

    def api_version(self, node_id: int, api_key: int) -> int | None: ...

    def in_flight_count(self, node_id: int | None = None) -> int: ...

    def least_loaded_node(self, now_ms: int) -> Node | None: ...

    def send(self, node_id: int, api_key: int, message: Any,
             handler: ResponseHandler | None, now_ms: int, expect_response: bool = True,
             version: int | None = None) -> None: ...

    def poll(self, timeout_ms: int, now_ms: int) -> None: ...

    def close(self) -> None: ...
