"""The embedded stream-sea server: the HTTP API and the websocket on one port, over TCP or TLS.

The rules live in sans-I/O modules: :mod:`.http` (the HTTP API on h11), websockets'
``ServerProtocol`` (the websocket's frames), :mod:`.protocol`'s :class:`ServerConnectionState`
(the stream-sea messages of one websocket) and :mod:`.groups` (the stream logs and consumer
groups). This module is the network shell around them, on the kit's
:class:`~actorwire.actors.embedded.EmbeddedTcpServer` (the lifecycle, the tick thread and
the session registry around its :class:`~actorwire.actors.tcpserver.TcpServer`): one actor
per connection feeds its bytes to the connection's HTTP session and, once it upgrades
(``GET /api/v1/streams``), to its websocket; every byte out goes through the connection's
byte-bounded outbox, and a peer that stops reading is dropped (``max_outbox_bytes``,
``stall_deadline``), counted and logged.

- **HTTP**: publish, define, schema and the versions vector, Basic auth on every request
  (secrets compared with ``hmac.compare_digest``), gzip or plain bodies (:mod:`.http`).
- **Websocket**: authenticate (basic, or a JWT verified with PyJWT, RS512 or RS256, against
  the client's configured public key; its ``exp`` closes the connection when it passes; a
  ``filter`` claim is refused; ``mustFanout`` gives each subscription without ``groupId`` a
  group of its own), subscribe, unsubscribe. Every websocket is pinged every
  ``ping_interval`` seconds and closed (1011) after ``ping_timeout`` seconds without a byte
  from it. A binary message, bad UTF-8 (1007), a message over ``max_message_size`` (1009)
  or a broken frame closes that connection only, counted (``protocol_errors``) and logged
  with the peer's address; never the server. A subscribe that takes a live member over (its
  client is back on a new connection before this one was seen to drop: groups.py rule 6)
  ends the old subscription; its connection, left without one, is closed (1008,
  "superseded by a newer connection"; the TCP connection ends at the peer's answer or the
  ping timeout).
- **Publish** (HTTP or :meth:`StreamSeaServer.publish`): the payload is checked against the
  stream's schema, appended to its log (with a store, committed to SQLite first, one
  transaction per message), encoded once and dispatched to the stream's consumer groups
  (:mod:`.groups`; with a store, what the dispatch assigned is committed next, before a
  byte goes out), then answered. A member is sent what its budget allows: budgets follow
  its connection's outbox (half of what is free, shared by the connection's subscriptions),
  so a slow reader is paced from the log instead of flooded.
- **Store** (``store_path``): an SQLite file (WAL) holding the epoch, the schemas, each
  stream's log and the consumer groups (groups.py rule 9: each group, its members, and
  which member each seq still in the log was sent to), trimmed as the log is. Every change
  to the groups is committed before the bytes it decides go out (a join's in one
  transaction, a publish's dispatch in one after the message's own), so a crash at any
  point leaves the store saying at least what was sent. A server started on the same file,
  after ``stop()`` or after the process was killed, has the same epoch, schemas, logs and
  groups, every member of the old incarnation an orphan whose grace runs from the restart:
  a client that resubscribes with ``afterSeq`` gets what it missed, once, whichever member
  of its group comes back first. A group write that fails is counted (``store_errors``)
  and logged, and its dispatches go out anyway (after a crash, at least once).

Threads: connection actors, the tick thread (pings, timeouts, credential expiry, orphans'
grace) and the control methods all take one lock (``_lock``) around the protocol state,
the groups and the store; nothing holding it waits for the I/O loop (the kit's ``send``,
``close`` and ``abort`` only queue). The I/O loop takes only the short lock of the session
registry.

Faults, for tests (thread-safe): ``kill()``, ``go_silent()``/``resume()``,
``send_garbage()``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from ...actors.embedded import EmbeddedTcpServer
from ...actors.system import ActorSystem
from ...actors.tcpserver import DEFAULT_MAX_OUTBOX_BYTES, DEFAULT_STALL_DEADLINE, ServerConnection
from ...actors.tls import StrPath
from . import http
from .config import StreamSeaConfig, load_config, schema_version
from .groups import Dispatch, Groups, LimitError, Record, default_group
from .protocol import (
    POLICY_VIOLATION,
    Authenticate,
    AuthResult,
    Close,
    Register,
    Send,
    ServerAction,
    ServerConnectionState,
    ServerState,
    Subscribe,
    SubscribeRefused,
    Unregister,
    encode,
    encode_delivery,
    encode_payload,
)
from .schema import SchemaDefinition, validator

__all__ = [
    "DEFAULT_PORT",
    "GARBAGE",
    "JWT_ALGORITHMS",
    "TICK",
    "StoreError",
    "StreamSeaServer",
    "serve",
]

log = structlog.get_logger("actorwire.streamsea")

DEFAULT_PORT = 8400
"""The port ``actorwire serve streamsea`` listens on unless told otherwise."""
TICK = 0.25
"""Most seconds between the checks for pings, timeouts, credential expiry and orphans."""
GARBAGE = b"this is not JSON: a fault injected by send_garbage()"
"""The text frame ``send_garbage`` sends."""
JWT_ALGORITHMS = ("RS512", "RS256")
"""The JWT signatures accepted (stream-sea's is RS512)."""

# websockets logs every connection opened and closed at INFO: only its warnings pass.
_WS_LOGGER = logging.getLogger("actorwire.streamsea.websockets")
_WS_LOGGER.setLevel(logging.WARNING)
_UNKNOWN_CLIENT = b"\x00" * 32  # what an unknown client's secret is compared against


# The consumer groups in a store (groups.py rule 9): a row per group incarnation (gid), per
# member (tag) and per seq dispatched in a group (the member's tag; 0: to redeliver). A seq's
# row whose tag has no member row is confirmed; it stays until the log drops the seq, so the
# highest seq a group dispatched is known after a restart.
_GROUP_TABLES = (
    "CREATE TABLE IF NOT EXISTS groups (gid INTEGER PRIMARY KEY, stream TEXT NOT NULL, "
    "grp TEXT NOT NULL, origin INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS members (gid INTEGER NOT NULL, tag INTEGER NOT NULL, "
    "joined_after INTEGER NOT NULL, client TEXT NOT NULL, PRIMARY KEY (gid, tag)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS dispatched (stream TEXT NOT NULL, seq INTEGER NOT NULL, "
    "gid INTEGER NOT NULL, tag INTEGER NOT NULL, PRIMARY KEY (stream, seq, gid)) WITHOUT ROWID",
)
_TRIM = (
    "DELETE FROM messages WHERE stream = ? AND seq < ?",
    "DELETE FROM dispatched WHERE stream = ? AND seq < ?",
)
_RECORD_SQL = {
    "group": "INSERT OR REPLACE INTO groups (gid, stream, grp, origin) VALUES (?, ?, ?, ?)",
    "member": "INSERT OR REPLACE INTO members (gid, tag, joined_after, client) VALUES (?, ?, ?, ?)",
    "sent": "INSERT OR REPLACE INTO dispatched (stream, seq, gid, tag) VALUES (?, ?, ?, ?)",
    "gone": "DELETE FROM members WHERE gid = ? AND tag = ?",
    "retag": "UPDATE dispatched SET tag = ? WHERE stream = ? AND seq BETWEEN ? AND ? "
    "AND gid = ? AND tag = ?",
}
_FORGET_SQL = (
    "DELETE FROM groups WHERE gid = ?",
    "DELETE FROM members WHERE gid = ?",
    "DELETE FROM dispatched WHERE stream = ? AND seq BETWEEN ? AND ? AND gid = ?",
)


class StoreError(RuntimeError):
    """The store could not take a write (the publish or define did not happen)."""


class _Schema:
    """A defined stream's schema and its prepared check."""

    __slots__ = ("check", "definition", "version")

    def __init__(self, definition: SchemaDefinition) -> None:
        self.definition = SchemaDefinition.from_json(definition.json_serialize())  # our copy
        self.version = schema_version(definition.version)
        self.check = validator(self.definition)


class _Session:
    """One TCP connection: its HTTP session and, once upgraded, its websocket. The server's
    ``_lock`` guards every field."""

    __slots__ = (
        "closing",
        "conn",
        "fragments",
        "heard_at",
        "http",
        "in_binary",
        "joins",
        "must_fanout",
        "now",
        "pinged_at",
        "pings",
        "server",
        "state",
        "status",
        "subs",
        "ws",
    )

    def __init__(self, server: StreamSeaServer, conn: ServerConnection) -> None:
        self.server = server
        self.conn = conn
        self.http = http.HttpSession(server._api, max_body_bytes=server.config.max_body_bytes)
        self.ws: ServerProtocol | None = None
        self.state: ServerConnectionState | None = None
        self.fragments: list[bytes] | None = None  # a text message arriving in fragments
        self.in_binary = False  # a fragmented binary message is being skipped
        self.closing = False  # close the TCP connection once what is queued is written
        self.must_fanout = False  # the JWT's mustFanout claim
        self.subs: dict[int, str] = {}  # subscription id -> stream, while a group member
        self.joins: dict[int, list[Dispatch]] = {}  # start() -> the Register
        self.status = 0  # the status of the HTTP response being written (for the log)
        self.pings = 0
        now = time.monotonic()
        self.now = self.heard_at = self.pinged_at = now

    def on_data(self, data: bytes) -> None:
        self.server._on_data(self, data)

    def on_closed(self, reason: str) -> None:
        self.server._on_closed(self, reason)

    def on_writable(self) -> None:
        self.server._on_writable(self)

    def __repr__(self) -> str:
        kind = "websocket" if self.ws is not None else "http"
        return f"<_Session {kind} {self.conn.peer}>"


class _Api:
    """The business behind the HTTP routes (:class:`.http.StreamApi`), the server's own."""

    def __init__(self, server: StreamSeaServer) -> None:
        self._server = server

    def authenticate(self, client_id: str, secret: str) -> bool:
        return self._server._secret_ok(client_id, secret)

    def define(self, client_id: str, stream: str, schema: SchemaDefinition) -> SchemaDefinition:
        return self._server._define(schema, client_id)

    def schema(self, stream: str) -> SchemaDefinition | None:
        return self._server.schema(stream)

    def publish(self, client_id: str, stream: str, payload: Any) -> None:
        self._server._publish(stream, payload, client_id)

    def versions(self, names: Sequence[str]) -> list[int | None]:
        return self._server.versions(names)


class StreamSeaServer(EmbeddedTcpServer[_Session]):
    """The embedded stream-sea server (see the module's docstring); ``start()`` listens,
    ``stop()`` ends every connection and closes the store.

    ``config`` is a :class:`~.config.StreamSeaConfig` or the path of a TOML file (None: the
    packaged default, client ``demo`` with secret ``demo-secret``). ``store_path`` keeps the
    epoch, schemas and logs in an SQLite file across restarts. ``certfile`` and ``keyfile``
    (PEM) serve over TLS (https and wss). ``max_outbox_bytes`` and ``stall_deadline`` bound
    what waits for a peer (the kit's rules). ``system`` runs the server on that actor system
    instead of one of its own.

    Control methods are thread-safe (never call them from the I/O loop). Counters in
    ``stats()`` run on across ``kill``.
    """

    _name = "streamsea-server"
    _noun = "the server"
    _log = log
    _listening_event = "stream-sea server listening"
    _tick_failed_event = "stream-sea tick failed"

    def __init__(
        self,
        config: StreamSeaConfig | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        store_path: str | Path | None = None,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
        stall_deadline: float = DEFAULT_STALL_DEADLINE,
        system: ActorSystem | None = None,
    ) -> None:
        if not isinstance(config, StreamSeaConfig):
            config = load_config(config)
        super().__init__(
            host,
            port,
            certfile=certfile,
            keyfile=keyfile,
            max_outbox_bytes=max_outbox_bytes,
            stall_deadline=stall_deadline,
            system=system,
        )
        self.config = config
        self.tick_interval = max(min(TICK, config.ping_interval / 4, config.auth_timeout / 4), 0.01)
        """Seconds between the checks for pings, timeouts and orphans."""
        self._api = _Api(self)
        self._keys: dict[str, RSAPublicKey] = {}
        for client in config.clients:
            if client.jwt_public_key is not None:
                key = load_pem_public_key(client.jwt_public_key.encode("utf-8"))
                assert isinstance(key, RSAPublicKey)  # the config checked it
                self._keys[client.id] = key
        # _lock (the base's) guards the groups, the schemas, the store and every session's
        # protocol state.
        self._counters = dict.fromkeys(
            (
                "publishes",
                "deliveries",
                "websockets_opened",
                "auth_failures",
                "protocol_errors",
                "http_errors",
                "subscribe_refusals",
                "pings_sent",
                "ping_timeouts",
                "store_errors",
            ),
            0,
        )
        self._silent = False
        self._schemas: dict[str, _Schema] = {}
        self._store: sqlite3.Connection | None = None
        self.store_path = str(store_path) if store_path is not None else None
        self.groups: Groups = self._open_store()
        for definition in config.streams:
            try:
                self._define(definition, None)
            except ValueError as exc:  # the store holds a higher version: it stays
                log.warning(
                    "configured stream not defined", stream=definition.name, reason=str(exc)
                )

    def __repr__(self) -> str:
        tls = ", tls" if self._ssl is not None else ""
        return f"StreamSeaServer({self.host}:{self.port}{tls}, store={self.store_path})"

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def epoch(self) -> str:
        """The incarnation of the server's logs: a random UUID, kept by a store."""
        return self.groups.epoch

    @property
    def http_url(self) -> str:
        """The HTTP API's base, e.g. ``http://127.0.0.1:8400/api/v1``."""
        return f"{'https' if self.tls else 'http'}://{self._authority()}{http.API_PREFIX}"

    @property
    def ws_url(self) -> str:
        """The websocket's URL, e.g. ``ws://127.0.0.1:8400/api/v1/streams``."""
        return f"{'wss' if self.tls else 'ws'}://{self._authority()}{http.WEBSOCKET_PATH}"

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
            "epoch": self.epoch,
            "store": self.store_path,
        }

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _own_stats(self) -> dict[str, int]:
        out = dict(self._counters)
        groups = self.groups.stats()
        out["deliveries"] = groups.pop("dispatched")
        out.update(groups)
        out["websockets"] = sum(1 for s in self._session_list() if s.state is not None)
        return out

    def stats(self) -> dict[str, int]:
        """Counters: ``publishes``, ``deliveries``, ``redelivered``, ``lost``,
        ``auth_failures``, ``protocol_errors``, ``http_errors``, ... (see the README), the
        groups' sizes (``streams``, ``groups``, ``members``, ``log_bytes``, ...), the
        connections' (``accepted``, ``dropped_overflow``, ``tls_failures``, ...),
        ``connections`` (ever opened), ``sessions`` (open now) and ``websockets`` (open
        websockets now)."""
        return super().stats()

    # -- streams (thread-safe) --------------------------------------------------------------

    def publish(self, stream: str, payload: Any) -> int:
        """Publish ``payload`` to ``stream`` as an HTTP publish would; returns its seq.
        UnknownStream (a KeyError) when the stream has no schema, SchemaError naming the
        field when the payload does not match it, TypeError or ValueError when it is not
        JSON, StoreError when the store cannot take it."""
        return self._publish(stream, payload, None)

    def define(self, schema: SchemaDefinition) -> SchemaDefinition:
        """Define ``schema.name``'s schema as an HTTP define would; returns the schema in
        force: the existing one when it has the same version (it is not overwritten).
        ValueError for a lower version than the stream's, or past ``max_streams``."""
        return self._define(schema, None)

    def schema(self, stream: str) -> SchemaDefinition | None:
        """``stream``'s schema (a copy), None when it has none."""
        with self._lock:
            entry = self._schemas.get(stream)
            if entry is None:
                return None
            return SchemaDefinition.from_json(entry.definition.json_serialize())

    def versions(self, names: Iterable[str]) -> list[int | None]:
        """The schema version of each stream named, None for one without a schema."""
        with self._lock:
            out: list[int | None] = []
            for name in names:
                entry = self._schemas.get(name)
                out.append(None if entry is None else entry.version)
            return out

    def _publish(self, stream: str, payload: Any, client_id: str | None) -> int:
        with self._lock:
            entry = self._schemas.get(stream)
            if entry is None:
                raise http.UnknownStream(
                    f"stream {stream!r} has no schema: define it first "
                    f"(POST {http.API_PREFIX}/streams/{stream}/define)"
                )
            entry.check(payload)
            payload_json = encode_payload(payload)
            self._store_message(stream, payload_json)
            seq, dispatches = self.groups.append(stream, payload_json)
            self._counters["publishes"] += 1
            self._deliver(dispatches)
            self._log_notices()
            return seq

    def _define(self, schema: SchemaDefinition, client_id: str | None) -> SchemaDefinition:
        if not isinstance(schema, SchemaDefinition):
            raise TypeError(f"define: schema must be a SchemaDefinition, got {schema!r}")
        entry = _Schema(schema)  # ValueError: a version that is not an integer
        name = entry.definition.name
        with self._lock:
            old = self._schemas.get(name)
            if old is not None:
                if entry.version == old.version:
                    return SchemaDefinition.from_json(old.definition.json_serialize())
                if entry.version < old.version:
                    raise ValueError(
                        f"stream {name!r} has schema version {old.version}; version "
                        f"{entry.version} is lower (define a higher version to change it)"
                    )
            self.groups.open_stream(name, pinned=True)  # LimitError past max_streams
            self._store_schema(name, entry.definition)
            self._schemas[name] = entry
        log.info("stream defined", stream=name, version=entry.version, client_id=client_id)
        return SchemaDefinition.from_json(entry.definition.json_serialize())

    # -- the store ------------------------------------------------------------------------

    def _open_store(self) -> Groups:
        """The groups, with the logs (and epoch and schemas) a store file holds."""
        cfg = self.config

        def groups(epoch: str) -> Groups:
            return Groups(
                epoch,
                max_log_bytes=cfg.max_log_bytes,
                max_streams=cfg.max_streams,
                max_groups=cfg.max_groups,
                rejoin_grace=cfg.rejoin_grace,
                group_ttl=cfg.group_ttl,
                journal=self.store_path is not None,
            )

        if self.store_path is None:
            return groups(str(uuid.uuid4()))
        now = time.monotonic()
        db = sqlite3.connect(self.store_path, check_same_thread=False, isolation_level=None)
        try:
            # WAL: a write is whole or absent after a crash; NORMAL: what a process kill
            # must keep is in the OS's hands once the commit returns.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS schemas "
                "(stream TEXT PRIMARY KEY, definition TEXT NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS messages (stream TEXT NOT NULL, seq INTEGER NOT NULL, "
                "payload TEXT NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID"
            )
            for table in _GROUP_TABLES:
                db.execute(table)
            row = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
            if row is None:
                epoch = str(uuid.uuid4())
                db.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
            else:
                epoch = row[0]
            out = groups(epoch)
            restored = 0
            for stream, definition in db.execute(
                "SELECT stream, definition FROM schemas ORDER BY stream"
            ).fetchall():
                self._schemas[stream] = _Schema(SchemaDefinition.from_json(json.loads(definition)))
                rows = db.execute(
                    "SELECT seq, payload FROM messages WHERE stream = ? ORDER BY seq", (stream,)
                ).fetchall()
                start = rows[0][0] - 1 if rows else 0
                stream_log = out.open_stream(stream, pinned=True, start_after=start)
                for seq, payload in rows:
                    if seq != stream_log.last_seq + 1:  # never written so: a damaged file
                        raise StoreError(
                            f"store {self.store_path!r}: stream {stream!r} skips from seq "
                            f"{stream_log.last_seq} to {seq}"
                        )
                    stream_log.append(payload)
                restored += len(rows)
                if rows and stream_log.first_seq > rows[0][0]:  # a smaller max_log_bytes now
                    for trim in _TRIM:
                        db.execute(trim, (stream, stream_log.first_seq))
            restored_groups = _restore_groups(db, out, now)
        except BaseException:
            db.close()
            raise
        if row is not None:
            log.info(
                "store restored",
                store=self.store_path,
                epoch=epoch,
                streams=len(self._schemas),
                messages=restored,
                groups=restored_groups,
            )
        self._store = db
        return out

    def _store_message(self, stream: str, payload_json: str) -> None:
        """Commit one message (and the trim it causes) before it is dispatched."""
        db = self._store
        if db is None:
            return
        stream_log = self.groups.logs[stream]
        seq = stream_log.last_seq + 1
        first = stream_log.first_after_append(len(payload_json))
        try:
            db.execute("BEGIN")
            db.execute(
                "INSERT INTO messages (stream, seq, payload) VALUES (?, ?, ?)",
                (stream, seq, payload_json),
            )
            if first > stream_log.first_seq:
                for trim in _TRIM:
                    db.execute(trim, (stream, first))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._store_failed(db, exc, "publish")

    def _store_groups(self) -> None:
        """Commit what the groups' last calls changed (groups.py rule 9), before the
        dispatches they returned go out. A failed write is counted and logged, and they go
        out anyway: after a crash the store may then send some again (at least once)."""
        records = self.groups.take_records()
        db = self._store
        if db is None or not records:
            return
        try:
            db.execute("BEGIN")
            _write_records(db, records)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._counters["store_errors"] += 1
            log.error(
                "store write failed", store=self.store_path, what="consumer groups", error=repr(exc)
            )

    def _store_schema(self, stream: str, definition: SchemaDefinition) -> None:
        db = self._store
        if db is None:
            return
        text = json.dumps(definition.json_serialize(), separators=(",", ":"))
        try:
            db.execute(
                "INSERT OR REPLACE INTO schemas (stream, definition) VALUES (?, ?)",
                (stream, text),
            )
        except sqlite3.Error as exc:
            self._store_failed(db, exc, "define")

    def _store_failed(self, db: sqlite3.Connection, exc: sqlite3.Error, what: str) -> None:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        self._counters["store_errors"] += 1
        log.error("store write failed", store=self.store_path, what=what, error=repr(exc))
        raise StoreError(f"the store could not take the {what}: {exc}") from None

    # -- fault injection --------------------------------------------------------------------

    def kill(self, timeout: float = 5.0) -> None:
        """Drop every connection at once, as a crash would: nothing queued is written and no
        close frame is sent; each websocket's subscriptions end as dropped ones. The logs
        and groups stay and the server listens on. Returns once the sessions have ended (or
        after ``timeout`` seconds)."""
        super().kill(timeout)

    def go_silent(self) -> None:
        """Write nothing to any websocket (no replies, deliveries, pings or pongs) until
        ``resume()``; messages are still dispatched and recorded meanwhile (what a member
        was sent and never got is an orphan's when it drops). HTTP still answers."""
        with self._lock:
            self._silent = True

    def resume(self) -> None:
        """Write to websockets again after ``go_silent()``."""
        with self._lock:
            self._silent = False

    def send_garbage(self) -> None:
        """Send every authenticated websocket a text frame that is not JSON (even while
        silent)."""
        with self._lock:
            for session in self._session_list():
                ws, state = session.ws, session.state
                if ws is None or state is None or state.state is not ServerState.AUTHENTICATED:
                    continue
                if ws.state is OPEN:
                    ws.send_text(GARBAGE)
                    self._flush(session, force=True)

    # -- sessions -----------------------------------------------------------------------------

    def _on_closed(self, session: _Session, reason: str) -> None:
        with self._lock:
            if session.state is not None:
                self._carry_out(session, session.state.connection_lost(), time.monotonic())
            self._log_notices()
            self._unregister(session)
        log.debug("connection ended", peer=session.conn.peer, reason=reason)

    def _on_data(self, session: _Session, data: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            session.heard_at = now
            if session.ws is None:
                self._http(session, session.http.receive_data(data), now)
            else:
                self._ws_data(session, data, now)
            self._log_notices()

    def _on_writable(self, session: _Session) -> None:
        """The outbox has room again: give each subscription its share as budget."""
        with self._lock:
            if not session.subs or session.conn.closed:
                return
            share = self._share(session, len(session.subs))
            out: list[Dispatch] = []
            for sid in list(session.subs):
                out += self.groups.set_budget((session, sid), share)
            self._deliver(out)
            self._log_notices()

    def _share(self, session: _Session, members: int) -> int:
        return max(session.conn.room // 2 // max(members, 1), 1)

    # -- HTTP -------------------------------------------------------------------------------

    def _http(self, session: _Session, actions: list[http.Action], now: float) -> None:
        conn = session.conn
        for action in actions:
            if type(action) is http.Send:
                self._note_response(session, action.data)
                conn.send(action.data)
            elif type(action) is http.Close:
                conn.close()
            else:
                assert type(action) is http.Upgrade
                self._upgrade(session, action, now)

    def _note_response(self, session: _Session, data: bytes) -> None:
        """Count and log HTTP error replies: the head (status) then the body (its error)."""
        if data.startswith(b"HTTP/1.1 ") and data[9:12].isdigit():
            session.status = int(data[9:12])
            if session.status >= 400:
                self._counters["http_errors"] += 1
                if session.status == 401:
                    self._counters["auth_failures"] += 1
            return
        if session.status >= 400 and data:
            try:
                error = json.loads(data).get("error")
            except (ValueError, AttributeError):
                error = None
            (log.warning if session.status == 401 else log.info)(
                "HTTP request refused",
                peer=session.conn.peer,
                status=session.status,
                error=error,
            )
            session.status = 0

    def _upgrade(self, session: _Session, upgrade: http.Upgrade, now: float) -> None:
        cfg = self.config
        ws = ServerProtocol(max_size=cfg.max_message_size, logger=_WS_LOGGER)
        session.ws = ws
        ws.receive_data(upgrade.head)
        request = next((e for e in ws.events_received() if isinstance(e, Request)), None)
        if request is None:  # the head did not parse again: websockets answered it
            self._counters["http_errors"] += 1
            log.info("websocket handshake refused", peer=session.conn.peer, error="bad request")
            self._flush(session, force=True)
            session.conn.close()
            return
        response = ws.accept(request)
        ws.send_response(response)
        if response.status_code != 101:
            self._counters["http_errors"] += 1
            log.info(
                "websocket handshake refused",
                peer=session.conn.peer,
                status=response.status_code,
                error=str(ws.handshake_exc),
            )
            self._flush(session, force=True)
            session.conn.close()
            return
        state = ServerConnectionState(
            self._checker(session),
            now=now,
            start=self._starter(session),
            epoch=self.epoch,
            auth_timeout=cfg.auth_timeout,
            max_size=cfg.max_message_size,
            max_subscriptions=cfg.max_subscriptions,
        )
        session.state = state
        session.pinged_at = now
        self._counters["websockets_opened"] += 1
        self._flush(session, force=True)  # the 101 is HTTP: it goes out even while silent
        log.debug("websocket opened", peer=session.conn.peer)
        if upgrade.rest:
            self._ws_data(session, upgrade.rest, now)

    # -- the websocket ----------------------------------------------------------------------

    def _ws_data(self, session: _Session, data: bytes, now: float) -> None:
        ws = session.ws
        assert ws is not None
        ws.receive_data(data)
        for event in ws.events_received():
            if session.state is None or not isinstance(event, Frame):
                continue
            self._frame(session, event, now)
        exc = ws.parser_exc
        if exc is not None and session.state is not None and not session.closing:
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
            self._end_ws(session, now)
        self._flush(session)

    def _frame(self, session: _Session, frame: Frame, now: float) -> None:
        op = frame.opcode
        if op is Opcode.TEXT:
            session.in_binary = False
            if frame.fin:
                self._message(session, bytes(frame.data), now)
            else:
                session.fragments = [bytes(frame.data)]
        elif op is Opcode.CONT:
            fragments = session.fragments
            if fragments is None:  # the rest of a binary message already refused
                return
            fragments.append(bytes(frame.data))
            if frame.fin:
                session.fragments = None
                self._message(session, b"".join(fragments), now)
        elif op is Opcode.BINARY:
            session.fragments = None
            session.in_binary = not frame.fin
            # Refused by the protocol core (a binary message is not stream-sea): it closes.
            self._receive(session, bytes(frame.data), now)
        elif op is Opcode.CLOSE:
            # websockets answered it (and ends the TCP connection): the subscriptions drop.
            session.closing = True
            self._end_ws(session, now)
        # PING: websockets queued the pong; PONG: heard_at is enough.

    def _message(self, session: _Session, raw: bytes, now: float) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._counters["protocol_errors"] += 1
            reason = f"a text message that is not UTF-8 (byte {exc.start})"
            log.warning("websocket closed: bad UTF-8", peer=session.conn.peer, code=1007)
            self._close_ws(session, 1007, reason, now)
            return
        self._receive(session, text, now)

    def _receive(self, session: _Session, text: str | bytes, now: float) -> None:
        state = session.state
        assert state is not None
        errors = state.errors
        session.now = now
        actions = state.receive(text, now)
        if state.errors > errors:
            self._counters["protocol_errors"] += state.errors - errors
        self._carry_out(session, actions, now)

    def _carry_out(self, session: _Session, actions: list[ServerAction], now: float) -> None:
        """Do what the connection's state asks, in order."""
        ws, state = session.ws, session.state
        assert ws is not None and state is not None
        # Unregisters while still authenticated are unsubscribes; else the connection ended.
        clean = state.state is ServerState.AUTHENTICATED
        for action in actions:
            if type(action) is Send:
                if ws.state is OPEN:
                    ws.send_text(encode(action.message).encode("utf-8"))
            elif type(action) is Register:
                self._registered(session, action, now)
            elif type(action) is Unregister:
                self._leave(session, action.subscription_id, clean, now)
            else:
                assert type(action) is Close
                log.warning(
                    "websocket closed by the server",
                    peer=session.conn.peer,
                    client_id=state.client_id,
                    code=action.code,
                    reason=action.reason,
                )
                if ws.state is OPEN:
                    ws.send_close(action.code, action.reason)
                session.closing = True

    def _registered(self, session: _Session, reg: Register, now: float) -> None:
        joined = session.joins.pop(reg.subscription_id, None)
        if joined:
            self._deliver(joined)

    def _leave(self, session: _Session, sid: int, clean: bool, now: float) -> None:
        session.joins.pop(sid, None)
        if session.subs.pop(sid, None) is None:
            return
        self._deliver(self.groups.leave((session, sid), now, clean=clean))

    def _close_ws(self, session: _Session, code: int, reason: str, now: float) -> None:
        """Close the websocket ourselves: its subscriptions drop, the close frame goes out."""
        log.warning(
            "websocket closed by the server", peer=session.conn.peer, code=code, reason=reason
        )
        self._end_ws(session, now)
        ws = session.ws
        if ws is not None and ws.state is OPEN:
            ws.send_close(code, reason)
        session.closing = True

    def _end_ws(self, session: _Session, now: float) -> None:
        state = session.state
        if state is not None and state.state is not ServerState.CLOSED:
            self._carry_out(session, state.connection_lost(), now)

    def _flush(self, session: _Session, *, force: bool = False) -> None:
        """Hand what the websocket wrote to the connection (nothing while silent, unless
        ``force``); close the connection after it when it ended."""
        ws = session.ws
        if ws is None:
            return
        data = ws.data_to_send()
        frames = [chunk for chunk in data if chunk]
        if frames and (force or not self._silent):
            session.conn.send(frames)
        if len(frames) != len(data) or session.closing:
            session.conn.close()

    # -- auth -----------------------------------------------------------------------------

    def _secret_ok(self, client_id: str, secret: str) -> bool:
        client = self.config.client(client_id)
        expected = client.secret.encode("utf-8") if client is not None else _UNKNOWN_CLIENT
        given = secret.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(given, expected) and client is not None

    def _checker(self, session: _Session) -> Callable[[Authenticate, float], AuthResult]:
        def check(auth: Authenticate, now: float) -> AuthResult:
            result = self._check(session, auth, now)
            if result.success:
                log.info(
                    "websocket authenticated",
                    peer=session.conn.peer,
                    client_id=auth.client_id,
                    method=auth.type,
                )
            else:
                self._counters["auth_failures"] += 1
                log.warning(
                    "websocket authentication refused",
                    peer=session.conn.peer,
                    client_id=auth.client_id,
                    method=auth.type,
                    reason=result.error,
                )
            return result

        return check

    def _check(self, session: _Session, auth: Authenticate, now: float) -> AuthResult:
        if auth.jwt is None:
            if self._secret_ok(auth.client_id, auth.client_secret or ""):
                return AuthResult(True)
            return AuthResult(False, "wrong client id or secret")
        key = self._keys.get(auth.client_id)
        if key is None:
            return AuthResult(False, f"client {auth.client_id!r} has no JWT public key")
        try:
            claims = jwt.decode(
                auth.jwt, key, algorithms=list(JWT_ALGORITHMS), options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError:
            return AuthResult(False, "JWT expired (its exp has passed)")
        except jwt.InvalidSignatureError:
            return AuthResult(False, "JWT signature does not verify with the client's public key")
        except jwt.InvalidAlgorithmError:
            return AuthResult(False, f"JWT algorithm must be one of {', '.join(JWT_ALGORITHMS)}")
        except jwt.DecodeError:
            return AuthResult(False, "JWT is malformed (not a signed JWS compact token)")
        except jwt.InvalidTokenError as exc:  # never the token: the library's reason only
            return AuthResult(False, f"JWT refused: {type(exc).__name__}: {exc}"[:200])
        except (ValueError, TypeError) as exc:  # a token the library trips over
            return AuthResult(False, f"JWT refused: {type(exc).__name__}")
        if "filter" in claims:
            return AuthResult(False, "JWT filter claims are not supported")
        expires_at = None
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            expires_at = now + (float(exp) - time.time())
        session.must_fanout = claims.get("mustFanout") is True
        return AuthResult(True, expires_at=expires_at)

    # -- subscriptions and deliveries ---------------------------------------------------------

    def _starter(self, session: _Session) -> Callable[[Subscribe, str], int | None]:
        def start(sub: Subscribe, client_id: str) -> int | None:
            solo = False
            if sub.group_id is not None:
                group = sub.group_id
            elif session.must_fanout:
                group, solo = f"fanout:{uuid.uuid4()}", True
            else:
                group = default_group(client_id)
            member = (session, sub.id)
            try:
                seq, out = self.groups.join(
                    member,
                    sub.stream,
                    group,
                    client=client_id,
                    budget=self._share(session, len(session.subs) + 1),
                    now=session.now,
                    after_seq=sub.after_seq,
                    epoch=sub.epoch,
                    solo=solo,
                )
            except LimitError as exc:
                self._counters["subscribe_refusals"] += 1
                raise SubscribeRefused(str(exc)) from None
            self._store_groups()  # before the reply: it may carry what the join inherited
            for old in self.groups.take_superseded():
                self._supersede(cast(tuple[_Session, int], old), session)
            session.subs[sub.id] = sub.stream
            session.joins[sub.id] = out
            log.info(
                "subscribed",
                peer=session.conn.peer,
                client_id=client_id,
                stream=sub.stream,
                group=group,
                after_seq=sub.after_seq,
                start_seq=seq,
            )
            return seq

        return start

    def _supersede(self, old: tuple[_Session, int], by: _Session) -> None:
        """A join took this subscription's member over (groups.py rule 6): nothing more goes
        to it. Its connection, left without subscriptions, is closed (1008); the TCP
        connection ends when the peer answers, or at the ping timeout (it is likely
        half-open: its client has come back on ``by``)."""
        session, sid = old
        session.joins.pop(sid, None)
        stream = session.subs.pop(sid, None)
        state, ws = session.state, session.ws
        log.warning(
            "subscription taken over by a newer connection",
            peer=session.conn.peer,
            new_peer=by.conn.peer,
            client_id=state.client_id if state is not None else None,
            stream=stream,
            subscription_id=sid,
        )
        if session.subs or session is by or state is None or ws is None or session.closing:
            return
        reason = "superseded by a newer connection"
        log.warning(
            "websocket closed by the server",
            peer=session.conn.peer,
            code=POLICY_VIOLATION,
            reason=reason,
        )
        self._carry_out(session, state.connection_lost(), by.now)  # no subscription is left
        if ws.state is OPEN:
            ws.send_close(POLICY_VIOLATION, reason)
        self._flush(session)

    def _deliver(self, dispatches: list[Dispatch]) -> None:
        """Encode and send each delivery (the payload's JSON was encoded once, at publish),
        once the store holds what the groups changed."""
        self._store_groups()
        if not dispatches:
            return
        touched: dict[_Session, None] = {}
        for member, seq, payload_json, again in dispatches:
            session, sid = cast(tuple[_Session, int], member)  # the members are ours
            stream = session.subs.get(sid)
            ws = session.ws
            if stream is None or ws is None:
                continue
            if ws.state is OPEN:
                text = encode_delivery(sid, payload_json, stream=stream, seq=seq, redelivered=again)
                ws.send_text(text.encode("utf-8"))
            touched[session] = None
        for session in touched:
            self._flush(session)
            if any(self.groups.budget((session, sid)) <= 0 for sid in session.subs):
                session.conn.notify_writable()

    def _log_notices(self) -> None:
        for notice in self.groups.take_notices():
            event = notice.event
            if event == "lost":
                log.error(
                    "messages lost",
                    stream=notice.stream,
                    group=notice.group,
                    seqs=notice.seqs,
                    count=notice.size,
                    reason=notice.reason,
                )
            elif event == "redelivering":
                log.warning(
                    "redelivering a dropped member's messages",
                    stream=notice.stream,
                    group=notice.group,
                    seqs=notice.seqs,
                    count=notice.size,
                    reason=notice.reason,
                )
            else:
                log.info(
                    "consumer group forgotten",
                    stream=notice.stream,
                    group=notice.group,
                    reason=notice.reason,
                )

    # -- pings, timeouts and grace --------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Pings, ping timeouts, auth and credential deadlines, orphans' grace (``_lock``
        held: sends only, no waiting)."""
        cfg = self.config
        for session in self._session_list():
            ws, state = session.ws, session.state
            if ws is None or state is None or session.closing or session.conn.closed:
                continue
            if now - session.heard_at >= cfg.ping_timeout:
                self._counters["ping_timeouts"] += 1
                self._close_ws(
                    session, 1011, f"no data for {cfg.ping_timeout:g} s (ping timeout)", now
                )
            else:
                self._carry_out(session, state.tick(now), now)
                if (
                    not self._silent
                    and not session.closing
                    and ws.state is OPEN
                    and now - session.pinged_at >= cfg.ping_interval
                ):
                    session.pings += 1
                    ws.send_ping(session.pings.to_bytes(4, "big"))
                    session.pinged_at = now
                    self._counters["pings_sent"] += 1
            self._flush(session)
        self._deliver(self.groups.tick(now))
        self._log_notices()


def _write_records(db: sqlite3.Connection, records: list[Record]) -> None:
    """Write the groups' records in order, each run of one kind in one ``executemany``."""
    i, n = 0, len(records)
    while i < n:
        kind = records[i].kind
        j = i + 1
        while j < n and records[j].kind == kind:
            j += 1
        if kind == "forget":
            for record in records[i:j]:
                gid, stream, low, high = record.args
                db.execute(_FORGET_SQL[0], (gid,))
                db.execute(_FORGET_SQL[1], (gid,))
                db.execute(_FORGET_SQL[2], (stream, low, high, gid))
        else:
            db.executemany(_RECORD_SQL[kind], [record.args for record in records[i:j]])
        i = j


def _restore_groups(db: sqlite3.Connection, groups: Groups, now: float) -> int:
    """Bring back the consumer groups the store holds (groups.py rule 9), each member an
    orphan dropped ``now``; drop those of a stream without a schema. Returns how many."""
    stale = groups.restore(
        db.execute("SELECT gid, stream, grp, origin FROM groups").fetchall(),
        db.execute("SELECT gid, tag, joined_after, client FROM members").fetchall(),
        db.execute("SELECT stream, seq, gid, tag FROM dispatched ORDER BY stream, seq"),
        now,
    )
    for gid in stale:
        db.execute(_FORGET_SQL[0], (gid,))
        db.execute(_FORGET_SQL[1], (gid,))
    count: int = db.execute("SELECT count(*) FROM groups").fetchone()[0]
    return count


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    config: StreamSeaConfig | str | Path | None = None,
    **kwargs: Any,
) -> StreamSeaServer:
    """Start an embedded stream-sea server (keyword arguments as ``StreamSeaServer``'s);
    returns its handle (``.port``, ``.http_url``, ``.ws_url``, ``.stats()``, ``.stop()``)."""
    server = StreamSeaServer(config, host, port, **kwargs)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
