"""The embedded Smarkets exchange: the streaming API over TCP (or TLS) on 127.0.0.1.

The exchange's rules live in :class:`~.exchange.Exchange` (sans-I/O); this module is the
network shell, built on the kit's :class:`~actorwire.actors.embedded.EmbeddedTcpServer` (the
lifecycle, the tick thread and the session registry around its
:class:`~actorwire.actors.tcpserver.TcpServer`): one actor per connection runs that client's
session, every frame goes through the connection's byte-bounded outbox, and a client that
stops reading is dropped (``max_outbox_bytes``, ``stall_deadline``), counted and logged. A
session:

- must open with a LOGIN (else LOGOUT ``UNKNOWN_SESSION``) carrying seq 1 (else
  ``LOGIN_NOT_FIRST_SEQ``) and good credentials (else ``UNAUTHORISED``), within
  ``login_timeout`` seconds (else ``LOGIN_TIMEOUT``); each refusal closes the connection.
  A login is answered with a LOGIN_RESPONSE (a new ``session`` id, ``reset`` 2: the
  client's next seq). A LOGIN carrying ``account_sequence_64=N`` (N > 0) resumes: every
  account message after N (``Exchange.account_messages_after``) follows the
  LOGIN_RESPONSE. They are new payloads of this session, with its next seqs and no
  ``is_replay`` (that flag marks what a REPLAY resends on the session that sent it first); a
  client tells them apart by their account sequence. When the account's journal no longer
  holds them all, nothing is resent and the miss is counted (``resume_misses``) and logged;
- is sent a HEARTBEAT after ``heartbeat_interval`` seconds in which nothing was sent to it,
  and is logged out with ``HEARTBEAT_TIMEOUT`` after ``heartbeat_timeout`` seconds without
  a byte from the client (any bytes count);
- has every payload sent to it kept in a journal of at most ``session_journal_bytes`` (each
  costs its size plus ``ENTRY_OVERHEAD``), so that a REPLAY(seq) resends from seq on with
  the original seqs and ``is_replay`` set, and a GAPFILL carrying seq S for each S no longer
  held;
- gets PONG for PING, LOGOUT ``CONFIRMATION`` (then the close) for LOGOUT, eto
  THROTTLE_EXCEEDED for a message past the account's rate (ETO payloads: PING, HEARTBEAT,
  REPLAY, LOGOUT, are never throttled), a MARKET_QUOTES for a MARKET_SUBSCRIBE and then the market's
  CONTRACT_QUOTES on each change until MARKET_UNSUBSCRIBE, and whatever the exchange answers
  to orders (an account's messages go to every session of the account).

Bad input from a client never ends the server: a payload that does not parse is counted
(``garbage``) and the session goes on; a bad or oversize length prefix is counted
(``frame_errors``) and closes that connection only, once the answers to the frames before
it are written.

With a store file the exchange's state (accounts, books, orders, references, account
sequences and journals) is written after every message that changed it, before the answer
goes out, so that an exchange killed at any moment (even SIGKILL) and started again on the
same file resumes the books where they were and answers resumes and resent references as
the first one would have. Session journals live and die with their connections.

Threads: sessions run on their connection actors, heartbeats and timeouts on the exchange's
tick thread; one lock (``_lock``) guards the exchange and every session's state, and
nothing holding it waits for the I/O loop (``send``, ``close`` and ``abort`` of the kit's
connections only queue). The I/O loop itself only takes the short lock of the session
registry, so a slow store write never stalls a socket.

With ``[simulation]`` on (a ``rate`` above 0) the tick thread also sends the house's
messages (``Exchange``'s rule 9) at that rate, each logged to the store and applied as a
client's would be, so subscribers see quotes move with no client trading.

Fault injection, for tests: ``kill()``, ``go_silent()``/``resume()``, ``skip_next()``,
``repeat_next()``, ``reorder_next()``, ``send_garbage()``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

from ...actors.embedded import EmbeddedTcpServer
from ...actors.framing import FrameError
from ...actors.serving import TopicIndex
from ...actors.system import ActorSystem
from ...actors.tcpserver import DEFAULT_MAX_OUTBOX_BYTES, DEFAULT_STALL_DEADLINE, ServerConnection
from ...actors.tls import StrPath
from . import eto, seto
from .config import ExchangeConfig, load_config
from .exchange import ENTRY_OVERHEAD, Exchange, Out, Simulation
from .protocol import (
    Broken,
    Frame,
    Garbage,
    SmarketsCodec,
    gapfill,
    heartbeat,
    login_response,
    logout,
    pong,
    throttle_exceeded,
)

__all__ = ["DEFAULT_PORT", "LOGIN_TIMEOUT", "TICK", "ExchangeServer", "serve"]

log = structlog.get_logger("actorwire.smarkets.server")

DEFAULT_PORT = 3801
"""The SDK's default port (``SessionSettings.port``)."""
SNAPSHOT_EVERY = 1000
"""Inputs logged to the store between two snapshots of the whole state."""
LOGIN_TIMEOUT = 10.0
"""Seconds a connection has to log in."""
TICK = 0.25
"""Most seconds between the checks for heartbeats and timeouts (less when the config's
heartbeat interval or the login timeout asks for it)."""
REPLAY_SLICE = 256
"""Frames of a REPLAY's answer built and queued at a time: a REPLAY from far back costs at
most the connection's outbox bound, not a list of every seq."""
GARBAGE = b"\x03\xff\xff\xff"
"""What ``send_garbage`` sends: a well-framed 3-byte payload that does not parse."""
_REASONS = {value: name for name, value in eto.LogoutReason.items()}


