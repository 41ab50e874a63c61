"""Actor behaviour: lifecycle hooks, batches, ask/tell, failures and pykka's sharp edges."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorDeadError,
    ActorStartError,
    ActorSystem,
    Address,
    Terminated,
)

from tests.actors.conftest import QUIT, Block, Boom, Journal, Probe
from tests.support.waiting import wait_until


class Batcher(Actor):
    """Records every batch it gets; answers asks with the batches so far."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Any]] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Block):
            message.entered.set()
            message.release.wait(10.0)
            return None
        return [list(b) for b in self.batches]

    def on_batch(self, messages: list[Any]) -> None:
        if len(messages) == 1 and isinstance(messages[0], Block):
            self.on_receive(messages[0])
            return
        self.batches.append(messages)


class Asker(Actor):
    """Asks another actor on request and records what came back (value or exception)."""

    def __init__(self, results: list[Any]) -> None:
        super().__init__()
        self.results = results

    def on_receive(self, message: Any) -> Any:
        target, question = message
        try:
            self.results.append(("ok", target.ask(question, timeout=5.0)))
        except Exception as exc:
            self.results.append(("error", exc))
        return None


class SelfAsker(Actor):
    def on_receive(self, message: Any) -> Any:
        if message == "ask-self":
            return self.address.ask("x", timeout=1.0)
        return message


class SelfStopper(Actor):
    def on_receive(self, message: Any) -> Any:
        if message == "stop-yourself":
            return self.address.stop(timeout=5.0)
        return message


class Watcher(Actor):
    def __init__(self, got: list[Any], event: threading.Event) -> None:
        super().__init__()
        self.got = got
        self.event = event

    def on_receive(self, message: Any) -> Any:
        self.got.append(message)
        self.event.set()


def test_lifecycle_hooks_run_in_order_on_the_actor_thread(system: ActorSystem) -> None:
    journal = Journal()
    address = system.spawn(Probe, journal, "p", name="p")
    assert isinstance(address, Address)
    assert address.name == "p"
    assert address.is_alive()
    address.tell(1)
    address.tell(2)
    assert address.ask(3, timeout=5.0) == 3
    assert address.stop(timeout=5.0)
    assert not address.is_alive()
    assert [e[:3] if e[0] != "msg" else ("msg", e[3]) for e in journal.events] == [
        ("start", "p", 1),
        ("msg", 1),
        ("msg", 2),
        ("msg", 3),
        ("stop", "p", 1),
    ]


def test_on_batch_receives_queued_messages_as_one_batch(system: ActorSystem) -> None:
    address = system.spawn(Batcher, name="batcher")
    block = Block()
    address.tell(block)
    block.wait_entered()
    for i in range(100):
        address.tell(i)
    block.release.set()
    batches = address.ask("batches?", timeout=5.0)
    assert max(len(b) for b in batches) > 1
    assert [m for b in batches for m in b] == list(range(100))


def test_an_ask_splits_batches_and_is_answered_in_order(system: ActorSystem) -> None:
    address = system.spawn(Batcher, name="batcher")
    block = Block()
    address.tell(block)
    block.wait_entered()
    for i in range(50):
        address.tell(i)
    answers: list[Any] = []
    asker = threading.Thread(target=lambda: answers.append(address.ask("mid", timeout=5.0)))
    asker.start()
    wait_until(lambda: system.metrics()["actors"]["batcher"]["mailbox_depth"] == 51)
    for i in range(50, 100):
        address.tell(i)
    block.release.set()
    asker.join(5.0)
    # The ask saw exactly the first run; the second run came after it.
    assert answers == [[list(range(50))]]
    assert address.ask("end", timeout=5.0) == [list(range(50)), list(range(50, 100))]


def test_ask_returns_the_reply_and_reraises_the_actors_exception(system: ActorSystem) -> None:
    journal = Journal()
    address = system.spawn(Probe, journal, "p")
    assert address.ask("hello", timeout=5.0) == "hello"
    with pytest.raises(ValueError, match="bad question"):
        address.ask(Boom(ValueError("bad question")), timeout=5.0)
    # An exception answering an ask goes back to the asker; the actor keeps running.
    assert address.is_alive()
    assert address.ask("still here", timeout=5.0) == "still here"
    assert journal.kinds("failure", "stop") == []


def test_ask_times_out_with_a_clear_error(system: ActorSystem) -> None:
    address = system.spawn(Probe, Journal(), "p", name="slow")
    block = Block()
    address.tell(block)
    block.wait_entered()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="slow"):
        address.ask("anyone?", timeout=0.05)
    assert time.monotonic() - started < 2.0
    block.release.set()


def test_an_actor_asking_itself_gets_an_error_not_a_deadlock(system: ActorSystem) -> None:
    address = system.spawn(SelfAsker, name="narcissus")
    with pytest.raises(RuntimeError, match="asked itself"):
        address.ask("ask-self", timeout=5.0)


def test_an_actor_can_stop_itself_through_its_address(system: ActorSystem) -> None:
    address = system.spawn(SelfStopper, name="quitter")
    got: list[Any] = []
    event = threading.Event()
    watcher = system.spawn(Watcher, got, event)
    system.watch(watcher, address)
    started = time.monotonic()
    address.tell("stop-yourself")
    assert event.wait(5.0)
    # Stopping itself must not wait on its own thread for its own end.
    assert time.monotonic() - started < 2.0
    assert got == [Terminated(address, "normal")]
    assert not address.is_alive()


