"""The KeySession data model: states, subscription types, KeyHeader and KeyMessage."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields
from typing import Any

from actorwire.actors.errors import ActorwireError

from . import keysquare_pb2 as pb
from .protocol import decode_data

__all__ = [
    "Gap",
    "KeyHeader",
    "KeyMessage",
    "KeySessionState",
    "PublishTimeout",
    "SubscriptionType",
]


@dataclass(frozen=True)
class Gap:
    """Records a subscription should have seen and never will: after a reconnect the
    platform could not resume it from its journal (the records fell out of the journal, or
    the platform restarted without a store). Passed to ``subscribe(gap_callback=...)``.

    ``missed`` is how many records of the subscribed topics and of others were skipped in
    the journal (``None``: unknown, the platform restarted); ``epoch`` and ``after_pos`` are
    where the subscription was. A ``CACHED_AND_LIVE`` subscription then gets each topic's
    latest record again.
    """

    data_type: str
    schema: str
    source: str
    group: str
    id: str
    epoch: int
    after_pos: int
    missed: int | None
    reason: str


class PublishTimeout(ActorwireError, TimeoutError):
    """No acknowledgement in time: the publish may or may not have been applied.

    ``publish_id`` is the id it carried: retry with ``publish(..., publish_id=...)`` (the
    same keyword on ``publish_many``, ``edit`` and ``store``) and the platform applies it
    once, as long as the retry comes within the platform's dedupe window.
    """

    def __init__(self, message: str, publish_id: str) -> None:
        super().__init__(message)
        self.publish_id = publish_id


class KeySessionState(enum.Enum):
    """Where a KeySession stands; the state listener sees every transition."""

    START = "START"
    REGISTERING = "REGISTERING"
    REGISTERED = "REGISTERED"
    CONNECTING = "CONNECTING"
    DOWNLOADING_SCHEMA = "DOWNLOADING_SCHEMA"
    SCHEMA_DOWNLOADED = "SCHEMA_DOWNLOADED"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    REGISTRATION_FAILED = "REGISTRATION_FAILED"
    SCHEMA_DOWNLOAD_FAILED = "SCHEMA_DOWNLOAD_FAILED"
    ERROR = "ERROR"


ERROR_STATES = frozenset(
    {
        KeySessionState.REGISTRATION_FAILED,
        KeySessionState.SCHEMA_DOWNLOAD_FAILED,
        KeySessionState.ERROR,
    }
)


class SubscriptionType(enum.Enum):
    """Whether a subscription starts with the platform's cached records."""

    CACHED_AND_LIVE = "CACHED_AND_LIVE"
    LIVE_ONLY = "LIVE_ONLY"


@dataclass
class KeyHeader:
    """A record's key and platform metadata. In ``publish(key_header=...)`` the fields
    that are set override the defaults (seq, epoch and timestamp are the platform's)."""

    schema: str = ""
    data_type: str = ""
    source: str = ""
    group: str = ""
    id: str = ""
    seq: int = 0
    epoch: int = 0
    timestamp_ns: int = 0
    voided: bool = False
    publisher: str = ""

    @classmethod
    def from_pb(cls, h: pb.KeyHeader) -> KeyHeader:
        return cls(
            h.schema,
            h.data_type,
            h.source,
            h.group,
            h.id,
            h.seq,
            h.epoch,
            h.timestamp_ns,
            h.voided,
            h.publisher,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


HEADER_FIELDS = tuple(f.name for f in fields(KeyHeader))


class KeyMessage(dict[str, Any]):
    """One record: ``{"header": {...}, "data": {...}}``, a dict so ``json.dumps`` works.

    ``message.header`` is a KeyHeader, ``message.data`` the fields of the data type.
    """

    @classmethod
    def from_record(cls, record: pb.Record) -> KeyMessage:
        h = record.header
        header = {
            "schema": h.schema,
            "data_type": h.data_type,
            "source": h.source,
            "group": h.group,
            "id": h.id,
            "seq": h.seq,
            "epoch": h.epoch,
            "timestamp_ns": h.timestamp_ns,
            "voided": h.voided,
            "publisher": h.publisher,
        }
        return cls(header=header, data=decode_data(record.data) if record.data else {})

    @property
    def header(self) -> KeyHeader:
        return KeyHeader(**self["header"])

    @property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = self["data"]
        return value

    def __repr__(self) -> str:
        h = self["header"]
        return (
            f"KeyMessage({h['schema']}.{h['data_type']} {h['source']}/{h['group']}/"
            f"{h['id']} seq={h['seq']} data={self['data']!r})"
        )