class _Session:
    """One client connection: its codec, login, subscriptions and outbound journal.

    The server's ``_lock`` guards every field; the connection's actor calls ``on_data``
    one read at a time."""

    __slots__ = (
        "account",
        "codec",
        "conn",
        "garbage",
        "heard_at",
        "held",
        "journal",
        "journal_bytes",
        "logged_out",
        "opened_at",
        "sent_at",
        "server",
        "session_id",
    )

    def __init__(self, server: ExchangeServer, conn: ServerConnection) -> None:
        self.server = server
        self.conn = conn
        self.codec = SmarketsCodec(server.config.max_frame_bytes)
        self.account: int | None = None
        self.session_id = ""
        self.logged_out = False
        self.garbage = 0
        self.journal: deque[tuple[int, bytes]] = deque()  # (seq, payload bytes), seq order
        self.journal_bytes = 0
        self.held: list[bytes] = []  # frames held back by reorder_next()
        now = time.monotonic()
        self.opened_at = self.heard_at = self.sent_at = now

    def on_data(self, data: bytes) -> None:
        self.server._on_data(self, data)

    def on_closed(self, reason: str) -> None:
        self.server._on_closed(self, reason)

    def __repr__(self) -> str:
        return f"<_Session {self.conn.peer} account={self.account}>"


