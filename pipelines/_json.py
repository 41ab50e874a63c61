"""JSON for records: orjson when it is installed (several times faster), else the standard
library, with the same behaviour the sinks and sources rely on: ``dumps`` returns bytes and
raises TypeError on a value it cannot encode, ``loads`` raises ValueError on bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "dumps_line", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by the runtime-only install test
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
        try:
            if default is None:
                return _encode(value).encode()
            return json.dumps(
                value, default=default, ensure_ascii=False, separators=(",", ":")
            ).encode()
        except ValueError as exc:  # a circular reference: a value JSON cannot hold
            raise TypeError(str(exc)) from None

    def dumps_line(value: Any) -> bytes:
        return dumps(value) + b"\n"

    def loads(data: bytes | str) -> Any:
        return json.loads(data)

else:

    def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
        return orjson.dumps(value, default=default)

    def dumps_line(value: Any) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)
