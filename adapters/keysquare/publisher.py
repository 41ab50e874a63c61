"""The publishing side of a KeySession: one actor batches publishes into requests.

Each request is a ``Link.call`` on the current connection, answered by the platform's ack.
A request whose connection ends before the ack is sent again on the next connection (the
caller's timeout still bounds it); a refused batch is resent call by call, so one call's bad
record never fails another's.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from dataclasses import dataclass
from typing import Any

from actorwire.actors import Actor
from actorwire.actors.link import Link

from . import keysquare_pb2 as pb
from .link import AckEvent

__all__: list[str] = []

RETRY_DELAY = 0.05  # seconds before a request cut off with its connection goes again


@dataclass(slots=True)
class _Pub:
    """One publish call: its records travel together and share one future."""

    records: list[pb.Record]
    store: bool
    future: concurrent.futures.Future[dict[str, Any]]
    deadline: float
    edit: tuple[pb.Topic, bytes] | None = None
    ids: list[str] | None = None  # publish ids, one per record (one for an edit)


@dataclass(frozen=True, slots=True)
class _LinkUp:
    pass


@dataclass(frozen=True, slots=True)
class _LinkDown:
    pass


@dataclass(frozen=True, slots=True)
class _Answered:
    """The Link.call of request ``rid`` is done (its future holds the ack or the error)."""

    rid: int
    future: concurrent.futures.Future[Any]


@dataclass(frozen=True, slots=True)
class _Retry:
    pass


class _Publisher(Actor):
    """Batches publishes into one request per call to the link; resends what a lost
    connection cut off once the link is up again."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link
        self.ids = itertools.count(1)
        self.pending: dict[int, list[_Pub]] = {}
        self.waiting: list[_Pub] = []
        self.connected = False
        self.retry_due = False

    def on_batch(self, messages: list[Any]) -> None:
        fresh: list[_Pub] = []
        for message in messages:
            if isinstance(message, _Pub):
                fresh.append(message)
            elif isinstance(message, _Answered):
                self._answered(message)
            elif isinstance(message, _LinkUp):
                self.connected = True
                fresh = self._take_waiting() + fresh
            elif isinstance(message, _LinkDown):
                self.connected = False
            elif isinstance(message, _Retry):
                self.retry_due = False
                if self.connected:
                    fresh = self._take_waiting() + fresh
        if fresh:
            self._send(fresh)

    def _take_waiting(self) -> list[_Pub]:
        waiting, self.waiting = self.waiting, []
        return waiting

    def _send(self, pubs: list[_Pub]) -> None:
        now = time.monotonic()
        live = [p for p in pubs if p.deadline > now and not p.future.done()]
        if not self.connected:
            self.waiting.extend(live)
            return
        plain = [p for p in live if p.edit is None and not p.store]
        stored = [p for p in live if p.edit is None and p.store]
        for group, store in ((plain, False), (stored, True)):
            if group:
                self._request(group, store)
        for p in live:
            if p.edit is not None:
                self._request([p], False)

    def _request(self, group: list[_Pub], store: bool) -> None:
        rid = next(self.ids)
        first = group[0]
        if first.edit is not None:
            key, patch = first.edit
            edit_id = first.ids[0] if first.ids else ""
            message = pb.ClientMessage(
                edit=pb.Edit(request_id=rid, key=key, patch=patch, publish_id=edit_id)
            )
        else:
            # The same ids go with every resend: the platform applies each record once.
            if len(group) == 1:
                records, ids = first.records, first.ids or []
            else:
                records = [r for p in group for r in p.records]
                ids = [i for p in group for i in (p.ids or [""] * len(p.records))]
            message = pb.ClientMessage(
                publish=pb.Publish(
                    request_id=rid,
                    records=records,
                    store=store,
                    publish_ids=ids if any(ids) else [],
                )
            )
        self.pending[rid] = group
        timeout = max(max(p.deadline for p in group) - time.monotonic(), 0.001)
        future = self.link.submit(message, timeout)
        me = self.address
        future.add_done_callback(lambda f: me.tell(_Answered(rid, f)))

    def _answered(self, answered: _Answered) -> None:
        pubs = self.pending.pop(answered.rid, None)
        if pubs is None:
            return
        future = answered.future
        error = future.exception() if not future.cancelled() else None
        if error is None and not future.cancelled():
            self._ack(pubs, future.result())
        elif isinstance(error, ConnectionError):
            # Cut off with its connection (or sent while none was up): it goes again on
            # the next one; the caller's own timeout still bounds the wait.
            self.waiting.extend(pubs)
            if self.connected and not self.retry_due:
                self.retry_due = True
                self.system.send_after(RETRY_DELAY, self.address, _Retry())
        elif isinstance(error, TimeoutError):
            pass  # the callers time out at the same moment, with their own message
        else:
            for p in pubs:
                if not p.future.done():
                    p.future.set_exception(error or ConnectionError("request cancelled"))

    def _ack(self, pubs: list[_Pub], ack: AckEvent) -> None:
        if ack.status != "OK" and len(pubs) > 1 and pubs[0].edit is None:
            # One call's bad record must not fail other calls batched with it: resend each
            # call as a request of its own.
            for p in pubs:
                self._request([p], p.store)
            return
        for p in pubs:
            if p.future.done():
                continue
            result: dict[str, Any] = {
                "status": ack.status,
                "request_id": ack.request_id,
                "count": len(p.records) if ack.status == "OK" else 0,
            }
            if ack.duplicates and len(pubs) == 1:
                result["duplicates"] = ack.duplicates  # already applied: not applied again
            if ack.status != "OK":
                result.update(code=ack.code, message=ack.message)
            p.future.set_result(result)
