"""Mailboxes: the spec a user passes to ``spawn`` and the inboxes the actor loop drains.

An inbox belongs to an actor's stable address, not to one incarnation: a restarted actor
takes over the same inbox, so messages told while it restarts are held and delivered.
Two implementations share one interface: an unbounded one on a ``deque`` (appends and
pops are atomic, so neither end takes a lock) and a bounded one with an overflow policy.
Draining never blocks: an actor with nothing to do is not running at all (its dispatcher
schedules it when a message arrives).
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from pykka._envelope import Envelope

from .dispatcher import blocking, in_pool, may_block
from .errors import ActorwireError

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


class MailboxFull(ActorwireError):
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


Item = Any
"""What an inbox queues and ``drain`` returns: an ``Envelope`` (a tell, an ask or a system
message), or a ``list`` of told messages queued by one ``tell_many``."""
RejectFn = Callable[[Envelope[Any], str], None]
"""Called with an envelope that could not be delivered and why (dead letters)."""
DropFn = Callable[[Envelope[Any], str], None]
"""Called with an envelope dropped by the overflow policy."""

HOLD_FULL = "hold limit reached while the actor restarts"

_HOLD = threading.Condition()
"""Shared by every inbox: senders waiting for a restarting actor's hold to open. Holds are
rare and short, so one condition costs less than one per actor."""


def _expand(items: list[Item]) -> list[Envelope[Any]]:
    """Items as envelopes (a batch becomes one envelope per message): for dead letters."""
    out: list[Envelope[Any]] = []
    for item in items:
        if item.__class__ is list:
            out.extend(Envelope(m) for m in item)
        else:
            out.append(item)
    return out


class Inbox:
    """The interface the actor loop and addresses use; see the two implementations.

    Every put wakes the owning cell (``cell.token`` / ``cell.schedule()``): a put to an
    idle actor schedules it on its dispatcher. Depth and capacity count messages, not
    items: a batch of 500 from one ``tell_many`` counts 500.
    """

    dropped: int
    """Messages the overflow policy dropped."""
    lost: int
    """Messages refused while the actor restarted (its hold full): also dead letters."""
    items: deque[Any]
    """The queue itself: truthy while anything waits."""
    taken: int
    """Messages drained so far (the one consumer updates it)."""
    _cell: Any

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

    def drain(self, limit: int) -> list[Item]:
        """Take what waits, up to about ``limit`` messages (a batch is taken whole)."""
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

    # pykka's ActorInbox protocol (``put`` above), so pykka's own ActorRef keeps working.
    def empty(self) -> bool:
        return self.qsize() == 0

    def _wake(self) -> None:
        cell = self._cell
        if cell.token:
            cell.schedule()


class FastInbox(Inbox):
    """Unbounded inbox on a ``deque`` (appends and pops are atomic); lock-free close.

    close() sets the flag and then drains; a put that raced the close re-checks the flag
    after its put and drains what it left, so nothing stays stranded in a closed inbox.
    The one consumer is the actor's current turn, so ``drain`` needs no lock either.
    """

    __slots__ = (
        "_batch_lock",
        "_cell",
        "_closed",
        "_extra",
        "_hold",
        "_hold_timeout",
        "_q",
        "_reject",
        "dropped",
        "items",
        "lost",
        "taken",
    )

    def __init__(self, cell: Any, reject: RejectFn, hold_timeout: float | None) -> None:
        self._q: deque[Item] = deque()
        self.items = self._q
        self._cell = cell
        self._closed = False
        self._hold: int | None = None
        self._hold_timeout = hold_timeout
        self._reject = reject
        self._extra = 0  # messages beyond one per queued batch
        self._batch_lock = threading.Lock()
        self.dropped = 0
        self.lost = 0
        self.taken = 0

    def put(self, envelope: Envelope[Any], /, timeout: float | None = -1.0) -> None:
        if self._closed:
            self._reject(envelope, "actor is dead")
            return
        hold = self._hold
        if hold is not None and len(self._q) + self._extra >= hold:
            if not self._put_held(envelope, timeout):
                return
        else:
            self._q.append(envelope)
        if self._closed:
            self._flush_closed()
            return
        token = self._cell.token
        if token:  # an idle actor: whoever pops its token queues its turn
            try:
                token.pop()
            except IndexError:
                return
            self._cell.submit(self._cell)

    def _put_held(self, envelope: Envelope[Any], timeout: float | None) -> bool:
        """The actor restarts and its hold is full. A plain thread waits for the new
        incarnation (bounded); an actor on a pool never waits for an unbounded mailbox (it
        would stall everything it feeds): the message goes past the hold; a thread that
        must never block gets a counted loss. True once queued."""
        if in_pool():
            self._q.append(envelope)
            return True
        if timeout is not None and timeout < 0:
            timeout = self._hold_timeout
        if timeout != 0 and may_block():
            deadline = None if timeout is None else time.monotonic() + timeout
            with _HOLD:
                while True:
                    hold = self._hold
                    if self._closed or hold is None or len(self._q) + self._extra < hold:
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    _HOLD.wait(remaining)
                hold = self._hold
                if not self._closed and (hold is None or len(self._q) + self._extra < hold):
                    self._q.append(envelope)
                    return True
        if self._closed:
            self._reject(envelope, "actor is dead")
            return False
        self.lost += 1
        self._reject(envelope, HOLD_FULL)
        return False

    def put_system(self, envelope: Envelope[Any]) -> None:
        if self._closed:
            self._reject(envelope, "actor is dead")
            return
        self._q.append(envelope)
        if self._closed:
            self._flush_closed()
            return
        cell = self._cell
        if cell.token:
            cell.schedule()

    def put_many(self, messages: list[Any]) -> int:
        n = len(messages)
        if n == 0:
            return 0
        if self._closed or self._hold is not None:
            return super().put_many(messages)  # the checked path, message by message
        if n == 1:
            self._q.append(Envelope(messages[0]))
        else:
            with self._batch_lock:
                self._extra += n - 1
            self._q.append(list(messages))  # a copy: the caller may reuse its list
        if self._closed:
            self._flush_closed()
            return 0
        cell = self._cell
        if cell.token:
            cell.schedule()
        return 0

    def drain(self, limit: int) -> list[Item]:
        q = self._q
        out: list[Item] = []
        taken = 0
        extra = 0
        popleft = q.popleft
        append = out.append
        while q and taken < limit:
            try:
                item = popleft()
            except IndexError:  # emptied by a close() racing an abandoned turn
                break
            append(item)
            if item.__class__ is list:
                k = len(item)
                taken += k
                extra += k - 1
            else:
                taken += 1
        self.taken += taken
        if extra:
            with self._batch_lock:
                self._extra -= extra
        return out

    def qsize(self) -> int:
        return max(len(self._q) + self._extra, 0)

    def __bool__(self) -> bool:
        return bool(self._q)

    def hold(self, limit: int | None) -> None:
        with _HOLD:
            self._hold = limit
            _HOLD.notify_all()

    def close(self) -> list[Envelope[Any]]:
        self._closed = True
        with _HOLD:
            _HOLD.notify_all()
        return self._take_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def _take_all(self) -> list[Envelope[Any]]:
        items: list[Item] = []
        while True:
            try:
                items.append(self._q.popleft())
            except IndexError:
                break
        with self._batch_lock:
            self._extra = 0
        return _expand(items)

    def _flush_closed(self) -> None:
        for env in self._take_all():
            self._reject(env, "actor is dead")


class _Key:
    """A conflation slot in the queue: the latest envelope for ``key`` lives in a dict."""

    __slots__ = ("key",)

    def __init__(self, key: Hashable) -> None:
        self.key = key


class _System:
    """A system message in a bounded inbox: not counted against capacity, never dropped."""

    __slots__ = ("envelope",)

    def __init__(self, envelope: Envelope[Any]) -> None:
        self.envelope = envelope


class BoundedInbox(Inbox):
    """Bounded inbox with an overflow policy; asks and system messages are never dropped.

    While the actor restarts, its hold bounds the inbox too and the overflow policy applies
    to it: under BACKPRESSURE or CONFLATE a sender that may block waits for the new
    incarnation (one on a pool is replaced on its worker meanwhile), one that must not (the
    I/O loop, a timer) is refused; a drop policy drops. What is refused is counted (``lost``)
    and dead-lettered.
    """

    def __init__(self, spec: Mailbox, cell: Any, reject: RejectFn, drop: DropFn) -> None:
        self._spec = spec
        self._cell = cell
        self._capacity = spec.capacity
        self._policy = spec.overflow
        self._key = spec.key if spec.overflow is Overflow.CONFLATE else None
        self._items: deque[Envelope[Any] | _Key | _System | list[Any]] = deque()
        self.items = self._items
        self._latest: dict[Hashable, Envelope[Any]] = {}
        self._count = 0  # user messages waiting (what capacity bounds)
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self._hold: int | None = None
        self._reject = reject
        self._drop = drop
        self._system = 0  # system messages waiting (not counted against capacity)
        self.dropped = 0
        self.lost = 0
        self.taken = 0

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
                else:
                    limit = self._limit()
                    if limit is not None and self._count >= limit:
                        rejected, evicted = self._overflow(envelope, timeout)
                    if not rejected and evicted is not envelope:
                        self._items.append(envelope)
                        self._count += 1
        if rejected:
            self._reject(envelope, rejected)
            return
        if evicted is not None:
            self._drop(evicted, f"mailbox overflow ({self._policy.name})")
        self._wake()

    def _full_message(self) -> str:
        return (
            f"mailbox full (capacity {self._capacity}, overflow {self._policy.name}, "
            f"{self._count} waiting)"
        )

    def _wait_room(self, timeout: float | None) -> bool:
        """Wait (lock held; released while waiting) until a message fits; False on timeout."""
        limit = self._limit()
        if limit is None or self._count < limit:
            return True
        if timeout is not None and timeout < 0:
            timeout = self._spec.put_timeout
        if timeout == 0 or not may_block():
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with blocking():
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
        policy = self._policy
        held = self._hold is not None and (self._capacity is None or self._hold < self._capacity)
        if policy is Overflow.DROP_NEWEST and envelope.reply_to is None:
            self.dropped += 1
            return "", envelope
        if policy is Overflow.DROP_OLDEST:
            oldest = self._evict_oldest()
            if oldest is not None:
                self.dropped += 1
                return "", oldest
        # CONFLATE full of distinct keys pushes back: losing a whole key is never right.
        # A restarting actor's full hold makes every sender that may block wait.
        if held or policy in (Overflow.BACKPRESSURE, Overflow.CONFLATE):
            if self._wait_room(timeout):
                return "", None
            if self._closed:
                # The actor died while the sender waited: a dead letter, not "full".
                return "actor is dead", None
            if held and self._hold is not None and self._count >= self._hold:
                self.lost += 1
                return HOLD_FULL, None
        # FAIL, a timed-out wait, or an ask that a drop policy may not discard.
        raise MailboxFull(self._full_message())

    def _evict_oldest(self) -> Envelope[Any] | None:
        items = self._items
        for i, item in enumerate(items):
            if item.__class__ is _Key:
                assert isinstance(item, _Key)
                del items[i]
                self._count -= 1
                return self._latest.pop(item.key)
            if item.__class__ is list:
                assert isinstance(item, list)
                message = item.pop(0)
                if not item:
                    del items[i]
                self._count -= 1
                return Envelope(message)
            if item.__class__ is Envelope:
                assert isinstance(item, Envelope)
                if item.reply_to is None:
                    del items[i]
                    self._count -= 1
                    return item
        return None

    def put_many(self, messages: list[Any]) -> int:
        """Tell each message in order: as many as there is room for as one item under one
        lock and one wake-up, the rest one by one through the overflow policy (conflating
        inboxes take the one-by-one path throughout)."""
        if self._key is not None or not messages:
            return super().put_many(messages)
        done = 0
        with self._lock:
            if not self._closed:
                limit = self._limit()
                room = len(messages) if limit is None else limit - self._count
                if room > 0:
                    batch = list(messages) if room >= len(messages) else messages[:room]
                    done = len(batch)
                    self._items.append(Envelope(batch[0]) if done == 1 else batch)
                    self._count += done
        if done:
            self._wake()
        if done == len(messages):
            return 0
        return super().put_many(messages[done:])

    def put_system(self, envelope: Envelope[Any]) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._items.append(_System(envelope))
                self._system += 1
        if closed:
            self._reject(envelope, "actor is dead")
        else:
            self._wake()

    def drain(self, limit: int) -> list[Item]:
        out: list[Item] = []
        with self._lock:
            items = self._items
            taken = 0
            while items and taken < limit:
                item = items.popleft()
                cls = item.__class__
                if cls is _Key:
                    assert isinstance(item, _Key)
                    out.append(self._latest.pop(item.key))
                    self._count -= 1
                    taken += 1
                elif cls is _System:
                    assert isinstance(item, _System)
                    out.append(item.envelope)
                    self._system -= 1
                    taken += 1
                elif cls is list:
                    assert isinstance(item, list)
                    out.append(item)
                    self._count -= len(item)
                    taken += len(item)
                else:
                    out.append(item)
                    self._count -= 1
                    taken += 1
            if out:
                self.taken += taken
                self._not_full.notify_all()
        return out

    def qsize(self) -> int:
        return self._count + self._system

    def __bool__(self) -> bool:
        return bool(self._items)

    def hold(self, limit: int | None) -> None:
        with self._lock:
            self._hold = limit
            self._not_full.notify_all()

    def close(self) -> list[Envelope[Any]]:
        with self._lock:
            self._closed = True
            out: list[Item] = []
            for item in self._items:
                if isinstance(item, _Key):
                    out.append(self._latest.pop(item.key))
                elif isinstance(item, _System):
                    out.append(item.envelope)
                else:
                    out.append(item)
            self._items.clear()
            self._count = 0
            self._system = 0
            self._not_full.notify_all()
        return _expand(out)

    @property
    def closed(self) -> bool:
        return self._closed


def build_inbox(
    spec: Mailbox | None,
    cell: Any,
    reject: RejectFn,
    drop: DropFn,
    hold_timeout: float | None = 10.0,
) -> Inbox:
    """Make the inbox that serves ``spec`` (unbounded by default)."""
    if spec is None or spec.is_fast:
        return FastInbox(cell, reject, hold_timeout)
    return BoundedInbox(spec, cell, reject, drop)
