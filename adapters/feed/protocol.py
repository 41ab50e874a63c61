"""The feed protocol: a tiny line-based, sequenced TCP protocol (sans-I/O codec).

It exists to show and test links: sequence numbers, subscribe-from, replay, ping.

Wire format (UTF-8, one frame per line, each line ends with b"\\n"; a line may hold at most
``MAX_LINE`` bytes, not counting its newline)::

    client -> server   AUTH <token> | SUB <stream> <from_seq> | REPLAY <stream> <first> <last>
                       | PING <n>
    server -> client   OK <what> | ERR <reason> | DATA <stream> <seq> <payload> | PONG <n>

Server replies: every command gets exactly one reply line (``OK``/``ERR``, or ``PONG`` for
``PING``) written *before* any ``DATA`` the command triggers: ``AUTH`` -> ``OK auth``,
``SUB A 3`` -> ``OK sub A 3`` then the retained frames of ``A`` with seq >= 3 then live frames,
``REPLAY A 2 5`` -> ``OK replay A 2 5`` then the retained frames 2..5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from actorwire.actors.framing import LineFramer, OversizeLine

__all__ = [
    "HOST",
    "MAX_LINE",
    "Auth",
    "Data",
    "Err",
    "FeedCodec",
    "Frame",
    "Garbage",
    "Ok",
    "Ping",
    "Pong",
    "Replay",
    "Sub",
]

HOST = "127.0.0.1"
MAX_LINE = 64 * 1024
"""Largest allowed line, in bytes, excluding the terminating newline."""

_INT_RE = re.compile(r"[0-9]{1,19}")


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class Auth:
    """Client -> server: authenticate with a token."""

    token: str


@dataclass(frozen=True, slots=True)
class Sub:
    """Client -> server: subscribe to a stream, replaying retained frames from ``from_seq``."""

    stream: str
    from_seq: int


@dataclass(frozen=True, slots=True)
class Replay:
    """Client -> server: resend retained frames ``first..last`` (inclusive)."""

    stream: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Ping:
    """Client -> server: liveness probe, answered by ``Pong(n)``."""

    n: int


@dataclass(frozen=True, slots=True)
class Data:
    """Server -> client: one sequenced frame of a stream."""

    stream: str
    seq: int
    payload: str


@dataclass(frozen=True, slots=True)
class Pong:
    """Server -> client: answer to ``Ping(n)``."""

    n: int


@dataclass(frozen=True, slots=True)
class Ok:
    """Server -> client: positive acknowledgement."""

    what: str


@dataclass(frozen=True, slots=True)
class Err:
    """Server -> client: error report."""

    reason: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """A line that could not be decoded (``raw`` is capped at ``max_line + 1`` bytes)."""

    raw: bytes
    reason: str


Frame = Auth | Sub | Replay | Ping | Data | Pong | Ok | Err | Garbage

_COMMANDS = frozenset({"AUTH", "SUB", "REPLAY", "PING"})
_REPLIES = frozenset({"OK", "ERR", "DATA", "PONG"})


# --------------------------------------------------------------------------- codec


def _field(name: str, value: str) -> str:
    """Validate a single space-free field (token, stream name)."""
    if not isinstance(value, str) or not value or " " in value or "\n" in value:
        raise ValueError(f"{name} must be a non-empty str without spaces or newlines: {value!r}")
    return value


def _text(name: str, value: str) -> str:
    """Validate a rest-of-line field (payload, what, reason)."""
    if not isinstance(value, str) or "\n" in value:
        raise ValueError(f"{name} must be a str without newlines: {value!r}")
    return value


def _uint(name: str, value: int) -> int:
    """Validate a non-negative integer field."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10**19:
        raise ValueError(f"{name} must be an int in [0, 10**19): {value!r}")
    return value


