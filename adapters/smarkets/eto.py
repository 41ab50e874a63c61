"""eto: the session layer's messages (``Payload``, ``PayloadType``, ``LogoutReason``, ...), as
``smarkets.streaming_api.eto`` names them. Generated from ``eto.proto`` by ``make proto``."""

from .eto_pb2 import *  # noqa: F403
