"""The live view: the model with a fake clock, what render draws, and the view's thread."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from actorwire.pipelines.liveview import (
    LatestRecords,
    LiveModel,
    LiveView,
    format_time,
    render,
)
from actorwire.pipelines.metrics import Health, Snapshot
from rich.console import Console

from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(20)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def snap(
    prices: int = 0,
    state: str = "CONNECTED",
    latest: tuple[Mapping[str, Any], ...] = (),
    **extra: Any,
) -> Snapshot:
    """A keysquare-like pipeline: a push source (counts ``emitted``) holding a link, a
    window, and a publish sink holding another link (counts ``received``)."""
    return Snapshot(
        "quickstart",
        stages={
            "prices": {
                "received": 0,
                "emitted": prices,
                "source_reconnects": 2,
                "source_gaps": 3,
                "source_missed": 1,
            },
            "bars": {"received": prices, "emitted": prices // 10, "op_late": 0},
            "publish": {"received": prices * 2, "sink_reconnects": 1},
        },
        links={"prices": state, "publish": "CONNECTED"},
        latest=latest,
        **extra,
    )


def bar(key: str, start: float, close: float) -> dict[str, Any]:
    return {
        "key": key,
        "window_start": start,
        "window_end": start + 1.0,
        "open": 100.0,
        "high": 101.5,
        "low": 99.25,
        "close": close,
        "volume": 700,
        "vwap": 100.123456,
    }


def text_of(model: LiveModel) -> str:
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(render(model))
    return console.export_text()


# -- the model ----------------------------------------------------------------------------


def test_rate_is_records_per_second_over_the_window() -> None:
    model = LiveModel(rate_window=2.0)
    model.feed(snap(0), now=10.0)
    assert model.rate("prices") is None  # one snapshot: no rate yet
    model.feed(snap(50), now=10.5)
    assert model.rate("prices") == pytest.approx(100.0)
    assert model.rate("publish") == pytest.approx(200.0)  # a sink counts what it received
    model.feed(snap(150), now=11.0)
    model.feed(snap(250), now=12.0)
    model.feed(snap(250), now=13.0)
    # The window runs back to the newest snapshot at or before 13.0 - 2.0 = 11.0.
    assert model.rate("prices") == pytest.approx((250 - 150) / 2.0)
    model.feed(snap(250), now=15.5)
    assert model.rate("prices") == pytest.approx(0.0)
    [prices, publish] = sorted(model.links(), key=lambda link: link.name)
    assert prices.rate == pytest.approx(0.0) and publish.name == "publish"


def test_counters_that_go_back_start_the_rate_again() -> None:
    model = LiveModel()
    model.feed(snap(100), now=1.0)
    model.feed(snap(200), now=2.0)
    model.feed(snap(10), now=3.0)  # another run on the same port: counters from 0
    assert model.rate("prices") is None
    model.feed(snap(30), now=4.0)
    assert model.rate("prices") == pytest.approx(20.0)


def test_lag_is_the_time_since_the_link_last_moved() -> None:
    model = LiveModel()
    model.feed(snap(5), now=100.0)
    link = {v.name: v for v in model.links()}["prices"]
    assert link.lag == 0.0 and link.lag_at_least  # nothing seen moving yet
    model.feed(snap(5), now=103.0)
    link = {v.name: v for v in model.links()}["prices"]
    assert link.lag == pytest.approx(3.0) and link.lag_at_least
    model.feed(snap(9), now=104.0)
    model.feed(snap(9), now=106.5)
    link = {v.name: v for v in model.links()}["prices"]
    assert link.lag == pytest.approx(2.5) and not link.lag_at_least


def test_a_lag_the_component_reports_wins() -> None:
    model = LiveModel()
    snapshot = snap(5)
    stages = {**snapshot.stages, "prices": {**snapshot.stages["prices"], "source_lag_ms": 1500}}
    model.feed(Snapshot("p", stages=stages, links={"prices": "CONNECTED"}), now=1.0)
    [link] = model.links()
    assert link.lag == pytest.approx(1.5) and not link.lag_at_least


def test_reconnects_gaps_and_missed_come_from_component_stats() -> None:
    model = LiveModel()
    model.feed(snap(0, state="RECONNECTING"), now=0.0)
    links = {v.name: v for v in model.links()}
    assert (links["prices"].state, links["prices"].reconnects) == ("RECONNECTING", 2)
    assert (links["prices"].gaps, links["prices"].missed) == (3, 1)
    assert (links["publish"].reconnects, links["publish"].gaps) == (1, 0)
    assert links["publish"].missed is None  # the sink keeps no such counter
    assert [s.name for s in model.stages()] == ["prices", "bars", "publish"]


def test_health_uptime_and_phase() -> None:
    model = LiveModel()
    model.feed(snap(0, state="FAILED"), now=50.0)
    assert model.healthy is False and model.reason == "link prices is FAILED"
    model.feed(snap(0), now=53.0)
    assert model.healthy is True and model.reason is None
    assert model.uptime == pytest.approx(3.0)  # since the first snapshot when not reported
    assert not model.uptime_reported
    model.feed(snap(0, uptime=42.0, phase="stopping"), now=54.0)
    assert model.uptime == 42.0 and model.uptime_reported
    assert model.phase == "stopping" and model.healthy is False
    reported = Health(False, {"status": "unhealthy", "reason": "pipeline failed: boom"})
    model.feed(snap(0), now=55.0, status=reported)
    assert model.healthy is False and model.reason == "pipeline failed: boom"
    model.mark_unreachable("connection refused")
    assert model.unreachable == "connection refused"
    model.feed(snap(0), now=56.0)
    assert model.unreachable is None


def test_bars_keep_the_latest_per_key_with_their_time() -> None:
    model = LiveModel(max_rows=2)
    model.feed(snap(0, latest=(bar("MSFT", T0, 1.0), bar("AAPL", T0, 2.0))), now=0.0)
    model.feed(snap(0, latest=(bar("AAPL", T0 + 1, 3.0),)), now=1.0)
    rows = model.bars()
    assert [(r.key, r.record["close"]) for r in rows] == [("AAPL", 3.0), ("MSFT", 1.0)]
    assert rows[0].time == "22:13:21-22:13:22"
    model.feed(snap(0, latest=(bar("GOOG", T0, 4.0),)), now=2.0)
    assert [r.key for r in model.bars()] == ["AAPL", "GOOG"]  # MSFT was the stalest
    assert model.bar_columns() == ["open", "high", "low", "close", "volume", "vwap"]


def test_rows_without_bar_fields_show_their_own_fields_and_time_field() -> None:
    model = LiveModel(key_field="symbol", time_field="at")
    model.add_rows([{"symbol": "AAPL", "at": T0 * 1000, "price": 1.5, "size": 3}])
    [row] = model.bars()
    assert (row.key, row.time) == ("AAPL", "22:13:20")
    assert model.bar_columns() == ["price", "size"]  # "at" is the time column
    auto = LiveModel()
    auto.add_rows([{"symbol": "X", "timestamp": T0, "price": 2}, "not a record"])  # type: ignore[list-item]
    assert [(r.key, r.time) for r in auto.bars()] == [("X", "22:13:20")]
    assert auto.bar_columns() == ["price"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (T0, "22:13:20"),
        (T0 * 1e3, "22:13:20"),
        (int(T0 * 1e6), "22:13:20"),
        (int(T0 * 1e9), "22:13:20"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "03:04:05"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))), "01:04:05"),
        ("12:00", "12:00"),
        (None, ""),
        (float("nan"), "nan"),
    ],
)
def test_format_time(value: Any, text: str) -> None:
    assert format_time(value) == text


def test_model_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_rows must be an integer >= 1, got 0"):
        LiveModel(max_rows=0)
    with pytest.raises(ValueError, match="rate_window must be > 0 seconds, got -1"):
        LiveModel(rate_window=-1)


def test_latest_records_keeps_the_latest_per_key() -> None:
    latest = LatestRecords(key="key", max_rows=2)
    for record in (bar("A", T0, 1.0), bar("B", T0, 2.0), bar("A", T0 + 1, 3.0), bar("C", T0, 4)):
        latest(record)
    latest("not a record")
    assert [(r["key"], r["close"]) for r in latest.rows()] == [("A", 3.0), ("C", 4)]
    unkeyed = LatestRecords(key=None, max_rows=2)
    for n in range(5):
        unkeyed({"n": n})
    assert [r["n"] for r in unkeyed.rows()] == [3, 4]


# -- rendering ----------------------------------------------------------------------------


def test_render_draws_a_panel_per_link_the_stages_the_bars_and_the_footer() -> None:
    model = LiveModel()
    model.feed(snap(0, state="RECONNECTING"), now=0.0)
    model.feed(snap(40, state="RECONNECTING", latest=(bar("AAPL", T0, 100.5),)), now=2.0)
    text = text_of(model)
    assert "─ prices ─" in text and "─ publish ─" in text  # panel titles
    prices_panel = text.split("─ prices ─")[1]
    for line in ("RECONNECTING", "20.0/s", "reconnects", "3 (missed 1)"):
        assert line in prices_panel
    assert "latest bars (UTC)" in text
    row = next(line for line in text.splitlines() if "AAPL" in line)
    for cell in ("22:13:20-22:13:21", "100.5", "101.5", "99.25", "700", "100.1235"):
        assert cell in row
    assert "stages" in text and "bars" in text
    footer = text.rstrip().splitlines()[-1]
    assert "pipeline quickstart" in footer and "watched 0:00:02" in footer
    model.feed(snap(40, uptime=3725.0), now=3.0)
    assert "up 1:02:05" in text_of(model)
    assert "unhealthy: link prices is RECONNECTING" in footer


def test_render_without_links_or_bars_says_so() -> None:
    model = LiveModel()
    model.feed(Snapshot("plain", stages={"ticks": {"received": 1}}), now=0.0)
    model.mark_unreachable("connection refused")
    text = text_of(model)
    assert "no links" in text and "ticks" in text and "latest bars" not in text
    assert "healthy" in text and "not reachable: connection refused" in text


# -- the view on a thread -----------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Reader:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.fail = False

    def __call__(self) -> Snapshot:
        with self.lock:
            self.count += 10
            if self.fail:
                raise ConnectionError("gone")
            return snap(self.count, latest=(bar("AAPL", T0, 1.0),))


def test_live_view_redraws_from_read_until_stopped() -> None:
    reader = Reader()
    out = Tty()
    view = LiveView(reader, interval=0.02, stream=out, width=120)
    try:
        assert view.start() and view.running
        wait_until(lambda: view.frames >= 3, timeout=10, what="three frames")
        with reader.lock:
            reader.fail = True
        wait_until(lambda: view.model.unreachable == "ConnectionError('gone')", timeout=10)
    finally:
        view.stop()
    assert not view.running
    drawn = out.getvalue()
    assert "prices" in drawn and "AAPL" in drawn and "pipeline quickstart" in drawn
    view.stop()  # idempotent


def test_live_view_does_nothing_off_a_terminal_unless_forced() -> None:
    out = io.StringIO()
    view = LiveView(Reader(), stream=out)
    assert view.start() is False and not view.running and out.getvalue() == ""
    view.stop()
    forced = LiveView(Reader(), interval=0.05, stream=io.StringIO(), force=True)
    with forced:
        assert forced.running
    assert not forced.running and forced.frames >= 1  # the last frame on stop


def test_live_view_refuses_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval must be a number of seconds > 0, got 0"):
        LiveView(Reader(), interval=0)
