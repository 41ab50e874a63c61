"""The kit's small pieces refuse bad arguments by name and describe themselves: framers,
TOML checks, state cells, child specs, timers, outboxes and topic indexes."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorSystem,
    ChildSpec,
    Mailbox,
    ManualClock,
    Overflow,
)
from actorwire.actors.framing import FrameError, Leb128Framer, LineFramer
from actorwire.actors.serving import Outbox, TopicIndex
from actorwire.actors.statecell import StateCell
from actorwire.actors.tomlcheck import TomlChecker, TomlError, locate

from tests.support.waiting import wait_until


@pytest.mark.parametrize("size", [True, 1.5, "64"])
def test_a_framer_needs_an_int_max_frame_size(size: Any) -> None:
    with pytest.raises(TypeError, match=rf"max_frame_size must be an int, got {size!r}"):
        LineFramer(max_frame_size=size)


@pytest.mark.parametrize("size", [False, 2.0])
def test_a_leb128_framer_needs_an_int_min_frame_size(size: Any) -> None:
    with pytest.raises(TypeError, match=rf"min_frame_size must be an int, got {size!r}"):
        Leb128Framer(min_frame_size=size)


def test_a_line_frame_is_refused_when_it_would_be_two_lines_or_too_long() -> None:
    framer = LineFramer(max_frame_size=4)
    assert framer.encode(b"abcd") == b"abcd\n"
    with pytest.raises(FrameError, match="a line frame cannot contain a newline"):
        framer.encode(b"a\nb")
    with pytest.raises(FrameError, match="frame of 5 bytes is over the limit of 4"):
        framer.encode(b"abcde")


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda c: c.table(["x"], "t", ("a",)), "<f>: t: must be a table, got an array"),
        (lambda c: c.name(3, "n"), "<f>: n: must be a non-empty string, got 3"),
        (lambda c: c.name("  ", "n"), "<f>: n: must be a non-empty string, got '  '"),
        (lambda c: c.boolean("yes", "b"), "<f>: b: must be true or false, got str 'yes'"),
        (lambda c: c.number(True, "x"), "<f>: x: must be a number, got bool True"),
        (lambda c: c.number("1", "x"), "<f>: x: must be a number, got str '1'"),
    ],
)
def test_toml_checks_name_the_path_and_what_was_expected(read: Any, message: str) -> None:
    with pytest.raises(TomlError) as info:
        read(TomlChecker("<f>"))
    assert str(info.value) == message


def test_toml_checks_pass_good_values_through() -> None:
    check = TomlChecker("<f>")
    assert check.boolean(False, "b") is False
    assert check.number(2, "x", minimum=1) == 2.0
    assert locate("[a]\nb = 1\n", "") is None  # no path: no line


def test_a_state_cell_needs_an_int_history_size_and_reprs_its_state() -> None:
    with pytest.raises(TypeError, match=r"history_size must be an int, got 2\.5"):
        StateCell("idle", history_size=2.5)  # type: ignore[arg-type]
    cell = StateCell("idle", "fresh")
    cell.set("busy", "working")
    assert repr(cell) == "StateCell('busy', 'working')"


class Quiet(Actor):
    pass


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mailbox", {"capacity": 3}, "ChildSpec 'c': mailbox must be a Mailbox"),
        ("dispatcher", "pinned", "ChildSpec 'c': dispatcher must be a Dispatcher, got 'pinned'"),
    ],
)
def test_a_child_spec_refuses_a_mailbox_or_dispatcher_of_the_wrong_type(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        ChildSpec("c", Quiet, **{field: value})


def test_timers_describe_themselves_and_cannot_be_scheduled_after_shutdown() -> None:
    system = ActorSystem("timers")
    try:
        address = system.spawn(Quiet, name="quiet")
        once = system.send_after(60.0, address, "wake")
        every = system.send_every(60.0, address, 7)
        assert repr(once) == "<Timer str -> quiet once>"
        assert repr(every) == "<Timer int -> quiet every 60.0s>"
    finally:
        system.shutdown()
    with pytest.raises(RuntimeError, match="the actor system is shut down; no timers"):
        system.send_after(1.0, address, "late")


def test_a_timer_whose_delivery_raises_is_logged_and_the_others_still_fire(
    json_log: io.StringIO,
) -> None:
    got = threading.Event()

    class Recorder(Actor):
        def on_receive(self, message: Any) -> None:
            got.set()

    def key(message: Any) -> Any:
        return message["symbol"]  # a timer's plain string has no field: raises

    with ActorSystem("timer-errors") as system:
        picky = system.spawn(
            Quiet, name="picky", mailbox=Mailbox(capacity=2, overflow=Overflow.CONFLATE, key=key)
        )
        fine = system.spawn(Recorder, name="fine")
        system.send_after(0.0, picky, "tick")
        system.send_after(0.01, fine, "tick")
        assert got.wait(5.0)

        def logged() -> list[dict[str, Any]]:
            rows = [json.loads(x) for x in json_log.getvalue().splitlines() if x.startswith("{")]
            return [r for r in rows if r.get("event") == "timer delivery failed"]

        (row,) = wait_until(logged, what="the failed delivery to be logged")
        assert row["timer"] == "<Timer str -> picky once>"


def test_a_manual_clock_reprs_its_time() -> None:
    clock = ManualClock(5.0)
    clock.advance(1.5)
    assert repr(clock) == "ManualClock(6.5)"


def test_an_outbox_reprs_its_frames_and_bytes() -> None:
    outbox = Outbox(max_bytes=100, stall_deadline=5.0)
    assert outbox.put(b"abc", now=0.0)
    assert repr(outbox) == "Outbox(1 frames, 3/100 bytes)"


def test_a_topic_index_lists_each_subscribers_keys() -> None:
    index: TopicIndex[str, str] = TopicIndex()
    index.add("alice", "prices")
    index.add("alice", None)  # every key
    index.add("bob", "trades")
    assert index.keys("alice") == {"prices", None}
    assert index.keys("nobody") == set()
    assert sorted(index.subscribers()) == ["alice", "bob"]
