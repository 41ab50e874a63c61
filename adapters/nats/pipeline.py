"""NATS in pipelines: the ``nats`` source and sink (JetStream: durable, acknowledged,
deduplicated), the ``nats_core`` source and sink (plain subjects: no durability), and the
``nats`` embedded server kind, registered through the ``actorwire.plugins`` entry point.

**The ``nats`` sink** publishes each record (JSON) to ``subject`` (``{field}`` in it is
replaced by the record's value) with the header ``Nats-Msg-Id`` made from ``id_fields``
(the record's identity, e.g. ``["key", "window_start"]`` for a window's rows, or
``["_msg_id"]`` for what a ``nats`` source with ``msg_id_field = "_msg_id"`` read), so that
JetStream stores a record published twice within the stream's duplicate window once.
Publishes go out with asynchronous acks, at most ``max_pending`` (and
``max_pending_bytes``) unacknowledged at once; a publish unacknowledged after ``timeout``
seconds, or refused, is sent again with the same id, for as long as it takes. A barrier
(see :mod:`actorwire.pipelines.acks`) is done once every record before it is acknowledged.

**The ``nats`` source** reads a stream through a durable pull consumer (``durable``,
``subject`` filter, ``ack_wait``, ``max_ack_pending``, ``max_deliver``, ``deliver``). It
acknowledges a message only once what the stages after it derived from it has been
passed on and accepted by every sink (every ``ack_every`` records or ``ack_interval``
seconds it puts a barrier between its records and acknowledges what came before once the
barrier is done). A killed process so resumes from its last acknowledgement: at start a
consumer with messages delivered and unacknowledged is recreated at its ack floor, so they
come again at once, in order, and the windows after the source recompute what was lost
(they must use event time). Redeliveries within one process incarnation are dropped by
stream sequence. A message that does not decode is counted, logged with its sequence and
terminated (``term()``: never redelivered).

**Streams** are created or checked from the definition when ``stream`` is a table
(``name``, ``subjects``, ``retention``, ``storage``, ``max_bytes``, ``max_msgs``,
``max_age``, ``duplicate_window``): a mismatch stops the stage with every difference by key
path. The connection is supervised by nats-py (see :mod:`.connection`); its state is the
stage's link state in ``/healthz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import math
import string
import threading
import time
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from ...pipelines.plugins import Plugin
from ...pipelines.stage import Barrier, Sink, Source
from .connection import NatsConnection, check_url
from .server import nats_server_kind
from .streams import (
    ConsumerSpec,
    StreamSpec,
    ensure_consumer,
    ensure_stream,
    parse_stream,
)

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from ...pipelines.stage import StageContext

__all__ = ["NatsCoreSink", "NatsCoreSource", "NatsSink", "NatsSource", "plugin"]

log = structlog.get_logger("actorwire.nats")

_FORMATTER = string.Formatter()
_BY_START = DeliverPolicy.BY_START_SEQUENCE
_SUBJECT_BAD = str.maketrans(dict.fromkeys(" \t\r\n.*>", "_"))


# -- parameters ------------------------------------------------------------------------------


def _number(owner: str, name: str, value: object, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number > {minimum:g}, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result <= minimum:
        raise ValueError(f"{owner}: {name} must be a finite number > {minimum:g}, got {value!r}")
    return result


def _count(owner: str, name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _subject_template(owner: str, subject: object) -> tuple[str, tuple[str, ...]]:
    if not isinstance(subject, str) or not subject or " " in subject:
        raise ValueError(f"{owner}: subject must be a NATS subject (no spaces), got {subject!r}")
    try:
        fields = tuple(f for _, f, _, _ in _FORMATTER.parse(subject) if f is not None)
    except ValueError as exc:
        raise ValueError(f"{owner}: subject {subject!r} is not a valid template: {exc}") from None
    if any(not f or not f.isidentifier() for f in fields):
        raise ValueError(
            f"{owner}: subject {subject!r}: each {{...}} must name a record field, "
            f"e.g. 'bars.{{symbol}}'"
        )
    return subject, fields


def _stream(owner: str, stream: object) -> tuple[str, StreamSpec | None]:
    if isinstance(stream, str) and stream:
        return stream, None
    if isinstance(stream, Mapping):
        try:
            spec = parse_stream(dict(stream), "stream")
        except ValueError as exc:
            raise ValueError(f"{owner}: {exc}") from None
        return spec.name, spec
    raise ValueError(
        f"{owner}: stream must be a stream name or a table (name, subjects, ...), got {stream!r}"
    )


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_record(record: Any) -> bytes:
    """A record as the JSON the ``nats`` sinks publish (datetimes as ISO 8601; anything
    else JSON lacks as its ``str``)."""
    return orjson.dumps(record, default=_default, option=orjson.OPT_NON_STR_KEYS)


def decode_record(data: bytes) -> dict[str, Any]:
    """A record from a message's JSON; ValueError when it is not a JSON object."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if type(value) is not dict:
        raise ValueError(f"not a JSON object: {type(value).__name__}")
    return value


