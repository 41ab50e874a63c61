"""Bounded mailboxes: every overflow policy, drop counting, and bad arguments."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from actorwire.actors import ActorSystem, Address, Mailbox, MailboxFull, Overflow

from tests.actors.conftest import Block, Journal, Probe, blocked_waiters
from tests.support.waiting import wait_until


def spawn_blocked(
    system: ActorSystem, mailbox: Mailbox, name: str = "box"
) -> tuple[Address, Journal, Block]:
    """A Probe with ``mailbox``, parked inside its first message so nothing drains."""
    journal = Journal()
    address = system.spawn(Probe, journal, name, name=name, mailbox=mailbox)
    block = Block()
    address.tell(block)
    block.wait_entered()
    return address, journal, block


def drain(address: Address, block: Block, sync: Any = "sync") -> None:
    """Let the actor go, wait until it took everything, then ask (ordered after it all)."""
    block.release.set()
    wait_until(lambda: depth(address) == 0, what="the mailbox to drain")
    assert address.ask(sync, timeout=5.0) == sync


def depth(address: Address) -> int:
    row = address.system.metrics()["actors"][address.name]
    return int(row["mailbox_depth"])


def first(message: Any) -> Any:
    """Conflation key: the symbol of a (symbol, value) tuple; Block and others by identity."""
    return message[0] if isinstance(message, tuple) else id(message)


def sender_waiters(address: Address) -> int:
    return blocked_waiters(address._cell.inbox._not_full)  # type: ignore[attr-defined]


def test_backpressure_blocks_the_sender_then_raises_mailbox_full(system: ActorSystem) -> None:
    mailbox = Mailbox(capacity=2, overflow=Overflow.BACKPRESSURE, put_timeout=0.2)
    address, journal, block = spawn_blocked(system, mailbox)
    address.tell(1)
    address.tell(2)
    started = time.monotonic()
    with pytest.raises(MailboxFull, match="capacity 2"):
        address.tell(3)
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0
    drain(address, block)
    assert journal.messages("box") == [1, 2, "sync"]


def test_backpressure_releases_the_sender_when_room_appears(system: ActorSystem) -> None:
    mailbox = Mailbox(capacity=1, overflow=Overflow.BACKPRESSURE, put_timeout=10.0)
    address, journal, block = spawn_blocked(system, mailbox)
    address.tell(1)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            address.tell(2)
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: sender_waiters(address) == 1, what="the sender to block")
    assert sender.is_alive()
    block.release.set()
    sender.join(5.0)
    assert not sender.is_alive()
    assert errors == []
    assert address.ask("sync", timeout=5.0) == "sync"
    assert journal.messages("box") == [1, 2, "sync"]
    assert system.metrics()["actors"]["box"]["dropped"] == 0


def test_drop_oldest_evicts_the_oldest_and_counts_it(system: ActorSystem) -> None:
    address, journal, block = spawn_blocked(system, Mailbox(3, Overflow.DROP_OLDEST))
    for i in range(7):
        address.tell(i)
    assert system.metrics()["actors"]["box"]["dropped"] == 4
    drain(address, block)
    assert journal.messages("box") == [4, 5, 6, "sync"]


def test_drop_newest_discards_the_incoming_and_counts_it(system: ActorSystem) -> None:
    address, journal, block = spawn_blocked(system, Mailbox(3, Overflow.DROP_NEWEST))
    for i in range(7):
        address.tell(i)
    assert system.metrics()["actors"]["box"]["dropped"] == 4
    drain(address, block)
    assert journal.messages("box") == [0, 1, 2, "sync"]


def test_conflate_keeps_the_latest_per_key_in_the_first_slot(system: ActorSystem) -> None:
    mailbox = Mailbox(capacity=10, overflow=Overflow.CONFLATE, key=first)
    address, journal, block = spawn_blocked(system, mailbox)
    for message in [("AAPL", 1), ("MSFT", 1), ("AAPL", 2), ("IBM", 1), ("MSFT", 2), ("AAPL", 3)]:
        address.tell(message)
    assert system.metrics()["actors"]["box"]["dropped"] == 3
    assert depth(address) == 3
    drain(address, block, ("sync", 0))
    assert journal.messages("box") == [("AAPL", 3), ("MSFT", 2), ("IBM", 1), ("sync", 0)]


def test_conflate_into_a_full_mailbox_replaces_without_waiting(system: ActorSystem) -> None:
    mailbox = Mailbox(capacity=2, overflow=Overflow.CONFLATE, key=first, put_timeout=0.5)
    address, journal, block = spawn_blocked(system, mailbox)
    address.tell(("a", 1))
    address.tell(("b", 1))
    started = time.monotonic()
    address.tell(("a", 2))  # full, but its key has a slot: conflated, no waiting
    assert time.monotonic() - started < 0.25
    assert system.metrics()["actors"]["box"]["dropped"] == 1
    with pytest.raises(MailboxFull):
        address.tell(("c", 1))  # a new key in a full CONFLATE mailbox pushes back
    drain(address, block, ("sync", 0))
    assert journal.messages("box") == [("a", 2), ("b", 1), ("sync", 0)]


def test_conflate_without_capacity_is_unbounded_per_key(system: ActorSystem) -> None:
    mailbox = Mailbox(overflow=Overflow.CONFLATE, key=lambda m: m % 3 if isinstance(m, int) else m)
    address, journal, block = spawn_blocked(system, mailbox)
    for i in range(30):
        address.tell(i)
    drain(address, block)
    assert journal.messages("box") == [27, 28, 29, "sync"]
    assert system.metrics()["actors"]["box"]["dropped"] == 27


def test_conflate_senders_waiting_for_room_with_the_same_key_are_conflated(
    system: ActorSystem,
) -> None:
    # Two senders of one new key both wait for room; once room appears the second must
    # conflate into the slot the first took, not add a second slot for the same key.
    mailbox = Mailbox(capacity=2, overflow=Overflow.CONFLATE, key=first, put_timeout=10)
    address, journal, block = spawn_blocked(system, mailbox)
    second_block = Block()
    address.tell(second_block)
    address.tell(("c", 1))
    senders = [threading.Thread(target=address.tell, args=(("b", n),)) for n in (1, 2)]
    for sender in senders:
        sender.start()
    wait_until(lambda: sender_waiters(address) == 2, what="both senders to block")
    # The actor drains both waiting messages at once and parks in the second Block, so
    # both senders get room while nothing else drains.
    block.release.set()
    second_block.wait_entered()
    for sender in senders:
        sender.join(5.0)
    assert depth(address) == 1
    assert system.metrics()["actors"]["box"]["dropped"] == 1
    drain(address, second_block, ("sync", 0))
    handled = journal.messages("box")
    assert handled[0] == ("c", 1)
    assert [m[0] for m in handled[1:]] == ["b", "sync"]
    assert journal.kinds("failure") == []
    assert address.is_alive()


def test_fail_raises_mailbox_full_at_once(system: ActorSystem) -> None:
    address, journal, block = spawn_blocked(system, Mailbox(2, Overflow.FAIL, put_timeout=30))
    address.tell(1)
    address.tell(2)
    started = time.monotonic()
    with pytest.raises(MailboxFull, match="FAIL"):
        address.tell(3)
    assert time.monotonic() - started < 1.0
    drain(address, block)
    assert journal.messages("box") == [1, 2, "sync"]


def test_drop_policies_never_drop_an_ask(system: ActorSystem) -> None:
    address, _journal, block = spawn_blocked(system, Mailbox(1, Overflow.DROP_NEWEST))
    address.tell(1)
    with pytest.raises(MailboxFull):
        address.ask("question", timeout=5.0)
    assert system.metrics()["actors"]["box"]["dropped"] == 0
    drain(address, block)


class FailAfterBlock(Probe):
    """Fails inside its Block message, so it dies with its mailbox still full."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Block):
            super().on_receive(message)
            raise RuntimeError("died while blocked")
        return super().on_receive(message)


