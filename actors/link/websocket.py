"""A websocket client transport for links: websockets' sans-I/O ``ClientProtocol`` over the
kit's TCP stream.

The adapter brings a codec (:class:`WsCodec`): it owns one connection's ``ClientProtocol``
(``proto``), takes the bytes read (``receive_data``), gives the routed items of what it read
(``events``), carries out the link's frames (``command``) and hands over what to write
(``data_to_send``). :class:`WebSocketTransport` does the rest, for every adapter alike:

- ``open`` dials, sends the upgrade request (with the adapter's extra headers, e.g. a bearer
  token the library would refuse as a subprotocol) and reads until the handshake's answer;
  a refused handshake is ``handshake_refused(failure)`` (a ConnectionError unless the
  subclass says otherwise, e.g. AuthRefused for a 401), and ``opened()`` runs once it is up;
- every read goes through the codec, and what the protocol answers at once (pongs, what the
  adapter's state answers) is written as it is read;
- every write is the codec's ``command`` for each frame, then one write;
- ``close_connection`` tells the subclass (``closed()``) before the socket goes.

The items a codec returns besides the adapter's own: :class:`Alive` (a ping or a pong:
traffic, nothing to deliver), :class:`Broken` (the connection cannot go on: the link drops
it and redials) and :class:`Ignored` (a frame counted and logged; the connection goes on).
``route_control`` sorts those three into a :class:`~.adapter.Routed`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from websockets.client import ClientProtocol
from websockets.http11 import Response

from .transport import TcpTransport

if TYPE_CHECKING:
    from ssl import SSLContext

    from .adapter import LinkAdapter, Routed
    from .transport import Wiring

__all__ = [
    "PROTOCOL_LOGGER",
    "Alive",
    "Broken",
    "Ignored",
    "WebSocketTransport",
    "WsCodec",
    "route_control",
]

PROTOCOL_LOGGER = logging.getLogger("actorwire.websockets.client")
"""The logger to give websockets' sans-I/O ``ClientProtocol``: only its warnings pass. At
DEBUG websockets logs the upgrade request's headers, a token among them; and the link logs
what matters itself."""
PROTOCOL_LOGGER.setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class Alive:
    """A ping or pong: traffic, nothing to deliver."""


@dataclass(frozen=True, slots=True)
class Broken:
    """The connection cannot go on (a message that does not parse, a protocol error)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A frame the client cannot use (binary): counted and logged, the connection goes on."""

    reason: str


def route_control(item: Any, out: Routed) -> bool:
    """Put ``item`` in ``out`` if it is Alive, Broken or Ignored; False for anything else."""
    kind = type(item)
    if kind is Alive:
        return True
    if kind is Broken:
        out.errors.append((item.reason, True))
        return True
    if kind is Ignored:
        out.errors.append((item.reason, False))
        return True
    return False


class WsCodec(Protocol):
    """One connection's websocket codec, as :class:`WebSocketTransport` drives it."""

    proto: ClientProtocol

    def receive_data(self, data: bytes) -> None: ...

    def events(self) -> list[Any]: ...

    def command(self, frame: Any) -> None: ...

    def data_to_send(self) -> bytes: ...


class WebSocketTransport(TcpTransport):
    """A websocket over the kit's TCP stream (see the module's docstring). ``peer_name``
    names the far end in errors."""

    peer_name = "the server"

    def __init__(
        self,
        adapter: LinkAdapter,
        wiring: Wiring,
        host: str,
        port: int,
        codec: Any,
        ssl: SSLContext | None = None,
    ) -> None:
        super().__init__(adapter, wiring, host, port, codec, ssl)

    # -- hooks ------------------------------------------------------------------------

    def handshake_headers(self) -> dict[str, str]:
        """Headers to add to the upgrade request."""
        return {}

    def handshake_refused(self, failure: Exception) -> Exception:
        """The exception ``open`` raises for a refused handshake."""
        return ConnectionError(f"websocket handshake refused: {failure}")

    def opened(self, codec: Any) -> None:
        """The handshake is done (on the I/O loop); what the codec queues is then written."""

    def closed(self) -> None:
        """The connection ends (on the I/O loop), before its socket is closed."""

    # -- Transport --------------------------------------------------------------------

    async def open(self) -> None:
        await super().open()
        codec = self._ws()
        proto = codec.proto
        request = proto.connect()
        for name, value in self.handshake_headers().items():
            request.headers[name] = value
        proto.send_request(request)
        self._flush(codec)
        reader = self._reader_stream
        assert reader is not None
        while proto.handshake_exc is None:
            data = await reader.read(self.read_size)
            if not data:
                raise ConnectionError(
                    f"{self.peer_name} closed the connection during the handshake"
                )
            proto.receive_data(data)
            if any(type(e) is Response for e in proto.events):
                break
        if proto.handshake_exc is not None:
            raise self.handshake_refused(proto.handshake_exc)
        self.opened(codec)
        self._flush(codec)

    def _ws(self) -> WsCodec:
        codec: Any = self._codec
        assert codec is not None
        return codec  # type: ignore[no-any-return]

    def _flush(self, codec: WsCodec) -> None:
        data = codec.data_to_send()
        writer = self._writer_stream
        if data and writer is not None:
            writer.write(data)

    async def read(self) -> list[Any]:
        reader, codec = self._reader_stream, self._ws()
        assert reader is not None
        while True:
            data = await reader.read(self.read_size)
            if not data:
                codec.proto.receive_eof()
                close = codec.proto.close_rcvd
                why = f": {close.code} {close.reason}".rstrip() if close is not None else ""
                raise EOFError(f"{self.peer_name} closed the connection{why}")
            self.stats.bytes_in += len(data)
            codec.receive_data(data)
            events = codec.events()
            self._flush(codec)  # pongs, and what the adapter's state answers
            if events:
                return events

    async def write(self, frames: list[Any]) -> None:
        writer = self._writer_stream
        if writer is None:
            raise ConnectionError("not connected")
        codec = self._ws()
        for frame in frames:
            codec.command(frame)
        data = codec.data_to_send()
        if data:
            writer.write(data)
            await writer.drain()

    async def close_connection(self) -> None:
        self.closed()
        await super().close_connection()
