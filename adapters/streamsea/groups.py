"""stream-sea's stream logs and consumer groups, sans-I/O: the embedded server's delivery rules.

Time is passed in; nothing here locks, sleeps or logs (:meth:`Groups.take_notices` hands what
is worth a log line to the caller). The rules:

1. **Logs.** Each stream has a :class:`StreamLog`: every message published gets the next seq
   (from 1) and is kept until the log passes ``max_bytes`` (each entry costs its length plus
   :data:`ENTRY_OVERHEAD`); then the oldest go. The newest entry always stays, so the seq
   count survives any trim.
2. **Groups.** A subscription joins a consumer group, keyed ``(stream, group)``: its
   ``groupId``, or ``"default:" + client_id`` without one (so instances of a client compete),
   or a fresh group of its own (``solo``, a JWT's ``mustFanout``). Members of a group compete:
   each message goes to exactly one live member, round robin. A group's ``cursor`` is the last
   seq it dispatched; what is published while no member can take it waits in the log, and the
   next member able to gets it (from ``cursor + 1``): a group resumes after a reconnect.
3. **Flow.** A member takes what its ``budget`` allows (bytes: each delivery costs its payload
   plus :data:`DELIVERY_OVERHEAD` and the stream's name); at zero it is skipped and what it
   would have had waits in the log, until :meth:`Groups.set_budget` gives it room again. The
   server sets budgets from its connections' outboxes, so a reader that falls behind is paced,
   never flooded, and a long backlog costs no memory beyond the log.
4. **A new group** starts after the log's last seq (new messages only), or after the
   subscribe's ``afterSeq`` when its ``epoch`` is this one's and the log still holds the seq
   after it.
5. **Exactly once across drops** (the protocol has no acks). Every seq dispatched to a member
   is unconfirmed for it. A member that leaves cleanly (unsubscribe) confirms them; one that
   drops leaves an *orphan*: its unconfirmed seqs, the seq it joined after and when it
   dropped. A client that comes back subscribes with ``afterSeq`` A, the last seq it got in
   the group (or the start seq it was given); such a join is *consistent* with an orphan when
   A is one of its seqs or its ``joined_after``. Consistent with exactly one: the member
   inherits it: the orphan's seqs above A come to it first, in order; those up to A count as
   received. Consistent with several: the member waits (is sent nothing) as a claimant until
   the choice is forced: only one consistent orphan is left for it, or the claimants are as
   many as the orphans left, so every orphan left is a claimant's and a consistent matching is
   harmless (claimants with one A hold nothing above A of each other's orphans). An orphan
   unclaimed for ``rejoin_grace`` seconds goes to the group's live members with
   ``redelivered`` set (at least once, for a member that never comes back; without live
   members it waits, still claimable); claimants it may belong to are released, at least
   once too. A seq that fell out of the log before it could go out again is lost: counted and
   noticed, never silent.
6. **Takeover** (a client back before the server saw its old connection drop: half-open).
   A join with ``afterSeq`` A (this epoch) *matches* a live member of the group, not a
   claimant, when both have the same client and A is one of the seqs that member was sent
   as its own (not ``redelivered``: those were another member's first) or its
   ``joined_after``. Matching exactly one, while no orphan of that client is consistent
   with A and A is no expired orphan's ``joined_after`` (the joiner may be that orphan's,
   come back late), the joiner takes the member over: the member leaves at once as dropped
   and the joiner inherits its orphan in the same step (rule 5: its seqs above A first,
   those up to A received). The caller ends the old member's subscription
   (:meth:`Groups.take_superseded`); its later ``leave`` is a no-op. Otherwise rule 5
   alone, as if nothing matched: the old member stays until its connection is seen to drop
   (what it was sent meanwhile goes round again after the grace, at least once).
7. **Start seq** (a subscribe reply's ``seq``): A when nothing after A is lost to the member
   (it inherited, or the group has everything after A), else the last seq before what the
   member will get, so the client can tell that it cannot know what it missed.
8. **Bounds.** At most ``max_streams`` logs and ``max_groups`` groups per stream (an idle
   group, one without members, is evicted first, oldest first; :class:`LimitError` when none
   is idle). Unconfirmed and orphan seqs are :class:`SeqSet` runs (a single member's are one
   run) pruned to what the log holds. Idle groups are forgotten after ``group_ttl`` seconds or
   once their cursor falls out of the log; a log made by a subscribe to an undefined stream
   goes with its last group.
9. **Persistence** (``journal=True``, for a store). What a store must hold to bring the
   groups back after a restart is handed out as :class:`Record` s, in order
   (:meth:`Groups.take_records`), for the caller to write before it sends what the same
   calls returned, so that the store says at least what was sent: a group made (its ``gid``
   and origin), a member (its persistent ``tag``, ``joined_after`` and client; a claimant's
   once its claim ends), each seq dispatched (its row names the member's tag, or
   :data:`REDELIVER_TAG` while it waits for redelivery), a member gone (a clean leave, an
   orphan inherited or expired: its rows count as confirmed, once an inherited orphan's
   seqs above A are re-tagged to the heir and an expired one's to :data:`REDELIVER_TAG`)
   and a group forgotten. A dropped member writes nothing: its row and its seqs' rows are
   its orphan. A row stays until the log drops its seq (the store trims it with the log)
   or its group is forgotten, so the highest seq a group dispatched is known. Solo groups
   are not written (nobody comes back to one). :meth:`Groups.restore` rebuilds the groups
   from the rows: each one's cursor the highest seq dispatched or joined after, every
   member an orphan dropped at the restart (the grace runs from it, and rule 5 lets each
   member of the old incarnation claim its own), seqs pruned to the log,
   :data:`REDELIVER_TAG` ones to redeliver.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import NamedTuple

__all__ = [
    "DEFAULT_GROUP_TTL",
    "DEFAULT_MAX_GROUPS",
    "DEFAULT_MAX_LOG_BYTES",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_REJOIN_GRACE",
    "DELIVERY_OVERHEAD",
    "ENTRY_OVERHEAD",
    "REDELIVER_TAG",
    "Dispatch",
    "Groups",
    "LimitError",
    "Notice",
    "Record",
    "SeqSet",
    "StreamLog",
    "default_group",
]

ENTRY_OVERHEAD = 64
"""Bytes a log entry costs beyond its payload's text (the string object and its slot)."""
DELIVERY_OVERHEAD = 96
"""Bytes a delivery adds to its payload on the wire, besides the stream's name: the envelope
(``{"id":..,"action":"subscription","streamName":..,"payload":..,"seq":..}``) and the frame
header, rounded up. Budgets count in these."""
DEFAULT_MAX_LOG_BYTES = 64 << 20
DEFAULT_MAX_STREAMS = 1024
DEFAULT_MAX_GROUPS = 4096
DEFAULT_REJOIN_GRACE = 10.0
DEFAULT_GROUP_TTL = 600.0

