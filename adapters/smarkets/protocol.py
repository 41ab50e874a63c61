"""The Smarkets streaming API, sans-I/O: payloads, their names, the stream codec, sequencing.

Everything here works on bytes and ``seto.Payload`` objects; the client and the embedded
exchange share it. It follows smk-python-sdk 9.4.4 wherever the SDK fixes a behaviour:

- :class:`Frame` is the SDK's ``Frame`` namedtuple, ``(bytes, protobuf)``: a payload's bytes
  and the ``seto.Payload`` parsed from them.
- :data:`CALLBACKS` are the SDK's 51 handler names and :func:`payload_name` the name a payload
  is dispatched under (``"seto.order_accepted"``, ``"eto.pong"``).
- :func:`wrap` builds what the SDK's ``send(message)`` sends, and :func:`login`,
  :func:`ping`, :func:`heartbeat`, :func:`logout` (and the other ETO helpers) what its
  ``Session`` sends: the same bytes.
- :class:`SmarketsCodec` frames the byte stream and stamps outgoing sequence numbers;
  :class:`InboundSequencer` tracks incoming ones (the rules are in its docstring).

The wire: each payload is one LEB128-framed ``seto.Payload`` (see ``framing.py``). Every
payload carries a sequence number, ``eto_payload.seq``, counted per direction and per session
from 1 (the LOGIN). The first answer to a LOGIN is a LOGIN_RESPONSE whose ``reset`` is the
client's next outgoing seq. A peer that sees a gap asks for ``REPLAY(seq)``: the other side
resends everything from ``seq`` on with the original seqs and ``is_replay`` set, and a
``GAPFILL`` carrying seq S in place of a payload S it no longer holds.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Generic, Literal, NamedTuple, TypeAlias, TypeVar, cast

from actorwire.actors.framing import FrameError, Leb128Framer
from google.protobuf.message import DecodeError, Message

from . import eto, seto
from .framing import MIN_FRAME_SIZE

__all__ = [
    "CALLBACKS",
    "HELD_OVERHEAD",
    "MAX_FRAME_SIZE",
    "Broken",
    "Frame",
    "FrameError",
    "Garbage",
    "InboundSequencer",
    "SmarketsCodec",
    "Verdict",
    "eto_payload",
    "gapfill",
    "heartbeat",
    "is_session_control",
    "login",
    "login_response",
    "logout",
    "payload_name",
    "ping",
    "pong",
    "replay",
    "throttle_exceeded",
    "wrap",
]

MAX_FRAME_SIZE = 4 * 1024 * 1024
"""Largest payload the codec takes by default (4 MiB); a longer length prefix is a FrameError."""


# --------------------------------------------------------------------------- frames


class Frame(NamedTuple):
    """One received payload, as the SDK's ``Frame``: its bytes and the parsed ``seto.Payload``.

    The repr names the payload and its seq only: a LOGIN's password never shows in a log.
    """

    bytes: builtins.bytes
    """The payload's bytes, without the frame's length prefix and padding."""
    protobuf: seto.Payload
    """The payload parsed from ``bytes``."""

    def __repr__(self) -> str:
        payload = self.protobuf
        return (
            f"Frame({payload_name(payload)} seq={payload.eto_payload.seq}"
            f"{' replay' if payload.eto_payload.is_replay else ''}, {len(self.bytes)} bytes)"
        )


@dataclass(frozen=True, slots=True)
class Garbage:
    """A payload that does not parse, or lacks ``type`` or ``eto_payload.seq``.

    The link counts it and reads on: the framing around it was sound. ``raw`` (at most the
    codec's ``max_frame_size``) stays out of the repr, since it may hold a login.
    """

    reason: str
    raw: bytes

    def __repr__(self) -> str:
        return f"Garbage(reason={self.reason!r}, raw=<{len(self.raw)} bytes>)"


@dataclass(frozen=True, slots=True)
class Broken:
    """The stream broke (an oversize or malformed length prefix) after the frames before it
    were handed over: the connection must be closed. (A prefix that breaks the stream with
    no good frame before it raises FrameError from ``receive_data`` instead.)"""

    reason: str


# --------------------------------------------------------------------------- names


def _names(prefix: str, enum: Any) -> dict[int, str]:
    """``{value: "<prefix>.<name>"}`` for a PayloadType enum, as the SDK names its handlers:
    lowercased, without ``PAYLOAD_``, in the order of ``dir()`` (sorted by constant name)."""
    return {enum.Value(name): f"{prefix}.{name[8:].lower()}" for name in sorted(enum.keys())}


_ETO_NAMES = _names("eto", eto.PayloadType)
_SETO_NAMES = _names("seto", seto.PayloadType)

CALLBACKS: tuple[str, ...] = (*_ETO_NAMES.values(), *_SETO_NAMES.values())
"""The SDK's 51 handler names, in its order: ``eto.`` + the 10 eto payload types, then
``seto.`` + the 41 seto ones, each lowercased without ``PAYLOAD_``."""


def payload_name(payload: seto.Payload) -> str:
    """The name ``payload`` is dispatched under: ``"eto." + `` its ETO type for an ETO payload
    (``"eto.none"`` when ``eto_payload.type`` is unset), else ``"seto." + `` its type."""
    kind = payload.type
    if kind == seto.PAYLOAD_ETO:
        return _ETO_NAMES[payload.eto_payload.type]
    return _SETO_NAMES[kind]


# --------------------------------------------------------------------------- building payloads


def _bodies() -> dict[type[Message], tuple[seto.PayloadType, str]]:
    """``{body class: (payload type, field name)}`` for every body field of ``seto.Payload``.

    The type is the one named like the field: ``order_create`` is PAYLOAD_ORDER_CREATE, and
    ``order_execute_voided`` (class ``OrderExecutedVoid``) PAYLOAD_ORDER_EXECUTE_VOIDED, the
    one body whose class is not named like its field (the SDK's ``send`` fails on it).
    """
    out: dict[type[Message], tuple[seto.PayloadType, str]] = {}
    for field in seto.Payload.DESCRIPTOR.fields:
        if field.message_type is None or field.name == "eto_payload":
            continue
        cls = getattr(seto, field.message_type.name)
        assert cls.DESCRIPTOR is field.message_type, field.name
        kind = seto.PayloadType.Value("PAYLOAD_" + field.name.upper())
        out[cls] = (cast("seto.PayloadType", kind), field.name)
    return out


_BODIES = _bodies()


def wrap(message: Message, seq: int = 0) -> seto.Payload:
    """A ``seto.Payload`` carrying a copy of ``message``, as the SDK's ``send(message)`` builds it.

    ``type`` is the payload type of ``message``'s class, the body field named after it holds
    the copy, ``eto_payload.seq`` is ``seq`` (a codec stamps its own on ``encode``) and
    ``eto_payload.type`` stays unset, as the SDK leaves it. Unlike the SDK this also wraps
    ``seto.OrderExecutedVoid`` (into ``order_execute_voided``). Raises TypeError for anything
    that is not a seto payload body.
    """
    try:
        kind, field = _BODIES[type(message)]
    except KeyError:
        desc = getattr(message, "DESCRIPTOR", None)
        what = desc.full_name if desc is not None else type(message).__qualname__
        raise TypeError(
            f"wrap: {what} is not a seto payload body; expected a message of "
            f"actorwire.adapters.smarkets.seto such as seto.OrderCreate or seto.MarketSubscribe"
        ) from None
    payload = seto.Payload(type=kind)
    getattr(payload, field).CopyFrom(message)
    payload.eto_payload.seq = seq
    return payload


def eto_payload(kind: int, seq: int, **fields: Any) -> seto.Payload:
    """A ``seto.Payload`` of type PAYLOAD_ETO whose ``eto_payload`` has ``seq``, ``type=kind``
    (an ``eto.PAYLOAD_*`` value) and ``fields`` (``is_replay=True``, ``replay=eto.Replay(...)``,
    ...)."""
    return seto.Payload(
        type=seto.PAYLOAD_ETO,
        eto_payload=eto.Payload(seq=seq, type=cast("eto.PayloadType", kind), **fields),
    )


def login(
    seq: int,
    *,
    username: str | None = None,
    password: str | None = None,
    cookie: str | bytes | None = None,
    account_sequence: int | None = None,
) -> seto.Payload:
    """The LOGIN payload the SDK's ``Session.connect`` sends (type PAYLOAD_LOGIN, body
    ``login``, and ``eto_payload.type`` PAYLOAD_LOGIN as well).

    A ``cookie`` (a token; a str is sent as UTF-8) replaces username and password, as the
    SDK's ``token`` does; an empty one counts as none there too. ``account_sequence=N``
    resumes a session: ``account_sequence=0, account_sequence_64=N``, as the SDK sends it.
    """
    payload = seto.Payload(type=seto.PAYLOAD_LOGIN)
    payload.eto_payload.seq = seq
    payload.eto_payload.type = eto.PAYLOAD_LOGIN
    body = payload.login
    if cookie:
        body.cookie = cookie.encode("utf-8") if isinstance(cookie, str) else cookie
    else:
        if username is not None:
            body.username = username
        if password is not None:
            body.password = password
    if account_sequence is not None:
        body.account_sequence = 0
        body.account_sequence_64 = account_sequence
    return payload


def heartbeat(seq: int) -> seto.Payload:
    """An ETO HEARTBEAT (the server's keep-alive, and the client's answer to it)."""
    return eto_payload(eto.PAYLOAD_HEARTBEAT, seq)


def ping(seq: int) -> seto.Payload:
    """An ETO PING, answered by a PONG (the SDK's ``StreamingAPIClient.ping``)."""
    return eto_payload(eto.PAYLOAD_PING, seq)


def pong(seq: int) -> seto.Payload:
    """An ETO PONG, the answer to a PING."""
    return eto_payload(eto.PAYLOAD_PONG, seq)


def replay(seq: int, from_seq: int) -> seto.Payload:
    """An ETO REPLAY: resend everything from ``from_seq`` on."""
    return eto_payload(eto.PAYLOAD_REPLAY, seq, replay=eto.Replay(seq=from_seq))


def gapfill(seq: int) -> seto.Payload:
    """An ETO GAPFILL: it stands for payload ``seq`` (sent with ``encode(stamp=False)``)."""
    return eto_payload(eto.PAYLOAD_GAPFILL, seq)


def logout(seq: int, reason: int = eto.LOGOUT_NONE) -> seto.Payload:
    """An ETO LOGOUT with ``reason`` (an ``eto.LOGOUT_*`` value), as ``Session.logout`` sends."""
    return eto_payload(
        eto.PAYLOAD_LOGOUT, seq, logout=eto.Logout(reason=cast("eto.LogoutReason", reason))
    )


def login_response(seq: int, session: str, reset: int) -> seto.Payload:
    """An ETO LOGIN_RESPONSE: the session id, and ``reset``, the client's next outgoing seq."""
    return eto_payload(
        eto.PAYLOAD_LOGIN_RESPONSE,
        seq,
        login_response=eto.LoginResponse(session=session, reset=reset),
    )


def throttle_exceeded(seq: int) -> seto.Payload:
    """An ETO THROTTLE_EXCEEDED."""
    return eto_payload(eto.PAYLOAD_THROTTLE_EXCEEDED, seq)


def is_session_control(payload: seto.Payload) -> bool:
    """True for a LOGIN_RESPONSE or a HEARTBEAT, which the SDK acts on before its seq check.

    The caller applies the login response (:meth:`SmarketsCodec.reset_outseq`) or answers
    the heartbeat whatever the payload's seq, then sequences it like any other payload (the
    SDK does both). As in the SDK, only ``eto_payload.type`` is looked at.
    """
    kind = payload.eto_payload.type
    return kind in (eto.PAYLOAD_LOGIN_RESPONSE, eto.PAYLOAD_HEARTBEAT)


# --------------------------------------------------------------------------- codec


class SmarketsCodec:
    """The stream codec of one connection: bytes in, :class:`Frame`/:class:`Garbage` out;
    payloads in, framed bytes with sequence numbers out.

    Incoming: ``receive_data(data)`` takes any split of the stream, ``events()`` returns the
    payloads completed so far. A payload that does not parse, or lacks ``type`` or
    ``eto_payload.seq`` (both required; an unknown ``type`` value reads as absent) becomes a
    :class:`Garbage` and the stream goes on. A length prefix over ``max_frame_size`` or a
    malformed one raises :class:`FrameError` from ``receive_data``: the connection must be
    closed (the frames before it are handed over first).

    Outgoing seqs, one counter per connection (``outseq``, from 1):

    - ``encode(payload)`` stamps ``payload.eto_payload.seq = outseq`` (in place, as the SDK's
      ``send`` does) and advances ``outseq``: everything a peer sends for the first time;
    - ``encode(payload, stamp=False)`` sends the payload with the seq it carries and leaves
      ``outseq`` alone: a server's replays (original seq, ``is_replay=True``) and GAPFILLs
      (the seq they fill);
    - ``reset_outseq(n)``: the next stamped seq is ``n``. The client's transport calls it with
      ``login_response.reset`` as soon as it reads a LOGIN_RESPONSE (see
      :func:`is_session_control`), before it encodes anything else; the SDK also drops what
      it had buffered and not yet written at that moment.

    Not thread-safe: the transport reads and encodes on one thread (the I/O loop), in write
    order, so stamped seqs go out in order.
    """

    __slots__ = ("_events", "_framer", "_told_broken", "garbage", "outseq")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._framer = Leb128Framer(min_frame_size=MIN_FRAME_SIZE, max_frame_size=max_frame_size)
        self._events: list[Frame | Garbage | Broken] = []
        self.outseq: int = 1
        """The seq the next ``encode`` stamps."""
        self.garbage: int = 0
        """Payloads received that became :class:`Garbage`."""
        self._told_broken = False

    @property
    def max_frame_size(self) -> int:
        """Largest payload, in bytes, received or sent."""
        return self._framer.max_frame_size

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a whole frame (at most one frame and one read)."""
        return self._framer.buffered

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer; whole payloads become events."""
        framer = self._framer
        framer.receive_data(data)
        append = self._events.append
        parse = seto.Payload.FromString
        new = tuple.__new__  # Frame(raw, payload) without NamedTuple's Python-level __new__
        eto_type = seto.PAYLOAD_ETO
        for raw in framer.frames():
            try:
                payload = parse(raw)
            except DecodeError:
                append(self._garbage("payload does not parse as seto.Payload", raw))
                continue
            # The hot path checks values, not presence: a type other than ETO was sent
            # (an absent or unknown type reads as ETO, the first value) and a seq other
            # than 0 was too (seqs start at 1). Presence is asked only when they are not.
            if payload.eto_payload.seq and payload.type != eto_type:
                append(new(Frame, (raw, payload)))
            elif not payload.HasField("type"):
                append(self._garbage("payload has no (known) type", raw))
            elif not payload.eto_payload.HasField("seq"):
                append(self._garbage("payload has no eto_payload.seq", raw))
            else:
                append(new(Frame, (raw, payload)))
        broken = framer.broken
        if broken is not None and not self._told_broken:
            # Good frames came before the bad prefix: they go first, then the news.
            self._told_broken = True
            append(Broken(str(broken)))

    def _garbage(self, reason: str, raw: bytes) -> Garbage:
        self.garbage += 1
        return Garbage(reason, raw)

    def events(self) -> list[Frame | Garbage | Broken]:
        """Return and forget the frames decoded so far, in stream order."""
        out, self._events = self._events, []
        return out

    def encode(self, payload: seto.Payload, *, stamp: bool = True) -> bytes:
        """``payload`` framed for the wire, stamped with the next ``outseq`` unless ``stamp``
        is False (then it must carry its own ``eto_payload.seq``).

        Raises EncodeError (protobuf's) when a required field is missing, as the SDK's
        ``send`` does, and FrameError when the payload is over ``max_frame_size``; ``outseq``
        moves on only when the bytes are made.
        """
        if stamp:
            seq = self.outseq
            payload.eto_payload.seq = seq
            data = self._framer.encode(payload.SerializeToString())
            self.outseq = seq + 1
            return data
        if not payload.eto_payload.HasField("seq"):
            raise ValueError(
                f"SmarketsCodec.encode(stamp=False): the {payload_name(payload)} payload "
                f"carries no eto_payload.seq; set it, or let encode stamp the next one"
            )
        return self._framer.encode(payload.SerializeToString())

    def reset_outseq(self, n: int) -> None:
        """Make ``n`` the next stamped seq (the client, on a LOGIN_RESPONSE's ``reset``)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"SmarketsCodec.reset_outseq: n must be an int, got {n!r}")
        if n < 0:
            raise ValueError(f"SmarketsCodec.reset_outseq: n must be >= 0, got {n!r}")
        self.outseq = n


# --------------------------------------------------------------------------- sequencing

Verdict: TypeAlias = Literal["deliver", "duplicate", "gap"]
"""What :meth:`InboundSequencer.accept` made of a seq."""

T = TypeVar("T")

HELD_OVERHEAD = 300
"""Bytes a held frame costs besides its ``size``: a small parsed payload held as a Frame
measured about 290 bytes of Python objects (tracemalloc, protobuf's upb backend)."""

_FILLED: Any = object()  # a held GAPFILL: fills its seq, delivers nothing


class InboundSequencer(Generic[T]):
    """Incoming sequence numbers of one session, sans-I/O; time is passed in.

    The rules, all of them here:

    1. Seqs run from ``expected`` (1 for a new session, as the SDK's ``inseq``); every
       payload the peer sends takes one, session control included (rule 9).
    2. ``accept(seq, item, now, size)``:

       ================  ==============  ==============================================
       seq               verdict         effect
       ================  ==============  ==============================================
       < ``expected``    ``duplicate``   dropped (counted in ``duplicates``)
       held already      ``duplicate``   dropped (counted in ``duplicates``)
       == ``expected``   ``deliver``     ``item``, then the held items that follow it
                                         without a hole, go to :meth:`released`;
                                         ``expected`` moves past the last of them
       > ``expected``    ``gap``         held until the hole before it fills (rule 4);
                                         a gap is open (rule 5)
       ================  ==============  ==============================================

    3. ``gapfill(seq, now)``: a GAPFILL carrying seq S fills S, exactly S, with nothing to
       deliver; otherwise it is a payload like any other (same verdicts; held while early).
    4. Held frames are bounded in bytes: each costs its ``size`` (pass the payload's length)
       plus :data:`HELD_OVERHEAD`. A frame that would take ``held_bytes`` past
       ``max_held_bytes`` is not held: it is dropped and counted in ``overflowed``, and its
       verdict is still ``gap``. Nothing is lost by that: a REPLAY(S) brings back everything
       from S on, the dropped frame with it.
    5. A gap is open from the first seq above ``expected`` until ``expected`` passes the
       highest seq seen (held or dropped); ``gaps`` counts the gaps opened.
    6. ``replay_from(now)`` says when to send REPLAY, and from which seq: ``expected``, the
       first time it is asked while a gap is open, then again each time ``retry_after``
       seconds have passed since the later of the last request and the last progress (a
       rise of ``expected``) with the gap still open; otherwise None. Each seq it returns is
       a request the caller must send. ``retry_at`` is when it will next return one (for a
       timer); ``attempts`` counts the requests of the open gap, so the caller can give up
       (drop the connection) after as many as it likes.
    7. :meth:`released` returns the items to deliver, in seq order, each once.
    8. ``reset(expected)``: a new session; held frames are dropped and no gap is open (what
       :meth:`released` has not handed out yet stays: it was in order).
    9. A LOGIN_RESPONSE or a HEARTBEAT (:func:`is_session_control`) is acted on before the
       seq check, whatever its seq, and then accepted like any other payload, as the SDK
       does: it is the caller's to do, this class only counts seqs.
    """

    __slots__ = (
        "_held",
        "_high",
        "_open",
        "_progress_at",
        "_released",
        "_requested_at",
        "attempts",
        "delivered",
        "duplicates",
        "expected",
        "gaps",
        "held_bytes",
        "max_held_bytes",
        "overflowed",
        "retry_after",
    )

    def __init__(
        self,
        expected: int = 1,
        *,
        max_held_bytes: int = 16 * 1024 * 1024,
        retry_after: float = 5.0,
    ) -> None:
        _check_seq("expected", expected)
        if isinstance(max_held_bytes, bool) or not isinstance(max_held_bytes, int):
            raise TypeError(
                f"InboundSequencer: max_held_bytes must be an int, got {max_held_bytes!r}"
            )
        if max_held_bytes < 0:
            raise ValueError(
                f"InboundSequencer: max_held_bytes must be >= 0, got {max_held_bytes!r}"
            )
        if (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, Real)
            or not math.isfinite(float(retry_after))
            or retry_after <= 0
        ):
            raise ValueError(
                f"InboundSequencer: retry_after must be a finite number of seconds > 0, "
                f"got {retry_after!r}"
            )
        self.expected: int = expected
        """The next seq to deliver."""
        self.max_held_bytes: int = max_held_bytes
        """Most bytes the frames held beyond a gap may cost (rule 4)."""
        self.retry_after: float = float(retry_after)
        """Seconds without progress before a replay is asked for again (rule 6)."""
        self.held_bytes: int = 0
        """What the held frames cost now (rule 4)."""
        self.delivered: int = 0
        """Items handed to :meth:`released` (GAPFILLs deliver nothing)."""
        self.duplicates: int = 0
        """Seqs dropped as already seen."""
        self.gaps: int = 0
        """Gaps opened."""
        self.overflowed: int = 0
        """Early frames dropped because holding them would pass ``max_held_bytes``."""
        self.attempts: int = 0
        """Replay requests made for the open gap (0 when none is open)."""
        self._held: dict[int, tuple[Any, int]] = {}  # seq -> (item or _FILLED, cost)
        self._released: list[T] = []
        self._open: bool = False
        self._high: int = 0  # highest seq seen while the gap is open
        self._requested_at: float | None = None
        self._progress_at: float = -math.inf

    # -- input --------------------------------------------------------------------------------

    def accept(self, seq: int, item: T, now: float, size: int = 0) -> Verdict:
        """Take payload ``seq`` carrying ``item`` (its wire ``size`` counts toward the bound)."""
        exp = self.expected
        if seq == exp and not self._open:  # the hot path: in order, no gap
            self.expected = exp + 1
            self._released.append(item)
            self.delivered += 1
            return "deliver"
        return self._take(seq, item, now, size)

    def gapfill(self, seq: int, now: float) -> Verdict:
        """Take a GAPFILL carrying ``seq``: it fills ``seq`` and delivers nothing (rule 3)."""
        return self._take(seq, _FILLED, now, 0)

    def _take(self, seq: int, item: Any, now: float, size: int) -> Verdict:
        if type(seq) is not int:
            _check_seq("seq", seq)
        exp = self.expected
        if seq < exp:
            self.duplicates += 1
            return "duplicate"
        if seq == exp:
            self._release(item, now)
            return "deliver"
        held = self._held
        if seq in held:
            self.duplicates += 1
            return "duplicate"
        if not self._open:
            self._open = True
            self.gaps += 1
            self._high = seq
        elif seq > self._high:
            self._high = seq
        cost = size + HELD_OVERHEAD
        if self.held_bytes + cost > self.max_held_bytes:
            self.overflowed += 1
        else:
            held[seq] = (item, cost)
            self.held_bytes += cost
        return "gap"

    def _release(self, item: Any, now: float) -> None:
        """Deliver ``item`` (seq == expected) and the held items after it without a hole."""
        released = self._released
        delivered = 0
        if item is not _FILLED:
            released.append(item)
            delivered = 1
        nxt = self.expected + 1
        held = self._held
        while held:
            entry = held.pop(nxt, None)
            if entry is None:
                break
            self.held_bytes -= entry[1]
            if entry[0] is not _FILLED:
                released.append(entry[0])
                delivered += 1
            nxt += 1
        self.expected = nxt
        self.delivered += delivered
        if self._open:
            if nxt > self._high:
                self._close_gap()
            else:
                self._progress_at = now

    def _close_gap(self) -> None:
        self._open = False
        self._requested_at = None
        self._progress_at = -math.inf
        self.attempts = 0

    # -- output -------------------------------------------------------------------------------

    def released(self) -> list[T]:
        """Return and forget the items ready to deliver, in seq order (rule 7)."""
        out, self._released = self._released, []
        return out

    @property
    def gap_open(self) -> bool:
        """True while a gap is open (rule 5)."""
        return self._open

    @property
    def held(self) -> int:
        """Frames (and GAPFILLs) held beyond the gap."""
        return len(self._held)

    @property
    def retry_at(self) -> float | None:
        """When :meth:`replay_from` will next return a seq: None with no gap open, ``-inf``
        when a request is due now (rule 6)."""
        if not self._open:
            return None
        if self._requested_at is None:
            return -math.inf
        return max(self._requested_at, self._progress_at) + self.retry_after

    def replay_from(self, now: float) -> int | None:
        """The seq to send a REPLAY from now, or None (rule 6)."""
        due = self.retry_at
        if due is None or now < due:
            return None
        self._requested_at = _check_now(now)
        self.attempts += 1
        return self.expected

    def reset(self, expected: int = 1) -> None:
        """Start over for a new session at ``expected`` (rule 8); counters run on."""
        _check_seq("expected", expected)
        self.expected = expected
        self._held.clear()
        self.held_bytes = 0
        self._close_gap()


def _check_seq(what: str, seq: object) -> None:
    """Raise unless ``seq`` is an int >= 0 (bools are refused: they are bugs)."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError(f"InboundSequencer: {what} must be an int, got {seq!r}")
    if seq < 0:
        raise ValueError(f"InboundSequencer: {what} must be >= 0, got {seq!r}")


def _check_now(now: object) -> float:
    """``now`` as a finite float, or raise naming the bad value."""
    if isinstance(now, bool) or not isinstance(now, Real) or not math.isfinite(float(now)):
        raise ValueError(f"InboundSequencer: now must be a finite number of seconds, got {now!r}")
    return float(now)
