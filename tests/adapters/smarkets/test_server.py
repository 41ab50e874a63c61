"""The embedded exchange's network shell over real sockets on 127.0.0.1, driven by a raw
client (a blocking socket and the adapter's codec, nothing else): login and its refusals,
heartbeats and timeouts, session seqs, REPLAY and GAPFILL, resumes by account sequence,
trading and quotes through the exchange, throttling, bad input, slow readers, many
connections, stop, and TLS.

``Raw`` and the fixtures here serve ``test_server_faults.py`` too."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import socket
import ssl as _ssl
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors.tls import client_context
from actorwire.adapters.smarkets import eto, frame_encode, seto, uleb128_encode
from actorwire.adapters.smarkets.config import ExchangeConfig, load_config
from actorwire.adapters.smarkets.exchange import ENTRY_OVERHEAD
from actorwire.adapters.smarkets.protocol import (
    Frame,
    Garbage,
    SmarketsCodec,
    heartbeat,
    login,
    logout,
    payload_name,
    ping,
    replay,
    wrap,
)
from actorwire.adapters.smarkets.server import ExchangeServer, serve

from tests.support.tlscerts import make_ca, make_server_cert
from tests.support.waiting import wait_until

HOST = "127.0.0.1"
WAIT = 5.0
"""Seconds a client waits for an answer that must come."""
QUIET = 0.3
"""Seconds "nothing arrives" must hold in a negative check."""
PASSWORDS = {"demo": "demo-password", "demo2": "demo2-password"}
MARKET, CONTRACT, OTHER_CONTRACT = 100, 101, 102


def config(**changes: Any) -> ExchangeConfig:
    """The packaged default config with ``changes`` to its [exchange] settings."""
    return dataclasses.replace(load_config(None), **changes)


FAST = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.0}
"""Heartbeat settings for the tests that wait for heartbeats and timeouts."""


def order(
    side: seto.Side = seto.SIDE_BUY,
    price: int = 2500,
    quantity: int = 10000,
    contract: int = CONTRACT,
    **fields: Any,
) -> seto.OrderCreate:
    return seto.OrderCreate(
        side=side, price=price, quantity=quantity, market_id=MARKET, contract_id=contract, **fields
    )


class Raw:
    """A blocking exchange client on a raw socket: frames through ``SmarketsCodec`` and
    nothing more (no seq checks, no heartbeat answers: a test does what it needs)."""

    def __init__(
        self, port: int, *, ssl: _ssl.SSLContext | None = None, rcvbuf: int | None = None
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf is not None:  # before connecting, so the window it offers stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(WAIT)
        try:
            sock.connect((HOST, port))
            self.sock = sock if ssl is None else ssl.wrap_socket(sock, server_hostname=HOST)
        except BaseException:
            sock.close()
            raise
        self.codec = SmarketsCodec()
        self.pending: deque[Frame | Garbage] = deque()
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    # -- sending ----------------------------------------------------------------------

    def send(self, payload: seto.Payload) -> int:
        """Stamp the next seq on ``payload`` and send it; returns the seq."""
        self.send_raw(self.codec.encode(payload))
        return payload.eto_payload.seq

    def send_message(self, message: Any) -> int:
        """Send a seto body (``seto.OrderCreate(...)``) as the SDK's ``send`` does."""
        return self.send(wrap(message))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # -- receiving --------------------------------------------------------------------

    def next_event(self, timeout: float = WAIT) -> Frame | Garbage:
        """The next decoded frame or garbage; TimeoutError, or EOFError once closed."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            if self.eof:
                raise EOFError("the exchange closed the connection")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"nothing from the exchange within {timeout}s")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            except TimeoutError:
                continue
            if not chunk:
                self.eof = True
                continue
            self.codec.receive_data(chunk)
            self.pending.extend(self.codec.events())
        return self.pending.popleft()

    def recv(self, timeout: float = WAIT) -> seto.Payload:
        """The next payload (garbage fails the test)."""
        event = self.next_event(timeout)
        assert type(event) is Frame, event
        return event.protobuf

    def expect(
        self, name: str, timeout: float = WAIT, skip: tuple[str, ...] = ("eto.heartbeat",)
    ) -> seto.Payload:
        """The next payload, which must be ``name`` (those named in ``skip`` are passed over)."""
        deadline = time.monotonic() + timeout
        while True:
            payload = self.recv(max(deadline - time.monotonic(), 0.001))
            got = payload_name(payload)
            if got == name:
                return payload
            assert got in skip, f"expected {name}, got {got}: {payload}"

    def until(self, name: str, timeout: float = WAIT) -> list[seto.Payload]:
        """Every payload up to and including the next ``name``."""
        deadline = time.monotonic() + timeout
        out: list[seto.Payload] = []
        while not out or payload_name(out[-1]) != name:
            out.append(self.recv(max(deadline - time.monotonic(), 0.001)))
        return out

    def barrier(self) -> list[seto.Payload]:
        """PING, and return what arrived before its PONG (heartbeats left out): the
        exchange has handled everything sent before, and sent nothing else."""
        self.send(ping(0))
        return [p for p in self.until("eto.pong")[:-1] if payload_name(p) != "eto.heartbeat"]

    def expect_silence(self, timeout: float = QUIET) -> None:
        with pytest.raises(TimeoutError):
            event = self.next_event(timeout)
            pytest.fail(f"unexpected {event!r}")

    def expect_closed(self, timeout: float = WAIT) -> list[Frame | Garbage]:
        """Read until the exchange closes the connection; what came before it."""
        deadline = time.monotonic() + timeout
        out: list[Frame | Garbage] = []
        while True:
            try:
                out.append(self.next_event(max(deadline - time.monotonic(), 0.001)))
            except EOFError:
                return out

    def expect_logout(self, reason: int, timeout: float = WAIT) -> seto.Payload:
        """A LOGOUT with ``reason``, then the close."""
        payload = self.expect("eto.logout", timeout)
        assert payload.eto_payload.logout.reason == reason, payload
        rest = self.expect_closed()
        assert not rest, rest
        return payload

    # -- session ----------------------------------------------------------------------

    def login(
        self, user: str = "demo", password: str | None = None, account_sequence: int | None = None
    ) -> seto.Payload:
        """LOGIN (seq 1) and its LOGIN_RESPONSE; the next seq becomes its ``reset``."""
        self.send(
            login(
                0,
                username=user,
                password=PASSWORDS[user] if password is None else password,
                account_sequence=account_sequence,
            )
        )
        response = self.expect("eto.login_response")
        self.codec.reset_outseq(response.eto_payload.login_response.reset)
        return response


@pytest.fixture
def servers() -> Iterator[Callable[..., ExchangeServer]]:
    """``servers(**kwargs)`` starts an exchange (``serve(port=0, ...)``), stopped after."""
    started: list[ExchangeServer] = []

    def start(**kwargs: Any) -> ExchangeServer:
        server = serve(port=kwargs.pop("port", 0), **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def exchange(servers: Callable[..., ExchangeServer]) -> ExchangeServer:
    """An exchange with the default config."""
    return servers()


@pytest.fixture
def clients() -> Iterator[Callable[..., Raw]]:
    """``clients(port, **kwargs)`` opens a ``Raw`` client, closed after the test."""
    opened: list[Raw] = []

    def open_(port: int, **kwargs: Any) -> Raw:
        client = Raw(port, **kwargs)
        opened.append(client)
        return client

    try:
        yield open_
    finally:
        for client in opened:
            client.close()


def seqs(payloads: list[seto.Payload]) -> list[int]:
    return [p.eto_payload.seq for p in payloads]


def quotes_of(payload: seto.Payload, contract: int = CONTRACT) -> seto.ContractQuotes:
    """The CONTRACT_QUOTES of ``contract`` in a MARKET_QUOTES, or a CONTRACT_QUOTES itself."""
    if payload.type == seto.PAYLOAD_CONTRACT_QUOTES:
        return payload.contract_quotes
    return next(q for q in payload.market_quotes.contract_quotes if q.contract_id == contract)


def book(quotes: seto.ContractQuotes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return (
        [(q.price, q.quantity) for q in quotes.bids],
        [(q.price, q.quantity) for q in quotes.offers],
    )


# -- login --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_good_login_gets_a_login_response_with_seq_1_reset_2_and_a_session_id(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    a, b = clients(exchange.port), clients(exchange.port)
    first = a.login()
    assert first.type == seto.PAYLOAD_ETO
    assert first.eto_payload.type == eto.PAYLOAD_LOGIN_RESPONSE
    assert first.eto_payload.seq == 1
    assert not first.eto_payload.is_replay
    assert first.eto_payload.login_response.reset == 2
    assert len(first.eto_payload.login_response.session) >= 16
    second = b.login("demo")  # the same account twice: a session each
    assert second.eto_payload.login_response.session != first.eto_payload.login_response.session
    assert a.barrier() == [] and b.barrier() == []
    stats = exchange.stats()
    assert stats["logins"] == 2 and stats["logins_refused"] == 0 and stats["sessions"] == 2


@pytest.mark.timeout(30)
def test_a_bad_password_is_logged_out_unauthorised_and_closed(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    for user, password in (("demo", "demo2-password"), ("nobody", "demo-password")):
        client = clients(exchange.port)
        client.send(login(0, username=user, password=password))
        answer = client.expect_logout(eto.LOGOUT_UNAUTHORISED)
        assert answer.eto_payload.seq == 1
    wait_until(lambda: exchange.stats()["sessions"] == 0, WAIT, what="both closed")
    assert exchange.stats()["logins_refused"] == 2
    assert exchange.stats()["logins"] == 0
    clients(exchange.port).login()  # the exchange serves on


@pytest.mark.timeout(30)
def test_a_login_whose_seq_is_not_1_is_refused_with_login_not_first_seq(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.codec.reset_outseq(2)
    client.send(login(0, username="demo", password="demo-password"))
    client.expect_logout(eto.LOGOUT_LOGIN_NOT_FIRST_SEQ)
    assert exchange.stats()["logins"] == 0


@pytest.mark.timeout(30)
def test_a_first_payload_that_is_not_a_login_is_refused_and_nothing_is_done(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.send_message(order(reference=5))  # seq 1, but no LOGIN
    client.expect_logout(eto.LOGOUT_UNKNOWN_SESSION)
    assert exchange.stats()["orders_accepted"] == 0 and exchange.stats()["live_orders"] == 0
    pinger = clients(exchange.port)
    pinger.send(ping(0))
    pinger.expect_logout(eto.LOGOUT_UNKNOWN_SESSION)


@pytest.mark.timeout(30)
def test_no_login_within_login_timeout_is_logged_out_with_login_timeout(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    exchange = servers(login_timeout=0.3)
    opened = time.monotonic()
    client = clients(exchange.port)
    client.expect_logout(eto.LOGOUT_LOGIN_TIMEOUT)
    assert 0.3 <= time.monotonic() - opened < 3.0
    # A client that logs in in time is not timed out.
    on_time = clients(exchange.port)
    on_time.login()
    on_time.expect_silence(0.6)
    assert on_time.barrier() == []


@pytest.mark.timeout(30)
def test_credentials_never_reach_the_logs_or_a_repr(
    json_log: io.StringIO, exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    wrong = "Wr0ng-Secret-Passw0rd"
    good = clients(exchange.port)
    good.login()
    good.send(logout(0))
    good.expect_logout(eto.LOGOUT_CONFIRMATION)
    bad = clients(exchange.port)
    bad.send(login(0, username="demo", password=wrong))
    bad.expect_logout(eto.LOGOUT_UNAUTHORISED)
    wait_until(lambda: exchange.stats()["sessions"] == 0, WAIT, what="both closed")
    frame = Frame(b"", login(1, username="demo", password=wrong))
    text = json_log.getvalue()
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert "logged in" in events and "login refused" in events  # the logs were captured
    for shown in (text, repr(exchange), repr(exchange.config), repr(exchange.exchange)):
        assert "demo-password" not in shown and wrong not in shown
    assert wrong not in repr(frame) and "password" not in repr(frame)


# -- heartbeats ---------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_quiet_session_gets_heartbeats_and_keeps_its_session_while_it_answers(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    exchange = servers(config=config(**FAST))
    client = clients(exchange.port)
    client.login()
    arrivals: list[float] = []
    beats: list[seto.Payload] = []
    end = time.monotonic() + 2.0  # twice heartbeat_timeout
    while time.monotonic() < end:
        try:
            payload = client.recv(max(end - time.monotonic(), 0.001))
        except TimeoutError:
            break
        assert payload_name(payload) == "eto.heartbeat", payload
        arrivals.append(time.monotonic())
        beats.append(payload)
        client.send(heartbeat(0))  # the SDK's answer
    assert 6 <= len(beats) <= 11  # about one per heartbeat_interval (0.2 s) in 2 s
    assert seqs(beats) == list(range(2, 2 + len(beats)))
    gaps = sorted(later - earlier for earlier, later in itertools.pairwise(arrivals))
    assert 0.15 <= gaps[len(gaps) // 2] < 0.5, gaps
    assert client.barrier() == []  # still logged in
    assert exchange.stats()["logouts_sent"] == 0


@pytest.mark.timeout(30)
def test_a_silent_client_is_logged_out_with_heartbeat_timeout(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    exchange = servers(config=config(**FAST))
    client = clients(exchange.port)
    client.login()
    heard = time.monotonic()
    before = client.until("eto.logout")
    assert time.monotonic() - heard >= 0.9  # heartbeat_timeout, from the server's clock
    assert {payload_name(p) for p in before[:-1]} == {"eto.heartbeat"}
    assert len(before) >= 4
    assert before[-1].eto_payload.logout.reason == eto.LOGOUT_HEARTBEAT_TIMEOUT
    assert seqs(before) == list(range(2, 2 + len(before)))
    assert client.expect_closed() == []
    assert exchange.stats()["logouts_sent"] == 1


@pytest.mark.timeout(30)
def test_ping_gets_pong_and_logout_gets_confirmation_then_the_close(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.login()
    assert client.send(ping(0)) == 2
    answer = client.expect("eto.pong")
    assert answer.eto_payload.seq == 2 and not answer.eto_payload.is_replay
    client.send(logout(0))
    confirmation = client.expect_logout(eto.LOGOUT_CONFIRMATION)
    assert confirmation.eto_payload.seq == 3


# -- session seqs, REPLAY, GAPFILL, resume --------------------------------------------------


@pytest.mark.timeout(30)
def test_the_exchange_numbers_what_it_sends_from_1_without_a_hole(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    a, b = clients(exchange.port), clients(exchange.port)
    got = [a.login()]
    b.login("demo2")
    a.send_message(seto.MarketSubscribe(market_id=MARKET))
    got += a.until("seto.market_quotes")
    a.send_message(order(reference=1))
    got += a.until("seto.order_accepted")
    b.send_message(order(seto.SIDE_SELL, reference=2))  # trades with a's order
    got += a.until("seto.balance_changed")
    a.send(ping(0))
    got += a.until("eto.pong")
    names = [payload_name(p) for p in got]
    assert "seto.order_executed" in names and "seto.contract_quotes" in names
    assert seqs(got) == list(range(1, len(got) + 1))
    assert not any(p.eto_payload.is_replay for p in got)


@pytest.mark.timeout(30)
def test_replay_resends_from_its_seq_with_the_original_seqs_marked_is_replay(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    sent = [client.login()]
    client.send_message(seto.MarketSubscribe(market_id=MARKET))
    sent += client.until("seto.market_quotes")
    for _ in range(3):
        client.send(ping(0))
        sent.append(client.expect("eto.pong"))
    assert seqs(sent) == [1, 2, 3, 4, 5]
    client.send(replay(0, 2))
    resent = [client.recv() for _ in range(4)]
    assert seqs(resent) == [2, 3, 4, 5]
    for original, again in zip(sent[1:], resent, strict=True):
        assert again.eto_payload.is_replay
        again.eto_payload.ClearField("is_replay")
        assert again == original
    client.send(ping(0))
    fresh = client.expect("eto.pong")
    assert fresh.eto_payload.seq == 6 and not fresh.eto_payload.is_replay
    # A REPLAY of what was never sent is answered with nothing.
    client.send(replay(0, 50))
    client.send(replay(0, 0))
    assert client.barrier() == []
    assert exchange.stats()["replays"] == 3


@pytest.mark.timeout(30)
def test_what_the_session_journal_no_longer_holds_comes_back_as_gapfill(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    limit = 400
    exchange = servers(config=config(session_journal_bytes=limit))
    client = clients(exchange.port)
    client.login()
    for _ in range(10):
        client.send(ping(0))
    assert seqs(client.until("eto.pong") + [client.recv() for _ in range(9)])[-1] == 11
    client.send(replay(0, 1))
    resent = [client.recv() for _ in range(11)]
    assert seqs(resent) == list(range(1, 12))
    assert all(p.eto_payload.is_replay for p in resent)
    names = [payload_name(p) for p in resent]
    filled = names.count("eto.gapfill")
    assert names == ["eto.gapfill"] * filled + ["eto.pong"] * (11 - filled)
    # The journal held as many of the newest as fit in its bound, and no more.
    cost = len(resent[-1].SerializeToString()) + ENTRY_OVERHEAD
    held = 11 - filled
    assert held >= 1 and held * cost <= limit < (held + 1) * cost
    assert exchange.stats()["gapfills_sent"] == filled
    client.send(ping(0))
    assert client.expect("eto.pong").eto_payload.seq == 12


@pytest.mark.timeout(30)
def test_a_login_with_an_account_sequence_gets_the_account_messages_after_it(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    first = clients(exchange.port)
    first.login()
    first.send_message(order(price=2000, reference=1))
    one = first.expect("seto.order_accepted").order_accepted
    first.send_message(order(price=2100, reference=2))
    two = first.expect("seto.order_accepted").order_accepted
    first.send_message(order(price=2200, reference=3))
    three = first.expect("seto.order_accepted").order_accepted
    assert (two.account_sequence_64, three.account_sequence_64) == (
        one.account_sequence_64 + 1,
        one.account_sequence_64 + 2,
    )
    first.send(logout(0))
    first.expect_logout(eto.LOGOUT_CONFIRMATION)

    second = clients(exchange.port)
    second.login(account_sequence=one.account_sequence_64)
    resumed = [second.recv(), second.recv()]
    # New payloads of this session: its next seqs, not marked is_replay (see server.py).
    assert seqs(resumed) == [2, 3]
    assert not any(p.eto_payload.is_replay for p in resumed)
    assert [p.order_accepted for p in resumed] == [two, three]
    assert second.barrier() == []
    assert exchange.stats()["resumes"] == 1

    # A sequence the account was never given (an exchange that lost its state) cannot be
    # resumed: the login is refused with UNKNOWN_SESSION, counted, and the client logs in
    # afresh.
    third = clients(exchange.port)
    third.send(login(0, username="demo", password="demo-password", account_sequence=999))
    third.expect_logout(eto.LOGOUT_UNKNOWN_SESSION)
    assert exchange.stats()["resume_misses"] == 1
    # Nothing was placed twice.
    assert exchange.stats()["orders_accepted"] == 3


# -- trading through the exchange -----------------------------------------------------------


@pytest.mark.timeout(30)
def test_two_accounts_trade_and_each_side_gets_accepted_executed_and_balance_changed(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    buyer, seller = clients(exchange.port), clients(exchange.port)
    buyer.login("demo")
    seller.login("demo2")
    buyer.send_message(order(seto.SIDE_BUY, price=2500, quantity=10000, reference=11))
    bid = buyer.expect("seto.order_accepted").order_accepted
    assert (bid.reference, bid.price, bid.quantity, bid.side) == (11, 2500, 10000, seto.SIDE_BUY)
    assert bid.available_balance == pytest.approx(9999.75) and bid.exposure == 0.25
    seller.send_message(order(seto.SIDE_SELL, price=2400, quantity=4000, reference=12))
    got = seller.until("seto.balance_changed")
    assert [payload_name(p) for p in got] == [
        "seto.order_accepted",
        "seto.order_executed",
        "seto.balance_changed",
    ]
    sold = got[1].order_executed
    assert (sold.price, sold.quantity, sold.side) == (2500, 4000, seto.SIDE_SELL)  # maker's price
    assert sold.order_id == got[0].order_accepted.order_id
    got = buyer.until("seto.balance_changed")
    assert [payload_name(p) for p in got] == ["seto.order_executed", "seto.balance_changed"]
    bought = got[0].order_executed
    assert (bought.order_id, bought.price, bought.quantity) == (bid.order_id, 2500, 4000)
    assert bought.available_quantity == 6000
    assert got[1].balance_changed.reason == "order_executed"
    assert got[1].balance_changed.exposure == pytest.approx(0.25)  # 6000 resting + 4000 held
    assert exchange.stats()["executions"] == 1


@pytest.mark.timeout(30)
def test_an_order_that_would_trade_with_its_own_account_is_rejected_crossed_self(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.login()
    client.send_message(order(seto.SIDE_BUY, price=2500, reference=1))
    client.expect("seto.order_accepted")
    client.send_message(order(seto.SIDE_SELL, price=2400, reference=2, label="mine"))
    rejected = client.expect("seto.order_rejected").order_rejected
    assert rejected.reason == seto.ORDER_REJECTED_CROSSED_SELF
    assert (rejected.reference, rejected.label) == (2, "mine")
    assert exchange.stats()["executions"] == 0 and exchange.stats()["live_orders"] == 1


@pytest.mark.timeout(30)
def test_cancel_takes_an_order_off_the_book_and_the_subscribers_see_it(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    trader, watcher = clients(exchange.port), clients(exchange.port)
    trader.login()
    watcher.login("demo2")
    watcher.send_message(seto.MarketSubscribe(market_id=MARKET))
    watcher.expect("seto.market_quotes")
    trader.send_message(order(price=3000, quantity=20000, reference=1))
    accepted = trader.expect("seto.order_accepted").order_accepted
    assert book(watcher.expect("seto.contract_quotes").contract_quotes) == ([(3000, 20000)], [])
    trader.send_message(seto.OrderCancel(order_id=accepted.order_id))
    cancelled = trader.expect("seto.order_cancelled").order_cancelled
    assert cancelled.order_id == accepted.order_id
    assert cancelled.reason == seto.ORDER_CANCELLED_MEMBER_REQUESTED
    assert cancelled.available_balance == pytest.approx(10000.0) and cancelled.exposure == 0
    assert book(watcher.expect("seto.contract_quotes").contract_quotes) == ([], [])
    trader.send_message(seto.OrderCancel(order_id=accepted.order_id))
    again = trader.expect("seto.order_cancel_rejected").order_cancel_rejected
    assert again.reason == seto.ORDER_CANCEL_REJECTED_NOT_LIVE
    assert watcher.barrier() == []  # a rejected cancel changes no book


@pytest.mark.timeout(30)
def test_subscribers_get_market_quotes_then_contract_quotes_on_each_change_until_they_leave(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    a, b, trader = clients(exchange.port), clients(exchange.port), clients(exchange.port)
    a.login()
    b.login()
    trader.login("demo2")
    for client in (a, b):
        client.send_message(seto.MarketSubscribe(market_id=MARKET))
        snapshot = client.expect("seto.market_quotes").market_quotes
        assert snapshot.market_id == MARKET
        assert [q.contract_id for q in snapshot.contract_quotes] == [CONTRACT, OTHER_CONTRACT]
    trader.send_message(order(seto.SIDE_SELL, price=6000, quantity=5000, reference=1))
    for client in (a, b):
        quotes = client.expect("seto.contract_quotes").contract_quotes
        assert (quotes.market_id, quotes.contract_id) == (MARKET, CONTRACT)
        assert book(quotes) == ([], [(6000, 5000)])
    trader.send_message(order(seto.SIDE_SELL, price=5500, quantity=1000, reference=2))
    for client in (a, b):
        assert book(client.expect("seto.contract_quotes").contract_quotes) == (
            [],
            [(5500, 1000), (6000, 5000)],
        )
    a.send_message(seto.MarketUnsubscribe(market_id=MARKET))
    assert a.barrier() == []
    trader.send_message(order(seto.SIDE_SELL, price=5000, quantity=1000, reference=3))
    trader.expect("seto.order_accepted")
    assert len(b.expect("seto.contract_quotes").contract_quotes.offers) == 3
    assert a.barrier() == []  # unsubscribed: nothing more
    # A new subscriber's snapshot is the book as it is now; an unknown market has none.
    a.send_message(seto.MarketSubscribe(market_id=MARKET))
    assert len(quotes_of(a.expect("seto.market_quotes")).offers) == 3
    a.send_message(seto.MarketSubscribe(market_id=999))
    assert a.barrier() == []


@pytest.mark.timeout(30)
def test_an_order_resent_with_its_reference_gets_the_original_answer_and_is_placed_once(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.login()
    client.send_message(order(quantity=30000, reference=42))
    first = client.expect("seto.order_accepted")
    client.send_message(order(quantity=30000, reference=42))
    again = client.expect("seto.order_accepted")
    assert again.order_accepted == first.order_accepted  # same order id, same account seq
    assert again.eto_payload.seq == first.eto_payload.seq + 1  # a new payload of the session
    client.send_message(seto.MarketSubscribe(market_id=MARKET))
    assert book(quotes_of(client.expect("seto.market_quotes"))) == ([(2500, 30000)], [])
    stats = exchange.stats()
    assert stats["orders_accepted"] == 1 and stats["orders_duplicate"] == 1
    assert stats["live_orders"] == 1


@pytest.mark.timeout(30)
def test_messages_past_the_accounts_rate_get_throttle_exceeded(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    exchange = servers(config=config(throttle_rate=0.01, throttle_burst=3))
    client = clients(exchange.port)
    client.login()
    for _ in range(5):
        client.send_message(seto.MarketSubscribe(market_id=MARKET))
    got = client.barrier()  # PING is never throttled
    assert [payload_name(p) for p in got] == ["seto.market_quotes"] * 3 + [
        "eto.throttle_exceeded"
    ] * 2
    client.send_message(order(reference=1))
    assert payload_name(client.recv()) == "eto.throttle_exceeded"
    assert exchange.stats()["throttled"] == 3 and exchange.stats()["orders_accepted"] == 0
    # The bucket is the account's: another session of it is throttled too.
    other = clients(exchange.port)
    other.login()
    other.send_message(seto.MarketSubscribe(market_id=MARKET))
    assert payload_name(other.recv()) == "eto.throttle_exceeded"


# -- robustness ---------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_payloads_that_do_not_parse_are_counted_and_the_session_goes_on(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.login()
    buf = bytearray()
    frame_encode(buf, b"\xff\xff\xff")  # does not parse
    frame_encode(buf, seto.Payload(type=seto.PAYLOAD_ETO).SerializePartialToString())  # no seq
    frame_encode(buf, b"")  # no type
    client.send_raw(bytes(buf))
    assert client.barrier() == []
    assert exchange.stats()["garbage"] == 3 and exchange.stats()["sessions"] == 1


@pytest.mark.timeout(30)
def test_an_oversize_or_malformed_length_closes_that_connection_only(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    bystander = clients(exchange.port)
    bystander.login("demo2")
    limit = exchange.config.max_frame_bytes
    for bad in (bytes(uleb128_encode(limit + 1)) + b"x" * 16, b"\xff" * 12):
        client = clients(exchange.port)
        client.login()
        client.send_raw(client.codec.encode(ping(0)) + bad)  # one read: good frame, bad length
        assert [payload_name(e.protobuf) for e in client.expect_closed() if type(e) is Frame] == [
            "eto.pong"  # what came before the bad length was answered
        ]
        assert bystander.barrier() == []
    wait_until(lambda: exchange.stats()["sessions"] == 1, WAIT, what="the two closed")
    assert exchange.stats()["frame_errors"] == 2
    clients(exchange.port).login()


@pytest.mark.timeout(30)
def test_frames_split_anywhere_are_read_whole_and_a_half_frame_at_the_close_harms_nothing(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    data = client.codec.encode(login(0, username="demo", password="demo-password"))
    for i in range(len(data)):  # a byte per write
        client.send_raw(data[i : i + 1])
    client.expect("eto.login_response")
    client.codec.reset_outseq(2)
    pings = b"".join(client.codec.encode(ping(0)) for _ in range(3))
    client.send_raw(pings[:5])
    client.expect_silence(0.1)
    client.send_raw(pings[5:])
    assert seqs([client.recv() for _ in range(3)]) == [2, 3, 4]
    cut = clients(exchange.port)
    whole = cut.codec.encode(login(0, username="demo", password="demo-password"))
    cut.send_raw(whole[: len(whole) // 2])
    cut.close()
    wait_until(lambda: exchange.stats()["sessions"] == 1, WAIT, what="the cut one closed")
    assert client.barrier() == []
    assert exchange.stats()["garbage"] == 0 and exchange.stats()["frame_errors"] == 0


@pytest.mark.timeout(30)
def test_a_client_that_stops_reading_is_dropped_at_the_outbox_bound(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    bound = 64 * 1024
    exchange = servers(max_outbox_bytes=bound)
    reader = clients(exchange.port)
    reader.login("demo2")
    slow = clients(exchange.port, rcvbuf=4096)
    slow.login()
    slow.send_message(seto.MarketSubscribe(market_id=MARKET))
    for _ in range(40):
        slow.send(ping(0))
    # Each REPLAY(1) queues the whole journal again; the client reads none of it.
    burst = b"".join(slow.codec.encode(replay(0, 1)) for _ in range(50))
    deadline = time.monotonic() + 20
    while exchange.stats()["dropped_overflow"] == 0:
        assert time.monotonic() < deadline, exchange.stats()
        try:
            slow.send_raw(burst)
        except OSError:  # reset by the exchange while we wrote
            break
    wait_until(lambda: exchange.stats()["sessions"] == 1, WAIT, what="the slow one dropped")
    stats = exchange.stats()
    assert stats["dropped_overflow"] == 1 and stats["peak_outbox_bytes"] <= bound
    assert reader.barrier() == []  # the others are served on


@pytest.mark.timeout(30)
def test_many_connections_opening_and_closing_leave_the_exchange_as_it_was(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    for i in range(40):
        client = clients(exchange.port)
        if i % 4 == 0:
            client.login("demo" if i % 8 else "demo2")
            client.send(logout(0))
            client.expect_logout(eto.LOGOUT_CONFIRMATION)
        elif i % 4 == 1:
            client.login()
            client.send_message(seto.MarketSubscribe(market_id=MARKET))
            client.expect("seto.market_quotes")
        elif i % 4 == 2:
            client.send_raw(client.codec.encode(login(0, username="demo", password="x"))[:7])
        client.close()
    wait_until(
        lambda: exchange.stats()["sessions"] == 0 and exchange.stats()["closed"] == 40,
        WAIT,
        what="every session ended",
    )
    stats = exchange.stats()
    assert stats["connections"] == 40
    assert stats["session_errors"] == 0 and stats["logins"] == 20
    last = clients(exchange.port)
    last.login()
    last.send_message(order(seto.SIDE_SELL, reference=1))
    last.expect("seto.order_accepted")
    assert last.barrier() == []  # no closed subscriber got anything, nothing raised


@pytest.mark.timeout(30)
def test_stop_ends_every_session_and_is_idempotent_and_a_busy_port_fails_cleanly(
    clients: Callable[..., Raw],
) -> None:
    with ExchangeServer() as exchange:  # the context manager starts it
        assert exchange.start() is exchange  # a no-op while running
        client = clients(exchange.port)
        client.login()
        port = exchange.port
        with pytest.raises(OSError):
            serve(port=port)  # taken: the failed server leaves no thread (see conftest)
    client.expect_closed()
    exchange.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        exchange.start()
    assert "password" not in repr(exchange)


# -- TLS ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_over_tls_a_client_logs_in_and_a_plaintext_one_is_refused_cleanly(
    tmp_path: Path, servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    ca = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, ca)
    exchange = servers(certfile=cert.cert, keyfile=cert.key)
    assert exchange.tls
    plain = clients(exchange.port)
    plain.send(login(0, username="demo", password="demo-password"))
    assert not [e for e in plain.expect_closed() if type(e) is Frame]  # a TLS alert at most
    wait_until(lambda: exchange.stats()["tls_failures"] == 1, WAIT, what="the failure counted")
    assert exchange.stats()["logins"] == 0 and exchange.stats()["garbage"] == 0
    secure = clients(exchange.port, ssl=client_context(ca.cert))
    assert secure.login().eto_payload.login_response.reset == 2
    assert secure.barrier() == []
    with pytest.raises(ValueError, match="got only certfile"):
        ExchangeServer(certfile=cert.cert)
