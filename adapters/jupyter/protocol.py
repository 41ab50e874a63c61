"""Sans-I/O core of the Jupyter wire protocol: framing, HMAC signing, replay history, JSON.

A message on the wire is the multipart ``[*idents, b"<IDS|MSG>", signature, header,
parent_header, metadata, content, *buffers]``. The four dict frames are JSON; the
signature is the lowercase hex HMAC over them, in that order (buffers are not signed); an
empty key signs nothing (``b""``). Frames in are anything bytes-like (``bytes``,
``memoryview``, ``zmq.Frame``); frames out are ``bytes``. No sockets here.
"""

from __future__ import annotations

import hmac
import json
import numbers
import re
import sys
from binascii import b2a_base64
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson

from ...actors.errors import ActorwireError

__all__ = [
    "DEFAULT_DIGEST_HISTORY_SIZE",
    "DEFAULT_SIGNATURE_SCHEME",
    "DELIM",
    "PROTOCOL_VERSION",
    "Codec",
    "DigestHistory",
    "MessageError",
    "Packer",
    "ReplayError",
    "SignatureError",
    "Signer",
    "Unpacker",
    "digest_name",
    "extract_dates",
    "json_default",
    "json_packer",
    "json_unpacker",
    "orjson_packer",
    "orjson_unpacker",
    "parse_date",
    "split_identities",
    "squash_dates",
    "utcnow",
]

DELIM = b"<IDS|MSG>"
"""The frame between the routing identities and the signature."""

PROTOCOL_VERSION = "5.4"
"""The header ``version`` this side writes (jupyter_client 8's protocol version)."""

DEFAULT_SIGNATURE_SCHEME = "hmac-sha256"
DEFAULT_DIGEST_HISTORY_SIZE = 2**16

# signature, header, parent_header, metadata, content: the frames after the delimiter that
# every message has; anything after them is a buffer.
_MIN_FRAMES = 5
_DICT_FRAMES = ("header", "parent_header", "metadata", "content")

Packer = Callable[[Any], bytes]
Unpacker = Callable[[Any], Any]


class MessageError(ActorwireError, ValueError):
    """A multipart message that is not a valid Jupyter message (framing, JSON, shape)."""


class SignatureError(MessageError):
    """A message whose signature is missing or does not match (wrong key, tampered)."""


