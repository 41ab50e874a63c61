"""The embedded data platform's state, sans-I/O: sessions, schema, last-value cache,
permissions, publish/edit validation, snapshots, subscriptions and fan-out.

No sockets, threads or locks: the server calls it from one thread (its asyncio loop), so a
subscription's cached snapshot and its registration for live updates happen atomically.
Time comes from the ``clock`` given to the constructor. Errors are ``PlatformError`` with a
code the wire carries (``UNKNOWN_TYPE``, ``PERMISSION_DENIED``, ``INVALID``, ...).
"""

from __future__ import annotations

import dataclasses
import difflib
import hmac
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from ...actors.dedupe import DedupeWindow
from ...actors.errors import ActorwireError
from . import keysquare_pb2 as pb
from .config import AppConfig, PlatformConfig, TypeDef
from .journal import Journal
from .protocol import (
    FIELD_TYPES,
    PatternIndex,
    TopicKey,
    check_fields,
    decode_data,
    encode_data,
    field_checker,
    matches,
    topic_key,
)
from .store import Restored

__all__ = [
    "INVALID",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "TOO_LARGE",
    "UNAUTHENTICATED",
    "UNKNOWN_TYPE",
    "Fanout",
    "Platform",
    "PlatformError",
    "Published",
    "Resumed",
]

UNAUTHENTICATED = "UNAUTHENTICATED"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
PERMISSION_DENIED = "PERMISSION_DENIED"
INVALID = "INVALID"
TOO_LARGE = "TOO_LARGE"
NOT_FOUND = "NOT_FOUND"

Fanout = dict[str, dict[int, list[pb.Record]]]
"""session_id -> sub_id -> the records that subscription receives, in publish order."""

DEDUPE_WINDOW_BYTES = 16 * 1024 * 1024
"""Bytes of publish ids the platform remembers (about 130,000 uuid4 hex ids)."""
JOURNAL_BYTES = 64 * 1024 * 1024
"""Bytes of accepted records the journal keeps for subscriptions that come back."""
JOURNAL_SECONDS = 600.0
"""Seconds the journal keeps a record: a subscription back within this resumes in full."""
MAX_PUBLISH_ID = 200
"""Characters a publish id may have."""
DEDUPE_WINDOW_SECONDS = 600.0
"""Seconds a publish id is remembered: a retry within this window is applied once."""

_TypeId = tuple[str, str]
_Checker = Callable[[Mapping[str, Any]], None]
_Sub = tuple[int, int, str, int]
"""A subscription in the fan-out index: (session rank, rank, session_id, sub_id); the
ranks sort subscriptions as the sessions' subscription dicts list them."""


