"""Dispatchers: actors multiplexed on a pool of workers, blocking hand-offs, pinned actors."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from actorwire.actors import (
    Actor,
    ActorStartError,
    ActorSystem,
    Address,
    ChildSpec,
    PinnedDispatcher,
    PoolDispatcher,
    PoolExhausted,
    Supervisor,
)

from tests.support.waiting import wait_until


class Echo(Actor):
    def on_receive(self, message: Any) -> Any:
        return message


class Counter(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return None


class Gate(Actor):
    """Blocks its worker in the handler until the event in the message is set."""

    def on_receive(self, message: Any) -> Any:
        entered, release = message
        entered.set()
        release.wait(10)


class Forward(Actor):
    """Answers an ask by asking the next actor in a chain (nested asks on the pool)."""

    def __init__(self, nxt: Address | None) -> None:
        super().__init__()
        self.nxt = nxt

    def on_receive(self, message: Any) -> Any:
        if self.nxt is None:
            return message
        return self.nxt.ask(message, timeout=5.0)


def _chain(system: ActorSystem, length: int) -> Address:
    nxt: Address | None = None
    for _ in range(length):
        nxt = system.spawn(Forward, nxt)
    assert nxt is not None
    return nxt


def test_idle_actors_cost_no_thread(make_system: Any) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=2))
    before = len(system.threads())
    addresses = [system.spawn(Echo) for _ in range(2000)]
    assert len(system.threads()) == before  # 2 workers, the watchdog, I/O, timers
    assert before == 5
    assert [a.ask(i) for i, a in enumerate(addresses[::100])] == list(range(20))


def test_each_actor_handles_one_message_at_a_time_in_order(make_system: Any) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=4, throughput=3))
    overlaps: list[str] = []

    class Strict(Actor):
        def __init__(self) -> None:
            super().__init__()
            self.busy = False
            self.seen: list[tuple[int, int]] = []

        def on_receive(self, message: Any) -> Any:
            if message == "seen":
                return self.seen
            if self.busy:
                overlaps.append(self.address.name)
            self.busy = True
            self.seen.append(message)
            self.busy = False
            return None

    actors = [system.spawn(Strict) for _ in range(20)]

    def produce(p: int) -> None:
        for i in range(300):
            actors[i % 20].tell((p, i))

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join(10)
    for n, actor in enumerate(actors):
        seen = actor.ask("seen")
        assert len(seen) == 4 * 15
        for p in range(4):  # each producer's messages arrive in the order it sent them
            mine = [i for q, i in seen if q == p]
            assert mine == sorted(mine) == list(range(n, 300, 20))
    assert overlaps == []


def test_a_turn_yields_after_throughput_messages(make_system: Any) -> None:
    system = make_system(
        dispatcher=PoolDispatcher(workers=1, throughput=10, blocking_threshold=30.0)
    )
    order: list[str] = []

    class Busy(Actor):
        def on_receive(self, message: Any) -> Any:
            if isinstance(message, threading.Event):
                message.wait(10)
            order.append("busy")

    class Other(Actor):
        def on_receive(self, message: Any) -> Any:
            order.append("other")

    busy = system.spawn(Busy)
    other = system.spawn(Other)
    release = threading.Event()
    busy.tell(release)  # holds the only worker while the rest queue up
    for _ in range(99):
        busy.tell("work")
    other.tell("hello")
    release.set()
    wait_until(lambda: len(order) == 101)
    assert order.index("other") == 10  # after one turn of Busy, not after all 100


def test_a_worker_blocked_in_a_handler_is_replaced(make_system: Any) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=1, blocking_threshold=0.02))
    gate = system.spawn(Gate)
    echo = system.spawn(Echo)
    entered, release = threading.Event(), threading.Event()
    gate.tell((entered, release))
    assert entered.wait(5)
    try:
        assert echo.ask("still running", timeout=5.0) == "still running"
        assert system.metrics()["dispatcher"]["blocked_handoffs"] >= 1
    finally:
        release.set()
    # The replacement retires once the blocked worker is back: the pool returns to size.
    wait_until(lambda: system.metrics()["dispatcher"]["workers"] == 1)


def test_time_sleep_in_handlers_stalls_no_other_actor(make_system: Any) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=2, blocking_threshold=0.02))
    release = threading.Event()
    sleepers = [system.spawn(Gate) for _ in range(5)]
    entered = [threading.Event() for _ in sleepers]
    for s, e in zip(sleepers, entered, strict=True):
        s.tell((e, release))
    try:
        assert all(e.wait(5) for e in entered)
        counters = [system.spawn(Counter) for _ in range(50)]
        for i, c in enumerate(counters):
            c.tell(i)
        assert [c.ask("seen") for c in counters] == [[i] for i in range(50)]
    finally:
        release.set()


def test_asks_between_pooled_actors_never_deadlock_even_with_one_worker(
    make_system: Any,
) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=1, max_blocked=16))
    head = _chain(system, 12)
    assert head.ask("through twelve actors", timeout=10.0) == "through twelve actors"


def test_an_ask_chain_deeper_than_the_bound_fails_at_once_with_a_named_error(
    make_system: Any,
) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=1, max_blocked=3))
    head = _chain(system, 6)
    with pytest.raises(PoolExhausted, match="max_blocked"):
        head.ask("too deep", timeout=10.0)
    # The pool is intact afterwards.
    assert _chain(system, 3).ask("fits", timeout=5.0) == "fits"


def test_a_pinned_actor_runs_on_a_thread_of_its_own_until_it_stops(make_system: Any) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=1))

    class WhereAmI(Actor):
        def on_start(self) -> None:
            self.start_thread = threading.current_thread().name

        def on_receive(self, message: Any) -> Any:
            return self.start_thread, threading.current_thread().name

    pinned = system.spawn(WhereAmI, name="tailer", dispatcher=PinnedDispatcher())
    pooled = system.spawn(WhereAmI, name="pooled")
    started_on, runs_on = pinned.ask("where")
    assert started_on == runs_on and "tailer" in runs_on
    assert "worker" in pooled.ask("where")[1]
    thread = next(t for t in system.threads() if t.name == runs_on)
    assert pinned.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_a_pinned_child_gets_a_new_thread_on_each_start_of_its_address(
    make_system: Any,
) -> None:
    system = make_system()

    class Crashy(Actor):
        def on_receive(self, message: Any) -> Any:
            if message == "crash":
                raise RuntimeError("crash")
            return threading.current_thread().name

    system.spawn(
        Supervisor,
        children=[ChildSpec("crashy", Crashy, dispatcher=PinnedDispatcher())],
        name="sup",
    )
    child = system.lookup("crashy")
    first = child.ask("name")
    child.tell("crash")
    wait_until(lambda: system.metrics()["actors"]["crashy"]["restarts"] == 1)
    assert child.ask("name") == first  # the address keeps its thread across restarts


def test_a_pinned_actor_that_fails_to_start_reports_it(make_system: Any) -> None:
    system = make_system()
    before = len(system.threads())

    class NoStart(Actor):
        def on_start(self) -> None:
            raise ValueError("cannot start")

    with pytest.raises(ActorStartError, match="cannot start"):
        system.spawn(NoStart, dispatcher=PinnedDispatcher())
    wait_until(lambda: len(system.threads()) == before)  # its thread ended with it


def test_ask_from_a_pinned_actor_and_from_on_start_work(make_system: Any) -> None:
    system = make_system(dispatcher=PoolDispatcher(workers=1))
    echo = system.spawn(Echo)

    class AsksAtStart(Actor):
        def on_start(self) -> None:
            self.answer = echo.ask("at start")

        def on_receive(self, message: Any) -> Any:
            return self.answer, echo.ask(message)

    pooled = system.spawn(AsksAtStart)
    pinned = system.spawn(AsksAtStart, dispatcher=PinnedDispatcher())
    assert pooled.ask("then") == ("at start", "then")
    assert pinned.ask("then") == ("at start", "then")


def test_current_names_the_actor_running_on_this_thread(make_system: Any) -> None:
    system = make_system()

    class Who(Actor):
        def on_start(self) -> None:
            self.at_start = self.system.current()

        def on_receive(self, message: Any) -> Any:
            return self.at_start, self.system.current()

    who = system.spawn(Who, name="who")
    assert who.ask("?") == (who, who)
    assert system.current() is None


def test_an_actor_asking_itself_is_refused(make_system: Any) -> None:
    system = make_system()

    class Selfish(Actor):
        def on_receive(self, message: Any) -> Any:
            return self.address.ask("again")

    with pytest.raises(RuntimeError, match="asked itself"):
        system.spawn(Selfish).ask("go")


def test_spawn_refuses_arguments_the_actor_does_not_take(make_system: Any) -> None:
    system = make_system()
    with pytest.raises(TypeError, match=r"spawn\(Echo, \.\.\.\).*'nme'"):
        system.spawn(Echo, nme="w")
    with pytest.raises(TypeError, match=r"spawn\(Counter, \.\.\.\)"):
        system.spawn(Counter, 1, 2)
    assert system.actors() == []


def test_bad_dispatcher_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        PoolDispatcher(workers=0)
    with pytest.raises(ValueError, match="throughput"):
        PoolDispatcher(throughput=0)
    with pytest.raises(ValueError, match="blocking_threshold"):
        PoolDispatcher(blocking_threshold=0)
    with pytest.raises(ValueError, match="max_blocked"):
        PoolDispatcher(max_blocked=0)
    with pytest.raises(TypeError, match="PinnedDispatcher serves one actor"):
        ActorSystem("pinned", dispatcher=PinnedDispatcher())
    with pytest.raises(TypeError, match="dispatcher must be a Dispatcher"):
        ActorSystem("bad", dispatcher="pool")  # type: ignore[arg-type]


def test_a_pool_serves_one_system(make_system: Any) -> None:
    pool = PoolDispatcher(workers=1)
    make_system(dispatcher=pool)
    with pytest.raises(RuntimeError, match="already serves"):
        make_system(dispatcher=pool)


def test_tell_many_is_one_mailbox_item_but_depth_counts_messages(make_system: Any) -> None:
    system = make_system()

    class Batches(Actor):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[int] = []

        def on_batch(self, messages: list[Any]) -> None:
            if isinstance(messages[0], threading.Event):
                messages[0].wait(10)
                messages = messages[1:]
            self.batches.append(len(messages))

        def on_receive(self, message: Any) -> Any:
            return self.batches

    actor = system.spawn(Batches)
    release = threading.Event()
    actor.tell(release)
    wait_until(lambda: actor.depth() == 0)  # the gate is being handled
    actor.tell_many(list(range(300)))
    actor.tell_many(list(range(200)))
    assert actor.depth() == 500
    assert len(actor._cell.inbox.items) == 2  # one item per tell_many, no envelope each
    assert system.metrics()["actors"][actor.name]["mailbox_depth"] == 500
    release.set()
    assert actor.ask("batches") == [0, 500]
    assert system.metrics()["actors"][actor.name]["processed"] == 502  # with the ask


@pytest.mark.timeout(60)
def test_fifty_thousand_actors_spawn_answer_and_shut_down(make_system: Any) -> None:
    # Spawn and shutdown do O(1) bookkeeping per actor (a per-spawn scan of every actor or
    # thread made 10,000 spawns take 16 s, so 50,000 would not finish within the timeout).
    system = make_system(dispatcher=PoolDispatcher(workers=2))
    addresses = [system.spawn(Counter) for _ in range(50_000)]
    for i, address in enumerate(addresses):
        address.tell(i)
    assert addresses[-1].ask("seen") == [49_999]
    assert len(system.threads()) == 5
    system.shutdown()
    assert not any(a.is_alive() for a in addresses[::1000])
    assert system.metrics()["totals"]["stopped_actors"] == 50_000


def test_actors_stay_out_of_pykkas_process_global_registry(make_system: Any) -> None:
    import pykka

    system = make_system()
    echo = system.spawn(Echo)
    pinned = system.spawn(Echo, dispatcher=PinnedDispatcher())
    assert echo.ask(1) == pinned.ask(1) == 1
    assert pykka.ActorRegistry.get_all() == []


def test_hand_offs_are_bounded_by_max_blocked(make_system: Any) -> None:
    system = make_system(
        dispatcher=PoolDispatcher(workers=1, blocking_threshold=0.02, max_blocked=3)
    )
    release = threading.Event()
    gates = [system.spawn(Gate) for _ in range(8)]
    entered = [threading.Event() for _ in gates]
    try:
        for gate, e in zip(gates, entered, strict=True):
            gate.tell((e, release))
        # One worker plus three replacements, each then stuck in a gate: no more threads.
        wait_until(lambda: sum(e.is_set() for e in entered) == 4)
        wait_until(lambda: system.metrics()["dispatcher"]["blocked_workers"] == 3)
        assert system.metrics()["dispatcher"]["workers"] == 4
        assert sum(e.is_set() for e in entered) == 4  # the other four wait their turn
    finally:
        release.set()
    assert all(e.wait(10) for e in entered)  # every gate ran once the pool was free
    wait_until(lambda: system.metrics()["dispatcher"]["workers"] == 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_message_is_handled_once_in_order_under_restarts_and_batches(
    make_system: Any, seed: int
) -> None:
    # Four producers tell and tell_many to six supervised actors that fail on some messages
    # and are restarted: every message but the failing ones is handled exactly once, and
    # each producer's messages reach each actor in the order they were sent.
    import random

    system = make_system(hold_limit=20)
    handled: dict[str, list[tuple[int, int]]] = {f"a{k}": [] for k in range(6)}
    lock = threading.Lock()

    class Flaky(Actor):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def on_receive(self, message: Any) -> Any:
            if message == "count":
                return None
            _producer, seq = message
            if seq % 97 == 13:
                raise RuntimeError(f"poison {message}")
            with lock:
                handled[self.name].append(message)
            return None

    from actorwire.actors import Backoff

    system.spawn(
        Supervisor,
        children=[ChildSpec(n, lambda n=n: Flaky(n)) for n in handled],
        max_restarts=1_000_000,
        backoff=Backoff(min=0.0005, max=0.002, factor=2.0, jitter=0.5),
        name="sup",
    )
    targets = [system.lookup(n) for n in handled]

    def produce(p: int) -> None:
        rng = random.Random(seed * 100 + p)
        seq = dict.fromkeys(handled, 0)
        for _ in range(150):
            k = rng.randrange(6)
            name = f"a{k}"
            if rng.random() < 0.5:
                targets[k].tell((p, seq[name]))
                seq[name] += 1
            else:
                size = rng.randrange(1, 20)
                targets[k].tell_many([(p, seq[name] + j) for j in range(size)])
                seq[name] += size
        sent[p] = seq

    sent: dict[int, dict[str, int]] = {}
    producers = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join(20)
    for name, target in zip(handled, targets, strict=True):
        expected = {(p, s) for p in range(4) for s in range(sent[p][name]) if s % 97 != 13}
        wait_until(lambda name=name, expected=expected: len(handled[name]) >= len(expected))
        target.ask("count")
        got = handled[name]
        assert len(got) == len(set(got)) == len(expected)  # once each
        assert set(got) == expected  # none lost
        for p in range(4):
            mine = [s for q, s in got if q == p]
            assert mine == sorted(mine)  # in order
    assert system.metrics()["totals"]["restarts"] >= 6  # every actor failed at least once
    assert system.dead_letters.lost() == {}
