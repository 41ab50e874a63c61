"""Smarkets streaming API: the framing and messages of smk-python-sdk 9.4.4.

``eto`` and ``seto`` are the message modules, ``frame_encode``/``frame_decode_all`` and the
LEB128 functions the framing, with the names the SDK gives them.
"""

from __future__ import annotations

from . import eto, seto
from .framing import (
    MIN_FRAME_SIZE,
    IncompleteULEB128,
    frame_decode_all,
    frame_encode,
    uleb128_decode,
    uleb128_encode,
)

SIDE_BID = seto.SIDE_BUY
"""A bid (back): ``seto.SIDE_BUY``, 1."""
SIDE_OFFER = seto.SIDE_SELL
"""An offer (lay): ``seto.SIDE_SELL``, 2."""
GOOD_TIL_CANCELLED = seto.GOOD_TIL_CANCELLED
IMMEDIATE_OR_CANCEL = seto.IMMEDIATE_OR_CANCEL

__all__ = [
    "GOOD_TIL_CANCELLED",
    "IMMEDIATE_OR_CANCEL",
    "MIN_FRAME_SIZE",
    "SIDE_BID",
    "SIDE_OFFER",
    "IncompleteULEB128",
    "eto",
    "frame_decode_all",
    "frame_encode",
    "seto",
    "uleb128_decode",
    "uleb128_encode",
]
