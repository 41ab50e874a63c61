"""StageSpec: one stage as defined, and the stage options that configure its actor.

The options (capacity, overflow, put_timeout, mailbox_key, restart, on_error,
shutdown_timeout) are given per stage or as pipeline-wide defaults; both are checked here so
that a bad value raises while the pipeline is built, not when it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..actors import Address, Mailbox, Overflow, Restart
from ..actors.log import REDACTED, is_secret_key
from .stage import ON_ERROR, OnError, Role, StageTimer

__all__ = [
    "STAGE_OPTIONS",
    "StageSpec",
    "check_options",
    "coerce_enum",
    "split_options",
]

STAGE_OPTIONS = (
    "capacity",
    "overflow",
    "put_timeout",
    "mailbox_key",
    "restart",
    "on_error",
    "shutdown_timeout",
)
"""Keyword arguments of ``then``/``to``/``source`` that configure the stage, not its kind."""


@dataclass
class StageSpec:
    """One stage as defined: what it runs, what feeds it, and how its actor is configured.

    ``role`` is ``"source"``, ``"operator"``, ``"sink"`` or ``"actor"`` (your own Actor
    class). ``kind`` is a kind name, a class, an instance or a function, as given.
    """

    name: str
    role: Role
    kind: Any
    params: dict[str, Any]
    inputs: list[str]
    capacity: int | None
    overflow: Overflow
    put_timeout: float | None
    mailbox_key: str | Callable[[Any], Hashable] | None
    restart: Restart
    on_error: OnError
    shutdown_timeout: float
    build: Callable[[], Any] = field(repr=False)
    external: list[Address] = field(default_factory=list)

    def __repr__(self) -> str:
        params = {k: REDACTED if is_secret_key(k) else v for k, v in self.params.items()}
        kind = (
            self.kind if isinstance(self.kind, str) else getattr(self.kind, "__name__", self.kind)
        )
        return (
            f"StageSpec({self.name!r}, role={self.role!r}, kind={kind!r}, params={params!r}, "
            f"inputs={self.inputs!r})"
        )

    def mailbox(self) -> Mailbox:
        key = None
        if self.overflow is Overflow.CONFLATE:
            if self.mailbox_key is None:
                raise ValueError(
                    f"stage {self.name!r}: overflow 'conflate' needs mailbox_key= a field name "
                    "or a function of the record (the key records are conflated on)"
                )
            key = _conflate_key(self.mailbox_key)
        return Mailbox(
            capacity=self.capacity, overflow=self.overflow, put_timeout=self.put_timeout, key=key
        )


def _conflate_key(spec: str | Callable[[Any], Hashable]) -> Callable[[Any], Hashable]:
    """A mailbox key: a record's field (or function) value; timer wake-ups keep their own
    slot; an unhashable value is conflated on its repr."""
    if isinstance(spec, str):
        name = spec

        def read(message: Any) -> Hashable:
            return message.get(name) if isinstance(message, dict) else message

    elif callable(spec):
        fn = spec

        def read(message: Any) -> Hashable:
            return message if message.__class__ is StageTimer else fn(message)

    else:
        raise TypeError(f"mailbox_key must be a field name or a function, got {spec!r}")

    def key(message: Any) -> Hashable:
        value = read(message)
        try:
            hash(value)
        except TypeError:
            return ("unhashable", repr(value))
        return value

    return key


def coerce_enum(kind: type[Any], value: Any, what: str) -> Any:
    """``value`` as a member of the enum ``kind`` (a member, or its value in any case)."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).lower())
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise ValueError(f"{what} must be one of {names}, got {value!r}") from None


def split_options(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fluent call's keywords as (stage options, parameters of the stage's kind)."""
    options = {k: v for k, v in params.items() if k in STAGE_OPTIONS}
    rest = {k: v for k, v in params.items() if k not in STAGE_OPTIONS}
    return options, rest


def check_options(owner: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError naming ``owner`` for the first stage option with a bad value."""
    capacity = options.get("capacity")
    if capacity is not None and (
        isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1
    ):
        raise ValueError(f"{owner}: capacity must be an integer >= 1 or None, got {capacity!r}")
    timeout = options.get("put_timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
    ):
        raise ValueError(f"{owner}: put_timeout must be seconds >= 0 or None, got {timeout!r}")
    on_error = options.get("on_error", "skip")
    if on_error not in ON_ERROR:
        raise ValueError(f"{owner}: on_error must be 'skip' or 'restart', got {on_error!r}")
    shutdown = options.get("shutdown_timeout", 5.0)
    if isinstance(shutdown, bool) or not isinstance(shutdown, int | float) or shutdown <= 0:
        raise ValueError(f"{owner}: shutdown_timeout must be seconds > 0, got {shutdown!r}")
    coerce_enum(Overflow, options.get("overflow", "backpressure"), f"{owner}: overflow")
    coerce_enum(Restart, options.get("restart", "permanent"), f"{owner}: restart")
