"""q IPC frames (``?in=qipc&out=qipc``): the codec of the ``actorwire[kdb-qipc]`` extra.

Each websocket message is one binary frame holding one serialized q object, as q's ``-8!``
makes it and ``-9!`` reads it: the 8-byte header (endianness, message type, compression flag,
total length) and the object. A message is a q dictionary with the JSON message's keys
(`` `type`id`payload!(`subscribe;1j;..) ``): text as symbols, integers as longs, a list of
texts as a symbol vector, and ``payload.data`` as a q table.

The bytes are made and read by pykx (``pip install 'actorwire[kdb-qipc]'``) in unlicensed
mode, where ``toq``, ``serialize`` and ``deserialize`` work with no q licence. pykx is
imported on first use, so the JSON codec never pays for it.

Column types. A table's columns become q vectors by their values: text -> symbol,
``bytes`` -> a list of char vectors (q strings), bool -> boolean, int -> long, float -> float,
``datetime`` / ``numpy.datetime64`` / ``pandas.Timestamp`` -> timestamp; an empty column is an
empty general list. Read back: symbols and q strings are ``str``, timestamps
``pandas.Timestamp`` (nanoseconds kept), nulls as pandas gives them (``nan`` for a float).

Bad input never reaches pykx unchecked: a frame must be binary, at most ``max_size`` bytes
(uncompressed, for a compressed one), with a header whose length is the frame's; whatever
pykx then refuses is an :class:`~.protocol.UndecodableError`.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
import struct
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from .protocol import UNSUPPORTED_DATA, MessageTooBig, UndecodableError

__all__ = ["QIPC", "QipcCodec", "available", "load", "missing_reason"]

HEADER = struct.Struct("<BBBBI")
"""The IPC header: endianness (1 little), message type (0 async, 1 sync, 2 response),
compressed (0/1), reserved, total length (header included)."""

_EXTRA = "pip install 'actorwire[kdb-qipc]'"
_LICENCE_VARS = ("QLIC", "QARGS", "KDB_LICENSE_B64", "KDB_K4LICENSE_B64", "PYKX_UNLICENSED")

_kx: ModuleType | None = None
_import_lock = threading.Lock()


def available() -> bool:
    """Whether pykx is installed (qipc can be used)."""
    return _kx is not None or importlib.util.find_spec("pykx") is not None


def missing_reason() -> str:
    """Why qipc cannot be used here, for an error message."""
    return f"qipc messages need pykx, which is not installed: {_EXTRA}"


def load() -> None:
    """Import pykx now (ImportError saying what to install when it is missing), so that
    the first message does not wait for it."""
    _pykx()


def _pykx() -> ModuleType:
    """pykx, imported once; unlicensed unless the environment names a licence."""
    global _kx
    kx = _kx
    if kx is not None:
        return kx
    with _import_lock:
        if _kx is None:
            if not any(os.environ.get(name) for name in _LICENCE_VARS):
                # Serializing needs no licence; this also skips pykx's search for one.
                os.environ["PYKX_UNLICENSED"] = "true"
            try:
                import pykx  # noqa: PLC0415 - optional, and slow to import
            except ImportError as exc:
                raise ImportError(missing_reason()) from exc
            _kx = pykx
        return _kx


# --------------------------------------------------------------------------- encoding


def _is_time(value: object) -> bool:
    import numpy as np  # noqa: PLC0415 - pykx brings numpy

    return isinstance(value, _dt.datetime | np.datetime64)


def _vector(values: list[Any]) -> Any:
    """A homogeneous list as a typed q vector (symbol, boolean, long, float), else the list."""
    kx = _pykx()
    if not values:
        return values
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return kx.SymbolVector(values)
    if kinds == {bool}:
        return kx.BooleanVector(values)
    if kinds == {int}:
        return kx.LongVector(values)
    if kinds <= {int, float} and float in kinds:
        return kx.FloatVector([float(v) for v in values])
    return [_to_q(v) for v in values]


def _column(name: str, values: list[Any]) -> Any:
    """One table column for pandas (which pykx turns into the q vector)."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    if not values:
        return pd.Series([], dtype=object)
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return pd.Series(values, dtype=object)
    if kinds == {bytes}:
        return pd.Series(values, dtype=object)
    if kinds == {bool}:
        return np.array(values, dtype=bool)
    if kinds == {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            raise ValueError(f"kdb qipc: column {name!r} holds an int beyond 64 bits") from None
    if kinds <= {int, float}:
        return np.array(values, dtype=np.float64)
    if all(_is_time(v) for v in values):
        return pd.to_datetime(pd.Series(values, dtype=object), utc=False).astype("datetime64[ns]")
    shown = sorted(k.__name__ for k in kinds)
    raise TypeError(f"kdb qipc: column {name!r} mixes value types {shown}; a column has one type")


def _table(data: Mapping[str, list[Any]]) -> Any:
    import pandas as pd  # noqa: PLC0415

    kx = _pykx()
    if not data:
        raise ValueError("kdb qipc: a table needs at least one column")
    frame = pd.DataFrame({name: _column(name, values) for name, values in data.items()})
    return kx.toq(frame)


def _to_q(value: Any) -> Any:
    kx = _pykx()
    if isinstance(value, dict):
        return kx.toq({str(k): _to_q(v) for k, v in value.items()})
    if isinstance(value, list):
        return _vector(value)
    if isinstance(value, bytes):
        return kx.CharVector(value.decode("latin-1"))
    return value


def _message_to_q(obj: dict[str, Any]) -> Any:
    kx = _pykx()
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "payload" and isinstance(value, dict):
            payload: dict[str, Any] = {}
            for pkey, pvalue in value.items():
                payload[pkey] = _table(pvalue) if pkey == "data" else _to_q(pvalue)
            out[key] = kx.toq(payload)
        else:
            out[key] = _to_q(value)
    return kx.toq(out)


# --------------------------------------------------------------------------- decoding


def _check_header(data: bytes, max_size: int) -> None:
    n = len(data)
    if n > max_size:
        raise MessageTooBig(f"a frame of {n} bytes is over the limit of {max_size} bytes")
    if n < HEADER.size + 1:
        raise UndecodableError(f"not a q IPC message: {n} bytes, less than a header and a type")
    endian, kind, compressed, _, length = HEADER.unpack_from(data)
    if endian != 1:
        raise UndecodableError(
            f"not a q IPC message: byte 0 is {endian}; only little-endian (1) is read"
        )
    if kind > 2 or compressed > 1:
        raise UndecodableError(
            f"not a q IPC message: header bytes 1-2 are {kind}, {compressed} "
            "(message type 0-2, compression flag 0-1)"
        )
    if length != n:
        raise UndecodableError(f"not a q IPC message: its header says {length} bytes, it has {n}")
    if compressed:
        if n < HEADER.size + 4:
            raise UndecodableError("not a q IPC message: compressed, with no uncompressed length")
        (whole,) = struct.unpack_from("<I", data, HEADER.size)
        if whole > max_size:
            raise MessageTooBig(
                f"a compressed frame of {whole} bytes uncompressed is over the limit "
                f"of {max_size} bytes"
            )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _table_from_q(table: Any) -> dict[str, list[Any]]:
    frame = table.pd()
    out: dict[str, list[Any]] = {}
    for name in frame.columns:
        values = frame[name].tolist()
        if values and any(type(v) is bytes for v in values):
            values = [_text(v) if type(v) is bytes else v for v in values]
        out[str(name)] = values
    return out


def _from_q(obj: Any) -> Any:
    kx = _pykx()
    if isinstance(obj, kx.Dictionary):
        keys = obj.keys().py()
        return {
            (_text(k) if type(k) is bytes else k): _from_q(v)
            for k, v in zip(keys, obj.values(), strict=True)
        }
    if isinstance(obj, kx.KeyedTable):
        return _table_from_q_frame(obj.pd().reset_index())
    if isinstance(obj, kx.Table):
        return _table_from_q(obj)
    if isinstance(obj, kx.CharVector | kx.CharAtom):
        return _text(obj.py())
    if isinstance(obj, kx.List):
        return [_from_q(item) for item in obj]
    value = obj.py()
    if type(value) is bytes:
        return _text(value)
    return value


def _table_from_q_frame(frame: Any) -> dict[str, list[Any]]:
    return {str(name): frame[name].tolist() for name in frame.columns}


class QipcCodec:
    """q IPC binary frames (see the module's docstring)."""

    name: str = "qipc"
    binary: bool = True

    def __repr__(self) -> str:
        return "QIPC"

    def dumps(self, obj: dict[str, Any]) -> bytes:
        kx = _pykx()
        try:
            message = _message_to_q(obj)
            return bytes(kx.serialize(message, mode=6, wait=0))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"kdb: a message is not q IPC: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - pykx's own errors (QError, ...)
            raise ValueError(f"kdb: a message is not q IPC: {type(exc).__name__}: {exc}") from None

    def loads(self, frame: str | bytes, max_size: int) -> Any:
        if isinstance(frame, str):
            raise UndecodableError(
                "a text frame on a qipc connection: qipc messages are binary frames",
                close_code=UNSUPPORTED_DATA,
            )
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise TypeError(f"kdb: a frame must be str or bytes, got {type(frame).__name__}")
        data = bytes(frame)
        _check_header(data, max_size)
        kx = _pykx()
        problem = ""
        try:
            return _from_q(kx.deserialize(data))
        except Exception as exc:  # noqa: BLE001 - pykx: QError, SystemError, UnicodeDecodeError..
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise UndecodableError(f"not a q IPC message pykx can read: {problem}")


QIPC = QipcCodec()
"""The q IPC codec (``?in=qipc&out=qipc``)."""
