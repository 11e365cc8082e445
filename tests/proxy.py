"""A fault-injecting TCP proxy for Kafka connections (tests only, standard library only).

``FaultProxy`` listens on a loopback port and forwards every connection to one broker,
reading Kafka's framing on the way (4-byte size, then for requests the api key, version
and correlation id; for responses the correlation id), so a fault can hit one exact
request or response instead of a random byte:

- ``CUT_REQUEST``: forward only the first part of the matching request to the broker,
  then close both sides. The broker never sees a whole request, so nothing is written;
  the client sees its connection drop with the request in flight.
- ``DROP_RESPONSE``: forward the request; when the broker answers it, throw the answer
  away (and every other answer on that connection for ``swallow_ms`` more, while later
  requests still reach the broker), then close both sides. The broker did the work (the
  records are written) but the client never learns it: the case that makes retries
  write duplicates unless the producer is idempotent.
- ``STALL_RESPONSE``: forward the request, then hold its answer and every later answer
  on that connection forever, without closing; the client has to give up on its own
  (request.timeout.ms) and close the connection.

And four that hand the client bytes no broker would send in place of the matching
request's answer (the broker did the work: the records are written):

- ``GARBAGE_RESPONSE``: ``garbage`` (by default an HTTP error page, as from something
  that is not a broker) instead of the answer; the connection stays open.
- ``TRUNCATE_RESPONSE``: the first ``cut_fraction`` of the answer's frame, then close
  both sides (a broker or middlebox dying mid-write).
- ``HUGE_LENGTH``: the answer with its size prefix replaced by 0x7fffffff (2 GiB), as a
  corrupted length would read; the connection stays open.
- ``GARBLE_BODY``: a whole frame with the right correlation id whose body cannot be
  decoded: the body is cut to ``cut_fraction`` of its length and the size prefix fixed
  up to match; the connection stays open.

A fault is one-shot: ``arm()`` it, it fires on the ``skip + 1``-th matching request that
arrives after arming (on any connection), and ``fault.fired`` is set once it has done its
damage (``fault.info`` says what it did). With nothing armed the proxy is a plain pipe,
so readers can go through it too.

The broker must advertise the proxy's address (``advertised.listeners``) or clients
bypass the proxy after their first Metadata response; see ``listening_socket()``.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("tests.proxy")

CUT_REQUEST = "cut_request"
DROP_RESPONSE = "drop_response"
STALL_RESPONSE = "stall_response"
GARBAGE_RESPONSE = "garbage_response"
TRUNCATE_RESPONSE = "truncate_response"
HUGE_LENGTH = "huge_length"
GARBLE_BODY = "garble_body"
# faults that send the client other bytes in place of the matching answer
_REWRITES = (GARBAGE_RESPONSE, TRUNCATE_RESPONSE, HUGE_LENGTH, GARBLE_BODY)
_KINDS = (CUT_REQUEST, DROP_RESPONSE, STALL_RESPONSE, *_REWRITES)
HTTP_ERROR = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
              b"Content-Length: 0\r\nConnection: close\r\n\r\n")

PRODUCE = 0  # api keys
METADATA = 3
API_VERSIONS = 18
INIT_PRODUCER_ID = 22


@dataclass
class Fault:
    kind: str
    api_key: int = PRODUCE
    skip: int = 0  # matching requests to let through first
    # CUT_REQUEST: how much of the request reaches the broker; TRUNCATE_RESPONSE: of the
    # answer's frame, GARBLE_BODY: of the answer's body, that reaches the client
    cut_fraction: float = 0.5
    garbage: bytes = HTTP_ERROR  # GARBAGE_RESPONSE
    swallow_ms: int = 0  # DROP_RESPONSE: keep swallowing answers this long, then close
    fired: threading.Event = field(default_factory=threading.Event)
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {_KINDS}")
        if not 0.0 < self.cut_fraction < 1.0:
            raise ValueError("cut_fraction must be between 0 and 1 (exclusive)")


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A bound, listening socket on a free port: create it first, put its port in the
    broker's advertised.listeners, then hand it to FaultProxy (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(64)
    return sock


def _recv_into(sock: socket.socket, buf: bytearray) -> bool:
    """Append what the socket has to ``buf``; False on EOF or error."""
    try:
        chunk = sock.recv(1 << 16)
    except OSError:
        return False
    if not chunk:
        return False
    buf += chunk
    return True


def _frames(buf: bytearray):
    """Yield complete size-prefixed frames (with their size prefix) from the front of
    ``buf``, removing them; an incomplete tail stays in ``buf``."""
    while len(buf) >= 4:
        (size,) = struct.unpack_from(">i", buf, 0)
        if size < 0:
            raise ValueError(f"negative frame size {size}")
        if len(buf) < 4 + size:
            return
        frame = bytes(buf[:4 + size])
        del buf[:4 + size]
        yield frame


class _Connection:
    """One client connection and its upstream twin, pumped by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket,
                 number: int) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.number = number
        self.lock = threading.Lock()
        self.closed = False
        self.api_keys: dict[int, int] = {}  # correlation id -> api key, requests in flight
        self.drop_fault: Fault | None = None  # armed for one correlation id on this conn
        self.drop_correlation: int | None = None
        self.swallowing = False
        self.stalled = False
        self.requests = 0
        self.responses = 0

    def start(self) -> None:
        for target, name in ((self._pump_up, "up"), (self._pump_down, "down")):
            threading.Thread(target=target, daemon=True,
                             name=f"proxy-{self.proxy.port}-c{self.number}-{name}").start()

    def close(self, reason: str) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        log.debug("proxy connection %d closed: %s", self.number, reason)
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
        self.proxy._forget(self)

    # client -> broker
    def _pump_up(self) -> None:
        buf = bytearray()
        try:
            while _recv_into(self.client, buf):
                for frame in _frames(buf):
                    if not self._forward_request(frame):
                        return
        except (OSError, ValueError) as exc:
            log.debug("proxy connection %d: %s", self.number, exc)
        finally:
            self.close("client side closed")

    def _forward_request(self, frame: bytes) -> bool:
        api_key, _version, correlation = struct.unpack_from(">hhi", frame, 4)
        self.requests += 1
        fault = self.proxy._match(api_key)
        if fault is not None and fault.kind == CUT_REQUEST:
            cut = max(8, min(len(frame) - 1, int(len(frame) * fault.cut_fraction)))
            try:
                self.upstream.sendall(frame[:cut])
            except OSError:
                pass
            # Let the broker read the fragment before the FIN, so the cut is mid-request
            # on its side too (not an empty connection).
            time.sleep(0.05)
            fault.info.update(connection=self.number, correlation_id=correlation,
                              request_bytes=len(frame), forwarded_bytes=cut)
            self.close(f"fault {fault.kind}: request {correlation} cut after {cut} of "
                       f"{len(frame)} bytes")
            fault.fired.set()
            return False
        with self.lock:
            self.api_keys[correlation] = api_key
            if fault is not None:  # a fault on the answer: act when it comes
                self.drop_fault = fault
                self.drop_correlation = correlation
                fault.info.update(connection=self.number, correlation_id=correlation,
                                  request_bytes=len(frame))
        try:
            self.upstream.sendall(frame)
        except OSError:
            return False
        return True

    # broker -> client
    def _pump_down(self) -> None:
        buf = bytearray()
        try:
            while _recv_into(self.upstream, buf):
                for frame in _frames(buf):
                    self._forward_response(frame)
        except (OSError, ValueError) as exc:
            log.debug("proxy connection %d: %s", self.number, exc)
        finally:
            self.close("broker side closed")

    def _forward_response(self, frame: bytes) -> None:
        (correlation,) = struct.unpack_from(">i", frame, 4)
        rewrite = None
        with self.lock:
            api_key = self.api_keys.pop(correlation, None)
            fault = self.drop_fault
            if fault is not None and correlation == self.drop_correlation:
                self.drop_fault = None
                if fault.kind in _REWRITES:
                    rewrite = fault
                else:
                    if fault.kind == STALL_RESPONSE:
                        self.stalled = True
                    else:
                        self.swallowing = True
                    fault.info.setdefault("swallowed", []).append((correlation, api_key,
                                                                    len(frame)))
                    if fault.kind == DROP_RESPONSE:
                        timer = threading.Timer(fault.swallow_ms / 1000.0,
                                                self._finish_drop, (fault,))
                        timer.daemon = True
                        timer.start()
                    else:
                        fault.fired.set()
                    return
            elif self.swallowing or self.stalled:
                fault = self.proxy.last_fault
                if fault is not None:
                    fault.info.setdefault("swallowed", []).append((correlation, api_key,
                                                                    len(frame)))
                return
        if rewrite is not None:
            self._rewrite_response(rewrite, frame, correlation, api_key)
            return
        self.responses += 1
        self.client.sendall(frame)

    def _rewrite_response(self, fault: Fault, frame: bytes, correlation: int,
                          api_key: int | None) -> None:
        close = False
        if fault.kind == GARBAGE_RESPONSE:
            data = fault.garbage
        elif fault.kind == TRUNCATE_RESPONSE:
            data = frame[:max(1, min(len(frame) - 1, int(len(frame) * fault.cut_fraction)))]
            close = True
        elif fault.kind == HUGE_LENGTH:
            data = struct.pack(">i", 0x7FFFFFFF) + frame[4:]
        else:  # GARBLE_BODY: header kept whole (size, correlation id), body cut short
            body = frame[8:]
            kept = frame[4:8] + body[:int(len(body) * fault.cut_fraction)]
            data = struct.pack(">i", len(kept)) + kept
        fault.info.update(response=(correlation, api_key, len(frame)), sent=data)
        try:
            self.client.sendall(data)
        except OSError:
            pass
        if close:
            time.sleep(0.05)  # the client reads the fragment before the FIN
            self.close(f"fault {fault.kind}: response {correlation} cut after "
                       f"{len(data)} of {len(frame)} bytes")
        fault.fired.set()

    def _finish_drop(self, fault: Fault) -> None:
        self.close(f"fault {fault.kind}: response(s) swallowed")
        fault.fired.set()


