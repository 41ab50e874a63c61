"""Backoff delays grow, cap, jitter within bounds; the policy counts attempts and fails loudly."""

from __future__ import annotations

import dataclasses
import random

import pytest
from actorwire.actors.backoff import Backoff, BackoffPolicy
from hypothesis import given
from hypothesis import strategies as st


class TestBackoffDelay:
    def test_delay_grows_by_factor_from_min(self) -> None:
        b = Backoff(min=1.0, max=1000.0, factor=2.0, jitter=0.0)
        assert [b.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]

    def test_delay_is_capped_at_max(self) -> None:
        b = Backoff(min=1.0, max=100.0, factor=2.0, jitter=0.0)
        assert b.delay(6) == 64.0
        assert b.delay(7) == 100.0
        assert b.delay(50) == 100.0

    @pytest.mark.parametrize("attempt", [1_100, 10**6, 10**400])
    def test_huge_attempts_do_not_overflow(self, attempt: int) -> None:
        b = Backoff(min=0.5, max=30.0, factor=3.0, jitter=0.0)
        assert b.delay(attempt) == 30.0

    def test_factor_one_is_constant(self) -> None:
        b = Backoff(min=2.0, max=5.0, factor=1.0, jitter=0.0)
        assert {b.delay(n) for n in (0, 1, 10, 10**9)} == {2.0}

    def test_default_values(self) -> None:
        b = Backoff()
        assert (b.min, b.max, b.factor, b.jitter) == (0.1, 30.0, 2.0, 0.1)

    def test_zero_jitter_ignores_rng(self) -> None:
        b = Backoff(min=1.0, max=10.0, jitter=0.0)
        assert b.delay(2, random.Random(1)) == b.delay(2, random.Random(2)) == 4.0

    def test_same_seed_gives_same_delays(self) -> None:
        b = Backoff(jitter=0.5)
        first = [b.delay(n, random.Random(42)) for n in range(10)]
        second = [b.delay(n, random.Random(42)) for n in range(10)]
        assert first == second

    def test_jitter_actually_varies_delay(self) -> None:
        b = Backoff(min=1.0, max=10.0, jitter=0.5)
        rng = random.Random(7)
        assert len({b.delay(0, rng) for _ in range(20)}) > 1

    @given(
        attempt=st.integers(min_value=0, max_value=3_000),
        seed=st.integers(min_value=0, max_value=2**32),
        jitter=st.floats(min_value=0.0, max_value=1.0),
        lo=st.floats(min_value=1e-3, max_value=10.0),
        span=st.floats(min_value=1.0, max_value=1e4),
        factor=st.floats(min_value=1.0, max_value=10.0),
    )
    def test_jitter_stays_within_bounds(
        self, attempt: int, seed: int, jitter: float, lo: float, span: float, factor: float
    ) -> None:
        b = Backoff(min=lo, max=lo * span, factor=factor, jitter=jitter)
        base = lo
        for _ in range(attempt):
            if base >= b.max or factor == 1.0:
                break
            base = min(base * factor, b.max)
        d = b.delay(attempt, random.Random(seed))
        assert 0.0 <= d <= b.max
        assert base * (1 - jitter) * (1 - 1e-9) <= d <= base * (1 + jitter) * (1 + 1e-9)

    @given(
        attempt=st.integers(min_value=64, max_value=10**30),
        seed=st.integers(min_value=0, max_value=2**32),
        jitter=st.floats(min_value=0.0, max_value=1.0),
    )
    def test_capped_delays_stay_within_jittered_max(
        self, attempt: int, seed: int, jitter: float
    ) -> None:
        b = Backoff(min=0.1, max=30.0, factor=2.0, jitter=jitter)
        d = b.delay(attempt, random.Random(seed))
        assert 30.0 * (1 - jitter) * (1 - 1e-12) <= d <= 30.0

    @given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=2**32))
    def test_full_jitter_never_negative_nor_above_max(self, attempt: int, seed: int) -> None:
        b = Backoff(min=0.1, max=1.0, jitter=1.0)
        assert 0.0 <= b.delay(attempt, random.Random(seed)) <= 1.0

    @given(st.integers(min_value=0, max_value=500))
    def test_base_is_monotonic_in_attempt(self, attempt: int) -> None:
        b = Backoff(min=0.01, max=60.0, factor=1.7, jitter=0.0)
        assert b.delay(attempt) <= b.delay(attempt + 1)


