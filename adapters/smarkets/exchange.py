"""The embedded exchange's trading core, sans-I/O: accounts, order books, matching, account
sequences and journals, order references, throttling and snapshots.

No sockets, threads or clocks: the server's sessions call ``handle(account_id, payload, now)``
one message at a time and send what it returns (``Out``: to an account's sessions, or to a
market's subscribers). The server owns the session layer (login, heartbeats, session
sequence numbers, REPLAY) and the market subscriptions; this module owns everything a
restart must keep, and hands it over as ``snapshot()`` / ``Exchange.restore``.

Rules:

1. Units as the SDK's: a price is basis points of percent odds (uint32, 1..9999 valid; 2500
   is 25.00%), a quantity is 1/10000 of a currency unit of payout (uint64, > 0; 400000 is
   40.00 GBP). Money is kept exactly, as integers in 1/10^8 currency units (quantity x
   price); the wire's ``available_balance``/``exposure`` are those divided by 10^8.
2. Exposure. What is left of a live buy of quantity q at price p reserves q * p / 1e8
   currency (its stake); of a sell, q * (10000 - p) / 1e8 (its liability). A fill turns the
   filled part of both orders into a position on that contract, and a position costs its
   worst case: with W the account's profit on the contract if it wins and L if it loses
   (a buy of q at x adds q * (10000 - x) to W and takes q * x from L; a sell the reverse),
   the position's exposure is max(0, -W, -L). Buying and selling the same contract so
   nets out; contracts of one market are not netted against each other (conservative).
   ``exposure`` = reserves + positions' exposure; ``available_balance`` = balance -
   exposure. A fill never raises exposure (each order fills at its own price or better, so
   the worst case grows by at most the reserve it releases): an order accepted against the
   available balance keeps it at 0 or more for ever. The balance itself changes only at
   settlement, which this exchange does not model.
3. ORDER_CREATE is answered by exactly one of ORDER_INVALID (price outside 1..9999,
   quantity 0: every reason that applies), ORDER_REJECTED (in this order of checks:
   MARKET_NOT_FOUND, CONTRACT_NOT_FOUND, MARKET_NOT_OPEN / MARKET_HALTED / MARKET_SETTLED,
   LIMIT_EXCEEDED (``max_open_orders`` live orders), CROSSED_SELF (the order would trade
   with one of the account's own resting orders: the whole order is rejected, as the real
   exchange does), INSUFFICIENT_FUNDS (its reserve is more than the available balance)) or
   ORDER_ACCEPTED. An accepted order then matches the opposite side of its contract with
   price-time priority, each fill at the resting order's price: ORDER_EXECUTED to the
   aggressor then to the resting order's account, then BALANCE_CHANGED to each. What is
   left of an IMMEDIATE_OR_CANCEL order is cancelled (ORDER_CANCELLED with
   INSUFFICIENT_LIQUIDITY: the book had no more at its price); what is left of any other
   (GOOD_TIL_CANCELLED; KEEP_IN_PLAY and GOOD_TILL_HALTED behave the same here) rests.
4. ORDER_CANCEL of a live order of the account: ORDER_CANCELLED (MEMBER_REQUESTED; it
   carries the order's own reference, executed quantity and average price, and the
   balance after its reserve is released); of a finished one: ORDER_CANCEL_REJECTED
   NOT_LIVE (the last ``FINISHED_ORDER_BYTES`` of them are remembered); of any other id
   (another account's order too): NOT_FOUND. ORDER_CANCEL_ALL (every market, or the one
   given) cancels the account's live orders oldest first, then answers
   ORDER_CANCEL_ALL_ACCEPTED; an unknown market gets ORDER_CANCEL_ALL_REJECTED
   (UNKNOWN_ERROR, the protocol's only reason). ORDER_QUANTITY_REDUCE sets what an order
   may still trade to ``new_quantity``, which must be above 0 and below what it may now
   (else INVALID_NEW_QUANTITY; NOT_LIVE and NOT_FOUND as for a cancel); the order keeps
   its place in the queue and the released reserve is told by a BALANCE_CHANGED.
5. After every message that changed a contract's book or traded on it, the market's
   subscribers get a CONTRACT_QUOTES with that contract's whole aggregated book (bids best
   first, offers best first: a client replaces its view of the contract), the executions
   of this message, the last execution (``liquidity`` = the aggressor's side,
   ``microseconds`` from ``now``) and the high and low execution prices.
   ``market_quotes`` is the MARKET_QUOTES snapshot a new subscriber gets first.
6. Account sequences: every message to an account whose body has ``account_sequence_64``
   gets the account's next sequence there (uint64 from 1, never reused) and its low 32
   bits in ``account_sequence``. Every message to an account (with a sequence or not) is
   kept in the account's journal, at most ``account_journal_bytes`` (each costs its size
   plus ``ENTRY_OVERHEAD``), oldest dropped first. ``account_messages_after(after)`` is what
   followed the message with sequence ``after``: the messages with a greater sequence and
   the unsequenced ones sent after it (a BALANCE_CHANGED, an ORDER_INVALID: at least once),
   or None when the journal no longer holds them all.
7. Order references: an ORDER_CREATE whose non-zero ``reference`` the account used before is
   not placed again: ``handle`` returns the original answer (ORDER_ACCEPTED, ORDER_REJECTED
   or ORDER_INVALID: the same bytes, the same account sequence), so a client may resend an
   unacknowledged order after a reconnect. Each account remembers its references and
   answers in at most ``reference_memory_bytes`` (each costs the answer's size plus
   ``ENTRY_OVERHEAD``; about 25,000 references in the default 4 MiB), the oldest forgotten
   first: a reference older than that is placed again.
8. SETTINGS is answered by SETTINGS_ACCEPTED and kept: with ``cancel_all_on_failure`` the
   server's ``cancel_all_on_failure(account_id, now)`` cancels the account's orders when
   a session of it fails. MARKET_SUBSCRIBE and MARKET_UNSUBSCRIBE return an empty list
   (the server keeps the subscriptions and sends ``market_quotes`` first); anything else
   (LOGIN, ETO, an unknown type) returns an empty list and is counted (``ignored``), and a
   trading message missing a required field too (``malformed``). Nothing a client sends
   raises.
9. House activity (``[simulation]`` with ``rate`` > 0, for demos): the exchange holds two
   more accounts, the house's maker and taker, with ids after the config's largest and no
   credentials (nobody logs in as them). :class:`Simulation` builds their messages, a
   seeded random walk around a mid per contract of every open market: the maker keeps at
   most ``depth`` resting orders a side per contract, ``spread`` + k x ``step`` from the
   mid, cancelling those the mid has moved through and the oldest when full; a share
   ``trades`` of the messages are the taker's IMMEDIATE_OR_CANCEL orders at the best
   resting price. They go through ``handle`` as any account's (same rules, same limits),
   so the same seed and the same book give the same messages.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hmac
import math
import random
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf.message import DecodeError

from . import seto
from .config import ExchangeConfig, MarketConfig

__all__ = [
    "ENTRY_OVERHEAD",
    "FINISHED_ORDER_BYTES",
    "MAX_PRICE",
    "MIN_PRICE",
    "SNAPSHOT_FORMAT",
    "UNITS_PER_CURRENCY",
    "Exchange",
    "Out",
    "Simulation",
]

MIN_PRICE = 1
MAX_PRICE = 9999
"""Valid prices are MIN_PRICE..MAX_PRICE basis points of percent odds (0.01% to 99.99%)."""
PRICE_SCALE = 10_000  # 100.00% in price units
UNITS_PER_CURRENCY = 100_000_000
"""Money is kept in quantity x price units: 10^8 of them make one currency unit."""
ENTRY_OVERHEAD = 100
"""Bytes one kept message, reference or order id costs beyond its own size (the container
slot, the int and bytes objects): what the byte bounds count."""
FINISHED_ORDER_BYTES = 1 << 20
"""Bytes of each account's finished order ids kept (about 10,000), so that cancelling a
filled or cancelled order is answered NOT_LIVE rather than NOT_FOUND."""
SNAPSHOT_FORMAT = 1
"""The version of ``Exchange.snapshot()``'s data."""

