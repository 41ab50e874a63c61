"""The synthetic price generator: deterministic per seed, well-formed quotes and trades."""

from __future__ import annotations

import pytest
from actorwire.pipelines.synthetic import SyntheticPrices
from hypothesis import given
from hypothesis import strategies as st

FIELDS = {"symbol", "bid", "ask", "last", "volume", "timestamp"}


class TestDeterminism:
    def test_same_seed_gives_the_same_records(self) -> None:
        a = SyntheticPrices(["X", "Y"], seed=7).next_batch(500)
        b = SyntheticPrices(["X", "Y"], seed=7).next_batch(500)
        assert a == b

    def test_known_first_records_for_seed_zero(self) -> None:
        # Pinned so that a change to the walk is a visible, deliberate change.
        assert SyntheticPrices(["X"], seed=0).next_batch(2) == [
            {
                "symbol": "X",
                "bid": 100.1094,
                "ask": 100.1294,
                "last": 100.1245,
                "volume": 421,
                "timestamp": 1_700_000_000.0,
            },
            {
                "symbol": "X",
                "bid": 100.0258,
                "ask": 100.0458,
                "last": 100.036,
                "volume": 405,
                "timestamp": 1_700_000_000.001,
            },
        ]

    def test_different_seeds_differ(self) -> None:
        a = SyntheticPrices(3, seed=1).next_batch(50)
        b = SyntheticPrices(3, seed=2).next_batch(50)
        assert [r["last"] for r in a] != [r["last"] for r in b]

    @given(st.lists(st.integers(0, 40), max_size=8))
    def test_batch_sizes_do_not_change_the_sequence(self, sizes: list[int]) -> None:
        whole = SyntheticPrices(3, seed=5).next_batch(sum(sizes))
        gen = SyntheticPrices(3, seed=5)
        parts = [r for n in sizes for r in gen.next_batch(n)]
        assert parts == whole
        assert gen.count == sum(sizes)


class TestRecords:
    def test_fields_and_symbol_cycle(self) -> None:
        gen = SyntheticPrices(3)
        assert gen.symbols == ["SYM000", "SYM001", "SYM002"]
        recs = gen.next_batch(7)
        assert all(set(r) == FIELDS for r in recs)
        assert [r["symbol"] for r in recs] == [*gen.symbols, *gen.symbols, "SYM000"]

    def test_timestamp_is_now_when_given(self) -> None:
        recs = SyntheticPrices(2).next_batch(3, now=1234.5)
        assert [r["timestamp"] for r in recs] == [1234.5] * 3

    def test_derived_timestamps_advance_per_record(self) -> None:
        gen = SyntheticPrices(2, start_time=100.0, interval=0.5)
        gen.next_batch(2)
        assert [r["timestamp"] for r in gen.next_batch(3)] == [101.0, 101.5, 102.0]

    def test_prices_walk(self) -> None:
        recs = SyntheticPrices(["X"], volatility=0.01).next_batch(100)
        assert len({r["last"] for r in recs}) > 50

    def test_start_price_per_symbol(self) -> None:
        gen = SyntheticPrices(["A", "B"], start_price={"A": 10.0, "B": 1000.0}, volatility=0)
        a, b = gen.next_batch(2)
        assert a["bid"] <= 10.0 <= a["ask"]
        assert b["bid"] <= 1000.0 <= b["ask"]

    def test_zero_n_is_empty(self) -> None:
        assert SyntheticPrices(1).next_batch(0) == []

    @given(
        st.integers(0, 2**32),
        st.sampled_from([0.0, 0.001, 0.05, 0.5]),
        st.sampled_from([0.0, 0.0002, 0.01, 0.5]),
        st.sampled_from([None, 0, 2, 4]),
        st.floats(min_value=0.001, max_value=1e6),
        st.integers(1, 10_000),
    )
    def test_quotes_are_ordered_positive_and_volumes_integers(
        self,
        seed: int,
        volatility: float,
        spread: float,
        decimals: int | None,
        start: float,
        max_volume: int,
    ) -> None:
        gen = SyntheticPrices(
            ["A", "B"],
            seed=seed,
            start_price=start,
            volatility=volatility,
            spread=spread,
            decimals=decimals,
            max_volume=max_volume,
        )
        for r in gen.next_batch(200):
            assert 0 < r["bid"] <= r["last"] <= r["ask"]
            assert type(r["volume"]) is int
            assert 1 <= r["volume"] <= max_volume
            if decimals is not None:
                assert round(r["last"], decimals) == r["last"]


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            ({"symbols": 0}, ValueError, "symbols must be >= 1"),
            ({"symbols": []}, ValueError, "symbols must be non-empty names"),
            ({"symbols": ["A", "A"]}, ValueError, "symbols must be distinct"),
            ({"symbols": "ABC"}, TypeError, "symbols must be a list of names or a count"),
            ({"symbols": 2, "seed": 1.5}, TypeError, "seed must be an int"),
            ({"symbols": 2, "start_price": 0}, ValueError, "start_price must be finite and > 0"),
            ({"symbols": ["A"], "start_price": {"B": 1.0}}, ValueError, "no price for"),
            ({"symbols": 2, "volatility": -1}, ValueError, "volatility must be finite and >= 0"),
            ({"symbols": 2, "spread": 3}, ValueError, "spread must be < 2"),
            ({"symbols": 2, "max_volume": 0}, ValueError, "max_volume must be an integer >= 1"),
            ({"symbols": 2, "decimals": 20}, ValueError, "decimals must be None or 0..12"),
        ],
    )
    def test_bad_parameters_name_the_value(
        self, kwargs: dict[str, object], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            SyntheticPrices(**kwargs)  # type: ignore[arg-type]

    def test_bad_n(self) -> None:
        with pytest.raises(ValueError, match="n must be an integer >= 0"):
            SyntheticPrices(1).next_batch(-1)
