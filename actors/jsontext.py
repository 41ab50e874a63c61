"""JSON values in error messages, and a strict JSON decoder: what the protocol cores that
speak JSON (stream-sea, kdb) share.

- :func:`json_kind` names a value's JSON type in words (``"an object"``), for messages
  that must not show the value itself;
- :func:`show` gives a value for a message, shortened (arrays and objects by kind only);
- :data:`STRICT_JSON` decodes JSON as the standard has it: ``NaN`` and ``Infinity``, which
  Python's json takes, raise :class:`NotJson` (a ValueError).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["STRICT_JSON", "NotJson", "json_kind", "show"]


def json_kind(value: object) -> str:
    """The JSON type of ``value`` in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def show(value: object) -> str:
    """``value`` for an error message, shortened; arrays and objects by kind only."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a very large integer"
    if value is None or isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return json_kind(value)


class NotJson(ValueError):
    """NaN or Infinity: Python's json takes them, JSON has no such values."""


def _no_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value")


STRICT_JSON = json.JSONDecoder(parse_constant=_no_constant)
"""A decoder refusing NaN and Infinity (``.decode``, ``.raw_decode``)."""
