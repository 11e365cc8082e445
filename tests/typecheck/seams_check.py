"""Checked by mypy in tests/unit/test_seams.py, never run: each implementation provides the
Protocol the engine takes (fastprod/engine/seams.py)."""

from fastprod.cluster.client import NetworkClient
from fastprod.cluster.metadata import Metadata
from fastprod.engine.seams import ClusterView, MetadataFetcher, ProducerNetwork
from fastprod.sharded.worker_metadata import WorkerMetadata
from tests.fakes import FakeNetworkClient


def producers_metadata(m: Metadata) -> tuple[ClusterView, MetadataFetcher]:
    return m, m


def workers_metadata(m: WorkerMetadata) -> ClusterView:
    return m


def networks(real: NetworkClient, fake: FakeNetworkClient) -> tuple[ProducerNetwork, ...]:
    return real, fake
