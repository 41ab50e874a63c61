"""The subscription side of a KeySession: one actor per subscription, and the router.

The router is the link's consumer: it fans each platform delivery out to the local
subscriptions on that platform subscription (several local subscriptions to one topic share
it), parks a subscription that falls too far behind (keeping the newest record per topic),
and answers subscribe results. Each subscription's callbacks run in its own actor, so a
slow or failing callback stalls nothing else.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actorwire.actors import Actor, Address
from actorwire.actors.link import LatestFilter

from . import keysquare_pb2 as pb
from .link import SnapshotDone, SubscribeResult, SubSpec
from .model import Gap, KeyMessage, SubscriptionType
from .protocol import decode_data, topic_key

if TYPE_CHECKING:
    from .client import KeySession

__all__ = ["Subscription"]

Topic5 = tuple[str, str, str, str, str]


class Subscription:
    """A live subscription returned by ``KeySession.subscribe``; pass it to ``unsubscribe``."""

    _ids = itertools.count(1)

    def __init__(
        self,
        data_type: str,
        schema: str,
        source: str,
        group: str,
        id: str,
        subscription_type: SubscriptionType,
    ) -> None:
        self.subscription_id = next(Subscription._ids)
        self.data_type = data_type
        self.schema = schema
        self.source = source
        self.group = group
        self.id = id
        self.subscription_type = subscription_type
        self.active = True
        self.address: Address | None = None
        # Flow control between the router (the only writer of _told, _parked and
        # conflated) and the subscription's actor (the only writer of _handled).
        self._told = 0
        self._handled = 0
        self._parked = False
        self.conflated = 0
        self.gaps = 0  # gap notices it was given (written by its actor)

    @property
    def topic(self) -> Topic5:
        return (self.schema, self.data_type, self.source, self.group, self.id)

    def __repr__(self) -> str:
        return (
            f"Subscription(#{self.subscription_id} {self.schema}.{self.data_type} "
            f"source={self.source!r} group={self.group!r} id={self.id!r} "
            f"{self.subscription_type.name}{'' if self.active else ' inactive'})"
        )


@dataclass(frozen=True, slots=True)
class _Records:
    records: Sequence[pb.Record]


@dataclass(frozen=True, slots=True)
class _GapNotice:
    gap: Gap


@dataclass(frozen=True, slots=True)
class _Caught:
    """The cached records have all been handed to the subscription's callbacks."""


@dataclass(frozen=True, slots=True)
class _Drained:
    """A subscription that fell behind has handled everything told to it."""

    sub: Subscription


@dataclass(frozen=True, slots=True)
class _LateSnapshot:
    """The cached records fetched for a subscription joining a live topic."""

    sub: Subscription
    records: Sequence[pb.Record]


TAIL_IDS = 16384
"""Records of the newest deliveries a session remembers across a platform restart, so that a
record the new run applies again is dropped."""
RECENT_BYTES = 4 * 1024 * 1024
"""... and at most this many bytes of them (their serialized size)."""


