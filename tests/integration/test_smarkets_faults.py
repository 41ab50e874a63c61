"""The supervised Smarkets client (``StreamingAPIClient.start()``) against the embedded
exchange's faults, over real sockets on 127.0.0.1.

- ``actorwire serve smarkets --store`` killed with SIGKILL five times while two supervised
  clients trade: every order is answered once and placed once, every execution reaches each
  side once and in account-sequence order, and the two sides' executions agree.
- In process: skipped, repeated and reordered payloads, garbage and a silence longer than
  the heartbeat deadline: each connection's payloads reach the handlers once and in seq
  order, gaps are replayed, garbage is counted without a reconnect, and after the silence
  the session resumes with the execution made meanwhile delivered once.
- Quotes: within a connection every CONTRACT_QUOTES reaches the handler once and in order
  (as a plain-mode client sees them); after a reconnect each subscribed market gets a fresh
  MARKET_QUOTES.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from actorwire.actors import Backoff, LinkState
from actorwire.adapters.smarkets import (
    SIDE_BID,
    SIDE_OFFER,
    Frame,
    Session,
    SessionSettings,
    StreamingAPIClient,
    serve,
    seto,
)
from actorwire.adapters.smarkets.config import ContractConfig, MarketConfig, load_config
from actorwire.adapters.smarkets.protocol import payload_name
from actorwire.adapters.smarkets.server import ExchangeServer

from tests.support.waiting import wait_until

WAIT = 20.0
MARKET = 100
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.2,
    "heartbeat_deadline": 1.0,
    "backoff": Backoff(min=0.05, max=0.2, factor=2, jitter=0.2),
}
ANSWERS = ("seto.order_accepted", "seto.order_rejected", "seto.order_invalid")
ACCOUNT_SEQUENCE = "account_sequence_64"


# -- helpers ----------------------------------------------------------------------------------


def account_sequence(payload: seto.Payload) -> int:
    """The payload's ``account_sequence_64`` (0 for a payload whose body has none)."""
    if payload.type == seto.PAYLOAD_ETO:
        return 0
    body = getattr(payload, payload_name(payload)[5:])
    if ACCOUNT_SEQUENCE not in body.DESCRIPTOR.fields_by_name:
        return 0
    return int(getattr(body, ACCOUNT_SEQUENCE))


class Recorder:
    """A client's global handler: every payload dispatched, in order, the answers to orders
    by reference, and the connection (counted by LOGIN_RESPONSE) each answer came on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.payloads: list[seto.Payload] = []
        self.answers: dict[int, list[seto.Payload]] = {}
        self.logins = 0
        self.answered_on: dict[int, int] = {}

    def __call__(self, name: str, message: Frame) -> None:
        payload = message.protobuf
        with self.cond:
            self.payloads.append(payload)
            if name == "eto.login_response":
                self.logins += 1
            elif name in ANSWERS:
                reference = getattr(payload, name[5:]).reference
                self.answers.setdefault(reference, []).append(payload)
                self.answered_on.setdefault(reference, self.logins)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
        """Block until ``predicate()`` (called under the lock) holds."""
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                pytest.fail(f"timed out after {timeout}s waiting for {what}")

    def answered(self, reference: int) -> None:
        self.wait(lambda: reference in self.answers, f"the answer to order {reference}")

    def named(self, name: str) -> list[seto.Payload]:
        with self.cond:
            return [p for p in self.payloads if payload_name(p) == name]

    def count(self, name: str) -> int:
        return sum(1 for p in self.payloads if payload_name(p) == name)

    def account_sequences(self) -> list[int]:
        with self.cond:
            return [s for s in map(account_sequence, self.payloads) if s]

    def connections(self) -> list[list[seto.Payload]]:
        """The payloads dispatched on each connection: a LOGIN_RESPONSE opens one."""
        out: list[list[seto.Payload]] = []
        with self.cond:
            for payload in self.payloads:
                if payload_name(payload) == "eto.login_response" or not out:
                    out.append([])
                out[-1].append(payload)
        return out

    def executions(self) -> list[seto.OrderExecuted]:
        return [p.order_executed for p in self.named("seto.order_executed")]


def settings(port: int, user: str) -> SessionSettings:
    return SessionSettings(
        user, f"{user}-password", host="127.0.0.1", port=port, ssl=False, socket_timeout=5
    )


def supervised(
    port: int, user: str, **options: Any
) -> tuple[StreamingAPIClient, Recorder, list[LinkState]]:
    """A started supervised client with a Recorder, and the link states it went through."""
    client = StreamingAPIClient(Session(settings(port, user)))
    recorder = Recorder()
    states: list[LinkState] = []
    client.add_global_handler(recorder)
    client.start(
        **{**FAST, **options}, state_listener=lambda state, why: states.append(state), timeout=WAIT
    )
    return client, recorder, states


def order(
    side: seto.Side,
    price: int,
    quantity: int,
    reference: int,
    contract: int = 101,
    market: int = MARKET,
) -> seto.OrderCreate:
    return seto.OrderCreate(
        side=side,
        price=price,
        quantity=quantity,
        reference=reference,
        market_id=market,
        contract_id=contract,
    )


def settle(client: StreamingAPIClient, recorder: Recorder, reference: int) -> None:
    """Return once every account message sent to the client before now has been
    dispatched: an ORDER_CANCEL_ALL (which cancels whatever is live) and its answer, after
    them in the account's order. Sent again if a drop lost it (a repeat cancels nothing)."""
    deadline = time.monotonic() + WAIT

    def done() -> bool:
        return any(
            p.order_cancel_all_accepted.reference == reference
            for p in recorder.payloads
            if p.type == seto.PAYLOAD_ORDER_CANCEL_ALL_ACCEPTED
        )

    while True:
        wait_until(lambda: client.state is LinkState.CONNECTED, WAIT, what="the link up")
        client.send(seto.OrderCancelAll(reference=reference))
        with recorder.cond:
            if recorder.cond.wait_for(done, 2.0):
                return
        assert time.monotonic() < deadline, "ORDER_CANCEL_ALL never answered"


