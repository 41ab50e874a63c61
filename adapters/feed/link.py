"""The feed protocol as a Link adapter: AUTH on connect, SUB from a seq, REPLAY, PING."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from actorwire.actors.link import (
    Authenticated,
    AuthFailed,
    LinkAdapter,
    PeerError,
    Routed,
    SessionLost,
    TcpTransport,
    Transport,
)

from .protocol import HOST, Data, Err, FeedCodec, Garbage, Ok, Pong

__all__ = ["FeedAdapter"]


class FeedAdapter(LinkAdapter):
    """Feed protocol hooks for a Link; data items are ``Data`` frames, sequenced per stream.

    The token is kept out of reprs and logs.
    """

    def __init__(self, port: int, token: str = "secret", host: str = HOST) -> None:
        self.host = host
        self.port = port
        self._token = token

    def __repr__(self) -> str:
        return f"FeedAdapter({self.host}:{self.port})"

    def make_transport(self) -> Transport:
        return TcpTransport(self, self.host, self.port, lambda: FeedCodec(role="client"))

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        data = out.data
        for frame in frames:
            kind = type(frame)
            if kind is Data:
                data.append((frame.stream, frame.seq, frame))
            elif kind is Pong:
                continue
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
