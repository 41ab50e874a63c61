"""The Smarkets streaming API's framing, with smk-python-sdk 9.4.4's function names.

A frame is the payload's length as unsigned LEB128, the payload (a serialized
``seto.Payload``), then zero bytes until the frame is at least ``MIN_FRAME_SIZE`` (4) bytes
long. These functions are byte-identical to the protocol's vectors; the link reads the byte
stream with the kit's ``Leb128Framer(min_frame_size=4)``, which bounds its buffer.
"""

from __future__ import annotations

from actorwire.actors.framing import IncompleteULEB128
from actorwire.actors.framing import uleb128_decode as _uleb128_decode
from actorwire.actors.framing import uleb128_encode as _uleb128_encode

__all__ = [
    "MIN_FRAME_SIZE",
    "IncompleteULEB128",
    "frame_decode_all",
    "frame_encode",
    "uleb128_decode",
    "uleb128_encode",
]

MIN_FRAME_SIZE = 4
"""The shortest frame: a shorter one is padded with zero bytes."""


def uleb128_encode(value: int) -> bytearray:
    """``value`` (an int >= 0) as unsigned LEB128."""
    return bytearray(_uleb128_encode(value))


def uleb128_decode(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """``(value, header length)`` of the unsigned LEB128 number ``data`` starts with; raises
    ``IncompleteULEB128`` when ``data`` ends before the number does."""
    return _uleb128_decode(data)


def frame_encode(buf: bytearray, payload: bytes | bytearray) -> None:
    """Append ``payload``'s frame to ``buf``."""
    start = len(buf)
    buf += _uleb128_encode(len(payload))
    buf += payload
    pad = MIN_FRAME_SIZE - (len(buf) - start)
    if pad > 0:
        buf += b"\x00" * pad


def frame_decode_all(data: bytes | bytearray) -> tuple[list[bytes], bytes]:
    """Every whole frame's payload in ``data``, and the bytes after the last whole frame."""
    payloads: list[bytes] = []
    view = memoryview(data)
    pos, end = 0, len(data)
    while end - pos >= MIN_FRAME_SIZE:
        try:
            length, header = _uleb128_decode(view, pos)
        except IncompleteULEB128:
            break
        size = max(header + length, MIN_FRAME_SIZE)
        if end - pos < size:
            break
        payloads.append(bytes(view[pos + header : pos + header + length]))
        pos += size
    return payloads, bytes(view[pos:])
