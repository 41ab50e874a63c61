"""Supervision with OTP semantics: order, restart types, strategies, intensity, escalation,
backoff, and stable addresses that hold messages while a child restarts."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorStartError,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    Mailbox,
    Overflow,
    Restart,
    Strategy,
    Supervisor,
    SupervisorEscalation,
    Terminated,
    WhichChildren,
)

from tests.actors.conftest import QUIT, Block, Boom, Journal, Probe, probe_factory
from tests.support.waiting import wait_until

FAST = Backoff(min=0.001, max=0.005, factor=2.0, jitter=0.0)
"""Restart backoff short enough not to slow tests down."""


def lifecycle(journal: Journal) -> list[tuple[str, str, int]]:
    """(kind, child, incarnation) of every start, stop and failure, in order."""
    return [(e[0], e[1], e[2]) for e in journal.kinds("start", "stop", "failure")]


def specs(journal: Journal, *ids: str, **kwargs: Any) -> list[ChildSpec]:
    return [ChildSpec(i, probe_factory(journal, i), **kwargs) for i in ids]


def restarts_of(sup: Address) -> dict[str, int]:
    """Ask the supervisor (after anything it is doing) for each child's restart count."""
    return {cid: restarts for cid, _addr, _state, restarts in sup.ask(WhichChildren())}