def test_pykka_start_is_refused_with_a_pointer_to_spawn() -> None:
    with pytest.raises(TypeError, match=r"system\.spawn\(Probe"):
        Probe.start(Journal(), "p")


@pytest.mark.parametrize("register", ["constructor", "add_failure_listener"])
def test_a_failing_tell_is_a_supervised_failure_not_a_silent_stop(
    make_system: Any, register: str
) -> None:
    reported: list[tuple[Address, BaseException]] = []
    event = threading.Event()

    def listener(address: Address, exc: BaseException) -> None:
        reported.append((address, exc))
        event.set()

    if register == "constructor":
        system = make_system(on_failure=listener)
    else:
        system = make_system()
        system.add_failure_listener(listener)
    journal = Journal()
    address = system.spawn(Probe, journal, "p", name="p")
    error = RuntimeError("told to fail")
    address.tell(Boom(error))
    assert event.wait(5.0)
    assert reported == [(address, error)]
    # pykka would stop it without any hook; here on_failure runs and on_stop does not.
    assert journal.kinds("failure", "stop") == [("failure", "p", 1, error)]
    wait_until(lambda: not address.is_alive())
    assert system.metrics()["totals"]["failed"] == 1


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, GeneratorExit])
def test_a_base_exception_in_one_actor_does_not_stop_the_others(
    make_system: Any, exc_type: type[BaseException]
) -> None:
    reported: list[BaseException] = []
    event = threading.Event()

    def listener(_address: Address, exc: BaseException) -> None:
        reported.append(exc)
        event.set()

    system = make_system(on_failure=listener)
    journal = Journal()
    victim = system.spawn(Probe, journal, "victim", name="victim")
    bystander = system.spawn(Probe, journal, "bystander", name="bystander")
    victim.tell(Boom(exc_type("bye")))
    assert event.wait(5.0)
    assert [type(e) for e in reported] == [exc_type]
    wait_until(lambda: not victim.is_alive())
    assert system.metrics()["totals"]["failed"] == 1
    assert bystander.is_alive()
    assert bystander.ask("still alive?", timeout=5.0) == "still alive?"
    assert system.spawn(Probe, journal, "newcomer").ask("hi", timeout=5.0) == "hi"


def test_a_base_exception_answering_an_ask_does_not_kill_the_asking_actor(
    system: ActorSystem,
) -> None:
    journal = Journal()
    victim = system.spawn(Probe, journal, "victim", name="victim")
    results: list[Any] = []
    asker = system.spawn(Asker, results, name="asker")
    asker.tell((victim, Boom(KeyboardInterrupt("ctrl-c"))))
    wait_until(lambda: results, what="the asker's result")
    kind, value = results[0]
    assert kind == "error"
    assert isinstance(value, ActorDeadError)
    assert "victim" in str(value)
    assert asker.is_alive()
    wait_until(lambda: not victim.is_alive())


def test_ask_to_a_dead_actor_raises_actor_dead_error_promptly(system: ActorSystem) -> None:
    address = system.spawn(Probe, Journal(), "p", name="gone")
    assert address.stop(timeout=5.0)
    started = time.monotonic()
    with pytest.raises(ActorDeadError, match="gone"):
        address.ask("hello?", timeout=30.0)
    assert time.monotonic() - started < 1.0


def test_ask_queued_to_an_actor_that_dies_raises_promptly(system: ActorSystem) -> None:
    address = system.spawn(Probe, Journal(), "p", name="doomed")
    block = Block()
    address.tell(block)
    block.wait_entered()
    address.tell(Boom())
    outcome: list[Any] = []

    def ask() -> None:
        started = time.monotonic()
        try:
            address.ask("are you there?", timeout=30.0)
        except ActorDeadError as exc:
            outcome.append(exc)
        outcome.append(time.monotonic() - started)

    asker = threading.Thread(target=ask)
    asker.start()
    wait_until(lambda: system.metrics()["actors"]["doomed"]["mailbox_depth"] == 2)
    block.release.set()
    asker.join(10.0)
    assert isinstance(outcome[0], ActorDeadError)
    assert outcome[1] < 2.0


def test_tells_to_a_stopped_actor_go_to_dead_letters(system: ActorSystem) -> None:
    address = system.spawn(Probe, Journal(), "p", name="stopped")
    address.stop(timeout=5.0)
    address.tell("one")
    address.tell(2)
    address.tell(3)
    letters = system.dead_letters
    assert letters.count == 3
    assert letters.by_type() == {"str": 1, "int": 2}
    recent = letters.recent()
    assert [(d.recipient, d.message) for d in recent] == [
        ("stopped", "one"),
        ("stopped", 2),
        ("stopped", 3),
    ]
    assert system.metrics()["totals"]["dead_letters"] == 3


def test_a_failing_on_start_makes_spawn_raise_and_frees_the_name(system: ActorSystem) -> None:
    journal = Journal()
    with pytest.raises(ActorStartError, match="refuses to start") as info:
        system.spawn(Probe, journal, "p", fail_start_on=(1,), name="fragile")
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(LookupError):
        system.lookup("fragile")
    again = system.spawn(Probe, journal, "p", name="fragile")
    assert again.ask("ok", timeout=5.0) == "ok"


def test_quit_message_stops_the_actor_normally(system: ActorSystem) -> None:
    journal = Journal()
    address = system.spawn(Probe, journal, "p", name="p")
    address.tell(QUIT)
    wait_until(lambda: not address.is_alive())
    assert journal.kinds("stop", "failure") == [("stop", "p", 1)]
