"""Dead letters: messages that could not be delivered, counted and logged, never silent."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import structlog

__all__ = ["DeadLetter", "DeadLetters"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One undeliverable message: the target's name, the message, and why."""

    recipient: str
    message: Any
    reason: str


class DeadLetters:
    """Per-system dead-letter log: a total, a count per message type, the latest few."""

    def __init__(self, system: str, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._by_type: Counter[str] = Counter()
        self._recent: deque[DeadLetter] = deque(maxlen=keep)
        self._log = structlog.get_logger("actorwire.deadletters").bind(system=system)

    def record(self, recipient: str, message: Any, reason: str) -> None:
        kind = type(message).__name__
        with self._lock:
            self._count += 1
            self._by_type[kind] += 1
            self._recent.append(DeadLetter(recipient, message, reason))
            count = self._count
        # The message type, never its contents: a message may carry secrets.
        self._log.warning(
            "dead letter", recipient=recipient, message_type=kind, reason=reason, total=count
        )

    @property
    def count(self) -> int:
        return self._count

    def by_type(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_type)

    def recent(self) -> list[DeadLetter]:
        with self._lock:
            return list(self._recent)
