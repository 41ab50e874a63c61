"""Shared fixtures for the runtime tests: systems that always shut down, a deadline poller,
and a guard that fails any test leaving threads behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem, Dispatcher, PoolDispatcher


def blocked_waiters(condition: threading.Condition) -> int:
    """How many threads wait on ``condition`` (CPython keeps them in ``_waiters``)."""
    return len(condition._waiters)  # type: ignore[attr-defined]


DISPATCHERS: dict[str, Callable[[], Dispatcher]] = {
    "pool": PoolDispatcher,
    "one-worker": lambda: PoolDispatcher(workers=1),
}
"""The runtime tests run on each: the default pool, and a pool of one worker (where any
hidden dependence on a second thread would deadlock)."""


@pytest.fixture(params=list(DISPATCHERS))
def dispatcher_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_system(
    request: pytest.FixtureRequest, dispatcher_kind: str
) -> Iterator[Callable[..., ActorSystem]]:
    """Build ActorSystems with any arguments (on the dispatcher kind under test unless one
    is given); every one is shut down after the test."""
    systems: list[ActorSystem] = []
    base = request.node.name.replace("[", "-").replace("]", "")[:40]

    def make(name: str | None = None, **kwargs: Any) -> ActorSystem:
        kwargs.setdefault("dispatcher", DISPATCHERS[dispatcher_kind]())
        system = ActorSystem(name or f"{base}-{len(systems)}", **kwargs)
        systems.append(system)
        return system

    yield make
    for system in reversed(systems):
        system.shutdown(timeout=5.0)


@pytest.fixture
def system(request: pytest.FixtureRequest, dispatcher_kind: str) -> Iterator[ActorSystem]:
    """A fresh ActorSystem on the dispatcher kind under test, shut down (all its threads
    joined) after the test."""
    name = request.node.name.replace("[", "-").replace("]", "")[:40]
    with ActorSystem(name, dispatcher=DISPATCHERS[dispatcher_kind]()) as s:
        yield s


# -- shared test actors ----------------------------------------------------------------


class Journal:
    """A thread-safe record of what actors did, shared across incarnations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[Any, ...]] = []
        self._incarnations: dict[str, int] = {}

    def add(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def next_incarnation(self, name: str) -> int:
        with self._lock:
            self._incarnations[name] = self._incarnations.get(name, 0) + 1
            return self._incarnations[name]

    def incarnations(self, name: str) -> int:
        with self._lock:
            return self._incarnations.get(name, 0)

    def kinds(self, *kinds: str) -> list[tuple[Any, ...]]:
        """Events whose first item is one of ``kinds``, in order."""
        with self._lock:
            return [e for e in self.events if e[0] in kinds]

    def messages(self, name: str) -> list[Any]:
        """Messages ``name`` handled, in order (all incarnations)."""
        with self._lock:
            return [e[3] for e in self.events if e[0] == "msg" and e[1] == name]


class Block:
    """Message that parks the receiving Probe until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def wait_entered(self) -> None:
        assert self.entered.wait(5.0), "actor never reached the Block message"


class Boom:
    """Message that makes the receiving Probe raise ``exc``."""

    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc = exc if exc is not None else RuntimeError("boom")


QUIT = "quit"
"""Message that makes a Probe stop itself normally (pykka's ``self.stop()``)."""


class Probe(Actor):
    """Journals start/stop/failure and every message with its incarnation number."""

    def __init__(self, journal: Journal, name: str, fail_start_on: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.journal = journal
        self.name = name
        self.fail_start_on = fail_start_on
        self.incarnation = 0

    def on_start(self) -> None:
        self.incarnation = self.journal.next_incarnation(self.name)
        self.journal.add("start", self.name, self.incarnation, time.monotonic())
        if self.incarnation in self.fail_start_on:
            raise RuntimeError(f"{self.name} refuses to start (incarnation {self.incarnation})")

    def on_stop(self) -> None:
        self.journal.add("stop", self.name, self.incarnation)

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.journal.add("failure", self.name, self.incarnation, exc)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Block):
            message.entered.set()
            message.release.wait(10.0)
            return None
        if isinstance(message, Boom):
            self.journal.add("boom", self.name, self.incarnation, time.monotonic())
            raise message.exc
        if message == QUIT:
            self.stop()
            return None
        self.journal.add("msg", self.name, self.incarnation, message)
        return message


def probe_factory(journal: Journal, name: str, **kwargs: Any) -> Callable[[], Probe]:
    """A ChildSpec factory building a new Probe named ``name`` on every call."""

    def factory() -> Probe:
        return Probe(journal, name, **kwargs)

    return factory
