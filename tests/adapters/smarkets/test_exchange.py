"""The exchange core: every answer and rejection, matching with price-time priority, exposure
and balances, account sequences and journals, reference dedupe, quotes, throttling,
snapshot/restore, and (hypothesis) a consistent book under random order flows."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from actorwire.adapters.smarkets import seto
from actorwire.adapters.smarkets.config import load_config, parse_config
from actorwire.adapters.smarkets.exchange import ENTRY_OVERHEAD, Exchange, Out
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BUY, SELL = seto.SIDE_BUY, seto.SIDE_SELL
GTC, IOC = seto.GOOD_TIL_CANCELLED, seto.IMMEDIATE_OR_CANCEL
ALICE, BOB, CAROL = 1, 2, 3

CONFIG = parse_config(
    {
        "exchange": {"max_open_orders": 5, "throttle_rate": 1.0, "throttle_burst": 3},
        "accounts": [
            {"username": "alice", "password": "alice-pw", "account_id": ALICE, "balance": 1000.0},
            {"username": "bob", "password": "bob-pw", "account_id": BOB, "balance": 1000.0},
            {"username": "carol", "password": "carol-pw", "account_id": CAROL, "balance": 1.0},
        ],
        "events": [{"id": 1, "name": "E"}],
        "markets": [
            {
                "id": 100,
                "event_id": 1,
                "name": "open",
                "contracts": [{"id": 101, "name": "A"}, {"id": 102, "name": "B"}],
            },
            {
                "id": 200,
                "event_id": 1,
                "name": "h",
                "state": "halted",
                "contracts": [{"id": 201, "name": "C"}],
            },
            {
                "id": 300,
                "event_id": 1,
                "name": "s",
                "state": "settled",
                "contracts": [{"id": 301, "name": "D"}],
            },
            {
                "id": 400,
                "event_id": 1,
                "name": "n",
                "state": "new",
                "contracts": [{"id": 401, "name": "F"}],
            },
        ],
    },
    "test",
)


# -- helpers ------------------------------------------------------------------------------------


def message(kind: int, seq: int = 1, **fields: Any) -> seto.Payload:
    """A client's payload of ``kind`` with its body's ``fields`` and eto seq ``seq``."""
    payload = seto.Payload(type=kind)
    payload.eto_payload.seq = seq
    body = getattr(payload, seto.Payload.DESCRIPTOR.fields_by_number[kind + 1].name)
    body.SetInParent()
    for name, value in fields.items():
        setattr(body, name, value)
    return payload


def create(
    side: int,
    price: int,
    quantity: int,
    *,
    market: int = 100,
    contract: int = 101,
    reference: int = 0,
    tif: int = GTC,
    label: str = "",
    seq: int = 1,
) -> seto.Payload:
    fields: dict[str, Any] = {
        "side": side,
        "price": price,
        "quantity": quantity,
        "market_id": market,
        "contract_id": contract,
        "tif": tif,
    }
    if reference:
        fields["reference"] = reference
    if label:
        fields["label"] = label
    return message(seto.PAYLOAD_ORDER_CREATE, seq, **fields)


def cancel(order_id: int, reference: int = 0) -> seto.Payload:
    extra = {"reference": reference} if reference else {}
    return message(seto.PAYLOAD_ORDER_CANCEL, order_id=order_id, **extra)


def cancel_all(market: int | None = None, reference: int = 0) -> seto.Payload:
    fields: dict[str, Any] = {}
    if market is not None:
        fields["market_id"] = market
    if reference:
        fields["reference"] = reference
    return message(seto.PAYLOAD_ORDER_CANCEL_ALL, **fields)


def reduce(order_id: int, new_quantity: int) -> seto.Payload:
    return message(seto.PAYLOAD_ORDER_QUANTITY_REDUCE, order_id=order_id, new_quantity=new_quantity)


def body(payload: seto.Payload) -> Any:
    return getattr(payload, seto.Payload.DESCRIPTOR.fields_by_number[payload.type + 1].name)


def kinds(outs: list[Out]) -> list[tuple[int | None, int | None, str]]:
    """(account, market, type name) of each message, in order."""
    return [(o.account_id, o.market_id, seto.PayloadType.Name(o.payload.type)[8:]) for o in outs]


def only(outs: list[Out], kind: int, account: int | None = None) -> list[Any]:
    return [
        body(o.payload)
        for o in outs
        if o.payload.type == kind and (account is None or o.account_id == account)
    ]


def place(ex: Exchange, account: int, *args: Any, now: float = 1.0, **kw: Any) -> int:
    """Place an order that must be accepted; its id."""
    outs = ex.handle(account, create(*args, **kw), now)
    (accepted,) = only(outs, seto.PAYLOAD_ORDER_ACCEPTED)
    return int(accepted.order_id)


def book(ex: Exchange, contract: int = 101, market: int = 100) -> tuple[list[tuple[int, int]], ...]:
    """(bids, offers) of a contract from the market_quotes snapshot."""
    quotes = ex.market_quotes(market)
    assert quotes is not None
    (cq,) = [c for c in quotes.market_quotes.contract_quotes if c.contract_id == contract]
    return [(q.price, q.quantity) for q in cq.bids], [(q.price, q.quantity) for q in cq.offers]


@pytest.fixture
def ex() -> Exchange:
    return Exchange(CONFIG)


# -- login --------------------------------------------------------------------------------------


def test_authenticate(ex: Exchange) -> None:
    assert ex.authenticate("alice", "alice-pw") == ALICE
    assert ex.authenticate("bob", "bob-pw") == BOB
    assert ex.authenticate("alice", "bob-pw") is None
    assert ex.authenticate("nobody", "alice-pw") is None
    assert ex.authenticate("alice", "") is None
    assert ex.authenticate("alice", "pässwörd \udc80") is None
    assert "alice-pw" not in repr(ex)


def test_the_default_config_trades_between_its_two_demo_users() -> None:
    ex = Exchange(load_config(None))
    demo, demo2 = (
        ex.authenticate("demo", "demo-password"),
        ex.authenticate("demo2", "demo2-password"),
    )
    assert demo is not None and demo2 is not None
    place(ex, demo, SELL, 4000, 100_000, contract=101)
    outs = ex.handle(demo2, create(BUY, 4000, 100_000, contract=101), 1.0)
    assert len(only(outs, seto.PAYLOAD_ORDER_EXECUTED)) == 2
    assert ex.balance(demo2) == (9996.0, 4.0)  # 10.00 payout at 40%: 4.00 staked


# -- ORDER_CREATE: the answers ------------------------------------------------------------------


def test_an_accepted_order_rests_and_updates_the_quotes(ex: Exchange) -> None:
    outs = ex.handle(ALICE, create(BUY, 2500, 400_000, reference=77, label="bot", seq=9), 1.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_ACCEPTED"), (None, 100, "CONTRACT_QUOTES")]
    accepted = body(outs[0].payload)
    assert (accepted.seq, accepted.reference, accepted.label) == (9, 77, "bot")
    assert (accepted.price, accepted.quantity, accepted.side) == (2500, 400_000, BUY)
    assert (accepted.market_id, accepted.contract_id) == (100, 101)
    # The SDK's example: 40.00 GBP payout at 25% risks 10.00.
    assert (accepted.available_balance, accepted.exposure) == (990.0, 10.0)
    assert accepted.account_sequence == accepted.account_sequence_64 == 1
    quotes = body(outs[1].payload)
    assert [(q.price, q.quantity) for q in quotes.bids] == [(2500, 400_000)]
    assert not quotes.offers and not quotes.executions and not quotes.HasField("last_execution")
    for out in outs:  # the server stamps the session sequence
        assert not out.payload.eto_payload.HasField("seq")
    assert ex.stats()["orders_accepted"] == 1 and ex.stats()["live_orders"] == 1


@pytest.mark.parametrize(
    ("price", "quantity", "reasons"),
    [
        (0, 10_000, [seto.ORDER_INVALID_INVALID_PRICE]),
        (10_000, 10_000, [seto.ORDER_INVALID_INVALID_PRICE]),
        (1, 0, [seto.ORDER_INVALID_INVALID_QUANTITY]),
        (0, 0, [seto.ORDER_INVALID_INVALID_PRICE, seto.ORDER_INVALID_INVALID_QUANTITY]),
    ],
)
def test_invalid_orders(ex: Exchange, price: int, quantity: int, reasons: list[int]) -> None:
    outs = ex.handle(ALICE, create(BUY, price, quantity, reference=5, seq=4), 1.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_INVALID")]
    invalid = body(outs[0].payload)
    assert (list(invalid.reasons), invalid.seq, invalid.reference) == (reasons, 4, 5)
    assert ex.stats()["orders_invalid"] == 1 and ex.stats()["live_orders"] == 0
    assert ex.last_account_sequence(ALICE) == 0  # ORDER_INVALID has no account sequence


def test_every_rejection_reason(ex: Exchange) -> None:
    def rejected(account: int, payload: seto.Payload) -> int:
        outs = ex.handle(account, payload, 1.0)
        assert kinds(outs) == [(account, None, "ORDER_REJECTED")]
        answer = body(outs[0].payload)
        assert (answer.seq, answer.reference) == (3, payload.order_create.reference)
        return int(answer.reason)

    references = iter(range(1000, 2000))  # each its own: a reused one is answered as before

    def order(**kw: Any) -> seto.Payload:
        kw.setdefault("reference", next(references))
        kw.setdefault("seq", 3)
        return create(kw.pop("side", BUY), kw.pop("price", 5000), kw.pop("quantity", 10_000), **kw)

    assert rejected(ALICE, order(market=999)) == seto.ORDER_REJECTED_MARKET_NOT_FOUND
    # 201 is a contract, but of another market.
    assert rejected(ALICE, order(contract=201)) == seto.ORDER_REJECTED_CONTRACT_NOT_FOUND
    assert rejected(ALICE, order(market=400, contract=401)) == seto.ORDER_REJECTED_MARKET_NOT_OPEN
    assert rejected(ALICE, order(market=200, contract=201)) == seto.ORDER_REJECTED_MARKET_HALTED
    assert rejected(ALICE, order(market=300, contract=301)) == seto.ORDER_REJECTED_MARKET_SETTLED
    # carol has 1.00: 40000 at 25% needs exactly that, one unit more does not fit.
    assert rejected(CAROL, order(quantity=40_001, price=2500)) == (
        seto.ORDER_REJECTED_INSUFFICIENT_FUNDS
    )
    place(ex, CAROL, BUY, 2500, 40_000)
    assert ex.balance(CAROL) == (0.0, 1.0)
    assert rejected(CAROL, order(quantity=1, price=1)) == seto.ORDER_REJECTED_INSUFFICIENT_FUNDS
    assert rejected(CAROL, order(side=SELL, quantity=1, price=9999)) == (
        seto.ORDER_REJECTED_INSUFFICIENT_FUNDS
    )
    # alice's resting offer at 6000: her bid at 6000 or more would trade with it.
    place(ex, ALICE, SELL, 6000, 10_000)
    assert rejected(ALICE, order(price=6000)) == seto.ORDER_REJECTED_CROSSED_SELF
    for _ in range(3):
        place(ex, ALICE, BUY, 5000, 10_000)
    place(ex, ALICE, BUY, 5000, 10_000, contract=102)  # max_open_orders = 5
    assert rejected(ALICE, order(price=100)) == seto.ORDER_REJECTED_LIMIT_EXCEEDED
    assert ex.stats()["orders_rejected"] == 10


def test_crossed_self_rejects_the_whole_order_even_behind_a_better_price(ex: Exchange) -> None:
    place(ex, BOB, SELL, 4000, 10_000)
    place(ex, ALICE, SELL, 5000, 10_000)
    before = book(ex)
    outs = ex.handle(ALICE, create(BUY, 5000, 20_000), 1.0)
    assert only(outs, seto.PAYLOAD_ORDER_REJECTED)[0].reason == seto.ORDER_REJECTED_CROSSED_SELF
    assert book(ex) == before  # bob's 4000 offer did not trade either
    # Below her own offer she may buy (and trades with bob), on the other contract too.
    outs = ex.handle(ALICE, create(BUY, 4500, 10_000), 1.0)
    assert only(outs, seto.PAYLOAD_ORDER_EXECUTED, ALICE)[0].price == 4000
    place(ex, ALICE, BUY, 5000, 10_000, contract=102)
    # A sell crosses her own bid at or above its price.
    place(ex, ALICE, BUY, 3000, 10_000)
    outs = ex.handle(ALICE, create(SELL, 3000, 10_000), 1.0)
    assert only(outs, seto.PAYLOAD_ORDER_REJECTED)[0].reason == seto.ORDER_REJECTED_CROSSED_SELF


# -- matching -----------------------------------------------------------------------------------


def test_price_time_priority_multiple_levels_and_a_partial_fill(ex: Exchange) -> None:
    o1 = place(ex, BOB, SELL, 5000, 10_000)
    o2 = place(ex, BOB, SELL, 4800, 10_000)
    o3 = place(ex, CAROL, SELL, 5000, 10_000)  # same price as o1, later
    outs = ex.handle(ALICE, create(BUY, 5000, 25_000, label="x"), 2.000123)
    (taker_id,) = [a.order_id for a in only(outs, seto.PAYLOAD_ORDER_ACCEPTED)]
    # Per fill: the aggressor's ORDER_EXECUTED, the resting order's, then each BALANCE_CHANGED.
    fills = [
        [(ALICE, None, kind), (maker, None, kind)]
        for maker in (BOB, BOB, CAROL)
        for kind in ("ORDER_EXECUTED", "BALANCE_CHANGED")
    ]
    assert kinds(outs) == [
        (ALICE, None, "ORDER_ACCEPTED"),
        *[message for pair in fills for message in pair],
        (None, 100, "CONTRACT_QUOTES"),
    ]
    taker = only(outs, seto.PAYLOAD_ORDER_EXECUTED, ALICE)
    makers = [e for e in only(outs, seto.PAYLOAD_ORDER_EXECUTED) if e.order_id != taker_id]
    # Best price first (o2 at 4800), then time at 5000 (o1 before o3); each at its own price.
    assert [(m.order_id, m.price, m.quantity) for m in makers] == [
        (o2, 4800, 10_000),
        (o1, 5000, 10_000),
        (o3, 5000, 5_000),
    ]
    assert [(t.price, t.quantity, t.total_executed_quantity) for t in taker] == [
        (4800, 10_000, 10_000),
        (5000, 10_000, 20_000),
        (5000, 5_000, 25_000),
    ]
    last = taker[-1]
    assert (last.available_quantity, last.orig_price, last.side, last.label) == (0, 5000, BUY, "x")
    assert last.executed_avg_price == 4920  # (4800 * 10000 + 5000 * 15000) / 25000
    assert (makers[2].available_quantity, makers[2].total_executed_quantity) == (5_000, 5_000)
    # alice staked what she paid (0.48 + 0.75), not her limit price: nothing stays reserved.
    assert ex.balance(ALICE) == (998.77, 1.23) == (last.available_balance, last.exposure)
    # One quotes update with the whole book left and the three executions.
    (quotes,) = only(outs, seto.PAYLOAD_CONTRACT_QUOTES)
    assert [(q.price, q.quantity) for q in quotes.offers] == [(5000, 5_000)] and not quotes.bids
    assert [(e.price, e.quantity, e.liquidity) for e in quotes.executions] == [
        (4800, 10_000, BUY),
        (5000, 10_000, BUY),
        (5000, 5_000, BUY),
    ]
    assert (quotes.last_execution.price, quotes.last_execution.microseconds) == (5000, 2_000_123)
    assert (quotes.high_price, quotes.low_price) == (5000, 4800)
    stats = ex.stats()
    assert (stats["executions"], stats["executed_quantity"], stats["live_orders"]) == (3, 25_000, 1)
    # The filled orders are no longer live; the partly filled one is.
    rejected = only(ex.handle(BOB, cancel(o2), 3.0), seto.PAYLOAD_ORDER_CANCEL_REJECTED)
    assert rejected[0].reason == seto.ORDER_CANCEL_REJECTED_NOT_LIVE
    assert only(ex.handle(CAROL, cancel(o3), 3.0), seto.PAYLOAD_ORDER_CANCELLED)


def test_the_remainder_of_an_aggressor_rests(ex: Exchange) -> None:
    place(ex, BOB, SELL, 5000, 10_000)
    outs = ex.handle(ALICE, create(BUY, 5500, 30_000), 1.0)
    assert only(outs, seto.PAYLOAD_ORDER_EXECUTED, ALICE)[0].available_quantity == 20_000
    assert book(ex) == ([(5500, 20_000)], [])
    (quotes,) = only(outs, seto.PAYLOAD_CONTRACT_QUOTES)
    assert [(q.price, q.quantity) for q in quotes.bids] == [(5500, 20_000)]


def test_immediate_or_cancel(ex: Exchange) -> None:
    # Nothing to trade with: accepted, then cancelled for want of liquidity; book unchanged.
    outs = ex.handle(ALICE, create(BUY, 5000, 10_000, tif=IOC, reference=3), 1.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_ACCEPTED"), (ALICE, None, "ORDER_CANCELLED")]
    cancelled = body(outs[1].payload)
    assert cancelled.reason == seto.ORDER_CANCELLED_INSUFFICIENT_LIQUIDITY
    assert (cancelled.executed_quantity, cancelled.reference) == (0, 3)
    assert ex.balance(ALICE) == (1000.0, 0.0)
    # Part of it trades; the rest is cancelled, never rests.
    place(ex, BOB, SELL, 5000, 4_000)
    outs = ex.handle(ALICE, create(BUY, 5000, 10_000, tif=IOC), 1.0)
    names = [k[2] for k in kinds(outs)]
    assert names.index("ORDER_CANCELLED") > names.index("ORDER_EXECUTED")
    (cancelled,) = only(outs, seto.PAYLOAD_ORDER_CANCELLED)
    assert (cancelled.executed_quantity, cancelled.executed_avg_price) == (4_000, 5000)
    assert book(ex) == ([], [])
    assert ex.balance(ALICE) == (999.8, 0.2)  # only the filled 4000 at 50%
    # Fully traded: no cancel.
    place(ex, BOB, SELL, 5000, 4_000)
    outs = ex.handle(ALICE, create(BUY, 5000, 4_000, tif=IOC), 1.0)
    assert not only(outs, seto.PAYLOAD_ORDER_CANCELLED)


def test_exposure_and_balances_after_fills_and_cancels(ex: Exchange) -> None:
    a1 = place(ex, ALICE, BUY, 2500, 100_000)  # 10.00 payout at 25%: reserves 2.50
    assert ex.balance(ALICE) == (997.5, 2.5)
    outs = ex.handle(BOB, create(SELL, 2500, 40_000), 1.0)
    # bob sold 4.00 payout at 25%: loses 3.00 if it wins. alice: 1.00 staked + 1.50 reserved.
    assert ex.balance(BOB) == (997.0, 3.0)
    assert ex.balance(ALICE) == (997.5, 2.5)
    for account, (available, exposure) in ((ALICE, (997.5, 2.5)), (BOB, (997.0, 3.0))):
        (changed,) = only(outs, seto.PAYLOAD_BALANCE_CHANGED, account)
        assert (changed.reason, changed.available_balance, changed.exposure) == (
            "order_executed",
            available,
            exposure,
        )
        (executed,) = only(outs, seto.PAYLOAD_ORDER_EXECUTED, account)
        assert (executed.available_balance, executed.exposure) == (available, exposure)
    (cancelled,) = only(ex.handle(ALICE, cancel(a1), 1.0), seto.PAYLOAD_ORDER_CANCELLED)
    assert cancelled.reason == seto.ORDER_CANCELLED_MEMBER_REQUESTED
    assert (cancelled.available_balance, cancelled.exposure) == (999.0, 1.0)
    assert (cancelled.executed_quantity, cancelled.executed_avg_price) == (40_000, 2500)
    # alice sells her 4.00 back to bob at 30%: she is flat with 0.20 locked in (exposure 0),
    # and bob's position nets to a 0.20 loss whichever way the contract ends.
    place(ex, ALICE, SELL, 3000, 40_000)
    ex.handle(BOB, create(BUY, 3000, 40_000), 1.0)
    assert ex.balance(ALICE) == (1000.0, 0.0)
    assert ex.balance(BOB) == (999.8, 0.2)
    # Positions on different contracts are not netted.
    place(ex, BOB, SELL, 5000, 10_000, contract=102)
    ex.handle(ALICE, create(BUY, 5000, 10_000, contract=102), 1.0)
    assert ex.balance(ALICE) == (999.5, 0.5)
    assert ex.balance(BOB) == (999.3, 0.7)


# -- cancels and reductions ---------------------------------------------------------------------


def test_cancel(ex: Exchange) -> None:
    order_id = place(ex, ALICE, SELL, 6000, 10_000, reference=11, label="l")
    assert (
        only(ex.handle(BOB, cancel(order_id), 1.0), seto.PAYLOAD_ORDER_CANCEL_REJECTED)[0].reason
        == seto.ORDER_CANCEL_REJECTED_NOT_FOUND
    )  # not bob's
    outs = ex.handle(ALICE, cancel(order_id, reference=12), 1.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_CANCELLED"), (None, 100, "CONTRACT_QUOTES")]
    cancelled = body(outs[0].payload)
    assert (cancelled.order_id, cancelled.reference, cancelled.label) == (order_id, 11, "l")
    assert (cancelled.side, cancelled.orig_price, cancelled.market_id) == (SELL, 6000, 100)
    assert cancelled.account_sequence_64 == 2
    assert not body(outs[1].payload).offers
    assert ex.balance(ALICE) == (1000.0, 0.0)
    for order, reason in (
        (order_id, seto.ORDER_CANCEL_REJECTED_NOT_LIVE),
        (999, seto.ORDER_CANCEL_REJECTED_NOT_FOUND),
    ):
        outs = ex.handle(ALICE, cancel(order, reference=13), 1.0)
        assert kinds(outs) == [(ALICE, None, "ORDER_CANCEL_REJECTED")]
        rejected = body(outs[0].payload)
        assert (rejected.reason, rejected.order_id, rejected.reference) == (reason, order, 13)
    assert (ex.stats()["cancels"], ex.stats()["cancel_rejects"]) == (1, 3)


def test_cancel_all(ex: Exchange) -> None:
    a = place(ex, ALICE, BUY, 4000, 10_000)
    b = place(ex, ALICE, SELL, 6000, 10_000, contract=102)
    c = place(ex, ALICE, BUY, 3000, 10_000)
    bobs = place(ex, BOB, BUY, 3000, 10_000)
    outs = ex.handle(ALICE, cancel_all(market=100, reference=5), 1.0)
    assert kinds(outs) == [
        (ALICE, None, "ORDER_CANCELLED"),
        (ALICE, None, "ORDER_CANCELLED"),
        (ALICE, None, "ORDER_CANCELLED"),
        (ALICE, None, "ORDER_CANCEL_ALL_ACCEPTED"),
        (None, 100, "CONTRACT_QUOTES"),
        (None, 100, "CONTRACT_QUOTES"),
    ]
    assert [body(o.payload).order_id for o in outs[:3]] == [a, b, c]
    assert body(outs[3].payload).reference == 5
    assert book(ex) == ([(3000, 10_000)], [])  # bob's order stays
    assert ex.balance(ALICE) == (1000.0, 0.0)
    # Nothing left: accepted all the same; an unknown market is refused.
    outs = ex.handle(ALICE, cancel_all(), 1.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_CANCEL_ALL_ACCEPTED")]
    outs = ex.handle(ALICE, cancel_all(market=999, reference=6), 1.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_CANCEL_ALL_REJECTED")]
    rejected = body(outs[0].payload)
    assert (rejected.reason, rejected.reference) == (
        seto.ORDER_CANCEL_ALL_REJECTED_UNKNOWN_ERROR,
        6,
    )
    # Without a market: every market.
    ex.handle(BOB, cancel_all(), 1.0)
    assert only(ex.handle(BOB, cancel(bobs), 1.0), seto.PAYLOAD_ORDER_CANCEL_REJECTED)
    assert (ex.stats()["cancel_alls"], ex.stats()["cancel_all_rejects"]) == (3, 1)


def test_quantity_reduce_keeps_time_priority(ex: Exchange) -> None:
    first = place(ex, ALICE, BUY, 5000, 20_000)
    place(ex, BOB, BUY, 5000, 10_000)
    outs = ex.handle(ALICE, reduce(first, 5_000), 1.0)
    assert kinds(outs) == [
        (ALICE, None, "ORDER_QUANTITY_REDUCED"),
        (ALICE, None, "BALANCE_CHANGED"),
        (None, 100, "CONTRACT_QUOTES"),
    ]
    reduced = body(outs[0].payload)
    assert (reduced.order_id, reduced.new_quantity, reduced.orig_price) == (first, 5_000, 5000)
    assert reduced.reason == seto.ORDER_QUANTITY_REDUCED_MEMBER_REQUESTED
    assert body(outs[1].payload).available_balance == 999.75
    assert book(ex) == ([(5000, 15_000)], [])
    # alice's reduced order still trades first.
    outs = ex.handle(CAROL, create(SELL, 5000, 5_000), 1.0)
    assert only(outs, seto.PAYLOAD_ORDER_EXECUTED, ALICE)[0].order_id == first
    assert not only(outs, seto.PAYLOAD_ORDER_EXECUTED, BOB)
    bobs = place(ex, BOB, BUY, 4000, 10_000)
    for order, new, reason in (
        (bobs, 10_000, seto.ORDER_QUANTITY_REDUCE_REJECTED_INVALID_NEW_QUANTITY),
        (bobs, 0, seto.ORDER_QUANTITY_REDUCE_REJECTED_INVALID_NEW_QUANTITY),
        (first, 1, seto.ORDER_QUANTITY_REDUCE_REJECTED_NOT_LIVE),  # filled
        (999, 1, seto.ORDER_QUANTITY_REDUCE_REJECTED_NOT_FOUND),
    ):
        account = BOB if order == bobs else ALICE
        outs = ex.handle(account, reduce(order, new), 1.0)
        assert kinds(outs) == [(account, None, "ORDER_QUANTITY_REDUCE_REJECTED")]
        rejected = body(outs[0].payload)
        assert (rejected.reason, rejected.order_id, rejected.new_quantity) == (reason, order, new)
    assert (ex.stats()["quantity_reduces"], ex.stats()["quantity_reduce_rejects"]) == (1, 4)


def test_settings_and_cancel_all_on_failure(ex: Exchange) -> None:
    place(ex, ALICE, BUY, 4000, 10_000)
    assert ex.cancel_all_on_failure(ALICE, 1.0) == []  # not asked for
    outs = ex.handle(ALICE, message(seto.PAYLOAD_SETTINGS, cancel_all_on_failure=True), 1.0)
    assert kinds(outs) == [(ALICE, None, "SETTINGS_ACCEPTED")]
    assert body(outs[0].payload).cancel_all_on_failure is True
    outs = ex.cancel_all_on_failure(ALICE, 2.0)
    assert kinds(outs) == [(ALICE, None, "ORDER_CANCELLED"), (None, 100, "CONTRACT_QUOTES")]
    assert body(outs[0].payload).reason == seto.ORDER_CANCELLED_MEMBER_REQUESTED
    assert book(ex) == ([], [])
    outs = ex.handle(ALICE, message(seto.PAYLOAD_SETTINGS), 1.0)
    assert body(outs[0].payload).cancel_all_on_failure is False


def test_what_handle_does_not_trade_on(ex: Exchange) -> None:
    assert ex.handle(ALICE, message(seto.PAYLOAD_MARKET_SUBSCRIBE, market_id=100), 1.0) == []
    assert ex.handle(ALICE, message(seto.PAYLOAD_MARKET_UNSUBSCRIBE, market_id=100), 1.0) == []
    assert ex.handle(ALICE, message(seto.PAYLOAD_LOGIN, username="x"), 1.0) == []
    assert ex.handle(ALICE, seto.Payload(), 1.0) == []
    # Required fields missing (a hand-made frame): nothing placed, counted.
    assert ex.handle(ALICE, message(seto.PAYLOAD_ORDER_CREATE, price=5000), 1.0) == []
    assert ex.handle(ALICE, seto.Payload(type=seto.PAYLOAD_ORDER_CANCEL), 1.0) == []
    stats = ex.stats()
    assert (stats["ignored"], stats["malformed"], stats["live_orders"]) == (2, 2, 0)
    with pytest.raises(ValueError, match="unknown account id 99"):
        ex.handle(99, create(BUY, 5000, 1), 1.0)


# -- account sequences, journal, references -----------------------------------------------------


def test_account_sequences_are_per_account_and_monotonic(ex: Exchange) -> None:
    seen: dict[int, list[int]] = {ALICE: [], BOB: []}
    for i in range(6):
        maker, taker = (ALICE, BOB) if i % 2 else (BOB, ALICE)
        outs = ex.handle(maker, create(SELL if i % 2 else BUY, 5000, 10_000), 1.0)
        outs += ex.handle(taker, create(BUY if i % 2 else SELL, 5000, 10_000), 1.0)
        outs += ex.handle(taker, cancel(999), 1.0)
        for out in outs:
            b = body(out.payload)
            if out.account_id is not None and "account_sequence_64" in b.DESCRIPTOR.fields_by_name:
                seen[out.account_id].append(b.account_sequence_64)
                assert b.account_sequence == b.account_sequence_64
    for account, sequences in seen.items():
        assert sequences == list(range(1, len(sequences) + 1))
        assert ex.last_account_sequence(account) == sequences[-1]


def test_account_sequence_past_32_bits(ex: Exchange) -> None:
    snap = ex.snapshot()
    snap["accounts"][0]["sequence"] = (1 << 32) - 1
    ex = Exchange.restore(CONFIG, snap)
    outs = ex.handle(ALICE, create(BUY, 5000, 10_000), 1.0)
    accepted = body(outs[0].payload)
    assert (accepted.account_sequence_64, accepted.account_sequence) == (1 << 32, 0)
    outs = ex.handle(ALICE, cancel(accepted.order_id), 1.0)
    assert (body(outs[0].payload).account_sequence_64, body(outs[0].payload).account_sequence) == (
        (1 << 32) + 1,
        1,
    )


def test_account_messages_after(ex: Exchange) -> None:
    sent: list[seto.Payload] = []
    for payload in (
        create(SELL, 5000, 10_000, reference=1),  # ACCEPTED 1
        create(SELL, 0, 10_000, reference=2),  # INVALID (unsequenced, after 1)
    ):
        sent += [o.payload for o in ex.handle(ALICE, payload, 1.0) if o.account_id == ALICE]
    sent += [
        o.payload for o in ex.handle(BOB, create(BUY, 5000, 10_000), 1.0) if o.account_id == ALICE
    ]  # EXECUTED 2, BALANCE_CHANGED (after 2)
    sent += [o.payload for o in ex.handle(ALICE, cancel(12345), 1.0)]  # CANCEL_REJECTED 3

    def names(payloads: list[seto.Payload] | None) -> list[str]:
        assert payloads is not None
        return [seto.PayloadType.Name(p.type)[8:] for p in payloads]

    everything = ex.account_messages_after(ALICE, 0)
    assert everything is not None
    assert [p.SerializePartialToString() for p in everything] == [
        p.SerializePartialToString() for p in sent
    ]
    assert names(everything) == [
        "ORDER_ACCEPTED",
        "ORDER_INVALID",
        "ORDER_EXECUTED",
        "BALANCE_CHANGED",
        "ORDER_CANCEL_REJECTED",
    ]
    # After 1: what followed it, the unsequenced ORDER_INVALID included (at least once).
    assert names(ex.account_messages_after(ALICE, 1)) == names(everything)[1:]
    assert names(ex.account_messages_after(ALICE, 2)) == [
        "BALANCE_CHANGED",
        "ORDER_CANCEL_REJECTED",
    ]
    assert ex.account_messages_after(ALICE, 3) == []
    assert ex.account_messages_after(ALICE, 4) is None  # never given
    assert names(ex.account_messages_after(BOB, 0))[0] == "ORDER_ACCEPTED"
    # The payloads the server got were stamped; the journal kept its own bytes.
    sent[0].eto_payload.seq = 777
    again = ex.account_messages_after(ALICE, 0)
    assert again is not None and not again[0].eto_payload.HasField("seq")


def test_the_account_journal_is_bounded_in_bytes() -> None:
    config = dataclasses.replace(CONFIG, account_journal_bytes=5 * (ENTRY_OVERHEAD + 60))
    ex = Exchange(config)
    for i in range(40):
        ex.handle(ALICE, cancel(1000 + i), 1.0)  # ORDER_CANCEL_REJECTED, one sequence each
    last = ex.last_account_sequence(ALICE)
    assert last == 40
    assert ex.account_messages_after(ALICE, 0) is None  # the first ones are gone
    recent = ex.account_messages_after(ALICE, last - 5)
    assert recent is not None
    assert [body(p).account_sequence_64 for p in recent] == list(range(last - 4, last + 1))
    assert ex.stats()["journal_evicted"] > 0
    # As many as fit are held, and no more: their cost is within the bound, one more is not.
    held = 0
    while ex.account_messages_after(ALICE, last - held - 1) is not None:
        held += 1
    kept = ex.account_messages_after(ALICE, last - held)
    assert kept is not None and len(kept) == held
    cost = [len(p.SerializePartialToString()) + ENTRY_OVERHEAD for p in kept]
    assert sum(cost) <= config.account_journal_bytes < sum(cost) + max(cost)


def test_losing_an_unsequenced_message_loses_the_sequence_before_it() -> None:
    # Room for the last three messages: ORDER_EXECUTED 2, BALANCE_CHANGED, CANCEL_REJECTED 3.
    ex = Exchange(CONFIG)
    place(ex, ALICE, SELL, 5000, 10_000)
    ex.handle(BOB, create(BUY, 5000, 10_000), 1.0)
    ex.handle(ALICE, cancel(999), 1.0)
    journal = ex.account_messages_after(ALICE, 0)
    assert journal is not None
    sizes = [len(p.SerializePartialToString()) + ENTRY_OVERHEAD for p in journal]
    for kept, expect_after in ((3, 1), (2, 2)):
        ex2 = Exchange(dataclasses.replace(CONFIG, account_journal_bytes=sum(sizes[-kept:])))
        place(ex2, ALICE, SELL, 5000, 10_000)
        ex2.handle(BOB, create(BUY, 5000, 10_000), 1.0)
        ex2.handle(ALICE, cancel(999), 1.0)
        for after in range(4):
            held = ex2.account_messages_after(ALICE, after)
            assert (held is not None) == (after >= expect_after), (kept, after)
        resumed = ex2.account_messages_after(ALICE, expect_after)
        assert resumed is not None
        assert [p.SerializePartialToString() for p in resumed] == [
            p.SerializePartialToString() for p in journal[-kept:]
        ]
    # Keeping only the BALANCE_CHANGED's successor: it followed 2, so resuming from 2 would
    # miss it: only 3 onwards is whole.
    ex3 = Exchange(dataclasses.replace(CONFIG, account_journal_bytes=sizes[-1]))
    place(ex3, ALICE, SELL, 5000, 10_000)
    ex3.handle(BOB, create(BUY, 5000, 10_000), 1.0)
    ex3.handle(ALICE, cancel(999), 1.0)
    assert ex3.account_messages_after(ALICE, 2) is None
    assert ex3.account_messages_after(ALICE, 3) == []


def test_a_reused_reference_returns_the_original_answer(ex: Exchange) -> None:
    first = ex.handle(ALICE, create(BUY, 5000, 10_000, reference=99, seq=3), 1.0)
    again = ex.handle(ALICE, create(BUY, 5000, 10_000, reference=99, seq=8), 2.0)
    assert kinds(again) == [(ALICE, None, "ORDER_ACCEPTED")]
    assert (
        again[0].payload.SerializePartialToString() == first[0].payload.SerializePartialToString()
    )
    assert body(again[0].payload).account_sequence_64 == 1 and body(again[0].payload).seq == 3
    assert ex.last_account_sequence(ALICE) == 1 and book(ex) == ([(5000, 10_000)], [])
    # Even if the order changed (a bug in the client) or has traded since.
    ex.handle(BOB, create(SELL, 5000, 10_000), 1.0)
    again = ex.handle(ALICE, create(SELL, 100, 1, reference=99), 3.0)
    assert (
        again[0].payload.SerializePartialToString() == first[0].payload.SerializePartialToString()
    )
    # Rejected and invalid answers are remembered too.
    rejected = ex.handle(ALICE, create(BUY, 5000, 10_000, market=999, reference=100), 1.0)
    invalid = ex.handle(ALICE, create(BUY, 0, 10_000, reference=101), 1.0)
    for answer, payload in (
        (rejected, create(BUY, 5000, 10_000, reference=100)),
        (invalid, create(BUY, 5000, 10_000, reference=101)),
    ):
        assert [o.payload.SerializePartialToString() for o in ex.handle(ALICE, payload, 1.0)] == [
            answer[0].payload.SerializePartialToString()
        ]
    assert ex.stats()["orders_duplicate"] == 4
    # Another account's reference is its own; reference 0 never dedupes.
    assert only(
        ex.handle(BOB, create(BUY, 4000, 10_000, reference=99), 1.0), seto.PAYLOAD_ORDER_ACCEPTED
    )
    place(ex, ALICE, BUY, 4000, 10_000)
    place(ex, ALICE, BUY, 4000, 10_000)
    assert book(ex) == ([(4000, 30_000)], [])


def test_the_reference_memory_is_bounded_in_bytes() -> None:
    ex = Exchange(dataclasses.replace(CONFIG, reference_memory_bytes=4 * (ENTRY_OVERHEAD + 80)))
    for reference in range(1, 11):
        ex.handle(ALICE, create(BUY, 0, 1, reference=reference), 1.0)  # ORDER_INVALID
    assert ex.stats()["references_forgotten"] > 0
    # The newest is remembered, the oldest is answered afresh.
    assert ex.handle(ALICE, create(BUY, 0, 1, reference=10), 1.0)
    assert ex.stats()["orders_duplicate"] == 1
    ex.handle(ALICE, create(BUY, 0, 1, reference=1), 1.0)
    assert (ex.stats()["orders_duplicate"], ex.stats()["orders_invalid"]) == (1, 11)


# -- quotes -------------------------------------------------------------------------------------


def test_market_quotes_aggregate_each_price_level(ex: Exchange) -> None:
    assert ex.market_quotes(999) is None
    place(ex, ALICE, BUY, 5000, 10_000)
    place(ex, BOB, BUY, 5000, 20_000)
    place(ex, BOB, BUY, 4900, 5_000)
    place(ex, ALICE, SELL, 5200, 1_000)
    place(ex, CAROL, SELL, 5100, 2_000)
    place(ex, ALICE, SELL, 6000, 1_000, contract=102)
    quotes = ex.market_quotes(100)
    assert quotes is not None and quotes.type == seto.PAYLOAD_MARKET_QUOTES
    mq = quotes.market_quotes
    assert mq.market_id == 100 and [c.contract_id for c in mq.contract_quotes] == [101, 102]
    assert book(ex) == ([(5000, 30_000), (4900, 5_000)], [(5100, 2_000), (5200, 1_000)])
    assert book(ex, 102) == ([], [(6000, 1_000)])
    assert mq.executed_volume == 0 and not mq.contract_quotes[0].HasField("last_execution")
    assert only(ex.handle(CAROL, create(SELL, 4900, 15_000), 7.5), seto.PAYLOAD_ORDER_EXECUTED)
    quotes = ex.market_quotes(100)
    assert quotes is not None
    mq = quotes.market_quotes
    first = mq.contract_quotes[0]
    assert mq.executed_volume == 15_000
    # alice's 10000 then 5000 of bob's, both at 5000.
    assert (first.last_execution.price, first.last_execution.quantity) == (5000, 5_000)
    assert (first.last_execution.liquidity, first.last_execution.microseconds) == (SELL, 7_500_000)
    assert not first.executions  # a snapshot carries no execution list
    assert book(ex) == ([(5000, 15_000), (4900, 5_000)], [(5100, 2_000), (5200, 1_000)])
    assert quotes.IsInitialized() is False  # only eto_payload.seq, the server's, is missing
    quotes.eto_payload.seq = 1
    assert quotes.IsInitialized()


def test_other_markets_quotes_are_untouched(ex: Exchange) -> None:
    outs = ex.handle(ALICE, create(BUY, 5000, 10_000, contract=102), 1.0)
    assert [o.market_id for o in outs if o.market_id is not None] == [100]
    assert body(outs[-1].payload).contract_id == 102


# -- throttle -----------------------------------------------------------------------------------


def test_throttle_is_a_token_bucket_per_account(ex: Exchange) -> None:
    assert [ex.throttle(ALICE, 10.0) for _ in range(4)] == [True, True, True, False]
    assert ex.throttle(BOB, 10.0)  # bob has his own bucket
    assert not ex.throttle(ALICE, 10.5)  # half a token
    assert ex.throttle(ALICE, 11.0) and not ex.throttle(ALICE, 11.0)
    assert not ex.throttle(ALICE, 5.0)  # a clock step back refills nothing
    assert [ex.throttle(ALICE, 100.0) for _ in range(4)] == [True, True, True, False]  # burst cap
    assert ex.stats()["throttled"] == 5


# -- snapshot and restore -----------------------------------------------------------------------


def busy_exchange() -> Exchange:
    ex = Exchange(CONFIG)
    place(ex, ALICE, BUY, 4000, 30_000, reference=1, label="a")
    place(ex, BOB, BUY, 4000, 10_000)
    place(ex, BOB, SELL, 6000, 10_000, contract=102)
    ex.handle(CAROL, create(SELL, 4000, 15_000, reference=7), 5.0)
    ex.handle(ALICE, create(BUY, 0, 1, reference=2), 5.0)
    ex.handle(ALICE, message(seto.PAYLOAD_SETTINGS, cancel_all_on_failure=True), 5.0)
    ex.handle(BOB, cancel(999), 5.0)
    return ex


NEXT = [
    (CAROL, create(SELL, 4000, 20_000, reference=7)),  # a duplicate
    (BOB, create(SELL, 3900, 30_000, reference=3)),  # trades with alice's rest, then bob's own?
    (ALICE, create(BUY, 6000, 5_000, contract=102)),
    (ALICE, reduce(1, 1_000)),
    (BOB, cancel_all(100)),
    (ALICE, create(BUY, 4000, 1_000, reference=1)),  # a duplicate of order 1
    (ALICE, cancel(1)),
    (ALICE, create(BUY, 4100, 2_000)),
]


def test_snapshot_restore_round_trip() -> None:
    ex = busy_exchange()
    text = json.dumps(ex.snapshot())
    assert "alice-pw" not in text  # accounts are kept by id: no credentials
    restored = Exchange.restore(CONFIG, json.loads(text))
    assert restored.snapshot() == ex.snapshot()
    assert restored.stats() == ex.stats()
    for account in (ALICE, BOB, CAROL):
        assert restored.balance(account) == ex.balance(account)
        assert restored.last_account_sequence(account) == ex.last_account_sequence(account)
    assert restored.market_quotes(100) == ex.market_quotes(100)
    # The restored exchange answers the next messages exactly as the original does.
    for account, payload in NEXT:
        expected = ex.handle(account, payload, 9.0)
        got = restored.handle(account, payload, 9.0)
        assert [(o.account_id, o.market_id, o.payload.SerializePartialToString()) for o in got] == [
            (o.account_id, o.market_id, o.payload.SerializePartialToString()) for o in expected
        ]
    assert restored.snapshot() == ex.snapshot()
    assert restored.account_messages_after(ALICE, 0) == ex.account_messages_after(ALICE, 0)
    assert restored.cancel_all_on_failure(ALICE, 9.0) == ex.cancel_all_on_failure(ALICE, 9.0)


def test_restore_trims_to_the_configs_bounds_and_adds_new_accounts() -> None:
    snap = busy_exchange().snapshot()
    bigger = dataclasses.replace(
        CONFIG,
        account_journal_bytes=ENTRY_OVERHEAD + 80,
        accounts=(
            *CONFIG.accounts,
            dataclasses.replace(CONFIG.accounts[0], username="dave", account_id=4),
        ),
    )
    ex = Exchange.restore(bigger, snap)
    assert ex.account_messages_after(ALICE, 0) is None
    assert ex.balance(4) == (1000.0, 0.0)
    assert ex.authenticate("dave", "alice-pw") == 4


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.update(format=99), "format 99 is not 1"),
        (lambda s: s.update(next_order_id=2), "holds order 2, not below its next_order_id 2"),
        (lambda s: s["accounts"][0].update(account_id=77), "account 77, which the config does not"),
        (lambda s: s["orders"][0].update(contract_id=201), "contract 201 of market 100"),
        (lambda s: s["orders"][0].update(remaining=0), "bad live order"),
        (lambda s: s.pop("orders"), "not an exchange snapshot: KeyError"),
        (lambda s: s["accounts"][0]["references"][0].__setitem__(1, "%%%"), "Only base64 data"),
        (lambda s: s["accounts"][0]["journal"]["entries"][0].__setitem__(2, "AAAA"), "DecodeError"),
    ],
)
def test_restore_refuses_a_bad_snapshot(change: Any, expected: str) -> None:
    snap = json.loads(json.dumps(busy_exchange().snapshot()))
    change(snap)
    with pytest.raises(ValueError) as info:
        Exchange.restore(CONFIG, snap)
    assert expected in str(info.value)


# -- random order flows -------------------------------------------------------------------------

# carol's 5.00 holds about twenty orders, so her funds run out now and then.
FLOW_CONFIG = dataclasses.replace(
    CONFIG,
    max_open_orders=1000,
    accounts=(*CONFIG.accounts[:2], dataclasses.replace(CONFIG.accounts[2], balance=5.0)),
)
ACCOUNTS = (ALICE, BOB, CAROL)
CONTRACTS = (101, 102)

creates = st.tuples(
    st.just("create"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from((BUY, SELL)),
    st.integers(4996, 5004),  # a narrow band, so that orders cross often
    st.integers(1, 40).map(lambda n: n * 2_500),
    st.sampled_from(CONTRACTS),
    st.sampled_from((GTC, GTC, IOC)),
    st.integers(0, 300),  # references: 0 (none) or a number, sometimes one used before
)
cancels = st.tuples(st.just("cancel"), st.sampled_from(ACCOUNTS), st.integers(1, 60))
# An order to cancel or reduce: 1..50 picks one of the account's live orders (when it has
# any), 51..60 is that order id as is (often not the account's, or not live).
reduces = st.tuples(
    st.just("reduce"), st.sampled_from(ACCOUNTS), st.integers(1, 60), st.integers(0, 10)
)
cancel_alls = st.tuples(
    st.just("cancel_all"), st.sampled_from(ACCOUNTS), st.sampled_from((None, 100))
)
OPERATIONS = {"create": creates, "cancel": cancels, "reduce": reduces, "cancel_all": cancel_alls}
# Mostly new orders, so that the book fills and trades.
operations = st.sampled_from(
    ("create",) * 6 + ("cancel", "reduce", "reduce", "cancel_all")
).flatmap(OPERATIONS.__getitem__)
flows = st.lists(operations, min_size=20, max_size=80)


class Model:
    """What the messages say each order has left, checked against the exchange's book."""

    def __init__(self) -> None:
        self.remaining: dict[int, int] = {}  # live order id -> remaining
        self.where: dict[int, tuple[int, int]] = {}  # order id -> (contract, side)
        self.owner: dict[int, int] = {}  # order id -> account
        self.price: dict[int, int] = {}  # order id -> limit price
        # account -> contract -> [profit if it wins, profit if it loses], in money units
        self.positions: dict[int, dict[int, list[int]]] = {a: {} for a in ACCOUNTS}
        self.bought: dict[int, int] = dict.fromkeys(CONTRACTS, 0)
        self.sold: dict[int, int] = dict.fromkeys(CONTRACTS, 0)

    def apply(self, outs: list[Out]) -> None:
        for out in outs:
            b = body(out.payload)
            kind = out.payload.type
            if kind == seto.PAYLOAD_ORDER_ACCEPTED:
                if b.order_id not in self.where:  # not a duplicate's replayed answer
                    self.remaining[b.order_id] = b.quantity
                    self.where[b.order_id] = (b.contract_id, b.side)
                    self.owner[b.order_id] = out.account_id
                    self.price[b.order_id] = b.price
            elif kind == seto.PAYLOAD_ORDER_EXECUTED:
                # Conserved: what is left falls by exactly what traded.
                assert self.remaining[b.order_id] - b.quantity == b.available_quantity
                self.remaining[b.order_id] = b.available_quantity
                (self.bought if b.side == BUY else self.sold)[b.contract_id] += b.quantity
                assert out.account_id is not None
                position = self.positions[out.account_id].setdefault(b.contract_id, [0, 0])
                sign = 1 if b.side == BUY else -1
                position[0] += sign * b.quantity * (10_000 - b.price)
                position[1] -= sign * b.quantity * b.price
                assert b.total_executed_quantity + b.available_quantity <= 100_000
            elif kind == seto.PAYLOAD_ORDER_CANCELLED:
                self.remaining[b.order_id] = 0
            elif kind == seto.PAYLOAD_ORDER_QUANTITY_REDUCED:
                assert 0 < b.new_quantity < self.remaining[b.order_id]
                self.remaining[b.order_id] = b.new_quantity
            for name in ("available_balance", "exposure"):
                if name in b.DESCRIPTOR.fields_by_name and b.HasField(name):
                    assert getattr(b, name) >= 0, (name, b)

    def exposure(self, account: int) -> float:
        """The exposure rule worked out from the messages alone: live orders' reserves at
        their own prices plus each position's worst case."""
        reserved = sum(
            left * (self.price[o] if self.where[o][1] == BUY else 10_000 - self.price[o])
            for o, left in self.remaining.items()
            if self.owner[o] == account
        )
        worst = sum(max(0, -w, -lo) for w, lo in self.positions[account].values())
        return (reserved + worst) / 100_000_000

    def target(self, account: int, pick: int) -> int:
        """The order id a cancel or reduce names (see ``reduces``)."""
        live = [o for o, left in self.remaining.items() if left and self.owner[o] == account]
        return live[pick % len(live)] if live and pick <= 50 else pick

    def resting(self, contract: int, side: int) -> int:
        return sum(
            left for order, left in self.remaining.items() if self.where[order] == (contract, side)
        )


