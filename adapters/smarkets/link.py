"""The Smarkets streaming API as a Link adapter: a supervised session.

One connection is one session. On connect the adapter logs in (with the account sequence
to resume from, once one is known); the LOGIN_RESPONSE brings the link up. The session's
incoming sequence numbers are the connection's: :class:`ClientCodec` checks them as it
reads (an :class:`~.protocol.InboundSequencer`), asks for a REPLAY when a gap opens (again
after ``retry_after`` seconds without progress, and drops the connection after
``max_replay_attempts`` requests), honours GAPFILL, drops duplicates and answers every
HEARTBEAT at once, before the seq check, as the SDK does. What reaches the link's consumer is
every payload once, in session order, as a :class:`~.protocol.Frame`.

Across connections the session resumes by account sequence: the consumer records the
newest ``account_sequence_64`` it has seen in :attr:`SmarketsAdapter.resume_from`, the next
LOGIN asks for everything after it, and the consumer drops what it had already seen.

Market subscriptions are the link's streams (``("market", market_id)``), so each is sent
again after a reconnect; their quotes are unsequenced data (a fresh MarketQuotes supersedes
what was missed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from actorwire.actors.link import (
    Authenticated,
    AuthFailed,
    LinkAdapter,
    Reply,
    Routed,
    SessionLost,
    TcpTransport,
    Transport,
    Wiring,
)

from . import eto, seto
from .protocol import (
    MAX_FRAME_SIZE,
    Broken,
    Frame,
    Garbage,
    InboundSequencer,
    SmarketsCodec,
    heartbeat,
    login,
    ping,
    replay,
    wrap,
)

if TYPE_CHECKING:
    from ssl import SSLContext

__all__ = ["ClientCodec", "HeartbeatDue", "ReplayDue", "SmarketsAdapter", "market_stream"]

log = structlog.get_logger("actorwire.smarkets")

MAX_REPLAY_ATTEMPTS = 3
"""REPLAY requests for one gap before the connection is dropped (the session then resumes
on a new one by account sequence)."""


@dataclass(frozen=True, slots=True)
class HeartbeatDue:
    """The exchange sent a HEARTBEAT: answer it now."""


@dataclass(frozen=True, slots=True)
class ReplayDue:
    """Incoming payloads from ``seq`` on are missing: ask for a REPLAY."""

    seq: int


@dataclass(frozen=True, slots=True)
class ReplayFailed:
    """A gap that REPLAY did not fill: the connection is dropped."""

    seq: int
    attempts: int


def market_stream(market_id: int) -> tuple[str, int]:
    """The link stream of a market subscription."""
    return ("market", market_id)


class ClientCodec(SmarketsCodec):
    """The client's codec for one connection: frames, plus the session's incoming order.

    ``events()`` returns, in order: :class:`HeartbeatDue` for each HEARTBEAT (whatever its
    seq), each payload once in seq order as a :class:`Frame` (GAPFILLs fill their seq and
    are not returned), :class:`Garbage`, and :class:`ReplayDue` when a REPLAY is due. A
    LOGIN_RESPONSE resets the outgoing seq to its ``reset`` before anything else is encoded.
    """

    __slots__ = ("clock", "logged_in", "max_replay_attempts", "sequencer", "unsent")

    def __init__(
        self,
        max_frame_size: int = MAX_FRAME_SIZE,
        *,
        max_held_bytes: int = 16 * 1024 * 1024,
        retry_after: float = 2.0,
        max_replay_attempts: int = MAX_REPLAY_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_frame_size)
        self.sequencer: InboundSequencer[Frame] = InboundSequencer(
            max_held_bytes=max_held_bytes, retry_after=retry_after
        )
        self.max_replay_attempts = max_replay_attempts
        self.clock = clock
        self.logged_in = False
        """True once the LOGIN_RESPONSE is read: only then may anything but the LOGIN go."""
        self.unsent = 0
        """Payloads refused because they came before the LOGIN_RESPONSE."""

    def events(self) -> list[Any]:
        raw = super().events()
        if not raw:
            return raw
        now = self.clock()
        seq = self.sequencer
        out: list[Any] = []
        append = out.append
        eto_kind = seto.PAYLOAD_ETO
        for item in raw:
            if type(item) is not Frame:
                append(item)
                continue
            frame: Frame = item
            payload = frame.protobuf
            ep = payload.eto_payload
            if payload.type != eto_kind:
                # The hot path: a trading payload, in order, no gap open. (The sequencer's
                # own accept() does the same; inlined, it costs a third less per frame.)
                n = ep.seq
                if n == seq.expected and not seq.gap_open:
                    seq.expected = n + 1
                    seq.delivered += 1
                    append(frame)
                    continue
                seq.accept(n, frame, now, len(frame.bytes))
                out.extend(seq.released())
                continue
            kind = ep.type
            if kind == eto.PAYLOAD_HEARTBEAT:
                append(HeartbeatDue())  # answered before the seq check, as the SDK does
            elif kind == eto.PAYLOAD_LOGIN_RESPONSE:
                self.reset_outseq(ep.login_response.reset)
                self.logged_in = True
            if kind == eto.PAYLOAD_GAPFILL:
                seq.gapfill(ep.seq, now)
            else:
                seq.accept(ep.seq, frame, now, len(frame.bytes))
            out.extend(seq.released())
        if seq.gap_open:
            due = seq.replay_from(now)
            if due is not None:
                if seq.attempts > self.max_replay_attempts:
                    out.append(ReplayFailed(due, seq.attempts - 1))
                else:
                    out.append(ReplayDue(due))
        return out


class SmarketsTransport(TcpTransport):
    """A TcpTransport whose frames to write may be ``seto.Payload`` objects: each is stamped
    with the connection's next outgoing seq as it is written, so seqs go out in order."""

    async def write(self, frames: list[Any]) -> None:
        codec = self._codec
        if codec is not None and any(type(f) is seto.Payload for f in frames):
            assert isinstance(codec, ClientCodec)
            if not codec.logged_in:
                # Before the LOGIN_RESPONSE only the LOGIN may go: the exchange refuses a
                # session whose first payload is anything else, and the response's reset
                # would give the same seqs again. What a user sends then is refused as
                # sends on a down link are (orders go again once the link is up).
                kept = [
                    f for f in frames if type(f) is not seto.Payload or f.type == seto.PAYLOAD_LOGIN
                ]
                if len(kept) < len(frames):
                    codec.unsent += len(frames) - len(kept)
                    log.info("not logged in yet: payloads not sent", count=len(frames) - len(kept))
                frames = kept
            frames = [codec.encode(f) if type(f) is seto.Payload else f for f in frames]
        if frames:
            await super().write(frames)