_BUY = seto.SIDE_BUY
_SELL = seto.SIDE_SELL
_SEQUENCE_32 = 0xFFFFFFFF
_STATE_REJECTIONS = {
    "new": seto.ORDER_REJECTED_MARKET_NOT_OPEN,
    "halted": seto.ORDER_REJECTED_MARKET_HALTED,
    "settled": seto.ORDER_REJECTED_MARKET_SETTLED,
}
# seto.Payload's body for type N is field N + 1; its name is the type's, lowercased.
_BODIES = {number - 1: f.name for number, f in seto.Payload.DESCRIPTOR.fields_by_number.items()}
# Subscriptions are the server's bookkeeping: handle() has nothing to say to them.
_SERVER_KINDS = frozenset({seto.PAYLOAD_MARKET_SUBSCRIBE, seto.PAYLOAD_MARKET_UNSUBSCRIBE})
_STATS = (
    "orders_accepted",
    "orders_rejected",
    "orders_invalid",
    "orders_duplicate",
    "executions",
    "executed_quantity",
    "cancels",
    "cancel_rejects",
    "cancel_alls",
    "cancel_all_rejects",
    "quantity_reduces",
    "quantity_reduce_rejects",
    "settings",
    "throttled",
    "ignored",
    "malformed",
    "journal_evicted",
    "references_forgotten",
)


@dataclass(frozen=True)
class Out:
    """One message ``Exchange.handle`` answers with, and where it goes.

    ``account_id`` set: to every session of that account; ``market_id`` set: to every
    subscriber of that market. ``payload`` has no ``eto_payload.seq``: the server stamps
    its session's sequence number (the exchange keeps no reference to the object).
    """

    account_id: int | None
    market_id: int | None
    payload: seto.Payload


@dataclass(slots=True, eq=False)  # an order is itself: compared by identity
class _Order:
    """A live order. ``remaining`` is what may still trade; ``order_id`` is also its time
    priority (ids only grow, and a quantity reduction keeps the order's place)."""

    order_id: int
    account_id: int
    market_id: int
    contract_id: int
    side: seto.Side
    price: int
    quantity: int
    remaining: int
    executed: int = 0
    executed_value: int = 0  # sum of fill quantity x fill price, for the average price
    reference: int = 0
    label: str = ""
    tif: seto.TimeInForceType = seto.GOOD_TIL_CANCELLED
    resting: bool = False  # on the book (an aggressor is not until it has matched)

    def avg_price(self) -> int:
        """The average execution price, rounded half up (0 before any fill)."""
        if not self.executed:
            return 0
        return (2 * self.executed_value + self.executed) // (2 * self.executed)


def _reserve(side: int, price: int, quantity: int) -> int:
    """What ``quantity`` of an order at ``price`` holds back, in money units (rule 2)."""
    return quantity * (price if side == _BUY else PRICE_SCALE - price)


def _worst(position: list[int]) -> int:
    """A position's exposure: the most it loses, whichever way the contract ends."""
    return max(0, -position[0], -position[1])


def _crosses(side: int, limit: int, resting: int) -> bool:
    """True when an order on ``side`` with price ``limit`` trades with a resting ``resting``."""
    return resting <= limit if side == _BUY else resting >= limit


def _new(type_: seto.PayloadType) -> seto.Payload:
    """An empty payload of ``type_`` with its body and an (unstamped) eto_payload present."""
    payload = seto.Payload(type=type_)
    payload.eto_payload.SetInParent()
    getattr(payload, _BODIES[type_]).SetInParent()
    return payload


def _parse(data: bytes) -> seto.Payload:
    payload = seto.Payload()
    payload.ParseFromString(data)
    return payload


def _message_bytes(text: str) -> bytes:
    """A snapshot's base64 message, checked to be a seto.Payload."""
    data = base64.b64decode(text, validate=True)
    _parse(data)
    return data


def _currency(units: int) -> float:
    return units / UNITS_PER_CURRENCY


