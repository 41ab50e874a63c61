"""The smarkets adapter in pipelines: the ``smarkets`` source (an exchange's quotes, one
record per contract quote change) and the embedded exchange as a server kind (``[servers.x]
kind = "smarkets"`` in a definition, ``actorwire serve smarkets``), registered through the
``actorwire.plugins`` entry point (``plugin()``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...actors import Backoff
from ...actors.link import LinkState
from ...actors.tomlcheck import read_toml
from ...pipelines.plugins import EmbeddedKind, Plugin, RunningServer, server_kind
from ...pipelines.sources import _positive
from ...pipelines.stage import Source
from . import seto
from .client import Session, SessionSettings, StreamingAPIClient
from .config import ExchangeConfig, load_config, parse_config
from .exchange import PRICE_SCALE
from .server import DEFAULT_PORT, serve

if TYPE_CHECKING:
    from ...pipelines.stage import StageContext

__all__ = ["LINK_DEFAULTS", "QUANTITY_SCALE", "EmbeddedExchange", "SmarketsSource", "plugin"]

QUANTITY_SCALE = 10_000
"""Quantity units in one currency unit of payout (the SDK's: 400000 is 40.00 GBP)."""

LINK_DEFAULTS: dict[str, float] = {
    "heartbeat_interval": 0.5,
    "heartbeat_deadline": 5.0,
    "backoff_min": 0.1,
    "backoff_max": 0.5,
    "backoff_factor": 2.0,
    "backoff_jitter": 0.2,
}
"""The ``smarkets`` source's link defaults: the keysquare stages' (a pipeline runs unattended
and misses quotes while away, so it redials a down exchange about twice a second)."""

_QuoteKey = tuple[float | None, float | None, float | None, float | None, float | None]


def _price(value: int) -> float:
    """Basis points of percent odds as a probability: 2500 -> 0.25."""
    return value / PRICE_SCALE


def _quantity(value: int) -> float:
    """Quantity units as currency units of payout: 400000 -> 40.0."""
    return value / QUANTITY_SCALE


def _url(owner: str, url: object) -> tuple[str, int]:
    host, sep, port = str(url).rpartition(":")
    if not isinstance(url, str) or not sep or not host or not port.isdigit():
        raise ValueError(f"{owner}: url must be 'host:port', got {url!r}")
    return host.strip("[]"), int(port)


def _markets(owner: str, markets: object) -> tuple[int, ...]:
    if markets is None:
        raise ValueError(
            f"{owner}: markets must list the market ids to subscribe to (or name an embedded "
            "exchange with server = ..., whose markets are the default)"
        )
    if (
        isinstance(markets, str | bytes)
        or not isinstance(markets, Sequence)
        or not markets
        or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in markets)
    ):
        raise ValueError(
            f"{owner}: markets must be a non-empty list of market ids, got {markets!r}"
        )
    return tuple(dict.fromkeys(markets))


def _symbols(owner: str, symbols: object) -> dict[int, str]:
    if symbols is None:
        return {}
    if not isinstance(symbols, Mapping):
        raise TypeError(f"{owner}: symbols must map contract ids to names, got {symbols!r}")
    out: dict[int, str] = {}
    for key, name in symbols.items():
        try:
            contract = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: symbols key {key!r} is not a contract id") from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"{owner}: symbols[{key!r}] must be a non-empty name, got {name!r}")
        out[contract] = name
    return out


def _backoff(owner: str, params: Mapping[str, object]) -> Backoff:
    values = {
        name: _positive(owner, f"backoff_{name}", params[f"backoff_{name}"])
        for name in ("min", "max", "factor")
    }
    jitter = params["backoff_jitter"]
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter <= 1:
        raise ValueError(f"{owner}: backoff_jitter must be a number from 0 to 1, got {jitter!r}")
    try:
        return Backoff(jitter=float(jitter), **values)  # type: ignore[arg-type]
    except ValueError as exc:  # max below min, factor below 1: named as the parameters
        problem = str(exc).removeprefix("Backoff: ")
        raise ValueError(f"{owner}: backoff_{problem}") from None


