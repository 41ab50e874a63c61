"""Reconnect backoff: capped exponential delays with jitter, and a policy that counts attempts.

Sans-I/O: nothing here sleeps or reads a clock; callers ask for a delay and wait it out
themselves, so the policy is trivially testable and shareable between transports.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from numbers import Real

__all__ = ["Backoff", "BackoffPolicy"]


def _check_real(owner: str, name: str, value: object) -> float:
    """Return ``value`` as a float, rejecting bools, non-numbers, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff: ``min * factor**attempt``, capped at ``max``, +/- ``jitter``.

    Jitter spreads reconnect storms: with ``jitter=0.1`` each delay is scaled by a uniform
    factor in ``[0.9, 1.1]`` and then clamped into ``[0, max]``.
    """

    min: float = 0.1
    max: float = 30.0
    factor: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        lo = _check_real("Backoff", "min", self.min)
        hi = _check_real("Backoff", "max", self.max)
        factor = _check_real("Backoff", "factor", self.factor)
        jitter = _check_real("Backoff", "jitter", self.jitter)
        if lo <= 0:
            raise ValueError(f"Backoff: min must be > 0, got {self.min!r}")
        if hi < lo:
            raise ValueError(f"Backoff: max must be >= min ({self.min!r}), got {self.max!r}")
        if factor < 1:
            raise ValueError(f"Backoff: factor must be >= 1, got {self.factor!r}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"Backoff: jitter must be within [0, 1], got {self.jitter!r}")

    def base(self, attempt: int) -> float:
        """Un-jittered delay for 0-based ``attempt``: ``min * factor**attempt`` capped at ``max``.

        Huge attempt numbers never overflow: the exponent is compared in log space first.
        """
        _check_attempt(attempt)
        if self.factor == 1 or attempt == 0:
            return float(self.min)
        # attempt >= log(max/min) / log(factor)  <=>  min * factor**attempt >= max.
        if attempt >= math.log(self.max / self.min) / math.log(self.factor):
            return float(self.max)
        return float(min(self.min * self.factor**attempt, self.max))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Jittered delay in seconds before 0-based ``attempt``, always within ``[0, max]``.

        ``rng`` makes the jitter reproducible; the module-level generator is used otherwise.
        """
        base = self.base(attempt)
        if self.jitter:
            draw = (rng if rng is not None else random).random()
            base *= 1.0 + self.jitter * (2.0 * draw - 1.0)
        return float(min(max(base, 0.0), self.max))


def _check_attempt(attempt: object) -> None:
    if isinstance(attempt, bool) or not isinstance(attempt, int):
        raise TypeError(f"Backoff: attempt must be an int, got {attempt!r}")
    if attempt < 0:
        raise ValueError(f"Backoff: attempt must be >= 0, got {attempt!r}")


DEFAULT_BACKOFF = Backoff()
"""The defaults: 0.1 s doubling up to 30 s, +/-10% jitter."""


class BackoffPolicy:
    """Counts reconnect attempts and hands out their delays; FAILED once ``max_attempts`` is used.

    Call :meth:`next_delay` after every failed connect and :meth:`reset` after a successful one.
    With ``max_attempts=None`` it retries forever (delays stay capped at ``backoff.max``); with a
    limit it never gives up silently: :meth:`next_delay` returns ``None`` and :attr:`failed` is set.
    """

    __slots__ = ("_attempts", "_backoff", "_failed", "_max_attempts", "_rng")

    def __init__(
        self,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(backoff, Backoff):
            raise TypeError(f"BackoffPolicy: backoff must be a Backoff, got {backoff!r}")
        if max_attempts is not None:
            if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
                raise TypeError(
                    f"BackoffPolicy: max_attempts must be an int or None, got {max_attempts!r}"
                )
            if max_attempts < 0:
                raise ValueError(
                    f"BackoffPolicy: max_attempts must be >= 0 or None, got {max_attempts!r}"
                )
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"BackoffPolicy: rng must be a random.Random or None, got {rng!r}")
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._rng = rng
        self._attempts = 0
        self._failed = False

    @property
    def backoff(self) -> Backoff:
        """The delay schedule."""
        return self._backoff

    @property
    def max_attempts(self) -> int | None:
        """How many delays :meth:`next_delay` hands out before failing; ``None`` = unlimited."""
        return self._max_attempts

    @property
    def attempts(self) -> int:
        """Attempts counted since construction or the last :meth:`reset`."""
        return self._attempts

    @property
    def failed(self) -> bool:
        """True once ``max_attempts`` ran out; stays True until :meth:`reset`."""
        return self._failed

    def next_delay(self) -> float | None:
        """Delay before the next attempt (and count it), or ``None`` once attempts are used up."""
        if self._failed:
            return None
        if self._max_attempts is not None and self._attempts >= self._max_attempts:
            self._failed = True
            return None
        delay = self._backoff.delay(self._attempts, self._rng)
        self._attempts += 1
        return delay

    def reset(self) -> None:
        """Start over after a successful connect: attempts back to 0 and not failed."""
        self._attempts = 0
        self._failed = False

    def __repr__(self) -> str:
        return (
            f"BackoffPolicy({self._backoff!r}, max_attempts={self._max_attempts!r}, "
            f"attempts={self._attempts}, failed={self._failed})"
        )
