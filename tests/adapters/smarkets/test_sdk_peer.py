"""smk-python-sdk 9.4.4, the reference client, trades on actorwire's embedded exchange.

The exchange (``serve(port=0)``, its default config) runs in this process; the real SDK runs
in its own venv (``tests/support/smkpeer.py``) under ``sdk_driver.py scenario``, as an SDK
user must drive it: explicit ``flush()`` and ``read()``, a global handler and per-name
handlers. ``demo`` logs in, pings, subscribes market 100 and rests a bid; ``demo2`` sells
into it; both wait for the exchange's HEARTBEAT and answer it; ``demo`` rests another bid
and cancels it; a bad password is refused; both log out. One run for the whole module (about
5.5 s, most of it waiting for the heartbeat): each test checks one part of what the SDK saw,
or what the exchange counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from actorwire.adapters.smarkets import SIDE_BID, SIDE_OFFER, eto, seto
from actorwire.adapters.smarkets.server import serve

from tests.support.smkpeer import run_sdk, sdk_python
from tests.support.waiting import wait_until

HOST = "127.0.0.1"
SCENARIO_TIMEOUT = 120.0
"""Seconds the driver's scenario may take (about 5.5)."""
CLOSE_TIMEOUT = 10.0
"""Seconds the exchange may take to count the logged-out sessions gone."""

# The scenario's orders (sdk_driver.py): one contract, 1.00 of payout, bids at 25% and 20%.
MARKET, CONTRACT, QUANTITY, PRICE, CANCEL_PRICE = 100, 101, 10000, 2500, 2000
REFERENCES = {"rested": 1001, "crossed": 1002, "cancelled": 1003}
BALANCE = 10000.0
"""Each demo account's balance in the default config."""

STEPS = ("login", "ping", "subscribe", "rest_order", "cross", "heartbeat", "cancel")
DEMO_NAMES = [
    "eto.login_response",
    "eto.pong",
    "seto.market_quotes",
    "seto.order_accepted",  # the bid at 25%
    "seto.contract_quotes",  # ... resting
    "seto.order_executed",  # demo2 sold into it
    "seto.balance_changed",
    "seto.contract_quotes",  # ... the trade
    "eto.heartbeat",
    "seto.order_accepted",  # the bid at 20%
    "seto.contract_quotes",  # ... resting
    "seto.order_cancelled",
    "seto.contract_quotes",  # ... gone
    "eto.logout",
]
DEMO2_NAMES = [
    "eto.login_response",
    "seto.order_accepted",
    "seto.order_executed",
    "seto.balance_changed",
    "eto.heartbeat",
    "eto.logout",
]
# What the SDK stamps (LOGIN 1, then the login_response's reset 2): demo's PING 2,
# MARKET_SUBSCRIBE 3, ORDER_CREATE 4, HEARTBEAT 5, ORDER_CREATE 6, ORDER_CANCEL 7, LOGOUT 8;
# demo2's ORDER_CREATE 2, HEARTBEAT 3, LOGOUT 4.
DEMO_ORDER_SEQS = [4, 6]
DEMO2_ORDER_SEQ = 2
FRAMES_WRITTEN = {"demo": 8, "demo2": 4, "bad_login": 1}


