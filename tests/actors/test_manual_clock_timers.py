"""A ManualClock drives the system's timers: ``advance()`` delivers every timer that came due
before it returns, so these tests never wait for real time. An ask answers after every
message queued before it, so asking the actor what it received needs no polling."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from actorwire.actors import Actor, ActorSystem, ManualClock

WHAT = "what did you get?"


class Recorder(Actor):
    """Keeps every message; answers WHAT with the list so far."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == WHAT:
            return list(self.got)
        self.got.append(message)
        return None


def received(address: Any) -> list[Any]:
    got: list[Any] = address.ask(WHAT, timeout=5.0)
    return got


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(100.0)


@pytest.fixture
def make_manual(clock: ManualClock) -> Iterator[Callable[[str], ActorSystem]]:
    systems: list[ActorSystem] = []

    def make(name: str) -> ActorSystem:
        system = ActorSystem(name, clock=clock)
        systems.append(system)
        return system

    yield make
    for system in reversed(systems):
        system.shutdown(timeout=5.0)


@pytest.fixture
def system(make_manual: Callable[[str], ActorSystem]) -> ActorSystem:
    return make_manual("manual")


def test_send_after_fires_when_the_clock_reaches_its_due_time(
    system: ActorSystem, clock: ManualClock
) -> None:
    recorder = system.spawn(Recorder)
    timer = system.send_after(5, recorder, "ping")
    assert clock.advance(4.9) == pytest.approx(104.9)
    assert received(recorder) == []
    assert system.timers.pending() == 1
    clock.advance(0.2)
    assert received(recorder) == ["ping"]
    assert system.timers.pending() == 0
    assert not timer.cancelled
    clock.advance(100)
    assert received(recorder) == ["ping"]  # once only


def test_a_timer_due_exactly_now_fires_and_no_delay_needs_no_advance(
    system: ActorSystem, clock: ManualClock
) -> None:
    recorder = system.spawn(Recorder)
    system.send_after(0, recorder, "at once")
    assert received(recorder) == ["at once"]
    system.send_after(2, recorder, "on the dot")
    clock.advance(2)
    assert received(recorder) == ["at once", "on the dot"]


def test_send_every_fires_once_per_interval_advanced(
    system: ActorSystem, clock: ManualClock
) -> None:
    recorder = system.spawn(Recorder)
    system.send_every(2, recorder, "tick")
    expected = 0
    for step in range(1, 11):
        clock.advance(1)
        expected = step // 2
        assert received(recorder) == ["tick"] * expected, f"after {step} s"
    assert expected == 5


def test_one_long_advance_fires_every_elapsed_tick_in_due_order(
    system: ActorSystem, clock: ManualClock
) -> None:
    recorder = system.spawn(Recorder)
    system.send_every(0.5, recorder, "tick", initial_delay=0.25)
    system.send_after(1.0, recorder, "one")
    system.send_after(0.125, recorder, "first")
    clock.advance(2.0)
    # Ticks at 0.25, 0.75, 1.25, 1.75; "one" at 1.0 falls between the second and third.
    assert received(recorder) == ["first", "tick", "tick", "one", "tick", "tick"]


def test_cancel_stops_one_shot_and_periodic_timers(system: ActorSystem, clock: ManualClock) -> None:
    recorder = system.spawn(Recorder)
    once = system.send_after(1, recorder, "never")
    once.cancel()
    ticks = system.send_every(1, recorder, "tick")
    clock.advance(3)
    assert received(recorder) == ["tick"] * 3
    ticks.cancel()
    clock.advance(10)
    assert received(recorder) == ["tick"] * 3
    assert once.cancelled and ticks.cancelled
    assert system.timers.pending() == 0


def test_a_periodic_timer_to_a_stopped_actor_is_dropped(
    system: ActorSystem, clock: ManualClock
) -> None:
    recorder = system.spawn(Recorder)
    timer = system.send_every(1, recorder, "tick")
    clock.advance(1)
    assert received(recorder) == ["tick"]
    recorder.stop()
    clock.advance(1)  # this tick finds the actor dead and cancels the timer
    assert timer.cancelled
    assert system.timers.pending() == 0


def test_real_time_never_fires_a_manual_timer(system: ActorSystem) -> None:
    recorder = system.spawn(Recorder)
    system.send_after(0.001, recorder, "due in a millisecond of clock time")
    # However long these round trips take, the clock has not moved.
    for _ in range(20):
        assert received(recorder) == []
    assert system.timers.pending() == 1


def test_one_clock_drives_every_system_on_it(
    make_manual: Callable[[str], ActorSystem], clock: ManualClock
) -> None:
    a, b = make_manual("manual-a"), make_manual("manual-b")
    ra, rb = a.spawn(Recorder), b.spawn(Recorder)
    a.send_after(1, ra, "a")
    b.send_after(2, rb, "b")
    clock.advance(1.5)
    assert (received(ra), received(rb)) == (["a"], [])
    clock.advance(1)
    assert (received(ra), received(rb)) == (["a"], ["b"])


def test_advancing_after_shutdown_delivers_nothing(clock: ManualClock) -> None:
    with ActorSystem("manual-shut", clock=clock) as system:
        recorder = system.spawn(Recorder)
        system.send_after(1, recorder, "late")
    clock.advance(5)  # no error: the system's timers left the clock at shutdown
    assert clock() == 105.0


def test_advances_from_several_threads_deliver_each_tick_once(
    system: ActorSystem, clock: ManualClock
) -> None:
    recorder = system.spawn(Recorder)
    system.send_every(1, recorder, "tick")
    start = threading.Barrier(4)

    def advance() -> None:
        start.wait(5.0)
        for _ in range(25):
            clock.advance(0.5)

    threads = [threading.Thread(target=advance) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
    assert clock() == 150.0
    assert received(recorder) == ["tick"] * 50


def test_advance_rejects_negative_time(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        clock.advance(-1)
