"""The link to a kernel: one actor per channel, their ZMQ sockets on the system's I/O loop.

shell and control are DEALER sockets, iopub a SUB subscribed to everything, stdin a DEALER
(with the shell's identity, so the kernel routes input requests to it) and the heartbeat a
REQ. Every socket is created, used and closed on the I/O loop only; an actor's commands reach
it with ``call_soon``. Each read drains what the socket holds, decodes and verifies it on
the loop, and hands the batch to the client's lifecycle actor with one tell. A message that
fails verification (bad or replayed signature, malformed frames) is counted and logged with
its channel, and the channel carries on. The heartbeat channel only feeds the sans-I/O rule
in ``heartbeat`` its answers and the time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import zmq
import zmq.asyncio

from ...actors import Actor, ActorSystem, Address
from .heartbeat import HeartbeatAction, HeartbeatMode, KernelHeartbeat, check_heartbeat
from .replies import msg_type
from .wiring import ChannelStats, StdinHandler, Wiring

__all__ = [
    "ArmHeartbeat",
    "ChannelMessages",
    "ChannelStats",
    "ConnectChannel",
    "DealerChannel",
    "Disconnect",
    "HeartbeatChannel",
    "HeartbeatLost",
    "HeartbeatUp",
    "KernelAnswered",
    "Outbound",
    "StdinChannel",
    "StdinHandler",
    "SubChannel",
    "Wiring",
    "spawn_channels",
]

READ_BATCH = 256
"""Most messages taken from one socket per read before they are handed on."""

# -- messages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectChannel:
    """(Re)connect the channel's socket to ``url``; replies tagged ``gen`` from now on."""

    gen: int
    url: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the channel's socket (the kernel is gone); sends are refused until ConnectChannel."""


@dataclass(frozen=True, slots=True)
class Outbound:
    """Messages (dicts from ``Session.msg``) to sign and send on connection ``gen``."""

    gen: int
    msgs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ChannelMessages:
    """One read's verified messages from ``channel`` on connection ``gen``."""

    channel: str
    gen: int
    msgs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class HeartbeatUp:
    """The kernel answered its first heartbeat on connection ``gen``."""

    gen: int


@dataclass(frozen=True, slots=True)
class HeartbeatLost:
    """No heartbeat answer within the deadline on connection ``gen``."""

    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class _StdinRequests:
    gen: int
    msgs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class KernelAnswered:
    """The kernel on connection ``gen`` answered a request or published on iopub: it is
    alive, so the heartbeat deadline holds from now on even before a heartbeat answer."""

    gen: int


@dataclass(frozen=True, slots=True)
class ArmHeartbeat:
    """Start pinging ``url`` on a fresh socket, in ``mode`` (see ``heartbeat``)."""

    gen: int
    url: str
    mode: HeartbeatMode


@dataclass(frozen=True, slots=True)
class _Tick:
    gen: int


@dataclass(frozen=True, slots=True)
class _Pong:
    gen: int


