"""KernelClient: talk to a Jupyter kernel through actors, blocking or awaitable.

The client is a thin facade over actors: one per channel (shell, control, iopub, stdin,
heartbeat; see ``transport``), a session actor that matches replies and iopub messages to
requests by ``parent_header.msg_id`` and runs the state table (``state``), and a feed actor
that runs ``on_iopub`` callbacks so a slow callback stalls nothing. Every blocking method
has an awaitable twin named with an ``a`` in front: ``akernel_info``, ``aexecute``,
``acomplete``, ``ainspect``, ``ais_complete``, ``ainterrupt``, ``ashutdown``, ``aclose``
and ``await_for_ready``.

A client made with ``connection_file=`` or ``connection_info=`` connects to a running kernel.
``start_kernel`` (in ``kernel``) launches one and returns a client that owns its process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import structlog
import zmq.asyncio

from ...actors import Actor, ActorSystem, Address, Terminated
from ...actors.callbacks import plain_callback, user_callback
from ...actors.clock import Clock, monotonic
from ...actors.link.heartbeat import HeartbeatPolicy
from ...actors.statecell import StateCell
from .connection import ConnectionInfo
from .replies import Completed, ExecutionResult, ReplyMatcher, msg_type
from .session import Session
from .state import ACCEPTING, KernelDeadError, KernelEvent, KernelState, next_state
from .transport import (
    ArmHeartbeat,
    ChannelMessages,
    ConnectChannel,
    DealerChannel,
    Disconnect,
    HeartbeatChannel,
    HeartbeatLost,
    HeartbeatUp,
    KernelAnswered,
    Outbound,
    StdinChannel,
    StdinHandler,
    SubChannel,
    Wiring,
)

__all__ = [
    "IopubCallback",
    "KernelClient",
    "KernelDeadError",
    "KernelExited",
    "KernelLaunched",
    "KernelState",
    "StateListener",
]

log = structlog.get_logger("actorwire.jupyter")

StateListener = Callable[[KernelState, str], None]
IopubCallback = Callable[[dict[str, Any]], Any]

DEFAULT_TIMEOUT = 30.0
"""Seconds a request other than execute waits for its reply by default."""
PROBE_INTERVAL = 0.5
"""Seconds between kernel_info probes while waiting for a (re)started kernel to answer."""
HOLD_LIMIT = 10_000
"""Requests held while the kernel starts or restarts; beyond that they fail at once."""

_names = itertools.count(1)


# -- messages to the session actor ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call:
    channel: str
    msg: dict[str, Any]
    future: concurrent.futures.Future[Any]
    wait_idle: bool


@dataclass(frozen=True, slots=True)
class _Forget:
    msg_id: str


@dataclass(frozen=True, slots=True)
class _Attach:
    info: ConnectionInfo


@dataclass(frozen=True, slots=True)
class KernelLaunched:
    """From an owned kernel's process actor: a kernel process is up at ``info``."""

    info: ConnectionInfo
    launch: int


@dataclass(frozen=True, slots=True)
class KernelExited:
    """From an owned kernel's process actor: the process exited unexpectedly."""

    launch: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Restarting:
    reason: str


@dataclass(frozen=True, slots=True)
class _Close:
    reason: str


@dataclass(frozen=True, slots=True)
class _Probe:
    gen: int


@dataclass(frozen=True, slots=True)
class _StartupTimeout:
    gen: int


@dataclass(frozen=True, slots=True)
class _Feed:
    msgs: list[dict[str, Any]]


class KernelOwner(Protocol):
    """What a client needs from the kernel process it owns (see ``kernel.KernelProcess``)."""

    @property
    def interrupt_mode(self) -> str: ...

    @property
    def supervisor(self) -> Address | None: ...

    @property
    def connection_file(self) -> os.PathLike[str] | str | None: ...

    @property
    def pid(self) -> int | None: ...

    def signal(self, signum: int) -> None: ...

    def expect_exit(self) -> None: ...

    def kill(self, launch: int, reason: str) -> None: ...

    def restart(self, timeout: float) -> None: ...

    def stop(self, timeout: float) -> None: ...


# -- actors ---------------------------------------------------------------------------------


