"""The embedded exchange's faults and its store, over real sockets on 127.0.0.1: kill,
silence, skipped, repeated and reordered payloads, garbage; a stop and a SIGKILL, each
followed by a new exchange on the same store file that carries on where the first was."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from actorwire.adapters.smarkets import eto, seto
from actorwire.adapters.smarkets import server as server_module
from actorwire.adapters.smarkets.protocol import Garbage, logout, payload_name, ping, replay
from actorwire.adapters.smarkets.server import ExchangeServer

from tests.adapters.smarkets.test_server import (
    MARKET,
    Raw,
    book,
    clients,
    config,
    exchange,
    order,
    quotes_of,
    seqs,
    servers,
)

__all__ = ["clients", "exchange", "servers"]  # fixtures shared with test_server.py

REPO = Path(__file__).resolve().parents[3]
LAUNCHER = """
import sys, threading
from actorwire.adapters.smarkets.server import serve
server = serve(port=0, store_path=sys.argv[1])
print("ready", server.port, flush=True)
threading.Event().wait()
"""


# -- faults -------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_kill_drops_every_connection_and_the_state_stays(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    maker, watcher = clients(exchange.port), clients(exchange.port)
    maker.login()
    watcher.login("demo2")
    watcher.send_message(seto.MarketSubscribe(market_id=MARKET))
    watcher.expect("seto.market_quotes")
    maker.send_message(order(price=2500, quantity=20000, reference=1))
    accepted = maker.expect("seto.order_accepted").order_accepted
    exchange.kill()
    assert exchange.stats()["sessions"] == 0  # kill returns once they have ended
    maker.expect_closed()
    watcher.expect_closed()
    # The exchange listens on; the book and the account sequences are as they were.
    seller = clients(exchange.port)
    seller.login("demo2")
    seller.send_message(order(seto.SIDE_SELL, price=2500, quantity=5000, reference=2))
    seller.until("seto.order_executed")
    back = clients(exchange.port)
    back.login(account_sequence=accepted.account_sequence_64)
    missed = back.until("seto.balance_changed")
    assert [payload_name(p) for p in missed] == ["seto.order_executed", "seto.balance_changed"]
    executed = missed[0].order_executed
    assert (executed.order_id, executed.quantity) == (accepted.order_id, 5000)
    assert executed.account_sequence_64 == accepted.account_sequence_64 + 1
    back.send_message(seto.MarketSubscribe(market_id=MARKET))
    assert book(quotes_of(back.expect("seto.market_quotes"))) == ([(2500, 15000)], [])
    assert exchange.stats()["orders_accepted"] == 2


@pytest.mark.timeout(30)
def test_go_silent_sends_nothing_and_after_resume_a_replay_brings_back_what_was_missed(
    servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    exchange = servers(config=config(heartbeat_interval=0.2, heartbeat_timeout=3.0))
    client = clients(exchange.port)
    client.login()
    exchange.go_silent()
    beats = exchange.stats()["heartbeats_sent"]
    client.send(ping(0))  # answered (seq 2), journalled and dropped
    client.expect_silence(0.6)  # three heartbeat intervals: no heartbeat either
    assert exchange.stats()["heartbeats_sent"] == beats
    client.send(replay(0, 1))  # not even a replay while silent
    client.expect_silence(0.1)
    exchange.resume()
    client.send(ping(0))
    got = client.until("eto.pong")  # a heartbeat may come first: nothing was sent for long
    assert seqs(got) == list(range(3, 3 + len(got)))  # seq 2 is the hole
    client.send(replay(0, 2))
    resent: list[seto.Payload] = []
    while len(resent) < 1 + len(got):
        payload = client.recv()
        if payload.eto_payload.is_replay:
            resent.append(payload)
        else:
            assert payload_name(payload) == "eto.heartbeat", payload
    assert seqs(resent) == list(range(2, 3 + len(got)))
    assert payload_name(resent[0]) == "eto.pong"  # the answer sent while silent
    assert client.barrier() == []


@pytest.mark.timeout(30)
def test_skip_next_makes_a_gap_the_client_fills_with_replay(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.login()
    exchange.skip_next(2)
    for _ in range(3):
        client.send(ping(0))
    first = client.expect("eto.pong")
    assert first.eto_payload.seq == 4  # 2 and 3 were skipped
    client.send(replay(0, 2))
    resent = [client.recv() for _ in range(3)]
    assert seqs(resent) == [2, 3, 4]
    assert [payload_name(p) for p in resent] == ["eto.pong"] * 3
    assert all(p.eto_payload.is_replay for p in resent)
    assert client.barrier() == []


@pytest.mark.timeout(30)
def test_repeat_next_sends_a_payload_twice_with_its_seq(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    client = clients(exchange.port)
    client.login()
    exchange.repeat_next()
    client.send(ping(0))
    client.send(ping(0))
    got = [client.recv() for _ in range(3)]
    assert seqs(got) == [2, 2, 3] and got[0] == got[1]
    assert client.barrier() == []


@pytest.mark.timeout(30)
def test_reorder_next_sends_a_payload_after_the_next_one_and_never_strands_it(
    exchange: ExchangeServer, servers: Callable[..., ExchangeServer], clients: Callable[..., Raw]
) -> None:
    a, b = clients(exchange.port), clients(exchange.port)
    a.login()
    b.login("demo2")
    exchange.reorder_next()
    a.send(ping(0))
    a.send(ping(0))
    b.send(ping(0))  # another session's payload does not release a's
    assert b.expect("eto.pong").eto_payload.seq == 2
    got = a.until("eto.pong")
    got += [a.recv()]
    assert seqs(got[-2:]) == [3, 2]
    # Held with nothing sent after it: the heartbeat the quiet session gets releases it.
    beating = servers(config=config(heartbeat_interval=0.5, heartbeat_timeout=5.0))
    c = clients(beating.port)
    c.login()
    beating.reorder_next()
    c.send(ping(0))
    got = [c.recv(), c.recv()]
    assert [payload_name(p) for p in got] == ["eto.heartbeat", "eto.pong"]
    assert seqs(got) == [3, 2]


@pytest.mark.timeout(30)
def test_send_garbage_reaches_every_logged_in_session_and_the_session_goes_on(
    exchange: ExchangeServer, clients: Callable[..., Raw]
) -> None:
    a, b, anonymous = clients(exchange.port), clients(exchange.port), clients(exchange.port)
    a.login()
    b.login("demo2")
    exchange.send_garbage()
    for client in (a, b):
        assert type(client.next_event()) is Garbage
        client.send(ping(0))
        assert client.expect("eto.pong").eto_payload.seq == 2  # garbage takes no seq
    anonymous.expect_silence(0.1)


# -- the store ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("snapshot_every", [1000, 2], ids=["input log only", "snapshots too"])
def test_a_new_exchange_on_the_same_store_and_port_carries_on_where_the_old_one_stopped(
    tmp_path: Path,
    servers: Callable[..., ExchangeServer],
    clients: Callable[..., Raw],
    monkeypatch: pytest.MonkeyPatch,
    snapshot_every: int,
) -> None:
    # The store logs each input before applying it and writes the whole state every
    # SNAPSHOT_EVERY inputs; a restart loads the snapshot and replays the inputs after it.
    monkeypatch.setattr(server_module, "SNAPSHOT_EVERY", snapshot_every)
    store = tmp_path / "ex.db"
    first = servers(store_path=store)
    port = first.port
    a, b = clients(port), clients(port)
    a.login()
    b.login("demo2")
    a.send_message(order(price=2500, quantity=20000, reference=5))
    bid = a.expect("seto.order_accepted")
    b.send_message(order(seto.SIDE_SELL, price=2500, quantity=5000, reference=6))
    b.until("seto.balance_changed")
    a_balance = a.until("seto.balance_changed")[-1].balance_changed
    b.send_message(order(seto.SIDE_SELL, price=7000, quantity=1000, reference=7))
    offer = b.expect("seto.order_accepted").order_accepted
    a.send(logout(0))
    a.expect_logout(eto.LOGOUT_CONFIRMATION)
    before = first.stats()
    first.stop()
    b.expect_closed()

    second = servers(store_path=store, port=port)
    assert second.port == port
    after = second.stats()
    for name in ("orders_accepted", "executions", "live_orders"):
        assert after[name] == before[name], name
    # The books and the orders in them.
    c = clients(port)
    c.login()
    c.send_message(seto.MarketSubscribe(market_id=MARKET))
    assert book(quotes_of(c.expect("seto.market_quotes"))) == ([(2500, 15000)], [(7000, 1000)])
    # A resent reference is answered once, with the first answer.
    c.send_message(order(price=2500, quantity=20000, reference=5))
    assert c.expect("seto.order_accepted").order_accepted == bid.order_accepted
    assert second.stats()["orders_accepted"] == before["orders_accepted"]
    # Balances and account sequences run on: demo2 trades the rest of the bid.
    d = clients(port)
    d.login("demo2")
    d.send_message(order(seto.SIDE_SELL, price=2500, quantity=15000, reference=8))
    executed = d.until("seto.order_executed")[-1].order_executed
    assert executed.account_sequence_64 == offer.account_sequence_64 + 2  # accepted, executed
    c_got = c.until("seto.balance_changed")
    assert c_got[-2].order_executed.order_id == bid.order_accepted.order_id
    assert c_got[-1].balance_changed.available_balance == pytest.approx(
        a_balance.available_balance
    )  # the reserve held for the rest became the position: the same worst case
    # A login that resumes after the first answer gets everything since, in order.
    e = clients(port)
    e.login(account_sequence=bid.order_accepted.account_sequence_64)
    names = [payload_name(p) for p in e.until("seto.balance_changed")]
    assert names == ["seto.order_executed", "seto.balance_changed"]
    names = [payload_name(p) for p in e.until("seto.balance_changed")]
    assert names == ["seto.order_executed", "seto.balance_changed"]
    assert e.barrier() == []


def _start(store: Path) -> tuple[subprocess.Popen[str], int]:
    """The exchange in a child process on ``store`` (its stderr next to it); the child and
    its port."""
    with (store.parent / "exchange.err").open("a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(store)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(30):
            proc.kill()
            proc.wait()
            pytest.fail("the exchange process did not start within 30 s")
    line = proc.stdout.readline().split()
    assert line[:1] == ["ready"], line
    return proc, int(line[1])


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.timeout(90)
def test_an_exchange_killed_with_sigkill_restarts_on_its_store_with_nothing_lost(
    tmp_path: Path, children: list[subprocess.Popen[str]], clients: Callable[..., Raw]
) -> None:
    store = tmp_path / "ex.db"
    proc, port = _start(store)
    children.append(proc)
    client = clients(port)
    client.login()
    client.send_message(order(price=3300, quantity=12000, reference=9))
    accepted = client.expect("seto.order_accepted").order_accepted
    os.kill(proc.pid, signal.SIGKILL)  # answered means stored: nothing may be lost now
    assert proc.wait(10) == -signal.SIGKILL
    client.expect_closed()

    proc, port = _start(store)
    children.append(proc)
    again = clients(port)
    again.login()
    again.send_message(seto.MarketSubscribe(market_id=MARKET))
    assert book(quotes_of(again.expect("seto.market_quotes"))) == ([(3300, 12000)], [])
    again.send_message(order(price=3300, quantity=12000, reference=9))
    assert again.expect("seto.order_accepted").order_accepted == accepted
    again.send_message(order(price=3000, quantity=1000, reference=10))
    later = again.expect("seto.order_accepted").order_accepted
    assert later.account_sequence_64 == accepted.account_sequence_64 + 1
    assert later.order_id == accepted.order_id + 1
    proc.terminate()
    assert proc.wait(10) == -signal.SIGTERM
