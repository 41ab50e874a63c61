"""User callbacks: plain functions run where they are called; ``async def`` ones run on the
system's I/O loop; anything else is refused at once. Never a coroutine created and silently
not run.
"""

from __future__ import annotations

import functools
import inspect
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

    def run(*args: Any) -> None:
        future = io.submit(fn(*args))
        future.add_done_callback(_report(what))

    return run


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


def _report(what: str) -> Callable[[Any], None]:
    def done(future: Any) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            log.error("async callback raised", callback=what, error=repr(exc))

    return done
