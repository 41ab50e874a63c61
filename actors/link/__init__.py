"""Links: the supervised transport every adapter reuses.

Sans-I/O policies (``BackoffPolicy``, ``HeartbeatPolicy``, ``SequenceTracker``) with time
passed in, and the thin actors around them (``Transport``, ``HeartbeatActor``,
``ReconnectActor``, ``SequenceActor``) composed by ``Link`` under a supervisor; the link's
whole state machine is ``LinkMachine``, a sans-I/O table the reconnect actor feeds.
"""

from ..backoff import Backoff, BackoffPolicy
from .adapter import (
    Authenticated,
    AuthFailed,
    AuthRefused,
    LinkAdapter,
    Ordering,
    PeerError,
    Reply,
    Routed,
    SessionLost,
)
from .heartbeat import HeartbeatAction, HeartbeatPolicy
from .link import HeartbeatActor, Link, ReconnectActor, SequenceActor, StateListener
from .machine import LinkMachine, LinkState, Phase
from .sequence import Deliver, Escalate, LatestFilter, RequestRecovery, SequenceTracker
from .transport import (
    Call,
    Close,
    Connect,
    Connected,
    ConnectFailed,
    Disconnected,
    FrameCodec,
    Inbound,
    LinkStats,
    ProtocolFault,
    Send,
    TcpTransport,
    Transport,
    Wiring,
)

__all__ = [
    "AuthFailed",
    "AuthRefused",
    "Authenticated",
    "Backoff",
    "BackoffPolicy",
    "Call",
    "Close",
    "Connect",
    "ConnectFailed",
    "Connected",
    "Deliver",
    "Disconnected",
    "Escalate",
    "FrameCodec",
    "HeartbeatAction",
    "HeartbeatActor",
    "HeartbeatPolicy",
    "Inbound",
    "LatestFilter",
    "Link",
    "LinkAdapter",
    "LinkMachine",
    "LinkState",
    "LinkStats",
    "Ordering",
    "PeerError",
    "Phase",
    "ProtocolFault",
    "ReconnectActor",
    "Reply",
    "RequestRecovery",
    "Routed",
    "Send",
    "SequenceActor",
    "SequenceTracker",
    "SessionLost",
    "StateListener",
    "TcpTransport",
    "Transport",
    "Wiring",
]
