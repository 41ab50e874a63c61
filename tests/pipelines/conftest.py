"""Fixtures for the pipeline tests: pipelines that always stop, a collecting sink, and the
embedded keysquare platform on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from actorwire.adapters.keysquare import PlatformServer, serve
from actorwire.pipelines import Pipeline

from tests.actors.conftest import THREAD_GRACE

WAIT = 10.0
PROCESS_THREADS = ("(_poll_wrapper)",)
"""Threads grpc starts once per process (its poller): not a test's to stop."""


@pytest.fixture
def no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves any thread it started (actors, timers, I/O) running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not any(p in t.name for p in PROCESS_THREADS)
        ]
        if not leaked or time.monotonic() >= deadline:
            break
        leaked[0].join(max(deadline - time.monotonic(), 0.0))
    if leaked:
        pytest.fail(f"test left threads running: {', '.join(t.name for t in leaked)}")


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