def assert_in_order_once(recorder: Recorder, who: str) -> None:
    """Each connection's payloads were dispatched once each, in seq order from its
    LOGIN_RESPONSE (seq 1), and the account messages once each, in account order, with none
    missing. A connection's seqs may have holes: an account message resent after a resume
    that the client had already dispatched on an earlier connection is dropped."""
    for n, payloads in enumerate(recorder.connections()):
        seqs = [p.eto_payload.seq for p in payloads]
        if n == 0:
            # A first login resumes nothing: no hole but seq 2, the answer to the client's
            # position probe (a cancel of order 0), which handlers are not given.
            assert seqs == [1, *range(3, len(seqs) + 2)], f"{who}, connection {n}: {seqs}"
        assert seqs[0] == 1, f"{who}, connection {n}: {seqs}"
        assert all(a < b for a, b in itertools.pairwise(seqs)), f"{who}, connection {n}: {seqs}"
    sequences = recorder.account_sequences()
    duplicated = [s for s, k in Counter(sequences).items() if k > 1]
    assert not duplicated, f"{who}: account messages dispatched twice: {duplicated}"
    assert sequences == sorted(sequences), f"{who}: account messages out of order"
    # A new exchange numbers an account's messages from 1, the first taken by the probe:
    # none was lost.
    assert sequences == list(range(2, len(sequences) + 2)), f"{who}: account messages missing"


def assert_answered_once(recorder: Recorder, references: list[int], who: str) -> None:
    """Each order sent was answered exactly once, and accepted; nothing else was answered."""
    with recorder.cond:
        answers = {ref: [payload_name(p) for p in got] for ref, got in recorder.answers.items()}
    twice = {ref: names for ref, names in answers.items() if len(names) != 1}
    assert not twice, f"{who}: orders answered more than once: {twice}"
    missing = [ref for ref in references if ref not in answers]
    assert not missing, f"{who}: orders never answered: {missing}"
    assert set(answers) == set(references), f"{who}: answers to orders never sent"
    refused = {ref: names for ref, names in answers.items() if names != ["seto.order_accepted"]}
    assert not refused, f"{who}: orders not accepted: {refused}"


def filled_once(recorder: Recorder, who: str) -> Counter[tuple[int, int]]:
    """Every accepted order executed exactly its quantity (placed once, nothing executed
    twice); returns the (price, quantity) of every execution."""
    accepted = {p.order_accepted.order_id: p.order_accepted for p in recorder.named(ANSWERS[0])}
    filled: Counter[int] = Counter()
    for executed in recorder.executions():
        assert executed.order_id in accepted, f"{who}: execution of an unknown order"
        filled[executed.order_id] += executed.quantity
    wrong = {i: (filled[i], a.quantity) for i, a in accepted.items() if filled[i] != a.quantity}
    assert not wrong, f"{who}: orders executed other than their quantity: {wrong}"
    return Counter((e.price, e.quantity) for e in recorder.executions())


