"""The shared I/O loop: calls from its own thread, use after shutdown, and errors nobody
awaited, which are logged rather than lost."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pytest
from actorwire.actors import IOLoop

from tests.support.waiting import wait_until


@pytest.fixture
def loop() -> Iterator[IOLoop]:
    io_loop = IOLoop("test-io")
    try:
        yield io_loop
    finally:
        io_loop.shutdown()


def test_call_from_the_loop_thread_runs_the_function_in_place(loop: IOLoop) -> None:
    async def inner() -> tuple[bool, int]:
        return loop.in_loop_thread(), loop.call(lambda: 41 + 1)

    assert loop.run(inner(), timeout=5.0) == (True, 42)


def test_call_hands_the_function_error_to_the_caller(loop: IOLoop) -> None:
    def broken() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        loop.call(broken, timeout=5.0)


def test_run_from_the_loop_thread_refuses_instead_of_deadlocking(loop: IOLoop) -> None:
    async def nested() -> int:
        return 1

    async def outer() -> str:
        coro = nested()
        try:
            loop.run(coro)
        except RuntimeError as exc:
            return str(exc)
        return "ran"

    message = loop.run(outer(), timeout=5.0)
    assert message == "IOLoop.run called from the I/O thread would deadlock; await it"


def test_a_shut_down_loop_refuses_work_and_a_second_shutdown_is_a_no_op() -> None:
    io_loop = IOLoop("test-io-closed")
    assert io_loop.alive
    io_loop.shutdown()
    assert not io_loop.alive
    io_loop.shutdown()

    async def work() -> int:
        return 1

    with pytest.raises(RuntimeError, match="the I/O loop is shut down"):
        io_loop.call(lambda: 1)
    with pytest.raises(RuntimeError, match="the I/O loop is shut down"):
        io_loop.submit(work())


def test_an_error_nobody_awaited_is_logged(json_log: io.StringIO) -> None:
    io_loop = IOLoop("test-io-errors")
    try:

        def broken() -> None:
            raise ZeroDivisionError("callback bug")

        io_loop.call_soon(broken)

        def logged() -> list[dict[str, str]]:
            rows = [json.loads(x) for x in json_log.getvalue().splitlines() if x.startswith("{")]
            return [r for r in rows if r.get("event") == "unhandled error on the I/O loop"]

        (row,) = wait_until(logged, what="the loop error to be logged")
        assert "callback bug" in row["error"]
        assert row["system"] == "test-io-errors"
        # The loop goes on after the error.
        assert io_loop.run(asyncio.sleep(0, result="still running"), timeout=5.0) == (
            "still running"
        )
    finally:
        io_loop.shutdown()
