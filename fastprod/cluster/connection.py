"""BrokerConnection: one non-blocking TCP connection to one broker.

The sender thread owns every connection and drives it from NetworkClient.poll():
connect -> ApiVersions handshake -> READY, then size-prefixed request frames out and
response frames in, matched to their requests by correlation id (Kafka answers in
order on a connection). Nothing here blocks.
"""

from __future__ import annotations

import collections
import enum
import errno
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Callable, Iterator

from fastprod import protocol
from fastprod._version import __version__
from fastprod.errors import MalformedResponseError, NetworkError, ProtocolError
from fastprod.protocol.messages.api_versions import ApiVersionsRequest

log = logging.getLogger("fastprod.network")

_SIZE = struct.Struct(">i")
# Largest response frame we accept; a bad size prefix must not make us allocate GiBs.
MAX_RESPONSE_BYTES = 512 * 1024 * 1024
_API_VERSIONS_VERSION = 3  # flexible; brokers that lack it answer in v0 (KIP-511)

ResponseHandler = Callable[["protocol.Message | None", "BaseException | None"], None]


class State(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    NEGOTIATING = "negotiating"  # ApiVersions in flight
    READY = "ready"


@dataclass(slots=True)
class InFlightRequest:
    correlation_id: int
    api_key: int
    api_version: int
    handler: ResponseHandler | None
    sent_ms: int
    deadline_ms: int


@dataclass(frozen=True, slots=True)
class SocketOptions:
    send_buffer_bytes: int = 131072  # -1: the OS default
    receive_buffer_bytes: int = 32768
    client_id: str | None = None
    client_dns_lookup: str = "use_all_dns_ips"


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

    def __repr__(self) -> str:
        return f"<BrokerConnection node={self.node_id} {self.host}:{self.port} {self.state.value}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- connecting ----------------------------------------------------------------

    def connect(self, now_ms: int) -> None:
        """Start a non-blocking connect to the next address of this broker."""
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

    def finish_connect(self, now_ms: int) -> None:
        """The socket became writable while connecting: check the outcome, then start
        the ApiVersions handshake."""
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.close()
            raise NetworkError(f"connect to {self.address} failed: {errno.errorcode.get(err, err)}")
        self._addresses.clear()  # connected: the next reconnect resolves afresh
        self.state = State.NEGOTIATING
        self.wants_write = False
        self.send(protocol.API_VERSIONS_KEY, _API_VERSIONS_VERSION,
                  ApiVersionsRequest(client_software_name="fastprod",
                                     client_software_version=__version__),
                  self._on_api_versions, now_ms, deadline_ms=2**62)

    def _on_api_versions(self, response, error) -> None:
        if error is not None:
            return  # the connection is already closed; NetworkClient handles it
        if response.error_code != 0:
            raise ProtocolError(f"ApiVersions to {self.address} failed with error code "
                                f"{response.error_code}")
        self.api_versions = protocol.negotiate_versions(response)
        self.state = State.READY
        log.debug("connected to node %d at %s", self.node_id, self.address)

    def has_more_addresses(self) -> bool:
        return bool(self._addresses)

    # ---- requests ------------------------------------------------------------------

    def send(self, api_key: int, api_version: int, message, handler: ResponseHandler | None,
             now_ms: int, deadline_ms: int, expect_response: bool = True) -> int:
        """Queue one request; returns its correlation id. ``handler`` is called with
        (response, None) or (None, error); with expect_response False (acks=0
        produce) it is called with (None, None) once the bytes are written."""
        cid = self._next_correlation_id
        self._next_correlation_id = (cid + 1) & 0x7FFFFFFF
        out = bytearray()
        protocol.write_request(out, api_key, api_version, cid, self.options.client_id, message)
        if expect_response:
            self.in_flight[cid] = InFlightRequest(cid, api_key, api_version, handler, now_ms,
                                                  deadline_ms)
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
            try:
                n = self.sock.send(head)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                raise NetworkError(f"send to {self.address} failed: {exc}") from None
            if n < len(head):
                self._out[0] = head[n:]
                break
            self._out.popleft()
        self.wants_write = bool(self._out)

    def read(self, now_ms: int) -> Iterator[tuple[InFlightRequest, object]]:
        """Read what the socket has; yield (request, response) for each complete frame.

        A generator, so that the responses before a bad frame reach the caller before
        the error does. A frame that cannot be read (impossible size, wrong correlation
        id, undecodable body) raises MalformedResponseError naming the request it
        answers, which stays in ``in_flight`` for the caller to fail: the connection is
        unusable after it (Kafka answers in order, so every later frame is suspect).
        """
        assert self.sock is not None
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            raise NetworkError(f"receive from {self.address} failed: {exc}") from None
        if not data:
            raise NetworkError(f"connection to node {self.node_id} ({self.address}) "
                               f"closed by the broker")
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
            yield self._complete(frame)

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
        self.state = State.DISCONNECTED
        failed = list(self.in_flight.values())
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
