"""kdb Insights: a supervised client of the Service Gateway's streaming websocket, and an
embedded gateway to run it against.

``GatewayClient(url, token)`` snaps topics to DataFrames (or column dicts), subscribes with
callbacks that run in each subscription's own actor, and resyncs every subscription by
subsnap after a reconnect; ``protocol="qipc"`` speaks q IPC with the ``kdb-qipc`` extra.
``serve()`` (or ``actorwire serve kdb``) starts the embedded gateway: keyed-table topics,
batched updates, every error code of the spec.
"""

from __future__ import annotations

from .client import TOKEN_ENV, GatewayClient, Subscription
from .config import GatewayConfig, load_config, parse_config
from .protocol import ErrorCode, GatewayError, ProtocolError
from .server import DEFAULT_PORT, GatewayServer, serve
from .topics import LimitError, TopicError

__all__ = [
    "DEFAULT_PORT",
    "TOKEN_ENV",
    "ErrorCode",
    "GatewayClient",
    "GatewayConfig",
    "GatewayError",
    "GatewayServer",
    "LimitError",
    "ProtocolError",
    "Subscription",
    "TopicError",
    "load_config",
    "parse_config",
    "serve",
]
