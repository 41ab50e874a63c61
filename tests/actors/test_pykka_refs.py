"""pykka's own handles on an actorwire actor: ``actor_ref`` asks and tells, proxies call
methods and read attributes, and an actor that was never spawned refuses messages."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem, Address


class Counter(Actor):
    """Remembers the last value it was given; answers asks with the message."""

    def __init__(self, started: list[Counter] | None = None) -> None:
        super().__init__()
        self.value = 0
        self.started = started
        self.seen = threading.Event()

    def on_start(self) -> None:
        if self.started is not None:
            self.started.append(self)

    def on_receive(self, message: Any) -> Any:
        return message

    def double(self, x: int) -> int:
        return 2 * x

    def remember(self, x: int) -> None:
        self.value = x
        self.seen.set()


@pytest.fixture
def counter() -> Iterator[tuple[Address, Counter]]:
    started: list[Counter] = []
    with ActorSystem("pykka-refs") as system:
        address = system.spawn(Counter, started, name="counter")
        yield address, started[0]


def test_the_pykka_ref_of_a_spawned_actor_asks_and_tells(counter: tuple[Address, Counter]) -> None:
    address, actor = counter
    ref = actor.actor_ref
    assert ref.ask("ping", timeout=5.0) == "ping"
    ref.tell("told")
    assert address.ask("after", timeout=5.0) == "after"
    assert address.system.metrics()["actors"]["counter"]["processed"] == 3


def test_a_proxy_calls_methods_and_reads_attributes(counter: tuple[Address, Counter]) -> None:
    _, actor = counter
    proxy = actor.actor_ref.proxy()
    assert proxy.double(21).get(timeout=5.0) == 42
    proxy.remember.defer(7)  # told, not asked: runs like a tell
    assert actor.seen.wait(5.0)
    assert proxy.value.get(timeout=5.0) == 7


def test_an_actor_that_was_never_spawned_refuses_messages() -> None:
    ref = Counter().actor_ref
    with pytest.raises(RuntimeError, match=r"not started: use system\.spawn"):
        ref.tell("hello")


def test_an_actor_reprs_with_its_address_name_or_as_unstarted(
    counter: tuple[Address, Counter],
) -> None:
    _, actor = counter
    assert repr(actor) == "<Counter 'counter'>"
    assert repr(Counter()) == "<Counter 'unstarted'>"


def test_the_stopped_event_is_set_when_first_read_after_the_actor_ended(
    counter: tuple[Address, Counter],
) -> None:
    address, actor = counter
    assert address.stop()
    assert actor.actor_stopped.is_set()


def test_stopping_through_the_pykka_ref_stops_the_actor(counter: tuple[Address, Counter]) -> None:
    address, actor = counter
    assert actor.actor_ref.stop(timeout=5.0) is True
    assert not address.is_alive()
    assert actor.actor_ref.stop(timeout=5.0) is False  # already dead
