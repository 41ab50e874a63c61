"""The link's state machine: events in, actions out, sans-I/O.

Three rules hold in this module, as in h11's ``_state.py``:

1. Every transition of a link lives here, in one table (``_TABLE``): a phase and an event
   type name the function that handles it. An event with no entry for the current phase
   changes nothing.
2. Nothing here does I/O, reads a clock or sleeps. Time comes in with each event (``now``);
   what must happen comes out as actions (dial, send the login, arm the heartbeat, start a
   timer, report a state), which the link's actors carry out.
3. The generation, which connection an event is about, is the machine's own state. It
   outlives the actors that feed the machine (a restarted reconnect actor keeps the
   machine), so an event from an earlier connection never matches a later one.

A link ends FAILED only when the peer explicitly refuses its credentials, when
``max_attempts`` redials are used up, or when the link's own supervisor gives up; each
with its reason. Everything else (a refused dial, a dropped connection, a login nobody
answers, a peer that forgot our session, a heartbeat deadline) redials with backoff.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..backoff import BackoffPolicy

__all__ = [
    "ArmHeartbeat",
    "CloseConnection",
    "CloseExpected",
    "CloseRequested",
    "Dial",
    "DisarmHeartbeat",
    "LinkMachine",
    "LinkState",
    "LoginAccepted",
    "LoginRefused",
    "LoginTimedOut",
    "Lost",
    "Opened",
    "Phase",
    "RecoveryChanged",
    "RedialDue",
    "Report",
    "Restarted",
    "ResumeSubscriptions",
    "SendFrames",
    "Started",
    "Stopped",
    "SupervisorGaveUp",
    "SuspendSubscriptions",
    "Timer",
]


class LinkState(enum.Enum):
    """Where a link stands, as users see it; every change is reported with a reason."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECOVERING = "recovering"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"


class Phase(enum.Enum):
    """Where the machine stands (finer than LinkState)."""

    IDLE = "idle"  # not started
    DIALING = "dialing"  # a connection is being opened
    LOGGING_IN = "logging_in"  # open; the login was sent and is not answered yet
    UP = "up"  # open and logged in: subscriptions flow
    WAITING = "waiting"  # lost; a redial is due after the backoff delay
    FAILED = "failed"  # for good
    CLOSED = "closed"  # for good


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """The link starts: dial for the first time."""


@dataclass(frozen=True, slots=True)
class Restarted:
    """A new incarnation of the link's actors took over: whatever connection the old ones
    had is gone; dial again."""

    reason: str


@dataclass(frozen=True, slots=True)
class Opened:
    """Connection ``gen`` is open to ``peer``; ``hello`` are the login frames to send
    (empty: the protocol has no login, the link is up at once)."""

    gen: int
    peer: str
    hello: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Lost:
    """Connection ``gen`` is gone or unusable: a dial refused, a disconnect, a heartbeat
    deadline, a peer that no longer knows our session."""

    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class LoginAccepted:
    gen: int


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """The peer explicitly refused the credentials: no redial would succeed."""

    gen: int
    reason: str


@dataclass(frozen=True, slots=True)
class LoginTimedOut:
    gen: int


@dataclass(frozen=True, slots=True)
class RedialDue:
    gen: int


@dataclass(frozen=True, slots=True)
class RecoveryChanged:
    """The sequence side started (True) or finished (False) recovering a gap."""

    active: bool


@dataclass(frozen=True, slots=True)
class CloseRequested:
    reason: str = "closed by the user"


@dataclass(frozen=True, slots=True)
class CloseExpected:
    """The peer is about to end the connection on purpose (a logout was sent): when it
    does, the link is closed, not redialled."""

    reason: str = "closed after a logout"


@dataclass(frozen=True, slots=True)
class Stopped:
    """The link's actors stopped without a close (the system shut down)."""

    reason: str = "link stopped"


@dataclass(frozen=True, slots=True)
class SupervisorGaveUp:
    reason: str


# -- actions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dial:
    gen: int


@dataclass(frozen=True, slots=True)
class SendFrames:
    gen: int
    frames: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ArmHeartbeat:
    gen: int


@dataclass(frozen=True, slots=True)
class DisarmHeartbeat:
    pass


@dataclass(frozen=True, slots=True)
class ResumeSubscriptions:
    gen: int


