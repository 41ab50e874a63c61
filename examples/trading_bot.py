"""A trading bot: moving-average crossovers on live 1-second bars, trades published back.

The platform side is a definition (the TOML text below, loaded with ``load_definition``):
an embedded KeySquare-style platform on 127.0.0.1, a synthetic publisher of Price records,
and a subscription that turns them into 1-second OHLC + VWAP bars per symbol, logged to a
JSON-lines file. The bot adds its own actor and a Trade subscription to that pipeline:

    ticks -> publish                    Price records into the platform
    prices -> bars -> bar_log           Price records out of it, as bars
                   -> strategy -> trades    the bot's actor; Trade records in
    trade_feed -> confirmations         Trade records out (the bot's own, seen back)

For each symbol the strategy keeps a fast and a slow moving average of the bar closes.
When the fast one crosses above the slow one it signals BUY, below it SELL; each signal
is printed and published to the platform as a ``Trade`` record, which any application
subscribed to ``Trade`` receives (the bot subscribes too, and counts what comes back).
Times are UTC, each bar's close.

Run:  python examples/trading_bot.py [--duration 10] [--fast 2] [--slow 4]
Ctrl-C (or SIGTERM) stops early: the open bars are closed, their signals published, and
the summary printed (a second Ctrl-C exits at once).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from actorwire.actors import configure_logging
from actorwire.pipelines import StageActor
from actorwire.pipelines.loader import DefinitionPipeline, load_definition

DEFINITION = """
[pipeline]
name = "trading-bot"

[servers.platform]
kind = "keysquare"          # the default config: application "demo", types Price, Trade
host = "127.0.0.1"
port = 0                    # any free port

# The market: a seeded random walk published to the platform as Price records.
[[sources]]
name = "ticks"
kind = "synthetic_prices"
symbols = ["AAPL", "MSFT", "GOOG", "AMZN"]
rate = 200
seed = 7

[[sinks]]
name = "publish"
kind = "keysquare_publish"
from = "ticks"
server = "platform"
data_type = "Price"
id_field = "symbol"

# The bot's market data: Price records from the platform, as 1-second bars per symbol.
[[sources]]
name = "prices"
kind = "keysquare"
server = "platform"
data_type = "Price"
subscription_type = "LIVE_ONLY"

[[stages]]
name = "bars"
kind = "tumbling_window"
from = "prices"
size = 1.0
key = "symbol"
time_field = "timestamp"
idle_timeout = 1.0
aggregations = ["ohlc", "vwap"]

# Every bar the bot saw, appended to a JSON-lines file (--bar-log).
[[sinks]]
name = "bar_log"
kind = "jsonl_file"
from = "bars"
path = @BAR_LOG@

[logging]
level = "warning"
"""

_print_lock = threading.Lock()


def say(line: str) -> None:
    """One whole line to stdout (the strategy and the Trade feed print from their actors)."""
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


@dataclass
class Position:
    bars: int = 0
    signals: int = 0
    quantity: int = 0
    cash: float = 0.0
    last: float = 0.0

    @property
    def pnl(self) -> float:
        return self.cash + self.quantity * self.last


class Book:
    """Positions and counts. Passed to the strategy as a parameter, so it outlives a
    restart of the strategy actor; read by the main thread once the pipeline has stopped."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.signals = 0
        self.confirmed = 0
        self._lock = threading.Lock()

    def position(self, symbol: str) -> Position:
        return self.positions.setdefault(symbol, Position())

    def confirm(self, trade: dict[str, Any]) -> None:
        """A Trade record seen back on the platform's feed (runs in the feed's sink actor)."""
        with self._lock:
            self.confirmed += 1


