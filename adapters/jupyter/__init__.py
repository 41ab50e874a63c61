"""actorwire.adapters.jupyter: signed ZMQ messaging and supervised kernel clients.

``Session`` is jupyter_client's Session (same names, arguments and wire format): it builds,
signs, sends, receives and verifies Jupyter messages, over zmq sockets or as frames.
``protocol`` is its sans-I/O core: framing at ``<IDS|MSG>``, HMAC signing, the replay
history and the JSON packers.
"""

from .protocol import (
    DELIM,
    PROTOCOL_VERSION,
    Codec,
    DigestHistory,
    MessageError,
    ReplayError,
    SignatureError,
    Signer,
    json_default,
    json_packer,
    json_unpacker,
    orjson_packer,
    orjson_unpacker,
    utcnow,
)
from .session import (
    Message,
    Session,
    SessionFactory,
    extract_header,
    msg_header,
    new_id,
    new_id_bytes,
)

__all__ = [
    "DELIM",
    "PROTOCOL_VERSION",
    "Codec",
    "DigestHistory",
    "Message",
    "MessageError",
    "ReplayError",
    "Session",
    "SessionFactory",
    "SignatureError",
    "Signer",
    "extract_header",
    "json_default",
    "json_packer",
    "json_unpacker",
    "msg_header",
    "new_id",
    "new_id_bytes",
    "orjson_packer",
    "orjson_unpacker",
    "utcnow",
]
