"""The Smarkets streaming API client, name for name with smk-python-sdk 9.4.4.

``SessionSettings``, ``Session`` and ``StreamingAPIClient`` take the SDK's arguments and
defaults and call handlers as it does (``handler(message=payload)``, a global handler
``handler(name=..., message=frame)``), so code written for the SDK runs unchanged. What the
SDK leaves to its users is done here:

- a HEARTBEAT is answered at once (the SDK buffers the answer until the next ``flush()``);
- a gap in the incoming sequence is held and recovered with REPLAY, and GAPFILL honoured (the
  SDK drops the frame and never asks);
- the account sequence of every account message is kept, so the next ``connect()`` resumes.

``client.start()`` (an actorwire addition) hands the session to a supervised Link: frames
are read continuously, the session redials with backoff and resumes by account sequence
after a disconnect, handlers run on the client's own actor, orders not yet answered are sent
again after the resume with the same ``reference`` (the exchange places each reference
once), and ``client.stop()`` logs out.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import structlog
from actorwire.actors import Actor, ActorSystem, Address, Backoff, Mailbox
from actorwire.actors.errors import ActorwireError
from actorwire.actors.link import Link, LinkState
from actorwire.actors.twins import twin
from google.protobuf.message import Message

from . import eto, seto
from .framing import frame_decode_all, frame_encode
from .link import SmarketsAdapter, market_stream
from .protocol import CALLBACKS as _CALLBACKS
from .protocol import MAX_FRAME_SIZE, Frame, InboundSequencer, payload_name, wrap
from .protocol import heartbeat as _heartbeat
from .protocol import login as _login
from .protocol import logout as _logout
from .protocol import ping as _ping
from .protocol import replay as _replay

__all__ = [
    "READ_MODE_BUFFER_AND_DISPATCH",
    "READ_MODE_BUFFER_FROM_SOCKET",
    "READ_MODE_DISPATCH_FROM_BUFFER",
    "ConnectionError",
    "DecodeError",
    "Error",
    "Frame",
    "InvalidCallbackError",
    "LoginError",
    "LoginTimeout",
    "ParseError",
    "Session",
    "SessionSettings",
    "SocketDisconnected",
    "StreamingAPIClient",
]

log = structlog.get_logger("actorwire.smarkets")

READ_MODE_BUFFER_FROM_SOCKET = 1
READ_MODE_DISPATCH_FROM_BUFFER = 2
READ_MODE_BUFFER_AND_DISPATCH = READ_MODE_BUFFER_FROM_SOCKET | READ_MODE_DISPATCH_FROM_BUFFER

_ACCOUNT_SEQ = "account_sequence_64"
_ORDER_ANSWERS = ("order_accepted", "order_rejected", "order_invalid")


# -- errors --------------------------------------------------------------------------------


class Error(ActorwireError):
    """Base of the client's errors (the SDK's ``smarkets.errors.Error``)."""


class ConnectionError(Error, builtins.ConnectionError):
    """A TCP connection could not be made or broke (also a builtin ConnectionError)."""


class DecodeError(Error, ValueError):
    """A frame header could not be decoded."""


class ParseError(Error, ValueError):
    """A payload could not be parsed."""


class SocketDisconnected(Error, builtins.ConnectionError):
    """The socket was closed while reading or writing."""


class InvalidCallbackError(Error, ValueError):
    """A handler name that is not one of ``StreamingAPIClient.CALLBACKS``."""


class LoginError(Error):
    """The LOGIN was answered with a LOGOUT: ``reason`` (an ``eto.LogoutReason`` value) and
    ``reason_msg`` (its name, e.g. ``"LOGOUT_UNAUTHORISED"``)."""

    def __init__(self, reason: int) -> None:
        self.reason = reason
        self.reason_msg = (
            eto.LogoutReason.Name(reason) if reason in eto.LogoutReason.values() else "Unknown"
        )
        super().__init__(f"login refused: {self.reason_msg}")


class LoginTimeout(Error, TimeoutError):
    """No LOGIN_RESPONSE or LOGOUT was read after the LOGIN."""


# -- settings and the plain session --------------------------------------------------------


class SessionSettings:
    """What a session needs, with the SDK's arguments and defaults. The password and token
    never appear in the repr."""

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        host: str = "stream.smarkets.com",
        port: int = 3801,
        ssl: bool = True,
        socket_timeout: float | None = 30,
        ssl_kwargs: dict[str, Any] | None = None,
        tcp_nodelay: bool = True,
    ) -> None:
        self.username = username
        self.password = password
        self.token = token
        self.host = host
        self.port = port
        self.socket_timeout = socket_timeout
        self.ssl = ssl
        self.ssl_kwargs = ssl_kwargs or {}
        self.tcp_nodelay = tcp_nodelay
        self.read_chunksize = 65536

    def __repr__(self) -> str:
        return (
            f"SessionSettings(username={self.username!r}, host={self.host!r}, "
            f"port={self.port}, ssl={self.ssl})"
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for these settings (None with ``ssl=False``). ``ssl_kwargs`` may
        name ``ca_certs`` (a PEM file of the CAs to trust), ``certfile`` and ``keyfile``."""
        if not self.ssl:
            return None
        kwargs = self.ssl_kwargs
        context = ssl.create_default_context(cafile=kwargs.get("ca_certs"))
        if kwargs.get("certfile"):
            context.load_cert_chain(kwargs["certfile"], kwargs.get("keyfile"))
        return context


