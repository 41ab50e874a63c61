"""Sinks: where a pipeline's records end up.

- ``callback``: calls a function with each record, in the sink's actor.
- ``stdout``: a live table (rich) on a terminal, one JSON line per record otherwise.
- ``jsonl_file``: appends JSON lines; rotates by size (``file.jsonl`` -> ``file.1.jsonl``,
  ``file.2.jsonl``, ... in the order they fill up), which the ``jsonl_file`` source replays.
- ``parquet_file``: batched writes with pyarrow, closed properly on stop.

A record a sink cannot take (not serialisable, missing its id field, refused by the
platform's schema) is counted as failed and goes to dead letters; the others are written.
Constructors only check their parameters; files and connections open when the stage starts.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

from ..actors.callbacks import plain_callback
from ._json import dumps, dumps_line
from .operators import resolve_callable
from .plugins import KindRegistry
from .registry import make, positive_int
from .rotation import next_part
from .stage import Sink, StageContext

__all__ = [
    "SINKS",
    "CallbackSink",
    "JsonlFileSink",
    "ParquetFileSink",
    "StdoutSink",
    "make_sink",
]


def _path(owner: str, path: object) -> Path:
    if not isinstance(path, str | Path) or not str(path):
        raise TypeError(f"{owner}: path must be a file path, got {path!r}")
    return Path(path)


# -- callback -----------------------------------------------------------------------------


class CallbackSink(Sink):
    """``callback``: ``fn(record)`` for each record, in the sink's own actor (a slow
    function slows only this sink). ``fn`` may be a ``"module:function"`` string."""

    def __init__(self, fn: Callable[[Any], Any] | str) -> None:
        if isinstance(fn, str):
            try:
                fn = resolve_callable(fn)
            except ValueError as exc:
                raise ValueError(f"callback sink: fn: {exc}") from None
        self._fn = plain_callback(fn, "callback sink: fn")
        self._ctx: StageContext | None = None
        self._calls = 0

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx

    def write(self, records: list[Any], now: float) -> None:
        fn = self._fn
        for record in records:
            try:
                fn(record)
            except Exception as exc:  # noqa: BLE001 - one bad record, counted
                assert self._ctx is not None
                self._ctx.record_failed(record, exc)
            else:
                self._calls += 1

    def stats(self) -> dict[str, int]:
        return {"calls": self._calls}


# -- stdout -------------------------------------------------------------------------------


def _json_line(record: Any) -> str:
    return dumps(record, default=repr).decode()


class StdoutSink(Sink):
    """``stdout``: prints records. On a terminal (``live=None`` and ``stream.isatty()``, or
    ``live=True``) a rich live table with one row per ``key`` value (the latest record for
    it; without ``key``, the latest ``max_rows`` records) and the columns ``fields`` (default:
    the first record's fields), redrawn at most every ``refresh`` seconds. Otherwise one JSON
    line per record. ``stream`` defaults to ``sys.stdout`` at start."""

    def __init__(
        self,
        key: str | None = None,
        fields: Sequence[str] | None = None,
        live: bool | None = None,
        title: str | None = None,
        max_rows: int = 50,
        refresh: float = 0.25,
        stream: TextIO | None = None,
    ) -> None:
        owner = "stdout sink"
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f"{owner}: key must be a field name, got {key!r}")
        if fields is not None and (
            isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValueError(f"{owner}: fields must be a list of field names, got {fields!r}")
        if live is not None and not isinstance(live, bool):
            raise TypeError(f"{owner}: live must be true, false or unset, got {live!r}")
        if isinstance(refresh, bool) or not isinstance(refresh, int | float) or refresh <= 0:
            raise ValueError(f"{owner}: refresh must be a number of seconds > 0, got {refresh!r}")
        self._key = key
        self._fields = list(fields) if fields is not None else None
        self._live_wanted = live
        self._title = title
        self._max_rows = positive_int(owner, "max_rows", max_rows) or 50
        self._refresh = float(refresh)
        self._stream = stream
        self._out: TextIO | None = None
        self._live: Any = None  # rich.live.Live when drawing a table
        self._rows: dict[Any, Any] = {}
        self._seq = 0
        self._dirty = False
        self._last_draw = -float("inf")
        self._printed = 0

    @property
    def live(self) -> bool:
        """True when drawing a live table (known once started)."""
        return self._live is not None

    def start(self, ctx: StageContext) -> None:
        out = self._stream if self._stream is not None else sys.stdout
        self._out = out
        wanted = self._live_wanted
        if wanted is None:
            isatty = getattr(out, "isatty", None)
            wanted = bool(isatty()) if callable(isatty) else False
        if wanted:
            try:
                from rich.console import Console  # noqa: PLC0415 - only for the live table
                from rich.live import Live  # noqa: PLC0415
            except ImportError:
                if self._live_wanted:
                    raise ImportError(
                        "stdout sink: live=True needs rich: pip install 'actorwire[console]'"
                    ) from None
                return  # a terminal without rich: one JSON line per record

            console = Console(file=out, force_terminal=True if self._live_wanted else None)
            self._live = Live(console=console, auto_refresh=False, transient=False)
            self._live.start()

    def write(self, records: list[Any], now: float) -> None:
        if self._live is None:
            out = self._out
            assert out is not None
            out.write("".join(_json_line(r) + "\n" for r in records))
            out.flush()
            self._printed += len(records)
            return
        rows = self._rows
        key = self._key
        for record in records:
            if key is not None and isinstance(record, dict):
                rows[record.get(key)] = record
            else:
                self._seq += 1
                rows[self._seq] = record
                if len(rows) > self._max_rows:
                    del rows[next(iter(rows))]
        self._printed += len(records)
        self._dirty = True
        if now - self._last_draw >= self._refresh:
            self._draw(now)

    def _table(self) -> Any:
        from rich.table import Table  # noqa: PLC0415

        records = list(self._rows.values())
        if self._key is not None:
            records = [self._rows[k] for k in sorted(self._rows, key=repr)][: self._max_rows]
        fields = self._fields
        if fields is None:
            fields = []
            for record in records:
                for name in record if isinstance(record, dict) else ("record",):
                    if name not in fields:
                        fields.append(name)
        from .liveview import format_time  # noqa: PLC0415 - with rich

        table = Table(title=self._title)
        # Rows with a time (a window's, or a record's timestamp) show it, in UTC, after the
        # first column when the fields leave it out.
        timed = next(
            (
                f
                for f in ("window_start", "timestamp")
                if any(f in r for r in records if isinstance(r, dict))
            ),
            None,
        )
        with_time = timed is not None and timed not in fields
        for i, name in enumerate(fields):
            table.add_column(name)
            if i == 0 and with_time:
                table.add_column("time (UTC)")
        for record in records:
            if isinstance(record, dict):
                cells = [_cell(record.get(f)) for f in fields]
                if with_time and cells:
                    cells.insert(1, format_time(record.get(timed)))
                table.add_row(*cells)
            else:
                table.add_row(repr(record))
        return table

    def _draw(self, now: float) -> None:
        self._dirty = False
        self._last_draw = now
        self._live.update(self._table(), refresh=True)

    def next_deadline(self) -> float | None:
        if self._live is None or not self._dirty:
            return None
        return self._last_draw + self._refresh

    def on_tick(self, now: float) -> None:
        if self._live is not None and self._dirty:
            self._draw(now)

    def flush(self, now: float) -> None:
        if self._live is not None and self._dirty:
            self._draw(now)
        elif self._out is not None:
            self._out.flush()

    def stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            if self._dirty:
                live.update(self._table(), refresh=True)
            live.stop()
        elif self._out is not None:
            self._out.flush()

    def stats(self) -> dict[str, int]:
        return {"printed": self._printed}


def _cell(value: Any) -> str:
    """A table cell: floats with up to 4 decimals and no exponent (prices, epoch times)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return str(value)


# -- jsonl_file ---------------------------------------------------------------------------


class JsonlFileSink(Sink):
    """``jsonl_file``: appends one JSON object per line (orjson) to ``path``.

    With ``max_bytes`` the file rotates before a line would take it past that size:
    ``file.jsonl`` becomes ``file.N.jsonl`` (N one past the highest existing) and a new
    ``file.jsonl`` starts, so the parts in number order, then ``file.jsonl``, hold the
    records in order. Every batch is flushed to the OS; with ``fsync=True`` the file is also
    fsynced at each drain, rotation and close. A record orjson cannot encode is counted as
    failed.
    """

    def __init__(self, path: str | Path, max_bytes: int | None = None, fsync: bool = False) -> None:
        owner = "jsonl_file sink"
        self._path = _path(owner, path)
        self._max_bytes = positive_int(owner, "max_bytes", max_bytes, allow_none=True)
        self._fsync = bool(fsync)
        self._file: IO[bytes] | None = None
        self._size = 0
        self._ctx: StageContext | None = None
        self._written = 0
        self._rotations = 0

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        self._file = self._path.open("ab")
        self._size = self._file.tell()

    def write(self, records: list[Any], now: float) -> None:
        file = self._file
        assert file is not None and self._ctx is not None
        encode = dumps_line
        lines = []
        for record in records:
            try:
                lines.append(encode(record))
            except TypeError as exc:  # a value JSON cannot hold (orjson's error is one too)
                self._ctx.record_failed(record, exc)
        limit = self._max_bytes
        if limit is None:
            chunk = b"".join(lines)
            file.write(chunk)
            self._size += len(chunk)
        else:
            for line in lines:
                if self._size and self._size + len(line) > limit:
                    self._rotate()
                    file = self._file
                    assert file is not None
                file.write(line)
                self._size += len(line)
        file.flush()
        self._written += len(lines)

    def _rotate(self) -> None:
        self._close()
        self._path.rename(next_part(self._path))
        self._rotations += 1
        self._open()

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        file.flush()
        if self._fsync:
            os.fsync(file.fileno())
        file.close()

    def flush(self, now: float) -> None:
        if self._file is not None:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())

    def stop(self) -> None:
        self._close()

    def stats(self) -> dict[str, int]:
        return {"written": self._written, "rotations": self._rotations}


