"""actorwire.actors: the runtime.

Actors multiplexed on dispatchers (a shared pool of workers; a thread only for a pinned
actor), with bounded mailboxes, stable addresses that survive restarts, OTP-style
supervision, death watch, timers, one shared asyncio I/O loop per system, dead letters,
metrics and structured logging; and the supervised links every adapter reuses.
"""

from pykka import ActorDeadError

from .actor import Actor
from .address import DEFAULT_ASK_TIMEOUT, Address
from .backoff import Backoff, BackoffPolicy
from .clock import Clock, ManualClock
from .deadletters import DeadLetter, DeadLetters
from .dispatcher import Dispatcher, PinnedDispatcher, PoolDispatcher, PoolExhausted
from .errors import ActorwireError
from .ioloop import IOLoop
from .link import (
    HeartbeatPolicy,
    Link,
    LinkAdapter,
    LinkState,
    SequenceTracker,
    TcpTransport,
    Transport,
)
from .log import configure_logging, redact_secrets, redact_text
from .mailbox import Mailbox, MailboxFull, Overflow
from .messages import NORMAL, SHUTDOWN, Control, ExpectedFailure, Terminated
from .supervisor import (
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorEscalation,
    WhichChildren,
)
from .system import ActorStartError, ActorSystem
from .timers import Timer

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "NORMAL",
    "SHUTDOWN",
    "Actor",
    "ActorDeadError",
    "ActorStartError",
    "ActorSystem",
    "ActorwireError",
    "Address",
    "Backoff",
    "BackoffPolicy",
    "ChildSpec",
    "Clock",
    "Control",
    "DeadLetter",
    "DeadLetters",
    "Dispatcher",
    "ExpectedFailure",
    "HeartbeatPolicy",
    "IOLoop",
    "Link",
    "LinkAdapter",
    "LinkState",
    "Mailbox",
    "MailboxFull",
    "ManualClock",
    "Overflow",
    "PinnedDispatcher",
    "PoolDispatcher",
    "PoolExhausted",
    "Restart",
    "SequenceTracker",
    "Strategy",
    "Supervisor",
    "SupervisorEscalation",
    "TcpTransport",
    "Terminated",
    "Timer",
    "Transport",
    "WhichChildren",
    "configure_logging",
    "redact_secrets",
    "redact_text",
]