class SessionSocket:
    """A blocking socket with the SDK's errors."""

    def __init__(self, settings: SessionSettings) -> None:
        if not isinstance(settings, SessionSettings):
            raise ValueError("settings is not a SessionSettings")
        self.settings = settings
        self._sock: socket.socket | None = None

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> bool:
        """Connect; False if already connected."""
        if self._sock is not None:
            return False
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.port), timeout=s.socket_timeout)
            context = s.ssl_context()
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=s.host)
            if s.tcp_nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            if exc.errno is not None and exc.strerror:  # the SDK's wording
                text = f"Error {exc.errno} connecting {s.host}:{s.port}. {exc.strerror}."
            else:
                text = f"Error connecting to {s.host}:{s.port}. {exc}."
            raise ConnectionError(text) from None
        self._sock = sock
        return True

    def disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def send(self, data: bytes | bytearray) -> int:
        if self._sock is None:
            raise SocketDisconnected("Trying to write to socket when disconnected")
        try:
            sent = self._sock.send(data)
        except OSError as exc:
            raise ConnectionError(f"Error while writing to socket: {exc!r}") from None
        if sent == 0:
            raise SocketDisconnected("Socket disconnected when writing to it, 0 bytes written")
        return sent

    def recv(self) -> bytes:
        if self._sock is None:
            raise SocketDisconnected("Trying to read from a socket when disconnected")
        try:
            data = self._sock.recv(self.settings.read_chunksize)
        except OSError as exc:
            raise ConnectionError(f"Error while reading from socket: {exc!r}") from None
        if not data:
            raise SocketDisconnected("Socket disconnected while receiving, got b''")
        return data