class FailureLog:
    """A failure listener that records (address, exception) and signals each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Address, BaseException]] = []
        self.event = threading.Event()

    def __call__(self, address: Address, exc: BaseException) -> None:
        self.calls.append((address, exc))
        self.event.set()


def test_children_start_in_order_and_stop_in_reverse(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(Supervisor, children=specs(journal, "a", "b", "c"), name="sup")
    assert lifecycle(journal) == [("start", "a", 1), ("start", "b", 1), ("start", "c", 1)]
    assert sup.stop(timeout=5.0)
    assert lifecycle(journal)[3:] == [("stop", "c", 1), ("stop", "b", 1), ("stop", "a", 1)]
    for cid in ("a", "b", "c"):
        with pytest.raises(LookupError):
            system.lookup(cid)


def test_a_child_address_survives_its_restart(system: ActorSystem) -> None:
    journal = Journal()
    system.spawn(Supervisor, children=specs(journal, "a"), backoff=FAST, name="sup")
    address = system.lookup("a")
    address.tell(Boom())
    wait_until(lambda: journal.incarnations("a") == 2)
    assert address.is_alive()
    assert system.lookup("a") == address
    assert address.ask("after", timeout=5.0) == "after"
    assert journal.messages("a") == ["after"]


@pytest.mark.parametrize("how", ["failure", "normal exit"])
def test_a_permanent_child_is_always_restarted(system: ActorSystem, how: str) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a", restart=Restart.PERMANENT),
        backoff=FAST,
        name="sup",
    )
    system.lookup("a").tell(Boom() if how == "failure" else QUIT)
    wait_until(lambda: journal.incarnations("a") == 2)
    assert restarts_of(sup) == {"a": 1}
    assert system.lookup("a").ask("back", timeout=5.0) == "back"


def test_a_transient_child_is_restarted_after_a_failure(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor, children=specs(journal, "t", restart=Restart.TRANSIENT), backoff=FAST
    )
    system.lookup("t").tell(Boom())
    wait_until(lambda: journal.incarnations("t") == 2)
    assert restarts_of(sup) == {"t": 1}


def test_a_transient_child_is_not_restarted_after_a_normal_exit(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor, children=specs(journal, "t", restart=Restart.TRANSIENT), backoff=FAST
    )
    child = system.lookup("t")
    child.tell(QUIT)
    wait_until(lambda: not child.is_alive(), what="the transient child to be removed")
    assert restarts_of(sup) == {}
    assert journal.incarnations("t") == 1
    with pytest.raises(LookupError):
        system.lookup("t")


@pytest.mark.parametrize("how", ["failure", "normal exit"])
def test_a_temporary_child_is_never_restarted(system: ActorSystem, how: str) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "tmp", restart=Restart.TEMPORARY) + specs(journal, "keep"),
        backoff=FAST,
    )
    child = system.lookup("tmp")
    child.tell(Boom() if how == "failure" else QUIT)
    wait_until(lambda: not child.is_alive(), what="the temporary child to be removed")
    assert restarts_of(sup) == {"keep": 0}
    assert journal.incarnations("tmp") == 1
    assert sup.is_alive()


def test_one_for_one_restarts_only_the_failed_child(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a", "b", "c"),
        strategy=Strategy.ONE_FOR_ONE,
        backoff=FAST,
    )
    system.lookup("b").tell(Boom())
    wait_until(lambda: journal.incarnations("b") == 2)
    assert restarts_of(sup) == {"a": 0, "b": 1, "c": 0}
    assert lifecycle(journal)[3:] == [("failure", "b", 1), ("start", "b", 2)]


def test_one_for_all_restarts_every_sibling_stopping_in_reverse(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a", "b", "c"),
        strategy=Strategy.ONE_FOR_ALL,
        backoff=FAST,
    )
    system.lookup("b").tell(Boom())
    wait_until(lambda: journal.incarnations("c") == 2)
    assert restarts_of(sup) == {"a": 1, "b": 1, "c": 1}
    assert lifecycle(journal)[3:] == [
        ("failure", "b", 1),
        ("stop", "c", 1),
        ("stop", "a", 1),
        ("start", "a", 2),
        ("start", "b", 2),
        ("start", "c", 2),
    ]


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a", "b", "c", "d"),
        strategy=Strategy.REST_FOR_ONE,
        backoff=FAST,
    )
    system.lookup("b").tell(Boom())
    wait_until(lambda: journal.incarnations("d") == 2)
    assert restarts_of(sup) == {"a": 0, "b": 1, "c": 1, "d": 1}
    assert lifecycle(journal)[4:] == [
        ("failure", "b", 1),
        ("stop", "d", 1),
        ("stop", "c", 1),
        ("start", "b", 2),
        ("start", "c", 2),
        ("start", "d", 2),
    ]


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_a_temporary_sibling_stopped_by_a_restart_is_not_restarted(
    system: ActorSystem, strategy: Strategy
) -> None:
    journal = Journal()
    children = (
        specs(journal, "a") + specs(journal, "tmp", restart=Restart.TEMPORARY) + specs(journal, "c")
    )
    sup = system.spawn(Supervisor, children=children, strategy=strategy, backoff=FAST)
    tmp = system.lookup("tmp")
    failing = "a" if strategy is Strategy.REST_FOR_ONE else "c"
    system.lookup(failing).tell(Boom())
    wait_until(lambda: journal.incarnations("c") == 2)
    assert not tmp.is_alive()
    assert journal.incarnations("tmp") == 1
    assert set(restarts_of(sup)) == {"a", "c"}


def test_past_the_intensity_a_top_level_supervisor_stops_children_and_reports(
    make_system: Any,
) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a", "b"),
        max_restarts=2,
        within=30.0,
        backoff=FAST,
        name="sup",
    )
    a = system.lookup("a")
    b = system.lookup("b")
    for n in (1, 2):
        a.tell(Boom())
        wait_until(lambda n=n: journal.incarnations("a") == n + 1)
    a.tell(Boom(RuntimeError("third strike")))
    assert failures.event.wait(5.0)
    [(address, exc)] = failures.calls
    assert address == sup
    assert isinstance(exc, SupervisorEscalation)
    assert "more than 2 restarts" in str(exc)
    assert str(exc.__cause__) == "third strike"
    wait_until(lambda: not sup.is_alive())
    assert not a.is_alive()
    assert not b.is_alive()
    assert ("stop", "b", 1) in lifecycle(journal)
    assert journal.incarnations("a") == 3


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_siblings_stopped_for_a_restart_do_not_count_against_the_intensity(
    make_system: Any, strategy: Strategy
) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a", "b", "c"),
        strategy=strategy,
        max_restarts=1,
        within=30.0,
        backoff=FAST,
    )
    system.lookup("a").tell(Boom())
    wait_until(lambda: journal.incarnations("c") == 2)
    assert restarts_of(sup) == {"a": 1, "b": 1, "c": 1}
    assert failures.calls == []
    assert sup.is_alive()


def test_restarts_outside_the_window_do_not_count(make_system: Any) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()
    now = [0.0]
    sup = system.spawn(
        Supervisor,
        children=specs(journal, "a"),
        max_restarts=1,
        within=10.0,
        backoff=FAST,
        clock=lambda: now[0],
    )
    for n in (1, 2, 3):
        now[0] += 11.0  # each failure falls outside the window of the previous one
        system.lookup("a").tell(Boom())
        wait_until(lambda n=n: journal.incarnations("a") == n + 1)
    assert restarts_of(sup) == {"a": 3}
    assert failures.calls == []


def test_a_failing_child_supervisor_is_restarted_by_its_parent(make_system: Any) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()

    def inner() -> Supervisor:
        return Supervisor(
            children=specs(journal, "w1", "w2"), max_restarts=1, within=30.0, backoff=FAST
        )

    outer = system.spawn(
        Supervisor,
        children=[ChildSpec("inner", inner)],
        max_restarts=5,
        backoff=FAST,
        name="outer",
    )
    inner_address = system.lookup("inner")
    w1 = system.lookup("w1")
    w1.tell(Boom())
    wait_until(lambda: journal.incarnations("w1") == 2)
    w1.tell(Boom())  # second failure within the window: the inner supervisor gives up
    wait_until(lambda: restarts_of(outer) == {"inner": 1}, what="the inner restart")
    wait_until(lambda: journal.incarnations("w2") == 2)
    # The new inner supervisor started both workers again, in order, behind the same names.
    assert lifecycle(journal)[-2:] == [("start", "w1", 3), ("start", "w2", 2)]
    assert ("stop", "w2", 1) in lifecycle(journal)
    assert system.lookup("inner") == inner_address
    assert system.lookup("w1") == w1
    assert w1.ask("alive", timeout=5.0) == "alive"
    assert inner_address.is_alive()
    assert failures.calls == []
    assert system.metrics()["actors"]["inner"]["restarts"] == 1


def test_restart_backoff_delays_grow(system: ActorSystem) -> None:
    journal = Journal()
    backoff = Backoff(min=0.04, max=1.0, factor=2.0, jitter=0.0)
    # Incarnations 2-4 fail in on_start, so the child restarts four times in a row.
    sup = system.spawn(
        Supervisor,
        children=[ChildSpec("a", probe_factory(journal, "a", fail_start_on=(2, 3, 4)))],
        max_restarts=10,
        within=60.0,
        backoff=backoff,
    )
    system.lookup("a").tell(Boom())
    wait_until(lambda: journal.incarnations("a") == 5)
    [(_, _, _, failed_at)] = journal.kinds("boom")
    starts = [e[3] for e in journal.kinds("start")][1:]
    gaps = [b - a for a, b in zip([failed_at, *starts[:-1]], starts, strict=True)]
    expected = [0.04, 0.08, 0.16, 0.32]
    for gap, delay in zip(gaps, expected, strict=True):
        assert delay * 0.9 <= gap < delay + 0.5, (gaps, expected)
    assert gaps[-1] > gaps[0] * 3
    assert restarts_of(sup) == {"a": 4}


def test_messages_told_during_restart_backoff_reach_the_new_incarnation(
    system: ActorSystem,
) -> None:
    journal = Journal()
    slow = Backoff(min=0.5, max=0.5, factor=1.0, jitter=0.0)
    system.spawn(Supervisor, children=specs(journal, "a"), backoff=slow)
    address = system.lookup("a")
    address.tell("before")
    address.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    for i in range(50):
        address.tell(i)
    assert system.metrics()["actors"]["a"]["state"] == "held"
    answer = address.ask("question", timeout=5.0)
    assert answer == "question"
    handled = [(e[2], e[3]) for e in journal.kinds("msg")]
    assert handled == [(1, "before")] + [(2, i) for i in range(50)] + [(2, "question")]
    assert system.dead_letters.count == 0


def test_a_sender_waits_for_a_full_hold_instead_of_losing_messages(make_system: Any) -> None:
    system = make_system(hold_limit=5)
    journal = Journal()
    slow = Backoff(min=0.3, max=0.3, factor=1.0, jitter=0.0)
    system.spawn(Supervisor, children=specs(journal, "a"), backoff=slow)
    address = system.lookup("a")
    address.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    for i in range(8):  # the sixth waits for the new incarnation
        address.tell(i)
    wait_until(lambda: journal.messages("a") == list(range(8)))
    assert system.dead_letters.count == 0
    assert system.metrics()["actors"]["a"]["dropped"] == 0


def test_a_full_hold_past_its_timeout_is_counted_on_the_actor(make_system: Any) -> None:
    system = make_system(hold_limit=5, hold_timeout=0.0)
    journal = Journal()
    slow = Backoff(min=0.5, max=0.5, factor=1.0, jitter=0.0)
    system.spawn(Supervisor, children=specs(journal, "a"), backoff=slow)
    address = system.lookup("a")
    address.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    for i in range(8):
        address.tell(i)
    assert system.dead_letters.count == 3
    assert system.dead_letters.by_type() == {"int": 3}
    assert [d.message for d in system.dead_letters.recent()] == [5, 6, 7]
    assert system.metrics()["actors"]["a"]["dropped"] == 3
    assert system.metrics()["totals"]["dropped"] == 3
    wait_until(lambda: journal.messages("a") == [0, 1, 2, 3, 4])


def test_a_sender_that_must_never_block_gets_counted_drops_from_a_full_hold(
    make_system: Any,
) -> None:
    from actorwire.actors.dispatcher import mark_never_block

    system = make_system(hold_limit=2)
    journal = Journal()
    slow = Backoff(min=0.5, max=0.5, factor=1.0, jitter=0.0)
    system.spawn(Supervisor, children=specs(journal, "a"), backoff=slow)
    address = system.lookup("a")
    address.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    refused: list[int] = []

    def io_like() -> None:  # as the I/O loop thread is marked
        mark_never_block()
        for i in range(5):
            address.tell(i)
        refused.append(system.metrics()["actors"]["a"]["dropped"])

    thread = threading.Thread(target=io_like)
    thread.start()
    thread.join(5)
    assert refused == [3]
    assert [d.message for d in system.dead_letters.recent()] == [2, 3, 4]
    wait_until(lambda: journal.messages("a") == [0, 1])


def test_a_bounded_child_mailbox_pushes_back_while_the_child_restarts(
    system: ActorSystem,
) -> None:
    journal = Journal()
    slow = Backoff(min=0.2, max=0.2, factor=1.0, jitter=0.0)
    mailbox = Mailbox(capacity=2, overflow=Overflow.BACKPRESSURE, put_timeout=5.0)
    system.spawn(
        Supervisor,
        children=[ChildSpec("a", probe_factory(journal, "a"), mailbox=mailbox)],
        backoff=slow,
    )
    address = system.lookup("a")
    address.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    for i in range(6):  # the third waits for the new incarnation to make room
        address.tell(i)
    wait_until(lambda: journal.messages("a") == list(range(6)))
    assert {e[2] for e in journal.kinds("msg")} == {2}
    assert system.dead_letters.count == 0
    assert system.metrics()["actors"]["a"]["dropped"] == 0


def test_the_hold_limit_also_bounds_a_large_child_mailbox(make_system: Any) -> None:
    system = make_system(hold_limit=2)
    journal = Journal()
    slow = Backoff(min=0.5, max=0.5, factor=1.0, jitter=0.0)
    mailbox = Mailbox(capacity=100, overflow=Overflow.BACKPRESSURE, put_timeout=0.0)
    system.spawn(
        Supervisor,
        children=[ChildSpec("a", probe_factory(journal, "a"), mailbox=mailbox)],
        backoff=slow,
    )
    address = system.lookup("a")
    address.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    for i in range(5):
        address.tell(i)
    assert [d.message for d in system.dead_letters.recent()] == [2, 3, 4]
    assert system.metrics()["actors"]["a"]["dropped"] == 3
    wait_until(lambda: journal.messages("a") == [0, 1])


def test_shutdown_timeout_bounds_the_wait_for_a_stuck_child(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(
        Supervisor,
        children=[ChildSpec("stuck", probe_factory(journal, "stuck"), shutdown_timeout=0.1)],
    )
    block = Block()
    system.lookup("stuck").tell(block)
    block.wait_entered()
    started = time.monotonic()
    assert sup.stop(timeout=5.0)
    assert time.monotonic() - started < 2.0
    block.release.set()  # let the abandoned thread end


def test_messages_left_when_a_temporary_child_dies_go_to_dead_letters(
    system: ActorSystem,
) -> None:
    journal = Journal()
    system.spawn(Supervisor, children=specs(journal, "tmp", restart=Restart.TEMPORARY))
    child = system.lookup("tmp")
    block = Block()
    child.tell(block)
    block.wait_entered()
    child.tell(Boom())
    child.tell("never handled")
    block.release.set()
    wait_until(lambda: not child.is_alive())
    assert system.dead_letters.by_type() == {"str": 1}


def test_stopping_a_supervised_child_removes_it_for_good(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(Supervisor, children=specs(journal, "a", "b"), backoff=FAST)
    a = system.lookup("a")
    assert a.stop(timeout=5.0)
    assert not a.is_alive()
    assert restarts_of(sup) == {"b": 0}
    assert journal.incarnations("a") == 1


def test_which_children_lists_ids_addresses_states_and_restarts(system: ActorSystem) -> None:
    journal = Journal()
    sup = system.spawn(Supervisor, children=specs(journal, "a", "b"))
    assert sup.ask(WhichChildren(), timeout=5.0) == [
        ("a", system.lookup("a"), "running", 0),
        ("b", system.lookup("b"), "running", 0),
    ]


# -- bad input ------------------------------------------------------------------------


class NotActor:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"id": "x", "factory": 42}, TypeError, "factory"),
        ({"id": "x", "factory": "Probe"}, TypeError, "factory"),
        ({"id": "x", "factory": NotActor}, TypeError, "NotActor"),
        ({"id": "", "factory": Probe}, ValueError, "id"),
        ({"id": "x", "factory": Probe, "restart": "always"}, ValueError, "restart"),
        ({"id": "x", "factory": Probe, "shutdown_timeout": 0}, ValueError, "shutdown_timeout"),
    ],
)
def test_bad_child_specs_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ChildSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"children": ["not a spec"]}, TypeError, "ChildSpec"),
        (
            {"children": [ChildSpec("x", Probe), ChildSpec("x", Probe)]},
            ValueError,
            "duplicate",
        ),
        ({"strategy": "one_for_none"}, ValueError, "strategy"),
        ({"max_restarts": -1}, ValueError, "max_restarts"),
        ({"within": 0}, ValueError, "within"),
        ({"backoff": 0.5}, TypeError, "backoff"),
    ],
)
def test_bad_supervisor_arguments_are_refused_by_spawn(
    system: ActorSystem, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        system.spawn(Supervisor, **kwargs)
    assert system.actors() == []


def test_a_factory_returning_a_non_actor_fails_the_start_clearly(make_system: Any) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()
    with pytest.raises(ActorStartError, match=r"child 'bad'.*returned 42"):
        system.spawn(
            Supervisor,
            children=[*specs(journal, "good"), ChildSpec("bad", lambda: 42)],  # type: ignore[arg-type, return-value]
            name="sup",
        )
    # The child started before it is stopped again; nothing stays behind.
    assert lifecycle(journal) == [("start", "good", 1), ("stop", "good", 1)]
    assert system.actors() == []
    assert [a.name for a, _ in failures.calls] == ["sup"]


def test_a_factory_returning_a_non_actor_on_restart_is_a_failure(make_system: Any) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()
    calls = [0]

    def flaky() -> Actor:
        calls[0] += 1
        if calls[0] == 1:
            return Probe(journal, "a")
        return "not an actor"  # type: ignore[return-value]

    sup = system.spawn(
        Supervisor,
        children=[ChildSpec("a", flaky)],
        max_restarts=2,
        within=30.0,
        backoff=FAST,
    )
    system.lookup("a").tell(Boom())
    # Each failed restart counts against the intensity, so the supervisor gives up visibly
    # instead of leaving the child held (and its messages waiting) forever.
    assert failures.event.wait(5.0)
    [(address, exc)] = failures.calls
    assert address == sup
    assert isinstance(exc, SupervisorEscalation)
    assert isinstance(exc.__cause__, TypeError)
    assert "returned 'not an actor'" in str(exc.__cause__)
    assert calls[0] == 3
    wait_until(lambda: not sup.is_alive())


def test_a_factory_that_raises_on_restart_is_a_failure(make_system: Any) -> None:
    failures = FailureLog()
    system = make_system(on_failure=failures)
    journal = Journal()
    calls = [0]

    def flaky() -> Actor:
        calls[0] += 1
        if calls[0] == 1:
            return Probe(journal, "a")
        raise ConnectionError("config server down")

    system.spawn(
        Supervisor, children=[ChildSpec("a", flaky)], max_restarts=1, within=30.0, backoff=FAST
    )
    system.lookup("a").tell(Boom())
    assert failures.event.wait(5.0)
    [(_address, exc)] = failures.calls
    assert isinstance(exc.__cause__, ConnectionError)


def test_a_failed_restart_under_one_for_all_restarts_the_set_again_in_order(
    system: ActorSystem,
) -> None:
    journal = Journal()
    calls = [0]

    def b_factory() -> Actor:
        calls[0] += 1
        if calls[0] == 2:
            raise ConnectionError("not yet")
        return Probe(journal, "b")

    children = [*specs(journal, "a"), ChildSpec("b", b_factory), *specs(journal, "c")]
    sup = system.spawn(Supervisor, children=children, strategy=Strategy.ONE_FOR_ALL, backoff=FAST)
    system.lookup("a").tell(Boom())
    wait_until(lambda: journal.incarnations("b") == 2)
    wait_until(lambda: journal.incarnations("c") == 2)
    assert restarts_of(sup) == {"a": 2, "b": 2, "c": 1}
    assert lifecycle(journal)[3:] == [
        ("failure", "a", 1),
        ("stop", "c", 1),
        ("stop", "b", 1),
        ("start", "a", 2),  # then b's factory fails: the round ends, a stops again
        ("stop", "a", 2),
        ("start", "a", 3),
        ("start", "b", 2),
        ("start", "c", 2),
    ]


class Watcher(Actor):
    def __init__(self, got: list[Any]) -> None:
        super().__init__()
        self.got = got

    def on_receive(self, message: Any) -> Any:
        self.got.append(message)
        return list(self.got)


def test_a_child_of_a_failed_supervisor_is_reported_dead_to_its_watchers(
    system: ActorSystem,
) -> None:
    journal = Journal()
    system.spawn(Supervisor, children=specs(journal, "a"), max_restarts=0, backoff=FAST)
    got: list[Any] = []
    watcher = system.spawn(Watcher, got)
    a = system.lookup("a")
    system.watch(watcher, a)
    a.tell(Boom())
    wait_until(lambda: got, what="Terminated")
    assert got == [Terminated(a, "shutdown")]


def test_an_actor_on_the_pool_is_never_stalled_by_a_full_hold(make_system: Any) -> None:
    # A pooled sender must not wait on an unbounded mailbox's hold (it would stall
    # everything it feeds): its messages go past the hold and none is lost.
    system = make_system(hold_limit=2)
    journal = Journal()
    slow = Backoff(min=2.0, max=2.0, factor=1.0, jitter=0.0)
    system.spawn(Supervisor, children=specs(journal, "a"), backoff=slow)
    child = system.lookup("a")

    class Feeder(Actor):
        def on_receive(self, message: Any) -> Any:
            for i in range(10):
                child.tell(i)
            return "fed"

    feeder = system.spawn(Feeder)
    child.tell(Boom())
    wait_until(lambda: system.metrics()["actors"]["a"]["state"] == "held")
    assert feeder.ask("go", timeout=1.5) == "fed"  # well before the restart is due
    wait_until(lambda: journal.messages("a") == list(range(10)))
    assert system.metrics()["actors"]["a"]["dropped"] == 0
    assert system.dead_letters.count == 0