class SmarketsAdapter(LinkAdapter):
    """Smarkets hooks for a Link. Credentials stay out of the repr and of logs."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        ssl_context: SSLContext | None = None,
        resume_from: int | None = None,
        max_frame_size: int = MAX_FRAME_SIZE,
        replay_retry: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._token = token
        self._ssl = ssl_context
        self.resume_from = resume_from
        """The newest account sequence the client has seen: the next LOGIN resumes after it."""
        self.max_frame_size = max_frame_size
        self.replay_retry = replay_retry
        self.session: str | None = None

    def __repr__(self) -> str:
        tls = ", tls" if self._ssl is not None else ""
        return f"SmarketsAdapter({self.host}:{self.port}{tls})"

    def make_transport(self, wiring: Wiring) -> Transport:
        size, retry = self.max_frame_size, self.replay_retry
        return SmarketsTransport(
            self,
            wiring,
            self.host,
            self.port,
            lambda: ClientCodec(size, retry_after=retry),
            ssl=self._ssl,
        )

    def route(self, frames: list[Any]) -> Routed:
        out = Routed()
        data = out.data
        for frame in frames:
            kind = type(frame)
            if kind is Frame:
                payload = frame.protobuf
                if payload.type == seto.PAYLOAD_ETO:
                    etype = payload.eto_payload.type
                    if etype == eto.PAYLOAD_LOGIN_RESPONSE:
                        out.control.append(Authenticated())
                    elif etype == eto.PAYLOAD_LOGOUT:
                        reason = payload.eto_payload.logout.reason
                        name = eto.LogoutReason.Name(reason) if reason else "LOGOUT"
                        if reason == eto.LOGOUT_UNAUTHORISED:
                            out.control.append(AuthFailed(name))
                        elif reason != eto.LOGOUT_CONFIRMATION:
                            out.control.append(SessionLost(name))
                    elif etype == eto.PAYLOAD_PONG:
                        out.replies.append(Reply("pong", frame))
                data.append((None, None, frame))
            elif kind is HeartbeatDue or kind is ReplayDue:
                out.control.append(frame)
            elif kind is ReplayFailed:
                out.errors.append(
                    (
                        f"replay from seq {frame.seq} not answered after {frame.attempts} requests",
                        True,
                    )
                )
            elif kind is Broken:
                out.errors.append((f"the stream broke: {frame.reason}", True))
            elif kind is Garbage:
                out.errors.append((f"{frame.reason}: {len(frame.raw)} bytes", False))
            else:
                out.errors.append((f"unexpected frame {kind.__name__}", False))
        return out

    def on_connected(self) -> list[Any]:
        return [
            login(
                0,
                username=self._username,
                password=self._password,
                cookie=self._token,
                account_sequence=self.resume_from,
            )
        ]

    def on_control(self, event: Any) -> list[Any]:
        if type(event) is HeartbeatDue:
            return [heartbeat(0)]
        if type(event) is ReplayDue:
            return [replay(0, event.seq)]
        return []

    def subscribe(self, stream: Hashable, from_seq: Any | None) -> list[Any]:
        _, market_id = _market(stream)
        return [wrap(seto.MarketSubscribe(market_id=market_id))]

    def unsubscribe(self, stream: Hashable) -> list[Any]:
        _, market_id = _market(stream)
        return [wrap(seto.MarketUnsubscribe(market_id=market_id))]

    def recover(self, stream: Hashable, first: int, last: int) -> list[Any] | None:
        return None  # market data is unsequenced: nothing to recover

    def ping(self, n: int) -> Any:
        return ping(0)

    def request(self, request: Any) -> tuple[Hashable, list[Any]]:
        """``Link.call(Ping())`` answers with the exchange's PONG."""
        if not isinstance(request, Ping):
            raise TypeError(f"the Smarkets link answers Ping requests only, got {request!r}")
        return "pong", [ping(0)]


@dataclass(frozen=True, slots=True)
class Ping:
    """A PING whose PONG answers a ``Link.call``."""


def _market(stream: Hashable) -> tuple[str, int]:
    if (
        not isinstance(stream, tuple)
        or len(stream) != 2
        or stream[0] != "market"
        or not isinstance(stream[1], int)
    ):
        raise ValueError(f"a Smarkets stream is ('market', market_id), got {stream!r}")
    return stream