# -- 1. SIGKILL x5 with --store -----------------------------------------------------------------

KILLS = 5
PAIRS_PER_RUN = 25
PRICES = (2000, 2500, 3000, 3500)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fast_config(tmp_path: Path) -> Path:
    """The packaged config with short heartbeats (a dead exchange is noticed at once) and a
    throttle the trader cannot reach: a throttled order is dropped, and this test is about
    kills, not the throttle."""
    text = (files("actorwire.adapters.smarkets") / "default_config.toml").read_text()
    for key, value in {
        "heartbeat_interval": "0.2",
        "heartbeat_timeout": "1.0",
        "throttle_rate": "100000.0",
        "throttle_burst": "100000",
    }.items():
        text, n = re.subn(rf"^{key} = \S+", f"{key} = {value}", text, flags=re.MULTILINE)
        assert n == 1, key
    path = tmp_path / "exchange.toml"
    path.write_text(text)
    return path


def start_exchange(port: int, store: Path, config: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actorwire.pipelines.cli",
            "serve",
            "smarkets",
            "--port",
            str(port),
            "--store",
            str(store),
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=WAIT)
    except queue.Empty:
        proc.kill()
        proc.wait()
        raise AssertionError("the exchange did not start") from None
    assert re.fullmatch(rf"smarkets exchange listening on 127\.0\.0\.1:{port}\n", line), line
    return proc


@pytest.mark.timeout(90)
def test_sigkill_5_times_with_a_store_every_order_answered_and_placed_once_and_executions_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    store = tmp_path / "ex.db"
    config = fast_config(tmp_path)
    proc = start_exchange(port, store, config)
    progress = threading.Condition()
    pairs = [0]
    stop = threading.Event()
    errors: list[BaseException] = []
    bids: list[int] = []
    offers: list[int] = []
    sent_on: dict[int, int] = {}  # reference -> the sender's connection when it was sent
    clients: list[StreamingAPIClient] = []
    try:
        buyer, bought, _ = supervised(port, "demo")
        clients.append(buyer)
        seller, sold, _ = supervised(port, "demo2")
        clients.append(seller)
        for client in clients:
            client.send(seto.MarketSubscribe(market_id=MARKET))
        bought.wait(lambda: bought.count("seto.market_quotes") == 1, "demo's quotes")
        sold.wait(lambda: sold.count("seto.market_quotes") == 1, "demo2's quotes")

        def trade() -> None:
            # A bid from demo rests, an offer from demo2 crosses it; the next pair once both
            # are answered, so the book is empty at the start of each pair.
            try:
                for i in itertools.count():
                    if stop.is_set():
                        return
                    price, quantity = PRICES[i % len(PRICES)], 10000 * (1 + i % 3)
                    bid, offer = 1_000_000 + i, 2_000_000 + i
                    bids.append(bid)
                    sent_on[bid] = bought.logins
                    buyer.send(order(SIDE_BID, price, quantity, bid))
                    offers.append(offer)
                    sent_on[offer] = sold.logins
                    seller.send(order(SIDE_OFFER, price, quantity, offer))
                    bought.answered(bid)
                    sold.answered(offer)
                    with progress:
                        pairs[0] += 1
                        progress.notify_all()
            except BaseException as exc:
                errors.append(exc)
                with progress:
                    progress.notify_all()

        def traded(n: int, what: str) -> None:
            with progress:
                ok = progress.wait_for(lambda: pairs[0] >= n or bool(errors), WAIT)
            assert not errors, errors
            assert ok, f"trading stalled {what} ({pairs[0]} pairs)"

        trader = threading.Thread(target=trade, name="trader")
        trader.start()
        try:
            for kill in range(KILLS):
                traded(pairs[0] + PAIRS_PER_RUN, f"before kill {kill + 1}")
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(WAIT)
                proc = start_exchange(port, store, config)
            traded(pairs[0] + PAIRS_PER_RUN, "after the last restart")
        finally:
            stop.set()
            trader.join(WAIT)
        assert not trader.is_alive() and not errors, errors
        # Quiet: each side's last account messages are in once its ORDER_CANCEL_ALL is.
        settle(buyer, bought, 1)
        settle(seller, sold, 2)
    finally:
        for client in clients:
            client.stop()
        proc.kill()
        proc.wait(WAIT)

    assert len(bids) >= (KILLS + 1) * PAIRS_PER_RUN
    assert_answered_once(bought, bids, "demo")
    assert_answered_once(sold, offers, "demo2")
    assert_in_order_once(bought, "demo")
    assert_in_order_once(sold, "demo2")
    # Nothing was left live to cancel: no order was placed twice.
    assert bought.named("seto.order_cancelled") == []
    assert sold.named("seto.order_cancelled") == []
    # Each order executed exactly its quantity, and the two sides saw the same trades.
    buys = filled_once(bought, "demo")
    sells = filled_once(sold, "demo2")
    assert buys == sells
    assert sum(buys.values()) == len(bids)
    assert all(e.side == SIDE_BID for e in bought.executions())
    assert all(e.side == SIDE_OFFER for e in sold.executions())
    # Each client connected once per run of the exchange at least, and orders sent before
    # a kill were answered after it (resumed, or sent again and placed once).
    assert len(bought.connections()) >= KILLS + 1
    assert len(sold.connections()) >= KILLS + 1
    carried = [
        ref
        for recorder in (bought, sold)
        for ref, on in recorder.answered_on.items()
        if ref in sent_on and on > sent_on[ref]
    ]
    assert carried, "no order was in flight at a kill"
    # The exchange's own state, as the store kept it: each order placed once, all filled.
    kept = ExchangeServer(config, store_path=store)
    try:
        stats = kept.exchange.stats()
    finally:
        kept.stop()
    assert stats["orders_accepted"] == len(bids) + len(offers), stats
    assert stats["executions"] == len(bids), stats
    assert stats["live_orders"] == 0, stats


