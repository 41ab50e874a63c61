"""Regression tests for the dispatcher runtime: each pins down one race once found in it
(the docstrings tell the interleaving that used to go wrong)."""

from __future__ import annotations

import threading
import time
from typing import Any

from actorwire.actors import (
    Actor,
    ActorSystem,
    ChildSpec,
    Mailbox,
    Overflow,
    PoolDispatcher,
    Strategy,
    Supervisor,
)

from tests.actors.conftest import Block, Boom, Journal, Probe, probe_factory
from tests.support.waiting import wait_until


class Sink(Actor):
    def on_receive(self, message: Any) -> Any:
        return None


def test_depth_of_a_bounded_mailbox_never_raises_while_senders_tell() -> None:
    """BoundedInbox.qsize (mailbox.py:585) iterates the live deque ``_items`` without the
    inbox lock to count system items. A sender appending (or the actor draining) during that
    iteration makes it raise ``RuntimeError: deque mutated during iteration``, so
    ``Address.depth()`` and ``ActorSystem.metrics()`` (pipeline stats, /metrics) fail under
    load on every bounded (pipeline stage) mailbox."""
    with ActorSystem("rv-qsize", dispatcher=PoolDispatcher(workers=2)) as system:
        address = system.spawn(
            Sink, mailbox=Mailbox(capacity=100_000, overflow=Overflow.DROP_NEWEST)
        )
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                for i in range(1000):
                    address.tell(i)

        producer = threading.Thread(target=produce, name="rv-producer")
        producer.start()
        errors: list[BaseException] = []
        deadline = time.monotonic() + 3.0
        try:
            while time.monotonic() < deadline and not errors:
                try:
                    address.depth()
                    system.metrics()
                except RuntimeError as exc:
                    errors.append(exc)
        finally:
            stop.set()
            producer.join(5.0)
        assert not errors, f"depth()/metrics() raised under load: {errors[0]!r}"


def test_messages_drained_by_an_abandoned_incarnation_reach_the_next_one() -> None:
    """An incarnation that does not stop within its shutdown_timeout is abandoned
    (system.py:585-590) while its turn still runs. When that turn's handler returns, the
    turn sees ``_aw_stop_now`` and writes the rest of what it drained into ``cell.backlog``
    (actor.py:242-244) for the next incarnation, but nobody schedules the cell: the new
    incarnation is idle with its token up, so the messages sit in the backlog until some
    unrelated message arrives (a lost wake-up; forever if none does). The stale turn also
    overwrites whatever backlog the new incarnation had."""
    journal = Journal()
    first, second = Block(), Block()
    with ActorSystem("rv-abandon", dispatcher=PoolDispatcher(workers=2)) as system:
        system.spawn(
            Supervisor,
            [
                ChildSpec("a", probe_factory(journal, "a"), shutdown_timeout=0.2),
                ChildSpec("b", probe_factory(journal, "b")),
            ],
            strategy=Strategy.ONE_FOR_ALL,
            max_restarts=10,
        )
        a, b = system.lookup("a"), system.lookup("b")
        a.tell(first)
        first.wait_entered()
        # Queued behind ``first``: the next turn drains all three together.
        a.tell(second)
        a.tell("m2")
        a.tell("m3")
        first.release.set()
        second.wait_entered()
        b.tell(Boom())  # one_for_all: a is killed, does not stop in 0.2 s, is abandoned
        wait_until(lambda: journal.incarnations("a") == 2, what="a restarted")
        second.release.set()  # the abandoned turn ends, leaving m2, m3 in the backlog
        wait_until(lambda: ("stop", "a", 1) in journal.events, what="old a ended")
        wait_until(
            lambda: journal.messages("a") == ["m2", "m3"],
            timeout=3.0,
            what="m2 and m3 handled by the new incarnation (they sit in cell.backlog, "
            "nobody scheduled; metrics show a's mailbox_depth == 2)",
        )


def test_a_kill_takes_effect_between_the_messages_of_a_tell_many_batch() -> None:
    """A non-graceful stop (``_aw_stop_now``: a one_for_all sibling failure, a supervisor
    giving up, _finalize) ends an incarnation after its current message: what follows stays
    queued for the next incarnation. But a ``tell_many`` batch is one mailbox item and
    ``_aw_turn`` checks ``_aw_stop_now`` only between items (actor.py:222-244), so the
    killed incarnation goes on to handle every remaining message of the batch after the kill
    (up to 512 or more records; past shutdown_timeout it is abandoned and then runs
    concurrently with the new incarnation). Told one by one, the same messages go to the
    new incarnation: the per-message semantics of a batch differ."""
    journal = Journal()
    block = Block()
    with ActorSystem("rv-kill-batch", dispatcher=PoolDispatcher(workers=2)) as system:
        system.spawn(
            Supervisor,
            [
                ChildSpec("a", probe_factory(journal, "a")),
                ChildSpec("b", probe_factory(journal, "b")),
            ],
            strategy=Strategy.ONE_FOR_ALL,
            max_restarts=10,
        )
        a, b = system.lookup("a"), system.lookup("b")
        a.tell_many([block, "m2", "m3"])
        block.wait_entered()
        b.tell(Boom())  # one_for_all: the supervisor kills a (a's current message first)
        incarnation = a._cell.actor
        wait_until(lambda: incarnation._aw_stop_now, what="the kill of a requested")
        block.release.set()
        wait_until(lambda: journal.incarnations("a") == 2, what="a restarted")
        wait_until(lambda: len(journal.messages("a")) == 2, what="m2 and m3 handled")
        handled_by = [(e[2], e[3]) for e in journal.kinds("msg") if e[1] == "a"]
        assert handled_by == [(2, "m2"), (2, "m3")], (
            f"the killed incarnation kept handling its batch after the kill: {handled_by}"
        )


def test_shutdown_dead_letters_what_a_stuck_actor_had_drained() -> None:
    """shutdown() gives up on an actor stuck in a handler and finalizes its cell
    (system.py:660-662): the inbox and backlog are dead-lettered *now*. The stuck turn still
    holds the rest of its drained items in a local list; when its handler returns it writes
    them to ``cell.backlog`` (actor.py:242-244) of a dead cell that nobody reads again. The
    messages vanish: no dead letter, no count, no log ("never silently dropped")."""
    system = ActorSystem("rv-stuck-shutdown", dispatcher=PoolDispatcher(workers=2))
    journal = Journal()
    first, second = Block(), Block()
    try:
        a = system.spawn(Probe, journal, "a")
        a.tell(first)
        first.wait_entered()
        a.tell(second)
        a.tell("m2")
        a.tell("m3")
        first.release.set()
        second.wait_entered()  # this turn drained [second, m2, m3]
        system.shutdown(timeout=0.3)  # a does not stop in time and is finalized
    finally:
        first.release.set()
        second.release.set()
    wait_until(lambda: ("stop", "a", 1) in journal.events, what="the stuck turn ended")
    assert journal.messages("a") == []
    assert system.dead_letters.count == 2, (
        f"m2 and m3 were neither handled nor dead-lettered "
        f"(dead letters: {system.dead_letters.count})"
    )
