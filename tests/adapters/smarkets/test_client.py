"""The client, plain (the SDK's own calls) and supervised (start()), against the embedded
exchange over real sockets on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors import Backoff, LinkState
from actorwire.adapters.smarkets import (
    SIDE_BID,
    SIDE_OFFER,
    InvalidCallbackError,
    LoginError,
    Session,
    SessionSettings,
    StreamingAPIClient,
    eto,
    serve,
    seto,
)
from actorwire.adapters.smarkets.config import load_config
from actorwire.adapters.smarkets.server import ExchangeServer

from tests.support.waiting import wait_until

WAIT = 10.0
FAST = {
    "heartbeat_interval": 0.3,
    "heartbeat_deadline": 1.5,
    "backoff": Backoff(min=0.05, max=0.2, factor=2.0, jitter=0.2),
}


@pytest.fixture
def exchange() -> Iterator[ExchangeServer]:
    config = dataclasses.replace(load_config(None), heartbeat_interval=0.2, heartbeat_timeout=1.0)
    server = serve(port=0, config=config)
    try:
        yield server
    finally:
        server.stop()


def settings(
    server: ExchangeServer, user: str = "demo", password: str | None = None
) -> SessionSettings:
    return SessionSettings(
        user,
        password or f"{user}-password",
        host="127.0.0.1",
        port=server.port,
        ssl=False,
        socket_timeout=5,
    )


class Names:
    """A global handler: the names dispatched, in order, and the payloads by name."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.payloads: dict[str, list[seto.Payload]] = {}
        self.cond = threading.Condition()

    def __call__(self, name: str, message: Any) -> None:
        with self.cond:
            self.names.append(name)
            self.payloads.setdefault(name, []).append(message.protobuf)
            self.cond.notify_all()

    def wait(self, name: str, count: int = 1, timeout: float = WAIT) -> list[seto.Payload]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.payloads.get(name, [])) >= count, timeout), (
                name,
                self.names,
            )
            return list(self.payloads[name])


def read_until(client: StreamingAPIClient, names: Names, name: str, count: int = 1) -> None:
    deadline = time.monotonic() + WAIT
    while len(names.payloads.get(name, [])) < count:
        assert time.monotonic() < deadline, (name, names.names)
        client.read()
        client.flush()


def order(side: int, price: int = 2500, quantity: int = 10000, **kw: Any) -> seto.OrderCreate:
    return seto.OrderCreate(
        side=side, quantity=quantity, price=price, market_id=100, contract_id=101, **kw
    )


# -- plain mode: the SDK's calls -------------------------------------------------------------


@pytest.mark.timeout(60)
def test_plain_mode_logs_in_pings_trades_and_logs_out_as_the_sdk_does(
    exchange: ExchangeServer,
) -> None:
    a, b = StreamingAPIClient(Session(settings(exchange))), None
    seen = Names()
    per_name: list[Any] = []
    a.add_global_handler(seen)
    a.add_handler("seto.order_accepted", lambda message: per_name.append(message))
    a.login()
    assert a.check_login() and a.session.session
    a.ping()
    a.flush()
    read_until(a, seen, "eto.pong")
    a.send(seto.MarketSubscribe(market_id=100))
    a.flush()
    read_until(a, seen, "seto.market_quotes")
    a.send(order(SIDE_BID, reference=1))
    a.flush()
    read_until(a, seen, "seto.order_accepted")
    assert per_name and per_name[0].order_accepted.reference == 1
    b = StreamingAPIClient(Session(settings(exchange, "demo2")))
    b_seen = Names()
    b.add_global_handler(b_seen)
    b.login()
    b.send(order(SIDE_OFFER, reference=2))
    b.flush()
    read_until(b, b_seen, "seto.order_executed")
    read_until(a, seen, "seto.order_executed")
    (executed,) = seen.payloads["seto.order_executed"]
    assert executed.order_executed.quantity == 10000 and executed.order_executed.price == 2500
    assert a.session.account_sequence and a.session.account_sequence > 0
    a.logout()
    b.logout()
    assert not a.session.connected and not b.session.connected


def test_handlers_are_checked_as_the_sdk_checks_them() -> None:
    client = StreamingAPIClient(Session(SessionSettings("u", "p")))
    with pytest.raises(InvalidCallbackError):
        client.add_handler("seto.no_such_thing", lambda message: None)
    with pytest.raises(ValueError, match="callback must be a callable"):
        client.add_handler("seto.order_accepted", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="callback must be a callable"):
        client.add_global_handler(42)  # type: ignore[arg-type]
    assert len(client.CALLBACKS) == 51
    assert "password" not in repr(client) and "p'" not in repr(client.session.settings)


