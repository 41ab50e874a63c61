"""Pipeline operators: sans-I/O record transformers that stage actors run.

An operator never sees a thread, a socket or a clock: the stage actor that owns it passes
each record in with the current time, asks when it next needs a tick, and forwards what it
returns. That keeps every operator testable with plain lists and a number for "now", and
lets one stage actor shell run any operator.

The contract (``Operator``):

- ``on_record(record, now) -> list``: the outputs caused by one input record, in order.
- ``on_tick(now) -> list``: outputs that fall due by time alone (a window closing, a
  conflation interval ending, a batch timing out, a throttled record released).
- ``next_deadline() -> float | None``: the earliest ``now`` at which ``on_tick`` has work;
  ``None`` when nothing is pending. The stage schedules one timer for it.
- ``flush(now) -> list``: everything still held, at a drain (``stop(drain=True)``).
- ``stats() -> dict[str, int]``: counters for metrics (e.g. ``late``, ``dropped``).

Records are plain dicts (a keysquare record's data fields, a synthetic price, a JSONL
line). ``now`` is seconds on the stage's monotonic clock; event time, where an operator
uses it, comes from a record field instead (see each operator).

Errors in user code and data (a ``map`` function that raises, a record missing the key
field, an unparsable event time) are not caught here: they propagate to the stage actor,
which counts and logs them and goes on with the next record. Operators read what they need
from a record before changing any state, so the failing record leaves no trace and nothing
already due is lost; the one exception is a window with several aggregations, where those
before the failing one have taken the record in.

Keys. Keyed operators (``conflate``, ``dedupe``, the windows) take ``key``: a field name, a
list of field names (the key is then the tuple of their values) or a callable of the record.
Without ``key`` they use the reserved field :data:`KEY_FIELD` (``"_key"``) that ``key_by``
stamps on each record, so ``key_by`` once and every keyed operator downstream agrees on the
key. A record without ``_key`` (no ``key_by`` upstream) belongs to the single key ``None``.

Operators are built by kind name with :func:`make_operator` (definition files) or by class
(the Python builder); :data:`OPERATORS` maps each kind to its class. Parameters that take a
function also accept a ``"module:function"`` string, resolved by :func:`resolve_callable`.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from numbers import Real
from operator import itemgetter, methodcaller
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

from ..actors.callbacks import plain_callback
from .registry import check_params
from .windows import (
    Aggregation,
    Windowing,
    _positive,
    event_seconds,
    make_aggregations,
)

__all__ = [
    "KEY_FIELD",
    "OPERATORS",
    "Batch",
    "Conflate",
    "Dedupe",
    "Filter",
    "FlatMap",
    "KeyBy",
    "Map",
    "Operator",
    "OperatorBase",
    "SlidingWindow",
    "Tap",
    "Throttle",
    "TumblingWindow",
    "key_getter",
    "make_operator",
    "resolve_callable",
]

KEY_FIELD = "_key"
"""The field ``key_by`` sets and keyed operators read when they are given no ``key``."""

KeySpec: TypeAlias = str | Sequence[str] | Callable[[Any], Any] | None
"""A field name, a list of field names, a function of the record, or None for ``_key``."""

FnSpec: TypeAlias = Callable[..., Any] | str
"""A callable, or a ``"module:function"`` string naming one."""

_NOTHING: Any = object()


@runtime_checkable
class Operator(Protocol):
    """What a stage actor needs from the operator it runs."""

    def on_record(self, record: Any, now: float) -> list[Any]: ...

    def on_tick(self, now: float) -> list[Any]: ...

    def next_deadline(self) -> float | None: ...

    def flush(self, now: float) -> list[Any]: ...

    def stats(self) -> dict[str, int]: ...


class OperatorBase:
    """Defaults for a stateless operator: no ticks, nothing held, no counters."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    """The name definition files use for this operator (its key in :data:`OPERATORS`)."""
    holds_records: ClassVar[bool] = False
    """True when records wait in the operator (a batch, the latest per key, a budget) and
    leave it later: behind a source with acknowledgements such an operator must say when
    they have left (``on_barrier``), or the pipeline refuses it."""

    def on_record(self, record: Any, now: float) -> list[Any]:
        raise NotImplementedError

    def on_tick(self, now: float) -> list[Any]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def flush(self, now: float) -> list[Any]:
        return []

    def stats(self) -> dict[str, int]:
        return {}


# -- parameters -------------------------------------------------------------------------------


def resolve_callable(spec: str) -> Callable[..., Any]:
    """The callable that ``"package.module:name"`` names (``name`` may be dotted: ``Cls.meth``).

    Raises ``ValueError`` naming the spec and what failed: a malformed spec, a module that
    is not found or fails to import, a missing attribute, or an object that is not callable.
    """
    if not isinstance(spec, str):
        raise TypeError(f"expected a 'module:function' string, got {spec!r}")
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name.strip() or not attr_path.strip():
        raise ValueError(f"{spec!r} is not a 'module:function' reference")
    module_name, attr_path = module_name.strip(), attr_path.strip()
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise ValueError(f"cannot resolve {spec!r}: module {module_name!r} not found") from None
        raise ValueError(
            f"cannot resolve {spec!r}: importing {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:  # any failure while importing is the user module's
        raise ValueError(
            f"cannot resolve {spec!r}: importing {module_name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    owner = module_name
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"cannot resolve {spec!r}: {owner!r} has no attribute {part!r}"
            ) from None
        owner = f"{owner}:{part}" if owner == module_name else f"{owner}.{part}"
    if not callable(obj):
        raise ValueError(f"cannot resolve {spec!r}: it is a {type(obj).__name__}, not callable")
    return obj  # type: ignore[no-any-return]


def _callable(owner: str, name: str, value: object) -> Callable[..., Any]:
    """A callable parameter given as a callable or a ``"module:function"`` string."""
    if isinstance(value, str):
        try:
            return resolve_callable(value)
        except ValueError as exc:
            raise ValueError(f"{owner}: {name}: {exc}") from None
    if not callable(value):
        raise TypeError(
            f"{owner}: {name} must be a callable or a 'module:function' string, got {value!r}"
        )
    return plain_callback(value, f"{owner}: {name}")


_default_key = methodcaller("get", KEY_FIELD)


def key_getter(owner: str, key: KeySpec, *, name: str = "key") -> Callable[[Any], Any]:
    """The function that reads a record's key, from a ``key`` parameter (see module doc)."""
    if key is None:
        return _default_key
    if isinstance(key, str):
        if not key:
            raise ValueError(f"{owner}: {name} must be a non-empty field name")
        return itemgetter(key)
    if callable(key):
        return key
    if isinstance(key, Sequence) and key and all(isinstance(f, str) and f for f in key):
        fields = tuple(key)
        if len(fields) == 1:
            return lambda record: (record[fields[0]],)
        return itemgetter(*fields)
    raise TypeError(
        f"{owner}: {name} must be a field name, a list of field names or a callable, got {key!r}"
    )


