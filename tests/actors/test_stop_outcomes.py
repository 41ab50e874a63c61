"""What ``ActorSystem.stop`` reports: an actor already gone, one busy past the timeout, one
between incarnations, and a pinned actor whose ``on_start`` outlives ``start_timeout``."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorStartError,
    ActorSystem,
    Backoff,
    ChildSpec,
    PinnedDispatcher,
    Supervisor,
)

from tests.actors.conftest import Block, Boom, Journal, Probe, probe_factory
from tests.support.waiting import wait_until


def _events(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]


def test_stopping_an_actor_that_is_already_stopped_returns_true(system: ActorSystem) -> None:
    address = system.spawn(Probe, Journal(), "p", name="p")
    assert address.stop() is True
    assert not address.is_alive()
    assert system.stop(address) is True
    assert address.stop() is True


def test_stop_returns_false_while_the_actor_is_busy_past_the_timeout(
    json_log: io.StringIO,
) -> None:
    journal = Journal()
    with ActorSystem("busy-stop") as system:
        address = system.spawn(Probe, journal, "busy", name="busy")
        block = Block()
        address.tell(block)
        block.wait_entered()
        try:
            assert system.stop(address, timeout=0.2) is False
        finally:
            block.release.set()
        # The stop stays queued: the actor ends once the blocking message is done.
        wait_until(lambda: not address.is_alive(), timeout=5.0, what="the busy actor to stop")
    warnings = [e for e in _events(json_log) if e.get("event") == "actor did not stop in time"]
    assert [w["actor"] for w in warnings] == ["busy"]
    assert ("stop", "busy", 1) in journal.events


def test_stopping_a_child_between_incarnations_ends_it_without_a_restart(
    system: ActorSystem,
) -> None:
    journal = Journal()
    # A long restart backoff keeps the failed child between incarnations while it is stopped.
    system.spawn(
        Supervisor,
        children=[ChildSpec("child", probe_factory(journal, "child"))],
        backoff=Backoff(min=30.0, max=30.0, jitter=0.0),
        name="sup",
    )
    child = system.lookup("child")
    child.tell(Boom())
    wait_until(lambda: journal.kinds("failure"), what="the child to fail")
    wait_until(lambda: system.metrics()["actors"]["child"]["state"] == "held")
    assert system.stop(child) is True
    assert not child.is_alive()
    assert journal.incarnations("child") == 1  # never restarted


def test_a_pinned_actor_whose_on_start_outlives_start_timeout_fails_to_spawn() -> None:
    release = threading.Event()
    entered = threading.Event()

    class SlowStart(Actor):
        def on_start(self) -> None:
            entered.set()
            release.wait(10.0)

    with ActorSystem("slow-start", start_timeout=0.2) as system:
        try:
            with pytest.raises(ActorStartError, match=r"did not finish on_start within 0\.2s"):
                system.spawn(SlowStart, name="slow", dispatcher=PinnedDispatcher())
            assert entered.is_set()
        finally:
            release.set()
