"""stream-sea's websocket as a Link adapter: a supervised connection whose subscriptions
resume where they stopped.

The connection's protocol state is one :class:`~.protocol.ClientConnectionState`, kept in
the adapter so that it outlives each connection (and each restart of the transport
actor): it numbers requests, matches replies to them, and remembers per stream and group
the last ``seq`` delivered, so that after a reconnect every subscription resumes after it
and a message the server sends twice is dropped. The Link redials with backoff, and after
each authenticate the state subscribes every live subscription again; the Link's own
resubscribe (``subscribe(key)`` after each connect) only adds the ones made while the
connection was down.

The transport speaks websockets' sans-I/O ``ClientProtocol`` over the kit's TCP stream:
``open`` makes the handshake, every read is fed to the protocol (pings are answered as they
are read) and every text message to the state. What reaches the link's consumer, in order,
as unsequenced data keyed by the subscription's key: :class:`~.protocol.Subscribed` (with
``missed`` set when messages may have been missed), :class:`~.protocol.Delivered`,
:class:`~.protocol.Refused` and :class:`~.protocol.Unsubscribed`.

A refused authenticate (a wrong secret, an expired or bad JWT) fails the link (FAILED, no
redial). A message that does not parse, or a websocket protocol error, drops the
connection; the link redials and the subscriptions resume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from actorwire.actors.link import (
    Authenticated,
    AuthFailed,
    LinkAdapter,
    Ordering,
    Routed,
    Transport,
    Wiring,
)
from actorwire.actors.link.websocket import (
    PROTOCOL_LOGGER,
    Alive,
    Broken,
    Ignored,
    WebSocketTransport,
    route_control,
)
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import WebSocketURI

from .protocol import (
    MAX_MESSAGE_SIZE,
    ClientConnectionState,
    ClientState,
    CredentialsError,
    Delivered,
    ProtocolError,
    Send,
    encode,
)
from .protocol import (
    Authenticated as _AuthOk,
)

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "WEBSOCKET_PATH", "StreamSeaAdapter"]

log = structlog.get_logger("actorwire.streamsea")

WEBSOCKET_PATH = "/api/v1/streams"
DEFAULT_MAX_MESSAGE_SIZE = 4 * MAX_MESSAGE_SIZE
"""Largest message the client takes (4 MiB): a delivery is the publish body's payload
(at most 1 MiB on the embedded server) plus its envelope."""


# -- commands to the transport (the Link's frames) ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Start:
    """Authenticate on the new connection."""


@dataclass(frozen=True, slots=True)
class _Subscribe:
    key: Hashable


@dataclass(frozen=True, slots=True)
class _Unsubscribe:
    key: Hashable


@dataclass(frozen=True, slots=True)
class _Ping:
    n: int


# -- what a read gives route() ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Refused:
    """The server refused the credentials."""

    reason: str


class _WsCodec:
    """One connection's websocket protocol plus the adapter's (lasting) stream-sea state.

    Reads are split into frames here. A frame the server sends by the thousand (a whole,
    unmasked text frame, no extension bits: byte 0 is 0x81) is decoded at once; any other
    frame (a ping, a close, a fragment, something malformed, one over the size limit) is
    handed whole to websockets' ``ClientProtocol``, which answers pings, follows the
    closing handshake and refuses what is wrong. Handing it whole frames keeps its parser
    at a frame boundary, so the two never disagree about where a frame starts; websockets'
    own parse costs five times the fast path per message.
    """

    __slots__ = ("adapter", "binary", "broken", "buf", "fragments", "items", "max_size", "proto")

    def __init__(self, adapter: StreamSeaAdapter) -> None:
        self.adapter = adapter
        self.proto = ClientProtocol(
            adapter.uri, max_size=adapter.max_message_size, logger=PROTOCOL_LOGGER
        )
        self.max_size = adapter.max_message_size
        self.broken = False
        self.buf = bytearray()
        self.items: list[Any] = []  # texts and websockets frames, in the order read
        self.fragments: list[bytes] = []  # a fragmented message so far
        self.binary = False  # that message is binary

    def receive_data(self, data: bytes) -> None:
        proto = self.proto
        if self.broken or proto.reader.buffer:
            # websockets holds part of a frame (read with the handshake): it goes on
            # until it is back at a frame boundary.
            proto.receive_data(data)
            self.items.extend(proto.events_received())
            return
        buf = self.buf
        buf += data
        n = len(buf)
        pos = 0
        items = self.items
        while n - pos >= 2:
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + length
            if b1 & 0x80 or length > self.max_size:
                # Masked (a server must not mask) or too big: websockets refuses it as it
                # should. Everything from here on is its to read.
                proto.receive_data(bytes(buf[pos:]))
                items.extend(proto.events_received())
                pos = n
                break
            if end > n:
                break
            if buf[pos] == 0x81:
                try:
                    items.append(buf[pos + head : end].decode())
                except UnicodeDecodeError:
                    items.append(Broken("a text frame that is not UTF-8"))
            else:
                proto.receive_data(bytes(buf[pos:end]))
                items.extend(proto.events_received())
            pos = end
        if pos:
            del buf[:pos]

    def events(self) -> list[Any]:
        out: list[Any] = []
        items, self.items = self.items, []
        if self.broken:
            return out
        state = self.adapter.state
        proto = self.proto
        for event in items:
            kind = type(event)
            if kind is str:
                text: str = event
            elif kind is Frame:
                opcode = event.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.CONT:
                    # websockets checks the fragments' order; they are joined here.
                    self.fragments.append(bytes(event.data))
                    if not event.fin:
                        continue
                    data, self.fragments = b"".join(self.fragments), []
                    if opcode is Opcode.CONT and self.binary:
                        self.binary = False
                        out.append(Ignored(f"a binary message of {len(data)} bytes"))
                        continue
                    try:
                        text = data.decode()
                    except UnicodeDecodeError:  # websockets checks UTF-8 as well
                        self.broken = True
                        out.append(Broken("a text message that is not UTF-8"))
                        break
                elif opcode is Opcode.PING or opcode is Opcode.PONG:
                    out.append(Alive())
                    continue
                else:
                    if opcode is Opcode.BINARY:
                        if event.fin:
                            out.append(Ignored(f"a binary frame of {len(event.data)} bytes"))
                        else:
                            self.binary = True  # its continuations are dropped with it
                            self.fragments.append(bytes(event.data))
                    continue
            elif kind is Broken:
                self.broken = True
                out.append(event)
                break
            else:
                continue  # the handshake's Response, read in open()
            try:
                results = state.receive(text)
            except CredentialsError as exc:
                self.broken = True
                out.append(_Refused(str(exc)))
                break
            except ProtocolError as exc:
                self.broken = True
                out.append(Broken(str(exc)))
                break
            for item in results:
                if type(item) is Delivered:
                    out.append(item)
                elif type(item) is Send:
                    proto.send_text(encode(item.message).encode())
                else:
                    out.append(item)
        failure = proto.parser_exc
        if failure is not None and not self.broken:
            self.broken = True
            out.append(Broken(f"websocket protocol error: {failure}"))
        return out

    def command(self, frame: Any) -> None:
        """Carry out one of the Link's frames on this connection."""
        state = self.adapter.state
        proto = self.proto
        for key in self.adapter._take_forgotten():
            if key in state.subscriptions:
                self._send(state.unsubscribe(key))
        kind = type(frame)
        if kind is _Subscribe:
            key = frame.key
            spec = self.adapter._specs.get(key)
            if spec is not None and key not in state.subscriptions:
                stream, group_id, exclusive = spec
                self._send(state.subscribe(key, stream, group_id=group_id, exclusive=exclusive))
        elif kind is _Start:
            if state.state is not ClientState.DISCONNECTED:
                state.connection_lost()
            self.adapter._renew_jwt()
            self._send(state.connect())
        elif kind is _Ping:
            proto.send_ping(str(frame.n).encode())
        # _Unsubscribe: done by the forgotten keys above.

    def _send(self, outputs: list[Any]) -> None:
        for item in outputs:
            if type(item) is Send:
                self.proto.send_text(encode(item.message).encode())

    def data_to_send(self) -> bytes:
        return b"".join(self.proto.data_to_send())


