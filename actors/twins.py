"""Awaitable twins of a facade's blocking calls.

Every facade (KeySession, KernelClient, ...) offers each blocking call ``name`` as an
awaitable ``aname`` too. Rules:

- The twin has the blocking call's real signature: ``inspect.signature``, IDEs and mypy
  see the same parameters, defaults and return type (no ``*args, **kwargs``).
- Where the facade already holds a ``concurrent.futures.Future`` for the answer (an ask to
  an actor, a request on a link), the twin awaits that future on the caller's loop through
  ``asyncio.wrap_future`` (:func:`await_future`): no thread waits for it.
- Otherwise (:func:`twin`) the blocking call is submitted to the running loop's executor
  and the resulting future is wrapped the same way; the event loop itself never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["await_future", "twin"]

P = ParamSpec("P")
S = TypeVar("S")
T = TypeVar("T")


def twin(
    blocking: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The awaitable twin of the blocking method ``blocking``, with its signature.

    Use in a class body: ``asnapshot = twin(snapshot)``.
    """

    @functools.wraps(blocking)
    async def awaitable(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(blocking, self, *args, **kwargs)
        return await loop.run_in_executor(None, call)

    name = blocking.__name__
    awaitable.__name__ = f"a{name}"
    awaitable.__qualname__ = blocking.__qualname__.rpartition(".")[0] + f".a{name}"
    awaitable.__doc__ = f"Awaitable form of :meth:`{name}` (same arguments, same result)."
    awaitable.__signature__ = inspect.signature(blocking)  # type: ignore[attr-defined]
    return awaitable


async def await_future(future: concurrent.futures.Future[T], timeout: float | None) -> T:
    """Await a concurrent future from asyncio, raising TimeoutError after ``timeout``."""
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
