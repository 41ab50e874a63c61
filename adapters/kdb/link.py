"""The kdb Insights Service Gateway's streaming websocket as a Link adapter: a supervised
connection whose subscriptions are resynced after each reconnect.

The protocol state is one :class:`~.protocol.ClientConnectionState`, kept in the adapter so
that it outlives each connection (and each restart of the transport actor): request ids
never go back, and on each new connection ``connect()`` subscribes every subscription again
by subsnap (a resync: the new snapshot replaces what the old connection had).

The transport speaks websockets' sans-I/O ``ClientProtocol`` over the kit's TCP stream.
``open`` makes the handshake with the token in the raw header ``Sec-WebSocket-Protocol:
Bearer <token>`` (websockets would refuse it as a subprotocol: it has a space) and the
query ``?in=json&out=json`` (or ``qipc``: binary frames, see :mod:`.qipc`); an HTTP 401
is :class:`AuthRefused` (the link goes FAILED, no redial). Snaps are
``Link.call(SnapCall(...))``; what reaches the link's consumer, keyed by the subscription's
key, is :class:`~.protocol.Subscribed`, :class:`~.protocol.Update`,
:class:`~.protocol.SubscriptionError` and :class:`~.protocol.Unsubscribed`. The heartbeat
is the websocket's ping. The token never appears in reprs, logs or errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from actorwire.actors.link import (
    AuthRefused,
    LinkAdapter,
    Ordering,
    Reply,
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
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.uri import WebSocketURI, parse_uri

from .protocol import (
    JSON,
    ClientConnectionState,
    ClientState,
    Codec,
    ProtocolError,
    Send,
    SnapFailed,
    SnapResult,
    SubscribeRequest,
    SubTopic,
    UnsubscribeRequest,
    encode,
)

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "GatewayAdapter", "GatewayTransport", "SnapCall"]

DEFAULT_REQUEST_DEADLINE = 30.0
"""Seconds a subscribe may go unanswered before the connection is started again."""

DEFAULT_MAX_MESSAGE_SIZE = 16 << 20
"""Largest websocket message the client takes (16 MiB, the embedded gateway's limit too)."""

_SUBPROTOCOL = "Sec-WebSocket-Protocol"


@dataclass(frozen=True, slots=True)
class SnapCall:
    """A ``Link.call`` request: a snap of ``topic``'s rows that pass ``sub_topic``."""

    topic: str
    sub_topic: SubTopic | None = None


# -- commands to the transport (the Link's frames) ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Subscribe:
    key: Hashable


@dataclass(frozen=True, slots=True)
class _Unsubscribe:
    key: Hashable


@dataclass(frozen=True, slots=True)
class _Ping:
    n: int


@dataclass(frozen=True, slots=True)
class _Out:
    """A message the state made, to send as it is."""

    send: Send


class _WsCodec:
    """One connection's websocket protocol, feeding text messages to the adapter's (lasting)
    protocol state and sending what it answers."""

    __slots__ = ("adapter", "binary", "broken", "overdue", "proto", "sent")

    def __init__(self, adapter: GatewayAdapter) -> None:
        self.adapter = adapter
        self.proto = ClientProtocol(
            adapter.uri, max_size=adapter.max_message_size, logger=PROTOCOL_LOGGER
        )
        self.broken = False
        self.binary = adapter.codec.binary
        # Subscribe and unsubscribe requests by id: when each was sent (time.monotonic()).
        self.sent: dict[int, float] = {}
        self.overdue: str | None = None  # a request unanswered past the deadline

    def receive_data(self, data: bytes) -> None:
        self.proto.receive_data(data)

    def events(self) -> list[Any]:
        out: list[Any] = []
        proto = self.proto
        items = proto.events_received()
        if self.broken:
            return out
        if self.overdue is not None:
            # The gateway answers pings but not this request: a subscription would stay
            # unconfirmed (and stale) on a link that looks CONNECTED. Start again.
            self.broken = True
            out.append(Broken(self.overdue))
            return out
        state = self.adapter.state
        for event in items:
            if not isinstance(event, Frame):
                continue  # the handshake's Response, read in open()
            opcode = event.opcode
            if opcode is Opcode.PING or opcode is Opcode.PONG:
                out.append(Alive())
                continue
            if opcode is not Opcode.TEXT and opcode is not Opcode.BINARY:
                continue  # a close: websockets answers it, the read then ends
            if (opcode is Opcode.BINARY) is not self.binary:
                kind = "binary" if opcode is Opcode.BINARY else "text"
                out.append(Ignored(f"a {kind} message of {len(event.data)} bytes"))
                continue
            try:
                raw = bytes(event.data)
                frame = raw if self.binary else raw.decode()
                results = state.receive(frame, size=len(raw))
            except (ProtocolError, UnicodeDecodeError) as exc:
                self.broken = True
                out.append(Broken(f"kdb gateway: {exc}"))
                break
            for item in results:
                if type(item) is Send:
                    self._send_one(item)
                else:
                    out.append(item)
        failure = proto.parser_exc
        if failure is not None and not self.broken:
            self.broken = True
            out.append(Broken(f"websocket protocol error: {failure}"))
        return out

    def command(self, frame: Any) -> None:
        """Carry out one of the Link's frames on this connection."""
        adapter = self.adapter
        state = adapter.state
        self._send(adapter._drop_forgotten())
        kind = type(frame)
        if kind is _Out:
            self._send_one(frame.send)
        elif kind is _Subscribe:
            key = frame.key
            spec = adapter._specs.get(key)
            if spec is not None and key not in state.subscriptions:
                topic, sub_topic, with_snapshot = spec
                self._send(state.subscribe(key, topic, sub_topic, with_snapshot))
        elif kind is _Ping:
            self._check_overdue(state)
            self.proto.send_ping(str(frame.n).encode())
        # _Unsubscribe: done by the forgotten keys above.

    def _send(self, outputs: list[Any]) -> None:
        for item in outputs:
            if type(item) is Send:
                self._send_one(item)

    def _check_overdue(self, state: ClientConnectionState) -> None:
        sent = self.sent
        if not sent:
            return
        waiting = set(state.waiting())
        now = time.monotonic()
        deadline = self.adapter.request_deadline
        for mid, at in list(sent.items()):
            if mid not in waiting:
                del sent[mid]
            elif now - at > deadline and self.overdue is None:
                self.overdue = f"kdb gateway: no reply to request id {mid} within {deadline:g} s"

    def _send_one(self, item: Send) -> None:
        message = item.message
        if type(message) is SubscribeRequest or type(message) is UnsubscribeRequest:
            self.sent[message.id] = time.monotonic()
        frame = encode(message, self.adapter.codec)
        if isinstance(frame, str):
            self.proto.send_text(frame.encode())
        else:
            self.proto.send_binary(frame)

    def data_to_send(self) -> bytes:
        return b"".join(self.proto.data_to_send())


class GatewayTransport(WebSocketTransport):
    """The kit's websocket transport with :class:`_WsCodec`: the token in the upgrade
    request, a 401 refused for good, and the state's ``connect()`` once the handshake is done."""

    peer_name = "the gateway"

    def __init__(self, adapter: GatewayAdapter, wiring: Wiring) -> None:
        super().__init__(
            adapter, wiring, adapter.host, adapter.port, lambda: _WsCodec(adapter), adapter.ssl
        )
        self.gw_adapter = adapter

    def handshake_headers(self) -> dict[str, str]:
        token = self.gw_adapter._token
        return {} if token is None else {_SUBPROTOCOL: f"Bearer {token}"}

    def handshake_refused(self, failure: Exception) -> Exception:
        adapter = self.gw_adapter
        if isinstance(failure, InvalidStatus) and failure.response.status_code in (401, 403):
            body = failure.response.body.decode("utf-8", "replace").strip()[:200]
            why = "no token was given" if adapter._token is None else "the token was refused"
            return AuthRefused(
                f"kdb gateway {adapter.host}:{adapter.port} answered HTTP "
                f"{failure.response.status_code} to the websocket handshake ({why}): {body}"
            )
        return super().handshake_refused(failure)

    def opened(self, codec: Any) -> None:
        # A new connection: resubscribe everything (a resync for what was live before).
        adapter = self.gw_adapter
        state = adapter.state
        codec._send(adapter._drop_forgotten())
        if state.state is not ClientState.DISCONNECTED:
            state.connection_lost()
        codec._send(state.connect())

    def closed(self) -> None:
        self.gw_adapter.state.connection_lost()


class GatewayAdapter(LinkAdapter):
    """kdb Insights gateway hooks for a Link. ``url`` is the websocket's (``ws://`` or
    ``wss://``; ``in``/``out`` are set to ``codec``'s name: json, or qipc with
    :data:`~.qipc.QIPC`); ``token`` rides in the handshake and stays out of reprs and logs."""

    ordering = Ordering.LATEST  # events come unsequenced, delivered as they are

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ssl_context: SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        codec: Codec = JSON,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
    ) -> None:
        parsed = parse_uri(url)
        if parsed.secure and ssl_context is None:
            raise ValueError(f"kdb: {url!r} is wss: pass an ssl_context")
        self.codec: Codec = codec
        query = [(k, v) for k, v in parse_qsl(parsed.query) if k not in ("in", "out")]
        query += [("in", codec.name), ("out", codec.name)]
        self.uri = WebSocketURI(
            parsed.secure, parsed.host, parsed.port, parsed.path, urlencode(query)
        )
        self.host = parsed.host
        self.port = parsed.port
        self.ssl = ssl_context
        self.max_message_size = max_message_size
        self.request_deadline = request_deadline
        """Seconds a subscribe or unsubscribe may go unanswered on a connection whose pings
        are answered before the link is started again (checked at each heartbeat)."""
        self._token = token
        self.state = ClientConnectionState(codec=codec, max_size=max_message_size)
        """The connection's protocol state, on the I/O loop only."""
        self._lock = threading.Lock()
        self._specs: dict[Hashable, tuple[str, SubTopic | None, bool]] = {}
        self._forgotten: list[Hashable] = []

    def __repr__(self) -> str:
        scheme = "wss" if self.ssl is not None else "ws"
        return f"GatewayAdapter({scheme}://{self.host}:{self.port}{self.uri.path})"

    # -- the facade's side (any thread) -------------------------------------------------

    def register(
        self, key: Hashable, topic: str, sub_topic: SubTopic | None, with_snapshot: bool
    ) -> None:
        """Name what subscription ``key`` is, before ``Link.subscribe(key)``."""
        with self._lock:
            self._specs[key] = (topic, sub_topic, with_snapshot)

    def unregister(self, key: Hashable) -> None:
        """End subscription ``key`` (on the next write or connection)."""
        with self._lock:
            if self._specs.pop(key, None) is not None:
                self._forgotten.append(key)

    def _drop_forgotten(self) -> list[Any]:
        """On the I/O loop: unsubscribe the keys unregistered since; what to send."""
        if not self._forgotten:
            return []
        with self._lock:
            keys, self._forgotten = self._forgotten, []
        out: list[Any] = []
        for key in keys:
            if key in self.state.subscriptions:
                out += self.state.unsubscribe(key)
        return out

    # -- LinkAdapter ------------------------------------------------------------------

    def make_transport(self, wiring: Wiring) -> Transport:
        return GatewayTransport(self, wiring)

    def request(self, request: Any) -> tuple[Hashable, list[Any]]:
        if not isinstance(request, SnapCall):
            raise TypeError(f"GatewayAdapter takes SnapCall requests, got {request!r}")
        mid, send = self.state.snap(request.topic, request.sub_topic)
        return ("snap", mid), [_Out(send)]

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        for item in frames:
            kind = type(item)
            if kind is SnapResult:
                out.replies.append(Reply(("snap", item.id), item.data))
            elif kind is SnapFailed:
                out.replies.append(Reply(("snap", item.id), error=item.error))
            elif not route_control(item, out):
                out.data.append((item.key, None, item))
        return out

    def subscribe(self, stream: Hashable, from_seq: Any | None) -> list[Any]:
        return [_Subscribe(stream)]

    def unsubscribe(self, stream: Hashable) -> list[Any]:
        return [_Unsubscribe(stream)]

    def ping(self, n: int) -> Any:
        return _Ping(n)
