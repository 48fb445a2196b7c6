"""The run journal: a SQLite file in the run folder recording each row's progress, so that
`entra-batch resume` finishes an interrupted run exactly once (ARCHITECTURE.md).

A row moves `sent → done`. `sent` is committed before its request leaves; `done`, with the
outcome, after the answer came back (and, for a generated password, after the password was
fsynced to passwords.csv). Rows never journaled are still pending. No password, secret or
token is ever written here.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outcome import Outcome, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row INTEGER PRIMARY KEY,
    state TEXT NOT NULL,            -- sent | done
    key TEXT NOT NULL,
    status TEXT,
    object_id TEXT,
    http_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at REAL,                   -- when the request left (wall clock), for reconciling
    generated_password INTEGER NOT NULL DEFAULT 0
);
"""


class RunLocked(Exception):
    pass


@dataclass(frozen=True)
class SentRow:
    row: int
    key: str
    sent_at: float
    generated_password: bool
    attempts: int


class Journal:
    FILE = "journal.db"

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = _lock(run_dir)
        self._db = sqlite3.connect(run_dir / self.FILE, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        self._pending_done: list[tuple[Any, ...]] = []

    def close(self) -> None:
        self.flush()
        self._db.close()
        os.close(self._lock)

    # ---- run description ---------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: Any) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in values.items()])
        self._db.execute("COMMIT")

    # ---- row states --------------------------------------------------------------------

    def mark_sent(self, rows: Iterable[SentRow]) -> None:
        """Committed before the requests leave: a crash after this point is reconciled."""
        self.flush()
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO rows(row, state, key, sent_at, generated_password, attempts) VALUES (?, 'sent', ?, ?, ?, ?)"
            " ON CONFLICT(row) DO UPDATE SET state='sent', sent_at=excluded.sent_at,"
            " generated_password=excluded.generated_password, attempts=excluded.attempts",
            [(r.row, r.key, r.sent_at, int(r.generated_password), r.attempts) for r in rows],
        )
        self._db.execute("COMMIT")

    def mark_done(self, outcomes: Iterable[Outcome], *, commit: bool = True) -> None:
        self._pending_done.extend(
            (o.row, o.key, o.status.value, o.object_id, o.http_status, o.error_code, o.error_message, o.attempts)
            for o in outcomes
        )
        if commit or len(self._pending_done) >= 5000:
            self.flush()

    def flush(self) -> None:
        if not self._pending_done:
            return
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO rows(row, state, key, status, object_id, http_status, error_code, error_message, attempts)"
            " VALUES (?, 'done', ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(row) DO UPDATE SET state='done', key=excluded.key, status=excluded.status,"
            " object_id=excluded.object_id, http_status=excluded.http_status, error_code=excluded.error_code,"
            " error_message=excluded.error_message, attempts=excluded.attempts",
            self._pending_done,
        )
        self._db.execute("COMMIT")
        self._pending_done = []

    def states_between(self, first: int, last: int) -> dict[int, str]:
        self.flush()
        return dict(self._db.execute("SELECT row, state FROM rows WHERE row BETWEEN ? AND ?", (first, last)))

    def sent_rows(self) -> list[SentRow]:
        self.flush()
        return [SentRow(r, k, s or 0.0, bool(g), a) for r, k, s, g, a in self._db.execute(
            "SELECT row, key, sent_at, generated_password, attempts FROM rows WHERE state = 'sent' ORDER BY row")]

    def sent_row(self, row: int) -> SentRow | None:
        found = self._db.execute(
            "SELECT row, key, sent_at, generated_password, attempts FROM rows WHERE row = ? AND state = 'sent'", (row,)
        ).fetchone()
        return SentRow(found[0], found[1], found[2] or 0.0, bool(found[3]), found[4]) if found else None

    def outcomes(self) -> Iterator[Outcome]:
        self.flush()
        cursor = self._db.execute(
            "SELECT row, key, status, object_id, http_status, error_code, error_message, attempts"
            " FROM rows WHERE state = 'done' ORDER BY row")
        for row, key, status, object_id, http_status, code, message, attempts in cursor:
            yield Outcome(row, key, Status(status), object_id or "", http_status, code or "", message or "", attempts)

    def counts(self) -> dict[str, int]:
        self.flush()
        return dict(self._db.execute("SELECT status, COUNT(*) FROM rows WHERE state = 'done' GROUP BY status"))

    def rows_total(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])


def _lock(run_dir: Path) -> int:
    """One process per run folder: the lock dies with its process, even on kill -9."""
    fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(f"another entra-batch process is working on {run_dir}; wait for it to finish "
                        "(or stop it) before resuming") from None
    return fd
