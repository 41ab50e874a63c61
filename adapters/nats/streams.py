"""JetStream streams and durable consumers from a definition, created or checked.

A definition says what a stream must be (:class:`StreamSpec`) and which durable consumers
read it (:class:`ConsumerSpec`). :func:`ensure_stream` creates a missing stream and checks
an existing one: a stream that differs is an error naming every key (never updated behind
the user's back: a smaller limit would throw messages away). :func:`ensure_consumer`
creates a missing consumer and updates the settings JetStream lets a consumer change
(``ack_wait``, ``max_ack_pending``, ``max_deliver``, ``filter_subject``); a difference it
cannot change (``deliver_policy``, the ack policy) is an error.

``parse_stream`` and ``parse_consumer`` check a definition's table; errors read
``<where>.<key>: <problem>`` and name what was expected.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from nats.js import JetStreamManager
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

__all__ = [
    "ConsumerSpec",
    "StreamMismatch",
    "StreamSpec",
    "consumer_problems",
    "did_you_mean",
    "ensure_consumer",
    "ensure_stream",
    "parse_consumer",
    "parse_stream",
    "stream_problems",
]

log = structlog.get_logger("actorwire.nats.streams")

RETENTIONS = ("limits", "interest", "workqueue")
STORAGES = ("file", "memory")
DELIVER_POLICIES = ("all", "new")

_STREAM_KEYS = (
    "name",
    "subjects",
    "retention",
    "storage",
    "max_bytes",
    "max_msgs",
    "max_age",
    "duplicate_window",
)
_CONSUMER_KEYS = (
    "durable",
    "filter_subject",
    "ack_wait",
    "max_ack_pending",
    "max_deliver",
    "deliver_policy",
)
# Characters NATS forbids in stream and consumer names (they become subject tokens).
_NAME_FORBIDDEN = frozenset(" \t\r\n.*>/\\")


class StreamMismatch(ValueError):
    """An existing stream or consumer differs from its definition in a way actorwire does
    not change; one problem per line, each naming its key path."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    if len(word) > 40:  # difflib's cost grows with the length
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _table(value: Any, where: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a table, got {_kind(value)}")
    for key in value:
        if key not in allowed:
            raise ValueError(
                f"{where}.{key}: unknown key (expected one of {', '.join(allowed)})"
                f"{did_you_mean(str(key), allowed)}"
            )
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: must be a non-empty string, got {_kind(value)} {value!r}")
    bad = sorted(set(value) & _NAME_FORBIDDEN)
    if bad:
        raise ValueError(
            f"{path}: must not hold spaces, '.', '*', '>' or path separators, got {value!r}"
        )
    return value


def _subject(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: must be a non-empty subject, got {_kind(value)} {value!r}")
    if any(c.isspace() for c in value) or "" in value.split("."):
        raise ValueError(
            f"{path}: must be dot-separated tokens with no spaces (like 'orders.>'), got {value!r}"
        )
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ValueError(f"{path}: must be one of {', '.join(choices)}, got {value!r}{hint}")
    return value


def _limit(value: Any, path: str) -> int:
    """An integer limit: -1 for none, else at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{path}: must be an integer (-1 for no limit), got {_kind(value)} {value!r}"
        )
    if value < 1 and value != -1:
        raise ValueError(f"{path}: must be at least 1, or -1 for no limit, got {value!r}")
    return value


def _seconds(value: Any, path: str, *, zero: str | None = None) -> float:
    """Seconds, greater than 0 (or 0 too, meaning ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{path}: must be a number of seconds, got {_kind(value)} {value!r}")
    if value < 0 or (value == 0 and zero is None):
        floor = f"at least 0 (0: {zero})" if zero is not None else "greater than 0"
        raise ValueError(f"{path}: must be {floor}, got {value!r}")
    return float(value)


def _named(table: Mapping[str, Any], key: str, name: str | None, where: str) -> str:
    if key in table:
        return _name(table[key], f"{where}.{key}")
    if name is None:
        raise ValueError(f"{where}.{key}: missing")
    return _name(name, where)


@dataclass(frozen=True)
class StreamSpec:
    """What a definition says a JetStream stream is."""

    name: str
    subjects: tuple[str, ...]
    retention: str = "limits"
    storage: str = "file"
    max_bytes: int = -1
    """-1: no limit."""
    max_msgs: int = -1
    """-1: no limit."""
    max_age: float = 0.0
    """Seconds a message is kept; 0: for ever."""
    duplicate_window: float = 120.0
    """Seconds a ``Nats-Msg-Id`` is remembered: a repeat within it is stored once."""

    def stream_config(self) -> StreamConfig:
        """The nats-py ``StreamConfig`` that creates this stream."""
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy(self.retention),
            storage=StorageType(self.storage),
            max_bytes=self.max_bytes,
            max_msgs=self.max_msgs,
            max_age=self.max_age,
            duplicate_window=self.duplicate_window,
        )


def parse_stream(value: Any, where: str, name: str | None = None) -> StreamSpec:
    """A :class:`StreamSpec` from a definition's table (``name`` from the table, else the
    one given); ValueError naming ``<where>.<key>`` and what was expected."""
    table = _table(value, where, _STREAM_KEYS)
    stream = _named(table, "name", name, where)
    if "subjects" not in table:
        raise ValueError(f"{where}.subjects: missing (an array of subjects, like ['orders.>'])")
    raw = table["subjects"]
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError(
            f"{where}.subjects: must be a non-empty array of subjects, got {_kind(raw)} {raw!r}"
        )
    subjects: list[str] = []
    for i, item in enumerate(raw):
        subject = _subject(item, f"{where}.subjects[{i}]")
        if subject in subjects:
            raise ValueError(f"{where}.subjects[{i}]: {subject!r} is given twice")
        subjects.append(subject)
    max_age = _seconds(table.get("max_age", 0.0), f"{where}.max_age", zero="for ever")
    window = _seconds(table.get("duplicate_window", 120.0), f"{where}.duplicate_window")
    if "duplicate_window" not in table and 0 < max_age < window:
        window = max_age  # the default window shrinks to a shorter max_age, as nats does
    if 0 < max_age < window:
        raise ValueError(
            f"{where}.duplicate_window: must be at most max_age ({max_age:g}), got {window:g}"
        )
    return StreamSpec(
        name=stream,
        subjects=tuple(subjects),
        retention=_choice(table.get("retention", "limits"), f"{where}.retention", RETENTIONS),
        storage=_choice(table.get("storage", "file"), f"{where}.storage", STORAGES),
        max_bytes=_limit(table.get("max_bytes", -1), f"{where}.max_bytes"),
        max_msgs=_limit(table.get("max_msgs", -1), f"{where}.max_msgs"),
        max_age=max_age,
        duplicate_window=window,
    )


def _text(value: Any) -> str:
    if isinstance(value, RetentionPolicy | StorageType | DeliverPolicy | AckPolicy):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _seconds_differ(have: float | None, want: float) -> bool:
    # The server keeps nanoseconds; nats-py turns them back into float seconds.
    return abs((have or 0.0) - want) > 1e-6


def stream_problems(spec: StreamSpec, config: StreamConfig, where: str) -> list[str]:
    """Every way the existing stream's ``config`` differs from ``spec`` (subjects compared
    as sets), one ``<where>.<key>: the stream has X, the definition says Y`` each."""
    problems: list[str] = []

    def differ(key: str, have: Any, want: Any) -> None:
        problems.append(
            f"{where}.{key}: the stream has {_text(have)}, the definition says {_text(want)}"
        )

    have_subjects = set(config.subjects or ())
    if have_subjects != set(spec.subjects):
        differ("subjects", sorted(have_subjects), sorted(spec.subjects))
    retention = config.retention or RetentionPolicy.LIMITS
    if RetentionPolicy(retention).value != spec.retention:
        differ("retention", retention, spec.retention)
    storage = config.storage or StorageType.FILE
    if StorageType(storage).value != spec.storage:
        differ("storage", storage, spec.storage)
    for key, have, want in (
        ("max_bytes", config.max_bytes, spec.max_bytes),
        ("max_msgs", config.max_msgs, spec.max_msgs),
    ):
        if (have if have is not None else -1) != want:
            differ(key, have, want)
    if _seconds_differ(config.max_age, spec.max_age):
        differ("max_age", config.max_age or 0.0, spec.max_age)
    if _seconds_differ(config.duplicate_window, spec.duplicate_window):
        differ("duplicate_window", config.duplicate_window, spec.duplicate_window)
    return problems


async def ensure_stream(js: JetStreamManager, spec: StreamSpec, where: str) -> None:
    """Create the stream when it is missing; when it exists, check it matches ``spec``
    (:class:`StreamMismatch` listing every difference; nothing is changed)."""
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(spec.stream_config())
        log.info("stream created", stream=spec.name, subjects=list(spec.subjects))
        return
    problems = stream_problems(spec, info.config, where)
    if problems:
        raise StreamMismatch(problems)
    log.debug("stream checked", stream=spec.name)


@dataclass(frozen=True)
class ConsumerSpec:
    """What a definition says a durable pull consumer is (explicit acks)."""

    durable: str
    filter_subject: str | None = None
    ack_wait: float = 30.0
    """Seconds before an unacked message is delivered again."""
    max_ack_pending: int = 20000
    """Messages delivered and not yet acked; -1: no limit."""
    max_deliver: int = -1
    """Deliveries of one message; -1: no limit."""
    deliver_policy: str = "all"
    """Where a new consumer starts: ``"all"`` (the first message) or ``"new"``."""

    def consumer_config(self) -> ConsumerConfig:
        """The nats-py ``ConsumerConfig`` that creates (or updates) this consumer."""
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy(self.deliver_policy),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.filter_subject,
        )


def parse_consumer(value: Any, where: str, durable: str | None = None) -> ConsumerSpec:
    """A :class:`ConsumerSpec` from a definition's table (``durable`` from the table, else
    the one given); ValueError naming ``<where>.<key>`` and what was expected."""
    table = _table(value, where, _CONSUMER_KEYS)
    name = _named(table, "durable", durable, where)
    filter_subject = None
    if "filter_subject" in table:
        filter_subject = _subject(table["filter_subject"], f"{where}.filter_subject")
    return ConsumerSpec(
        durable=name,
        filter_subject=filter_subject,
        ack_wait=_seconds(table.get("ack_wait", 30.0), f"{where}.ack_wait"),
        max_ack_pending=_limit(table.get("max_ack_pending", 20000), f"{where}.max_ack_pending"),
        max_deliver=_limit(table.get("max_deliver", -1), f"{where}.max_deliver"),
        deliver_policy=_choice(
            table.get("deliver_policy", "all"), f"{where}.deliver_policy", DELIVER_POLICIES
        ),
    )


def consumer_problems(
    spec: ConsumerSpec, config: ConsumerConfig, where: str
) -> tuple[list[str], dict[str, tuple[Any, Any]]]:
    """How an existing consumer's ``config`` differs from ``spec``: the differences
    JetStream cannot change (``<where>.<key>: the consumer has X, the definition says Y``)
    and the ones it can (key -> (have, want))."""
    fixed: list[str] = []

    def differ(key: str, have: Any, want: Any) -> None:
        fixed.append(
            f"{where}.{key}: the consumer has {_text(have)}, the definition says {_text(want)}"
        )

    deliver = DeliverPolicy(config.deliver_policy or DeliverPolicy.ALL)
    if deliver.value != spec.deliver_policy:
        differ("deliver_policy", deliver, spec.deliver_policy)
    ack = AckPolicy(config.ack_policy or AckPolicy.EXPLICIT)
    if ack is not AckPolicy.EXPLICIT:
        differ("ack_policy", ack, AckPolicy.EXPLICIT)
    editable: dict[str, tuple[Any, Any]] = {}
    have_filter = config.filter_subject or None
    if config.filter_subjects and have_filter is None:
        have_filter = ", ".join(config.filter_subjects)
    if have_filter != spec.filter_subject:
        editable["filter_subject"] = (have_filter or "none", spec.filter_subject or "none")
    if _seconds_differ(config.ack_wait, spec.ack_wait):
        editable["ack_wait"] = (config.ack_wait, spec.ack_wait)
    for key, have, want in (
        ("max_ack_pending", config.max_ack_pending, spec.max_ack_pending),
        ("max_deliver", config.max_deliver, spec.max_deliver),
    ):
        if (have if have is not None else -1) != want:
            editable[key] = (have, want)
    return fixed, editable


async def ensure_consumer(
    js: JetStreamManager, stream: str, spec: ConsumerSpec, where: str
) -> None:
    """Create the durable consumer when it is missing; when it exists, update what
    JetStream lets change (``ack_wait``, ``max_ack_pending``, ``max_deliver``,
    ``filter_subject``; logged) or raise :class:`StreamMismatch` naming each key it cannot
    change."""
    try:
        info = await js.consumer_info(stream, spec.durable)
    except NotFoundError:
        await js.add_consumer(stream, spec.consumer_config())
        log.info("consumer created", stream=stream, consumer=spec.durable)
        return
    fixed, editable = consumer_problems(spec, info.config, where)
    if fixed:
        raise StreamMismatch(fixed)
    if editable:
        # Creating a durable that exists with another config updates it (when only
        # editable fields differ), so the create call doubles as the update.
        await js.add_consumer(stream, spec.consumer_config())
        log.info(
            "consumer updated",
            stream=stream,
            consumer=spec.durable,
            changes={
                key: f"{_text(have)} -> {_text(want)}" for key, (have, want) in editable.items()
            },
        )
