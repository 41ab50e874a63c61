"""Window assignment and window aggregations for the window operators.

Sans-I/O and clock-free like the operators: :class:`Windowing` maps a time in seconds to
window indexes and back, and an :class:`Aggregation` folds the records of one key's window
into output fields. The operators (``tumbling_window``, ``sliding_window`` in
:mod:`.operators`) own the keyed state and the watermark.

Windows are numbered: window ``k`` covers ``[k * slide, k * slide + size)``. Every decision
(which windows a time falls in, which windows a watermark closes) compares against the same
computed boundary ``k * slide + size``, so a record is never both assigned to a window and
late for it, and a timer at a boundary closes exactly the windows that end there, whatever
the float rounding of ``size`` and ``slide``.

Aggregations are registered by name in :data:`AGGREGATIONS` so that definition files can
name them: ``"ohlc"``, ``"vwap"``, ``"count"``, ``"sum"``, ``"mean"``, ``"min"``, ``"max"``.
Each instance is both the configuration (which fields to read, which to write) and the
running state of one key's window; :meth:`Aggregation.fresh` makes the empty copy that a
newly opened window starts from.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from numbers import Real
from typing import Any, ClassVar, Self

from .registry import check_params

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "Count",
    "Max",
    "Mean",
    "Min",
    "Ohlc",
    "Sum",
    "Vwap",
    "Windowing",
    "event_seconds",
    "make_aggregation",
    "make_aggregations",
]

RESERVED_FIELDS = ("key", "window_start", "window_end")
"""Fields every window output carries; no aggregation may write them."""


def _positive(owner: str, name: str, value: object, unit: str = "seconds") -> float:
    """Return ``value`` as a finite float > 0, or raise naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number of {unit} > 0, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number of {unit} > 0, got {value!r}")
    return result


