"""Every runnable example runs to completion and reports success."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BAR_FIELDS = {"key", "window_start", "window_end", "open", "high", "low", "close", "volume", "vwap"}


@pytest.mark.timeout(120)
def test_supervision_example_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "supervision.py")],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "worker handled [1, 2, 3, 4]" in proc.stdout
    assert "consumer saw 30 frames, in order: True" in proc.stdout
    assert proc.stdout.rstrip().endswith("OK")


# -- helpers ----------------------------------------------------------------------------------


def cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``actorwire ...`` as a user runs it, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "actorwire.pipelines.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def symbols_of(definition: Path) -> set[str]:
    """The symbols the definition's synthetic source publishes."""
    doc = tomllib.loads(definition.read_text(encoding="utf-8"))
    (source,) = [s for s in doc["sources"] if s["kind"] == "synthetic_prices"]
    return set(source["symbols"])


def check_bar(bar: dict[str, Any]) -> None:
    assert set(bar) == BAR_FIELDS, bar
    assert bar["low"] <= bar["open"] <= bar["high"], bar
    assert bar["low"] <= bar["close"] <= bar["high"], bar
    # VWAP is sum(price * volume) / sum(volume): in floating point it may land a rounding
    # error outside [low, high] when every trade of the bar has one price.
    slack = 1e-12 * bar["high"]
    assert bar["low"] - slack <= bar["vwap"] <= bar["high"] + slack, bar
    assert isinstance(bar["volume"], int) and bar["volume"] > 0, bar
    assert bar["window_end"] - bar["window_start"] == pytest.approx(1.0, abs=1e-9), bar


def check_bars(bars: list[dict[str, Any]], symbols: set[str]) -> None:
    assert bars
    for bar in bars:
        check_bar(bar)
    assert {b["key"] for b in bars} == symbols
    for symbol in symbols:  # one bar per symbol and second, in time order
        starts = [b["window_start"] for b in bars if b["key"] == symbol]
        assert starts == sorted(set(starts)), (symbol, starts)


# -- the main demo: make run ------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_demo_runs_all_five_systems_as_make_run_does(tmp_path: Path) -> None:
    definition = EXAMPLES / "demo.toml"
    assert "examples/demo.toml" in (EXAMPLES.parent / "Makefile").read_text()
    proc = cli(tmp_path, "run", str(definition), "--duration", "6")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run summary: clean" in proc.stderr, proc.stderr
    bars = read_jsonl(tmp_path / "out" / "demo.jsonl")
    keys = {b["key"] for b in bars}
    # KeySquare's prices and the exchange's quotes both made bars ...
    assert {"AAPL", "MSFT", "GOOG", "AMZN"} <= keys, keys
    assert keys - {"AAPL", "MSFT", "GOOG", "AMZN"}, f"no bar of an exchange contract: {keys}"
    # ... and the kernel computed a signal on each from its open and close.
    for bar in bars:
        move = bar["close"] - bar["open"]
        assert bar["signal"] == ("BUY" if move > 0 else "SELL" if move < 0 else "FLAT"), bar
    # Not a terminal: no live view drawn on stdout.
    assert proc.stdout == ""


