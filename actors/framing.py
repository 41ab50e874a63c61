"""Framers: byte streams cut into frames, sans-I/O.

Every framer has the same three calls, in the style of websockets' and h11's cores:
``receive_data(data)`` takes whatever the socket read, ``frames()`` returns the complete
frames' payloads (in order, each once), and ``encode(payload)`` gives the bytes to write.
A frame larger than ``max_frame_size`` or a malformed header raises :class:`FrameError`
(the framer is then broken: the connection must be closed); bytes are never silently
skipped. Buffers are compacted as frames are taken, so memory is bounded by one frame plus
one read.

- :class:`Leb128Framer`: an unsigned LEB128 length, the payload, then zero bytes up to
  ``min_frame_size`` (Smarkets' streaming API: ``min_frame_size=4``).
- :class:`LengthPrefixFramer`: a fixed-width big-endian (or little-endian) length prefix.
- :class:`LineFramer`: newline-terminated lines (a trailing ``\\r`` is dropped).
"""

from __future__ import annotations

from typing import Literal

from .errors import ActorwireError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "FrameError",
    "Framer",
    "IncompleteULEB128",
    "Leb128Framer",
    "LengthPrefixFramer",
    "LineFramer",
    "OversizeLine",
    "uleb128_decode",
    "uleb128_encode",
]

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
"""Largest payload a framer accepts by default (16 MiB)."""

_MAX_LEB128_BYTES = 10
"""An unsigned 64-bit value takes at most 10 LEB128 bytes; more is malformed."""


class FrameError(ActorwireError, ValueError):
    """The byte stream cannot be framed (a frame over the size limit, a malformed header)."""


class IncompleteULEB128(ActorwireError, ValueError):
    """``uleb128_decode`` ran out of bytes before the value ended: read more and retry."""


