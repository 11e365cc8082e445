"""NetworkClient without a broker: reconnect backoff, connection set-up timeout,
choosing a node, and wakeup. Brokers are loopback sockets the test controls."""

from __future__ import annotations

import socket
import threading
import time

from fastprod.clock import monotonic_ms
from fastprod.cluster.client import ClientOptions, NetworkClient
from fastprod.cluster.connection import SocketOptions, State
from fastprod.cluster.metadata import Metadata
from fastprod.cluster.snapshot import Node


def closed_port() -> int:
    """A loopback port nobody listens on (connects are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fetcher:
    """Records what the client tells the metadata fetcher; never due."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def time_to_next_update(self, now_ms: int) -> int:
        return 2**31 - 1

    def topics_to_request(self, now_ms: int) -> list[str]:
        return []

    def on_request_sent(self, now_ms: int) -> None: ...

    def failed_update(self, now_ms: int, reason: str) -> None:
        self.failures.append(reason)

    def update(self, response, now_ms: int):
        raise AssertionError("no metadata is fetched in these tests")


def client(bootstrap, **options) -> tuple[NetworkClient, Metadata, Fetcher]:
    metadata = Metadata(list(bootstrap), metadata_max_age_ms=300_000,
                        metadata_max_idle_ms=300_000, refresh_backoff_ms=100,
                        refresh_backoff_max_ms=1000)
    fetcher = Fetcher()
    return (NetworkClient(metadata, ClientOptions(socket=SocketOptions(), **options),
                          fetcher), metadata, fetcher)


def backing_off(nc: NetworkClient, node_id: int) -> bool:
    """The last connect attempt failed and the next one waits (not still connecting)."""
    conn = nc._conns.get(node_id)
    return (conn is not None and conn.state is State.DISCONNECTED and
            nc.connection_delay(node_id, monotonic_ms()) > 0)


def poll_until(nc: NetworkClient, done, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        nc.poll(20, monotonic_ms())


def test_a_refused_connect_backs_off_exponentially_with_jitter():
    port = closed_port()
    nc, metadata, fetcher = client([("127.0.0.1", port)], reconnect_backoff_ms=100,
                                   reconnect_backoff_max_ms=1000)
    node = metadata.bootstrap_nodes[0]
    delays = []
    try:
        for _ in range(5):
            now = monotonic_ms()
            assert nc.connection_delay(node.node_id, now) == 0
            assert not nc.ready(node, now)  # starts connecting
            poll_until(nc, lambda: backing_off(nc, node.node_id))
            delays.append(nc.connection_delay(node.node_id, monotonic_ms()))
            time.sleep(delays[-1] / 1000 + 0.01)
        assert nc.is_connection_failed(node.node_id)
        # 100, 200, 400, 800, 1000 ms, each within +-20% (less the time polling took)
        for got, base in zip(delays, (100, 200, 400, 800, 1000)):
            assert base * 0.8 - 150 <= got <= base * 1.2, delays
        # a bootstrap server that cannot be reached fails the metadata attempt
        assert len(fetcher.failures) == 5 and "refused" in fetcher.failures[0].lower()
    finally:
        nc.close()


def test_a_broker_that_accepts_but_never_answers_times_out_its_set_up():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    nc, metadata, fetcher = client([listener.getsockname()],
                                   connection_setup_timeout_ms=200)
    node = metadata.bootstrap_nodes[0]
    try:
        started = time.monotonic()
        nc.ready(node, monotonic_ms())
        poll_until(nc, lambda: fetcher.failures)
        assert 0.15 <= time.monotonic() - started < 3
        assert "socket.connection.setup.timeout.ms" in fetcher.failures[0]
        assert nc.is_connection_failed(node.node_id)
    finally:
        nc.close()
        listener.close()


def test_least_loaded_node_is_a_bootstrap_server_until_brokers_are_known():
    nc, metadata, _ = client([("127.0.0.1", closed_port()), ("127.0.0.1", closed_port())])
    try:
        chosen = {nc.least_loaded_node(monotonic_ms()).node_id for _ in range(50)}
        assert chosen == {-1, -2}  # shuffled among the usable ones
        for node in metadata.bootstrap_nodes:  # both refuse: both back off
            nc.ready(node, monotonic_ms())
        poll_until(nc, lambda: all(backing_off(nc, n.node_id)
                                   for n in metadata.bootstrap_nodes))
        assert nc.least_loaded_node(monotonic_ms()) is None
    finally:
        nc.close()


def test_wakeup_ends_a_long_poll_from_another_thread():
    nc, _, _ = client([("127.0.0.1", closed_port())])
    try:
        threading.Timer(0.1, nc.wakeup).start()
        started = time.monotonic()
        nc.poll(10_000, monotonic_ms())
        assert time.monotonic() - started < 5
    finally:
        nc.close()


def test_a_node_with_a_new_address_gets_a_new_connection():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    nc, _, _ = client([("127.0.0.1", closed_port())])
    try:
        host, port = listener.getsockname()
        nc.ready(Node(1, "127.0.0.1", closed_port()), monotonic_ms())
        poll_until(nc, lambda: backing_off(nc, 1))  # refused
        nc.ready(Node(1, host, port), monotonic_ms() + 10_000)  # moved: connect there
        conn = nc._conns[1]
        assert (conn.host, conn.port) == (host, port)
    finally:
        nc.close()
        listener.close()