def test_a_sender_blocked_on_an_actor_that_dies_dead_letters_its_message(
    system: ActorSystem,
) -> None:
    mailbox = Mailbox(capacity=1, overflow=Overflow.BACKPRESSURE, put_timeout=10.0)
    address = system.spawn(FailAfterBlock, Journal(), "box", name="box", mailbox=mailbox)
    block = Block()
    address.tell(block)
    block.wait_entered()
    address.tell("queued")  # fills the mailbox
    errors: list[BaseException] = []

    def send() -> None:
        try:
            address.tell("late")
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: sender_waiters(address) == 1, what="the sender to block")
    block.release.set()
    sender.join(5.0)
    wait_until(lambda: not address.is_alive())
    # The actor died, it was not full: the message is a dead letter like any tell to it.
    assert errors == []
    assert [(d.message, d.reason) for d in system.dead_letters.recent()] == [
        ("queued", "actor stopped before handling it"),
        ("late", "actor is dead"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": -3}, "capacity"),
        ({"capacity": 2.5}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": "10"}, "capacity"),
        ({"overflow": "sometimes"}, "overflow"),
        ({"put_timeout": -1}, "put_timeout"),
        ({"overflow": Overflow.CONFLATE}, "key"),
    ],
)
def test_bad_mailbox_arguments_raise_value_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Mailbox(**kwargs)


def test_a_non_callable_conflation_key_raises_type_error() -> None:
    with pytest.raises(TypeError, match="key"):
        Mailbox(overflow=Overflow.CONFLATE, key="symbol")  # type: ignore[arg-type]


def test_overflow_may_be_given_by_name() -> None:
    assert Mailbox(5, "drop_oldest").overflow is Overflow.DROP_OLDEST  # type: ignore[arg-type]


def test_tell_many_delivers_in_order_and_counts_refusals(system: ActorSystem) -> None:
    from actorwire.actors import Actor

    gate = threading.Event()
    seen: dict[str, list[int]] = {"fast": [], "bounded": []}
    done = threading.Event()

    class Slow(Actor):
        def on_receive(self, message: int) -> None:
            gate.wait(5)
            seen[self.address.name].append(message)
            if message == -1:
                done.set()

    fast = system.spawn(Slow, name="fast")
    assert fast.tell_many([1, 2, 3]) == 0
    bounded = system.spawn(
        Slow, name="bounded", mailbox=Mailbox(capacity=3, overflow=Overflow.FAIL)
    )
    refused = bounded.tell_many(list(range(10, 20)))
    assert 0 < refused <= 7  # some were taken in hand or queued, the rest refused...
    assert system.metrics()["actors"]["bounded"]["dropped"] == refused  # ...the rest counted
    gate.set()
    fast.tell(-1)
    assert done.wait(5)
    assert seen["fast"] == [1, 2, 3, -1]


class _NoCell:
    """Stands in for an actor's cell: never asks to be scheduled (nobody drains)."""

    token: list[bool] = []  # no token: a turn is already queued


def _messages(items: list[Any]) -> list[Any]:
    """Drained items as messages (a tell_many batch is one item holding a list)."""
    out: list[Any] = []
    for item in items:
        out.extend(item if isinstance(item, list) else [item.message])
    return out


def _inbox(capacity: int, overflow: Overflow) -> tuple[Any, list[str], list[Any]]:
    from actorwire.actors.mailbox import BoundedInbox

    rejected: list[str] = []
    dropped: list[Any] = []
    inbox = BoundedInbox(
        Mailbox(capacity, overflow, put_timeout=0.01),
        _NoCell(),
        lambda env, why: rejected.append(why),
        lambda env, why: dropped.append(env.message),
    )
    return inbox, rejected, dropped


def test_bounded_put_many_takes_what_fits_in_order_then_applies_the_policy() -> None:
    inbox, _, _ = _inbox(100, Overflow.BACKPRESSURE)
    assert inbox.put_many(list(range(50))) == 0
    assert _messages(inbox.drain(1000)) == list(range(50))

    inbox, _, dropped = _inbox(3, Overflow.DROP_NEWEST)
    assert inbox.put_many([1, 2, 3, 4, 5]) == 0
    assert dropped == [4, 5] and inbox.dropped == 2
    assert _messages(inbox.drain(10)) == [1, 2, 3]

    inbox, _, dropped = _inbox(3, Overflow.DROP_OLDEST)
    assert inbox.put_many([1, 2, 3, 4, 5]) == 0
    assert dropped == [1, 2]
    assert _messages(inbox.drain(10)) == [3, 4, 5]

    inbox, _, _ = _inbox(3, Overflow.FAIL)
    assert inbox.put_many([1, 2, 3, 4, 5]) == 2  # refused, counted
    assert inbox.dropped == 2
    assert _messages(inbox.drain(10)) == [1, 2, 3]

    inbox, _, _ = _inbox(3, Overflow.BACKPRESSURE)  # put_timeout 0.01 s, nobody draining
    assert inbox.put_many([1, 2, 3, 4]) == 1
    assert _messages(inbox.drain(10)) == [1, 2, 3]


def test_bounded_put_many_on_a_closed_inbox_rejects_each_message() -> None:
    inbox, rejected, _ = _inbox(10, Overflow.BACKPRESSURE)
    inbox.close()
    inbox.put_many([1, 2])
    assert rejected == ["actor is dead", "actor is dead"]
