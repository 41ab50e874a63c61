"""The keysquare link: a gRPC transport on the system's I/O loop and its Link adapter.

Opening a connection is the whole handshake: Register (REGISTERING, REGISTERED), the
Session stream with Hello/Welcome (CONNECTING), then GetSchema (DOWNLOADING_SCHEMA,
SCHEMA_DOWNLOADED). The link reports CONNECTED once the subscriptions are replayed.
Records carry ``(epoch, seq)`` per topic. A delivery travels as one item (its records are
not unpacked on the I/O thread); each subscription actor drops what it has already seen per
topic with the link kit's ``LatestFilter``, so after a reconnect the re-snapshot supersedes
what was missed and nothing is seen twice.

The adapter keeps the Link contract: ``route`` only sorts frames (deliveries, subscribe
results and schema notices are data for the session's router; acks are replies to the
publisher's ``Link.call``), and requests answered out of band (Snapshot, GetSchema) are
``Transport.request`` on the current channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from actorwire.actors.link import (
    AuthRefused,
    LinkAdapter,
    Ordering,
    Reply,
    Routed,
    Transport,
    Wiring,
)

from . import keysquare_pb2 as pb
from . import keysquare_pb2_grpc as pb_grpc
from .model import KeySessionState

__all__ = [
    "AckEvent",
    "KeySquareAdapter",
    "KeySquareTransport",
    "SchemaCall",
    "SnapshotCall",
    "SnapshotDone",
    "SubSpec",
    "SubscribeResult",
]

MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    # Each dial gets its own subchannel: grpc's process-wide pool would hand a new channel
    # the connect backoff (1 s, growing to 120 s) of a failed dial not yet garbage-collected,
    # and the link's own backoff decides when to redial.
    ("grpc.use_local_subchannel_pool", 1),
]


@dataclass(frozen=True, slots=True)
class SubSpec:
    """One platform subscription (what the link replays after each reconnect)."""

    sub_id: int
    topic: tuple[str, str, str, str, str]
    cached: bool


@dataclass(frozen=True, slots=True)
class SnapshotDone:
    """Every cached record of platform subscription ``sub_id`` has been delivered."""

    sub_id: int


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    sub_id: int
    status: str
    code: str
    message: str
    resumed: bool = False  # resumed from the platform's journal
    gap: pb.Gap | None = None  # what it missed for good, when it could not all be resumed


@dataclass(frozen=True, slots=True)
class AckEvent:
    request_id: int
    status: str
    code: str
    message: str
    count: int
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotCall:
    """``Link.call`` request: the platform's cached records of ``topic`` (a list)."""

    topic: pb.Topic


@dataclass(frozen=True, slots=True)
class SchemaCall:
    """``Link.call`` request: the platform's current schema (a SchemaReply)."""


def pb_topic(topic: tuple[str, str, str, str, str]) -> pb.Topic:
    schema, data_type, source, group, id_ = topic
    return pb.Topic(schema=schema, data_type=data_type, source=source, group=group, id=id_)