class Session:
    """One streaming session over a blocking socket, as the SDK's ``Session``: ``send()``
    buffers ``out_payload``, ``flush()`` writes, ``read()`` reads once and ``next_frame()``
    hands out the next payload in sequence.

    Unlike the SDK it answers a HEARTBEAT at once, holds payloads that arrive after a gap and
    asks for a REPLAY from the missing seq (GAPFILL honoured), and keeps
    ``account_sequence``, the newest account sequence seen, so that ``connect()`` after a
    ``disconnect()`` resumes the account's messages.
    """

    def __init__(
        self,
        settings: SessionSettings,
        inseq: int = 1,
        outseq: int = 1,
        account_sequence: int | None = None,
    ) -> None:
        self.settings = settings
        self.account_sequence = account_sequence
        self.socket = SessionSocket(settings)
        self.inseq = inseq
        self.init_inseq = inseq
        self.outseq = outseq
        self.init_outseq = outseq
        self.buf_outseq = outseq
        self.out_payload = seto.Payload()
        self.send_buffer = bytearray()
        self.read_buffer = bytearray()
        self.session: str | None = None
        self._sequencer: InboundSequencer[Frame] = InboundSequencer(inseq)
        self._ready: deque[Frame] = deque()
        self.buffered_incoming_payloads: list[bytes] = []
        self.parse_errors = 0
        """Payloads read that did not parse (skipped)."""

    def __repr__(self) -> str:
        return f"Session({self.settings!r}, connected={self.connected})"

    @property
    def raw_socket(self) -> socket.socket | None:
        return self.socket._sock

    @property
    def output_buffer_size(self) -> int:
        return len(self.send_buffer)

    @property
    def connected(self) -> bool:
        return self.socket.connected

    def connect(self) -> None:
        """Connect and send the LOGIN (seq 1; resuming after ``account_sequence`` if set)."""
        if self.socket.connect():
            self.send_buffer = bytearray()
            self.buf_outseq = 1
            s = self.settings
            self.out_payload = _login(
                0,
                username=s.username,
                password=s.password,
                cookie=s.token,
                account_sequence=self.account_sequence,
            )
            self.send()
            self.flush()

    def logout(self) -> None:
        self.out_payload = _logout(0)
        self.send()
        self.flush()

    def disconnect(self) -> None:
        self.socket.disconnect()
        self.inseq = self.init_inseq
        self.outseq = self.init_outseq
        self._sequencer.reset(self.init_inseq)
        self._ready.clear()
        self.buffered_incoming_payloads = []
        self.read_buffer = bytearray()

    def send(self) -> None:
        """Stamp ``out_payload`` with the next seq and buffer it."""
        self.out_payload.eto_payload.seq = self.buf_outseq
        frame_encode(self.send_buffer, self.out_payload.SerializeToString())
        self.buf_outseq += 1

    def flush(self) -> None:
        while self.send_buffer:
            sent = self.socket.send(self.send_buffer)
            del self.send_buffer[:sent]

    def read(self) -> None:
        """Read once and split what came into payloads. A frame longer than
        ``MAX_FRAME_SIZE`` (a broken or hostile peer) raises DecodeError and disconnects:
        the read buffer never holds more than one frame and one read."""
        self.read_buffer += self.socket.recv()
        payloads, rest = frame_decode_all(self.read_buffer)
        self.buffered_incoming_payloads.extend(payloads)
        self.read_buffer = bytearray(rest)
        if len(rest) > MAX_FRAME_SIZE + 16:
            self.disconnect()
            raise DecodeError(
                f"a frame of more than {MAX_FRAME_SIZE} bytes: the stream is broken; disconnected"
            )

    def next_frame(self) -> Frame | None:
        """The next payload in sequence, or None when none is ready."""
        while not self._ready and self.buffered_incoming_payloads:
            data = self.buffered_incoming_payloads.pop(0)
            try:
                payload = seto.Payload.FromString(data)
            except Exception:  # noqa: BLE001 - a bad payload is counted, logged and skipped
                self.parse_errors += 1
                log.warning(
                    "payload does not parse: skipped", bytes=len(data), total=self.parse_errors
                )
                continue
            self._take(Frame(data, payload))
        if self._ready:
            frame = self._ready.popleft()
            self._note_account(frame.protobuf)
            return frame
        return None

    def _take(self, frame: Frame) -> None:
        payload = frame.protobuf
        ep = payload.eto_payload
        kind = ep.type if payload.type == seto.PAYLOAD_ETO else 0
        if kind == eto.PAYLOAD_LOGIN_RESPONSE:
            self.session = ep.login_response.session
            self.buf_outseq = ep.login_response.reset
            self.send_buffer = bytearray()
        elif kind == eto.PAYLOAD_HEARTBEAT:
            self.out_payload = _heartbeat(0)
            self.send()
            self.flush()  # at once: a buffered answer lets the exchange time the session out
        sequencer = self._sequencer
        now = time.monotonic()
        if kind == eto.PAYLOAD_GAPFILL:
            sequencer.gapfill(ep.seq, now)
        else:
            sequencer.accept(ep.seq, frame, now, len(frame.bytes))
        self._ready.extend(sequencer.released())
        self.inseq = sequencer.expected
        if sequencer.gap_open:
            due = sequencer.replay_from(now)
            if due is not None:
                log.warning("incoming seq gap: asking for a replay", from_seq=due)
                self.out_payload = _replay(0, due)
                self.send()
                self.flush()

    def _note_account(self, payload: seto.Payload) -> None:
        seq = _account_seq(payload)
        if seq and (self.account_sequence is None or seq > self.account_sequence):
            self.account_sequence = seq