def _count(owner: str, name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return value


def _seconds_or_zero(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number of seconds >= 0, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise ValueError(f"{owner}: {name} must be a finite number of seconds >= 0, got {value!r}")
    return result


# -- stateless operators ----------------------------------------------------------------------


class Map(OperatorBase):
    """``map``: one output per record, ``fn(record)``."""

    __slots__ = ("_fn",)
    kind = "map"

    def __init__(self, fn: FnSpec) -> None:
        self._fn = _callable("map", "fn", fn)

    def on_record(self, record: Any, now: float) -> list[Any]:
        return [self._fn(record)]


class Filter(OperatorBase):
    """``filter``: passes the records for which ``predicate(record)`` is true.

    ``stats()``: ``filtered`` (records dropped).
    """

    __slots__ = ("_filtered", "_predicate")
    kind = "filter"

    def __init__(self, predicate: FnSpec) -> None:
        self._predicate = _callable("filter", "predicate", predicate)
        self._filtered = 0

    def on_record(self, record: Any, now: float) -> list[Any]:
        if self._predicate(record):
            return [record]
        self._filtered += 1
        return []

    def stats(self) -> dict[str, int]:
        return {"filtered": self._filtered}


class FlatMap(OperatorBase):
    """``flat_map``: zero or more outputs per record, the items of ``fn(record)``."""

    __slots__ = ("_fn",)
    kind = "flat_map"

    def __init__(self, fn: FnSpec) -> None:
        self._fn = _callable("flat_map", "fn", fn)

    def on_record(self, record: Any, now: float) -> list[Any]:
        return list(self._fn(record))


class Tap(OperatorBase):
    """``tap``: calls ``fn(record)`` for its side effect and passes the record on unchanged."""

    __slots__ = ("_fn",)
    kind = "tap"

    def __init__(self, fn: FnSpec) -> None:
        self._fn = _callable("tap", "fn", fn)

    def on_record(self, record: Any, now: float) -> list[Any]:
        self._fn(record)
        return [record]


class KeyBy(OperatorBase):
    """``key_by``: stamps the record's key in the reserved field ``_key``.

    ``key`` is a field name, a list of field names (key = tuple of values) or a callable;
    ``fn`` is the same as a callable ``key`` but also takes a ``"module:function"`` string
    (definition files). Give exactly one. With ``copy=True`` (the default) the output is a
    shallow copy of the record, so a record also sent down another branch is never changed
    under it; ``copy=False`` stamps the record in place, for a record owned by this path.
    """

    __slots__ = ("_copy", "_key")
    kind = "key_by"

    def __init__(self, key: KeySpec = None, *, fn: FnSpec | None = None, copy: bool = True) -> None:
        if (key is None) == (fn is None):
            raise TypeError(
                "key_by: give exactly one of key (a field name, a list of field names or a "
                "callable) and fn (a callable or 'module:function' string)"
            )
        if fn is not None:
            self._key = _callable("key_by", "fn", fn)
        else:
            self._key = key_getter("key_by", key)
        if not isinstance(copy, bool):
            raise TypeError(f"key_by: copy must be true or false, got {copy!r}")
        self._copy = copy

    def on_record(self, record: Any, now: float) -> list[Any]:
        k = self._key(record)
        if self._copy:
            record = dict(record)
        record[KEY_FIELD] = k
        return [record]


# -- keyed, stateful operators ----------------------------------------------------------------


class _Latest:
    """Conflation state of one key: when its next record may pass, and the one held."""

    __slots__ = ("due", "held")

    def __init__(self, due: float) -> None:
        self.due = due
        self.held: Any = _NOTHING


class Conflate(OperatorBase):
    """``conflate``: per key, at most one record every ``interval`` seconds, always the latest.

    Give the interval as ``interval`` (seconds) or ``interval_ms`` (milliseconds). The
    first record of a key passes at once. Records arriving before the key's interval
    has run are held, each replacing the last (``stats()["conflated"]`` counts the replaced
    ones); ``on_tick`` releases the held record when the interval ends, and that starts the
    next interval. ``flush`` releases every held record. State: one small entry per key seen.
    """

    __slots__ = ("_conflated", "_heap", "_interval", "_key", "_seq", "_states")
    kind = "conflate"
    holds_records = True

    def __init__(
        self,
        interval: float | None = None,
        *,
        key: KeySpec = None,
        interval_ms: float | None = None,
    ) -> None:
        if (interval is None) == (interval_ms is None):
            raise TypeError(
                "conflate: give the interval as interval (seconds) or interval_ms "
                f"(milliseconds), exactly one of them; got interval={interval!r}, "
                f"interval_ms={interval_ms!r}"
            )
        if interval_ms is not None:
            interval = _positive("conflate", "interval_ms", interval_ms) / 1000.0
        self._interval = _positive("conflate", "interval", interval)
        self._key = key_getter("conflate", key)
        self._states: dict[Any, _Latest] = {}
        # (due, tie-breaker, key) for every key holding a record; entries whose due no
        # longer matches the key's state are stale and skipped when popped.
        self._heap: list[tuple[float, int, Any]] = []
        self._seq = 0
        self._conflated = 0

    def on_record(self, record: Any, now: float) -> list[Any]:
        k = self._key(record)
        st = self._states.get(k)
        if st is None:
            self._states[k] = _Latest(now + self._interval)
            return [record]
        if now >= st.due:
            if st.held is not _NOTHING:
                st.held = _NOTHING
                self._conflated += 1
            st.due = now + self._interval
            return [record]
        if st.held is _NOTHING:
            heappush(self._heap, (st.due, self._seq, k))
            self._seq += 1
        else:
            self._conflated += 1
        st.held = record
        return []

    def _live_top(self) -> tuple[float, int, Any] | None:
        heap = self._heap
        while heap:
            entry = heap[0]
            st = self._states.get(entry[2])
            if st is not None and st.held is not _NOTHING and st.due == entry[0]:
                return entry
            heappop(heap)
        return None

    def on_tick(self, now: float) -> list[Any]:
        out: list[Any] = []
        while (entry := self._live_top()) is not None and entry[0] <= now:
            heappop(self._heap)
            st = self._states[entry[2]]
            out.append(st.held)
            st.held = _NOTHING
            st.due = now + self._interval
        return out

    def next_deadline(self) -> float | None:
        entry = self._live_top()
        return None if entry is None else entry[0]

    def flush(self, now: float) -> list[Any]:
        out: list[Any] = []
        while (entry := self._live_top()) is not None:
            heappop(self._heap)
            st = self._states[entry[2]]
            out.append(st.held)
            st.held = _NOTHING
        return out

    def stats(self) -> dict[str, int]:
        return {"conflated": self._conflated}


class Dedupe(OperatorBase):
    """``dedupe``: drops a record whose sequence number was already seen for its key, or is
    older than the newest seen (``stats()["duplicates"]``).

    ``seq`` is the field holding the sequence number (or a callable of the record). Memory
    is bounded: the newest sequence number of up to ``max_keys`` keys, least recently seen
    evicted first (``stats()["evicted"]``); an evicted key starts afresh.
    """

    __slots__ = ("_duplicates", "_evicted", "_key", "_max_keys", "_seen", "_seq")
    kind = "dedupe"

    def __init__(
        self,
        *,
        key: KeySpec = None,
        seq: str | Callable[[Any], Any] = "seq",
        max_keys: int = 100_000,
    ) -> None:
        self._key = key_getter("dedupe", key)
        if not (isinstance(seq, str) and seq) and not callable(seq):
            raise TypeError(f"dedupe: seq must be a field name or a callable, got {seq!r}")
        self._seq: Callable[[Any], Any] = itemgetter(seq) if isinstance(seq, str) else seq
        self._max_keys = _count("dedupe", "max_keys", max_keys)
        self._seen: OrderedDict[Any, Any] = OrderedDict()
        self._duplicates = 0
        self._evicted = 0

    def on_record(self, record: Any, now: float) -> list[Any]:
        k = self._key(record)
        s = self._seq(record)
        seen = self._seen
        last = seen.get(k, _NOTHING)
        if last is _NOTHING:
            seen[k] = s
            if len(seen) > self._max_keys:
                seen.popitem(last=False)
                self._evicted += 1
            return [record]
        seen.move_to_end(k)
        if s <= last:
            self._duplicates += 1
            return []
        seen[k] = s
        return [record]

    def stats(self) -> dict[str, int]:
        return {"duplicates": self._duplicates, "evicted": self._evicted}


class Batch(OperatorBase):
    """``batch``: emits a list of records once ``size`` are held, or ``max_delay`` seconds after
    the first of them arrived, whichever is first; ``flush`` emits the rest.

    Either limit may be ``None`` (not both). Order is preserved; ``stats()["batches"]``.
    """

    __slots__ = ("_batches", "_first", "_held", "_max_delay", "_size")
    kind = "batch"
    holds_records = True

    def __init__(self, size: int | None = 100, *, max_delay: float | None = 1.0) -> None:
        if size is None and max_delay is None:
            raise ValueError("batch: give size, max_delay or both; both are None")
        self._size = math.inf if size is None else _count("batch", "size", size)
        self._max_delay = None if max_delay is None else _positive("batch", "max_delay", max_delay)
        self._held: list[Any] = []
        self._first = 0.0
        self._batches = 0

    def on_record(self, record: Any, now: float) -> list[Any]:
        held = self._held
        if not held:
            self._first = now
        held.append(record)
        if len(held) >= self._size:
            self._held = []
            self._batches += 1
            return [held]
        return []

    def on_tick(self, now: float) -> list[Any]:
        if self._held and self._max_delay is not None and now >= self._first + self._max_delay:
            return self.flush(now)
        return []

    def next_deadline(self) -> float | None:
        if self._held and self._max_delay is not None:
            return self._first + self._max_delay
        return None

    def flush(self, now: float) -> list[Any]:
        if not self._held:
            return []
        held, self._held = self._held, []
        self._batches += 1
        return [held]

    def stats(self) -> dict[str, int]:
        return {"batches": self._batches}


_THROTTLE_POLICIES = ("delay", "drop")
# Tokens are floats refilled by elapsed time; allow for rounding so a tick at the computed
# deadline does release the record it was scheduled for.
_TOKEN_EPSILON = 1e-9


class Throttle(OperatorBase):
    """``throttle``: at most ``rate`` records per second, with bursts of up to ``burst``.

    A token bucket: it holds up to ``burst`` tokens, refills at ``rate`` per second, and
    each record passing spends one. Over the limit, ``policy="delay"`` queues records (up
    to ``max_queue``; beyond it they are dropped) and releases them in order on ticks as
    tokens refill; ``policy="drop"`` drops them. Drops: ``stats()["dropped"]``; queued:
    ``stats()["delayed"]``. ``flush`` releases the whole queue regardless of the rate. With
    ``burst=1`` a tick releases one record, so at high rates raise ``burst`` to let each tick
    release several.
    """

    __slots__ = (
        "_burst",
        "_delayed",
        "_drop",
        "_dropped",
        "_last",
        "_max_queue",
        "_queue",
        "_rate",
        "_tokens",
    )
    kind = "throttle"
    holds_records = True

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        policy: str = "delay",
        max_queue: int = 10_000,
    ) -> None:
        self._rate = _positive("throttle", "rate", rate, "records per second")
        self._burst = float(_count("throttle", "burst", burst))
        if policy not in _THROTTLE_POLICIES:
            raise ValueError(
                f"throttle: policy must be one of {', '.join(map(repr, _THROTTLE_POLICIES))}, "
                f"got {policy!r}"
            )
        self._drop = policy == "drop"
        self._max_queue = _count("throttle", "max_queue", max_queue)
        self._tokens = self._burst
        self._last: float | None = None
        self._queue: deque[Any] = deque()
        self._dropped = 0
        self._delayed = 0

    def _refill(self, now: float) -> None:
        last = self._last
        if last is None:
            self._last = now
        elif now > last:
            self._tokens = min(self._burst, self._tokens + (now - last) * self._rate)
            self._last = now

    def on_record(self, record: Any, now: float) -> list[Any]:
        self._refill(now)
        if not self._queue and self._tokens >= 1.0 - _TOKEN_EPSILON:
            self._tokens -= 1.0
            return [record]
        if self._drop or len(self._queue) >= self._max_queue:
            self._dropped += 1
            return []
        self._queue.append(record)
        self._delayed += 1
        return []

    def on_tick(self, now: float) -> list[Any]:
        queue = self._queue
        if not queue:
            return []
        self._refill(now)
        out: list[Any] = []
        while queue and self._tokens >= 1.0 - _TOKEN_EPSILON:
            self._tokens -= 1.0
            out.append(queue.popleft())
        return out

    def next_deadline(self) -> float | None:
        if not self._queue or self._last is None:
            return None
        return self._last + max(0.0, 1.0 - self._tokens) / self._rate

    def flush(self, now: float) -> list[Any]:
        out = list(self._queue)
        self._queue.clear()
        return out

    def stats(self) -> dict[str, int]:
        return {"dropped": self._dropped, "delayed": self._delayed}


# -- windows ----------------------------------------------------------------------------------


class _WindowOperator(OperatorBase):
    """Keyed windows with aggregations; see :class:`TumblingWindow` for the behaviour."""

    holds_records = True

    __slots__ = (
        "_aggs",
        "_closed_below",
        "_cur_cells",
        "_cur_hi",
        "_cur_idx",
        "_cur_lo",
        "_emitted",
        "_held",
        "_idle",
        "_key",
        "_last_arrival",
        "_late",
        "_lateness",
        "_max_event",
        "_next_close",
        "_open",
        "_time_field",
        "_tumbling",
        "_windowing",
    )

    def __init__(
        self,
        windowing: Windowing,
        key: KeySpec,
        aggregations: Any,
        time_field: str | None,
        allowed_lateness: float,
        idle_timeout: float | None,
    ) -> None:
        owner = self.kind
        self._windowing = windowing
        self._tumbling = windowing.tumbling
        self._key = key_getter(owner, key)
        self._aggs: list[Aggregation] = make_aggregations(owner, aggregations)
        if time_field is not None and (not isinstance(time_field, str) or not time_field):
            raise TypeError(f"{owner}: time_field must be a field name, got {time_field!r}")
        self._time_field = time_field
        self._lateness = _seconds_or_zero(owner, "allowed_lateness", allowed_lateness)
        if time_field is None and self._lateness:
            raise ValueError(
                f"{owner}: allowed_lateness applies to event time only; set time_field too"
            )
        self._idle = (
            None if idle_timeout is None else _positive(owner, "idle_timeout", idle_timeout)
        )
        if time_field is None and idle_timeout is not None:
            raise ValueError(
                f"{owner}: idle_timeout applies to event time only; set time_field too"
            )
        # window index -> key -> that key's aggregations, in first-seen key order.
        self._open: dict[int, dict[Any, list[Aggregation]]] = {}
        # The tumbling window the last record went to, its bounds and cells: a cache of _open.
        self._cur_idx = 0
        self._cur_lo = self._cur_hi = 0.0
        self._cur_cells: dict[Any, list[Aggregation]] = {}
        self._forget_current()
        # Windows below this index are closed; a record only for them is late. -inf until
        # the first watermark.
        self._closed_below: float = -math.inf
        # The watermark at which the next window closes (recomputed when windows close).
        self._next_close: float = -math.inf
        self._max_event = -math.inf
        self._last_arrival = 0.0
        self._late = 0
        self._emitted = 0
        # Barriers waiting for the windows open when they came: (barrier, highest index).
        self._held: deque[tuple[Any, float]] = deque()

    # The hot path. The record goes into its windows first and the watermark moves after,
    # so a failing record (bad key, time or field) cannot lose rows that were due.
    def on_record(self, record: Any, now: float) -> list[Any]:
        k = self._key(record)
        time_field = self._time_field
        if time_field is None:
            t = now
        else:
            t = record[time_field]
            if type(t) is not float:
                t = event_seconds(t)
        closed_below = self._closed_below
        if self._tumbling:
            if self._cur_lo <= t < self._cur_hi:  # most records fall in the last one's window
                cells = self._cur_cells
            else:
                idx = self._windowing.first_open(t)
                if idx < closed_below:
                    self._late += 1
                    return []
                cells = self._open.setdefault(idx, {})
                self._cur_idx = idx
                self._cur_lo = self._windowing.boundary(idx - 1)
                self._cur_hi = self._windowing.boundary(idx)
                self._cur_cells = cells
            accs = cells.get(k)
            if accs is not None:
                for acc in accs:
                    acc.add(record)
            else:
                self._new_cell(cells, k, record)
        else:
            first, last = self._windowing.span(t)
            if last < closed_below:
                self._late += 1
                return []
            if first < closed_below:
                first = int(closed_below)
            for idx in range(first, last + 1):
                self._add(idx, k, record)
        if time_field is None:
            return self._advance(now) if now >= self._next_close else []
        self._last_arrival = now
        if t > self._max_event:
            self._max_event = t
            w = t - self._lateness
            if w >= self._next_close:
                return self._advance(w)
        return []

    def _forget_current(self) -> None:
        self._cur_idx = -(2**62)
        self._cur_lo, self._cur_hi = math.inf, -math.inf

    def _add(self, idx: int, k: Any, record: Any) -> None:
        cells = self._open.get(idx)
        if cells is None:
            cells = self._open[idx] = {}
        accs = cells.get(k)
        if accs is not None:
            for acc in accs:
                acc.add(record)
        else:
            self._new_cell(cells, k, record)

    def _new_cell(self, cells: dict[Any, list[Aggregation]], k: Any, record: Any) -> None:
        """Start key ``k``'s aggregations in a window with ``record``; kept only if it fits."""
        accs = [a.fresh() for a in self._aggs]
        for acc in accs:
            acc.add(record)
        cells[k] = accs

    def _advance(self, watermark: float) -> list[Any]:
        """Close every window that ``watermark`` has passed; return their rows in order."""
        win = self._windowing
        below = win.first_open(watermark)
        self._closed_below = below
        self._next_close = win.boundary(below)
        if self._cur_idx < below:
            self._forget_current()
        out: list[Any] = []
        if self._open:
            for idx in sorted(idx for idx in self._open if idx < below):
                self._emit(idx, self._open.pop(idx), out)
        if self._held:
            self._release(out)
        return out

    def on_barrier(self, barrier: Any, now: float) -> list[Any]:
        """A source's barrier passes on once every window open when it came has closed
        (their rows go out before it), so that what the source acknowledges is only what a
        closed window has passed on."""
        if not self._open and not self._held:
            return [barrier]
        self._held.append((barrier, max(self._open) if self._open else -math.inf))
        return []

    def _release(self, out: list[Any]) -> None:
        low = min(self._open) if self._open else math.inf
        held = self._held
        while held and held[0][1] < low:
            out.append(held.popleft()[0])

    def _emit(self, idx: int, cells: dict[Any, list[Aggregation]], out: list[Any]) -> None:
        start = self._windowing.start(idx)
        end = self._windowing.end(idx)
        for k, accs in cells.items():
            row = {"key": k, "window_start": start, "window_end": end}
            for acc in accs:
                row.update(acc.result())
            out.append(row)
        self._emitted += len(cells)

    def _idle_watermark(self, now: float) -> float | None:
        """Event time as extrapolated by processing time once the feed has been idle."""
        if self._idle is None or now - self._last_arrival < self._idle:
            return None
        return self._max_event + (now - self._last_arrival) - self._lateness

    def on_tick(self, now: float) -> list[Any]:
        if not self._open:
            return []
        if self._time_field is None:
            w: float | None = now
        else:
            w = self._idle_watermark(now)
        if w is None or w < self._next_close:
            return []
        return self._advance(w)

    def next_deadline(self) -> float | None:
        if not self._open:
            return None
        close = self._windowing.boundary(min(self._open))
        if self._time_field is None:
            return close
        if self._idle is None:
            return None
        # Idle for idle_timeout, and the extrapolated watermark past the window's end.
        wait = max(self._idle, close + self._lateness - self._max_event)
        return self._last_arrival + wait

    def flush(self, now: float) -> list[Any]:
        out: list[Any] = []
        for idx in sorted(self._open):
            self._emit(idx, self._open[idx], out)
        self._open.clear()
        self._forget_current()
        self._release(out)
        return out

    def stats(self) -> dict[str, int]:
        return {"late": self._late, "emitted": self._emitted}


class TumblingWindow(_WindowOperator):
    """``tumbling_window``: back-to-back windows of ``size`` seconds, one row per key each.

    Each row is ``{"key": k, "window_start": s, "window_end": e, ...}`` with the fields of
    ``aggregations``: a name (``"ohlc"``), a table (``{"kind": "max", "field": "last"}``), an
    :class:`~.windows.Aggregation`, or a list of them (see :data:`~.windows.AGGREGATIONS`).

    Time. With ``time_field`` the window is chosen by event time (the field's epoch seconds,
    number or ISO-8601 string) and windows close when the watermark, the newest event time
    seen minus ``allowed_lateness``, reaches their end. A quiet feed never moves that
    watermark, so with ``idle_timeout`` set, once no record has arrived for that many seconds
    of processing time, ``on_tick`` advances the watermark as if event time kept pace with
    the stage clock, and the open windows close on time. Without ``time_field`` the window is
    chosen by the arrival time ``now`` (window bounds are then on the stage clock) and a
    window closes when ``now`` reaches its end, on the next record or tick.

    A record for a window already closed is late: counted in ``stats()["late"]`` and dropped.
    ``stats()["emitted"]`` counts rows. ``flush`` emits every open window, complete or not.
    """

    __slots__ = ()
    kind = "tumbling_window"

    def __init__(
        self,
        size: float,
        aggregations: Any = "count",
        *,
        key: KeySpec = None,
        time_field: str | None = None,
        allowed_lateness: float = 0.0,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__(
            Windowing(size, owner=self.kind),
            key,
            aggregations,
            time_field,
            allowed_lateness,
            idle_timeout,
        )


class SlidingWindow(_WindowOperator):
    """``sliding_window``: windows of ``size`` seconds starting every ``slide`` seconds.

    A record falls in every window that covers it (about ``size / slide`` of them). Rows,
    time, lateness and flushing are as for :class:`TumblingWindow`; a record is late (and
    counted) only when every window that would cover it has closed.
    """

    __slots__ = ()
    kind = "sliding_window"

    def __init__(
        self,
        size: float,
        slide: float,
        aggregations: Any = "count",
        *,
        key: KeySpec = None,
        time_field: str | None = None,
        allowed_lateness: float = 0.0,
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__(
            Windowing(size, slide, owner=self.kind),
            key,
            aggregations,
            time_field,
            allowed_lateness,
            idle_timeout,
        )


# -- registry ---------------------------------------------------------------------------------

OPERATORS: dict[str, Callable[..., Operator]] = {
    cls.kind: cls
    for cls in (
        Map,
        Filter,
        FlatMap,
        Tap,
        KeyBy,
        Conflate,
        Dedupe,
        Batch,
        Throttle,
        TumblingWindow,
        SlidingWindow,
    )
}
"""Operator kind (as definition files spell it) -> constructor taking keyword parameters."""


def make_operator(kind: str, **params: Any) -> Operator:
    """Build the operator of ``kind`` from keyword ``params`` (a definition file's stage table).

    Raises ``ValueError`` for an unknown kind (naming close matches) and ``TypeError`` or
    ``ValueError`` naming a missing, unknown or bad parameter and what was expected.
    """
    factory = OPERATORS.get(kind) if isinstance(kind, str) else None
    if factory is None:
        close = difflib.get_close_matches(str(kind), OPERATORS, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown operator kind {kind!r}{hint} (known: {', '.join(sorted(OPERATORS))})"
        )
    check_params(kind, factory, params)
    return factory(**params)
