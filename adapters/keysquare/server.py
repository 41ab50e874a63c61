"""The embedded KeySquare-style data platform: a grpc.aio KeyAccess server on its own thread.

The server runs its own asyncio loop (never the client's). All platform state lives in a
sans-I/O ``Platform`` touched only on that loop, so each request runs to completion without
interleaving. Each Session stream writes through its own outbound queue and single writer
task: fan-out from other sessions' publishes only enqueues, and a session whose queue
overflows (a slow consumer) is dropped instead of blocking the publishers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
import structlog
from actorwire.actors import log as _log  # noqa: F401  (installs secret redaction)

from ...actors.ioloop import IOLoop
from ...actors.tls import server_context
from . import keysquare_pb2 as pb
from . import keysquare_pb2_grpc as pb_grpc
from .config import AppConfig, PlatformConfig, load_config
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


class _Stream:
    """One open Session stream: its session, outbound queue and how it ends."""

    def __init__(self, session_id: str, app: AppConfig, limit: int, peer: str) -> None:
        self.session_id = session_id
        self.app = app
        self.peer = peer
        self.limit = limit
        self.queue: asyncio.Queue[pb.ServerMessage | None] = asyncio.Queue()
        self.done = asyncio.Event()
        self.closing = False
        self.end: tuple[grpc.StatusCode, str] | None = None
        self.overflowed = False

    def send(self, message: pb.ServerMessage) -> bool:
        """Enqueue for the writer; False (and the stream marked overflowed) when full."""
        if self.closing:
            return False
        if self.queue.qsize() >= self.limit:
            self.overflowed = True
            return False
        self.queue.put_nowait(message)
        return True

    def finish(self) -> None:
        """The client half-closed: write what is queued, then end with OK."""
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(None)

    def kill(self, code: grpc.StatusCode | None, message: str = "") -> None:
        """End now, dropping whatever is queued; ``code`` None ends without a status."""
        if self.done.is_set():
            return
        self.closing = True
        self.end = (code, message) if code is not None else None
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
        self._platform = Platform(config)
        self._platform.load(store.load_all())
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
                "bad_messages",
                "records_published",
                "publish_requests",
                "publish_errors",
                "store_errors",
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
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ]
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
        """Counters: registrations, streams, dropped sessions, bad messages, records, ..."""
        if self._stopped:
            return dict(self._counters)
        return self._on_loop(lambda: dict(self._counters))

    # -- loop side --------------------------------------------------------------------------

    def _touch(self, session_id: str) -> None:
        if self._platform.has_session(session_id):
            self._last_seen[session_id] = asyncio.get_running_loop().time()

    def _drop_session(self, session_id: str, reason: str) -> None:
        self._platform.drop_session(session_id)
        self._last_seen.pop(session_id, None)
        log.debug("session ended", session=session_id[:8], reason=reason)

    def _send(self, stream: _Stream, message: pb.ServerMessage) -> None:
        if stream.send(message) or not stream.overflowed or stream.done.is_set():
            return
        self._counters["sessions_dropped_overflow"] += 1
        log.error(
            "session dropped: outbound queue overflow (slow consumer)",
            session=stream.session_id[:8],
            peer=stream.peer,
            app=stream.app.name,
            limit=stream.limit,
        )
        stream.kill(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"session dropped: more than {stream.limit} messages queued (reading too slowly)",
        )
        self._drop_session(stream.session_id, "overflow")

    async def _reap(self) -> None:
        """Drop sessions silent for longer than the heartbeat deadline."""
        deadline = self.config.heartbeat_deadline
        tick = min(self.config.heartbeat_interval, deadline) / 4
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
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
        stream = _Stream(session_id, app, self.outbound_limit, context.peer())
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
                message = await stream.queue.get()
                if message is None:
                    break
                await context.write(message)
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
                lambda: self._platform.publish(stream.app, request.records, request.store, size),
                size,
            )
        elif kind == "edit":
            edit = message.edit
            self._apply(
                stream,
                edit.request_id,
                lambda: self._platform.edit(stream.app, edit.key, edit.patch),
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
        try:
            cached = self._platform.subscribe(
                stream.session_id, sub_id, request.topic, request.cached
            )
        except PlatformError as exc:
            reply = pb.SubscribeReply(
                sub_id=sub_id, status="ERROR", code=exc.code, message=exc.message
            )
            self._send(stream, pb.ServerMessage(subscribed=reply))
            return
        self._send(
            stream, pb.ServerMessage(subscribed=pb.SubscribeReply(sub_id=sub_id, status="OK"))
        )
        if not request.cached:
            return
        batches = list(_batches(cached, BATCH_RECORDS)) or [[]]
        for i, batch in enumerate(batches):
            delivery = pb.Delivery(
                sub_id=sub_id, records=batch, snapshot_done=i == len(batches) - 1
            )
            self._send(stream, pb.ServerMessage(delivery=delivery))

    def _apply(
        self,
        stream: _Stream,
        request_id: int,
        change: Callable[[], Published],
        size: int | None = None,
    ) -> None:
        """Publish or edit: validate and cache, store, fan out, then ack the requester.
        ``size`` is the request's serialized size, when known."""
        try:
            published = change()
        except PlatformError as exc:
            self._counters["publish_errors"] += 1
            self._send(stream, _ack_error(request_id, exc.code, exc.message))
            return
        ack = pb.Ack(request_id=request_id, status="OK", count=len(published.records))
        if published.to_store:
            try:
                self.store.save(published.to_store)
            except Exception as exc:
                self._counters["store_errors"] += 1
                log.exception("message store write failed", store=self.store.path)
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
        for session_id, subs in fanout.items():
            target = self._streams.get(session_id)
            if target is None:
                continue
            for sub_id, records in subs.items():
                for batch in [records] if small else _batches(records, len(records)):
                    self._send(
                        target, pb.ServerMessage(delivery=pb.Delivery(sub_id=sub_id, records=batch))
                    )
        self._send(stream, pb.ServerMessage(ack=ack))


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
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
) -> PlatformServer:
    """Start the embedded platform and return its handle (``.port`` is the bound port).

    ``config`` is a PlatformConfig or a TOML path (None: the packaged default). With
    ``store_path`` None the config's store_path is used, else an in-memory store (with a
    warning, unless asked for by name: ``store_path=":memory:"``). ``certfile`` and
    ``keyfile`` (PEM, both or neither) serve over TLS.
    """
    tls = _tls_files(certfile, keyfile)
    cfg = config if isinstance(config, PlatformConfig) else load_config(config)
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