@pytest.mark.timeout(30)
def test_a_bad_password_raises_login_error_with_the_reason(exchange: ExchangeServer) -> None:
    client = StreamingAPIClient(Session(settings(exchange, "demo", "wrong")))
    with pytest.raises(LoginError) as caught:
        client.login()
    assert caught.value.reason == eto.LOGOUT_UNAUTHORISED
    assert caught.value.reason_msg == "LOGOUT_UNAUTHORISED"
    assert "wrong" not in str(caught.value)


@pytest.mark.timeout(30)
def test_plain_mode_answers_heartbeats_at_once_so_a_reader_that_never_flushes_stays_up(
    exchange: ExchangeServer,
) -> None:
    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    client.add_global_handler(seen)
    client.login()
    # Read for three heartbeat timeouts without ever calling flush(): the SDK's buffered
    # answers would get this session logged out with HEARTBEAT_TIMEOUT.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        client.read()
    assert "eto.logout" not in seen.names
    assert seen.names.count("eto.heartbeat") >= 5
    client.logout()


@pytest.mark.timeout(30)
def test_plain_mode_recovers_a_gap_with_replay(exchange: ExchangeServer) -> None:
    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    client.add_global_handler(seen)
    client.login()
    exchange.skip_next()  # the next payload is journalled, not sent: a gap for the client
    client.ping()
    client.ping()
    client.flush()
    read_until(client, seen, "eto.pong", 2)
    assert client.session.inseq > 3
    assert exchange.stats()["replays"] >= 1
    client.logout()


# -- supervised mode -------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_supervised_mode_reads_by_itself_and_resumes_after_a_drop_with_nothing_twice(
    exchange: ExchangeServer,
) -> None:
    states: list[LinkState] = []
    a = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    a.add_global_handler(seen)
    # A first redial after 3 s: demo2's trade below happens while demo is away.
    away = {**FAST, "backoff": Backoff(min=3.0, max=3.0, factor=1.0, jitter=0.0)}
    a.start(**away, state_listener=lambda state, why: states.append(state))
    try:
        assert a.state is LinkState.CONNECTED
        with pytest.raises(RuntimeError, match="supervised"):
            a.read()
        a.send(seto.MarketSubscribe(market_id=100))
        seen.wait("seto.market_quotes")
        a.send(order(SIDE_BID, quantity=30000))
        (accepted,) = seen.wait("seto.order_accepted")
        assert accepted.order_accepted.reference  # the client gave it one
        # The connection drops; while it is down demo2 trades against the resting order.
        exchange.kill()
        b = StreamingAPIClient(Session(settings(exchange, "demo2")))
        b.login()
        b.send(order(SIDE_OFFER, quantity=10000, reference=77))
        b.flush()
        b_seen = Names()
        b.add_global_handler(b_seen)
        read_until(b, b_seen, "seto.order_executed")
        assert a.state is not LinkState.CONNECTED and "seto.order_executed" not in seen.names
        # Back: the execution that happened meanwhile arrives once, by account sequence.
        executed = seen.wait("seto.order_executed")
        a.send(order(SIDE_BID, price=2000, quantity=10000))
        seen.wait("seto.order_accepted", 2)
        wait_until(lambda: a.state is LinkState.CONNECTED, WAIT, what="connected")
        assert len(executed) == 1
        assert len(seen.payloads["seto.order_executed"]) == 1
        accepted_refs = [p.order_accepted.reference for p in seen.payloads["seto.order_accepted"]]
        assert len(accepted_refs) == len(set(accepted_refs))
        assert LinkState.RECONNECTING in states
        sequences = [
            p.order_accepted.account_sequence_64 for p in seen.payloads["seto.order_accepted"]
        ] + [p.order_executed.account_sequence_64 for p in seen.payloads["seto.order_executed"]]
        assert len(sequences) == len(set(sequences))
        b.logout()
    finally:
        a.stop()
    assert exchange.stats()["orders_accepted"] == 3


@pytest.mark.timeout(30)
def test_supervised_start_with_bad_credentials_raises_login_error(
    exchange: ExchangeServer,
) -> None:
    client = StreamingAPIClient(Session(settings(exchange, "demo", "wrong")))
    with pytest.raises(LoginError):
        client.start(**FAST, timeout=5)
    client.stop()


