"""Smarkets streaming API: smk-python-sdk 9.4.4's client API, supervised, and an embedded
exchange.

The names are the SDK's (``smarkets.streaming_api.api``): ``StreamingAPIClient``,
``Session``, ``SessionSettings``, ``Frame``, the exceptions, the ``eto`` and ``seto`` message
modules, ``SIDE_BID``/``SIDE_OFFER``, the time-in-force constants and the framing functions.
``StreamingAPIClient.start()`` hands the session to a supervised link; ``serve()`` starts the
embedded exchange.
"""

from __future__ import annotations

from . import eto, seto
from .client import (
    ConnectionError,
    DecodeError,
    Error,
    InvalidCallbackError,
    LoginError,
    LoginTimeout,
    ParseError,
    Session,
    SessionSettings,
    SocketDisconnected,
    StreamingAPIClient,
)
from .framing import (
    MIN_FRAME_SIZE,
    IncompleteULEB128,
    frame_decode_all,
    frame_encode,
    uleb128_decode,
    uleb128_encode,
)
from .protocol import CALLBACKS, Frame
from .server import ExchangeServer, serve

SIDE_BID = seto.SIDE_BUY
"""A bid (back): ``seto.SIDE_BUY``, 1."""
SIDE_OFFER = seto.SIDE_SELL
"""An offer (lay): ``seto.SIDE_SELL``, 2."""
GOOD_TIL_CANCELLED = seto.GOOD_TIL_CANCELLED
IMMEDIATE_OR_CANCEL = seto.IMMEDIATE_OR_CANCEL

__all__ = [
    "CALLBACKS",
    "GOOD_TIL_CANCELLED",
    "IMMEDIATE_OR_CANCEL",
    "MIN_FRAME_SIZE",
    "SIDE_BID",
    "SIDE_OFFER",
    "ConnectionError",
    "DecodeError",
    "Error",
    "ExchangeServer",
    "Frame",
    "IncompleteULEB128",
    "InvalidCallbackError",
    "LoginError",
    "LoginTimeout",
    "ParseError",
    "Session",
    "SessionSettings",
    "SocketDisconnected",
    "StreamingAPIClient",
    "eto",
    "frame_decode_all",
    "frame_encode",
    "serve",
    "seto",
    "uleb128_decode",
    "uleb128_encode",
]