@dataclass(frozen=True)
class Run:
    """The driver's report and the exchange's counters once every session was gone."""

    result: dict[str, Any]
    stats: dict[str, int]

    def session(self, label: str) -> dict[str, Any]:
        session: dict[str, Any] = self.result["sessions"][label]
        return session

    def bodies(self, label: str, name: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = self.session(label)["bodies"][name]
        return bodies


@pytest.fixture(scope="module")
def run() -> Run:
    """One scenario of the SDK against a fresh exchange."""
    sdk_python()  # built (or the module skipped) before the exchange starts
    server = serve(host=HOST, port=0)
    try:
        result = run_sdk(["scenario", HOST, str(server.port)], timeout=SCENARIO_TIMEOUT)
        wait_until(
            lambda: server.stats()["sessions"] == 0,
            CLOSE_TIMEOUT,
            what="the exchange to end the SDK's sessions",
        )
        stats = server.stats()
    finally:
        server.stop()
    return Run(result, stats)


@pytest.mark.timeout(300)
def test_every_step_has_its_real_outcome(run: Run) -> None:
    steps = run.result["steps"]
    assert {step: steps[step] for step in STEPS} == dict.fromkeys(STEPS, "ok"), run.result
    assert steps["bad_login"] == {
        "error": "LoginError",
        "message": "7",
        "reason": eto.LOGOUT_UNAUTHORISED,
        "reason_msg": "LOGOUT_UNAUTHORISED",
    }
    assert steps["logout_demo"] == steps["logout_demo2"] == "ok"
    assert run.result["sdk_warnings"] == []  # no sequence gap, no send buffer dropped


@pytest.mark.timeout(300)
def test_each_session_dispatches_the_exchanges_messages_in_order_without_a_gap(run: Run) -> None:
    assert run.session("demo")["names"] == DEMO_NAMES
    assert run.session("demo2")["names"] == DEMO2_NAMES
    assert run.session("bad_login")["names"] == ["eto.logout"]
    for label in ("demo", "demo2", "bad_login"):
        seqs = run.session(label)["seqs"]
        # The SDK delivers only the seq it expects: it dropped nothing, saw nothing twice.
        assert seqs == list(range(1, len(seqs) + 1)), label
        assert run.session(label)["dropped"] == 0, label


@pytest.mark.timeout(300)
def test_the_sdk_logs_in_pings_and_gets_the_market_quotes(run: Run) -> None:
    (response,) = run.bodies("demo", "eto.login_response")
    assert response["login_response"]["reset"] == 2
    assert len(response["login_response"]["session"]) == 32  # a uuid4's hex
    assert run.bodies("demo", "eto.pong") == [{"seq": 2, "type": eto.PAYLOAD_PONG}]
    (quotes,) = run.bodies("demo", "seto.market_quotes")
    assert quotes == {
        "market_id": MARKET,
        "executed_volume": 0,
        "contract_quotes": [
            {"market_id": MARKET, "contract_id": 101},  # empty books
            {"market_id": MARKET, "contract_id": 102},
        ],
    }


@pytest.mark.timeout(300)
def test_a_bid_from_the_sdk_is_accepted_and_rests_on_the_book(run: Run) -> None:
    accepted = run.bodies("demo", "seto.order_accepted")[0]
    assert accepted == {
        "seq": DEMO_ORDER_SEQS[0],  # the seq the SDK stamped on its ORDER_CREATE
        "order_id": run.result["orders"]["rested"],
        "reference": REFERENCES["rested"],
        "price": PRICE,
        "quantity": QUANTITY,
        "side": SIDE_BID,
        "market_id": MARKET,
        "contract_id": CONTRACT,
        "available_balance": pytest.approx(BALANCE - 0.25),  # 1.00 at 25% stakes 0.25
        "exposure": pytest.approx(0.25),
        "account_sequence": 1,
        "account_sequence_64": 1,
    }
    assert run.bodies("demo", "seto.contract_quotes")[0] == {
        "market_id": MARKET,
        "contract_id": CONTRACT,
        "bids": [{"price": PRICE, "quantity": QUANTITY}],
    }


@pytest.mark.timeout(300)
def test_a_second_sdk_session_trades_with_the_resting_bid(run: Run) -> None:
    orders = run.result["orders"]
    assert orders["crossed"] != orders["rested"]
    (accepted,) = run.bodies("demo2", "seto.order_accepted")
    assert accepted["seq"] == DEMO2_ORDER_SEQ
    assert accepted["order_id"] == orders["crossed"]
    assert (accepted["side"], accepted["price"], accepted["quantity"]) == (
        SIDE_OFFER,
        PRICE,
        QUANTITY,
    )
    # Both sides see the one fill, at the resting price, for the whole quantity.
    assert run.result["executions"] == {
        "demo": [{"order_id": orders["rested"], "price": PRICE, "quantity": QUANTITY, "side": 1}],
        "demo2": [{"order_id": orders["crossed"], "price": PRICE, "quantity": QUANTITY, "side": 2}],
        "bad_login": [],
    }
    for label in ("demo", "demo2"):
        (executed,) = run.bodies(label, "seto.order_executed")
        assert executed["total_executed_quantity"] == QUANTITY, label
        assert executed["executed_avg_price"] == PRICE, label
        assert executed["available_quantity"] == 0, label
    # A bought 1.00 at 25% can lose 0.25; the sold one 0.75.
    assert run.result["balances"] == {
        "demo": [
            {
                "reason": "order_executed",
                "available_balance": pytest.approx(BALANCE - 0.25),
                "exposure": pytest.approx(0.25),
            }
        ],
        "demo2": [
            {
                "reason": "order_executed",
                "available_balance": pytest.approx(BALANCE - 0.75),
                "exposure": pytest.approx(0.75),
            }
        ],
        "bad_login": [],
    }
    traded = run.bodies("demo", "seto.contract_quotes")[1]
    (execution,) = traded["executions"]
    assert execution["price"] == PRICE and execution["quantity"] == QUANTITY
    assert execution["liquidity"] == SIDE_OFFER  # the aggressor's side
    assert traded["last_execution"] == execution
    assert traded["high_price"] == traded["low_price"] == PRICE
    assert "bids" not in traded and "offers" not in traded  # the book is empty again


@pytest.mark.timeout(300)
def test_the_sdk_cancels_its_resting_bid(run: Run) -> None:
    order_id = run.result["orders"]["cancelled"]
    assert order_id not in (run.result["orders"]["rested"], run.result["orders"]["crossed"])
    accepted = run.bodies("demo", "seto.order_accepted")[1]
    assert accepted["seq"] == DEMO_ORDER_SEQS[1]
    assert (accepted["order_id"], accepted["price"]) == (order_id, CANCEL_PRICE)
    # The position's 0.25 plus the new bid's 0.20.
    assert accepted["exposure"] == pytest.approx(0.45)
    (cancelled,) = run.bodies("demo", "seto.order_cancelled")
    assert cancelled == {
        "order_id": order_id,
        "reason": seto.ORDER_CANCELLED_MEMBER_REQUESTED,
        "reference": REFERENCES["cancelled"],
        "executed_quantity": 0,
        "executed_avg_price": 0,
        "market_id": MARKET,
        "contract_id": CONTRACT,
        "side": SIDE_BID,
        "orig_price": CANCEL_PRICE,
        "available_balance": pytest.approx(BALANCE - 0.25),  # the reserve released
        "exposure": pytest.approx(0.25),
        "account_sequence": 4,
        "account_sequence_64": 4,
    }
    resting, gone = run.bodies("demo", "seto.contract_quotes")[2:]
    assert resting["bids"] == [{"price": CANCEL_PRICE, "quantity": QUANTITY}]
    assert "bids" not in gone and "offers" not in gone
    assert "executions" not in resting and "executions" not in gone


@pytest.mark.timeout(300)
def test_a_bad_password_raises_the_sdks_login_error(run: Run) -> None:
    assert run.result["steps"]["bad_login"]["error"] == "LoginError"
    assert run.result["steps"]["bad_login"]["reason"] == 7
    (refusal,) = run.bodies("bad_login", "eto.logout")
    assert refusal["logout"] == {"reason": eto.LOGOUT_UNAUTHORISED}
    # The SDK disconnects on the LOGOUT it dispatches.
    assert run.session("bad_login")["connected"] is False
    assert run.session("bad_login")["buf_outseq"] == FRAMES_WRITTEN["bad_login"] + 1  # LOGIN
    assert run.stats["logins_refused"] == 1


@pytest.mark.timeout(300)
def test_both_sessions_log_out_cleanly(run: Run) -> None:
    for label in ("demo", "demo2"):
        session = run.session(label)
        confirmation = run.bodies(label, "eto.logout")
        assert [body["logout"] for body in confirmation] == [{"reason": eto.LOGOUT_CONFIRMATION}], (
            label
        )
        last_seq = session["seqs"][-1]
        assert session["before_logout"] == {
            "connected": True,
            "inseq": last_seq,  # the confirmation was the next seq it expected
            "buf_outseq": FRAMES_WRITTEN[label],
        }, label
        # disconnect() resets the incoming seq; the LOGOUT took one more outgoing seq.
        assert session["final"] == {
            "connected": False,
            "inseq": 1,
            "buf_outseq": FRAMES_WRITTEN[label] + 1,
        }, label
    assert run.stats["sessions"] == 0


@pytest.mark.timeout(300)
def test_the_exchange_counts_what_the_sdk_did(run: Run) -> None:
    stats = run.stats
    assert {
        name: stats[name]
        for name in (
            "connections",
            "logins",
            "logins_refused",
            "orders_accepted",
            "orders_rejected",
            "orders_invalid",
            "orders_duplicate",
            "executions",
            "executed_quantity",
            "cancels",
            "cancel_rejects",
            "live_orders",
        )
    } == {
        "connections": 3,
        "logins": 2,
        "logins_refused": 1,
        "orders_accepted": 3,
        "orders_rejected": 0,
        "orders_invalid": 0,
        "orders_duplicate": 0,
        "executions": 1,
        "executed_quantity": QUANTITY,
        "cancels": 1,
        "cancel_rejects": 0,
        "live_orders": 0,
    }
    # Every heartbeat the exchange sent reached an SDK session.
    seen = sum(run.session(label)["names"].count("eto.heartbeat") for label in ("demo", "demo2"))
    assert stats["heartbeats_sent"] == seen == 2


@pytest.mark.timeout(300)
def test_the_exchange_reads_every_frame_the_sdk_writes(run: Run) -> None:
    stats = run.stats
    assert stats["garbage"] == 0
    assert stats["malformed"] == stats["ignored"] == stats["throttled"] == 0
    # The one LOGOUT the exchange sent unasked is the refusal: no LOGIN_NOT_FIRST_SEQ, no
    # UNKNOWN_SESSION, no HEARTBEAT_TIMEOUT for any frame the SDK wrote.
    assert stats["logouts_sent"] == 1
    assert stats["replays"] == stats["gapfills_sent"] == 0
    # Each frame the SDK wrote (its seqs 1..buf_outseq-1) has its answer, HEARTBEAT aside.
    assert [run.session(label)["final"]["buf_outseq"] - 1 for label in ("demo", "demo2")] == [
        FRAMES_WRITTEN["demo"],
        FRAMES_WRITTEN["demo2"],
    ]
    answers = {
        "demo": {  # LOGIN, PING, MARKET_SUBSCRIBE, 2 ORDER_CREATE, ORDER_CANCEL, LOGOUT
            "eto.login_response": 1,
            "eto.pong": 1,
            "seto.market_quotes": 1,
            "seto.order_accepted": 2,
            "seto.order_cancelled": 1,
            "eto.logout": 1,
        },
        "demo2": {"eto.login_response": 1, "seto.order_accepted": 1, "eto.logout": 1},
    }
    for label, expected in answers.items():
        names = Counter(run.session(label)["names"])
        assert {name: names[name] for name in expected} == expected, label