def _account_seq(payload: seto.Payload) -> int:
    """The payload's ``account_sequence_64`` (0 when its body has none)."""
    if payload.type == seto.PAYLOAD_ETO:
        return 0
    body = getattr(payload, payload_name(payload)[5:])
    if _ACCOUNT_SEQ not in body.DESCRIPTOR.fields_by_name:
        return 0
    return int(getattr(body, _ACCOUNT_SEQ))


# -- the client -----------------------------------------------------------------------------


class _Signal:
    """Handlers of one name, each once, in the order added. Calls read a snapshot, so a
    handler may add or remove handlers while it runs."""

    __slots__ = ("_handlers", "handlers")

    def __init__(self) -> None:
        self._handlers: OrderedDict[Callable[..., Any], None] = OrderedDict()
        self.handlers: tuple[Callable[..., Any], ...] = ()

    def add(self, handler: Callable[..., Any]) -> None:
        self._handlers[handler] = None
        self.handlers = tuple(self._handlers)

    def remove(self, handler: Callable[..., Any]) -> None:
        """Remove ``handler``; KeyError if it was not added (as the SDK's Signal)."""
        del self._handlers[handler]
        self.handlers = tuple(self._handlers)

    def __call__(self, **kwargs: Any) -> None:
        for handler in self.handlers:
            handler(**kwargs)

    def __len__(self) -> int:
        return len(self.handlers)


def _kinds() -> dict[int, tuple[str, str, bool, bool]]:
    """``{seto type: (dispatch name, body field, has account_sequence_64, is an order
    answer)}`` for every non-ETO payload type, worked out once."""
    out: dict[int, tuple[str, str, bool, bool]] = {}
    for field in seto.Payload.DESCRIPTOR.fields:
        if field.message_type is None or field.name == "eto_payload":
            continue
        kind = seto.PayloadType.Value("PAYLOAD_" + field.name.upper())
        has_seq = _ACCOUNT_SEQ in field.message_type.fields_by_name
        out[kind] = ("seto." + field.name, field.name, has_seq, field.name in _ORDER_ANSWERS)
    return out


_KINDS = _kinds()


