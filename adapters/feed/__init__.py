"""feed: a minimal sequenced line protocol with an embedded, fault-injecting server.

It is the smallest complete adapter: a sans-I/O codec (``protocol``), a Link adapter
(``link``) and an embedded server (``server``). Use it to learn how links behave, and to
test pipelines against a feed that can die, go silent, skip, repeat and reorder frames.
"""

from .link import FeedAdapter
from .protocol import (
    HOST,
    MAX_LINE,
    Auth,
    Data,
    Err,
    FeedCodec,
    Frame,
    Garbage,
    Ok,
    Ping,
    Pong,
    Replay,
    Sub,
)
from .server import FeedServer

__all__ = [
    "HOST",
    "MAX_LINE",
    "Auth",
    "Data",
    "Err",
    "FeedAdapter",
    "FeedCodec",
    "FeedServer",
    "Frame",
    "Garbage",
    "Ok",
    "Ping",
    "Pong",
    "Replay",
    "Sub",
]
