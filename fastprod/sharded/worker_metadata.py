"""A ShardedProducer worker's view of the cluster, kept from its parent's snapshots."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

from fastprod.clock import monotonic_ms
from fastprod.cluster.metadata import LeaderEpochs
from fastprod.cluster.snapshot import ClusterSnapshot, Node
from fastprod.sharded import messages
from fastprod.sharded.messages import Refresh

_REFRESH_INTERVAL_MS = 100


class WorkerMetadata:
    """The worker's view of the cluster (a ``ClusterView``): the snapshots its parent
    sends, and the leaders its own produce answers name (KIP-951), under the same
    leader-epoch rule as Metadata, so a snapshot from the parent that is older than a
    hint never moves a partition back. Snapshots it publishes are numbered by the
    worker (the accumulator caches by version). Refreshes are asked of the parent; the
    worker's network client fetches no metadata (it is built without a fetcher).

    Threads: the control thread sets snapshots, the sender thread applies hints and
    asks for refreshes; ``_lock`` orders them."""

    bootstrap_nodes: list[Node] = []  # the parent bootstraps

    def __init__(self, control: Any, control_lock: threading.Lock) -> None:
        self.snapshot = ClusterSnapshot.empty()
        self.listeners: list[Callable[[ClusterSnapshot], object]] = []
        self._lock = threading.Lock()
        self._epochs = LeaderEpochs()
        self._control = control
        self._control_lock = control_lock
        self._wanted: set[str] = set()
        self._update_wanted = False
        self._last_request_ms = 0
        self.last_success_ms: int | None = None  # when the parent's last snapshot came

    def set_snapshot(self, snapshot: ClusterSnapshot) -> None:
        """A snapshot from the parent."""
        with self._lock:
            topics = self._epochs.keep_newest(dict(snapshot.topics), snapshot.topic_ids,
                                              self.snapshot)
            self._publish(dataclasses.replace(snapshot, version=self.snapshot.version + 1,
                                              topics=topics))
            self.last_success_ms = monotonic_ms()

    def _publish(self, snapshot: ClusterSnapshot) -> None:
        self.snapshot = snapshot
        for listener in self.listeners:
            listener(snapshot)

    def add_topic(self, topic: str, now_ms: int) -> None:
        self._wanted.add(topic)
        self.request_update()

    def touch(self, topic: str, now_ms: int) -> None:
        """The parent tracks which topics are in use (metadata.max.idle.ms)."""

    def update_leadership(self, leaders: dict[tuple[str, int], tuple[int, int]],
                          endpoints) -> set[tuple[str, int]]:
        """KIP-951: a produce answer named a new leader; use it now and have the parent
        refresh (its next snapshot replaces this one, unless its epoch is older)."""
        with self._lock:
            snapshot, updated = self._epochs.with_new_leaders(self.snapshot, leaders,
                                                              endpoints)
            if updated:
                self._publish(snapshot)
        if updated:
            self.request_update()
        return updated

    def request_update(self) -> None:
        self._update_wanted = True
        self.send_request()

    def send_request(self) -> None:
        """Ask the parent for fresh metadata if wanted, at most once per interval (the
        worker's idle loop calls this too, so a request held back is sent later)."""
        now_ms = monotonic_ms()
        if not self._update_wanted or now_ms - self._last_request_ms < _REFRESH_INTERVAL_MS:
            return
        self._update_wanted = False
        self._last_request_ms = now_ms
        try:
            with self._control_lock:
                self._control.send_bytes(messages.encode(Refresh(sorted(self._wanted))))
        except OSError:
            pass  # the parent is gone; the main loop notices and exits

    def close(self) -> None:
        """Nothing to release: the parent owns the metadata."""
