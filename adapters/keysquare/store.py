"""The platform's message store, in SQLite: the latest stored record per topic key and, in a
file, everything a restart must not lose.

- ``records``: the latest record of each stored topic; they survive a restart with their
  seqs, so a topic's seq keeps increasing after the platform reloads them.
- ``journal``: every accepted record with its position, one row per request (trimmed from
  the front as the platform's journal forgets), so a subscription resumes across a
  restart.
- ``publish_ids``: the dedupe window's ids with the time they were applied, one row per
  request, so a resend after a restart is applied once.
- ``meta``: the platform's epoch and its newest position.

``write`` puts one request's changes in one transaction: the platform acknowledges a request
only after it returns. Thread-safe: one connection guarded by a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import keysquare_pb2 as pb

__all__ = ["MEMORY", "MessageStore", "Restored"]

MEMORY = ":memory:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    schema TEXT NOT NULL,
    data_type TEXT NOT NULL,
    source TEXT NOT NULL,
    grp TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    timestamp_ns INTEGER NOT NULL,
    voided INTEGER NOT NULL,
    publisher TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (schema, data_type, source, grp, id)
);
CREATE TABLE IF NOT EXISTS journal (
    last_pos INTEGER PRIMARY KEY,
    first_pos INTEGER NOT NULL,
    at REAL NOT NULL,
    records BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS publish_ids (
    at REAL NOT NULL,
    ids TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS publish_ids_at ON publish_ids (at);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_META = """
INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""

_UPSERT = """
INSERT INTO records (schema, data_type, source, grp, id, seq, epoch, timestamp_ns, voided,
                     publisher, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (schema, data_type, source, grp, id) DO UPDATE SET
    seq = excluded.seq, epoch = excluded.epoch, timestamp_ns = excluded.timestamp_ns,
    voided = excluded.voided,
    publisher = excluded.publisher, data = excluded.data
WHERE excluded.seq > records.seq
"""

_SELECT = """
SELECT schema, data_type, source, grp, id, seq, epoch, timestamp_ns, voided, publisher, data
FROM records ORDER BY schema, data_type, source, grp, id
"""


@dataclass
class Restored:
    """What a store file holds for a platform that starts on it."""

    epoch: int | None = None  # None: a new store (the platform picks its epoch)
    last_pos: int = 0  # the newest position given in that epoch
    journal: list[tuple[pb.Record, float]] = field(default_factory=list)  # by position
    publish_ids: list[tuple[str, float]] = field(default_factory=list)  # oldest first


class MessageStore:
    """The latest stored record per topic key; ``":memory:"`` keeps it for this process only."""

    def __init__(self, path: str | Path = MEMORY) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        try:
            if self.path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise

    @property
    def persistent(self) -> bool:
        """False for an in-memory store (nothing survives the process)."""
        return self.path != MEMORY

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"message store {self.path!r} is closed")
        return self._db

    def save(self, records: Iterable[pb.Record]) -> int:
        """Insert or replace each record by topic key (a lower seq never overwrites); returns
        how many rows were given."""
        rows = _rows(records)
        if not rows:
            return 0
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.executemany(_UPSERT, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return len(rows)

    def write(
        self,
        *,
        epoch: int,
        journal: Sequence[pb.Record],
        journal_blob: bytes | None = None,
        at: float,
        first_pos: int,
        stored: Sequence[pb.Record] = (),
        publish_ids: Sequence[str] = (),
        ids_before: float | None = None,
    ) -> None:
        """Persist one accepted request in one transaction: its records in the journal
        (stamped with their positions, accepted at ``at``; ``journal_blob``, when given, is
        them serialized as a Delivery's records), the stored ones in ``records``,
        its publish ids; forget journal rows before ``first_pos`` and ids applied before
        ``ids_before``. Only a file store keeps the journal and ids; in memory this is
        ``save(stored)``."""
        if not self.persistent:
            self.save(stored)
            return
        rows = _rows(stored)
        # One row per request: its records as one serialized Delivery.
        blob = journal_blob
        if blob is None and journal:
            blob = pb.Delivery(records=journal).SerializeToString()
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                if journal:
                    first, last = journal[0].header.pos, journal[-1].header.pos
                    db.execute(
                        "INSERT OR REPLACE INTO journal VALUES (?, ?, ?, ?)",
                        (last, first, at, blob),
                    )
                    db.execute(_META, ("last_pos", last))
                    db.execute(_META, ("epoch", epoch))
                db.execute("DELETE FROM journal WHERE last_pos < ?", (first_pos,))
                if rows:
                    db.executemany(_UPSERT, rows)
                if publish_ids:  # one row per request: its ids as a JSON list
                    db.execute(
                        "INSERT INTO publish_ids VALUES (?, ?)", (at, json.dumps(list(publish_ids)))
                    )
                if ids_before is not None:
                    db.execute("DELETE FROM publish_ids WHERE at < ?", (ids_before,))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def start_epoch(self, epoch: int) -> None:
        """Record the epoch of a platform starting on a new store file."""
        if not self.persistent:
            return
        with self._lock:
            self._conn().execute(_META, ("epoch", epoch))

    def restore(self, since: float) -> Restored:
        """The epoch, newest position, journal entries and the publish ids applied at or after
        ``since`` (seconds) a file store holds; empty for an in-memory store."""
        if not self.persistent:
            return Restored()
        with self._lock:
            db = self._conn()
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            rows = db.execute("SELECT records, at FROM journal ORDER BY last_pos").fetchall()
            ids = db.execute(
                "SELECT ids, at FROM publish_ids WHERE at >= ? ORDER BY at, rowid", (since,)
            ).fetchall()
        epoch = meta.get("epoch")
        return Restored(
            epoch=int(epoch) if epoch is not None else None,
            last_pos=int(meta.get("last_pos", 0)),
            journal=[
                (record, float(at))
                for blob, at in rows
                for record in pb.Delivery.FromString(bytes(blob)).records
            ],
            publish_ids=[(str(pid), float(at)) for blob, at in ids for pid in json.loads(blob)],
        )

    def load_all(self) -> list[pb.Record]:
        """Every stored record, sorted by topic key."""
        with self._lock:
            rows = self._conn().execute(_SELECT).fetchall()
        return [
            pb.Record(
                header=pb.KeyHeader(
                    schema=schema,
                    data_type=data_type,
                    source=source,
                    group=grp,
                    id=id_,
                    seq=seq,
                    epoch=epoch,
                    timestamp_ns=ts,
                    voided=bool(voided),
                    publisher=publisher,
                ),
                data=bytes(data),
            )
            for (
                schema,
                data_type,
                source,
                grp,
                id_,
                seq,
                epoch,
                ts,
                voided,
                publisher,
                data,
            ) in rows
        ]

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn().execute("SELECT COUNT(*) FROM records").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _rows(records: Iterable[pb.Record]) -> list[tuple[object, ...]]:
    return [
        (
            r.header.schema,
            r.header.data_type,
            r.header.source,
            r.header.group,
            r.header.id,
            r.header.seq,
            r.header.epoch,
            r.header.timestamp_ns,
            int(r.header.voided),
            r.header.publisher,
            r.data,
        )
        for r in records
    ]
