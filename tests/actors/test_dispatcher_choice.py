"""Which dispatcher runs an actor: a second pool given to ``spawn``, a pinned thread, and the
errors for dispatchers that cannot be used."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorSystem,
    Dispatcher,
    PinnedDispatcher,
    PoolDispatcher,
)


class WhereAmI(Actor):
    def on_receive(self, message: Any) -> Any:
        return threading.current_thread()


def test_an_actor_spawned_on_a_second_pool_runs_there_and_the_pool_stops_with_the_system() -> None:
    second = PoolDispatcher(workers=1)
    with ActorSystem("two-pools") as system:
        here = system.spawn(WhereAmI, name="default")
        there = system.spawn(WhereAmI, name="second", dispatcher=second)
        also_there = system.spawn(WhereAmI, name="second-too", dispatcher=second)
        thread = there.ask("where", timeout=5.0)
        assert thread in second.threads()
        assert thread not in system.dispatcher.threads()
        assert here.ask("where", timeout=5.0) in system.dispatcher.threads()
        assert also_there.ask("where", timeout=5.0) in second.threads()
        assert set(second.threads()) <= set(system.threads())
    assert second.threads() == []


def test_a_pinned_dispatcher_gives_each_actor_a_thread_of_its_own() -> None:
    pinned = PinnedDispatcher()
    with ActorSystem("pinned") as system:
        a = system.spawn(WhereAmI, name="a", dispatcher=pinned)
        b = system.spawn(WhereAmI, name="b", dispatcher=pinned)
        thread_a = a.ask("where", timeout=5.0)
        thread_b = b.ask("where", timeout=5.0)
        assert thread_a is not thread_b
        assert thread_a.name == "pinned-a"
        assert a.stop()
        thread_a.join(5.0)
        assert not thread_a.is_alive()  # the thread ends with its actor
        assert thread_b.is_alive()
    assert repr(pinned) == "PinnedDispatcher()"


@pytest.mark.parametrize("throughput", [0, -1, 1.5, True, "8"])
def test_a_pinned_dispatcher_needs_a_positive_int_throughput(throughput: Any) -> None:
    with pytest.raises(ValueError, match=r"throughput must be an int >= 1, got"):
        PinnedDispatcher(throughput)


class Incomplete(Dispatcher):
    """A dispatcher that implements nothing."""


def test_a_dispatcher_subclass_that_implements_nothing_is_refused_by_name() -> None:
    with pytest.raises(NotImplementedError, match="Incomplete does not implement _attach"):
        ActorSystem("incomplete", dispatcher=Incomplete())
    incomplete = Incomplete()
    assert incomplete.threads() == []
    assert incomplete.metrics() == {}
    with pytest.raises(NotImplementedError, match="Incomplete does not implement shutdown"):
        incomplete.shutdown()


def test_spawn_refuses_a_dispatcher_that_is_not_one() -> None:
    with (
        ActorSystem("not-a-dispatcher") as system,
        pytest.raises(TypeError, match=r"dispatcher must be a Dispatcher, got 'pool'"),
    ):
        system.spawn(WhereAmI, name="x", dispatcher="pool")  # type: ignore[arg-type]
