"""What an adapter plugs into a Link: its transport and a few sans-I/O hooks.

The Link owns connecting, liveness, reconnecting and ordering; the adapter only says how
its protocol spells each step (authenticate, subscribe from a sequence number, ask for a
replay, ping) and how to read its frames (which are data with a stream and a sequence
number, which are control).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ActorwireError

if TYPE_CHECKING:
    from .transport import Transport, Wiring

__all__ = [
    "AuthFailed",
    "AuthRefused",
    "Authenticated",
    "LinkAdapter",
    "Ordering",
    "PeerError",
    "Reply",
    "Routed",
    "SessionLost",
]


class Ordering(enum.Enum):
    """How a link orders each stream's data by sequence number."""

    REPLAY = "replay"
    """Every number in turn: gaps are held and recovered (replay, or resubscribe)."""
    LATEST = "latest"
    """Only newer numbers: older and repeated ones are dropped, gaps are accepted. For
    last-value protocols, where a re-snapshot supersedes the updates it replaces."""


class AuthRefused(ActorwireError):
    """Raised by a transport's ``open()`` when the peer refuses the credentials: the link
    goes FAILED instead of redialling. The message must not contain the credential."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Control event: the peer accepted our credentials; the link is up."""


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """Control event: the peer refused our credentials; the link goes FAILED (no retry)."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionLost:
    """Control event: the peer no longer knows our session (it says we are not logged in):
    the link drops the connection, redials and logs in again. Not a refusal of the
    credentials: it never ends the link."""

    reason: str


@dataclass(frozen=True, slots=True)
class PeerError:
    """Control event: the peer reported an error that does not end the link."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one ``Link.call``, matched to it by ``key`` (the key
    ``LinkAdapter.request`` gave the request). ``error`` set means the peer refused: the
    call raises it."""

    key: Hashable
    value: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class Routed:
    """One read's frames, sorted by ``LinkAdapter.route``.

    ``data`` holds ``(stream, seq, item)``; ``seq`` None means unsequenced (delivered as is).
    ``seq`` is an int for Ordering.REPLAY, any totally ordered value for Ordering.LATEST.
    ``control`` holds control events (Authenticated, AuthFailed, SessionLost, PeerError, or the
    adapter's own, handed to ``LinkAdapter.on_control``). ``errors`` holds ``(reason,
    fatal)`` for frames that could not be understood: counted and logged; a fatal one
    drops the connection. ``replies`` holds the answers to ``Link.call`` requests (acks,
    request results): the link hands each to the call waiting for its key; one that no call
    waits for (it timed out) is counted and logged.
    """

    data: list[tuple[Hashable, Any, Any]] = field(default_factory=list)
    control: list[Any] = field(default_factory=list)
    errors: list[tuple[str, bool]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


class LinkAdapter(abc.ABC):
    """The protocol-specific half of a Link. Every method is sans-I/O and quick."""

    ordering: ClassVar[Ordering] = Ordering.REPLAY
    always_ping: ClassVar[bool] = False
    """Ping every heartbeat interval even on a busy link (the peer expects pings)."""

    @abc.abstractmethod
    def make_transport(self, wiring: Wiring) -> Transport:
        """A new, not yet started Transport actor built with ``wiring`` (the Link calls this
        again for each restart of the transport)."""

    @abc.abstractmethod
    def route(self, frames: list[Any]) -> Routed:
        """Sort one read's decoded frames into data, control, errors and replies.

        Pure: it runs on the I/O loop and only returns what it found; the link acts on it.
        """

    def request(self, request: Any) -> tuple[Hashable, list[Any]]:
        """The reply key and the frames of a ``Link.call(request)`` answered on the
        connection itself (``route`` emits ``Reply(key, ...)`` for it). A transport
        answers requests that travel out of band (a unary RPC) in ``Transport.request``."""
        raise TypeError(f"{type(self).__name__} does not take requests: {request!r}")

    def on_connected(self) -> list[Any]:
        """Frames to send as soon as a connection opens (e.g. login).

        Return [] when the protocol needs no handshake: the link is up at once. Otherwise
        ``route`` must emit Authenticated (or AuthFailed) when the peer answers.
        """
        return []

    def subscribe(self, stream: Hashable, from_seq: Any | None) -> list[Any]:
        """Frames that (re)subscribe to ``stream``, replaying from ``from_seq`` if given.

        With Ordering.REPLAY ``from_seq`` is the first sequence number wanted. With
        Ordering.LATEST a resubscribe after a reconnect gets the newest position the link
        delivered for the stream (the ``seq`` that ``route`` gave its data), so a protocol
        that can resume after a position does so.
        """
        return []

    def data_stream(self, stream: Hashable) -> Hashable:
        """The stream key ``route`` gives the data of subscription ``stream`` (the
        subscription itself by default; keysquare's data is keyed by its sub_id)."""
        return stream

    def unsubscribe(self, stream: Hashable) -> list[Any]:
        """Frames that end a subscription."""
        return []

    def recover(self, stream: Hashable, first: int, last: int) -> list[Any] | None:
        """Frames asking the peer to replay ``first..last``; None if it cannot replay
        (the link then resubscribes from the first missing sequence number)."""
        return None

    def ping(self, n: int) -> Any | None:
        """The protocol's ping frame, or None if it has none (traffic alone keeps it up)."""
        return None

    def on_control(self, event: Any) -> list[Any]:
        """An adapter-specific control event arrived; return frames to send in answer."""
        return []
