"""The client's lifecycle actor: connects the channels to the kernel, probes it until it is
ready, runs the state table (``state``) on readiness, heartbeat loss, process exits and
restarts, and sends, holds or fails the client's calls (``calls``) to match.

The kernel is ready once a kernel_info probe is answered on shell and a message has come in
on iopub (the subscription is live). Probes are sent again, with backoff, until then: a
kernel still starting may drop one, and an iopub subscription that joined late misses the
status messages of the ones before. The first message the kernel sends on a connection,
whatever its channel, starts the heartbeat deadline (``heartbeat``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ...actors import Actor, Address, Terminated
from ...actors.backoff import Backoff, BackoffPolicy
from .calls import Call, Forget, PendingCalls
from .connection import ConnectionInfo
from .feed import Feed
from .heartbeat import HeartbeatMode
from .link import (
    ArmHeartbeat,
    ChannelMessages,
    ConnectChannel,
    Disconnect,
    HeartbeatLost,
    HeartbeatUp,
    KernelAnswered,
    Outbound,
)
from .replies import Completed
from .state import ACCEPTING, KernelEvent, KernelState, next_state

if TYPE_CHECKING:
    from .client import KernelClient

__all__ = [
    "PROBE_BACKOFF",
    "Attach",
    "Close",
    "KernelExited",
    "KernelLaunched",
    "KernelOwner",
    "LifecycleActor",
    "Restarting",
]

PROBE_BACKOFF = Backoff(min=0.5, max=2.0, factor=2.0, jitter=0.1)
"""Delays between kernel_info probes while waiting for a (re)started kernel to answer."""

_STARTING = (KernelState.STARTING, KernelState.RESTARTING)


# -- messages ---------------------------------------------------------------------------------


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
class Attach:
    """Connect to the kernel at ``info`` (a client given a connection file or info)."""

    info: ConnectionInfo


@dataclass(frozen=True, slots=True)
class Restarting:
    """The user restarts the kernel: fail the calls, drop the connection."""

    reason: str


@dataclass(frozen=True, slots=True)
class Close:
    """The client closes: fail the calls, drop the connection, for good."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Probe:
    gen: int


@dataclass(frozen=True, slots=True)
class _StartupTimeout:
    gen: int


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


# -- the actor ----------------------------------------------------------------------------------


