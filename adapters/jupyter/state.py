"""Kernel client states and every transition between them, as one table.

Sans-I/O: the client's session actor feeds events in and acts on the new state. An event
with no entry for the current state changes nothing (a late heartbeat loss after a close,
a second launch report while restarting, ...).
"""

from __future__ import annotations

import enum

from ...actors.errors import ActorwireError

__all__ = ["KernelDeadError", "KernelEvent", "KernelState", "next_state"]


class KernelState(enum.Enum):
    """Where a KernelClient stands; the state listener is told of every change."""

    STARTING = "starting"
    """Channels connected, waiting for the kernel's first replies."""
    ALIVE = "alive"
    """The kernel answers on shell, iopub and heartbeat: requests are sent at once."""
    DEAD = "dead"
    """The kernel stopped answering (or its process exited): pending calls failed."""
    RESTARTING = "restarting"
    """A new kernel process (or the old kernel, answering again) is being reconnected."""
    FAILED = "failed"
    """The kernel's supervisor gave up restarting it (restart intensity exceeded)."""
    CLOSED = "closed"
    """The client was closed (or shut the kernel down); nothing more happens."""


class KernelEvent(enum.Enum):
    """What the session actor reports to the state table."""

    READY = "ready"
    """kernel_info answered on shell and the iopub subscription is live."""
    LOST = "lost"
    """Heartbeat deadline passed, the kernel process exited, or startup timed out."""
    LAUNCHED = "launched"
    """An owned kernel process was (re)started on fresh ports."""
    RECOVERED = "recovered"
    """A kernel the client does not own answers heartbeats again."""
    RESTART = "restart"
    """The user asked for a restart."""
    GAVE_UP = "gave_up"
    """The kernel's supervisor stopped restarting it."""
    CLOSE = "close"
    """The client is closing."""


S, E = KernelState, KernelEvent

_TRANSITIONS: dict[tuple[KernelState, KernelEvent], KernelState] = {
    (S.STARTING, E.READY): S.ALIVE,
    (S.STARTING, E.LOST): S.DEAD,
    (S.STARTING, E.LAUNCHED): S.STARTING,
    (S.STARTING, E.RESTART): S.RESTARTING,
    (S.ALIVE, E.LOST): S.DEAD,
    (S.ALIVE, E.LAUNCHED): S.RESTARTING,
    (S.ALIVE, E.RESTART): S.RESTARTING,
    (S.DEAD, E.LAUNCHED): S.RESTARTING,
    (S.DEAD, E.RECOVERED): S.RESTARTING,
    (S.DEAD, E.RESTART): S.RESTARTING,
    (S.RESTARTING, E.READY): S.ALIVE,
    (S.RESTARTING, E.LOST): S.DEAD,
    (S.RESTARTING, E.LAUNCHED): S.RESTARTING,
    **{(s, E.GAVE_UP): S.FAILED for s in (S.STARTING, S.ALIVE, S.DEAD, S.RESTARTING)},
    **{(s, E.CLOSE): S.CLOSED for s in KernelState if s is not S.CLOSED},
}

ACCEPTING = frozenset({S.STARTING, S.ALIVE, S.RESTARTING})
"""States in which a new request is taken (held until ALIVE, or sent at once)."""


def next_state(state: KernelState, event: KernelEvent) -> KernelState | None:
    """The state after ``event`` in ``state``, or None when the event changes nothing."""
    return _TRANSITIONS.get((state, event))


class KernelDeadError(ActorwireError, RuntimeError):
    """The kernel is dead, restarting, failed or closed: the request cannot be answered."""


__all__ += ["ACCEPTING"]
