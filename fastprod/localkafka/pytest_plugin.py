"""pytest fixtures for a real local Kafka. Enable with
``pytest_plugins = ["fastprod.localkafka.pytest_plugin"]`` in a conftest.py.

- ``kafka``: one broker for the whole session (started on first use). If
  ``FASTPROD_BOOTSTRAP`` is set, that already-running broker is used instead.
- ``kafka_cluster3``: three broker+controller nodes for the session, started only when a
  test asks for it; supports ``kill``/``stop_node``/``start_node`` for failure tests.
- ``kafka_secure``: one broker with TLS and SASL listeners beside PLAINTEXT (always a
  broker of its own, FASTPROD_BOOTSTRAP or not); yields a ``security.SecureEndpoints``
  (``.kafka`` is its LocalKafka). ``kafka_secure_cluster``: the same with three nodes.

Before each test that uses one of them, nodes that an earlier test killed, stopped or
paused are brought back, so one failure test cannot poison the next.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from .cluster import ExternalKafka, LocalKafka
from .security import SecureEndpoints

log = logging.getLogger("fastprod.localkafka")

_started: dict[str, LocalKafka] = {}


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka | ExternalKafka]:
    """A single local broker shared by the whole test run (or FASTPROD_BOOTSTRAP)."""
    external = os.environ.get("FASTPROD_BOOTSTRAP")
    if external:
        yield ExternalKafka(external)
        return
    with LocalKafka(nodes=1) as k:
        _started["kafka"] = k
        try:
            yield k
        finally:
            _started.pop("kafka", None)


@pytest.fixture(scope="session")
def kafka_cluster3() -> Iterator[LocalKafka]:
    """Three nodes, each broker and controller; offsets/transaction logs RF 3, min ISR 2."""
    with LocalKafka(nodes=3) as k:
        _started["kafka_cluster3"] = k
        try:
            yield k
        finally:
            _started.pop("kafka_cluster3", None)


def _secure(name: str, nodes: int) -> Iterator[SecureEndpoints]:
    with LocalKafka(nodes=nodes, security=True) as k:
        assert k.secure is not None
        _started[name] = k
        try:
            yield k.secure
        finally:
            _started.pop(name, None)


@pytest.fixture(scope="session")
def kafka_secure() -> Iterator[SecureEndpoints]:
    """One secured broker for the session: SSL, MTLS, SASL_PLAINTEXT, SASL_SSL, REAUTH
    and the failure listeners (see fastprod.localkafka.security)."""
    yield from _secure("kafka_secure", 1)


@pytest.fixture(scope="session")
def kafka_secure_cluster() -> Iterator[SecureEndpoints]:
    """Three secured nodes (each broker and controller), listeners as ``kafka_secure``."""
    yield from _secure("kafka_secure_cluster", 3)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    names = getattr(item, "fixturenames", ())
    for name, k in list(_started.items()):
        if name in names and not k.healthy:
            log.info("restarting nodes of %s left down by an earlier test", name)
            k.ensure_running()
