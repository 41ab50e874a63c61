"""The iopub feed: the client's ``on_iopub`` callbacks, and the actor that runs them in
order, on its own, so a slow callback stalls neither reply matching nor the channels."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...actors import Actor
from ...actors.callbacks import user_callback
from ...actors.ioloop import IOLoop
from .replies import msg_type

__all__ = ["Feed", "IopubCallback", "IopubCallbacks", "IopubFeed"]

IopubCallback = Callable[[dict[str, Any]], Any]
"""``callback(msg)`` for every iopub message; may be ``async def`` (run on the I/O loop)."""


class IopubCallbacks:
    """The registered callbacks, in order of registration. Changes swap whole tuples (under
    a lock), so the feed actor reads them without one."""

    def __init__(self, io: IOLoop) -> None:
        self._io = io
        self._lock = threading.Lock()
        # (what was registered, what the feed actor calls): an async def one runs on the
        # I/O loop.
        self._pairs: tuple[tuple[IopubCallback, IopubCallback], ...] = ()
        self._runners: tuple[IopubCallback, ...] = ()

    def update(self, callback: IopubCallback, *, remove: bool = False) -> None:
        """Register ``callback`` (once), or unregister it; TypeError if it is not callable."""
        runner = user_callback(callback, "on_iopub callback", self._io)
        with self._lock:
            if remove:
                self._pairs = tuple(p for p in self._pairs if p[0] != callback)
            elif callback not in [registered for registered, _ in self._pairs]:
                self._pairs = (*self._pairs, (callback, runner))
            self._runners = tuple(run for _, run in self._pairs)

    def runners(self) -> tuple[IopubCallback, ...]:
        """What the feed actor calls, in order."""
        return self._runners

    def __bool__(self) -> bool:
        return bool(self._runners)


@dataclass(frozen=True, slots=True)
class Feed:
    """One read's iopub messages, for the callbacks."""

    msgs: list[dict[str, Any]]


class IopubFeed(Actor):
    """Runs the ``on_iopub`` callbacks, in order, away from reply matching."""

    def __init__(self, callbacks: IopubCallbacks) -> None:
        super().__init__()
        self.callbacks = callbacks
        self.errors = 0

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, Feed):
            return super().on_receive(message)
        for msg in message.msgs:
            for callback in self.callbacks.runners():
                try:
                    callback(msg)
                except Exception as exc:  # noqa: BLE001 - a user callback must not end the feed
                    self.errors += 1
                    self.log.error(
                        "on_iopub callback raised", error=repr(exc), msg_type=msg_type(msg)
                    )
        return None
