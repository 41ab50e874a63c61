"""The embedded KeySquare-style data platform: a grpc.aio KeyAccess server on its own thread.

The server runs its own asyncio loop (never the client's). All platform state lives in a
sans-I/O ``Platform`` touched only on that loop, so each request runs to completion without
interleaving. Each Session stream writes through its own outbound queue and single writer
task: fan-out from other sessions' publishes only enqueues, and a session that reads too
slowly is dropped (its client reconnects and resubscribes) instead of blocking the
publishers or growing the platform's memory.

Memory bound. A session's queue is the kit's :class:`~actorwire.actors.serving.Outbox` of
serialized ServerMessages (sizes are their ``ByteSize()``), bounded by ``max_outbox_bytes``
(``platform.max_outbox_bytes``, 32 MiB by default) and by ``outbound_limit`` messages. A
session whose queue would pass either, or that takes nothing for ``stall_deadline`` seconds
(10 s) while data waits in it, however much it pings meanwhile, is dropped: counted in
``stats()`` (``sessions_dropped_overflow``, ``sessions_dropped_stalled``) and logged with its
peer. So what the platform holds for one session's outbound data is at most
``max_outbox_bytes``, plus the one message its writer is handing to gRPC (at most
max(1 MiB, max_record_bytes) and a few bytes), plus what gRPC itself has taken for the
stream: the client's HTTP/2 window, about 4 MiB with grpcio's client, held after a drop
until the client reads it (the drop's status follows that data) or its connection closes.
Measured with 60 KB records and a subscriber that never reads (or only pings): platform RSS
55 MB before, 125 MB at most, flat afterwards. A cached subscribe's snapshot waits in line as
references to the cached records, not copies, and is serialized a batch at a time when the
writer reaches it, so a cache larger than the budget still reaches a subscriber that reads.
``stats()`` reports ``queued_bytes`` (now, all sessions) and the most one session ever held:
``peak_outbox_bytes`` (its queue) and ``peak_queued_bytes`` (with the message being written).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
import structlog
from actorwire.actors import log as _log  # noqa: F401  (installs secret redaction)
from google.protobuf.unknown_fields import UnknownFieldSet

from ...actors.ioloop import IOLoop
from ...actors.serving import Outbox
from ...actors.tls import server_context
from . import keysquare_pb2 as pb
from . import keysquare_pb2_grpc as pb_grpc
from .config import AppConfig, PlatformConfig, load_config, with_session_limits
from .platform import (
    INVALID,
    NOT_FOUND,
    PERMISSION_DENIED,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNKNOWN_TYPE,
    Platform,
    PlatformError,
    Published,
)
from .store import MEMORY, MessageStore

__all__ = ["BATCH_BYTES", "BATCH_RECORDS", "OUTBOUND_LIMIT", "PlatformServer", "serve"]

log = structlog.get_logger("actorwire.keysquare.server")

BATCH_RECORDS = 1000
"""Records per snapshot batch (RecordBatch or cached Delivery)."""
BATCH_BYTES = 1 << 20
COALESCE_BYTES = 256 * 1024
"""Queued messages a session's writer hands to gRPC in one write, at most (about)."""
"""Bytes per outbound batch, well under gRPC's default 4 MiB receive limit of clients."""
OUTBOUND_LIMIT = 10_000
"""Messages a Session stream may have queued before the session is dropped as too slow."""
MAX_RECEIVE_BYTES = 32 << 20
"""Largest client message (one Publish) the server accepts."""

_STATUS = {
    UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    UNKNOWN_TYPE: grpc.StatusCode.NOT_FOUND,
    NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
}

_BODIES = ("hello", "subscribe", "unsubscribe", "publish", "edit", "ping")

_T = TypeVar("_T")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


def _platform_version(name: str) -> str:
    try:
        return f"{name} (actorwire {_dist_version('actorwire')})"
    except PackageNotFoundError:
        return name