@pytest.mark.timeout(30)
def test_a_slow_handler_stalls_nothing_and_a_failing_one_is_counted(
    exchange: ExchangeServer,
) -> None:
    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    release = threading.Event()

    def boom(message: Any) -> None:
        raise RuntimeError("handler failed")

    client.add_handler("seto.market_quotes", boom)
    client.add_global_handler(seen)
    client.start(**FAST)
    try:
        client.send(seto.MarketSubscribe(market_id=100))
        wait_until(lambda: client.handler_errors == 1, WAIT, what="the failure counted")
        started = threading.Event()

        def slow(message: Any) -> None:
            started.set()
            release.wait(10)

        client.add_handler("eto.pong", slow)
        client.ping()
        client.send(order(SIDE_BID))
        assert started.wait(WAIT)
        # The pong handler blocks the client's actor past the exchange's heartbeat timeout;
        # the link answers the heartbeats meanwhile, so the session stays up.
        beats = exchange.stats()["heartbeats_sent"]
        wait_until(
            lambda: exchange.stats()["heartbeats_sent"] >= beats + 6, WAIT, what="heartbeats"
        )
        assert exchange.stats()["logouts_sent"] == 0
        assert client.state is LinkState.CONNECTED
        release.set()
        seen.wait("seto.order_accepted")
    finally:
        release.set()
        client.stop()


@pytest.mark.timeout(30)
def test_an_order_sent_while_the_link_is_down_is_placed_once_after_the_resume(
    exchange: ExchangeServer,
) -> None:
    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    client.add_global_handler(seen)
    client.start(**{**FAST, "backoff": Backoff(min=0.5, max=0.5, factor=1.0, jitter=0.0)})
    try:
        exchange.kill()
        wait_until(lambda: client.state is not LinkState.CONNECTED, WAIT, what="link down")
        client.send(order(SIDE_BID, reference=4242))
        (accepted,) = seen.wait("seto.order_accepted")
        assert accepted.order_accepted.reference == 4242
        client.ping()
        seen.wait("eto.pong")
        assert len(seen.payloads["seto.order_accepted"]) == 1
    finally:
        client.stop()
    assert exchange.stats()["orders_accepted"] == 1


@pytest.mark.timeout(30)
def test_the_awaitable_twins_log_in_read_and_log_out(exchange: ExchangeServer) -> None:
    import asyncio
    import inspect

    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    client.add_global_handler(seen)

    async def main() -> None:
        await client.alogin()
        client.ping()
        await client.aflush()
        while "eto.pong" not in seen.names:
            await client.aread()
        await client.alogout()

    asyncio.run(main())
    assert seen.names[0] == "eto.login_response" and "eto.pong" in seen.names
    assert not client.session.connected
    for name in ("login", "logout", "read", "flush", "start", "stop"):
        twin = getattr(StreamingAPIClient, f"a{name}")
        assert inspect.signature(twin) == inspect.signature(getattr(StreamingAPIClient, name))


@pytest.mark.timeout(30)
def test_a_drop_before_any_account_message_still_resumes_from_the_login(
    exchange: ExchangeServer,
) -> None:
    # The client learns its account position at login (a cancel of order 0, rejected
    # NOT_FOUND, which handlers do not see), so what happens while it is away after that is
    # resumed even when it never saw an account message itself.
    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    client.add_global_handler(seen)
    client.start(**{**FAST, "backoff": Backoff(min=1.0, max=1.0, factor=1.0, jitter=0.0)})
    try:
        wait_until(lambda: client.session.account_sequence is not None, WAIT, what="position")
        assert "seto.order_cancel_rejected" not in seen.names
        exchange.kill()
        # While it is away, another session of the same account trades.
        same = StreamingAPIClient(Session(settings(exchange)))
        same.login()
        same.send(order(SIDE_BID, reference=500))
        same.flush()
        other = StreamingAPIClient(Session(settings(exchange, "demo2")))
        other.login()
        other.send(order(SIDE_OFFER, reference=501))
        other.flush()
        wait_until(lambda: exchange.stats()["executions"] == 1, WAIT, what="executed")
        assert client.state is not LinkState.CONNECTED
        assert [p.order_accepted.reference for p in seen.wait("seto.order_accepted")] == [500]
        assert len(seen.wait("seto.order_executed")) == 1
        same.logout()
        other.logout()
    finally:
        client.stop()


