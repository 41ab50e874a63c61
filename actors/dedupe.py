"""A dedupe window: the ids seen lately, bounded in bytes and in age, sans-I/O.

Rules:

1. ``seen(id, now)`` is True for an id added within the window, so a request retried with
   the same id (a resend after a reconnect, a user's retry after a timeout) is applied once.
2. The window forgets its oldest ids first: once they are older than ``max_age`` seconds,
   and whenever the ids held would pass ``max_bytes`` (each id costs its length plus a fixed
   overhead). Memory is bounded in bytes; an id older than the window may be applied again,
   which is the window's documented limit.
3. Time is passed in (``now``, seconds from a monotonic clock); nothing here reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["DedupeWindow"]

ID_OVERHEAD = 96
"""Bytes an id costs beyond its length (the dict entry, the str object, its time)."""


class DedupeWindow:
    """The ids applied within the last ``max_age`` seconds, at most ``max_bytes`` of them."""

    __slots__ = ("_ids", "bytes", "evicted", "max_age", "max_bytes")

    def __init__(self, max_bytes: int, max_age: float) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"DedupeWindow max_bytes must be an int >= 1, got {max_bytes!r}")
        if not max_age > 0:
            raise ValueError(f"DedupeWindow max_age must be > 0 seconds, got {max_age!r}")
        self.max_bytes = max_bytes
        self.max_age = float(max_age)
        self._ids: OrderedDict[str, float] = OrderedDict()
        self.bytes = 0
        self.evicted = 0  # ids forgotten early because the window was full

    def seen(self, id_: str, now: float) -> bool:
        """True if ``id_`` was added within the window."""
        self._expire(now)
        return id_ in self._ids

    def add(self, id_: str, now: float) -> None:
        """Remember ``id_`` as applied at ``now``."""
        ids = self._ids
        if id_ in ids:
            ids.move_to_end(id_)
            ids[id_] = now
            return
        ids[id_] = now
        self.bytes += len(id_) + ID_OVERHEAD
        while self.bytes > self.max_bytes and ids:
            self._pop_oldest()
            self.evicted += 1

    def expire(self, now: float) -> None:
        """Forget the ids older than ``max_age`` (``seen`` does this too)."""
        self._expire(now)

    def _expire(self, now: float) -> None:
        ids = self._ids
        horizon = now - self.max_age
        while ids:
            oldest = next(iter(ids.values()))
            if oldest > horizon:
                return
            self._pop_oldest()

    def _pop_oldest(self) -> None:
        id_, _ = self._ids.popitem(last=False)
        self.bytes -= len(id_) + ID_OVERHEAD

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return (
            f"DedupeWindow({len(self._ids)} ids, {self.bytes}/{self.max_bytes} bytes, "
            f"max_age={self.max_age}s)"
        )
