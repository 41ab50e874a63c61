"""Mailboxes: the spec a user passes to ``spawn`` and the inboxes the actor loop drains.

An inbox belongs to an actor's stable address, not to one incarnation: a restarted actor
takes over the same inbox, so messages told while it restarts are held and delivered.
Two implementations share one interface: an unbounded one on ``queue.SimpleQueue`` (the C
queue, several times cheaper than ``queue.Queue`` on both ends) and a bounded one with an
overflow policy.
"""

from __future__ import annotations

import enum
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from pykka._envelope import Envelope

__all__ = ["Mailbox", "MailboxFull", "Overflow"]


class Overflow(enum.Enum):
    """What a bounded mailbox does with a message that does not fit."""

    BACKPRESSURE = "backpressure"
    """Block the sender until there is room, up to ``put_timeout``; then raise MailboxFull."""
    DROP_OLDEST = "drop_oldest"
    """Evict the oldest waiting message (counted) to make room."""
    DROP_NEWEST = "drop_newest"
    """Discard the incoming message (counted)."""
    CONFLATE = "conflate"
    """Keep only the latest message per ``key(message)``, in the slot of the first one."""
    FAIL = "fail"
    """Raise MailboxFull to the sender at once."""


class MailboxFull(Exception):
    """A bounded mailbox refused a message (FAIL policy, or BACKPRESSURE timed out)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """How an actor's mailbox is bounded and what happens on overflow.

    ``capacity=None`` is unbounded. ``key`` is required for CONFLATE and maps a message to
    the key it conflates on (e.g. the instrument symbol of a price). Asks and system
    messages are never conflated or dropped by policy.
    """

    capacity: int | None = None
    overflow: Overflow = Overflow.BACKPRESSURE
    put_timeout: float | None = 5.0
    key: Callable[[Any], Hashable] | None = None

    def __post_init__(self) -> None:
        if self.capacity is not None and (
            not isinstance(self.capacity, int)
            or isinstance(self.capacity, bool)
            or self.capacity < 1
        ):
            raise ValueError(
                f"Mailbox capacity must be a positive int or None, got {self.capacity!r}"
            )
        if not isinstance(self.overflow, Overflow):
            try:
                object.__setattr__(self, "overflow", Overflow(str(self.overflow).lower()))
            except ValueError:
                names = ", ".join(o.name for o in Overflow)
                raise ValueError(
                    f"Mailbox overflow must be one of {names}, got {self.overflow!r}"
                ) from None
        if self.put_timeout is not None and self.put_timeout < 0:
            raise ValueError(f"Mailbox put_timeout must be >= 0 or None, got {self.put_timeout!r}")
        if self.overflow is Overflow.CONFLATE and self.key is None:
            raise ValueError("Mailbox overflow CONFLATE needs key=callable(message) -> key")
        if self.key is not None and not callable(self.key):
            raise TypeError(f"Mailbox key must be callable, got {self.key!r}")

    @property
    def is_fast(self) -> bool:
        """True when the unbounded SimpleQueue inbox serves this spec."""
        return self.capacity is None and self.overflow is not Overflow.CONFLATE


RejectFn = Callable[[Envelope[Any], str], None]
"""Called with an envelope that could not be delivered and why (dead letters)."""
DropFn = Callable[[Envelope[Any], str], None]
"""Called with an envelope dropped by the overflow policy."""


class Inbox:
    """The interface the actor loop and addresses use; see the two implementations."""

    dropped: int

    def put(self, envelope: Envelope[Any], /, timeout: float | None = -1.0) -> None:
        raise NotImplementedError

    def put_system(self, envelope: Envelope[Any]) -> None:
        raise NotImplementedError

    def put_many(self, messages: list[Any]) -> int:
        """Tell each message in order; returns how many a bounded mailbox refused (each
        counted as dropped) instead of raising MailboxFull part-way through."""
        put = self.put
        refused = 0
        for message in messages:
            try:
                put(Envelope(message))
            except MailboxFull:
                refused += 1
                self.dropped += 1
        return refused

    def drain(self, limit: int) -> list[Envelope[Any]]:
        raise NotImplementedError

    def qsize(self) -> int:
        raise NotImplementedError

    def hold(self, limit: int | None) -> None:
        """While set, accept at most ``limit`` waiting messages (the actor is restarting)."""
        raise NotImplementedError

    def close(self) -> list[Envelope[Any]]:
        """Refuse further puts (they go to ``reject``) and return what was waiting."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    # pykka's ActorInbox protocol, so pykka's own ActorRef keeps working.
    def get(self) -> Envelope[Any]:
        return self.drain(1)[0]

    def empty(self) -> bool:
        return self.qsize() == 0


