"""When to ping a kernel's heartbeat and when the kernel is dead: sans-I/O, time passed in.

The kit's HeartbeatPolicy keeps the clock: a ping every ``interval`` (always: the heartbeat
channel carries nothing else), dead after ``deadline`` seconds without an answer. This adds
the one rule that is Jupyter's own, the two modes of a connection:

- ``STARTUP``: the kernel is (re)starting. The deadline holds from its first sign of life
  on the connection: a heartbeat answer (``on_pong``) or any reply or iopub message
  (``on_answered``), whichever comes first. So a kernel frozen right after it answered is
  dead ``deadline`` seconds later even if no heartbeat answer ever came. Before any sign
  of life nothing is declared: a kernel still starting is the client's ``startup_timeout``'s
  business.
- ``RECOVER``: the kernel was declared dead and the client does not own it: it is pinged
  until it answers, never declared dead again; its first answer is reported.
"""

from __future__ import annotations

import enum

from ...actors.link.heartbeat import HeartbeatAction, HeartbeatPolicy

__all__ = ["HeartbeatAction", "HeartbeatMode", "KernelHeartbeat", "check_heartbeat"]


class HeartbeatMode(enum.Enum):
    """What a heartbeat connection is for (see the module docstring)."""

    STARTUP = "startup"
    RECOVER = "recover"


def check_heartbeat(interval: float, deadline: float) -> None:
    """Raise (TypeError or ValueError, naming the value) unless ``interval`` and
    ``deadline`` make a heartbeat: positive, finite, deadline > interval."""
    HeartbeatPolicy(interval, deadline, 0.0, always_ping=True)


class KernelHeartbeat:
    """The heartbeat rule of one connection to a kernel, armed at ``now`` in ``mode``."""

    __slots__ = ("_answered", "_mode", "_policy", "_ponged")

    def __init__(self, interval: float, deadline: float, now: float, mode: HeartbeatMode) -> None:
        if not isinstance(mode, HeartbeatMode):
            raise TypeError(f"mode must be a HeartbeatMode, got {mode!r}")
        self._policy = HeartbeatPolicy(interval, deadline, now, always_ping=True)
        self._mode = mode
        self._answered = False
        self._ponged = False

    @property
    def mode(self) -> HeartbeatMode:
        return self._mode

    @property
    def interval(self) -> float:
        return self._policy.interval

    @property
    def deadline(self) -> float:
        return self._policy.deadline

    @property
    def answered(self) -> bool:
        """True once the deadline holds: the kernel showed a sign of life in STARTUP mode."""
        return self._answered

    def on_pong(self, now: float) -> bool:
        """A heartbeat answer at ``now``; True if it is the first on this connection."""
        self._policy.on_traffic(now)
        if self._mode is HeartbeatMode.STARTUP:
            self._answered = True
        first = not self._ponged
        self._ponged = True
        return first

    def on_answered(self, now: float) -> None:
        """The kernel answered a request or published on iopub at ``now`` (STARTUP mode:
        the deadline holds from now on; RECOVER mode: only a heartbeat answer counts)."""
        if self._mode is HeartbeatMode.STARTUP and not self._answered:
            self._answered = True
            self._policy.on_traffic(now)

    def on_ping_sent(self, now: float) -> None:
        self._policy.on_ping_sent(now)

    def poll(self, now: float) -> HeartbeatAction:
        """DEAD (final for this connection), SEND_PING (then call ``on_ping_sent``) or NONE."""
        action = self._policy.poll(now)
        if action is HeartbeatAction.DEAD and not self._answered:
            # Nothing to hold to yet: start the quiet time afresh and keep knocking.
            self._policy.reset(now)
            return HeartbeatAction.SEND_PING
        return action

    def next_check(self, now: float) -> float:
        """Seconds until ``poll`` can next change its answer, within ``[0, interval]``."""
        return self._policy.next_check(now)

    def __repr__(self) -> str:
        return (
            f"KernelHeartbeat({self._mode.name}, interval={self.interval!r}, "
            f"deadline={self.deadline!r}, answered={self._answered})"
        )
