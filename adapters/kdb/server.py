"""The embedded kdb Insights Service Gateway: the streaming websocket, over TCP or TLS.

The rules live in sans-I/O modules: websockets' ``ServerProtocol`` (the HTTP upgrade and the
frames), :mod:`.protocol`'s :class:`GatewayConnectionState` (the requests of one websocket)
and :mod:`.topics` (keyed tables, snapshots, batched updates). This module is the network
shell around them, on the kit's :class:`~actorwire.actors.embedded.EmbeddedTcpServer`: one
actor per connection feeds its bytes to the connection's ``ServerProtocol``; every byte out
goes through the connection's byte-bounded outbox, and a peer that stops reading is dropped.

- **Handshake**: any path; the query string's ``in`` and ``out`` are ``json`` (the default,
  text frames) or ``qipc`` (binary q IPC frames, :mod:`.qipc`; with pykx installed, the
  ``kdb-qipc`` extra, else refused with HTTP 400 saying so), each on its own. The token
  rides in ``Sec-WebSocket-Protocol: Bearer <token>``: it is read and checked here (401 for a
  wrong or missing one, unless the config turns auth off) and the header is taken out of the
  request before websockets' negotiation sees it (a value with a space is no subprotocol: it
  would answer 400). No subprotocol is echoed. The token is never logged.
- **Requests**: snap (the snapshot, chunked under ``snap_chunk_bytes`` per frame),
  subscribe, subsnap (the subscription and its snapshot taken under one lock, so no update
  falls between them), unsubscribe; every refusal is the spec's error with its code.
- **Updates**: the tick thread hands out what :meth:`Topics.due` says is due, each update
  encoded once (chunked when large) and sent to its connection.
- **Liveness**: every websocket is pinged every ``ping_interval`` seconds and closed (1011)
  after ``ping_timeout`` seconds without a byte from it.
- **Bad input** (a frame of the wrong kind, one that does not decode, one over
  ``max_message_size``, a broken frame) is counted (``protocol_errors``) and logged with the
  peer's address; the connection is answered and closed as the protocol says, never the
  server.

Faults, for tests (thread-safe): ``kill()``, ``go_silent()``/``resume()``,
``send_garbage()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from ...actors.embedded import EmbeddedTcpServer
from ...actors.system import ActorSystem
from ...actors.tcpserver import DEFAULT_STALL_DEADLINE, ServerConnection
from ...actors.tls import StrPath
from . import qipc
from .config import GatewayConfig, load_config
from .protocol import (
    JSON,
    Close,
    Codec,
    DataMessage,
    ErrorCode,
    GatewayConnectionState,
    Send,
    ServerAction,
    ServerState,
    Snap,
    Subscribe,
    SubsnappedReply,
    Unsubscribe,
    encode,
    encode_frames,
)
from .topics import Columns, TopicError, format_timestamp

__all__ = ["DEFAULT_PORT", "GARBAGE", "TICK", "GatewayServer", "serve"]

log = structlog.get_logger("actorwire.kdb")

DEFAULT_PORT = 8500
"""The port ``actorwire serve kdb`` listens on unless told otherwise."""
TICK = 0.25
"""Most seconds between the checks for due updates, pings and timeouts."""
GARBAGE = b"this is not JSON nor q IPC: a fault injected by send_garbage()"
"""The text frame ``send_garbage`` sends."""
PING_TIMEOUT_CLOSE = 1011
"""Close code for a websocket silent past ``ping_timeout``."""

# websockets logs every connection opened and closed at INFO: only its warnings pass.
_WS_LOGGER = logging.getLogger("actorwire.kdb.websockets")
_WS_LOGGER.setLevel(logging.WARNING)
_SUBPROTOCOL = "Sec-WebSocket-Protocol"


class _Session:
    """One TCP connection: its websocket handshake, then its websocket. The server's
    ``_lock`` guards every field."""

    __slots__ = (
        "binary",
        "closing",
        "codec_out",
        "conn",
        "fragments",
        "fragments_size",
        "heard_at",
        "pinged_at",
        "pings",
        "server",
        "state",
        "ws",
    )

    def __init__(self, server: GatewayServer, conn: ServerConnection) -> None:
        self.server = server
        self.conn = conn
        self.ws = ServerProtocol(max_size=server.config.max_message_size, logger=_WS_LOGGER)
        self.state: GatewayConnectionState | None = None  # once the handshake is accepted
        self.codec_out: Codec = JSON  # ?out=
        self.fragments: list[bytes] | None = None  # a message arriving in fragments
        self.fragments_size = 0
        self.binary = False  # the message arriving in fragments is binary
        self.closing = False  # close the TCP connection once what is queued is written
        self.pings = 0
        now = time.monotonic()
        self.heard_at = self.pinged_at = now

    def on_data(self, data: bytes) -> None:
        self.server._on_data(self, data)

    def on_closed(self, reason: str) -> None:
        self.server._on_closed(self, reason)

    def __repr__(self) -> str:
        kind = "websocket" if self.state is not None else "handshake"
        return f"<_Session {kind} {self.conn.peer}>"


class GatewayServer(EmbeddedTcpServer[_Session]):
    """The embedded Service Gateway (see the module's docstring); ``start()`` listens,
    ``stop()`` ends every connection.

    ``config`` is a :class:`~.config.GatewayConfig` or the path of a TOML file (None: the
    packaged default, token ``demo-token``, topic ``trade``). ``certfile`` and ``keyfile``
    (PEM) serve over TLS (wss). ``system`` runs the server on that actor system instead of
    one of its own. Control methods are thread-safe (never call them from the I/O loop).
    """

    _name = "kdb-gateway"
    _noun = "the gateway"
    _log = log
    _listening_event = "kdb gateway listening"
    _tick_failed_event = "kdb gateway tick failed"

    def __init__(
        self,
        config: GatewayConfig | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        stall_deadline: float = DEFAULT_STALL_DEADLINE,
        system: ActorSystem | None = None,
    ) -> None:
        if not isinstance(config, GatewayConfig):
            config = load_config(config)
        super().__init__(
            host,
            port,
            certfile=certfile,
            keyfile=keyfile,
            max_outbox_bytes=config.max_outbox_bytes,
            stall_deadline=stall_deadline,
            system=system,
        )
        self.config = config
        self.tick_interval = max(
            min(TICK, config.update_interval / 10, config.ping_interval / 4), 0.01
        )
        """Seconds between the checks for due updates, pings and timeouts."""
        self.topics = config.new_topics(time.monotonic())
        """The topics and their subscriptions (guarded by ``_lock``)."""
        # Timestamp columns by topic: JSON carries them as ISO 8601 text.
        self._timestamps = {
            spec.name: tuple(c.name for c in spec.columns if c.type == "timestamp")
            for spec in config.topics
        }
        # String columns by topic: qipc carries them as q strings (char vectors).
        self._strings = {
            spec.name: tuple(c.name for c in spec.columns if c.type == "string")
            for spec in config.topics
        }
        self._subs: dict[str, tuple[_Session, Subscribe]] = {}  # live subscriptions by UUID
        self._counters = dict.fromkeys(
            (
                "websockets_opened",
                "auth_failures",
                "handshake_refusals",
                "protocol_errors",
                "requests",
                "snaps",
                "subscribes",
                "unsubscribes",
                "updates_sent",
                "frames_sent",
                "upserts",
                "pings_sent",
                "ping_timeouts",
            ),
            0,
        )
        self._silent = False

    def __repr__(self) -> str:
        tls = ", tls" if self._ssl is not None else ""
        return f"GatewayServer({self._authority()}{tls})"

    def start(self) -> Self:
        """Listen (see the base class). With pykx installed it is imported now, on a thread
        of its own, so that a first qipc connection does not wait for it under the lock."""
        if qipc.available():
            threading.Thread(target=_preload_pykx, name="kdb-pykx-import", daemon=True).start()
        return super().start()

    @property
    def url(self) -> str:
        """The websocket's URL, e.g. ``ws://127.0.0.1:8500/`` (any path is served; add
        ``?in=json&out=json`` or not, json is the default)."""
        return f"{'wss' if self.tls else 'ws'}://{self._authority()}/"

    def _authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # -- the shell's hooks (see actors/embedded.py) --------------------------------------------

    def _make_session(self, conn: ServerConnection) -> _Session:
        return _Session(self, conn)

    def _listening_fields(self) -> dict[str, Any]:
        return {
            "address": self._authority(),
            "tls": self.tls,
            "topics": self.topics.names(),
            "auth": self.config.auth,
        }

    def _own_stats(self) -> dict[str, int]:
        out = dict(self._counters)
        out["topics"] = len(self.topics.names())
        out["subscriptions"] = self.topics.subscriptions
        out["websockets"] = sum(1 for s in self._session_list() if s.state is not None)
        return out

    def stats(self) -> dict[str, int]:
        """Counters: ``websockets_opened``, ``auth_failures``, ``handshake_refusals``,
        ``protocol_errors`` (refused requests and bad frames), ``requests``, ``snaps``,
        ``subscribes``, ``unsubscribes``, ``updates_sent``, ``frames_sent``, ``upserts``,
        ``pings_sent``, ``ping_timeouts``; ``topics``, ``subscriptions`` and ``websockets``
        (live now); the connections' (``accepted``, ``dropped_overflow``, ...),
        ``connections`` (ever opened) and ``sessions`` (open now)."""
        return super().stats()

    # -- data (thread-safe) -----------------------------------------------------------------

    def upsert(
        self, topic: str, rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
    ) -> int:
        """Insert or replace ``topic``'s rows (a list of dicts or a column dict); the
        subscriptions they match get them at their next update. Returns how many rows
        changed. TopicError (unknown topic, bad row: nothing changes) or LimitError."""
        with self._lock:
            changed = self.topics.upsert(topic, rows, time.monotonic())
            self._counters["upserts"] += 1
            return changed

    def snapshot(self, topic: str, filter: Mapping[str, Any] | None = None) -> Columns:
        """The rows of ``topic`` matching ``filter``, as a snap would give them."""
        with self._lock:
            return self._wire(topic, self.topics.snapshot(topic, filter))

    # -- fault injection --------------------------------------------------------------------

    def kill(self, timeout: float = 5.0) -> None:
        """Drop every connection at once, as a crash would: nothing queued is written and no
        close frame is sent; their subscriptions end. The topics stay and the gateway listens
        on. Returns once the sessions have ended (or after ``timeout`` seconds)."""
        super().kill(timeout)

    def go_silent(self) -> None:
        """Write nothing to any websocket (no replies, updates, pings or pongs) until
        ``resume()``; requests are still taken and updates still batched meanwhile."""
        with self._lock:
            self._silent = True

    def resume(self) -> None:
        """Write to websockets again after ``go_silent()`` (what was held back is lost:
        the websocket's bytes written while silent were dropped)."""
        with self._lock:
            self._silent = False

    def send_garbage(self) -> None:
        """Send every open websocket a text frame that is not JSON (even while silent)."""
        with self._lock:
            for session in self._session_list():
                if session.state is None or session.closing or session.ws.state is not OPEN:
                    continue
                if session.codec_out.binary:
                    session.ws.send_binary(GARBAGE)
                else:
                    session.ws.send_text(GARBAGE)
                self._flush(session, force=True)

    # -- sessions -----------------------------------------------------------------------------

    def _on_closed(self, session: _Session, reason: str) -> None:
        with self._lock:
            self._end_ws(session)
            self._unregister(session)
        log.debug("connection ended", peer=session.conn.peer, reason=reason)

    def _on_data(self, session: _Session, data: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            session.heard_at = now
            ws = session.ws
            ws.receive_data(data)
            for event in ws.events_received():
                if isinstance(event, Request):
                    self._handshake(session, event, now)
                elif isinstance(event, Frame) and session.state is not None:
                    self._frame(session, event, now)
            exc = ws.parser_exc if session.state is not None else None
            if exc is not None and not session.closing:
                if not isinstance(exc, EOFError):  # EOF: the peer went without a close frame
                    self._counters["protocol_errors"] += 1
                    code = ws.close_sent.code if ws.close_sent is not None else None
                    log.warning(
                        "websocket closed: bad frame",
                        peer=session.conn.peer,
                        code=code,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                session.closing = True
                self._end_ws(session)
            if session.state is None and ws.handshake_exc is not None and not session.closing:
                # The request did not parse: websockets answered it (400).
                self._counters["handshake_refusals"] += 1
                log.info(
                    "websocket handshake refused",
                    peer=session.conn.peer,
                    status=400,
                    reason=str(ws.handshake_exc),
                )
                session.closing = True
                self._flush(session, force=True)
                session.conn.close()
                return
            self._flush(session)

    # -- the handshake ------------------------------------------------------------------------

    def _handshake(self, session: _Session, request: Request, now: float) -> None:
        ws = session.ws
        token, offered = _bearer(request)
        if offered:
            del request.headers[_SUBPROTOCOL]  # never negotiated: "Bearer <token>" has a space
        refusal: Response | None = None
        if not self.config.accepts(token):
            self._counters["auth_failures"] += 1
            why = "no bearer token" if token is None else "wrong bearer token"
            refusal = ws.reject(
                401,
                f"{why}: send the header 'Sec-WebSocket-Protocol: Bearer <token>' with a token "
                "the gateway's config accepts\n",
            )
            refusal.headers["WWW-Authenticate"] = 'Bearer realm="kdb-insights"'
        else:
            formats = _formats(request.path)
            if isinstance(formats, str):
                refusal = ws.reject(400, formats + "\n")
        if refusal is not None:
            self._counters["handshake_refusals"] += 1
            log.info(
                "websocket handshake refused",
                peer=session.conn.peer,
                status=refusal.status_code,
                reason=refusal.body.decode("utf-8", "replace").strip() if refusal.body else "",
            )
            ws.send_response(refusal)
            session.closing = True
            self._flush(session, force=True)
            session.conn.close()
            return
        response = ws.accept(request)
        ws.send_response(response)
        if response.status_code != 101:
            self._counters["handshake_refusals"] += 1
            log.info(
                "websocket handshake refused",
                peer=session.conn.peer,
                status=response.status_code,
                reason=str(ws.handshake_exc),
            )
            session.closing = True
            self._flush(session, force=True)
            session.conn.close()
            return
        assert not isinstance(formats, str)
        topics = self.topics
        cfg = self.config
        session.codec_out = formats[1]
        session.state = GatewayConnectionState(
            lambda t: topics.key_columns(t) if topics.exists(t) else None,
            codec=formats[0],
            max_size=cfg.max_message_size,
            max_subscriptions=cfg.max_subscriptions,
        )
        session.pinged_at = now
        self._counters["websockets_opened"] += 1
        self._flush(session, force=True)  # the 101 is HTTP: it goes out even while silent
        log.debug("websocket opened", peer=session.conn.peer, path=request.path)

    # -- the websocket ----------------------------------------------------------------------

    def _frame(self, session: _Session, frame: Frame, now: float) -> None:
        op = frame.opcode
        if op is Opcode.TEXT or op is Opcode.BINARY:
            if frame.fin:
                session.fragments = None
                self._message(session, frame.data, op is Opcode.TEXT, now)
            else:
                session.fragments = [bytes(frame.data)]
                session.fragments_size = len(frame.data)
                session.binary = op is Opcode.BINARY
        elif op is Opcode.CONT:
            fragments = session.fragments
            if fragments is None:
                return
            fragments.append(bytes(frame.data))
            session.fragments_size += len(frame.data)
            over = session.fragments_size > self.config.max_message_size
            if frame.fin or over:
                session.fragments = None
                # Over the limit: the joined bytes go in as they are, and the state refuses
                # them (1009) without waiting for the rest.
                self._message(session, b"".join(fragments), not session.binary, now)
        elif op is Opcode.CLOSE:
            # websockets answered it (and ends the TCP connection): the subscriptions drop.
            session.closing = True
            self._end_ws(session)
        # PING: websockets queued the pong; PONG: heard_at is enough.

    def _message(
        self, session: _Session, raw: bytes | bytearray | memoryview, text: bool, now: float
    ) -> None:
        state = session.state
        assert state is not None
        frame: str | bytes = bytes(raw)
        if text:
            try:
                frame = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as exc:
                self._counters["protocol_errors"] += 1
                self._close_ws(
                    session, 1007, f"a text message that is not UTF-8 (byte {exc.start})"
                )
                return
        self._counters["requests"] += 1
        errors = state.errors
        actions = state.receive(frame, now)
        if state.errors > errors:
            self._counters["protocol_errors"] += state.errors - errors
            log.info(
                "request refused",
                peer=session.conn.peer,
                errors=[_refusal(a) for a in actions if isinstance(a, Send)],
            )
        self._carry_out(session, actions, now)

    def _carry_out(self, session: _Session, actions: list[ServerAction], now: float) -> None:
        """Do what the connection's state asks, in order."""
        for action in actions:
            if type(action) is Send:
                self._send(session, action.message)
            elif type(action) is Snap:
                self._snap(session, action)
            elif type(action) is Subscribe:
                self._subscribe(session, action, now)
            elif type(action) is Unsubscribe:
                if self._subs.pop(action.subscription, None) is not None:
                    self.topics.unsubscribe(action.subscription)
                    self._counters["unsubscribes"] += 1
            else:
                assert type(action) is Close
                log.warning(
                    "websocket closed by the gateway",
                    peer=session.conn.peer,
                    code=action.code,
                    reason=action.reason,
                )
                if session.ws.state is OPEN:
                    session.ws.send_close(action.code, action.reason)
                session.closing = True

    def _refuse(self, session: _Session, action: Snap | Subscribe, exc: Exception) -> None:
        state = session.state
        assert state is not None
        code = exc.code if isinstance(exc, TopicError) else ErrorCode.INVALID_PAYLOAD
        try:
            error: ErrorCode | int = ErrorCode(code)
        except ValueError:
            error = ErrorCode.INVALID_PAYLOAD
        self._counters["protocol_errors"] += 1
        log.info("request refused", peer=session.conn.peer, id=action.id, error=int(error))
        self._carry_out(session, state.refuse(action, ErrorCode(error), str(exc)), time.monotonic())

    def _snap(self, session: _Session, action: Snap) -> None:
        try:
            data = self._wire(
                action.topic, self.topics.snapshot(action.topic, action.filter), session
            )
            frames = self._frames(session, action.reply(data))
        except (TopicError, ValueError) as exc:
            self._refuse(session, action, exc)
            return
        self._counters["snaps"] += 1
        self._send_frames(session, frames)

    def _subscribe(self, session: _Session, action: Subscribe, now: float) -> None:
        sid = action.subscription
        try:
            self.topics.subscribe(sid, action.topic, action.filter, now)
        except (TopicError, ValueError) as exc:
            self._refuse(session, action, exc)
            return
        try:
            if action.with_snapshot:
                # Under _lock, like the tick: no update falls between this and the next.
                data = self._wire(
                    action.topic, self.topics.snapshot(action.topic, action.filter), session
                )
                reply = action.reply(data)
                assert isinstance(reply, SubsnappedReply)
                frames = self._frames(session, reply)
            else:
                frames = [_bytes(encode(action.reply(), session.codec_out))]
        except ValueError as exc:
            self.topics.unsubscribe(sid)
            self._refuse(session, action, exc)
            return
        self._subs[sid] = (session, action)
        self._counters["subscribes"] += 1
        self._send_frames(session, frames)

    def _frames(self, session: _Session, message: DataMessage) -> list[bytes]:
        frames = encode_frames(message, self.config.snap_chunk_bytes, session.codec_out)
        return [_bytes(f) for f in frames]

    def _send(self, session: _Session, message: Any) -> None:
        self._send_frames(session, [_bytes(encode(message, session.codec_out))])

    def _send_frames(self, session: _Session, frames: list[bytes]) -> None:
        ws = session.ws
        if ws.state is not OPEN or session.closing:
            return
        send = ws.send_binary if session.codec_out.binary else ws.send_text
        for frame in frames:
            send(frame)
        self._counters["frames_sent"] += len(frames)

    def _wire(self, topic: str, data: Columns, session: _Session | None = None) -> Columns:
        """``data`` as the session's ``out`` format carries it: JSON, timestamps as ISO
        8601 text; qipc, timestamps as q timestamps and string columns as q strings."""
        if session is not None and session.codec_out.binary:
            import numpy as np  # noqa: PLC0415 - qipc only (pykx brings numpy)

            for column in self._timestamps.get(topic, ()):
                data[column] = [np.datetime64(v, "ns") for v in data[column]]
            for column in self._strings.get(topic, ()):
                data[column] = [v.encode("utf-8") for v in data[column]]
            return data
        for column in self._timestamps.get(topic, ()):
            data[column] = [format_timestamp(v) for v in data[column]]
        return data

    def _close_ws(self, session: _Session, code: int, reason: str) -> None:
        """Close the websocket ourselves: its subscriptions drop, the close frame goes out."""
        log.warning(
            "websocket closed by the gateway", peer=session.conn.peer, code=code, reason=reason
        )
        self._end_ws(session)
        if session.ws.state is OPEN:
            session.ws.send_close(code, reason)
        session.closing = True

    def _end_ws(self, session: _Session) -> None:
        state = session.state
        if state is not None and state.state is not ServerState.CLOSED:
            self._carry_out(session, state.connection_lost(), time.monotonic())

    def _flush(self, session: _Session, *, force: bool = False) -> None:
        """Hand what the websocket wrote to the connection (nothing while silent, unless
        ``force``); close the connection after it when it ended."""
        data = session.ws.data_to_send()
        frames = [chunk for chunk in data if chunk]
        if frames and (force or not self._silent):
            session.conn.send(frames)
        if len(frames) != len(data) or session.closing:
            session.conn.close()

    # -- updates, pings and timeouts -----------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Due updates, pings and ping timeouts (``_lock`` held: sends only, no waiting)."""
        touched: dict[_Session, None] = {}
        for sid, data in self.topics.due(now):
            entry = self._subs.get(sid)
            if entry is None:
                continue
            session, sub = entry
            try:
                frames = self._frames(session, sub.update(self._wire(sub.topic, data, session)))
            except ValueError as exc:  # a row alone over snap_chunk_bytes
                log.error(
                    "update not sent", peer=session.conn.peer, subscription=sid, error=str(exc)
                )
                continue
            self._send_frames(session, frames)
            self._counters["updates_sent"] += 1
            touched[session] = None
        cfg = self.config
        for session in self._session_list():
            ws = session.ws
            if session.state is None or session.closing or session.conn.closed:
                continue
            if now - session.heard_at >= cfg.ping_timeout:
                self._counters["ping_timeouts"] += 1
                self._close_ws(
                    session,
                    PING_TIMEOUT_CLOSE,
                    f"no data for {cfg.ping_timeout:g} s (ping timeout)",
                )
                touched[session] = None
            elif (
                not self._silent
                and ws.state is OPEN
                and now - session.pinged_at >= cfg.ping_interval
            ):
                session.pings += 1
                ws.send_ping(session.pings.to_bytes(4, "big"))
                session.pinged_at = now
                self._counters["pings_sent"] += 1
                touched[session] = None
        for session in touched:
            self._flush(session)


def _bearer(request: Request) -> tuple[str | None, bool]:
    """The bearer token in the request's ``Sec-WebSocket-Protocol`` (None: none), and
    whether the header was there at all."""
    values = request.headers.get_all(_SUBPROTOCOL)
    for value in values:
        for item in value.split(","):
            scheme, _, rest = item.strip().partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip(), True
    return None, bool(values)


def _formats(path: str) -> tuple[Codec, Codec] | str:
    """The codecs the request's ``in`` and ``out`` query parameters name (json when
    absent), or what is wrong with them."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    out: list[Codec] = []
    for name in ("in", "out"):
        values = query.get(name, ["json"])
        if len(set(values)) > 1:
            return f"{name} is given {len(values)} times, differently: give it once"
        value = values[0]
        if value == "qipc":
            if not qipc.available():
                return f"{name}=qipc: {qipc.missing_reason()}; or use json"
            out.append(qipc.QIPC)
        elif value == "json":
            out.append(JSON)
        else:
            return f"{name}={value[:40]!r}: expected 'json' or 'qipc'"
    return out[0], out[1]


def _preload_pykx() -> None:
    try:
        qipc.load()
    except ImportError as exc:  # a broken install: each qipc handshake says so again
        log.warning("pykx failed to import", error=str(exc))


def _bytes(frame: str | bytes) -> bytes:
    return frame.encode("utf-8") if isinstance(frame, str) else frame


def _refusal(action: Send) -> Any:
    """An error reply for the log: its id and code."""
    msg = action.message
    return (msg.id, getattr(msg, "error", None))


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    config: GatewayConfig | str | Path | None = None,
    **kwargs: Any,
) -> GatewayServer:
    """Start an embedded gateway (keyword arguments as ``GatewayServer``'s); returns its
    handle (``.port``, ``.url``, ``.upsert()``, ``.stats()``, ``.stop()``)."""
    server = GatewayServer(config, host, port, **kwargs)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
