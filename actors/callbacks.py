"""User callbacks: plain functions run where they are called; ``async def`` ones run on the
system's I/O loop; anything else is refused at once. Never a coroutine created and silently
not run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from .ioloop import IOLoop

__all__ = ["is_async_callable", "plain_callback", "user_callback"]

log = structlog.get_logger("actorwire.callbacks")


def is_async_callable(fn: object) -> bool:
    """True for an ``async def`` function, a partial of one, or an object whose
    ``__call__`` is one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - the method itself is what we check
    return call is not None and inspect.iscoroutinefunction(call)


def user_callback(fn: object, what: str, io: IOLoop) -> Callable[..., Any]:
    """``fn`` ready to call from an actor: a plain callable as it is; an ``async def`` one
    as a plain function that schedules it on ``io`` (its exceptions logged with ``what``);
    TypeError naming ``what`` for anything that is not callable."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, got {fn!r}")
    if not is_async_callable(fn):
        return fn
    return _InOrder(fn, what, io)


class _InOrder:
    """Runs an ``async def`` callback on the I/O loop one call after another, in the order
    the calls were made (each awaited before the next starts)."""

    def __init__(self, fn: Any, what: str, io: IOLoop) -> None:
        self._fn = fn
        self._what = what
        self._io = io
        self._pending: deque[tuple[Any, ...]] = deque()
        self._task: asyncio.Task[None] | None = None

    def __call__(self, *args: Any) -> None:
        self._io.call_soon(self._enqueue, args)

    def _enqueue(self, args: tuple[Any, ...]) -> None:  # on the loop
        self._pending.append(args)
        if self._task is None:
            self._task = self._io.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                args = self._pending.popleft()
                try:
                    await self._fn(*args)
                except Exception as exc:  # noqa: BLE001 - a user callback must not stop the rest
                    log.error("async callback raised", callback=self._what, error=repr(exc))
        finally:
            self._task = None


def plain_callback(fn: object, what: str) -> Callable[..., Any]:
    """``fn`` where only a plain (synchronous) callable makes sense, its return value being
    used: TypeError naming ``what`` for an ``async def`` one or a non-callable."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, got {fn!r}")
    if is_async_callable(fn):
        raise TypeError(
            f"{what} must be a plain function: {fn!r} is async def, and its result is used "
            "here as it is returned"
        )
    return fn