@pytest.mark.timeout(90)
def test_quickstart_runs_as_make_run_does(tmp_path: Path) -> None:
    definition = EXAMPLES / "quickstart.toml"
    proc = cli(tmp_path, "run", str(definition), "--duration", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    bars = read_jsonl(tmp_path / "out" / "bars.jsonl")
    check_bars(bars, symbols_of(definition))
    # Not a terminal: the screen sink prints one JSON line per bar, the same bars.
    shown = [json.loads(line) for line in proc.stdout.splitlines()]
    assert shown == bars


# -- the trading bot --------------------------------------------------------------------------

BAR_LINE = re.compile(
    r"^bar +(?P<symbol>[A-Z]+) +(?P<time>\d\d:\d\d:\d\d) +open (?P<open>[\d.]+) +"
    r"high (?P<high>[\d.]+) +low (?P<low>[\d.]+) +close (?P<close>[\d.]+) +"
    r"volume (?P<volume>\d+) +vwap (?P<vwap>[\d.]+)$"
)
SIGNAL_LINE = re.compile(
    r"^SIGNAL (?P<side>BUY|SELL) +(?P<symbol>[A-Z]+) +(?P<time>\d\d:\d\d:\d\d) +"
    r"@ (?P<price>[\d.]+) +fast [\d.]+ (?P<rel>[<>]) slow [\d.]+ +trade (?P<trade>\S+)$"
)
SUMMARY_LINE = re.compile(
    r"^summary: (?P<bars>\d+) bars, (?P<signals>\d+) signals, (?P<published>\d+) trades "
    r"published, (?P<confirmed>\d+) seen on the Trade feed \((?P<reason>[^)]*)\)$"
)


def clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


def expected_signals(lines: list[str], fast: int, slow: int) -> list[tuple[str, str, str, str]]:
    """The crossovers of the printed bar closes, in order: (side, symbol, time, price)."""
    closes: dict[str, list[float]] = {}
    trend: dict[str, int] = {}
    out = []
    for line in lines:
        bar = BAR_LINE.match(line)
        if bar is None:
            continue
        symbol, close = bar["symbol"], float(bar["close"])
        window = closes.setdefault(symbol, [])
        window.append(close)
        del window[:-slow]
        if len(window) < slow:
            continue
        fast_ma, slow_ma = sum(window[-fast:]) / fast, sum(window) / slow
        now = (fast_ma > slow_ma) - (fast_ma < slow_ma)
        if now == 0:
            continue
        before = trend.get(symbol)
        trend[symbol] = now
        if before is not None and now != before:
            out.append(("BUY" if now > 0 else "SELL", symbol, bar["time"], bar["close"]))
    return out


class Bot:
    """examples/trading_bot.py in a subprocess, in ``cwd``; stdout and stderr to files."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.cwd = cwd
        self.out, self.err = cwd / "stdout.txt", cwd / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(EXAMPLES / "trading_bot.py"), *args],
                cwd=cwd,
                stdout=out,
                stderr=err,
            )

    def lines(self) -> list[str]:
        return self.out.read_text(encoding="utf-8").splitlines()

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def bots() -> Iterator[list[Bot]]:
    started: list[Bot] = []
    yield started
    for bot in started:
        bot.kill()


def check_bot_output(bot: Bot, fast: int, slow: int) -> dict[str, str]:
    """Bars, signals, trades and the summary agree with each other and with the bar log;
    returns the summary's fields."""
    lines = bot.lines()
    assert lines[0].startswith("trading on the platform at 127.0.0.1:"), lines[:1]
    bar_lines = [m for m in map(BAR_LINE.match, lines) if m]
    signal_lines = [m for m in map(SIGNAL_LINE.match, lines) if m]
    summaries = [m for m in map(SUMMARY_LINE.match, lines) if m]
    assert len(summaries) == 1, lines[-6:]
    summary = summaries[0]

    # The bars the strategy printed are the bars the definition logged, in the same order.
    logged = read_jsonl(bot.cwd / "out" / "trading_bot_bars.jsonl")
    check_bars(logged, symbols_of_bot())
    assert [(m["symbol"], m["time"], float(m["close"])) for m in bar_lines] == [
        (b["key"], clock(b["window_end"]), b["close"]) for b in logged
    ]
    # Every signal is a crossover of the printed closes, and every crossover is signalled.
    got = [(m["side"], m["symbol"], m["time"], m["price"]) for m in signal_lines]
    assert got == expected_signals(lines, fast, slow)
    for m in signal_lines:
        assert m["rel"] == (">" if m["side"] == "BUY" else "<")
    trade_ids = [m["trade"] for m in signal_lines]
    assert len(set(trade_ids)) == len(trade_ids)
    # Each signal became a Trade the platform acknowledged; its feed saw at most those.
    assert int(summary["bars"]) == len(bar_lines)
    assert int(summary["signals"]) == int(summary["published"]) == len(signal_lines)
    assert int(summary["confirmed"]) <= len(signal_lines)
    return summary.groupdict()


def symbols_of_bot() -> set[str]:
    text = (EXAMPLES / "trading_bot.py").read_text(encoding="utf-8")
    match = re.search(r"^symbols = (\[.*\])$", text, re.M)
    assert match is not None
    return set(json.loads(match.group(1)))


@pytest.mark.timeout(90)
def test_trading_bot_signals_follow_the_bars(tmp_path: Path, bots: list[Bot]) -> None:
    fast, slow = 1, 2  # a crossover is then a change of direction: several in a few bars
    bot = Bot(tmp_path, "--duration", "4", "--fast", str(fast), "--slow", str(slow))
    bots.append(bot)
    assert bot.proc.wait(60) == 0, bot.stderr()
    summary = check_bot_output(bot, fast, slow)
    assert summary["reason"] == "duration"
    assert "Traceback" not in bot.stderr()


@pytest.mark.timeout(90)
def test_trading_bot_stops_cleanly_on_ctrl_c(tmp_path: Path, bots: list[Bot]) -> None:
    bot = Bot(tmp_path, "--duration", "60")
    bots.append(bot)
    wait_until(lambda: any(BAR_LINE.match(line) for line in bot.lines()), timeout=30, what="a bar")
    bot.proc.send_signal(signal.SIGINT)
    assert bot.proc.wait(30) == 0, bot.stderr()
    summary = check_bot_output(bot, fast=2, slow=4)
    assert summary["reason"] == "interrupted"
    assert "Traceback" not in bot.stderr()


# -- record and replay ------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_replay_of_a_recording_gives_the_live_bars(tmp_path: Path) -> None:
    recorder, replay = EXAMPLES / "recorder.toml", EXAMPLES / "replay.toml"
    assert cli(tmp_path, "check", str(recorder)).returncode == 0
    # Nothing recorded yet: the replay is refused before it starts, naming the key.
    refused = cli(tmp_path, "check", str(replay))
    assert refused.returncode == 2
    assert "sources[0].path" in refused.stderr and "no such file" in refused.stderr

    proc = cli(tmp_path, "run", str(recorder), "--duration", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recording = tmp_path / "out" / "recording"
    assert (recording / "prices.1.jsonl").exists(), "the recording rotated"
    ticks = [r for part in ("prices.1.jsonl", "prices.jsonl") for r in read_jsonl(recording / part)]
    assert ticks and {t["symbol"] for t in ticks} == symbols_of(recorder)
    live = read_jsonl(recording / "live_bars.jsonl")
    check_bars(live, symbols_of(recorder))

    # As fast as possible, then at 4x the recorded pace (the example's speed setting).
    fast = cli(tmp_path, "run", str(replay))
    assert fast.returncode == 0, fast.stderr
    text = replay.read_text(encoding="utf-8")
    assert "\n# speed = 1.0\n" in text
    paced_definition = tmp_path / "replay_paced.toml"
    paced_definition.write_text(text.replace("\n# speed = 1.0\n", "\nspeed = 4.0\n"), "utf-8")
    started = time.monotonic()
    paced = cli(tmp_path, "run", str(paced_definition))
    took = time.monotonic() - started
    assert paced.returncode == 0, paced.stderr

    assert fast.stdout == paced.stdout
    assert [json.loads(line) for line in fast.stdout.splitlines()] == live
    span = ticks[-1]["timestamp"] - ticks[0]["timestamp"]
    assert span > 1.0
    assert took >= span / 4


# -- the platform restart bot -----------------------------------------------------------------

SYMBOL_LINE = re.compile(
    r"^(?P<symbol>[A-Z]+) +published +(?P<records>\d+) records, volume +(?P<published>\d+) +"
    r"received +(?P<received>\d+) records +bars +(?P<bars>\d+), volume +(?P<bar_volume>\d+)$"
)


@pytest.mark.timeout(180)
def test_restart_bot_bars_hold_every_acknowledged_record_through_kill_9(tmp_path: Path) -> None:
    """The platform (with its store) killed with SIGKILL three times while the bot publishes
    and builds bars: the bars' volume per symbol is the acknowledged volume, exactly."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "restart_bot.py"), "--restarts", "3", "--kill"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]
    restarts = [line for line in lines if line.startswith("restart ")]
    assert [line[: len("restart 1/3: SIGKILL,")] for line in restarts] == [
        f"restart {n}/3: SIGKILL," for n in (1, 2, 3)
    ]
    rows = [m for m in map(SYMBOL_LINE.match, lines) if m]
    assert sorted(m["symbol"] for m in rows) == ["AAPL", "AMZN", "GOOG", "MSFT"], lines
    for m in rows:
        assert int(m["records"]) > 0, m.string
        assert m["records"] == m["received"], m.string
        assert m["published"] == m["bar_volume"], m.string
    # The store keeps the platform's journal: every subscription resumes without a gap.
    assert re.search(r"^gaps: 0 ", proc.stdout, re.M), lines
    total = sum(int(m["records"]) for m in rows)
    assert lines[-1] == f"OK: bar volume equals acknowledged volume ({total} records, 3 restarts)"
    assert "Traceback" not in proc.stderr
