"""The platform's message store: the latest stored record per topic key, in SQLite.

Stored records survive a server restart with their seqs, so a topic's seq keeps increasing
after the platform reloads them. Thread-safe: one connection guarded by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from . import keysquare_pb2 as pb

__all__ = ["MEMORY", "MessageStore"]

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
)
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
            self._db.execute(_SCHEMA)
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
        rows = [
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
