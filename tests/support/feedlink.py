"""A consumer actor that records what a link delivers, for the link tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from actorwire.actors import Actor
from actorwire.adapters.feed import FeedAdapter

__all__ = ["SYNC", "FeedAdapter", "RecordingConsumer", "Sink"]

SYNC = object()
"""Asked of a Sink: it answers once it has handled everything told to it before."""


class RecordingConsumer:
    """Shares a Recorder's state with the test thread (the actor object itself)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def factory(self) -> Callable[[], Actor]:
        return lambda: Sink(self)

    def wait_for_count(self, n: int, timeout: float = 10.0, stream: str | None = None) -> bool:
        """Wait until ``n`` items (of ``stream``, if given) arrived; False on timeout."""

        def enough() -> bool:
            if stream is None:
                return len(self.items) >= n
            return sum(1 for d in self.items if d.stream == stream) >= n

        with self.cond:
            return self.cond.wait_for(enough, timeout)

    def seqs(self, stream: str = "A") -> list[int]:
        with self.cond:
            return [d.seq for d in self.items if d.stream == stream]


class Sink(Actor):
    """Appends each drained batch to the shared RecordingConsumer."""

    def __init__(self, shared: RecordingConsumer) -> None:
        super().__init__()
        self.shared = shared

    def on_batch(self, messages: list[Any]) -> None:
        with self.shared.cond:
            self.shared.items.extend(m for m in messages if m is not SYNC)
            self.shared.cond.notify_all()

    def on_receive(self, message: Any) -> Any:
        if message is SYNC:
            return len(self.shared.items)
        self.on_batch([message])
        return None
