"""Awaitable twins: the blocking call's signature, answers, errors, and a loop that never blocks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading

import pytest
from actorwire.actors.twins import await_future, twin


class Facade:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def fetch(self, name: str, count: int = 1, *, timeout: float = 5.0) -> list[str]:
        """Blocks until the gate opens."""
        if not self.gate.wait(timeout):
            raise TimeoutError(f"fetch {name!r} waited {timeout}s")
        return [name] * count

    afetch = twin(fetch)


def test_a_twin_has_the_blocking_calls_signature_and_name() -> None:
    assert inspect.signature(Facade.afetch) == inspect.signature(Facade.fetch)
    assert Facade.afetch.__name__ == "afetch"
    assert inspect.iscoroutinefunction(Facade.afetch)
    assert inspect.signature(Facade().afetch) == inspect.signature(Facade().fetch)


def test_a_twin_returns_the_blocking_result_without_blocking_the_loop() -> None:
    facade = Facade()

    async def main() -> list[str]:
        call = asyncio.ensure_future(facade.afetch("x", 2, timeout=5.0))
        await asyncio.sleep(0)  # the loop runs on while fetch waits in the executor
        assert not call.done()
        facade.gate.set()
        return await call

    assert asyncio.run(main()) == ["x", "x"]


def test_a_twin_raises_what_the_blocking_call_raises() -> None:
    with pytest.raises(TimeoutError, match="fetch 'y' waited"):
        asyncio.run(Facade().afetch("y", timeout=0.01))


def test_await_future_answers_and_times_out() -> None:
    async def main() -> None:
        done: concurrent.futures.Future[int] = concurrent.futures.Future()
        threading.Thread(target=done.set_result, args=(7,)).start()
        assert await await_future(done, 5.0) == 7
        never: concurrent.futures.Future[int] = concurrent.futures.Future()
        with pytest.raises(TimeoutError):
            await await_future(never, 0.01)

    asyncio.run(main())