# -- 2. gaps, repeats, reordering, garbage and silence, in process --------------------------


def short_heartbeats(**changes: Any) -> Any:
    return dataclasses.replace(
        load_config(None), heartbeat_interval=0.2, heartbeat_timeout=1.0, **changes
    )


@pytest.fixture
def exchange() -> Iterator[ExchangeServer]:
    server = serve(port=0, config=short_heartbeats())
    try:
        yield server
    finally:
        server.stop()


def protocol_errors(client: StreamingAPIClient) -> int:
    """What the client's link counted as bad input (garbage among it)."""
    link = client._link
    assert link is not None
    return int(link.stats.protocol_errors)


@pytest.mark.timeout(60)
def test_gaps_repeats_reordering_garbage_and_silence_reach_the_handlers_once_and_in_order(
    exchange: ExchangeServer,
) -> None:
    watched, seen, states = supervised(exchange.port, "demo")
    trader, traded, _ = supervised(exchange.port, "demo2")
    references = itertools.count(1)
    bids: list[int] = []
    offers: list[int] = []
    try:
        watched.send(seto.MarketSubscribe(market_id=MARKET))
        seen.wait(lambda: seen.count("seto.market_quotes") == 1, "the market's quotes")
        logins = exchange.stats()["logins"]

        def pair(price: int, quantity: int) -> None:
            bid, offer = next(references), next(references)
            bids.append(bid)
            offers.append(offer)
            watched.send(order(SIDE_BID, price, quantity, bid))
            trader.send(order(SIDE_OFFER, price, quantity, offer))
            seen.answered(bid)
            traded.answered(offer)

        def skip_and_reorder() -> None:
            exchange.skip_next()
            exchange.reorder_next()

        garbage = 0
        faults: list[Callable[[], None]] = [
            exchange.skip_next,
            exchange.repeat_next,
            exchange.reorder_next,
            exchange.send_garbage,
            lambda: exchange.skip_next(2),
            lambda: exchange.repeat_next(3),
            lambda: exchange.reorder_next(2),
            skip_and_reorder,
        ]
        for i, fault in enumerate(faults * 2):
            fault()
            garbage += fault == exchange.send_garbage
            pair(PRICES[i % len(PRICES)], 10000 * (1 + i % 3))
        settle(watched, seen, next(references))
        settle(trader, traded, next(references))
        stats = exchange.stats()
        assert stats["replays"] >= 1, stats
        # Nothing of that dropped a link: no login since, the garbage counted and read past.
        assert stats["logins"] == logins, stats
        assert LinkState.RECONNECTING not in states
        assert protocol_errors(watched) == garbage
        assert protocol_errors(trader) == garbage

        # Silence: the exchange trades demo2's offer against demo's resting bid and sends
        # nothing until demo's link has given up on it (its heartbeat deadline).
        bid, offer = next(references), next(references)
        bids.append(bid)
        offers.append(offer)
        watched.send(order(SIDE_BID, 3300, 20000, bid))
        seen.answered(bid)
        (accepted,) = seen.answers[bid]
        bid_id = accepted.order_accepted.order_id
        executions = exchange.stats()["executions"]
        exchange.go_silent()
        trader.send(order(SIDE_OFFER, 3300, 20000, offer))
        wait_until(
            lambda: exchange.stats()["executions"] > executions, WAIT, what="the silent trade"
        )
        wait_until(lambda: watched.state is not LinkState.CONNECTED, WAIT, what="demo's drop")
        assert all(e.order_id != bid_id for e in seen.executions())
        exchange.resume()
        seen.wait(
            lambda: any(e.order_id == bid_id for e in seen.executions()),
            "the execution made during the silence",
        )
        traded.answered(offer)
        pair(2700, 10000)  # trading goes on after the resume
        settle(watched, seen, next(references))
        settle(trader, traded, next(references))
        assert [e.quantity for e in seen.executions() if e.order_id == bid_id] == [20000]
        assert LinkState.RECONNECTING in states
        assert exchange.stats()["resumes"] >= 1
    finally:
        watched.stop()
        trader.stop()
    assert_in_order_once(seen, "demo")
    assert_in_order_once(traded, "demo2")
    assert_answered_once(seen, bids, "demo")
    assert_answered_once(traded, offers, "demo2")
    assert filled_once(seen, "demo") == filled_once(traded, "demo2")
    assert len(seen.connections()) >= 2