class ReplayError(SignatureError):
    """A correctly signed message whose signature was already seen: a replay."""


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime (message header ``date``)."""
    return datetime.now(UTC)


# -- JSON ---------------------------------------------------------------------------------


def _assume_local(dt: datetime) -> datetime:
    """A naive datetime taken as local time (jupyter_client's rule), UTC if out of range."""
    try:
        return dt.astimezone()
    except (ValueError, OverflowError, OSError):
        return dt.replace(tzinfo=UTC)


def json_default(obj: Any) -> Any:
    """``default`` hook of the JSON packers, for what JSON has no type for.

    Datetimes become ISO 8601 with a timezone (naive ones are taken as local time, UTC
    shown as ``Z``), dates ISO 8601, bytes base64, numpy arrays and scalars plain lists and
    numbers, other iterables lists, other numbers int or float; as in jupyter_client.
    """
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = _assume_local(obj)
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return b2a_base64(obj, newline=False).decode("ascii")
    # numpy is never imported here: if it is not loaded, obj cannot be one of its types.
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    if isinstance(obj, Iterable):
        return list(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def json_packer(obj: Any) -> bytes:
    """JSON with the standard library (UTF-8, no NaN); the fallback of ``orjson_packer``."""
    return json.dumps(obj, default=json_default, ensure_ascii=False, allow_nan=False).encode(
        "utf8", errors="surrogateescape"
    )


def json_unpacker(s: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON with the standard library; invalid UTF-8 is replaced, not an error."""
    if isinstance(s, bytes | bytearray | memoryview):
        s = bytes(s).decode("utf8", "replace")
    return json.loads(s)


# The options jupyter_client's own orjson packer uses, so both sides write the same bytes
# for the same message (naive datetimes as UTC there, ``Z`` for UTC).
_ORJSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def orjson_packer(obj: Any) -> bytes:
    """JSON with orjson; what orjson refuses (non-str keys, huge ints, lone surrogates)
    goes through ``json_packer``."""
    try:
        return orjson.dumps(obj, default=json_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json_packer(obj)


def orjson_unpacker(s: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON with orjson; what it refuses (NaN literals, bad UTF-8) goes through
    ``json_unpacker``."""
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        return json_unpacker(s)


_ISO8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)


def parse_date(s: Any) -> Any:
    """An ISO 8601 timestamp string as an aware datetime; anything else unchanged."""
    # The length and "T" test skip the regex for ids, names and versions.
    if s.__class__ is not str or len(s) < 19 or s[10] != "T" or not _ISO8601.fullmatch(s):
        return s
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:  # e.g. month 13: matches the pattern, is no date
        return s
    return dt if dt.tzinfo is not None else _assume_local(dt)


def extract_dates(obj: Any) -> Any:
    """A copy of unpacked JSON with every ISO 8601 timestamp string made a datetime."""
    if isinstance(obj, dict):
        return {k: extract_dates(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [extract_dates(v) for v in obj]
    return parse_date(obj)


def squash_dates(obj: Any) -> Any:
    """A copy of ``obj`` with every datetime made an ISO 8601 string (for packers that
    cannot write datetimes)."""
    if isinstance(obj, dict):
        return {k: squash_dates(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [squash_dates(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


# -- signing --------------------------------------------------------------------------------


def digest_name(signature_scheme: str) -> str:
    """The hash name in an ``hmac-<hashlib name>`` scheme, checked to work with HMAC.

    Raises ValueError naming the scheme when it is not of that form or the hash is unknown
    (or unusable for HMAC, like the variable-length shake hashes).
    """
    if not isinstance(signature_scheme, str) or not signature_scheme.startswith("hmac-"):
        raise ValueError(
            f"signature_scheme must be 'hmac-<hashlib name>' (e.g. 'hmac-sha256'), "
            f"got {signature_scheme!r}"
        )
    name = signature_scheme[len("hmac-") :]
    try:
        hmac.new(b"probe", b"", name).hexdigest()
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown signature_scheme {signature_scheme!r}: "
            f"{name!r} is not a hashlib hash usable with HMAC"
        ) from None
    return name


class Signer:
    """Signs and checks the four dict frames with one key and scheme.

    The key is held only inside a prepared HMAC object, so that neither it nor its repr
    can leak; each signature copies that object (cheaper than keying a new one).
    """

    __slots__ = ("_auth", "signature_length", "signature_scheme")

    def __init__(self, key: bytes, signature_scheme: str = DEFAULT_SIGNATURE_SCHEME) -> None:
        name = digest_name(signature_scheme)
        self.signature_scheme = signature_scheme
        self._auth = hmac.new(key, digestmod=name) if key else None
        # The length of the signatures it writes: hex digits, none without a key.
        self.signature_length = 0 if self._auth is None else 2 * self._auth.digest_size

    @property
    def enabled(self) -> bool:
        """False for an empty key: messages go out unsigned and are not checked."""
        return self._auth is not None

    def sign(self, parts: Iterable[Any]) -> bytes:
        """Lowercase hex HMAC over ``parts`` as ASCII bytes; ``b""`` without a key."""
        auth = self._auth
        if auth is None:
            return b""
        h = auth.copy()
        # One update of the joined frames: fewer calls than one update per frame.
        h.update(b"".join(parts))
        return h.hexdigest().encode()

    def check(self, signature: bytes, parts: Iterable[Any]) -> bool:
        """True when ``signature`` is right for ``parts`` (constant-time comparison)."""
        return hmac.compare_digest(signature, self.sign(parts))

    def __repr__(self) -> str:
        state = "keyed" if self._auth is not None else "unsigned"
        return f"Signer({self.signature_scheme!r}, {state})"


class DigestHistory:
    """The signatures of the last ``size`` messages received, to reject replays.

    Bounded: past ``size`` entries the oldest is forgotten (jupyter_client culls a random
    tenth instead; either way a replay of a recent message is caught). ``size`` 0 keeps
    nothing, which turns replay protection off.
    """

    __slots__ = ("_order", "_seen", "_size")

    def __init__(self, size: int = DEFAULT_DIGEST_HISTORY_SIZE) -> None:
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()
        self._size = 0
        self.size = size

    @property
    def size(self) -> int:
        return self._size

    @size.setter
    def size(self, size: int) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"digest_history_size must be an int >= 0, got {size!r}")
        self._size = size
        while len(self._order) > size:
            self._seen.discard(self._order.popleft())

    def add(self, signature: bytes) -> None:
        """Remember ``signature`` (forgetting the oldest one past ``size``)."""
        if self._size == 0 or signature in self._seen:
            return
        self._seen.add(signature)
        self._order.append(signature)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())

    def copy(self) -> DigestHistory:
        """An independent history holding the same signatures."""
        new = DigestHistory(self._size)
        new._seen = set(self._seen)
        new._order = deque(self._order)
        return new

    def clear(self) -> None:
        self._seen.clear()
        self._order.clear()

    def __contains__(self, signature: object) -> bool:
        return signature in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def __repr__(self) -> str:
        return f"DigestHistory({len(self._seen)} of {self._size})"


# -- framing --------------------------------------------------------------------------------


def _as_bytes(frame: Any, what: str) -> bytes:
    if frame.__class__ is bytes:
        return frame
    try:
        return bytes(memoryview(frame))
    except TypeError:
        raise MessageError(
            f"malformed message: a {what} frame is a {type(frame).__name__}, not bytes-like "
            f"(bytes, memoryview, zmq.Frame)"
        ) from None


def split_identities(msg_list: Sequence[Any]) -> tuple[list[bytes], list[Any]]:
    """Split a multipart message at the ``<IDS|MSG>`` delimiter.

    Returns the routing identities (as bytes) and the frames after the delimiter, which
    ``Codec.deserialize`` takes. Raises MessageError when there is no delimiter.
    """
    for i, frame in enumerate(msg_list):
        if frame.__class__ is bytes:
            found = frame == DELIM
        else:
            try:
                found = len(frame) == len(DELIM) and _as_bytes(frame, "routing") == DELIM
            except TypeError:
                raise MessageError(
                    f"frame {i} is a {type(frame).__name__}, not bytes-like"
                ) from None
        if found:
            idents = [_as_bytes(f, "routing identity") for f in msg_list[:i]]
            return idents, list(msg_list[i + 1 :])
    raise MessageError(
        f"malformed message: no {DELIM.decode()} delimiter among its {len(msg_list)} frames"
    )


def _unpack_dict(unpack: Unpacker, data: bytes, name: str) -> dict[str, Any]:
    try:
        value = unpack(data)
    except RecursionError:
        raise MessageError(f"malformed {name} frame: JSON nested too deeply") from None
    except Exception as exc:
        # A custom unpacker may raise anything; the caller only ever sees MessageError.
        raise MessageError(f"malformed {name} frame: {type(exc).__name__}: {exc}") from exc
    if value.__class__ is not dict:
        raise MessageError(
            f"malformed {name} frame: expected a JSON object, got {type(value).__name__}"
        )
    return value


def _header_dates(header: dict[str, Any], name: str) -> dict[str, Any]:
    """``extract_dates`` for a freshly unpacked header, in place: headers are flat, and
    this is on every message's path."""
    try:
        for k, v in header.items():
            if v.__class__ is str:
                if len(v) >= 19 and v[10] == "T":
                    header[k] = parse_date(v)
            elif isinstance(v, dict | list):
                header[k] = extract_dates(v)
    except RecursionError:
        raise MessageError(f"malformed {name} frame: nested too deeply") from None
    return header


class Codec:
    """Message dicts to signed frames and back, with signature and replay checks.

    ``serialize`` and ``deserialize`` have jupyter_client's signatures and results; the
    Session facade adds message building and sockets around them.
    """

    __slots__ = ("_none", "_now", "history", "pack", "signer", "unpack")

    def __init__(
        self,
        signer: Signer,
        pack: Packer = orjson_packer,
        unpack: Unpacker = orjson_unpacker,
        history: DigestHistory | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.signer = signer
        self.pack = pack
        self.unpack = unpack
        self.history = DigestHistory() if history is None else history
        self._now = now
        self._none = pack({})

    def serialize(
        self, msg: Mapping[str, Any], ident: list[bytes] | bytes | None = None
    ) -> list[bytes]:
        """The signed frames of ``msg``: ``[*ident, DELIM, signature, header,
        parent_header, metadata, content]``. Buffers are not among them: they go after
        these frames, unsigned (``Session.serialize`` and ``Session.send`` add them)."""
        pack = self.pack
        content = msg.get("content", {})
        if content is None:
            packed_content = self._none
        elif isinstance(content, dict):
            packed_content = pack(content)
        elif isinstance(content, bytes):  # already packed, as in a relayed message
            packed_content = content
        elif isinstance(content, str):
            packed_content = content.encode("utf8")
        else:
            raise TypeError(
                f"message content must be a dict, bytes or str, got {type(content).__name__}"
            )
        parts = [
            pack(msg["header"]),
            pack(msg["parent_header"]),
            pack(msg["metadata"]),
            packed_content,
        ]
        if ident is None:
            to_send = [DELIM, self.signer.sign(parts)]
        elif isinstance(ident, list):
            to_send = [*ident, DELIM, self.signer.sign(parts)]
        else:
            to_send = [ident, DELIM, self.signer.sign(parts)]
        to_send.extend(parts)
        return to_send

    def strip_identities(self, msg_list: Sequence[Any]) -> tuple[list[bytes] | None, Sequence[Any]]:
        """``(idents, frames after the delimiter)`` of a whole multipart message, or
        ``(None, msg_list)`` when ``msg_list`` already starts after the delimiter.

        Cheap for the frames after the delimiter: their first frame is a signature, of
        ``signer.signature_length`` bytes, so only a first frame of another length (the
        delimiter, a routing identity, a signature of another scheme) is looked into.
        When no delimiter is found, the frames are taken as they are and
        ``deserialize`` reports what is wrong with them.
        """
        if not msg_list:
            return None, msg_list
        first = msg_list[0]
        if first.__class__ is bytes:
            n = len(first)
        else:
            try:
                n = memoryview(first).nbytes
            except TypeError:
                return None, msg_list
        if n == self.signer.signature_length:
            return None, msg_list
        try:
            return split_identities(msg_list)
        except MessageError:
            return None, msg_list

    def deserialize(
        self, msg_list: Sequence[Any], content: bool = True, copy: bool = True
    ) -> dict[str, Any]:
        """The message dict of the frames after the delimiter.

        Checks the signature (when keyed) and that it was not seen before, then unpacks.
        ``content=False`` leaves the content frame packed (as bytes) and does not record
        the signature, for peeking. Buffers come back as memoryviews: over the received
        frames when ``copy`` is False (zero-copy), over private copies when it is True.
        Raises SignatureError (ReplayError for a repeat) or MessageError, nothing else.
        """
        n = len(msg_list)
        if n < _MIN_FRAMES:
            raise MessageError(
                f"malformed message: {n} frame(s) after the {DELIM.decode()} delimiter, "
                f"expected at least {_MIN_FRAMES} (signature, header, parent_header, "
                f"metadata, content)"
            )
        signature = _as_bytes(msg_list[0], "signature")
        parts = [_as_bytes(msg_list[i + 1], _DICT_FRAMES[i]) for i in range(4)]
        signer = self.signer
        if signer.enabled:
            if not signature:
                raise SignatureError("unsigned message: the signature frame is empty")
            if not signer.check(signature, parts):
                raise SignatureError(
                    "invalid signature: the HMAC does not match (wrong key or scheme, "
                    "or an altered frame)"
                )
            history = self.history
            if signature in history:
                raise ReplayError("duplicate signature: this message was received before")
            if content:
                history.add(signature)

        unpack = self.unpack
        raw_header = _unpack_dict(unpack, parts[0], "header")
        msg_id = raw_header.get("msg_id")
        msg_type = raw_header.get("msg_type")
        if msg_id is None or msg_type is None:
            raise MessageError("malformed header frame: msg_id and msg_type are required")
        header = _header_dates(raw_header, "header")
        if "date" not in header:
            header["date"] = self._now()
        message: dict[str, Any] = {
            "header": header,
            "msg_id": msg_id,
            "msg_type": msg_type,
            "parent_header": _header_dates(
                _unpack_dict(unpack, parts[1], "parent_header"), "parent_header"
            ),
            "metadata": _unpack_dict(unpack, parts[2], "metadata"),
            "content": _unpack_dict(unpack, parts[3], "content") if content else parts[3],
        }
        buffers = []
        for i in range(_MIN_FRAMES, n):
            frame = msg_list[i]
            if copy and frame.__class__ is not bytes:
                frame = _as_bytes(frame, "buffer")
            try:
                buffers.append(memoryview(frame))
            except TypeError:
                raise MessageError(
                    f"buffer {i - _MIN_FRAMES} is a {type(frame).__name__}, not bytes-like"
                ) from None
        message["buffers"] = buffers
        return message
