"""The Session facade: the Jupyter ``Session`` API over the sans-I/O ``Codec``.

``Session`` builds message dicts (``msg``), turns them into signed frames and back
(``serialize``, ``deserialize``, ``feed_identities``) and moves them over ZMQ sockets
(``send``, ``recv``; ``asend``, ``arecv`` for zmq.asyncio sockets). Names and arguments
are those of jupyter_client's Session, and the frames on the wire are the same, so either
end can be jupyter_client; what differs in behaviour is listed in the class docstring.
"""

from __future__ import annotations

import itertools
import os
import pprint
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from importlib import import_module
from typing import Any

import structlog
import zmq
import zmq.asyncio

from ...actors.log import REDACTED
from .protocol import (
    DEFAULT_DIGEST_HISTORY_SIZE,
    DEFAULT_SIGNATURE_SCHEME,
    DELIM,
    PROTOCOL_VERSION,
    Codec,
    DigestHistory,
    Packer,
    Signer,
    Unpacker,
    json_packer,
    json_unpacker,
    orjson_packer,
    orjson_unpacker,
    split_identities,
    squash_dates,
    utcnow,
)

__all__ = [
    "DELIM",
    "Message",
    "Session",
    "SessionFactory",
    "extract_header",
    "msg_header",
    "new_id",
    "new_id_bytes",
]

log = structlog.get_logger("actorwire.jupyter.session")

_PACKERS: dict[str, tuple[Packer, Unpacker]] = {
    "orjson": (orjson_packer, orjson_unpacker),
    "json": (json_packer, json_unpacker),
}

# What ``send`` returns as the tracker when nothing is sent zero-copy: already done.
DONE = zmq.MessageTracker()

# What the ROUTER/DEALER/... routing identities of a received message are stored under.
IDENTS = "idents"