class _SubscriptionActor(Actor):
    """Runs one subscription's callbacks; drops records it has already seen per topic."""

    def __init__(
        self,
        sub: Subscription,
        callback: Callable[[KeyMessage], Any],
        voided_callback: Callable[[KeyMessage], Any],
        ready: concurrent.futures.Future[None],
        router: Address,
        gap_callback: Callable[[Gap], Any],
    ) -> None:
        super().__init__()
        self.sub = sub
        self.callback = callback
        self.voided_callback = voided_callback
        self.gap_callback = gap_callback
        self.ready = ready
        self.router = router
        self.latest = LatestFilter()  # per topic, by (epoch, seq)
        self.delivered = 0
        self.callback_errors = 0

    def on_batch(self, messages: list[Any]) -> None:
        sub = self.sub
        for message in messages:
            if isinstance(message, _Records):
                try:
                    self._records(message.records)
                finally:
                    sub._handled += len(message.records)
            elif isinstance(message, _Caught):
                if not self.ready.done():
                    self.ready.set_result(None)
            elif isinstance(message, _GapNotice):
                sub.gaps += 1
                try:
                    self.gap_callback(message.gap)
                except Exception as exc:  # noqa: BLE001 - a user callback must not end the feed
                    self.callback_errors += 1
                    self.log.error("gap_callback raised", error=repr(exc))
            elif message == "stats":
                pass
        if sub._parked and sub._handled == sub._told:
            self.router.tell(_Drained(sub))  # caught up: the router sends what it kept

    def on_receive(self, message: Any) -> Any:
        if message == "stats":
            return {
                "delivered": self.delivered,
                "duplicates": self.latest.stale,
                "callback_errors": self.callback_errors,
                "conflated": self.sub.conflated,
            }
        self.on_batch([message])
        return None

    def _records(self, records: Sequence[pb.Record]) -> None:
        # Hot path: each header field is read once, for both the dedupe key and the
        # message. A record at or below the topic's last (epoch, seq) was seen already
        # (a re-snapshot after a reconnect, or a late joiner's own snapshot).
        sub = self.sub
        accept = self.latest.accept
        for record in records:
            if not sub.active:
                return
            h = record.header
            schema, data_type, source, group, id_ = h.schema, h.data_type, h.source, h.group, h.id
            order = (h.epoch, h.seq)
            if not accept((schema, data_type, source, group, id_), order):
                continue
            voided = h.voided
            message = KeyMessage(
                header={
                    "schema": schema,
                    "data_type": data_type,
                    "source": source,
                    "group": group,
                    "id": id_,
                    "seq": order[1],
                    "epoch": order[0],
                    "timestamp_ns": h.timestamp_ns,
                    "voided": voided,
                    "publisher": h.publisher,
                },
                data=decode_data(record.data) if record.data else {},
            )
            try:
                if voided:
                    self.voided_callback(message)
                else:
                    self.callback(message)
                self.delivered += 1
            except Exception as exc:  # noqa: BLE001 - a user callback must not end the feed
                self.callback_errors += 1
                self.log.error(
                    "subscription callback raised",
                    error=repr(exc),
                    subscription=self.sub.subscription_id,
                    errors=self.callback_errors,
                )


@dataclass
class _PlatformSub:
    spec: SubSpec
    locals: list[Subscription] = field(default_factory=list)
    waiting: list[tuple[Subscription, concurrent.futures.Future[None]]] = field(
        default_factory=list
    )
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class _Add:
    sub: Subscription
    ready: concurrent.futures.Future[None]


@dataclass(frozen=True, slots=True)
class _Remove:
    sub: Subscription