class _Stage:
    """What the NATS stages share: the connection on the system's I/O loop."""

    _owner = "nats"

    def __init__(self, url: str, ping_interval: float, reconnect_wait: float) -> None:
        self._url = check_url(self._owner, url)
        self._ping_interval = _number(self._owner, "ping_interval", ping_interval)
        self._reconnect_wait = _number(self._owner, "reconnect_wait", reconnect_wait)
        self._ctx: StageContext | None = None
        self._conn: NatsConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reconnects = 0  # of connections closed before

    def _open(self, ctx: StageContext) -> NatsConnection:
        self._ctx = ctx
        io = ctx.system.io
        self._loop = io.loop
        state = ctx.state

        def on_state(name: str) -> None:
            ctx.set_link_state(name)
            state.component_stats = self.stats()

        conn = NatsConnection(
            io.loop,
            self._url,
            f"{ctx.pipeline}.{ctx.name}",
            on_state=on_state,
            ping_interval=self._ping_interval,
            reconnect_wait=self._reconnect_wait,
            on_connected=self._on_connected,
        )
        self._conn = conn
        io.call(conn.start, timeout=10.0)
        return conn

    def _on_connected(self) -> Any:
        """On the I/O loop after each (re)connection."""
        return None

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        ctx = self._ctx
        if conn is None or ctx is None:
            return
        self._reconnects += conn.reconnects  # stats stay readable after the stop
        try:
            ctx.system.io.run(conn.close(), timeout=10.0)
        except Exception as exc:  # noqa: BLE001 - stopping: logged, never raised
            log.warning("nats close failed", url=self._url, error=repr(exc))

    def stats(self) -> dict[str, int]:
        conn = self._conn
        return {"reconnects": self._reconnects + (conn.reconnects if conn is not None else 0)}


# -- the nats sink (JetStream) ------------------------------------------------------------------


class _Item:
    __slots__ = ("attempts", "data", "index", "msg_id", "sent_at", "subject")

    def __init__(self, index: int, subject: str, data: bytes, msg_id: str) -> None:
        self.index = index
        self.subject = subject
        self.data = data
        self.msg_id = msg_id
        self.sent_at = 0.0
        self.attempts = 0


