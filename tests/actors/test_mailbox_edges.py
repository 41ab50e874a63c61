"""Mailbox edges: empty batches, DROP_OLDEST against batches and asks, senders waiting on a
restarting actor's hold, and what a mailbox still holds when its actor is shut down."""

from __future__ import annotations

import threading
from typing import Any

import actorwire.actors.mailbox as mailbox_module
import pytest
from actorwire.actors import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    Mailbox,
    MailboxFull,
    Overflow,
    Supervisor,
)

from tests.actors.conftest import Block, Boom, Journal, Probe, blocked_waiters, probe_factory
from tests.support.waiting import wait_until


def _restart_after(seconds: float) -> Backoff:
    return Backoff(min=seconds, max=seconds, factor=1.0, jitter=0.0)


def _busy(system: ActorSystem, journal: Journal, mailbox: Mailbox) -> tuple[Address, Block]:
    """A probe parked in a Block message, so that what is told next waits in its mailbox."""
    address = system.spawn(Probe, journal, "p", name="p", mailbox=mailbox)
    block = Block()
    address.tell(block)
    block.wait_entered()
    return address, block


@pytest.mark.parametrize(
    "mailbox",
    [None, Mailbox(capacity=4)],
    ids=["unbounded", "bounded"],
)
def test_telling_an_empty_batch_queues_nothing(mailbox: Mailbox | None) -> None:
    with ActorSystem("empty-batch") as system:
        address = system.spawn(Probe, Journal(), "p", mailbox=mailbox)
        assert address.tell_many([]) == 0
        assert address.depth() == 0
        assert system.metrics()["actors"][address.name]["received"] == 0


def test_drop_oldest_evicts_from_a_batch_one_message_at_a_time() -> None:
    journal = Journal()
    with ActorSystem("drop-oldest-batch") as system:
        mailbox = Mailbox(capacity=3, overflow=Overflow.DROP_OLDEST)
        address, block = _busy(system, journal, mailbox)
        assert address.tell_many([1, 2, 3]) == 0
        for n in (4, 5, 6):  # each evicts the oldest message left in the batch
            address.tell(n)
        assert address.depth() == 3
        block.release.set()
        wait_until(lambda: journal.messages("p") == [4, 5, 6])
        assert system.metrics()["actors"]["p"]["dropped"] == 3


def test_drop_oldest_never_drops_an_ask_and_refuses_the_tell_instead() -> None:
    journal = Journal()
    with ActorSystem("drop-oldest-ask") as system:
        mailbox = Mailbox(capacity=1, overflow=Overflow.DROP_OLDEST)
        address, block = _busy(system, journal, mailbox)
        answers: list[Any] = []
        asker = threading.Thread(target=lambda: answers.append(address.ask("q", timeout=10.0)))
        asker.start()
        wait_until(lambda: address.depth() == 1, what="the ask to wait in the mailbox")
        with pytest.raises(MailboxFull, match=r"capacity 1, overflow DROP_OLDEST, 1 waiting"):
            address.tell("data")
        block.release.set()
        asker.join(5.0)
        assert answers == ["q"]
        assert journal.messages("p") == ["q"]


def _held_child(system: ActorSystem, journal: Journal, restart_after: float) -> Address:
    """The supervised probe "c", failed and waiting ``restart_after`` seconds for its next
    incarnation."""
    system.spawn(
        Supervisor,
        children=[ChildSpec("c", probe_factory(journal, "c"))],
        backoff=_restart_after(restart_after),
    )
    child = system.lookup("c")
    child.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["c"]["state"] == "held")
    return child


def test_a_sender_waiting_on_a_full_hold_gets_a_dead_letter_when_the_actor_is_stopped() -> None:
    journal = Journal()
    with ActorSystem("hold-then-stop", hold_limit=1, hold_timeout=30.0) as system:
        child = _held_child(system, journal, restart_after=60.0)  # stopped long before
        child.tell("fits")
        sent = threading.Event()

        def sender() -> None:
            child.tell("waits")  # the hold is full: waits for the next incarnation
            sent.set()

        thread = threading.Thread(target=sender)
        thread.start()
        wait_until(lambda: blocked_waiters(mailbox_module._HOLD) == 1, what="the sender to wait")
        assert not sent.is_set()
        assert system.stop(child) is True
        assert sent.wait(5.0), "the waiting sender was not released by the stop"
        thread.join(5.0)
        reasons = {d.message: d.reason for d in system.dead_letters.recent()}
        assert reasons == {"fits": "actor stopped before handling it", "waits": "actor is dead"}
        assert journal.incarnations("c") == 1


class Relay(Actor):
    """Tells every message it gets to ``target``: a sender running on the pool."""

    def __init__(self, target: Address) -> None:
        super().__init__()
        self.target = target

    def on_receive(self, message: Any) -> Any:
        self.target.tell(message)
        return None


def test_an_actor_on_the_pool_is_never_held_back_by_a_full_hold() -> None:
    journal = Journal()
    with ActorSystem("hold-from-pool", hold_limit=1, hold_timeout=30.0) as system:
        child = _held_child(system, journal, restart_after=1.0)
        relay = system.spawn(Relay, child, name="relay")
        relay.tell_many([1, 2, 3])  # past the hold: a pool worker must never wait on it
        # Held back, the relay would wait up to the 30 s hold timeout on its second message.
        assert relay.ask("marker", timeout=5.0) is None
        wait_until(lambda: journal.messages("c") == [1, 2, 3, "marker"], timeout=5.0)
        assert system.dead_letters.count == 0


def _first(message: Any) -> Any:
    return message[0] if isinstance(message, tuple) else id(message)


def test_what_waits_in_a_conflating_mailbox_at_shutdown_becomes_dead_letters() -> None:
    journal = Journal()
    system = ActorSystem("conflate-shutdown")
    mailbox = Mailbox(capacity=10, overflow=Overflow.CONFLATE, key=_first)
    block = Block()
    try:
        address, block = _busy(system, journal, mailbox)
        for message in [("a", 1), ("b", 1), ("a", 2)]:
            address.tell(message)
        system.shutdown(timeout=0.3)  # the probe is still parked: it cannot drain
    finally:
        block.release.set()
        system.shutdown()
    letters = sorted(d.message for d in system.dead_letters.recent())
    assert letters == [("a", 2), ("b", 1)]
    assert system.metrics()["totals"]["dropped"] == 1  # ("a", 1), conflated away
