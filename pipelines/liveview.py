"""The live terminal view of a running pipeline: one panel per link, the stages, the latest
bars, and a footer with the pipeline's name, uptime and health.

:class:`LiveModel` is the sans-I/O part: fed :class:`~.metrics.Snapshot` values with the
time passed in, it works out each link's state, rate, lag, reconnects and gaps, and keeps the
latest rows of a record stream (the bars) with their time. :func:`render` turns a model into
a rich renderable; :class:`LiveView` redraws it on a thread from a ``read()`` callable, as
``actorwire run`` does on a terminal. ``actorwire top URL`` feeds the same model from a
running pipeline's ``/metrics`` (:mod:`.top`). rich is imported only when drawing.
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import structlog

from .metrics import Health, Snapshot, health

__all__ = [
    "BAR_FIELDS",
    "BarRow",
    "LatestRecords",
    "LinkView",
    "LiveModel",
    "LiveView",
    "StageView",
    "format_time",
    "render",
]

log = structlog.get_logger("actorwire.liveview")

BAR_FIELDS = ("open", "high", "low", "close", "volume", "vwap")
"""The columns a bar shows when its rows have them (else the rows' own fields)."""
KEY_FIELDS = ("key", "symbol", "id")
"""Where a row's key is looked for when no ``key_field`` is given."""
TIME_FIELDS = ("timestamp", "time", "ts")
"""Where a row's time is looked for when it has no window and no ``time_field`` is given."""
MAX_OTHER_COLUMNS = 8
EPOCH_UNITS = ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3))
"""Epoch times in ns, us or ms, told apart by size (seconds stay below 1e11 until 5138)."""
STATE_STYLES = {
    "CONNECTED": "bold green",
    "CONNECTING": "yellow",
    "RECOVERING": "yellow",
    "RECONNECTING": "bold yellow",
    "FAILED": "bold red",
    "CLOSED": "dim",
}


@dataclass(frozen=True)
class LinkView:
    """One link's panel: ``rate`` in records/s (None before two snapshots), ``lag`` in
    seconds (None when unknown; ``lag_at_least`` when no record was seen since watching)."""

    name: str
    state: str
    rate: float | None
    lag: float | None
    lag_at_least: bool
    reconnects: int
    gaps: int
    missed: int | None  # None when the component keeps no ``missed`` counter


@dataclass(frozen=True)
class StageView:
    """One stage's row in the stages table."""

    name: str
    rate: float | None
    received: int
    emitted: int
    dropped: int
    failed: int
    mailbox_depth: int
    restarts: int


@dataclass(frozen=True)
class BarRow:
    """One row of the bars table: its key, its time as text, and the record."""

    key: str
    time: str
    record: Mapping[str, Any]


def _activity(stats: Mapping[str, Any]) -> int:
    """What a stage's rate counts: records in (sinks, operators) or out (push sources)."""
    return max(int(stats.get("received", 0)), int(stats.get("emitted", 0)))


def _sum_suffix(stats: Mapping[str, Any], suffixes: tuple[str, ...]) -> int | None:
    values = [int(v) for k, v in stats.items() if k.endswith(suffixes)]
    return sum(values) if values else None


def _stat_lag(stats: Mapping[str, Any]) -> float | None:
    """A lag the component reports itself (``*lag_ms``, ``*lag_s``, ``*lag_seconds``)."""
    for key, value in stats.items():
        if key.endswith("lag_ms"):
            return float(value) / 1000.0
        if key.endswith(("lag_s", "lag_seconds")):
            return float(value)
    return None


def format_time(value: Any) -> str:
    """A record's time as HH:MM:SS UTC: epoch seconds (or ms, us, ns, told apart by size),
    a datetime, or a string as it is."""
    if value is None:
        return ""
    if isinstance(value, _dt.datetime):
        moment: _dt.datetime = value
        if moment.tzinfo is not None:
            moment = moment.astimezone(_dt.UTC)
        return moment.strftime("%H:%M:%S")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    seconds = float(value)
    if not math.isfinite(seconds):
        return str(value)
    for threshold, per_second in EPOCH_UNITS:
        if abs(seconds) >= threshold:
            seconds /= per_second
            break
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(value)