def _on_loop(actor: Actor, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the I/O loop and wait for it (from an actor stopping); skipped once
    the loop is gone, since its sockets went with it."""
    io = actor.system.io
    if io.loop.is_closed():
        return

    async def call() -> None:
        fn()

    with contextlib.suppress(Exception):
        io.run(call(), timeout=5.0)


# -- message channels ------------------------------------------------------------------------


class _SocketChannel(Actor):
    """A channel actor: commands in its mailbox, its socket and reader on the I/O loop."""

    socket_type: ClassVar[int] = zmq.DEALER
    channel: ClassVar[str] = "?"

    def __init__(self, wiring: Wiring) -> None:
        super().__init__()
        self.wiring = wiring
        self.gen = 0
        self.url = ""
        # Loop-side state: touched only on the I/O loop thread.
        self._sock: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._loop_gen = 0

    # -- actor side ---------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Outbound):
            self._send(message.gen, message.msgs)
        elif isinstance(message, ConnectChannel):
            if message.url == self.url and self.gen != -1:
                # The same kernel again (it answers heartbeats after a stall): keep the
                # socket. A new DEALER with the same identity could be refused by the
                # kernel's ROUTER while it still holds the old connection.
                self.gen = message.gen
                self.system.io.call_soon(self._regen, message.gen)
            else:
                self.gen, self.url = message.gen, message.url
                self.system.io.call_soon(self._open, message.gen, message.url)
        elif isinstance(message, Disconnect):
            self.gen = -1
            self.url = ""
            self.system.io.call_soon(self._close)
        else:
            super().on_receive(message)

    def on_batch(self, messages: list[Any]) -> None:
        # Consecutive sends for one connection become one hop to the loop.
        run: list[dict[str, Any]] = []
        gen = None
        for message in messages:
            if isinstance(message, Outbound) and (gen is None or message.gen == gen):
                gen = message.gen
                run.extend(message.msgs)
                continue
            if run and gen is not None:
                self._send(gen, run)
                run, gen = [], None
            if isinstance(message, Outbound):
                gen = message.gen
                run.extend(message.msgs)
            else:
                self.on_receive(message)
        if run and gen is not None:
            self._send(gen, run)

    def _send(self, gen: int, msgs: list[dict[str, Any]]) -> None:
        if gen != self.gen:
            self.wiring.stats.unsent += len(msgs)
            self.log.warning(
                "send on a closed or replaced connection: not sent",
                channel=self.channel,
                msg_types=[msg_type(m) for m in msgs][:5],
            )
            return
        serialize = self.wiring.session.serialize
        frames = [serialize(m) for m in msgs]
        self.system.io.call_soon(self._write, gen, frames)

    def on_stop(self) -> None:
        _on_loop(self, self._close)

    def on_failure(self, *_exc: Any) -> None:
        _on_loop(self, self._close)

    # -- loop side ----------------------------------------------------------------------

    def _configure(self, sock: zmq.asyncio.Socket) -> None:
        """Socket options before connect (identity, subscription)."""

    def _open(self, gen: int, url: str) -> None:
        self._close()
        sock = self.wiring.context.socket(self.socket_type)
        sock.linger = 0
        self._configure(sock)
        sock.connect(url)
        self._sock = sock
        self._loop_gen = gen
        self._reader = asyncio.ensure_future(self._read(sock, url))

    def _regen(self, gen: int) -> None:
        if self._sock is not None:
            self._loop_gen = gen

    def _close(self) -> None:
        reader, sock = self._reader, self._sock
        self._reader = self._sock = None
        self._loop_gen = -1
        if reader is not None:
            reader.cancel()
        if sock is not None:
            sock.close(linger=0)

    def _write(self, gen: int, batch: list[list[bytes]]) -> None:
        sock = self._sock
        if sock is None or gen != self._loop_gen:
            self.wiring.stats.unsent += len(batch)
            return
        sent = self.wiring.stats.sent
        for frames in batch:
            try:
                fut = cast("asyncio.Future[Any]", sock.send_multipart(frames))
            except zmq.ZMQError as exc:
                self.wiring.stats.unsent += 1
                self.log.warning("send failed", channel=self.channel, error=repr(exc))
                continue
            fut.add_done_callback(self._sent)
        sent[self.channel] = sent.get(self.channel, 0) + len(batch)

    def _sent(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self.log.warning("send failed", channel=self.channel, error=repr(fut.exception()))

    async def _read(self, sock: zmq.asyncio.Socket, url: str) -> None:
        decode = self.wiring.decode
        channel = self.channel
        while True:
            try:
                batch = [await sock.recv_multipart()]
                while len(batch) < READ_BATCH and cast(int, sock.get(zmq.EVENTS)) & zmq.POLLIN:
                    batch.append(await sock.recv_multipart())
            except zmq.ZMQError as exc:
                if self._sock is sock:
                    self.log.warning("channel read failed", channel=channel, error=repr(exc))
                return
            msgs = decode(channel, url, batch)
            if msgs:
                self._deliver(self._loop_gen, msgs)

    def _deliver(self, gen: int, msgs: list[dict[str, Any]]) -> None:
        lifecycle = self.wiring.lifecycle
        if lifecycle is not None:
            lifecycle.tell(ChannelMessages(self.channel, gen, msgs))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.channel} gen={self.gen}>"


class DealerChannel(_SocketChannel):
    """shell or control: requests out, replies in (identity = the session id)."""

    socket_type = zmq.DEALER

    def __init__(self, wiring: Wiring, channel: str) -> None:
        super().__init__(wiring)
        self.channel = channel  # type: ignore[misc]

    def _configure(self, sock: zmq.asyncio.Socket) -> None:
        sock.setsockopt(zmq.IDENTITY, self.wiring.identity)


class SubChannel(_SocketChannel):
    """iopub: every broadcast of the kernel (subscribed to all topics)."""

    socket_type = zmq.SUB
    channel = "iopub"

    def _configure(self, sock: zmq.asyncio.Socket) -> None:
        sock.setsockopt(zmq.SUBSCRIBE, b"")


class StdinChannel(_SocketChannel):
    """stdin: answers the kernel's input requests with the client's ``on_stdin`` handler.

    The handler runs in this actor, so a slow (human) answer stalls no other channel.
    Without a handler the request is answered with an empty string and a warning.
    """

    socket_type = zmq.DEALER
    channel = "stdin"

    def _configure(self, sock: zmq.asyncio.Socket) -> None:
        sock.setsockopt(zmq.IDENTITY, self.wiring.identity)

    _watch: asyncio.Future[None] | None = None  # waits for the handshake (loop side)

    def _open(self, gen: int, url: str) -> None:
        self.wiring.stdin_connected.clear()
        super()._open(gen, url)
        sock = self._sock
        assert sock is not None
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self._watch = asyncio.ensure_future(self._handshake(sock, monitor))

    async def _handshake(self, sock: zmq.asyncio.Socket, monitor: Any) -> None:
        try:
            await monitor.recv_multipart()  # the one event asked for: handshake done
            if self._sock is sock:
                self.wiring.stdin_connected.set()
        except (zmq.ZMQError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(zmq.ZMQError):
                sock.disable_monitor()
            monitor.close(linger=0)

    def _close(self) -> None:
        watch, self._watch = self._watch, None
        self.wiring.stdin_connected.clear()
        super()._close()
        if watch is not None:
            watch.cancel()

    def _deliver(self, gen: int, msgs: list[dict[str, Any]]) -> None:
        self.address.tell(_StdinRequests(gen, msgs))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _StdinRequests):
            for msg in message.msgs:
                self._answer(message.gen, msg)
            return None
        return super().on_receive(message)

    def _answer(self, gen: int, request: dict[str, Any]) -> None:
        if msg_type(request) != "input_request":
            self.log.warning("unexpected stdin message", msg_type=msg_type(request))
            return
        content = request.get("content", {})
        prompt = str(content.get("prompt", ""))
        password = bool(content.get("password", False))
        handler = self.wiring.stdin_handler
        stats = self.wiring.stats
        value = ""
        if handler is None:
            stats.stdin_unanswered += 1
            self.log.warning(
                "input requested by the kernel but no on_stdin handler is set; "
                "answering with an empty string",
                prompt=prompt if not password else "[password]",
            )
        else:
            try:
                answer = handler(prompt, password)
                value = answer if isinstance(answer, str) else str(answer)
                stats.stdin_answered += 1
            except Exception as exc:  # noqa: BLE001 - a user handler must not end the channel
                stats.stdin_unanswered += 1
                self.log.error(
                    "on_stdin handler raised; answering with an empty string", error=repr(exc)
                )
        reply = self.wiring.new_msg("input_reply", {"value": value}, parent=request)
        self._send(gen, [reply])


# -- heartbeat -----------------------------------------------------------------------------------


class HeartbeatChannel(Actor):
    """Pings the kernel's heartbeat (a REQ socket) and reports the kernel lost past the deadline.

    KernelHeartbeat decides when to ping and when the kernel is dead; this actor only feeds
    it the answers and the time. A REQ socket whose ping went unanswered cannot send again,
    so the next ping goes out on a fresh socket.
    """

    def __init__(self, wiring: Wiring, interval: float, deadline: float) -> None:
        super().__init__()
        check_heartbeat(interval, deadline)  # in the caller's thread of control
        self.wiring = wiring
        self.interval = interval
        self.deadline = deadline
        self.rule: KernelHeartbeat | None = None
        self.gen = -1
        self.url = ""
        # Loop-side state.
        self._sock: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting = False
        self._loop_gen = -1

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Pong):
            self._pong(message.gen)
        elif isinstance(message, _Tick):
            if message.gen == self.gen and self.rule is not None:
                self._tick()
        elif isinstance(message, ArmHeartbeat):
            self._arm(message)
        elif isinstance(message, KernelAnswered):
            if message.gen == self.gen and self.rule is not None:
                self.rule.on_answered(self.wiring.clock())
        elif isinstance(message, Disconnect):
            self.gen = -1
            self.rule = None
            self.system.io.call_soon(self._close)
        else:
            super().on_receive(message)

    def _arm(self, message: ArmHeartbeat) -> None:
        now = self.wiring.clock()
        self.gen, self.url = message.gen, message.url
        self.rule = KernelHeartbeat(self.interval, self.deadline, now, message.mode)
        self.system.io.call_soon(self._reopen, message.gen, message.url)
        self._ping(now)
        self._schedule(self.rule.next_check(now))

    def _pong(self, gen: int) -> None:
        rule = self.rule
        if gen != self.gen or rule is None:
            return
        if rule.on_pong(self.wiring.clock()):
            lifecycle = self.wiring.lifecycle
            if lifecycle is not None:
                lifecycle.tell(HeartbeatUp(gen))

    def _tick(self) -> None:
        rule = self.rule
        assert rule is not None
        now = self.wiring.clock()
        action = rule.poll(now)
        if action is HeartbeatAction.DEAD:
            self.rule = None
            lifecycle = self.wiring.lifecycle
            if lifecycle is not None:
                reason = f"no heartbeat answer for {rule.deadline:g}s (heartbeat deadline)"
                lifecycle.tell(HeartbeatLost(self.gen, reason))
            return
        if action is HeartbeatAction.SEND_PING:
            self._ping(now)
        self._schedule(rule.next_check(now))

    def _ping(self, now: float) -> None:
        assert self.rule is not None
        self.wiring.stats.heartbeat_pings += 1
        self.rule.on_ping_sent(now)
        self.system.io.call_soon(self._send_ping, self.gen, self.url)

    def _schedule(self, delay: float) -> None:
        self.system.send_after(max(delay, 0.005), self.address, _Tick(self.gen))

    def on_stop(self) -> None:
        _on_loop(self, self._close)

    def on_failure(self, *_exc: Any) -> None:
        _on_loop(self, self._close)

    # -- loop side ----------------------------------------------------------------------

    def _reopen(self, gen: int, url: str) -> None:
        self._close()
        sock = self.wiring.context.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(url)
        self._sock = sock
        self._loop_gen = gen
        self._waiting = False
        self._reader = asyncio.ensure_future(self._read(sock, gen))

    def _send_ping(self, gen: int, url: str) -> None:
        if gen != self._loop_gen:
            return
        if self._sock is None or self._waiting:
            if self._waiting:
                self.wiring.stats.heartbeat_resets += 1
            self._reopen(gen, url)
        sock = self._sock
        assert sock is not None
        try:
            sock.send(b"ping")
        except zmq.ZMQError as exc:
            self.log.warning("heartbeat ping failed", error=repr(exc))
            return
        self._waiting = True

    async def _read(self, sock: zmq.asyncio.Socket, gen: int) -> None:
        while True:
            try:
                await sock.recv_multipart()
            except zmq.ZMQError:
                return
            if self._sock is sock:
                self._waiting = False
            self.address.tell(_Pong(gen))

    def _close(self) -> None:
        reader, sock = self._reader, self._sock
        self._reader = self._sock = None
        self._waiting = False
        self._loop_gen = -1
        if reader is not None:
            reader.cancel()
        if sock is not None:
            sock.close(linger=0)


def spawn_channels(
    system: ActorSystem,
    wiring: Wiring,
    prefix: str,
    heartbeat_interval: float,
    heartbeat_deadline: float,
    channels: dict[str, Address],
) -> None:
    """Spawn the five channel actors, named ``<prefix>.<channel>``, into ``channels`` (by
    channel name; the ones spawned so far if one fails to start)."""
    for channel in ("shell", "control"):
        channels[channel] = system.spawn(DealerChannel, wiring, channel, name=f"{prefix}.{channel}")
    channels["iopub"] = system.spawn(SubChannel, wiring, name=f"{prefix}.iopub")
    channels["stdin"] = system.spawn(StdinChannel, wiring, name=f"{prefix}.stdin")
    channels["hb"] = system.spawn(
        HeartbeatChannel, wiring, heartbeat_interval, heartbeat_deadline, name=f"{prefix}.hb"
    )
