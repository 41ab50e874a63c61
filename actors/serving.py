"""The server side of the kit, sans-I/O: a per-connection outbox bounded in bytes, and a
topic index so a fan-out costs the matching subscribers only.

An embedded server gives each connection an :class:`Outbox`: what the server means to send
is ``put`` there and a writer task ``take``s it for the socket. The outbox refuses to grow
past ``max_bytes``: a reader that stops reading is cut off (the caller closes the
connection, counts and logs it) instead of growing the server's memory without bound, and
``stalled(now)`` says when the peer has taken nothing for ``stall_deadline`` seconds while
data waited, even if it keeps sending (pings, requests) meanwhile.

:mod:`actorwire.actors.tcpserver` is the I/O shell around both: accept, an actor per
connection, a writer task per outbox, slow readers dropped, counted and logged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["Outbox", "TopicIndex"]

K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound=Hashable)


class Outbox:
    """Frames waiting to be written to one peer, bounded in bytes; time passed in."""

    __slots__ = (
        "_frames",
        "bytes",
        "dropped_frames",
        "max_bytes",
        "refused",
        "stall_deadline",
        "waiting_since",
    )

    def __init__(self, max_bytes: int, stall_deadline: float) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"Outbox max_bytes must be an int >= 1, got {max_bytes!r}")
        if not stall_deadline > 0:
            raise ValueError(f"Outbox stall_deadline must be > 0 seconds, got {stall_deadline!r}")
        self.max_bytes = max_bytes
        self.stall_deadline = float(stall_deadline)
        self._frames: deque[bytes] = deque()
        self.bytes = 0
        self.refused = False  # set once: the peer is too slow; close the connection
        self.dropped_frames = 0
        self.waiting_since: float | None = None  # since when data has waited untaken

    def put(self, frame: bytes, now: float) -> bool:
        """Queue ``frame``; False (and ``refused`` set) when it would pass ``max_bytes``:
        the caller drops the connection. A refused outbox takes nothing more."""
        if self.refused:
            self.dropped_frames += 1
            return False
        size = len(frame)
        if self.bytes + size > self.max_bytes:
            self.refused = True
            self.dropped_frames += 1
            return False
        if not self._frames:
            self.waiting_since = now
        self._frames.append(frame)
        self.bytes += size
        return True

    def take(self, max_bytes: int, now: float, max_count: int | None = None) -> list[bytes]:
        """Frames for one write, about ``max_bytes`` worth (at least one if any wait), and
        at most ``max_count`` of them."""
        out: list[bytes] = []
        taken = 0
        frames = self._frames
        count = len(frames) if max_count is None else min(max_count, len(frames))
        while len(out) < count and (not out or taken + len(frames[0]) <= max_bytes):
            frame = frames.popleft()
            out.append(frame)
            taken += len(frame)
        self.bytes -= taken
        self.waiting_since = now if frames else None
        return out

    def stalled(self, now: float) -> bool:
        """True when data has waited ``stall_deadline`` seconds with nothing taken."""
        since = self.waiting_since
        return since is not None and now - since >= self.stall_deadline

    def __len__(self) -> int:
        return len(self._frames)

    def __repr__(self) -> str:
        return f"Outbox({len(self._frames)} frames, {self.bytes}/{self.max_bytes} bytes)"


class TopicIndex(Generic[K, S]):
    """Subscribers by topic key: ``match(key)`` costs the subscribers of that key (and the
    wildcard subscribers), not every subscription on the server.

    A subscription is ``(subscriber, key)``; ``key=None`` subscribes to every key.
    """

    def __init__(self) -> None:
        self._by_key: dict[K, dict[S, None]] = {}
        self._everything: dict[S, None] = {}
        self._keys_of: dict[S, set[K | None]] = {}

    def add(self, subscriber: S, key: K | None) -> None:
        if key is None:
            self._everything[subscriber] = None
        else:
            self._by_key.setdefault(key, {})[subscriber] = None
        self._keys_of.setdefault(subscriber, set()).add(key)

    def remove(self, subscriber: S, key: K | None) -> None:
        if key is None:
            self._everything.pop(subscriber, None)
        else:
            subs = self._by_key.get(key)
            if subs is not None:
                subs.pop(subscriber, None)
                if not subs:
                    del self._by_key[key]
        keys = self._keys_of.get(subscriber)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_of[subscriber]

    def remove_subscriber(self, subscriber: S) -> None:
        """Every subscription of ``subscriber`` (a connection that closed)."""
        for key in list(self._keys_of.get(subscriber, ())):
            self.remove(subscriber, key)

    def match(self, key: K) -> list[S]:
        """The subscribers of ``key``, each once (wildcard ones too): a snapshot, so a
        fan-out may drop a subscriber (a slow connection) while it goes through them."""
        exact = self._by_key.get(key)
        everything = self._everything
        if not everything:
            return list(exact) if exact else []
        if not exact:
            return list(everything)
        return [*exact, *(s for s in everything if s not in exact)]

    def keys(self, subscriber: S) -> set[K | None]:
        return set(self._keys_of.get(subscriber, ()))

    def subscribers(self) -> Iterable[S]:
        return list(self._keys_of)

    def __len__(self) -> int:
        """How many subscriptions."""
        return sum(len(keys) for keys in self._keys_of.values())
