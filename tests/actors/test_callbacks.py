"""User callbacks: async def ones run on the I/O loop, or are refused at once; never a
coroutine silently not run."""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

import pytest
from actorwire.actors import ActorSystem, Link
from actorwire.actors.callbacks import is_async_callable, plain_callback, user_callback
from actorwire.actors.statecell import StateCell
from actorwire.pipelines import Pipeline


async def async_fn(x: Any) -> None:
    await asyncio.sleep(0)


class AsyncCallable:
    async def __call__(self, x: Any) -> None:
        await asyncio.sleep(0)


def test_async_callables_are_recognised() -> None:
    assert is_async_callable(async_fn)
    assert is_async_callable(functools.partial(async_fn))
    assert is_async_callable(AsyncCallable())
    assert not is_async_callable(print)
    assert not is_async_callable(lambda x: x)


def test_an_async_callback_runs_on_the_io_loop() -> None:
    ran = threading.Event()
    where: list[bool] = []
    with ActorSystem("cb") as system:

        async def cb(value: int) -> None:
            where.append(system.io.in_loop_thread() and value == 7)
            ran.set()

        user_callback(cb, "test callback", system.io)(7)
        assert ran.wait(5)
    assert where == [True]


def test_not_callable_or_async_where_a_result_is_needed_is_refused() -> None:
    with ActorSystem("cb2") as system, pytest.raises(TypeError, match="my callback must be"):
        user_callback(42, "my callback", system.io)
    with pytest.raises(TypeError, match="must be a plain function"):
        plain_callback(async_fn, "map: fn")
    assert plain_callback(len, "x") is len


def test_pipelines_refuse_async_functions_at_once() -> None:
    p = Pipeline("async")
    with pytest.raises(TypeError, match="map: fn must be a plain function"):
        p.source("inlet").then("map", fn=async_fn)
    with pytest.raises(TypeError, match="callback sink: fn must be a plain function"):
        p.source("inlet", name="b").to(AsyncCallable())


def test_state_listeners_must_be_plain() -> None:
    with pytest.raises(TypeError, match="state listener must be a plain function"):
        StateCell("x").add_listener(async_fn)
    assert Link is not None  # Link keeps its state in a StateCell: the same rule
