"""The embedded gateway's data, sans-I/O: topics as keyed tables, snapshots, and the batched
updates of subscriptions. Time is passed in; nothing here locks, sleeps or logs.

1. **Topics.** A topic is a keyed table declared up front (:class:`TopicSpec`): key columns
   and value columns, each of a type from :data:`COLUMN_TYPES`. Values are held in one
   canonical Python form per type (:func:`coerce_value`); a timestamp is an int of
   nanoseconds since 1970-01-01 UTC (:func:`format_timestamp` gives its text for JSON).
2. **Upsert.** Rows come as a list of dicts or as a column dict (``{"col": [..]}``, the
   wire's shape). A row replaces the row with the same key; it may leave value columns out
   (they keep their values) but a new key needs every column. A batch is checked whole before
   anything changes: a bad row refuses the batch with a :class:`TopicError` naming the row
   and the column.
3. **Filters** (the wire's ``subTopic``): a dict from key column to a value or a list of
   values; a row matches when each filtered column holds one of its values; empty: every
   row. Filters name key columns only (the protocol's error 64 otherwise).
4. **Snapshots** are column dicts with every column, keys first, rows in the order their
   keys were first inserted.
5. **Batching.** A subscription collects the keys of the rows that changed (an upsert that
   leaves a row as it was is no change) and gets them, with their latest values, on a grid
   of ``update_interval`` seconds from the moment it subscribed (the spec's gateway: every
   5 s): at the first grid point at or after the change, never twice at one point, never at
   the moment it subscribed (a ``subsnap``'s snapshot covers that). Subscriptions without
   changes get nothing. :meth:`Topics.due` hands out what is due and
   :meth:`Topics.next_deadline` says when to call it next.
6. **Fan-out** costs the subscriptions that may match a changed row: they are indexed by
   topic and by the values of one key column of their filter (the most selective one); a
   subscription with an empty filter is indexed by its topic.
7. **Bounds.** At most ``max_rows`` rows per topic and ``max_bytes`` for every topic's rows
   (an estimate: :data:`ROW_OVERHEAD` per row plus each value's size); an upsert past either
   is refused whole with :class:`LimitError`. Rows are never deleted, and what a subscription
   holds between updates is a set of keys of its topic's rows, so it is bounded by the table.
"""

from __future__ import annotations

import calendar
import difflib
import heapq
import itertools
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ...actors.serving import TopicIndex

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "DEFAULT_UPDATE_INTERVAL",
    "ERR_BAD_TYPE",
    "ERR_FILTER_COLUMNS",
    "ERR_MISSING_INPUT",
    "ERR_NO_TOPIC",
    "ERR_PAYLOAD_INVALID",
    "ROW_OVERHEAD",
    "Column",
    "Columns",
    "Filter",
    "LimitError",
    "TopicError",
    "TopicSpec",
    "Topics",
    "check_type",
    "coerce_value",
    "format_timestamp",
    "parse_timestamp",
]

COLUMN_TYPES: Mapping[str, str] = {
    "symbol": "str (a q symbol: short, repeated text such as a currency pair)",
    "string": "str (a q char vector: free text)",
    "float": "float (64-bit; finite)",
    "long": "int (64-bit)",
    "int": "int (32-bit)",
    "boolean": "bool",
    "timestamp": "int ns since 1970-01-01 UTC (ISO 8601 text or a datetime accepted)",
}
"""Column types by their q names, with the Python value each is held as."""

DEFAULT_UPDATE_INTERVAL = 5.0
"""Seconds between a subscription's updates: the spec's gateway sends them every 5 s."""
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_BYTES = 64 << 20
ROW_OVERHEAD = 200
"""Bytes a row costs beyond its values (its key tuple, value tuple, slot and dict entry)."""

# The spec's error codes these checks map to.
ERR_PAYLOAD_INVALID = 22
ERR_BAD_TYPE = 61
ERR_MISSING_INPUT = 62
ERR_NO_TOPIC = 63
ERR_FILTER_COLUMNS = 64

Columns = dict[str, list[Any]]
"""Column-oriented data: column name to its values, one per row (the wire's ``data``)."""
Filter = tuple[tuple[str, frozenset[Any]], ...]
"""A checked filter: ``(key column, values)`` pairs in column order; hashable, so equal
filters compare equal (the gateway's "already subscribed")."""