@dataclass(frozen=True, slots=True)
class SuspendSubscriptions:
    pass


@dataclass(frozen=True, slots=True)
class CloseConnection:
    gen: int | None  # None: whatever connection there is


@dataclass(frozen=True, slots=True)
class Timer:
    """Deliver ``event`` back to the machine after ``delay`` seconds."""

    delay: float
    event: RedialDue | LoginTimedOut


@dataclass(frozen=True, slots=True)
class Report:
    state: LinkState
    reason: str


Action = (
    Dial
    | SendFrames
    | ArmHeartbeat
    | DisarmHeartbeat
    | ResumeSubscriptions
    | SuspendSubscriptions
    | CloseConnection
    | Timer
    | Report
)


class LinkMachine:
    """One link's state: phase, generation, reported state, backoff and counters.

    ``handle(event, now)`` returns the actions to carry out, in order. ``login_timeout``
    bounds the wait for an answer to the login; ``backoff`` spaces redials.
    """

    def __init__(self, backoff: BackoffPolicy, *, login_timeout: float) -> None:
        if not login_timeout > 0:
            raise ValueError(f"login_timeout must be > 0 seconds, got {login_timeout!r}")
        self.backoff = backoff
        self.login_timeout = login_timeout
        self.phase = Phase.IDLE
        self.gen = 0
        self.state: LinkState | None = None
        self.peer = "?"
        self.recovering = False
        self.reconnects = 0
        self.closing: str | None = None  # CloseExpected's reason, until the loss it expects
        self.stale_events = 0
        self.since = 0.0  # when the current phase began
        self.reason = ""

    @property
    def attempts(self) -> int:
        return self.backoff.attempts

    def handle(self, event: Any, now: float) -> list[Action]:
        gen = getattr(event, "gen", None)
        if gen is not None and gen != self.gen:
            self.stale_events += 1
            return []  # about a connection that is no longer the current one
        transition = _TABLE.get((self.phase, type(event)))
        if transition is None:
            return []
        return transition(self, event, now)

    # -- building blocks --------------------------------------------------------------

    def _enter(self, phase: Phase, now: float) -> None:
        self.phase = phase
        self.since = now

    def _report(self, state: LinkState, reason: str) -> list[Action]:
        if state is self.state:
            return []  # only changes are reported (each redial is logged, not reported)
        self.state = state
        self.reason = reason
        return [Report(state, reason)]

    def _dial(self, now: float, state: LinkState, reason: str) -> list[Action]:
        self.gen += 1
        self._enter(Phase.DIALING, now)
        return [DisarmHeartbeat(), Dial(self.gen), *self._report(state, reason)]

    def _up(self, now: float) -> list[Action]:
        self._enter(Phase.UP, now)
        self.backoff.reset()
        state = LinkState.RECOVERING if self.recovering else LinkState.CONNECTED
        return [ResumeSubscriptions(self.gen), *self._report(state, f"connected to {self.peer}")]

    def _stop_connection(self) -> list[Action]:
        return [SuspendSubscriptions(), DisarmHeartbeat(), CloseConnection(self.gen)]

    def _end(self, phase: Phase, state: LinkState, reason: str, now: float) -> list[Action]:
        """For good (FAILED or CLOSED): whatever connection there is goes too."""
        self._enter(phase, now)
        return [
            SuspendSubscriptions(),
            DisarmHeartbeat(),
            CloseConnection(None),
            *self._report(state, reason),
        ]

    def _fail(self, now: float, reason: str) -> list[Action]:
        return self._end(Phase.FAILED, LinkState.FAILED, reason, now)


# -- transitions ------------------------------------------------------------------------


def _start(m: LinkMachine, event: Started, now: float) -> list[Action]:
    return m._dial(now, LinkState.CONNECTING, "starting")


def _restart(m: LinkMachine, event: Restarted, now: float) -> list[Action]:
    return [*m._stop_connection(), *m._dial(now, LinkState.RECONNECTING, event.reason)]


def _opened(m: LinkMachine, event: Opened, now: float) -> list[Action]:
    m.peer = event.peer
    if not event.hello:
        return [ArmHeartbeat(m.gen), *m._up(now)]
    m._enter(Phase.LOGGING_IN, now)
    return [
        ArmHeartbeat(m.gen),
        SendFrames(m.gen, event.hello),
        Timer(m.login_timeout, LoginTimedOut(m.gen)),
    ]


