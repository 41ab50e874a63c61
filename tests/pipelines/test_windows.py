"""Window assignment, aggregations and the tumbling/sliding window operators."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from actorwire.pipelines.operators import (
    KEY_FIELD,
    SlidingWindow,
    TumblingWindow,
    make_operator,
)
from actorwire.pipelines.windows import (
    AGGREGATIONS,
    Count,
    Max,
    Mean,
    Min,
    Ohlc,
    Sum,
    Vwap,
    Windowing,
    event_seconds,
    make_aggregation,
    make_aggregations,
)
from hypothesis import given
from hypothesis import strategies as st


def trade(symbol: str, last: float, volume: int = 1, ts: Any = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"symbol": symbol, "last": last, "volume": volume}
    if ts is not None:
        rec["timestamp"] = ts
    return rec


class TestWindowing:
    def test_tumbling_span_is_one_window(self) -> None:
        w = Windowing(60)
        assert w.span(125.0) == (2, 2)
        assert (w.start(2), w.end(2)) == (120.0, 180.0)
        assert w.span(120.0) == (2, 2)
        assert w.span(-1.0) == (-1, -1)

    def test_sliding_span_covers_every_window_holding_t(self) -> None:
        w = Windowing(60, 15)
        first, last = w.span(125.0)
        assert (first, last) == (5, 8)
        for k in range(first, last + 1):
            assert w.start(k) <= 125.0 < w.end(k)
        assert not w.start(first - 1) <= 125.0 < w.end(first - 1)
        assert not w.start(last + 1) <= 125.0 < w.end(last + 1)

    def test_bounds_are_tidy_for_decimal_sizes(self) -> None:
        w = Windowing(0.1)
        assert (w.start(3), w.end(3)) == (0.3, 0.4)

    def test_bad_sizes_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="slide must be <= size"):
            Windowing(10, 20)
        with pytest.raises(ValueError, match="size must be a finite number of seconds > 0"):
            Windowing(0)
        with pytest.raises(TypeError, match="size must be a number of seconds"):
            Windowing("1m")  # type: ignore[arg-type]

    @given(
        st.floats(min_value=-1e9, max_value=2e9, allow_nan=False),
        st.sampled_from([(1.0, None), (0.1, None), (60.0, 15.0), (0.3, 0.1), (7.0, 3.0)]),
    )
    def test_a_time_is_never_late_for_its_own_windows(
        self, t: float, shape: tuple[float, float | None]
    ) -> None:
        w = Windowing(*shape)
        first, last = w.span(t)
        assert first <= last
        assert w.first_open(t) == first
        assert t < w.boundary(first)
        # A watermark at a window's boundary closes it, and not a moment before.
        for k in (first, last):
            assert w.first_open(w.boundary(k)) == k + 1
            assert w.first_open(math.nextafter(w.boundary(k), -math.inf)) == k
            assert w.boundary(k) == pytest.approx(w.end(k), abs=1e-9)


class TestEventSeconds:
    def test_numbers(self) -> None:
        assert event_seconds(1700000000) == 1700000000.0
        assert event_seconds(1.5) == 1.5
        assert event_seconds(" 12.25 ") == 12.25

    def test_iso_8601(self) -> None:
        assert event_seconds("1970-01-01T00:01:00Z") == 60.0
        assert event_seconds("1970-01-01T01:00:00+01:00") == 0.0
        assert event_seconds("1970-01-01T00:00:01.5") == 1.5  # no offset: UTC
        assert event_seconds(datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)) == 2.0

    def test_bad_values_name_the_value(self) -> None:
        with pytest.raises(ValueError, match=r"epoch seconds or an ISO-8601 string, got 'soon'"):
            event_seconds("soon")
        with pytest.raises(TypeError, match="got True"):
            event_seconds(True)
        with pytest.raises(TypeError, match="got None"):
            event_seconds(None)


class TestAggregations:
    RECORDS = (
        {"last": 10.0, "volume": 1},
        {"last": 12.0, "volume": 3},
        {"last": 9.0, "volume": 2},
        {"last": 11.0, "volume": 4},
    )

    def fold(self, agg: Any) -> dict[str, Any]:
        agg = agg.fresh()
        for r in self.RECORDS:
            agg.add(r)
        return dict(agg.result())

    def test_ohlc(self) -> None:
        assert self.fold(Ohlc()) == {
            "open": 10.0,
            "high": 12.0,
            "low": 9.0,
            "close": 11.0,
            "volume": 10,
        }
        assert "volume" not in self.fold(Ohlc(volume=None))

    def test_vwap(self) -> None:
        assert self.fold(Vwap()) == {"vwap": pytest.approx((10 + 36 + 18 + 44) / 10)}
        empty = Vwap()
        empty.add({"last": 5.0, "volume": 0})
        assert empty.result() == {"vwap": None}

    def test_vwap_stays_within_the_traded_prices(self) -> None:
        # 99.4008 * 1 + 99.4008 * 10, divided by 11, is 99.40080000000002 in floats.
        one_price = Vwap()
        for volume in (1, 10):
            one_price.add({"last": 99.4008, "volume": volume})
        assert one_price.result() == {"vwap": 99.4008}

    def test_count_sum_mean_min_max(self) -> None:
        assert self.fold(Count()) == {"count": 4}
        assert self.fold(Sum("volume")) == {"sum_volume": 10}
        assert self.fold(Mean("last")) == {"mean_last": 10.5}
        assert self.fold(Min("last")) == {"min_last": 9.0}
        assert self.fold(Max("last", output="top")) == {"top": 12.0}

    def test_fresh_is_empty_with_the_same_parameters(self) -> None:
        agg = Sum("volume", output="v")
        agg.add({"volume": 5})
        assert agg.fresh().result() == {"v": 0}

    def test_registry_names(self) -> None:
        assert set(AGGREGATIONS) == {"ohlc", "vwap", "count", "sum", "mean", "min", "max"}

    def test_make_aggregation_from_name_table_and_instance(self) -> None:
        assert isinstance(make_aggregation("ohlc"), Ohlc)
        made = make_aggregation({"kind": "max", "field": "last"})
        assert made.fields() == ("max_last",)
        inst = Count()
        assert make_aggregation(inst) is not inst

    def test_unknown_aggregation_suggests(self) -> None:
        with pytest.raises(ValueError, match=r"unknown aggregation 'vwapp'; did you mean 'vwap'"):
            make_aggregation("vwapp")

    def test_missing_and_unknown_parameters(self) -> None:
        with pytest.raises(TypeError, match=r"aggregation 'sum': missing parameter 'field'"):
            make_aggregation("sum")
        with pytest.raises(TypeError, match=r"aggregation 'ohlc': unknown parameter 'prce'"):
            make_aggregation({"kind": "ohlc", "prce": "bid"})
        with pytest.raises(ValueError, match="needs a 'kind'"):
            make_aggregation({"field": "x"})

    def test_output_clashes_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="writes field 'volume', already written by"):
            make_aggregations("w", ["ohlc", {"kind": "sum", "field": "x", "output": "volume"}])
        with pytest.raises(ValueError, match="writes field 'key'"):
            make_aggregations("w", [{"kind": "count", "output": "key"}])
        with pytest.raises(ValueError, match="at least one"):
            make_aggregations("w", [])


class TestTumblingArrivalTime:
    def test_rows_per_key_close_when_now_reaches_the_end(self) -> None:
        op = TumblingWindow(1.0, ["count", {"kind": "sum", "field": "volume"}], key="symbol")
        assert op.on_record(trade("A", 1.0, 2), 10.1) == []
        assert op.on_record(trade("B", 1.0, 5), 10.5) == []
        assert op.on_record(trade("A", 1.0, 3), 10.9) == []
        assert op.next_deadline() == 11.0
        assert op.on_tick(10.99) == []
        rows = op.on_tick(11.0)
        assert rows == [
            {"key": "A", "window_start": 10.0, "window_end": 11.0, "count": 2, "sum_volume": 5},
            {"key": "B", "window_start": 10.0, "window_end": 11.0, "count": 1, "sum_volume": 5},
        ]
        assert op.next_deadline() is None
        assert op.stats() == {"late": 0, "emitted": 2}

    def test_a_record_in_a_later_window_closes_the_earlier_ones(self) -> None:
        op = TumblingWindow(1.0, "count", key="symbol")
        op.on_record(trade("A", 1.0), 0.5)
        op.on_record(trade("A", 1.0), 0.7)
        rows = op.on_record(trade("A", 1.0), 1.5)
        assert [(r["window_start"], r["count"]) for r in rows] == [(0.0, 2)]
        rows = op.on_record(trade("A", 1.0), 3.2)  # no tick came at 2.0: closed now
        assert [(r["window_start"], r["count"]) for r in rows] == [(1.0, 1)]
        assert op.flush(3.3) == [
            {"key": "A", "window_start": 3.0, "window_end": 4.0, "count": 1},
        ]

    def test_without_a_key_uses_the_key_by_field(self) -> None:
        op = TumblingWindow(1.0, "count")
        op.on_record({KEY_FIELD: "X"}, 0.1)
        op.on_record({"other": 1}, 0.2)
        assert [(r["key"], r["count"]) for r in op.flush(0.3)] == [("X", 1), (None, 1)]

    def test_lateness_and_idle_need_event_time(self) -> None:
        with pytest.raises(ValueError, match="allowed_lateness applies to event time only"):
            TumblingWindow(1.0, allowed_lateness=1.0)
        with pytest.raises(ValueError, match="idle_timeout applies to event time only"):
            TumblingWindow(1.0, idle_timeout=1.0)


class TestTumblingEventTime:
    def test_windows_close_on_the_watermark_of_event_time(self) -> None:
        op = TumblingWindow(60, "ohlc", key="symbol", time_field="timestamp")
        assert op.on_record(trade("A", 10.0, 1, ts=0), 500.0) == []
        assert op.on_record(trade("A", 12.0, 2, ts=30), 500.0) == []
        assert op.on_record(trade("A", 11.0, 3, ts=59.9), 500.0) == []
        assert op.on_tick(10_000.0) == []  # processing time alone never closes event windows
        assert op.next_deadline() is None
        rows = op.on_record(trade("A", 13.0, 1, ts=60), 500.0)
        assert rows == [
            {
                "key": "A",
                "window_start": 0.0,
                "window_end": 60.0,
                "open": 10.0,
                "high": 12.0,
                "low": 10.0,
                "close": 11.0,
                "volume": 6,
            }
        ]

    def test_iso_timestamps(self) -> None:
        op = TumblingWindow(60, "count", key="symbol", time_field="ts")
        op.on_record({"symbol": "A", "ts": "2024-01-02T03:04:05Z"}, 0.0)
        [row] = op.flush(0.0)
        start = datetime(2024, 1, 2, 3, 4, tzinfo=UTC).timestamp()
        assert (row["window_start"], row["window_end"]) == (start, start + 60)

    def test_late_events_are_counted_and_dropped(self) -> None:
        op = TumblingWindow(10, "count", key="symbol", time_field="timestamp")
        op.on_record(trade("A", 1.0, ts=5), 0.0)
        op.on_record(trade("A", 1.0, ts=25), 0.0)  # closes [0, 10) and [10, 20)
        assert op.on_record(trade("A", 1.0, ts=9), 0.0) == []
        assert op.on_record(trade("A", 1.0, ts=15), 0.0) == []  # never opened, still late
        assert op.stats()["late"] == 2
        assert [r["count"] for r in op.flush(0.0)] == [1]

    def test_allowed_lateness_keeps_windows_open(self) -> None:
        op = TumblingWindow(10, "count", key="symbol", time_field="timestamp", allowed_lateness=5)
        op.on_record(trade("A", 1.0, ts=5), 0.0)
        assert op.on_record(trade("A", 1.0, ts=12), 0.0) == []
        assert op.on_record(trade("A", 1.0, ts=8), 0.0) == []  # late by 4 s: accepted
        rows = op.on_record(trade("A", 1.0, ts=15), 0.0)
        assert [(r["window_start"], r["count"]) for r in rows] == [(0.0, 2)]
        assert op.stats()["late"] == 0

    def test_idle_timeout_closes_windows_of_a_quiet_feed(self) -> None:
        op = TumblingWindow(10, "count", key="symbol", time_field="timestamp", idle_timeout=2)
        op.on_record(trade("A", 1.0, ts=1009), 100.0)
        # Idle for 2 s, and event time, carried on by processing time, past 1010.
        assert op.next_deadline() == 102.0
        assert op.on_tick(101.9) == []
        [row] = op.on_tick(102.0)
        assert (row["window_start"], row["count"]) == (1000.0, 1)
        assert op.next_deadline() is None

    def test_idle_timeout_waits_for_the_window_end(self) -> None:
        op = TumblingWindow(60, "count", key="symbol", time_field="timestamp", idle_timeout=2)
        op.on_record(trade("A", 1.0, ts=1201), 100.0)
        assert op.next_deadline() == 159.0
        assert op.on_tick(158.0) == []
        assert len(op.on_tick(159.0)) == 1

    def test_a_failing_record_loses_no_rows_that_were_due(self) -> None:
        op = TumblingWindow(10, "ohlc", key="symbol", time_field="timestamp")
        op.on_record(trade("A", 1.0, ts=1), 0.0)
        with pytest.raises(KeyError):
            op.on_record({"symbol": "A", "timestamp": 15}, 0.0)  # no price
        with pytest.raises(ValueError, match="ISO-8601"):
            op.on_record({"symbol": "A", "timestamp": "later", "last": 1.0, "volume": 1}, 0.0)
        rows = op.on_record(trade("A", 2.0, ts=16), 0.0)
        assert [(r["window_start"], r["close"]) for r in rows] == [(0.0, 1.0)]
        with pytest.raises(KeyError):
            op.on_record({"symbol": "B", "timestamp": 17, "volume": 1}, 0.0)  # a new key
        assert [(r["key"], r["close"]) for r in op.flush(0.0)] == [("A", 2.0)]

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["A", "B", "C"]),
                st.floats(min_value=0.0, max_value=300.0),
                st.floats(min_value=0.01, max_value=1000.0),
                st.integers(1, 500),
            ),
            max_size=60,
        ),
        st.sampled_from([1.0, 7.5, 60.0]),
    )
    def test_ohlc_and_vwap_equal_a_straightforward_recomputation(
        self, trades: list[tuple[str, float, float, int]], size: float
    ) -> None:
        trades.sort(key=lambda t: t[1])
        op = TumblingWindow(size, ["ohlc", "vwap", "count"], key="symbol", time_field="ts")
        rows = []
        for sym, ts, price, vol in trades:
            rows += op.on_record({"symbol": sym, "ts": ts, "last": price, "volume": vol}, 0.0)
        rows += op.flush(0.0)
        expected: dict[tuple[str, float], list[tuple[float, int]]] = defaultdict(list)
        for sym, ts, price, vol in trades:
            expected[(sym, round(ts // size * size, 9))].append((price, vol))
        got = {(r["key"], r["window_start"]): r for r in rows}
        assert len(got) == len(rows) == len(expected)
        assert op.stats() == {"late": 0, "emitted": len(rows)}
        for (sym, start), ticks in expected.items():
            row = got[(sym, start)]
            prices = [p for p, _ in ticks]
            assert row["window_end"] == pytest.approx(start + size)
            assert (row["open"], row["close"]) == (prices[0], prices[-1])
            assert (row["high"], row["low"]) == (max(prices), min(prices))
            assert row["volume"] == sum(v for _, v in ticks)
            assert row["count"] == len(ticks)
            assert row["vwap"] == pytest.approx(sum(p * v for p, v in ticks) / row["volume"])
        starts = [r["window_start"] for r in rows]
        assert starts == sorted(starts)  # rows come out window by window

    @given(
        st.lists(st.floats(min_value=0.0, max_value=100.0), max_size=60),
        st.floats(min_value=0.0, max_value=20.0),
    )
    def test_every_event_is_counted_once_or_late(self, times: list[float], lateness: float) -> None:
        op = TumblingWindow(5, "count", time_field="t", allowed_lateness=lateness)
        rows = []
        for t in times:
            rows += op.on_record({"t": t}, 0.0)
        rows += op.flush(0.0)
        assert sum(r["count"] for r in rows) + op.stats()["late"] == len(times)
        assert op.next_deadline() is None
        assert op.flush(0.0) == []
        # An event is late only if it is more than allowed_lateness behind the newest before it.
        newest = -math.inf
        late = 0
        for t in times:
            if t // 5 < (newest - lateness) // 5:  # its window ended before the watermark
                late += 1
            newest = max(newest, t)
        assert op.stats()["late"] == late


class TestSliding:
    def test_a_record_falls_in_every_window_covering_it(self) -> None:
        op = SlidingWindow(10, 5, "count", key="symbol")
        op.on_record(trade("A", 1.0), 7.0)  # windows [0, 10) and [5, 15)
        op.on_record(trade("A", 1.0), 12.0)  # [5, 15) and [10, 20); closes [0, 10)
        assert op.on_tick(15.0) == [
            {"key": "A", "window_start": 5.0, "window_end": 15.0, "count": 2},
        ]
        assert [(r["window_start"], r["count"]) for r in op.flush(15.0)] == [(10.0, 1)]

    def test_first_rows_close_on_the_record_that_passes_them(self) -> None:
        op = SlidingWindow(10, 5, "count", key="symbol", time_field="ts")
        op.on_record({"symbol": "A", "ts": 7}, 0.0)
        rows = op.on_record({"symbol": "A", "ts": 12}, 0.0)
        assert [(r["window_start"], r["count"]) for r in rows] == [(0.0, 1)]

    def test_late_only_when_every_covering_window_has_closed(self) -> None:
        op = SlidingWindow(10, 5, "count", key="symbol", time_field="ts")
        op.on_record({"symbol": "A", "ts": 21}, 0.0)  # closes windows ending <= 21
        assert op.on_record({"symbol": "A", "ts": 14}, 0.0) == []  # [5, 15), [10, 20) closed
        assert op.stats()["late"] == 1
        op.on_record({"symbol": "A", "ts": 16}, 0.0)  # [10, 20) closed, [15, 25) open
        assert op.stats()["late"] == 1
        rows = op.flush(0.0)
        assert [(r["window_start"], r["count"]) for r in rows] == [(15.0, 2), (20.0, 1)]

    def test_bad_slide(self) -> None:
        with pytest.raises(ValueError, match="sliding_window: slide must be <= size"):
            make_operator("sliding_window", size=5, slide=10)

    @given(
        st.lists(st.floats(min_value=0.0, max_value=50.0), max_size=40),
        st.sampled_from([(10.0, 5.0), (10.0, 2.5), (6.0, 4.0), (3.0, 3.0)]),
    )
    def test_counts_equal_a_brute_force_count(
        self, times: list[float], shape: tuple[float, float]
    ) -> None:
        size, slide = shape
        times.sort()
        op = SlidingWindow(size, slide, "count", time_field="t")
        rows = []
        for t in times:
            rows += op.on_record({"t": t}, 0.0)
        rows += op.flush(0.0)
        expected: dict[float, int] = defaultdict(int)
        for t in times:
            k0 = math.floor(t / slide)
            for k in range(k0 - math.ceil(size / slide) - 1, k0 + 2):
                if k * slide <= t < k * slide + size:  # sizes here are exact in binary
                    expected[k * slide] += 1
        assert {(r["window_start"], r["count"]) for r in rows} == set(expected.items())
        assert op.stats()["late"] == 0


class TestDefinitionStyle:
    def test_windows_from_make_operator_with_ohlc_and_vwap(self) -> None:
        op = make_operator(
            "tumbling_window",
            size=1,
            key="symbol",
            time_field="timestamp",
            aggregations=["ohlc", "vwap", {"kind": "max", "field": "ask"}],
        )
        op.on_record({"symbol": "A", "timestamp": 0.5, "last": 1.0, "ask": 1.1, "volume": 2}, 0)
        [row] = op.flush(0)
        assert row == {
            "key": "A",
            "window_start": 0.0,
            "window_end": 1.0,
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
            "volume": 2,
            "vwap": 1.0,
            "max_ask": 1.1,
        }

    def test_bad_aggregation_names_the_operator(self) -> None:
        with pytest.raises(ValueError, match=r"tumbling_window: unknown aggregation 'ohcl'"):
            make_operator("tumbling_window", size=1, aggregations="ohcl")