class _Router(Actor):
    """The link's consumer: fans records out to the subscriptions of each platform sub.

    Local subscriptions to the same topic share one platform subscription; the platform
    unsubscribe goes out only when the last of them is removed.
    """

    def __init__(self, session: KeySession, max_pending: int) -> None:
        super().__init__()
        self.session = session
        self.platform: dict[int, _PlatformSub] = {}
        self.by_topic: dict[tuple[Topic5, bool], int] = {}
        self.ids = itertools.count(1)
        self.max_pending = max_pending
        # A subscription that fell behind: its newest record per topic, kept here until it
        # has handled what it was told (then sent as one batch), and whether its _Caught
        # waits behind them.
        self.parked: dict[int, dict[Topic5, pb.Record]] = {}
        self.resumed = 0  # platform subscriptions resumed from the journal after a reconnect
        self.gaps = 0  # ... that could not be resumed in full
        self.caught_parked: set[int] = set()
        # Across a restart of a platform without a store: the newest deliveries, kept as
        # they came (no per-record work: ids are read only when the platform's run
        # changes), so a record the new run applies again (a resend whose ack died with the
        # old run) is dropped; checked for the new run's first TAIL_IDS records.
        self.recent: deque[tuple[int, Sequence[pb.Record], int]] = deque()
        self.recent_bytes = 0
        self.recent_records = 0
        self.epoch = 0
        self.suspects: set[tuple[int, str]] = set()
        self.suspect_budget = 0
        self.redelivered = 0  # records dropped as applied again by a restarted platform

    def on_batch(self, messages: list[Any]) -> None:
        for message in messages:
            if type(message) is tuple:  # (sub_id, records, size): one platform delivery
                self._forward(*message)
            else:
                self._control(message)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Add | _Remove):
            return self._control(message)
        if message == "stats":
            return {"resumed": self.resumed, "gaps": self.gaps, "redelivered": self.redelivered}
        self.on_batch([message])
        return None

    def _forward(self, sub_id: int, records: Sequence[pb.Record], size: int = 0) -> None:
        psub = self.platform.get(sub_id)
        if psub is None or not records:
            return
        epoch = records[0].header.epoch
        if epoch != self.epoch:
            if self.epoch and self.recent:  # a new run of the platform
                self.suspects = {
                    (sid, pid)
                    for sid, held, _ in self.recent
                    for r in held
                    if (pid := r.header.publish_id)
                }
                self.suspect_budget = TAIL_IDS
                self.recent.clear()
                self.recent_bytes = self.recent_records = 0
            self.epoch = epoch
        if self.suspects:
            records = self._drop_redelivered(sub_id, records)
            if not records:
                return
        self._keep(sub_id, records, size)
        batch = _Records(records)
        for local in psub.locals:
            self._tell(local, batch)

    def _keep(self, sub_id: int, records: Sequence[pb.Record], size: int) -> None:
        """Hold on to a delivery until RECENT_BYTES (its serialized size) or TAIL_IDS records
        are newer."""
        recent = self.recent
        recent.append((sub_id, records, size))
        self.recent_bytes += size
        self.recent_records += len(records)
        while len(recent) > 1 and (
            self.recent_bytes > RECENT_BYTES or self.recent_records > TAIL_IDS
        ):
            _, old, old_size = recent.popleft()
            self.recent_bytes -= old_size
            self.recent_records -= len(old)

    def _drop_redelivered(self, sub_id: int, records: Sequence[pb.Record]) -> list[pb.Record]:
        suspects = self.suspects
        kept: list[pb.Record] = []
        for record in records:
            pid = record.header.publish_id
            if pid and (sub_id, pid) in suspects:
                self.redelivered += 1
                self.log.info(
                    "record applied again by a restarted platform: dropped",
                    subscription=sub_id,
                    publish_id=pid,
                    redelivered=self.redelivered,
                )
                continue
            kept.append(record)
        self.suspect_budget -= len(records)
        if self.suspect_budget <= 0:
            self.suspects = set()
        return kept

    def _tell(self, local: Subscription, batch: _Records) -> None:
        """Tell a subscription its records, unless it is more than ``max_pending`` records
        behind: then keep only the newest per topic until it catches up (a price feed's
        last value is what a slow consumer needs; each record passed over is counted)."""
        if local.address is None:
            return
        if local._parked or local._told - local._handled > self.max_pending:
            self._park(local, batch.records)
            return
        local._told += len(batch.records)
        local.address.tell(batch)

    def _park(self, local: Subscription, records: Sequence[pb.Record]) -> None:
        key = local.subscription_id
        parked = self.parked.get(key)
        if parked is None:
            parked = self.parked[key] = {}
            self.log.warning(
                "subscription is falling behind: keeping the newest record per topic",
                subscription=key,
                pending=local._told - local._handled,
                max_pending=self.max_pending,
            )
        for record in records:
            topic = topic_key(record.header)
            if topic in parked:
                local.conflated += 1
            parked[topic] = record
        local._parked = True
        if local._handled == local._told:  # it caught up while this was going on
            self._unpark(local)

    def _unpark(self, local: Subscription) -> None:
        key = local.subscription_id
        parked = self.parked.pop(key, None)
        local._parked = False
        if parked:
            self.log.info("subscription caught up", subscription=key, conflated=local.conflated)
            records = list(parked.values())
            local._told += len(records)
            if local.address is not None:
                local.address.tell(_Records(records))
        if key in self.caught_parked:
            self.caught_parked.discard(key)
            if local.address is not None:
                local.address.tell(_Caught())

    def _caught(self, local: Subscription) -> None:
        if local.address is None:
            return
        if local._parked:
            self.caught_parked.add(local.subscription_id)  # after the kept records
        else:
            local.address.tell(_Caught())

    def _control(self, message: Any) -> Any:
        if isinstance(message, SnapshotDone):
            psub = self.platform.get(message.sub_id)
            if psub is not None:
                psub.confirmed = True
                for local, _ in psub.waiting:
                    self._caught(local)
                psub.waiting.clear()
        elif isinstance(message, _Drained):
            if message.sub._parked and message.sub._handled == message.sub._told:
                self._unpark(message.sub)
        elif isinstance(message, _LateSnapshot):
            self._tell(message.sub, _Records(message.records))
            self._caught(message.sub)
        elif isinstance(message, SubscribeResult):
            self._subscribe_result(message)
        elif isinstance(message, pb.SchemaChanged):
            self.session._schema_changed(message.version)
        elif isinstance(message, _Add):
            return self._add(message.sub, message.ready)
        elif isinstance(message, _Remove):
            return self._remove(message.sub)
        return None

    def _subscribe_result(self, result: SubscribeResult) -> None:
        psub = self.platform.get(result.sub_id)
        if psub is None:
            return
        if result.status == "OK":
            if result.resumed:
                self.resumed += 1
            if result.gap is not None:
                self._gap(psub, result.gap)
            if not psub.spec.cached:
                psub.confirmed = True
                for _, ready in psub.waiting:
                    if not ready.done():
                        ready.set_result(None)
                psub.waiting.clear()
            return
        error: Exception
        if result.code == "PERMISSION_DENIED":
            error = PermissionError(result.message)
        elif result.code == "UNKNOWN_TYPE":
            error = ValueError(result.message)
        else:
            error = RuntimeError(f"subscribe refused: {result.code}: {result.message}")
        for _, ready in psub.waiting:
            if not ready.done():
                ready.set_exception(error)
        for local in psub.locals:
            local.active = False
        self._drop(psub)

    def _gap(self, psub: _PlatformSub, gap: pb.Gap) -> None:
        """The platform could not resume ``psub``: every local subscription hears of it, in
        order with its records; counted and logged, never silent."""
        self.gaps += 1
        schema, data_type, source, group, id_ = psub.spec.topic
        self.log.warning(
            "subscription gap: records missed for good",
            data_type=data_type,
            epoch=gap.epoch,
            after_pos=gap.after_pos,
            missed=gap.missed or "unknown",
            reason=gap.reason,
            gaps=self.gaps,
        )
        notice = _GapNotice(
            Gap(
                data_type=data_type,
                schema=schema,
                source=source,
                group=group,
                id=id_,
                epoch=gap.epoch,
                after_pos=gap.after_pos,
                missed=gap.missed or None,
                reason=gap.reason,
            )
        )
        for local in psub.locals:
            if local.address is not None:
                local.address.tell(notice)

    def _add(self, sub: Subscription, ready: concurrent.futures.Future[None]) -> None:
        cached = sub.subscription_type is SubscriptionType.CACHED_AND_LIVE
        key = (sub.topic, cached)
        sub_id = self.by_topic.get(key)
        if sub_id is None:
            sub_id = next(self.ids)
            psub = _PlatformSub(SubSpec(sub_id, sub.topic, cached))
            self.platform[sub_id] = psub
            self.by_topic[key] = sub_id
            psub.locals.append(sub)
            psub.waiting.append((sub, ready))
            self.session._link_subscribe(psub.spec)
            return
        psub = self.platform[sub_id]
        if cached:
            # Joining a platform subscription whose cached records have gone (or are going)
            # to the others: fetch them separately; live ones may arrive first (the
            # subscription actor drops whichever copy comes second).
            psub.locals.append(sub)
            self.session._late_snapshot(sub, ready)
            return
        psub.locals.append(sub)
        if psub.confirmed:
            ready.set_result(None)
        else:
            psub.waiting.append((sub, ready))

    def _remove(self, sub: Subscription) -> bool:
        cached = sub.subscription_type is SubscriptionType.CACHED_AND_LIVE
        sub_id = self.by_topic.get((sub.topic, cached))
        psub = self.platform.get(sub_id) if sub_id is not None else None
        if psub is None or sub not in psub.locals:
            return False
        psub.locals.remove(sub)
        self.parked.pop(sub.subscription_id, None)
        self.caught_parked.discard(sub.subscription_id)
        if not psub.locals:
            self._drop(psub)
            self.session._link_unsubscribe(psub.spec)
        return True

    def _drop(self, psub: _PlatformSub) -> None:
        self.platform.pop(psub.spec.sub_id, None)
        self.by_topic.pop((psub.spec.topic, psub.spec.cached), None)