# -- 3. quotes -------------------------------------------------------------------------------


def book(quotes: seto.ContractQuotes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    return (
        [(q.price, q.quantity) for q in quotes.bids],
        [(q.price, q.quantity) for q in quotes.offers],
    )


class PlainReader:
    """A plain-mode client (the SDK's calls) and what its reads dispatched."""

    def __init__(self, port: int, user: str) -> None:
        self.client = StreamingAPIClient(Session(settings(port, user)))
        self.seen = Recorder()
        self.client.add_global_handler(self.seen)
        self.client.login()

    def send(self, message: Any) -> None:
        self.client.send(message)
        self.client.flush()

    def read_until(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not predicate():
            assert time.monotonic() < deadline, f"plain client: no {what}"
            self.client.read()
            self.client.flush()


@pytest.mark.timeout(60)
def test_quotes_reach_the_handler_once_in_order_and_a_reconnect_brings_fresh_snapshots() -> None:
    config = short_heartbeats(
        markets=(
            *load_config(None).markets,
            MarketConfig(
                200,
                1,
                "Total goals",
                "open",
                (ContractConfig(201, "Over"), ContractConfig(202, "Under")),
            ),
        )
    )
    exchange = serve(port=0, config=config)
    # The first redial 1 s after a drop: the book changes while the client is away.
    away = Backoff(min=1.0, max=1.0, factor=1.0, jitter=0.0)
    watcher, seen, states = supervised(exchange.port, "demo", backoff=away)
    readers: list[PlainReader] = []
    try:
        for market in (MARKET, 200):
            watcher.send(seto.MarketSubscribe(market_id=market))
        seen.wait(lambda: seen.count("seto.market_quotes") == 2, "both snapshots")
        plain = PlainReader(exchange.port, "demo2")
        readers.append(plain)
        for market in (MARKET, 200):
            plain.send(seto.MarketSubscribe(market_id=market))
        plain.read_until(lambda: plain.seen.count("seto.market_quotes") == 2, "snapshots")

        # Book changes from both accounts (resting, crossing, cancelled), with faults among
        # them; each changes one contract's book: one CONTRACT_QUOTES each.
        changes = 0
        references = itertools.count(1)

        def change(trader: Any, side: seto.Side, price: int, quantity: int, *where: int) -> int:
            """One order that changes one contract's book, answered before the next."""
            nonlocal changes
            changes += 1
            reference = next(references)
            trader.send(order(side, price, quantity, reference, *where))
            if trader is watcher:
                seen.answered(reference)
            else:
                plain.read_until(lambda: reference in plain.seen.answers, "answer")
            return reference

        for price in (3000, 3100, 3200):
            change(watcher, SIDE_OFFER, price, 10000)
        exchange.repeat_next(2)
        change(watcher, SIDE_OFFER, 5000, 10000, 201, 200)
        exchange.reorder_next()
        for price in (2000, 2100):
            change(plain, SIDE_BID, price, 10000, 102)
        exchange.skip_next()
        change(plain, SIDE_BID, 3100, 15000)  # two executions
        resting = change(plain, SIDE_BID, 1500, 10000, 201, 200)
        (accepted,) = plain.seen.answers[resting]
        exchange.reorder_next(2)
        changes += 1
        plain.send(seto.OrderCancel(order_id=accepted.order_accepted.order_id))
        plain.read_until(lambda: plain.seen.count("seto.order_cancelled") == 1, "the cancel")
        exchange.skip_next(2)
        change(watcher, SIDE_OFFER, 4000, 30000, 102)
        change(plain, SIDE_BID, 1234, 12340, 102)  # the last

        def last(recorder: Recorder) -> Callable[[], bool]:
            return lambda: any(
                (1234, 12340) in book(p.contract_quotes)[0]
                for p in recorder.payloads
                if p.type == seto.PAYLOAD_CONTRACT_QUOTES
            )

        plain.read_until(last(plain.seen), "last quotes")
        seen.wait(last(seen), "the last quotes")
        got = [p.contract_quotes for p in seen.named("seto.contract_quotes")]
        expected = [p.contract_quotes for p in plain.seen.named("seto.contract_quotes")]
        assert len(seen.connections()) == 1
        assert len(got) == changes
        assert got == expected
        assert exchange.stats()["executions"] == 2
        assert [e.price for q in got for e in q.executions] == [3000, 3100]

        # A drop: demo2 changes market 200's book while demo is away; demo comes back with a
        # fresh snapshot of each market it subscribed to.
        exchange.kill()
        wait_until(lambda: watcher.state is not LinkState.CONNECTED, WAIT, what="the drop")
        plain = PlainReader(exchange.port, "demo2")
        readers.append(plain)
        change(plain, SIDE_BID, 4321, 43210, 202, 200)
        seen.wait(lambda: seen.count("seto.market_quotes") == 4, "the fresh snapshots")
        wait_until(lambda: watcher.state is LinkState.CONNECTED, WAIT, what="connected")
        assert LinkState.RECONNECTING in states
        _, second = seen.connections()
        snapshots = {
            p.market_quotes.market_id: p.market_quotes
            for p in second
            if p.type == seto.PAYLOAD_MARKET_QUOTES
        }
        assert sorted(snapshots) == [MARKET, 200]
        assert sum(p.type == seto.PAYLOAD_MARKET_QUOTES for p in second) == 2
        under = {q.contract_id: q for q in snapshots[200].contract_quotes}[202]
        assert book(under) == ([(4321, 43210)], [])  # a change the client was never sent
        for market, snapshot in snapshots.items():
            now = exchange.exchange.market_quotes(market)
            assert now is not None and snapshot == now.market_quotes
    finally:
        watcher.stop()
        for reader in readers:
            with contextlib.suppress(ConnectionError):  # the killed one's socket is gone
                reader.client.logout()
        exchange.stop()


# -- a restart without the store ------------------------------------------------------------


@pytest.mark.timeout(30)
def test_after_a_restart_without_the_store_the_answers_still_reach_the_handlers() -> None:
    config = short_heartbeats()
    first = serve(port=0, config=config)
    port = first.port
    client, seen, _ = supervised(port, "demo")
    try:
        for reference in (1, 2, 3):
            client.send(order(SIDE_BID, 2000 + reference, 10000, reference))
            seen.answered(reference)
        first.stop()
        second = serve(port=port, config=config)  # a new exchange: no state, sequences from 1
        try:
            client.send(order(SIDE_BID, 2500, 10000, 4))
            wait_until(lambda: second.stats()["orders_accepted"] == 1, WAIT, what="placed")
            # The new exchange refused the resume (it never gave those sequences); the
            # client logged in afresh and says so.
            assert second.stats()["resume_misses"] >= 1
            assert client.resumes_refused >= 1
            with seen.cond:
                answered = seen.cond.wait_for(lambda: 4 in seen.answers, 3.0)
            assert answered, "the new exchange accepted order 4; its answer never reached us"
        finally:
            second.stop()
    finally:
        client.stop()
        first.stop()
