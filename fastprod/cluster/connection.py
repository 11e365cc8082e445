"""BrokerConnection: one non-blocking TCP (or TLS) connection to one broker.

The sender thread owns every connection and drives it from NetworkClient.poll():
the set-up steps of fastprod/cluster/setup.py (connect, [TLS], ApiVersions, [SASL])
-> READY, then size-prefixed request frames out and response frames in, matched to
their requests by correlation id (Kafka answers in order on a connection). Nothing
here blocks. Over TLS the socket is an ssl.SSLSocket in non-blocking mode: its "want
read/write" errors are the plain socket's EAGAIN, and decrypted bytes it still holds
(``pending``) are read before going back to select.
"""

from __future__ import annotations

import collections
import errno
import logging
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from fastprod import protocol
from fastprod.cluster import setup
from fastprod.cluster.setup import PLAINTEXT, SETTING_UP, ConnectionSecurity, State
from fastprod.errors import (
    MalformedResponseError,
    NetworkError,
    ProtocolError,
    SecurityProtocolMismatchError,
    SslAuthenticationError,
)

log = logging.getLogger("fastprod.network")

_SIZE = struct.Struct(">i")
# Largest response frame we accept; a bad size prefix must not make us allocate GiBs.
MAX_RESPONSE_BYTES = 512 * 1024 * 1024
# Over TLS, queued frames are joined into writes of up to this many bytes: each
# SSLSocket.send is at least one TLS record, so many small sends cost many records.
_TLS_WRITE_BYTES = 256 * 1024
# The first bytes of a TLS record (handshake or alert, TLS 1.x): what a TLS listener
# answers to a plaintext ApiVersions request.
_TLS_RECORD_HEADS = (b"\x15\x03", b"\x16\x03")

ResponseHandler = Callable[["protocol.Message | None", "BaseException | None"], None]

__all__ = ["BrokerConnection", "InFlightRequest", "SocketOptions", "State", "SETTING_UP"]


@dataclass(slots=True)
class InFlightRequest:
    correlation_id: int
    api_key: int
    api_version: int
    handler: ResponseHandler | None
    sent_ms: int
    deadline_ms: int
    # a set-up step's request (ApiVersions, SASL): the connection handles its
    # response itself; ``handler`` then takes only the response
    internal: bool = False


@dataclass(frozen=True, slots=True)
class SocketOptions:
    send_buffer_bytes: int = 131072  # -1: the OS default
    receive_buffer_bytes: int = 32768
    client_id: str | None = None
    client_dns_lookup: str = "use_all_dns_ips"
    security: ConnectionSecurity = field(default=PLAINTEXT)