class TestBackoffValidation:
    @pytest.mark.parametrize(
        ("kwargs", "needle"),
        [
            ({"min": 0.0}, "min must be > 0, got 0.0"),
            ({"min": -1.0}, "min must be > 0, got -1.0"),
            ({"min": 5.0, "max": 1.0}, "max must be >= min (5.0), got 1.0"),
            ({"factor": 0.5}, "factor must be >= 1, got 0.5"),
            ({"jitter": -0.1}, "jitter must be within [0, 1], got -0.1"),
            ({"jitter": 1.5}, "jitter must be within [0, 1], got 1.5"),
            ({"max": float("inf")}, "max must be finite, got inf"),
            ({"min": float("nan")}, "min must be finite, got nan"),
        ],
    )
    def test_bad_values_raise_value_error_naming_them(
        self, kwargs: dict[str, float], needle: str
    ) -> None:
        with pytest.raises(ValueError) as exc_info:
            Backoff(**kwargs)
        assert needle in str(exc_info.value)

    @pytest.mark.parametrize("field", ["min", "max", "factor", "jitter"])
    @pytest.mark.parametrize("bad", ["1", None, True])
    def test_non_numbers_raise_type_error(self, field: str, bad: object) -> None:
        with pytest.raises(TypeError, match=field):
            Backoff(**{field: bad})  # type: ignore[arg-type]

    def test_max_equal_to_min_is_allowed(self) -> None:
        assert Backoff(min=1.0, max=1.0, jitter=0.0).delay(5) == 1.0

    def test_bad_attempt(self) -> None:
        b = Backoff()
        with pytest.raises(ValueError, match="attempt must be >= 0, got -1"):
            b.delay(-1)
        with pytest.raises(TypeError, match=r"attempt must be an int, got 1\.0"):
            b.delay(1.0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="attempt must be an int, got True"):
            b.delay(True)

    def test_is_frozen_and_slotted(self) -> None:
        b = Backoff()
        with pytest.raises(dataclasses.FrozenInstanceError):
            b.min = 1.0  # type: ignore[misc]
        assert not hasattr(b, "__dict__")


class TestBackoffPolicy:
    def test_next_delay_counts_attempts_and_grows(self) -> None:
        p = BackoffPolicy(Backoff(min=1.0, max=8.0, jitter=0.0))
        assert [p.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
        assert p.attempts == 5
        assert not p.failed

    def test_max_attempts_then_failed_until_reset(self) -> None:
        p = BackoffPolicy(Backoff(min=1.0, jitter=0.0), max_attempts=3)
        assert [p.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
        assert not p.failed
        assert p.next_delay() is None
        assert p.failed
        assert p.next_delay() is None
        assert p.failed
        assert p.attempts == 3

        p.reset()
        assert not p.failed
        assert p.attempts == 0
        assert p.next_delay() == 1.0

    def test_reset_after_success_restarts_from_min(self) -> None:
        p = BackoffPolicy(Backoff(min=0.5, max=30.0, jitter=0.0))
        for _ in range(4):
            p.next_delay()
        p.reset()
        assert p.attempts == 0
        assert p.next_delay() == 0.5

    def test_zero_max_attempts_fails_on_first_call(self) -> None:
        p = BackoffPolicy(max_attempts=0)
        assert p.next_delay() is None
        assert p.failed

    def test_unlimited_retries_forever_with_capped_delays(self) -> None:
        p = BackoffPolicy(Backoff(min=0.1, max=2.0, jitter=0.5), rng=random.Random(3))
        delays = [p.next_delay() for _ in range(5_000)]
        assert all(d is not None and 0.0 <= d <= 2.0 for d in delays)
        assert not p.failed
        assert p.attempts == 5_000

    def test_rng_makes_policy_reproducible(self) -> None:
        a = BackoffPolicy(Backoff(jitter=0.3), rng=random.Random(9))
        b = BackoffPolicy(Backoff(jitter=0.3), rng=random.Random(9))
        assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]

    def test_properties(self) -> None:
        backoff = Backoff(min=1.0)
        p = BackoffPolicy(backoff, max_attempts=7)
        assert p.backoff is backoff
        assert p.max_attempts == 7
        assert BackoffPolicy().max_attempts is None
        assert BackoffPolicy().backoff == Backoff()

    @pytest.mark.parametrize(
        ("kwargs", "exc", "needle"),
        [
            ({"max_attempts": -1}, ValueError, "max_attempts must be >= 0 or None, got -1"),
            ({"max_attempts": 2.0}, TypeError, "max_attempts must be an int or None, got 2.0"),
            ({"max_attempts": True}, TypeError, "max_attempts must be an int or None, got True"),
            ({"backoff": 1.0}, TypeError, "backoff must be a Backoff, got 1.0"),
            ({"rng": 5}, TypeError, "rng must be a random.Random or None, got 5"),
        ],
    )
    def test_bad_arguments(
        self, kwargs: dict[str, object], exc: type[Exception], needle: str
    ) -> None:
        with pytest.raises(exc) as exc_info:
            BackoffPolicy(**kwargs)  # type: ignore[arg-type]
        assert needle in str(exc_info.value)
