"""NetworkClient: every broker connection of one producer, driven by one thread.

Java's NetworkClient + Selector + DefaultMetadataUpdater, shrunk: ``poll`` sends a
metadata request when one is due, waits for socket events (or a ``wakeup`` from
another thread), completes connects, writes queued requests, reads responses and runs
their handlers, and fails requests whose connection dropped or whose
request.timeout.ms passed. Only the owning thread may call anything except
``wakeup``.
"""

from __future__ import annotations

import logging
import random
import selectors
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastprod.cluster.connection import SETTING_UP, BrokerConnection, SocketOptions, State
from fastprod.clock import Clock, monotonic_ms
from fastprod.cluster.snapshot import Node
from fastprod.errors import (
    AuthenticationError,
    KafkaTimeoutError,
    MalformedResponseError,
    NetworkError,
    ProtocolError,
)

if TYPE_CHECKING:
    from fastprod.engine.seams import ClusterView, MetadataFetcher
from fastprod.protocol.messages.metadata import MetadataRequest, MetadataRequestTopic

log = logging.getLogger("fastprod.network")

METADATA_KEY = MetadataRequest.API_KEY
_SETTING_UP = SETTING_UP


@dataclass(frozen=True, slots=True)
class ClientOptions:
    socket: SocketOptions
    max_in_flight: int = 5
    request_timeout_ms: int = 30000
    reconnect_backoff_ms: int = 50
    reconnect_backoff_max_ms: int = 1000
    connections_max_idle_ms: int = 540000
    connection_setup_timeout_ms: int = 10000
    connection_setup_timeout_max_ms: int = 30000


class _Backoff:
    """Reconnect backoff of one address: exponential with 20% jitter, as in Java."""

    __slots__ = ("failures", "next_attempt_ms")

    def __init__(self) -> None:
        self.failures = 0
        self.next_attempt_ms = 0


