"""The feed protocol as a Link adapter: AUTH on connect, SUB from a seq, REPLAY, PING."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from actorwire.actors.link import (
    Authenticated,
    AuthFailed,
    LinkAdapter,
    PeerError,
    Reply,
    Routed,
    SessionLost,
    TcpTransport,
    Transport,
    Wiring,
)
from actorwire.actors.tls import StrPath, client_context

from .protocol import HOST, Data, Err, FeedCodec, Garbage, Ok, Ping, Pong

__all__ = ["FeedAdapter"]


class FeedAdapter(LinkAdapter):
    """Feed protocol hooks for a Link; data items are ``Data`` frames, sequenced per stream.

    ``cafile`` (PEM) speaks TLS to a server whose certificate that CA signed for ``host``;
    a bad path raises ``TlsConfigError`` at once. The token is kept out of reprs and logs.
    """

    def __init__(
        self,
        port: int,
        token: str = "secret",
        host: str = HOST,
        *,
        cafile: StrPath | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._token = token
        self._ssl = client_context(cafile) if cafile is not None else None

    def __repr__(self) -> str:
        tls = ", tls" if self._ssl is not None else ""
        return f"FeedAdapter({self.host}:{self.port}{tls})"

    def make_transport(self, wiring: Wiring) -> Transport:
        return TcpTransport(
            self, wiring, self.host, self.port, lambda: FeedCodec(role="client"), ssl=self._ssl
        )

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        data = out.data
        for frame in frames:
            kind = type(frame)
            if kind is Data:
                data.append((frame.stream, frame.seq, frame))
            elif kind is Pong:
                # Heartbeat pings are answered too; a pong no call waits for is counted.
                out.replies.append(Reply(("pong", frame.n), frame))
            elif kind is Ok:
                if frame.what == "auth":
                    out.control.append(Authenticated())
            elif kind is Err:
                if frame.reason == "bad token":  # the credentials are refused: for good
                    out.control.append(AuthFailed(frame.reason))
                elif frame.reason == "not authenticated":  # the server lost our login
                    out.control.append(SessionLost(frame.reason))
                else:
                    out.control.append(PeerError(frame.reason))
            elif kind is Garbage:
                out.errors.append((f"{frame.reason}: {frame.raw[:40]!r}", False))
            else:
                out.errors.append((f"unexpected frame {kind.__name__}", False))
        return out

    def on_connected(self) -> list[Any]:
        return [FeedCodec.encode_auth(self._token)]

    def subscribe(self, stream: Hashable, from_seq: int | None) -> list[Any]:
        return [FeedCodec.encode_sub(str(stream), 1 if from_seq is None else from_seq)]

    def recover(self, stream: Hashable, first: int, last: int) -> list[Any] | None:
        return [FeedCodec.encode_replay(str(stream), first, last)]

    def ping(self, n: int) -> Any:
        return FeedCodec.encode_ping(n)

    def request(self, request: Any) -> tuple[Hashable, list[Any]]:
        """``Link.call(Ping(n))`` answers with the peer's ``Pong(n)`` (a round trip)."""
        if not isinstance(request, Ping):
            raise TypeError(f"the feed protocol answers Ping requests only, got {request!r}")
        return ("pong", request.n), [FeedCodec.encode_ping(request.n)]
