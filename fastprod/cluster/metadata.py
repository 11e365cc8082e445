"""Metadata: what the producer knows about the cluster and when to ask again.

Java's ProducerMetadata in one class. The sender thread decides when a refresh is due
(``time_to_next_update``), asks for ``topics_to_request`` and applies the answer with
``update``; caller threads register topics with ``add_topic`` and block in
``await_topic`` until the topic's partitions are known or max.block.ms passes.

A refresh is due every metadata.max.age.ms, at once after ``request_update`` (leader
errors, disconnects, an unknown topic), and never sooner than the retry backoff after
the previous attempt. Topics unused for metadata.max.idle.ms are forgotten.

Each ``update`` publishes a new immutable ClusterSnapshot; ``snapshot`` is read without
a lock (one attribute load).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from uuid import UUID

from fastprod.clock import Clock, monotonic_ms
from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo
from fastprod.errors import KafkaError, KafkaTimeoutError, error_for_code

log = logging.getLogger("fastprod.metadata")

_UNKNOWN_TOPIC_OR_PARTITION = 3
_LEADER_NOT_AVAILABLE = 5
# Topic errors that do not go away by waiting: fail the send at once.
_FATAL_TOPIC_ERRORS = {17, 29}  # INVALID_TOPIC_EXCEPTION, TOPIC_AUTHORIZATION_FAILED


class Metadata:
    def __init__(self, bootstrap: list[tuple[str, int]], *, metadata_max_age_ms: int,
                 metadata_max_idle_ms: int, refresh_backoff_ms: int,
                 refresh_backoff_max_ms: int, clock: Clock = monotonic_ms) -> None:
        # Stamps the topics await_topic adds; the sender passes now_ms to the rest.
        # (await_topic's wait itself is in real time: max_wait_ms is a duration.)
        self.clock = clock
        self.bootstrap_nodes = [Node(-(i + 1), host, port)
                                for i, (host, port) in enumerate(bootstrap)]
        self.metadata_max_age_ms = metadata_max_age_ms
        self.metadata_max_idle_ms = metadata_max_idle_ms
        self.refresh_backoff_ms = refresh_backoff_ms
        self.refresh_backoff_max_ms = refresh_backoff_max_ms
        self.snapshot = ClusterSnapshot.empty()
        self._cond = threading.Condition()
        self._topics: dict[str, int] = {}  # topic -> last used, monotonic ms
        self._leader_epochs = LeaderEpochs()
        self._need_update = True
        self._last_refresh_ms: int | None = None  # last attempt, successful or not
        self._last_success_ms = 0
        self._failures = 0
        self._fatal: dict[str, KafkaError] = {}
        # the last reason no broker answered, for the error a waiting send() raises
        self.last_failure: str | None = None
        # an authentication error of the last attempt (bad credentials, untrusted
        # certificate): waiting callers raise it instead of waiting out max.block.ms
        self.fatal_error: BaseException | None = None
        self._closed = False
        # called with each new snapshot, under the metadata lock (Producer.send's cache)
        self.listeners: list = []

    # ---- caller threads -------------------------------------------------------------

    def add_topic(self, topic: str, now_ms: int) -> None:
        with self._cond:
            if topic not in self._topics:
                self._need_update = True
            self._topics[topic] = now_ms

    def touch(self, topic: str, now_ms: int) -> None:
        """Mark a topic used (cheap; called on every send of a known topic)."""
        self._topics[topic] = now_ms

    def await_topic(self, topic: str, max_wait_ms: int, wakeup) -> ClusterSnapshot:
        """Block until ``topic`` has partitions in the snapshot; KafkaTimeoutError after
        ``max_wait_ms``. ``wakeup`` nudges the sender thread to fetch metadata now."""
        deadline = time.monotonic() + max_wait_ms / 1000.0
        with self._cond:
            self._topics[topic] = self.clock()
            while True:
                snapshot = self.snapshot
                if snapshot.topics.get(topic):
                    return snapshot
                fatal = self._fatal.get(topic)
                if fatal is not None:
                    raise fatal
                if self.fatal_error is not None:
                    raise self.fatal_error.with_traceback(None)
                if self._closed:
                    from fastprod.errors import ProducerClosedError
                    raise ProducerClosedError("the producer was closed while waiting for metadata")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KafkaTimeoutError(self._timeout_message(topic, max_wait_ms))
                self._need_update = True
                wakeup()
                self._cond.wait(min(remaining, 0.1))

    def _timeout_message(self, topic: str, max_wait_ms: int) -> str:
        message = f"topic {topic!r} not present in metadata after {max_wait_ms} ms"
        error = self.snapshot.topic_errors.get(topic)
        if error == _UNKNOWN_TOPIC_OR_PARTITION:
            message += " (the broker says it does not exist and did not create it)"
        elif not self.snapshot.nodes:
            tried = ", ".join(n.address for n in self.bootstrap_nodes)
            message += f": no broker answered (tried {tried})"
            if self.last_failure:
                message += f"; last error: {self.last_failure}"
        return message

    # ---- sender thread ---------------------------------------------------------------

    def request_update(self) -> None:
        self._need_update = True

    def time_to_next_update(self, now_ms: int) -> int:
        """Milliseconds until a metadata request should go out (0: now)."""
        if self._need_update:
            due = 0
        else:
            due = max(self._last_success_ms + self.metadata_max_age_ms - now_ms, 0)
        if self._last_refresh_ms is None:
            return due
        return max(due, self._last_refresh_ms + self._backoff_ms() - now_ms)

    def _backoff_ms(self) -> int:
        if self._failures == 0:
            return self.refresh_backoff_ms
        return min(self.refresh_backoff_ms * 2 ** (self._failures - 1),
                   self.refresh_backoff_max_ms)

    def topics_to_request(self, now_ms: int) -> list[str]:
        """Topics to ask about, forgetting those idle past metadata.max.idle.ms."""
        with self._cond:
            idle = [t for t, used in self._topics.items()
                    if now_ms - used >= self.metadata_max_idle_ms]
            for topic in idle:
                log.debug("forgetting topic %s: unused for %d ms", topic,
                          self.metadata_max_idle_ms)
                del self._topics[topic]
            return list(self._topics)

    @property
    def last_success_ms(self) -> int | None:
        """When the last snapshot was applied (the metadata-age metric)."""
        return self._last_success_ms or None

    def on_request_sent(self, now_ms: int) -> None:
        self._need_update = False
        self._last_refresh_ms = now_ms

    def failed_update(self, now_ms: int, reason: str,
                      error: BaseException | None = None) -> None:
        with self._cond:
            self.fatal_error = error
            self._failures += 1
            self._need_update = True
            self._last_refresh_ms = now_ms
            self.last_failure = reason
            self._cond.notify_all()

    def update(self, response, now_ms: int) -> ClusterSnapshot:
        """Apply a MetadataResponse and publish the new snapshot."""
        nodes = {b.node_id: Node(b.node_id, b.host, b.port, b.rack) for b in response.brokers}
        topics: dict[str, tuple[PartitionInfo, ...]] = {}
        errors: dict[str, int] = {}
        topic_ids = {}
        fatal: dict[str, KafkaError] = {}
        for t in response.topics:
            if t.name is None:
                continue
            if t.error_code:
                errors[t.name] = t.error_code
                if t.error_code in _FATAL_TOPIC_ERRORS:
                    fatal[t.name] = error_for_code(t.error_code, f"topic {t.name!r}")
                if t.error_code != _LEADER_NOT_AVAILABLE or not t.partitions:
                    continue
            topic_ids[t.name] = t.topic_id
            topics[t.name] = _partitions(t.name, t.partitions, nodes)
        with self._cond:
            old = self.snapshot
            topics = self._leader_epochs.keep_newest(topics, topic_ids, old)
            self.snapshot = ClusterSnapshot(
                version=old.version + 1, cluster_id=response.cluster_id,
                controller_id=response.controller_id, nodes=nodes, topics=topics,
                topic_errors=errors, topic_ids=topic_ids)
            for listener in self.listeners:
                listener(self.snapshot)
            self._fatal = fatal
            self.fatal_error = None
            self._failures = 0
            self._last_success_ms = now_ms
            self._last_refresh_ms = now_ms
            # Ask again soon if some requested topic is still missing or leaderless.
            self._need_update = any(
                t not in topics or any(p.leader < 0 for p in topics[t]) for t in self._topics
                if t not in fatal)
            self._cond.notify_all()
        return self.snapshot

    def update_leadership(self, leaders: dict[tuple[str, int], tuple[int, int]],
                          endpoints) -> set[tuple[str, int]]:
        """KIP-951 (Java's Metadata.updatePartitionLeadership): take the new leaders a
        Produce response named for partitions it refused (NOT_LEADER_OR_FOLLOWER),
        ``leaders``: (topic, partition) -> (leader id, leader epoch), with their
        ``endpoints`` (NodeEndpoints), when their epoch is newer than ours. Returns the
        partitions updated; publishes a new snapshot if there are any."""
        with self._cond:
            snapshot, updated = self._leader_epochs.with_new_leaders(self.snapshot, leaders,
                                                                     endpoints)
            if updated:
                self.snapshot = snapshot
                for listener in self.listeners:
                    listener(snapshot)
                self._cond.notify_all()
            return updated

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _partitions(topic: str, partitions, nodes) -> tuple[PartitionInfo, ...]:
    by_index = {p.partition_index: p for p in partitions}
    count = max(by_index) + 1 if by_index else 0
    out = []
    for i in range(count):
        p = by_index.get(i)
        if p is None:  # a gap should not happen; keep indices aligned anyway
            out.append(PartitionInfo(topic, i, -1))
            continue
        # A leader the response does not list as a broker cannot be reached: no leader.
        leader = p.leader_id if p.error_code != _LEADER_NOT_AVAILABLE and \
            p.leader_id in nodes else -1
        out.append(PartitionInfo(topic, i, leader, p.leader_epoch, tuple(p.replica_nodes),
                                 tuple(p.isr_nodes), tuple(p.offline_replicas)))
    return tuple(out)


class LeaderEpochs:
    """The newest leader epoch seen for each partition, and the rule built on it: a
    partition never moves back to a leader of an older epoch (Java's
    Metadata.updateLatestMetadata and updatePartitionLeadership). Metadata keeps one
    for the responses it fetches, each ShardedProducer worker one for the snapshots its
    parent sends and the leaders its produce answers name. Not thread-safe: the owner
    holds its lock."""

    def __init__(self) -> None:
        self._newest: dict[tuple[str, int], int] = {}

    def keep_newest(self, topics: dict[str, tuple[PartitionInfo, ...]],
                    topic_ids: Mapping[str, UUID | None],
                    old: ClusterSnapshot) -> dict[str, tuple[PartitionInfo, ...]]:
        """``topics`` of a new picture of the cluster, except that a partition whose
        leader epoch is older than the newest seen (a lagging broker's answer) keeps
        what ``old`` had. A topic new to ``old``, or created again (another id), starts
        over; epochs of topics no longer listed are forgotten."""
        out = {}
        for topic, parts in topics.items():
            topic_id = topic_ids.get(topic)
            if topic_id is not None and old.topic_ids.get(topic) != topic_id:
                self._forget(lambda t, topic=topic: t == topic)
            previous = old.topics.get(topic, ())
            kept = list(parts)
            for i, p in enumerate(parts):
                key = (topic, i)
                if p.leader_epoch < 0:  # no epoch to compare (an error): take it as is
                    self._newest.pop(key, None)
                    continue
                newest = self._newest.get(key)
                if newest is None or p.leader_epoch >= newest:
                    self._newest[key] = p.leader_epoch
                elif i < len(previous):
                    log.debug("ignoring leader epoch %d of %s-%d: %d seen already",
                              p.leader_epoch, topic, i, newest)
                    kept[i] = previous[i]
            out[topic] = tuple(kept)
        self._forget(lambda t: t not in topics)  # deleted or forgotten
        return out

    def _forget(self, which: Callable[[str], bool]) -> None:
        for key in [k for k in self._newest if which(k[0])]:
            del self._newest[key]

    def with_new_leaders(self, old: ClusterSnapshot,
                         leaders: dict[tuple[str, int], tuple[int, int]], endpoints,
                         version: int | None = None
                         ) -> tuple[ClusterSnapshot, set[tuple[str, int]]]:
        """``old`` with the leaders of ``leaders`` whose epoch is newer than both the
        snapshot's and the newest seen, and the partitions changed. The new snapshot's
        version is ``version``, or ``old``'s plus one."""
        nodes = dict(old.nodes)
        for e in endpoints:
            nodes.setdefault(e.node_id, Node(e.node_id, e.host, e.port, e.rack))
        topics = dict(old.topics)
        updated = set()
        for (topic, partition), (leader, epoch) in leaders.items():
            parts = topics.get(topic)
            if parts is None or partition >= len(parts) or leader not in nodes:
                continue
            current = parts[partition]
            if epoch <= max(current.leader_epoch, self._newest.get((topic, partition), -1)):
                continue  # not newer than what we know
            parts = list(parts)
            parts[partition] = PartitionInfo(topic, partition, leader, epoch,
                                             current.replicas, current.isr,
                                             current.offline_replicas)
            topics[topic] = tuple(parts)
            self._newest[(topic, partition)] = epoch
            updated.add((topic, partition))
        if not updated:
            return old, updated
        log.info("new leaders from a produce response: %s", ", ".join(
            f"{t}-{p} -> node {leaders[(t, p)][0]}" for t, p in sorted(updated)))
        return ClusterSnapshot(
            version=old.version + 1 if version is None else version,
            cluster_id=old.cluster_id, controller_id=old.controller_id, nodes=nodes,
            topics=topics, topic_errors=old.topic_errors, topic_ids=old.topic_ids), updated
