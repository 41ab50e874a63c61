"""stream-sea's websocket messages and both ends of one connection, sans-I/O.

The client (``client.py``) and the embedded server (``server.py``) share this module. It
holds no sockets and no clocks (time is passed in):

- the messages, frozen dataclasses, with :func:`encode` and :func:`decode` for their text;
- :class:`ServerConnectionState`, the server's side of one websocket: text in, actions out;
- :class:`ClientConnectionState`, the client's side: requests out, replies matched to them,
  deliveries routed to their subscription and de-duplicated by sequence number.

The wire, as stream-sea-client 0.7.0 and the JS client send and accept it (PEERS.md 2.3,
2.4): one websocket text message per message, each a JSON object with a positive integer
``id`` and a string ``action``. The client's first message is the authenticate, id 1; its
ids then count up by one. Every server message carries the id of the request it answers::

    client -> server
      {"id":1,"action":"authenticate","payload":{"type":"basic","clientId":..,"clientSecret":..}}
      {"id":1,"action":"authenticate","payload":{"type":"jwt","clientId":..,"jwt":..}}
      {"id":N,"action":"subscribe","payload":"<stream>"[,"groupId":"<uuid>"]
                                                       [,"afterSeq":S,"epoch":"<epoch>"]}
      {"id":N,"action":"unsubscribe","payload":<the subscribe's id>}              (actorwire)
    server -> client
      {"id":1,"action":"authenticate","success":true|false[,"error":".."][,"payload":..]}
      {"id":N,"action":"subscription","success":true,"streamName":"<stream>"
                                                       [,"seq":S,"epoch":"<epoch>"]}
      {"id":N,"action":"subscription","streamName":"<stream>","payload":<message>[,"seq":S]
                                                       [,"redelivered":true]}
      {"id":N,"action":"unsubscribe","success":true,"payload":<the subscribe's id>} (actorwire)
      {"id":N|null,"action":"error","error":"<what was wrong>"}                    (actorwire)

Quirks kept on purpose: the reply to a subscribe, and every delivery, has action
``"subscription"``, not the ``"subscribe"`` of the spec's prose (0.7.0 refuses a first reply
whose action is anything else); the spec's authenticate example lacks a comma and is not JSON.

actorwire's extensions are extra keys and actions that 0.7.0 never reads (it reads ``id``,
``action``, ``success`` and ``payload`` only), so a 0.7.0 client meets a stream-sea server:

- ``seq`` on a delivery: the message's number in its stream's log, from 1, one per message
  published to the stream (a member of a consumer group sees the subset its group gives it).
- ``redelivered: true`` on a delivery: a message of a consumer group first sent to another
  member, which dropped and did not come back to take it; its seq may be below the seqs
  this member has seen, and it is not a duplicate for this member.
- ``seq`` and ``epoch`` on a subscribe reply: the subscription's deliveries follow seq
  ``seq``; ``epoch`` names the incarnation of the server's logs (seqs compare only within
  one epoch: a server that restarts with empty logs has a new epoch).
- ``afterSeq`` and ``epoch`` on a subscribe: resume after seq ``afterSeq`` of epoch
  ``epoch`` (what a client got before its connection dropped).
- ``unsubscribe`` and its reply; ``error``, the answer to a request the server refuses (its
  id is null when the request's id could not be read).

Decoding (:func:`decode`) takes text only, at most ``max_size`` bytes as UTF-8
(:data:`MAX_MESSAGE_SIZE`), strict JSON (no NaN or Infinity), an object whose ``id`` is an
integer from 1 to :data:`MAX_ID` (null only in an error reply) and whose ``action`` is one
the sender may send; each message's keys must have their documented types. Optional keys
absent or null mean the same; unknown keys are ignored, as both reference clients ignore
them. Every refusal is a :class:`ProtocolError` saying what was wrong; none ever shows a
``clientSecret`` or ``jwt``, and neither does any repr.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar, Literal, TypeAlias, overload

from ...actors.errors import ActorwireError
from ...actors.jsontext import STRICT_JSON
from ...actors.jsontext import json_kind as _kind
from ...actors.jsontext import show as _show

__all__ = [
    "MAX_ID",
    "MAX_MESSAGE_SIZE",
    "MESSAGE_TOO_BIG",
    "POLICY_VIOLATION",
    "AuthResult",
    "Authenticate",
    "AuthenticateReply",
    "Authenticated",
    "CheckCredentials",
    "ClientConnectionState",
    "ClientMessage",
    "ClientOutput",
    "ClientState",
    "Close",
    "CredentialsError",
    "Delivered",
    "Delivery",
    "ErrorReply",
    "Message",
    "MessageTooBig",
    "Origin",
    "ProtocolError",
    "Refused",
    "Register",
    "Send",
    "ServerAction",
    "ServerConnectionState",
    "ServerMessage",
    "ServerState",
    "StartSeq",
    "Subscribe",
    "SubscribeRefused",
    "Subscribed",
    "SubscriptionReply",
    "Unregister",
    "Unsubscribe",
    "UnsubscribeReply",
    "Unsubscribed",
    "decode",
    "encode",
    "encode_delivery",
    "encode_payload",
]

MAX_MESSAGE_SIZE = 1 << 20
"""Largest message :func:`decode` takes by default, in bytes of UTF-8 (1 MiB, the
``max_size`` the websockets library applies by default)."""

MAX_ID = 2**53 - 1
"""Largest id (and seq): ids are JSON numbers, exact in the JS client up to 2**53 - 1."""

POLICY_VIOLATION = 1008
"""Websocket close code for a connection closed over bad input or refused credentials."""

MESSAGE_TOO_BIG = 1009
"""Websocket close code for a connection closed over a message above the size limit."""

_CLOSE_REASON_BYTES = 123  # a websocket close reason holds at most 123 bytes of UTF-8

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Origin: TypeAlias = Literal["client", "server"]
"""Who sent a message: :func:`decode` takes only what that side may send."""


# --------------------------------------------------------------------------- errors


class ProtocolError(ActorwireError, ValueError):
    """A message that breaks the stream-sea protocol (0.7.0's ``ProtocolError``, also a
    ValueError). ``message_id`` and ``action`` are the offending message's, when it had a
    readable id (and action); the text never contains a secret."""

    def __init__(self, text: str, *, message_id: int | None = None, action: str | None = None):
        super().__init__(text)
        self.message_id = message_id
        self.action = action


class MessageTooBig(ProtocolError):
    """A message above the size limit (the server closes with :data:`MESSAGE_TOO_BIG`)."""


class CredentialsError(ActorwireError, PermissionError):
    """The server refused the credentials (0.7.0's ``CredentialsError``, also a
    PermissionError). The text is 0.7.0's ``Authentication unsuccessful`` and the server's
    ``error``, if it gave one; never the secret."""


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True, repr=False)
class Authenticate:
    """Client -> server, the first message (id 1): basic (``client_secret``) or JWT
    (``jwt``) authentication; exactly one of the two is set. The repr hides both."""

    client_id: str
    client_secret: str | None = None
    jwt: str | None = None
    id: ClassVar[int] = 1
    action: ClassVar[str] = "authenticate"

    @property
    def type(self) -> Literal["basic", "jwt"]:
        """The wire's ``payload.type``: ``"jwt"`` when a JWT is set, else ``"basic"``."""
        return "jwt" if self.jwt is not None else "basic"

    def __repr__(self) -> str:
        secret = "jwt" if self.type == "jwt" else "client_secret"
        return f"Authenticate(type={self.type!r}, client_id={self.client_id!r}, {secret}=***)"