class KeySquareAdapter(LinkAdapter):
    """Hooks a Link needs for the keysquare gRPC service; the api key stays private."""

    ordering = Ordering.LATEST
    always_ping = True

    def __init__(
        self,
        url: str,
        application_name: str,
        api_key: str,
        timeout: float,
        on_progress: Callable[[KeySessionState, str], None],
        on_registered: Callable[[pb.RegisterReply], None],
        on_schema: Callable[[pb.SchemaReply], None],
        root_certificates: bytes | None = None,
    ) -> None:
        self.url = url
        self.root_certificates = root_certificates  # PEM CAs: TLS when set
        self.application_name = application_name
        self._api_key = api_key
        self.timeout = timeout
        self.on_progress = on_progress
        self.on_registered = on_registered
        self.on_schema = on_schema

    def __repr__(self) -> str:
        return f"KeySquareAdapter({self.application_name!r} at {self.url})"

    def make_transport(self, wiring: Wiring) -> Transport:
        return KeySquareTransport(self, wiring)

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        data = out.data
        for msg in frames:
            kind = msg.WhichOneof("body")
            if kind == "delivery":
                d = msg.delivery
                sub_id = d.sub_id
                records = d.records
                if records:
                    last = records[-1].header
                    if d.snapshot or not last.pos:
                        data.append((None, None, (sub_id, records, 0)))  # cache: no order
                    else:  # journal order: the link keeps the newest position per sub
                        item = (sub_id, records, d.ByteSize())
                        data.append((sub_id, (last.epoch, last.pos, 0), item))
                if d.snapshot_done:
                    done = SnapshotDone(sub_id)
                    if d.epoch:  # the position marker: sorts after a delivery at its pos
                        data.append((sub_id, (d.epoch, d.pos, 1), done))
                    else:
                        data.append((None, None, done))
            elif kind == "ack":
                a = msg.ack
                ack = AckEvent(a.request_id, a.status, a.code, a.message, a.count, a.duplicates)
                out.replies.append(Reply(("ack", a.request_id), ack))
            elif kind == "subscribed":
                s = msg.subscribed
                result = SubscribeResult(
                    s.sub_id,
                    s.status,
                    s.code,
                    s.message,
                    s.resumed,
                    s.gap if s.HasField("gap") else None,
                )
                if s.epoch:  # a LIVE_ONLY subscribe's starting position
                    data.append((s.sub_id, (s.epoch, s.pos, 1), result))
                else:
                    data.append((None, None, result))
            elif kind == "schema_changed":
                data.append((None, None, msg.schema_changed))
            elif kind in ("pong", "welcome"):
                continue
            else:
                out.errors.append((f"unexpected server message {kind!r}", False))
        return out

    def subscribe(self, stream: Hashable, from_seq: Any | None) -> list[Any]:
        """Subscribe; after a reconnect ``from_seq`` is the newest ``(epoch, pos, _)`` the
        link delivered for it, and the platform resumes after it from its journal."""
        assert isinstance(stream, SubSpec)
        request = pb.Subscribe(
            sub_id=stream.sub_id, topic=pb_topic(stream.topic), cached=stream.cached
        )
        if isinstance(from_seq, tuple):
            request.resume = True
            request.resume_epoch, request.resume_pos = from_seq[0], from_seq[1]
        return [pb.ClientMessage(subscribe=request)]

    def data_stream(self, stream: Hashable) -> Hashable:
        assert isinstance(stream, SubSpec)
        return stream.sub_id

    def unsubscribe(self, stream: Hashable) -> list[Any]:
        assert isinstance(stream, SubSpec)
        return [pb.ClientMessage(unsubscribe=pb.Unsubscribe(sub_id=stream.sub_id))]

    def ping(self, n: int) -> Any:
        return pb.ClientMessage(ping=pb.Ping(n=n))

    def request(self, request: Any) -> tuple[Hashable, list[Any]]:
        """A publish or an edit, answered by the platform's ack for its request id."""
        if isinstance(request, pb.ClientMessage):
            kind = request.WhichOneof("body")
            if kind == "publish":
                return ("ack", request.publish.request_id), [request]
            if kind == "edit":
                return ("ack", request.edit.request_id), [request]
        raise TypeError(f"keysquare requests are Publish, Edit, Snapshot or Schema: {request!r}")

    def credentials(self) -> pb.RegisterRequest:
        return pb.RegisterRequest(application_name=self.application_name, api_key=self._api_key)