class SmarketsSource(Source):
    """``smarkets``: an exchange's quotes, one record per contract quote change.

    Logs in to ``url`` (``"host:port"``) as ``username`` / ``password`` (never logged) and
    subscribes to ``markets`` (market ids). Each record is ``{"market", "contract",
    "symbol", "bid", "ask", "bid_size", "ask_size", "last", "timestamp"}``: ``symbol`` is
    the contract's name from ``symbols`` (contract id -> name; with ``server = ...`` the
    exchange config's names) or its id as a string; prices are the SDK's basis points of
    percent odds as a probability (``bid`` 2500 -> 0.25), None when that side is empty;
    sizes the quantity at the best price in currency units of payout (400000 -> 40.0), None
    when empty; ``last`` the last execution's price (None before any); ``timestamp`` epoch
    seconds: the latest execution's time when the message carries executions, else the
    time it arrived. A record goes out when the best bid, best offer, their sizes or the
    last price changed, or a trade happened (a change deeper in the book is not one); on
    each (re)subscription the exchange's snapshot brings every contract that changed.

    The session is the client's supervised one (``StreamingAPIClient.start``): it answers
    heartbeats, recovers gaps with REPLAY, and after a drop redials with backoff and
    resubscribes. ``heartbeat_interval``, ``heartbeat_deadline`` and ``backoff_min``,
    ``backoff_max``, ``backoff_factor``, ``backoff_jitter`` tune it (defaults:
    :data:`LINK_DEFAULTS`). ``ssl`` speaks TLS (trusting ``ca_file``, else the system's
    CAs). The link's state is in ``Pipeline.links()``; ``stats()`` counts ``records``,
    ``quotes`` (quote messages read), ``reconnects``, ``gaps`` (gap recoveries) and
    ``handler_errors``. Records go straight from the client's actor to the next stages, so
    bound those stages' mailboxes. Never done.
    """

    def __init__(
        self,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        markets: Sequence[int] | None = None,
        symbols: Mapping[str | int, str] | None = None,
        ssl: bool = False,
        ca_file: str | None = None,
        timeout: float = 10.0,
        heartbeat_interval: float = LINK_DEFAULTS["heartbeat_interval"],
        heartbeat_deadline: float = LINK_DEFAULTS["heartbeat_deadline"],
        backoff_min: float = LINK_DEFAULTS["backoff_min"],
        backoff_max: float = LINK_DEFAULTS["backoff_max"],
        backoff_factor: float = LINK_DEFAULTS["backoff_factor"],
        backoff_jitter: float = LINK_DEFAULTS["backoff_jitter"],
    ) -> None:
        owner = "smarkets"
        if url is None:
            raise ValueError(f"{owner}: url must be 'host:port' (or name a server = ...)")
        self._host, self._port = _url(owner, url)
        if not isinstance(username, str) or not username:
            raise ValueError(f"{owner}: username must be a non-empty string, got {username!r}")
        if not isinstance(password, str) or not password:
            raise ValueError(f"{owner}: password must be a non-empty string")
        if not isinstance(ssl, bool):
            raise TypeError(f"{owner}: ssl must be true or false, got {ssl!r}")
        if ca_file is not None and not isinstance(ca_file, str):
            raise TypeError(f"{owner}: ca_file must be a path string, got {ca_file!r}")
        self._url = url
        self._username = username
        self._password = password
        self._markets = _markets(owner, markets)
        self._symbols = _symbols(owner, symbols)
        self._ssl = ssl
        self._ca_file = ca_file
        self._timeout = _positive(owner, "timeout", timeout) or 10.0
        self._interval = _positive(owner, "heartbeat_interval", heartbeat_interval) or 0.5
        self._deadline = _positive(owner, "heartbeat_deadline", heartbeat_deadline) or 5.0
        if self._deadline <= self._interval:
            raise ValueError(
                f"{owner}: heartbeat_deadline must be longer than the heartbeat interval "
                f"({self._interval:g} s), got {heartbeat_deadline!r}"
            )
        self._backoff = _backoff(
            owner,
            {
                "backoff_min": backoff_min,
                "backoff_max": backoff_max,
                "backoff_factor": backoff_factor,
                "backoff_jitter": backoff_jitter,
            },
        )
        self._client: StreamingAPIClient | None = None
        self._ctx: StageContext | None = None
        self._seen: dict[tuple[int, int], _QuoteKey] = {}
        self._records = 0
        self._quotes = 0
        self._connects = 0
        self._gaps = 0

    def __repr__(self) -> str:
        return f"SmarketsSource(url={self._url!r}, markets={list(self._markets)!r})"

    def start(self, ctx: StageContext) -> None:
        self._ctx = ctx
        settings = SessionSettings(
            self._username,
            self._password,
            host=self._host,
            port=self._port,
            ssl=self._ssl,
            ssl_kwargs={"ca_certs": self._ca_file} if self._ca_file else None,
        )
        client = StreamingAPIClient(Session(settings))
        client.add_handler("seto.market_quotes", self._on_market_quotes)
        client.add_handler("seto.contract_quotes", self._on_contract_quotes)
        self._client = client
        try:
            client.start(
                ctx.system,
                heartbeat_interval=self._interval,
                heartbeat_deadline=self._deadline,
                backoff=self._backoff,
                state_listener=self._on_state,
                timeout=self._timeout,
            )
            for market in self._markets:
                client.send(seto.MarketSubscribe(market_id=market))
        except BaseException:
            self.stop()
            raise

    # -- on the link's and the client's actors -----------------------------------------------

    def _on_state(self, state: LinkState, _why: str) -> None:
        if state is LinkState.CONNECTED:
            self._connects += 1
        elif state is LinkState.RECOVERING:
            self._gaps += 1
        ctx = self._ctx
        if ctx is not None:
            ctx.set_link_state(state.name)
            ctx.state.component_stats = self.stats()

    def _on_market_quotes(self, message: seto.Payload) -> None:
        self._quotes += 1
        self._emit(list(message.market_quotes.contract_quotes))

    def _on_contract_quotes(self, message: seto.Payload) -> None:
        self._quotes += 1
        self._emit([message.contract_quotes])

    def _emit(self, quotes: list[seto.ContractQuotes]) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        records = [r for r in (self._record(q) for q in quotes) if r is not None]
        if records:
            self._records += len(records)
            ctx.state.received += len(records)
            ctx.state.processed += len(records)
            ctx.emit(records)
        ctx.state.component_stats = self.stats()

    def _record(self, quotes: seto.ContractQuotes) -> dict[str, Any] | None:
        """The record for one contract's quotes, or None when nothing a record shows changed."""
        bids, offers = quotes.bids, quotes.offers
        last = _price(quotes.last_execution.price) if quotes.HasField("last_execution") else None
        top: _QuoteKey = (
            _price(bids[0].price) if bids else None,
            _price(offers[0].price) if offers else None,
            _quantity(bids[0].quantity) if bids else None,
            _quantity(offers[0].quantity) if offers else None,
            last,
        )
        key = (quotes.market_id, quotes.contract_id)
        traded = len(quotes.executions) > 0
        if self._seen.get(key) == top and not traded:
            return None
        self._seen[key] = top
        if traded:
            timestamp = max(e.microseconds for e in quotes.executions) / 1_000_000
        else:
            timestamp = time.time()
        contract = quotes.contract_id
        return {
            "market": quotes.market_id,
            "contract": contract,
            "symbol": self._symbols.get(contract, str(contract)),
            "bid": top[0],
            "ask": top[1],
            "bid_size": top[2],
            "ask_size": top[3],
            "last": last,
            "timestamp": timestamp,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        client.stop()
        if self._ctx is not None:
            self._ctx.set_link_state("CLOSED")

    def stats(self) -> dict[str, int]:
        client = self._client
        return {
            "records": self._records,
            "quotes": self._quotes,
            "reconnects": max(self._connects - 1, 0),
            "gaps": self._gaps,
            "handler_errors": client.handler_errors if client is not None else 0,
        }


# -- the embedded exchange -----------------------------------------------------------------


_DEFAULT_SECTIONS = ("accounts", "events", "markets")


class EmbeddedExchange(EmbeddedKind):
    """A definition's ``[servers.<name>] kind = "smarkets"``: its config, port and store.

    An inline config that names none of ``accounts``, ``events`` and ``markets`` takes the
    packaged default's (so ``config = { simulation = { rate = 20.0, seed = 7 } }`` is the
    default exchange with house activity)."""

    config: ExchangeConfig
    load = staticmethod(load_config)

    @staticmethod
    def parse(table: dict[str, Any], where: str, base_dir: Path | None) -> ExchangeConfig:
        if not any(section in table for section in _DEFAULT_SECTIONS):
            _, _, default = read_toml(None, "actorwire.adapters.smarkets")
            table = {**{k: default[k] for k in _DEFAULT_SECTIONS if k in default}, **table}
        return parse_config(table, where)

    def open(self) -> RunningServer:
        return serve(self.host, self.port, self.config, store_path=self.store)

    def credentials(self, data_type: str, verb: str) -> tuple[str, str]:
        """The first account of the config (the exchange grants every account everything)."""
        if not self.config.accounts:
            raise ValueError("the exchange's config has no account; give username and password")
        account = self.config.accounts[0]
        return account.username, account.password

    def stage_params(self, params: dict[str, Any], section: str) -> dict[str, Any]:
        """A ``smarkets`` source's ``url``, and unless given: the first account's
        ``username`` and ``password``, every market of the config, and the contracts' names
        as ``symbols``."""
        if section != "sources":
            raise ValueError("a smarkets exchange serves sources (kind 'smarkets') only")
        out = dict(params)
        out.setdefault("url", self.url)
        if "username" not in out and "password" not in out:
            out["username"], out["password"] = self.credentials("", "read")
        out.setdefault("markets", [m.id for m in self.config.markets])
        out.setdefault(
            "symbols", {str(c.id): c.name for m in self.config.markets for c in m.contracts}
        )
        return out


def plugin() -> Plugin:
    """What this adapter adds to pipelines (the ``actorwire.plugins`` entry point)."""
    return Plugin(
        "smarkets",
        sources={"smarkets": SmarketsSource},
        servers={
            "smarkets": server_kind(
                "smarkets",
                "smarkets exchange",
                DEFAULT_PORT,
                EmbeddedExchange,
                lambda host, port, config, store, cert, key: serve(
                    host, port, config, store_path=store, certfile=cert, keyfile=key
                ),
            )
        },
    )