_INT32 = 1 << 31
_INT64 = 1 << 63
_EPOCH_2000_NS = 946_684_800 * 10**9  # q timestamps count from 2000.01.01
_NS = 10**9
_SHOW = 60  # characters of a bad value shown in an error


class TopicError(ValueError):
    """A request the topics refuse: unknown topic, bad filter, bad row. ``code`` is the
    spec's error code the gateway answers with (``ERR_*``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class LimitError(ValueError):
    """An upsert past ``max_rows`` or ``max_bytes``; the text says which."""


class Column(NamedTuple):
    """A column: its name and its type (a key of :data:`COLUMN_TYPES`)."""

    name: str
    type: str


@dataclass(frozen=True)
class TopicSpec:
    """A topic's declaration: name, key columns, value columns and rows to start with."""

    name: str
    keys: tuple[Column, ...]
    values: tuple[Column, ...] = ()
    rows: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a topic's name must be a non-empty string, got {self.name!r}")
        if not self.keys:
            raise ValueError(f"topic {self.name!r} needs at least one key column")
        seen: set[str] = set()
        for column in (*self.keys, *self.values):
            if not isinstance(column.name, str) or not column.name:
                raise ValueError(
                    f"topic {self.name!r}: a column's name must be a non-empty string, "
                    f"got {column.name!r}"
                )
            if column.name in seen:
                raise ValueError(f"topic {self.name!r}: duplicate column {column.name!r}")
            seen.add(column.name)
            check_type(column.type, f"topic {self.name!r} column {column.name!r}")

    @property
    def columns(self) -> tuple[Column, ...]:
        """Every column, keys first."""
        return (*self.keys, *self.values)


def check_type(type_name: object, where: str) -> str:
    """``type_name`` when it is a column type; ValueError naming ``where`` otherwise."""
    if isinstance(type_name, str) and type_name in COLUMN_TYPES:
        return type_name
    hint = ""
    if isinstance(type_name, str):
        close = difflib.get_close_matches(type_name, list(COLUMN_TYPES), n=1)
        if type_name == "bool":
            close = ["boolean"]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(
        f"{where}: unknown column type {_show(type_name)}{hint}; "
        f"expected one of {', '.join(COLUMN_TYPES)}"
    )


# --------------------------------------------------------------------------- values


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def coerce_value(type_name: str, value: object) -> Any:
    """``value`` in its canonical form for a column of ``type_name``; ValueError saying what
    was expected otherwise (no silent conversions: a float is no long, a bool no number)."""
    if type_name in ("symbol", "string"):
        if isinstance(value, str):
            return value
        expected = "a string"
    elif type_name == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
        expected = "a float (a finite number)"
    elif type_name in ("long", "int"):
        bound = _INT64 if type_name == "long" else _INT32
        # The type's smallest value is q's null: refused, like every other null.
        if isinstance(value, int) and not isinstance(value, bool) and -bound < value < bound:
            return value
        expected = f"a {type_name} (an integer from {-bound + 1} to {bound - 1})"
    elif type_name == "boolean":
        if isinstance(value, bool):
            return value
        expected = "a boolean (true or false)"
    elif type_name == "timestamp":
        ns = _timestamp(value)
        if ns is not None and -_INT64 < ns - _EPOCH_2000_NS < _INT64:
            return ns
        expected = (
            "a timestamp (ISO 8601 text, a datetime, or an int of ns since 1970-01-01 UTC, "
            "within q's range 1707-09-22 to 2292-04-10)"
        )
    else:
        raise ValueError(f"unknown column type {type_name!r}")
    raise ValueError(f"must be {expected}, got {_kind(value)} {_show(value)}")