class FastInbox(Inbox):
    """Unbounded inbox on ``queue.SimpleQueue``; lock-free close protocol.

    close() sets the flag and then drains; a put that raced the close re-checks the flag
    after its put and drains what it left, so nothing stays stranded in a closed inbox.
    """

    __slots__ = ("_closed", "_hold", "_q", "_reject", "dropped")

    def __init__(self, reject: RejectFn) -> None:
        self._q: queue.SimpleQueue[Envelope[Any]] = queue.SimpleQueue()
        self._closed = False
        self._hold: int | None = None
        self._reject = reject
        self.dropped = 0

    def put(self, envelope: Envelope[Any], /, timeout: float | None = -1.0) -> None:
        if self._closed:
            self._reject(envelope, "actor is dead")
            return
        if self._hold is not None and self._q.qsize() >= self._hold:
            self._reject(envelope, "hold limit reached while the actor restarts")
            return
        self._q.put(envelope)
        if self._closed:
            self._flush_closed()

    def put_system(self, envelope: Envelope[Any]) -> None:
        if self._closed:
            self._reject(envelope, "actor is dead")
            return
        self._q.put(envelope)
        if self._closed:
            self._flush_closed()

    def put_many(self, messages: list[Any]) -> int:
        if self._closed or self._hold is not None:
            return super().put_many(messages)  # the checked path, message by message
        put = self._q.put
        for message in messages:
            put(Envelope(message))
        if self._closed:
            self._flush_closed()
        return 0

    def drain(self, limit: int) -> list[Envelope[Any]]:
        q = self._q
        items = [q.get()]
        # Single consumer: everything counted by qsize() is there to take.
        n = min(q.qsize(), limit - 1)
        get = q.get_nowait
        items.extend(get() for _ in range(n))
        return items

    def qsize(self) -> int:
        return self._q.qsize()

    def hold(self, limit: int | None) -> None:
        self._hold = limit

    def close(self) -> list[Envelope[Any]]:
        self._closed = True
        return self._take_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def _take_all(self) -> list[Envelope[Any]]:
        out = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out

    def _flush_closed(self) -> None:
        for env in self._take_all():
            self._reject(env, "actor is dead")


class _Key:
    """A conflation slot in the queue: the latest envelope for ``key`` lives in a dict."""

    __slots__ = ("key",)

    def __init__(self, key: Hashable) -> None:
        self.key = key