REDELIVER_TAG = 0
"""The tag of a stored seq that waits for redelivery to any member of its group (rule 9)."""

_MAX_RUNS = 4096  # runs a SeqSet may hold before it is pruned to the log at once


class LimitError(ValueError):
    """A join or a new stream past ``max_streams`` or ``max_groups``; the text says which."""


class Dispatch(NamedTuple):
    """Send ``seq`` of the member's stream (``payload_json``, its JSON text) to ``member``,
    under the member's subscription id; ``redelivered``: first sent to a member that dropped."""

    member: Hashable
    seq: int
    payload_json: str
    redelivered: bool = False


class Notice(NamedTuple):
    """Something the caller should log: ``event`` (``"lost"``, ``"redelivering"``,
    ``"group_forgotten"``), where, the seqs concerned (as :meth:`SeqSet.describe` text), how
    many (``size``) and why."""

    event: str
    stream: str
    group: str
    seqs: str
    size: int
    reason: str = ""


class Record(NamedTuple):
    """A change for a store to write before the dispatches of the same call go out (rule 9).
    ``kind`` and its ``args``, in this order:

    - ``"group"``: ``(gid, stream, group, origin)``, a group made;
    - ``"member"``: ``(gid, tag, joined_after, client)``, a member (written again, same tag,
      when it changes);
    - ``"sent"``: ``(stream, seq, gid, tag)``, the seq's row now names that member
      (:data:`REDELIVER_TAG`: it waits for redelivery);
    - ``"gone"``: ``(gid, tag)``, the member's row goes; its seqs' rows count as confirmed;
    - ``"retag"``: ``(new_tag, stream, low, high, gid, old_tag)``, the rows of ``old_tag``
      with seqs from ``low`` to ``high`` now name ``new_tag``;
    - ``"forget"``: ``(gid, stream, low, high)``, the group goes, and its rows with seqs from
      ``low`` to ``high`` (all it has in the log).
    """

    kind: str
    args: tuple[int | str, ...]


def default_group(client_id: str) -> str:
    """The group of a subscription without ``groupId``: one per client id."""
    return "default:" + client_id


# --------------------------------------------------------------------------- logs


class StreamLog:
    """One stream's messages by seq, bounded in bytes; drops the oldest (never the newest)."""

    __slots__ = ("_entries", "_first", "_head", "bytes", "dropped", "max_bytes", "name", "pinned")

    def __init__(self, name: str, max_bytes: int, *, start_after: int = 0, pinned: bool = False):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"StreamLog max_bytes must be an int >= 1, got {max_bytes!r}")
        if isinstance(start_after, bool) or not isinstance(start_after, int) or start_after < 0:
            raise ValueError(f"StreamLog start_after must be an int >= 0, got {start_after!r}")
        self.name = name
        self.max_bytes = max_bytes
        self.pinned = pinned
        """True for a defined stream (kept without groups); False for one a subscribe made."""
        self._entries: list[str] = []
        self._head = 0  # index of the first live entry (a list with a moving head: O(1) get)
        self._first = start_after + 1  # the seq of _entries[_head]
        self.bytes = 0
        """What the entries held cost (their lengths plus ENTRY_OVERHEAD each)."""
        self.dropped = 0
        """Entries dropped to stay within ``max_bytes``."""

    def __repr__(self) -> str:
        return (
            f"<StreamLog {self.name!r} seqs {self.first_seq}..{self.last_seq} "
            f"bytes={self.bytes}/{self.max_bytes}>"
        )

    def __len__(self) -> int:
        return len(self._entries) - self._head

    @property
    def first_seq(self) -> int:
        """The oldest seq held (``last_seq + 1`` while the log is empty)."""
        return self._first

    @property
    def last_seq(self) -> int:
        """The newest seq (0 before the first message)."""
        return self._first + len(self) - 1

    def append(self, payload_json: str) -> int:
        """Add a message; returns its seq. Trims the oldest past ``max_bytes``."""
        seq = self.last_seq + 1
        self._entries.append(payload_json)
        self.bytes += len(payload_json) + ENTRY_OVERHEAD
        if self.bytes > self.max_bytes:
            self._trim()
        return seq

    def first_after_append(self, size: int) -> int:
        """What ``first_seq`` will be once an entry of ``size`` characters is appended (so a
        store can write the append and the trim in one transaction, before either)."""
        over = self.bytes + size + ENTRY_OVERHEAD - self.max_bytes
        entries, i, first = self._entries, self._head, self._first
        end = len(entries)
        while over > 0 and i < end:  # the new entry itself is never dropped
            over -= len(entries[i]) + ENTRY_OVERHEAD
            i += 1
            first += 1
        return first

    def _trim(self) -> None:
        entries = self._entries
        while self.bytes > self.max_bytes and len(entries) - self._head > 1:
            self.bytes -= len(entries[self._head]) + ENTRY_OVERHEAD
            entries[self._head] = ""  # let the text go now, not at the next compaction
            self._head += 1
            self._first += 1
            self.dropped += 1
        if self._head > 4096 and self._head * 2 > len(entries):
            del entries[: self._head]
            self._head = 0

    def holds(self, seq: int) -> bool:
        return self._first <= seq <= self.last_seq

    def get(self, seq: int) -> str | None:
        """The payload JSON of ``seq``, None when the log does not hold it."""
        if not self._first <= seq <= self.last_seq:
            return None
        return self._entries[self._head + seq - self._first]

    def after(self, seq: int) -> Iterator[tuple[int, str]]:
        """``(seq, payload_json)`` of every entry held after ``seq``, oldest first (a
        snapshot: entries appended meanwhile are not seen)."""
        start = max(seq + 1, self._first)
        base = self._head - self._first
        for s in range(start, self.last_seq + 1):
            yield s, self._entries[base + s]