class _Journal:
    """An account's messages in the order sent, bounded in bytes (rule 6).

    Each entry is ``(position, sequenced, data)``: a sequenced message's position is its
    account sequence, an unsequenced one's the sequence of the message before it.
    ``floor`` is the least ``after`` still fully held.
    """

    __slots__ = ("bytes", "entries", "evicted", "floor", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: deque[tuple[int, bool, bytes]] = deque()
        self.bytes = 0
        self.floor = 0
        self.evicted = 0

    def append(self, position: int, sequenced: bool, data: bytes) -> None:
        self.entries.append((position, sequenced, data))
        self.bytes += len(data) + ENTRY_OVERHEAD
        while self.bytes > self.max_bytes and self.entries:
            old_position, old_sequenced, old = self.entries.popleft()
            self.bytes -= len(old) + ENTRY_OVERHEAD
            self.evicted += 1
            # Losing message s loses nothing a client past s needs; losing an unsequenced
            # message sent after s loses what a client at s still needs.
            self.floor = old_position if old_sequenced else old_position + 1

    def after(self, after: int, last: int) -> list[bytes] | None:
        if not self.floor <= after <= last:
            return None
        return [
            data
            for position, sequenced, data in self.entries
            if position > after or (position == after and not sequenced)
        ]


class _Memory:
    """Ints mapped to bytes, oldest forgotten first beyond ``max_bytes`` (each entry costs
    its value's size plus ``ENTRY_OVERHEAD``)."""

    __slots__ = ("bytes", "evicted", "items", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.items: OrderedDict[int, bytes] = OrderedDict()
        self.bytes = 0
        self.evicted = 0

    def get(self, key: int) -> bytes | None:
        return self.items.get(key)

    def __contains__(self, key: int) -> bool:
        return key in self.items

    def put(self, key: int, value: bytes) -> None:
        old = self.items.pop(key, None)
        if old is not None:
            self.bytes -= len(old) + ENTRY_OVERHEAD
        self.items[key] = value
        self.bytes += len(value) + ENTRY_OVERHEAD
        while self.bytes > self.max_bytes and self.items:
            _, dropped = self.items.popitem(last=False)
            self.bytes -= len(dropped) + ENTRY_OVERHEAD
            self.evicted += 1


class _Account:
    """One account's money, live orders, positions, sequence, journal and memories."""

    __slots__ = (
        "account_id",
        "balance",
        "cancel_all_on_failure",
        "finished",
        "journal",
        "orders",
        "password",
        "positions",
        "references",
        "reserved",
        "risk",
        "sequence",
        "username",
    )

    def __init__(
        self, account_id: int, username: str, password: str, balance: int, config: ExchangeConfig
    ) -> None:
        self.account_id = account_id
        self.username = username
        self.password = password.encode()
        self.balance = balance  # money units
        self.reserved = 0  # reserves of live orders
        self.risk = 0  # exposure of positions
        self.sequence = 0  # the last account sequence given
        self.orders: dict[int, _Order] = {}  # live orders by id, oldest first
        self.positions: dict[tuple[int, int], list[int]] = {}  # (market, contract) -> [W, L]
        self.journal = _Journal(config.account_journal_bytes)
        self.references = _Memory(config.reference_memory_bytes)
        self.finished = _Memory(FINISHED_ORDER_BYTES)
        self.cancel_all_on_failure = False

    def __repr__(self) -> str:
        return f"_Account({self.account_id}, {self.username!r})"

    @property
    def exposure(self) -> int:
        return self.reserved + self.risk

    @property
    def available(self) -> int:
        return self.balance - self.reserved - self.risk


class _Book:
    """One contract's resting orders: per side, price -> orders oldest first, and the
    prices in ascending order; and its trading record (volume, high, low, last)."""

    __slots__ = ("contract_id", "high", "last", "levels", "low", "market_id", "prices", "volume")

    def __init__(self, market_id: int, contract_id: int) -> None:
        self.market_id = market_id
        self.contract_id = contract_id
        self.levels: dict[int, dict[int, deque[_Order]]] = {_BUY: {}, _SELL: {}}
        self.prices: dict[int, list[int]] = {_BUY: [], _SELL: []}
        self.volume = 0
        self.high = 0
        self.low = 0
        self.last: tuple[int, int, int, int] | None = None  # price, quantity, side, us

    def add(self, order: _Order) -> None:
        levels = self.levels[order.side]
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = deque()
            bisect.insort(self.prices[order.side], order.price)
        level.append(order)
        order.resting = True

    def remove(self, order: _Order) -> None:
        level = self.levels[order.side][order.price]
        level.remove(order)
        order.resting = False
        if not level:
            del self.levels[order.side][order.price]
            self.prices[order.side].remove(order.price)

    def best(self, side: int) -> int | None:
        """The best price on ``side``: the highest bid, the lowest offer."""
        prices = self.prices[side]
        if not prices:
            return None
        return prices[-1] if side == _BUY else prices[0]

    def front(self, side: int, price: int) -> _Order:
        return self.levels[side][price][0]

    def depth(self, side: int) -> list[tuple[int, int]]:
        """(price, total remaining quantity) per level, best first."""
        prices = self.prices[side]
        ordered = reversed(prices) if side == _BUY else iter(prices)
        levels = self.levels[side]
        return [(price, sum(o.remaining for o in levels[price])) for price in ordered]

    def record(self, price: int, quantity: int, side: int, microseconds: int) -> None:
        self.volume += quantity
        self.high = max(self.high, price)
        self.low = min(self.low, price) if self.low else price
        self.last = (price, quantity, side, microseconds)

    def fill(
        self, body: seto.ContractQuotes, executions: Iterable[tuple[int, int, int, int]]
    ) -> None:
        """Write this contract's quotes into ``body`` (rule 5)."""
        body.market_id = self.market_id
        body.contract_id = self.contract_id
        for price, quantity in self.depth(_BUY):
            body.bids.add(price=price, quantity=quantity)
        for price, quantity in self.depth(_SELL):
            body.offers.add(price=price, quantity=quantity)
        for price, quantity, side, microseconds in executions:
            body.executions.add(
                price=price,
                quantity=quantity,
                liquidity=cast(seto.Side, side),
                microseconds=microseconds,
            )
        if self.last is not None:
            price, quantity, side, microseconds = self.last
            last = body.last_execution
            last.price, last.quantity, last.microseconds = price, quantity, microseconds
            last.liquidity = cast(seto.Side, side)
            body.high_price, body.low_price = self.high, self.low


class _Changes:
    """What one message changed: the contracts to send quotes for, in the order they
    changed, with the executions on each."""

    __slots__ = ("contracts",)

    def __init__(self) -> None:
        self.contracts: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}

    def touch(self, book: _Book) -> list[tuple[int, int, int, int]]:
        return self.contracts.setdefault((book.market_id, book.contract_id), [])


class Exchange:
    """The exchange's state and rules (see the module's docstring); one instance serves
    every session, called from one thread."""

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self._accounts: dict[int, _Account] = {}
        self._by_username: dict[str, _Account] = {}
        for account in config.accounts:
            state = _Account(
                account.account_id,
                account.username,
                account.password,
                round(account.balance * UNITS_PER_CURRENCY),
                config,
            )
            self._accounts[account.account_id] = state
            self._by_username[account.username] = state
        self._markets: dict[int, MarketConfig] = {m.id: m for m in config.markets}
        self._books: dict[tuple[int, int], _Book] = {
            (m.id, c.id): _Book(m.id, c.id) for m in config.markets for c in m.contracts
        }
        self.house: tuple[int, int] | None = None
        """The house's (maker, taker) account ids when ``[simulation]`` is on (rule 9)."""
        if config.simulation.enabled:
            first = max((a.account_id for a in config.accounts), default=0) + 1
            self.house = (first, first + 1)
            balance = round(config.simulation.balance * UNITS_PER_CURRENCY)
            for account_id, name in zip(self.house, ("house-maker", "house-taker"), strict=True):
                # Not among the usernames nor the tokens: nobody logs in as the house.
                self._accounts[account_id] = _Account(account_id, name, "", balance, config)
        self._next_order_id = 1
        self._buckets: dict[int, tuple[float, float]] = {}  # account -> (tokens, time)
        self._stats = dict.fromkeys(_STATS, 0)
        # Without an account the comparison still runs, so timing tells no username apart.
        self._no_password = b"\x00" * 32

    def __repr__(self) -> str:
        live = sum(len(a.orders) for a in self._accounts.values())
        return (
            f"Exchange({len(self._accounts)} accounts, {len(self._markets)} markets, "
            f"{live} live orders)"
        )

    # -- the contract the server uses ---------------------------------------------------------

    def authenticate(self, username: str, password: str) -> int | None:
        """The account id for these credentials, or None."""
        account = self._by_username.get(username)
        expected = account.password if account is not None else self._no_password
        matches = hmac.compare_digest(password.encode("utf-8", "surrogatepass"), expected)
        return account.account_id if account is not None and matches else None

    def authenticate_token(self, token: str) -> int | None:
        """The account id whose token this is, or None (every account is compared, in
        constant time each, so timing tells no token apart)."""
        given = token.encode("utf-8", "surrogatepass")
        found: int | None = None
        for account in self.config.accounts:
            expected = (account.token or "").encode("utf-8", "surrogatepass")
            if hmac.compare_digest(given, expected) and account.token:
                found = account.account_id
        return found

    def handle(self, account_id: int, payload: seto.Payload, now: float) -> list[Out]:
        """Apply one message of an authenticated account; the messages to send, in order.

        ``now`` is seconds since the epoch (execution timestamps). Raises ValueError for an
        account id the exchange does not know (a server error, not a client's).
        """
        account = self._account(account_id)
        kind = payload.type
        if kind in _SERVER_KINDS:
            return []
        handler = self._handlers.get(kind)
        if handler is None:
            self._stats["ignored"] += 1
            return []
        body = getattr(payload, _BODIES[kind])
        if not body.IsInitialized():
            self._stats["malformed"] += 1
            return []
        out: list[Out] = []
        changes = _Changes()
        handler(self, account, body, payload.eto_payload.seq, now, out, changes)
        self._quotes(changes, out)
        return out

    def market_quotes(self, market_id: int) -> seto.Payload | None:
        """MARKET_QUOTES with every contract's aggregated book and last execution (the
        snapshot a new subscriber gets first); None for an unknown market."""
        market = self._markets.get(market_id)
        if market is None:
            return None
        payload = _new(seto.PAYLOAD_MARKET_QUOTES)
        body = payload.market_quotes
        body.market_id = market_id
        volume = 0
        for contract in market.contracts:
            book = self._books[market_id, contract.id]
            book.fill(body.contract_quotes.add(), ())
            volume += book.volume
        body.executed_volume = volume
        return payload

    def account_messages_after(self, account_id: int, after: int) -> list[seto.Payload] | None:
        """The account's messages that followed the one with account sequence ``after``
        (0: all of them), in order; None when the journal no longer holds them all or
        ``after`` is a sequence the account was never given."""
        account = self._account(account_id)
        held = account.journal.after(after, account.sequence)
        return None if held is None else [_parse(data) for data in held]

    def last_account_sequence(self, account_id: int) -> int:
        """The last account sequence the account was given (0 before any)."""
        return self._account(account_id).sequence

    def balance(self, account_id: int) -> tuple[float, float]:
        """The account's ``(available_balance, exposure)`` in currency units."""
        account = self._account(account_id)
        return _currency(account.available), _currency(account.exposure)

    def throttle(self, account_id: int, now: float) -> bool:
        """Take one message from the account's token bucket (``throttle_rate`` per second,
        ``throttle_burst`` at most); False when it is empty: the server answers eto
        THROTTLE_EXCEEDED and drops the message. ``now`` may step back: no refill then."""
        self._account(account_id)
        burst = float(self.config.throttle_burst)
        tokens, last = self._buckets.get(account_id, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * self.config.throttle_rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        else:
            self._stats["throttled"] += 1
        self._buckets[account_id] = (tokens, max(last, now))
        return allowed

    def cancel_all_on_failure(self, account_id: int, now: float) -> list[Out]:
        """For the server when a session of the account ends without a logout: if the
        account asked for it (SETTINGS ``cancel_all_on_failure``), cancel every live order
        (ORDER_CANCELLED MEMBER_REQUESTED) and update the quotes; else nothing."""
        account = self._account(account_id)
        if not account.cancel_all_on_failure:
            return []
        out: list[Out] = []
        changes = _Changes()
        for order in list(account.orders.values()):
            self._cancel(account, order, seto.ORDER_CANCELLED_MEMBER_REQUESTED, out, changes)
        self._quotes(changes, out)
        return out

    def stats(self) -> dict[str, int]:
        """Counters: orders accepted, rejected, invalid, duplicate; executions, cancels, ...;
        and ``live_orders`` now."""
        counters = dict(self._stats)  # the evictions since a restore add to those before
        counters["journal_evicted"] += sum(a.journal.evicted for a in self._accounts.values())
        counters["references_forgotten"] += sum(
            a.references.evicted for a in self._accounts.values()
        )
        counters["live_orders"] = sum(len(a.orders) for a in self._accounts.values())
        return counters

    # -- ORDER_CREATE ---------------------------------------------------------------------

    def _order_create(
        self,
        account: _Account,
        create: seto.OrderCreate,
        seq: int,
        now: float,
        out: list[Out],
        changes: _Changes,
    ) -> None:
        reference = create.reference
        if reference:
            answer = account.references.get(reference)
            if answer is not None:  # a resend: the original answer, not a second order
                self._stats["orders_duplicate"] += 1
                out.append(Out(account.account_id, None, _parse(answer)))
                return
        reasons: list[seto.OrderInvalidReason] = []
        if not MIN_PRICE <= create.price <= MAX_PRICE:
            reasons.append(seto.ORDER_INVALID_INVALID_PRICE)
        if create.quantity <= 0:
            reasons.append(seto.ORDER_INVALID_INVALID_QUANTITY)
        if reasons:
            self._stats["orders_invalid"] += 1
            payload = _new(seto.PAYLOAD_ORDER_INVALID)
            invalid = payload.order_invalid
            invalid.seq = seq
            invalid.reasons.extend(reasons)
            if reference:
                invalid.reference = reference
            self._remember(account, reference, self._send(account, payload, out))
            return
        rejection = self._rejection(account, create)
        if rejection is not None:
            self._stats["orders_rejected"] += 1
            payload = _new(seto.PAYLOAD_ORDER_REJECTED)
            rejected = payload.order_rejected
            rejected.seq = seq
            rejected.reason = rejection
            if reference:
                rejected.reference = reference
            if create.label:
                rejected.label = create.label
            self._remember(account, reference, self._send(account, payload, out))
            return

        self._stats["orders_accepted"] += 1
        order = _Order(
            order_id=self._next_order_id,
            account_id=account.account_id,
            market_id=create.market_id,
            contract_id=create.contract_id,
            side=create.side,
            price=create.price,
            quantity=create.quantity,
            remaining=create.quantity,
            reference=reference,
            label=create.label,
            tif=create.tif,
        )
        self._next_order_id += 1
        account.orders[order.order_id] = order
        account.reserved += _reserve(order.side, order.price, order.quantity)
        payload = _new(seto.PAYLOAD_ORDER_ACCEPTED)
        accepted = payload.order_accepted
        accepted.seq = seq
        accepted.order_id = order.order_id
        accepted.price = order.price
        accepted.quantity = order.quantity
        accepted.side = order.side
        accepted.market_id = order.market_id
        accepted.contract_id = order.contract_id
        accepted.available_balance = _currency(account.available)
        accepted.exposure = _currency(account.exposure)
        if reference:
            accepted.reference = reference
        if order.label:
            accepted.label = order.label
        self._remember(account, reference, self._send(account, payload, out))

        book = self._books[order.market_id, order.contract_id]
        self._match(order, book, now, out, changes)
        if not order.remaining:
            return
        if order.tif == seto.IMMEDIATE_OR_CANCEL:
            self._cancel(account, order, seto.ORDER_CANCELLED_INSUFFICIENT_LIQUIDITY, out, changes)
        else:
            book.add(order)
            changes.touch(book)

    def _rejection(
        self, account: _Account, create: seto.OrderCreate
    ) -> seto.OrderRejectedReason | None:
        """Why a well-formed order cannot be placed (rule 3's order of checks), or None."""
        market = self._markets.get(create.market_id)
        if market is None:
            return seto.ORDER_REJECTED_MARKET_NOT_FOUND
        book = self._books.get((create.market_id, create.contract_id))
        if book is None:
            return seto.ORDER_REJECTED_CONTRACT_NOT_FOUND
        if market.state != "open":
            return _STATE_REJECTIONS[market.state]
        if len(account.orders) >= self.config.max_open_orders:
            return seto.ORDER_REJECTED_LIMIT_EXCEEDED
        opposite = _SELL if create.side == _BUY else _BUY
        for order in account.orders.values():
            if (
                order.side == opposite
                and order.market_id == create.market_id
                and order.contract_id == create.contract_id
                and _crosses(create.side, create.price, order.price)
            ):
                return seto.ORDER_REJECTED_CROSSED_SELF
        if _reserve(create.side, create.price, create.quantity) > account.available:
            return seto.ORDER_REJECTED_INSUFFICIENT_FUNDS
        return None

    def _match(
        self, taker: _Order, book: _Book, now: float, out: list[Out], changes: _Changes
    ) -> None:
        """Trade ``taker`` against the opposite side, best price first, oldest first."""
        opposite = _SELL if taker.side == _BUY else _BUY
        microseconds = max(0, round(now * 1_000_000))
        taker_account = self._accounts[taker.account_id]
        while taker.remaining:
            price = book.best(opposite)
            if price is None or not _crosses(taker.side, taker.price, price):
                break
            maker = book.front(opposite, price)
            maker_account = self._accounts[maker.account_id]
            quantity = min(taker.remaining, maker.remaining)
            self._fill(taker_account, taker, quantity, price)
            self._fill(maker_account, maker, quantity, price)
            if not maker.remaining:
                book.remove(maker)
                self._finish(maker_account, maker)
            book.record(price, quantity, taker.side, microseconds)
            changes.touch(book).append((price, quantity, taker.side, microseconds))
            self._stats["executions"] += 1
            self._stats["executed_quantity"] += quantity
            self._executed(taker_account, taker, quantity, price, out)
            self._executed(maker_account, maker, quantity, price, out)
            self._balance_changed(taker_account, "order_executed", out)
            self._balance_changed(maker_account, "order_executed", out)
        if not taker.remaining:
            self._finish(taker_account, taker)

    def _fill(self, account: _Account, order: _Order, quantity: int, price: int) -> None:
        """Move ``quantity`` of ``order`` from its reserve into the account's position."""
        account.reserved -= _reserve(order.side, order.price, quantity)
        order.remaining -= quantity
        order.executed += quantity
        order.executed_value += quantity * price
        key = (order.market_id, order.contract_id)
        position = account.positions.setdefault(key, [0, 0])
        before = _worst(position)
        if order.side == _BUY:
            position[0] += quantity * (PRICE_SCALE - price)
            position[1] -= quantity * price
        else:
            position[0] -= quantity * (PRICE_SCALE - price)
            position[1] += quantity * price
        account.risk += _worst(position) - before

    def _executed(
        self, account: _Account, order: _Order, quantity: int, price: int, out: list[Out]
    ) -> None:
        payload = _new(seto.PAYLOAD_ORDER_EXECUTED)
        executed = payload.order_executed
        executed.price = price
        executed.quantity = quantity
        executed.order_id = order.order_id
        executed.side = order.side
        executed.market_id = order.market_id
        executed.contract_id = order.contract_id
        executed.total_executed_quantity = order.executed
        executed.executed_avg_price = order.avg_price()
        executed.available_quantity = order.remaining
        executed.orig_price = order.price
        executed.available_balance = _currency(account.available)
        executed.exposure = _currency(account.exposure)
        if order.label:
            executed.label = order.label
        self._send(account, payload, out)

    def _balance_changed(self, account: _Account, reason: str, out: list[Out]) -> None:
        payload = _new(seto.PAYLOAD_BALANCE_CHANGED)
        changed = payload.balance_changed
        changed.reason = reason
        changed.available_balance = _currency(account.available)
        changed.exposure = _currency(account.exposure)
        self._send(account, payload, out)

    # -- cancels and reductions -------------------------------------------------------------

    def _cancel(
        self,
        account: _Account,
        order: _Order,
        reason: seto.OrderCancelledReason,
        out: list[Out],
        changes: _Changes,
    ) -> None:
        """Take what is left of a live order off the book and release its reserve."""
        self._stats["cancels"] += 1
        account.reserved -= _reserve(order.side, order.price, order.remaining)
        book = self._books[order.market_id, order.contract_id]
        if order.resting:
            book.remove(order)
            changes.touch(book)
        order.remaining = 0
        self._finish(account, order)
        payload = _new(seto.PAYLOAD_ORDER_CANCELLED)
        cancelled = payload.order_cancelled
        cancelled.reason = reason
        cancelled.order_id = order.order_id
        cancelled.executed_quantity = order.executed
        cancelled.executed_avg_price = order.avg_price()
        cancelled.market_id = order.market_id
        cancelled.contract_id = order.contract_id
        cancelled.side = order.side
        cancelled.orig_price = order.price
        cancelled.available_balance = _currency(account.available)
        cancelled.exposure = _currency(account.exposure)
        if order.reference:
            cancelled.reference = order.reference
        if order.label:
            cancelled.label = order.label
        self._send(account, payload, out)

    def _order_cancel(
        self,
        account: _Account,
        cancel: seto.OrderCancel,
        seq: int,
        now: float,
        out: list[Out],
        changes: _Changes,
    ) -> None:
        order = account.orders.get(cancel.order_id)
        if order is not None:
            self._cancel(account, order, seto.ORDER_CANCELLED_MEMBER_REQUESTED, out, changes)
            return
        self._stats["cancel_rejects"] += 1
        payload = _new(seto.PAYLOAD_ORDER_CANCEL_REJECTED)
        rejected = payload.order_cancel_rejected
        rejected.order_id = cancel.order_id
        rejected.reason = (
            seto.ORDER_CANCEL_REJECTED_NOT_LIVE
            if cancel.order_id in account.finished
            else seto.ORDER_CANCEL_REJECTED_NOT_FOUND
        )
        if cancel.reference:
            rejected.reference = cancel.reference
        self._send(account, payload, out)

    def _order_cancel_all(
        self,
        account: _Account,
        cancel_all: seto.OrderCancelAll,
        seq: int,
        now: float,
        out: list[Out],
        changes: _Changes,
    ) -> None:
        scoped = cancel_all.HasField("market_id")
        if scoped and cancel_all.market_id not in self._markets:
            # The only reason the protocol has; the market names nothing to cancel.
            self._stats["cancel_all_rejects"] += 1
            payload = _new(seto.PAYLOAD_ORDER_CANCEL_ALL_REJECTED)
            rejected = payload.order_cancel_all_rejected
            rejected.reason = seto.ORDER_CANCEL_ALL_REJECTED_UNKNOWN_ERROR
            if cancel_all.reference:
                rejected.reference = cancel_all.reference
            self._send(account, payload, out)
            return
        self._stats["cancel_alls"] += 1
        for order in list(account.orders.values()):
            if not scoped or order.market_id == cancel_all.market_id:
                self._cancel(account, order, seto.ORDER_CANCELLED_MEMBER_REQUESTED, out, changes)
        payload = _new(seto.PAYLOAD_ORDER_CANCEL_ALL_ACCEPTED)
        if cancel_all.reference:
            payload.order_cancel_all_accepted.reference = cancel_all.reference
        self._send(account, payload, out)

    def _order_quantity_reduce(
        self,
        account: _Account,
        reduce: seto.OrderQuantityReduce,
        seq: int,
        now: float,
        out: list[Out],
        changes: _Changes,
    ) -> None:
        """``new_quantity`` is what the order may still trade: more than 0 (cancel for
        that) and less than it may now. The order keeps its place in the queue."""
        order = account.orders.get(reduce.order_id)
        if order is None or not 0 < reduce.new_quantity < order.remaining:
            self._stats["quantity_reduce_rejects"] += 1
            payload = _new(seto.PAYLOAD_ORDER_QUANTITY_REDUCE_REJECTED)
            rejected = payload.order_quantity_reduce_rejected
            rejected.order_id = reduce.order_id
            rejected.new_quantity = reduce.new_quantity
            if order is not None:
                rejected.reason = seto.ORDER_QUANTITY_REDUCE_REJECTED_INVALID_NEW_QUANTITY
            elif reduce.order_id in account.finished:
                rejected.reason = seto.ORDER_QUANTITY_REDUCE_REJECTED_NOT_LIVE
            else:
                rejected.reason = seto.ORDER_QUANTITY_REDUCE_REJECTED_NOT_FOUND
            if reduce.reference:
                rejected.reference = reduce.reference
            self._send(account, payload, out)
            return
        self._stats["quantity_reduces"] += 1
        account.reserved -= _reserve(order.side, order.price, order.remaining - reduce.new_quantity)
        order.remaining = reduce.new_quantity
        changes.touch(self._books[order.market_id, order.contract_id])
        payload = _new(seto.PAYLOAD_ORDER_QUANTITY_REDUCED)
        reduced = payload.order_quantity_reduced
        reduced.order_id = order.order_id
        reduced.reason = seto.ORDER_QUANTITY_REDUCED_MEMBER_REQUESTED
        reduced.new_quantity = order.remaining
        reduced.market_id = order.market_id
        reduced.contract_id = order.contract_id
        reduced.side = order.side
        reduced.orig_price = order.price
        reduced.executed_quantity = order.executed
        reduced.executed_avg_price = order.avg_price()
        if reduce.reference:
            reduced.reference = reduce.reference
        if order.label:
            reduced.label = order.label
        self._send(account, payload, out)
        # ORDER_QUANTITY_REDUCED carries no balance: the released reserve is told here.
        self._balance_changed(account, "order_quantity_reduced", out)

    def _settings(
        self,
        account: _Account,
        settings: seto.Settings,
        seq: int,
        now: float,
        out: list[Out],
        changes: _Changes,
    ) -> None:
        self._stats["settings"] += 1
        account.cancel_all_on_failure = settings.cancel_all_on_failure
        payload = _new(seto.PAYLOAD_SETTINGS_ACCEPTED)
        payload.settings_accepted.cancel_all_on_failure = settings.cancel_all_on_failure
        self._send(account, payload, out)

    _handlers: Mapping[int, Any] = {
        seto.PAYLOAD_ORDER_CREATE: _order_create,
        seto.PAYLOAD_ORDER_CANCEL: _order_cancel,
        seto.PAYLOAD_ORDER_CANCEL_ALL: _order_cancel_all,
        seto.PAYLOAD_ORDER_QUANTITY_REDUCE: _order_quantity_reduce,
        seto.PAYLOAD_SETTINGS: _settings,
    }

    def _quotes(self, changes: _Changes, out: list[Out]) -> None:
        """CONTRACT_QUOTES to the market's subscribers for each contract that changed."""
        for (market_id, contract_id), executions in changes.contracts.items():
            quotes = _new(seto.PAYLOAD_CONTRACT_QUOTES)
            self._books[market_id, contract_id].fill(quotes.contract_quotes, executions)
            out.append(Out(None, market_id, quotes))

    # -- account messages ----------------------------------------------------------------

    def _account(self, account_id: int) -> _Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise ValueError(f"unknown account id {account_id!r}: authenticate() gives them")
        return account

    def _send(self, account: _Account, payload: seto.Payload, out: list[Out]) -> bytes:
        """Sequence (rule 6), journal and queue one message to ``account``; its bytes."""
        body = getattr(payload, _BODIES[payload.type])
        sequenced = "account_sequence_64" in body.DESCRIPTOR.fields_by_name
        if sequenced:
            account.sequence += 1
            body.account_sequence_64 = account.sequence
            body.account_sequence = account.sequence & _SEQUENCE_32
        data = payload.SerializePartialToString()  # eto_payload.seq is the server's to set
        account.journal.append(account.sequence, sequenced, data)
        out.append(Out(account.account_id, None, payload))
        return data

    @staticmethod
    def _remember(account: _Account, reference: int, answer: bytes) -> None:
        if reference:
            account.references.put(reference, answer)

    def _finish(self, account: _Account, order: _Order) -> None:
        if account.orders.pop(order.order_id, None) is not None:
            account.finished.put(order.order_id, b"")

    # -- snapshot and restore --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every piece of state a restart must keep, as JSON-serializable data: accounts'
        balances, sequences, settings, positions, journals, references and finished
        orders; live orders in time priority; contracts' trading records; the next order
        id; the counters. Messages are base64 of their serialized bytes. Throttle buckets
        are not kept (they refill within a second or two)."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        accounts: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        for account in self._accounts.values():
            accounts.append(
                {
                    "account_id": account.account_id,
                    "balance": account.balance,
                    "sequence": account.sequence,
                    "cancel_all_on_failure": account.cancel_all_on_failure,
                    "positions": [[m, c, w, lo] for (m, c), (w, lo) in account.positions.items()],
                    "journal": {
                        "floor": account.journal.floor,
                        "entries": [[p, s, b64(d)] for p, s, d in account.journal.entries],
                    },
                    "references": [[r, b64(d)] for r, d in account.references.items.items()],
                    "finished": list(account.finished.items),
                }
            )
            orders.extend(
                {
                    "order_id": o.order_id,
                    "account_id": o.account_id,
                    "market_id": o.market_id,
                    "contract_id": o.contract_id,
                    "side": int(o.side),
                    "price": o.price,
                    "quantity": o.quantity,
                    "remaining": o.remaining,
                    "executed": o.executed,
                    "executed_value": o.executed_value,
                    "reference": o.reference,
                    "label": o.label,
                    "tif": int(o.tif),
                }
                for o in account.orders.values()
            )
        orders.sort(key=lambda o: o["order_id"])
        counters = self.stats()
        contracts = [
            {
                "market_id": book.market_id,
                "contract_id": book.contract_id,
                "volume": book.volume,
                "high": book.high,
                "low": book.low,
                "last": list(book.last) if book.last is not None else None,
            }
            for book in self._books.values()
            if book.volume
        ]
        return {
            "format": SNAPSHOT_FORMAT,
            "next_order_id": self._next_order_id,
            "accounts": accounts,
            "orders": orders,
            "contracts": contracts,
            "stats": {name: counters[name] for name in _STATS},
        }

    @classmethod
    def restore(cls, config: ExchangeConfig, snapshot: Mapping[str, Any]) -> Exchange:
        """An exchange from ``config`` with the state ``snapshot()`` gave: it behaves as the
        one that made the snapshot. Accounts the config adds start fresh; the journals and
        memories are trimmed to the config's bounds. Raises ValueError when the snapshot is
        not one, or names an account, market or contract the config does not define."""
        try:
            return cls._restore(config, snapshot)
        except (KeyError, TypeError, IndexError, binascii.Error, DecodeError) as exc:
            raise ValueError(f"not an exchange snapshot: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _restore(cls, config: ExchangeConfig, snapshot: Mapping[str, Any]) -> Exchange:
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(
                f"exchange snapshot format {snapshot.get('format')!r} is not "
                f"{SNAPSHOT_FORMAT}, the one this version reads"
            )
        exchange = cls(config)
        exchange._next_order_id = int(snapshot["next_order_id"])
        for name, value in snapshot["stats"].items():
            if name in exchange._stats:
                exchange._stats[name] = int(value)
        for saved in snapshot["accounts"]:
            account = exchange._restored_account(int(saved["account_id"]))
            account.balance = int(saved["balance"])
            account.sequence = int(saved["sequence"])
            account.cancel_all_on_failure = bool(saved["cancel_all_on_failure"])
            for market_id, contract_id, win, lose in saved["positions"]:
                exchange._restored_book(int(market_id), int(contract_id))
                position = [int(win), int(lose)]
                account.positions[int(market_id), int(contract_id)] = position
                account.risk += _worst(position)
            journal = account.journal
            journal.floor = int(saved["journal"]["floor"])
            for position_, sequenced, data in saved["journal"]["entries"]:
                journal.append(int(position_), bool(sequenced), _message_bytes(data))
            for reference, data in saved["references"]:
                account.references.put(int(reference), _message_bytes(data))
            for order_id in saved["finished"]:
                account.finished.put(int(order_id), b"")
        for saved in sorted(snapshot["orders"], key=lambda o: int(o["order_id"])):
            account = exchange._restored_account(int(saved["account_id"]))
            book = exchange._restored_book(int(saved["market_id"]), int(saved["contract_id"]))
            order = _Order(
                order_id=int(saved["order_id"]),
                account_id=account.account_id,
                market_id=book.market_id,
                contract_id=book.contract_id,
                side=cast(seto.Side, int(saved["side"])),
                price=int(saved["price"]),
                quantity=int(saved["quantity"]),
                remaining=int(saved["remaining"]),
                executed=int(saved["executed"]),
                executed_value=int(saved["executed_value"]),
                reference=int(saved["reference"]),
                label=str(saved["label"]),
                tif=cast(seto.TimeInForceType, int(saved["tif"])),
            )
            if order.side not in (_BUY, _SELL) or order.remaining <= 0:
                raise ValueError(f"exchange snapshot holds a bad live order: {saved!r}")
            if order.order_id >= exchange._next_order_id:
                raise ValueError(
                    f"exchange snapshot holds order {order.order_id}, not below its "
                    f"next_order_id {exchange._next_order_id}"
                )
            account.orders[order.order_id] = order
            account.reserved += _reserve(order.side, order.price, order.remaining)
            book.add(order)
        for saved in snapshot["contracts"]:
            book = exchange._restored_book(int(saved["market_id"]), int(saved["contract_id"]))
            book.volume = int(saved["volume"])
            book.high, book.low = int(saved["high"]), int(saved["low"])
            last = saved["last"]
            book.last = (
                None if last is None else (int(last[0]), int(last[1]), int(last[2]), int(last[3]))
            )
        return exchange

    def _restored_account(self, account_id: int) -> _Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise ValueError(
                f"exchange snapshot holds account {account_id}, which the config does not define"
            )
        return account

    def _restored_book(self, market_id: int, contract_id: int) -> _Book:
        book = self._books.get((market_id, contract_id))
        if book is None:
            raise ValueError(
                f"exchange snapshot holds contract {contract_id} of market {market_id}, "
                "which the config does not define"
            )
        return book


class Simulation:
    """House activity for demos (rule 9), sans-I/O: ``due(now)`` says how many messages are
    due by ``now`` (seconds, any monotonic clock), ``next_message()`` builds the next one from
    the exchange's state as ``(account_id, payload)``; the caller applies it with
    ``Exchange.handle`` (and logs it first, when it keeps a store)."""

    def __init__(self, exchange: Exchange) -> None:
        if exchange.house is None:
            raise ValueError("the exchange's config has no [simulation] with rate > 0")
        self._exchange = exchange
        self._config = cfg = exchange.config.simulation
        self._rng = random.Random(cfg.seed)
        self.maker, self.taker = exchange.house
        self._low = cfg.spread + cfg.depth * cfg.step + 1
        self._high = MAX_PRICE - self._low
        self._contracts: list[tuple[int, int]] = []
        self._mids: dict[tuple[int, int], int] = {}
        for market in exchange.config.markets:
            if market.state != "open":
                continue
            for contract in market.contracts:
                key = (market.id, contract.id)
                self._contracts.append(key)
                self._mids[key] = self._clamp(PRICE_SCALE // len(market.contracts))
        self._started: float | None = None
        self._sent = 0
        self.messages = 0
        """Messages built so far."""

    def _clamp(self, price: int) -> int:
        return min(max(price, self._low), self._high)

    def due(self, now: float) -> int:
        """Messages due by ``now`` (the clock starts at the first call), taken as sent. A
        caller that fell behind by more than a second of messages skips the rest: the rate is
        a ceiling, never a burst."""
        if not self._contracts:
            return 0
        if self._started is None:
            self._started = now
            return 0
        rate = self._config.rate
        total = math.floor((now - self._started) * rate)
        backlog = max(1, math.ceil(rate))
        if total - self._sent > backlog:
            self._sent = total - backlog
        due = max(0, total - self._sent)
        self._sent += due
        return due

    def next_message(self) -> tuple[int, seto.Payload]:
        """The house's next message: a taker's trade, a maker's cancel or a maker's order."""
        rng, cfg = self._rng, self._config
        self.messages += 1
        key = rng.choice(self._contracts)
        mid = self._mids[key] = self._clamp(self._mids[key] + rng.choice((-1, 0, 1)) * cfg.step)
        trade = rng.random() < cfg.trades
        side = rng.choice((_BUY, _SELL))
        quantity = rng.randint(1, 20) * 10_000
        level = rng.randrange(cfg.depth)
        book = self._exchange._books[key]
        if trade:
            best = book.best(_SELL if side == _BUY else _BUY)
            if best is not None:
                return self.taker, self._create(key, side, best, quantity, seto.IMMEDIATE_OR_CANCEL)
        maker = self._exchange._accounts[self.maker]
        mine = [o for o in maker.orders.values() if (o.market_id, o.contract_id) == key]
        for order in mine:  # oldest first
            stale = (
                order.price > mid - cfg.spread
                if order.side == _BUY
                else order.price < mid + cfg.spread
            )
            if stale:
                return self.maker, self._cancel(order.order_id)
        if len(mine) >= 2 * cfg.depth:
            return self.maker, self._cancel(mine[0].order_id)
        if len(maker.orders) >= self._exchange.config.max_open_orders:
            return self.maker, self._cancel(next(iter(maker.orders)))
        bids = sum(1 for o in mine if o.side == _BUY)
        if bids != len(mine) - bids:  # fill the thinner side first
            side = _BUY if bids < len(mine) - bids else _SELL
        offset = cfg.spread + level * cfg.step
        price = mid - offset if side == _BUY else mid + offset
        return self.maker, self._create(key, side, price, quantity, seto.GOOD_TIL_CANCELLED)

    def _payload(self, type_: seto.PayloadType) -> seto.Payload:
        payload = _new(type_)
        payload.eto_payload.seq = self.messages  # the house's own numbering
        return payload

    def _create(
        self,
        key: tuple[int, int],
        side: int,
        price: int,
        quantity: int,
        tif: seto.TimeInForceType,
    ) -> seto.Payload:
        payload = self._payload(seto.PAYLOAD_ORDER_CREATE)
        order = payload.order_create
        order.market_id, order.contract_id = key
        order.side = cast(seto.Side, side)
        order.price = price
        order.quantity = quantity
        order.tif = tif
        return payload

    def _cancel(self, order_id: int) -> seto.Payload:
        payload = self._payload(seto.PAYLOAD_ORDER_CANCEL)
        payload.order_cancel.order_id = order_id
        return payload
