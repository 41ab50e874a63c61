"""What one client's channel actors share: the Session, the ZMQ context, the counters, the
lifecycle actor's address, the stdin handler and the decoding of what they receive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq.asyncio

from ...actors.clock import Clock
from .replies import msg_type

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from ...actors import Address
    from .session import Session

__all__ = ["ChannelStats", "StdinHandler", "Wiring"]

StdinHandler = Callable[[str, bool], str]
"""``handler(prompt, password) -> str``: answers ``input()`` in kernel code."""


class ChannelStats:
    """Counters for one client. Each field is written by one thread (the loop or an actor)."""

    __slots__ = (
        "heartbeat_pings",
        "heartbeat_resets",
        "received",
        "rejected",
        "rejected_by_channel",
        "sent",
        "stdin_answered",
        "stdin_unanswered",
        "unsent",
    )

    def __init__(self) -> None:
        self.received: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.rejected = 0
        self.rejected_by_channel: dict[str, int] = {}
        self.unsent = 0
        self.heartbeat_pings = 0
        self.heartbeat_resets = 0
        self.stdin_answered = 0
        self.stdin_unanswered = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            k: dict(v) if isinstance(v := getattr(self, k), dict) else v for k in self.__slots__
        }


class Wiring:
    """What a client's channel actors share: the Session, the ZMQ context, counters, the
    lifecycle actor's address and the logger."""

    def __init__(
        self,
        session: Session,
        context: zmq.asyncio.Context,
        log: FilteringBoundLogger,
        clock: Clock,
    ) -> None:
        self.session = session
        self.context = context
        self.log = log
        self.clock = clock
        self.stats = ChannelStats()
        self.lifecycle: Address | None = None
        self.identity = session.session.encode()
        # Set once the stdin socket has finished its handshake with the kernel: before
        # that the kernel's ROUTER drops an input_request it addresses to us, and a kernel
        # in input() would wait for ever.
        self.stdin_connected = threading.Event()
        self._stdin_handler: StdinHandler | None = None
        self._lock = threading.Lock()

    def new_msg(
        self, msg_type_: str, content: dict[str, Any], parent: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """``Session.msg`` from any thread (it numbers messages with a plain counter)."""
        with self._lock:
            return self.session.msg(msg_type_, content, parent=parent)

    @property
    def stdin_handler(self) -> StdinHandler | None:
        return self._stdin_handler

    @stdin_handler.setter
    def stdin_handler(self, handler: StdinHandler | None) -> None:
        self._stdin_handler = handler

    def decode(self, channel: str, url: str, batch: list[list[bytes]]) -> list[dict[str, Any]]:
        """Verify and decode raw multipart messages (on the loop); count and log rejects."""
        session = self.session
        stats = self.stats
        out: list[dict[str, Any]] = []
        for frames in batch:
            try:
                _idents, rest = session.feed_identities(frames, copy=True)
                msg = session.deserialize(rest, content=True, copy=True)
                if not isinstance(msg.get("header"), dict) or not msg_type(msg):
                    raise ValueError("message has no header.msg_type")
                if not isinstance(msg.get("parent_header"), dict) or not isinstance(
                    msg.get("content"), dict
                ):
                    raise ValueError("message parent_header and content must be objects")
            except Exception as exc:  # noqa: BLE001 - bad input from the network is counted
                stats.rejected += 1
                by = stats.rejected_by_channel
                by[channel] = by.get(channel, 0) + 1
                self.log.warning(
                    "message rejected",
                    channel=channel,
                    peer=url,
                    reason=f"{type(exc).__name__}: {str(exc)[:200]}",
                    rejected=stats.rejected,
                )
                continue
            out.append(msg)
        received = stats.received
        received[channel] = received.get(channel, 0) + len(out)
        return out
