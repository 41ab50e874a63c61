"""actorwire.adapters.jupyter: signed ZMQ messaging and supervised kernel clients.

``Session`` builds, signs, sends, receives and verifies Jupyter messages, over zmq sockets
or as frames, with the Session API's names and arguments and jupyter_client's wire format
(``recv`` returns the message, with its routing identities under ``"idents"``).
``protocol`` is its sans-I/O core: framing at ``<IDS|MSG>``, HMAC signing, the replay
history and the JSON packers.

``KernelClient`` (``client``, the facade; its requests in ``requests``) talks to a running
kernel with one actor per channel on the system's I/O loop (``link``, sharing ``wiring``); a
lifecycle actor keeps them connected and runs the state table (``lifecycle``, ``state``),
with the calls in flight in ``calls``, the heartbeat rule in ``heartbeat`` and the
``on_iopub`` callbacks in ``feed``. ``start_kernel`` (``kernel``) launches a kernel process
(``process``) as a supervised child and returns its client.
"""

from .client import KernelClient
from .connection import ConnectionInfo, new_connection_info, write_connection_file
from .kernel import (
    KernelProcess,
    KernelProcessExited,
    KernelSpec,
    astart_kernel,
    find_kernel_spec,
    start_kernel,
)
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
from .replies import ExecutionError, ExecutionResult
from .session import (
    Message,
    Session,
    SessionFactory,
    extract_header,
    msg_header,
    new_id,
    new_id_bytes,
)
from .state import KernelDeadError, KernelState

__all__ = [
    "DELIM",
    "PROTOCOL_VERSION",
    "Codec",
    "ConnectionInfo",
    "DigestHistory",
    "ExecutionError",
    "ExecutionResult",
    "KernelClient",
    "KernelDeadError",
    "KernelProcess",
    "KernelProcessExited",
    "KernelSpec",
    "KernelState",
    "Message",
    "MessageError",
    "ReplayError",
    "Session",
    "SessionFactory",
    "SignatureError",
    "Signer",
    "astart_kernel",
    "extract_header",
    "find_kernel_spec",
    "json_default",
    "json_packer",
    "json_unpacker",
    "msg_header",
    "new_connection_info",
    "new_id",
    "new_id_bytes",
    "orjson_packer",
    "orjson_unpacker",
    "start_kernel",
    "utcnow",
    "write_connection_file",
]