@pytest.mark.timeout(30)
def test_a_throttled_order_is_dropped_not_sent_again_after_a_reconnect() -> None:
    config = dataclasses.replace(load_config(None), throttle_rate=0.001, throttle_burst=4)
    server = serve(port=0, config=config)
    client = StreamingAPIClient(Session(settings(server)))
    seen = Names()
    client.add_global_handler(seen)
    try:
        client.start(**{**FAST, "backoff": Backoff(min=0.2, max=0.2, factor=1.0, jitter=0.0)})
        wait_until(lambda: client.session.account_sequence is not None, WAIT, what="position")
        # The probe took one token: three orders fit, the fourth is throttled, the fifth
        # too; the throttled ones are never answered.
        for price, ref in ((2000, 1), (2100, 2), (2200, 3), (2300, 4), (2400, 5)):
            client.send(order(SIDE_BID, price=price, reference=ref))
        seen.wait("eto.throttle_exceeded", 2)
        assert [p.order_accepted.reference for p in seen.wait("seto.order_accepted", 3)] == [
            1,
            2,
            3,
        ]
        server.kill()
        wait_until(lambda: client.state is LinkState.CONNECTED, WAIT, what="back")
        # Order 4 and 5 were sent after 3 on the same connection and never answered: the
        # client cannot tell them from throttled ones unless a later order is answered, so
        # they go again, and with an empty bucket they are throttled again, not placed.
        assert server.stats()["orders_accepted"] == 3
    finally:
        client.stop()
        server.stop()


@pytest.mark.timeout(30)
def test_stop_logs_out_so_the_exchange_does_not_treat_it_as_a_failure(
    exchange: ExchangeServer,
) -> None:
    client = StreamingAPIClient(Session(settings(exchange)))
    seen = Names()
    client.add_global_handler(seen)
    client.start(**FAST)
    client.send(seto.Settings(cancel_all_on_failure=True))
    seen.wait("seto.settings_accepted")
    client.send(order(SIDE_BID, reference=9))
    seen.wait("seto.order_accepted")
    client.stop()
    assert "eto.logout" in seen.names  # the confirmation came before the close
    assert exchange.stats()["live_orders"] == 1  # a logout keeps the orders


@pytest.mark.timeout(30)
def test_orders_go_out_while_a_handler_blocks_and_two_clients_share_a_system(
    exchange: ExchangeServer,
) -> None:
    from actorwire.actors import ActorSystem

    system = ActorSystem(name="shared")
    release = threading.Event()
    started = threading.Event()
    a = StreamingAPIClient(Session(settings(exchange)))
    b = StreamingAPIClient(Session(settings(exchange, "demo2")))

    def slow(message: Any) -> None:
        started.set()
        release.wait(10)

    try:
        a.start(system, **FAST)
        b.start(system, **FAST)
        a.add_handler("eto.pong", slow)
        a.ping()
        assert started.wait(WAIT)
        a.send(order(SIDE_BID, reference=31))  # the handler still blocks
        wait_until(lambda: exchange.stats()["orders_accepted"] == 1, WAIT, what="placed")
        release.set()
        a.stop()
        b.stop()
        a.start(system, **FAST)  # the same client starts again on the same system
        assert a.state is LinkState.CONNECTED
    finally:
        release.set()
        a.stop()
        b.stop()
        system.shutdown(timeout=5)


def test_removing_a_handler_that_was_not_added_raises_key_error_as_the_sdk() -> None:
    client = StreamingAPIClient(Session(SessionSettings("u", "p")))

    def handler(message: Any) -> None:
        pass

    with pytest.raises(KeyError):
        client.del_handler("seto.order_accepted", handler)
    client.add_handler("seto.order_accepted", handler)
    client.del_handler("seto.order_accepted", handler)


@pytest.mark.timeout(30)
def test_plain_mode_refuses_an_endless_frame_with_decode_error() -> None:
    import socket as socketlib

    from actorwire.adapters.smarkets import DecodeError

    with socketlib.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        session = Session(
            SessionSettings("u", "p", host="127.0.0.1", port=port, ssl=False, socket_timeout=5)
        )
        session.socket.connect()
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"\xff\xff\xff\x7f")  # a length of about 268 MB
            with pytest.raises(DecodeError):
                while True:
                    conn.sendall(b"\x00" * 65536)
                    session.read()
        assert not session.connected


@pytest.mark.timeout(30)
def test_a_token_logs_in_in_both_modes_and_a_wrong_one_is_refused(
    exchange: ExchangeServer,
) -> None:
    def with_token(token: str) -> SessionSettings:
        return SessionSettings(
            token=token, host="127.0.0.1", port=exchange.port, ssl=False, socket_timeout=5
        )

    plain = StreamingAPIClient(Session(with_token("demo-token")))
    plain.login()
    assert plain.check_login()
    plain.logout()
    supervised = StreamingAPIClient(Session(with_token("demo-token")))
    supervised.start(**FAST)
    supervised.stop()
    wrong = StreamingAPIClient(Session(with_token("not-the-token")))
    with pytest.raises(LoginError) as caught:
        wrong.login()
    assert caught.value.reason == eto.LOGOUT_UNAUTHORISED
    assert "not-the-token" not in repr(wrong.session.settings)