class CrossoverStrategy(StageActor):
    """Fast/slow moving averages of bar closes per symbol; BUY/SELL on each crossover.

    Receives bars from the pipeline (``on_receive``) and emits ``Trade`` records to the
    stages after it (``self.emit``).
    """

    def __init__(self, fast: int, slow: int, quantity: int, book: Book) -> None:
        super().__init__()
        if not 1 <= fast < slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={fast} slow={slow}")
        self.fast, self.slow, self.quantity, self.book = fast, slow, quantity, book
        self.closes: dict[str, deque[float]] = {}
        self.trend: dict[str, int] = {}  # symbol -> +1 (fast above slow) or -1

    def on_receive(self, message: Any) -> Any:
        bar: dict[str, Any] = message
        symbol, close, when = bar["key"], bar["close"], bar["window_end"]
        position = self.book.position(symbol)
        position.bars += 1
        position.last = close
        say(
            f"bar    {symbol:<5} {clock(when)}  open {bar['open']:.4f}  high {bar['high']:.4f}"
            f"  low {bar['low']:.4f}  close {close:.4f}  volume {bar['volume']}"
            f"  vwap {bar['vwap']:.4f}"
        )
        closes = self.closes.setdefault(symbol, deque(maxlen=self.slow))
        closes.append(close)
        if len(closes) < self.slow:
            return None
        window = list(closes)
        fast_ma = sum(window[-self.fast :]) / self.fast
        slow_ma = sum(window) / self.slow
        trend = (fast_ma > slow_ma) - (fast_ma < slow_ma)
        previous = self.trend.get(symbol)
        if trend == 0:
            return None
        self.trend[symbol] = trend
        if previous is None or trend == previous:
            return None
        side = "BUY" if trend > 0 else "SELL"
        self.trade(symbol, side, close, when, fast_ma, slow_ma)
        return None

    def trade(
        self, symbol: str, side: str, price: float, when: float, fast_ma: float, slow_ma: float
    ) -> None:
        position = self.book.position(symbol)
        position.signals += 1
        self.book.signals += 1
        signed = self.quantity if side == "BUY" else -self.quantity
        position.quantity += signed
        position.cash -= signed * price
        trade_id = f"{symbol}-{position.signals}"
        relation = ">" if side == "BUY" else "<"
        say(
            f"SIGNAL {side:<4} {symbol:<5} {clock(when)}  @ {price:.4f}  "
            f"fast {fast_ma:.4f} {relation} slow {slow_ma:.4f}  trade {trade_id}"
        )
        self.emit(
            {
                "trade_id": trade_id,
                "symbol": symbol,
                "price": price,
                "quantity": self.quantity,
                "side": side,
                "timestamp": when,
            }
        )


def build(args: argparse.Namespace, book: Book) -> DefinitionPipeline:
    # A definition is TOML text (or a file); the bar log's path is the one thing filled in.
    pipeline = load_definition(DEFINITION.replace("@BAR_LOG@", json.dumps(args.bar_log)))
    assert isinstance(pipeline, DefinitionPipeline)
    platform = pipeline.servers["platform"]
    publisher, publish_key = platform.credentials("Trade", "publish")
    reader, read_key = platform.credentials("Trade", "read")
    strategy = pipeline.handle("bars").then(
        CrossoverStrategy,
        name="strategy",
        fast=args.fast,
        slow=args.slow,
        quantity=args.quantity,
        book=book,
    )
    strategy.to(
        "keysquare_publish",
        name="trades",
        url=platform.url,
        application_name=publisher,
        api_key=publish_key,
        data_type="Trade",
        id_field="trade_id",
    )
    feed = pipeline.source(
        "keysquare",
        name="trade_feed",
        url=platform.url,
        application_name=reader,
        api_key=read_key,
        data_type="Trade",
        subscription_type="LIVE_ONLY",
    )
    feed.to(book.confirm, name="confirmations")
    return pipeline


def run(pipeline: DefinitionPipeline, duration: float) -> str:
    """Run until ``duration`` passes, a signal, or a failure; drain and stop. Says why."""
    stop = threading.Event()
    signals = [0]

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        signals[0] += 1
        if signals[0] > 1:  # a second Ctrl-C: leave now
            os._exit(130)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    reason = "duration"
    try:
        pipeline.start()
        say(f"trading on the platform at {pipeline.servers['platform'].url} for {duration:g} s")
        deadline = time.monotonic() + duration
        while (remaining := deadline - time.monotonic()) > 0:
            if stop.wait(min(remaining, 0.1)):
                reason = "interrupted"
                break
            if pipeline.failure is not None:
                reason = f"failed: {pipeline.failure}"
                break
    finally:
        pipeline.stop(drain=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return reason


def summary(pipeline: DefinitionPipeline, book: Book, reason: str) -> None:
    stats = pipeline.stats()
    bars = sum(p.bars for p in book.positions.values())
    published = stats["trades"].get("sink_published", 0)
    say(
        f"summary: {bars} bars, {book.signals} signals, {published} trades published, "
        f"{book.confirmed} seen on the Trade feed ({reason})"
    )
    for symbol, p in sorted(book.positions.items()):
        say(
            f"  {symbol:<5} bars {p.bars:>3}  signals {p.signals:>2}  position {p.quantity:>+5}"
            f"  last {p.last:.4f}  pnl {p.pnl:+.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run (10)")
    parser.add_argument("--fast", type=int, default=2, help="fast average, in bars (2)")
    parser.add_argument("--slow", type=int, default=4, help="slow average, in bars (4)")
    parser.add_argument("--quantity", type=int, default=100, help="shares per trade (100)")
    parser.add_argument(
        "--bar-log",
        default="out/trading_bot_bars.jsonl",
        help="bars are appended to this file",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.fast < args.slow:
        parser.error("need 1 <= --fast < --slow")
    configure_logging("console", "warning")
    book = Book()
    pipeline = build(args, book)
    reason = run(pipeline, args.duration)
    summary(pipeline, book, reason)
    return 1 if pipeline.failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