class NatsSink(_Stage, Sink):
    """``nats``: each record to a JetStream subject, acknowledged and deduplicated (see the
    module's docstring)."""

    _owner = "nats sink"

    def __init__(
        self,
        url: str,
        subject: str,
        id_fields: Sequence[str] | str | None = None,
        stream: str | Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        max_pending: int = 1024,
        max_pending_bytes: int = 16 << 20,
        ping_interval: float = 2.0,
        reconnect_wait: float = 0.2,
    ) -> None:
        super().__init__(url, ping_interval, reconnect_wait)
        owner = self._owner
        self._subject, self._subject_fields = _subject_template(owner, subject)
        if id_fields is None:
            raise ValueError(
                f"{owner}: id_fields must name the fields that identify a record (e.g. "
                "['key', 'window_start'] for a window's rows, or ['_msg_id'] with "
                "msg_id_field = '_msg_id' on the nats source): the Nats-Msg-Id that "
                "JetStream deduplicates on"
            )
        fields = [id_fields] if isinstance(id_fields, str) else id_fields
        if (
            isinstance(fields, str)
            or not fields
            or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValueError(f"{owner}: id_fields must be a list of field names, got {id_fields!r}")
        self._id_fields = tuple(fields)
        self._stream_name: str | None = None
        self._stream_spec: StreamSpec | None = None
        if stream is not None:
            self._stream_name, self._stream_spec = _stream(owner, stream)
        self._timeout = _number(owner, "timeout", timeout)
        self._max_pending = _count(owner, "max_pending", max_pending)
        self._max_bytes = _count(owner, "max_pending_bytes", max_pending_bytes, minimum=1024)
        # Shared with the I/O loop (under _cond): what was handed over and not yet acked.
        self._cond = threading.Condition()
        self._outstanding = 0
        self._outstanding_bytes = 0
        self._submitted = 0  # items handed to the loop (the stage thread's count)
        # On the I/O loop only.
        self._queue: collections.deque[_Item] = collections.deque()
        self._inflight: dict[int, tuple[_Item, asyncio.Future[Any]]] = {}
        self._low = 0  # every index below is acknowledged
        self._acked_ahead: set[int] = set()
        self._barriers: collections.deque[tuple[int, Barrier]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._js: JetStreamContext | None = None
        self._ready = False  # the stream is checked on this connection
        self._published = 0
        self._duplicates = 0
        self._retries = 0
        self._refused = 0

    def __repr__(self) -> str:
        return f"NatsSink(url={self._url!r}, subject={self._subject!r})"

    # -- stage thread --------------------------------------------------------------------

    def start(self, ctx: StageContext) -> None:
        conn = self._open(ctx)
        assert self._loop is not None
        ctx.system.io.call(self._start_loop, timeout=10.0)
        if self._stream_spec is not None:
            self._wait_ready(ctx, conn)

    def _wait_ready(self, ctx: StageContext, conn: NatsConnection) -> None:
        """At start, a stream mismatch must stop the stage: wait (a while) for the check."""
        future = ctx.system.io.submit(self._check_stream_once())
        try:
            future.result(timeout=10.0)
        except TimeoutError:
            future.cancel()
            log.warning(
                "nats server not reachable yet; the stream is checked once it is",
                url=self._url,
                stage=ctx.name,
            )

    async def _check_stream_once(self) -> None:
        conn = self._conn
        assert conn is not None
        nc = await conn.wait_connected()
        assert self._stream_spec is not None
        await ensure_stream(nc.jetstream(), self._stream_spec, "stream")

    def write(self, records: list[Any], now: float) -> None:
        ctx = self._ctx
        assert ctx is not None and self._loop is not None
        items: list[_Item] = []
        size = 0
        for record in records:
            try:
                subject, data, msg_id = self._encode(record)
            except (KeyError, TypeError, ValueError) as exc:
                ctx.record_failed(record, exc)
                continue
            items.append(_Item(self._submitted + len(items), subject, data, msg_id))
            size += len(data)
        if not items:
            return
        with self._cond:
            # Backpressure: the stage (and so its upstream) waits while the window is full.
            while self._outstanding and (
                self._outstanding + len(items) > self._max_pending * 2
                or self._outstanding_bytes + size > self._max_bytes
            ):
                self._cond.wait(1.0)
            self._outstanding += len(items)
            self._outstanding_bytes += size
        self._submitted += len(items)
        self._loop.call_soon_threadsafe(self._enqueue, items)

    def _encode(self, record: Any) -> tuple[str, bytes, str]:
        if not isinstance(record, dict):
            raise TypeError(f"a record must be a dict, got {type(record).__name__}")
        try:
            msg_id = "|".join(str(record[f]) for f in self._id_fields)
        except KeyError as exc:
            raise KeyError(f"record has no id field {exc.args[0]!r} (id_fields)") from None
        if self._subject_fields:
            values = {f: str(record[f]).translate(_SUBJECT_BAD) for f in self._subject_fields}
            subject = self._subject.format_map(values)
        else:
            subject = self._subject
        return subject, encode_record(record), msg_id

    def on_barrier(self, barrier: Barrier, now: float, ctx: StageContext) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._add_barrier, self._submitted, barrier)

    def flush(self, now: float) -> None:
        deadline = time.monotonic() + max(self._timeout * 3, 10.0)
        with self._cond:
            while self._outstanding and time.monotonic() < deadline:
                self._cond.wait(0.2)
            left = self._outstanding
        if left:
            log.error(
                "nats sink: publishes still unacknowledged at flush",
                stage=self._ctx.name if self._ctx else None,
                unacknowledged=left,
            )

    def stop(self) -> None:
        if self._conn is None:
            return
        self.flush(time.monotonic())
        ctx = self._ctx
        if ctx is not None:
            with contextlib.suppress(Exception):  # stopping
                ctx.system.io.call(self._stop_loop, timeout=5.0)
        self._close()

    def stats(self) -> dict[str, int]:
        out = super().stats()
        out.update(
            published=self._published,
            duplicates=self._duplicates,
            retries=self._retries,
            refused=self._refused,
            unacknowledged=self._outstanding,
        )
        return out

    # -- I/O loop --------------------------------------------------------------------------

    def _start_loop(self) -> None:
        self._wakeup = asyncio.Event()
        self._tasks = [
            asyncio.get_running_loop().create_task(self._send()),
            asyncio.get_running_loop().create_task(self._watch()),
        ]

    def _stop_loop(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _on_connected(self) -> Any:
        self._ready = False
        # Publishes in flight when the connection dropped may never be answered: send them
        # again now (same ids: one that was stored is a duplicate) instead of after the
        # timeout, which would stall the stages before this one as long.
        inflight = sorted(self._inflight.values(), key=lambda e: e[0].index, reverse=True)
        if inflight:
            self._inflight.clear()
            self._retries += len(inflight)
            for item, future in inflight:
                future.cancel()
                self._queue.appendleft(item)
            log.info(
                "nats sink: publishes in flight sent again after a reconnect", count=len(inflight)
            )
        if self._wakeup is not None:
            self._wakeup.set()

    def _enqueue(self, items: list[_Item]) -> None:
        self._queue.extend(items)
        assert self._wakeup is not None
        self._wakeup.set()

    def _add_barrier(self, k: int, barrier: Barrier) -> None:
        self._barriers.append((k, barrier))
        self._release()

    def _release(self) -> None:
        ctx = self._ctx
        while self._barriers and self._barriers[0][0] <= self._low:
            _, barrier = self._barriers.popleft()
            if ctx is not None:
                ctx.barrier_done(barrier)

    async def _send(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        conn = self._conn
        assert conn is not None
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._queue and len(self._inflight) < self._max_pending:
                if not conn.connected:
                    break
                nc = await conn.wait_connected()
                if not self._ready:
                    try:
                        if self._stream_spec is not None:
                            await ensure_stream(nc.jetstream(), self._stream_spec, "stream")
                        self._js = nc.jetstream(publish_async_max_pending=self._max_pending * 4)
                        self._ready = True
                    except Exception as exc:  # noqa: BLE001 - logged, retried
                        self._refused += 1
                        log.error("nats sink: stream not ready", url=self._url, error=repr(exc))
                        await asyncio.sleep(max(self._reconnect_wait, 0.5))
                        continue
                item = self._queue.popleft()
                try:
                    await self._publish(item)
                except Exception as exc:  # noqa: BLE001 - disconnected: put back, wait
                    self._queue.appendleft(item)
                    log.debug("nats sink: publish not sent", error=repr(exc))
                    await asyncio.sleep(self._reconnect_wait)
                    break
            if self._queue and not wakeup.is_set():
                # Blocked by the window or the connection: _on_ack or _watch wakes us.
                pass

    async def _publish(self, item: _Item) -> None:
        js = self._js
        assert js is not None
        item.attempts += 1
        item.sent_at = time.monotonic()
        future = await js.publish_async(
            item.subject, item.data, headers={"Nats-Msg-Id": item.msg_id}
        )
        self._inflight[item.index] = (item, future)
        future.add_done_callback(functools.partial(self._on_ack, item))

    def _on_ack(self, item: _Item, future: asyncio.Future[Any]) -> None:
        entry = self._inflight.get(item.index)
        if entry is None or entry[1] is not future:
            return  # an attempt that was given up on (and sent again)
        del self._inflight[item.index]
        if future.cancelled() or future.exception() is not None:
            error = None if future.cancelled() else future.exception()
            self._refused += 1
            self._retries += 1
            log.warning(
                "nats sink: publish refused; sending it again",
                subject=item.subject,
                msg_id=item.msg_id,
                error=repr(error),
            )
            self._queue.appendleft(item)
            assert self._wakeup is not None
            self._wakeup.set()
            return
        ack = future.result()
        self._published += 1
        if getattr(ack, "duplicate", None):
            self._duplicates += 1
        self._acked(item)

    def _acked(self, item: _Item) -> None:
        index = item.index
        if index == self._low:
            self._low += 1
            ahead = self._acked_ahead
            while self._low in ahead:
                ahead.discard(self._low)
                self._low += 1
        else:
            self._acked_ahead.add(index)
        with self._cond:
            self._outstanding -= 1
            self._outstanding_bytes -= len(item.data)
            self._cond.notify_all()
        self._release()
        if self._queue and self._wakeup is not None:
            self._wakeup.set()
        ctx = self._ctx
        if ctx is not None and self._published % 1000 == 0:
            ctx.state.component_stats = self.stats()

    async def _watch(self) -> None:
        """Publishes unacknowledged past the timeout are sent again (same id)."""
        period = max(min(self._timeout / 4, 1.0), 0.05)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            late = [
                (item, future)
                for item, future in self._inflight.values()
                if now - item.sent_at > self._timeout
            ]
            if late:
                self._retries += len(late)
                log.warning(
                    "nats sink: publishes unacknowledged; sending them again",
                    count=len(late),
                    timeout=self._timeout,
                )
                for item, future in sorted(late, key=lambda e: e[0].index, reverse=True):
                    del self._inflight[item.index]
                    future.cancel()
                    self._queue.appendleft(item)
                self._ready = False  # the stream may be gone with the server
            if self._queue and self._wakeup is not None:
                self._wakeup.set()
            ctx = self._ctx
            if ctx is not None:
                ctx.state.component_stats = self.stats()


# -- the nats source (JetStream, durable) ---------------------------------------------------


class NatsSource(_Stage, Source):
    """``nats``: a durable pull consumer whose messages are acknowledged once passed on (see
    the module's docstring)."""

    _owner = "nats source"
    acks = True

    def __init__(
        self,
        url: str,
        stream: str | Mapping[str, Any],
        durable: str,
        subject: str | None = None,
        ack_wait: float = 30.0,
        max_ack_pending: int = 20000,
        max_deliver: int = -1,
        deliver: str = "all",
        batch: int = 256,
        ack_every: int = 1000,
        ack_interval: float = 0.2,
        max_buffer_bytes: int = 8 << 20,
        msg_id_field: str | None = None,
        ping_interval: float = 2.0,
        reconnect_wait: float = 0.2,
    ) -> None:
        super().__init__(url, ping_interval, reconnect_wait)
        owner = self._owner
        self._stream_name, self._stream_spec = _stream(owner, stream)
        if not isinstance(durable, str) or not durable or any(c in durable for c in " .*>"):
            raise ValueError(
                f"{owner}: durable must be a consumer name (no spaces, '.', '*' or '>'), "
                f"got {durable!r}"
            )
        if subject is not None and (not isinstance(subject, str) or not subject):
            raise ValueError(f"{owner}: subject must be a subject filter, got {subject!r}")
        if deliver not in ("all", "new"):
            raise ValueError(f"{owner}: deliver must be 'all' or 'new', got {deliver!r}")
        self._ack_wait = _number(owner, "ack_wait", ack_wait)
        if (
            isinstance(max_ack_pending, bool)
            or not isinstance(max_ack_pending, int)
            or (max_ack_pending != -1 and max_ack_pending < 1)
        ):
            raise ValueError(
                f"{owner}: max_ack_pending must be an integer >= 1 (or -1: no limit), "
                f"got {max_ack_pending!r}"
            )
        self._batch = _count(owner, "batch", batch)
        self._ack_every = _count(owner, "ack_every", ack_every)
        if max_ack_pending != -1 and max_ack_pending < 2 * self._ack_every:
            raise ValueError(
                f"{owner}: max_ack_pending ({max_ack_pending}) must be at least twice "
                f"ack_every ({self._ack_every}): records wait unacknowledged until a barrier "
                "after them is done"
            )
        self._ack_interval = _number(owner, "ack_interval", ack_interval)
        if self._ack_wait <= 4 * self._ack_interval:
            raise ValueError(
                f"{owner}: ack_wait ({self._ack_wait:g} s) must be well over ack_interval "
                f"({self._ack_interval:g} s)"
            )
        self._max_buffer = _count(owner, "max_buffer_bytes", max_buffer_bytes, minimum=1024)
        if msg_id_field is not None and (not isinstance(msg_id_field, str) or not msg_id_field):
            raise ValueError(f"{owner}: msg_id_field must be a field name, got {msg_id_field!r}")
        self._msg_id_field = msg_id_field
        self._consumer = ConsumerSpec(
            durable=durable,
            filter_subject=subject,
            ack_wait=self._ack_wait,
            max_ack_pending=max_ack_pending,
            max_deliver=max_deliver,
            deliver_policy=deliver,
        )
        self._max_ack_pending = max_ack_pending
        # Filled on the I/O loop, drained by poll (deque appends and pops are atomic).
        self._buffer: collections.deque[tuple[dict[str, Any], Msg, int]] = collections.deque()
        self._buffered = 0
        self._space: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False
        # The stage thread's.
        self._origin = ""
        self._paths = 0
        self._inflight: dict[int, Msg] = {}  # stream seq -> latest delivery, not acked
        self._group: list[int] = []
        self._group_started = 0.0
        self._n = 0
        self._groups: dict[int, tuple[list[int], float]] = {}
        self._done: collections.Counter[int] = collections.Counter()
        self._next_ack = 1
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._recent_max = max(100_000, 4 * max_ack_pending)
        self._stall_logged = False
        self._received = 0
        self._acked = 0
        self._redelivered = 0
        self._bad = 0
        self._kept_alive = 0.0

    def __repr__(self) -> str:
        return f"NatsSource(url={self._url!r}, stream={self._stream_name!r})"

    def check_hold(self, seconds: float) -> tuple[str, str] | None:
        """``ack_wait`` against the longest a record waits downstream (a window's size and
        lateness): the acknowledgement must outlast it, or messages come again meanwhile."""
        need = seconds + 2 * self._ack_interval
        if self._ack_wait <= need:
            return (
                "ack_wait",
                f"nats source: ack_wait ({self._ack_wait:g} s) must exceed the longest a "
                f"record waits downstream ({seconds:g} s: a window's size, allowed lateness "
                f"and idle timeout) plus two ack intervals, {need:g} s in all; raise ack_wait",
            )
        return None

    # -- stage thread ------------------------------------------------------------------------

    def start(self, ctx: StageContext) -> None:
        self._origin = ctx.address.name
        self._paths = ctx.paths
        self._running = True
        self._open(ctx)
        future = ctx.system.io.submit(self._begin())
        try:
            future.result(timeout=10.0)
        except TimeoutError:
            log.warning(
                "nats server not reachable yet; the consumer is set up once it is",
                url=self._url,
                stage=ctx.name,
            )
            future.add_done_callback(lambda f: self._begin_failed(ctx, f))

    def _begin_failed(self, ctx: StageContext, future: Any) -> None:
        """The late setup's error (a stream that does not match, say): the link is FAILED
        (``/healthz`` says so) and the reason logged; nothing is read."""
        if future.cancelled() or future.exception() is None:
            return
        log.error(
            "nats source: cannot read the stream", stage=ctx.name, error=str(future.exception())
        )
        ctx.set_link_state("FAILED")

    async def _begin(self) -> None:
        """Connected, the stream and consumer ready, the fetch task started; a stream
        mismatch raises (and stops the stage)."""
        self._space = asyncio.Event()
        conn = self._conn
        assert conn is not None
        nc = await conn.wait_connected()
        await self._prepare(nc.jetstream())
        self._task = asyncio.get_running_loop().create_task(self._fetch())

    async def _prepare(self, js: JetStreamContext) -> None:
        if self._stream_spec is not None:
            await ensure_stream(js, self._stream_spec, "stream")
        else:
            try:
                await js.stream_info(self._stream_name)
            except NotFoundError:
                raise ValueError(
                    f"nats source: stream {self._stream_name!r} does not exist; give stream "
                    "as a table (name, subjects, ...) to create it"
                ) from None
        spec = self._consumer
        try:
            info = await js.consumer_info(self._stream_name, spec.durable)
        except NotFoundError:
            info = None
        if info is not None and (info.num_ack_pending or 0) > 0:
            # Delivered and never acknowledged (a process killed meanwhile): recreate the
            # consumer at its ack floor so they come again now, in order, not after ack_wait.
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            config = spec.consumer_config()
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = (floor or 0) + 1
            await js.delete_consumer(self._stream_name, spec.durable)
            await js.add_consumer(self._stream_name, config)
            log.info(
                "consumer restarted at its ack floor",
                stream=self._stream_name,
                consumer=spec.durable,
                from_seq=config.opt_start_seq,
                unacknowledged=info.num_ack_pending,
            )
        elif (
            info is not None
            and _policy(info.config.deliver_policy) is DeliverPolicy.BY_START_SEQUENCE
        ):
            config = spec.consumer_config()  # restarted before: update what may change
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = info.config.opt_start_seq
            await js.add_consumer(self._stream_name, config)
        else:
            await ensure_consumer(js, self._stream_name, spec, "consumer")

    async def _fetch(self) -> None:
        conn = self._conn
        ctx = self._ctx
        assert conn is not None and ctx is not None and self._space is not None
        sub = None
        while self._running:
            try:
                nc = await conn.wait_connected()
                if sub is None:
                    js = nc.jetstream()
                    sub = await js.pull_subscribe_bind(
                        durable=self._consumer.durable, stream=self._stream_name
                    )
                if self._buffered >= self._max_buffer:
                    self._space.clear()
                    await self._space.wait()
                    continue
                try:
                    msgs = await sub.fetch(self._batch, timeout=1.0)
                except NatsTimeoutError:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the connection comes back: retry
                log.debug("nats source: fetch failed", error=repr(exc))
                await asyncio.sleep(self._reconnect_wait)
                continue
            added = False
            for msg in msgs:
                try:
                    record = decode_record(msg.data)
                except ValueError as exc:
                    self._bad += 1
                    seq = msg.metadata.sequence.stream if msg.metadata else None
                    log.warning(
                        "nats source: a message that does not decode, terminated",
                        stream=self._stream_name,
                        seq=seq,
                        error=str(exc),
                    )
                    with contextlib.suppress(Exception):  # it comes again, and is refused again
                        await msg.term()
                    continue
                size = len(msg.data) + 200
                self._buffer.append((record, msg, size))
                self._buffered += size
                added = True
            if added:
                ctx.wake()

    def poll(self, now: float) -> list[Any]:
        out: list[Any] = []
        buffer = self._buffer
        inflight = self._inflight
        taken = 0
        while buffer and taken < 5000:
            record, msg, size = buffer.popleft()
            taken += 1
            self._buffered -= size
            meta = msg.metadata
            seq = meta.sequence.stream
            if seq in inflight:  # delivered again while being worked on: keep the latest
                inflight[seq] = msg
                self._redelivered += 1
                continue
            if seq in self._recent:  # acknowledged already (an ack the server lost)
                self._redelivered += 1
                self._ack([msg])
                continue
            inflight[seq] = msg
            if not self._group:
                self._group_started = now
            self._group.append(seq)
            self._received += 1
            if self._msg_id_field is not None:
                headers = msg.headers or {}
                record[self._msg_id_field] = headers.get(
                    "Nats-Msg-Id", f"{self._stream_name}:{seq}"
                )
            out.append(record)
            if len(self._group) >= self._ack_every:
                out.append(self._barrier(now))
        if self._group and now - self._group_started >= self._ack_interval:
            out.append(self._barrier(now))
        if taken and self._space is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._space.set)
        self._keep_alive(now)
        self._check_stall()
        return out

    def next_poll(self) -> float | None:
        if self._buffer:
            return 0.0
        if self._group:
            return self._group_started + self._ack_interval
        if self._inflight:
            return self._kept_alive + self._ack_wait / 3  # the next keep-alive
        return None

    def _barrier(self, now: float) -> Barrier:
        self._n += 1
        self._groups[self._n] = (self._group, now)
        self._group = []
        return Barrier(self._origin, self._n)

    def on_barrier_done(self, n: int, stage: str) -> None:
        if n < self._next_ack:
            return  # acknowledged already
        self._done[n] += 1
        needed = max(self._paths, 1)
        while True:
            k = self._next_ack
            entry = self._groups.get(k)
            if entry is None or self._done[k] < needed:
                return
            del self._groups[k]
            del self._done[k]
            self._next_ack += 1
            msgs = []
            for seq in entry[0]:
                msg = self._inflight.pop(seq, None)
                if msg is not None:
                    msgs.append(msg)
                    self._remember(seq)
            self._acked += len(msgs)
            self._ack(msgs)

    def _remember(self, seq: int) -> None:
        recent = self._recent
        recent[seq] = None
        if len(recent) > self._recent_max:
            recent.popitem(last=False)

    def _ack(self, msgs: list[Msg]) -> None:
        if not msgs or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(_ack_all(msgs), self._loop)

    def _keep_alive(self, now: float) -> None:
        """Messages held for a barrier not yet done (a window still open, however long the
        feed is quiet) are marked in progress every third of ``ack_wait``, so the server
        does not deliver them again meanwhile."""
        if not self._inflight or now - self._kept_alive < self._ack_wait / 3:
            return
        self._kept_alive = now
        if self._loop is not None:
            msgs = list(self._inflight.values())
            asyncio.run_coroutine_threadsafe(_in_progress(msgs), self._loop)

    def _check_stall(self) -> None:
        limit = self._max_ack_pending
        if limit == -1 or self._stall_logged or len(self._inflight) < limit:
            return
        self._stall_logged = True
        log.error(
            "nats source: max_ack_pending messages are held unacknowledged, so the server "
            "sends no more; if a window waits for later records to close, raise "
            "max_ack_pending",
            max_ack_pending=limit,
        )

    def quiesce(self) -> None:
        """Stop fetching; the connection stays, to acknowledge what the sinks accept while
        the stages after this one drain."""
        self._running = False
        task = self._task
        if task is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(task.cancel)

    def stop(self) -> None:
        self.quiesce()
        self._close()  # what was acknowledged is flushed first

    def stats(self) -> dict[str, int]:
        out = super().stats()
        out.update(
            received=self._received,
            acked=self._acked,
            unacknowledged=len(self._inflight),
            redelivered=self._redelivered,
            bad=self._bad,
        )
        return out


def _policy(value: Any) -> DeliverPolicy | None:
    try:
        return DeliverPolicy(value)
    except ValueError:
        return None


async def _in_progress(msgs: list[Msg]) -> None:
    for msg in msgs:
        try:
            await msg.in_progress()
        except Exception as exc:  # noqa: BLE001 - then it may come again: dropped as a repeat
            log.debug("nats source: in-progress not sent", error=repr(exc))
            return


async def _ack_all(msgs: list[Msg]) -> None:
    for msg in msgs:
        try:
            await msg.ack()
        except Exception as exc:  # noqa: BLE001 - the message comes again; a repeat is dropped
            log.debug("nats source: ack not sent", error=repr(exc))


# -- core NATS: no durability ----------------------------------------------------------------


class NatsCoreSource(_Stage, Source):
    """``nats_core``: records from a plain NATS subject (``queue``: share it with the other
    members of a queue group). No durability: what is published while this source is not
    subscribed, or what NATS drops for a slow subscriber, is gone."""

    _owner = "nats_core source"

    def __init__(
        self,
        url: str,
        subject: str,
        queue: str | None = None,
        max_buffer_bytes: int = 8 << 20,
        ping_interval: float = 2.0,
        reconnect_wait: float = 0.2,
    ) -> None:
        super().__init__(url, ping_interval, reconnect_wait)
        if not isinstance(subject, str) or not subject or " " in subject:
            raise ValueError(f"{self._owner}: subject must be a NATS subject, got {subject!r}")
        self._subject = subject
        self._queue = queue or ""
        self._max_buffer = _count(self._owner, "max_buffer_bytes", max_buffer_bytes, minimum=1024)
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._buffered = 0
        self._received = 0
        self._bad = 0
        self._dropped = 0
        self._subscribed = False

    def start(self, ctx: StageContext) -> None:
        self._open(ctx)
        # Subscribed (and the server told) before the stage counts as started, so that what
        # is published after Pipeline.start() returns reaches it; a server that is not up
        # yet: subscribed once it is.
        future = ctx.system.io.submit(self._wait_subscribed())
        try:
            future.result(timeout=10.0)
        except TimeoutError:
            future.cancel()

    async def _wait_subscribed(self) -> None:
        conn = self._conn
        assert conn is not None
        nc = await conn.wait_connected()
        while not self._subscribed:
            await asyncio.sleep(0.01)
        await nc.flush(timeout=5)

    def _on_connected(self) -> Any:
        if self._subscribed:
            return None  # nats-py resubscribes after a reconnect
        return self._subscribe()

    async def _subscribe(self) -> None:
        conn = self._conn
        assert conn is not None and conn.nc is not None
        await conn.nc.subscribe(self._subject, queue=self._queue, cb=self._on_msg)
        self._subscribed = True

    async def _on_msg(self, msg: Msg) -> None:
        try:
            record = decode_record(msg.data)
        except ValueError as exc:
            self._bad += 1
            log.warning("nats_core source: a message that does not decode", error=str(exc))
            return
        if self._buffered >= self._max_buffer:
            self._dropped += 1  # core NATS has no flow control: counted, as NATS would
            return
        self._buffer.append(record)
        self._buffered += len(msg.data)
        ctx = self._ctx
        if ctx is not None and len(self._buffer) == 1:
            ctx.wake()

    def poll(self, now: float) -> list[Any]:
        out: list[Any] = []
        buffer = self._buffer
        while buffer and len(out) < 5000:
            out.append(buffer.popleft())
        self._buffered = 0 if not buffer else self._buffered
        self._received += len(out)
        return out

    def next_poll(self) -> float | None:
        return 0.0 if self._buffer else None

    def stop(self) -> None:
        self._close()

    def stats(self) -> dict[str, int]:
        out = super().stats()
        out.update(received=self._received, bad=self._bad, dropped=self._dropped)
        return out


class NatsCoreSink(_Stage, Sink):
    """``nats_core``: each record (JSON) to a plain NATS subject (``{field}`` in it replaced
    by the record's value). No durability: a subject nobody subscribes to drops it."""

    _owner = "nats_core sink"

    def __init__(
        self,
        url: str,
        subject: str,
        ping_interval: float = 2.0,
        reconnect_wait: float = 0.2,
    ) -> None:
        super().__init__(url, ping_interval, reconnect_wait)
        self._subject, self._subject_fields = _subject_template(self._owner, subject)
        self._published = 0

    def start(self, ctx: StageContext) -> None:
        self._open(ctx)

    def write(self, records: list[Any], now: float) -> None:
        ctx = self._ctx
        assert ctx is not None
        out: list[tuple[str, bytes]] = []
        for record in records:
            try:
                if self._subject_fields:
                    values = {
                        f: str(record[f]).translate(_SUBJECT_BAD) for f in self._subject_fields
                    }
                    subject = self._subject.format_map(values)
                else:
                    subject = self._subject
                out.append((subject, encode_record(record)))
            except (KeyError, TypeError, ValueError) as exc:
                ctx.record_failed(record, exc)
        if out:
            ctx.system.io.run(self._publish(out), timeout=30.0)
            self._published += len(out)

    async def _publish(self, items: list[tuple[str, bytes]]) -> None:
        conn = self._conn
        assert conn is not None
        nc = await conn.wait_connected()
        for subject, data in items:
            await nc.publish(subject, data)

    def flush(self, now: float) -> None:
        conn, ctx = self._conn, self._ctx
        if conn is None or ctx is None or conn.nc is None or not conn.connected:
            return
        try:
            ctx.system.io.run(conn.nc.flush(timeout=5), timeout=10.0)
        except Exception as exc:  # noqa: BLE001 - no durability promised: logged
            log.warning("nats_core sink: flush failed", error=repr(exc))

    def stop(self) -> None:
        self.flush(time.monotonic())
        self._close()

    def stats(self) -> dict[str, int]:
        out = super().stats()
        out["published"] = self._published
        return out


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "nats",
        sources={"nats": NatsSource, "nats_core": NatsCoreSource},
        sinks={"nats": NatsSink, "nats_core": NatsCoreSink},
        servers={"nats": nats_server_kind()},
    )
