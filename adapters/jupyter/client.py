"""KernelClient: talk to a Jupyter kernel through actors, blocking or awaitable.

The client is a thin facade over actors: one per channel (shell, control, iopub, stdin,
heartbeat; see ``link``), a lifecycle actor that keeps them connected, runs the state
table (``state``) and matches replies and iopub messages to the calls in flight
(``lifecycle``, ``calls``), and a feed actor that runs ``on_iopub`` callbacks so a slow
callback stalls nothing (``feed``). The requests (``kernel_info``, ``execute``, ...) and
their awaitable twins, which await the reply's future on the caller's loop, come from
``requests``; ``ashutdown``, ``aclose`` and ``await_for_ready`` are twins that run the
blocking call off the loop. Every twin has its blocking call's signature.

A client made with ``connection_file=`` or ``connection_info=`` connects to a running kernel.
``start_kernel`` (in ``kernel``) launches one and returns a client that owns its process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import structlog
import zmq.asyncio

from ...actors import ActorSystem, Address
from ...actors.callbacks import plain_callback
from ...actors.clock import Clock, monotonic
from ...actors.statecell import StateCell
from ...actors.twins import twin
from .calls import Pending, submit
from .connection import ConnectionInfo
from .feed import IopubCallback, IopubCallbacks, IopubFeed
from .heartbeat import check_heartbeat
from .lifecycle import (
    Attach,
    Close,
    KernelExited,
    KernelLaunched,
    KernelOwner,
    LifecycleActor,
    Restarting,
)
from .link import spawn_channels
from .replies import ExecutionResult
from .requests import KernelRequests
from .session import Session
from .state import KernelDeadError, KernelState
from .wiring import StdinHandler, Wiring

STDIN_HANDSHAKE_WAIT = 1.0
"""Seconds an execute that allows stdin waits at most for the stdin socket's handshake."""

__all__ = [
    "IopubCallback",
    "KernelClient",
    "KernelDeadError",
    "KernelExited",
    "KernelLaunched",
    "KernelOwner",
    "KernelState",
    "StateListener",
]

log = structlog.get_logger("actorwire.jupyter")

StateListener = Callable[[KernelState, str], None]

DEFAULT_TIMEOUT = 30.0
"""Seconds a request other than execute waits for its reply by default."""

_names = itertools.count(1)
T = TypeVar("T")


