"""Per-stream in-order delivery over lossy, duplicating, reordering transports.

Sans-I/O: :class:`SequenceTracker` turns ``(stream, seq, item)`` frames into actions
(:class:`Deliver`, :class:`RequestRecovery`, :class:`Escalate`) that the adapter carries out.
Time only enters as the ``now`` arguments, which must come from a monotonic clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from numbers import Real
from typing import Any, TypeAlias

__all__ = [
    "Action",
    "Deliver",
    "Escalate",
    "LatestFilter",
    "RequestRecovery",
    "SequenceTracker",
]


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand ``items`` downstream, in order; they are the next contiguous frames of ``stream``."""

    stream: Hashable
    items: list[Any]


@dataclass(frozen=True, slots=True)
class RequestRecovery:
    """Ask the source to replay ``stream`` sequence numbers ``first..last`` (inclusive)."""

    stream: Hashable
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Escalate:
    """Recovery failed: re-snapshot/resubscribe ``stream`` from ``tracker.expected(stream)``."""

    stream: Hashable
    reason: str


Action: TypeAlias = Deliver | RequestRecovery | Escalate
"""Anything :class:`SequenceTracker` asks the adapter to do."""

_MISSING: Any = object()


def _check_seq(owner: str, seq: object) -> None:
    """Raise unless ``seq`` is a plain int (bools are rejected: they are almost always bugs)."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError(f"SequenceTracker.{owner}: seq must be an int, got {seq!r}")


def _check_now(now: object) -> float:
    """Return ``now`` as a finite float or raise naming the bad value."""
    if isinstance(now, bool) or not isinstance(now, Real):
        raise TypeError(f"SequenceTracker: now must be a number of seconds, got {now!r}")
    if not math.isfinite(float(now)):
        raise ValueError(f"SequenceTracker: now must be finite, got {now!r}")
    return float(now)


class _Stream:
    """Mutable per-stream state: next expected seq and the frames held beyond a gap."""

    __slots__ = ("expected", "heap", "held", "requested_hi")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.held: dict[int, Any] = {}
        """Frames with seq > expected, waiting for the gap before them to close."""
        self.heap: list[int] = []
        """The keys of ``held`` as a min-heap (entries below ``expected`` are stale)."""
        self.requested_hi = expected - 1
        """Highest seq covered by a RequestRecovery of the outstanding recovery."""


class SequenceTracker:
    """Restores per-stream order: delivers contiguous frames, holds early ones, asks for gaps.

    A gap starts a recovery: a :class:`RequestRecovery` for exactly the missing range and a
    deadline ``recovery_timeout`` seconds later. Replayed frames close the gap and delivery
    resumes; the recovery ends once nothing is held. The deadline is never extended while
    held frames remain, so a trickle of partial progress cannot stall a stream forever: when
    it passes, :meth:`poll` emits :class:`Escalate` and drops the held frames. More than
    ``max_held`` held frames on one stream escalate at once. After any Escalate the expected
    seq is unchanged, so a replay or re-snapshot from :meth:`expected` loses nothing.

    A new :class:`RequestRecovery` is emitted only for seqs not already requested by the
    outstanding recovery (e.g. the gap in front of the next held frame once the first gap
    closes), so a frame-by-frame replay does not multiply replay requests. After an Escalate,
    the next early frame starts a fresh recovery; an adapter busy re-snapshotting may ignore
    its RequestRecovery and finish with :meth:`expect`.
    """

    __slots__ = (
        "_last_deadline",
        "_now",
        "_recovering",
        "_streams",
        "delivered",
        "duplicates",
        "escalations",
        "gaps",
        "held_max",
        "max_held",
        "recovery_timeout",
    )

    def __init__(self, max_held: int = 10_000, recovery_timeout: float = 5.0) -> None:
        if isinstance(max_held, bool) or not isinstance(max_held, int):
            raise TypeError(f"SequenceTracker: max_held must be an int, got {max_held!r}")
        if max_held < 0:
            raise ValueError(f"SequenceTracker: max_held must be >= 0, got {max_held!r}")
        if (
            isinstance(recovery_timeout, bool)
            or not isinstance(recovery_timeout, Real)
            or not math.isfinite(float(recovery_timeout))
            or recovery_timeout <= 0
        ):
            raise ValueError(
                f"SequenceTracker: recovery_timeout must be a finite number > 0, "
                f"got {recovery_timeout!r}"
            )
        self.max_held: int = max_held
        """Most frames one stream may hold before it escalates."""
        self.recovery_timeout: float = float(recovery_timeout)
        """Seconds a recovery may take, from its first RequestRecovery until nothing is held."""
        self._streams: dict[Hashable, _Stream] = {}
        # Stream -> recovery deadline. Deadlines are now + a constant timeout and never
        # extended, so insertion order is deadline order (kept so even if ``now`` steps back).
        self._recovering: dict[Hashable, float] = {}
        self._last_deadline: float = -math.inf
        self._now: float = 0.0  # latest ``now`` seen by poll/expect/a recovery: expect()'s default
        self.delivered: int = 0
        """Frames handed out in Deliver actions."""
        self.duplicates: int = 0
        """Frames dropped because they were already delivered or already held."""
        self.gaps: int = 0
        """RequestRecovery actions emitted."""
        self.escalations: int = 0
        """Escalate actions emitted."""
        self.held_max: int = 0
        """Most frames ever held at once by a single stream."""

    # -- frames ------------------------------------------------------------------------------

    def receive(self, stream: Hashable, seq: int, item: Any, now: float) -> list[Action]:
        """Accept frame ``seq`` of ``stream`` carrying ``item``; return what to do about it."""
        st = self._streams.get(stream)
        if st is not None and not st.held:
            exp = st.expected
            if seq == exp:  # the hot path: in order, nothing held
                st.expected = exp + 1
                self.delivered += 1
                return [Deliver(stream, [item])]
        return self._receive(stream, st, seq, item, now)

    def receive_many(
        self, stream: Hashable, frames: Iterable[tuple[int, Any]], now: float
    ) -> list[Action]:
        """Like :meth:`receive` for each ``(seq, item)``, merging consecutive Delivers into one."""
        out: list[Action] = []
        pending: list[Any] | None = None
        st = self._streams.get(stream)
        delivered = 0
        for seq, item in frames:
            if st is not None and not st.held:
                exp = st.expected
                if seq == exp:
                    st.expected = exp + 1
                    delivered += 1
                    if pending is None:
                        pending = [item]
                    else:
                        pending.append(item)
                    continue
            for action in self._receive(stream, st, seq, item, now):
                if type(action) is Deliver:
                    if pending is None:
                        pending = action.items
                    else:
                        pending.extend(action.items)
                else:
                    if pending is not None:
                        out.append(Deliver(stream, pending))
                        pending = None
                    out.append(action)
            if st is None:
                st = self._streams.get(stream)
        self.delivered += delivered
        if pending is not None:
            out.append(Deliver(stream, pending))
        return out

    def _receive(
        self, stream: Hashable, st: _Stream | None, seq: int, item: Any, now: float
    ) -> list[Action]:
        """The general case of :meth:`receive`: new stream, duplicate, gap fill or early frame."""
        if type(seq) is not int:
            _check_seq("receive", seq)
        if st is None:
            st = self._streams[stream] = _Stream(seq)
        exp = st.expected
        if seq < exp:  # first, as A/B-line feeds make duplicates as common as frames
            self.duplicates += 1
            return []
        if seq == exp:
            return self._release(stream, st, item, now)
        held = st.held
        if seq in held:
            self.duplicates += 1
            return []
        if len(held) >= self.max_held:
            return [
                self._escalate(
                    stream,
                    st,
                    f"hold buffer full: {len(held)} frames held (max_held={self.max_held}) "
                    f"while waiting for seq {exp}; got seq {seq}",
                )
            ]
        held[seq] = item
        heappush(st.heap, seq)
        self.held_max = max(self.held_max, len(held))
        if stream in self._recovering:
            return []  # the outstanding recovery already covers the gap in front of `seq`
        out: list[Action] = []
        self._check_gap(stream, st, now, out)
        return out

    def _release(self, stream: Hashable, st: _Stream, item: Any, now: float) -> list[Action]:
        """Deliver ``item`` (seq == expected) plus the held frames contiguous after it."""
        items = [item]
        nxt = st.expected + 1
        held = st.held
        if held:
            pop = held.pop
            value = pop(nxt, _MISSING)
            while value is not _MISSING:
                items.append(value)
                nxt += 1
                value = pop(nxt, _MISSING)
            heap = st.heap
            while heap and heap[0] < nxt:
                heappop(heap)
        st.expected = nxt
        self.delivered += len(items)
        out: list[Action] = [Deliver(stream, items)]
        self._check_gap(stream, st, now, out)
        return out

    def _check_gap(self, stream: Hashable, st: _Stream, now: float, out: list[Action]) -> None:
        """Start, continue or end ``stream``'s recovery to match what it holds now."""
        if not st.held:
            self._recovering.pop(stream, None)
            return
        last = st.heap[0] - 1  # the gap is expected..last, in front of the lowest held frame
        if stream not in self._recovering:
            now = _check_now(now)
            self._now = max(self._now, now)
            deadline = max(now + self.recovery_timeout, self._last_deadline)
            self._last_deadline = deadline
            self._recovering[stream] = deadline
        elif last <= st.requested_hi:
            return  # already asked for; keep waiting (and keep the deadline)
        st.requested_hi = last
        self.gaps += 1
        out.append(RequestRecovery(stream, st.expected, last))

    def _escalate(self, stream: Hashable, st: _Stream, reason: str) -> Escalate:
        """Drop ``stream``'s held frames and recovery; ``expected`` stays where it was."""
        st.held.clear()
        st.heap.clear()
        st.requested_hi = st.expected - 1
        self._recovering.pop(stream, None)
        self.escalations += 1
        return Escalate(stream, reason)

    # -- time --------------------------------------------------------------------------------

    def poll(self, now: float) -> list[Action]:
        """Escalate every stream whose recovery deadline is at or before ``now``."""
        now = _check_now(now)
        self._now = max(self._now, now)
        out: list[Action] = []
        recovering = self._recovering
        while recovering:
            stream, deadline = next(iter(recovering.items()))
            if deadline > now:
                break
            st = self._streams[stream]
            out.append(
                self._escalate(
                    stream,
                    st,
                    f"recovery timed out after {self.recovery_timeout}s waiting for seq "
                    f"{st.expected} ({len(st.held)} frames held)",
                )
            )
        return out

    def next_deadline(self) -> float | None:
        """The earliest outstanding recovery deadline (when :meth:`poll` has work), or None."""
        for deadline in self._recovering.values():
            return deadline
        return None

    # -- streams -----------------------------------------------------------------------------

    def expect(self, stream: Hashable, next_seq: int, now: float | None = None) -> list[Action]:
        """Set ``stream``'s next expected seq (after a subscribe or snapshot); cancel its recovery.

        Held frames below ``next_seq`` are dropped. Held frames at or above it are kept (live
        updates buffered while a snapshot was fetched): those now contiguous come back in a
        Deliver, and a gap still in front of the rest starts a new recovery at ``now`` (default:
        the latest time the tracker has seen). Usually nothing is held and the result is
        ``[]``. Call :meth:`forget` first to drop everything, e.g. when numbering restarts.
        """
        _check_seq("expect", next_seq)
        if now is None:
            now = self._now
        elif _check_now(now) > self._now:
            self._now = now
        st = self._streams.get(stream)
        if st is None:
            self._streams[stream] = _Stream(next_seq)
            return []
        self._recovering.pop(stream, None)
        st.expected = next_seq
        st.requested_hi = next_seq - 1
        held = st.held
        if not held:
            return []
        if min(st.heap) < next_seq:
            st.held = held = {seq: item for seq, item in held.items() if seq >= next_seq}
            st.heap = list(held)
            heapify(st.heap)
        item = held.pop(next_seq, _MISSING)
        if item is not _MISSING:
            return self._release(stream, st, item, now)
        out: list[Action] = []
        self._check_gap(stream, st, now, out)
        return out

    def forget(self, stream: Hashable) -> None:
        """Drop everything known about ``stream``; its next frame starts it afresh."""
        self._streams.pop(stream, None)
        self._recovering.pop(stream, None)

    def streams(self) -> list[Hashable]:
        """The streams currently tracked."""
        return list(self._streams)

    def expected(self, stream: Hashable) -> int | None:
        """The next seq ``stream`` will deliver, or None for an unknown stream."""
        st = self._streams.get(stream)
        return None if st is None else st.expected

    def held(self, stream: Hashable) -> int:
        """How many frames ``stream`` holds beyond a gap."""
        st = self._streams.get(stream)
        return 0 if st is None else len(st.held)

    def recovering(self, stream: Hashable) -> bool:
        """True while ``stream`` has an outstanding recovery (something held)."""
        return stream in self._recovering

    def stats(self) -> dict[str, int]:
        """Counters: delivered, duplicates, gaps (recovery requests), escalations, held_max."""
        return {
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "escalations": self.escalations,
            "held_max": self.held_max,
        }

    def __repr__(self) -> str:
        return (
            f"SequenceTracker(streams={len(self._streams)}, "
            f"recovering={len(self._recovering)}, {self.stats()})"
        )


class LatestFilter:
    """Ordering.LATEST: per key, only an order newer than the last one passed gets through.

    Older and repeated orders are counted (``stale``) and dropped; gaps are accepted. For
    last-value data, where a re-snapshot supersedes the updates it replaces. ``order`` is
    any totally ordered value (an int, or ``(epoch, seq)``). One filter serves the link's
    sequence actor and adapters that filter per subscription.
    """

    __slots__ = ("last", "stale")

    def __init__(self) -> None:
        self.last: dict[Hashable, Any] = {}
        self.stale = 0

    def accept(self, key: Hashable, order: Any) -> bool:
        """True (and remembered) if ``order`` is newer than the last order of ``key``."""
        last = self.last
        prev = last.get(key)
        if prev is not None and order <= prev:
            self.stale += 1
            return False
        last[key] = order
        return True

    def forget(self, key: Hashable) -> None:
        self.last.pop(key, None)

    def __len__(self) -> int:
        return len(self.last)
