"""The gateway's topics, sans-I/O, with a fake clock: upserts that insert, replace and leave
rows as they were, filters (one value, a list, none, several key columns), snapshots' shape
and order, bad rows and filters refused naming the row and the column (with the spec's error
codes), the column types, the row and byte bounds, and batched updates on each
subscription's grid (only changed rows, latest values, the interval kept, nothing after an
unsubscribe); with hypothesis, the index against a brute-force model and the timing rules
for random upserts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from actorwire.adapters.kdb.topics import (
    ERR_BAD_TYPE,
    ERR_FILTER_COLUMNS,
    ERR_MISSING_INPUT,
    ERR_NO_TOPIC,
    ERR_PAYLOAD_INVALID,
    ROW_OVERHEAD,
    Column,
    LimitError,
    TopicError,
    Topics,
    TopicSpec,
    check_type,
    coerce_value,
    format_timestamp,
    parse_timestamp,
)
from hypothesis import given, settings
from hypothesis import strategies as st

TRADE = TopicSpec("trade", (Column("ccyPair", "symbol"),), (Column("val", "float"),))
QUOTE = TopicSpec(
    "quote",
    (Column("sym", "symbol"), Column("venue", "long")),
    (Column("bid", "float"), Column("ask", "float"), Column("live", "boolean")),
)


def trade(**kwargs: Any) -> Topics:
    return Topics([TRADE, QUOTE], **kwargs)


def rows(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"ccyPair": pair, "val": val} for pair, val in pairs]


# --------------------------------------------------------------------------- upserts


def test_upsert_inserts_then_replaces_by_key_keeping_insertion_order() -> None:
    t = trade()
    assert t.upsert("trade", rows(("EUR/USD", 1.0), ("GBP/USD", 1.2)), 0.0) == 2
    assert t.upsert("trade", rows(("USD/JPY", 150.0), ("EUR/USD", 1.1)), 0.0) == 2
    assert t.snapshot("trade") == {
        "ccyPair": ["EUR/USD", "GBP/USD", "USD/JPY"],
        "val": [1.1, 1.2, 150.0],
    }
    assert t.row_count("trade") == 3


def test_an_upsert_that_leaves_a_row_as_it_was_changes_nothing() -> None:
    t = trade()
    t.upsert("trade", rows(("EUR/USD", 1.0)), 0.0)
    assert t.upsert("trade", rows(("EUR/USD", 1.0)), 0.0) == 0
    assert t.upsert("trade", rows(("EUR/USD", 1)), 0.0) == 0  # an int is a float's value


def test_column_dicts_and_partial_rows() -> None:
    t = trade()
    data = {
        "sym": ["a", "b"],
        "venue": [1, 2],
        "bid": [1.0, 2.0],
        "ask": [1.5, 2.5],
        "live": [True, False],
    }
    assert t.upsert("quote", data, 0.0) == 2
    # A known key may leave value columns out: they keep their values.
    assert t.upsert("quote", {"sym": ["b"], "venue": [2], "ask": [3.0]}, 0.0) == 1
    assert t.snapshot("quote", {"sym": "b"}) == {
        "sym": ["b"],
        "venue": [2],
        "bid": [2.0],
        "ask": [3.0],
        "live": [False],
    }
    assert t.upsert("quote", {}, 0.0) == 0  # no columns: no rows


def test_a_batch_with_one_key_twice_keeps_the_later_row_merged_over_the_earlier() -> None:
    t = trade()
    batch: list[dict[str, Any]] = [
        {"sym": "a", "venue": 1, "bid": 1.0, "ask": 2.0, "live": True},
        {"sym": "a", "venue": 1, "ask": 3.0},
    ]
    assert t.upsert("quote", batch, 0.0) == 1
    assert t.snapshot("quote")["ask"] == [3.0]
    assert t.snapshot("quote")["bid"] == [1.0]


def test_topics_spec_and_columns() -> None:
    t = Topics([TopicSpec("trade", TRADE.keys, TRADE.values, tuple(rows(("EUR/USD", 1.0))))])
    assert t.names() == ["trade"] and t.exists("trade") and not t.exists("nope")
    assert t.key_columns("trade") == ("ccyPair",)
    assert t.value_columns("trade") == ("val",)
    assert t.spec("trade").columns == (Column("ccyPair", "symbol"), Column("val", "float"))
    assert t.snapshot("trade") == {"ccyPair": ["EUR/USD"], "val": [1.0]}
    with pytest.raises(ValueError, match="already defined"):
        t.define(TRADE)
    with pytest.raises(TopicError, match=r"topic 'nope' does not exist \(topics: trade\)") as err:
        t.key_columns("nope")
    assert err.value.code == ERR_NO_TOPIC


def test_a_topic_whose_starting_rows_are_bad_is_not_defined() -> None:
    t = Topics()
    bad = TopicSpec("trade", TRADE.keys, TRADE.values, ({"ccyPair": "x", "val": "y"},))
    with pytest.raises(TopicError, match="row 0: column 'val' must be a float"):
        t.define(bad)
    assert not t.exists("trade")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (lambda: TopicSpec("", TRADE.keys), "non-empty string"),
        (lambda: TopicSpec("t", ()), "at least one key column"),
        (lambda: TopicSpec("t", (Column("a", "symbol"), Column("a", "long"))), "duplicate"),
        (lambda: TopicSpec("t", (Column("", "symbol"),)), "column's name"),
        (lambda: TopicSpec("t", (Column("a", "flaot"),)), "did you mean 'float'"),
        (lambda: TopicSpec("t", (Column("a", "bool"),)), "did you mean 'boolean'"),
    ],
)
def test_bad_specs_are_refused(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec()


def test_check_type_lists_the_types() -> None:
    assert check_type("timestamp", "x") == "timestamp"
    with pytest.raises(ValueError, match="x: unknown column type 3; expected one of symbol"):
        check_type(3, "x")


# --------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize(
    ("topic", "data", "code", "message"),
    [
        (
            "trade",
            [{"ccyPair": "a", "val": 1.0}, {"ccyPair": "b", "vall": 2.0}],
            ERR_PAYLOAD_INVALID,
            r"topic 'trade' row 1: unknown column 'vall' \(columns: ccyPair, val\); "
            r"did you mean 'val'\?",
        ),
        ("trade", [{"val": 1.0}], ERR_MISSING_INPUT, "row 0: missing key column 'ccyPair'"),
        (
            "trade",
            [{"ccyPair": "a", "val": 1.0}, {"ccyPair": "a", "val": "1.1"}],
            ERR_BAD_TYPE,
            r"row 1: column 'val' must be a float \(a finite number\), got str '1.1'",
        ),
        (
            "trade",
            [{"ccyPair": 7, "val": 1.0}],
            ERR_BAD_TYPE,
            "row 0: column 'ccyPair' must be a string, got int 7",
        ),
        (
            "trade",
            [{"ccyPair": "new"}],
            ERR_MISSING_INPUT,
            r"row 0: new key \('new',\) needs every column; missing 'val'",
        ),
        (
            "trade",
            {"ccyPair": ["a", "b"], "val": [1.0]},
            ERR_PAYLOAD_INVALID,
            "column 'val' has 1 values, column 'ccyPair' has 2",
        ),
        (
            "trade",
            {"ccyPair": "a", "val": [1.0]},
            ERR_PAYLOAD_INVALID,
            "column 'ccyPair' must be a list of values",
        ),
        ("trade", "ccyPair", ERR_PAYLOAD_INVALID, "rows must be a list of dicts"),
        ("trade", [["a", 1.0]], ERR_PAYLOAD_INVALID, "row 0: must be a dict"),
        (
            "quote",
            {"sym": ["a"], "venue": [1.0], "bid": [1.0], "ask": [1.0], "live": [True]},
            ERR_BAD_TYPE,
            r"row 0: column 'venue' must be a long \(an integer",
        ),
        (
            "quote",
            {"sym": ["a"], "venue": [1], "bid": [1.0], "ask": [1.0], "live": [1]},
            ERR_BAD_TYPE,
            r"row 0: column 'live' must be a boolean \(true or false\), got int 1",
        ),
        ("nope", [], ERR_NO_TOPIC, "topic 'nope' does not exist"),
    ],
)
def test_bad_rows_are_refused_naming_the_row_and_the_column(
    topic: str, data: Any, code: int, message: str
) -> None:
    t = trade()
    t.upsert("trade", rows(("a", 0.5)), 0.0)
    with pytest.raises(TopicError, match=message) as err:
        t.upsert(topic, data, 0.0)
    assert err.value.code == code
    # A refused batch changes nothing, not even its good rows.
    assert t.snapshot("trade") == {"ccyPair": ["a"], "val": [0.5]}
    assert t.snapshot("quote") == {"sym": [], "venue": [], "bid": [], "ask": [], "live": []}


def test_a_long_bad_value_is_cut_short_in_the_error() -> None:
    t = trade()
    with pytest.raises(TopicError) as err:
        t.upsert("trade", [{"ccyPair": "a", "val": "x" * 10_000}], 0.0)
    assert len(str(err.value)) < 200 and str(err.value).endswith("...")


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("type_name", "good", "bad"),
    [
        ("symbol", [("EUR/USD", "EUR/USD"), ("", "")], [1, None, b"x"]),
        ("string", [("free text", "free text")], [1.0, ["a"]]),
        ("float", [(1.5, 1.5), (2, 2.0), (-0.0, -0.0)], [True, "1.0", math.nan, math.inf]),
        ("long", [(2**63 - 1, 2**63 - 1), (-(2**63) + 1, -(2**63) + 1)], [-(2**63), 1.0, False]),
        ("int", [(2**31 - 1, 2**31 - 1)], [2**31, -(2**31), "1"]),
        ("boolean", [(True, True), (False, False)], [0, "true", None]),
        (
            "timestamp",
            [
                (0, 0),
                ("1970-01-01T00:00:01Z", 10**9),
                ("2000-01-01 00:00:00.000000001", 946_684_800 * 10**9 + 1),
                ("2024-05-01T12:30:00.5+02:00", parse_timestamp("2024-05-01T10:30:00.5")),
                ("2024-05-01", parse_timestamp("2024-05-01T00:00:00")),
                (
                    datetime(2024, 5, 1, 10, 30, 0, 250000),
                    parse_timestamp("2024-05-01T10:30:00.25"),
                ),
                (
                    datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
                    parse_timestamp("2024-05-01T10:30Z"),
                ),
            ],
            [
                "yesterday",
                "2024-02-30T00:00:00",
                "2024-05-01T10:30:00+25:00",
                "1600-01-01",
                True,
                1.5,
                2**64,
            ],
        ),
    ],
)
def test_column_types_take_their_values_and_refuse_others(
    type_name: str, good: list[tuple[Any, Any]], bad: list[Any]
) -> None:
    for given_value, held in good:
        value = coerce_value(type_name, given_value)
        assert value == held and type(value) is type(held), (given_value, value)
    for value in bad:
        with pytest.raises(ValueError, match="must be"):
            coerce_value(type_name, value)
    with pytest.raises(ValueError, match="unknown column type"):
        coerce_value("decimal", 1)


def test_timestamps_keep_nanoseconds_and_format_as_q_does() -> None:
    ns = parse_timestamp("2024-05-01T12:30:00.123456789Z")
    assert ns % 10**9 == 123_456_789
    assert format_timestamp(ns) == "2024-05-01T12:30:00.123456789"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000000"
    assert format_timestamp(-1) == "1969-12-31T23:59:59.999999999"
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp"):
        parse_timestamp("01/05/2024")
    assert datetime.fromtimestamp(ns // 10**9, UTC).hour == 12


# --------------------------------------------------------------------------- filters


def quotes() -> Topics:
    t = trade()
    data = [
        {"sym": sym, "venue": venue, "bid": float(i), "ask": float(i) + 0.5, "live": True}
        for i, (sym, venue) in enumerate(
            [("a", 1), ("b", 1), ("a", 2), ("c", 3), ("b", 2), ("a", 3)]
        )
    ]
    t.upsert("quote", data, 0.0)
    return t


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        (None, [("a", 1), ("b", 1), ("a", 2), ("c", 3), ("b", 2), ("a", 3)]),
        ({}, [("a", 1), ("b", 1), ("a", 2), ("c", 3), ("b", 2), ("a", 3)]),
        ({"sym": "a"}, [("a", 1), ("a", 2), ("a", 3)]),
        ({"sym": ["c", "b"]}, [("b", 1), ("c", 3), ("b", 2)]),
        ({"venue": 2}, [("a", 2), ("b", 2)]),
        ({"sym": "a", "venue": [3, 1]}, [("a", 1), ("a", 3)]),  # looked up, in insertion order
        (
            {"sym": ["a", "b", "c"], "venue": [1, 2, 3]},
            [("a", 1), ("b", 1), ("a", 2), ("c", 3), ("b", 2), ("a", 3)],
        ),
        ({"sym": "z"}, []),
        ({"sym": "a", "venue": 9}, []),
    ],
)
def test_snapshots_filter_on_key_columns_in_insertion_order(
    filter: dict[str, Any] | None, expected: list[tuple[str, int]]
) -> None:
    snap = quotes().snapshot("quote", filter)
    assert list(snap) == ["sym", "venue", "bid", "ask", "live"]
    assert list(zip(snap["sym"], snap["venue"], strict=True)) == expected
    assert all(len(col) == len(expected) for col in snap.values())


@pytest.mark.parametrize(
    ("filter", "code", "message"),
    [
        ({"bid": 1.0}, ERR_FILTER_COLUMNS, r"filter column 'bid' is a value column; .*sym, venue"),
        ({"side": "buy"}, ERR_FILTER_COLUMNS, "filter column 'side' is not a column"),
        ({"venue": "1"}, ERR_BAD_TYPE, "filter column 'venue': must be a long"),
        ({"sym": []}, ERR_PAYLOAD_INVALID, "empty list of values"),
        (["sym", "a"], ERR_PAYLOAD_INVALID, "a filter must be a dict"),
    ],
)
def test_bad_filters_are_refused_with_the_specs_codes(filter: Any, code: int, message: str) -> None:
    t = quotes()
    for call in (
        lambda: t.snapshot("quote", filter),
        lambda: t.subscribe("s1", "quote", filter, 0.0),
        lambda: t.check_filter("quote", filter),
    ):
        with pytest.raises(TopicError, match=message) as err:
            call()
        assert err.value.code == code
    assert t.subscriptions == 0


def test_checked_filters_compare_equal_whatever_the_order() -> None:
    t = quotes()
    one = t.check_filter("quote", {"venue": [2, 1], "sym": "a"})
    two = t.check_filter("quote", {"sym": ["a", "a"], "venue": [1, 2]})
    assert one == two == (("sym", frozenset({"a"})), ("venue", frozenset({1, 2})))
    assert t.check_filter("quote", {}) == t.check_filter("quote", None) == ()
    assert t.subscribe("s1", "quote", {"venue": [2, 1], "sym": "a"}, 0.0) == one


# --------------------------------------------------------------------------- bounds


def test_max_rows_refuses_new_keys_but_not_replacements() -> None:
    t = trade(max_rows=2)
    t.upsert("trade", rows(("a", 1.0), ("b", 1.0)), 0.0)
    with pytest.raises(
        LimitError, match=r"topic 'trade': .*1 new row would .*max_rows=2 \(it has 2\)"
    ):
        t.upsert("trade", rows(("a", 2.0), ("c", 1.0)), 0.0)
    assert t.snapshot("trade")["val"] == [1.0, 1.0]  # the batch is refused whole
    assert t.upsert("trade", rows(("a", 2.0), ("b", 3.0)), 0.0) == 2
    t.upsert("quote", [{"sym": "x", "venue": 1, "bid": 1.0, "ask": 1.0, "live": True}] * 1, 0.0)


def test_max_bytes_bounds_every_topic_together() -> None:
    one_row = ROW_OVERHEAD + 200
    t = trade(max_bytes=3 * one_row)
    t.upsert("trade", rows(("a", 1.0), ("b", 1.0)), 0.0)
    used = t.bytes
    assert 2 * ROW_OVERHEAD < used <= 2 * one_row
    with pytest.raises(LimitError, match=r"max_bytes=\d+"):
        t.upsert("trade", [{"ccyPair": "c", "val": 1.0}, {"ccyPair": "d" * 500, "val": 1.0}], 0.0)
    assert t.bytes == used and t.row_count("trade") == 2
    # Replacing a row with one of the same size costs nothing more.
    t.upsert("trade", rows(("a", 5.0)), 0.0)
    assert t.bytes == used


@pytest.mark.parametrize(
    "kwargs",
    [{"update_interval": 0}, {"update_interval": True}, {"max_rows": 0}, {"max_bytes": 1.5}],
)
def test_bad_bounds_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Topics(**kwargs)


# --------------------------------------------------------------------------- batching


def test_updates_come_on_the_subscriptions_grid_with_only_changed_rows_latest_values() -> None:
    t = trade(update_interval=5.0)
    t.upsert("trade", rows(("EUR/USD", 1.0), ("GBP/USD", 1.2), ("USD/JPY", 150.0)), 0.0)
    t.subscribe("s1", "trade", {}, 1.0)  # its grid: 6, 11, 16...
    assert t.next_deadline() is None  # nothing changed yet
    t.upsert("trade", rows(("GBP/USD", 1.3)), 2.0)
    t.upsert("trade", rows(("EUR/USD", 1.1), ("GBP/USD", 1.4)), 3.0)
    t.upsert("trade", rows(("USD/JPY", 150.0)), 3.0)  # the same value: no change
    assert t.next_deadline() == 6.0
    assert t.due(5.999) == []
    assert t.due(6.0) == [("s1", {"ccyPair": ["GBP/USD", "EUR/USD"], "val": [1.4, 1.1]})]
    assert t.due(100.0) == [] and t.next_deadline() is None
    # A change at a grid point just served waits for the next one.
    t.upsert("trade", rows(("USD/JPY", 151.0)), 6.0)
    assert t.next_deadline() == 11.0
    assert t.due(10.0) == []
    # A late call still serves it once; the next change goes to the following grid point.
    assert t.due(12.5) == [("s1", {"ccyPair": ["USD/JPY"], "val": [151.0]})]
    t.upsert("trade", rows(("USD/JPY", 152.0)), 12.5)
    assert t.next_deadline() == 16.0
    # A long quiet spell: the next change goes at the first grid point after it.
    assert t.due(16.0) != []
    t.upsert("trade", rows(("EUR/USD", 1.2)), 40.2)
    assert t.next_deadline() == 41.0


def test_only_subscriptions_with_changes_get_an_update_each_on_its_own_grid() -> None:
    t = trade(update_interval=5.0)
    t.upsert("trade", rows(("EUR/USD", 1.0), ("GBP/USD", 1.2)), 0.0)
    t.subscribe("eur", "trade", {"ccyPair": "EUR/USD"}, 0.0)
    t.subscribe("gbp", "trade", {"ccyPair": "GBP/USD"}, 2.0)
    t.subscribe("both", "trade", {"ccyPair": ["EUR/USD", "GBP/USD"]}, 3.0)
    t.subscribe("all", "trade", None, 4.0)
    t.upsert("trade", rows(("EUR/USD", 1.1)), 4.5)
    t.upsert("trade", rows(("USD/JPY", 150.0)), 4.5)  # a new row, in "all" only
    assert t.topic_of("eur") == "trade" and t.topic_of("nobody") is None
    assert t.due(5.0) == [("eur", {"ccyPair": ["EUR/USD"], "val": [1.1]})]
    assert t.due(8.0) == [("both", {"ccyPair": ["EUR/USD"], "val": [1.1]})]
    assert t.due(9.0) == [
        ("all", {"ccyPair": ["EUR/USD", "USD/JPY"], "val": [1.1, 150.0]}),
    ]
    assert t.due(60.0) == []  # "gbp" saw no change


def test_unsubscribed_gets_nothing_and_ids_may_be_reused() -> None:
    t = trade(update_interval=1.0)
    t.upsert("trade", rows(("EUR/USD", 1.0)), 0.0)
    t.subscribe("s1", "trade", {"ccyPair": "EUR/USD"}, 0.0)
    with pytest.raises(ValueError, match="subscription 's1' already exists"):
        t.subscribe("s1", "trade", {}, 0.0)
    t.upsert("trade", rows(("EUR/USD", 1.1)), 0.1)
    assert t.unsubscribe("s1") is True
    assert t.unsubscribe("s1") is False  # the spec's 43
    assert t.subscriptions == 0 and t.topic_of("s1") is None
    assert t.next_deadline() is None and t.due(10.0) == []
    t.upsert("trade", rows(("EUR/USD", 1.2)), 10.0)
    assert t.due(20.0) == []
    # The same id again is a new subscription: nothing of the old one reaches it.
    t.subscribe("s1", "trade", {}, 20.0)
    t.upsert("trade", rows(("EUR/USD", 1.3)), 20.5)
    assert t.due(21.0) == [("s1", {"ccyPair": ["EUR/USD"], "val": [1.3]})]


def test_many_subscriptions_that_come_and_go_leave_no_backlog() -> None:
    t = trade(update_interval=1.0)
    t.upsert("trade", rows(("a", 0.0)), 0.0)
    for i in range(1000):
        t.subscribe(f"s{i}", "trade", {"ccyPair": "a"}, float(i))
        t.upsert("trade", rows(("a", float(i + 1))), float(i))
        t.unsubscribe(f"s{i}")
    assert len(t._heap) <= 2 * t.subscriptions + 65
    assert t.next_deadline() is None and t.due(1e9) == []


def test_an_upsert_touches_the_matching_subscriptions_only() -> None:
    class Counting(dict[str, Any]):
        reads = 0

        def __getitem__(self, key: str) -> Any:
            Counting.reads += 1
            return super().__getitem__(key)

    t = trade(update_interval=1.0)
    for i in range(2000):
        t.subscribe(f"s{i}", "quote", {"sym": f"sym{i}", "venue": [1, 2]}, 0.0)
    t.subscribe("all", "quote", {}, 0.0)
    t.subscribe("trades", "trade", {}, 0.0)
    t._subs = Counting(t._subs)
    t.upsert("quote", [{"sym": "sym7", "venue": 2, "bid": 1.0, "ask": 1.0, "live": True}], 0.0)
    assert Counting.reads == 2  # "all" and "s7"
    assert dict(t.due(1.0)).keys() == {"all", "s7"}


# --------------------------------------------------------------------------- hypothesis

SYMS = ["a", "b", "c", "d"]
VENUES = [1, 2, 3]


def one_or_many(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1))


filters = st.fixed_dictionaries(
    {}, optional={"sym": one_or_many(SYMS), "venue": one_or_many(VENUES)}
)
quote_rows = st.lists(
    st.fixed_dictionaries(
        {
            "sym": st.sampled_from(SYMS),
            "venue": st.sampled_from(VENUES),
            "bid": st.sampled_from([1.0, 2.0]),
            "ask": st.sampled_from([1.0, 2.0]),
            "live": st.booleans(),
        }
    ),
    max_size=6,
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("sub"), st.integers(0, 5), filters),
        st.tuples(st.just("unsub"), st.integers(0, 5)),
        st.tuples(st.just("upsert"), quote_rows),
        st.tuples(st.just("due")),
    ),
    max_size=40,
)


def matches(filter: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    for column, wanted in filter.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if row[column] not in values:
            return False
    return True


def as_columns(found: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {c: [row[c] for row in found] for c in ("sym", "venue", "bid", "ask", "live")}


@settings(max_examples=300, deadline=None)
@given(ops, st.lists(filters, max_size=5))
def test_the_index_delivers_exactly_what_a_brute_force_model_does(
    steps: list[tuple[Any, ...]], snaps: list[dict[str, Any]]
) -> None:
    t = trade(update_interval=5.0)
    table: dict[tuple[str, int], dict[str, Any]] = {}
    subs: dict[str, tuple[dict[str, Any], dict[tuple[str, int], None]]] = {}
    now = 0.0
    for step in steps:
        now += 1.0
        if step[0] == "sub":
            sid = f"s{step[1]}"
            if sid in subs:
                continue
            t.subscribe(sid, "quote", step[2], now)
            subs[sid] = (step[2], {})
        elif step[0] == "unsub":
            sid = f"s{step[1]}"
            assert t.unsubscribe(sid) == (subs.pop(sid, None) is not None)
        elif step[0] == "upsert":
            batch: dict[tuple[str, int], dict[str, Any]] = {}
            for row in step[1]:
                batch[row["sym"], row["venue"]] = row
            changed = [key for key, row in batch.items() if table.get(key) != row]
            assert t.upsert("quote", step[1], now) == len(changed)
            for key in changed:
                table[key] = batch[key]
                for filter, pending in subs.values():
                    if matches(filter, table[key]):
                        pending.setdefault(key)
        else:
            now += 1000.0  # past every subscription's next grid point
            expected = {
                sid: as_columns([table[key] for key in pending])
                for sid, (_, pending) in subs.items()
                if pending
            }
            got = t.due(now)
            assert dict(got) == expected
            assert len(got) == len(expected)
            for _, pending in subs.values():
                pending.clear()
            assert t.next_deadline() is None
    for filter in snaps:
        assert t.snapshot("quote", filter) == as_columns(
            [row for row in table.values() if matches(filter, row)]
        )


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.1, 10.0),
    st.lists(st.tuples(st.floats(0.0, 30.0), st.integers(0, 2), st.sampled_from(SYMS[:2]))),
)
def test_updates_keep_the_interval_and_come_within_one_interval_of_a_change(
    interval: float, events: list[tuple[float, int, str]]
) -> None:
    """Driven as the gateway drives it (``due`` at each ``next_deadline``): every change
    reaches each matching subscription once, no later than one interval after it, and two
    updates of one subscription are at least an interval apart."""
    t = trade(update_interval=interval)
    starts = {"s0": 0.0, "s1": 0.7, "s2": 3.3}
    for sid, start in starts.items():
        t.subscribe(sid, "trade", {"ccyPair": "a"} if sid == "s2" else {}, start)
    sent: dict[str, list[float]] = {sid: [] for sid in starts}
    waiting: dict[str, list[float]] = {sid: [] for sid in starts}  # change times not yet sent
    now = 3.3
    value = 0.0

    def run_until(moment: float) -> None:
        while (deadline := t.next_deadline()) is not None and deadline <= moment:
            for sid, _ in t.due(deadline):
                for changed_at in waiting[sid]:
                    assert changed_at <= deadline <= changed_at + interval * (1 + 1e-9)
                waiting[sid].clear()
                sent[sid].append(deadline)

    for dt, _, sym in sorted(events):
        moment = max(now, 3.3 + dt)
        run_until(moment)
        now = moment
        value += 1.0
        t.upsert("trade", [{"ccyPair": sym, "val": value}], now)
        for sid in starts:
            if sid != "s2" or sym == "a":
                waiting[sid].append(now)
    run_until(math.inf)
    for sid, times in sent.items():
        assert not waiting[sid]
        assert all(b - a >= interval * (1 - 1e-9) for a, b in itertools.pairwise(times))
        assert all(s > starts[sid] for s in times)