class LifecycleActor(Actor):
    """Keeps one client connected to its kernel, and its calls in step with the kernel's
    state (see the module docstring)."""

    def __init__(self, client: KernelClient) -> None:
        super().__init__()
        self.client = client
        self.wiring = client._wiring
        self.calls = PendingCalls()
        self.probe_backoff = BackoffPolicy(PROBE_BACKOFF)
        self.gen = 0
        self.info: ConnectionInfo | None = None
        self.launch = 0
        self.probe_replied = False
        self.iopub_seen = False
        self.answered = False

    # -- dispatch -----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChannelMessages):
            self._inbound(message)
        elif isinstance(message, Call):
            self._call(message)
        elif isinstance(message, Forget):
            self.calls.forget(message.msg_id)
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
            if message.gen == self.gen and self.client._state in _STARTING:
                self._probe()
        elif isinstance(message, _StartupTimeout):
            if message.gen == self.gen and self.client._state in _STARTING:
                self._lost(self._startup_failure())
        elif isinstance(message, Attach):
            self.info = message.info
            self._connect()
        elif isinstance(message, Restarting):
            self._event(KernelEvent.RESTART, message.reason)
            self.calls.fail_all(f"the kernel is restarting ({message.reason})")
            self._disconnect()
        elif isinstance(message, Close):
            self._event(KernelEvent.CLOSE, message.reason)
            self.calls.fail_all(f"the kernel client is closed ({message.reason})")
            self._disconnect()
        elif isinstance(message, Terminated):
            if message.failed:
                reason = f"stopped restarting the kernel: {message.reason}"
                self._event(KernelEvent.GAVE_UP, reason)
                self.calls.fail_all(reason)
                self._disconnect()
        else:
            super().on_receive(message)

    def on_batch(self, messages: list[Any]) -> None:
        for message in messages:
            self.on_receive(message)

    def on_stop(self) -> None:
        self._event(KernelEvent.CLOSE, "the actor system stopped")
        self.calls.fail_all("the kernel client is closed")
        context = self.wiring.context
        io = self.system.io
        if not io.loop.is_closed():

            async def destroy() -> None:
                context.destroy(linger=0)

            with contextlib.suppress(Exception):
                io.run(destroy(), timeout=5.0)
                return
        context.destroy(linger=0)

    # -- calls ------------------------------------------------------------------------------

    def _call(self, call: Call) -> None:
        state = self.client._state
        if state is KernelState.ALIVE:
            self._send(call)
        elif state not in ACCEPTING:
            call.fail(f"the kernel is {state.name}: {self.client._state_message}")
        elif not self.calls.hold(call):
            call.fail(f"{self.calls.held()} requests already wait for the kernel to start")

    def _send(self, call: Call) -> None:
        self.calls.sent(call)
        self.client._channels[call.channel].tell(Outbound(self.gen, [call.msg]))

    def _inbound(self, inbound: ChannelMessages) -> None:
        if inbound.gen != self.gen:
            return
        if not self.answered:
            # The kernel's first word on this connection: the heartbeat deadline holds.
            self.answered = True
            self.client._channels["hb"].tell(KernelAnswered(self.gen))
        msgs = inbound.msgs
        if inbound.channel == "iopub":
            if self.client._iopub:
                self.client._feed.tell(Feed(msgs))
            for done in self.calls.on_iopub(msgs):
                self._settle(done)
            if not self.iopub_seen:
                self.iopub_seen = True
                self._check_ready()
            return
        for done in self.calls.on_replies(msgs):
            self._settle(done)

    def _settle(self, done: Completed) -> None:
        if self.calls.settle(done):
            self.probe_replied = True
            self._check_ready()

    # -- connection and readiness ----------------------------------------------------------

    def _connect(self) -> None:
        info = self.info
        assert info is not None
        self.gen += 1
        gen = self.gen
        self.calls.end_probes()
        self.probe_replied = self.iopub_seen = self.answered = False
        self.probe_backoff.reset()
        channels = self.client._channels
        for name in ("shell", "control", "iopub", "stdin"):
            channels[name].tell(ConnectChannel(gen, info.url(name)))
        channels["hb"].tell(ArmHeartbeat(gen, info.url("hb"), HeartbeatMode.STARTUP))
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
        msg = self.wiring.new_msg("kernel_info_request", {})
        self.calls.probe(msg["header"]["msg_id"])
        self.client._channels["shell"].tell(Outbound(self.gen, [msg]))
        delay = self.probe_backoff.next_delay()
        assert delay is not None  # no attempt limit: the startup timeout ends the probing
        self.system.send_after(delay, self.address, _Probe(self.gen))

    def _check_ready(self) -> None:
        if not (self.probe_replied and self.iopub_seen) or self.client._state not in _STARTING:
            return
        self.calls.end_probes()
        info = self.info
        assert info is not None
        self._event(KernelEvent.READY, f"kernel answering on {info.ip} (shell {info.shell_port})")
        for call in self.calls.release():
            self._send(call)

    def _startup_failure(self) -> str:
        timeout = self.client._startup_timeout
        if self.probe_replied:
            return f"the kernel answered kernel_info but sent nothing on iopub within {timeout:g}s"
        return f"the kernel did not answer kernel_info within {timeout:g}s"

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
        self.calls.fail_all(f"the kernel died: {reason}")
        channels = self.client._channels
        owner = self.client._owner
        if owner is not None:
            channels["hb"].tell(Disconnect())
            if not exited:  # alive but unresponsive: kill it, its supervisor restarts it
                owner.kill(self.launch, reason)
        elif self.info is not None:
            channels["hb"].tell(ArmHeartbeat(self.gen, self.info.url("hb"), HeartbeatMode.RECOVER))

    def _event(self, event: KernelEvent, message: str) -> bool:
        """Apply ``event``; True if the table has a transition (told if the state changes)."""
        new = next_state(self.client._state, event)
        if new is None:
            return False
        if new is not self.client._state:
            level = "warning" if new in (KernelState.DEAD, KernelState.FAILED) else "info"
            getattr(self.client._log, level)("kernel state", state=new.name, message=message)
            self.client._cell.set(new, message, force=True)
        return True
