"""How failures are reported: listeners that raise, exceptions whose repr raises, hooks
(``on_stop``, ``on_failure``) that raise, and control messages to a dead actor."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from actorwire.actors import Actor, ActorSystem, Address, Control

from tests.support.waiting import wait_until


def _events(log: io.StringIO, name: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    return [row for row in rows if row.get("event") == name]


class Fails(Actor):
    def on_receive(self, message: Any) -> Any:
        if isinstance(message, BaseException):
            raise message
        return message


class BadRepr(RuntimeError):
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


def test_a_failure_listener_that_raises_is_logged_and_the_others_still_run(
    json_log: io.StringIO,
) -> None:
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def broken(address: Address, error: BaseException) -> None:
        raise LookupError("listener bug")

    def recording(address: Address, error: BaseException) -> None:
        seen.append((address.name, str(error)))
        done.set()

    with ActorSystem("listeners") as system:
        system.add_failure_listener(broken)
        system.add_failure_listener(recording)
        address = system.spawn(Fails, name="fails")
        address.tell(RuntimeError("it broke"))
        assert done.wait(5.0)
    assert seen == [("fails", "it broke")]
    (logged,) = _events(json_log, "failure listener raised")
    assert "listener bug" in logged["error"]


def test_an_exception_whose_repr_raises_is_still_reported_by_type(
    json_log: io.StringIO,
) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def listener(address: Address, error: BaseException) -> None:
        errors.append(error)
        done.set()

    with ActorSystem("bad-repr") as system:
        system.add_failure_listener(listener)
        system.spawn(Fails, name="fails").tell(BadRepr("hidden"))
        assert done.wait(5.0)
    assert isinstance(errors[0], BadRepr)
    reported = _events(json_log, "top-level actor failed")
    assert [r["error"] for r in reported] == ["<BadRepr (repr failed)>"]


def test_an_on_stop_that_raises_is_logged_and_counts_as_a_failure(
    json_log: io.StringIO,
) -> None:
    failures: list[BaseException] = []

    class BadStop(Actor):
        def on_stop(self) -> None:
            raise OSError("cannot close")

    with ActorSystem("bad-stop") as system:
        system.add_failure_listener(lambda address, error: failures.append(error))
        address = system.spawn(BadStop, name="bad-stop")
        assert address.stop() is True
        assert not address.is_alive()
    assert [type(f) for f in failures] == [OSError]
    (logged,) = _events(json_log, "on_stop raised")
    assert "cannot close" in logged["error"]


def test_an_on_failure_that_raises_is_logged_and_the_actor_still_ends(
    json_log: io.StringIO,
) -> None:
    failures: list[BaseException] = []
    done = threading.Event()

    class BadFailureHook(Fails):
        def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
            raise KeyError("hook bug")

    def listener(address: Address, error: BaseException) -> None:
        failures.append(error)
        done.set()

    with ActorSystem("bad-hook") as system:
        system.add_failure_listener(listener)
        address = system.spawn(BadFailureHook, name="hook")
        address.tell(ValueError("first"))
        assert done.wait(5.0)
        wait_until(lambda: not address.is_alive(), what="the failed actor to end")
    assert [str(f) for f in failures] == ["first"]
    (logged,) = _events(json_log, "on_failure raised")
    assert "hook bug" in logged["error"]


def test_a_removed_failure_listener_is_not_called() -> None:
    calls: list[str] = []
    done = threading.Event()

    def removed(address: Address, error: BaseException) -> None:
        calls.append("removed")

    def kept(address: Address, error: BaseException) -> None:
        calls.append("kept")
        done.set()

    with ActorSystem("remove-listener") as system:
        system.add_failure_listener(removed)
        system.add_failure_listener(kept)
        system.remove_failure_listener(removed)
        system.remove_failure_listener(removed)  # not added any more: no error
        system.spawn(Fails, name="fails").tell(RuntimeError("x"))
        assert done.wait(5.0)
    assert calls == ["kept"]


class Nudge(Control):
    __slots__ = ()


def test_control_messages_to_a_dead_actor_are_not_dead_letters() -> None:
    with ActorSystem("control-dead") as system:
        address = system.spawn(Fails, name="gone")
        assert address.stop()
        address.tell(Nudge())
        assert system.dead_letters.count == 0
        address.tell("data")
        assert system.dead_letters.count == 1