class StreamSeaTransport(WebSocketTransport):
    """The kit's websocket transport with :class:`_WsCodec`; the protocol state learns when
    a connection ends."""

    def __init__(self, adapter: StreamSeaAdapter, wiring: Wiring) -> None:
        super().__init__(
            adapter, wiring, adapter.host, adapter.port, lambda: _WsCodec(adapter), adapter.ssl
        )
        self.ws_adapter = adapter

    def closed(self) -> None:
        self.ws_adapter.state.connection_lost()


class StreamSeaAdapter(LinkAdapter):
    """stream-sea hooks for a Link. The secret and the JWT stay out of reprs and logs.

    ``jwt`` may be a string or a function returning one, called before each authenticate
    (a token that expires is then renewed on the next connection).
    """

    ordering = Ordering.LATEST  # deliveries come unsequenced: the state drops repeats

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        client_secret: str | None = None,
        jwt: str | Callable[[], str] | None = None,
        ssl_context: SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl_context
        self.uri = WebSocketURI(ssl_context is not None, host, port, WEBSOCKET_PATH, "")
        self.max_message_size = max_message_size
        self._jwt_source = jwt if callable(jwt) else None
        first_jwt = jwt() if callable(jwt) else jwt
        self.state = ClientConnectionState(
            client_id, client_secret=client_secret, jwt=first_jwt, max_size=max_message_size
        )
        """The connection's protocol state, on the I/O loop only."""
        self._lock = threading.Lock()
        self._specs: dict[Hashable, tuple[str, str | None, bool]] = {}
        self._forgotten: list[Hashable] = []

    def __repr__(self) -> str:
        scheme = "wss" if self.ssl is not None else "ws"
        return f"StreamSeaAdapter({scheme}://{self.host}:{self.port}, {self.state.client_id!r})"

    # -- the facade's side (any thread) -------------------------------------------------

    def register(
        self, key: Hashable, stream: str, group_id: str | None, *, exclusive: bool = False
    ) -> None:
        """Name what subscription ``key`` is, before ``Link.subscribe(key)``; ``exclusive``:
        it is alone in its group (a fresh fan-out group)."""
        with self._lock:
            self._specs[key] = (stream, group_id, exclusive)

    def unregister(self, key: Hashable) -> None:
        """End subscription ``key`` (on the next write, connected or not)."""
        with self._lock:
            if self._specs.pop(key, None) is not None:
                self._forgotten.append(key)

    def _take_forgotten(self) -> list[Hashable]:
        if not self._forgotten:
            return []
        with self._lock:
            out, self._forgotten = self._forgotten, []
        return out

    def _renew_jwt(self) -> None:
        source = self._jwt_source
        if source is not None:
            token = source()
            if not isinstance(token, str):
                raise TypeError(f"the jwt function must return a str, got {type(token).__name__}")
            self.state.renew(jwt=token)

    # -- LinkAdapter ------------------------------------------------------------------

    def make_transport(self, wiring: Wiring) -> Transport:
        return StreamSeaTransport(self, wiring)

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        data = out.data
        for item in frames:
            kind = type(item)
            if kind is Delivered:  # the hot path
                data.append((item.key, None, item))
            elif kind is _AuthOk:
                out.control.append(Authenticated())
            elif kind is _Refused:
                out.control.append(AuthFailed(item.reason))
            elif not route_control(item, out):
                data.append((item.key, None, item))
        return out

    def on_connected(self) -> list[Any]:
        return [_Start()]

    def subscribe(self, stream: Hashable, from_seq: Any | None) -> list[Any]:
        return [_Subscribe(stream)]

    def unsubscribe(self, stream: Hashable) -> list[Any]:
        return [_Unsubscribe(stream)]

    def ping(self, n: int) -> Any:
        return _Ping(n)
