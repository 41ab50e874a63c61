"""Waiting in tests: poll a condition with a deadline (for state that has no event)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["wait_until"]


def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.002, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned) or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate!r}")
        # A polling interval, not a wait for a condition: the condition is re-checked.
        time.sleep(interval)
