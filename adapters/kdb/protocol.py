"""kdb Insights Service Gateway's streaming websocket: messages and both ends of one
connection, sans-I/O.

The client (``client.py``) and the embedded gateway (``server.py``) share this module. It
holds no sockets and no clocks:

- the messages, frozen dataclasses; :func:`to_dict` and :func:`from_dict` turn them into and
  out of plain dicts (the wire's names), and a :class:`Codec` turns those dicts into frames
  and back: :data:`JSON` (text frames, ``?in=json&out=json``) here, :data:`.qipc.QIPC`
  (binary q IPC frames through pykx) in :mod:`.qipc`;
- :class:`ErrorCode`, every error code of the spec, and :class:`GatewayError`;
- :func:`split_message` and :func:`encode_frames`, which cut a large snapshot or update into
  chunks under a frame limit (actorwire's extension, below);
- :class:`GatewayConnectionState`, the gateway's side of one websocket: frames in, actions out;
- :class:`ClientConnectionState`, the client's side across reconnects: requests out, replies
  matched to them, updates routed to their subscription, chunks reassembled.

The wire, as the spec gives it once its examples are made JSON (``subTopic`` is an object from
key column to a value or a list of values, filtering the topic's rows; absent or empty means
every row; ``data`` is column-oriented, every column the same length)::

    client -> gateway
      {"type":"snap"|"subscribe"|"subsnap","id":N,"payload":{"topic":T[,"subTopic":{C:V|[V,..]}]}
                                                                        [,"response_id":R]}
      {"type":"unsubscribe","id":N,"payload":{"subscription":U}[,"response_id":R]}
    gateway -> client
      {"type":"subscribed","id":N,"payload":{"subscription":U}[,"response_id":R]}
      {"type":"snapped","id":N,"payload":{"data":{C:[..],..}[,"chunk":{"index":I,"count":K}]}[,..]}
      {"type":"subsnapped","id":N,"payload":{"data":D,"subscription":U[,"chunk":..]}[,..]}
      {"type":"unsubscribed","id":N,"payload":{"subscription":U}[,..]}
      {"type":"update","id":N,"payload":{"topic":T[,"subTopic":..],"data":D,"subscription":U
                                                                        [,"chunk":..]}[,..]}
      {"type":"error","id":N|null,"error":E[,"message":".."][,"response_id":R]}

``id`` is the request's (an update's is its subscribe's); ids strictly increase on a
connection (:class:`ClientConnectionState` never reuses one, across reconnects either); ``U``
is a UUID the gateway picks; ``response_id`` (any JSON value) is echoed on every response to
the request that had one, updates and errors included.

actorwire's extensions are keys a spec client ignores:

- ``"message"`` on an error: what was wrong, in words (the spec's error has the code only);
- ``"chunk"`` in the payload of a ``snapped``, ``subsnapped`` or ``update`` too large for one
  frame: the message is sent as ``count`` messages in a row, ``index`` 0 to ``count - 1``,
  each with the same type, id, subscription and columns and a slice of the rows; the client
  joins the columns back in order.

Decoding is strict: at most ``max_size`` bytes, JSON with no NaN or Infinity, an object with a
known ``type``, and every documented key of its documented JSON type. Ids and error codes are
integers from 0 to :data:`MAX_ID`; an integral float (``5.0``) is taken as the integer, since
q's JSON parser reads every number as a float. Optional keys absent or null mean the same;
unknown keys are ignored. Every refusal is a :class:`ProtocolError` saying what was wrong;
one of a request carries the :class:`ErrorCode` the gateway answers it with. The websocket's
token is the transport's business: nothing here holds it.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import re
import uuid
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeAlias, cast, overload

from ...actors.errors import ActorwireError
from ...actors.jsontext import STRICT_JSON
from ...actors.jsontext import json_kind as _kind
from ...actors.jsontext import show as _show

__all__ = [
    "JSON",
    "MAX_CHUNK_BYTES",
    "MAX_ID",
    "MAX_MESSAGE_SIZE",
    "MESSAGE_TOO_BIG",
    "POLICY_VIOLATION",
    "UNSUPPORTED_DATA",
    "Chunk",
    "ClientConnectionState",
    "ClientMessage",
    "ClientOutput",
    "ClientState",
    "Close",
    "Codec",
    "DataMessage",
    "ErrorCode",
    "ErrorReply",
    "Filter",
    "GatewayConnectionState",
    "GatewayError",
    "JsonCodec",
    "Message",
    "MessageTooBig",
    "Origin",
    "ProtocolError",
    "Scalar",
    "Send",
    "ServerAction",
    "ServerMessage",
    "ServerState",
    "Snap",
    "SnapFailed",
    "SnapRequest",
    "SnapResult",
    "SnappedReply",
    "SubTopic",
    "Subscribe",
    "SubscribeRequest",
    "Subscribed",
    "SubscribedReply",
    "SubscriptionError",
    "SubsnappedReply",
    "Table",
    "TopicLookup",
    "UndecodableError",
    "Unsubscribe",
    "UnsubscribeRequest",
    "Unsubscribed",
    "UnsubscribedReply",
    "Update",
    "UpdateMessage",
    "decode",
    "encode",
    "encode_frames",
    "filter_of",
    "from_dict",
    "split_message",
    "table_rows",
    "to_dict",
]

MAX_MESSAGE_SIZE = 1 << 20
"""Largest frame decoded, and the default frame limit chunks are cut under, in bytes (1 MiB,
the websockets library's default ``max_size``)."""

MAX_ID = 2**53 - 1
"""Largest id: JSON numbers are exact in a JavaScript client up to 2**53 - 1."""

MAX_CHUNK_BYTES = 64 << 20
"""Default bound on the bytes of chunks a client holds while reassembling (64 MiB)."""

POLICY_VIOLATION = 1008
"""Websocket close code for a frame that is not a message (not JSON, not an object)."""

MESSAGE_TOO_BIG = 1009
"""Websocket close code for a frame over the size limit."""

UNSUPPORTED_DATA = 1003
"""Websocket close code for a binary frame on a connection whose messages are JSON text."""

_CLOSE_REASON_BYTES = 123  # a websocket close reason holds at most 123 bytes of UTF-8

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Origin: TypeAlias = Literal["client", "server"]
"""Who sent a message: :func:`from_dict` takes only what that side may send."""

Scalar: TypeAlias = str | int | float | bool
"""A value in a subTopic."""

SubTopic: TypeAlias = Mapping[str, Scalar | list[Scalar] | tuple[Scalar, ...]]
"""A request's ``subTopic`` as sent: key column to one value or a list of values."""

Filter: TypeAlias = Mapping[str, tuple[Scalar, ...]]
"""A subTopic as the gateway applies it (:func:`filter_of`): a row passes when, for every
column named, its value is one of the column's values; an empty filter passes every row."""

Table: TypeAlias = dict[str, list[Any]]
"""Column-oriented data: column name to its values, every column the same length."""


# --------------------------------------------------------------------------- errors


class ErrorCode(enum.IntEnum):
    """The spec's error codes; :attr:`description` is the spec's text for each."""

    NO_TYPE = 20
    NO_PAYLOAD = 21
    INVALID_PAYLOAD = 22
    BAD_ID = 28
    ID_NOT_INCREASING = 29
    ALREADY_SUBSCRIBED = 42
    NOT_SUBSCRIBED = 43
    WRONG_TYPE = 61
    MISSING_INPUT = 62
    NO_SUCH_TOPIC = 63
    INVALID_SUB_TOPIC = 64

    @property
    def description(self) -> str:
        """What the code means, in the spec's words."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.NO_TYPE: "No type",
    ErrorCode.NO_PAYLOAD: "Payload not present",
    ErrorCode.INVALID_PAYLOAD: "Payload invalid",
    ErrorCode.BAD_ID: "Bad or no id provided",
    ErrorCode.ID_NOT_INCREASING: "id is equal to or less than the last one seen on this connection",
    ErrorCode.ALREADY_SUBSCRIBED: "Already subscribed",
    ErrorCode.NOT_SUBSCRIBED: "Not subscribed",
    ErrorCode.WRONG_TYPE: "Incorrect data type received",
    ErrorCode.MISSING_INPUT: "Failed to provide all required inputs",
    ErrorCode.NO_SUCH_TOPIC: "Provided topic does not exist for subscription",
    ErrorCode.INVALID_SUB_TOPIC: "Not all subscription topics provided as valid keyed tables",
}


def _code(value: int) -> ErrorCode | int:
    try:
        return ErrorCode(value)
    except ValueError:
        return value


class GatewayError(ActorwireError):
    """The gateway refused a request (or reported an error on a live subscription):
    ``code`` is the :class:`ErrorCode` (the int when the spec has no such code), ``message``
    what the gateway said was wrong (its description when it said nothing)."""

    def __init__(self, code: ErrorCode | int, message: str = "") -> None:
        self.code: ErrorCode | int = _code(int(code))
        known = isinstance(self.code, ErrorCode)
        description = self.code.description if isinstance(self.code, ErrorCode) else ""
        self.message: str = message or description or "unknown error code"
        head = f"kdb gateway error {int(self.code)}"
        if known and message:
            head += f" ({description})"
        super().__init__(f"{head}: {self.message}")

    def __reduce__(self) -> tuple[type[GatewayError], tuple[ErrorCode | int, str]]:
        return GatewayError, (self.code, self.message)


class ProtocolError(ActorwireError, ValueError):
    """A message that breaks the protocol. ``code`` is the :class:`ErrorCode` a gateway
    answers a bad request with (None for what a gateway sent); ``message_id``, ``type`` and
    ``response_id`` are the offending message's, when they could be read."""

    def __init__(
        self,
        text: str,
        *,
        code: ErrorCode | None = None,
        message_id: int | None = None,
        type: str | None = None,
        response_id: Any = None,
    ) -> None:
        super().__init__(text)
        self.code = code
        self.message_id = message_id
        self.type = type
        self.response_id = response_id


class UndecodableError(ProtocolError):
    """A frame that is no message at all (not JSON, not an object, binary where text was
    expected): the gateway answers error 22 with id null and closes with ``close_code``."""

    def __init__(self, text: str, *, close_code: int = POLICY_VIOLATION) -> None:
        super().__init__(text, code=ErrorCode.INVALID_PAYLOAD)
        self.close_code = close_code


class MessageTooBig(UndecodableError):
    """A frame over the size limit (the gateway closes with :data:`MESSAGE_TOO_BIG`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, close_code=MESSAGE_TOO_BIG)


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class SnapRequest:
    """Client -> gateway: the rows of ``topic`` that pass ``sub_topic``, once."""

    id: int
    topic: str
    sub_topic: SubTopic | None = None
    response_id: Any = None
    type: ClassVar[str] = "snap"


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    """Client -> gateway: the updates of ``topic`` that pass ``sub_topic``; with
    ``with_snapshot`` (wire type ``subsnap``) the rows as they stand first."""

    id: int
    topic: str
    sub_topic: SubTopic | None = None
    response_id: Any = None
    with_snapshot: bool = False

    @property
    def type(self) -> str:
        """``"subsnap"`` with a snapshot, else ``"subscribe"``."""
        return "subsnap" if self.with_snapshot else "subscribe"


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    """Client -> gateway: end the subscription the gateway named ``subscription``."""

    id: int
    subscription: str
    response_id: Any = None
    type: ClassVar[str] = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Chunk:
    """(actorwire) This message is part ``index`` (from 0) of ``count`` of one message."""

    index: int
    count: int


@dataclass(frozen=True, slots=True)
class SubscribedReply:
    """Gateway -> client: the subscribe ``id`` is live as ``subscription``."""

    id: int
    subscription: str
    response_id: Any = None
    type: ClassVar[str] = "subscribed"


@dataclass(frozen=True, slots=True)
class SnappedReply:
    """Gateway -> client: the snap ``id``'s rows."""

    id: int
    data: Table
    response_id: Any = None
    chunk: Chunk | None = None
    type: ClassVar[str] = "snapped"


@dataclass(frozen=True, slots=True)
class SubsnappedReply:
    """Gateway -> client: the subsnap ``id`` is live as ``subscription``; ``data`` is the
    snapshot its updates follow."""

    id: int
    data: Table
    subscription: str
    response_id: Any = None
    chunk: Chunk | None = None
    type: ClassVar[str] = "subsnapped"


@dataclass(frozen=True, slots=True)
class UnsubscribedReply:
    """Gateway -> client: the subscription is over; no update for it follows. The spec's
    table gives this message an empty payload and its example the subscription: None when
    the gateway left it out."""

    id: int
    subscription: str | None = None
    response_id: Any = None
    type: ClassVar[str] = "unsubscribed"


@dataclass(frozen=True, slots=True)
class UpdateMessage:
    """Gateway -> client: new rows for ``subscription``; ``id`` is its subscribe's id."""

    id: int
    data: Table
    subscription: str
    topic: str | None = None
    sub_topic: SubTopic | None = None
    response_id: Any = None
    chunk: Chunk | None = None
    type: ClassVar[str] = "update"


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """Gateway -> client: the request ``id`` (None when its id could not be read) was
    refused with ``error``; ``message`` (actorwire) says what was wrong."""

    id: int | None
    error: ErrorCode | int
    message: str | None = None
    response_id: Any = None
    type: ClassVar[str] = "error"

    @property
    def gateway_error(self) -> GatewayError:
        """The refusal as an exception."""
        return GatewayError(self.error, self.message or "")


ClientMessage: TypeAlias = SnapRequest | SubscribeRequest | UnsubscribeRequest
"""What a client sends."""
DataMessage: TypeAlias = SnappedReply | SubsnappedReply | UpdateMessage
"""What the gateway sends with data, chunked when too large for a frame."""
ServerMessage: TypeAlias = (
    SubscribedReply
    | SnappedReply
    | SubsnappedReply
    | UnsubscribedReply
    | UpdateMessage
    | ErrorReply
)
"""What the gateway sends."""
Message: TypeAlias = ClientMessage | ServerMessage
"""Any message."""


def filter_of(sub_topic: SubTopic | None) -> dict[str, tuple[Scalar, ...]]:
    """``sub_topic`` as the gateway applies it (see :data:`Filter`): each column to the tuple
    of its values (one value becomes a 1-tuple); ``{}`` for none."""
    if not sub_topic:
        return {}
    return {col: tuple(v) if isinstance(v, list | tuple) else (v,) for col, v in sub_topic.items()}


def _tagged(value: Scalar) -> tuple[str, Scalar]:
    # true and 1 are equal in Python and different in JSON (and q); 1 and 1.0 are one number.
    return ("b" if isinstance(value, bool) else "s" if isinstance(value, str) else "n", value)


def _subscription_key(topic: str, flt: Filter) -> Hashable:
    """What makes two subscriptions the same: topic and filter, order and repeats aside."""
    return topic, frozenset((col, frozenset(map(_tagged, vals))) for col, vals in flt.items())


def table_rows(data: Table) -> int:
    """The number of rows in ``data`` (0 for no columns); ValueError when it is not a
    column-oriented table."""
    problem = _table_problem(data)
    if problem is not None:
        raise ValueError(f"kdb: data {problem}")
    return len(next(iter(data.values()))) if data else 0


def _table_problem(data: object) -> str | None:
    """What makes ``data`` no column-oriented table, or None."""
    if type(data) is not dict:
        return f"must be an object from column name to a list of values, got {_kind(data)}"
    length = None
    first = ""
    for col, values in data.items():
        if type(col) is not str:
            return f"column names must be strings, got {_show(col)}"
        if type(values) is not list:
            return f"column {_show(col)} must be a list of values, got {_kind(values)}"
        if length is None:
            length, first = len(values), col
        elif len(values) != length:
            return (
                f"columns must have the same length: {_show(first)} has {length} values, "
                f"{_show(col)} has {len(values)}"
            )
    return None


# --------------------------------------------------------------------------- helpers


def _read_int(raw: object) -> int | None:
    """``raw`` as an id or error code (0 to MAX_ID; an integral float counts), or None."""
    if type(raw) is int:
        value = raw
    elif type(raw) is float and raw.is_integer():
        value = int(raw)
    else:
        return None
    return value if 0 <= value <= MAX_ID else None


def _frame_size(frame: str | bytes | bytearray | memoryview) -> int:
    if isinstance(frame, str):
        return len(frame) if frame.isascii() else len(frame.encode("utf-8", "surrogatepass"))
    return memoryview(frame).nbytes


# --------------------------------------------------------------------------- codecs


class Codec(Protocol):
    """How message dicts (:func:`to_dict`) become frames and back, for the query string's
    ``in``/``out`` value :attr:`name`; :attr:`binary` frames or text frames."""

    name: str
    binary: bool

    def dumps(self, obj: dict[str, Any]) -> str | bytes:
        """The frame of ``obj``; ValueError or TypeError when a value cannot be sent."""
        ...

    def loads(self, frame: str | bytes, max_size: int) -> Any:
        """The object in ``frame``; :class:`UndecodableError` (:class:`MessageTooBig` over
        ``max_size`` bytes) when there is none."""
        ...


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_SIZER = json.JSONEncoder(separators=(",", ":"), default=repr)  # estimates only
_parse = STRICT_JSON.decode


class JsonCodec:
    """JSON text frames: compact, ASCII (so a frame's length is its size in bytes), strict
    (no NaN or Infinity either way)."""

    name: str = "json"
    binary: bool = False

    def __repr__(self) -> str:
        return "JSON"

    def dumps(self, obj: dict[str, Any]) -> str:
        try:
            return _ENCODER.encode(obj)
        except (ValueError, TypeError, RecursionError) as exc:
            kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(f"kdb: a message is not JSON: {exc}") from None

    def loads(self, frame: str | bytes, max_size: int) -> Any:
        if not isinstance(frame, str):
            if isinstance(frame, bytes | bytearray | memoryview):
                raise UndecodableError(
                    "a binary frame on a JSON connection: JSON messages are text frames",
                    close_code=UNSUPPORTED_DATA,
                )
            raise TypeError(f"kdb: a frame must be str or bytes, got {type(frame).__name__}")
        _check_size(frame, max_size)
        problem = None
        try:
            return _parse(frame)
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at character {exc.pos}"
        except RecursionError:
            problem = "nested too deeply"
        except ValueError as exc:  # NaN, Infinity, an integer of more than 4300 digits
            problem = str(exc)
        # Raised here, not in the except clause: the JSONDecodeError holds the whole frame.
        raise UndecodableError(f"not JSON: {problem}")


JSON = JsonCodec()
"""The JSON codec (``?in=json&out=json``)."""


def _check_size(text: str, max_size: int) -> None:
    n = len(text)
    if n * 4 <= max_size:  # a character is at most 4 bytes of UTF-8
        return
    if n > max_size:
        raise MessageTooBig(f"a frame of {n} characters is over the limit of {max_size} bytes")
    size = _frame_size(text)
    if size > max_size:
        raise MessageTooBig(f"a frame of {size} bytes is over the limit of {max_size} bytes")


# --------------------------------------------------------------------------- encoding


def _out_error(name: str, what: str, expected: str, value: object) -> ValueError:
    return ValueError(f"kdb encode: {name}.{what} must be {expected}, got {_show(value)}")


def _id_out(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise _out_error(name, "id", "an int from 0 to 2**53 - 1", value)
    return value


def _str_out(name: str, what: str, value: object) -> str:
    if type(value) is not str:
        raise TypeError(f"kdb encode: {name}.{what} must be a str, got {_show(value)}")
    return value


def _uuid_out(name: str, value: object) -> str:
    if type(value) is not str or not _UUID.fullmatch(value):
        raise _out_error(name, "subscription", "a UUID in the 8-4-4-4-12 form", value)
    return value


def _sub_topic_out(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"kdb: {name}.sub_topic must be a mapping from key column to a value or a list "
            f"of values, got {_show(value)}"
        )
    out: dict[str, Any] = {}
    for col, v in value.items():
        if type(col) is not str:
            raise TypeError(f"kdb: {name}.sub_topic's columns must be str, got {_show(col)}")
        if isinstance(v, list | tuple):
            if not all(type(x) in _SCALARS for x in v):
                bad = next(x for x in v if type(x) not in _SCALARS)
                raise TypeError(
                    f"kdb: {name}.sub_topic[{col!r}] must hold str, int, float or bool values, "
                    f"got {_show(bad)}"
                )
            out[col] = list(v)
        elif type(v) in _SCALARS:
            out[col] = v
        else:
            raise TypeError(
                f"kdb: {name}.sub_topic[{col!r}] must be a str, int, float or bool, or a list "
                f"of them, got {_show(v)}"
            )
    return out


_SCALARS = (str, int, float, bool)


def _table_out(name: str, data: object) -> Table:
    problem = _table_problem(data)
    if problem is not None:
        raise ValueError(f"kdb encode: {name}.data {problem}")
    return cast(Table, data)  # checked just above


def _chunk_out(name: str, chunk: object) -> dict[str, int]:
    if (
        not isinstance(chunk, Chunk)
        or type(chunk.index) is not int
        or type(chunk.count) is not int
        or not 0 <= chunk.index < chunk.count
    ):
        raise ValueError(
            f"kdb encode: {name}.chunk must be a Chunk with 0 <= index < count, got {chunk!r}"
        )
    return {"index": chunk.index, "count": chunk.count}


def to_dict(message: Message) -> dict[str, Any]:
    """``message`` as the wire's object (before a codec makes it a frame).

    Raises TypeError or ValueError naming the field that does not fit the wire (an id out
    of range, a subscription that is no UUID, data whose columns differ in length, ...).
    """
    name = type(message).__name__
    obj: dict[str, Any] = {"type": message.type}
    payload: dict[str, Any]
    if isinstance(message, ErrorReply):
        obj["id"] = None if message.id is None else _id_out(name, message.id)
        code = message.error
        if type(code) is not int and not isinstance(code, ErrorCode):
            raise _out_error(name, "error", "an int", code)
        obj["error"] = int(code)
        if message.message is not None:
            obj["message"] = _str_out(name, "message", message.message)
    else:
        obj["id"] = _id_out(name, message.id)
        if isinstance(message, UpdateMessage):
            payload = {}
            if message.topic is not None:
                payload["topic"] = _str_out(name, "topic", message.topic)
            if message.sub_topic is not None:
                payload["subTopic"] = _sub_topic_out(name, message.sub_topic)
            payload["data"] = _table_out(name, message.data)
            payload["subscription"] = _uuid_out(name, message.subscription)
        elif isinstance(message, SnapRequest | SubscribeRequest):
            if isinstance(message, SubscribeRequest) and type(message.with_snapshot) is not bool:
                raise _out_error(name, "with_snapshot", "a bool", message.with_snapshot)
            payload = {"topic": _str_out(name, "topic", message.topic)}
            if message.sub_topic is not None:
                payload["subTopic"] = _sub_topic_out(name, message.sub_topic)
        elif isinstance(message, SnappedReply):
            payload = {"data": _table_out(name, message.data)}
        elif isinstance(message, SubsnappedReply):
            payload = {"data": _table_out(name, message.data)}
            payload["subscription"] = _uuid_out(name, message.subscription)
        elif isinstance(message, UnsubscribedReply):
            payload = {}
            if message.subscription is not None:
                payload["subscription"] = _uuid_out(name, message.subscription)
        elif isinstance(message, UnsubscribeRequest | SubscribedReply):
            payload = {"subscription": _uuid_out(name, message.subscription)}
        else:
            raise TypeError(f"kdb encode: not a message: {message!r}")
        chunk = getattr(message, "chunk", None)
        if chunk is not None:
            payload["chunk"] = _chunk_out(name, chunk)
        obj["payload"] = payload
    if message.response_id is not None:
        obj["response_id"] = message.response_id
    return obj


@overload
def encode(message: Message) -> str: ...
@overload
def encode(message: Message, codec: JsonCodec) -> str: ...
@overload
def encode(message: Message, codec: Codec) -> str | bytes: ...


def encode(message: Message, codec: Codec = JSON) -> str | bytes:
    """The frame of ``message`` in ``codec`` (JSON text by default); TypeError or
    ValueError naming the field that does not fit the wire."""
    return codec.dumps(to_dict(message))


# --------------------------------------------------------------------------- decoding

_MISSING: Any = object()


@overload
def decode(
    frame: str | bytes, *, origin: Literal["client"], codec: Codec = ..., max_size: int = ...
) -> ClientMessage: ...
@overload
def decode(
    frame: str | bytes, *, origin: Literal["server"], codec: Codec = ..., max_size: int = ...
) -> ServerMessage: ...
@overload
def decode(
    frame: str | bytes, *, origin: None = None, codec: Codec = ..., max_size: int = ...
) -> Message: ...


def decode(
    frame: str | bytes,
    *,
    origin: Origin | None = None,
    codec: Codec = JSON,
    max_size: int = MAX_MESSAGE_SIZE,
) -> Message:
    """The message in ``frame``, or ProtocolError saying what is wrong with it (see
    :func:`from_dict`)."""
    return from_dict(codec.loads(frame, max_size), origin=origin)


@overload
def from_dict(obj: object, *, origin: Literal["client"]) -> ClientMessage: ...
@overload
def from_dict(obj: object, *, origin: Literal["server"]) -> ServerMessage: ...
@overload
def from_dict(obj: object, *, origin: None = None) -> Message: ...


def from_dict(obj: object, *, origin: Origin | None = None) -> Message:
    """The message ``obj`` (a codec's output) holds, or ProtocolError saying what is wrong.

    ``origin`` ``"client"`` takes only requests, ``"server"`` only what a gateway sends,
    None either (the types do not overlap). A refused request's error carries the
    :class:`ErrorCode` a gateway answers it with; an object that is no message at all is an
    :class:`UndecodableError`.
    """
    if type(obj) is not dict:
        raise UndecodableError(
            f'a message must be an object with "type", "id" and "payload", got {_kind(obj)}'
        )
    if origin != "client":
        typ = obj.get("type")
        if type(typ) is str and typ in _SERVER_TYPES:
            return _decode_server(obj, typ)
        if origin == "server":
            mid = _read_int(obj.get("id"))
            if typ is None:
                raise ProtocolError(f'message id {mid}: no "type"', message_id=mid)
            problem = _unknown_type(typ, _SERVER_TYPES, "from a gateway")
            raise ProtocolError(f"message id {mid}: {problem}", message_id=mid)
    return _decode_request(obj)


def _fail(
    code: ErrorCode, typ: str | None, mid: int | None, rid: Any, problem: str
) -> ProtocolError:
    where = f"{typ} (id {mid})" if typ is not None else f"message id {mid}"
    return ProtocolError(
        f"{where}: {problem}", code=code, message_id=mid, type=typ, response_id=rid
    )


def _unknown_type(typ: object, known: tuple[str, ...], sender: str) -> str:
    hint = ""
    if type(typ) is str and len(typ) <= 40:  # difflib's cost grows with the length
        close = difflib.get_close_matches(typ, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    expected = ", ".join(repr(t) for t in known)
    return f"unknown type {_show(typ)} {sender}; expected one of {expected}{hint}"


# -- client -> gateway: every refusal carries its error code


def _decode_request(obj: dict[str, Any]) -> ClientMessage:
    rid = obj.get("response_id")
    raw = obj.get("id", _MISSING)
    mid = _read_int(raw)
    if mid is None:
        what = 'no "id"' if raw is _MISSING or raw is None else f'"id" {_show(raw)}'
        raise ProtocolError(
            f"{what}: a request's id must be an integer from 0 to 2**53 - 1",
            code=ErrorCode.BAD_ID,
            response_id=rid,
        )
    typ = obj.get("type")
    if typ is None:
        raise _fail(ErrorCode.NO_TYPE, None, mid, rid, 'no "type"')
    if type(typ) is not str:
        raise _fail(
            ErrorCode.WRONG_TYPE, None, mid, rid, f'"type" must be a string, got {_kind(typ)}'
        )
    parser = _REQUEST_PARSERS.get(typ)
    if parser is None:
        problem = _unknown_type(typ, _REQUEST_TYPES, "from a client")
        raise _fail(ErrorCode.INVALID_PAYLOAD, None, mid, rid, problem)
    payload = obj.get("payload")
    if payload is None:
        raise _fail(ErrorCode.NO_PAYLOAD, typ, mid, rid, 'no "payload"')
    if type(payload) is not dict:
        raise _fail(
            ErrorCode.INVALID_PAYLOAD,
            typ,
            mid,
            rid,
            f'"payload" must be an object, got {_kind(payload)}',
        )
    return parser(payload, mid, rid, typ)


def _topic_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> str:
    topic = payload.get("topic")
    if topic is None:
        raise _fail(ErrorCode.MISSING_INPUT, typ, mid, rid, '"payload.topic" is required')
    if type(topic) is not str:
        raise _fail(
            ErrorCode.WRONG_TYPE,
            typ,
            mid,
            rid,
            f'"payload.topic" must be a string, got {_show(topic)}',
        )
    return topic


def _sub_topic_in(
    payload: dict[str, Any], mid: int | None, rid: Any, typ: str, code: ErrorCode | None
) -> dict[str, Any] | None:
    raw = payload.get("subTopic")
    if raw is None:
        return None

    def fail(problem: str) -> ProtocolError:
        if code is None:
            return ProtocolError(f"{typ} (id {mid}): {problem}", message_id=mid, type=typ)
        return _fail(code, typ, mid, rid, problem)

    if type(raw) is not dict:
        raise fail(
            f'"payload.subTopic" must be an object from key column to a value or a list of '
            f"values, got {_show(raw)}"
        )
    for col, v in raw.items():
        if type(v) is list:
            for x in v:
                if type(x) not in _SCALARS:
                    raise fail(
                        f'"payload.subTopic.{col}" must hold strings, numbers or booleans, '
                        f"got {_show(x)}"
                    )
        elif type(v) not in _SCALARS:
            raise fail(
                f'"payload.subTopic.{col}" must be a string, number or boolean, or an array '
                f"of them, got {_show(v)}"
            )
    return raw


def _snap_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> SnapRequest:
    topic = _topic_in(payload, mid, rid, typ)
    return SnapRequest(mid, topic, _sub_topic_in(payload, mid, rid, typ, ErrorCode.WRONG_TYPE), rid)


def _subscribe_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> SubscribeRequest:
    topic = _topic_in(payload, mid, rid, typ)
    sub_topic = _sub_topic_in(payload, mid, rid, typ, ErrorCode.WRONG_TYPE)
    return SubscribeRequest(mid, topic, sub_topic, rid, typ == "subsnap")


def _unsubscribe_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> UnsubscribeRequest:
    sub = payload.get("subscription")
    if sub is None:
        raise _fail(ErrorCode.MISSING_INPUT, typ, mid, rid, '"payload.subscription" is required')
    if type(sub) is not str or not _UUID.fullmatch(sub):
        raise _fail(
            ErrorCode.WRONG_TYPE,
            typ,
            mid,
            rid,
            f'"payload.subscription" must be a UUID string, got {_show(sub)}',
        )
    return UnsubscribeRequest(mid, sub, rid)


_RequestParser: TypeAlias = Callable[[dict[str, Any], int, Any, str], ClientMessage]
_REQUEST_PARSERS: dict[str, _RequestParser] = {
    "snap": _snap_in,
    "subscribe": _subscribe_in,
    "subsnap": _subscribe_in,
    "unsubscribe": _unsubscribe_in,
}
_REQUEST_TYPES = tuple(_REQUEST_PARSERS)


# -- gateway -> client


def _server_fail(typ: str, mid: int | None, problem: str) -> ProtocolError:
    return ProtocolError(f"{typ} (id {mid}): {problem}", message_id=mid, type=typ)


def _decode_server(obj: dict[str, Any], typ: str) -> ServerMessage:
    rid = obj.get("response_id")
    raw = obj.get("id")
    mid = _read_int(raw)
    if typ == "error":
        if raw is not None and mid is None:
            raise _server_fail(typ, None, f'"id" must be null or an integer, got {_show(raw)}')
        code = _read_int(obj.get("error"))
        if code is None:
            raise _server_fail(
                typ, mid, f'"error" must be an integer code, got {_show(obj.get("error"))}'
            )
        message = obj.get("message")
        if message is not None and type(message) is not str:
            raise _server_fail(typ, mid, f'"message" must be a string, got {_show(message)}')
        return ErrorReply(mid, _code(code), message, rid)
    if mid is None:
        raise _server_fail(
            typ, None, f'"id" must be an integer from 0 to 2**53 - 1, got {_show(raw)}'
        )
    payload = obj.get("payload")
    if payload is None and typ == "unsubscribed":
        payload = {}  # the spec's table: "The payload is empty for this message"
    if type(payload) is not dict:
        raise _server_fail(typ, mid, f'"payload" must be an object, got {_kind(payload)}')
    return _SERVER_PARSERS[typ](payload, mid, rid, typ)


def _uuid_in(payload: dict[str, Any], mid: int, typ: str) -> str:
    sub = payload.get("subscription")
    if type(sub) is not str or not _UUID.fullmatch(sub):
        raise _server_fail(
            typ, mid, f'"payload.subscription" must be a UUID string, got {_show(sub)}'
        )
    return sub


def _data_in(payload: dict[str, Any], mid: int, typ: str) -> Table:
    data = payload.get("data")
    problem = _table_problem(data)
    if problem is not None:
        raise _server_fail(typ, mid, f'"payload.data" {problem}')
    return cast(Table, data)  # checked just above


def _chunk_in(payload: dict[str, Any], mid: int, typ: str) -> Chunk | None:
    raw = payload.get("chunk")
    if raw is None:
        return None
    if type(raw) is dict:
        index, count = _read_int(raw.get("index")), _read_int(raw.get("count"))
        if index is not None and count is not None and index < count:
            return Chunk(index, count)
    raise _server_fail(
        typ,
        mid,
        f'"payload.chunk" must be {{"index": i, "count": n}} with 0 <= i < n, got {_show(raw)}',
    )


def _subscribed_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> SubscribedReply:
    return SubscribedReply(mid, _uuid_in(payload, mid, typ), rid)


def _snapped_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> SnappedReply:
    return SnappedReply(mid, _data_in(payload, mid, typ), rid, _chunk_in(payload, mid, typ))


def _subsnapped_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> SubsnappedReply:
    data = _data_in(payload, mid, typ)
    sub = _uuid_in(payload, mid, typ)
    return SubsnappedReply(mid, data, sub, rid, _chunk_in(payload, mid, typ))


def _unsubscribed_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> UnsubscribedReply:
    sub = None if payload.get("subscription") is None else _uuid_in(payload, mid, typ)
    return UnsubscribedReply(mid, sub, rid)


def _update_in(payload: dict[str, Any], mid: int, rid: Any, typ: str) -> UpdateMessage:
    topic = payload.get("topic")
    if topic is not None and type(topic) is not str:
        raise _server_fail(typ, mid, f'"payload.topic" must be a string, got {_show(topic)}')
    sub_topic = _sub_topic_in(payload, mid, rid, typ, None)
    data = _data_in(payload, mid, typ)
    sub = _uuid_in(payload, mid, typ)
    return UpdateMessage(mid, data, sub, topic, sub_topic, rid, _chunk_in(payload, mid, typ))


_ServerParser: TypeAlias = Callable[[dict[str, Any], int, Any, str], ServerMessage]
_SERVER_PARSERS: dict[str, _ServerParser] = {
    "subscribed": _subscribed_in,
    "snapped": _snapped_in,
    "subsnapped": _subsnapped_in,
    "unsubscribed": _unsubscribed_in,
    "update": _update_in,
}
_SERVER_TYPES = (*_SERVER_PARSERS, "error")  # an error has no payload: decoded on its own


# --------------------------------------------------------------------------- chunks


def split_message(
    message: DataMessage, max_size: int = MAX_MESSAGE_SIZE, codec: Codec = JSON
) -> list[DataMessage]:
    """``message`` as the messages to send so that each frame holds at most ``max_size``
    bytes: itself when it fits, else chunks, each with a slice of the rows (see
    :func:`encode_frames`)."""
    return [msg for msg, _ in _split(message, max_size, codec)]


def encode_frames(
    message: DataMessage, max_size: int = MAX_MESSAGE_SIZE, codec: Codec = JSON
) -> list[str | bytes]:
    """The frames of ``message``, each at most ``max_size`` bytes: one when it fits, else
    one per chunk (``"chunk": {"index": i, "count": n}``), rows in order.

    Raises ValueError when it cannot fit: a single row (or the message without rows) is
    over ``max_size`` on its own; TypeError or ValueError as :func:`encode` does.
    """
    return [frame for _, frame in _split(message, max_size, codec)]


def _split(
    message: DataMessage, max_size: int, codec: Codec
) -> list[tuple[DataMessage, str | bytes]]:
    name = type(message).__name__
    if type(max_size) is not int or max_size <= 0:
        raise ValueError(f"kdb: max_size must be an int > 0, got {max_size!r}")
    frame = codec.dumps(to_dict(message))
    if _frame_size(frame) <= max_size:
        return [(message, frame)]
    if message.chunk is not None:
        raise ValueError(f"kdb: {name} id {message.id} is a chunk already; split the whole")
    data = message.data
    rows = table_rows(data)
    # The envelope with the widest chunk key any chunk can have (index, count <= rows).
    empty = dataclasses.replace(message, data={c: [] for c in data}, chunk=Chunk(rows, rows + 1))
    budget = max_size - _frame_size(codec.dumps(to_dict(empty)))
    if budget <= 0:
        raise ValueError(
            f"kdb: {name} id {message.id} does not fit {max_size} bytes even without rows"
        )
    # Rows per chunk from the whole frame's average row (an encode per cell would cost far
    # more than the chunks' own encoding); rows of uneven size make a chunk over the limit
    # now and then, and every frame is measured and such a chunk halved.
    per_row = max((_frame_size(frame) - (max_size - budget)) / rows, 1.0)
    step = max(int(budget * 0.9 / per_row), 1)
    ranges = [(lo, min(lo + step, rows)) for lo in range(0, rows, step)]
    while True:
        out: list[tuple[DataMessage, str | bytes]] = []
        over = None
        for index, (lo, hi) in enumerate(ranges):
            part = dataclasses.replace(
                message,
                data={c: values[lo:hi] for c, values in data.items()},
                chunk=Chunk(index, len(ranges)),
            )
            frame = codec.dumps(to_dict(part))
            if _frame_size(frame) > max_size:
                over = index
                break
            out.append((part, frame))
        if over is None:
            return out
        lo, hi = ranges[over]
        if hi - lo <= 1:
            raise ValueError(
                f"kdb: {name} id {message.id}: row {lo} alone does not fit {max_size} bytes"
            )
        mid = (lo + hi) // 2
        ranges[over : over + 1] = [(lo, mid), (mid, hi)]


class _Partial:
    """A chunked message being reassembled."""

    __slots__ = ("columns", "first", "next", "size")

    def __init__(self, first: DataMessage, size: int) -> None:
        self.first = first
        self.columns: Table = {c: list(v) for c, v in first.data.items()}
        self.next = 1
        self.size = size


# --------------------------------------------------------------------------- gateway side


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` on the connection (``encode`` it, or ``encode_frames`` for data)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Snap:
    """Gateway: answer the snap ``id`` with the rows of ``topic`` that pass ``filter``
    (:meth:`reply`). ``sub_topic`` is the request's, as sent."""

    id: int
    topic: str
    filter: Filter
    response_id: Any = None
    sub_topic: SubTopic | None = None

    def reply(self, data: Table) -> SnappedReply:
        """The snapped message carrying ``data``."""
        return SnappedReply(self.id, data, self.response_id)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Gateway: start the subscription ``subscription`` to the rows of ``topic`` that pass
    ``filter``: send :meth:`reply` (``subsnapped`` with the rows as they stand when
    ``with_snapshot``, else ``subscribed``), then an :meth:`update` per batch of new rows."""

    id: int
    subscription: str
    topic: str
    filter: Filter
    with_snapshot: bool
    response_id: Any = None
    sub_topic: SubTopic | None = None

    def reply(self, data: Table | None = None) -> SubscribedReply | SubsnappedReply:
        """The reply to the request: ``data`` (the snapshot) exactly when ``with_snapshot``."""
        if self.with_snapshot != (data is not None):
            need = "needs the snapshot's data" if self.with_snapshot else "takes no data"
            asked = "subsnap" if self.with_snapshot else "subscribe"
            raise ValueError(f"kdb: the reply to {asked} id {self.id} {need}")
        if data is None:
            return SubscribedReply(self.id, self.subscription, self.response_id)
        return SubsnappedReply(self.id, data, self.subscription, self.response_id)

    def update(self, data: Table) -> UpdateMessage:
        """The update carrying ``data``, new rows for this subscription."""
        return UpdateMessage(
            self.id, data, self.subscription, self.topic, self.sub_topic, self.response_id
        )


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Gateway: stop the subscription ``subscription``; nothing more is sent for it."""

    subscription: str


@dataclass(frozen=True, slots=True)
class Close:
    """Gateway: close the websocket with ``code`` and ``reason`` (at most 123 bytes)."""

    code: int
    reason: str


ServerAction: TypeAlias = Send | Snap | Subscribe | Unsubscribe | Close
"""What :class:`GatewayConnectionState` asks the gateway to do, in order."""

TopicLookup: TypeAlias = Callable[[str], Collection[str] | None]
"""The gateway's topic catalogue: ``lookup(topic)`` is the topic's key columns (empty for a
topic that is not keyed), or None when there is no such topic."""


def _new_subscription() -> str:
    return str(uuid.uuid4())


class ServerState(enum.Enum):
    """Where the gateway's side of one connection stands."""

    OPEN = "open"
    """Requests are taken."""
    CLOSED = "closed"
    """Closed by a rule below, or the socket went: everything is ignored."""


class GatewayConnectionState:
    """The gateway's side of one websocket, sans-I/O.

    ``receive(frame, now)`` takes a frame (or the dict a codec made of one) and returns the
    actions to carry out, in order: :class:`Send` a reply, :class:`Snap` (the gateway sends
    ``snap.reply(data)``), :class:`Subscribe` (the gateway sends ``sub.reply(...)``, then
    ``sub.update(...)`` per batch), :class:`Unsubscribe`, :class:`Close`. The topic catalogue
    (``topics``) and the subscription UUIDs (``new_subscription``) are the gateway's. The
    rules, checked in this order, all of them:

    ===========================================================  ==========================
    input (state OPEN)                                            actions
    ===========================================================  ==========================
    frame not JSON, not an object, binary on JSON, over max_size  error 22 (id null);
                                                                  Unsubscribe each live;
                                                                  Close (1)
    no id, or id not an integer from 0 to 2**53 - 1               error 28 (id null)
    id not above the last id taken on this connection             error 29
    (every request past this line uses its id up)
    no type                                                       error 20
    type not a string                                             error 61
    type not snap, subscribe, subsnap or unsubscribe              error 22
    no payload (absent or null)                                   error 21
    payload not an object                                         error 22
    topic absent or null (snap, subscribe, subsnap)               error 62
    topic not a string; subTopic not an object of scalars or      error 61
    arrays of scalars
    subscription absent or null (unsubscribe)                     error 62
    subscription not a UUID string                                error 61
    topic not in the catalogue                                    error 63
    a subTopic column that is not a key column of the topic       error 64
    subscribe/subsnap to a (topic, subTopic) live on this         error 42
    connection (2)
    subscribe/subsnap beyond max_subscriptions                    error 22 (3)
    unsubscribe of a subscription not live on this connection     error 43
    snap                                                          Snap
    subscribe, subsnap                                            Subscribe (new UUID)
    unsubscribe                                                   Unsubscribe; unsubscribed
    ``connection_lost()``                                         Unsubscribe each live;
                                                                  CLOSED
    anything in CLOSED                                            nothing
    ===========================================================  ==========================

    Every error is a :class:`ErrorReply` with the request's id, its ``response_id`` echoed,
    and a ``message`` saying what was wrong.

    (1) A frame that holds no request cannot be answered in kind: the client is not
        speaking this protocol. Code 1009 (:data:`MESSAGE_TOO_BIG`) over the size limit,
        1003 (:data:`UNSUPPORTED_DATA`) for a binary frame on a JSON connection, else 1008
        (:data:`POLICY_VIOLATION`). An object with a bad id is answered (error 28) and the
        connection stays open.
    (2) The same subscription: one topic and the same values per column, whatever their
        order or repeats (``{"sym": "a"}`` is ``{"sym": ["a"]}``; no subTopic is ``{}``).
    (3) actorwire's bound on a connection's subscriptions; the spec has no code for it.
    """

    __slots__ = (
        "_by_key",
        "_new",
        "_topics",
        "close_reason",
        "codec",
        "errors",
        "last_id",
        "last_received",
        "max_size",
        "max_subscriptions",
        "state",
        "subscriptions",
    )

    def __init__(
        self,
        topics: TopicLookup,
        *,
        new_subscription: Callable[[], str] = _new_subscription,
        codec: Codec = JSON,
        max_size: int = MAX_MESSAGE_SIZE,
        max_subscriptions: int = 1024,
    ) -> None:
        if not callable(topics):
            raise TypeError(f"GatewayConnectionState: topics must be callable, got {topics!r}")
        self._topics = topics
        self._new = new_subscription
        self.codec: Codec = codec
        self.max_size: int = _positive("max_size", max_size)
        """Largest frame taken, in bytes."""
        self.max_subscriptions: int = _positive("max_subscriptions", max_subscriptions)
        """Most live subscriptions on the connection."""
        self.state: ServerState = ServerState.OPEN
        self.last_id: int | None = None
        """The highest id taken so far."""
        self.last_received: float | None = None
        """When the last frame came (the ``now`` it came with), for an idle check."""
        self.subscriptions: dict[str, Subscribe] = {}
        """The live subscriptions, by UUID in lower case."""
        self._by_key: dict[Hashable, str] = {}
        self.errors: int = 0
        """Requests refused."""
        self.close_reason: str | None = None
        """Why the connection closed."""

    def __repr__(self) -> str:
        return (
            f"<GatewayConnectionState {self.state.value} last_id={self.last_id} "
            f"subscriptions={len(self.subscriptions)}>"
        )

    def receive(self, frame: str | bytes | dict[str, Any], now: float) -> list[ServerAction]:
        """Take one frame from the client."""
        if self.state is ServerState.CLOSED:
            return []
        self.last_received = now
        try:
            obj = frame if isinstance(frame, dict) else self.codec.loads(frame, self.max_size)
            msg = from_dict(obj, origin="client")
        except UndecodableError as exc:
            self.errors += 1
            text = str(exc)
            reply = ErrorReply(None, ErrorCode.INVALID_PAYLOAD, text)
            return [Send(reply), *self._close(text, exc.close_code)]
        except ProtocolError as exc:
            self.errors += 1
            return self._refuse(exc)
        if self.last_id is not None and msg.id <= self.last_id:
            self.errors += 1
            return [Send(self._not_increasing(msg.id, msg.type, msg.response_id))]
        self.last_id = msg.id
        return _SERVER_RULES[self.state, type(msg)](self, msg)

    def connection_lost(self) -> list[ServerAction]:
        """The socket closed: stop what is live."""
        if self.state is ServerState.CLOSED:
            return []
        out = self._stop_all()
        self.state = ServerState.CLOSED
        self.close_reason = "connection lost"
        return out

    def refuse(self, action: Snap | Subscribe, code: ErrorCode, message: str) -> list[ServerAction]:
        """Fail ``action`` after the fact (the gateway could not answer it): a Subscribe is
        forgotten (no Unsubscribe: it never started) and the client gets the error."""
        if isinstance(action, Subscribe):
            live = self.subscriptions.pop(action.subscription.lower(), None)
            if live is not None:
                self._by_key = {k: s for k, s in self._by_key.items() if s != live.subscription}
        self.errors += 1
        return [Send(ErrorReply(action.id, code, message, action.response_id))]

    # -- the rules ----------------------------------------------------------------------------

    def _refuse(self, exc: ProtocolError) -> list[ServerAction]:
        mid, rid = exc.message_id, exc.response_id
        code = exc.code or ErrorCode.INVALID_PAYLOAD
        if mid is not None:
            if self.last_id is not None and mid <= self.last_id:
                return [Send(self._not_increasing(mid, exc.type, rid))]
            self.last_id = mid
        return [Send(ErrorReply(mid, code, str(exc), rid))]

    def _not_increasing(self, mid: int, typ: str | None, rid: Any) -> ErrorReply:
        what = f"{typ} (id {mid})" if typ else f"message id {mid}"
        text = f"{what}: id {mid} is not above the last id {self.last_id} on this connection"
        return ErrorReply(mid, ErrorCode.ID_NOT_INCREASING, text, rid)

    def _filter(
        self, msg: SnapRequest | SubscribeRequest
    ) -> dict[str, tuple[Scalar, ...]] | ErrorReply:
        where = f"{msg.type} (id {msg.id})"
        keys = self._topics(msg.topic)
        if keys is None:
            return ErrorReply(
                msg.id,
                ErrorCode.NO_SUCH_TOPIC,
                f"{where}: topic {_show(msg.topic)} does not exist",
                msg.response_id,
            )
        flt = filter_of(msg.sub_topic)
        bad = [col for col in flt if col not in keys]
        if bad:
            named = ", ".join(_show(c) for c in bad)
            known = (
                f"its key columns are {', '.join(_show(k) for k in keys)}"
                if keys
                else "it has no key columns"
            )
            return ErrorReply(
                msg.id,
                ErrorCode.INVALID_SUB_TOPIC,
                f"{where}: subTopic names {named}, not a key column of topic "
                f"{_show(msg.topic)} ({known})",
                msg.response_id,
            )
        return flt

    def _snap(self, msg: SnapRequest) -> list[ServerAction]:
        flt = self._filter(msg)
        if isinstance(flt, ErrorReply):
            self.errors += 1
            return [Send(flt)]
        return [Snap(msg.id, msg.topic, flt, msg.response_id, msg.sub_topic)]

    def _subscribe(self, msg: SubscribeRequest) -> list[ServerAction]:
        flt = self._filter(msg)
        if isinstance(flt, ErrorReply):
            self.errors += 1
            return [Send(flt)]
        where = f"{msg.type} (id {msg.id})"
        key = _subscription_key(msg.topic, flt)
        live = self._by_key.get(key)
        if live is not None:
            self.errors += 1
            text = (
                f"{where}: already subscribed to topic {_show(msg.topic)} with this subTopic, "
                f"as {live}"
            )
            return [Send(ErrorReply(msg.id, ErrorCode.ALREADY_SUBSCRIBED, text, msg.response_id))]
        if len(self.subscriptions) >= self.max_subscriptions:
            self.errors += 1
            text = f"{where}: at most {self.max_subscriptions} subscriptions per connection"
            return [Send(ErrorReply(msg.id, ErrorCode.INVALID_PAYLOAD, text, msg.response_id))]
        sid = self._new()
        if type(sid) is not str or not _UUID.fullmatch(sid) or sid.lower() in self.subscriptions:
            raise ValueError(
                f"GatewayConnectionState: new_subscription gave {sid!r}: not a new UUID"
            )
        sub = Subscribe(
            msg.id, sid, msg.topic, flt, msg.with_snapshot, msg.response_id, msg.sub_topic
        )
        self.subscriptions[sid.lower()] = sub
        self._by_key[key] = sid
        return [sub]

    def _unsubscribe(self, msg: UnsubscribeRequest) -> list[ServerAction]:
        sub = self.subscriptions.pop(msg.subscription.lower(), None)
        if sub is None:
            self.errors += 1
            text = (
                f"unsubscribe (id {msg.id}): no subscription {msg.subscription} on this connection"
            )
            return [Send(ErrorReply(msg.id, ErrorCode.NOT_SUBSCRIBED, text, msg.response_id))]
        del self._by_key[_subscription_key(sub.topic, sub.filter)]
        reply = UnsubscribedReply(msg.id, msg.subscription, msg.response_id)
        return [Unsubscribe(sub.subscription), Send(reply)]

    def _stop_all(self) -> list[ServerAction]:
        out: list[ServerAction] = [Unsubscribe(s.subscription) for s in self.subscriptions.values()]
        self.subscriptions.clear()
        self._by_key.clear()
        return out

    def _close(self, reason: str, code: int) -> list[ServerAction]:
        out = self._stop_all()
        self.state = ServerState.CLOSED
        self.close_reason = reason
        out.append(Close(code, _close_reason(reason)))
        return out


_SERVER_RULES: dict[
    tuple[ServerState, type], Callable[[GatewayConnectionState, Any], list[ServerAction]]
] = {
    (ServerState.OPEN, SnapRequest): GatewayConnectionState._snap,
    (ServerState.OPEN, SubscribeRequest): GatewayConnectionState._subscribe,
    (ServerState.OPEN, UnsubscribeRequest): GatewayConnectionState._unsubscribe,
}
"""The request rules of :class:`GatewayConnectionState` (after the id rules)."""


def _close_reason(reason: str) -> str:
    data = reason.encode("utf-8", "replace")
    if len(data) <= _CLOSE_REASON_BYTES:
        return reason
    return data[: _CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def _positive(what: str, value: object) -> int:
    if type(value) is not int or value <= 0:
        raise ValueError(f"kdb: {what} must be an int > 0, got {value!r}")
    return value


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True, slots=True)
class SnapResult:
    """Client: the snap ``id`` answered with ``data``."""

    id: int
    data: Table


@dataclass(frozen=True, slots=True)
class SnapFailed:
    """Client: the snap ``id`` failed: the gateway refused it (:class:`GatewayError`), or
    the connection ended before its reply (ConnectionError)."""

    id: int
    error: GatewayError | ConnectionError


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Client: the subscription ``key`` is live as the gateway's ``subscription``.
    ``snapshot`` is the data a subsnap brought (None for a subscribe); ``resync`` says it
    was made again after a reconnect: ``snapshot`` replaces what the user held."""

    key: Hashable
    subscription: str
    snapshot: Table | None = None
    resync: bool = False


@dataclass(frozen=True, slots=True)
class Update:
    """Client: new rows for the subscription ``key``; ``resynced`` marks the first update
    after a resync's snapshot."""

    key: Hashable
    data: Table
    resynced: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionError:
    """Client: the gateway reported ``error`` for the subscription ``key``. ``ended``: it
    refused the subscribe, and the subscription is dropped; else the error came on a live
    subscription, which stays."""

    key: Hashable
    error: GatewayError
    ended: bool


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """Client: the subscription ``key`` is over; nothing more comes for it."""

    key: Hashable


ClientOutput: TypeAlias = (
    Send | SnapResult | SnapFailed | Subscribed | Update | SubscriptionError | Unsubscribed
)
"""What :class:`ClientConnectionState` returns: messages to send and events, in order."""


class ClientState(enum.Enum):
    """Where the client's side stands."""

    DISCONNECTED = "disconnected"
    """No connection (none yet, or the last one ended): ``connect()`` starts one."""
    CONNECTED = "connected"
    """Requests go out at once; replies and updates are matched."""


class _Sub:
    """One subscription, across connections."""

    __slots__ = (
        "filter_key",
        "flag_next",
        "id",
        "key",
        "resync",
        "sub_topic",
        "subscription",
        "topic",
        "unsubscribe_wanted",
        "unsubscribing",
        "was_live",
        "with_snapshot",
    )

    def __init__(
        self, key: Hashable, topic: str, sub_topic: SubTopic | None, with_snapshot: bool
    ) -> None:
        self.key = key
        self.topic = topic
        self.sub_topic = sub_topic
        self.with_snapshot = with_snapshot
        self.filter_key = _subscription_key(topic, filter_of(sub_topic))
        self.id: int | None = None  # its subscribe's id on this connection, once sent
        self.subscription: str | None = None  # the gateway's UUID on this connection
        self.was_live = False  # live on some connection: the next one resyncs it
        self.resync = False  # the subscribe in flight resyncs it
        self.flag_next = False  # the next update is the first after a resync
        self.unsubscribing = False  # the unsubscribe is sent
        self.unsubscribe_wanted = False  # to be unsubscribed once its subscribe is answered


class _Request:
    """A request waiting for its reply."""

    __slots__ = ("kind", "response_id", "sub", "with_snapshot")

    def __init__(
        self,
        kind: Literal["snap", "cancelled", "subscribe", "unsubscribe"],
        sub: _Sub | None = None,
        response_id: Any = None,
        with_snapshot: bool = False,
    ) -> None:
        self.kind = kind
        self.sub = sub
        self.response_id = response_id
        self.with_snapshot = with_snapshot


class ClientConnectionState:
    """The client's side of the gateway's websocket, sans-I/O, across reconnects.

    ``connect()``, ``snap()``, ``subscribe()``, ``unsubscribe()``, ``receive(frame)`` and
    ``connection_lost()`` return what to do, in order: :class:`Send` a message, and events for
    the user (:class:`SnapResult`, :class:`SnapFailed`, :class:`Subscribed`,
    :class:`Update`, :class:`SubscriptionError`, :class:`Unsubscribed`). The rules:

    1. Ids start at ``first_id`` and go up by one per request for the life of this object,
       across reconnects: a gateway never sees an id repeat (error 29 cannot happen).
    2. ``connect()`` (only when DISCONNECTED) sends a subscribe for every subscription: as
       asked (subscribe or subsnap) for one never live, a subsnap marked resync for one live
       on an earlier connection (its UUID was that connection's; the gateway gives a new one).
    3. Every reply is matched by id to the request waiting for it, by the table
       ``_CLIENT_RULES`` (request kind, reply type): snap -> snapped or error; subscribe ->
       subscribed or error, subsnap -> subsnapped or error; unsubscribe -> unsubscribed or
       error. Its ``response_id`` must be the request's. Anything else with the id of a
       waiting request is a ProtocolError.
    4. An id with no request waiting is a subscription's (its subscribe's id): an update
       (whose subscription, and topic and subTopic when given, must be the subscription's)
       gives :class:`Update`, or is dropped and counted in ``late`` while it is being
       unsubscribed; an error gives :class:`SubscriptionError` (not ended). Any other
       message, or an id that is neither, is a ProtocolError; so is an update before its
       subscribe's reply.
    5. A resync's :class:`Subscribed` has ``resync`` True and the new snapshot; the first
       :class:`Update` after it has ``resynced`` True. Each is reported once per resync.
    6. A refused subscribe drops the subscription (:class:`SubscriptionError`, ended); a
       refused snap gives :class:`SnapFailed` with the :class:`GatewayError`; an unsubscribe
       answered either way ends it (:class:`Unsubscribed`).
    7. ``unsubscribe(key)`` sends the unsubscribe when the subscription is live on this
       connection, waits for the subscribe's reply when one is in flight (no Subscribed is
       reported then), and ends it at once otherwise.
    8. Chunks (``chunk`` in a snapped, subsnapped or update) are joined in order: chunk 0
       first, each index one above the last, the same count, type, subscription,
       response_id and columns; nothing else may come with that id until the last. Any
       break is a ProtocolError, and so is holding more than ``max_chunk_bytes`` of chunks.
    9. A ProtocolError from ``receive`` ends the connection (DISCONNECTED): the caller closes
       the socket. Whatever ends a connection, the caller then calls ``connection_lost()``:
       each snap waiting fails (:class:`SnapFailed`, ConnectionError), each unsubscribe cut
       short ends (:class:`Unsubscribed`), every other subscription waits for ``connect()``.
       DISCONNECTED ignores what it receives.
    10. Bounds: at most ``max_pending`` snaps wait at once and ``max_subscriptions``
        subscriptions exist (RuntimeError beyond), so at most their sum of requests wait.
    """

    __slots__ = (
        "_chunk_bytes",
        "_chunks",
        "_ended",
        "_next_id",
        "_pending",
        "_routes",
        "_snaps",
        "_subs",
        "codec",
        "connections",
        "late",
        "max_chunk_bytes",
        "max_pending",
        "max_size",
        "max_subscriptions",
        "state",
    )

    def __init__(
        self,
        *,
        codec: Codec = JSON,
        max_size: int = MAX_MESSAGE_SIZE,
        max_pending: int = 1024,
        max_subscriptions: int = 1024,
        max_chunk_bytes: int = MAX_CHUNK_BYTES,
        first_id: int = 1,
    ) -> None:
        self.codec: Codec = codec
        self.max_size: int = _positive("max_size", max_size)
        """Largest frame taken, in bytes."""
        self.max_pending: int = _positive("max_pending", max_pending)
        """Most snaps waiting for their reply at once."""
        self.max_subscriptions: int = _positive("max_subscriptions", max_subscriptions)
        """Most subscriptions at once."""
        self.max_chunk_bytes: int = _positive("max_chunk_bytes", max_chunk_bytes)
        """Most bytes of chunks held while reassembling."""
        if type(first_id) is not int or not 0 <= first_id <= MAX_ID:
            raise ValueError(f"kdb: first_id must be an int from 0 to 2**53 - 1, got {first_id!r}")
        self.state: ClientState = ClientState.DISCONNECTED
        self._next_id = first_id
        self._pending: dict[int, _Request] = {}
        self._snaps = 0  # snaps (and cancelled snaps) among them
        self._routes: dict[int, _Sub] = {}  # subscribe id -> its subscription, once live
        self._subs: dict[Hashable, _Sub] = {}
        self._chunks: dict[int, _Partial] = {}
        self._chunk_bytes = 0
        self._ended: list[ClientOutput] = []
        self.connections: int = 0
        """Connections started."""
        self.late: int = 0
        """Updates dropped because their subscription was being unsubscribed."""

    def __repr__(self) -> str:
        return (
            f"<ClientConnectionState {self.state.value} next_id={self._next_id} "
            f"subscriptions={len(self._subs)} pending={len(self._pending)}>"
        )

    # -- queries ------------------------------------------------------------------------------

    @property
    def next_id(self) -> int:
        """The id the next request gets."""
        return self._next_id

    @property
    def subscriptions(self) -> tuple[Hashable, ...]:
        """The keys of the subscriptions made and not ended."""
        return tuple(self._subs)

    @property
    def pending(self) -> int:
        """Requests sent on this connection and not yet answered."""
        return len(self._pending)

    def waiting(self) -> tuple[int, ...]:
        """The ids of the requests sent on this connection and not yet answered."""
        return tuple(self._pending)

    def subscription(self, key: Hashable) -> str | None:
        """The gateway's UUID of the subscription ``key`` on this connection, None when it
        is not live (or there is no such key)."""
        sub = self._subs.get(key)
        return None if sub is None else sub.subscription

    # -- commands -----------------------------------------------------------------------------

    def connect(self) -> list[ClientOutput]:
        """Start a connection: a subscribe for every subscription (rule 2)."""
        if self.state is not ClientState.DISCONNECTED:
            raise RuntimeError(
                "ClientConnectionState.connect: already connected; call connection_lost() "
                "when the connection ends, then connect()"
            )
        self.state = ClientState.CONNECTED
        self.connections += 1
        return [self._send_subscribe(sub) for sub in self._subs.values()]

    def snap(
        self, topic: str, sub_topic: SubTopic | None = None, response_id: Any = None
    ) -> tuple[int, Send]:
        """A snap of ``topic``'s rows that pass ``sub_topic``: its id (what its
        :class:`SnapResult` or :class:`SnapFailed` carries) and the message to send.
        ConnectionError when not connected; RuntimeError when ``max_pending`` snaps wait."""
        _request_args("snap", topic, sub_topic)
        if self.state is not ClientState.CONNECTED:
            raise ConnectionError("kdb: snap: not connected to the gateway")
        if self._snaps >= self.max_pending:
            raise RuntimeError(f"kdb: snap: {self._snaps} snaps already wait for their reply")
        mid = self._take_id(_Request("snap", response_id=response_id))
        self._snaps += 1
        return mid, Send(SnapRequest(mid, topic, sub_topic, response_id))

    def cancel_snap(self, request_id: int) -> None:
        """Stop waiting for the snap ``request_id`` (a timeout, say): its reply, when it
        comes, is dropped. Nothing happens for an id that is not a waiting snap."""
        entry = self._pending.get(request_id)
        if entry is not None and entry.kind == "snap":
            entry.kind = "cancelled"

    def subscribe(
        self,
        key: Hashable,
        topic: str,
        sub_topic: SubTopic | None = None,
        with_snapshot: bool = False,
    ) -> list[ClientOutput]:
        """Subscribe ``key`` to ``topic``'s rows that pass ``sub_topic``, with the rows as
        they stand first when ``with_snapshot``; sent at once when connected, else at
        ``connect()``. ValueError for a key in use, or a (topic, sub_topic) another key
        has (the gateway refuses that with error 42)."""
        _request_args("subscribe", topic, sub_topic)
        if type(with_snapshot) is not bool:
            raise TypeError(f"kdb: subscribe: with_snapshot must be a bool, got {with_snapshot!r}")
        if key in self._subs:
            raise ValueError(f"kdb: subscribe: key {key!r} is already in use")
        sub = _Sub(key, topic, sub_topic, with_snapshot)
        for other in self._subs.values():
            if other.filter_key == sub.filter_key:
                raise ValueError(
                    f"kdb: subscribe: key {key!r} asks for topic {topic!r} with the subTopic "
                    f"of key {other.key!r}: the gateway refuses a second such subscription"
                )
        if len(self._subs) >= self.max_subscriptions:
            raise RuntimeError(f"kdb: subscribe: already {len(self._subs)} subscriptions")
        self._subs[key] = sub
        if self.state is ClientState.CONNECTED:
            return [self._send_subscribe(sub)]
        return []

    def unsubscribe(self, key: Hashable) -> list[ClientOutput]:
        """End the subscription ``key`` (rule 7); nothing when it is ending already."""
        sub = self._subs.get(key)
        if sub is None:
            raise ValueError(f"kdb: unsubscribe: no subscription {key!r}")
        if sub.unsubscribing or sub.unsubscribe_wanted:
            return []
        if self.state is ClientState.CONNECTED:
            if sub.subscription is not None:
                return [self._send_unsubscribe(sub)]
            if sub.id is not None:
                sub.unsubscribe_wanted = True
                return []
        self._drop(sub)
        return [Unsubscribed(key)]

    def receive(
        self, frame: str | bytes | dict[str, Any] | ServerMessage, *, size: int | None = None
    ) -> list[ClientOutput]:
        """Take one frame (or the dict a codec made of it, or its message) from the
        gateway; ``size`` is its size in bytes when it is not the frame itself (for the chunk
        bound; estimated when not given)."""
        if self.state is ClientState.DISCONNECTED:
            return []
        try:
            if isinstance(frame, str | bytes | bytearray | memoryview):
                size = _frame_size(frame)
                msg = from_dict(self.codec.loads(frame, self.max_size), origin="server")
            elif isinstance(frame, dict):
                msg = from_dict(frame, origin="server")
            else:
                msg = frame
            mid = msg.id
            chunked = getattr(msg, "chunk", None) is not None
            if mid is not None and (chunked or mid in self._chunks):
                whole = self._reassemble(msg, mid, size)
                if whole is None:
                    return []
                msg = whole
            return self._route(msg)
        except ProtocolError:
            self._end()
            raise

    def connection_lost(self) -> list[ClientOutput]:
        """The socket closed (rule 9)."""
        self._end()
        out, self._ended = self._ended, []
        return out

    # -- the rules ----------------------------------------------------------------------------

    def _route(self, msg: ServerMessage) -> list[ClientOutput]:
        mid = msg.id
        entry = None if mid is None else self._pending.get(mid)
        if entry is not None:
            assert mid is not None
            rule = _CLIENT_RULES.get((entry.kind, type(msg)))
            if rule is None:
                raise _client_error(
                    msg, f"the reply to a {_kind_of(entry)} must be {_EXPECTED[_kind_of(entry)]}"
                )
            if msg.response_id != entry.response_id:
                raise _client_error(
                    msg,
                    f"response_id {_show(msg.response_id)} is not the request's "
                    f"{_show(entry.response_id)}",
                )
            del self._pending[mid]
            if entry.kind in ("snap", "cancelled"):
                self._snaps -= 1
            return rule(self, entry, msg)
        sub = None if mid is None else self._routes.get(mid)
        if sub is not None:
            if isinstance(msg, UpdateMessage):
                return self._update(sub, msg)
            if isinstance(msg, ErrorReply):
                return [SubscriptionError(sub.key, msg.gateway_error, ended=False)]
            raise _client_error(msg, "a second reply to a subscribe already answered")
        if isinstance(msg, ErrorReply):
            raise _client_error(
                msg, f"the gateway reported an error for no request: {msg.gateway_error}"
            )
        raise _client_error(msg, "no request or subscription has this id")

    def _snapped(self, entry: _Request, msg: SnappedReply) -> list[ClientOutput]:
        return [SnapResult(msg.id, msg.data)]

    def _dropped(self, entry: _Request, msg: ServerMessage) -> list[ClientOutput]:
        return []  # the reply to a cancelled snap

    def _subscribed(
        self, entry: _Request, msg: SubscribedReply | SubsnappedReply
    ) -> list[ClientOutput]:
        sub = entry.sub
        assert sub is not None
        if entry.with_snapshot != isinstance(msg, SubsnappedReply):
            asked = "subsnap" if entry.with_snapshot else "subscribe"
            raise _client_error(msg, f"the reply to a {asked} must be {_EXPECTED[asked]}")
        for other in self._routes.values():
            if (
                other.subscription is not None
                and other.subscription.lower() == msg.subscription.lower()
            ):
                raise _client_error(
                    msg, f"subscription {msg.subscription} is another subscription's"
                )
        sub.subscription = msg.subscription
        self._routes[msg.id] = sub
        if sub.unsubscribe_wanted:
            sub.unsubscribe_wanted = False
            return [self._send_unsubscribe(sub)]
        sub.was_live = True
        resync, sub.resync = sub.resync, False
        sub.flag_next = sub.flag_next or resync
        data = msg.data if isinstance(msg, SubsnappedReply) else None
        return [Subscribed(sub.key, msg.subscription, data, resync)]

    def _unsubscribed(self, entry: _Request, msg: UnsubscribedReply) -> list[ClientOutput]:
        sub = entry.sub
        assert sub is not None and sub.subscription is not None
        if msg.subscription is not None and msg.subscription.lower() != sub.subscription.lower():
            raise _client_error(
                msg,
                f"unsubscribed names subscription {msg.subscription}, the unsubscribe asked "
                f"for {sub.subscription}",
            )
        self._drop(sub)
        return [Unsubscribed(sub.key)]

    def _refused(self, entry: _Request, msg: ErrorReply) -> list[ClientOutput]:
        error = msg.gateway_error
        sub = entry.sub
        if entry.kind == "snap":
            assert msg.id is not None
            return [SnapFailed(msg.id, error)]
        if entry.kind == "cancelled":
            return []
        assert sub is not None
        self._drop(sub)  # a refused subscribe never started; an unsubscribe ends it either way
        if entry.kind == "unsubscribe" or sub.unsubscribe_wanted:
            return [Unsubscribed(sub.key)]
        return [SubscriptionError(sub.key, error, ended=True)]

    def _update(self, sub: _Sub, msg: UpdateMessage) -> list[ClientOutput]:
        if sub.unsubscribing:
            self.late += 1
            return []
        assert sub.subscription is not None
        if msg.subscription.lower() != sub.subscription.lower():
            raise _client_error(
                msg, f"an update for subscription {msg.subscription}, not {sub.subscription}"
            )
        if msg.topic is not None and msg.topic != sub.topic:
            raise _client_error(msg, f"an update for topic {_show(msg.topic)}, not {sub.topic!r}")
        if (
            msg.sub_topic is not None
            and _subscription_key(sub.topic, filter_of(msg.sub_topic)) != sub.filter_key
        ):
            raise _client_error(msg, "an update whose subTopic is not the subscription's")
        if msg.response_id is not None:
            raise _client_error(
                msg, f"an update with response_id {_show(msg.response_id)}: the subscribe had none"
            )
        flag, sub.flag_next = sub.flag_next, False
        return [Update(sub.key, msg.data, flag)]

    def _reassemble(self, msg: ServerMessage, mid: int, size: int | None) -> ServerMessage | None:
        part = self._chunks.get(mid)
        chunk = getattr(msg, "chunk", None)
        if part is None:
            assert chunk is not None and isinstance(
                msg, SnappedReply | SubsnappedReply | UpdateMessage
            )
            if chunk.index != 0:
                raise _client_error(
                    msg,
                    f"chunk {chunk.index} of {chunk.count} came first: chunks come in order from 0",
                )
            if chunk.count == 1:
                return dataclasses.replace(msg, chunk=None)
            size = self._bounded(msg, size)
            self._chunks[mid] = _Partial(msg, size)
            return None
        first = part.first
        count = first.chunk.count if first.chunk is not None else 0
        if chunk is None or not isinstance(msg, type(first)):
            raise _client_error(
                msg,
                f"chunks {part.next} to {count - 1} of the {first.type} with this id are "
                f"missing: {msg.type!r} came instead",
            )
        assert isinstance(msg, SnappedReply | SubsnappedReply | UpdateMessage)
        if chunk.count != count or chunk.index != part.next:
            raise _client_error(
                msg,
                f"chunk {chunk.index} of {chunk.count} after chunk {part.next - 1} of "
                f"{count}: chunk {part.next} is missing or out of order",
            )
        if msg.response_id != first.response_id or getattr(msg, "subscription", None) != getattr(
            first, "subscription", None
        ):
            raise _client_error(msg, f"chunk {chunk.index} is not of the message chunk 0 began")
        if msg.data.keys() != part.columns.keys():
            raise _client_error(
                msg, f"chunk {chunk.index} has other columns than chunk 0: {sorted(msg.data)}"
            )
        size = self._bounded(msg, size)
        part.size += size
        for col, values in msg.data.items():
            part.columns[col].extend(values)
        part.next += 1
        if part.next < count:
            return None
        del self._chunks[mid]
        self._chunk_bytes -= part.size
        return dataclasses.replace(first, data=part.columns, chunk=None)

    def _bounded(self, msg: DataMessage, size: int | None) -> int:
        if size is None:
            size = len(_SIZER.encode(msg.data))
        if self._chunk_bytes + size > self.max_chunk_bytes:
            raise _client_error(
                msg,
                f"chunks held would reach {self._chunk_bytes + size} bytes, over the limit "
                f"of {self.max_chunk_bytes}",
            )
        self._chunk_bytes += size
        return size

    # -- helpers ------------------------------------------------------------------------------

    def _take_id(self, request: _Request) -> int:
        mid = self._next_id
        if mid > MAX_ID:
            raise RuntimeError("kdb: request ids are used up (2**53 - 1 requests)")
        self._next_id = mid + 1
        self._pending[mid] = request
        return mid

    def _send_subscribe(self, sub: _Sub) -> Send:
        with_snapshot = sub.with_snapshot or sub.was_live
        sub.resync = sub.was_live
        mid = self._take_id(_Request("subscribe", sub, None, with_snapshot))
        sub.id = mid
        return Send(SubscribeRequest(mid, sub.topic, sub.sub_topic, None, with_snapshot))

    def _send_unsubscribe(self, sub: _Sub) -> Send:
        assert sub.subscription is not None
        sub.unsubscribing = True
        mid = self._take_id(_Request("unsubscribe", sub))
        return Send(UnsubscribeRequest(mid, sub.subscription))

    def _drop(self, sub: _Sub) -> None:
        del self._subs[sub.key]
        if sub.id is not None:
            self._routes.pop(sub.id, None)

    def _end(self) -> None:
        if self.state is ClientState.DISCONNECTED:
            return
        self.state = ClientState.DISCONNECTED
        for mid, entry in self._pending.items():
            sub = entry.sub
            if entry.kind == "snap":
                error = ConnectionError(
                    f"kdb: the connection ended before the reply to snap id {mid}"
                )
                self._ended.append(SnapFailed(mid, error))
            elif sub is not None and (entry.kind == "unsubscribe" or sub.unsubscribe_wanted):
                self._drop(sub)
                self._ended.append(Unsubscribed(sub.key))
        self._pending.clear()
        self._snaps = 0
        self._routes.clear()
        self._chunks.clear()
        self._chunk_bytes = 0
        for sub in self._subs.values():
            sub.id = sub.subscription = None


def _kind_of(entry: _Request) -> str:
    if entry.kind == "subscribe":
        return "subsnap" if entry.with_snapshot else "subscribe"
    return "snap" if entry.kind == "cancelled" else entry.kind


_EXPECTED = {
    "snap": "'snapped' or 'error'",
    "subscribe": "'subscribed' or 'error'",
    "subsnap": "'subsnapped' or 'error'",
    "unsubscribe": "'unsubscribed' or 'error'",
}


def _request_args(what: str, topic: object, sub_topic: object) -> None:
    if type(topic) is not str or not topic:
        raise ValueError(f"kdb: {what}: topic must be a non-empty str, got {_show(topic)}")
    if sub_topic is not None:
        _sub_topic_out(what, sub_topic)


def _client_error(msg: ServerMessage, text: str) -> ProtocolError:
    return ProtocolError(f"{msg.type} (id {msg.id}): {text}", message_id=msg.id, type=msg.type)


_C = ClientConnectionState
_CLIENT_RULES: dict[
    tuple[str, type], Callable[[ClientConnectionState, _Request, Any], list[ClientOutput]]
] = {
    ("snap", SnappedReply): _C._snapped,
    ("snap", ErrorReply): _C._refused,
    ("cancelled", SnappedReply): _C._dropped,
    ("cancelled", ErrorReply): _C._dropped,
    ("subscribe", SubscribedReply): _C._subscribed,
    ("subscribe", SubsnappedReply): _C._subscribed,
    ("subscribe", ErrorReply): _C._refused,
    ("unsubscribe", UnsubscribedReply): _C._unsubscribed,
    ("unsubscribe", ErrorReply): _C._refused,
}
"""The replies :class:`ClientConnectionState` takes, by (waiting request, reply type)."""