class KeySquareTransport(Transport):
    """One gRPC channel and Session stream; unary calls share the channel."""

    def __init__(self, adapter: KeySquareAdapter, wiring: Wiring) -> None:
        super().__init__(adapter, wiring)
        self.ks = adapter
        self.peer = adapter.url
        self.connect_timeout = adapter.timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.KeyAccessStub | None = None
        self._call: Any = None
        self._session_id = ""

    async def open(self) -> None:
        ks = self.ks
        if ks.root_certificates is None:
            self._channel = grpc.aio.insecure_channel(ks.url, options=CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=ks.root_certificates)
            self._channel = grpc.aio.secure_channel(ks.url, credentials, options=CHANNEL_OPTIONS)
        stub = pb_grpc.KeyAccessStub(self._channel)  # type: ignore[no-untyped-call]
        self._stub = stub
        ks.on_progress(KeySessionState.REGISTERING, f"registering with {ks.url}")
        try:
            reply = await stub.Register(ks.credentials(), timeout=ks.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                ks.on_progress(KeySessionState.REGISTRATION_FAILED, exc.details() or "refused")
                raise AuthRefused(exc.details() or "registration refused") from None
            raise ConnectionError(f"{exc.code().name}: {exc.details()}") from None
        self._session_id = reply.session_id
        ks.on_registered(reply)
        ks.on_progress(KeySessionState.REGISTERED, f"session {reply.session_id[:8]}")
        ks.on_progress(KeySessionState.CONNECTING, "opening the session stream")
        call = stub.Session()
        self._call = call
        await call.write(pb.ClientMessage(hello=pb.Hello(session_id=reply.session_id)))
        first = await call.read()
        if first is grpc.aio.EOF or first.WhichOneof("body") != "welcome":
            raise ConnectionError("the platform did not welcome the session")
        await self._download_schema(stub, reply.session_id)

    async def _download_schema(self, stub: pb_grpc.KeyAccessStub, session_id: str) -> None:
        ks = self.ks
        ks.on_progress(KeySessionState.DOWNLOADING_SCHEMA, "downloading schema")
        try:
            schema = await stub.GetSchema(
                pb.SchemaRequest(session_id=session_id), timeout=ks.timeout
            )
        except grpc.aio.AioRpcError as exc:
            ks.on_progress(
                KeySessionState.SCHEMA_DOWNLOAD_FAILED, f"{exc.code().name}: {exc.details()}"
            )
            raise ConnectionError(f"schema download failed: {exc.details()}") from None
        ks.on_schema(schema)
        ks.on_progress(
            KeySessionState.SCHEMA_DOWNLOADED,
            f"schema version {schema.version}: {len(schema.types)} types",
        )

    async def read(self) -> list[Any]:
        call = self._call
        try:
            msg = await call.read()
        except grpc.aio.AioRpcError as exc:
            raise ConnectionError(f"{exc.code().name}: {exc.details()}") from None
        if msg is grpc.aio.EOF:
            raise EOFError("the platform closed the session stream")
        if msg.WhichOneof("body") == "batch":
            return list(msg.batch.messages)
        return [msg]

    async def write(self, frames: list[Any]) -> None:
        call = self._call
        if call is None:
            raise ConnectionError("not connected")
        for frame in frames:
            await call.write(frame)

    async def close_connection(self) -> None:
        call, channel = self._call, self._channel
        self._call = self._channel = self._stub = None
        if call is not None:
            call.cancel()
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

    def request(self, request: Any) -> Awaitable[Any]:
        """Snapshot and GetSchema are unary calls on the current channel; the rest are
        session messages answered by an ack."""
        if isinstance(request, SnapshotCall):
            return self._snapshot(request.topic)
        if isinstance(request, SchemaCall):
            return self._schema()
        return super().request(request)

    def _current_stub(self) -> pb_grpc.KeyAccessStub:
        stub = self._stub
        if stub is None:
            raise ConnectionError(f"not connected to the platform at {self.ks.url}")
        return stub

    async def _snapshot(self, topic: pb.Topic) -> list[pb.Record]:
        stub = self._current_stub()
        records: list[pb.Record] = []
        call = stub.Snapshot(pb.SnapshotRequest(session_id=self._session_id, topic=topic))
        try:
            async for batch in call:
                records.extend(batch.records)
        except asyncio.CancelledError:
            call.cancel()  # the Link.call timed out or the connection ended
            raise
        return records

    async def _schema(self) -> pb.SchemaReply:
        stub = self._current_stub()
        reply: pb.SchemaReply = await stub.GetSchema(
            pb.SchemaRequest(session_id=self._session_id), timeout=self.ks.timeout
        )
        return reply