def _timestamp(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = calendar.timegm(aware.utctimetuple())
        return seconds * _NS + aware.microsecond * 1000
    return None


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(text: str) -> int:
    """ISO 8601 text (``2024-05-01T12:30:00.123456789Z``; no zone means UTC) as ns since
    1970-01-01 UTC; ValueError otherwise. Nanoseconds are kept, unlike ``datetime``."""
    match = _ISO.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {_show(text)}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    try:
        datetime(*fields)  # range checks: month 13, February 30, hour 25...
    except ValueError as exc:
        raise ValueError(f"not a valid timestamp: {_show(text)} ({exc})") from None
    ns = calendar.timegm((*fields, 0, 0, 0)) * _NS + int((fraction or "0").ljust(9, "0"))
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        if int(digits[:2]) > 23 or int(digits[2:]) > 59:
            raise ValueError(f"not a valid timestamp: {_show(text)} (zone {zone})")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * _NS
    return ns


def format_timestamp(ns: int) -> str:
    """ns since 1970-01-01 UTC as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnn`` (UTC, no zone: the form
    q's ``.j.j`` gives a timestamp)."""
    seconds, fraction = divmod(ns, _NS)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}"


def _cost(value: object) -> int:
    return sys.getsizeof(value)


# --------------------------------------------------------------------------- tables

_Key = tuple[Any, ...]
_IndexKey = tuple[str, str | None, Any]  # (topic, key column, value); (topic, None, None): all


class _Row:
    __slots__ = ("pos", "size", "values")

    def __init__(self, pos: int, values: tuple[Any, ...], size: int) -> None:
        self.pos = pos  # insertion order of the key
        self.values = values  # every column, keys first
        self.size = size


