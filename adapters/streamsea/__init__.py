"""stream-sea: stream-sea-client 0.7.0's names, working, supervised, and an embedded server.

The names are 0.7.0's (``stream_sea_client``): ``publish``, ``define_stream``,
``describe_stream``, ``get_schema_versions_vector``, ``get_schema_version``,
``SchemaDefinition``, ``FieldType``, ``StreamSeaConnection``, ``SubscriptionIterator``,
``ProtocolError`` and ``CredentialsError``. ``StreamSeaConnection`` is a supervised link
whose subscriptions resume where they stopped; ``subscribe(stream, callback=...)`` returns
a :class:`Subscription`. ``serve()`` starts the embedded server.
"""

from __future__ import annotations

from .client import (
    StreamSeaConnection,
    Subscription,
    SubscriptionIterator,
    define_stream,
    describe_stream,
    get_schema_version,
    get_schema_versions_vector,
    publish,
)
from .httpclient import HttpError, HttpResponse
from .protocol import CredentialsError, ProtocolError
from .schema import FieldType, SchemaDefinition, SchemaError
from .server import DEFAULT_PORT, StreamSeaServer, serve

__all__ = [
    "DEFAULT_PORT",
    "CredentialsError",
    "FieldType",
    "HttpError",
    "HttpResponse",
    "ProtocolError",
    "SchemaDefinition",
    "SchemaError",
    "StreamSeaConnection",
    "StreamSeaServer",
    "Subscription",
    "SubscriptionIterator",
    "define_stream",
    "describe_stream",
    "get_schema_version",
    "get_schema_versions_vector",
    "publish",
    "serve",
]
