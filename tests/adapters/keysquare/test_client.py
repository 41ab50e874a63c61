"""KeySession against the embedded platform, through real gRPC on 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from actorwire.adapters.keysquare import (
    KeyHeader,
    KeyMessage,
    KeySession,
    KeySessionState,
    Subscription,
    SubscriptionType,
)
from actorwire.adapters.keysquare.server import serve

from tests.support.waiting import wait_until

RESTRICTED = """
[platform]
name = "restricted"
heartbeat_interval = 1.0
heartbeat_deadline = 5.0
max_record_bytes = 2048

[[applications]]
name = "demo"
api_key = "demo-key"
read = ["*"]
publish = ["*"]

[[applications]]
name = "reader"
api_key = "reader-key"
read = ["Price"]
publish = []

[[schemas]]
name = "markets"

[[schemas.types]]
name = "Price"
[schemas.types.fields]
symbol = "string"
bid = "float"
ask = "float"
last = "float"
volume = "int"
timestamp = "timestamp"

[[schemas.types]]
name = "Trade"
[schemas.types.fields]
trade_id = "string"
symbol = "string"
price = "float"
quantity = "int"
side = "string"
timestamp = "timestamp"
"""


class Collector:
    """A thread-safe callback that records messages and wakes waiters."""

    def __init__(self) -> None:
        self.messages: list[KeyMessage] = []
        self.cond = threading.Condition()

    def __call__(self, message: KeyMessage) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 5.0) -> list[KeyMessage]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= n, timeout), (
                f"got {len(self.messages)} of {n}"
            )
            return list(self.messages)

    def ids(self) -> list[str]:
        with self.cond:
            return [m["header"]["id"] for m in self.messages]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Any]:
    server = serve(port=0, store_path=str(tmp_path / "store.sqlite"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def restricted(tmp_path: Path) -> Iterator[Any]:
    cfg = tmp_path / "restricted.toml"
    cfg.write_text(RESTRICTED)
    server = serve(port=0, config=str(cfg))
    try:
        yield server
    finally:
        server.stop()


def session_for(server: Any, app: str = "demo", key: str = "demo-key", **kw: Any) -> KeySession:
    return KeySession(app, key, f"127.0.0.1:{server.port}", timeout=5, **kw)


@pytest.fixture
def ks(platform: Any) -> Iterator[KeySession]:
    session = session_for(platform)
    try:
        yield session
    finally:
        session.stop()


def price(symbol: str, bid: float = 1.0) -> dict[str, Any]:
    return {"symbol": symbol, "bid": bid, "ask": bid + 0.5, "last": bid, "volume": 10}


# -- lifecycle -------------------------------------------------------------------------


def test_start_walks_the_states_in_order(platform: Any) -> None:
    seen: list[KeySessionState] = []
    session = session_for(platform, session_state_listener=lambda s, m: seen.append(s))
    try:
        assert session.status() is KeySessionState.CONNECTED
        assert seen[:6] == [
            KeySessionState.REGISTERING,
            KeySessionState.REGISTERED,
            KeySessionState.CONNECTING,
            KeySessionState.DOWNLOADING_SCHEMA,
            KeySessionState.SCHEMA_DOWNLOADED,
            KeySessionState.CONNECTED,
        ]
    finally:
        session.stop()
    assert session.status() is KeySessionState.DISCONNECTED
    assert seen[-1] is KeySessionState.DISCONNECTED
    with pytest.raises(RuntimeError, match="stopped"):
        session.start()


def test_manual_start_and_context_manager(platform: Any) -> None:
    session = session_for(platform, auto_start=False)
    assert session.status() is KeySessionState.START
    with pytest.raises(RuntimeError, match="not started"):
        session.snapshot("Price")
    with session:
        assert session.status() is KeySessionState.CONNECTED
    assert session.status() is KeySessionState.DISCONNECTED


def test_wrong_api_key_fails_registration_without_leaking_it(platform: Any) -> None:
    states: list[KeySessionState] = []
    with pytest.raises(RuntimeError) as info:
        session_for(
            platform, key="not-the-key-123", session_state_listener=lambda s, m: states.append(s)
        )
    assert "REGISTRATION_FAILED" in str(info.value)
    assert "not-the-key-123" not in str(info.value)
    assert KeySessionState.REGISTRATION_FAILED in states


def test_exit_on_state_error_false_does_not_raise(platform: Any) -> None:
    session = session_for(platform, key="wrong", exit_on_state_error=False)
    try:
        assert session.status() is KeySessionState.REGISTRATION_FAILED
    finally:
        session.stop()


def test_unreachable_platform_times_out_with_runtime_error(platform: Any) -> None:
    port = platform.port
    platform.stop()
    with pytest.raises(RuntimeError, match="did not connect"):
        KeySession("demo", "demo-key", f"127.0.0.1:{port}", timeout=1)


def test_bad_arguments_raise_at_once() -> None:
    with pytest.raises(ValueError, match="hostname:port"):
        KeySession("demo", "demo-key", "no-port", auto_start=False)
    with pytest.raises(ValueError, match="application_name"):
        KeySession("", "demo-key", "localhost:1", auto_start=False)


def test_api_key_never_in_repr_or_logs(platform: Any, json_log: io.StringIO) -> None:
    session = session_for(platform)
    session.publish("Price", "AAPL", price("AAPL"))
    text = repr(session) + repr(session._adapter) + json.dumps(session.get_session_data())
    session.stop()
    assert "demo-key" not in text
    assert "demo-key" not in json_log.getvalue()
    assert "session state" in json_log.getvalue()


# -- publish and snapshot ------------------------------------------------------------------


def test_publish_acks_and_snapshot_returns_dataframe_and_list(ks: KeySession) -> None:
    ack = ks.publish("Price", "AAPL", price("AAPL", 150.25))
    assert ack["status"] == "OK"
    ks.publish("Price", "MSFT", price("MSFT", 380.5), group="EQUITY", source="DESK_1")
    df = ks.snapshot("Price")
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 2
    assert {"schema", "data_type", "source", "group", "id", "seq", "symbol", "bid"} <= set(
        df.columns
    )
    row = df.set_index("id").loc["MSFT"]
    assert row["group"] == "EQUITY" and row["source"] == "DESK_1" and row["bid"] == 380.5
    aapl = df.set_index("id").loc["AAPL"]
    assert aapl["source"] == "demo" and aapl["group"] == "NONE"
    records = ks.snapshot("Price", id="AAPL", return_type="list")
    assert len(records) == 1
    assert isinstance(records[0], KeyMessage)
    assert records[0].data["bid"] == 150.25
    assert records[0].header.id == "AAPL"
    json.dumps(records[0])  # a KeyMessage is a plain JSON-able dict


def test_publish_errors(ks: KeySession) -> None:
    with pytest.raises(ValueError, match="Price"):
        ks.publish("Prices", "X", price("X"))
    with pytest.raises(ValueError, match="bid"):
        ks.publish("Price", "X", {"symbol": "X", "bid": "not a number"})
    with pytest.raises(ValueError, match="colour"):
        ks.publish("Price", "X", {"symbol": "X", "colour": "red"})
    with pytest.raises(ValueError, match="return_type"):
        ks.snapshot("Price", return_type="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="close matches"):
        ks.snapshot("Trades")


def test_publish_permission_and_server_side_errors(restricted: Any) -> None:
    reader = session_for(restricted, app="reader", key="reader-key")
    try:
        with pytest.raises(PermissionError):
            reader.publish("Price", "X", price("X"))
        with pytest.raises(PermissionError):
            reader.snapshot("Trade")
        with pytest.raises(PermissionError):
            reader.subscribe("Trade", callback=lambda m: None)
    finally:
        reader.stop()
    demo = session_for(restricted)
    try:
        # The platform announced its limit: an oversize record is refused before the wire.
        big = price("X") | {"symbol": "X" * 5000}
        sent = restricted.stats()["publish_requests"]
        with pytest.raises(ValueError, match=r"is 50\d\d bytes, over the platform's limit of 2048"):
            demo.publish("Price", "X", big)
        with pytest.raises(ValueError, match="over the platform's limit"):
            demo.publish_many("Price", [("Y", price("Y")), ("X", big)])
        with pytest.raises(ValueError, match="the patch is"):
            demo.edit("Price", "Y", {"symbol": "X" * 5000})
        assert restricted.stats()["publish_requests"] == sent
        assert demo.publish("Price", "Y", price("Y"))["status"] == "OK"
        assert demo.status() is KeySessionState.CONNECTED
        assert demo._link is not None and demo._link.status()["reconnects"] == 0
    finally:
        demo.stop()


def test_catalog_sample_and_session_data(ks: KeySession) -> None:
    assert ("markets", "Price") in ks.catalog()
    assert ("markets", "Instrument") in ks.catalog()
    sample = ks.sample("Price")
    assert sample.header.data_type == "Price"
    assert sample.data["bid"] == "float" and sample.data["symbol"] == "string"
    data = ks.get_session_data()
    assert data["application_name"] == "demo"
    assert data["status"] == "CONNECTED"
    assert data["port"] == int(ks.url.rsplit(":", 1)[1])
    assert data["session_id"]


# -- subscriptions -------------------------------------------------------------------------


def test_subscribe_delivers_cached_before_returning_then_live(ks: KeySession) -> None:
    for sym in ("A", "B", "C"):
        ks.publish("Price", sym, price(sym))
    got = Collector()
    sub = ks.subscribe("Price", callback=got)
    assert sorted(got.ids()) == ["A", "B", "C"]  # delivered before subscribe returned
    ks.publish("Price", "D", price("D"))
    assert got.wait(4)[-1]["header"]["id"] == "D"
    assert isinstance(sub, Subscription)


def test_live_only_skips_the_cache(ks: KeySession) -> None:
    ks.publish("Price", "OLD", price("OLD"))
    got = Collector()
    ks.subscribe("Price", callback=got, subscription_type=SubscriptionType.LIVE_ONLY)
    ks.publish("Price", "NEW", price("NEW"))
    got.wait(1)
    assert got.ids() == ["NEW"]


def test_id_filter_and_wildcards(ks: KeySession) -> None:
    only = Collector()
    ks.subscribe("Price", callback=only, id="AAPL")
    ks.publish("Price", "MSFT", price("MSFT"))
    ks.publish("Price", "AAPL", price("AAPL"))
    only.wait(1)
    assert only.ids() == ["AAPL"]


def test_unsubscribe_is_refcounted_and_immediate(ks: KeySession, platform: Any) -> None:
    first, second = Collector(), Collector()
    s1 = ks.subscribe("Price", callback=first)
    s2 = ks.subscribe("Price", callback=second)
    ks.publish("Price", "A", price("A"))
    first.wait(1)
    second.wait(1)
    ks.unsubscribe(s1)
    ks.publish("Price", "B", price("B"))
    second.wait(2)
    assert first.ids() == ["A"]
    assert platform.subscriptions() == 1  # the shared platform subscription stays
    ks.unsubscribe(s2)
    wait_until(lambda: platform.subscriptions() == 0)
    with pytest.raises(RuntimeError, match="unknown subscription"):
        ks.unsubscribe(s2)


def test_second_cached_subscriber_gets_the_cache_too(ks: KeySession) -> None:
    ks.publish("Price", "A", price("A"))
    first, second = Collector(), Collector()
    ks.subscribe("Price", callback=first)
    ks.subscribe("Price", callback=second)
    assert second.ids() == ["A"]
    ks.publish("Price", "B", price("B"))
    assert second.wait(2)[-1]["header"]["id"] == "B"
    assert [m["header"]["id"] for m in second.messages].count("A") == 1


def test_voided_records_go_to_voided_callback(ks: KeySession) -> None:
    got, voided = Collector(), Collector()
    ks.subscribe("Price", callback=got, voided_callback=voided)
    ks.publish("Price", "A", price("A"))
    ks.publish("Price", "A", price("A"), key_header=KeyHeader(voided=True))
    voided.wait(1)
    assert voided.ids() == ["A"]
    assert got.ids() == ["A"]
    assert ks.snapshot("Price", return_type="list") == []


def test_edit_patches_and_subscribers_see_it(ks: KeySession) -> None:
    ks.publish("Price", "A", price("A", 1.0))
    got = Collector()
    ks.subscribe("Price", callback=got)
    ack = ks.edit("Price", "A", {"bid": 2.5})
    assert ack["status"] == "OK"
    patched = got.wait(2)[-1]
    assert patched.data["bid"] == 2.5 and patched.data["symbol"] == "A"
    with pytest.raises(RuntimeError, match="NOT_FOUND"):
        ks.edit("Price", "NOPE", {"bid": 1.0})
    with pytest.raises(ValueError, match="bid"):
        ks.edit("Price", "A", {"bid": "x"})


def test_slow_or_failing_callback_does_not_stall_others(ks: KeySession) -> None:
    gate = threading.Event()
    fast = Collector()

    def slow(message: KeyMessage) -> None:
        gate.wait(5)

    def failing(message: KeyMessage) -> None:
        raise ValueError("callback bug")

    ks.subscribe("Price", callback=slow, subscription_type=SubscriptionType.LIVE_ONLY)
    ks.subscribe("Price", callback=failing, subscription_type=SubscriptionType.LIVE_ONLY)
    ks.subscribe("Price", callback=fast, subscription_type=SubscriptionType.LIVE_ONLY)
    for i in range(20):
        ks.publish("Price", f"S{i}", price(f"S{i}"))
    fast.wait(20)  # while the slow callback is still blocked
    assert not gate.is_set()
    gate.set()
    subs = list(ks._subs.values())
    failing_stats = subs[1].address.ask("stats")  # the failing one carried on, counting
    assert failing_stats["callback_errors"] == 20


def test_a_slow_subscription_gets_the_newest_record_per_topic(platform: Any) -> None:
    # A callback blocked while 5 topics get 40 updates each: past max_pending records
    # behind, the subscription is sent only each topic's newest record (the others counted
    # as conflated); it never holds more than that, and it ends on every topic's last value.
    gate = threading.Event()
    got = Collector()

    def slow(message: KeyMessage) -> None:
        gate.wait(10)
        got(message)

    with KeySession("demo", "demo-key", f"127.0.0.1:{platform.port}", max_pending=10) as ks:
        ks.subscribe("Price", callback=slow, subscription_type=SubscriptionType.LIVE_ONLY)
        for round_ in range(40):
            ks.publish_many("Price", [(f"T{t}", price(f"T{t}", bid=round_)) for t in range(5)])
        (sub,) = ks._subs.values()
        wait_until(lambda: sub.conflated > 0)
        gate.set()
        wait_until(
            lambda: (
                {m["header"]["id"]: m.data["bid"] for m in got.messages}
                == {f"T{t}": 39.0 for t in range(5)}
                and not sub._parked
            )
        )
        stats = sub.address.ask("stats")
        assert stats["conflated"] == sub.conflated > 0
        assert stats["delivered"] + stats["conflated"] + stats["duplicates"] == 200
        per_topic = {}
        for m in got.messages:  # each topic's values only ever go forward
            assert m.data["bid"] > per_topic.get(m["header"]["id"], -1)
            per_topic[m["header"]["id"]] = m.data["bid"]


def test_max_pending_must_be_a_positive_integer(platform: Any) -> None:
    with pytest.raises(ValueError, match="max_pending must be an integer >= 1, got 0"):
        KeySession("demo", "demo-key", f"127.0.0.1:{platform.port}", max_pending=0)


def test_subscribe_errors(ks: KeySession) -> None:
    with pytest.raises(ValueError, match="callback"):
        ks.subscribe("Price", callback=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no schema definition"):
        ks.subscribe("Nope", callback=lambda m: None)


# -- store, schema refresh, asyncio ----------------------------------------------------------


def test_store_survives_a_server_restart(tmp_path: Path) -> None:
    store = str(tmp_path / "store.sqlite")
    server = serve(port=0, store_path=store)
    port = server.port
    KeySession.unlock_experimental_features = False
    session = KeySession("demo", "demo-key", f"127.0.0.1:{port}", timeout=5)
    try:
        with pytest.raises(RuntimeError, match="experimental"):
            session.store("Instrument", "AAPL", {"symbol": "AAPL"})
        KeySession.unlock_experimental_features = True
        assert (
            session.store("Instrument", "AAPL", {"symbol": "AAPL", "currency": "USD"})["status"]
            == "OK"
        )
    finally:
        KeySession.unlock_experimental_features = False
        session.stop()
        server.stop()
    server = serve(port=0, store_path=store)
    try:
        again = KeySession("demo", "demo-key", f"127.0.0.1:{server.port}", timeout=5)
        try:
            rows = again.snapshot("Instrument", return_type="list")
            assert [r.data["currency"] for r in rows] == ["USD"]
        finally:
            again.stop()
    finally:
        server.stop()


def test_schema_refresh_picks_up_a_new_type(ks: KeySession, platform: Any) -> None:
    assert ("markets", "Quote") not in ks.catalog()
    session_id = ks.get_session_data()["session_id"]
    platform.define_type("markets", "Quote", {"symbol": "string", "size": "int"})
    wait_until(lambda: ("markets", "Quote") in ks.catalog())
    assert ks.publish("Quote", "Q1", {"symbol": "Q", "size": 3})["status"] == "OK"
    # Refreshed in place: the same session, no reconnect and no restarted link actor.
    assert ks.get_session_data()["session_id"] == session_id
    assert ks._link is not None and ks._link.status()["reconnects"] == 0
    restarts = [row["restarts"] for row in ks._system.metrics()["actors"].values()]
    assert sum(restarts) == 0


def test_without_auto_refresh_the_schema_stays_until_set_up(platform: Any) -> None:
    session = session_for(platform, auto_refresh_schema=False)
    watcher = session_for(platform)  # refreshes: tells us when the change has gone out
    try:
        platform.define_type("markets", "Quote", {"symbol": "string"})
        wait_until(lambda: ("markets", "Quote") in watcher.catalog())
        assert ("markets", "Quote") not in session.catalog()
        with pytest.raises(ValueError, match="Quote"):
            session.publish("Quote", "Q", {"symbol": "Q"})
        session.set_up_schema_refresh()
        platform.define_type("markets", "Quote2", {"symbol": "string"})
        wait_until(lambda: ("markets", "Quote2") in session.catalog())
    finally:
        session.stop_sync()
        watcher.stop()
    assert session.status() is KeySessionState.DISCONNECTED


def test_awaitable_forms(ks: KeySession) -> None:
    async def main() -> int:
        await ks.apublish("Price", "AS", price("AS"))
        rows = await ks.asnapshot("Price", return_type="list")
        return len(rows)

    assert asyncio.run(main()) == 1


def test_a_blocking_call_from_an_async_callback_is_refused_and_the_awaitable_works(
    ks: KeySession,
) -> None:
    outcome: list[str] = []
    done = threading.Event()

    async def on_price(message: KeyMessage) -> None:
        try:
            ks.snapshot("Price")
        except RuntimeError as exc:
            outcome.append(str(exc))
        rows = await ks.asnapshot("Price", return_type="list")
        outcome.append(f"{len(rows)} rows")
        done.set()

    ks.subscribe("Price", callback=on_price, subscription_type=SubscriptionType.LIVE_ONLY)
    ks.publish("Price", "LOOP", price("LOOP"))
    assert done.wait(10)
    assert "await the a* form" in outcome[0]
    assert outcome[1] == "1 rows"


@pytest.mark.parametrize(
    "name",
    [
        *("start", "stop", "snapshot", "subscribe", "unsubscribe"),
        *("publish", "publish_many", "edit", "store"),
    ],
)
def test_each_awaitable_form_has_the_blocking_calls_signature(name: str) -> None:
    blocking, awaitable = getattr(KeySession, name), getattr(KeySession, f"a{name}")
    assert inspect.iscoroutinefunction(awaitable)
    assert inspect.signature(awaitable) == inspect.signature(blocking)


# -- recovery ---------------------------------------------------------------------------------


def test_recovery_after_server_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    server = serve(port=0)
    port = server.port
    url = f"127.0.0.1:{port}"
    sub_session = KeySession(
        "demo", "demo-key", url, timeout=5, heartbeat_interval=0.2, heartbeat_deadline=1.0
    )
    pub_session = KeySession(
        "demo", "demo-key", url, timeout=5, heartbeat_interval=0.2, heartbeat_deadline=1.0
    )
    got = Collector()
    try:
        sub_session.subscribe("Trade", callback=got)
        for i in range(10):
            pub_session.publish("Trade", f"before-{i}", {"trade_id": f"b{i}", "quantity": i})
        got.wait(10)
        server.stop()
        server = serve(port=port)  # same port, empty cache
        after = [f"after-{i}" for i in range(30)]
        for tid in after:  # keeps publishing through the outage: each waits for its ack
            pub_session.publish("Trade", tid, {"trade_id": tid, "quantity": 1}, timeout=10)
        got.wait(40, timeout=10)
        ids = got.ids()
        assert ids[:10] == [f"before-{i}" for i in range(10)]
        # Every record published since the restart, in publication order, none twice
        # (the re-snapshot is in acceptance order; (epoch, seq) dedupe drops repeats).
        assert ids[10:] == after
    finally:
        sub_session.stop()
        pub_session.stop()
        server.stop()


def test_updates_to_one_topic_after_a_restart_are_not_taken_for_repeats() -> None:
    """A restarted platform numbers topics from 1 again; (epoch, seq) keeps them new."""
    server = serve(port=0)
    port = server.port
    url = f"127.0.0.1:{port}"
    opts = {"timeout": 5, "heartbeat_interval": 0.2, "heartbeat_deadline": 1.0}
    sub_session = KeySession("demo", "demo-key", url, **opts)
    pub_session = KeySession("demo", "demo-key", url, **opts)
    got = Collector()
    try:
        sub_session.subscribe("Price", callback=got)
        for bid in (1.0, 2.0, 3.0):
            pub_session.publish("Price", "AAPL", price("AAPL", bid))
        got.wait(3)
        server.stop()
        server = serve(port=port)
        pub_session.publish("Price", "AAPL", price("AAPL", 9.0), timeout=10)  # seq 1 again
        bids = [m.data["bid"] for m in got.wait(4, timeout=10)]
        assert bids == [1.0, 2.0, 3.0, 9.0]
        epochs = [m.header.epoch for m in got.messages]
        assert epochs[3] > epochs[0] and got.messages[3].header.seq == 1
    finally:
        sub_session.stop()
        pub_session.stop()
        server.stop()


def test_publish_many_travels_in_few_requests(ks: KeySession, platform: Any) -> None:
    got = Collector()
    ks.subscribe("Price", callback=got, subscription_type=SubscriptionType.LIVE_ONLY)
    before = platform.stats()["publish_requests"]
    ack = ks.publish_many("Price", [(f"S{i}", price(f"S{i}")) for i in range(500)])
    assert ack == {"status": "OK", "count": 500}
    assert platform.stats()["publish_requests"] - before == 1  # one request, not 500
    assert [m.header.id for m in got.wait(500)] == [f"S{i}" for i in range(500)]
    with pytest.raises(ValueError, match="bid"):
        ks.publish_many("Price", [("X", {"bid": "x"})])


def test_session_id_is_not_logged_in_full(platform: Any, json_log: io.StringIO) -> None:
    session = session_for(platform)
    session_id = session.get_session_data()["session_id"]
    session.stop()
    assert session_id[:8] in json_log.getvalue()
    assert session_id not in json_log.getvalue()


def test_cached_subscribers_racing_each_get_the_whole_cache_once(ks: KeySession) -> None:
    ids = [f"C{i:04d}" for i in range(3000)]
    ks.publish_many("Price", [(i, price(i)) for i in ids])
    collectors = [Collector() for _ in range(3)]
    start = threading.Barrier(len(collectors))
    errors: list[BaseException] = []

    def subscribe(got: Collector) -> None:
        try:
            start.wait(5)  # all at once: the later ones join mid-snapshot
            ks.subscribe("Price", callback=got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=subscribe, args=(c,)) for c in collectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not errors
    for got in collectors:  # each complete when its subscribe returned, nothing twice
        assert sorted(m.header.id for m in got.messages) == ids


def test_a_thousand_subscriptions_with_ten_sleeping_stall_no_other(ks: KeySession) -> None:
    # Subscriptions are actors on a shared pool, not threads: ten callbacks that block their
    # worker are handed off, and the other 990 get every record meanwhile.
    gate = threading.Event()
    entered = threading.Semaphore(0)
    counts = [0] * 990
    lock = threading.Lock()

    def sleeper(message: KeyMessage) -> None:
        entered.release()
        gate.wait(20)

    def counter(i: int) -> Any:
        def callback(message: KeyMessage) -> None:
            with lock:
                counts[i] += 1

        return callback

    try:
        for i in range(1000):
            callback = sleeper if i % 100 == 0 else counter(i - i // 100 - 1)
            ks.subscribe("Price", callback=callback, subscription_type=SubscriptionType.LIVE_ONLY)
        for i in range(5):
            ks.publish("Price", f"S{i}", price(f"S{i}"))
        for _ in range(10):
            assert entered.acquire(timeout=10)  # all ten are inside their callback
        wait_until(lambda: min(counts) == 5, timeout=20)
        assert not gate.is_set()
        system = ks._system
        assert system is not None
        # Workers (plus one hand-off per blocked one), the watchdog, I/O and timers.
        assert len(system.threads()) <= system.dispatcher.workers + 10 + 3  # type: ignore[attr-defined]
    finally:
        gate.set()


def test_an_async_callback_runs_on_the_io_loop_and_gets_every_record(ks: KeySession) -> None:
    got: list[str] = []
    done = threading.Event()

    async def callback(message: KeyMessage) -> None:
        got.append(message["header"]["id"])
        if len(got) == 3:
            done.set()

    ks.subscribe("Price", callback=callback, subscription_type=SubscriptionType.LIVE_ONLY)
    for i in range(3):
        ks.publish("Price", f"S{i}", price(f"S{i}"))
    assert done.wait(10)
    assert got == ["S0", "S1", "S2"]
    with pytest.raises(TypeError, match="session_state_listener must be a plain function"):

        async def listener(state: Any, message: str) -> None:
            return None

        KeySession("demo", "demo-key", "127.0.0.1:1", session_state_listener=listener)