class PlatformError(ActorwireError):
    """A refused request: ``code`` for the wire (Ack.code, a gRPC status), ``message`` for
    people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Published:
    """Accepted records, stamped by the platform, and the ones to persist in the store."""

    records: list[pb.Record]
    to_store: list[pb.Record] = field(default_factory=list)
    kinds: frozenset[tuple[str, str]] | None = None  # (schema, type) of the records, if known
    duplicates: int = 0  # records whose publish id was applied before: not applied again
    publish_ids: tuple[str, ...] = ()  # the ids applied now (for the store)
    at: float = 0.0  # when the records were accepted (seconds since the epoch)


@dataclass(frozen=True)
class Resumed:
    """What a subscription coming back gets: the records to send (the journal's since its
    position, or a snapshot when ``snapshot``), and the gap it could not be spared."""

    records: list[pb.Record]
    snapshot: bool
    gap: pb.Gap | None


def _key_text(key: TopicKey) -> str:
    schema, data_type, source, group, id_ = key
    return f"{schema}.{data_type} source={source!r} group={group!r} id={id_!r}"


class Platform:
    """The platform's state; every method is synchronous and runs to completion."""

    def __init__(
        self,
        config: PlatformConfig,
        clock: Callable[[], int] = time.time_ns,
        new_session_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        epoch: int | None = None,
        dedupe_window_bytes: int = DEDUPE_WINDOW_BYTES,
        dedupe_window_seconds: float = DEDUPE_WINDOW_SECONDS,
        journal_bytes: int = JOURNAL_BYTES,
        journal_seconds: float = JOURNAL_SECONDS,
    ) -> None:
        self.config = config
        self._clock = clock
        # Publish ids applied lately: a resend or a retry with the same id is applied once.
        self.dedupe = DedupeWindow(dedupe_window_bytes, dedupe_window_seconds)
        # Every accepted record in order, with its position: subscriptions resume from it.
        self.journal = Journal(journal_bytes, journal_seconds)
        # This run of the platform: (epoch, seq) orders a topic's records across restarts,
        # since a restarted platform without a store numbers its topics from 1 again.
        self.epoch = time.time_ns() if epoch is None else epoch
        self._new_session_id = new_session_id
        self._types: dict[_TypeId, TypeDef] = {}
        self._schemas_of: dict[str, list[str]] = {}  # type name -> schemas defining it
        self.version = 0
        for typedef in config.types:
            self._put_type(typedef)
        self.version = 1
        self._cache: dict[_TypeId, dict[TopicKey, pb.Record]] = {}
        self._accepted: dict[TopicKey, int] = {}  # acceptance order of each cached record
        self._tick = 0
        self._stored: set[TopicKey] = set()
        self._checkers: dict[_TypeId, tuple[TypeDef, _Checker]] = {}
        self._sessions: dict[str, AppConfig] = {}
        self._subs: dict[str, dict[int, pb.Topic]] = {}
        # The fan-out index: every subscription under its pattern, as a _Sub whose ranks
        # give the order of _subs (sessions, then each session's subscriptions). _indexed
        # mirrors _subs (session -> its rank and its _Subs) and outlives a drop_session,
        # which forgets the _subs entry only: the next call here unindexes what is left.
        self._index: PatternIndex[_Sub] = PatternIndex()
        self._indexed: dict[str, tuple[int, dict[int, _Sub]]] = {}
        self._ranks = 0
        # A topic the platform holds no record of starts after this seq: 0 in a new epoch;
        # after a restart on a store, the newest position, which no topic's seq can pass
        # (a topic's seq counts its records, the position counts every record).
        self._seq_floor = 0

    def restore(self, state: Restored) -> None:
        """Continue what a store held (at startup, after ``load``): its epoch, its journal
        and its dedupe window, so subscriptions resume and resends are applied once across a
        restart. A state with no epoch (a new store) changes nothing."""
        if state.epoch is None:
            return
        now = self._clock() / 1e9
        self.epoch = state.epoch
        self.journal.restore(state.journal, state.last_pos, now)
        self._seq_floor = state.last_pos
        for pid, at in state.publish_ids:
            self.dedupe.add(pid, at)
        self.dedupe.expire(now)  # forget what aged out meanwhile

    # -- sessions ---------------------------------------------------------------------------

    def register(self, application_name: str, api_key: str) -> str:
        """A new session id for a known application with the right key."""
        app = self.config.applications.get(application_name)
        if app is None or not hmac.compare_digest(app.api_key.encode(), api_key.encode()):
            raise PlatformError(
                UNAUTHENTICATED, f"registration refused for application '{application_name}'"
            )
        session_id = self._new_session_id()
        self._sessions[session_id] = app
        return session_id

    def app_for(self, session_id: str) -> AppConfig:
        """The application of a registered session (UNAUTHENTICATED if unknown)."""
        app = self._sessions.get(session_id)
        if app is None:
            raise PlatformError(UNAUTHENTICATED, f"unknown session {session_id!r} (register first)")
        return app

    def has_session(self, session_id: str) -> bool:
        """True while the session is registered."""
        return session_id in self._sessions

    def drop_session(self, session_id: str) -> bool:
        """Forget a session and its subscriptions; False if it was not registered."""
        self.clear_subscriptions(session_id)
        return self._sessions.pop(session_id, None) is not None

    @property
    def session_count(self) -> int:
        """How many sessions are registered."""
        return len(self._sessions)

    def session_ids(self) -> list[str]:
        """The registered session ids."""
        return list(self._sessions)

    # -- schema -----------------------------------------------------------------------------

    def _put_type(self, typedef: TypeDef) -> None:
        tid = (typedef.schema, typedef.name)
        if tid not in self._types:
            self._schemas_of.setdefault(typedef.name, []).append(typedef.schema)
        self._types[tid] = typedef

    def define_type(self, schema: str, name: str, fields: Mapping[str, str]) -> int:
        """Add or change a data type and return the schema version (bumped on a change).

        Raises ValueError for a bad schema/type name or an unknown field type.
        """
        for what, value in (("schema", schema), ("type name", name)):
            if not value or value != value.strip() or "." in value:
                raise ValueError(f"bad {what} {value!r}: must be non-empty without dots")
        checked: dict[str, str] = {}
        for fname, ftype in fields.items():
            if not fname or not fname.strip():
                raise ValueError(f"{schema}.{name}: field names must not be empty")
            if ftype not in FIELD_TYPES:
                raise ValueError(
                    f"{schema}.{name}.{fname}: unknown field type {ftype!r} "
                    f"(expected one of {', '.join(FIELD_TYPES)})"
                )
            checked[fname] = ftype
        typedef = TypeDef(schema, name, checked)
        if self._types.get((schema, name)) != typedef:
            self._put_type(typedef)
            self.version += 1
        return self.version

    def types(self) -> list[TypeDef]:
        """Every defined type, sorted by schema and name."""
        return [self._types[tid] for tid in sorted(self._types)]

    def schema_reply(self, app: AppConfig) -> pb.SchemaReply:
        """The schema as one application sees it (with its permissions per type)."""
        return pb.SchemaReply(
            version=self.version,
            types=[
                pb.DataTypeDef(
                    schema=t.schema,
                    name=t.name,
                    fields=[pb.FieldDef(name=n, type=k) for n, k in t.fields.items()],
                    can_read=app.can_read(t.schema, t.name),
                    can_publish=app.can_publish(t.schema, t.name),
                )
                for t in self.types()
            ],
        )

    def _unknown_type(self, schema: str, data_type: str) -> PlatformError:
        if schema and not any(s == schema for s, _ in self._types):
            wanted, what = schema, f"unknown schema {schema!r}"
            candidates = sorted({s for s, _ in self._types})
        else:
            wanted = f"{schema}.{data_type}" if schema else data_type
            what = f"unknown data type {wanted!r}"
            candidates = sorted({f"{s}.{n}" for s, n in self._types})
            if not schema:
                candidates += sorted({n for _, n in self._types})
        close = difflib.get_close_matches(wanted, candidates, n=3)
        if close:
            return PlatformError(UNKNOWN_TYPE, f"{what}; close matches: {', '.join(close)}")
        known = [f"{s}.{n}" for s, n in sorted(self._types)]
        listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        return PlatformError(UNKNOWN_TYPE, f"{what}; defined types: {listed or 'none'}")

    def find_type(self, schema: str, data_type: str) -> TypeDef:
        """The one type a record names; an empty schema is fine when the name is unique."""
        if not data_type:
            raise PlatformError(INVALID, "data_type is required")
        if schema:
            typedef = self._types.get((schema, data_type))
            if typedef is None:
                raise self._unknown_type(schema, data_type)
            return typedef
        schemas = self._schemas_of.get(data_type, [])
        if not schemas:
            raise self._unknown_type(schema, data_type)
        if len(schemas) > 1:
            raise PlatformError(
                INVALID,
                f"data type {data_type!r} is defined in schemas {', '.join(sorted(schemas))}: "
                "set the schema",
            )
        return self._types[(schemas[0], data_type)]

    def _check_pattern(self, app: AppConfig, pattern: pb.Topic) -> None:
        """Refuse a subscribe/snapshot pattern naming an unknown type or an unreadable one."""
        if pattern.data_type:
            candidates = [
                (s, n)
                for (s, n) in self._types
                if n == pattern.data_type and (not pattern.schema or s == pattern.schema)
            ]
            if not candidates:
                raise self._unknown_type(pattern.schema, pattern.data_type)
        elif pattern.schema:
            candidates = [(s, n) for (s, n) in self._types if s == pattern.schema]
            if not candidates:
                raise self._unknown_type(pattern.schema, "")
        else:
            if not app.read:
                raise PlatformError(
                    PERMISSION_DENIED, f"application '{app.name}' may not read any type"
                )
            return
        if not any(app.can_read(s, n) for s, n in candidates):
            names = ", ".join(f"{s}.{n}" for s, n in sorted(candidates))
            raise PlatformError(PERMISSION_DENIED, f"application '{app.name}' may not read {names}")

    # -- data -------------------------------------------------------------------------------

    def load(self, records: Iterable[pb.Record]) -> int:
        """Seed the cache from the message store (at startup); returns how many were loaded."""
        count = 0
        for record in sorted(records, key=lambda r: r.header.timestamp_ns):
            h = record.header
            bucket = self._cache.setdefault((h.schema, h.data_type), {})
            key = (h.schema, h.data_type, h.source, h.group, h.id)
            old = bucket.get(key)
            if old is None or old.header.seq < h.seq:
                bucket[key] = record
                self._tick += 1
                self._accepted[key] = self._tick
            self._stored.add(key)
            count += 1
        return count

    def _check_size(self, record: pb.Record, where: str) -> None:
        size = record.ByteSize()
        if size > self.config.max_record_bytes:
            raise PlatformError(
                TOO_LARGE,
                f"{where} is {size} bytes, over the platform limit of "
                f"{self.config.max_record_bytes}",
            )

    def _cached(self, key: TopicKey) -> pb.Record | None:
        return self._cache.get((key[0], key[1]), {}).get(key)

    def _commit(self, records: list[pb.Record], store: bool) -> Published:
        """Cache records already stamped (edit, store): keyed by their headers."""
        staged = {}
        keys = []
        for record in records:
            h = record.header
            key = (h.schema, h.data_type, h.source, h.group, h.id)
            staged[key] = (self._cache.setdefault((h.schema, h.data_type), {}), record)
            keys.append(key)
        return self._commit_staged(records, keys, staged, store)

    def _commit_staged(
        self,
        records: list[pb.Record],
        keys: list[TopicKey],
        staged: dict[TopicKey, tuple[dict[TopicKey, pb.Record], pb.Record]],
        store: bool,
        kinds: frozenset[_TypeId] | None = None,
    ) -> Published:
        """Cache each topic's newest record (in ``staged``: its cache bucket and record).
        ``records`` are all of them in order, for the fan-out and the store, with their
        topic ``keys``. Records of a stored topic stay stored."""
        at = self._clock() / 1e9
        self.journal.append(records, at)  # stamps header.pos
        accepted = self._accepted
        stored = self._stored
        tick = self._tick
        for key, (bucket, record) in staged.items():
            bucket[key] = record
            tick += 1
            accepted[key] = tick
        self._tick = tick
        if store:
            stored.update(staged)
            return Published(records, list(records), kinds, at=at)
        if not stored:
            return Published(records, kinds=kinds, at=at)
        return Published(
            records, [r for k, r in zip(keys, records, strict=True) if k in stored], kinds, at=at
        )

    def _publishable(self, app: AppConfig, schema: str, data_type: str, where: str) -> TypeDef:
        """The type a record names, if the application may publish it."""
        try:
            typedef = self.find_type(schema, data_type)
        except PlatformError as exc:
            raise PlatformError(exc.code, f"{where}: {exc.message}") from None
        if not app.can_publish(typedef.schema, typedef.name):
            raise PlatformError(
                PERMISSION_DENIED, f"application '{app.name}' may not publish {typedef.qualified}"
            )
        return typedef

    def publish(
        self,
        app: AppConfig,
        records: Iterable[pb.Record],
        store: bool = False,
        total_bytes: int | None = None,
        publish_ids: Sequence[str] = (),
    ) -> Published:
        """Validate every record, then stamp (seq per topic, timestamp, publisher) and cache
        them all; one bad record refuses the whole publish with a PlatformError.

        An empty source defaults to the application name. A record with ``voided`` set and no
        data withdraws the cached record (keeping its data). Records of a stored topic stay
        stored, so the store never falls behind the cache. ``total_bytes``, the request's
        serialized size when the caller knows it, spares the per-record size check when the
        whole request is within the record limit. ``publish_ids``, one per record (or
        none), makes the publish idempotent: a record whose id was applied within the dedupe
        window is skipped and counted in ``Published.duplicates``.
        """
        now = self._clock()
        if publish_ids:
            records = list(records)
            if len(publish_ids) != len(records):
                raise PlatformError(
                    INVALID,
                    f"{len(publish_ids)} publish ids for {len(records)} records "
                    "(give one per record, or none)",
                )
        window = self.dedupe
        now_s = now / 1e9
        fresh_ids: dict[str, None] = {}
        duplicates = 0
        limit = self.config.max_record_bytes
        epoch = self.epoch
        publisher = app.name
        # Per type named in this publish: its definition, cache bucket and field checker.
        resolved: dict[_TypeId, tuple[TypeDef, dict[TopicKey, pb.Record], _Checker]] = {}
        staged: dict[TopicKey, tuple[dict[TopicKey, pb.Record], pb.Record]] = {}
        accepted: list[pb.Record] = []
        keys: list[TopicKey] = []
        # No record can be over the limit when the whole request is not.
        check_sizes = total_bytes is None or total_bytes > limit
        for i, record in enumerate(records):
            if publish_ids:
                pid = publish_ids[i]
                if pid:
                    if pid in fresh_ids or window.seen(pid, now_s):
                        duplicates += 1
                        continue
                    if len(pid) > MAX_PUBLISH_ID:
                        raise PlatformError(
                            INVALID,
                            f"record {i}: publish id of {len(pid)} chars, over the limit of "
                            f"{MAX_PUBLISH_ID}",
                        )
                    fresh_ids[pid] = None
                    record.header.publish_id = pid
            # Stamped in place: the request is the platform's own, and a refused publish
            # discards it whole.
            h = record.header
            tid = (h.schema, h.data_type)
            entry = resolved.get(tid)
            if entry is None:
                typedef = self._publishable(app, h.schema, h.data_type, f"record {i}")
                entry = (
                    typedef,
                    self._cache.setdefault((typedef.schema, typedef.name), {}),
                    self._checker(typedef),
                )
                resolved[tid] = entry
            typedef, bucket, check = entry
            id_ = h.id
            if not id_:
                raise PlatformError(INVALID, f"record {i} ({typedef.qualified}): id is required")
            if check_sizes and record.ByteSize() > limit:
                self._check_size(record, f"record {i} ({typedef.qualified} id={id_!r})")
            schema = typedef.schema
            h.schema = schema
            source = h.source
            if not source:
                source = h.source = publisher
            key = (schema, typedef.name, source, h.group, id_)
            held = staged.get(key)
            previous = held[1] if held is not None else bucket.get(key)
            data = record.data
            if h.voided and not data:
                record.data = previous.data if previous is not None else b"{}"
            else:
                try:
                    check(decode_data(data))
                except ValueError as exc:
                    where = f"record {i} ({typedef.qualified} id={id_!r})"
                    raise PlatformError(INVALID, f"{where}: {exc}") from None
            h.seq = (previous.header.seq if previous is not None else self._seq_floor) + 1
            h.timestamp_ns = now
            h.publisher = publisher
            h.epoch = epoch
            staged[key] = (bucket, record)
            accepted.append(record)
            keys.append(key)
        kinds = frozenset((t.schema, t.name) for t, _, _ in resolved.values())
        published = self._commit_staged(accepted, keys, staged, store, kinds)
        for pid in fresh_ids:
            window.add(pid, now_s)
        if duplicates or fresh_ids:
            return dataclasses.replace(
                published, duplicates=duplicates, publish_ids=tuple(fresh_ids)
            )
        return published

    def _checker(self, typedef: TypeDef) -> _Checker:
        tid = (typedef.schema, typedef.name)
        cached = self._checkers.get(tid)
        if cached is None or cached[0] is not typedef:
            cached = (typedef, field_checker(typedef.name, typedef.fields, decoded=True))
            self._checkers[tid] = cached
        return cached[1]

    def edit(self, app: AppConfig, key: pb.Topic, patch: bytes, publish_id: str = "") -> Published:
        """Apply a JSON patch to a cached (not voided) record; returns the new record. An
        edit whose ``publish_id`` was applied within the dedupe window is not applied again."""
        now_s = self._clock() / 1e9
        if publish_id and self.dedupe.seen(publish_id, now_s):
            return Published([], duplicates=1)
        if len(publish_id) > MAX_PUBLISH_ID:
            raise PlatformError(
                INVALID,
                f"publish id of {len(publish_id)} chars, over the limit of {MAX_PUBLISH_ID}",
            )
        typedef = self.find_type(key.schema, key.data_type)
        if not app.can_publish(typedef.schema, typedef.name):
            raise PlatformError(
                PERMISSION_DENIED, f"application '{app.name}' may not edit {typedef.qualified}"
            )
        if not key.id:
            raise PlatformError(INVALID, f"edit of {typedef.qualified}: the key needs an id")
        tkey = (typedef.schema, typedef.name, key.source or app.name, key.group, key.id)
        previous = self._cached(tkey)
        if previous is None or previous.header.voided:
            state = "no record" if previous is None else "only a voided record"
            raise PlatformError(NOT_FOUND, f"{state} to edit at {_key_text(tkey)}")
        try:
            changes = decode_data(patch)
            check_fields(typedef.name, typedef.fields, changes)
        except ValueError as exc:
            raise PlatformError(INVALID, f"edit of {_key_text(tkey)}: {exc}") from None
        merged = decode_data(previous.data)
        merged.update(changes)
        edited = pb.Record(header=pb.KeyHeader(), data=encode_data(merged))
        edited.header.CopyFrom(previous.header)
        edited.header.seq += 1
        edited.header.timestamp_ns = self._clock()
        edited.header.publisher = app.name
        edited.header.epoch = self.epoch
        edited.header.publish_id = publish_id
        self._check_size(edited, f"edited record {_key_text(tkey)}")
        published = self._commit([edited], store=False)
        if publish_id:
            self.dedupe.add(publish_id, now_s)
            return dataclasses.replace(published, publish_ids=(publish_id,))
        return published

    def snapshot(
        self, app: AppConfig, pattern: pb.Topic, order: Literal["key", "accepted"] = "key"
    ) -> list[pb.Record]:
        """Cached, not voided, readable records under ``pattern``, sorted by topic key (or in
        the order the platform accepted their latest versions)."""
        self._check_pattern(app, pattern)
        fine = bool(pattern.source or pattern.group or pattern.id)
        found: list[tuple[TopicKey, pb.Record]] = []
        for (schema, name), bucket in self._cache.items():
            if (pattern.schema and schema != pattern.schema) or (
                pattern.data_type and name != pattern.data_type
            ):
                continue
            if not app.can_read(schema, name):
                continue
            found.extend(
                (key, r)
                for key, r in bucket.items()
                if not r.header.voided and (not fine or matches(pattern, r.header))
            )
        if order == "key":
            found.sort(key=itemgetter(0))
        else:
            accepted = self._accepted
            found.sort(key=lambda pair: accepted[pair[0]])
        return [r for _, r in found]

    def record_count(self) -> int:
        """How many topics are cached (voided ones included)."""
        return sum(len(bucket) for bucket in self._cache.values())

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(
        self, session_id: str, sub_id: int, pattern: pb.Topic, cached: bool = True
    ) -> list[pb.Record]:
        """Register a subscription and return its cached records (``[]`` unless ``cached``),
        in acceptance order, so the cached part reads like the live updates that follow.

        Call ``fanout`` only after this returns: the snapshot and the registration are one
        step, so no live update is lost or delivered before the snapshot.
        """
        app = self.app_for(session_id)
        self._unindex_dropped()
        subs = self._subs.get(session_id)
        if subs is None:
            subs = self._subs[session_id] = {}
            self._ranks += 1
            self._indexed[session_id] = (self._ranks, {})
        if sub_id in subs:
            raise PlatformError(INVALID, f"sub_id {sub_id} is already in use in this session")
        snapshot = self.snapshot(app, pattern, order="accepted") if cached else []
        if not cached:
            self._check_pattern(app, pattern)
        saved = pb.Topic()
        saved.CopyFrom(pattern)
        subs[sub_id] = saved
        session_rank, indexed = self._indexed[session_id]
        self._ranks += 1
        sub = indexed[sub_id] = (session_rank, self._ranks, session_id, sub_id)
        self._index.add(sub, topic_key(saved))
        return snapshot

    def resume(
        self,
        session_id: str,
        sub_id: int,
        pattern: pb.Topic,
        cached: bool,
        epoch: int,
        after: int,
    ) -> Resumed:
        """Register a subscription coming back after position ``(epoch, after)``.

        When the journal still holds every record since, those under ``pattern`` are
        handed back in order (nothing re-snapshotted, nothing twice). After a restart
        without a store (a new epoch) this run's records are all handed back if the journal
        still holds its first one, and the earlier run's undelivered records are a gap of
        unknown size. Otherwise the gap names what fell out of the journal, and the
        subscription gets a snapshot if ``cached``, else what the journal still holds.
        """
        app = self.app_for(session_id)
        journal = self.journal
        journal.expire(self._clock() / 1e9)
        if epoch == self.epoch and journal.covers(after):
            replay = self._readable(app, pattern, journal.since(after))
            self.subscribe(session_id, sub_id, pattern, cached=False)
            return Resumed(replay, snapshot=False, gap=None)
        if epoch != self.epoch and journal.first == 1:
            replay = self._readable(app, pattern, journal.since(0))
            self.subscribe(session_id, sub_id, pattern, cached=False)
            gap = pb.Gap(
                epoch=epoch,
                after_pos=after,
                missed=0,
                reason="the platform restarted without a store: what its earlier run "
                "accepted after this position and had not yet delivered is lost",
            )
            return Resumed(replay, snapshot=False, gap=gap)
        if epoch == self.epoch:
            missed = journal.first - 1 - after
            reason = f"the journal no longer holds positions {after + 1}..{journal.first - 1}"
        else:
            missed = 0
            reason = "the platform restarted and its journal no longer holds this run's start"
        gap = pb.Gap(epoch=epoch, after_pos=after, missed=max(missed, 0), reason=reason)
        if not cached:
            # LIVE_ONLY: what the journal still holds, so only the gap itself is lost.
            replay = self._readable(app, pattern, journal.since(journal.first - 1))
            self.subscribe(session_id, sub_id, pattern, cached=False)
            return Resumed(replay, snapshot=False, gap=gap)
        records = self.subscribe(session_id, sub_id, pattern, cached)
        return Resumed(records, snapshot=True, gap=gap)

    def _readable(
        self, app: AppConfig, pattern: pb.Topic, records: list[pb.Record]
    ) -> list[pb.Record]:
        self._check_pattern(app, pattern)
        allowed: dict[_TypeId, bool] = {}
        out = []
        for record in records:
            h = record.header
            tid = (h.schema, h.data_type)
            ok = allowed.get(tid)
            if ok is None:
                ok = allowed[tid] = app.can_read(*tid)
            if ok and matches(pattern, h):
                out.append(record)
        return out

    @property
    def position(self) -> tuple[int, int]:
        """``(epoch, pos)`` of the newest accepted record: where a subscription made now
        stands once its snapshot is sent."""
        return self.epoch, self.journal.last

    def unsubscribe(self, session_id: str, sub_id: int) -> bool:
        """Stop a subscription; False if there was none with that id."""
        self._unindex_dropped()
        if self._subs.get(session_id, {}).pop(sub_id, None) is None:
            return False
        self._index.remove(self._indexed[session_id][1].pop(sub_id))
        return True

    def clear_subscriptions(self, session_id: str) -> int:
        """Remove every subscription of a session (its stream ended); returns how many."""
        self._unindex(session_id)
        return len(self._subs.pop(session_id, {}))

    def _unindex(self, session_id: str) -> None:
        _, indexed = self._indexed.pop(session_id, (0, {}))
        remove = self._index.remove
        for sub in indexed.values():
            remove(sub)

    def _unindex_dropped(self) -> None:
        """Unindex the sessions ``drop_session`` forgot (_indexed holds every _subs key)."""
        if len(self._indexed) != len(self._subs):
            for session_id in [s for s in self._indexed if s not in self._subs]:
                self._unindex(session_id)

    @property
    def subscription_count(self) -> int:
        """How many subscriptions all sessions hold."""
        return sum(len(subs) for subs in self._subs.values())

    def subscriptions(self, session_id: str) -> dict[int, pb.Topic]:
        """The session's subscriptions: sub_id -> pattern."""
        return dict(self._subs.get(session_id, {}))

    def fanout(self, records: list[pb.Record], kinds: frozenset[_TypeId] | None = None) -> Fanout:
        """Who receives what: every matching subscription whose application may read the
        record's type gets the records in their original order (voided ones included).
        ``kinds``, the records' (schema, type) pairs when the caller knows them
        (``Published.kinds``), is not needed: the index finds the matching subscriptions.

        Costs the matching subscriptions only: each record looks up its topic in the
        subscription index once per pattern form in use (exact topic, or which of source,
        group, id, schema and type a pattern leaves open)."""
        self._unindex_dropped()
        match = self._index.match
        sessions = self._sessions
        # (schema, type) -> session_id -> may the session's application read it: asked
        # once per session and type.
        readers: dict[_TypeId, dict[str, bool]] = {}
        hits: dict[_Sub, list[pb.Record]] = {}
        for record in records:
            h = record.header
            subs = match((h.schema, h.data_type, h.source, h.group, h.id))
            if not subs:
                continue
            tid = (h.schema, h.data_type)
            allowed = readers.get(tid)
            if allowed is None:
                allowed = readers[tid] = {}
            for sub in subs:
                session_id = sub[2]
                ok = allowed.get(session_id)
                if ok is None:
                    app = sessions.get(session_id)
                    ok = allowed[session_id] = app is not None and app.can_read(*tid)
                if ok:
                    got = hits.get(sub)
                    if got is None:
                        hits[sub] = [record]
                    else:
                        got.append(record)
        result: Fanout = {}
        for sub in sorted(hits) if len(hits) > 1 else hits:
            session = result.get(sub[2])
            if session is None:
                session = result[sub[2]] = {}
            session[sub[3]] = hits[sub]
        return result