class _Table:
    __slots__ = ("columns", "index_of", "name", "next_pos", "nkeys", "rows", "spec", "types")

    def __init__(self, spec: TopicSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.columns = tuple(c.name for c in spec.columns)
        self.types = tuple(c.type for c in spec.columns)
        self.nkeys = len(spec.keys)
        self.index_of = {name: i for i, name in enumerate(self.columns)}
        self.rows: dict[_Key, _Row] = {}
        self.next_pos = 0

    def to_columns(self, rows: Iterable[_Row]) -> Columns:
        values = [row.values for row in rows]
        if not values:
            return {name: [] for name in self.columns}
        by_column = zip(*values, strict=True)
        return {name: list(col) for name, col in zip(self.columns, by_column, strict=True)}


class _Sub:
    __slots__ = ("conds", "id", "last_k", "pending", "scheduled", "start", "table")

    def __init__(
        self, sub_id: str, table: _Table, conds: tuple[tuple[int, frozenset[Any]], ...], now: float
    ) -> None:
        self.id = sub_id
        self.table = table
        self.conds = conds  # (key column index, values), every one must hold
        self.start = now
        self.last_k = 0  # the grid point of the last update (0: none yet)
        self.scheduled: int | None = None  # the grid point it waits for, while it has changes
        self.pending: dict[_Key, None] = {}  # changed keys, in the order they first changed

    def matches(self, key: _Key) -> bool:
        return all(key[i] in values for i, values in self.conds)


# --------------------------------------------------------------------------- the catalogue


class Topics:
    """Every topic of the gateway, their rows and the subscriptions to them."""

    def __init__(
        self,
        specs: Iterable[TopicSpec] = (),
        *,
        update_interval: float = DEFAULT_UPDATE_INTERVAL,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        now: float = 0.0,
    ) -> None:
        if isinstance(update_interval, bool) or not (
            isinstance(update_interval, int | float) and update_interval > 0
        ):
            raise ValueError(f"update_interval must be > 0 seconds, got {update_interval!r}")
        for name, limit in (("max_rows", max_rows), ("max_bytes", max_bytes)):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"Topics {name} must be an int >= 1, got {limit!r}")
        self.update_interval = float(update_interval)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.bytes = 0
        """What every topic's rows cost (the estimate ``max_bytes`` bounds)."""
        self._tables: dict[str, _Table] = {}
        self._subs: dict[str, _Sub] = {}
        self._index: TopicIndex[_IndexKey, str] = TopicIndex()
        self._heap: list[tuple[float, int, int, _Sub]] = []  # (deadline, order, k, sub)
        self._order = itertools.count()
        for spec in specs:
            self.define(spec, now)

    def __repr__(self) -> str:
        return (
            f"<Topics {len(self._tables)} topics, {len(self._subs)} subscriptions, "
            f"bytes={self.bytes}/{self.max_bytes}>"
        )

    # ----------------------------------------------------------------- topics

    def define(self, spec: TopicSpec, now: float = 0.0) -> None:
        """Add a topic and upsert its rows; ValueError when the name is taken."""
        if spec.name in self._tables:
            raise ValueError(f"topic {spec.name!r} is already defined")
        self._tables[spec.name] = _Table(spec)
        if spec.rows:
            try:
                self.upsert(spec.name, list(spec.rows), now)
            except ValueError:
                del self._tables[spec.name]
                raise

    def names(self) -> list[str]:
        """Every topic's name, in the order they were defined."""
        return list(self._tables)

    def exists(self, topic: str) -> bool:
        """True when ``topic`` is defined (the spec's error 63 otherwise)."""
        return topic in self._tables

    def spec(self, topic: str) -> TopicSpec:
        """The topic's declaration (its columns and their types); TopicError when unknown."""
        return self._table(topic).spec

    def key_columns(self, topic: str) -> tuple[str, ...]:
        """The topic's key columns, in order: what a filter may name."""
        table = self._table(topic)
        return table.columns[: table.nkeys]

    def value_columns(self, topic: str) -> tuple[str, ...]:
        """The topic's value columns, in order."""
        table = self._table(topic)
        return table.columns[table.nkeys :]

    def row_count(self, topic: str) -> int:
        """How many rows the topic holds."""
        return len(self._table(topic).rows)

    def _table(self, topic: str) -> _Table:
        table = self._tables.get(topic) if isinstance(topic, str) else None
        if table is None:
            known = ", ".join(self._tables) or "none"
            raise TopicError(f"topic {_show(topic)} does not exist (topics: {known})", ERR_NO_TOPIC)
        return table

    # ----------------------------------------------------------------- filters

    def check_filter(self, topic: str, filter: Mapping[str, Any] | None) -> Filter:
        """``filter`` checked against the topic's key columns and their types, in its
        canonical form; TopicError (with the spec's code) otherwise."""
        table = self._table(topic)
        return tuple((table.columns[i], values) for i, values in self._conds(table, filter))

    def _conds(
        self, table: _Table, filter: Mapping[str, Any] | None
    ) -> tuple[tuple[int, frozenset[Any]], ...]:
        if filter is None:
            return ()
        if not isinstance(filter, Mapping):
            raise TopicError(
                f"topic {table.name!r}: a filter must be a dict from key column to value(s), "
                f"got {_kind(filter)} {_show(filter)}",
                ERR_PAYLOAD_INVALID,
            )
        conds: list[tuple[int, frozenset[Any]]] = []
        keys = table.columns[: table.nkeys]
        for column, raw in filter.items():
            i = table.index_of.get(column) if isinstance(column, str) else None
            if i is None or i >= table.nkeys:
                what = "a value column" if i is not None else "not a column"
                raise TopicError(
                    f"topic {table.name!r}: filter column {_show(column)} is {what}; a filter "
                    f"names key columns ({', '.join(keys)})",
                    ERR_FILTER_COLUMNS,
                )
            many = raw if isinstance(raw, list | tuple) else (raw,)
            if not many:
                raise TopicError(
                    f"topic {table.name!r}: filter column {column!r} has an empty list of "
                    f"values (it would match no row)",
                    ERR_PAYLOAD_INVALID,
                )
            try:
                values = frozenset(coerce_value(table.types[i], value) for value in many)
            except ValueError as exc:
                raise TopicError(
                    f"topic {table.name!r}: filter column {column!r}: {exc}", ERR_BAD_TYPE
                ) from None
            conds.append((i, values))
        conds.sort()
        return tuple(conds)

    # ----------------------------------------------------------------- data

    def upsert(
        self,
        topic: str,
        rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        now: float,
    ) -> int:
        """Insert or replace rows (a list of dicts or a column dict) and mark them for the
        subscriptions they match. Returns how many rows changed. The batch is checked whole
        first: TopicError naming the row and the column, or LimitError, and nothing
        changes."""
        table = self._table(topic)
        staged = self._stage(table, rows)
        new_keys = sum(1 for key in staged if key not in table.rows)
        if new_keys and len(table.rows) + new_keys > self.max_rows:
            raise LimitError(
                f"topic {table.name!r}: upsert refused: {_count(new_keys, 'new row')} would "
                f"take it past max_rows={self.max_rows} (it has {len(table.rows)})"
            )
        sizes = {key: ROW_OVERHEAD + sum(map(_cost, values)) for key, values in staged.items()}
        delta = sum(
            size - (table.rows[key].size if key in table.rows else 0) for key, size in sizes.items()
        )
        if delta > 0 and self.bytes + delta > self.max_bytes:
            raise LimitError(
                f"topic {table.name!r}: upsert refused: {_count(len(staged), 'row')} would "
                f"take the topics' data to about {self.bytes + delta} bytes, past "
                f"max_bytes={self.max_bytes}"
            )
        changed = 0
        for key, values in staged.items():
            row = table.rows.get(key)
            if row is None:
                table.rows[key] = _Row(table.next_pos, values, sizes[key])
                table.next_pos += 1
            elif row.values == values:
                continue
            else:
                self.bytes -= row.size
                row.values, row.size = values, sizes[key]
            self.bytes += sizes[key]
            changed += 1
            self._mark(table, key, now)
        return changed

    def _stage(
        self, table: _Table, rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
    ) -> dict[_Key, tuple[Any, ...]]:
        """Every row checked and merged with what it replaces, by key (a later row of the
        batch over an earlier one)."""
        staged: dict[_Key, tuple[Any, ...]] = {}
        nkeys, columns, types = table.nkeys, table.columns, table.types
        for label, record in _records(table, rows):
            unknown = [c for c in record if c not in table.index_of]
            if unknown:
                col = unknown[0]
                close = difflib.get_close_matches(str(col), columns, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TopicError(
                    f"topic {table.name!r} {label}: unknown column {_show(col)} "
                    f"(columns: {', '.join(columns)}){hint}",
                    ERR_PAYLOAD_INVALID,
                )
            values: list[Any] = [None] * len(columns)
            for i, (name, type_name) in enumerate(zip(columns, types, strict=True)):
                if name not in record:
                    if i < nkeys:
                        raise TopicError(
                            f"topic {table.name!r} {label}: missing key column {name!r}",
                            ERR_MISSING_INPUT,
                        )
                    continue
                try:
                    values[i] = coerce_value(type_name, record[name])
                except ValueError as exc:
                    raise TopicError(
                        f"topic {table.name!r} {label}: column {name!r} {exc}", ERR_BAD_TYPE
                    ) from None
            key = tuple(values[:nkeys])
            before = staged.get(key)
            if before is None and key in table.rows:
                before = table.rows[key].values
            for i in range(nkeys, len(columns)):
                if columns[i] in record:
                    continue
                if before is None:
                    raise TopicError(
                        f"topic {table.name!r} {label}: new key {_show(key)} needs every "
                        f"column; missing {columns[i]!r}",
                        ERR_MISSING_INPUT,
                    )
                values[i] = before[i]
            staged[key] = tuple(values)
        return staged

    def snapshot(self, topic: str, filter: Mapping[str, Any] | None = None) -> Columns:
        """The rows matching ``filter`` (None or empty: all), every column, keys first, in
        the order their keys were first inserted."""
        table = self._table(topic)
        conds = self._conds(table, filter)
        if not conds:
            return table.to_columns(table.rows.values())
        if len(conds) == table.nkeys:
            # Every key column pinned: look the keys up rather than scan the table.
            size = math.prod(len(values) for _, values in conds)
            if size <= len(table.rows):
                found = [
                    row
                    for key in itertools.product(*(values for _, values in conds))
                    if (row := table.rows.get(key)) is not None
                ]
                found.sort(key=lambda row: row.pos)
                return table.to_columns(found)
        return table.to_columns(
            row for key, row in table.rows.items() if all(key[i] in values for i, values in conds)
        )

    # ----------------------------------------------------------------- subscriptions

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are live."""
        return len(self._subs)

    def subscribe(
        self, sub_id: str, topic: str, filter: Mapping[str, Any] | None, now: float
    ) -> Filter:
        """Start batching the changes of ``topic``'s rows matching ``filter`` for
        ``sub_id``; returns the checked filter. TopicError for an unknown topic or a bad
        filter, ValueError for an ``sub_id`` already live."""
        if sub_id in self._subs:
            raise ValueError(f"subscription {sub_id!r} already exists")
        table = self._table(topic)
        conds = self._conds(table, filter)
        sub = _Sub(sub_id, table, conds, now)
        self._subs[sub_id] = sub
        if not conds:
            self._index.add(sub_id, (table.name, None, None))
        else:
            i, values = min(conds, key=lambda cond: len(cond[1]))
            name = table.columns[i]
            for value in values:
                self._index.add(sub_id, (table.name, name, value))
        return tuple((table.columns[i], values) for i, values in conds)

    def unsubscribe(self, sub_id: str) -> bool:
        """Stop ``sub_id`` (what it had not been sent is dropped); False when it was not
        live (the spec's error 43)."""
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return False
        self._index.remove_subscriber(sub_id)
        if len(self._heap) > 2 * len(self._subs) + 64:
            self._heap = [entry for entry in self._heap if self._live(entry)]
            heapq.heapify(self._heap)
        return True

    def topic_of(self, sub_id: str) -> str | None:
        """The topic of a live subscription, None when it is not live."""
        sub = self._subs.get(sub_id)
        return None if sub is None else sub.table.name

    def _mark(self, table: _Table, key: _Key, now: float) -> None:
        """Add ``key`` to every subscription its row matches (rule 6)."""
        index, subs, name = self._index, self._subs, table.name
        candidates = index.match((name, None, None))
        for i in range(table.nkeys):
            candidates += index.match((name, table.columns[i], key[i]))
        for sub_id in candidates:
            sub = subs[sub_id]
            if key in sub.pending or (len(sub.conds) > 1 and not sub.matches(key)):
                continue
            sub.pending[key] = None
            if sub.scheduled is None:
                self._schedule(sub, now)

    def _schedule(self, sub: _Sub, now: float) -> None:
        interval = self.update_interval
        k = max(sub.last_k + 1, math.ceil((now - sub.start) / interval))
        sub.scheduled = k
        heapq.heappush(self._heap, (sub.start + k * interval, next(self._order), k, sub))

    def _live(self, entry: tuple[float, int, int, _Sub]) -> bool:
        _, _, k, sub = entry
        return self._subs.get(sub.id) is sub and sub.scheduled == k

    def due(self, now: float) -> list[tuple[str, Columns]]:
        """``(sub_id, columns)`` for every subscription whose update is due at ``now``: the
        latest values of the rows that changed since its last update, in the order they
        first changed."""
        out: list[tuple[str, Columns]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            sub = entry[3]
            rows = sub.table.rows
            out.append((sub.id, sub.table.to_columns(rows[key] for key in sub.pending)))
            sub.pending = {}
            sub.last_k = entry[2]
            sub.scheduled = None
        return out

    def next_deadline(self) -> float | None:
        """When the next update is due, None while no subscription has changes."""
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None


def _records(
    table: _Table, rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(label, row)`` for each row of a list of dicts or of a column dict."""
    if isinstance(rows, Mapping):
        length: tuple[str, int] | None = None
        for column, values in rows.items():
            if not isinstance(values, list | tuple):
                raise TopicError(
                    f"topic {table.name!r}: column {_show(column)} must be a list of values "
                    f"(a column dict), got {_kind(values)} {_show(values)}",
                    ERR_PAYLOAD_INVALID,
                )
            if length is None:
                length = (column, len(values))
            elif len(values) != length[1]:
                raise TopicError(
                    f"topic {table.name!r}: column {_show(column)} has {len(values)} values, "
                    f"column {_show(length[0])} has {length[1]}",
                    ERR_PAYLOAD_INVALID,
                )
        names = list(rows)
        for n in range(length[1] if length is not None else 0):
            yield f"row {n}", {name: rows[name][n] for name in names}
        return
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise TopicError(
            f"topic {table.name!r}: rows must be a list of dicts or a column dict, "
            f"got {_kind(rows)}",
            ERR_PAYLOAD_INVALID,
        )
    for n, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TopicError(
                f"topic {table.name!r} row {n}: must be a dict from column to value, "
                f"got {_kind(row)} {_show(row)}",
                ERR_PAYLOAD_INVALID,
            )
        yield f"row {n}", row
