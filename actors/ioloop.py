"""The system's shared asyncio loop: one I/O thread that every transport runs on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import structlog

from .dispatcher import mark_never_block

__all__ = ["IOLoop"]

T = TypeVar("T")


class IOLoop:
    """An asyncio loop on its own thread; thread-safe ways in: ``submit``, ``run``, ``call``
    and ``call_soon``. The one loop-thread helper: an actor system's I/O and every embedded
    server run on one of these."""

    def __init__(self, name: str) -> None:
        self._log = structlog.get_logger("actorwire.io").bind(system=name)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._started = threading.Event()
        # asyncio keeps only weak references to tasks: a submitted task whose future the
        # caller drops could be garbage-collected while pending. Hold each until done.
        self._inflight: set[concurrent.futures.Future[Any]] = set()
        self._thread = threading.Thread(target=self._run, name=f"{name}-io", daemon=True)
        self._thread.start()
        self._started.wait()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        mark_never_block()  # the loop serves every connection: a full mailbox never blocks it
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        self._loop.run_forever()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self._log.error(
            "unhandled error on the I/O loop",
            message=context.get("message"),
            error=repr(exc) if exc else None,
        )

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run a coroutine on the loop; returns a concurrent future for any thread."""
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("the I/O loop is shut down")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return future

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and wait for its result (not from the loop thread)."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("IOLoop.run called from the I/O thread would deadlock; await it")
        return self.submit(coro).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float | None = 30.0) -> T:
        """Run the plain callable ``fn`` on the loop and return its result (or raise its
        error); called from the loop thread, it just runs it."""
        if self.in_loop_thread():
            return fn()
        if self._loop.is_closed():
            raise RuntimeError("the I/O loop is shut down")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - handed to the calling thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout)

    @property
    def alive(self) -> bool:
        """True while the loop runs (not shut down)."""
        return self._thread.is_alive() and not self._loop.is_closed()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a plain callable on the loop from any thread."""
        self._loop.call_soon_threadsafe(fn, *args)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every task, stop the loop and join its thread."""
        if self._loop.is_closed():
            return

        async def _cancel_all() -> None:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)
            await self._loop.shutdown_asyncgens()

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop).result(timeout)
            except Exception as exc:  # noqa: BLE001 - shutdown goes on regardless
                self._log.warning("I/O tasks did not all finish", error=repr(exc))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