def uleb128_encode(value: int) -> bytes:
    """``value`` (an int >= 0) as unsigned LEB128: 7 bits a byte, low bits first."""
    if value < 0:
        raise ValueError(f"uleb128_encode: value must be >= 0, got {value!r}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def uleb128_decode(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """``(value, bytes used)`` of the unsigned LEB128 number at ``data[offset:]``.

    Raises IncompleteULEB128 when ``data`` ends inside the number, FrameError when it runs
    past 10 bytes (no 64-bit value does).
    """
    value = 0
    shift = 0
    end = len(data)
    i = offset
    while i < end:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i - offset
        shift += 7
        if i - offset >= _MAX_LEB128_BYTES:
            raise FrameError(f"malformed LEB128 length: more than {_MAX_LEB128_BYTES} bytes")
    raise IncompleteULEB128(f"LEB128 number incomplete after {i - offset} byte(s)")


class Framer:
    """Base of the framers: a receive buffer, a read offset and a size limit."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise TypeError(f"max_frame_size must be an int, got {max_frame_size!r}")
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be >= 1, got {max_frame_size!r}")
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._pos = 0
        self._broken: FrameError | None = None
        self.frames_received = 0

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer."""
        if self._broken is not None:
            raise self._broken
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]  # compact: what was taken is gone
            self._pos = 0
        self._buf += data

    @property
    def broken(self) -> FrameError | None:
        """The error that broke the stream, once ``frames()`` has met it (frames before it
        were handed over first; the next call raises it)."""
        return self._broken

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a returned frame."""
        return len(self._buf) - self._pos

    def frames(self) -> list[bytes]:
        """Every complete frame's payload received so far, in order."""
        if self._broken is not None:
            raise self._broken
        out: list[bytes] = []
        try:
            while True:
                payload = self._next()
                if payload is None:
                    break
                out.append(payload)
        except FrameError as exc:
            self._broken = exc
            if not out:
                raise
            # Frames before the bad one are good: hand them over; the error comes next call.
        self.frames_received += len(out)
        return out

    def _next(self) -> bytes | None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _next")

    def encode(self, payload: bytes) -> bytes:
        raise NotImplementedError(f"{type(self).__name__} does not implement encode")

    def _too_large(self, size: int) -> FrameError:
        return FrameError(f"frame of {size} bytes is over the limit of {self.max_frame_size}")


class Leb128Framer(Framer):
    """Unsigned LEB128 length prefix, payload, zero padding up to ``min_frame_size``."""

    def __init__(self, min_frame_size: int = 0, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE):
        super().__init__(max_frame_size)
        if isinstance(min_frame_size, bool) or not isinstance(min_frame_size, int):
            raise TypeError(f"min_frame_size must be an int, got {min_frame_size!r}")
        if min_frame_size < 0:
            raise ValueError(f"min_frame_size must be >= 0, got {min_frame_size!r}")
        self.min_frame_size = min_frame_size

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > self.max_frame_size:
            raise self._too_large(len(payload))
        frame = uleb128_encode(len(payload)) + payload
        pad = self.min_frame_size - len(frame)
        return frame + b"\x00" * pad if pad > 0 else frame

    def frames(self) -> list[bytes]:
        """Every complete frame's payload received so far, in order (the base class's rules,
        in one loop: a stream of small frames costs no call per frame)."""
        if self._broken is not None:
            raise self._broken
        buf, pos = self._buf, self._pos
        end = len(buf)
        least = max(self.min_frame_size, 1)
        limit = self.max_frame_size
        out: list[bytes] = []
        while end - pos >= least:
            first = buf[pos]
            if first < 0x80:  # a one-byte length: most frames
                length, used = first, 1
            else:
                try:
                    length, used = uleb128_decode(buf, pos)
                except IncompleteULEB128:
                    break
                except FrameError as exc:
                    self._fail(exc, out, pos)
                    break
            if length > limit:
                self._fail(self._too_large(length), out, pos)
                break
            size = used + length
            if size < least:  # noqa: PLR1730 - no call per frame
                size = least
            if end - pos < size:
                break
            start = pos + used
            out.append(bytes(buf[start : start + length]))
            pos += size
        self._pos = pos
        self.frames_received += len(out)
        return out

    def _fail(self, exc: FrameError, out: list[bytes], pos: int) -> None:
        """The stream broke at ``pos``: hand over ``out`` first, or raise now if it is empty."""
        self._broken = exc
        self._pos = pos
        if not out:
            raise exc

    def _next(self) -> bytes | None:
        buf, pos = self._buf, self._pos
        available = len(buf) - pos
        if available < max(self.min_frame_size, 1):
            return None
        try:
            length, used = uleb128_decode(buf, pos)
        except IncompleteULEB128:
            return None
        if length > self.max_frame_size:
            raise self._too_large(length)
        size = max(used + length, self.min_frame_size)
        if available < size:
            return None
        start = pos + used
        payload = bytes(buf[start : start + length])
        self._pos = pos + size
        return payload


class LengthPrefixFramer(Framer):
    """A fixed-width unsigned length (``prefix`` bytes, ``byteorder``), then the payload."""

    def __init__(
        self,
        prefix: int = 4,
        byteorder: Literal["big", "little"] = "big",
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(max_frame_size)
        if prefix not in (1, 2, 4, 8):
            raise ValueError(f"prefix must be 1, 2, 4 or 8 bytes, got {prefix!r}")
        if byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', got {byteorder!r}")
        self.prefix = prefix
        self.byteorder: Literal["big", "little"] = byteorder

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > self.max_frame_size or len(payload) >= 1 << (8 * self.prefix):
            raise self._too_large(len(payload))
        return len(payload).to_bytes(self.prefix, self.byteorder) + payload

    def _next(self) -> bytes | None:
        buf, pos, prefix = self._buf, self._pos, self.prefix
        if len(buf) - pos < prefix:
            return None
        length = int.from_bytes(buf[pos : pos + prefix], self.byteorder)
        if length > self.max_frame_size:
            raise self._too_large(length)
        end = pos + prefix + length
        if len(buf) < end:
            return None
        payload = bytes(buf[pos + prefix : end])
        self._pos = end
        return payload


class OversizeLine(bytes):
    """From ``LineFramer(skip_oversize=True).frames()``: a line over the limit, skipped. It
    holds the line's first ``max_frame_size + 1`` bytes (for the log); the framer carries on
    with the next line."""


class LineFramer(Framer):
    """Lines ending in ``\n`` (a ``\r`` before it is dropped unless ``strip_cr=False``, for
    protocols where it is part of the line); the payload is the line.

    A line over ``max_frame_size`` raises FrameError, unless ``skip_oversize``: lines
    resynchronise at the next newline, so the line is handed over as an
    :class:`OversizeLine` (in order with the others) and skipped, and the stream goes on.
    """

    def __init__(
        self,
        max_frame_size: int = 1024 * 1024,
        *,
        skip_oversize: bool = False,
        strip_cr: bool = True,
    ) -> None:
        super().__init__(max_frame_size)
        self.skip_oversize = skip_oversize
        self.strip_cr = strip_cr
        self._discarding = False  # skipping the rest of an oversize line
        self.oversize_lines = 0

    def encode(self, payload: bytes) -> bytes:
        if b"\n" in payload:
            raise FrameError("a line frame cannot contain a newline")
        if len(payload) > self.max_frame_size:
            raise self._too_large(len(payload))
        return payload + b"\n"

    def _next(self) -> bytes | None:
        buf, pos, limit = self._buf, self._pos, self.max_frame_size
        if self._discarding:
            end = buf.find(b"\n", pos)
            if end < 0:
                self._pos = len(buf)  # the tail of the long line: dropped
                return None
            self._discarding = False
            pos = self._pos = end + 1
        end = buf.find(b"\n", pos)
        if end < 0:
            waiting = len(buf) - pos
            if waiting and buf[-1] == 0x0D and self.strip_cr:  # its "\n" is in the next read
                waiting -= 1
            if waiting > limit:
                if self.skip_oversize:
                    self._discarding = True
                    self._pos = len(buf)
                    return self._oversize(buf[pos : pos + limit + 1])
                raise self._too_large(waiting)
            return None
        line = bytes(buf[pos:end])
        if self.strip_cr and line.endswith(b"\r"):
            line = line[:-1]
        self._pos = end + 1
        if len(line) > limit:
            if self.skip_oversize:
                return self._oversize(line[: limit + 1])
            self._pos = pos
            raise self._too_large(len(line))
        return line

    def _oversize(self, head: bytes | bytearray) -> OversizeLine:
        self.oversize_lines += 1
        return OversizeLine(head)
