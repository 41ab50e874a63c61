"""Functions the main demo's definition (demo.toml) names as ``demo_functions:NAME``."""

from __future__ import annotations

from typing import Any


def quote_price(quote: dict[str, Any]) -> dict[str, Any]:
    """An exchange quote as a price tick for the bars: the last trade, else the mid of the
    best bid and offer; the sizes at the top of the book as volume."""
    bid, ask, last = quote.get("bid"), quote.get("ask"), quote.get("last")
    price = last if last is not None else (bid + ask) / 2 if bid and ask else bid or ask
    volume = (quote.get("bid_size") or 0.0) + (quote.get("ask_size") or 0.0)
    return {
        "symbol": quote["symbol"],
        "last": price,
        "volume": volume or 1.0,
        "timestamp": quote["timestamp"],
    }


def priced(quote: dict[str, Any]) -> bool:
    """Whether a quote has a price yet (a book with no order on either side has none)."""
    return any(quote.get(side) is not None for side in ("last", "bid", "ask"))