class ExchangeServer(EmbeddedTcpServer[_Session]):
    """The embedded exchange (see the module's docstring); ``start()`` listens, ``stop()``
    ends every session and closes the store.

    ``config`` is an :class:`~.config.ExchangeConfig` or the path of a TOML file (None: the
    packaged default). ``store_path`` keeps the exchange's state in an SQLite file across
    restarts. ``certfile`` and ``keyfile`` (PEM) serve over TLS; a client whose handshake
    fails is counted (``tls_failures``) and closed. ``max_outbox_bytes`` and
    ``stall_deadline`` bound what waits for a client (the kit's rules). ``system`` runs the
    server on that actor system instead of one of its own.

    Control methods are thread-safe (never call them from the I/O loop). Counters in
    ``stats()`` run on across ``kill``.
    """

    _name = "smarkets-exchange"
    _noun = "the exchange"
    _log = log
    _listening_event = "exchange listening"
    _tick_failed_event = "exchange tick failed"

    def __init__(
        self,
        config: ExchangeConfig | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        store_path: str | Path | None = None,
        certfile: StrPath | None = None,
        keyfile: StrPath | None = None,
        max_outbox_bytes: int = DEFAULT_MAX_OUTBOX_BYTES,
        stall_deadline: float = DEFAULT_STALL_DEADLINE,
        login_timeout: float = LOGIN_TIMEOUT,
        system: ActorSystem | None = None,
    ) -> None:
        if not isinstance(config, ExchangeConfig):
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
        if not login_timeout > 0:
            raise ValueError(f"login_timeout must be > 0 seconds, got {login_timeout!r}")
        self.config = config
        self.login_timeout = float(login_timeout)
        tick = min(TICK, config.heartbeat_interval / 4, login_timeout / 4)
        if config.simulation.enabled:
            tick = min(tick, 1.0 / config.simulation.rate)
        self.tick_interval = max(tick, 0.01)
        """Seconds between the checks for heartbeats and timeouts (and the house's messages)."""
        # _lock (the base's) guards the exchange, the store and every session's state.
        self._accounts: TopicIndex[int, _Session] = TopicIndex()  # logged-in sessions
        self._markets: TopicIndex[int, _Session] = TopicIndex()  # market subscriptions
        self._counters = dict.fromkeys(
            (
                "logins",
                "logins_refused",
                "logouts_sent",
                "heartbeats_sent",
                "replays",
                "gapfills_sent",
                "resumes",
                "resume_misses",
                "throttled",
                "garbage",
                "frame_errors",
                "store_errors",
                "simulated",
            ),
            0,
        )
        self._faults = {"skip": 0, "repeat": 0, "reorder": 0}
        self._silent = False
        self._store: sqlite3.Connection | None = None
        self._logged = 0  # the last input number written to the store
        self._since_snapshot = 0
        self.store_path = str(store_path) if store_path is not None else None
        self.exchange = self._open_store()
        self._simulation = Simulation(self.exchange) if config.simulation.enabled else None

    def __repr__(self) -> str:
        tls = ", tls" if self._ssl is not None else ""
        return f"ExchangeServer({self.host}:{self.port}{tls}, store={self.store_path})"

    # -- the shell's hooks (see actors/embedded.py) --------------------------------------------

    def _make_session(self, conn: ServerConnection) -> _Session:
        return _Session(self, conn)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _own_stats(self) -> dict[str, int]:
        return {**self._counters, **self.exchange.stats()}

    def stats(self) -> dict[str, int]:
        """Counters: the session layer's (``logins``, ``heartbeats_sent``, ``replays``,
        ``garbage``, ...), the exchange's (``orders_accepted``, ``live_orders``, ...), the
        connections' (``accepted``, ``dropped_overflow``, ``tls_failures``, ...),
        ``connections`` (sessions ever opened) and ``sessions`` (open now)."""
        return super().stats()

    # -- the store ------------------------------------------------------------------------

    def _open_store(self) -> Exchange:
        """The exchange a store file holds: its last snapshot, then every input logged since
        (the exchange is deterministic: the same inputs at the same times give the same
        state)."""
        if self.store_path is None:
            return Exchange(self.config)
        db = sqlite3.connect(self.store_path, check_same_thread=False, isolation_level=None)
        try:
            # WAL: a write is whole or absent after a crash; NORMAL: what a process kill
            # must keep is in the OS's hands once the write returns.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, data TEXT, "
                "upto INTEGER NOT NULL DEFAULT 0)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS inputs (n INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
                "account INTEGER NOT NULL, at REAL NOT NULL, payload BLOB)"
            )
            row = db.execute("SELECT data, upto FROM state WHERE id = 1").fetchone()
            exchange = (
                Exchange(self.config)
                if row is None
                else Exchange.restore(self.config, json.loads(row[0]))
            )
            upto = row[1] if row is not None else 0
            inputs = db.execute(
                "SELECT n, kind, account, at, payload FROM inputs WHERE n > ? ORDER BY n",
                (upto,),
            ).fetchall()
            for _, kind, account, at, payload in inputs:
                if kind == "message":
                    exchange.handle(account, seto.Payload.FromString(payload), at)
                else:
                    exchange.cancel_all_on_failure(account, at)
            self._logged = inputs[-1][0] if inputs else upto
            self._since_snapshot = len(inputs)
        except BaseException:
            db.close()
            raise
        if row is not None or inputs:
            log.info("exchange state restored", store=self.store_path, replayed=len(inputs))
        self._store = db
        return exchange

    def _log_input(self, kind: str, account: int, at: float, payload: bytes | None) -> None:
        """Write one state-changing input ahead of applying it (``message``: a payload the
        exchange handles; ``failure``: a session of the account ended without a logout).
        Every ``SNAPSHOT_EVERY`` inputs the state is written whole and the log cut."""
        db = self._store
        if db is None:
            return
        try:
            self._logged += 1
            db.execute(
                "INSERT INTO inputs (n, kind, account, at, payload) VALUES (?, ?, ?, ?, ?)",
                (self._logged, kind, account, at, payload),
            )
            self._since_snapshot += 1
        except sqlite3.Error as exc:
            self._counters["store_errors"] += 1
            log.error("exchange store write failed", store=self.store_path, error=repr(exc))

    def _snapshot_if_due(self) -> None:
        db = self._store
        if db is None or self._since_snapshot < SNAPSHOT_EVERY:
            return
        try:
            data = json.dumps(self.exchange.snapshot(), separators=(",", ":"))
            db.execute("BEGIN")
            db.execute(
                "INSERT OR REPLACE INTO state (id, data, upto) VALUES (1, ?, ?)",
                (data, self._logged),
            )
            db.execute("DELETE FROM inputs WHERE n <= ?", (self._logged,))
            db.execute("COMMIT")
            self._since_snapshot = 0
        except (sqlite3.Error, TypeError, ValueError) as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._counters["store_errors"] += 1
            log.error("exchange snapshot failed", store=self.store_path, error=repr(exc))

    # -- fault injection --------------------------------------------------------------------

    def kill(self, timeout: float = 5.0) -> None:
        """Drop every connection at once, as a crash would: nothing queued is written, and
        each session ends as a dropped one. The exchange's state stays and the server
        listens on. Returns once the sessions have ended (or after ``timeout`` seconds)."""
        super().kill(timeout)

    def go_silent(self) -> None:
        """Send nothing (no answers, no heartbeats, no replays) until ``resume()``; what is
        sent meanwhile is journalled (a REPLAY after ``resume()`` brings it back) and
        dropped. Clients are still logged out for their own silence."""
        with self._lock:
            self._silent = True

    def resume(self) -> None:
        """Send again after ``go_silent()``."""
        with self._lock:
            self._silent = False

    def skip_next(self, n: int = 1) -> None:
        """Journal and drop the next ``n`` payloads (to any session): a gap for the client,
        which a REPLAY fills."""
        with self._lock:
            self._faults["skip"] += _count(n)

    def repeat_next(self, n: int = 1) -> None:
        """Send each of the next ``n`` payloads (to any session) twice."""
        with self._lock:
            self._faults["repeat"] += _count(n)

    def reorder_next(self, n: int = 1) -> None:
        """Hold back each of the next ``n`` payloads (to any session) and send it right
        after the next payload to the same session goes out: at the latest the HEARTBEAT a
        quiet session gets after ``heartbeat_interval``, so no frame is stranded."""
        with self._lock:
            self._faults["reorder"] += _count(n)

    def send_garbage(self) -> None:
        """Send every logged-in session a frame that does not parse (even while silent);
        it takes no seq."""
        with self._lock:
            for session in self._session_list():
                if session.account is not None:
                    session.conn.send(GARBAGE)

    # -- sessions ---------------------------------------------------------------------------

    def _on_closed(self, session: _Session, reason: str) -> None:
        with self._lock:
            self._accounts.remove_subscriber(session)
            self._markets.remove_subscriber(session)
            session.journal.clear()
            session.journal_bytes = 0
            session.held.clear()
            account = session.account
            if account is not None and not session.logged_out:
                now = time.time()
                self._log_input("failure", account, now, None)
                outs = self.exchange.cancel_all_on_failure(account, now)
                self._deliver(outs)
                self._snapshot_if_due()
            self._unregister(session)
        log.debug("session ended", peer=session.conn.peer, reason=reason)

    def _on_data(self, session: _Session, data: bytes) -> None:
        codec = session.codec
        with self._lock:
            session.heard_at = time.monotonic()
            error: FrameError | None = None
            try:
                codec.receive_data(data)
            except FrameError as exc:
                error = exc
            for event in codec.events():
                if session.conn.closed:
                    return
                if type(event) is Frame:
                    self._payload(session, event.protobuf)
                    continue
                if type(event) is Broken:  # a bad length prefix after good frames
                    error = FrameError(event.reason)
                    break
                assert type(event) is Garbage
                self._counters["garbage"] += 1
                session.garbage += 1
                # The first per session is worth a warning; a flood is not worth a log line each.
                (log.warning if session.garbage == 1 else log.debug)(
                    "garbage from a client", peer=session.conn.peer, reason=event.reason
                )
            if error is not None:
                self._counters["frame_errors"] += 1
                log.warning(
                    "bad frame: connection closed", peer=session.conn.peer, error=str(error)
                )
                session.conn.close()  # what was answered before it still goes out

    def _payload(self, session: _Session, payload: seto.Payload) -> None:
        if session.account is None:
            self._login(session, payload)
            return
        kind = payload.type
        if kind == seto.PAYLOAD_ETO:
            ep = payload.eto_payload
            etype = ep.type
            if etype == eto.PAYLOAD_PING:
                self._send(session, pong(0))
            elif etype == eto.PAYLOAD_REPLAY:
                self._replay(session, ep.replay.seq)
            elif etype == eto.PAYLOAD_LOGOUT:
                session.logged_out = True
                self._send(session, logout(0, eto.LOGOUT_CONFIRMATION))
                session.conn.close()
            return  # HEARTBEAT (heard_at is enough), PONG, GAPFILL: nothing to answer
        if kind == seto.PAYLOAD_LOGIN:
            return  # a second LOGIN on a session: ignored
        account = session.account
        now = time.time()
        if not self.exchange.throttle(account, now):
            self._counters["throttled"] += 1
            self._send(session, throttle_exceeded(0))
            return
        if kind == seto.PAYLOAD_MARKET_SUBSCRIBE:
            market = payload.market_subscribe.market_id
            quotes = self.exchange.market_quotes(market)
            if quotes is None:
                log.info("subscribe to an unknown market", peer=session.conn.peer, market=market)
                return
            self._markets.add(session, market)
            self._send(session, quotes)
            return
        if kind == seto.PAYLOAD_MARKET_UNSUBSCRIBE:
            self._markets.remove(session, payload.market_unsubscribe.market_id)
            return
        # Logged before it is applied and answered: a kill loses no answer sent.
        self._log_input("message", account, now, payload.SerializeToString())
        outs = self.exchange.handle(account, payload, now)
        self._deliver(outs)
        self._snapshot_if_due()

    def _login(self, session: _Session, payload: seto.Payload) -> None:
        if payload.type != seto.PAYLOAD_LOGIN:
            self._refuse(session, eto.LOGOUT_UNKNOWN_SESSION, "its first payload is no LOGIN")
            return
        seq = payload.eto_payload.seq
        if seq != 1:
            self._refuse(session, eto.LOGOUT_LOGIN_NOT_FIRST_SEQ, f"its LOGIN has seq {seq}")
            return
        body = payload.login
        if body.cookie:
            account = self.exchange.authenticate_token(body.cookie.decode("utf-8", "replace"))
        else:
            account = self.exchange.authenticate(body.username, body.password)
        if account is None:
            self._counters["logins_refused"] += 1
            self._refuse(session, eto.LOGOUT_UNAUTHORISED, "bad credentials")
            return
        after = body.account_sequence_64
        messages = self.exchange.account_messages_after(account, after) if after else []
        if messages is None:
            # A resume the exchange cannot honour (its journal moved on, or its state was
            # lost and it never gave that sequence) is refused, never done in part: the
            # client logs in again without one and knows what it may have missed.
            self._counters["resume_misses"] += 1
            log.warning(
                "resume refused: the account journal does not hold what follows the sequence",
                peer=session.conn.peer,
                account=account,
                after=after,
                last=self.exchange.last_account_sequence(account),
            )
            self._refuse(session, eto.LOGOUT_UNKNOWN_SESSION, "resume not possible")
            return
        session.account = account
        session.session_id = uuid.uuid4().hex
        self._counters["logins"] += 1
        self._accounts.add(session, account)
        self._send(session, login_response(0, session.session_id, 2))
        log.info("logged in", peer=session.conn.peer, account=account)
        if after:
            self._counters["resumes"] += 1
        for message in messages:
            self._send(session, message)

    def _refuse(self, session: _Session, reason: int, why: str) -> None:
        log.info(
            "login refused", peer=session.conn.peer, reason=_REASONS.get(reason, reason), why=why
        )
        self._send(session, logout(0, reason))
        self._counters["logouts_sent"] += 1
        session.conn.close()

    def _deliver(self, outs: Iterable[Out]) -> None:
        for out in outs:
            if out.account_id is not None:
                targets = self._accounts.match(out.account_id)
            else:
                assert out.market_id is not None
                targets = self._markets.match(out.market_id)
            for target in targets:
                payload = seto.Payload()
                payload.CopyFrom(out.payload)  # each session stamps its own seq
                self._send(target, payload)

    def _send(self, session: _Session, payload: seto.Payload) -> None:
        """Stamp the session's next seq, journal the payload and send it (faults apply)."""
        data = session.codec.encode(payload)
        raw = payload.SerializeToString()
        journal = session.journal
        journal.append((payload.eto_payload.seq, raw))
        session.journal_bytes += len(raw) + ENTRY_OVERHEAD
        limit = self.config.session_journal_bytes
        while session.journal_bytes > limit and journal:
            _, old = journal.popleft()
            session.journal_bytes -= len(old) + ENTRY_OVERHEAD
        session.sent_at = time.monotonic()
        if self._silent:
            return
        faults = self._faults
        if faults["skip"]:
            faults["skip"] -= 1
            return
        if faults["reorder"]:
            faults["reorder"] -= 1
            session.held.append(data)
            return
        frames = [data]
        if faults["repeat"]:
            faults["repeat"] -= 1
            frames.append(data)
        if session.held:
            frames += session.held
            session.held.clear()
        session.conn.send(frames)

    def _replay(self, session: _Session, first: int) -> None:
        """Resend from ``first`` (original seqs, ``is_replay``); GAPFILL what is gone."""
        self._counters["replays"] += 1
        last = session.codec.outseq - 1
        if self._silent or not 1 <= first <= last:
            return
        journal = session.journal  # seqs oldest..last, without a hole
        oldest = journal[0][0] if journal else last + 1
        encode = session.codec.encode
        frames: list[bytes] = []
        for seq in range(first, min(oldest, last + 1)):
            filler = gapfill(seq)
            filler.eto_payload.is_replay = True
            frames.append(encode(filler, stamp=False))
            self._counters["gapfills_sent"] += 1
            if len(frames) == REPLAY_SLICE:
                if not session.conn.send(frames):
                    return
                frames = []
        for _, raw in itertools.islice(journal, max(first - oldest, 0), None):
            payload = seto.Payload.FromString(raw)
            payload.eto_payload.is_replay = True
            frames.append(encode(payload, stamp=False))
            if len(frames) == REPLAY_SLICE:
                if not session.conn.send(frames):
                    return
                frames = []
        session.sent_at = time.monotonic()
        if frames:
            session.conn.send(frames)

    # -- heartbeats and timeouts -------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """Heartbeats and timeouts at ``now`` (``_lock`` held: sends only, no waiting)."""
        cfg = self.config
        for session in self._session_list():
            if session.conn.closed:
                continue
            if session.account is None:
                if now - session.opened_at > self.login_timeout:
                    self._refuse(session, eto.LOGOUT_LOGIN_TIMEOUT, "no LOGIN in time")
                continue
            if now - session.heard_at > cfg.heartbeat_timeout:
                log.info("client silent: logged out", peer=session.conn.peer)
                self._send(session, logout(0, eto.LOGOUT_HEARTBEAT_TIMEOUT))
                self._counters["logouts_sent"] += 1
                session.conn.close()
            elif now - session.sent_at >= cfg.heartbeat_interval and not self._silent:
                self._counters["heartbeats_sent"] += 1
                self._send(session, heartbeat(0))
        if self._simulation is not None:
            self._simulate(now)

    def _simulate(self, now: float) -> None:
        """Send the house's messages due by ``now`` (``_lock`` held)."""
        simulation = self._simulation
        assert simulation is not None
        due = simulation.due(now)
        if not due:
            return
        wall = time.time()
        for _ in range(due):
            account, payload = simulation.next_message()
            self._log_input("message", account, wall, payload.SerializeToString())
            self._deliver(self.exchange.handle(account, payload, wall))
            self._counters["simulated"] += 1
        self._snapshot_if_due()


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    return n


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    config: ExchangeConfig | str | Path | None = None,
    **kwargs: Any,
) -> ExchangeServer:
    """Start an embedded exchange (keyword arguments as ``ExchangeServer``'s); returns its
    handle (``.port``, ``.stats()``, ``.stop()``)."""
    server = ExchangeServer(config, host, port, **kwargs)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
