"""Seeded random-walk prices: the core of the ``synthetic_prices`` source.

Sans-I/O: :class:`SyntheticPrices` makes records on demand and never sleeps; the source
actor decides how many to ask for and when. The same seed and parameters give the same
records on every run, whatever the batch sizes asked for (one random
stream, a fixed number of draws per record).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

__all__ = ["SyntheticPrices"]


def _number(name: str, value: object, *, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"SyntheticPrices: {name} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result < minimum or (strict and result == minimum):
        bound = ">" if strict else ">="
        raise ValueError(
            f"SyntheticPrices: {name} must be finite and {bound} {minimum}, got {value!r}"
        )
    return result


class SyntheticPrices:
    """Quotes and trades for ``symbols`` following geometric random walks.

    ``symbols`` is a list of names or a count (``SYM000``, ``SYM001``, ...); records cycle
    through them in order. Each record moves its symbol's mid price by a random step whose
    log-return has standard deviation ``volatility``, quotes ``bid``/``ask`` at ``spread``
    (a fraction of the mid) around it, and trades ``last`` somewhere between them for an
    integer ``volume`` in ``1..max_volume``. Prices are rounded to ``decimals`` places
    (``None``: not rounded) and never fall below one tick, so ``0 < bid <= last <= ask``
    always holds.

    ``start_price`` is one price for every symbol or a mapping of symbol to price.
    """

    __slots__ = (
        "_decimals",
        "_half_spread",
        "_index",
        "_interval",
        "_max_volume",
        "_mids",
        "_min_price",
        "_rng",
        "_start_time",
        "_volatility",
        "symbols",
    )

    def __init__(
        self,
        symbols: Sequence[str] | int,
        seed: int = 0,
        start_price: float | Mapping[str, float] = 100.0,
        volatility: float = 0.001,
        spread: float = 0.0002,
        *,
        max_volume: int = 1000,
        decimals: int | None = 4,
        start_time: float = 1_700_000_000.0,
        interval: float = 0.001,
    ) -> None:
        if isinstance(symbols, bool):
            raise TypeError(
                f"SyntheticPrices: symbols must be a list of names or a count, got {symbols!r}"
            )
        if isinstance(symbols, int):
            if symbols < 1:
                raise ValueError(f"SyntheticPrices: symbols must be >= 1, got {symbols!r}")
            names = [f"SYM{i:03d}" for i in range(symbols)]
        elif isinstance(symbols, Sequence) and not isinstance(symbols, str):
            names = list(symbols)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise ValueError(
                    f"SyntheticPrices: symbols must be non-empty names, got {symbols!r}"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"SyntheticPrices: symbols must be distinct, got {symbols!r}")
        else:
            raise TypeError(
                f"SyntheticPrices: symbols must be a list of names or a count, got {symbols!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"SyntheticPrices: seed must be an int, got {seed!r}")
        if isinstance(start_price, Mapping):
            missing = [n for n in names if n not in start_price]
            if missing:
                raise ValueError(f"SyntheticPrices: start_price has no price for {missing!r}")
            mids = [
                _number(f"start_price[{n!r}]", start_price[n], minimum=0, strict=True)
                for n in names
            ]
        else:
            price = _number("start_price", start_price, minimum=0, strict=True)
            mids = [price] * len(names)
        self._volatility = _number("volatility", volatility, minimum=0, strict=False)
        self._half_spread = _number("spread", spread, minimum=0, strict=False) / 2
        if self._half_spread >= 1:
            raise ValueError(
                f"SyntheticPrices: spread must be < 2 (a fraction of the mid), got {spread!r}"
            )
        if isinstance(max_volume, bool) or not isinstance(max_volume, int) or max_volume < 1:
            raise ValueError(
                f"SyntheticPrices: max_volume must be an integer >= 1, got {max_volume!r}"
            )
        if decimals is not None and (
            isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 12
        ):
            raise ValueError(f"SyntheticPrices: decimals must be None or 0..12, got {decimals!r}")
        self.symbols: list[str] = names
        """The symbols, in the order records cycle through them."""
        self._mids = mids
        self._rng = random.Random(seed)
        self._max_volume = max_volume
        self._decimals = decimals
        self._min_price = 10.0**-decimals if decimals is not None else 1e-9
        self._start_time = _number("start_time", start_time, minimum=-math.inf, strict=False)
        self._interval = _number("interval", interval, minimum=0, strict=False)
        self._index = 0

    @property
    def count(self) -> int:
        """Records produced so far."""
        return self._index

    def next_batch(self, n: int, now: float | None = None) -> list[dict[str, Any]]:
        """The next ``n`` records ``{"symbol", "bid", "ask", "last", "volume", "timestamp"}``.

        ``timestamp`` is ``now`` (epoch seconds) for every record of the batch when given;
        otherwise it is derived, ``start_time + i * interval`` for the ``i``-th record ever
        produced, so a run without a clock is reproducible too.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"SyntheticPrices.next_batch: n must be an integer >= 0, got {n!r}")
        rng = self._rng
        uniform = rng.random
        exp = math.exp
        mids = self._mids
        names = self.symbols
        count = len(names)
        # A uniform step on [-0.5, 0.5) has standard deviation 1/sqrt(12): scale it so the
        # log-return per record has standard deviation ``volatility``. (Cheaper than gauss.)
        step = self._volatility * math.sqrt(12.0)
        half = self._half_spread
        max_volume = self._max_volume
        scale = None if self._decimals is None else 10.0**self._decimals
        floor = self._min_price
        index = self._index
        low, high = 1.0 - half, 1.0 + half
        fixed = None if now is None else float(now)
        start, interval = self._start_time, self._interval
        out: list[dict[str, Any]] = []
        append = out.append
        for _ in range(n):
            j = index % count
            mid = mids[j] * exp(step * (uniform() - 0.5))
            if mid < floor:  # noqa: PLR1730 - in the hot loop a compare beats a max() call
                mid = floor
            mids[j] = mid
            bid = mid * low
            ask = mid * high
            last = bid + (ask - bid) * uniform()  # >= bid: adding a non-negative never lowers
            if scale is not None:
                # Round half up to the tick: monotone, so bid <= last <= ask survives it
                # (int() truncates, which is the floor for these positive prices).
                bid = int(bid * scale + 0.5) / scale
                last = int(last * scale + 0.5) / scale
                ask = int(ask * scale + 0.5) / scale
            if last > ask:  # noqa: PLR1730 - bid + (ask - bid) * u can round one ulp past ask
                last = ask
            if bid < floor:  # near the floor: keep every price positive, still ordered
                bid = floor
                last = max(last, floor)
                ask = max(ask, floor)
            volume = int(uniform() * max_volume) + 1
            if volume > max_volume:  # noqa: PLR1730 - u * max_volume can round up to it
                volume = max_volume
            append(
                {
                    "symbol": names[j],
                    "bid": bid,
                    "ask": ask,
                    "last": last,
                    "volume": volume,
                    "timestamp": start + index * interval if fixed is None else fixed,
                }
            )
            index += 1
        self._index = index
        return out