# -- parquet_file -------------------------------------------------------------------------


def _arrow(owner: str) -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet: the optional ``parquet`` extra, imported on first use."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]  # noqa: PLC0415
        import pyarrow.parquet as pq  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError:  # pragma: no cover - pyarrow comes with the dev extra
        raise ImportError(f"{owner} needs pyarrow: pip install 'actorwire[parquet]'") from None
    return pa, pq


class ParquetFileSink(Sink):
    """``parquet_file``: writes records as rows of a Parquet file with pyarrow.

    Rows are buffered and written as a row group every ``batch_rows`` rows, at each drain,
    and at stop, when the file is closed (its footer written). The schema is ``schema``
    (field -> arrow type name, e.g. ``{"symbol": "string", "bid": "double"}``) or inferred
    from the first batch; fields outside it are ignored, missing ones are null, and a record
    whose values do not fit it is counted as failed. The file is replaced at start; after a
    restart the new incarnation writes ``stem.1.parquet``, ``stem.2.parquet``, ... so what
    was written is kept.
    """

    def __init__(
        self,
        path: str | Path,
        batch_rows: int = 10_000,
        schema: Mapping[str, str] | None = None,
        compression: str = "snappy",
    ) -> None:
        owner = "parquet_file sink"
        pa, pq = _arrow(owner)
        self._pa: Any = pa
        self._pq: Any = pq
        self._path = _path(owner, path)
        self._batch_rows = positive_int(owner, "batch_rows", batch_rows) or 10_000
        self._schema: Any = None
        if schema is not None:
            if not isinstance(schema, Mapping) or not schema:
                raise TypeError(f"{owner}: schema must be a table of field -> type name")
            try:
                self._schema = pa.schema([(k, pa.type_for_alias(v)) for k, v in schema.items()])
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{owner}: bad schema {dict(schema)!r}: {exc}") from None
        if compression not in ("snappy", "gzip", "brotli", "zstd", "lz4", "none"):
            raise ValueError(f"{owner}: unknown compression {compression!r}")
        self._compression = compression
        self._writer: Any = None
        self._pending: list[Any] = []  # tables not yet written
        self._pending_rows = 0
        self._ctx: StageContext | None = None
        self._rows = 0
        self._row_groups = 0
        self.file: Path = self._path
        """The file this incarnation writes."""

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        part = ctx.incarnation - 1
        path = self._path
        self.file = path if part <= 0 else path.with_name(f"{path.stem}.{part}{path.suffix}")
        self.file.parent.mkdir(parents=True, exist_ok=True)

    def write(self, records: list[Any], now: float) -> None:
        table = self._table(records)
        if table is None:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self._batch_rows:
            self._write_pending(whole_groups=True)

    def _table(self, records: list[Any]) -> Any:
        pa = self._pa
        assert self._ctx is not None
        good = []
        for record in records:
            if isinstance(record, dict):
                good.append(record)
            else:
                self._ctx.record_failed(record, TypeError("a parquet row must be a dict"))
        if not good:
            return None
        try:
            table = pa.Table.from_pylist(good, schema=self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            # Find the rows that do not fit, one by one; keep the rest.
            fitting = []
            for record in good:
                try:
                    pa.Table.from_pylist([record], schema=self._schema)
                except (
                    pa.ArrowInvalid,
                    pa.ArrowTypeError,
                    TypeError,
                    ValueError,
                    OverflowError,
                ) as exc:
                    self._ctx.record_failed(record, exc)
                else:
                    fitting.append(record)
            if not fitting:
                return None
            table = pa.Table.from_pylist(fitting, schema=self._schema)
        if self._schema is None:
            self._schema = table.schema
        return table

    def _write_pending(self, *, whole_groups: bool = False) -> None:
        """Write the buffered rows as row groups of ``batch_rows`` (``whole_groups``: keep
        a last partial group buffered for later)."""
        if not self._pending:
            return
        table = self._pa.concat_tables(self._pending)
        size = self._batch_rows
        keep = table.num_rows % size if whole_groups else 0
        out = table.slice(0, table.num_rows - keep)
        rest = table.slice(table.num_rows - keep)
        self._pending = [rest] if keep else []
        self._pending_rows = keep
        if out.num_rows == 0:
            return
        if self._writer is None:
            self._writer = self._pq.ParquetWriter(
                str(self.file), self._schema, compression=self._compression
            )
        self._writer.write_table(out, row_group_size=size)
        self._rows += out.num_rows
        self._row_groups += -(-out.num_rows // size)

    def flush(self, now: float) -> None:
        self._write_pending()

    def stop(self) -> None:
        try:
            self._write_pending()
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()
            elif self._schema is not None and self._ctx is not None and not self.file.exists():
                self._pq.write_table(self._schema.empty_table(), str(self.file))

    def stats(self) -> dict[str, int]:
        return {"rows": self._rows, "row_groups": self._row_groups}


# -- view -------------------------------------------------------------------------------------


class ViewSink(Sink):
    """``view``: the latest records (one per ``key`` field value, at most ``max_rows``) for
    the live view of ``actorwire run`` (on a terminal) and its ``/latest`` endpoint, read by
    ``actorwire top``. Nothing is written anywhere."""

    def __init__(self, key: str | None = "key", max_rows: int = 20) -> None:
        from .liveview import LatestRecords  # noqa: PLC0415 - rich stays out of the import

        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f"view sink: key must be a field name, got {key!r}")
        self._latest = LatestRecords(key, max_rows)
        self._written = 0

    def write(self, records: list[Any], now: float) -> None:
        latest = self._latest
        for record in records:
            latest(record)
        self._written += len(records)

    def rows(self) -> list[Any]:
        """The records kept, oldest update first."""
        return self._latest.rows()

    def stats(self) -> dict[str, int]:
        return {"shown": self._written}


# -- registry -----------------------------------------------------------------------------

SINKS: KindRegistry[Sink] = KindRegistry(
    "sinks",
    {
        "callback": CallbackSink,
        "stdout": StdoutSink,
        "jsonl_file": JsonlFileSink,
        "parquet_file": ParquetFileSink,
        "view": ViewSink,
    },
)
"""Sink kind (as definition files spell it) -> constructor taking keyword parameters: the
built-in kinds and those the installed adapters add (``keysquare_publish``, ...)."""


def make_sink(kind: str, **params: Any) -> Sink:
    """Build the sink of ``kind``; ValueError for an unknown kind, TypeError or ValueError
    naming a bad parameter."""
    return make("sink", SINKS, kind, params)
