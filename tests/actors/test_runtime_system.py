"""ActorSystem: isolation, spawn/lookup, shutdown order and threads, the I/O loop, bad input."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pykka
import pytest
from actorwire.actors import (
    Actor,
    ActorSystem,
    Address,
    ChildSpec,
    Mailbox,
    Overflow,
    Supervisor,
)

from tests.actors.conftest import Block, Journal, Probe, probe_factory


class Configured(Actor):
    def __init__(self, a: int, b: int, *, c: int = 0) -> None:
        super().__init__()
        self.total = a + b + c

    def on_receive(self, message: Any) -> Any:
        return self.total


def test_two_systems_share_nothing(make_system: Any) -> None:
    one, two = make_system("one"), make_system("two")
    j1, j2 = Journal(), Journal()
    a1 = one.spawn(Probe, j1, "worker", name="worker")
    a2 = two.spawn(Probe, j2, "worker", name="worker")
    assert a1 != a2
    assert one.lookup("worker") == a1
    assert two.lookup("worker") == a2
    a1.tell("for one")
    assert a1.ask("sync", timeout=5.0) == "sync"
    assert j1.messages("worker") == ["for one", "sync"]
    assert j2.messages("worker") == []
    a1.stop()
    a1.tell("lost")
    assert one.dead_letters.count == 1
    assert two.dead_letters.count == 0
    assert two.lookup("worker").is_alive()
    assert one.io is not two.io
    assert one.timers is not two.timers
    assert one.metrics()["system"] == "one"
    assert two.metrics()["actors"]["worker"]["received"] == 0


def test_spawn_passes_arguments_and_returns_a_named_address(system: ActorSystem) -> None:
    address = system.spawn(Configured, 1, 2, c=3, name="configured")
    assert address.name == "configured"
    assert address.ask("total", timeout=5.0) == 6
    unnamed = system.spawn(Configured, 1, 1)
    assert unnamed.name.startswith("Configured")
    assert system.lookup(unnamed.name) == unnamed
    assert set(system.actors()) == {address, unnamed}


def test_spawn_applies_the_mailbox(system: ActorSystem) -> None:
    address = system.spawn(
        Probe, Journal(), "p", name="small", mailbox=Mailbox(2, Overflow.DROP_NEWEST)
    )
    block = Block()
    address.tell(block)
    block.wait_entered()
    for i in range(5):
        address.tell(i)
    assert system.metrics()["actors"]["small"]["dropped"] == 3
    block.release.set()


def test_lookup_finds_any_live_actor_including_supervised_children(system: ActorSystem) -> None:
    journal = Journal()
    system.spawn(Probe, journal, "top", name="top")
    system.spawn(
        Supervisor, children=[ChildSpec("child-id", probe_factory(journal, "c"))], name="sup"
    )
    assert system.lookup("top").name == "top"
    assert system.lookup("sup").name == "sup"
    child = system.lookup("child-id")
    assert child.ask("hi", timeout=5.0) == "hi"
    assert journal.messages("c") == ["hi"]


def test_lookup_of_an_unknown_or_dead_name_raises_lookup_error(system: ActorSystem) -> None:
    with pytest.raises(LookupError, match="nobody"):
        system.lookup("nobody")
    address = system.spawn(Probe, Journal(), "p", name="brief")
    address.stop()
    with pytest.raises(LookupError, match="brief"):
        system.lookup("brief")


def test_duplicate_name_raises_value_error_and_keeps_the_first(system: ActorSystem) -> None:
    journal = Journal()
    first = system.spawn(Probe, journal, "first", name="dup")
    with pytest.raises(ValueError, match="dup"):
        system.spawn(Probe, journal, "second", name="dup")
    assert system.lookup("dup") == first
    assert first.ask("still me", timeout=5.0) == "still me"
    assert journal.incarnations("second") == 0


class NotAnActor:
    pass


class PlainPykka(pykka.ThreadingActor):
    pass


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (NotAnActor, "NotAnActor"),
        (PlainPykka, "PlainPykka"),
        (object(), "object"),
        ("Probe", "Probe"),
    ],
)
def test_spawn_of_a_non_actor_raises_type_error_naming_it(
    system: ActorSystem, bad: Any, named: str
) -> None:
    with pytest.raises(TypeError, match=named):
        system.spawn(bad)
    assert system.actors() == []


def test_spawn_with_a_bad_mailbox_raises_type_error(system: ActorSystem) -> None:
    with pytest.raises(TypeError, match="Mailbox"):
        system.spawn(Probe, Journal(), "p", mailbox={"capacity": 3})  # type: ignore[arg-type]


def test_shutdown_stops_actors_in_reverse_start_order_and_joins_threads() -> None:
    before = set(threading.enumerate())
    journal = Journal()
    system = ActorSystem("ordered")
    for name in ("a", "b", "c"):
        system.spawn(Probe, journal, name, name=name)
    system.spawn(
        Supervisor,
        children=[
            ChildSpec("s1", probe_factory(journal, "s1")),
            ChildSpec("s2", probe_factory(journal, "s2")),
        ],
        name="sup",
    )
    system.spawn(Probe, journal, "d", name="d")
    addresses = system.actors()
    started = [t for t in threading.enumerate() if t not in before]
    assert len(started) >= 3  # workers, the I/O loop, timers: not one per actor
    assert set(started) == set(system.threads())
    system.shutdown(timeout=5.0)
    assert [e[1] for e in journal.kinds("stop")] == ["d", "s2", "s1", "c", "b", "a"]
    assert not any(a.is_alive() for a in addresses)
    assert system.is_shut_down
    left = [t.name for t in threading.enumerate() if t not in before]
    assert left == []
    with pytest.raises(RuntimeError, match="shut down"):
        system.spawn(Probe, journal, "late")
    system.shutdown()  # idempotent


def test_shutdown_stops_an_actor_after_the_messages_it_already_has() -> None:
    journal = Journal()
    with ActorSystem("drain") as system:
        address = system.spawn(Probe, journal, "p")
        block = Block()
        address.tell(block)
        block.wait_entered()
        for i in range(10):
            address.tell(i)
        block.release.set()
    assert journal.messages("p") == list(range(10))
    assert journal.kinds("stop") == [("stop", "p", 1)]
    assert system.dead_letters.count == 0


def test_context_manager_shuts_down_when_the_body_raises() -> None:
    journal = Journal()
    with pytest.raises(ZeroDivisionError), ActorSystem("raising") as system:
        address = system.spawn(Probe, journal, "p")
        _ = 1 / 0
    assert system.is_shut_down
    assert not address.is_alive()
    assert journal.kinds("stop") == [("stop", "p", 1)]


def test_each_system_runs_its_own_io_loop_thread(make_system: Any) -> None:
    one, two = make_system("io-one"), make_system("io-two")

    async def where() -> threading.Thread:
        await asyncio.sleep(0)
        return threading.current_thread()

    t1 = one.io.run(where(), timeout=5.0)
    t2 = two.io.run(where(), timeout=5.0)
    assert t1 is not t2
    assert t1 is not threading.current_thread()
    assert t1.name == "io-one-io"
    done = threading.Event()
    one.io.call_soon(done.set)
    assert done.wait(5.0)
    future = two.io.submit(where())
    assert future.result(5.0) is t2


def test_shutdown_cancels_io_tasks_and_closes_the_loop() -> None:
    system = ActorSystem("io-close")
    started = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    system.io.submit(forever())
    assert started.wait(5.0)
    system.shutdown(timeout=5.0)
    assert cancelled.is_set()
    assert system.io.loop.is_closed()
    coro = forever()
    with pytest.raises(RuntimeError, match="shut down"):
        system.io.submit(coro)


def test_invalid_system_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="name"):
        ActorSystem("")
    with pytest.raises(ValueError, match="hold_limit"):
        ActorSystem("x", hold_limit=0)


def test_stop_of_an_address_from_another_system_is_refused(make_system: Any) -> None:
    one, two = make_system("s-one"), make_system("s-two")
    address = one.spawn(Probe, Journal(), "p")
    with pytest.raises(ValueError, match="another actor system"):
        two.stop(address)
    assert address.is_alive()


def test_spawn_waits_for_on_start(system: ActorSystem) -> None:
    journal = Journal()
    system.spawn(Probe, journal, "p")
    # spawn returned, so on_start has already run on the actor's thread.
    assert journal.kinds("start")[0][:3] == ("start", "p", 1)
    assert isinstance(system.lookup("Probe-1"), Address)


def test_a_submitted_task_whose_future_is_dropped_is_not_garbage_collected() -> None:
    import gc

    system = ActorSystem("io-keep")
    started = threading.Event()
    cancelled = threading.Event()

    async def pending() -> None:
        started.set()
        try:
            await asyncio.get_running_loop().create_future()  # only this frame holds it
        except asyncio.CancelledError:
            cancelled.set()
            raise

    system.io.submit(pending())  # the concurrent future is dropped at once
    assert started.wait(5.0)
    gc.collect()
    system.shutdown(timeout=5.0)
    assert cancelled.is_set()  # the task was still alive to be cancelled


def test_current_is_the_calling_actor_or_none() -> None:
    from actorwire.actors import Actor

    class WhoAmI(Actor):
        def on_receive(self, message: Any) -> Any:
            me = self.system.current()
            return None if me is None else me.name

    with ActorSystem("who") as system:
        address = system.spawn(WhoAmI, name="me")
        assert address.ask("who", timeout=5.0) == "me"
        assert system.current() is None  # the test's own thread is no actor's
