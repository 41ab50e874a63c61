"""The embedded exchange's configuration: accounts, events, markets and limits, from TOML.

``load_config`` checks the whole file before anything starts and names the file, the line
and the key path of the first error (``demo.toml:31: markets[0].contracts[1].id: duplicate
contract 101 (markets[0].contracts[0] has it)``). Passwords never appear in reprs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...actors.tomlcheck import TomlChecker, read_toml

__all__ = [
    "MARKET_STATES",
    "AccountConfig",
    "ContractConfig",
    "EventConfig",
    "ExchangeConfig",
    "MarketConfig",
    "SimulationConfig",
    "load_config",
    "parse_config",
]

MARKET_STATES = ("new", "open", "halted", "settled")
"""A market's states: only an ``open`` market takes orders."""

_UINT32_MAX = (1 << 32) - 1  # market, contract and event ids are uint32 on the wire
_UINT64_MAX = (1 << 64) - 1  # account ids are uint64

_EXCHANGE_DEFAULTS: dict[str, Any] = {
    "heartbeat_interval": 5.0,
    "heartbeat_timeout": 15.0,
    "session_journal_bytes": 4 << 20,
    "account_journal_bytes": 16 << 20,
    "reference_memory_bytes": 4 << 20,
    "max_open_orders": 1000,
    "throttle_rate": 100.0,
    "throttle_burst": 200,
    "max_frame_bytes": 1 << 20,
}


@dataclass(frozen=True)
class AccountConfig:
    """An account that may log in: its credentials, its id and its starting balance."""

    username: str
    password: str = field(repr=False)
    account_id: int
    """The account's id (uint64) on the wire and in the exchange's state."""
    balance: float
    """Currency units (10000.0 is 10,000 GBP)."""
    token: str | None = field(default=None, repr=False)
    """A token the account may log in with instead (the SDK's ``SessionSettings(token=)``,
    sent as the LOGIN's ``cookie``)."""


@dataclass(frozen=True)
class EventConfig:
    """An event (a match, a race) that markets belong to."""

    id: int
    name: str


@dataclass(frozen=True)
class ContractConfig:
    """One outcome of a market: what a bid or an offer is placed on."""

    id: int
    name: str


@dataclass(frozen=True)
class MarketConfig:
    """A market of an event, its state (one of ``MARKET_STATES``) and its contracts."""

    id: int
    event_id: int
    name: str
    state: str
    contracts: tuple[ContractConfig, ...]


_SIMULATION_DEFAULTS: dict[str, Any] = {
    "rate": 0.0,
    "seed": 0,
    "depth": 3,
    "step": 10,
    "spread": 50,
    "trades": 0.1,
    "balance": 1_000_000.0,
}
MAX_SIMULATION_RATE = 10_000.0
"""The most messages a second ``[simulation]`` may ask for."""


@dataclass(frozen=True)
class SimulationConfig:
    """Activity for demos: the exchange trades with itself from two house accounts (which no
    client can log in as), so that quotes move without any client trading. Off when
    ``rate`` is 0 (the default)."""

    rate: float = 0.0
    """Messages a second the house sends (orders and cancels together)."""
    seed: int = 0
    """The random walk's seed: the same seed gives the same messages."""
    depth: int = 3
    """Resting house orders per side of each contract, at most."""
    step: int = 10
    """Price units (basis points) a contract's mid moves by per step of its walk."""
    spread: int = 50
    """Price units between a contract's mid and the house's best bid or offer."""
    trades: float = 0.1
    """The share of messages that trade: an immediate-or-cancel order from the second house
    account against the best resting price."""
    balance: float = 1_000_000.0
    """Each house account's balance (currency units)."""

    @property
    def enabled(self) -> bool:
        return self.rate > 0


@dataclass(frozen=True)
class ExchangeConfig:
    """The whole exchange configuration (see default_config.toml for the shape)."""

    accounts: tuple[AccountConfig, ...] = ()
    events: tuple[EventConfig, ...] = ()
    markets: tuple[MarketConfig, ...] = ()
    heartbeat_interval: float = 5.0
    """Seconds between the heartbeats the exchange sends a quiet session."""
    heartbeat_timeout: float = 15.0
    """Seconds a client may stay silent before it is logged out with HEARTBEAT_TIMEOUT."""
    session_journal_bytes: int = 4 << 20
    """Bytes of each session's sent messages kept to answer REPLAY."""
    account_journal_bytes: int = 16 << 20
    """Bytes of each account's messages kept for a login that resumes from an account
    sequence."""
    reference_memory_bytes: int = 4 << 20
    """Bytes of each account's order references (with the answer each got) remembered, so a
    resent order is placed once."""
    max_open_orders: int = 1000
    """Live orders one account may hold; another is rejected with LIMIT_EXCEEDED."""
    throttle_rate: float = 100.0
    """Messages per second an account may send on average (a token bucket's refill)."""
    throttle_burst: int = 200
    """Messages an account may send at once (the token bucket's size)."""
    max_frame_bytes: int = 1 << 20
    """The largest frame a client may send; a larger one closes its connection."""
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    """House activity for demos (``[simulation]``); off by default."""


