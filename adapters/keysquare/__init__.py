"""keysquare: the KeySession client over gRPC, and the embedded data platform.

actorwire defines its own gRPC service (``keysquare.proto``) and ships both ends: the
``KeySession`` client, matching the KeySession API, and an embedded platform (``serve``).
"""

from .client import KeySession, Subscription
from .model import (
    Gap,
    KeyHeader,
    KeyMessage,
    KeySessionState,
    PublishTimeout,
    SubscriptionType,
)
from .protocol import GROUP_WILDCARD, ID_WILDCARD, SOURCE_WILDCARD
from .server import PlatformServer, serve

__all__ = [
    "GROUP_WILDCARD",
    "ID_WILDCARD",
    "SOURCE_WILDCARD",
    "Gap",
    "KeyHeader",
    "KeyMessage",
    "KeySession",
    "KeySessionState",
    "PlatformServer",
    "PublishTimeout",
    "Subscription",
    "SubscriptionType",
    "serve",
]