def _field(owner: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{owner}: {name} must be a non-empty field name, got {value!r}")
    return value


class Windowing:
    """Tumbling (``slide == size``) or sliding windows over a time axis in seconds."""

    __slots__ = ("size", "slide", "tumbling")

    def __init__(self, size: float, slide: float | None = None, *, owner: str = "window") -> None:
        self.size: float = _positive(owner, "size", size)
        self.slide: float = self.size if slide is None else _positive(owner, "slide", slide)
        if self.slide > self.size:
            raise ValueError(
                f"{owner}: slide must be <= size ({size!r}), got {slide!r} "
                "(a window longer than its slide would leave gaps)"
            )
        self.tumbling: bool = self.slide == self.size

    def boundary(self, k: int) -> float:
        """Where window ``k`` ends, unrounded: the watermark that closes it."""
        return k * self.slide + self.size

    def first_open(self, watermark: float) -> int:
        """Lowest index ``k`` with ``boundary(k) > watermark``: the windows below it have ended."""
        slide, size = self.slide, self.size
        k = int((watermark - size) // slide) + 1
        # The floor division is a guess that float rounding can put one off; the comparisons
        # with boundary() are the definition.
        while k * slide + size <= watermark:
            k += 1
        while (k - 1) * slide + size > watermark:
            k -= 1
        return k

    def span(self, t: float) -> tuple[int, int]:
        """Indexes ``(first, last)`` of the windows that contain time ``t`` (inclusive).

        ``first`` is ``first_open(t)``, so a time is never late for its own windows.
        """
        first = self.first_open(t)
        if self.tumbling:
            return first, first
        slide = self.slide
        last = int(t // slide)
        while (last + 1) * slide <= t:
            last += 1
        while last * slide > t:
            last -= 1
        return first, max(first, last)

    def start(self, k: int) -> float:
        """Start of window ``k`` in seconds (rounded to the nanosecond for tidy output)."""
        return float(round(k * self.slide, 9))

    def end(self, k: int) -> float:
        """End (exclusive) of window ``k`` in seconds (rounded to the nanosecond)."""
        return float(round(k * self.slide + self.size, 9))


def event_seconds(value: Any) -> float:
    """Event time as epoch seconds from a number, a numeric string or an ISO-8601 string.

    ISO-8601 times without a UTC offset are taken as UTC. Raises ``ValueError`` (or
    ``TypeError``) naming the value otherwise.
    """
    if isinstance(value, bool):
        raise TypeError(f"event time must be epoch seconds or an ISO-8601 string, got {value!r}")
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"event time must be epoch seconds or an ISO-8601 string, got {value!r}"
            ) from None
        return _epoch(dt)
    if isinstance(value, datetime):
        return _epoch(value)
    raise TypeError(f"event time must be epoch seconds or an ISO-8601 string, got {value!r}")


def _epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# -- aggregations -----------------------------------------------------------------------------


class Aggregation:
    """One aggregate over the records of one key's window: ``add`` each record, then ``result``.

    Subclasses set ``kind`` (the registry name) and implement all four methods; ``fields``
    names the output fields ``result`` writes, so clashes are caught when a window operator
    is built rather than when its first window closes.
    """

    __slots__ = ()
    kind: ClassVar[str] = ""

    def fresh(self) -> Self:
        """An empty aggregation with the same parameters, for a newly opened window."""
        raise NotImplementedError

    def add(self, record: Any) -> None:
        """Fold one record in."""
        raise NotImplementedError

    def result(self) -> dict[str, Any]:
        """The output fields for the records added so far."""
        raise NotImplementedError

    def fields(self) -> tuple[str, ...]:
        """Names of the fields ``result`` returns."""
        raise NotImplementedError


class Ohlc(Aggregation):
    """``open``, ``high``, ``low``, ``close`` of ``price`` and the sum of ``volume``.

    ``volume=None`` leaves the volume out (for feeds without one).
    """

    __slots__ = ("_price", "_volume", "close", "high", "low", "open", "volume")
    kind = "ohlc"

    def __init__(self, price: str = "last", volume: str | None = "volume") -> None:
        self._price = _field("ohlc", "price", price)
        self._volume = None if volume is None else _field("ohlc", "volume", volume)
        self.open: Any = None
        self.high: Any = None
        self.low: Any = None
        self.close: Any = None
        self.volume: Any = 0

    def fresh(self) -> Ohlc:
        return Ohlc(self._price, self._volume)

    def add(self, record: Any) -> None:
        p = record[self._price]
        if self._volume is not None:
            self.volume += record[self._volume]
        if self.open is None:
            self.open = self.high = self.low = p
        elif p > self.high:
            self.high = p
        elif p < self.low:
            self.low = p
        self.close = p

    def result(self) -> dict[str, Any]:
        out = {"open": self.open, "high": self.high, "low": self.low, "close": self.close}
        if self._volume is not None:
            out["volume"] = self.volume
        return out

    def fields(self) -> tuple[str, ...]:
        base = ("open", "high", "low", "close")
        return (*base, "volume") if self._volume is not None else base


class Vwap(Aggregation):
    """Volume-weighted average price: ``sum(price * volume) / sum(volume)``.

    ``None`` when the window's volume sums to zero. Kept within the window's lowest and
    highest price: float rounding could otherwise put it a hair outside (one price at
    99.4008 with volumes 1 and 10 divides out to 99.40080000000002).
    """

    __slots__ = ("_high", "_low", "_notional", "_output", "_price", "_volume", "_volume_sum")
    kind = "vwap"

    def __init__(self, price: str = "last", volume: str = "volume", output: str = "vwap") -> None:
        self._price = _field("vwap", "price", price)
        self._volume = _field("vwap", "volume", volume)
        self._output = _field("vwap", "output", output)
        self._notional: Any = 0.0
        self._volume_sum: Any = 0
        self._low: Any = None
        self._high: Any = None

    def fresh(self) -> Vwap:
        return Vwap(self._price, self._volume, self._output)

    def add(self, record: Any) -> None:
        v = record[self._volume]
        price = record[self._price]
        self._notional += price * v
        self._volume_sum += v
        if v:
            if self._low is None or price < self._low:
                self._low = price
            if self._high is None or price > self._high:
                self._high = price

    def result(self) -> dict[str, Any]:
        vol = self._volume_sum
        if not vol:
            return {self._output: None}
        vwap = self._notional / vol
        return {self._output: min(max(vwap, self._low), self._high)}

    def fields(self) -> tuple[str, ...]:
        return (self._output,)


class Count(Aggregation):
    """How many records the window holds for the key."""

    __slots__ = ("_output", "n")
    kind = "count"

    def __init__(self, output: str = "count") -> None:
        self._output = _field("count", "output", output)
        self.n = 0

    def fresh(self) -> Count:
        return Count(self._output)

    def add(self, record: Any) -> None:
        self.n += 1

    def result(self) -> dict[str, Any]:
        return {self._output: self.n}

    def fields(self) -> tuple[str, ...]:
        return (self._output,)


class _FieldAggregation(Aggregation):
    """An aggregate of one numeric ``field``; output named ``<kind>_<field>`` unless given."""

    __slots__ = ("_field", "_output")

    def __init__(self, field: str, output: str | None = None) -> None:
        self._field = _field(self.kind, "field", field)
        self._output = (
            f"{self.kind}_{field}" if output is None else _field(self.kind, "output", output)
        )

    def fresh(self) -> Self:
        return type(self)(self._field, self._output)

    def fields(self) -> tuple[str, ...]:
        return (self._output,)


class Sum(_FieldAggregation):
    """Sum of ``field``."""

    __slots__ = ("total",)
    kind = "sum"

    def __init__(self, field: str, output: str | None = None) -> None:
        super().__init__(field, output)
        self.total: Any = 0

    def add(self, record: Any) -> None:
        self.total += record[self._field]

    def result(self) -> dict[str, Any]:
        return {self._output: self.total}


class Mean(_FieldAggregation):
    """Arithmetic mean of ``field``."""

    __slots__ = ("n", "total")
    kind = "mean"

    def __init__(self, field: str, output: str | None = None) -> None:
        super().__init__(field, output)
        self.total: Any = 0
        self.n = 0

    def add(self, record: Any) -> None:
        self.total += record[self._field]
        self.n += 1

    def result(self) -> dict[str, Any]:
        return {self._output: self.total / self.n if self.n else None}


class Min(_FieldAggregation):
    """Smallest value of ``field``."""

    __slots__ = ("value",)
    kind = "min"

    def __init__(self, field: str, output: str | None = None) -> None:
        super().__init__(field, output)
        self.value: Any = None

    def add(self, record: Any) -> None:
        v = record[self._field]
        if self.value is None or v < self.value:
            self.value = v

    def result(self) -> dict[str, Any]:
        return {self._output: self.value}


class Max(_FieldAggregation):
    """Largest value of ``field``."""

    __slots__ = ("value",)
    kind = "max"

    def __init__(self, field: str, output: str | None = None) -> None:
        super().__init__(field, output)
        self.value: Any = None

    def add(self, record: Any) -> None:
        v = record[self._field]
        if self.value is None or v > self.value:
            self.value = v

    def result(self) -> dict[str, Any]:
        return {self._output: self.value}


AGGREGATIONS: dict[str, type[Aggregation]] = {
    cls.kind: cls for cls in (Ohlc, Vwap, Count, Sum, Mean, Min, Max)
}
"""Aggregation name (as definition files spell it) -> class taking keyword parameters."""


def make_aggregation(spec: str | Mapping[str, Any] | Aggregation) -> Aggregation:
    """Build one aggregation from a name (``"ohlc"``), a table with ``kind`` and parameters
    (``{"kind": "max", "field": "last"}``) or an :class:`Aggregation` instance (used as is).
    """
    if isinstance(spec, Aggregation):
        return spec.fresh()
    if isinstance(spec, str):
        kind, params = spec, {}
    elif isinstance(spec, Mapping):
        params = dict(spec)
        kind = params.pop("kind", None)
        if not isinstance(kind, str):
            raise ValueError(
                f"aggregation {dict(spec)!r} needs a 'kind' naming one of {sorted(AGGREGATIONS)}"
            )
    else:
        raise TypeError(
            "an aggregation must be a name, a table with 'kind' and parameters, or an "
            f"Aggregation, got {spec!r}"
        )
    cls = AGGREGATIONS.get(kind)
    if cls is None:
        close = difflib.get_close_matches(kind, AGGREGATIONS, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown aggregation {kind!r}{hint} (known: {', '.join(sorted(AGGREGATIONS))})"
        )
    check_params(f"aggregation {kind!r}", cls, params)
    return cls(**params)


def make_aggregations(
    owner: str, specs: str | Mapping[str, Any] | Aggregation | Iterable[Any]
) -> list[Aggregation]:
    """Build a window's aggregations from one spec or a list of them; output fields must not
    clash with each other or with ``key``, ``window_start`` and ``window_end``.
    """
    if isinstance(specs, str | Mapping | Aggregation):
        specs = [specs]
    try:
        items = list(specs)
    except TypeError:
        raise TypeError(
            f"{owner}: aggregations must be a name, a table or a list of them, got {specs!r}"
        ) from None
    if not items:
        raise ValueError(f"{owner}: aggregations must name at least one aggregation")
    aggs: list[Aggregation] = []
    seen: dict[str, str] = dict.fromkeys(RESERVED_FIELDS, "the window itself")
    for item in items:
        try:
            agg = make_aggregation(item)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{owner}: {exc}") from None
        for name in agg.fields():
            if name in seen:
                raise ValueError(
                    f"{owner}: aggregation {agg.kind!r} writes field {name!r}, already written "
                    f"by {seen[name]}; rename one with its output parameter"
                )
            seen[name] = f"aggregation {agg.kind!r}"
        aggs.append(agg)
    return aggs
