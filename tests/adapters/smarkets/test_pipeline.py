"""The exchange's house activity (``[simulation]``) and the ``smarkets`` pipeline source: quotes
as records, supervised through kills and silences, and in a definition with an embedded
exchange."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from actorwire.actors.system import ActorStartError
from actorwire.adapters.smarkets import (
    ExchangeServer,
    Session,
    SessionSettings,
    StreamingAPIClient,
    serve,
    seto,
)
from actorwire.adapters.smarkets.config import (
    ExchangeConfig,
    SimulationConfig,
    load_config,
    parse_config,
)
from actorwire.adapters.smarkets.exchange import Exchange, Simulation
from actorwire.adapters.smarkets.pipeline import SmarketsSource
from actorwire.pipelines import Pipeline, load_definition, make_source

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(30)

FIELDS = {"market", "contract", "symbol", "bid", "ask", "bid_size", "ask_size", "last", "timestamp"}


def simulated(rate: float = 50.0, seed: int = 7, **exchange: Any) -> ExchangeConfig:
    config = load_config(None)
    return dataclasses.replace(
        config, simulation=SimulationConfig(rate=rate, seed=seed), **exchange
    )


@pytest.fixture
def exchange() -> Iterator[ExchangeServer]:
    server = serve(port=0, config=simulated())
    try:
        yield server
    finally:
        server.stop()


class Records:
    """A callback sink's records, with a wait for a count."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        with self._cond:
            self.items.append(record)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                pytest.fail(f"{len(self.items)} records in {timeout}s, wanted {count}")
            return list(self.items)


# -- the simulation, sans-I/O -------------------------------------------------------------------


def run_simulation(config: ExchangeConfig, n: int) -> tuple[list[tuple[int, bytes]], Exchange]:
    exchange = Exchange(config)
    simulation = Simulation(exchange)
    sent = []
    for i in range(n):
        account, payload = simulation.next_message()
        sent.append((account, payload.SerializeToString()))
        exchange.handle(account, payload, 1_000.0 + i / 10)
    return sent, exchange


def test_the_simulation_is_deterministic_for_a_seed_and_bounded() -> None:
    first, exchange = run_simulation(simulated(seed=7), 3000)
    again, _ = run_simulation(simulated(seed=7), 3000)
    other, _ = run_simulation(simulated(seed=8), 3000)
    assert first == again
    assert first != other
    stats = exchange.stats()
    assert stats["orders_accepted"] > 1000 and stats["cancels"] > 500
    assert stats["executions"] > 0 and stats["orders_rejected"] == 0
    # depth 3 a side, two contracts: at most 12 resting house orders
    assert 0 < stats["live_orders"] <= 12
    quotes = exchange.market_quotes(100)
    assert quotes is not None
    for contract in quotes.market_quotes.contract_quotes:
        if contract.bids and contract.offers:
            assert contract.bids[0].price < contract.offers[0].price


def test_the_house_limit_of_open_orders_is_kept() -> None:
    config = simulated(max_open_orders=4)
    config = dataclasses.replace(
        config, simulation=dataclasses.replace(config.simulation, depth=5, trades=0.0)
    )
    _, exchange = run_simulation(config, 500)
    stats = exchange.stats()
    assert stats["live_orders"] <= 4
    assert stats["orders_rejected"] == 0  # the house cancels before it would pass the limit


def test_nobody_logs_in_as_the_house() -> None:
    exchange = Exchange(simulated())
    assert exchange.house == (3, 4)
    assert exchange.authenticate("house-maker", "") is None
    assert exchange.authenticate_token("") is None


def test_the_rate_is_a_ceiling_never_a_burst() -> None:
    simulation = Simulation(Exchange(simulated(rate=20.0)))
    assert simulation.due(100.0) == 0  # the clock starts
    assert simulation.due(100.5) == 10
    assert simulation.due(100.5) == 0
    assert simulation.due(160.0) == 20  # a minute behind: one second's worth, not 1190


def test_simulation_config_is_off_by_default_and_checked() -> None:
    assert load_config(None).simulation == SimulationConfig()
    assert not load_config(None).simulation.enabled
    config = parse_config({"simulation": {"rate": 5, "seed": 3}})
    assert config.simulation.rate == 5.0 and config.simulation.seed == 3
    with pytest.raises(ValueError, match=r"simulation\.rate: must be a number"):
        parse_config({"simulation": {"rate": "fast"}})
    with pytest.raises(ValueError, match=r"simulation\.trades: must be a share from 0 to 1"):
        parse_config({"simulation": {"trades": 2}})
    with pytest.raises(ValueError, match=r"simulation\.spread: .* leave no room"):
        parse_config({"simulation": {"spread": 5000}})
    with pytest.raises(ValueError, match=r"simulation\.sead: unknown key"):
        parse_config({"simulation": {"sead": 1}})


# -- the simulation on the wire -------------------------------------------------------------


def subscriber(server: ExchangeServer) -> tuple[StreamingAPIClient, dict[str, int]]:
    counts = {"contract_quotes": 0, "heartbeats": 0}
    settings = SessionSettings(
        "demo", "demo-password", host="127.0.0.1", port=server.port, ssl=False
    )
    client = StreamingAPIClient(Session(settings))

    def count(name: str, message: Any) -> None:
        if name == "seto.contract_quotes":
            counts["contract_quotes"] += 1
        elif name == "eto.heartbeat":
            counts["heartbeats"] += 1

    client.add_global_handler(count)
    client.start()
    client.send(seto.MarketSubscribe(market_id=100))
    return client, counts