class BoundedInbox(Inbox):
    """Bounded inbox with an overflow policy; asks and system messages are never dropped."""

    def __init__(self, spec: Mailbox, reject: RejectFn, drop: DropFn) -> None:
        self._spec = spec
        self._capacity = spec.capacity
        self._policy = spec.overflow
        self._key = spec.key if spec.overflow is Overflow.CONFLATE else None
        self._items: deque[Envelope[Any] | _Key | _System] = deque()
        self._latest: dict[Hashable, Envelope[Any]] = {}
        self._count = 0  # user messages waiting (what capacity bounds)
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self._hold: int | None = None
        self._reject = reject
        self._drop = drop
        self.dropped = 0

    def _limit(self) -> int | None:
        cap, hold = self._capacity, self._hold
        if hold is None:
            return cap
        return hold if cap is None else min(cap, hold)

    def put(self, envelope: Envelope[Any], /, timeout: float | None = -1.0) -> None:
        """Put a user message; ``timeout=-1`` means the spec's put_timeout."""
        evicted: Envelope[Any] | None = None
        with self._lock:
            if self._closed:
                rejected = "actor is dead"
            else:
                rejected = ""
                key_fn = self._key
                if key_fn is not None and envelope.reply_to is None:
                    key = key_fn(envelope.message)
                    if key not in self._latest:
                        limit = self._limit()
                        if limit is not None and self._count >= limit:
                            # May wait for room, releasing the lock: another sender can
                            # queue this key meanwhile, so the check below is re-done.
                            rejected, _ = self._overflow(envelope, timeout)
                    if not rejected:
                        old = self._latest.get(key)
                        self._latest[key] = envelope
                        if old is not None:  # conflate into the key's existing slot
                            self.dropped += 1
                            evicted = old
                        else:
                            self._items.append(_Key(key))
                            self._count += 1
                        self._not_empty.notify()
                else:
                    limit = self._limit()
                    if limit is not None and self._count >= limit:
                        rejected, evicted = self._overflow(envelope, timeout)
                    if not rejected and evicted is not envelope:
                        self._items.append(envelope)
                        self._count += 1
                        self._not_empty.notify()
        if rejected:
            self._reject(envelope, rejected)
        elif evicted is not None:
            self._drop(evicted, f"mailbox overflow ({self._policy.name})")

    def _full_message(self) -> str:
        return (
            f"mailbox full (capacity {self._capacity}, overflow {self._policy.name}, "
            f"{self._count} waiting)"
        )

    def _wait_room(self, timeout: float | None) -> bool:
        limit = self._limit()
        if limit is None or self._count < limit:
            return True
        if self._policy is Overflow.FAIL:
            return False
        if timeout is not None and timeout < 0:
            timeout = self._spec.put_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._count >= (self._limit() or self._count + 1) and not self._closed:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._not_full.wait(remaining)
        return not self._closed

    def _overflow(
        self, envelope: Envelope[Any], timeout: float | None
    ) -> tuple[str, Envelope[Any] | None]:
        """Apply the policy to a full inbox: (reject reason, envelope dropped), lock held."""
        if self._hold is not None and self._count >= self._hold:
            return "hold limit reached while the actor restarts", None
        policy = self._policy
        if policy is Overflow.DROP_NEWEST and envelope.reply_to is None:
            self.dropped += 1
            return "", envelope
        if policy is Overflow.DROP_OLDEST:
            oldest = self._evict_oldest()
            if oldest is not None:
                self.dropped += 1
                return "", oldest
        # CONFLATE full of distinct keys pushes back: losing a whole key is never right.
        if policy in (Overflow.BACKPRESSURE, Overflow.CONFLATE):
            if self._wait_room(timeout):
                return "", None
            if self._closed:
                # The actor died while the sender waited: a dead letter, not "full".
                return "actor is dead", None
        # FAIL, a timed-out wait, or an ask that a drop policy may not discard.
        raise MailboxFull(self._full_message())

    def _evict_oldest(self) -> Envelope[Any] | None:
        items = self._items
        for i, item in enumerate(items):
            if isinstance(item, _Key):
                del items[i]
                self._count -= 1
                return self._latest.pop(item.key)
            if isinstance(item, Envelope) and item.reply_to is None:
                del items[i]
                self._count -= 1
                return item
        return None

    def put_many(self, messages: list[Any]) -> int:
        """Tell each message in order: as many as there is room for under one lock and one
        wake-up, the rest one by one through the overflow policy (conflating inboxes take
        the one-by-one path throughout)."""
        if self._key is not None or not messages:
            return super().put_many(messages)
        done = 0
        with self._lock:
            if not self._closed:
                limit = self._limit()
                room = len(messages) if limit is None else limit - self._count
                if room > 0:
                    batch = messages if room >= len(messages) else messages[:room]
                    self._items.extend([Envelope(m) for m in batch])
                    done = len(batch)
                    self._count += done
                    self._not_empty.notify()
        if done == len(messages):
            return 0
        return super().put_many(messages[done:])

    def put_system(self, envelope: Envelope[Any]) -> None:
        with self._lock:
            if not self._closed:
                self._items.append(_System(envelope))
                self._not_empty.notify()
                return
        self._reject(envelope, "actor is dead")

    def drain(self, limit: int) -> list[Envelope[Any]]:
        out: list[Envelope[Any]] = []
        with self._lock:
            items = self._items
            while not items:
                self._not_empty.wait()
            while items and len(out) < limit:
                item = items.popleft()
                if isinstance(item, _Key):
                    out.append(self._latest.pop(item.key))
                    self._count -= 1
                elif isinstance(item, _System):
                    out.append(item.envelope)
                else:
                    out.append(item)
                    self._count -= 1
            self._not_full.notify_all()
        return out

    def qsize(self) -> int:
        return len(self._items)

    def hold(self, limit: int | None) -> None:
        with self._lock:
            self._hold = limit
            self._not_full.notify_all()

    def close(self) -> list[Envelope[Any]]:
        with self._lock:
            self._closed = True
            out: list[Envelope[Any]] = []
            for item in self._items:
                if isinstance(item, _Key):
                    out.append(self._latest.pop(item.key))
                elif isinstance(item, _System):
                    out.append(item.envelope)
                else:
                    out.append(item)
            self._items.clear()
            self._count = 0
            self._not_full.notify_all()
        return out

    @property
    def closed(self) -> bool:
        return self._closed


class _System:
    """A system message in a bounded inbox: not counted against capacity, never dropped."""

    __slots__ = ("envelope",)

    def __init__(self, envelope: Envelope[Any]) -> None:
        self.envelope = envelope


def build_inbox(spec: Mailbox | None, reject: RejectFn, drop: DropFn) -> Inbox:
    """Make the inbox that serves ``spec`` (unbounded by default)."""
    if spec is None or spec.is_fast:
        return FastInbox(reject)
    return BoundedInbox(spec, reject, drop)