def _accepted(m: LinkMachine, event: LoginAccepted, now: float) -> list[Action]:
    return m._up(now)


def _refused(m: LinkMachine, event: LoginRefused, now: float) -> list[Action]:
    return m._fail(now, f"authentication failed: {event.reason}")


def _login_timed_out(m: LinkMachine, event: LoginTimedOut, now: float) -> list[Action]:
    return _lose(m, f"the login was not answered within {m.login_timeout}s", now)


def _lost(m: LinkMachine, event: Lost, now: float) -> list[Action]:
    if m.closing is not None:
        return _close(m, CloseRequested(m.closing), now)
    return _lose(m, event.reason, now)


def _expect_close(m: LinkMachine, event: CloseExpected, now: float) -> list[Action]:
    m.closing = event.reason
    return []


def _lose(m: LinkMachine, reason: str, now: float) -> list[Action]:
    actions = m._stop_connection()
    delay = m.backoff.next_delay()
    if delay is None:
        return [
            *actions,
            *m._fail(now, f"gave up after {m.backoff.attempts} attempts; last error: {reason}"),
        ]
    m.reconnects += 1
    m._enter(Phase.WAITING, now)
    return [
        *actions,
        Timer(delay, RedialDue(m.gen)),
        *m._report(LinkState.RECONNECTING, f"{reason}; redialling in {delay:.3f}s"),
    ]


def _redial(m: LinkMachine, event: RedialDue, now: float) -> list[Action]:
    return m._dial(now, LinkState.RECONNECTING, "redialling")


def _recovery(m: LinkMachine, event: RecoveryChanged, now: float) -> list[Action]:
    m.recovering = event.active
    if m.phase is not Phase.UP:
        return []
    if event.active:
        return m._report(LinkState.RECOVERING, "sequence gap: recovering")
    return m._report(LinkState.CONNECTED, "gap recovered")


def _recovery_noted(m: LinkMachine, event: RecoveryChanged, now: float) -> list[Action]:
    m.recovering = event.active  # reported once the link is up again
    return []


def _close(m: LinkMachine, event: CloseRequested | Stopped, now: float) -> list[Action]:
    return m._end(Phase.CLOSED, LinkState.CLOSED, event.reason, now)


def _gave_up(m: LinkMachine, event: SupervisorGaveUp, now: float) -> list[Action]:
    return m._fail(now, f"link supervisor gave up: {event.reason}")


_Transition = Callable[[LinkMachine, Any, float], list[Action]]
_LIVE = (Phase.DIALING, Phase.LOGGING_IN, Phase.UP, Phase.WAITING)
_CONNECTED = (Phase.DIALING, Phase.LOGGING_IN, Phase.UP)

_TABLE: dict[tuple[Phase, type], _Transition] = {
    (Phase.IDLE, Started): _start,
    (Phase.IDLE, Restarted): _start,
    **{(p, Restarted): _restart for p in _LIVE},
    (Phase.DIALING, Opened): _opened,
    **{(p, Lost): _lost for p in _CONNECTED},
    (Phase.LOGGING_IN, LoginAccepted): _accepted,
    # A refusal can come while dialing too: a transport that logs in inside open().
    **{(p, LoginRefused): _refused for p in _CONNECTED},
    (Phase.LOGGING_IN, LoginTimedOut): _login_timed_out,
    (Phase.WAITING, RedialDue): _redial,
    (Phase.UP, RecoveryChanged): _recovery,
    **{(p, RecoveryChanged): _recovery_noted for p in (Phase.DIALING, Phase.LOGGING_IN)},
    **{(p, RecoveryChanged): _recovery_noted for p in (Phase.WAITING, Phase.IDLE)},
    **{(p, CloseRequested): _close for p in (Phase.IDLE, *_LIVE, Phase.FAILED)},
    **{(p, CloseExpected): _expect_close for p in _LIVE},
    **{(p, Stopped): _close for p in (Phase.IDLE, *_LIVE)},
    **{(p, SupervisorGaveUp): _gave_up for p in (Phase.IDLE, *_LIVE)},
}
"""Every transition: (phase, event type) -> handler. FAILED and CLOSED are final (a close
still turns FAILED into CLOSED)."""
