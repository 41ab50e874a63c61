"""The platform's journal: every accepted record in acceptance order, sans-I/O.

Rules:

1. Each accepted record gets the next position of the platform's run (``header.pos``: 1, 2,
   3, ... within an ``epoch``); positions have no holes.
2. The journal keeps the newest records, bounded in bytes (each record's serialized size)
   and in age (seconds since it was accepted): the oldest go first. ``first`` is the oldest
   position held (``last + 1`` when empty).
3. A subscription that comes back after position ``after`` is resumed when the journal still
   holds every later record (``covers(after)``): ``since(after)`` gives them in order.
   Otherwise what fell out of the journal is a gap, which the platform reports.
4. Time is passed in (``now``, seconds); nothing here reads a clock.
"""

from __future__ import annotations

import itertools
from collections import deque

from . import keysquare_pb2 as pb

__all__ = ["Journal"]


class Journal:
    """The latest accepted records, at most ``max_bytes`` of them and none older than
    ``max_age`` seconds."""

    __slots__ = ("_entries", "bytes", "evicted", "first", "last", "max_age", "max_bytes")

    def __init__(self, max_bytes: int, max_age: float) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"journal max_bytes must be an int >= 1, got {max_bytes!r}")
        if not max_age > 0:
            raise ValueError(f"journal max_age must be > 0 seconds, got {max_age!r}")
        self.max_bytes = max_bytes
        self.max_age = float(max_age)
        self._entries: deque[tuple[pb.Record, int, float]] = deque()  # record, size, time
        self.bytes = 0
        self.first = 1  # the oldest position held (last + 1 when empty)
        self.last = 0  # the newest position given
        self.evicted = 0  # records dropped for room or age

    def append(self, records: list[pb.Record], now: float) -> None:
        """Give each record the next position (``header.pos``) and keep it."""
        entries = self._entries
        pos = self.last
        added = 0
        for record in records:
            pos += 1
            record.header.pos = pos
            size = record.ByteSize()
            entries.append((record, size, now))
            added += size
        self.last = pos
        self.bytes += added
        self._trim(now)

    def restore(self, entries: list[tuple[pb.Record, float]], last: int, now: float) -> None:
        """Take back what a store held: ``entries`` (record, time accepted) in position order,
        the newest of them at most ``last``, the newest position given. Positions go on
        from ``last``; the oldest entries go first if the bounds are now tighter."""
        if self._entries or self.last:
            raise RuntimeError("a journal is restored before it takes any record")
        positions = [record.header.pos for record, _ in entries]
        # A store keeps whole requests: leading entries the journal had already let go of
        # may come back (they are dropped again by the bounds below).
        if positions and (
            positions != list(range(positions[0], positions[0] + len(positions)))
            or positions[-1] > last
        ):
            raise ValueError(
                f"journal entries must hold consecutive positions up to {last}, "
                f"got {positions[0]}..{positions[-1]} ({len(positions)} entries)"
            )
        for record, at in entries:
            size = record.ByteSize()
            self._entries.append((record, size, at))
            self.bytes += size
        self.last = last
        # Nothing held past the newest entry means nothing after it was kept: the journal
        # covers from the first entry, or from the next position when empty.
        if positions and positions[-1] == last:
            self.first = positions[0]
        else:
            self._entries.clear()
            self.bytes = 0
            self.first = last + 1
        self._trim(now)

    def expire(self, now: float) -> None:
        """Drop what is older than ``max_age`` (also done by ``append``)."""
        self._trim(now)

    def _trim(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.max_age
        while entries and (self.bytes > self.max_bytes or entries[0][2] <= horizon):
            _, size, _ = entries.popleft()
            self.bytes -= size
            self.first += 1
            self.evicted += 1

    def covers(self, after: int) -> bool:
        """True when every record after position ``after`` is still held (or none exists)."""
        return self.first - 1 <= after <= self.last

    def since(self, after: int) -> list[pb.Record]:
        """The records after position ``after``, oldest first (``covers(after)`` must hold)."""
        if not self.covers(after):
            raise ValueError(
                f"journal holds positions {self.first}..{self.last}, not all after {after}"
            )
        start = after - self.first + 1
        return [record for record, _, _ in itertools.islice(self._entries, start, None)]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"Journal(positions {self.first}..{self.last}, {self.bytes}/{self.max_bytes} "
            f"bytes, max_age={self.max_age}s)"
        )