class _SessionActor(Actor):
    """Matches replies to requests, holds requests until the kernel is ready, runs the state
    table, and reconnects the channels when the kernel (re)starts."""

    def __init__(self, client: KernelClient) -> None:
        super().__init__()
        self.client = client
        self.wiring = client._wiring
        self.matcher = ReplyMatcher()
        self.futures: dict[str, concurrent.futures.Future[Any]] = {}
        self.held: list[_Call] = []
        self.gen = 0
        self.info: ConnectionInfo | None = None
        self.launch = 0
        self.probes: set[str] = set()
        self.probe_replied = False
        self.iopub_seen = False

    # -- dispatch -----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChannelMessages):
            self._inbound(message)
        elif isinstance(message, _Call):
            self._call(message)
        elif isinstance(message, _Forget):
            self._forget(message.msg_id)
        elif isinstance(message, HeartbeatLost):
            if message.gen == self.gen:
                self._lost(message.reason)
        elif isinstance(message, HeartbeatUp):
            if message.gen == self.gen and self.client._owner is None:
                self._recovered()
        elif isinstance(message, KernelLaunched):
            self._launched(message)
        elif isinstance(message, KernelExited):
            if message.launch == self.launch:
                self._lost(message.reason, exited=True)
        elif isinstance(message, _Probe):
            self._probe_due(message.gen)
        elif isinstance(message, _StartupTimeout):
            if message.gen == self.gen and self.client._state in (
                KernelState.STARTING,
                KernelState.RESTARTING,
            ):
                timeout = self.client._startup_timeout
                self._lost(f"the kernel did not answer kernel_info within {timeout:g}s")
        elif isinstance(message, _Attach):
            self.info = message.info
            self._connect()
        elif isinstance(message, _Restarting):
            self._event(KernelEvent.RESTART, message.reason)
            self._fail_all(f"the kernel is restarting ({message.reason})")
            self._disconnect()
        elif isinstance(message, _Close):
            self._event(KernelEvent.CLOSE, message.reason)
            self._fail_all(f"the kernel client is closed ({message.reason})")
            self._disconnect()
        elif isinstance(message, Terminated):
            if message.failed:
                reason = f"stopped restarting the kernel: {message.reason}"
                self._event(KernelEvent.GAVE_UP, reason)
                self._fail_all(reason)
                self._disconnect()
        else:
            super().on_receive(message)

    def on_batch(self, messages: list[Any]) -> None:
        for message in messages:
            self.on_receive(message)

    def on_stop(self) -> None:
        self._event(KernelEvent.CLOSE, "the actor system stopped")
        self._fail_all("the kernel client is closed")
        context = self.wiring.context
        io = self.system.io
        if not io.loop.is_closed():

            async def destroy() -> None:
                context.destroy(linger=0)

            with contextlib.suppress(Exception):
                io.run(destroy(), timeout=5.0)
                return
        context.destroy(linger=0)

    # -- requests -----------------------------------------------------------------------

    def _call(self, call: _Call) -> None:
        state = self.client._state
        msg_id = call.msg["header"]["msg_id"]
        if state is KernelState.ALIVE:
            self._send(call)
        elif state in ACCEPTING and len(self.held) < HOLD_LIMIT:
            self.held.append(call)
        else:
            why = (
                f"the kernel is {state.name}: {self.client._state_message}"
                if state not in ACCEPTING
                else f"{len(self.held)} requests already wait for the kernel to start"
            )
            _set_exception(call.future, KernelDeadError(f"{msg_type(call.msg)} {msg_id}: {why}"))

    def _send(self, call: _Call) -> None:
        msg_id = call.msg["header"]["msg_id"]
        self.matcher.track(msg_id, msg_type(call.msg), wait_idle=call.wait_idle)
        self.futures[msg_id] = call.future
        self.client._channels[call.channel].tell(Outbound(self.gen, [call.msg]))

    def _forget(self, msg_id: str) -> None:
        self.matcher.forget(msg_id)
        self.futures.pop(msg_id, None)
        self.held = [c for c in self.held if c.msg["header"]["msg_id"] != msg_id]

    def _fail_all(self, why: str) -> None:
        self.probes.clear()
        for entry in self.matcher.drain():
            fut = self.futures.pop(entry.msg_id, None)
            if fut is not None:
                _set_exception(fut, KernelDeadError(f"{entry.request_type} {entry.msg_id}: {why}"))
        held, self.held = self.held, []
        for call in held:
            _set_exception(
                call.future,
                KernelDeadError(f"{msg_type(call.msg)} {call.msg['header']['msg_id']}: {why}"),
            )
        self.futures.clear()

    # -- inbound ------------------------------------------------------------------------

    def _inbound(self, inbound: ChannelMessages) -> None:
        if inbound.gen != self.gen:
            return
        msgs = inbound.msgs
        if inbound.channel == "iopub":
            if self.client._iopub_callbacks:
                self.client._feed.tell(_Feed(msgs))
            on_iopub = self.matcher.on_iopub
            for msg in msgs:
                done = on_iopub(msg)
                if done is not None:
                    self._complete(done)
            if not self.iopub_seen:
                self.iopub_seen = True
                self._check_ready()
            return
        on_reply = self.matcher.on_reply
        for msg in msgs:
            done = on_reply(msg)
            if done is not None:
                self._complete(done)

    def _complete(self, done: Completed) -> None:
        if done.msg_id in self.probes:
            self.probes.discard(done.msg_id)
            self.probe_replied = True
            self._check_ready()
            return
        fut = self.futures.pop(done.msg_id, None)
        if fut is None:
            return
        if done.request_type == "execute_request":
            _set_result(fut, ExecutionResult.from_completed(done))
        else:
            _set_result(fut, done.reply)

    # -- connection and readiness ----------------------------------------------------------

    def _connect(self) -> None:
        info = self.info
        assert info is not None
        self.gen += 1
        gen = self.gen
        self.probes.clear()
        self.probe_replied = False
        self.iopub_seen = False
        channels = self.client._channels
        for name in ("shell", "control", "iopub", "stdin"):
            channels[name].tell(ConnectChannel(gen, info.url(name)))
        channels["hb"].tell(ArmHeartbeat(gen, info.url("hb"), "startup"))
        self.client._log.info(
            "connecting to the kernel",
            ip=info.ip,
            transport=info.transport,
            shell_port=info.shell_port,
            gen=gen,
        )
        self._probe()
        self.system.send_after(self.client._startup_timeout, self.address, _StartupTimeout(gen))

    def _disconnect(self) -> None:
        self.gen += 1  # whatever is still in flight belongs to the old connection
        for address in self.client._channels.values():
            address.tell(Disconnect())

    def _probe(self) -> None:
        msg = self.client._new_msg("kernel_info_request", {})
        msg_id = msg["header"]["msg_id"]
        self.matcher.track(msg_id, "kernel_info_request")
        self.probes.add(msg_id)
        self.client._channels["shell"].tell(Outbound(self.gen, [msg]))
        self.system.send_after(PROBE_INTERVAL, self.address, _Probe(self.gen))

    def _probe_due(self, gen: int) -> None:
        if gen != self.gen or self.client._state not in (
            KernelState.STARTING,
            KernelState.RESTARTING,
        ):
            return
        # A kernel still starting may have dropped the probe; an iopub subscription that
        # joined late missed its status messages. Ask again.
        self._probe()

    def _check_ready(self) -> None:
        if not (self.probe_replied and self.iopub_seen):
            return
        if self.client._state not in (KernelState.STARTING, KernelState.RESTARTING):
            return
        for msg_id in self.probes:
            self.matcher.forget(msg_id)
        self.probes.clear()
        info = self.info
        assert info is not None
        # Alive: a kernel that freezes from here on is dead after heartbeat_deadline, not
        # after the startup allowance, even before its first heartbeat answer.
        self.client._channels["hb"].tell(KernelAnswered(self.gen))
        self._event(KernelEvent.READY, f"kernel answering on {info.ip} (shell {info.shell_port})")
        held, self.held = self.held, []
        for call in held:
            self._send(call)

    def _launched(self, message: KernelLaunched) -> None:
        if self._event(KernelEvent.LAUNCHED, f"kernel process started (launch {message.launch})"):
            self.info = self.client._info = message.info
            self.launch = message.launch
            self._connect()

    def _recovered(self) -> None:
        if self.client._state is KernelState.DEAD and self._event(
            KernelEvent.RECOVERED, "the kernel answers heartbeats again"
        ):
            self._connect()

    def _lost(self, reason: str, *, exited: bool = False) -> None:
        if not self._event(KernelEvent.LOST, reason):
            return
        self._fail_all(f"the kernel died: {reason}")
        channels = self.client._channels
        owner = self.client._owner
        if owner is not None:
            channels["hb"].tell(Disconnect())
            if not exited:  # alive but unresponsive: kill it, its supervisor restarts it
                owner.kill(self.launch, reason)
        elif self.info is not None:
            channels["hb"].tell(ArmHeartbeat(self.gen, self.info.url("hb"), "recover"))

    def _event(self, event: KernelEvent, message: str) -> bool:
        """Apply ``event``; True if the table has a transition (told if the state changes)."""
        new = next_state(self.client._state, event)
        if new is None:
            return False
        if new is not self.client._state:
            self.client._set_state(new, message)
        return True


