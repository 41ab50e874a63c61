"""The feed protocol as a Link adapter, and a consumer actor that records what it gets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from actorwire.actors import Actor
from actorwire.actors.link import (
    AuthFailed,
    Authenticated,
    LinkAdapter,
    PeerError,
    Routed,
    TcpTransport,
    Transport,
)

from .feed import HOST, Data, Err, FeedCodec, Garbage, Ok, Pong


class FeedAdapter(LinkAdapter):
    """Feed protocol hooks: AUTH on connect, SUB from a seq, REPLAY for gaps, PING."""

    def __init__(self, port: int, token: str = "secret", host: str = HOST) -> None:
        self.host = host
        self.port = port
        self.token = token

    def make_transport(self) -> Transport:
        return TcpTransport(self, self.host, self.port, lambda: FeedCodec(role="client"))

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        data = out.data
        for frame in frames:
            if type(frame) is Data:
                data.append((frame.stream, frame.seq, frame))
            elif type(frame) is Pong:
                continue
            elif type(frame) is Ok:
                if frame.what == "auth":
                    out.control.append(Authenticated())
            elif type(frame) is Err:
                if frame.reason in ("bad token", "not authenticated"):
                    out.control.append(AuthFailed(frame.reason))
                else:
                    out.control.append(PeerError(frame.reason))
            elif type(frame) is Garbage:
                out.errors.append((f"{frame.reason}: {frame.raw[:40]!r}", False))
            else:
                out.errors.append((f"unexpected frame {frame!r}", False))
        return out

    def on_connected(self) -> list[Any]:
        return [FeedCodec.encode_auth(self.token)]

    def subscribe(self, stream: Hashable, from_seq: int | None) -> list[Any]:
        return [FeedCodec.encode_sub(str(stream), 1 if from_seq is None else from_seq)]

    def recover(self, stream: Hashable, first: int, last: int) -> list[Any] | None:
        return [FeedCodec.encode_replay(str(stream), first, last)]

    def ping(self, n: int) -> Any:
        return FeedCodec.encode_ping(n)


class Recorder(Actor):
    """Consumer that records every item and wakes waiters when a predicate holds."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def on_receive(self, message: Any) -> Any:
        if message == "items":
            with self.cond:
                return list(self.items)
        with self.cond:
            self.items.append(message)
            self.cond.notify_all()
        return None


class RecordingConsumer:
    """Shares a Recorder's state with the test thread (the actor object itself)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def factory(self) -> Callable[[], Actor]:
        return lambda: _Sink(self)

    def wait_for_count(self, n: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.items) >= n, timeout)

    def seqs(self, stream: str = "A") -> list[int]:
        with self.cond:
            return [d.seq for d in self.items if d.stream == stream]


class _Sink(Actor):
    def __init__(self, shared: RecordingConsumer) -> None:
        super().__init__()
        self.shared = shared

    def on_batch(self, messages: list[Any]) -> None:
        with self.shared.cond:
            self.shared.items.extend(messages)
            self.shared.cond.notify_all()