def _batches(
    records: list[pb.Record], max_records: int, max_bytes: int = BATCH_BYTES
) -> Iterator[list[pb.Record]]:
    """Split records into batches of at most ``max_records`` and about ``max_bytes``."""
    batch: list[pb.Record] = []
    size = 0
    for record in records:
        n = record.ByteSize() + 8
        if batch and (len(batch) >= max_records or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += n
    if batch:
        yield batch


class _Snapshot:
    """A cached subscribe's records waiting in a stream's line after its ``position``-th
    queued message: references to the cached records, serialized a batch at a time only when
    the writer reaches them."""

    __slots__ = ("batches", "cached", "marker", "position", "sub_id")

    def __init__(
        self,
        sub_id: int,
        batches: list[list[pb.Record]],
        position: int,
        cached: bool = True,
        marker: tuple[int, int] = (0, 0),
    ) -> None:
        self.sub_id = sub_id
        self.batches = deque(batches)
        self.position = position
        self.cached = cached  # records from the cache (else from the journal, in order)
        self.marker = marker  # (epoch, pos) the subscription stands at once they are sent

    def messages(self) -> Iterator[bytes]:
        """The serialized Deliveries, the last with ``snapshot_done`` and the position."""
        batches = self.batches
        epoch, pos = self.marker
        while batches:
            records = batches.popleft()
            delivery = pb.Delivery(
                sub_id=self.sub_id, records=records, snapshot=self.cached and bool(records)
            )
            if not batches:
                delivery.snapshot_done = True
                delivery.epoch, delivery.pos = epoch, pos
            yield pb.ServerMessage(delivery=delivery).SerializeToString()


class _Stream:
    """One open Session stream: its session, its outbox of serialized messages (bounded in
    bytes and in count) with the cached snapshots waiting in line among them, and how it
    ends. Time is passed in."""

    def __init__(
        self,
        session_id: str,
        app: AppConfig,
        peer: str,
        limit: int,
        max_bytes: int,
        stall_deadline: float,
        now: float,
    ) -> None:
        self.session_id = session_id
        self.app = app
        self.peer = peer
        self.limit = limit
        self.outbox = Outbox(max_bytes, stall_deadline)
        self.snapshots: deque[_Snapshot] = deque()
        self.queued = 0  # messages put in the outbox so far
        self.taken = 0  # messages the writer has taken so far
        self.writing = 0  # bytes of the message the writer is handing to gRPC
        self.wrote_at = now  # when the writer last finished handing one over
        self.wake = asyncio.Event()
        self.done = asyncio.Event()
        self.closing = False
        self.end: tuple[grpc.StatusCode, str] | None = None
        self.refused: str | None = None  # why the outbox refused a message: the peer is slow

    @property
    def held(self) -> int:
        """Bytes waiting for the peer: the outbox and the message being written."""
        return self.outbox.bytes + self.writing

    def send(self, frame: bytes, now: float) -> bool:
        """Queue a serialized message for the writer; False when closing, or (``refused``
        set) when the outbox would pass its bytes or its message count."""
        if self.closing or self.refused is not None:
            return False
        if len(self.outbox) >= self.limit:
            self.refused = f"more than {self.limit} messages queued"
            return False
        if not self.outbox.put(frame, now):
            self.refused = f"more than {self.outbox.max_bytes} bytes queued"
            return False
        self.queued += 1
        self.wake.set()
        return True

    def send_snapshot(
        self,
        sub_id: int,
        batches: list[list[pb.Record]],
        cached: bool = True,
        marker: tuple[int, int] = (0, 0),
    ) -> None:
        """Queue a subscribe's records (a snapshot, or a resume's journal records), after
        everything queued so far, then its position marker."""
        if not self.closing:
            self.snapshots.append(_Snapshot(sub_id, batches, self.queued, cached, marker))
            self.wake.set()

    def next(self, now: float) -> bytes | _Snapshot | None:
        """What the writer sends next, in queue order; None (and ``wake`` cleared) when
        nothing waits."""
        snapshots = self.snapshots
        if snapshots and snapshots[0].position == self.taken:
            return snapshots.popleft()
        # What waits before the next snapshot, up to COALESCE_BYTES, as one write (a
        # Batch when more than one): a gRPC write costs far more than its bytes. Every
        # ServerMessage has a body, so none serializes to zero bytes.
        before = snapshots[0].position - self.taken if snapshots else None
        frames = self.outbox.take(COALESCE_BYTES, now, before)
        if not frames:
            self.wake.clear()
            return None
        self.taken += len(frames)
        data = frames[0] if len(frames) == 1 else _batch_bytes(frames)
        self.writing = len(data)
        return data

    def wrote(self, now: float) -> None:
        """The writer handed its message to gRPC."""
        self.writing = 0
        self.wrote_at = now

    def stalled(self, now: float) -> bool:
        """True when data has waited ``stall_deadline`` seconds with nothing taken and no
        write finished (a snapshot's batches count as progress)."""
        box = self.outbox
        return box.stalled(now) and now - self.wrote_at >= box.stall_deadline

    def finish(self) -> None:
        """The client half-closed: write what is queued, then end with OK."""
        if not self.closing:
            self.closing = True
            self.wake.set()

    def kill(self, code: grpc.StatusCode | None, message: str = "") -> None:
        """End now, dropping whatever is queued; ``code`` None ends without a status."""
        if self.done.is_set():
            return
        self.closing = True
        self.end = (code, message) if code is not None else None
        # What waited is released now, not when the call has finished ending.
        self.outbox = Outbox(self.outbox.max_bytes, self.outbox.stall_deadline)
        self.snapshots.clear()
        self.writing = 0
        self.done.set()


class _KeyAccess(pb_grpc.KeyAccessServicer):
    """The KeyAccess service; every handler runs on the server's loop."""

    def __init__(self, server: PlatformServer) -> None:
        self.server = server

    async def Register(
        self, request: pb.RegisterRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterReply:
        """Check the application's key and open a session."""
        return await self.server._register(request, context)

    async def GetSchema(
        self, request: pb.SchemaRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SchemaReply:
        """The schema with this session's permissions."""
        return await self.server._get_schema(request, context)

    async def Snapshot(
        self, request: pb.SnapshotRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """Stream the matching cached records in batches."""
        await self.server._snapshot(request, context)

    async def Session(
        self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """The bidirectional session stream."""
        await self.server._session(context)


def _pass_serialized(message: object) -> bytes:
    if isinstance(message, bytes):
        return message
    assert isinstance(message, pb.ServerMessage), type(message)
    return message.SerializeToString()


class _PreSerialized(grpc.aio.ServerInterceptor):
    """Session streams write ServerMessages already serialized (their outbox holds and counts
    the bytes), so the Session method's serializer passes bytes through."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Req, _Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.endswith("/Session"):
            return handler
        behaviour = handler.stream_stream
        if behaviour is None:
            return handler
        return grpc.stream_stream_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=_pass_serialized,
        )


class PlatformServer:
    """A running embedded platform; create it with ``serve()``.

    Public methods are thread-safe. ``stop()`` is idempotent and closes the store.
    """

    def __init__(
        self,
        config: PlatformConfig,
        store: MessageStore,
        host: str = "127.0.0.1",
        port: int = 0,
        outbound_limit: int = OUTBOUND_LIMIT,
        tls: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self._tls = tls  # (private key, certificate chain), PEM; never logged
        self._requested_port = port
        self.port = 0
        self.store = store
        self.outbound_limit = outbound_limit
        self._platform = Platform(
            config,
            dedupe_window_bytes=config.dedupe_window_bytes,
            dedupe_window_seconds=config.dedupe_window_seconds,
            journal_bytes=config.journal_bytes,
            journal_seconds=config.journal_seconds,
        )
        self._platform.load(store.load_all())
        platform = self._platform
        platform.restore(store.restore(since=time.time() - config.dedupe_window_seconds))
        store.start_epoch(platform.epoch)
        self._platform_name = _platform_version(config.name)
        self._streams: dict[str, _Stream] = {}
        self._last_seen: dict[str, float] = {}
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "registered",
                "registrations_refused",
                "streams_opened",
                "streams_closed",
                "sessions_dropped_deadline",
                "sessions_dropped_overflow",
                "sessions_dropped_stalled",
                "peak_outbox_bytes",
                "peak_queued_bytes",
                "bad_messages",
                "records_published",
                "publish_requests",
                "publish_errors",
                "store_errors",
                "resumed",
                "resume_gaps",
            ),
            0,
        )
        self._control = threading.Lock()
        self._io: IOLoop | None = None
        self._grpc: grpc.aio.Server | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and listen; returns once the port is bound."""
        with self._control:
            if self._io is not None or self._stopped:
                raise RuntimeError("a PlatformServer starts once")
            io = IOLoop("keysquare-platform")
            self._io = io
            try:
                io.run(self._start(), timeout=30)
            except BaseException:
                io.shutdown()
                self.store.close()
                self._stopped = True
                raise

    async def _start(self) -> None:
        server = grpc.aio.server(
            interceptors=[_PreSerialized()],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ],
        )
        add_servicer: Callable[[Any, Any], None] = pb_grpc.add_KeyAccessServicer_to_server
        add_servicer(_KeyAccess(self), server)
        address = f"{self.host}:{self._requested_port}"
        try:
            if self._tls is None:
                port = server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials([self._tls])
                port = server.add_secure_port(address, credentials)
            if port == 0:
                raise RuntimeError("no port bound")
            await server.start()
        except RuntimeError as exc:
            # grpc.aio logs a record holding the object when it frees a server that never
            # reached STOPPED; a handler that keeps records (pytest's) then crashes the
            # process. Only a started server can stop, so start it (portless) and stop it.
            with contextlib.suppress(RuntimeError):
                await server.start()
            await server.stop(None)
            raise OSError(f"keysquare platform cannot listen on {address}: {exc}") from None
        self._grpc, self.port = server, port
        self._reaper = asyncio.create_task(self._reap())
        log.info(
            "platform listening",
            host=self.host,
            port=port,
            tls=self._tls is not None,
            store=self.store.path,
        )

    def stop(self, grace: float = 1.0) -> None:
        """End every session stream, stop the server and its thread, close the store."""
        with self._control:
            if self._stopped:
                return
            self._stopped = True
            io = self._io
            if io is not None and io.alive:
                try:
                    io.run(self._stop(grace), timeout=grace + 10)
                except (concurrent.futures.TimeoutError, RuntimeError) as exc:
                    log.error("platform stop did not finish cleanly", error=str(exc))
            if io is not None:
                io.shutdown(timeout=10)
            self.store.close()
            log.info("platform stopped", port=self.port)

    async def _stop(self, grace: float) -> None:
        for stream in list(self._streams.values()):
            stream.kill(grpc.StatusCode.UNAVAILABLE, "the platform is shutting down")
        if self._reaper is not None:
            self._reaper.cancel()
        if self._grpc is not None:
            await self._grpc.stop(grace)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<PlatformServer {self.host}:{self.port} {state}>"

    # -- thread-safe control ----------------------------------------------------------------

    def _on_loop(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the server's loop and return its result (or raise its error)."""
        io = self._io
        if io is None or self._stopped or not io.alive:
            raise RuntimeError("the platform server is not running")
        return io.call(fn, timeout=30)

    def define_type(self, schema: str, name: str, fields: Mapping[str, str]) -> int:
        """Add or change a data type; every open Session stream gets SchemaChanged{version}."""
        fields = dict(fields)

        def define() -> int:
            before = self._platform.version
            version = self._platform.define_type(schema, name, fields)
            if version != before:
                log.info("schema changed", schema=schema, type=name, version=version)
                notice = pb.ServerMessage(schema_changed=pb.SchemaChanged(version=version))
                for stream in list(self._streams.values()):
                    self._send(stream, notice)
            return version

        return self._on_loop(define)

    def sessions(self) -> int:
        """How many sessions are registered."""
        if self._stopped:
            return self._platform.session_count
        return self._on_loop(lambda: self._platform.session_count)

    def subscriptions(self) -> int:
        """How many subscriptions all sessions hold."""
        if self._stopped:
            return self._platform.subscription_count
        return self._on_loop(lambda: self._platform.subscription_count)

    def stats(self) -> dict[str, int]:
        """Counters: registrations, streams, dropped sessions, bad messages, records, ...

        Sessions dropped for reading too slowly are ``sessions_dropped_overflow`` (the queue
        would pass ``max_outbox_bytes`` or ``outbound_limit``) and ``sessions_dropped_stalled``
        (nothing taken for ``stall_deadline`` while data waited); ``sessions_dropped_slow``
        is both. ``queued_bytes`` is what waits for every session now; ``peak_outbox_bytes``
        and ``peak_queued_bytes`` are the most one session ever had queued (without and with
        the message its writer was handing to gRPC).
        """
        if self._stopped:
            return self._read_stats()
        return self._on_loop(self._read_stats)

    def _read_stats(self) -> dict[str, int]:
        out = dict(self._counters)
        out["sessions_dropped_slow"] = (
            out["sessions_dropped_overflow"] + out["sessions_dropped_stalled"]
        )
        out["queued_bytes"] = sum(stream.held for stream in self._streams.values())
        return out

    # -- loop side --------------------------------------------------------------------------

    def _touch(self, session_id: str) -> None:
        if self._platform.has_session(session_id):
            self._last_seen[session_id] = asyncio.get_running_loop().time()

    def _drop_session(self, session_id: str, reason: str) -> None:
        self._platform.drop_session(session_id)
        self._last_seen.pop(session_id, None)
        log.debug("session ended", session=session_id[:8], reason=reason)

    def _send(self, stream: _Stream, message: pb.ServerMessage) -> None:
        self._send_bytes(stream, message.SerializeToString())

    def _send_bytes(self, stream: _Stream, data: bytes) -> None:
        """Queue a serialized ServerMessage."""
        if stream.closing:
            return
        if stream.send(data, time.monotonic()):
            self._note_peak(stream)
        elif stream.refused is not None:
            self._drop_slow(stream, "overflow", stream.refused)

    def _note_peak(self, stream: _Stream) -> None:
        counters = self._counters
        queued = stream.outbox.bytes
        counters["peak_outbox_bytes"] = max(counters["peak_outbox_bytes"], queued)
        counters["peak_queued_bytes"] = max(counters["peak_queued_bytes"], queued + stream.writing)

    def _drop_slow(self, stream: _Stream, kind: str, why: str) -> None:
        """Drop a session that reads too slowly (``kind``: overflow or stalled); its client
        reconnects and resubscribes."""
        if stream.done.is_set():
            return
        self._counters[f"sessions_dropped_{kind}"] += 1
        log.error(
            "session dropped: reading too slowly",
            session=stream.session_id[:8],
            peer=stream.peer,
            app=stream.app.name,
            reason=why,
            queued_bytes=stream.held,
            max_outbox_bytes=stream.outbox.max_bytes,
        )
        stream.kill(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"session dropped: {why} (reading too slowly)"
        )
        self._drop_session(stream.session_id, kind)

    async def _reap(self) -> None:
        """Drop sessions silent for longer than the heartbeat deadline, and sessions that
        took nothing for ``stall_deadline`` while data waited for them."""
        config = self.config
        deadline = config.heartbeat_deadline
        stall = config.stall_deadline
        tick = min(config.heartbeat_interval, deadline, stall) / 4
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            clock = time.monotonic()
            for open_stream in list(self._streams.values()):
                if open_stream.stalled(clock):
                    self._drop_slow(
                        open_stream,
                        "stalled",
                        f"took nothing for {stall:g}s while {open_stream.held} bytes waited",
                    )
            now = loop.time()
            for session_id, seen in list(self._last_seen.items()):
                if now - seen <= deadline:
                    continue
                self._counters["sessions_dropped_deadline"] += 1
                stream = self._streams.get(session_id)
                log.warning(
                    "session dropped: heartbeat deadline passed",
                    session=session_id[:8],
                    app=stream.app.name if stream else None,
                    deadline=deadline,
                )
                if stream is not None:
                    stream.kill(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"session dropped: nothing received for {deadline:g}s (heartbeat deadline)",
                    )
                self._drop_session(session_id, "deadline")

    async def _register(
        self, request: pb.RegisterRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterReply:
        try:
            session_id = self._platform.register(request.application_name, request.api_key)
        except PlatformError as exc:
            self._counters["registrations_refused"] += 1
            log.warning("registration refused", app=request.application_name, peer=context.peer())
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
        self._counters["registered"] += 1
        self._touch(session_id)
        log.info("session registered", app=request.application_name, session=session_id[:8])
        return pb.RegisterReply(
            session_id=session_id,
            heartbeat_interval=self.config.heartbeat_interval,
            heartbeat_deadline=self.config.heartbeat_deadline,
            platform=self._platform_name,
            max_record_bytes=self.config.max_record_bytes,
        )

    async def _get_schema(
        self, request: pb.SchemaRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SchemaReply:
        try:
            app = self._platform.app_for(request.session_id)
        except PlatformError as exc:
            await context.abort(_STATUS[exc.code], exc.message)
        self._touch(request.session_id)
        return self._platform.schema_reply(app)

    async def _snapshot(
        self, request: pb.SnapshotRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        try:
            app = self._platform.app_for(request.session_id)
            records = self._platform.snapshot(app, request.topic)
        except PlatformError as exc:
            await context.abort(_STATUS[exc.code], exc.message)
        self._touch(request.session_id)
        for batch in _batches(records, BATCH_RECORDS):
            await context.write(pb.RecordBatch(records=batch))
        self._touch(request.session_id)

    # -- the Session stream -----------------------------------------------------------------

    async def _session(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        assert isinstance(first, pb.ClientMessage)
        if first.WhichOneof("body") != "hello":
            self._counters["bad_messages"] += 1
            log.warning("session stream without Hello", peer=context.peer())
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "the first message on a Session stream must be Hello(session_id)",
            )
        session_id = first.hello.session_id
        try:
            app = self._platform.app_for(session_id)
        except PlatformError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
        old = self._streams.get(session_id)
        if old is not None:
            old.kill(grpc.StatusCode.ABORTED, "the session opened another Session stream")
            self._platform.clear_subscriptions(session_id)
        stream = _Stream(
            session_id,
            app,
            context.peer(),
            self.outbound_limit,
            self.config.max_outbox_bytes,
            self.config.stall_deadline,
            time.monotonic(),
        )
        self._streams[session_id] = stream
        self._counters["streams_opened"] += 1
        self._touch(session_id)
        self._send(
            stream,
            pb.ServerMessage(
                welcome=pb.Welcome(session_id=session_id, schema_version=self._platform.version)
            ),
        )
        reader = asyncio.create_task(self._read_loop(stream, context))
        writer = asyncio.create_task(self._write_loop(stream, context))
        try:
            await stream.done.wait()
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self._counters["streams_closed"] += 1
            if self._streams.get(session_id) is stream:
                del self._streams[session_id]
                self._platform.clear_subscriptions(session_id)
        if stream.end is not None:
            await context.abort(*stream.end)

    async def _read_loop(
        self, stream: _Stream, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        try:
            while not stream.closing:
                message = await context.read()
                if message is grpc.aio.EOF:
                    # The client is leaving: flush what is queued, end the session.
                    stream.finish()
                    self._drop_session(stream.session_id, "closed by client")
                    return
                assert isinstance(message, pb.ClientMessage)
                self._touch(stream.session_id)
                try:
                    self._handle(stream, message)
                except Exception:
                    self._counters["bad_messages"] += 1
                    log.exception(
                        "session message failed", session=stream.session_id[:8], peer=stream.peer
                    )
                    self._send(stream, _ack_error(0, "INTERNAL", "the platform failed"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the call broke (client vanished)
            log.debug("session read ended", session=stream.session_id[:8], error=repr(exc))
            stream.kill(None)

    async def _write_loop(
        self, stream: _Stream, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        try:
            while True:
                item = stream.next(time.monotonic())
                if item is None:
                    if stream.closing:
                        break
                    await stream.wake.wait()
                    continue
                if isinstance(item, bytes):
                    await context.write(item)
                    stream.wrote(time.monotonic())
                    continue
                for frame in item.messages():
                    stream.writing = len(frame)
                    self._note_peak(stream)
                    await context.write(frame)
                    stream.wrote(time.monotonic())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the call broke (client vanished)
            log.debug("session write ended", session=stream.session_id[:8], error=repr(exc))
        stream.kill(None)

    def _handle(self, stream: _Stream, message: pb.ClientMessage) -> None:
        kind = message.WhichOneof("body")
        if kind == "ping":
            self._send(stream, pb.ServerMessage(pong=pb.Pong(n=message.ping.n)))
        elif kind == "subscribe":
            self._subscribe(stream, message.subscribe)
        elif kind == "unsubscribe":
            if not self._platform.unsubscribe(stream.session_id, message.unsubscribe.sub_id):
                log.debug("unsubscribe of an unknown sub_id", sub_id=message.unsubscribe.sub_id)
        elif kind == "publish":
            request = message.publish
            size = request.ByteSize()
            self._apply(
                stream,
                request.request_id,
                lambda: self._platform.publish(
                    stream.app, request.records, request.store, size, request.publish_ids
                ),
                size,
                request,
            )
        elif kind == "edit":
            edit = message.edit
            self._apply(
                stream,
                edit.request_id,
                lambda: self._platform.edit(stream.app, edit.key, edit.patch, edit.publish_id),
            )
        else:
            self._counters["bad_messages"] += 1
            what = (
                "Hello is only allowed as the first message"
                if kind == "hello"
                else f"client message has no body (expected one of {', '.join(_BODIES)})"
            )
            log.warning(
                "bad session message", session=stream.session_id[:8], peer=stream.peer, error=what
            )
            self._send(stream, _ack_error(0, INVALID, what))

    def _subscribe(self, stream: _Stream, request: pb.Subscribe) -> None:
        sub_id = request.sub_id
        platform = self._platform
        reply = pb.SubscribeReply(sub_id=sub_id, status="OK")
        try:
            if request.resume:
                back = platform.resume(
                    stream.session_id,
                    sub_id,
                    request.topic,
                    request.cached,
                    request.resume_epoch,
                    request.resume_pos,
                )
                records, from_cache = back.records, back.snapshot
                reply.resumed = not back.snapshot
                if back.gap is not None:
                    reply.gap.CopyFrom(back.gap)
                    self._counters["resume_gaps"] += 1
                else:
                    self._counters["resumed"] += 1
            else:
                records = platform.subscribe(
                    stream.session_id, sub_id, request.topic, request.cached
                )
                from_cache = request.cached
        except PlatformError as exc:
            reply = pb.SubscribeReply(
                sub_id=sub_id, status="ERROR", code=exc.code, message=exc.message
            )
            self._send(stream, pb.ServerMessage(subscribed=reply))
            return
        if not request.resume and not request.cached:
            # Nothing to send first: the reply says where the subscription starts.
            reply.epoch, reply.pos = platform.position
            self._send(stream, pb.ServerMessage(subscribed=reply))
            return
        self._send(stream, pb.ServerMessage(subscribed=reply))
        # The records (a snapshot, or the journal's since the position), then the position
        # marker: what the subscription resumes after if it comes back.
        stream.send_snapshot(
            sub_id,
            list(_batches(records, BATCH_RECORDS)) or [[]],
            from_cache,
            platform.position,
        )

    def _apply(
        self,
        stream: _Stream,
        request_id: int,
        change: Callable[[], Published],
        size: int | None = None,
        request: pb.Publish | None = None,
    ) -> None:
        """Publish or edit: validate and cache, store, fan out, then ack the requester.
        ``size`` is the request's serialized size, when known; ``request``, a Publish whose
        records ``change`` stamps in place."""
        try:
            published = change()
        except PlatformError as exc:
            self._counters["publish_errors"] += 1
            self._send(stream, _ack_error(request_id, exc.code, exc.message))
            return
        # When every record of a Publish was accepted, the request holds exactly the stamped
        # records: with its other fields cleared it serializes as a Delivery of them (both
        # carry records as field 2), written to the journal and sent to every subscription
        # that takes them all, without copying a record.
        blob: bytes | None = None
        if (
            request is not None
            and published.records
            and len(published.records) == len(request.records)
            and not len(UnknownFieldSet(request))  # nothing but Publish fields to clear
        ):
            request.request_id = 0
            request.store = False
            request.ClearField("publish_ids")
            blob = request.SerializeToString()
        ack = pb.Ack(
            request_id=request_id,
            status="OK",
            count=len(published.records) + published.duplicates,
            duplicates=published.duplicates,
        )
        store = self.store
        persist = store.persistent and bool(published.records or published.publish_ids)
        if published.to_store or persist:
            platform = self._platform
            try:
                # With a file store the journal and the ids are persisted before the ack:
                # an acknowledged record survives a kill, and its resend is applied once.
                store.write(
                    epoch=platform.epoch,
                    journal=published.records,
                    journal_blob=blob,
                    at=published.at,
                    first_pos=platform.journal.first,
                    stored=published.to_store,
                    publish_ids=published.publish_ids,
                    ids_before=published.at - platform.dedupe.max_age,
                )
            except Exception as exc:
                self._counters["store_errors"] += 1
                log.exception("message store write failed", store=store.path)
                ack = pb.Ack(
                    request_id=request_id,
                    status="ERROR",
                    code="STORE_FAILED",
                    message=f"published but not stored: {exc}",
                    count=len(published.records),
                )
        self._counters["records_published"] += len(published.records)
        self._counters["publish_requests"] += 1
        fanout = self._platform.fanout(published.records, published.kinds)
        # A delivery holds at most what the request held plus the stamps (seq, epoch,
        # timestamp, the publisher and a defaulted source: the application's name twice):
        # when that fits one delivery, no per-record sizing is needed.
        stamps = 48 + 2 * len(stream.app.name.encode())
        small = size is not None and size + stamps * len(published.records) <= BATCH_BYTES
        whole = blob if small else None
        every = len(published.records)
        for session_id, subs in fanout.items():
            target = self._streams.get(session_id)
            if target is None:
                continue
            for sub_id, records in subs.items():
                if whole is not None and len(records) == every:
                    self._send_bytes(target, _delivery_bytes(sub_id, whole))
                    continue
                for batch in [records] if small else _batches(records, len(records)):
                    self._send(
                        target, pb.ServerMessage(delivery=pb.Delivery(sub_id=sub_id, records=batch))
                    )
        self._send(stream, pb.ServerMessage(ack=ack))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _batch_bytes(frames: list[bytes]) -> bytes:
    """Serialized ServerMessages as one serialized ServerMessage{batch{messages}}."""
    body = b"".join([b"\x0a" + _varint(len(f)) + f for f in frames])  # Batch.messages (1)
    return b"\x3a" + _varint(len(body)) + body  # ServerMessage.batch (7)


def _delivery_bytes(sub_id: int, records: bytes) -> bytes:
    """A serialized ServerMessage{delivery{sub_id, records}}, ``records`` being serialized
    Delivery.records fields (field 2)."""
    body = b"\x08" + _varint(sub_id) + records  # Delivery.sub_id (1), then the records
    return b"\x12" + _varint(len(body)) + body  # ServerMessage.delivery (2)


def _ack_error(request_id: int, code: str, message: str) -> pb.ServerMessage:
    return pb.ServerMessage(
        ack=pb.Ack(request_id=request_id, status="ERROR", code=code, message=message)
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    config: PlatformConfig | str | Path | None = None,
    store_path: str | Path | None = None,
    *,
    outbound_limit: int = OUTBOUND_LIMIT,
    max_outbox_bytes: int | None = None,
    stall_deadline: float | None = None,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
) -> PlatformServer:
    """Start the embedded platform and return its handle (``.port`` is the bound port).

    ``config`` is a PlatformConfig or a TOML path (None: the packaged default). With
    ``store_path`` None the config's store_path is used, else an in-memory store (with a
    warning, unless asked for by name: ``store_path=":memory:"``). ``certfile`` and
    ``keyfile`` (PEM, both or neither) serve over TLS.

    A session is dropped as too slow when its queue would pass ``outbound_limit`` messages
    or ``max_outbox_bytes`` bytes, or when it takes nothing for ``stall_deadline`` seconds
    while data waits; the last two default to the config's (``platform.max_outbox_bytes``,
    32 MiB, and ``platform.stall_deadline``, 10 s). See the module docstring for the bound.
    """
    tls = _tls_files(certfile, keyfile)
    cfg = config if isinstance(config, PlatformConfig) else load_config(config)
    cfg = with_session_limits(cfg, max_outbox_bytes=max_outbox_bytes, stall_deadline=stall_deadline)
    path = store_path if store_path is not None else cfg.store_path
    if not path:
        log.warning(
            "message store is in memory: stored records will not survive a restart",
            hint="pass store_path or set platform.store_path",
        )
        path = MEMORY
    elif str(path) == MEMORY:  # asked for by name: no warning
        log.info("message store is in memory")
    store = MessageStore(path)
    try:
        server = PlatformServer(cfg, store, host, port, outbound_limit, tls)
    except BaseException:
        store.close()
        raise
    server.start()
    return server


def _tls_files(
    certfile: str | Path | None, keyfile: str | Path | None
) -> tuple[bytes, bytes] | None:
    """The (key, certificate) pair gRPC wants, checked first by the kit (clear errors)."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise ValueError("TLS needs both certfile and keyfile (PEM files), or neither")
    server_context(certfile, keyfile)  # raises TlsConfigError naming the bad file
    return Path(keyfile).read_bytes(), Path(certfile).read_bytes()