class BrokerConnection:
    def __init__(self, node_id: int, host: str, port: int, options: SocketOptions) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.options = options
        self.state = State.DISCONNECTED
        self.sock: socket.socket | None = None
        self.api_versions: dict[int, int] = {}
        self.in_flight: collections.OrderedDict[int, InFlightRequest] = \
            collections.OrderedDict()
        self.last_activity_ms = 0
        self.connect_started_ms = 0
        self._addresses: list[tuple] = []
        self._next_correlation_id = 0
        self._out: collections.deque[memoryview] = collections.deque()
        self._in = bytearray()
        self.wants_write = False
        # what went through, for the network metrics: request bytes queued, bytes read
        self.bytes_queued = 0
        self.bytes_received = 0
        # handlers of fire-and-forget (acks=0) requests whose bytes are all written
        self.written: list[ResponseHandler] = []
        self.steps = setup.plan(options.security)
        self._step = 0
        self.tls = False  # sock is an SSLSocket
        self._tls_retry = False  # the last TLS write wanted a retry with the same bytes
        self.sasl_client: Any = None  # the SASL exchange in progress
        self.reauth_at_ms: int | None = None  # KIP-368: re-authenticate from then on
        self.reauthenticating = False

    def __repr__(self) -> str:
        return f"<BrokerConnection node={self.node_id} {self.host}:{self.port} {self.state.value}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- connecting ----------------------------------------------------------------

    def connect(self, now_ms: int) -> None:
        """Start the set-up steps: a non-blocking connect to the next address."""
        self._step = 0
        self.steps[0].begin(self, now_ms)

    def open_socket(self, now_ms: int) -> None:
        """The TCP connect step's work: a non-blocking connect to the next address."""
        if not self._addresses:
            self._addresses = self._resolve()
        family, socktype, proto, _, sockaddr = self._addresses.pop(0)
        sock = socket.socket(family, socktype, proto)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.options.send_buffer_bytes != -1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.options.send_buffer_bytes)
        if self.options.receive_buffer_bytes != -1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                            self.options.receive_buffer_bytes)
        self.sock = sock
        self.tls = False
        self._tls_retry = False
        self.state = State.CONNECTING
        self.connect_started_ms = now_ms
        self.last_activity_ms = now_ms
        rc = sock.connect_ex(sockaddr)
        if rc not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self.close()
            raise NetworkError(f"connect to {self.address} failed: {errno.errorcode.get(rc, rc)}")
        self.wants_write = True  # writable means connected (or failed)

    def _resolve(self) -> list[tuple]:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NetworkError(f"cannot resolve {self.address}: {exc}") from None
        if self.options.client_dns_lookup != "use_all_dns_ips":
            infos = infos[:1]
        return infos

    def connected(self) -> None:
        """TCP is up: the next reconnect resolves the host afresh."""
        self._addresses.clear()
        self.wants_write = False

    @property
    def step(self) -> setup.Step | None:
        """The set-up step in progress (None when READY or DISCONNECTED)."""
        if self.state in SETTING_UP:
            return self.steps[self._step]
        return None

    def advance(self, now_ms: int) -> None:
        """The current step is done: begin the next one, or become READY."""
        if self.reauthenticating:  # KIP-368: only the SASL step ran again
            self.reauthenticating = False
            self.state = State.READY
            log.debug("re-authenticated with node %d (%s)", self.node_id, self.address)
            return
        self._step += 1
        if self._step == len(self.steps):
            self.state = State.READY
            log.debug("connected to node %d at %s", self.node_id, self.address)
            return
        step = self.steps[self._step]
        self.state = step.state
        step.begin(self, now_ms)

    def on_setup_io(self, writable: bool, now_ms: int) -> None:
        """The socket is ready while a socket-level step (connect, TLS) runs."""
        step = self.step
        if step is not None:
            step.on_io(self, writable, now_ms)

    def reauthenticate(self, now_ms: int) -> None:
        """KIP-368: run the SASL step again on this READY connection. Requests in flight
        keep their place: Kafka answers in order, so their responses come before the
        handshake's; no new request is sent until it is done (the state is not READY)."""
        self.reauth_at_ms = None
        self.reauthenticating = True
        self.state = State.AUTHENTICATING
        setup.SASL_AUTHENTICATE.begin(self, now_ms)

    def send_internal(self, api_key: int, api_version: int, message,
                      handler: Callable[[Any], None], now_ms: int) -> None:
        """Send a set-up step's request; ``handler(response)`` runs in ``read``, and
        may raise to fail the set-up. No deadline of its own: the set-up timeout (or,
        while re-authenticating, the requests before it) bounds it."""
        self.send(api_key, api_version, message, handler, now_ms, deadline_ms=2**62,
                  internal=True)

    def has_more_addresses(self) -> bool:
        return bool(self._addresses)

    # ---- requests ------------------------------------------------------------------

    def send(self, api_key: int, api_version: int, message, handler: ResponseHandler | None,
             now_ms: int, deadline_ms: int, expect_response: bool = True,
             internal: bool = False) -> int:
        """Queue one request; returns its correlation id. ``handler`` is called with
        (response, None) or (None, error); with expect_response False (acks=0
        produce) it is called with (None, None) once the bytes are written."""
        cid = self._next_correlation_id
        self._next_correlation_id = (cid + 1) & 0x7FFFFFFF
        out = bytearray()
        protocol.write_request(out, api_key, api_version, cid, self.options.client_id, message)
        if expect_response:
            self.in_flight[cid] = InFlightRequest(cid, api_key, api_version, handler, now_ms,
                                                  deadline_ms, internal)
        self._out.append(memoryview(out))
        self.bytes_queued += len(out)
        if not expect_response and handler is not None:
            self._out.append(_Done(handler))  # type: ignore[arg-type]
        self.last_activity_ms = now_ms
        self.write()
        return cid

    def write(self) -> None:
        """Write as much as the socket takes."""
        assert self.sock is not None
        while self._out:
            head = self._out[0]
            if isinstance(head, _Done):
                self.written.append(head.handler)
                self._out.popleft()
                continue
            if self.tls and not self._tls_retry and len(head) < _TLS_WRITE_BYTES \
                    and len(self._out) > 1:
                head = self._join_head()
            try:
                n = self.sock.send(head)
            except (BlockingIOError, InterruptedError):
                break
            except ssl.SSLWantWriteError:
                self._tls_retry = True  # OpenSSL wants the same bytes again
                break
            except ssl.SSLWantReadError:
                self._tls_retry = True
                break
            except OSError as exc:
                raise NetworkError(f"send to {self.address} failed: {exc}") from None
            self._tls_retry = False
            if n < len(head):
                self._out[0] = head[n:]
                break
            self._out.popleft()
        self.wants_write = bool(self._out)

    def _join_head(self) -> memoryview:
        """Join the frames at the head of the queue (up to _TLS_WRITE_BYTES, stopping
        at an acks=0 marker) into one buffer, which becomes the head."""
        parts = []
        size = 0
        while self._out and not isinstance(self._out[0], _Done) and (
                not parts or size + len(self._out[0]) <= _TLS_WRITE_BYTES):
            part = self._out.popleft()
            parts.append(part)
            size += len(part)
        joined = memoryview(b"".join(parts))
        self._out.appendleft(joined)
        return joined

    def read(self, now_ms: int) -> Iterator[tuple[InFlightRequest, object]]:
        """Read what the socket has; yield (request, response) for each complete frame.

        A generator, so that the responses before a bad frame reach the caller before
        the error does. A frame that cannot be read (impossible size, wrong correlation
        id, undecodable body) raises MalformedResponseError naming the request it
        answers, which stays in ``in_flight`` for the caller to fail: the connection is
        unusable after it (Kafka answers in order, so every later frame is suspect).
        """
        assert self.sock is not None
        data = self._recv()
        if data is None:
            return
        if not data:
            hint = ""
            if self.state is State.NEGOTIATING and not self.tls:
                hint = (" during ApiVersions (a TLS listener? security.protocol is "
                        f"{self.options.security.protocol})")
            raise NetworkError(f"connection to node {self.node_id} ({self.address}) "
                               f"closed by the broker{hint}")
        if self.state is State.NEGOTIATING and not self._in and \
                data.startswith(_TLS_RECORD_HEADS):
            raise SecurityProtocolMismatchError(
                f"node {self.node_id} ({self.address}) answered with TLS: the listener "
                f"uses SSL or SASL_SSL, but security.protocol="
                f"{self.options.security.protocol}")
        self.last_activity_ms = now_ms
        self.bytes_received += len(data)
        buf = self._in
        buf += data
        while len(buf) >= 4:
            (size,) = _SIZE.unpack_from(buf, 0)
            if size < 4 or size > MAX_RESPONSE_BYTES:
                raise self._malformed(f"response frame of {size} bytes")
            if len(buf) - 4 < size:
                return
            frame = bytes(buf[4:4 + size])
            del buf[:4 + size]  # cheap: bytearray drops its head without moving the rest
            request, response = self._complete(frame)
            if request.internal:
                request.handler(response)  # a set-up step; may raise
                continue
            yield request, response

    def _recv(self) -> bytes | None:
        """What the socket has (b"" at EOF), or None if nothing yet."""
        sock = self.sock
        assert sock is not None
        try:
            data = sock.recv(1 << 20)
            if self.tls:
                # an SSLSocket returns one record at a time; the rest of what it has
                # decrypted would not wake select
                pending = sock.pending()  # type: ignore[attr-defined]
                while pending:
                    data += sock.recv(pending)
                    pending = sock.pending()  # type: ignore[attr-defined]
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return None
        except ssl.SSLWantWriteError:
            self.wants_write = True
            return None
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLError as exc:
            if self.state is not State.READY:
                # TLS 1.3: the server checks the client's certificate after the client
                # thinks the handshake is done, and says no in the first record
                raise SslAuthenticationError(setup.tls_failure(
                    self, setup.ssl_reason(exc))) from None
            raise NetworkError(f"receive from {self.address} failed: {exc}") from None
        except OSError as exc:
            raise NetworkError(f"receive from {self.address} failed: {exc}") from None
        return data

    def _malformed(self, what: str) -> ProtocolError:
        if not self.in_flight:
            return ProtocolError(f"{self.address} sent {what}, but no request is in flight")
        request = next(iter(self.in_flight.values()))
        return MalformedResponseError(
            f"{self.address} sent {what} where the {_api_name(request.api_key)} "
            f"v{request.api_version} response (correlation id {request.correlation_id}) "
            f"was due", correlation_id=request.correlation_id)

    def _complete(self, frame: bytes) -> tuple[InFlightRequest, object]:
        cid = protocol.peek_correlation_id(frame)
        if not self.in_flight:
            raise ProtocolError(f"{self.address} sent a response (correlation id {cid}) "
                                f"nobody asked for")
        first_cid, request = next(iter(self.in_flight.items()))
        if cid != first_cid:
            raise self._malformed(f"a response with correlation id {cid}")
        try:
            _, response = protocol.decode_response(request.api_key, request.api_version, frame)
        except Exception as exc:  # noqa: BLE001 - whatever the bytes made the decoder do
            raise self._malformed(f"an unreadable response ({exc})") from exc
        # Only now: a request whose answer could not be read stays in flight, so that
        # its handler is called (with the error) when the connection is closed.
        del self.in_flight[cid]
        return request, response

    def expired_request(self, now_ms: int) -> InFlightRequest | None:
        for request in self.in_flight.values():
            if now_ms >= request.deadline_ms:
                return request
        return None

    def close(self) -> list[InFlightRequest]:
        """Close the socket; returns the requests that will never get an answer."""
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.tls = False
        self._tls_retry = False
        self.sasl_client = None
        self.reauth_at_ms = None
        self.reauthenticating = False
        self.state = State.DISCONNECTED
        failed = [r for r in self.in_flight.values() if not r.internal]
        # acks=0 requests not (fully) written never reached the broker: they fail too,
        # and are retried like any request lost with its connection.
        failed += [InFlightRequest(-1, 0, 0, item.handler, 0, 0) for item in self._out
                   if isinstance(item, _Done)]
        self.in_flight.clear()
        self._out.clear()
        self._in.clear()
        self.wants_write = False
        self.api_versions = {}
        return failed


class _Done:
    """A marker in the write queue: the fire-and-forget request before it is written."""

    __slots__ = ("handler",)

    def __init__(self, handler: ResponseHandler) -> None:
        self.handler = handler


def _api_name(api_key: int) -> str:
    info = protocol.APIS.get(api_key)
    return info.name if info is not None else f"api key {api_key}"