def _line(text: str) -> bytes:
    """Encode one line, enforcing ``MAX_LINE``."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_LINE:
        raise ValueError(f"frame of {len(raw)} bytes exceeds MAX_LINE={MAX_LINE}")
    return raw + b"\n"


class FeedCodec:
    """Sans-I/O feed codec: feed bytes with ``receive_data``, drain frames with ``events``.

    ``role`` selects what is decoded: "server" accepts only commands, "client" accepts only
    server frames, "any" accepts both; anything else becomes a ``Garbage`` event.
    """

    def __init__(
        self, role: Literal["any", "server", "client"] = "any", max_line: int = MAX_LINE
    ) -> None:
        if role not in ("any", "server", "client"):
            raise ValueError(f"bad role {role!r}")
        if max_line < 1:
            raise ValueError("max_line must be >= 1")
        self.role = role
        self.max_line = max_line
        self._accepted = {
            "any": _COMMANDS | _REPLIES,
            "server": _COMMANDS,
            "client": _REPLIES,
        }[role]
        # A "\r" is part of the line here: "PING 1\r" is a malformed PING.
        self._framer = LineFramer(max_line, skip_oversize=True, strip_cr=False)
        self._events: list[Frame] = []

    @property
    def buffered(self) -> int:
        """Bytes currently held for an incomplete line (never more than ``max_line + 1``)."""
        return self._framer.buffered

    def receive_data(self, data: bytes) -> None:
        """Feed raw bytes; complete lines become events, a partial line is kept. A line
        over ``max_line`` becomes a ``Garbage`` event and is skipped."""
        framer = self._framer
        framer.receive_data(data)
        events = self._events
        for line in framer.frames():
            if type(line) is OversizeLine:
                events.append(Garbage(bytes(line), "line too long"))
            else:
                events.append(self._parse(line))

    def events(self) -> list[Frame]:
        """Return and forget the frames decoded so far."""
        out, self._events = self._events, []
        return out

    def _parse(self, line: bytes) -> Frame:
        """Decode one line (without its newline) into a frame or ``Garbage``."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return Garbage(line, "not utf-8")
        verb, sep, rest = text.partition(" ")
        if not verb:
            return Garbage(line, "empty verb")
        if verb not in _COMMANDS | _REPLIES:
            return Garbage(line, "unknown verb")
        if verb not in self._accepted:
            return Garbage(line, f"unexpected {verb}")
        if verb == "OK":
            return Ok(rest)
        if verb == "ERR":
            return Err(rest)
        if verb == "DATA":
            parts = rest.split(" ", 2) if sep else []
            fixed, tail = parts[:2], parts[2:]
            if len(parts) != 3:
                return Garbage(line, f"bad field count for {verb}")
        else:
            parts = rest.split(" ") if sep else []
            fixed, tail = parts, []
            arity = {"AUTH": 1, "SUB": 2, "REPLAY": 3, "PING": 1, "PONG": 1}[verb]
            if len(parts) != arity:
                return Garbage(line, f"bad field count for {verb}")
        if not all(fixed):
            return Garbage(line, f"empty field in {verb}")
        if verb == "AUTH":
            return Auth(fixed[0])
        nums = fixed[1:] if verb in ("SUB", "REPLAY", "DATA") else fixed
        if not all(_INT_RE.fullmatch(n) for n in nums):
            return Garbage(line, f"bad integer in {verb}")
        ints = [int(n) for n in nums]
        if verb == "SUB":
            return Sub(fixed[0], ints[0])
        if verb == "REPLAY":
            return Replay(fixed[0], ints[0], ints[1])
        if verb == "DATA":
            return Data(fixed[0], ints[0], tail[0])
        if verb == "PING":
            return Ping(ints[0])
        return Pong(ints[0])

    # -- encoders (raise ValueError on values that cannot be framed) --

    @staticmethod
    def encode_auth(token: str) -> bytes:
        """Encode ``AUTH <token>``."""
        return _line(f"AUTH {_field('token', token)}")

    @staticmethod
    def encode_sub(stream: str, from_seq: int) -> bytes:
        """Encode ``SUB <stream> <from_seq>``."""
        return _line(f"SUB {_field('stream', stream)} {_uint('from_seq', from_seq)}")

    @staticmethod
    def encode_replay(stream: str, first: int, last: int) -> bytes:
        """Encode ``REPLAY <stream> <first> <last>``."""
        s = _field("stream", stream)
        return _line(f"REPLAY {s} {_uint('first', first)} {_uint('last', last)}")

    @staticmethod
    def encode_ping(n: int) -> bytes:
        """Encode ``PING <n>``."""
        return _line(f"PING {_uint('n', n)}")

    @staticmethod
    def encode_data(stream: str, seq: int, payload: str) -> bytes:
        """Encode ``DATA <stream> <seq> <payload>``."""
        s = _field("stream", stream)
        return _line(f"DATA {s} {_uint('seq', seq)} {_text('payload', payload)}")

    @staticmethod
    def encode_pong(n: int) -> bytes:
        """Encode ``PONG <n>``."""
        return _line(f"PONG {_uint('n', n)}")

    @staticmethod
    def encode_ok(what: str) -> bytes:
        """Encode ``OK <what>``."""
        return _line(f"OK {_text('what', what)}")

    @staticmethod
    def encode_err(reason: str) -> bytes:
        """Encode ``ERR <reason>``."""
        return _line(f"ERR {_text('reason', reason)}")

    @staticmethod
    def encode(frame: Frame) -> bytes:
        """Encode any frame except ``Garbage`` (which has no wire form)."""
        match frame:
            case Auth(token):
                return FeedCodec.encode_auth(token)
            case Sub(stream, from_seq):
                return FeedCodec.encode_sub(stream, from_seq)
            case Replay(stream, first, last):
                return FeedCodec.encode_replay(stream, first, last)
            case Ping(n):
                return FeedCodec.encode_ping(n)
            case Data(stream, seq, payload):
                return FeedCodec.encode_data(stream, seq, payload)
            case Pong(n):
                return FeedCodec.encode_pong(n)
            case Ok(what):
                return FeedCodec.encode_ok(what)
            case Err(reason):
                return FeedCodec.encode_err(reason)
        raise ValueError(f"cannot encode {frame!r}")
