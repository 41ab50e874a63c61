"""StateCell: the facade state every client shows (state, reason, bounded history,
listeners, wait_for)."""

from __future__ import annotations

import threading

import pytest
from actorwire.actors.statecell import StateCell


def test_changes_are_recorded_and_told_a_repeat_is_not() -> None:
    told: list[tuple[str, str]] = []
    cell: StateCell[str] = StateCell("new")
    cell.add_listener(lambda s, r: told.append((s, r)))
    assert cell.set("up", "connected")
    assert not cell.set("up", "again")
    assert cell.set("up", "again, and it matters", force=True)
    assert (cell.state, cell.reason) == ("up", "again, and it matters")
    assert told == cell.history() == [("up", "connected"), ("up", "again, and it matters")]


def test_the_history_is_bounded() -> None:
    cell: StateCell[int] = StateCell(0, history_size=3)
    for i in range(1, 10):
        cell.set(i, f"step {i}")
    assert cell.history() == [(7, "step 7"), (8, "step 8"), (9, "step 9")]


def test_a_listener_that_raises_is_logged_and_the_others_still_hear() -> None:
    heard: list[str] = []
    cell: StateCell[str] = StateCell("a")

    def bad(state: str, reason: str) -> None:
        raise RuntimeError("listener bug")

    cell.add_listener(bad)
    cell.add_listener(lambda s, r: heard.append(s))
    assert cell.set("b")
    assert heard == ["b"]
    cell.remove_listener(bad)
    with pytest.raises(TypeError, match="callable"):
        cell.add_listener("not callable")  # type: ignore[arg-type]


def test_wait_for_a_state_or_a_predicate_from_another_thread() -> None:
    cell: StateCell[str] = StateCell("connecting")
    assert not cell.wait_for("connected", timeout=0.01)
    setter = threading.Thread(target=lambda: cell.set("connected", "up"))
    setter.start()
    assert cell.wait_for("connected", timeout=5)
    setter.join()
    assert cell.wait_for(lambda s: s.startswith("conn"), timeout=0)


def test_bad_history_size_is_refused() -> None:
    with pytest.raises(ValueError, match="history_size"):
        StateCell("x", history_size=0)


def test_a_waiter_wakes_after_the_listeners_have_run() -> None:
    cell: StateCell[str] = StateCell("down")
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []
    lock = threading.Lock()

    def slow_listener(state: str, reason: str) -> None:
        entered.set()
        release.wait(5)
        with lock:
            order.append("listener")

    def waiter() -> None:
        assert cell.wait_for("up", timeout=5)
        with lock:
            order.append("waiter")

    cell.add_listener(slow_listener)
    waiting = threading.Thread(target=waiter)
    waiting.start()
    setter = threading.Thread(target=lambda: cell.set("up"))
    setter.start()
    assert entered.wait(5)
    waiting.join(0.05)
    assert waiting.is_alive()  # told nothing yet: the listener is still running
    release.set()
    waiting.join(5)
    setter.join(5)
    assert order == ["listener", "waiter"]


def test_a_listener_may_wait_for_the_state_it_is_told_of() -> None:
    cell: StateCell[str] = StateCell("down")
    seen: list[bool] = []
    cell.add_listener(lambda state, reason: seen.append(cell.wait_for(state, timeout=5)))
    cell.set("up")
    assert seen == [True]
