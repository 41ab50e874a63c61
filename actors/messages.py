"""Messages the runtime delivers to actors, and the reasons an actor stops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .address import Address

__all__ = ["NORMAL", "SHUTDOWN", "Control", "ExpectedFailure", "Terminated"]

NORMAL = "normal"
"""Reason for an actor that stopped because it was asked to (or returned from its work)."""
SHUTDOWN = "shutdown"
"""Reason for an actor stopped by its supervisor or by the system shutting down."""


def is_failure(reason: object) -> bool:
    """True when ``reason`` means the actor failed (an exception), not a requested stop."""
    return isinstance(reason, BaseException)


class ExpectedFailure(Exception):
    """An actor failure its supervisor exists to handle (a watched process exited, a peer
    went away): logged as a warning with its message, without a traceback. Mix it into
    your exception class: ``class PeerGone(ExpectedFailure, ConnectionError)``."""


class Control:
    """Base for small control messages (timer wake-ups, markers) that a timer delivers
    outside the mailbox's bound: queued after what is already waiting, never dropped or
    conflated by the overflow policy, not counted against capacity. Keep them few."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Terminated:
    """Death watch: ``address`` stopped for good (not restarted), for ``reason``.

    ``reason`` is ``"normal"``, ``"shutdown"``, or the exception the actor failed with.
    """

    address: Address
    reason: Any

    @property
    def failed(self) -> bool:
        return is_failure(self.reason)


class Stop:
    """Graceful stop: handled after every message that was told before it.

    ``target`` is the incarnation it is meant for (None: whichever runs), so a stop left in
    the mailbox never stops the incarnation that replaces it.
    """

    __slots__ = ("target",)

    def __init__(self, target: object = None) -> None:
        self.target = target


class Wake:
    """Wakes an actor blocked on its inbox so it sees an urgent stop request."""

    __slots__ = ()


WAKE = Wake()
