"""Immutable views of cluster metadata (Java's MetadataSnapshot / Cluster).

A snapshot never changes after it is built: the metadata manager publishes a new one
with a higher ``version`` after each refresh, and whoever holds the old one keeps a
consistent picture (the partitioner, the accumulator's ready/drain, a worker process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    host: str
    port: int
    rack: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    topic: str
    partition: int
    leader: int  # node id, -1 when the partition has no leader right now
    leader_epoch: int = -1
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    offline_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """One consistent picture of the cluster, as a Metadata response gave it."""

    version: int
    cluster_id: str | None
    controller_id: int
    nodes: Mapping[int, Node]
    # topic -> its partitions, indexed by partition number
    topics: Mapping[str, tuple[PartitionInfo, ...]]
    # topic -> Kafka error code of the last lookup (e.g. 3 UNKNOWN_TOPIC_OR_PARTITION)
    topic_errors: Mapping[str, int] = field(default_factory=dict)
    topic_ids: Mapping[str, UUID] = field(default_factory=dict)
    # topic -> partitions that have a leader (what sticky/round-robin pick from)
    _available: dict[str, tuple[PartitionInfo, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for topic, parts in self.topics.items():
            self._available[topic] = tuple(p for p in parts if p.leader >= 0)

    def partitions_for_topic(self, topic: str) -> tuple[PartitionInfo, ...]:
        return self.topics.get(topic, ())

    def partition_count(self, topic: str) -> int | None:
        parts = self.topics.get(topic)
        return None if parts is None else len(parts)

    def available_partitions_for_topic(self, topic: str) -> tuple[PartitionInfo, ...]:
        return self._available.get(topic, ())

    def leader_for(self, topic: str, partition: int) -> Node | None:
        parts = self.topics.get(topic)
        if parts is None or not 0 <= partition < len(parts):
            return None
        return self.nodes.get(parts[partition].leader)

    @classmethod
    def empty(cls) -> "ClusterSnapshot":
        return cls(version=0, cluster_id=None, controller_id=-1, nodes={}, topics={})