def new_id() -> str:
    """A new random id: 16 random bytes as hex, split 8-24 by a dash (jupyter_client's form)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:]}"


def new_id_bytes() -> bytes:
    """``new_id()`` as ASCII bytes (a fresh signing key, for instance)."""
    return new_id().encode("ascii")


def msg_header(
    msg_id: str,
    msg_type: str,
    username: str,
    session: str,
    date: datetime | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """A message header; ``date`` defaults to now (UTC), ``version`` to ``PROTOCOL_VERSION``."""
    return {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "username": username,
        "session": session,
        "date": utcnow() if date is None else date,
        "version": PROTOCOL_VERSION if version is None else version,
    }


def extract_header(msg_or_header: Any) -> dict[str, Any]:
    """The header of a message, or the argument itself if it is a header; ``{}`` for none.

    Raises KeyError when the argument is neither (no ``header`` and no ``msg_id`` key).
    """
    if not msg_or_header:
        return {}
    try:
        h = msg_or_header["header"]
    except KeyError:
        try:
            msg_or_header["msg_id"]
        except KeyError:
            raise KeyError(
                "extract_header: expected a message (with 'header') or a header (with 'msg_id')"
            ) from None
        h = msg_or_header
    if isinstance(h, Message):
        return h.to_dict()
    return h if isinstance(h, dict) else dict(h)


class Message:
    """Attribute access to a message dict: ``Message(msg).header.msg_type``.

    Nested dicts become Messages too; ``dict(m)`` gives the top level back and
    ``m.to_dict()`` the whole tree as plain dicts.
    """

    def __init__(self, msg_dict: Mapping[str, Any]) -> None:
        d = self.__dict__
        for k, v in dict(msg_dict).items():
            d[k] = Message(v) if isinstance(v, dict) else v

    @property
    def header(self) -> Any:
        return self._field("header")

    @property
    def parent_header(self) -> Any:
        return self._field("parent_header")

    @property
    def metadata(self) -> Any:
        return self._field("metadata")

    @property
    def content(self) -> Any:
        return self._field("content")

    @property
    def buffers(self) -> list[memoryview]:
        """The message's binary buffers (``[]`` when it has none)."""
        return self.__dict__.get("buffers", [])  # type: ignore[no-any-return]

    def _field(self, name: str) -> Any:
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"message has no {name!r}") from None

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not in the message (keys are instance attributes).
        raise AttributeError(f"message has no {name!r}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The message as plain nested dicts."""
        return {k: v.to_dict() if isinstance(v, Message) else v for k, v in self.__dict__.items()}

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        # Items, not keys: this is what makes dict(message) work.
        return iter(self.__dict__.items())

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __repr__(self) -> str:
        return repr(self.__dict__)

    def __str__(self) -> str:
        return pprint.pformat(self.__dict__)


def _import_callable(name: str, what: str) -> Callable[[Any], Any]:
    module, _, attr = name.rpartition(".")
    try:
        fn = getattr(import_module(module), attr) if module else None
    except (ImportError, AttributeError):
        fn = None
    if not callable(fn):
        raise ValueError(
            f"{what} must be 'orjson', 'json' or the import path of a callable, got {name!r}"
        )
    return fn  # type: ignore[no-any-return]


def _named(name: str, what: str) -> tuple[Packer | None, Unpacker | None]:
    """The (pack, unpack) pair of a known name, or the one imported function of a path."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a name (str), got {type(name).__name__}")
    if name in _PACKERS:
        return _PACKERS[name]
    fn = _import_callable(name, what)
    return (fn, None) if what == "packer" else (None, fn)


def _check_packers(pack: Packer, unpack: Unpacker) -> Packer:
    """``pack`` checked against ``unpack``; wrapped to squash dates if it cannot pack them."""
    sample = {"a": [1, "hi"]}
    try:
        packed = pack(sample)
    except Exception as exc:
        raise ValueError(f"packer could not serialize a simple message: {exc}") from exc
    if not isinstance(packed, bytes):
        raise ValueError(f"packer returned {type(packed).__name__}, but bytes are required")
    try:
        ok = unpack(packed) == sample
    except Exception as exc:
        raise ValueError(f"unpacker could not read the packer's output: {exc}") from exc
    if not ok:
        raise ValueError("unpacker is not the inverse of packer")
    try:
        pack({"t": utcnow()})
    except (TypeError, ValueError, OverflowError):
        # A packer without datetime support gets ISO strings, as jupyter_client does.
        return lambda obj: pack(squash_dates(obj))
    return pack


def _frame_writer(stream: Any) -> Any:
    """The sync socket to write to: zmq.asyncio sockets are shadowed by a sync one."""
    if isinstance(stream, zmq.asyncio.Socket):
        return zmq.Socket.shadow(stream.underlying)
    return stream


def _buffer_error(i: int, buf: Any) -> TypeError:
    return TypeError(
        f"buffer {i} is a {type(buf).__name__}; buffers must support the buffer "
        f"protocol (bytes, memoryview, numpy array, ...)"
    )


def _buffer_frames(buffers: Sequence[Any]) -> list[bytes]:
    """The buffers of a message as bytes frames (bytes as they are, others copied)."""
    frames = []
    for i, buf in enumerate(buffers):
        if buf.__class__ is bytes:
            frames.append(buf)
            continue
        try:
            frames.append(memoryview(buf).tobytes())
        except TypeError:
            raise _buffer_error(i, buf) from None
    return frames


def _check_buffers(buffers: Sequence[Any]) -> list[memoryview]:
    views = []
    for i, buf in enumerate(buffers):
        try:
            view = buf if isinstance(buf, memoryview) else memoryview(buf)
        except TypeError:
            raise _buffer_error(i, buf) from None
        if not view.contiguous:
            raise ValueError(f"buffer {i} is not contiguous (zmq sends contiguous memory)")
        views.append(view)
    return views


class Session:
    """Builds, signs, sends, receives and checks Jupyter messages.

    Keyword arguments are jupyter_client's: ``session`` (id, default a new one),
    ``username`` (default ``$USER``), ``key`` (bytes; default a fresh random key like
    jupyter_client; ``b""`` turns signing off), ``keyfile``, ``signature_scheme``
    (``hmac-<any hashlib hash>``), ``packer``/``unpacker`` (``"orjson"``, ``"json"`` or an
    import path), ``pack``/``unpack`` (callables), ``metadata`` (default metadata of every
    message), ``digest_history_size``, ``check_pid`` and ``copy_threshold``.

    Behaviour (where it is not jupyter_client's, the frames on the wire still are):

    - ``recv(socket)`` blocks by default and returns the message dict; with
      ``mode=zmq.NOBLOCK`` and nothing waiting it raises ``zmq.Again``. The routing
      identities are in the dict under ``"idents"`` (an actorwire addition; ``[]`` on
      DEALER, SUB, PULL), so a ROUTER replies with ``ident=msg["idents"]``.
    - ``send`` returns a ``zmq.MessageTracker`` (None when nothing was sent); a message
      dict passed in also gets it as ``msg["tracker"]``.
    - ``msg(..., buffers=[...])`` puts the buffers in the message (``msg["buffers"]``);
      ``serialize`` appends a message's buffers after the signed frames.
    - ``deserialize`` takes the frames after the ``<IDS|MSG>`` delimiter or a whole
      message with the delimiter (and routing identities) in front.
    - Errors in received messages are ``MessageError`` / ``SignatureError`` /
      ``ReplayError`` (all ValueError), an unknown scheme raises ValueError, protocol 4
      messages are not adapted, and ``asend``/``arecv`` serve zmq.asyncio sockets. There
      is no traitlets configuration. The key never appears in a repr, log line or error.
    """

    def __init__(
        self,
        *,
        session: str | None = None,
        username: str | None = None,
        key: bytes | str | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        signature_scheme: str = DEFAULT_SIGNATURE_SCHEME,
        packer: str = "orjson",
        unpacker: str | None = None,
        pack: Packer | None = None,
        unpack: Unpacker | None = None,
        metadata: Mapping[str, Any] | None = None,
        digest_history_size: int = DEFAULT_DIGEST_HISTORY_SIZE,
        check_pid: bool = True,
        copy_threshold: int = 2**16,
    ) -> None:
        if keyfile:
            with open(keyfile, "rb") as f:
                key = f.read().strip()
        self._key = new_id_bytes() if key is None else _key_bytes(key)
        named_pack, named_unpack = _named(packer, "packer")
        if unpacker is not None:
            named_unpack = _named(unpacker, "unpacker")[1]
        self._packer = packer
        self._unpacker = unpacker or (packer if packer in _PACKERS else "orjson")
        custom = pack is not None or unpack is not None or named_pack is not orjson_packer
        pack = pack or named_pack or orjson_packer
        unpack = unpack or named_unpack or orjson_unpacker
        if custom:
            pack = _check_packers(pack, unpack)
        self._codec = Codec(
            Signer(self._key, signature_scheme),
            pack,
            unpack,
            DigestHistory(digest_history_size),
        )
        self.session = new_id() if session is None else session
        self.username: str = os.environ.get("USER", "username") if username is None else username
        self.metadata: dict[str, Any] = {} if metadata is None else dict(metadata)
        self.check_pid = check_pid
        self.copy_threshold = copy_threshold
        self.pid = os.getpid()
        # next() on an itertools.count is atomic: threads building messages at once never
        # share a msg_id.
        self._ids = itertools.count()
        self.message_count = 0
        if not self._key:
            log.warning("jupyter message signing is disabled: insecure, not recommended")

    # -- configuration ------------------------------------------------------------------

    @property
    def session(self) -> str:
        """The id of this session (in every header it writes)."""
        return self._session

    @session.setter
    def session(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"session must be a str, got {type(value).__name__}")
        self._session = value
        self.bsession = value.encode("ascii")

    @property
    def key(self) -> bytes:
        """The HMAC key (``b""``: unsigned). Setting it re-keys the signer."""
        return self._key

    @key.setter
    def key(self, value: bytes | str) -> None:
        key = _key_bytes(value)
        self._codec.signer = Signer(key, self._codec.signer.signature_scheme)
        self._key = key

    @property
    def signature_scheme(self) -> str:
        """``hmac-<hashlib name>``; setting an unknown one raises ValueError."""
        return self._codec.signer.signature_scheme

    @signature_scheme.setter
    def signature_scheme(self, value: str) -> None:
        self._codec.signer = Signer(self._key, value)

    @property
    def packer(self) -> str:
        """Name of the packer: ``"orjson"``, ``"json"`` or an import path."""
        return self._packer

    @packer.setter
    def packer(self, name: str) -> None:
        # A known name sets both functions, an import path only the packer (jupyter_client).
        pack, unpack = _named(name, "packer")
        self.pack = pack or self.pack
        self._packer = name
        if unpack is not None:
            self.unpack, self._unpacker = unpack, name

    @property
    def unpacker(self) -> str:
        """Name of the unpacker: ``"orjson"``, ``"json"`` or an import path."""
        return self._unpacker

    @unpacker.setter
    def unpacker(self, name: str) -> None:
        pack, unpack = _named(name, "unpacker")
        self.unpack = unpack or self.unpack
        self._unpacker = name
        if pack is not None:
            self.pack, self._packer = pack, name

    @property
    def pack(self) -> Packer:
        """The function that turns a dict into bytes."""
        return self._codec.pack

    @pack.setter
    def pack(self, fn: Packer) -> None:
        self._codec.pack = fn
        self._codec._none = fn({})

    @property
    def unpack(self) -> Unpacker:
        """The function that turns bytes into a dict."""
        return self._codec.unpack

    @unpack.setter
    def unpack(self, fn: Unpacker) -> None:
        self._codec.unpack = fn

    @property
    def digest_history(self) -> DigestHistory:
        """Signatures already received (replays of them are rejected)."""
        return self._codec.history

    @property
    def digest_history_size(self) -> int:
        return self._codec.history.size

    @digest_history_size.setter
    def digest_history_size(self, size: int) -> None:
        self._codec.history.size = size

    def clone(self) -> Session:
        """A new Session with the same settings and a copy of the digest history.

        For a second connection to the same kernel: the two no longer share the history.
        """
        new = Session(
            session=self.session,
            username=self.username,
            key=self._key,
            signature_scheme=self.signature_scheme,
            metadata=self.metadata,
            digest_history_size=self.digest_history_size,
            check_pid=self.check_pid,
            copy_threshold=self.copy_threshold,
        )
        new._packer, new._unpacker = self._packer, self._unpacker
        new._codec.pack, new._codec.unpack = self._codec.pack, self._codec.unpack
        new._codec._none = self._codec._none
        new._codec.history = self._codec.history.copy()
        return new

    def __repr__(self) -> str:
        key = REDACTED if self._key else "none (unsigned)"
        return (
            f"Session(session={self._session!r}, username={self.username!r}, "
            f"signature_scheme={self.signature_scheme!r}, key={key})"
        )

    # -- building messages --------------------------------------------------------------

    @property
    def msg_id(self) -> str:
        """A new message id: ``<session>_<pid>_<counter>``."""
        n = next(self._ids)
        self.message_count = n + 1
        return f"{self._session}_{os.getpid()}_{n}"

    def msg_header(self, msg_type: str) -> dict[str, Any]:
        """A new header of this session for ``msg_type``."""
        return msg_header(self.msg_id, msg_type, self.username, self._session)

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Mapping[str, Any] | Message | None = None,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """A message dict (``header``, ``msg_id``, ``msg_type``, ``parent_header``,
        ``content``, ``metadata``; ``buffers``, a list, when buffers are given).

        ``parent`` is a message or header it replies to; ``metadata`` is merged over the
        session's. Buffers are anything with the buffer protocol (bytes, numpy arrays).
        """
        if header is None:
            n = next(self._ids)
            self.message_count = n + 1
            header = {
                "msg_id": f"{self._session}_{os.getpid()}_{n}",
                "msg_type": msg_type,
                "username": self.username,
                "session": self._session,
                "date": utcnow(),
                "version": PROTOCOL_VERSION,
            }
        md = self.metadata.copy()
        if metadata is not None:
            md.update(metadata)
        msg: dict[str, Any] = {
            "header": header,
            "msg_id": header["msg_id"],
            "msg_type": header["msg_type"],
            "parent_header": {} if parent is None else extract_header(parent),
            "content": {} if content is None else content,
            "metadata": md,
        }
        if buffers is not None:
            msg["buffers"] = list(buffers)
        return msg

    def sign(self, msg_list: Sequence[Any]) -> bytes:
        """Hex HMAC of the four packed dict frames (``b""`` when unsigned)."""
        return self._codec.signer.sign(msg_list)

    # -- frames ---------------------------------------------------------------------------

    def serialize(
        self, msg: Mapping[str, Any] | Message, ident: list[bytes] | bytes | None = None
    ) -> list[bytes]:
        """``[*ident, DELIM, signature, header, parent_header, metadata, content,
        *buffers]``: the frames of a multipart message.

        The message's ``buffers`` (if any) come last, unsigned, as bytes: the frames
        ``send`` writes for it.
        """
        if isinstance(msg, Message):
            msg = msg.to_dict()
        frames = self._codec.serialize(msg, ident)
        buffers = msg.get("buffers")
        if buffers:
            frames.extend(_buffer_frames(buffers))
        return frames

    def deserialize(
        self, msg_list: Sequence[Any], content: bool = True, copy: bool = True
    ) -> dict[str, Any]:
        """The message dict of a multipart message's frames.

        ``msg_list`` is either the frames after the ``<IDS|MSG>`` delimiter (what
        ``feed_identities`` returns) or the whole message, delimiter and routing
        identities included (what ``serialize`` returns); in the second form the
        identities are returned under ``"idents"``. The forms are told apart by the first
        frame's length, so a first routing identity exactly as long as a signature (64
        bytes for hmac-sha256) is taken for one: split such messages with
        ``feed_identities`` first.

        Verifies the signature and rejects a replay; raises MessageError, SignatureError
        or ReplayError (all ValueError) for anything wrong. Buffers are memoryviews, under
        ``"buffers"``.
        """
        codec = self._codec
        idents, rest = codec.strip_identities(msg_list)
        msg = codec.deserialize(rest, content, copy)
        if idents is not None:
            msg[IDENTS] = idents
        return msg

    def feed_identities(
        self, msg_list: Sequence[Any], copy: bool = True
    ) -> tuple[list[bytes], list[Any]]:
        """Split routing identities (bytes) from the rest of a multipart message.

        Takes bytes or zmq.Frames whatever ``copy`` says; raises MessageError (a
        ValueError, as in jupyter_client) when there is no ``<IDS|MSG>`` delimiter.
        """
        return split_identities(msg_list)

    # -- sockets --------------------------------------------------------------------------

    def _prepare(
        self,
        msg_or_type: Mapping[str, Any] | Message | str,
        content: dict[str, Any] | None,
        parent: Mapping[str, Any] | Message | None,
        ident: list[bytes] | bytes | None,
        buffers: Sequence[Any] | None,
        header: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], list[bytes], list[memoryview]] | None:
        if isinstance(msg_or_type, Message):
            msg_or_type = msg_or_type.to_dict()
        if isinstance(msg_or_type, str):
            msg = self.msg(msg_or_type, content, parent, header, metadata)
        else:
            # A message built before (or received, for relaying): sent as it is.
            msg = msg_or_type if isinstance(msg_or_type, dict) else dict(msg_or_type)
            buffers = buffers or msg.get("buffers", [])
        if self.check_pid and os.getpid() != self.pid:
            log.warning("refusing to send a jupyter message from a forked process", pid=self.pid)
            return None
        views = _check_buffers(buffers) if buffers else []
        return msg, self._codec.serialize(msg, ident), views

    def send(
        self,
        socket: Any,
        msg_or_type: Mapping[str, Any] | Message | str,
        content: dict[str, Any] | None = None,
        parent: Mapping[str, Any] | Message | None = None,
        ident: list[bytes] | bytes | None = None,
        buffers: Sequence[Any] | None = None,
        track: bool = False,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> zmq.MessageTracker | None:
        """Build (unless given a message), sign and send a message on a zmq socket.

        ``socket`` is a zmq.Socket (a zmq.asyncio socket is written through a sync
        shadow; ``asend`` awaits instead) or anything with ``send_multipart``.
        ``msg_or_type`` is a message type (the message is built with ``msg``) or a
        message dict (or Message) to send as it is, its ``buffers`` included unless
        ``buffers`` is given. Buffers go as extra frames, those of ``copy_threshold``
        bytes or more without a copy.

        Returns a MessageTracker, done when zmq has released the zero-copy buffers
        (``track=True``) and else already done; a message dict passed in also gets it as
        ``msg["tracker"]``. Returns None when nothing was sent: in a forked child
        (``check_pid``), or when ``socket`` is None (the message is only built and
        checked).
        """
        prepared = self._prepare(msg_or_type, content, parent, ident, buffers, header, metadata)
        if prepared is None:
            return None
        msg, frames, views = prepared
        writer = _frame_writer(socket)
        if isinstance(writer, zmq.Socket):
            tracker = self._write(writer, frames, views, track)
        elif writer is not None:  # e.g. a ZMQStream
            writer.send_multipart([*frames, *views])
            tracker = DONE
        else:
            return None
        if msg is msg_or_type:
            msg["tracker"] = tracker
        return tracker

    def _write(
        self, socket: zmq.Socket[Any], frames: list[bytes], views: list[memoryview], track: bool
    ) -> zmq.MessageTracker:
        # One send per frame rather than send_multipart: it type-checks every frame in
        # Python and goes through the sugar layer, about 3x slower for these small frames.
        send = socket.send
        more = zmq.SNDMORE
        if not views:
            for i in range(len(frames) - 1):
                send(frames[i], more)
            send(frames[-1])
            return DONE
        for frame in frames:
            send(frame, more)
        trackers = []
        last = len(views) - 1
        threshold = self.copy_threshold
        for i, view in enumerate(views):
            flags = more if i < last else 0
            if view.nbytes >= threshold:
                tracker = send(view, flags, copy=False, track=track)
                if track:
                    trackers.append(tracker)
            else:
                send(view, flags)
        return zmq.MessageTracker(*trackers) if trackers else DONE

    def send_raw(
        self,
        stream: Any,
        msg_list: Sequence[Any],
        flags: int = 0,
        copy: bool = True,
        ident: list[bytes] | bytes | None = None,
    ) -> None:
        """Sign and send already packed frames ``[header, parent_header, metadata,
        content, *buffers]`` (relaying a message without unpacking it)."""
        if ident is None:
            to_send: list[Any] = [DELIM]
        elif isinstance(ident, list):
            to_send = [*ident, DELIM]
        else:
            to_send = [ident, DELIM]
        to_send.append(self._codec.signer.sign(msg_list[:4]))
        to_send.extend(msg_list)
        _frame_writer(stream).send_multipart(to_send, flags, copy=copy)

    def recv(
        self,
        socket: Any,
        mode: int = 0,
        content: bool = True,
        copy: bool = True,
    ) -> dict[str, Any]:
        """Receive, verify and unpack one message: the message dict.

        ``mode`` is a zmq recv flag: 0 (the default) waits for a message (up to the
        socket's ``rcvtimeo``), ``zmq.NOBLOCK`` does not; either way ``zmq.Again`` is
        raised when no message came. The routing identities are in the dict under
        ``"idents"`` (bytes; ``[]`` on DEALER, SUB, PULL): reply on a ROUTER with
        ``ident=msg["idents"]``. ``copy=False`` keeps the buffers as views of the
        received zmq frames; ``content=False`` leaves the content packed.
        Raises MessageError / SignatureError / ReplayError for a bad message.
        """
        if isinstance(socket, zmq.asyncio.Socket):
            socket = zmq.Socket.shadow(socket.underlying)
        elif not isinstance(socket, zmq.Socket) and hasattr(socket, "socket"):
            socket = socket.socket  # a ZMQStream
        recv = socket.recv
        frame = recv(mode, copy=False)
        # Frames, not bytes: each knows whether more follow, which saves a getsockopt
        # per frame, and buffers stay in zmq's memory. The rest of a multipart message
        # is there once its first frame is.
        frames = [frame]
        while frame.more:
            frame = recv(0, copy=False)
            frames.append(frame)
        idents, msg_list = split_identities(frames)
        msg = self._codec.deserialize(msg_list, content, copy)
        msg[IDENTS] = idents
        return msg

    async def asend(
        self,
        socket: zmq.asyncio.Socket,
        msg_or_type: Mapping[str, Any] | Message | str,
        content: dict[str, Any] | None = None,
        parent: Mapping[str, Any] | Message | None = None,
        ident: list[bytes] | bytes | None = None,
        buffers: Sequence[Any] | None = None,
        track: bool = False,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> zmq.MessageTracker | None:
        """``send`` for a zmq.asyncio socket: waits (without blocking the loop) until zmq
        has taken the message. Returns the tracker as ``send`` does (None when nothing
        was sent)."""
        prepared = self._prepare(msg_or_type, content, parent, ident, buffers, header, metadata)
        if prepared is None:
            return None
        msg, frames, views = prepared
        big = any(v.nbytes >= self.copy_threshold for v in views)
        sent = await socket.send_multipart([*frames, *views], copy=not big, track=track and big)
        tracker = sent if track and big and sent is not None else DONE
        if msg is msg_or_type:
            msg["tracker"] = tracker
        return tracker

    async def arecv(
        self, socket: zmq.asyncio.Socket, content: bool = True, copy: bool = True
    ) -> dict[str, Any]:
        """``recv`` for a zmq.asyncio socket: waits for the next message and returns its
        dict, routing identities under ``"idents"``.

        Use ``asyncio.wait_for`` for a deadline. Raises as ``recv`` does.
        """
        frames = await socket.recv_multipart(copy=False)
        idents, msg_list = split_identities(frames)
        msg = self._codec.deserialize(msg_list, content, copy)
        msg[IDENTS] = idents
        return msg


def _key_bytes(key: bytes | str) -> bytes:
    if isinstance(key, str):
        return key.encode("utf8")
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise TypeError(f"key must be bytes or str, got {type(key).__name__}")


class SessionFactory:
    """Base class for objects that own a Session (and use a zmq Context).

    ``session`` is used as given; without one, the other keyword arguments build it.
    ``context`` defaults to the process-wide ``zmq.Context.instance()``.
    """

    def __init__(
        self,
        session: Session | None = None,
        context: zmq.Context[Any] | None = None,
        **session_kwargs: Any,
    ) -> None:
        self.session: Session = Session(**session_kwargs) if session is None else session
        self._context = context

    @property
    def context(self) -> zmq.Context[Any]:
        if self._context is None:
            self._context = zmq.Context.instance()
        return self._context
