"""Sources: where a pipeline's records come from.

- ``synthetic_prices``: a seeded random walk of bid/ask/last/volume per symbol, at a rate.
- ``jsonl_file``: replays a JSON-lines file (and its rotated parts), as fast as possible or
  at the recorded speed.
- ``inlet``: records told to the stage's address enter the pipeline (for your own actors,
  threads and tests).

Finite sources (``synthetic_prices`` with ``limit`` or ``duration``, ``jsonl_file``) report
``done`` when they have produced everything; ``Pipeline.run()`` returns once every source is
done and the pipeline has drained. Constructors only check their parameters (they raise at
once on bad ones); files and connections are opened when the stage starts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from ._json import loads
from .plugins import KindRegistry
from .registry import make, positive_int
from .rotation import rotated_parts
from .stage import Source, StageContext
from .synthetic import SyntheticPrices

__all__ = [
    "SOURCES",
    "InletSource",
    "JsonlFileSource",
    "SyntheticPricesSource",
    "make_source",
]

_ASAP = -math.inf
"""``next_poll`` of a source with records ready now."""


def _positive(owner: str, name: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number > 0, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return result


# -- synthetic_prices ---------------------------------------------------------------------


class SyntheticPricesSource(Source):
    """``synthetic_prices``: seeded random-walk quotes and trades, ``rate`` records a second.

    Records are ``{"symbol", "bid", "ask", "last", "volume", "timestamp"}`` (see
    SyntheticPrices). ``rate=None`` produces as fast as the pipeline takes them, ``batch``
    records per step. The source is done after ``limit`` records or ``duration`` seconds
    (neither: it never ends). ``timestamps="wall"`` stamps each batch with the wall clock;
    ``"derived"`` gives ``start_time + i / rate`` (reproducible across runs). ``tick`` is
    the pacing step in seconds: records due within it go out together.
    """

    def __init__(
        self,
        symbols: Sequence[str] | int = ("AAPL", "MSFT", "GOOG"),
        rate: float | None = 1000.0,
        seed: int = 0,
        limit: int | None = None,
        duration: float | None = None,
        batch: int = 1000,
        tick: float = 0.02,
        timestamps: str = "wall",
        start_price: float | Mapping[str, float] = 100.0,
        volatility: float = 0.001,
        spread: float = 0.0002,
        max_volume: int = 1000,
        decimals: int | None = 4,
        start_time: float = 1_700_000_000.0,
    ) -> None:
        owner = "synthetic_prices"
        self._rate = _positive(owner, "rate", rate, allow_none=True)
        self._limit = positive_int(owner, "limit", limit, allow_none=True)
        self._duration = _positive(owner, "duration", duration, allow_none=True)
        self._batch = positive_int(owner, "batch", batch) or 1
        self._tick = _positive(owner, "tick", tick) or 0.02
        if timestamps not in ("wall", "derived"):
            raise ValueError(f"{owner}: timestamps must be 'wall' or 'derived', got {timestamps!r}")
        self._wall = timestamps == "wall"
        self._prices = SyntheticPrices(
            symbols,
            seed,
            start_price,
            volatility,
            spread,
            max_volume=max_volume,
            decimals=decimals,
            start_time=start_time,
            interval=1.0 / self._rate if self._rate else 0.001,
        )
        self._t0: float | None = None
        self._produced = 0
        self._next: float | None = _ASAP
        self._done = False

    def skip(self, count: int) -> None:
        self._prices.next_batch(count)
        self._produced = count

    def poll(self, now: float) -> list[Any]:
        if self._done:
            return []
        if self._t0 is None:
            self._t0 = now
        t0 = self._t0
        rate = self._rate
        due = self._produced + self._batch if rate is None else int((now - t0) * rate)
        if self._limit is not None:
            due = min(due, self._limit)
        if self._duration is not None and rate is not None:
            due = min(due, int(self._duration * rate))
        n = max(0, min(due - self._produced, self._batch))
        records = self._prices.next_batch(n, time.time() if self._wall else None) if n else []
        self._produced += n
        ended = (self._limit is not None and self._produced >= self._limit) or (
            self._duration is not None and now - t0 >= self._duration
        )
        if ended:
            self._done = True
            self._next = None
        elif rate is None or self._produced < due:
            self._next = _ASAP  # more are due already (or no pacing): go again at once
        else:
            self._next = max(t0 + (self._produced + 1) / rate, now + self._tick)
        return records

    def next_poll(self) -> float | None:
        return self._next

    @property
    def done(self) -> bool:
        return self._done

    def stop(self) -> None:
        self._next = None

    def stats(self) -> dict[str, int]:
        return {"produced": self._produced}


# -- jsonl_file ---------------------------------------------------------------------------

TIME_UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


class JsonlFileSource(Source):
    """``jsonl_file``: replays a JSON-lines file, one record (a JSON object) per line.

    ``speed=None`` reads as fast as the pipeline takes records; ``speed=1.0`` replays at the
    recorded pace (``2.0`` twice as fast), from each record's ``time_field`` in
    ``time_unit`` (``"s"``, ``"ms"``, ``"us"``, ``"ns"``); a record without it goes at
    once. With ``rotated=True`` the rotated parts the ``jsonl_file`` sink left
    (``file.1.jsonl``, ``file.2.jsonl``, ...) are read first, oldest first. A line that is
    not a JSON object is counted as failed and skipped. Done at the end of the last file
    (or after ``limit`` records).
    """

    def __init__(
        self,
        path: str | Path,
        speed: float | None = None,
        time_field: str = "timestamp",
        time_unit: str = "s",
        rotated: bool = True,
        limit: int | None = None,
        batch: int = 1000,
    ) -> None:
        owner = "jsonl_file source"
        if not isinstance(path, str | Path) or not str(path):
            raise TypeError(f"{owner}: path must be a file path, got {path!r}")
        self._path = Path(path)
        self._speed = _positive(owner, "speed", speed, allow_none=True)
        if not isinstance(time_field, str) or not time_field:
            raise ValueError(f"{owner}: time_field must be a field name, got {time_field!r}")
        if time_unit not in TIME_UNITS:
            raise ValueError(
                f"{owner}: time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}"
            )
        self._time_field = time_field
        self._per_second = TIME_UNITS[time_unit]
        self._rotated = rotated
        self._limit = positive_int(owner, "limit", limit, allow_none=True)
        self._batch = positive_int(owner, "batch", batch) or 1
        if not self._files():
            raise FileNotFoundError(f"{owner}: no such file: {str(self._path)!r}")
        self._ctx: StageContext | None = None
        self._lines: Generator[bytes, None, None] | None = None
        self._ahead: Any = None  # the next record, read but not yet due
        self._has_ahead = False
        self._produced = 0
        self._bad = 0
        self._eof = False
        self._stopped = False
        self._origin: tuple[float, float] | None = None  # (stage clock, record time)

    def _files(self) -> list[Path]:
        if self._rotated:
            return rotated_parts(self._path)
        return [self._path] if self._path.exists() else []

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        self._lines = self._read(self._files())
        self._eof = self._has_ahead = False
        self._stopped = False
        for _ in range(self._produced):  # resume: the records already produced
            if not self._advance():
                break
            self._has_ahead = False

    def _read(self, files: list[Path]) -> Generator[bytes, None, None]:
        for path in files:
            with path.open("rb") as handle:
                yield from handle

    def _advance(self) -> bool:
        """Read the next record into the look-ahead slot; False at the end."""
        lines = self._lines
        if lines is None or self._stopped:
            return False
        for line in lines:
            if not line.strip():
                continue
            try:
                record = loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"a JSONL record must be an object, got {line[:80]!r}")
            except ValueError as exc:  # a JSON decode error is a ValueError
                self._bad += 1
                if self._ctx is not None:
                    self._ctx.record_failed(line, exc)
                continue
            self._ahead = record
            self._has_ahead = True
            return True
        self._has_ahead = False
        self._eof = True
        return False

    def skip(self, count: int) -> None:
        self._produced = count

    def _due(self, record: dict[str, Any], now: float | None = None) -> float:
        """When ``record`` is due on the stage clock (replay speed; the first timed record
        read fixes the origin at ``now``)."""
        if self._speed is None:
            return _ASAP
        value = record.get(self._time_field)
        if isinstance(value, bool) or not isinstance(value, Real):
            return _ASAP
        seconds = float(value) / self._per_second
        if self._origin is None:
            if now is None:
                return _ASAP
            self._origin = (now, seconds)
        start, first = self._origin
        return start + (seconds - first) / self._speed

    def poll(self, now: float) -> list[Any]:
        out: list[Any] = []
        while len(out) < self._batch and not self.done:
            if not self._has_ahead and not self._advance():
                break
            if self._due(self._ahead, now) > now:
                break
            out.append(self._ahead)
            self._has_ahead = False
            self._produced += 1
        if self.done:
            self.stop()
        return out

    def next_poll(self) -> float | None:
        if self.done or self._stopped:
            return None
        if not self._has_ahead:
            return _ASAP
        return self._due(self._ahead)

    @property
    def done(self) -> bool:
        return (self._eof and not self._has_ahead) or (
            self._limit is not None and self._produced >= self._limit
        )

    def stop(self) -> None:
        self._stopped = True
        if self._lines is not None:
            self._lines.close()  # closes the open file
        self._lines = None

    def stats(self) -> dict[str, int]:
        return {"produced": self._produced, "bad_lines": self._bad}


# -- inlet --------------------------------------------------------------------------------


class InletSource(Source):
    """``inlet``: produces nothing itself; records told to the stage's address (by your own
    actors, threads or tests: ``pipeline.address(name).tell_many(records)``) enter the
    pipeline there. Never done."""


# -- registry -----------------------------------------------------------------------------

SOURCES: KindRegistry[Source] = KindRegistry(
    "sources",
    {
        "synthetic_prices": SyntheticPricesSource,
        "jsonl_file": JsonlFileSource,
        "inlet": InletSource,
    },
)
"""Source kind (as definition files spell it) -> constructor taking keyword parameters:
the built-in kinds and those the installed adapters add (``keysquare``, ...)."""


def make_source(kind: str, **params: Any) -> Source:
    """Build the source of ``kind``; ValueError for an unknown kind, TypeError or ValueError
    naming a bad parameter."""
    return make("source", SOURCES, kind, params)
