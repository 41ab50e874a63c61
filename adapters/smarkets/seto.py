"""seto: the trading messages (``Payload``, ``OrderCreate``, ``MarketSubscribe``, the enums),
as ``smarkets.streaming_api.seto`` names them. Generated from ``seto.proto`` by ``make proto``."""

from .seto_pb2 import *  # noqa: F403