class _IopubFeed(Actor):
    """Runs the ``on_iopub`` callbacks, in order, away from reply matching."""

    def __init__(self, client: KernelClient) -> None:
        super().__init__()
        self.client = client
        self.errors = 0

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, _Feed):
            return super().on_receive(message)
        for msg in message.msgs:
            for _registered, callback in self.client._iopub_callbacks:
                try:
                    callback(msg)
                except Exception as exc:  # noqa: BLE001 - a user callback must not end the feed
                    self.errors += 1
                    self.log.error(
                        "on_iopub callback raised", error=repr(exc), msg_type=msg_type(msg)
                    )
        return None


def _set_result(fut: concurrent.futures.Future[Any], value: Any) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        fut.set_result(value)


def _set_exception(fut: concurrent.futures.Future[Any], exc: BaseException) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        fut.set_exception(exc)


# -- the facade -------------------------------------------------------------------------------


class KernelClient:
    """A client of one Jupyter kernel: ``execute``, ``kernel_info``, ``complete``, ...

    Give exactly one of ``connection_file`` (a kernel's JSON connection file) or
    ``connection_info`` (its dict). Requests made before the kernel answers are held until
    it does. Keyword-only options: ``system`` (share an ActorSystem; by default the client
    has its own), ``on_stdin(prompt, password) -> str`` (answers ``input()`` in kernel
    code; it runs in the stdin channel's actor), ``state_listener(state, message)`` (runs
    in the client's session actor: it must not block on the client), ``timeout`` (default
    for requests other than execute), ``heartbeat_interval``/``heartbeat_deadline`` (the
    kernel is DEAD after that long without a heartbeat answer) and ``startup_timeout``.

    Differs from jupyter_client's BlockingKernelClient: channels start at once; requests
    return the reply (``execute`` an ExecutionResult) rather than a msg_id; a dead kernel
    fails pending requests with KernelDeadError instead of leaving them waiting.
    """

    _info: ConnectionInfo | None
    _connection_file: str | None

    def __init__(
        self,
        connection_file: str | os.PathLike[str] | None = None,
        connection_info: Mapping[str, Any] | ConnectionInfo | None = None,
        *,
        system: ActorSystem | None = None,
        name: str | None = None,
        username: str | None = None,
        on_stdin: StdinHandler | None = None,
        state_listener: StateListener | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        heartbeat_interval: float = 1.0,
        heartbeat_deadline: float = 5.0,
        startup_timeout: float = 60.0,
    ) -> None:
        if (connection_file is None) == (connection_info is None):
            raise TypeError("KernelClient needs exactly one of connection_file or connection_info")
        if connection_file is not None:
            info = ConnectionInfo.from_file(connection_file)
        elif isinstance(connection_info, ConnectionInfo):
            info = connection_info
        else:
            assert connection_info is not None
            info = ConnectionInfo.from_dict(connection_info)
        self._setup(
            key=info.key,
            signature_scheme=info.signature_scheme,
            system=system,
            name=name,
            username=username,
            on_stdin=on_stdin,
            state_listener=state_listener,
            timeout=timeout,
            heartbeat_interval=heartbeat_interval,
            heartbeat_deadline=heartbeat_deadline,
            startup_timeout=startup_timeout,
        )
        if connection_file is not None:
            self._connection_file = os.fspath(connection_file)
        self._info = info
        self._router.tell(_Attach(info))

    @classmethod
    def _unattached(cls, **kwargs: Any) -> KernelClient:
        """A client whose kernel is not known yet (start_kernel attaches its process)."""
        client = cls.__new__(cls)
        client._setup(**kwargs)
        return client

    def _setup(
        self,
        *,
        key: bytes,
        signature_scheme: str,
        system: ActorSystem | None,
        name: str | None,
        username: str | None,
        on_stdin: StdinHandler | None,
        state_listener: StateListener | None,
        timeout: float,
        heartbeat_interval: float,
        heartbeat_deadline: float,
        startup_timeout: float,
        clock: Clock = monotonic,
    ) -> None:
        if on_stdin is not None:
            plain_callback(on_stdin, "on_stdin")
        if state_listener is not None:
            plain_callback(state_listener, "state_listener")
        if state_listener is not None and not callable(state_listener):
            raise TypeError(
                f"state_listener must be callable(state, message), got {state_listener!r}"
            )
        _positive("timeout", timeout)
        _positive("startup_timeout", startup_timeout)
        HeartbeatPolicy(heartbeat_interval, heartbeat_deadline, 0.0)  # checks both, or raises
        self.name = name or f"kernel-{next(_names)}"
        self.timeout = float(timeout)
        self._startup_timeout = float(startup_timeout)
        self._cell: StateCell[KernelState] = StateCell(KernelState.STARTING, name=self.name)
        self._cell.set(KernelState.STARTING, "connecting", force=True)  # in the history too
        if state_listener is not None:
            self._cell.add_listener(state_listener)
        self._msg_lock = threading.Lock()
        # (what was registered, what the feed actor calls): an async def one runs on the
        # I/O loop.
        self._iopub_callbacks: tuple[tuple[IopubCallback, IopubCallback], ...] = ()
        self._owner: KernelOwner | None = None
        self._info = None
        self._connection_file = None
        self._released = False
        self._log = log.bind(client=self.name)
        session = Session(key=key, signature_scheme=signature_scheme, username=username)
        self._session = session
        own = system is None
        self._own_system = own
        self._system = system if system is not None else ActorSystem(f"jupyter-{self.name}")
        prefix = f"jupyter.{self.name}.{next(_names)}"
        self._prefix = prefix
        wiring = Wiring(session, zmq.asyncio.Context(), self._log, clock)
        wiring.stdin_handler = on_stdin
        self._wiring = wiring
        self._channels: dict[str, Address] = {}
        sys_ = self._system
        try:
            self._router = sys_.spawn(_SessionActor, self, name=f"{prefix}.session")
            wiring.router = self._router
            self._feed = sys_.spawn(_IopubFeed, self, name=f"{prefix}.iopub-feed")
            for channel in ("shell", "control"):
                self._channels[channel] = sys_.spawn(
                    DealerChannel, wiring, channel, name=f"{prefix}.{channel}"
                )
            self._channels["iopub"] = sys_.spawn(SubChannel, wiring, name=f"{prefix}.iopub")
            self._channels["stdin"] = sys_.spawn(StdinChannel, wiring, name=f"{prefix}.stdin")
            self._channels["hb"] = sys_.spawn(
                HeartbeatChannel,
                wiring,
                heartbeat_interval,
                heartbeat_deadline,
                startup_timeout,
                name=f"{prefix}.hb",
            )
        except BaseException:
            self._release_actors()
            raise

    def __repr__(self) -> str:
        info = self._info
        where = f" {info.transport}://{info.ip} shell={info.shell_port}" if info else ""
        owned = " owned" if self._owner is not None else ""
        return f"<KernelClient {self.name!r} {self._state.name}{where}{owned}>"

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> KernelState:
        return self._cell.state

    @property
    def state_message(self) -> str:
        """Why the client is in its current state."""
        return self._cell.reason

    # The session actor's shorthand.
    _state = state
    _state_message = state_message

    def history(self) -> list[tuple[KernelState, str]]:
        """The states the client went through (the latest 1,000), with their reasons."""
        return self._cell.history()

    def _set_state(self, state: KernelState, message: str) -> None:
        level = "warning" if state in (KernelState.DEAD, KernelState.FAILED) else "info"
        getattr(self._log, level)("kernel state", state=state.name, message=message)
        self._cell.set(state, message, force=True)

    def wait_for_state(self, *states: KernelState, timeout: float = 10.0) -> bool:
        """Block until the client is in one of ``states``; False at the timeout."""
        return self._cell.wait_for(lambda state: state in states, timeout)

    def wait_for_ready(self, timeout: float | None = None) -> None:
        """Block until the kernel answers (ALIVE). Raises KernelDeadError if the client is
        FAILED or CLOSED, TimeoutError after ``timeout`` (default: ``startup_timeout``)."""
        limit = self._startup_timeout if timeout is None else timeout
        end = (KernelState.ALIVE, KernelState.FAILED, KernelState.CLOSED)
        reached = self._cell.wait_for(lambda state: state in end, limit)
        state, message = self._cell.state, self._cell.reason
        if state is KernelState.ALIVE:
            return
        if reached:
            raise KernelDeadError(f"kernel {self.name!r} is {state.name}: {message}")
        raise TimeoutError(
            f"kernel {self.name!r} not ready within {limit:g}s (state {state.name}: {message})"
        )

    # -- properties -------------------------------------------------------------------------

    @property
    def system(self) -> ActorSystem:
        return self._system

    @property
    def session(self) -> Session:
        """The signing Session (its key is never shown in its repr)."""
        return self._session

    @property
    def kernel(self) -> KernelOwner | None:
        """The kernel process this client owns (from ``start_kernel``), else None."""
        return self._owner

    @property
    def connection_file(self) -> str | None:
        """The connection file: the one given, or the owned kernel's current one."""
        owner = self._owner
        if owner is not None:
            path = owner.connection_file
            return None if path is None else os.fspath(path)
        return self._connection_file

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """Where the current kernel listens (changes when an owned kernel restarts)."""
        return self._info

    @property
    def rejected(self) -> int:
        """Messages rejected on any channel: bad or replayed signature, malformed frames."""
        return self._wiring.stats.rejected

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: received/sent per channel, rejected (and by channel), unsent, stdin
        requests answered and unanswered, heartbeat pings and socket resets."""
        out = self._wiring.stats.as_dict()
        out["state"] = self._state.name
        return out

    @property
    def on_stdin(self) -> StdinHandler | None:
        """``callable(prompt, password) -> str`` answering ``input()`` in kernel code."""
        return self._wiring.stdin_handler

    @on_stdin.setter
    def on_stdin(self, handler: StdinHandler | None) -> None:
        if handler is not None:
            plain_callback(handler, "on_stdin")
        self._wiring.stdin_handler = handler

    def on_iopub(self, callback: IopubCallback, *, remove: bool = False) -> IopubCallback:
        """Call ``callback(msg)`` for every iopub message (all requests, all clients of the
        kernel), in order, in the client's feed actor. ``remove=True`` unregisters it."""
        runner = user_callback(callback, "on_iopub callback", self._system.io)
        with self._msg_lock:
            registered = [c for c, _ in self._iopub_callbacks]
            if remove:
                self._iopub_callbacks = tuple(p for p in self._iopub_callbacks if p[0] != callback)
            elif callback not in registered:
                self._iopub_callbacks = (*self._iopub_callbacks, (callback, runner))
        return callback

    # -- requests ---------------------------------------------------------------------------

    def _new_msg(self, msg_type_: str, content: dict[str, Any]) -> dict[str, Any]:
        return self._wiring.new_msg(msg_type_, content)

    def _submit(
        self, channel: str, msg_type_: str, content: dict[str, Any], wait_idle: bool = False
    ) -> tuple[str, concurrent.futures.Future[Any]]:
        if self._released:
            raise KernelDeadError(f"kernel client {self.name!r} is closed")
        msg = self._new_msg(msg_type_, content)
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        fut.set_running_or_notify_cancel()  # only the session actor completes it
        self._router.tell(_Call(channel, msg, fut, wait_idle))
        return msg["header"]["msg_id"], fut

    def _wait(
        self, msg_id: str, fut: concurrent.futures.Future[Any], what: str, timeout: float | None
    ) -> Any:
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            self._router.tell(_Forget(msg_id))
            raise TimeoutError(
                f"no reply to {what} {msg_id} from kernel {self.name!r} within {timeout}s"
            ) from None

    async def _await(
        self, msg_id: str, fut: concurrent.futures.Future[Any], what: str, timeout: float | None
    ) -> Any:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        except TimeoutError:
            self._router.tell(_Forget(msg_id))
            raise TimeoutError(
                f"no reply to {what} {msg_id} from kernel {self.name!r} within {timeout}s"
            ) from None
        except asyncio.CancelledError:
            self._router.tell(_Forget(msg_id))
            raise

    def _request(
        self, channel: str, msg_type_: str, content: dict[str, Any], timeout: float | None
    ) -> Any:
        msg_id, fut = self._submit(channel, msg_type_, content)
        return self._wait(msg_id, fut, msg_type_, timeout)

    def kernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The kernel_info_reply message (``["content"]`` has language_info, ...)."""
        return self._request(  # type: ignore[no-any-return]
            "shell", "kernel_info_request", {}, self._timeout(timeout)
        )

    async def akernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        msg_id, fut = self._submit("shell", "kernel_info_request", {})
        return await self._await(  # type: ignore[no-any-return]
            msg_id, fut, "kernel_info_request", self._timeout(timeout)
        )

    def _execute_content(
        self,
        code: str,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, str] | None,
        allow_stdin: bool | None,
        stop_on_error: bool,
    ) -> dict[str, Any]:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        if user_expressions is not None and not isinstance(user_expressions, dict):
            raise TypeError(f"user_expressions must be a dict, got {user_expressions!r}")
        return {
            "code": code,
            "silent": bool(silent),
            "store_history": bool(store_history),
            "user_expressions": user_expressions or {},
            "allow_stdin": True if allow_stdin is None else bool(allow_stdin),
            "stop_on_error": bool(stop_on_error),
        }

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Run ``code``; return its ExecutionResult once the reply and iopub idle are in.

        ``allow_stdin`` defaults to True: ``input()`` reaches ``on_stdin``. ``timeout``
        (seconds) defaults to none: the call waits while the kernel lives, and fails with
        KernelDeadError if it dies. A TimeoutError leaves the code running (``interrupt``).
        """
        content = self._execute_content(
            code, silent, store_history, user_expressions, allow_stdin, stop_on_error
        )
        msg_id, fut = self._submit("shell", "execute_request", content, wait_idle=True)
        return self._wait(msg_id, fut, "execute_request", timeout)  # type: ignore[no-any-return]

    async def aexecute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        *,
        timeout: float | None = None,
    ) -> ExecutionResult:
        content = self._execute_content(
            code, silent, store_history, user_expressions, allow_stdin, stop_on_error
        )
        msg_id, fut = self._submit("shell", "execute_request", content, wait_idle=True)
        return await self._await(msg_id, fut, "execute_request", timeout)  # type: ignore[no-any-return]

    @staticmethod
    def _code_cursor(code: str, cursor_pos: int | None) -> int:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        if cursor_pos is None:
            return len(code)
        if isinstance(cursor_pos, bool) or not isinstance(cursor_pos, int):
            raise TypeError(f"cursor_pos must be an int, got {cursor_pos!r}")
        if not 0 <= cursor_pos <= len(code):
            raise ValueError(f"cursor_pos must be within 0..{len(code)}, got {cursor_pos}")
        return cursor_pos

    def complete(
        self, code: str, cursor_pos: int | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """The complete_reply message (``["content"]["matches"]``); cursor defaults to the end."""
        pos = self._code_cursor(code, cursor_pos)
        return self._request(  # type: ignore[no-any-return]
            "shell",
            "complete_request",
            {"code": code, "cursor_pos": pos},
            self._timeout(timeout),
        )

    async def acomplete(
        self, code: str, cursor_pos: int | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        pos = self._code_cursor(code, cursor_pos)
        msg_id, fut = self._submit("shell", "complete_request", {"code": code, "cursor_pos": pos})
        return await self._await(  # type: ignore[no-any-return]
            msg_id, fut, "complete_request", self._timeout(timeout)
        )

    def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The inspect_reply message (``["content"]["data"]`` when ``found``)."""
        pos = self._code_cursor(code, cursor_pos)
        content = {"code": code, "cursor_pos": pos, "detail_level": int(detail_level)}
        return self._request(  # type: ignore[no-any-return]
            "shell", "inspect_request", content, self._timeout(timeout)
        )

    async def ainspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        pos = self._code_cursor(code, cursor_pos)
        content = {"code": code, "cursor_pos": pos, "detail_level": int(detail_level)}
        msg_id, fut = self._submit("shell", "inspect_request", content)
        return await self._await(  # type: ignore[no-any-return]
            msg_id, fut, "inspect_request", self._timeout(timeout)
        )

    def is_complete(self, code: str, *, timeout: float | None = None) -> dict[str, Any]:
        """The is_complete_reply message (``["content"]["status"]``: complete, incomplete,
        invalid or unknown)."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        return self._request(  # type: ignore[no-any-return]
            "shell", "is_complete_request", {"code": code}, self._timeout(timeout)
        )

    async def ais_complete(self, code: str, *, timeout: float | None = None) -> dict[str, Any]:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        msg_id, fut = self._submit("shell", "is_complete_request", {"code": code})
        return await self._await(  # type: ignore[no-any-return]
            msg_id, fut, "is_complete_request", self._timeout(timeout)
        )

    def interrupt(self, *, timeout: float | None = None) -> None:
        """Interrupt running code: SIGINT to an owned kernel whose interrupt_mode is
        ``signal``, else an interrupt_request on the control channel (waits for its reply)."""
        owner = self._owner
        if owner is not None and owner.interrupt_mode == "signal":
            try:
                owner.signal(signal.SIGINT)
            except ProcessLookupError as exc:
                raise KernelDeadError(f"cannot interrupt kernel {self.name!r}: {exc}") from None
            return
        reply = self._request("control", "interrupt_request", {}, self._timeout(timeout))
        status = reply.get("content", {}).get("status")
        if status != "ok":
            raise RuntimeError(
                f"kernel {self.name!r} refused the interrupt: {reply.get('content', {})!r}"
            )

    async def ainterrupt(self, *, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.interrupt, timeout=timeout)

    # -- lifecycle -----------------------------------------------------------------------------

    def shutdown(self, restart: bool = False, *, timeout: float | None = None) -> None:
        """Ask the kernel to shut down (shutdown_request on control).

        ``restart=False``: then close the client; an owned kernel process is waited for,
        then terminated or killed, and its connection file removed. ``restart=True`` with an
        owned kernel: a new process on fresh ports, and this call returns once it answers.
        """
        if self._released:
            return
        limit = self._timeout(timeout)
        owner = self._owner
        if owner is not None:
            owner.expect_exit()
        if self._state is KernelState.ALIVE:
            try:
                self._request(
                    "control", "shutdown_request", {"restart": bool(restart)}, min(limit, 5.0)
                )
            except (TimeoutError, KernelDeadError) as exc:
                self._log.warning("no shutdown_reply from the kernel", error=str(exc))
        if not restart:
            self._release(limit)
            return
        if owner is None:
            return
        self._router.ask(_Restarting("restart requested"), timeout=limit)
        owner.restart(limit)
        self.wait_for_ready(self._startup_timeout)

    async def ashutdown(self, restart: bool = False, *, timeout: float | None = None) -> None:
        await asyncio.to_thread(self.shutdown, restart, timeout=timeout)

    def close(self) -> None:
        """Release the client; an owned kernel is shut down (nothing is left running)."""
        if self._owner is not None:
            self.shutdown()
        else:
            self._release(self.timeout)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def await_for_ready(self, timeout: float | None = None) -> None:
        """Awaitable ``wait_for_ready``."""
        await asyncio.to_thread(self.wait_for_ready, timeout)

    def __enter__(self) -> KernelClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> KernelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _release(self, timeout: float) -> None:
        if self._released:
            return
        self._released = True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):
            self._router.ask(_Close("closed by the user"), timeout=timeout)
        if self._owner is not None:
            self._owner.stop(max(deadline - time.monotonic(), 1.0))
        self._release_actors()
        self._log.info("kernel client closed")

    def _release_actors(self) -> None:
        system = self._system
        if self._own_system:
            system.shutdown()
            return
        for name in ("hb", "stdin", "iopub", "control", "shell"):
            address = self._channels.get(name)
            if address is not None:
                address.stop()
        for attr in ("_feed", "_router"):
            address = getattr(self, attr, None)
            if address is not None:
                address.stop()

    def _attach_owner(self, owner: KernelOwner) -> None:
        """Called by start_kernel before the process starts."""
        self._owner = owner

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