@pytest.mark.parametrize("rate", [50.0, 0.0], ids=["on", "off"])
def test_a_subscriber_sees_quotes_move_only_with_the_simulation_on(rate: float) -> None:
    # Heartbeats every 0.2 s mark time passing on the wire, so "none" is waited for by events.
    server = serve(port=0, config=simulated(rate=rate, heartbeat_interval=0.2, heartbeat_timeout=5))
    client: StreamingAPIClient | None = None
    try:
        client, counts = subscriber(server)
        if rate:
            wait_until(lambda: counts["contract_quotes"] >= 10, 10, what="quotes moving")
            assert server.stats()["simulated"] >= 10
        else:
            wait_until(lambda: counts["heartbeats"] >= 3, 10, what="three heartbeats")
            assert counts["contract_quotes"] == 0
            assert server.stats()["simulated"] == 0
    finally:
        if client is not None:
            client.stop()
        server.stop()


# -- the smarkets source ----------------------------------------------------------------------


def source(server: ExchangeServer, **params: Any) -> dict[str, Any]:
    return {
        "url": f"127.0.0.1:{server.port}",
        "username": "demo",
        "password": "demo-password",
        "markets": [100],
        "symbols": {"101": "Demo United", 102: "Example Rovers"},
        "heartbeat_interval": 0.2,
        "heartbeat_deadline": 1.0,
        **params,
    }


def test_the_source_emits_quote_records_and_reports_its_link(exchange: ExchangeServer) -> None:
    records = Records()
    p = Pipeline("quotes")
    p.source("smarkets", name="quotes", **source(exchange)).to(records)
    with p:
        got = records.wait_for(20)
        assert p.links() == {"quotes": "CONNECTED"}
    for record in got:
        assert set(record) == FIELDS
        assert record["market"] == 100
        assert record["symbol"] == {101: "Demo United", 102: "Example Rovers"}[record["contract"]]
        for side in ("bid", "ask", "last"):
            assert record[side] is None or 0 < record[side] < 1  # a probability
        for size in ("bid_size", "ask_size"):
            assert record[size] is None or record[size] >= 1.0  # currency units
        assert isinstance(record["timestamp"], float) and record["timestamp"] > 1e9
    assert any(r["last"] is not None for r in got), "the house trades now and then"
    assert p.links() == {"quotes": "CLOSED"}
    assert p.stats()["quotes"]["source_records"] == len(records.items)


def test_the_source_reconnects_after_a_kill_and_a_silence(exchange: ExchangeServer) -> None:
    records = Records()
    p = Pipeline("faults")
    p.source("smarkets", name="quotes", **source(exchange)).to(records)
    with p:
        records.wait_for(5)
        exchange.kill()
        wait_until(lambda: p.stats()["quotes"]["source_reconnects"] >= 1, 10, what="a redial")
        records.wait_for(len(records.items) + 5)
        exchange.go_silent()  # the link's heartbeat deadline (1 s) notices
        wait_until(lambda: p.links()["quotes"] != "CONNECTED", 10, what="the link down")
        exchange.resume()
        wait_until(lambda: p.links()["quotes"] == "CONNECTED", 10, what="the link back")
        records.wait_for(len(records.items) + 5)
        assert p.stats()["quotes"]["source_reconnects"] >= 2


def test_source_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match=r"smarkets: url must be 'host:port', got 'nowhere'"):
        make_source("smarkets", url="nowhere", username="u", password="p", markets=[1])
    with pytest.raises(ValueError, match=r"smarkets: markets must list the market ids"):
        make_source("smarkets", url="h:1", username="u", password="p")
    with pytest.raises(ValueError, match=r"smarkets: markets must be a non-empty list"):
        make_source("smarkets", url="h:1", username="u", password="p", markets=["100"])
    with pytest.raises(ValueError, match=r"smarkets: backoff_max must be >= min"):
        make_source(
            "smarkets", url="h:1", username="u", password="p", markets=[1], backoff_max=0.01
        )
    with pytest.raises(ValueError) as caught:
        make_source("smarkets", url="h:1", username="u", password="", markets=[1])
    assert "password must be a non-empty string" in str(caught.value)
    made = SmarketsSource(url="h:1", username="u", password="secret-pw", markets=[1])
    assert "secret-pw" not in repr(made)


def test_bad_credentials_fail_the_start(exchange: ExchangeServer) -> None:
    p = Pipeline("refused")
    p.source("smarkets", **source(exchange, password="wrong")).to(print)
    with pytest.raises(ActorStartError, match="LOGOUT_UNAUTHORISED") as caught:
        p.start()
    p.stop(drain=False)
    assert "wrong" not in str(caught.value)


# -- in a definition ---------------------------------------------------------------------------

COLLECTED: list[dict[str, Any]] = []


def collect(record: dict[str, Any]) -> None:
    COLLECTED.append(record)


DEFINITION = """
[pipeline]
name = "exchange-quotes"

[servers.exchange]
kind = "smarkets"
config = { simulation = { rate = 50.0, seed = 7 } }

[[sources]]
name = "quotes"
kind = "smarkets"
server = "exchange"

[[sinks]]
name = "out"
kind = "callback"
from = "quotes"
fn = "tests.adapters.smarkets.test_pipeline:collect"
"""


def test_a_definition_with_an_embedded_exchange_and_house_activity() -> None:
    COLLECTED.clear()
    p = load_definition(DEFINITION)
    p.run(duration=1.0)
    assert len(COLLECTED) >= 5
    assert {r["symbol"] for r in COLLECTED} == {"Demo United", "Example Rovers"}
    assert p.stats()["quotes"]["failed"] == 0
