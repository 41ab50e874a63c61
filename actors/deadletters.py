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
    """One undeliverable message: the target's name, the message, and why. ``failed``: the
    recipient took it and its own code failed on it (else it never got it: lost)."""

    recipient: str
    message: Any
    reason: str
    failed: bool = False


class DeadLetters:
    """Per-system dead-letter log: a total, a count per message type and per recipient
    (lost or failed), the latest few."""

    def __init__(self, system: str, keep: int = 1000) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._by_type: Counter[str] = Counter()
        self._lost: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._recent: deque[DeadLetter] = deque(maxlen=keep)
        self._log = structlog.get_logger("actorwire.deadletters").bind(system=system)

    def record(self, recipient: str, message: Any, reason: str, *, failed: bool = False) -> None:
        """Count and log one dead letter. ``failed=True``: the recipient's own code failed
        on the message (a record its stage raised on); otherwise it was never handled."""
        kind = type(message).__name__
        with self._lock:
            self._count += 1
            self._by_type[kind] += 1
            (self._failed if failed else self._lost)[recipient] += 1
            self._recent.append(DeadLetter(recipient, message, reason, failed))
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

    def lost(self) -> dict[str, int]:
        """Per recipient: messages it never handled (held past a restart's bound, left when
        it stopped, told after it died)."""
        with self._lock:
            return dict(self._lost)

    def failed(self) -> dict[str, int]:
        """Per recipient: messages its own code failed on."""
        with self._lock:
            return dict(self._failed)

    def recent(self) -> list[DeadLetter]:
        with self._lock:
            return list(self._recent)
