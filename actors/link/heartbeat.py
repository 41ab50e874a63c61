"""Link liveness: when to ping a quiet peer and when to declare it dead.

Sans-I/O: the owner reports traffic and pings with explicit timestamps, calls :meth:`poll`
to learn what to do, and sleeps :meth:`next_check` seconds itself.
"""

from __future__ import annotations

import enum
import math
from numbers import Real

__all__ = ["HeartbeatAction", "HeartbeatPolicy"]


class HeartbeatAction(enum.Enum):
    """What :meth:`HeartbeatPolicy.poll` asks the link to do now."""

    NONE = "none"
    """Nothing is due."""
    SEND_PING = "send_ping"
    """The link has been quiet for an interval: send a ping, then call ``on_ping_sent``."""
    DEAD = "dead"
    """Nothing arrived for ``deadline`` seconds: tear the connection down."""


def _real(name: str, value: object) -> float:
    """Return ``value`` as a finite float or raise naming the bad ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"HeartbeatPolicy: {name} must be a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"HeartbeatPolicy: {name} must be finite, got {value!r}")
    return result


class HeartbeatPolicy:
    """Pings a link that has been quiet for ``interval`` and declares it dead after ``deadline``.

    Any inbound traffic counts as liveness, so a busy link never pings; a quiet one pings once
    per interval. Outbound pings do not count as liveness: only the peer's answers do.
    Once DEAD the policy stays DEAD until :meth:`reset` (a new connection).
    """

    __slots__ = ("_always", "_dead", "_deadline", "_interval", "_last_inbound", "_last_ping")

    def __init__(
        self, interval: float, deadline: float, now: float, *, always_ping: bool = False
    ) -> None:
        """``always_ping=True`` pings every interval even while traffic flows in, for
        protocols whose peer drops a session that stops pinging."""
        interval = _real("interval", interval)
        deadline = _real("deadline", deadline)
        now = _real("now", now)
        if interval <= 0:
            raise ValueError(f"HeartbeatPolicy: interval must be > 0, got {interval!r}")
        if deadline <= interval:
            raise ValueError(
                f"HeartbeatPolicy: deadline must be > interval ({interval!r}), got {deadline!r}"
            )
        self._interval = interval
        self._deadline = deadline
        self._last_inbound = now
        self._last_ping = now
        self._dead = False
        self._always = bool(always_ping)

    @property
    def interval(self) -> float:
        """Quiet seconds after which a ping is sent."""
        return self._interval

    @property
    def deadline(self) -> float:
        """Seconds without inbound traffic after which the link is dead."""
        return self._deadline

    @property
    def last_inbound(self) -> float:
        """Time of the latest inbound traffic (or of construction / :meth:`reset`)."""
        return self._last_inbound

    @property
    def last_ping(self) -> float:
        """Time of the latest ping sent (or of construction / :meth:`reset`)."""
        return self._last_ping

    @property
    def is_dead(self) -> bool:
        """True once :meth:`poll` returned DEAD; cleared only by :meth:`reset`."""
        return self._dead

    def on_traffic(self, now: float) -> None:
        """Record inbound bytes or frames at ``now``: proof the peer is alive."""
        self._last_inbound = max(self._last_inbound, now)

    def on_ping_sent(self, now: float) -> None:
        """Record that a ping went out at ``now``, so the next one waits a full interval."""
        self._last_ping = max(self._last_ping, now)

    def poll(self, now: float) -> HeartbeatAction:
        """What to do at ``now``: DEAD, SEND_PING or NONE (see the class docstring).

        SEND_PING repeats until :meth:`on_ping_sent` is called.
        """
        if self._dead:
            return HeartbeatAction.DEAD
        quiet = now - self._last_inbound
        if quiet >= self._deadline:
            self._dead = True
            return HeartbeatAction.DEAD
        if (self._always or quiet >= self._interval) and now - self._last_ping >= self._interval:
            return HeartbeatAction.SEND_PING
        return HeartbeatAction.NONE

    def next_check(self, now: float) -> float:
        """Seconds until :meth:`poll` can next change its answer, within ``[0, interval]``.

        0 means an action is due now. A dead policy changes only on :meth:`reset`, so it
        answers ``interval`` rather than inviting a busy loop.
        """
        if self._dead:
            return self._interval
        until_dead = self._last_inbound + self._deadline - now
        since = self._last_ping if self._always else max(self._last_inbound, self._last_ping)
        until_ping = since + self._interval - now
        return min(max(min(until_dead, until_ping), 0.0), self._interval)

    def reset(self, now: float) -> None:
        """Start afresh for a new connection at ``now``: alive, quiet timers restarted."""
        now = _real("now", now)
        self._last_inbound = now
        self._last_ping = now
        self._dead = False

    def __repr__(self) -> str:
        return (
            f"HeartbeatPolicy(interval={self._interval!r}, deadline={self._deadline!r}, "
            f"last_inbound={self._last_inbound!r}, dead={self._dead})"
        )