class KernelClient(KernelRequests):
    """A client of one Jupyter kernel: ``execute``, ``kernel_info``, ``complete``, ...

    Give exactly one of ``connection_file`` (a kernel's JSON connection file) or
    ``connection_info`` (its dict). Requests made before the kernel answers are held until
    it does. Keyword-only options: ``system`` (share an ActorSystem; by default the client
    has its own), ``on_stdin(prompt, password) -> str`` (answers ``input()`` in kernel
    code; it runs in the stdin channel's actor), ``state_listener(state, message)`` (runs
    in the client's lifecycle actor: it must not block on the client), ``timeout`` (default
    for requests other than execute), ``heartbeat_interval``/``heartbeat_deadline`` (the
    kernel is DEAD after that long without a heartbeat answer, counted from the first
    moment it answers anything) and ``startup_timeout`` (how long a kernel that has not
    answered yet gets).

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
        self._lifecycle.tell(Attach(info))

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
        _positive("timeout", timeout)
        _positive("startup_timeout", startup_timeout)
        check_heartbeat(heartbeat_interval, heartbeat_deadline)
        self.name = name or f"kernel-{next(_names)}"
        self.timeout = float(timeout)
        self._startup_timeout = float(startup_timeout)
        self._cell: StateCell[KernelState] = StateCell(KernelState.STARTING, name=self.name)
        self._cell.set(KernelState.STARTING, "connecting", force=True)  # in the history too
        if state_listener is not None:
            self._cell.add_listener(state_listener)
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
        self._iopub = IopubCallbacks(self._system.io)
        prefix = f"jupyter.{self.name}.{next(_names)}"
        self._prefix = prefix
        wiring = Wiring(session, zmq.asyncio.Context(), self._log, clock)
        wiring.stdin_handler = on_stdin
        self._wiring = wiring
        self._channels: dict[str, Address] = {}
        sys_ = self._system
        try:
            self._lifecycle = sys_.spawn(LifecycleActor, self, name=f"{prefix}.lifecycle")
            wiring.lifecycle = self._lifecycle
            self._feed = sys_.spawn(IopubFeed, self._iopub, name=f"{prefix}.iopub-feed")
            spawn_channels(
                sys_, wiring, prefix, heartbeat_interval, heartbeat_deadline, self._channels
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

    # The lifecycle actor's shorthand.
    _state = state
    _state_message = state_message

    def history(self) -> list[tuple[KernelState, str]]:
        """The states the client went through (the latest 1,000), with their reasons."""
        return self._cell.history()

    def wait_for_state(self, *states: KernelState, timeout: float = 10.0) -> bool:
        """Block until the client is in one of ``states``; False at the timeout."""
        return self._cell.wait_for(lambda state: state in states, timeout)

    def wait_for_ready(self, timeout: float | None = None) -> None:
        """Block until the kernel answers (ALIVE). Raises KernelDeadError if the client is
        FAILED or CLOSED, TimeoutError after ``timeout`` (default: ``startup_timeout``)."""
        limit = self._startup_timeout if timeout is None else timeout
        started = time.monotonic()
        end = (KernelState.ALIVE, KernelState.FAILED, KernelState.CLOSED)
        reached = self._cell.wait_for(lambda state: state in end, limit)
        state, message = self._cell.state, self._cell.reason
        if state is KernelState.ALIVE:
            # Ready means input() in the first code run is answered too: the stdin socket's
            # handshake is done (it is, milliseconds after the kernel answers).
            left = max(limit - (time.monotonic() - started), 0.0)
            self._wiring.stdin_connected.wait(min(left, STDIN_HANDSHAKE_WAIT))
            return
        if reached:
            raise KernelDeadError(f"kernel {self.name!r} is {state.name}: {message}")
        raise TimeoutError(
            f"kernel {self.name!r} not ready within {limit:g}s (state {state.name}: {message})"
        )

    await_for_ready = twin(wait_for_ready)

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
        self._iopub.update(callback, remove=remove)
        return callback

    # -- sending requests (for KernelRequests) ------------------------------------------------

    def _submit(
        self,
        channel: str,
        msg_type_: str,
        content: dict[str, Any],
        timeout: float | None,
        future: concurrent.futures.Future[T],
        *,
        wait_idle: bool = False,
    ) -> Pending[T]:
        if self._released:
            raise KernelDeadError(f"kernel client {self.name!r} is closed")
        msg = self._wiring.new_msg(msg_type_, content)
        return submit(
            self._lifecycle, self.name, channel, msg, future, timeout, wait_idle=wait_idle
        )

    def _ask(
        self, channel: str, msg_type_: str, content: dict[str, Any], timeout: float | None
    ) -> Pending[dict[str, Any]]:
        """A request answered by its reply message (``timeout``: None is the default)."""
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        return self._submit(channel, msg_type_, content, self._timeout(timeout), future)

    def _execute(self, content: dict[str, Any], timeout: float | None) -> Pending[ExecutionResult]:
        # The kernel drops an input_request for a stdin socket it has not met yet: let the
        # handshake finish (milliseconds after the channels open) before code that may call
        # input() is sent.
        stdin = self._wiring.stdin_connected
        if content.get("allow_stdin") and not stdin.wait(STDIN_HANDSHAKE_WAIT):
            self._log.warning(
                "stdin channel not connected yet: input() in this code may not be answered",
                waited=STDIN_HANDSHAKE_WAIT,
            )
        future: concurrent.futures.Future[ExecutionResult] = concurrent.futures.Future()
        return self._submit("shell", "execute_request", content, timeout, future, wait_idle=True)

    def _interrupt(self, timeout: float | None) -> Pending[dict[str, Any]] | None:
        """Signal the kernel (None) or send it an interrupt_request (its reply to wait for)."""
        owner = self._owner
        if owner is not None and owner.interrupt_mode == "signal":
            try:
                owner.signal(signal.SIGINT)
            except ProcessLookupError as exc:
                raise KernelDeadError(f"cannot interrupt kernel {self.name!r}: {exc}") from None
            return None
        return self._ask("control", "interrupt_request", {}, timeout)

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
                content = {"restart": bool(restart)}
                self._ask("control", "shutdown_request", content, min(limit, 5.0)).wait()
            except (TimeoutError, KernelDeadError) as exc:
                self._log.warning("no shutdown_reply from the kernel", error=str(exc))
        if not restart:
            self._release(limit)
            return
        if owner is None:
            return
        self._lifecycle.ask(Restarting("restart requested"), timeout=limit)
        owner.restart(limit)
        self.wait_for_ready(self._startup_timeout)

    ashutdown = twin(shutdown)

    def close(self) -> None:
        """Release the client; an owned kernel is shut down (nothing is left running)."""
        if self._owner is not None:
            self.shutdown()
        else:
            self._release(self.timeout)

    aclose = twin(close)

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
            self._lifecycle.ask(Close("closed by the user"), timeout=timeout)
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
        for attr in ("_feed", "_lifecycle"):
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