@dataclass(frozen=True, slots=True)
class AuthenticateReply:
    """Server -> client, the answer to the authenticate (id 1). ``error`` says why a
    refusal (``success`` False) was made (the JS client shows it); ``payload`` is the
    server's extra (stream-sea sends ``{"jailId": ..}``), None for none."""

    success: bool
    error: str | None = None
    payload: Any = None
    id: ClassVar[int] = 1
    action: ClassVar[str] = "authenticate"


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Client -> server: subscribe to ``stream``. ``group_id`` (a UUID) names the consumer
    group, whose members compete for messages; ``after_seq`` and ``epoch`` (actorwire)
    ask to resume after that seq of that epoch."""

    id: int
    stream: str
    group_id: str | None = None
    after_seq: int | None = None
    epoch: str | None = None
    action: ClassVar[str] = "subscribe"


@dataclass(frozen=True, slots=True)
class SubscriptionReply:
    """Server -> client, the first answer to a subscribe (same id): ``success`` and the
    stream's name. ``seq`` and ``epoch`` (actorwire): the deliveries follow seq ``seq`` of
    that epoch. ``payload`` is any extra (the spec's example sends ``2``), None for none."""

    id: int
    stream: str | None
    success: bool = True
    error: str | None = None
    payload: Any = None
    seq: int | None = None
    epoch: str | None = None
    action: ClassVar[str] = "subscription"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Server -> client, one message of a subscription: the subscribe's ``id`` and the
    user's ``payload`` (any JSON value), the stream's name and (actorwire) the message's
    ``seq`` in its stream; a server without actorwire's extension sends no seq."""

    id: int
    payload: Any
    stream: str | None = None
    seq: int | None = None
    redelivered: bool = False
    """(actorwire) first sent to another member of the group, which dropped it."""
    action: ClassVar[str] = "subscription"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Client -> server (actorwire): end the subscription made by subscribe
    ``subscription_id``."""

    id: int
    subscription_id: int
    action: ClassVar[str] = "unsubscribe"


@dataclass(frozen=True, slots=True)
class UnsubscribeReply:
    """Server -> client (actorwire): the subscription is ended; no delivery for it follows."""

    id: int
    subscription_id: int
    action: ClassVar[str] = "unsubscribe"


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Server -> client (actorwire): the request ``id`` was refused, for ``error``; ``id``
    is None when the message's id could not be read."""

    id: int | None
    error: str
    action: ClassVar[str] = "error"


ClientMessage: TypeAlias = Authenticate | Subscribe | Unsubscribe
"""What a client sends."""
ServerMessage: TypeAlias = (
    AuthenticateReply | SubscriptionReply | Delivery | UnsubscribeReply | ErrorReply
)
"""What a server sends."""
Message: TypeAlias = ClientMessage | ServerMessage
"""Any stream-sea message."""


# --------------------------------------------------------------------------- encoding

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_payload(payload: Any) -> str:
    """``payload`` as the compact JSON :func:`encode` writes (ASCII, no NaN or Infinity);
    ValueError or TypeError, naming the problem, when it is not JSON."""
    try:
        return _ENCODER.encode(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"stream-sea: payload is not JSON: {exc}") from None


def encode(message: Message) -> str:
    """The JSON text of ``message``, compact, keys in the wire's order.

    Raises TypeError or ValueError naming the field when a field does not fit the wire
    (an id that is not a positive int, an Authenticate without exactly one secret, a
    payload that is not JSON, ...).
    """
    name = type(message).__name__
    obj: dict[str, Any]
    if isinstance(message, Delivery):
        obj = {"id": _id_out(name, "id", message.id), "action": "subscription"}
        if message.stream is not None:
            obj["streamName"] = _str_out(name, "stream", message.stream)
        obj["payload"] = message.payload
        if message.seq is not None:
            obj["seq"] = _id_out(name, "seq", message.seq)
        if message.redelivered:
            obj["redelivered"] = True
    elif isinstance(message, Authenticate):
        obj = {"id": 1, "action": "authenticate", "payload": _auth_payload(message)}
    elif isinstance(message, AuthenticateReply):
        obj = {"id": 1, "action": "authenticate", "success": _bool_out(name, message.success)}
        if message.error is not None:
            obj["error"] = _str_out(name, "error", message.error)
        if message.payload is not None:
            obj["payload"] = message.payload
    elif isinstance(message, Subscribe):
        obj = {"id": _id_out(name, "id", message.id), "action": "subscribe"}
        obj["payload"] = _stream_out(name, message.stream)
        if message.group_id is not None:
            obj["groupId"] = _group_out(name, message.group_id)
        if message.after_seq is not None:
            obj["afterSeq"] = _seq_out(name, "after_seq", message.after_seq)
        if message.epoch is not None:
            obj["epoch"] = _str_out(name, "epoch", message.epoch)
    elif isinstance(message, SubscriptionReply):
        obj = {"id": _id_out(name, "id", message.id), "action": "subscription"}
        obj["success"] = _bool_out(name, message.success)
        if message.stream is not None:
            obj["streamName"] = _str_out(name, "stream", message.stream)
        if message.error is not None:
            obj["error"] = _str_out(name, "error", message.error)
        if message.payload is not None:
            obj["payload"] = message.payload
        if message.seq is not None:
            obj["seq"] = _seq_out(name, "seq", message.seq)
        if message.epoch is not None:
            obj["epoch"] = _str_out(name, "epoch", message.epoch)
    elif isinstance(message, Unsubscribe):
        obj = {"id": _id_out(name, "id", message.id), "action": "unsubscribe"}
        obj["payload"] = _id_out(name, "subscription_id", message.subscription_id)
    elif isinstance(message, UnsubscribeReply):
        obj = {"id": _id_out(name, "id", message.id), "action": "unsubscribe", "success": True}
        obj["payload"] = _id_out(name, "subscription_id", message.subscription_id)
    elif isinstance(message, ErrorReply):
        mid = None if message.id is None else _id_out(name, "id", message.id)
        obj = {"id": mid, "action": "error", "error": _str_out(name, "error", message.error)}
    else:
        raise TypeError(f"stream-sea encode: {message!r} is not a stream-sea message")
    try:
        return _ENCODER.encode(obj)
    except (ValueError, TypeError, RecursionError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"stream-sea encode: {name}.payload is not JSON: {exc}") from None


def encode_delivery(
    id: int,
    payload_json: str,
    *,
    stream: str | None = None,
    seq: int | None = None,
    redelivered: bool = False,
) -> str:
    """The text of ``Delivery(id, payload, stream, seq, redelivered)`` from the payload's
    JSON text,
    ``payload_json = encode_payload(payload)``, so that a fan-out encodes each message once:
    it equals ``encode(Delivery(...))``. ``payload_json`` is not checked."""
    head = f'{{"id":{_id_out("Delivery", "id", id)},"action":"subscription"'
    if stream is not None:
        head += ',"streamName":' + _ENCODER.encode(_str_out("Delivery", "stream", stream))
    tail = "" if seq is None else f',"seq":{_id_out("Delivery", "seq", seq)}'
    if redelivered:
        tail += ',"redelivered":true'
    return f'{head},"payload":{payload_json}{tail}}}'


def _auth_payload(
    message: Authenticate, owner: str = "stream-sea encode: Authenticate"
) -> dict[str, Any]:
    client_id, secret, jwt = message.client_id, message.client_secret, message.jwt
    if not isinstance(client_id, str):
        raise TypeError(f"{owner}: client_id must be a str, got {_show(client_id)}")
    if (secret is None) == (jwt is None):
        raise ValueError(f"{owner}: needs exactly one of client_secret (basic) or jwt (JWT)")
    # The secrets' values never appear in a message: only their type.
    if jwt is not None:
        if not isinstance(jwt, str):
            raise TypeError(f"{owner}: jwt must be a str, got {_kind(jwt)}")
        return {"type": "jwt", "clientId": client_id, "jwt": jwt}
    if not isinstance(secret, str):
        raise TypeError(f"{owner}: client_secret must be a str, got {_kind(secret)}")
    return {"type": "basic", "clientId": client_id, "clientSecret": secret}


def _id_out(name: str, what: str, value: object) -> int:
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise ValueError(
            f"stream-sea encode: {name}.{what} must be an int from 1 to 2**53 - 1, "
            f"got {_show(value)}"
        )
    return value


def _seq_out(name: str, what: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise ValueError(
            f"stream-sea encode: {name}.{what} must be an int from 0 to 2**53 - 1, "
            f"got {_show(value)}"
        )
    return value


def _str_out(name: str, what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"stream-sea encode: {name}.{what} must be a str, got {_show(value)}")
    return value


def _stream_out(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"stream-sea encode: {name}.stream must be a non-empty str, got {_show(value)}"
        )
    return value


def _group_out(name: str, value: object) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError(
            f"stream-sea encode: {name}.group_id must be a UUID in the 8-4-4-4-12 form, "
            f"got {_show(value)}"
        )
    return value


def _bool_out(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"stream-sea encode: {name}.success must be a bool, got {_show(value)}")
    return value


# --------------------------------------------------------------------------- decoding


_parse = STRICT_JSON.decode
_raw_parse = STRICT_JSON.raw_decode

_MISSING: Any = object()

_Parser: TypeAlias = Callable[[dict[str, Any], int], "Message"]


@overload
def decode(
    text: str | bytes, *, origin: Literal["client"], max_size: int = ...
) -> ClientMessage: ...
@overload
def decode(
    text: str | bytes, *, origin: Literal["server"], max_size: int = ...
) -> ServerMessage: ...
@overload
def decode(text: str | bytes, *, origin: None = None, max_size: int = ...) -> Message: ...


def decode(
    text: str | bytes, *, origin: Origin | None = None, max_size: int = MAX_MESSAGE_SIZE
) -> Message:
    """The message in ``text``, or ProtocolError saying what is wrong with it.

    ``origin`` ``"client"`` takes only what a client sends, ``"server"`` only what a server
    sends; None takes both (an ``authenticate`` or ``unsubscribe`` with a ``success`` key is
    then the reply). A binary websocket message (bytes) is refused: stream-sea is JSON text.
    """
    if not isinstance(text, str):
        if isinstance(text, bytes | bytearray | memoryview):
            raise ProtocolError("a binary message: stream-sea messages are JSON text")
        raise TypeError(f"stream-sea decode: text must be a str, got {type(text).__name__}")
    _check_size(text, max_size)
    problem = None
    try:
        obj = _parse(text)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at character {exc.pos}"
    except RecursionError:
        problem = "nested too deeply"
    except ValueError as exc:  # NaN, Infinity, an integer of more than 4300 digits
        problem = str(exc)
    if problem is not None:
        # Raised here, not in the except clause: the JSONDecodeError, whose ``doc`` is the
        # whole text (a secret too), must not ride along as the context.
        raise ProtocolError(f"Could not decode JSON for message: {problem}")
    if type(obj) is not dict:
        raise ProtocolError(
            f'a message must be a JSON object with "id" and "action", got {_kind(obj)}'
        )
    action = obj.get("action")
    if action == "error" and origin != "client":
        return _error_reply(obj)
    mid = _message_id(obj)
    if type(action) is not str:
        what = "has no" if action is None else f"must have a string, not {_kind(action)}, as"
        raise ProtocolError(f'message id {mid} {what} "action"', message_id=mid)
    parser = _PARSERS[origin].get(action)
    if parser is None:
        raise _unknown_action(action, mid, origin)
    return parser(obj, mid)


def _check_size(text: str, max_size: int) -> None:
    n = len(text)
    if n * 4 <= max_size:  # a character is at most 4 bytes of UTF-8
        return
    if n > max_size:
        raise MessageTooBig(f"message of {n} characters is over the limit of {max_size} bytes")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_size:
        raise MessageTooBig(f"message of {size} bytes is over the limit of {max_size} bytes")


def _message_id(obj: dict[str, Any]) -> int:
    raw = obj.get("id", _MISSING)
    if raw is _MISSING:
        raise ProtocolError('Message must have an id: the object has no "id"')
    if type(raw) is not int or not 0 < raw <= MAX_ID:
        raise ProtocolError(
            f'message "id" must be an integer from 1 to 2**53 - 1, got {_show(raw)}'
        )
    return raw


def _unknown_action(action: str, mid: int, origin: Origin | None) -> ProtocolError:
    sender = "" if origin is None else f" from a {origin}"
    known = _ACTIONS[origin]
    if origin == "server" and action == "subscribe":
        # The spec's prose says "subscribe"; its example and 0.7.0 say "subscription".
        hint = (
            " (a subscribe reply and each delivery have action 'subscription': "
            "stream-sea-client 0.7.0 refuses 'subscribe', whatever the spec's prose says)"
        )
    else:
        # Only a short name gets a suggestion: difflib's cost grows with the name's length.
        close = difflib.get_close_matches(action, known, n=1) if len(action) <= 40 else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    expected = ", ".join(repr(a) for a in known)
    return ProtocolError(
        f"message id {mid}: unknown action {_show(action)}{sender}; "
        f"expected one of {expected}{hint}",
        message_id=mid,
    )


def _fail(action: str, mid: int, problem: str) -> ProtocolError:
    return ProtocolError(f"{action} (id {mid}): {problem}", message_id=mid, action=action)


def _opt_str(obj: dict[str, Any], key: str, action: str, mid: int) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise _fail(action, mid, f'"{key}" must be a string, got {_show(value)}')


def _opt_seq(obj: dict[str, Any], key: str, action: str, mid: int) -> int | None:
    value = obj.get(key)
    if value is None or (type(value) is int and 0 <= value <= MAX_ID):
        return value
    raise _fail(action, mid, f'"{key}" must be an integer from 0 to 2**53 - 1, got {_show(value)}')


def _success(obj: dict[str, Any], action: str, mid: int, missing: str) -> bool:
    value = obj.get("success", _MISSING)
    if value is _MISSING:
        raise _fail(action, mid, missing)
    if type(value) is not bool:
        raise _fail(action, mid, f'"success" must be true or false, got {_show(value)}')
    return value


def _ref(obj: dict[str, Any], action: str, mid: int) -> int:
    value = obj.get("payload")
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise _fail(action, mid, f'"payload" must be the subscribe\'s id, got {_show(value)}')
    return value


# -- client -> server


def _authenticate(obj: dict[str, Any], mid: int) -> Authenticate:
    act = "authenticate"
    if mid != 1:
        raise _fail(act, mid, "only the first message, id 1, authenticates")
    payload = obj.get("payload")
    if type(payload) is not dict:
        raise _fail(act, mid, f'"payload" must be an object, got {_kind(payload)}')
    kind = payload.get("type")
    client_id = payload.get("clientId")
    # The secrets' values never appear below: only their JSON type.
    if type(client_id) is not str:
        raise _fail(act, mid, f'"payload.clientId" must be a string, got {_kind(client_id)}')
    if kind == "basic":
        secret = payload.get("clientSecret")
        if type(secret) is not str:
            raise _fail(act, mid, f'"payload.clientSecret" must be a string, got {_kind(secret)}')
        return Authenticate(client_id, client_secret=secret)
    if kind == "jwt":
        jwt = payload.get("jwt")
        if type(jwt) is not str:
            raise _fail(act, mid, f'"payload.jwt" must be a string, got {_kind(jwt)}')
        return Authenticate(client_id, jwt=jwt)
    raise _fail(act, mid, f'"payload.type" must be "basic" or "jwt", got {_show(kind)}')


def _subscribe(obj: dict[str, Any], mid: int) -> Subscribe:
    act = "subscribe"
    stream = obj.get("payload")
    if type(stream) is not str or not stream:
        raise _fail(
            act,
            mid,
            f'"payload" must be the stream\'s name, a non-empty string, got {_show(stream)}',
        )
    group = obj.get("groupId")
    if group is not None and (type(group) is not str or not _UUID.fullmatch(group)):
        raise _fail(
            act, mid, f'"groupId" must be a UUID in the 8-4-4-4-12 form, got {_show(group)}'
        )
    after = _opt_seq(obj, "afterSeq", act, mid)
    epoch = _opt_str(obj, "epoch", act, mid)
    return Subscribe(mid, stream, group, after, epoch)


def _unsubscribe(obj: dict[str, Any], mid: int) -> Unsubscribe:
    return Unsubscribe(mid, _ref(obj, "unsubscribe", mid))


# -- server -> client


def _authenticate_reply(obj: dict[str, Any], mid: int) -> AuthenticateReply:
    act = "authenticate"
    if mid != 1:
        raise _fail(act, mid, "Authentication Response must have an id of 1")
    success = _success(obj, act, mid, "Authentication Response does not have a success field")
    return AuthenticateReply(success, _opt_str(obj, "error", act, mid), obj.get("payload"))


def _subscription(obj: dict[str, Any], mid: int) -> SubscriptionReply | Delivery:
    act = "subscription"
    if "success" not in obj:  # a delivery: the hot path
        payload = obj.get("payload", _MISSING)
        if payload is _MISSING:
            raise _fail(act, mid, 'a delivery (no "success") must have a "payload"')
        stream = obj.get("streamName")
        seq = obj.get("seq")
        again = obj.get("redelivered")
        if (
            (stream is None or type(stream) is str)
            and (seq is None or (type(seq) is int and 0 < seq <= MAX_ID))
            and (again is None or type(again) is bool)
        ):
            return Delivery(mid, payload, stream, seq, again is True)
        _opt_str(obj, "streamName", act, mid)
        if again is not None and type(again) is not bool:
            raise _fail(act, mid, f'"redelivered" must be a boolean, got {_show(again)}')
        raise _fail(act, mid, f'"seq" must be an integer from 1 to 2**53 - 1, got {_show(seq)}')
    return SubscriptionReply(
        mid,
        _opt_str(obj, "streamName", act, mid),
        _success(obj, act, mid, ""),
        _opt_str(obj, "error", act, mid),
        obj.get("payload"),
        _opt_seq(obj, "seq", act, mid),
        _opt_str(obj, "epoch", act, mid),
    )


def _unsubscribe_reply(obj: dict[str, Any], mid: int) -> UnsubscribeReply:
    act = "unsubscribe"
    if _success(obj, act, mid, "") is not True:
        raise _fail(act, mid, '"success" must be true: a refusal is an "error" reply')
    return UnsubscribeReply(mid, _ref(obj, act, mid))


def _error_reply(obj: dict[str, Any]) -> ErrorReply:
    mid = None if obj.get("id", _MISSING) is None else _message_id(obj)
    error = obj.get("error")
    if type(error) is not str:
        raise ProtocolError(
            f'error (id {mid}): "error" must be a string, got {_show(error)}',
            message_id=mid,
            action="error",
        )
    return ErrorReply(mid, error)


def _either(reply: _Parser, request: _Parser) -> _Parser:
    """For ``origin=None``: a message with a ``success`` key is the reply."""
    return lambda obj, mid: (reply if "success" in obj else request)(obj, mid)


_PARSERS: dict[Origin | None, dict[str, _Parser]] = {
    "client": {
        "authenticate": _authenticate,
        "subscribe": _subscribe,
        "unsubscribe": _unsubscribe,
    },
    "server": {
        "authenticate": _authenticate_reply,
        "subscription": _subscription,
        "unsubscribe": _unsubscribe_reply,
    },
    None: {
        "authenticate": _either(_authenticate_reply, _authenticate),
        "subscribe": _subscribe,
        "subscription": _subscription,
        "unsubscribe": _either(_unsubscribe_reply, _unsubscribe),
    },
}
# "error" is decoded before the id (its id may be null); it is listed for the messages.
_ACTIONS: dict[Origin | None, tuple[str, ...]] = {
    "client": ("authenticate", "subscribe", "unsubscribe"),
    "server": ("authenticate", "subscription", "unsubscribe", "error"),
    None: ("authenticate", "subscribe", "subscription", "unsubscribe", "error"),
}


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` (``encode`` it) on the connection, in the order given."""

    message: Message


@dataclass(frozen=True, slots=True)
class Register:
    """Server: start delivering ``stream`` to the subscription ``subscription_id`` (the
    subscribe's id, the id its deliveries carry), after seq ``start_seq`` (None: the server
    does not number messages). ``group_id`` None means the client's default group, one per
    ``client_id``. ``after_seq``/``epoch`` are what the client asked to resume after."""

    subscription_id: int
    stream: str
    group_id: str | None
    client_id: str
    start_seq: int | None = None
    after_seq: int | None = None
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class Unregister:
    """Server: stop delivering to the subscription ``subscription_id``."""

    subscription_id: int


@dataclass(frozen=True, slots=True)
class Close:
    """Server: close the websocket with ``code`` and ``reason`` (at most 123 bytes)."""

    code: int
    reason: str


ServerAction: TypeAlias = Send | Register | Unregister | Close
"""What :class:`ServerConnectionState` asks the server to do, in order."""


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What the server's credential check says of an Authenticate: ``success``, the
    ``error`` sent to a refused client, the reply's ``payload`` (e.g. ``{"jailId": ..}``),
    and when the credentials expire (a JWT's ``exp``), on the clock ``now`` comes from."""

    success: bool
    error: str | None = None
    payload: Any = None
    expires_at: float | None = None


class ServerState(enum.Enum):
    """Where the server's side of one connection stands."""

    AWAITING_AUTH = "awaiting_auth"
    """Connected; the first message must be the authenticate."""
    AUTHENTICATED = "authenticated"
    """Credentials accepted: subscribes and unsubscribes are taken."""
    CLOSED = "closed"
    """Closed (by a rule below, or the socket went): everything is ignored."""


CheckCredentials: TypeAlias = Callable[[Authenticate, float], AuthResult]
"""The server's credential check: ``check(authenticate, now) -> AuthResult``."""

StartSeq: TypeAlias = Callable[[Subscribe, str], int | None]
"""The server's answer to where a subscription starts: ``start(subscribe, client_id)`` is
the seq its deliveries follow (the stream's last seq, or ``subscribe.after_seq`` when it
can resume from there), or None when the server does not number messages. It raises
:class:`SubscribeRefused` to refuse the subscription (an ErrorReply, no Register)."""


class SubscribeRefused(Exception):
    """Raised by a server's ``start`` callback to refuse a subscribe; its text says why."""


class ServerConnectionState:
    """The server's side of one stream-sea websocket, sans-I/O.

    ``receive(text, now)``, ``tick(now)`` and ``connection_lost()`` return the actions to
    carry out, in order: :class:`Send` a reply, :class:`Register` or :class:`Unregister` a
    subscription, :class:`Close` the socket. The credential check (``check``) and where a
    subscription starts (``start``) are the server's, passed in. The rules, all of them:

    ===============  ====================================  ================================
    state            input                                 actions, new state
    ===============  ====================================  ================================
    AWAITING_AUTH    authenticate, id 1, check succeeds    reply success, AUTHENTICATED
    AWAITING_AUTH    authenticate, check refuses           reply success false with the
                                                           check's error; Close, CLOSED
    AWAITING_AUTH    authenticate id 1 with a bad payload  reply success false naming the
                                                           problem; Close, CLOSED
    AWAITING_AUTH    anything else, or undecodable         ErrorReply; Close, CLOSED
    AUTHENTICATED    id not above the last id              ErrorReply; Close, CLOSED (1)
    AUTHENTICATED    subscribe                             reply (seq, epoch), Register (2)
    AUTHENTICATED    subscribe beyond max_subscriptions    ErrorReply
    AUTHENTICATED    subscribe that ``start`` refuses      ErrorReply (SubscribeRefused)
    AUTHENTICATED    unsubscribe of a live subscription    Unregister, UnsubscribeReply
    AUTHENTICATED    unsubscribe of anything else          ErrorReply
    AUTHENTICATED    readable id, bad action or shape      ErrorReply; the id counts (3)
    AUTHENTICATED    no readable id (not JSON, ...)        ErrorReply (id null); Close, CLOSED
    any but CLOSED   a message over ``max_size`` bytes     ErrorReply (id null); Close 1009
    AWAITING_AUTH    ``now`` past ``auth_timeout``         Close, CLOSED
    AUTHENTICATED    ``now`` past ``AuthResult.expires_at``   Close, CLOSED
    any but CLOSED   ``connection_lost()``                 CLOSED
    CLOSED           anything                              nothing
    ===============  ====================================  ================================

    Every path to CLOSED unregisters each live subscription first, once. Closes use code
    1008 (:data:`POLICY_VIOLATION`) unless said otherwise.

    (1) Ids must strictly increase (the spec has them count up by one; gaps are taken). A
        repeated or lower id closes the connection: replies and deliveries are matched by
        id alone, so a client reusing one could no longer tell its subscriptions apart.
    (2) The reply goes out before the Register, so it precedes every delivery; its ``seq``
        is ``start(subscribe, client_id)`` and its ``epoch`` this server's ``epoch``.
    (3) A message whose id reads and increases but whose action is unknown or whose keys
        have the wrong types is refused alone: the connection stays open (a newer client
        may probe an action); its id is used up.
    """

    __slots__ = (
        "_check",
        "_start",
        "auth_deadline",
        "auth_timeout",
        "client_id",
        "close_reason",
        "epoch",
        "errors",
        "expires_at",
        "last_id",
        "max_size",
        "max_subscriptions",
        "state",
        "subscriptions",
    )

    def __init__(
        self,
        check: CheckCredentials,
        *,
        now: float,
        start: StartSeq | None = None,
        epoch: str | None = None,
        auth_timeout: float = 10.0,
        max_size: int = MAX_MESSAGE_SIZE,
        max_subscriptions: int = 1024,
    ) -> None:
        if not callable(check):
            raise TypeError(f"ServerConnectionState: check must be callable, got {check!r}")
        now = _time("now", now)
        self._check = check
        self._start = start
        self.epoch: str | None = epoch
        """The incarnation of this server's stream logs, sent in every subscribe reply."""
        self.auth_timeout: float = _time("auth_timeout", auth_timeout, positive=True)
        """Seconds a connection may take to authenticate."""
        self.auth_deadline: float = now + self.auth_timeout
        """When an unauthenticated connection is closed."""
        self.max_size: int = _positive("max_size", max_size)
        """Largest message taken, in bytes."""
        self.max_subscriptions: int = _positive("max_subscriptions", max_subscriptions)
        """Most live subscriptions on the connection."""
        self.state: ServerState = ServerState.AWAITING_AUTH
        self.client_id: str | None = None
        """The authenticated client's id."""
        self.expires_at: float | None = None
        """When the credentials expire (from the check), None for never."""
        self.last_id: int = 0
        """The highest id taken so far."""
        self.subscriptions: dict[int, Register] = {}
        """The live subscriptions, by subscription id."""
        self.errors: int = 0
        """Messages refused."""
        self.close_reason: str | None = None
        """Why the connection closed."""

    def __repr__(self) -> str:
        return (
            f"<ServerConnectionState {self.state.value} client_id={self.client_id!r} "
            f"last_id={self.last_id} subscriptions={len(self.subscriptions)}>"
        )

    @property
    def deadline(self) -> float | None:
        """When :meth:`tick` will next act (authentication timeout, credential expiry)."""
        if self.state is ServerState.AWAITING_AUTH:
            return self.auth_deadline
        if self.state is ServerState.AUTHENTICATED:
            return self.expires_at
        return None

    def tick(self, now: float) -> list[ServerAction]:
        """Close the connection when its deadline has passed (see :attr:`deadline`)."""
        due = self.deadline
        if due is None or now < due:
            return []
        if self.state is ServerState.AWAITING_AUTH:
            return self._close(f"no authenticate within {self.auth_timeout:g} s")
        return self._close("credentials expired")

    def receive(self, text: str | bytes, now: float) -> list[ServerAction]:
        """Take one message from the client."""
        if self.state is ServerState.CLOSED:
            return []
        overdue = self.tick(now)
        if overdue:
            return overdue
        try:
            msg = decode(text, origin="client", max_size=self.max_size)
        except MessageTooBig as exc:
            self.errors += 1
            return [Send(ErrorReply(None, str(exc))), *self._close(str(exc), MESSAGE_TOO_BIG)]
        except ProtocolError as exc:
            self.errors += 1
            return self._refuse(exc)
        if self.state is ServerState.AUTHENTICATED:
            # An authenticate (id 1) never passes: a connection authenticates once.
            if msg.id <= self.last_id:
                self.errors += 1
                return self._id_not_increasing(msg.id, msg.action)
            self.last_id = msg.id
        return _SERVER_RULES[self.state, type(msg)](self, msg, now)

    def connection_lost(self) -> list[ServerAction]:
        """The socket closed: unregister what is live (nothing once closed by a rule)."""
        if self.state is ServerState.CLOSED:
            return []
        out: list[ServerAction] = [Unregister(sid) for sid in self.subscriptions]
        self.subscriptions.clear()
        self.state = ServerState.CLOSED
        self.close_reason = "connection lost"
        return out

    # -- the rules ----------------------------------------------------------------------------

    def _not_first(self, msg: ClientMessage, now: float) -> list[ServerAction]:
        self.errors += 1
        reason = (
            f'the first message must be "authenticate" with id 1, got {msg.action!r} (id {msg.id})'
        )
        return [Send(ErrorReply(msg.id, reason)), *self._close(reason)]

    def _authenticate(self, msg: Authenticate, now: float) -> list[ServerAction]:
        result = self._check(msg, now)
        if not isinstance(result, AuthResult):
            raise TypeError(f"ServerConnectionState: check must return AuthResult, got {result!r}")
        if not result.success:
            error = result.error or "authentication failed"
            return [Send(AuthenticateReply(False, error)), *self._close("authentication failed")]
        self.state = ServerState.AUTHENTICATED
        self.client_id = msg.client_id
        self.last_id = 1
        self.expires_at = result.expires_at
        return [Send(AuthenticateReply(True, payload=result.payload))]

    def _refuse(self, exc: ProtocolError) -> list[ServerAction]:
        mid, text = exc.message_id, str(exc)
        if self.state is ServerState.AWAITING_AUTH:
            if mid == 1 and exc.action == "authenticate":
                # The spec: an authenticate gets exactly one authenticate reply.
                reply: Message = AuthenticateReply(False, text)
                return [Send(reply), *self._close("authentication failed: bad authenticate")]
            return [Send(ErrorReply(mid, text)), *self._close(text)]
        if mid is None:
            return [Send(ErrorReply(None, text)), *self._close(text)]
        if mid <= self.last_id:
            return self._id_not_increasing(mid, exc.action)
        self.last_id = mid
        return [Send(ErrorReply(mid, text))]

    def _id_not_increasing(self, mid: int, action: str | None) -> list[ServerAction]:
        what = f"{action!r} " if action else ""
        reason = f"{what}id {mid} is not above the last id {self.last_id}: ids must increase"
        if action == "authenticate":
            reason = "a second authenticate: a connection authenticates once, with id 1"
        return [Send(ErrorReply(mid, reason)), *self._close(reason)]

    def _subscribe(self, msg: Subscribe, now: float) -> list[ServerAction]:
        if len(self.subscriptions) >= self.max_subscriptions:
            self.errors += 1
            reason = f"subscribe refused: at most {self.max_subscriptions} subscriptions"
            return [Send(ErrorReply(msg.id, reason + " per connection"))]
        client_id = self.client_id
        assert client_id is not None
        try:
            start = self._start(msg, client_id) if self._start is not None else None
        except SubscribeRefused as exc:
            self.errors += 1
            return [Send(ErrorReply(msg.id, f"subscribe refused: {exc}"))]
        reg = Register(msg.id, msg.stream, msg.group_id, client_id, start, msg.after_seq, msg.epoch)
        self.subscriptions[msg.id] = reg
        reply = SubscriptionReply(msg.id, msg.stream, seq=start, epoch=self.epoch)
        return [Send(reply), reg]

    def _unsubscribe(self, msg: Unsubscribe, now: float) -> list[ServerAction]:
        sid = msg.subscription_id
        if self.subscriptions.pop(sid, None) is None:
            self.errors += 1
            reason = f"unsubscribe: no live subscription with id {sid} on this connection"
            return [Send(ErrorReply(msg.id, reason))]
        return [Unregister(sid), Send(UnsubscribeReply(msg.id, sid))]

    def _close(self, reason: str, code: int = POLICY_VIOLATION) -> list[ServerAction]:
        out: list[ServerAction] = [Unregister(sid) for sid in self.subscriptions]
        self.subscriptions.clear()
        self.state = ServerState.CLOSED
        self.close_reason = reason
        out.append(Close(code, _close_reason(reason)))
        return out


_S = ServerState
_SERVER_RULES: dict[
    tuple[ServerState, type], Callable[[ServerConnectionState, Any, float], list[ServerAction]]
] = {
    (_S.AWAITING_AUTH, Authenticate): ServerConnectionState._authenticate,
    (_S.AWAITING_AUTH, Subscribe): ServerConnectionState._not_first,
    (_S.AWAITING_AUTH, Unsubscribe): ServerConnectionState._not_first,
    (_S.AUTHENTICATED, Subscribe): ServerConnectionState._subscribe,
    (_S.AUTHENTICATED, Unsubscribe): ServerConnectionState._unsubscribe,
}
"""The message rules of :class:`ServerConnectionState` (after its id rule)."""


def _close_reason(reason: str) -> str:
    data = reason.encode("utf-8", "replace")
    if len(data) <= _CLOSE_REASON_BYTES:
        return reason
    return data[: _CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def _time(what: str, value: object, *, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(float(value))
        or (positive and float(value) <= 0)
    ):
        bound = " > 0" if positive else ""
        raise ValueError(
            f"stream-sea: {what} must be a finite number of seconds{bound}, got {value!r}"
        )
    return float(value)


def _positive(what: str, value: object) -> int:
    if type(value) is not int or value <= 0:
        raise ValueError(f"stream-sea: {what} must be an int > 0, got {value!r}")
    return value


# --------------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Client: the server accepted the credentials; ``payload`` is its reply's extra."""

    payload: Any = None


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Client: the subscription ``key`` is live. ``after_seq`` is the seq a resubscription
    (after a reconnect) asked to resume after; ``start_seq`` the seq the server started it
    after (None: the server does not number messages); ``missed`` says, for a
    resubscription, why messages published while disconnected may have been missed, None
    when none were."""

    key: Hashable
    stream: str
    after_seq: int | None = None
    start_seq: int | None = None
    missed: str | None = None


@dataclass(slots=True)  # not frozen: built for every message, and frozen costs 3x
class Delivered:
    """Client: one message of the subscription ``key``, with its seq (None without the
    extension)."""

    key: Hashable
    payload: Any
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """Client: the subscription ``key`` is over; nothing more is delivered for it."""

    key: Hashable


@dataclass(frozen=True, slots=True)
class Refused:
    """Client: the server refused the subscription ``key`` (its subscribe), for ``reason``;
    the subscription is dropped."""

    key: Hashable
    reason: str


ClientOutput: TypeAlias = Send | Authenticated | Subscribed | Delivered | Unsubscribed | Refused
"""What :class:`ClientConnectionState` returns: messages to send and events, in order."""


class ClientState(enum.Enum):
    """Where the client's side of the connection stands."""

    DISCONNECTED = "disconnected"
    """No connection (none yet, or the last one ended): ``connect()`` starts one."""
    AUTHENTICATING = "authenticating"
    """The authenticate is sent; its reply is the only message taken."""
    READY = "ready"
    """Authenticated: subscribes go out at once, replies and deliveries are matched."""


class _Track:
    """Seqs of one stream for one group: the last delivered, and the epoch they count in."""

    __slots__ = ("epoch", "last", "users")

    def __init__(self) -> None:
        self.last: int | None = None
        self.epoch: str | None = None
        self.users = 0  # live subscriptions on it; dropped at 0 so memory stays bounded


class _Sub:
    """One subscription, across connections."""

    __slots__ = (
        "after_seq",
        "exclusive",
        "group_id",
        "id",
        "key",
        "resuming",
        "stream",
        "track",
        "unsubscribing",
        "was_live",
    )

    def __init__(
        self, key: Hashable, stream: str, group_id: str | None, track: _Track, exclusive: bool
    ) -> None:
        self.key = key
        self.stream = stream
        self.group_id = group_id
        self.exclusive = exclusive  # its group has no other member: a repeat is a repeat
        self.track = track
        self.id: int | None = None  # its subscribe's id on this connection, once sent
        self.after_seq: int | None = None  # what that subscribe asked to resume after
        self.resuming = False  # that subscribe resumes one made live on an earlier connection
        self.was_live = False  # a subscribe reply said success on some connection
        self.unsubscribing = False


class ClientConnectionState:
    """The client's side of a stream-sea websocket, sans-I/O, across reconnects.

    ``connect()``, ``subscribe()``, ``unsubscribe()``, ``receive(text)`` and
    ``connection_lost()`` return what to do, in order: :class:`Send` a message, and events
    for the user (:class:`Authenticated`, :class:`Subscribed`, :class:`Delivered`,
    :class:`Unsubscribed`, :class:`Refused`). The rules, all of them:

    1. ``connect()`` (only when DISCONNECTED) starts a connection: ids restart at 1 (the
       spec: the authenticate is id 1) and go up by one per request, as 0.7.0's do.
    2. AUTHENTICATING takes only the authenticate reply (id 1). Success: READY,
       :class:`Authenticated`, then a subscribe for every live subscription. Failure:
       :class:`CredentialsError` ("Authentication unsuccessful", and the server's error).
       Anything else: ProtocolError ("Reply to a authenticate action must be a authenticate
       action").
    3. READY matches every message by id to a request still waiting for its reply, or to a
       live subscription: a subscribe's first answer must be a subscription reply (0.7.0's
       "Reply to a subscribe action must be a subscription action"); later ones are
       deliveries, routed to that subscription; an id with no request behind it is a
       ProtocolError ("Server sent a response but the message id could not be resolved to
       a request"), as are a stream name other than the subscription's and a second
       subscribe reply.
    4. A subscription refused (reply success false, or an error reply) is dropped:
       :class:`Refused`. An error reply with no request waiting behind its id (null, say)
       is a ProtocolError: the server gives up on the connection.
    5. ``subscribe(key, stream, group_id=)`` sends at once when READY, else at the next
       authentication. ``unsubscribe(key)`` sends an unsubscribe when the subscribe went
       out on this connection (the server handles messages in order, so even before its
       reply); deliveries that still come are dropped and counted in ``late``; its reply
       (or an error reply to it) gives :class:`Unsubscribed`. Without a connection it is
       dropped at once.
    6. Seqs, per stream and consumer group (groups compete, so two groups on a stream see
       different messages): a delivery whose seq is at most the last one delivered is a
       duplicate, dropped and counted in ``duplicates``; a delivery without seq (a server
       without the extension) is delivered and counted in ``missing_seq``; one marked
       ``redelivered`` (another member's message) is delivered even below the last seq,
       counted in ``redelivered``, unless the subscription is ``exclusive`` (alone in its
       group: then it is a duplicate). A subscribe
       reply's seq moves the last seq up to it; an epoch other than the one the last seq
       counts in starts the count again (``epoch_changes``).
    7. A resubscription (after a reconnect) asks for ``afterSeq`` = the last seq, with its
       epoch. Its :class:`Subscribed` says in ``missed`` when messages may have been
       missed: no seq to resume from or none in the reply (cannot know what was missed),
       a new epoch, or a start after the seq asked; each counts in ``unknown_gaps``.
    8. A ProtocolError or CredentialsError from ``receive`` ends the connection
       (DISCONNECTED): the caller closes the socket. Whatever ends a connection, the caller
       then calls ``connection_lost()``, which gives :class:`Unsubscribed` for the
       unsubscribes it cut short; the other subscriptions stay for the next ``connect()``.
    9. DISCONNECTED ignores what it receives (frames read after the end).
    """

    __slots__ = (
        "_client_secret",
        "_ended",
        "_jwt",
        "_next_id",
        "_pending",
        "_routes",
        "_subs",
        "_tracks",
        "client_id",
        "connections",
        "duplicates",
        "epoch_changes",
        "late",
        "max_size",
        "missing_seq",
        "redelivered",
        "state",
        "unknown_gaps",
    )

    def __init__(
        self,
        client_id: str,
        *,
        client_secret: str | None = None,
        jwt: str | None = None,
        max_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        _auth_payload(Authenticate(client_id, client_secret, jwt), "ClientConnectionState")
        self.client_id = client_id
        self._client_secret = client_secret
        self._jwt = jwt
        self.max_size: int = _positive("max_size", max_size)
        """Largest message taken, in bytes."""
        self.state: ClientState = ClientState.DISCONNECTED
        self._next_id = 1
        self._pending: dict[int, tuple[str, _Sub | None]] = {}  # id -> (action, subscription)
        self._routes: dict[int, _Sub] = {}  # subscribe id -> its subscription, once live
        self._subs: dict[Hashable, _Sub] = {}
        self._tracks: dict[tuple[str, str | None], _Track] = {}
        self._ended: list[ClientOutput] = []
        self.connections: int = 0
        """Connections started."""
        self.duplicates: int = 0
        """Deliveries dropped as already delivered (rule 6)."""
        self.redelivered: int = 0
        """Deliveries of another group member's messages below the last seq (rule 6)."""
        self.missing_seq: int = 0
        """Deliveries without a seq: the server cannot tell what was missed (rule 6)."""
        self.late: int = 0
        """Deliveries dropped because their subscription was being unsubscribed (rule 5)."""
        self.unknown_gaps: int = 0
        """Resubscriptions that may have missed messages (rule 7)."""
        self.epoch_changes: int = 0
        """Subscribe replies whose epoch was not the one the last seq counted in."""

    def __repr__(self) -> str:
        return (
            f"<ClientConnectionState {self.state.value} client_id={self.client_id!r} "
            f"subscriptions={len(self._subs)} pending={len(self._pending)}>"
        )

    # -- queries ------------------------------------------------------------------------------

    @property
    def subscriptions(self) -> tuple[Hashable, ...]:
        """The keys of the subscriptions made and not ended."""
        return tuple(self._subs)

    @property
    def pending(self) -> int:
        """Requests sent on this connection and not yet answered."""
        return len(self._pending)

    def last_seq(self, stream: str, group_id: str | None = None) -> int | None:
        """The last seq delivered (or started after) on ``stream`` for ``group_id``."""
        track = self._tracks.get((stream, group_id))
        return None if track is None else track.last

    # -- commands -----------------------------------------------------------------------------

    def renew(self, *, jwt: str) -> None:
        """Authenticate with ``jwt`` from the next ``connect()`` on (a renewed token)."""
        if self._jwt is None:
            raise ValueError("ClientConnectionState.renew: this client authenticates with a secret")
        _auth_payload(Authenticate(self.client_id, None, jwt), "ClientConnectionState.renew")
        self._jwt = jwt

    def connect(self) -> list[ClientOutput]:
        """Start a connection: the authenticate to send first (rule 1)."""
        if self.state is not ClientState.DISCONNECTED:
            raise RuntimeError(
                f"ClientConnectionState.connect: the connection is {self.state.value}; "
                f"call connection_lost() when it ends, then connect()"
            )
        self.state = ClientState.AUTHENTICATING
        self.connections += 1
        self._pending[1] = ("authenticate", None)
        self._next_id = 2
        return [Send(Authenticate(self.client_id, self._client_secret, self._jwt))]

    def subscribe(
        self, key: Hashable, stream: str, *, group_id: str | None = None, exclusive: bool = False
    ) -> list[ClientOutput]:
        """Subscribe ``key`` to ``stream`` in ``group_id`` (rule 5). ``exclusive``: no other
        subscription is in the group (a fresh fan-out group), so a delivery at or below the
        last seq is a duplicate even when marked ``redelivered`` (rule 6)."""
        _stream_out("subscribe", stream)
        if group_id is not None:
            _group_out("subscribe", group_id)
        if key in self._subs:
            raise ValueError(f"ClientConnectionState.subscribe: key {key!r} is already in use")
        track = self._tracks.get((stream, group_id))
        if track is None:
            track = self._tracks[(stream, group_id)] = _Track()
        track.users += 1
        sub = self._subs[key] = _Sub(key, stream, group_id, track, exclusive)
        if self.state is ClientState.READY:
            return [self._send_subscribe(sub)]
        return []

    def unsubscribe(self, key: Hashable) -> list[ClientOutput]:
        """End the subscription ``key`` (rule 5); nothing when it is ending already."""
        sub = self._subs.get(key)
        if sub is None:
            raise ValueError(f"ClientConnectionState.unsubscribe: no subscription {key!r}")
        if sub.unsubscribing:
            return []
        if self.state is ClientState.READY and sub.id is not None:
            sub.unsubscribing = True
            mid = self._take_id("unsubscribe", sub)
            return [Send(Unsubscribe(mid, sub.id))]
        self._drop(sub)
        return [Unsubscribed(key)]

    def receive(self, text: str | bytes) -> list[ClientOutput]:
        """Take one message from the server (rules 2 to 9)."""
        state = self.state
        if state is ClientState.DISCONNECTED:
            return []
        if state is ClientState.READY and type(text) is str and len(text) * 4 <= self.max_size:
            # The hot path: a well-formed delivery to a live subscription, checked as
            # ``decode`` checks it, without building the Delivery. Anything else (and any
            # text that does not parse) takes the full path below, which says what is wrong.
            try:
                obj, end = _raw_parse(text)  # compact JSON: no whitespace around it
            except (ValueError, RecursionError):
                obj = end = None
            if (
                end == len(text)
                and type(obj) is dict
                and "success" not in obj
                and obj.get("action") == "subscription"
            ):
                mid: int = obj.get("id")  # type: ignore[assignment] # checked just below
                sub = self._routes.get(mid) if type(mid) is int else None
                payload = obj.get("payload", _MISSING)
                stream = obj.get("streamName")
                seq = obj.get("seq")
                again = obj.get("redelivered")
                if (
                    sub is not None
                    and payload is not _MISSING
                    and (stream is None or type(stream) is str)
                    and (seq is None or (type(seq) is int and 0 < seq <= MAX_ID))
                    and (again is None or type(again) is bool)
                ):
                    try:
                        return self._deliver(sub, mid, payload, stream, seq, again is True)
                    except ProtocolError:
                        self._end()
                        raise
        try:
            msg = decode(text, origin="server", max_size=self.max_size)
            if isinstance(msg, Delivery) and state is ClientState.READY:
                sub = self._routes.get(msg.id)
                if sub is not None:
                    return self._deliver(
                        sub, msg.id, msg.payload, msg.stream, msg.seq, msg.redelivered
                    )
            return _CLIENT_RULES[state](self, msg)
        except (ProtocolError, CredentialsError):
            self._end()
            raise

    def connection_lost(self) -> list[ClientOutput]:
        """The socket closed (rule 8)."""
        self._end()
        out, self._ended = self._ended, []
        return out

    # -- the rules ----------------------------------------------------------------------------

    def _on_authenticating(self, msg: ServerMessage) -> list[ClientOutput]:
        if isinstance(msg, AuthenticateReply):
            del self._pending[1]
            if not msg.success:
                detail = f": {msg.error}" if msg.error else ""
                raise CredentialsError(f"Authentication unsuccessful{detail}")
            self.state = ClientState.READY
            out: list[ClientOutput] = [Authenticated(msg.payload)]
            out.extend(self._send_subscribe(sub) for sub in self._subs.values())
            return out
        if isinstance(msg, ErrorReply) and msg.id in (1, None):
            raise ProtocolError(f"the server refused the authenticate: {msg.error}")
        raise ProtocolError(
            f"Reply to a authenticate action must be a authenticate action, "
            f"got {msg.action!r} (id {msg.id})",
            message_id=msg.id,
            action=msg.action,
        )

    def _on_ready(self, msg: ServerMessage) -> list[ClientOutput]:
        mid = msg.id
        entry = None if mid is None else self._pending.get(mid)
        if isinstance(msg, ErrorReply):
            if mid is None or entry is None:
                raise ProtocolError(f"the server reported an error: {msg.error}")
            return self._refused(mid, entry, msg.error)
        if entry is not None:
            action, sub = entry
            if action == "subscribe" and isinstance(msg, SubscriptionReply):
                assert sub is not None
                del self._pending[msg.id]
                return self._subscribed(sub, msg)
            if action == "unsubscribe" and isinstance(msg, UnsubscribeReply):
                assert sub is not None
                del self._pending[msg.id]
                if msg.subscription_id != sub.id:
                    raise _client_error(
                        msg,
                        f"unsubscribe reply names subscription {msg.subscription_id}, "
                        f"the unsubscribe asked for {sub.id}",
                    )
                self._drop(sub)
                return [Unsubscribed(sub.key)]
            if action == "subscribe":
                what = "a delivery" if isinstance(msg, Delivery) else f"{msg.action!r}"
                raise _client_error(
                    msg, f"Reply to a subscribe action must be a subscription action, got {what}"
                )
            raise _client_error(msg, f"the reply to an {action} must be an {action} reply")
        if isinstance(msg, SubscriptionReply) and msg.id in self._routes:
            raise _client_error(msg, "a second subscription reply for one subscribe")
        raise _client_error(
            msg,
            "Server sent a response but the message id could not be resolved to a request",
        )

    def _subscribed(self, sub: _Sub, msg: SubscriptionReply) -> list[ClientOutput]:
        if msg.stream is not None and msg.stream != sub.stream:
            raise _client_error(
                msg, f"the reply names stream {_show(msg.stream)}, subscribed {sub.stream!r}"
            )
        if not msg.success:
            return self._refused(msg.id, ("subscribe", sub), msg.error or "success false")
        self._routes[msg.id] = sub
        sub.was_live = True
        track = sub.track
        new_epoch = msg.epoch is not None and track.epoch is not None and msg.epoch != track.epoch
        if new_epoch:
            self.epoch_changes += 1
            track.last = None
        old_epoch = track.epoch
        if msg.epoch is not None:
            track.epoch = msg.epoch
        if msg.seq is not None and (track.last is None or msg.seq > track.last):
            track.last = msg.seq
        if sub.unsubscribing:
            return []
        missed = None
        if sub.resuming:
            if new_epoch:
                missed = (
                    f"the server's logs restarted (epoch {old_epoch!r} -> {msg.epoch!r}): "
                    f"cannot know what was missed"
                )
            elif sub.after_seq is None:
                missed = "no seq to resume after (none was delivered): cannot know what was missed"
            elif msg.seq is None:
                missed = "the server does not number its messages: cannot know what was missed"
            elif msg.seq > sub.after_seq:
                missed = (
                    f"the server resumed after seq {msg.seq}, not {sub.after_seq}: "
                    f"seqs {sub.after_seq + 1} to {msg.seq} were not replayed"
                )
            if missed is not None:
                self.unknown_gaps += 1
        return [Subscribed(sub.key, sub.stream, sub.after_seq, msg.seq, missed)]

    def _refused(self, mid: int, entry: tuple[str, _Sub | None], reason: str) -> list[ClientOutput]:
        self._pending.pop(mid, None)
        action, sub = entry
        assert sub is not None  # the authenticate is pending only while AUTHENTICATING
        if action == "unsubscribe":
            self._drop(sub)  # the server holds no such subscription: it is over either way
            return [Unsubscribed(sub.key)]
        if sub.unsubscribing:
            return []  # the unsubscribe's answer ends it
        self._drop(sub)
        return [Refused(sub.key, reason)]

    def _deliver(
        self,
        sub: _Sub,
        mid: int,
        payload: Any,
        stream: str | None,
        seq: int | None,
        redelivered: bool,
    ) -> list[ClientOutput]:
        if sub.unsubscribing:
            self.late += 1
            return []
        if stream is not None and stream != sub.stream:
            raise ProtocolError(
                f"a delivery names stream {_show(stream)}, subscribed {sub.stream!r} "
                f"(id {mid}, 'subscription')",
                message_id=mid,
                action="subscription",
            )
        if seq is None:
            self.missing_seq += 1
            return [Delivered(sub.key, payload)]
        track = sub.track
        last = track.last
        if last is not None and seq <= last:
            if redelivered and not sub.exclusive:
                # Another member's message, handed on when it dropped: new to this one.
                self.redelivered += 1
                return [Delivered(sub.key, payload, seq)]
            self.duplicates += 1
            return []
        track.last = seq
        return [Delivered(sub.key, payload, seq)]

    # -- helpers ------------------------------------------------------------------------------

    def _take_id(self, action: str, sub: _Sub) -> int:
        mid = self._next_id
        self._next_id = mid + 1
        self._pending[mid] = (action, sub)
        return mid

    def _send_subscribe(self, sub: _Sub) -> Send:
        mid = self._take_id("subscribe", sub)
        sub.id = mid
        sub.resuming = sub.was_live
        track = sub.track
        after = track.last if sub.resuming else None
        sub.after_seq = after
        epoch = track.epoch if after is not None else None
        return Send(Subscribe(mid, sub.stream, sub.group_id, after, epoch))

    def _drop(self, sub: _Sub) -> None:
        del self._subs[sub.key]
        if sub.id is not None:
            self._routes.pop(sub.id, None)
        track = sub.track
        track.users -= 1
        if track.users == 0:
            del self._tracks[(sub.stream, sub.group_id)]

    def _end(self) -> None:
        if self.state is ClientState.DISCONNECTED:
            return
        self.state = ClientState.DISCONNECTED
        self._pending.clear()
        self._routes.clear()
        for sub in list(self._subs.values()):
            if sub.unsubscribing:
                self._drop(sub)
                self._ended.append(Unsubscribed(sub.key))
            else:
                sub.id = None


def _client_error(msg: ServerMessage, text: str) -> ProtocolError:
    return ProtocolError(
        f"{text} (id {msg.id}, {msg.action!r})", message_id=msg.id, action=msg.action
    )


_CLIENT_RULES: dict[
    ClientState, Callable[[ClientConnectionState, ServerMessage], list[ClientOutput]]
] = {
    ClientState.AUTHENTICATING: ClientConnectionState._on_authenticating,
    ClientState.READY: ClientConnectionState._on_ready,
}