class LiveModel:
    """What the live view shows, worked out from snapshots (time passed in, no I/O).

    ``key_field`` names a bar's key (default: ``key``, ``symbol`` or ``id``), ``time_field``
    its time (default: ``window_start``-``window_end``, else ``timestamp``, ``time`` or
    ``ts``); at most ``max_rows`` bars are kept, the latest per key. Rates are taken over the
    last ``rate_window`` seconds of snapshots.
    """

    def __init__(
        self,
        key_field: str | None = None,
        time_field: str | None = None,
        max_rows: int = 20,
        rate_window: float = 2.0,
    ) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"LiveModel: max_rows must be an integer >= 1, got {max_rows!r}")
        if isinstance(rate_window, bool) or not isinstance(rate_window, int | float):
            raise TypeError(f"LiveModel: rate_window must be seconds, got {rate_window!r}")
        if rate_window <= 0:
            raise ValueError(f"LiveModel: rate_window must be > 0 seconds, got {rate_window!r}")
        self.key_field = key_field
        self.time_field = time_field
        self.max_rows = max_rows
        self.rate_window = float(rate_window)
        self.pipeline = ""
        self.phase = ""
        self.healthy: bool | None = None
        self.reason: str | None = None
        self.unreachable: str | None = None  # why the last read failed, until the next feed
        self.fed = 0
        self._first: float | None = None
        self._now = 0.0
        self._uptime: float | None = None
        self._stages: dict[str, Mapping[str, Any]] = {}
        self._links: dict[str, str] = {}
        self._history: dict[str, deque[tuple[float, int]]] = {}
        self._last_change: dict[str, float] = {}
        self._rows: dict[str, tuple[int, Mapping[str, Any]]] = {}
        self._row_seq = 0

    # -- feeding --------------------------------------------------------------------------

    def feed(self, snapshot: Snapshot, now: float, status: Health | None = None) -> None:
        """Take one snapshot read at ``now`` (seconds, monotonic); ``status`` is its health
        when read from elsewhere (``/healthz``), else worked out from the snapshot."""
        if self._first is None:
            self._first = now
        self._now = now
        self.fed += 1
        self.unreachable = None
        self.pipeline = snapshot.pipeline
        self.phase = snapshot.phase
        self._uptime = snapshot.uptime
        result = status if status is not None else health(snapshot)
        self.healthy = result.ok
        reason = result.body.get("reason")
        self.reason = str(reason) if reason else None
        self._stages = {name: dict(stats) for name, stats in snapshot.stages.items()}
        self._links = dict(snapshot.links)
        for name, stats in self._stages.items():
            self._sample(name, _activity(stats), now)
        for gone in set(self._history) - set(self._stages):
            del self._history[gone]
            self._last_change.pop(gone, None)
        self.add_rows(snapshot.latest)

    def mark_unreachable(self, reason: str) -> None:
        """The last read failed: the view keeps the last figures and says why."""
        self.unreachable = reason

    def _sample(self, name: str, count: int, now: float) -> None:
        history = self._history.get(name)
        if history is None:
            self._history[name] = deque([(now, count)])
            return
        last_time, last_count = history[-1]
        if count < last_count or now < last_time:  # the counters restarted: start again
            history.clear()
            self._last_change.pop(name, None)
        elif count > last_count:
            self._last_change[name] = now
        history.append((now, count))
        # Keep the newest sample at or before the window's start, and everything after it.
        while len(history) > 2 and history[1][0] <= now - self.rate_window:
            history.popleft()

    def add_rows(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Merge records into the bars: the latest per key, at most ``max_rows`` kept (the
        least recently updated go first)."""
        for record in records:
            if not isinstance(record, Mapping):
                continue
            key = self._key_of(record)
            self._row_seq += 1
            self._rows.pop(key, None)
            self._rows[key] = (self._row_seq, record)
            if len(self._rows) > self.max_rows:
                del self._rows[next(iter(self._rows))]

    def _key_of(self, record: Mapping[str, Any]) -> str:
        fields = (self.key_field,) if self.key_field is not None else KEY_FIELDS
        for name in fields:
            if name in record and record[name] is not None:
                return str(record[name])
        return repr(sorted(record.items(), key=lambda item: str(item[0])))

    # -- reading --------------------------------------------------------------------------

    @property
    def uptime(self) -> float:
        """Seconds the pipeline has run (as it reports, else since the first snapshot)."""
        if self._uptime is not None:
            return self._uptime
        return 0.0 if self._first is None else self._now - self._first

    @property
    def uptime_reported(self) -> bool:
        """True when the pipeline reports its uptime (else ``uptime`` is the time watched)."""
        return self._uptime is not None

    def rate(self, stage: str) -> float | None:
        """Records/s through ``stage`` over the last ``rate_window`` seconds, or None."""
        history = self._history.get(stage)
        if not history or len(history) < 2:
            return None
        (t0, c0), (t1, c1) = history[0], history[-1]
        if t1 <= t0:
            return None
        return (c1 - c0) / (t1 - t0)

    def links(self) -> list[LinkView]:
        """Every link (a stage holding a connection), by name."""
        out = []
        for name, state in sorted(self._links.items()):
            stats = self._stages.get(name, {})
            lag = _stat_lag(stats)
            at_least = False
            if lag is None and name in self._history:
                changed = self._last_change.get(name)
                if changed is None:
                    since = self._history[name][0][0]
                    lag, at_least = self._now - since, True
                else:
                    lag = self._now - changed
            out.append(
                LinkView(
                    name=name,
                    state=state,
                    rate=self.rate(name),
                    lag=lag,
                    lag_at_least=at_least,
                    reconnects=_sum_suffix(stats, ("reconnects",)) or 0,
                    gaps=_sum_suffix(stats, ("gaps",)) or 0,
                    missed=_sum_suffix(stats, ("missed",)),
                )
            )
        return out

    def stages(self) -> list[StageView]:
        """Every stage, in the order the snapshot gave them."""
        return [
            StageView(
                name=name,
                rate=self.rate(name),
                received=int(stats.get("received", 0)),
                emitted=int(stats.get("emitted", 0)),
                dropped=int(stats.get("dropped", 0)),
                failed=int(stats.get("failed", 0)),
                mailbox_depth=int(stats.get("mailbox_depth", 0)),
                restarts=int(stats.get("restarts", 0)),
            )
            for name, stats in self._stages.items()
        ]

    def bars(self) -> list[BarRow]:
        """The latest rows, by key."""
        rows = sorted(self._rows.items(), key=lambda item: item[0])
        return [BarRow(key, self._time_of(record), record) for key, (_, record) in rows]

    def bar_columns(self) -> list[str]:
        """The record fields the bars table shows after key and time."""
        records = [record for _, record in self._rows.values()]
        present = [f for f in BAR_FIELDS if any(f in r for r in records)]
        skip = {"window_start", "window_end", *KEY_FIELDS, *TIME_FIELDS}
        if present:
            # A bar's own fields, then what later stages added to it (a signal, say).
            known = {*present, *BAR_FIELDS, *skip}
            extra: list[str] = []
            for record in records:
                extra += [str(n) for n in record if n not in known and str(n) not in extra]
            return present + extra[: max(MAX_OTHER_COLUMNS - len(present), 0)]
        if self.key_field is not None:
            skip.add(self.key_field)
        if self.time_field is not None:
            skip.add(self.time_field)
        out: list[str] = []
        for record in records:
            for name in record:
                if name not in skip and name not in out:
                    out.append(str(name))
        return out[:MAX_OTHER_COLUMNS]

    def _time_of(self, record: Mapping[str, Any]) -> str:
        if self.time_field is not None:
            return format_time(record.get(self.time_field))
        start, end = record.get("window_start"), record.get("window_end")
        if start is not None and end is not None:
            return f"{format_time(start)}-{format_time(end)}"
        if start is not None or end is not None:
            return format_time(end if end is not None else start)
        for name in TIME_FIELDS:
            if name in record:
                return format_time(record[name])
        return ""


class LatestRecords:
    """The latest records of a stream, for :attr:`Snapshot.latest`: a callback sink
    (``records(record)``) that keeps the latest per ``key`` (or the last ``max_rows``
    records without one); thread-safe."""

    def __init__(self, key: str | None = "key", max_rows: int = 20) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"LatestRecords: max_rows must be an integer >= 1, got {max_rows!r}")
        self._key = key
        self._max = max_rows
        self._lock = threading.Lock()
        self._rows: dict[Any, Mapping[str, Any]] = {}
        self._seq = 0

    def __call__(self, record: Any) -> None:
        if not isinstance(record, Mapping):
            return
        with self._lock:
            self._seq += 1
            key = record.get(self._key, self._seq) if self._key is not None else self._seq
            self._rows.pop(key, None)
            self._rows[key] = dict(record)
            if len(self._rows) > self._max:
                del self._rows[next(iter(self._rows))]

    def rows(self) -> list[Mapping[str, Any]]:
        """The records kept, oldest update first."""
        with self._lock:
            return list(self._rows.values())


# -- rendering ----------------------------------------------------------------------------


def _number(value: Any) -> str:
    """A cell: floats with up to 4 decimals and no exponent (prices, volumes)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return str(value)


def _rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    return f"{rate:,.1f}/s" if rate < 100 else f"{rate:,.0f}/s"


def _seconds(value: float | None, at_least: bool = False) -> str:
    if value is None:
        return "-"
    text = f"{value:.1f} s" if value < 60 else _clock(value)
    return f">= {text}" if at_least else text


def _clock(seconds: float) -> str:
    whole = int(max(seconds, 0.0))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _link_panel(link: LinkView) -> Any:
    from rich.panel import Panel  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    style = STATE_STYLES.get(link.state, "")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim")
    grid.add_column(justify="right")
    grid.add_row("state", Text(link.state, style=style))
    grid.add_row("rate", _rate(link.rate))
    grid.add_row("lag", _seconds(link.lag, link.lag_at_least))
    grid.add_row(
        "reconnects", Text(str(link.reconnects), style="yellow" if link.reconnects else "")
    )
    gaps = str(link.gaps) if link.missed is None else f"{link.gaps} (missed {link.missed})"
    grid.add_row("gaps", Text(gaps, style="yellow" if link.gaps or link.missed else ""))
    return Panel(grid, title=link.name, border_style=style or "blue", expand=False)


def _stages_table(model: LiveModel) -> Any:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="stages", title_justify="left", expand=False)
    for name in ("stage", "rate", "received", "emitted", "dropped", "failed", "depth", "restarts"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for stage in model.stages():
        table.add_row(
            stage.name,
            _rate(stage.rate),
            str(stage.received),
            str(stage.emitted),
            str(stage.dropped),
            str(stage.failed),
            str(stage.mailbox_depth),
            str(stage.restarts),
        )
    return table


def _bars_table(model: LiveModel) -> Any:
    from rich.table import Table  # noqa: PLC0415

    columns = model.bar_columns()
    table = Table(title="latest bars (UTC)", title_justify="left", expand=False)
    table.add_column("key")
    table.add_column("time")
    for name in columns:
        table.add_column(name, justify="right")
    for row in model.bars():
        table.add_row(row.key, row.time, *(_number(row.record.get(c)) for c in columns))
    return table


def _footer(model: LiveModel) -> Any:
    from rich.text import Text  # noqa: PLC0415

    text = Text()
    text.append(f"pipeline {model.pipeline or '?'}", style="bold")
    since = "up" if model.uptime_reported else "watched"
    text.append(f"  {model.phase or '?'}  {since} {_clock(model.uptime)}  ")
    if model.healthy is None:
        text.append("health unknown", style="dim")
    elif model.healthy:
        text.append("healthy", style="bold green")
    else:
        text.append("unhealthy", style="bold red")
        if model.reason:
            text.append(f": {model.reason}", style="red")
    if model.unreachable:
        text.append(f"  not reachable: {model.unreachable}", style="bold red")
    return text


def render(model: LiveModel) -> Any:
    """The view as one rich renderable: link panels in a row (wrapping), the stages, the
    latest bars, and the footer."""
    from rich.columns import Columns  # noqa: PLC0415
    from rich.console import Group  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    links = model.links()
    parts: list[Any] = []
    if links:
        parts.append(Columns([_link_panel(link) for link in links]))
    else:
        parts.append(Text("no links (no stage holds a connection)", style="dim"))
    if model.stages():
        parts.append(_stages_table(model))
    if model.bars():
        parts.append(_bars_table(model))
    parts.append(_footer(model))
    return Group(*parts)


# -- the view on a thread -----------------------------------------------------------------


class LiveView:
    """Redraws :func:`render` every ``interval`` seconds from ``read()`` (a Snapshot) with a
    rich ``Live`` on a thread. On a stream that is not a terminal it does nothing (``start``
    returns False) unless ``force``; ``stop()`` draws a last frame and ends the thread."""

    def __init__(
        self,
        read: Callable[[], Snapshot],
        interval: float = 0.5,
        model: LiveModel | None = None,
        stream: TextIO | None = None,
        force: bool = False,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ValueError(
                f"LiveView: interval must be a number of seconds > 0, got {interval!r}"
            )
        self._read = read
        self.interval = float(interval)
        self.model = model if model is not None else LiveModel()
        self._stream = stream
        self._force = force
        self._clock = clock
        self._width = width
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        self.frames = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start drawing; False (and nothing started) when the stream is not a terminal."""
        if self._thread is not None:
            raise RuntimeError("LiveView: already started")
        out = self._stream if self._stream is not None else sys.stdout
        isatty = getattr(out, "isatty", None)
        if not self._force and not (callable(isatty) and isatty()):
            return False
        try:
            from rich.console import Console  # noqa: PLC0415 - only for the live view
            from rich.live import Live  # noqa: PLC0415
        except ImportError:
            raise ImportError(
                "the live view needs rich: pip install 'actorwire[console]'"
            ) from None
        console = Console(file=out, force_terminal=True if self._force else None, width=self._width)
        self._refresh_model()
        self._live = Live(render(self.model), console=console, auto_refresh=False)
        self._live.start(refresh=True)
        self._thread = threading.Thread(target=self._run, name="actorwire-liveview", daemon=True)
        self._thread.start()
        return True

    def _refresh_model(self) -> None:
        try:
            snapshot = self._read()
        except Exception as exc:  # noqa: BLE001 - a failed read keeps the last frame
            log.debug("live view read failed", error=repr(exc))
            self.model.mark_unreachable(repr(exc))
            return
        self.model.feed(snapshot, self._clock())

    def _draw(self) -> None:
        self._refresh_model()
        self._live.update(render(self.model), refresh=True)
        self.frames += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._draw()
            except Exception as exc:  # noqa: BLE001 - the view must not take the run down
                log.warning("live view failed to draw", error=repr(exc))

    def stop(self) -> None:
        """Draw a last frame and stop (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)
        live = self._live
        if live is None:
            return
        try:
            self._draw()
        except Exception as exc:  # noqa: BLE001 - stopping goes on
            log.debug("live view's last frame failed", error=repr(exc))
        finally:
            self._live = None
            live.stop()

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
