"""Death watch (Terminated) and the timer service (send_after, send_every, cancel)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from actorwire.actors import (
    NORMAL,
    Actor,
    ActorSystem,
    Backoff,
    ChildSpec,
    Mailbox,
    Overflow,
    Supervisor,
    Terminated,
)

from tests.actors.conftest import Block, Boom, Journal, Probe, probe_factory
from tests.support.waiting import wait_until


class Inbox(Actor):
    """Collects every message with its arrival time; an ask returns what it has so far."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.times: list[float] = []
        self.events: dict[Any, threading.Event] = {}

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message and message[0] == "?":
            return list(self.got)
        self.got.append(message)
        self.times.append(time.monotonic())
        return None


def seen(address: Any) -> list[Any]:
    return list(address.ask(("?",), timeout=5.0))


# -- death watch ------------------------------------------------------------------------


def test_watch_delivers_terminated_when_an_actor_stops(system: ActorSystem) -> None:
    watcher = system.spawn(Inbox, name="watcher")
    watched = system.spawn(Probe, Journal(), "w", name="watched")
    system.watch(watcher, watched)
    assert watched.stop(timeout=5.0)
    assert seen(watcher) == [Terminated(watched, NORMAL)]
    assert not seen(watcher)[0].failed


def test_watch_delivers_terminated_with_the_exception_when_an_actor_fails(
    system: ActorSystem,
) -> None:
    watcher = system.spawn(Inbox)
    watched = system.spawn(Probe, Journal(), "w")
    system.watch(watcher, watched)
    error = RuntimeError("crashed")
    watched.tell(Boom(error))
    wait_until(lambda: seen(watcher), what="Terminated")
    [terminated] = seen(watcher)
    assert terminated == Terminated(watched, error)
    assert terminated.failed


def test_a_restart_is_not_a_death(system: ActorSystem) -> None:
    journal = Journal()
    fast = Backoff(min=0.001, max=0.01, jitter=0.0)
    system.spawn(Supervisor, children=[ChildSpec("c", probe_factory(journal, "c"))], backoff=fast)
    watcher = system.spawn(Inbox)
    child = system.lookup("c")
    system.watch(watcher, child)
    child.tell(Boom())
    wait_until(lambda: journal.incarnations("c") == 2)
    assert child.ask("restarted", timeout=5.0) == "restarted"
    assert seen(watcher) == []
    assert child.stop(timeout=5.0)
    assert seen(watcher) == [Terminated(child, NORMAL)]


def test_watching_a_dead_address_delivers_at_once(system: ActorSystem) -> None:
    watcher = system.spawn(Inbox)
    watched = system.spawn(Probe, Journal(), "w")
    error = ValueError("gone before watched")
    watched.tell(Boom(error))
    wait_until(lambda: not watched.is_alive())
    system.watch(watcher, watched)
    assert seen(watcher) == [Terminated(watched, error)]


def test_unwatch_stops_the_notification(system: ActorSystem) -> None:
    watcher = system.spawn(Inbox)
    watched = system.spawn(Probe, Journal(), "w")
    system.watch(watcher, watched)
    system.watch(watcher, watched)  # watching twice still notifies once
    system.unwatch(watcher, watched)
    assert watched.stop(timeout=5.0)
    assert seen(watcher) == []


def test_several_watchers_each_get_terminated_once(system: ActorSystem) -> None:
    watchers = [system.spawn(Inbox) for _ in range(3)]
    watched = system.spawn(Probe, Journal(), "w")
    for watcher in watchers:
        system.watch(watcher, watched)
        system.watch(watcher, watched)
    watched.stop()
    for watcher in watchers:
        assert seen(watcher) == [Terminated(watched, NORMAL)]


def test_terminated_for_a_dead_watcher_is_not_a_dead_letter(system: ActorSystem) -> None:
    watcher = system.spawn(Inbox)
    watched = system.spawn(Probe, Journal(), "w")
    system.watch(watcher, watched)
    watcher.stop()
    watched.stop()
    assert system.dead_letters.count == 0