# --------------------------------------------------------------------------- seq sets


class SeqSet:
    """A set of seqs as arithmetic runs ``(start, step, count)``: what one member of a group
    got (every seq from a single member, one run; every k-th while k members share a group
    evenly, one run too). Seqs are added mostly in increasing order; any order works."""

    __slots__ = ("_len", "_runs")

    def __init__(self, seqs: Iterable[int] = ()) -> None:
        self._runs: list[tuple[int, int, int]] = []
        self._len = 0
        for seq in seqs:
            self.add(seq)

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __repr__(self) -> str:
        return f"SeqSet({self.describe()})"

    @property
    def runs(self) -> int:
        """How many runs hold the set (its memory, roughly)."""
        return len(self._runs)

    def add(self, seq: int) -> None:
        """Add ``seq`` (not already in the set)."""
        runs = self._runs
        if runs:
            start, step, count = runs[-1]
            if count == 1 and seq > start:
                runs[-1] = (start, seq - start, 2)
                self._len += 1
                return
            if seq == start + step * count:
                runs[-1] = (start, step, count + 1)
                self._len += 1
                return
        runs.append((seq, 1, 1))
        self._len += 1

    def update(self, other: SeqSet) -> None:
        """Add every seq of ``other`` (disjoint from this set)."""
        self._runs.extend(other._runs)
        self._len += other._len

    def clear(self) -> None:
        self._runs.clear()
        self._len = 0

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        for start, step, count in self._runs:
            if start <= seq <= start + step * (count - 1) and (seq - start) % step == 0:
                return True
        return False

    def __iter__(self) -> Iterator[int]:
        """The seqs in increasing order."""
        ranges = [range(start, start + step * count, step) for start, step, count in self._runs]
        return iter(ranges[0]) if len(ranges) == 1 else heapq.merge(*ranges)

    def min(self) -> int:
        if not self._runs:
            raise ValueError("SeqSet.min: the set is empty")
        return min(run[0] for run in self._runs)

    def max(self) -> int:
        if not self._runs:
            raise ValueError("SeqSet.max: the set is empty")
        return max(start + step * (count - 1) for start, step, count in self._runs)

    def pop_min(self) -> int:
        """Remove and return the smallest seq."""
        runs = self._runs
        if not runs:
            raise ValueError("SeqSet.pop_min: the set is empty")
        i = min(range(len(runs)), key=lambda k: runs[k][0])
        start, step, count = runs[i]
        if count == 1:
            del runs[i]
        else:
            runs[i] = (start + step, step, count - 1)
        self._len -= 1
        return start

    def above(self, seq: int) -> SeqSet:
        """A new set of the seqs greater than ``seq``."""
        out = SeqSet()
        for start, step, count in self._runs:
            skip = 0 if seq < start else (seq - start) // step + 1
            if skip < count:
                out._runs.append((start + skip * step, step, count - skip))
                out._len += count - skip
        return out

    def prune_below(self, first: int) -> SeqSet:
        """Remove the seqs below ``first``; returns them (as a set)."""
        kept: list[tuple[int, int, int]] = []
        removed = SeqSet()
        for start, step, count in self._runs:
            if start >= first:
                kept.append((start, step, count))
                continue
            skip = min(count, (first - start + step - 1) // step)
            removed._runs.append((start, step, skip))
            removed._len += skip
            if skip < count:
                kept.append((start + skip * step, step, count - skip))
        if removed._len:
            self._runs = kept
            self._len -= removed._len
        return removed

    def describe(self, limit: int = 8) -> str:
        """Short text of the set for a log line: ``3, 5-9, 12-20/2, ... (31 seqs)``."""
        parts: list[str] = []
        for start, step, count in sorted(self._runs)[:limit]:
            if count == 1:
                parts.append(str(start))
            else:
                last = start + step * (count - 1)
                parts.append(f"{start}-{last}" + (f"/{step}" if step != 1 else ""))
        if len(self._runs) > limit:
            parts.append("...")
        text = ", ".join(parts) or "none"
        return f"{text} ({self._len} seqs)" if len(self._runs) > 1 or self._len > 1 else text


# --------------------------------------------------------------------------- groups


class _Member:
    __slots__ = (
        "again",
        "budget",
        "claim",
        "client",
        "group",
        "joined_after",
        "key",
        "pending",
        "tag",
        "unconfirmed",
    )

    def __init__(self, key: Hashable, group: _Group, client: str, budget: int, tag: int) -> None:
        self.key = key
        self.group = group
        self.client = client
        self.budget = budget
        self.tag = tag  # names it in a store (rule 9)
        self.joined_after = 0  # the start seq its subscribe reply carried
        self.unconfirmed = SeqSet()  # every seq dispatched to it (pruned to the log)
        self.again = SeqSet()  # of those, the ones sent flagged redelivered
        self.pending = SeqSet()  # inherited seqs not yet sent, sent before anything else
        self.claim: int | None = None  # the afterSeq of a claimant waiting for its orphan

    def matches(self, after_seq: int) -> bool:
        """Whether a join with ``after_seq`` may come from this member's client (rule 6)."""
        if after_seq == self.joined_after:
            return True
        return after_seq in self.unconfirmed and after_seq not in self.again


class _Orphan:
    __slots__ = ("again", "client", "dropped_at", "joined_after", "seqs", "tag")

    def __init__(
        self, seqs: SeqSet, joined_after: int, dropped_at: float, client: str, tag: int
    ) -> None:
        self.seqs = seqs
        self.joined_after = joined_after
        self.dropped_at = dropped_at
        self.client = client
        self.tag = tag  # its member's
        self.again = SeqSet()  # of its seqs, those its member was sent flagged redelivered

    def consistent(self, after_seq: int) -> bool:
        """Whether a member that got up to ``after_seq`` may have left this orphan."""
        return after_seq == self.joined_after or after_seq in self.seqs


class _Group:
    __slots__ = (
        "claimants",
        "cursor",
        "expired",
        "gid",
        "idle_since",
        "max_lost",
        "members",
        "name",
        "origin",
        "orphans",
        "redeliver",
        "rr",
        "solo",
        "stream",
    )

    def __init__(self, stream: str, name: str, start: int, solo: bool, gid: int) -> None:
        self.stream = stream
        self.name = name
        self.gid = gid  # names this incarnation of the group in a store (rule 9)
        self.cursor = start  # the last seq dispatched from the log
        self.origin = start  # the seq the group started after
        self.solo = solo
        self.members: list[_Member] = []
        self.rr = 0  # the round robin's next index
        self.orphans: list[_Orphan] = []
        self.claimants: list[_Member] = []
        self.redeliver = SeqSet()  # expired orphans' seqs, for any member, flagged
        self.expired: set[int] = set()  # expired orphans' joined_after (rule 6), in the log
        self.max_lost = 0  # the highest seq the group lost (fell out of the log unsent)
        self.idle_since: float | None = None


class Groups:
    """Every stream's log and consumer groups (the module's rules). ``member`` keys are the
    caller's (any hashable: the server uses ``(connection, subscription id)``); outputs are
    :class:`Dispatch` lists, in the order to send them. ``journal``: hand out
    :class:`Record` s for a store (rule 9)."""

    def __init__(
        self,
        epoch: str,
        *,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        max_streams: int = DEFAULT_MAX_STREAMS,
        max_groups: int = DEFAULT_MAX_GROUPS,
        rejoin_grace: float = DEFAULT_REJOIN_GRACE,
        group_ttl: float = DEFAULT_GROUP_TTL,
        journal: bool = False,
    ) -> None:
        for what, value in (
            ("max_log_bytes", max_log_bytes),
            ("max_streams", max_streams),
            ("max_groups", max_groups),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Groups {what} must be an int >= 1, got {value!r}")
        for what, seconds in (("rejoin_grace", rejoin_grace), ("group_ttl", group_ttl)):
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not math.isfinite(seconds)
                or seconds <= 0
            ):
                raise ValueError(f"Groups {what} must be a number of seconds > 0, got {seconds!r}")
        self.epoch = epoch
        self.max_log_bytes = max_log_bytes
        self.max_streams = max_streams
        self.max_groups = max_groups
        self.rejoin_grace = float(rejoin_grace)
        self.group_ttl = float(group_ttl)
        self._logs: dict[str, StreamLog] = {}
        self._groups: dict[str, dict[str, _Group]] = {}  # stream -> group name -> group
        self._members: dict[Hashable, _Member] = {}
        self._pruned: dict[str, int] = {}  # stream -> the log's first seq at the last prune
        self._notices: list[Notice] = []
        self._records: list[Record] | None = [] if journal else None
        self._superseded: list[Hashable] = []
        self._next_id = 1  # the next gid or tag (rule 9), never one a store holds
        self.dispatched = 0
        """Deliveries handed out."""
        self.redelivered = 0
        """Of those, orphans' seqs sent again to another member."""
        self.lost = 0
        """Seqs that fell out of the log before a group could send them (again)."""
        self.inherited = 0
        """Orphans taken over by a member that came back."""
        self.groups_forgotten = 0
        """Idle groups dropped (after ``group_ttl``, or their backlog out of the log)."""
        self.taken_over = 0
        """Live members taken over by a join from their client (rule 6)."""

    def __repr__(self) -> str:
        groups = sum(len(g) for g in self._groups.values())
        return f"<Groups streams={len(self._logs)} groups={groups} members={len(self._members)}>"

    # -- logs ---------------------------------------------------------------------------------

    @property
    def logs(self) -> Mapping[str, StreamLog]:
        """The streams' logs, by name (read only)."""
        return self._logs

    def open_stream(self, stream: str, *, pinned: bool = False, start_after: int = 0) -> StreamLog:
        """The log of ``stream``, made when missing (LimitError past ``max_streams``); a
        ``pinned`` log (a defined stream) stays while it has no group. ``start_after``
        numbers a new log's first message (a store's log, restored)."""
        log = self._logs.get(stream)
        if log is None:
            if len(self._logs) >= self.max_streams:
                raise LimitError(
                    f"stream {stream!r} refused: the server holds at most "
                    f"{self.max_streams} streams (max_streams)"
                )
            log = StreamLog(stream, self.max_log_bytes, start_after=start_after, pinned=pinned)
            self._logs[stream] = log
            self._pruned[stream] = log.first_seq
        elif pinned:
            log.pinned = True
        return log

    def append(self, stream: str, payload_json: str) -> tuple[int, list[Dispatch]]:
        """Publish to ``stream`` (its log must exist: ``open_stream``); returns the new seq and
        the deliveries to send."""
        seq = self._logs[stream].append(payload_json)
        out: list[Dispatch] = []
        groups = self._groups.get(stream)
        if groups:
            # Sets are pruned to the trimmed log by tick(); _drain() meets what fell out.
            for group in list(groups.values()):
                self._drain(group, out)
        return seq, out

    # -- members ------------------------------------------------------------------------------

    def join(
        self,
        member: Hashable,
        stream: str,
        group: str,
        *,
        client: str,
        budget: int,
        now: float,
        after_seq: int | None = None,
        epoch: str | None = None,
        solo: bool = False,
    ) -> tuple[int, list[Dispatch]]:
        """``member`` joins ``group`` of ``stream`` (rules 2 to 7) with ``budget`` bytes of
        room; returns its start seq (the subscribe reply's) and the deliveries to send. A
        live member it takes over (rule 6) is in :meth:`take_superseded` after.
        LimitError past ``max_streams`` or ``max_groups`` (nothing changes then)."""
        if member in self._members:
            raise ValueError(f"Groups.join: member {member!r} has joined already")
        log = self.open_stream(stream)
        g = self._groups.get(stream, {}).get(group)
        if g is not None and not g.members and g.cursor + 1 < log.first_seq:
            self._forget(g, "its backlog fell out of the log")
            log = self.open_stream(stream)  # forgetting its last group may drop the log
            g = None
        after = after_seq if after_seq is not None and epoch == self.epoch else None
        out: list[Dispatch] = []
        if g is None:
            groups = self._groups.get(stream, {})
            try:
                self._make_room(stream, groups)
            except LimitError:
                self._drop_stream_if_unused(stream)
                raise
            resumable = after is not None and log.first_seq - 1 <= after <= log.last_seq
            start = after if after is not None and resumable else log.last_seq
            g = _Group(stream, group, start, solo, self._new_id())
            self._groups.setdefault(stream, {})[group] = g
            self._record(g, "group", (g.gid, stream, group, start))
            m = self._add(member, g, client, budget, start)
            self._record(g, "member", (g.gid, m.tag, start, client))
            self._drain(g, out)
            return start, out
        start = g.cursor
        taken: _Orphan | None = None
        if after is not None:
            old = self._takeover(g, client, after)
            if old is not None:
                self.taken_over += 1
                self._superseded.append(old.key)
                taken = self._remove(old, now, clean=False)
        m = self._add(member, g, client, budget, start)
        if after is not None:
            candidates = [taken] if taken is not None else self._consistent(g, after)
            if len(candidates) == 1:
                lost = self._inherit(g, m, candidates[0], after)
                if not lost and g.max_lost <= after:
                    start = after
                else:
                    start = m.pending.min() - 1 if m.pending else g.cursor
            elif candidates:
                start = after
                m.claim = after
                g.claimants.append(m)
            elif g.origin <= after <= g.cursor and g.max_lost <= after:
                start = after
        m.joined_after = start
        if m.claim is None:  # a claimant's row waits until it knows its orphan (rule 9)
            self._record(g, "member", (g.gid, m.tag, start, client))
        self._expire_due(g, now, out)
        self._resolve(g)
        self._drain(g, out)
        return start, out

    def leave(self, member: Hashable, now: float, *, clean: bool = False) -> list[Dispatch]:
        """``member`` leaves: cleanly (``clean``, an unsubscribe: what it was sent counts as
        received) or dropped (rule 5: its unconfirmed seqs become an orphan). Unknown
        members (gone already, or taken over: rule 6) are ignored."""
        m = self._members.get(member)
        if m is None:
            return []
        g = m.group
        self._remove(m, now, clean)
        out: list[Dispatch] = []
        if not g.members:
            g.idle_since = now
            if g.solo or not self._logs[g.stream].pinned:
                # Nobody can come back to a solo group; an undefined stream has no messages
                # to keep (a member that comes back resumes from the log as a new group).
                self._forget(g, "its last member left", quiet=True)
            return out
        self._resolve(g)
        self._drain(g, out)
        return out

    def set_budget(self, member: Hashable, budget: int) -> list[Dispatch]:
        """Give ``member`` ``budget`` bytes of room (its outbox drained); returns what it, or
        its group, may now be sent."""
        m = self._members.get(member)
        if m is None:
            return []
        m.budget = budget
        out: list[Dispatch] = []
        self._drain(m.group, out)
        return out

    def budget(self, member: Hashable) -> int:
        """The bytes of room ``member`` has left (0 for an unknown member)."""
        m = self._members.get(member)
        return 0 if m is None else m.budget

    def member_info(self, member: Hashable) -> dict[str, object] | None:
        """What the groups hold of ``member`` (for tests and logs), None when unknown."""
        m = self._members.get(member)
        if m is None:
            return None
        return {
            "stream": m.group.stream,
            "group": m.group.name,
            "joined_after": m.joined_after,
            "unconfirmed": len(m.unconfirmed),
            "pending": len(m.pending),
            "claimant": m.claim is not None,
            "budget": m.budget,
        }

    def group_info(self, stream: str, group: str) -> dict[str, object] | None:
        """A group's state (for tests and logs), None when there is no such group."""
        g = self._groups.get(stream, {}).get(group)
        if g is None:
            return None
        return {
            "cursor": g.cursor,
            "origin": g.origin,
            "members": len(g.members),
            "orphans": len(g.orphans),
            "claimants": len(g.claimants),
            "redeliver": len(g.redeliver),
            "max_lost": g.max_lost,
            "idle_since": g.idle_since,
        }

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Dispatch]:
        """Orphans past their grace redispatched, idle groups past ``group_ttl`` forgotten,
        sets pruned to the logs; returns the deliveries to send."""
        out: list[Dispatch] = []
        for stream, groups in list(self._groups.items()):
            log = self._logs[stream]
            if self._pruned.get(stream) != log.first_seq:
                self._prune_stream(stream, log, groups)
            for g in list(groups.values()):
                if not g.members:
                    if g.idle_since is not None and now - g.idle_since >= self.group_ttl:
                        self._forget(g, f"idle for {self.group_ttl:g} s (group_ttl)")
                    continue
                if self._expire_due(g, now, out):
                    self._resolve(g)
                    self._drain(g, out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which ``tick`` has an orphan to redispatch (None: none)."""
        due = [
            o.dropped_at + self.rejoin_grace
            for groups in self._groups.values()
            for g in groups.values()
            if g.members
            for o in g.orphans
        ]
        return min(due) if due else None

    def take_notices(self) -> list[Notice]:
        """What happened that is worth a log line since the last call."""
        out, self._notices = self._notices, []
        return out

    def take_superseded(self) -> list[Hashable]:
        """The members taken over since the last call (rule 6): they are out of their
        groups; the caller ends their subscriptions."""
        out, self._superseded = self._superseded, []
        return out

    # -- a store (rule 9) ---------------------------------------------------------------------

    def take_records(self) -> list[Record]:
        """What a store must write, in order, since the last call (always empty without
        ``journal``): write it before sending what the same calls returned."""
        out = self._records
        if not out:
            return []
        self._records = []
        return out

    def restore(
        self,
        groups: Iterable[tuple[int, str, str, int]],
        members: Iterable[tuple[int, int, int, str]],
        sent: Iterable[tuple[str, int, int, int]],
        now: float,
    ) -> list[int]:
        """Bring back the groups a store holds (rule 9), from the rows its :class:`Record` s
        wrote: ``groups`` ``(gid, stream, group, origin)``, ``members`` ``(gid, tag,
        joined_after, client)``, ``sent`` ``(stream, seq, gid, tag)`` in seq order. Each
        member becomes an orphan dropped at ``now``; no group has a live member. The logs
        must be open; seqs they no longer hold are lost (counted and noticed). Returns the
        gids the store should drop: groups of a stream without a log (and, for a
        ``(stream, group)`` held twice, all but the newest)."""
        kept: dict[tuple[str, str], tuple[int, int]] = {}  # -> (gid, origin)
        stale: list[int] = []
        highest = 0
        for gid, stream, name, origin in sorted(groups):
            highest = max(highest, gid)
            if stream not in self._logs or name in self._groups.get(stream, {}):
                stale.append(gid)
                continue
            older = kept.get((stream, name))
            if older is not None:
                stale.append(older[0])
            kept[(stream, name)] = (gid, origin)
        live = {gid for gid, _ in kept.values()}
        rows: dict[int, dict[int, tuple[int, str, list[int]]]] = {gid: {} for gid in live}
        for gid, tag, joined_after, client in members:
            highest = max(highest, gid, tag)
            if gid in live:
                rows[gid][tag] = (joined_after, client, [])
        tops: dict[int, int] = {}  # gid -> the highest seq with a row (confirmed ones too)
        redeliver: dict[int, list[int]] = {gid: [] for gid in live}
        for _, seq, gid, tag in sent:
            highest = max(highest, gid, tag)
            if gid not in live:
                continue
            tops[gid] = max(tops.get(gid, 0), seq)
            if tag == REDELIVER_TAG:
                redeliver[gid].append(seq)
            elif tag in rows[gid]:
                rows[gid][tag][2].append(seq)
        self._next_id = max(self._next_id, highest + 1)
        for (stream, name), (gid, origin) in kept.items():
            log = self._logs[stream]
            of_group = rows[gid]
            g = _Group(stream, name, origin, False, gid)
            cursor = max([origin, tops.get(gid, 0), *(ja for ja, _, _ in of_group.values())])
            g.cursor = min(cursor, log.last_seq)
            g.idle_since = now
            self._groups.setdefault(stream, {})[name] = g
            first = log.first_seq
            for tag, (joined_after, client, seqs) in of_group.items():
                held = SeqSet(seqs)
                self._lost(g, held.prune_below(first), "it fell out of the log before a restart")
                g.orphans.append(_Orphan(held, joined_after, now, client, tag))
            g.redeliver = SeqSet(redeliver[gid])
            self._lost(g, g.redeliver.prune_below(first), "it fell out of the log before a restart")
        return stale

    def stats(self) -> dict[str, int]:
        """Counters and sizes: ``streams``, ``groups``, ``members``, ``orphans``,
        ``claimants``, ``log_bytes``, ``log_entries``, ``log_dropped``, ``dispatched``,
        ``redelivered``, ``lost``, ``inherited``, ``taken_over``, ``groups_forgotten``."""
        groups = [g for by_name in self._groups.values() for g in by_name.values()]
        logs = self._logs.values()
        return {
            "streams": len(self._logs),
            "groups": len(groups),
            "members": len(self._members),
            "orphans": sum(len(g.orphans) for g in groups),
            "claimants": sum(len(g.claimants) for g in groups),
            "log_bytes": sum(log.bytes for log in logs),
            "log_entries": sum(len(log) for log in logs),
            "log_dropped": sum(log.dropped for log in logs),
            "dispatched": self.dispatched,
            "redelivered": self.redelivered,
            "lost": self.lost,
            "inherited": self.inherited,
            "taken_over": self.taken_over,
            "groups_forgotten": self.groups_forgotten,
        }

    # -- the rules ----------------------------------------------------------------------------

    def _new_id(self) -> int:
        out = self._next_id
        self._next_id = out + 1
        return out

    def _record(self, g: _Group, kind: str, args: tuple[int | str, ...]) -> None:
        if self._records is not None and not g.solo:  # nobody comes back to a solo group
            self._records.append(Record(kind, args))

    def _add(self, key: Hashable, g: _Group, client: str, budget: int, start: int) -> _Member:
        m = _Member(key, g, client, budget, self._new_id())
        m.joined_after = start
        g.members.append(m)
        g.idle_since = None
        self._members[key] = m
        return m

    def _remove(self, m: _Member, now: float, clean: bool) -> _Orphan | None:
        """Take ``m`` out of its group: a clean leave confirms what it was sent; a drop
        leaves an orphan (returned); a claimant leaves neither."""
        del self._members[m.key]
        g = m.group
        index = g.members.index(m)
        del g.members[index]
        if index < g.rr:
            g.rr -= 1
        if g.members:
            g.rr %= len(g.members)
        else:
            g.rr = 0
        if m.claim is not None:
            # A claimant was sent nothing, and its client still holds the seq it claimed
            # with: its first orphan, still waiting, stays the one to match. No new one
            # (and no row: it had none yet).
            g.claimants.remove(m)
            return None
        if clean:
            g.redeliver.update(m.pending)  # inherited, never sent to it: another member's now
            self._record(g, "gone", (g.gid, m.tag))
            for seq in m.pending:
                self._record(g, "sent", (g.stream, seq, g.gid, REDELIVER_TAG))
            return None
        seqs = m.unconfirmed
        seqs.update(m.pending)
        log = self._logs[g.stream]
        self._lost(g, seqs.prune_below(log.first_seq), "it fell out of the log")
        orphan = _Orphan(seqs, m.joined_after, now, m.client, m.tag)
        m.again.prune_below(log.first_seq)
        orphan.again = m.again
        g.orphans.append(orphan)
        return orphan

    @staticmethod
    def _consistent(g: _Group, after: int) -> list[_Orphan]:
        return [o for o in g.orphans if o.consistent(after)]

    @staticmethod
    def _takeover(g: _Group, client: str, after: int) -> _Member | None:
        """The live member a join from ``client`` with ``after`` takes over (rule 6), if any."""
        if after in g.expired:  # the joiner's own orphan may be one that expired
            return None
        live = [m for m in g.members if m.client == client and m.claim is None and m.matches(after)]
        if len(live) != 1 or any(o.client == client and o.consistent(after) for o in g.orphans):
            return None  # the joiner may be another of them: rule 5 decides
        return live[0]

    def _claim_ends(self, g: _Group, m: _Member) -> None:
        """A claimant becomes a plain member: its row is written now (rule 9)."""
        m.claim = None
        self._record(g, "member", (g.gid, m.tag, m.joined_after, m.client))

    def _inherit(self, g: _Group, m: _Member, orphan: _Orphan, after: int) -> bool:
        """``m`` takes ``orphan`` over: its seqs above ``after`` are sent to ``m`` first.
        Returns True when some of them fell out of the log (lost)."""
        g.orphans.remove(orphan)
        if m.claim is not None:
            g.claimants.remove(m)
            self._claim_ends(g, m)
        self.inherited += 1
        above = orphan.seqs.above(after)
        gone = above.prune_below(self._logs[g.stream].first_seq)
        self._lost(g, gone, "it fell out of the log before its member came back")
        if above:
            self._record(g, "retag", (m.tag, g.stream, above.min(), above.max(), g.gid, orphan.tag))
        self._record(g, "gone", (g.gid, orphan.tag))
        m.pending.update(above)
        again = orphan.again.above(after)  # another member's first: never its own (rule 6)
        again.prune_below(self._logs[g.stream].first_seq)
        m.again.update(again)  # m was sent nothing yet: the sets are disjoint
        return bool(gone)

    def _resolve(self, g: _Group) -> None:
        """Give claimants their orphans once the choice is forced (rule 5)."""
        changed = True
        while changed and g.claimants:
            changed = False
            for m in list(g.claimants):
                assert m.claim is not None
                candidates = [o for o in g.orphans if o.consistent(m.claim)]
                if len(candidates) == 1:
                    self._inherit(g, m, candidates[0], m.claim)
                    changed = True
                elif not candidates:  # its orphan went another way: it takes new messages
                    g.claimants.remove(m)
                    self._claim_ends(g, m)
                    changed = True
            if not changed and g.claimants and len(g.claimants) == len(g.orphans):
                matching = _matching(g.claimants, g.orphans)
                if matching:
                    for m, orphan in matching:
                        assert m.claim is not None
                        self._inherit(g, m, orphan, m.claim)
                    changed = True

    def _expire_due(self, g: _Group, now: float, out: list[Dispatch]) -> bool:
        """Orphans past ``rejoin_grace`` go to the group's live members, flagged (rule 5).
        Returns True when some did."""
        if not g.orphans or not g.members:
            return False
        due = [o for o in g.orphans if now - o.dropped_at >= self.rejoin_grace]
        if not due:
            return False
        expired = set(map(id, due))
        claims = [m.claim for m in g.claimants if m.claim is not None]
        if any(o.consistent(claim) for o in due for claim in claims):
            # A claimant's orphan may be among them: give every claim up, at least once.
            for claim in claims:
                expired.update(id(o) for o in g.orphans if o.consistent(claim))
            for m in g.claimants:
                self._claim_ends(g, m)
            g.claimants.clear()
        log = self._logs[g.stream]
        keep: list[_Orphan] = []
        for orphan in g.orphans:
            if id(orphan) not in expired:
                keep.append(orphan)
                continue
            g.expired.add(orphan.joined_after)
            self._lost(g, orphan.seqs.prune_below(log.first_seq), "it fell out of the log")
            seqs = orphan.seqs
            if seqs:
                self._notices.append(
                    Notice(
                        "redelivering",
                        g.stream,
                        g.name,
                        seqs.describe(),
                        len(seqs),
                        f"a member of client {orphan.client!r} dropped and did not come back "
                        f"within {self.rejoin_grace:g} s",
                    )
                )
                g.redeliver.update(seqs)
                low, high = seqs.min(), seqs.max()
                self._record(g, "retag", (REDELIVER_TAG, g.stream, low, high, g.gid, orphan.tag))
            self._record(g, "gone", (g.gid, orphan.tag))
        g.orphans = keep
        return True

    def _drain(self, g: _Group, out: list[Dispatch]) -> None:
        """Send what waits, as budgets allow: each member's inherited seqs, then the group's
        redeliveries, then the log after the cursor, round robin."""
        if not g.members:
            return
        log = self._logs[g.stream]
        overhead = DELIVERY_OVERHEAD + len(g.stream)
        for m in g.members:
            pending = m.pending
            while pending and m.budget > 0 and m.claim is None:
                seq = pending.pop_min()
                payload = log.get(seq)
                if payload is None:
                    self._lost(g, SeqSet((seq,)), "it fell out of the log")
                    continue
                self._send(m, seq, payload, False, overhead, out)
        redeliver = g.redeliver
        while redeliver:
            m_ready = _next_ready(g)
            if m_ready is None:
                break
            seq = redeliver.pop_min()
            payload = log.get(seq)
            if payload is None:
                self._lost(g, SeqSet((seq,)), "it fell out of the log")
                continue
            self.redelivered += 1
            self._send(m_ready, seq, payload, True, overhead, out)
        last = log.last_seq
        while g.cursor < last:
            m_ready = _next_ready(g)
            if m_ready is None:
                break
            seq = g.cursor + 1
            first = log.first_seq
            if seq < first:
                gone = SeqSet(range(seq, first))
                self._lost(g, gone, "the group fell behind the log")
                g.cursor = first - 1
                continue
            payload = log.get(seq)
            assert payload is not None
            g.cursor = seq
            self._send(m_ready, seq, payload, False, overhead, out)

    def _send(
        self, m: _Member, seq: int, payload: str, again: bool, overhead: int, out: list[Dispatch]
    ) -> None:
        unconfirmed = m.unconfirmed
        unconfirmed.add(seq)
        if again:
            m.again.add(seq)
        if unconfirmed.runs > _MAX_RUNS or m.again.runs > _MAX_RUNS:
            first = self._logs[m.group.stream].first_seq
            unconfirmed.prune_below(first)
            m.again.prune_below(first)
        m.budget -= len(payload) + overhead
        self.dispatched += 1
        records = self._records
        if records is not None:
            g = m.group
            if not g.solo:
                records.append(Record("sent", (g.stream, seq, g.gid, m.tag)))
        out.append(Dispatch(m.key, seq, payload, again))

    def _lost(self, g: _Group, seqs: SeqSet, reason: str) -> None:
        if not seqs:
            return
        self.lost += len(seqs)
        g.max_lost = max(g.max_lost, seqs.max())
        self._notices.append(Notice("lost", g.stream, g.name, seqs.describe(), len(seqs), reason))

    def _prune_stream(self, stream: str, log: StreamLog, groups: dict[str, _Group]) -> None:
        """Sets pruned to what the log holds; idle groups whose cursor fell out forgotten."""
        first = log.first_seq
        self._pruned[stream] = first
        for g in list(groups.values()):
            if not g.members and g.cursor + 1 < first:
                self._forget(g, "its backlog fell out of the log")
                continue
            for m in g.members:
                m.unconfirmed.prune_below(first)
                m.again.prune_below(first)
                self._lost(g, m.pending.prune_below(first), "it fell out of the log")
            for orphan in g.orphans:
                self._lost(g, orphan.seqs.prune_below(first), "it fell out of the log")
            self._lost(g, g.redeliver.prune_below(first), "it fell out of the log")
            g.expired = {seq for seq in g.expired if seq >= first - 1}
            if g.members and g.cursor + 1 < first:
                self._lost(g, SeqSet(range(g.cursor + 1, first)), "the group fell behind the log")
                g.cursor = first - 1

    def _make_room(self, stream: str, groups: dict[str, _Group]) -> None:
        if len(groups) < self.max_groups:
            return
        idle = [g for g in groups.values() if not g.members]
        if not idle:
            raise LimitError(
                f"a new consumer group on stream {stream!r} refused: it has "
                f"{self.max_groups} groups with live members (max_groups)"
            )
        oldest = min(idle, key=lambda g: g.idle_since or 0.0)
        self._forget(oldest, f"the stream reached max_groups={self.max_groups}")

    def _forget(self, g: _Group, reason: str, *, quiet: bool = False) -> None:
        """Drop a group; what its orphans still held is lost, unless ``quiet`` (a group no
        member can come back to: its member resumes from the log)."""
        groups = self._groups.get(g.stream, {})
        if groups.get(g.name) is not g:
            return
        del groups[g.name]
        log = self._logs.get(g.stream)
        low = max(g.origin + 1, log.first_seq if log is not None else 0)
        self._record(g, "forget", (g.gid, g.stream, low, g.cursor))
        if not quiet:
            self.groups_forgotten += 1
            undelivered = SeqSet()
            for orphan in g.orphans:
                undelivered.update(orphan.seqs)
            undelivered.update(g.redeliver)
            self._lost(g, undelivered, f"its group was forgotten: {reason}")
            self._notices.append(Notice("group_forgotten", g.stream, g.name, "", 0, reason))
        if not groups:
            del self._groups[g.stream]
            self._drop_stream_if_unused(g.stream)

    def _drop_stream_if_unused(self, stream: str) -> None:
        log = self._logs.get(stream)
        if log is not None and not log.pinned and not self._groups.get(stream):
            del self._logs[stream]
            self._pruned.pop(stream, None)
            self._groups.pop(stream, None)


def _next_ready(g: _Group) -> _Member | None:
    """The next member, round robin, that may take a message from the log now."""
    members = g.members
    n = len(members)
    for i in range(n):
        k = (g.rr + i) % n
        m = members[k]
        if m.claim is None and m.budget > 0 and not m.pending:
            g.rr = (k + 1) % n
            return m
    return None


def _matching(claimants: list[_Member], orphans: list[_Orphan]) -> list[tuple[_Member, _Orphan]]:
    """A perfect matching of claimants to consistent orphans (augmenting paths), or an empty
    list when there is none."""
    edges: list[list[int]] = [
        [j for j, o in enumerate(orphans) if m.claim is not None and o.consistent(m.claim)]
        for m in claimants
    ]
    owner: dict[int, int] = {}  # orphan index -> claimant index

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(claimants)):
        if not augment(i, set()):
            return []
    return [(claimants[i], orphans[j]) for j, i in sorted(owner.items(), key=lambda kv: kv[1])]