def _uint(check: TomlChecker, value: Any, path: str, maximum: int) -> int:
    number = check.integer(value, path, minimum=1)
    if number > maximum:
        raise check.fail(path, f"must be at most {maximum}, got {number}")
    return number


def _text(check: TomlChecker, value: Any, path: str) -> str:
    text = check.string(value, path)
    if not text.strip():
        raise check.fail(path, "must be a non-empty string")
    return text


def _required(check: TomlChecker, table: Mapping[str, Any], where: str, key: str) -> Any:
    if key not in table:
        raise check.fail(f"{where}.{key}", "missing")
    return table[key]


def _exchange_settings(check: TomlChecker, doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = check.table(doc.get("exchange", {}), "exchange", tuple(_EXCHANGE_DEFAULTS))
    settings = {**_EXCHANGE_DEFAULTS, **raw}
    interval = check.positive(settings["heartbeat_interval"], "exchange.heartbeat_interval")
    timeout = check.positive(settings["heartbeat_timeout"], "exchange.heartbeat_timeout")
    if timeout <= interval:
        raise check.fail(
            "exchange.heartbeat_timeout",
            f"must be greater than heartbeat_interval ({timeout!r} <= {interval!r})",
        )
    out: dict[str, Any] = {
        "heartbeat_interval": interval,
        "heartbeat_timeout": timeout,
        "throttle_rate": check.positive(settings["throttle_rate"], "exchange.throttle_rate"),
    }
    for key in (
        "session_journal_bytes",
        "account_journal_bytes",
        "reference_memory_bytes",
        "max_open_orders",
        "throttle_burst",
    ):
        out[key] = check.positive_int(settings[key], f"exchange.{key}")
    out["max_frame_bytes"] = check.integer(
        settings["max_frame_bytes"], "exchange.max_frame_bytes", minimum=1024
    )
    return out


def _accounts(check: TomlChecker, doc: Mapping[str, Any]) -> tuple[AccountConfig, ...]:
    accounts: list[AccountConfig] = []
    usernames: dict[str, str] = {}
    ids: dict[int, str] = {}
    for i, raw in enumerate(check.array(doc.get("accounts", []), "accounts")):
        where = f"accounts[{i}]"
        table = check.table(raw, where, ("username", "password", "account_id", "balance", "token"))
        username = _text(check, _required(check, table, where, "username"), f"{where}.username")
        if username in usernames:
            raise check.fail(
                f"{where}.username", f"duplicate username {username!r} ({usernames[username]})"
            )
        usernames[username] = where
        password = check.string(_required(check, table, where, "password"), f"{where}.password")
        if not password:  # never echo a password, even a bad one
            raise check.fail(f"{where}.password", f"empty for account {username!r}")
        account_id = _uint(
            check, _required(check, table, where, "account_id"), f"{where}.account_id", _UINT64_MAX
        )
        if account_id in ids:
            raise check.fail(
                f"{where}.account_id", f"duplicate account id {account_id} ({ids[account_id]})"
            )
        ids[account_id] = where
        balance = check.number(
            _required(check, table, where, "balance"), f"{where}.balance", minimum=0
        )
        if not math.isfinite(balance):
            raise check.fail(f"{where}.balance", f"must be a finite number, got {balance!r}")
        token = table.get("token")
        if token is not None:
            token = check.string(token, f"{where}.token")
            if not token:
                raise check.fail(f"{where}.token", f"empty for account {username!r}")
        accounts.append(AccountConfig(username, password, account_id, balance, token))
    return tuple(accounts)


def _events(check: TomlChecker, doc: Mapping[str, Any]) -> tuple[EventConfig, ...]:
    events: list[EventConfig] = []
    ids: dict[int, str] = {}
    for i, raw in enumerate(check.array(doc.get("events", []), "events")):
        where = f"events[{i}]"
        table = check.table(raw, where, ("id", "name"))
        event_id = _uint(check, _required(check, table, where, "id"), f"{where}.id", _UINT32_MAX)
        if event_id in ids:
            raise check.fail(f"{where}.id", f"duplicate event {event_id} ({ids[event_id]})")
        ids[event_id] = where
        name = _text(check, _required(check, table, where, "name"), f"{where}.name")
        events.append(EventConfig(event_id, name))
    return tuple(events)


def _markets(
    check: TomlChecker, doc: Mapping[str, Any], events: tuple[EventConfig, ...]
) -> tuple[MarketConfig, ...]:
    event_ids = {event.id for event in events}
    markets: list[MarketConfig] = []
    market_ids: dict[int, str] = {}
    contract_ids: dict[int, str] = {}  # contract ids are unique across the exchange
    for i, raw in enumerate(check.array(doc.get("markets", []), "markets")):
        where = f"markets[{i}]"
        table = check.table(raw, where, ("id", "event_id", "name", "state", "contracts"))
        market_id = _uint(check, _required(check, table, where, "id"), f"{where}.id", _UINT32_MAX)
        if market_id in market_ids:
            raise check.fail(
                f"{where}.id", f"duplicate market {market_id} ({market_ids[market_id]})"
            )
        market_ids[market_id] = where
        event_id = _uint(
            check, _required(check, table, where, "event_id"), f"{where}.event_id", _UINT32_MAX
        )
        if event_id not in event_ids:
            known = ", ".join(str(e) for e in sorted(event_ids)) or "none"
            raise check.fail(
                f"{where}.event_id", f"no event {event_id} is defined (events: {known})"
            )
        name = _text(check, _required(check, table, where, "name"), f"{where}.name")
        state = check.choice(table.get("state", "open"), f"{where}.state", MARKET_STATES)
        contracts: list[ContractConfig] = []
        raw_contracts = check.array(
            _required(check, table, where, "contracts"), f"{where}.contracts"
        )
        if not raw_contracts:
            raise check.fail(f"{where}.contracts", "a market needs at least one contract")
        for j, raw_contract in enumerate(raw_contracts):
            cwhere = f"{where}.contracts[{j}]"
            ctable = check.table(raw_contract, cwhere, ("id", "name"))
            contract_id = _uint(
                check, _required(check, ctable, cwhere, "id"), f"{cwhere}.id", _UINT32_MAX
            )
            if contract_id in contract_ids:
                raise check.fail(
                    f"{cwhere}.id",
                    f"duplicate contract {contract_id} ({contract_ids[contract_id]} has it)",
                )
            contract_ids[contract_id] = cwhere
            cname = _text(check, _required(check, ctable, cwhere, "name"), f"{cwhere}.name")
            contracts.append(ContractConfig(contract_id, cname))
        markets.append(MarketConfig(market_id, event_id, name, state, tuple(contracts)))
    return tuple(markets)


def _simulation(check: TomlChecker, doc: Mapping[str, Any]) -> SimulationConfig:
    raw = check.table(doc.get("simulation", {}), "simulation", tuple(_SIMULATION_DEFAULTS))
    settings = {**_SIMULATION_DEFAULTS, **raw}
    rate = check.number(settings["rate"], "simulation.rate", minimum=0)
    if not rate <= MAX_SIMULATION_RATE:
        raise check.fail(
            "simulation.rate", f"must be at most {MAX_SIMULATION_RATE:g} a second, got {rate!r}"
        )
    trades = check.number(settings["trades"], "simulation.trades", minimum=0)
    if trades > 1:
        raise check.fail("simulation.trades", f"must be a share from 0 to 1, got {trades!r}")
    balance = check.positive(settings["balance"], "simulation.balance")
    if not math.isfinite(balance):
        raise check.fail("simulation.balance", f"must be a finite number, got {balance!r}")
    step = check.positive_int(settings["step"], "simulation.step")
    spread = check.positive_int(settings["spread"], "simulation.spread")
    depth = check.positive_int(settings["depth"], "simulation.depth")
    if 2 * (spread + depth * step) >= 9999:
        raise check.fail(
            "simulation.spread",
            f"spread {spread} and depth {depth} x step {step} leave no room for prices "
            "from 1 to 9999 around a mid",
        )
    return SimulationConfig(
        rate=float(rate),
        seed=check.integer(settings["seed"], "simulation.seed", minimum=0),
        depth=depth,
        step=step,
        spread=spread,
        trades=float(trades),
        balance=float(balance),
    )


def _parse(check: TomlChecker, doc: Mapping[str, Any]) -> ExchangeConfig:
    check.table(doc, "", ("exchange", "accounts", "events", "markets", "simulation"))
    settings = _exchange_settings(check, doc)
    accounts = _accounts(check, doc)
    events = _events(check, doc)
    markets = _markets(check, doc, events)
    simulation = _simulation(check, doc)
    return ExchangeConfig(
        accounts=accounts, events=events, markets=markets, simulation=simulation, **settings
    )


def load_config(path: str | Path | None = None) -> ExchangeConfig:
    """Read and check an exchange config; ``None`` means the packaged default_config.toml.

    Raises ValueError (a ``TomlError``) naming the file, the line when known and the key
    path of the first problem.
    """
    source, text, doc = read_toml(path, "actorwire.adapters.smarkets")
    return _parse(TomlChecker(source, text), doc)


def parse_config(doc: Mapping[str, Any], source: str = "<config>") -> ExchangeConfig:
    """Check an already-parsed config table (one inline in a pipeline definition, say);
    errors name ``source`` and the key path as ``load_config``'s do."""
    return _parse(TomlChecker(source), doc)
