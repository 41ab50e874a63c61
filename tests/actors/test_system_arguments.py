"""ActorSystem and spawn refuse bad arguments by name, and child factories must build a new
actor every time; death notices for a dead watcher are dead letters, not lost."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorSystem,
    Address,
    ChildSpec,
    Mailbox,
    Supervisor,
    SupervisorEscalation,
    Terminated,
)

from tests.actors.conftest import Boom, Journal, Probe


class Idle(Actor):
    pass


def test_a_negative_hold_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match=r"hold_timeout must be >= 0 seconds or None, got -1"):
        ActorSystem("x", hold_timeout=-1)


@pytest.mark.parametrize("name", ["", 7])
def test_spawn_refuses_an_empty_or_non_string_name(name: Any) -> None:
    with ActorSystem("names") as system:
        with pytest.raises(ValueError, match=r"actor name must be a non-empty string, got"):
            system.spawn(Idle, name=name)
        assert system.actors() == []


def test_a_system_reprs_with_its_name_and_live_actor_count() -> None:
    with ActorSystem("counted") as system:
        assert repr(system) == "<ActorSystem 'counted' actors=0>"
        system.spawn(Idle, name="a")
        system.spawn(Idle, name="b")
        assert repr(system) == "<ActorSystem 'counted' actors=2>"


def test_a_child_factory_that_returns_the_same_actor_again_fails_the_restart() -> None:
    journal = Journal()
    shared = Probe(journal, "c")
    failures: list[BaseException] = []
    failed = threading.Event()

    def listener(address: Address, error: BaseException) -> None:
        failures.append(error)
        failed.set()

    with ActorSystem("same-actor") as system:
        system.add_failure_listener(listener)
        system.spawn(
            Supervisor,
            children=[ChildSpec("c", lambda: shared)],
            max_restarts=1,
            name="sup",
        )
        system.lookup("c").tell(Boom())
        assert failed.wait(5.0)
    (error,) = failures
    assert isinstance(error, SupervisorEscalation)
    assert "already started; it must build a new one on every call" in repr(error.__cause__)
    assert journal.incarnations("c") == 1


@pytest.mark.parametrize("mailbox", [None, Mailbox(capacity=2)], ids=["unbounded", "bounded"])
def test_a_death_notice_for_a_dead_watcher_is_a_dead_letter(mailbox: Mailbox | None) -> None:
    with ActorSystem("dead-watcher") as system:
        watcher = system.spawn(Idle, name="watcher", mailbox=mailbox)
        watched = system.spawn(Idle, name="watched")
        assert watcher.stop() and watched.stop()
        system.watch(watcher, watched)  # already dead: the notice is delivered at once
        (letter,) = system.dead_letters.recent()
        assert letter.recipient == "watcher"
        assert isinstance(letter.message, Terminated)
        assert letter.message.address == watched