class StreamingAPIClient:
    """The SDK's client: ``login``, ``send``, ``flush``, ``read``, handlers by name.

    Plain mode is the SDK's: the caller reads and flushes. ``start()`` switches to supervised
    mode (see the module docstring); then ``send`` writes at once, ``flush`` has nothing to
    do and frames are read by the link, not by ``read()``.
    """

    CALLBACKS = list(_CALLBACKS)

    def __init__(self, session: Session) -> None:
        self.session = session
        self.callbacks: dict[str, _Signal] = {name: _Signal() for name in self.CALLBACKS}
        self.global_callback = _Signal()
        self.last_login: seto.Payload | None = None
        self._link: Link | None = None
        self._system: ActorSystem | None = None
        self._own_system = False
        self._actor: Address | None = None
        self._adapter: SmarketsAdapter | None = None
        self._lock = threading.Lock()
        self._references = itertools.count(time.time_ns() // 1000)
        self._markets: set[int] = set()
        self._pending = _Pending()
        self._logged_out = threading.Event()
        self.handler_errors = 0
        self.resumes_refused = 0

    def __repr__(self) -> str:
        mode = "supervised" if self._link is not None else "plain"
        return f"StreamingAPIClient({self.session.settings!r}, {mode})"

    # -- the SDK's calls ------------------------------------------------------------------

    def login(self, receive: bool = True) -> None:
        """Connect and send the LOGIN; with ``receive``, read the answer and check it."""
        self._plain("login")
        self.session.connect()
        if receive:
            self.read()
            self.check_login()
            self.flush()

    def check_login(self) -> bool:
        """True after a LOGIN_RESPONSE; LoginTimeout when none was read, LoginError(reason)
        when the LOGIN was answered with a LOGOUT."""
        if self.last_login is None:
            raise LoginTimeout("no login response was read after the login")
        ep = self.last_login.eto_payload
        if ep.type == eto.PAYLOAD_LOGOUT:
            raise LoginError(ep.logout.reason)
        return True

    def logout(self, receive: bool = True) -> None:
        """Send a LOGOUT, read the answer if ``receive``, and disconnect."""
        self._plain("logout")
        self.last_login = None
        self.session.logout()
        if receive:
            with contextlib.suppress(SocketDisconnected, ConnectionError):
                self.read()
                self.flush()
        self.session.disconnect()

    @property
    def raw_socket(self) -> socket.socket | None:
        return self.session.raw_socket

    @property
    def output_buffer_size(self) -> int:
        return self.session.output_buffer_size

    def read(self, read_mode: int = READ_MODE_BUFFER_AND_DISPATCH, limit: int = sys.maxsize) -> int:
        """Read once (blocking for any bytes) and dispatch up to ``limit`` frames; returns how
        many were dispatched."""
        self._plain("read")
        if read_mode & READ_MODE_BUFFER_FROM_SOCKET:
            self.session.read()
        processed = 0
        if read_mode & READ_MODE_DISPATCH_FROM_BUFFER:
            while processed < limit:
                frame = self.session.next_frame()
                if frame is None:
                    break
                self._dispatch(frame)
                processed += 1
        return processed

    def flush(self) -> None:
        """Write what ``send`` buffered (nothing to do in supervised mode)."""
        if self._link is None:
            self.session.flush()

    def send(self, message: Message) -> None:
        """Send a seto message (``seto.OrderCreate``, ``seto.MarketSubscribe``, ...)."""
        if self._link is not None:
            self._send_supervised(message)
            return
        self.session.out_payload = wrap(message)
        self.session.send()

    def ping(self) -> None:
        """Send a PING (answered with a PONG)."""
        if self._link is not None:
            self._link.send(_ping(0))
            return
        self.session.out_payload = _ping(0)
        self.session.send()

    def add_handler(self, name: str, callback: Callable[..., Any]) -> None:
        """Call ``callback(message=payload)`` for each payload named ``name``."""
        if not callable(callback):
            raise ValueError("callback must be a callable")
        if name not in self.callbacks:
            raise InvalidCallbackError(name)
        self.callbacks[name].add(callback)

    def add_global_handler(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(name=..., message=frame)`` for every payload."""
        if not callable(callback):
            raise ValueError("callback must be a callable")
        self.global_callback.add(callback)

    def del_handler(self, name: str, callback: Callable[..., Any]) -> None:
        if name not in self.callbacks:
            raise InvalidCallbackError(name)
        self.callbacks[name].remove(callback)

    def del_global_handler(self, callback: Callable[..., Any]) -> None:
        self.global_callback.remove(callback)

    def _dispatch(self, frame: Frame, name: str | None = None) -> None:
        """Call the handlers of ``frame`` (its dispatch ``name``, when the caller knows it)."""
        message = frame.protobuf
        if name is None:
            name = payload_name(message)
        if message.type == seto.PAYLOAD_ETO and message.eto_payload.type in (
            eto.PAYLOAD_LOGIN_RESPONSE,
            eto.PAYLOAD_LOGOUT,
        ):
            self.last_login = message
            if message.eto_payload.type == eto.PAYLOAD_LOGOUT:
                if message.eto_payload.logout.reason == eto.LOGOUT_UNKNOWN_SESSION:
                    self._resume_refused()
                if self._link is None:
                    self.session.disconnect()
        signal = self.callbacks.get(name)
        if signal is not None:
            for handler in signal.handlers:
                handler(message=message)
        for handler in self.global_callback.handlers:
            handler(name=name, message=frame)

    def _resume_refused(self) -> None:
        """The exchange refused to resume after our account sequence (its journal moved on,
        or it lost its state): the next login starts afresh, and whatever was sent to the
        account meanwhile is unknown. Counted and logged, never silent."""
        if self.session.account_sequence is None:
            return
        self.resumes_refused += 1
        log.warning(
            "the exchange refused to resume the account's messages: logging in afresh; "
            "account messages sent meanwhile may be missing",
            after=self.session.account_sequence,
            refused=self.resumes_refused,
        )
        self.session.account_sequence = None
        if self._adapter is not None:
            self._adapter.resume_from = None

    def _plain(self, what: str) -> None:
        if self._link is not None:
            raise RuntimeError(
                f"{what}() is for plain mode; this client is supervised (start() was called): "
                "the link reads, answers heartbeats and logs in by itself"
            )

    # -- supervised mode (actorwire) -------------------------------------------------------

    def start(
        self,
        system: ActorSystem | None = None,
        *,
        heartbeat_interval: float = 5.0,
        heartbeat_deadline: float = 15.0,
        backoff: Backoff | None = None,
        state_listener: Callable[[LinkState, str], Any] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Hand the session to a supervised Link and return once it is logged in.

        A LOGIN refused by the exchange raises LoginError; no answer within ``timeout``
        raises LoginTimeout (the link keeps trying until ``stop()``).
        """
        if self._link is not None:
            raise RuntimeError("start() was called already")
        if self.session.connected:
            raise RuntimeError("start() takes a session that is not connected yet")
        s = self.session.settings
        own = system is None
        system = system or ActorSystem(name="smarkets")
        tag = f"{id(self):x}"
        try:
            self._adapter = SmarketsAdapter(
                s.host,
                s.port,
                username=s.username,
                password=s.password,
                token=s.token,
                ssl_context=s.ssl_context(),
                resume_from=self.session.account_sequence,
            )
            # Bounded: a handler that falls behind holds the link back (the transport stops
            # reading) instead of piling frames up in memory.
            actor = system.spawn(
                _ClientActor,
                self,
                name=f"smarkets-client-{tag}",
                mailbox=Mailbox(capacity=CONSUMER_CAPACITY, put_timeout=None),
            )
            listeners = [self._on_state] + ([state_listener] if state_listener else [])

            def listen(state: LinkState, why: str) -> None:
                for fn in listeners:
                    fn(state, why)

            link = Link(
                system,
                self._adapter,
                actor,
                name=f"smarkets-{tag}",
                heartbeat_interval=heartbeat_interval,
                heartbeat_deadline=heartbeat_deadline,
                backoff=backoff,
                state_listener=listen,
            )
        except BaseException:
            if own:
                system.shutdown(timeout=5)
            raise
        self._system, self._own_system, self._actor, self._link = system, own, actor, link
        self._logged_out.clear()
        link.start()
        deadline = time.monotonic() + timeout
        while link.state is not LinkState.CONNECTED:
            if link.state is LinkState.FAILED:
                last = self.last_login
                reason = last.eto_payload.logout.reason if last is not None else 0
                history = link.history()
                why = history[-1][1] if history else "the link failed"
                self.stop()
                if reason:
                    raise LoginError(reason)
                raise ConnectionError(f"the session could not start: {why}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoginTimeout(f"not logged in within {timeout}s")
            with contextlib.suppress(TimeoutError):
                link.wait_for(LinkState.CONNECTED, timeout=min(left, 0.1))

    def stop(self, timeout: float = 5.0) -> None:
        """Log out (waiting up to ``timeout`` for the exchange's confirmation), close the
        link and stop the client's actors; idempotent."""
        link, self._link = self._link, None
        if link is not None:
            if link.state is LinkState.CONNECTED:
                link.expect_close()  # the exchange ends the connection after the logout
                with contextlib.suppress(Exception):
                    link.send(_logout(0))
                    self._logged_out.wait(min(timeout, LOGOUT_WAIT))
            link.close()
        system, actor = self._system, self._actor
        self._system = self._actor = None
        if system is not None:
            if self._own_system:
                system.shutdown(timeout=timeout)
            elif actor is not None:
                actor.stop(timeout=timeout)

    alogin = twin(login)
    alogout = twin(logout)
    aread = twin(read)
    aflush = twin(flush)
    astart = twin(start)
    astop = twin(stop)

    @property
    def state(self) -> LinkState | None:
        """The link's state in supervised mode (None in plain mode)."""
        return self._link.state if self._link is not None else None

    def _on_state(self, state: LinkState, why: str) -> None:
        if state is LinkState.CONNECTED:
            # Each connection is a generation; orders not answered yet go again on it.
            orders = self._pending.next_generation()
            link = self._link
            if orders and link is not None:
                log.info("sending unanswered orders again", orders=len(orders))
                for order in orders:
                    link.send(wrap(order))

    def _send_supervised(self, message: Message) -> None:
        link = self._link
        assert link is not None
        if isinstance(message, seto.MarketSubscribe):
            self._markets.add(message.market_id)
            link.subscribe(market_stream(message.market_id))
            return
        if isinstance(message, seto.MarketUnsubscribe):
            self._markets.discard(message.market_id)
            link.unsubscribe(market_stream(message.market_id))
            return
        if isinstance(message, seto.OrderCreate):
            order = seto.OrderCreate()
            order.CopyFrom(message)
            if not order.reference:
                order.reference = next(self._references)
            # Kept until answered, then sent from here (never behind a slow handler); if the
            # link is down it goes when it is back.
            self._pending.add(order)
            if link.state is LinkState.CONNECTED:
                link.send(wrap(order))
            return
        link.send(wrap(message))

    @property
    def orders_dropped(self) -> int:
        """Orders the exchange dropped without an answer (throttled): not sent again."""
        return self._pending.dropped


CONSUMER_CAPACITY = 10_000
"""Frames waiting for the handlers before the link stops reading."""
PENDING_LIMIT = 10_000
"""Orders sent and not yet answered that the client keeps to send again after a resume."""
SEEN_REFERENCES = 100_000
"""References of answered orders remembered, so an answer sent again is dispatched once."""
LOGOUT_WAIT = 2.0
"""Seconds ``stop()`` waits for the exchange to confirm the LOGOUT."""


class _Pending:
    """Orders sent and not yet answered, in the order sent; thread-safe.

    Each is stamped with the connection (generation) it last went out on and its place in
    that connection's order. The exchange answers in order, so when an order is answered
    every order sent before it on the same connection and still unanswered was dropped by
    the exchange (throttled): it is forgotten, not sent again later, and counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orders: OrderedDict[int, tuple[seto.OrderCreate, int, int]] = OrderedDict()
        self._generation = 0
        self._sent = itertools.count()
        self.dropped = 0

    def add(self, order: seto.OrderCreate) -> None:
        with self._lock:
            if len(self._orders) >= PENDING_LIMIT and order.reference not in self._orders:
                raise RuntimeError(
                    f"{PENDING_LIMIT} orders are waiting for an answer: not sending another"
                )
            self._orders[order.reference] = (order, self._generation, next(self._sent))

    def answered(self, reference: int) -> None:
        with self._lock:
            entry = self._orders.pop(reference, None)
            if entry is None:
                return
            _, generation, place = entry
            lost = [ref for ref, (_, g, p) in self._orders.items() if g == generation and p < place]
            for ref in lost:
                del self._orders[ref]
        if lost:
            self.dropped += len(lost)
            log.warning(
                "orders dropped by the exchange without an answer (throttled): not sent again",
                references=lost,
            )

    def next_generation(self) -> list[seto.OrderCreate]:
        """A new connection: every pending order, stamped as sent on it now."""
        with self._lock:
            self._generation += 1
            orders = []
            for ref, (order, _, _) in list(self._orders.items()):
                self._orders[ref] = (order, self._generation, next(self._sent))
                orders.append(order)
            return orders

    def __len__(self) -> int:
        return len(self._orders)


class _ClientActor(Actor):
    """The link's consumer: dispatches each payload to the handlers once (an account message
    seen before a resume is dropped) and tells the client which orders were answered."""

    def __init__(self, client: StreamingAPIClient) -> None:
        super().__init__()
        self.client = client
        self.last_account = client.session.account_sequence or 0
        self.answered: OrderedDict[int, None] = OrderedDict()
        self.probes: set[int] = set()
        self.duplicates = 0

    def on_batch(self, messages: list[Any]) -> None:
        kinds = _KINDS
        client = self.client
        for message in messages:
            if type(message) is not Frame:
                continue
            known = kinds.get(message.protobuf.type)
            if known is not None and not (known[2] or known[3]):
                # Market data and the like: no account sequence, no order to settle.
                try:
                    client._dispatch(message, known[0])
                except Exception as exc:  # noqa: BLE001 - a handler must not end the feed
                    client.handler_errors += 1
                    self.log.error("handler raised", error=repr(exc), errors=client.handler_errors)
                continue
            self._frame(message)

    def _frame(self, frame: Frame) -> None:
        payload = frame.protobuf
        client = self.client
        name: str | None = None
        known = _KINDS.get(payload.type)
        if known is None:
            ep = payload.eto_payload
            if ep.type == eto.PAYLOAD_LOGOUT:
                client._logged_out.set()
                if ep.logout.reason == eto.LOGOUT_UNKNOWN_SESSION:
                    self.last_account = 0  # a refused resume: the account starts afresh
            elif ep.type == eto.PAYLOAD_LOGIN_RESPONSE:
                adapter = client._adapter
                if adapter is not None and adapter.resume_from is None:
                    self._probe()
        else:
            name, field, has_seq, is_answer = known
            if has_seq or is_answer:
                body = getattr(payload, field)
                reference = body.reference if is_answer or field == "order_cancel_rejected" else 0
                if is_answer and reference:
                    client._pending.answered(reference)
                seq = body.account_sequence_64 if has_seq else 0
                if seq:
                    if seq <= self.last_account:
                        self.duplicates += 1
                        return
                    self.last_account = seq
                    client.session.account_sequence = seq
                    adapter = client._adapter
                    if adapter is not None:
                        adapter.resume_from = seq
                if reference in self.probes:
                    self.probes.discard(reference)
                    return  # the position probe's answer: not the handlers' business
                if is_answer and reference:
                    if field == "order_invalid" and reference in self.answered:
                        self.duplicates += 1
                        return
                    self.answered[reference] = None
                    if len(self.answered) > SEEN_REFERENCES:
                        self.answered.popitem(last=False)
        try:
            client._dispatch(frame, name)
        except Exception as exc:  # noqa: BLE001 - a handler must not end the feed
            client.handler_errors += 1
            self.log.error("handler raised", error=repr(exc), errors=client.handler_errors)

    def _probe(self) -> None:
        """Learn the account's position on a fresh login: a cancel of order 0 is rejected
        NOT_FOUND with the account's next sequence, so a drop before any other account
        message still resumes from here. Its answer is not dispatched."""
        client = self.client
        link = client._link
        if link is None:
            return
        reference = next(client._references)
        self.probes.add(reference)
        link.send(wrap(seto.OrderCancel(order_id=0, reference=reference)))