def run_flow(ex: Exchange, flow: list[tuple[Any, ...]], model: Model) -> None:
    for step, (op, account, *args) in enumerate(flow):
        if op == "create":
            side, price, quantity, contract, tif, reference = args
            payload = create(side, price, quantity, contract=contract, tif=tif, reference=reference)
        elif op == "cancel":
            payload = cancel(model.target(account, args[0]))
        elif op == "reduce":
            order_id = model.target(account, args[0])
            # A tenth of what is left at a time: 0 and all of it are refused.
            payload = reduce(order_id, model.remaining.get(order_id, 10_000) * args[1] // 10)
        else:
            payload = cancel_all(args[0])
        model.apply(ex.handle(account, payload, float(step)))
        check(ex, model)


def check(ex: Exchange, model: Model) -> None:
    for contract in CONTRACTS:
        bids, offers = book(ex, contract)
        if bids and offers:
            assert bids[0][0] < offers[0][0], "crossed book"
        assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
        assert [p for p, _ in offers] == sorted({p for p, _ in offers})
        assert sum(q for _, q in bids) == model.resting(contract, BUY)
        assert sum(q for _, q in offers) == model.resting(contract, SELL)
        assert model.bought[contract] == model.sold[contract]
    for account, config in zip(ACCOUNTS, FLOW_CONFIG.accounts, strict=True):
        available, exposure = ex.balance(account)
        assert available >= 0 and exposure >= 0
        assert available + exposure == pytest.approx(config.balance, abs=1e-9)
        assert exposure == model.exposure(account)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=flows)
def test_random_order_flows_keep_the_book_consistent(flow: list[tuple[Any, ...]]) -> None:
    ex = Exchange(FLOW_CONFIG)
    model = Model()
    run_flow(ex, flow, model)
    # Whatever the flow, the state survives a snapshot and restore unchanged.
    restored = Exchange.restore(FLOW_CONFIG, json.loads(json.dumps(ex.snapshot())))
    assert restored.snapshot() == ex.snapshot()