# -- timers -----------------------------------------------------------------------------


def test_send_after_delivers_once_after_the_delay(system: ActorSystem) -> None:
    inbox = system.spawn(Inbox)
    started = time.monotonic()
    timer = system.send_after(0.1, inbox, "ding")
    wait_until(lambda: seen(inbox) == ["ding"])
    assert time.monotonic() - started >= 0.1
    assert system.timers.pending() == 0
    assert not timer.cancelled


def test_a_cancelled_send_after_never_fires(system: ActorSystem) -> None:
    inbox = system.spawn(Inbox)
    timer = system.send_after(0.05, inbox, "cancelled")
    timer.cancel()
    timer.cancel()  # idempotent
    assert timer.cancelled
    # Timers fire in due order, so once the later marker arrives the first had its turn.
    system.send_after(0.1, inbox, "marker")
    wait_until(lambda: seen(inbox) == ["marker"])


def test_send_every_repeats_until_cancelled(system: ActorSystem) -> None:
    inbox = system.spawn(Inbox)
    timer = system.send_every(0.01, inbox, "tick")
    wait_until(lambda: len(seen(inbox)) >= 5, what="five ticks")
    timer.cancel()
    wait_until(lambda: system.timers.pending() == 0)
    # A delivery in flight at cancel() lands before this marker (one timer thread).
    system.send_after(0, inbox, "marker-1")
    wait_until(lambda: "marker-1" in seen(inbox))
    ticks = seen(inbox).count("tick")
    system.send_after(0.1, inbox, "marker-2")  # ten intervals later
    wait_until(lambda: "marker-2" in seen(inbox))
    assert seen(inbox).count("tick") == ticks
    assert seen(inbox)[-2:] == ["marker-1", "marker-2"]


def test_send_every_honours_the_initial_delay_and_interval(system: ActorSystem) -> None:
    inbox = system.spawn(Inbox)
    started = time.monotonic()
    timer = system.send_every(0.05, inbox, "tick", initial_delay=0.0)
    wait_until(lambda: len(seen(inbox)) >= 3)
    timer.cancel()
    elapsed = time.monotonic() - started
    # First tick at once, then one per interval: three ticks take at least two intervals.
    assert elapsed >= 0.1


def test_a_periodic_timer_to_a_dead_actor_stops(system: ActorSystem) -> None:
    inbox = system.spawn(Inbox)
    system.send_every(0.005, inbox, "tick")
    wait_until(lambda: seen(inbox))
    inbox.stop()
    wait_until(lambda: system.timers.pending() == 0, what="the timer to drop its dead target")
    assert system.dead_letters.count <= 1


def test_a_timer_never_blocks_on_a_full_mailbox(system: ActorSystem) -> None:
    journal = Journal()
    mailbox = Mailbox(capacity=1, overflow=Overflow.BACKPRESSURE, put_timeout=30.0)
    full = system.spawn(Probe, journal, "full", name="full", mailbox=mailbox)
    block = Block()
    full.tell(block)
    block.wait_entered()
    full.tell("fills it")
    other = system.spawn(Inbox)
    system.send_after(0, full, "no room")
    system.send_after(0.01, other, "on time")
    wait_until(lambda: seen(other) == ["on time"])
    assert system.metrics()["actors"]["full"]["dropped"] == 1
    block.release.set()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s, a: s.send_after(-1, a, "x"), "delay"),
        (lambda s, a: s.send_every(0, a, "x"), "interval"),
        (lambda s, a: s.send_every(-0.5, a, "x"), "interval"),
    ],
)
def test_bad_timer_arguments_raise_value_error(system: ActorSystem, call: Any, match: str) -> None:
    inbox = system.spawn(Inbox)
    with pytest.raises(ValueError, match=match):
        call(system, inbox)
    assert system.timers.pending() == 0