class NetworkClient:
    def __init__(self, metadata: ClusterView, options: ClientOptions,
                 fetcher: MetadataFetcher | None = None, clock: Clock = monotonic_ms) -> None:
        self.clock = clock  # read after each select and when closing
        self.metadata = metadata
        # fetches metadata when due (Java's DefaultMetadataUpdater); None in a
        # ShardedProducer worker, whose parent fetches for it
        self.fetcher = fetcher
        self.options = options
        self._conns: dict[int, BrokerConnection] = {}
        self._backoff: dict[int, _Backoff] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._metadata_node: int | None = None  # node with a metadata request in flight
        self._registered: dict[BrokerConnection, socket.socket] = {}
        self._random = random.Random()
        self._closing = False
        self._polling = False  # the owner is in (or about to be in) select
        self._wake_requested = False
        self.metrics: Any = None  # a NetworkMetrics (engine/producer_metrics.py), or None

    # ---- any thread ---------------------------------------------------------------

    def wakeup(self) -> None:
        # Write to the socket only if the owner sleeps in select (Java's Selector.wakeup):
        # a write per new batch would hand the GIL to the sender thread and back each
        # time. Flag first, then look: poll sets _polling first, then looks at the flag.
        self._wake_requested = True
        if self._polling:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # already awake, or closing

    # ---- owner thread -------------------------------------------------------------

    def _node(self, node_id: int) -> Node | None:
        node = self.metadata.snapshot.nodes.get(node_id)
        if node is None and node_id < 0:
            for b in self.metadata.bootstrap_nodes:
                if b.node_id == node_id:
                    return b
        return node

    def is_ready(self, node_id: int) -> bool:
        conn = self._conns.get(node_id)
        return (conn is not None and conn.state is State.READY
                and len(conn.in_flight) < self.options.max_in_flight)

    def ready(self, node: Node, now_ms: int) -> bool:
        """True if a request can go to ``node`` now; otherwise start connecting."""
        if self.is_ready(node.node_id):
            return True
        conn = self._conns.get(node.node_id)
        if (conn is None or conn.state is State.DISCONNECTED) and \
                self.connection_delay(node.node_id, now_ms) == 0:
            self._connect(node, now_ms)
        return False

    def connection_delay(self, node_id: int, now_ms: int) -> int:
        conn = self._conns.get(node_id)
        if conn is not None and conn.state is not State.DISCONNECTED:
            return 2**31 - 1 if conn.state is not State.READY else 0
        backoff = self._backoff.get(node_id)
        if backoff is None:
            return 0
        return max(backoff.next_attempt_ms - now_ms, 0)

    def is_connection_failed(self, node_id: int) -> bool:
        backoff = self._backoff.get(node_id)
        return backoff is not None and backoff.failures > 0

    def api_version(self, node_id: int, api_key: int) -> int | None:
        conn = self._conns.get(node_id)
        return None if conn is None else conn.api_versions.get(api_key)

    def connection_count(self) -> int:
        return len(self._registered)

    def in_flight_count(self, node_id: int | None = None) -> int:
        if node_id is not None:
            conn = self._conns.get(node_id)
            return 0 if conn is None else len(conn.in_flight)
        return sum(len(c.in_flight) for c in self._conns.values())

    def _connect(self, node: Node, now_ms: int) -> None:
        conn = self._conns.get(node.node_id)
        if conn is None or (conn.host, conn.port) != (node.host, node.port):
            if conn is not None:
                self._close(conn, now_ms, NetworkError("broker address changed"))
            conn = self._conns[node.node_id] = BrokerConnection(
                node.node_id, node.host, node.port, self.options.socket)
        try:
            conn.connect(now_ms)
        except NetworkError as exc:
            self._connection_failed(conn, now_ms, str(exc))
            return
        self._register(conn)
        if self.metrics is not None:
            self.metrics.created.record(1, now_ms)
        log.debug("connecting to node %d at %s", node.node_id, conn.address)

    def send(self, node_id: int, api_key: int, message, handler, now_ms: int,
             expect_response: bool = True, version: int | None = None) -> None:
        """Send a request on a READY connection; ``handler(response, error)`` runs later
        in ``poll`` (or now, with an error, if the connection fails on write)."""
        conn = self._conns[node_id]
        if version is None:
            version = conn.api_versions[api_key]
        deadline = now_ms + self.options.request_timeout_ms
        queued = conn.bytes_queued
        try:
            conn.send(api_key, version, message, handler, now_ms, deadline, expect_response)
        except NetworkError as exc:
            self._close(conn, now_ms, exc)
            return
        if self.metrics is not None:
            self.metrics.request_sent(node_id, conn.bytes_queued - queued)
        self._update_interest(conn)

    def least_loaded_node(self, now_ms: int) -> Node | None:
        """A broker to ask for metadata: connected with the fewest requests in flight,
        else one we may connect to now; bootstrap servers if no broker is known."""
        nodes = list(self.metadata.snapshot.nodes.values())
        usable = [n for n in nodes if self.connection_delay(n.node_id, now_ms) == 0
                  or self.is_ready(n.node_id)]
        if not usable:
            usable = [n for n in self.metadata.bootstrap_nodes
                      if self.connection_delay(n.node_id, now_ms) == 0]
        if not usable:
            return None
        self._random.shuffle(usable)
        return min(usable, key=lambda n: (not self.is_ready(n.node_id),
                                          self.in_flight_count(n.node_id)))

    # ---- polling ------------------------------------------------------------------

    def poll(self, timeout_ms: int, now_ms: int) -> None:
        """One round of I/O: at most ``timeout_ms`` of waiting."""
        timeout_ms = min(timeout_ms, self._maybe_update_metadata(now_ms))
        timeout_ms = min(timeout_ms, self._next_deadline_ms(now_ms))
        if any(conn.written for conn in self._conns.values()):
            timeout_ms = 0  # acks=0 sends to complete: don't sleep first
        self._polling = True
        if self._wake_requested:
            timeout_ms = 0
        self._wake_requested = False
        started_ns = time.perf_counter_ns()
        try:
            events = self._selector.select(max(timeout_ms, 0) / 1000.0)
        finally:
            self._polling = False
        now_ms = self.clock()
        if self.metrics is not None:
            self.metrics.waited(time.perf_counter_ns() - started_ns, now_ms)
        completed: list[tuple] = []
        for key, mask in events:
            conn = key.data
            if conn is None:
                self._drain_wakeup()
                continue
            self._handle_events(conn, mask, now_ms, completed)
        self._check_timeouts(now_ms)
        # acks=0 requests fully written, whether by send() itself or by an event above:
        # no answer will ever come for them, so they are done now (Java does the same).
        for conn in self._conns.values():
            if conn.written:
                completed.extend((h, None, None) for h in conn.written)
                conn.written.clear()
        for handler, response, error in completed:
            if handler is not None:
                try:
                    handler(response, error)
                except Exception:  # a bug must not drop the other answers of this poll
                    log.exception("handling a response failed")

    def _handle_events(self, conn: BrokerConnection, mask: int, now_ms: int,
                       completed: list) -> None:
        # (a failed connect closes itself; a re-authentication is not a set-up)
        setting_up = conn.state in _SETTING_UP and not conn.reauthenticating
        try:
            if conn.state in (State.CONNECTING, State.HANDSHAKING):
                conn.on_setup_io(bool(mask & selectors.EVENT_WRITE), now_ms)
                self._update_interest(conn)
                return
            if mask & selectors.EVENT_WRITE:
                conn.write()
                self._update_interest(conn)
            if mask & selectors.EVENT_READ:
                received = conn.bytes_received
                for request, response in conn.read(now_ms):
                    if self.metrics is not None:
                        self.metrics.response_received(conn.node_id,
                                                       conn.bytes_received - received)
                        received = conn.bytes_received
                    completed.append((request.handler, response, None))
                if setting_up and conn.state is State.READY:
                    self._backoff.pop(conn.node_id, None)  # usable: backoff over
                self._update_interest(conn)  # a set-up step may have queued a request
        except AuthenticationError as exc:
            # Not cured by retrying soon: back off, and tell whoever waits on the cluster.
            if setting_up:
                self._connection_failed(conn, now_ms, str(exc), fatal=exc)
            else:
                for request in self._close(conn, now_ms, exc, run_handlers=False):
                    completed.append((request.handler, None, NetworkError(str(exc))))
        except (NetworkError, ProtocolError, OSError) as exc:
            if setting_up and conn.state is not State.READY:  # never usable: back off
                self._connection_failed(conn, now_ms, str(exc))
            else:
                # The request whose answer could not be read fails with that error; the
                # others were only unlucky to share its connection: network errors.
                bad = exc.correlation_id if isinstance(exc, MalformedResponseError) else None
                lost = _as_network_error(exc) if bad is None else NetworkError(
                    f"connection to node {conn.node_id} ({conn.address}) closed after "
                    f"an unreadable response: {exc}")
                for request in self._close(conn, now_ms, exc, run_handlers=False):
                    completed.append((request.handler, None,
                                      exc if request.correlation_id == bad else lost))

    def _update_interest(self, conn: BrokerConnection) -> None:
        if conn.sock is None:
            return
        if self._registered.get(conn) is not conn.sock:  # TLS wrapped the socket
            self._unregister(conn)
            self._register(conn)
        events = selectors.EVENT_READ
        if conn.wants_write:
            events |= selectors.EVENT_WRITE
        self._selector.modify(conn.sock, events, conn)

    def _drain_wakeup(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _next_deadline_ms(self, now_ms: int) -> int:
        soonest = 2**31 - 1
        for conn in self._conns.values():
            for request in conn.in_flight.values():
                soonest = min(soonest, request.deadline_ms - now_ms)
                break  # answers come in order: the oldest expires first
            if conn.state in _SETTING_UP and not conn.reauthenticating:
                soonest = min(soonest, conn.connect_started_ms +
                              self.options.connection_setup_timeout_ms - now_ms)
            elif conn.reauth_at_ms is not None:
                soonest = min(soonest, conn.reauth_at_ms - now_ms)
        return max(soonest, 0)

    def _check_timeouts(self, now_ms: int) -> None:
        for conn in list(self._conns.values()):
            if conn.state in _SETTING_UP and not conn.reauthenticating:
                # Connected is not enough: a broker that froze before answering
                # ApiVersions must not hold the connection (and its batches) forever.
                if now_ms - conn.connect_started_ms >= self.options.connection_setup_timeout_ms:
                    self._connection_failed(
                        conn, now_ms, f"connection to {conn.address} not ready after "
                        f"{self.options.connection_setup_timeout_ms} ms "
                        f"(socket.connection.setup.timeout.ms)")
                continue
            expired = conn.expired_request(now_ms)
            if expired is None and conn.state is State.READY and \
                    conn.reauth_at_ms is not None and now_ms >= conn.reauth_at_ms:
                self._reauthenticate(conn, now_ms)
            if expired is not None:
                # Java closes the connection: the broker may never answer anything after.
                self._close(conn, now_ms, KafkaTimeoutError(
                    f"request (api key {expired.api_key}) to node {conn.node_id} timed out "
                    f"after {self.options.request_timeout_ms} ms (request.timeout.ms)"))
            elif (conn.state is State.READY and not conn.in_flight and
                  now_ms - conn.last_activity_ms > self.options.connections_max_idle_ms):
                log.debug("closing idle connection to node %d", conn.node_id)
                self._close(conn, now_ms, NetworkError("idle connection closed"))

    def _reauthenticate(self, conn: BrokerConnection, now_ms: int) -> None:
        try:
            conn.reauthenticate(now_ms)
        except (NetworkError, ProtocolError, AuthenticationError, OSError) as exc:
            self._close(conn, now_ms, exc)
            return
        self._update_interest(conn)

    def _connection_failed(self, conn: BrokerConnection, now_ms: int, reason: str,
                           fatal: AuthenticationError | None = None) -> None:
        self._unregister(conn)
        conn.close()
        if fatal is not None:
            log.error("node %d (%s): %s", conn.node_id, conn.address, fatal)
        elif conn.has_more_addresses():  # another IP of the same host: try it at once
            try:
                conn.connect(now_ms)
                self._register(conn)
                return
            except NetworkError as exc:
                reason = str(exc)
        backoff = self._backoff.setdefault(conn.node_id, _Backoff())
        backoff.failures += 1
        delay = min(self.options.reconnect_backoff_ms * 2 ** (backoff.failures - 1),
                    self.options.reconnect_backoff_max_ms)
        delay = int(delay * self._random.uniform(0.8, 1.2))
        backoff.next_attempt_ms = now_ms + delay
        log.debug("node %d (%s): %s; next attempt in %d ms", conn.node_id, conn.address,
                  reason, delay)
        if conn.node_id == self._metadata_node:
            self._metadata_node = None
        if self.fetcher is not None and fatal is not None:
            self.fetcher.failed_update(now_ms, reason, error=fatal)
        elif self.fetcher is not None and self._is_metadata_target(conn):
            self.fetcher.failed_update(now_ms, reason)
        else:
            # As Java's handleServerDisconnect: the broker may be gone for good and its
            # partitions led elsewhere by now.
            self.metadata.request_update()

    def _is_metadata_target(self, conn: BrokerConnection) -> bool:
        return not self.metadata.snapshot.nodes or conn.node_id < 0

    def _close(self, conn: BrokerConnection, now_ms: int, error: BaseException,
               run_handlers: bool = True) -> list:
        """Close a connection; fail its requests (or return them to the caller)."""
        if self.metrics is not None and conn in self._registered:
            self.metrics.closed.record(1, now_ms)
        self._unregister(conn)
        failed = conn.close()
        log.log(logging.DEBUG if self._closing else logging.INFO,
                "disconnected from node %d (%s): %s", conn.node_id, conn.address, error)
        backoff = self._backoff.setdefault(conn.node_id, _Backoff())
        backoff.next_attempt_ms = now_ms + self.options.reconnect_backoff_ms
        if conn.node_id == self._metadata_node:
            self._metadata_node = None
        self.metadata.request_update()  # leadership may have moved with the disconnect
        if run_handlers:
            err = _as_network_error(error)
            for request in failed:
                if request.handler is not None:
                    request.handler(None, err)
            return []
        return failed

    def _register(self, conn: BrokerConnection) -> None:
        self._selector.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        self._registered[conn] = conn.sock

    def _unregister(self, conn: BrokerConnection) -> None:
        # The socket registered, not conn.sock: a failed connect may have closed and
        # dropped it already, and a stale key would refuse the next socket on its fd.
        sock = self._registered.pop(conn, None)
        if sock is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass

    # ---- metadata updater ---------------------------------------------------------

    def _maybe_update_metadata(self, now_ms: int) -> int:
        """Send a metadata request if one is due; returns ms until the next check."""
        fetcher = self.fetcher
        if fetcher is None:
            return 2**31 - 1
        wait = fetcher.time_to_next_update(now_ms)
        if wait > 0 or self._metadata_node is not None:
            return wait if self._metadata_node is None else self.options.request_timeout_ms
        node = self.least_loaded_node(now_ms)
        if node is None:
            return self.options.reconnect_backoff_ms
        if not self.ready(node, now_ms):
            return self.options.reconnect_backoff_ms
        topics = fetcher.topics_to_request(now_ms)
        version = self.api_version(node.node_id, METADATA_KEY)
        request = MetadataRequest(
            topics=[MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=True)
        self._metadata_node = node.node_id
        fetcher.on_request_sent(now_ms)
        self.send(node.node_id, METADATA_KEY, request,
                  lambda response, error: self._on_metadata(node.node_id, response, error),
                  now_ms, version=version)
        return self.options.request_timeout_ms

    def _on_metadata(self, node_id: int, response, error) -> None:
        if self._metadata_node == node_id:
            self._metadata_node = None
        now_ms = self.clock()
        assert self.fetcher is not None  # only a client with a fetcher asks
        if error is not None:
            self.fetcher.failed_update(now_ms, str(error))
            return
        if not response.brokers:
            self.fetcher.failed_update(now_ms, f"node {node_id} sent metadata with no brokers")
            return
        self.fetcher.update(response, now_ms)

    def close(self) -> None:
        self._closing = True
        now_ms = self.clock()
        for conn in list(self._conns.values()):
            self._close(conn, now_ms, NetworkError("the producer is closing"))
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


def _as_network_error(error: BaseException) -> BaseException:
    if isinstance(error, (NetworkError, KafkaTimeoutError)):
        return error
    return NetworkError(str(error))