class FaultProxy:
    """Forward ``listen`` (a listening socket, or None for a fresh one) to ``upstream``
    (``(host, port)`` or a callable returning it, asked at each new connection)."""

    def __init__(self, upstream: tuple[str, int] | Callable[[], tuple[str, int]],
                 listen: socket.socket | None = None) -> None:
        self._upstream = upstream
        self._listener = listen if listen is not None else listening_socket()
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self.last_fault: Fault | None = None
        self._connections: set[_Connection] = set()
        self.accepted = 0  # connections forwarded
        self.attempts = 0  # connections accepted, forwarded or not
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"proxy-{self.port}-accept")
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def upstream(self) -> tuple[str, int] | Callable[[], tuple[str, int]]:
        return self._upstream

    def set_upstream(self, upstream: tuple[str, int] | Callable[[], tuple[str, int]]) -> None:
        """Forward new connections elsewhere (e.g. a closed port: every new connection
        is then accepted and closed at once, like a broker that is going away)."""
        self._upstream = upstream

    def arm(self, fault: Fault) -> Fault:
        """Arm a one-shot fault (replacing one that has not matched yet)."""
        with self._lock:
            self._fault = fault
            self.last_fault = fault
        return fault

    def disarm(self) -> None:
        with self._lock:
            self._fault = None

    def _match(self, api_key: int) -> Fault | None:
        with self._lock:
            fault = self._fault
            if fault is None or fault.api_key != api_key:
                return None
            if fault.skip > 0:
                fault.skip -= 1
                return None
            self._fault = None
            return fault

    def reset_connections(self) -> None:
        """Close every proxied connection now (both sides)."""
        with self._lock:
            conns = list(self._connections)
        for c in conns:
            c.close("reset_connections()")

    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.attempts += 1
            upstream_addr = self._upstream() if callable(self._upstream) else self._upstream
            try:
                upstream = socket.create_connection(upstream_addr, timeout=5)
            except OSError as exc:
                log.debug("proxy: upstream %s unreachable: %s", upstream_addr, exc)
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.accepted += 1
                conn = _Connection(self, client, upstream, self.accepted)
                self._connections.add(conn)
            conn.start()

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        self.reset_connections()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FaultProxy {self.address} connections={self.open_connections()}>"
