"""Fixtures for the pipeline tests: pipelines that always stop, a collecting sink, and the
embedded keysquare platform on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from actorwire.adapters.keysquare import PlatformServer, serve
from actorwire.pipelines import Pipeline

WAIT = 10.0


@pytest.fixture
def no_thread_leaks() -> None:
    """Kept for the modules that name it: the root conftest's ``no_leaks`` guards every
    test now."""


class Collector:
    """A thread-safe list of records with a wait for a count (a callback sink's ``fn``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.records: list[Any] = []

    def __call__(self, record: Any) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self.records)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.records) >= count, timeout)
            got = list(self.records)
        assert ok, f"expected {count} records within {timeout}s, got {len(got)}"
        return got


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def make_pipeline(request: pytest.FixtureRequest) -> Iterator[Callable[..., Pipeline]]:
    """Build Pipelines with any arguments; every one is stopped after the test."""
    made: list[Pipeline] = []
    base = request.node.name.replace("[", "-").replace("]", "")[:40]

    def make(name: str | None = None, **kwargs: Any) -> Pipeline:
        pipeline = Pipeline(name or f"{base}-{len(made)}", **kwargs)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in reversed(made):
        pipeline.stop(drain=False, timeout=5.0)


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    """The embedded keysquare platform (default config: app ``demo``/``demo-key``, type
    ``Price``) on 127.0.0.1 and a free port."""
    server = serve(host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        server.stop()
