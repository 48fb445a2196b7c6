"""One SQLite database (a file, or memory) with the emulator's schema, and the lock and
transactions that let the in-process emulator serve several threads and `entra-batch
emulator` share the file with it.

Every user row carries the whole Graph object as JSON (`data`) plus the few columns that
need an index. `change_seq` grows per tenant on every write and drives `users/delta`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    default_domain TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    size_class TEXT NOT NULL,
    extensions_app_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
    client_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    display_name TEXT NOT NULL,
    secret TEXT,
    certificate TEXT,
    roles TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    state TEXT NOT NULL,
    upn TEXT COLLATE NOCASE,
    display_name TEXT COLLATE NOCASE,
    mail TEXT COLLATE NOCASE,
    account_enabled INTEGER,
    created TEXT NOT NULL,
    deleted REAL,
    change_seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_live_upn ON users(tenant_id, upn) WHERE state = 'live';
CREATE INDEX IF NOT EXISTS users_listing ON users(tenant_id, state, seq);
CREATE INDEX IF NOT EXISTS users_changes ON users(tenant_id, change_seq);
CREATE INDEX IF NOT EXISTS users_mail ON users(tenant_id, mail) WHERE state = 'live';
CREATE INDEX IF NOT EXISTS users_deleted ON users(tenant_id, state, deleted);
CREATE TABLE IF NOT EXISTS identities (
    user_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    sign_in_type TEXT NOT NULL,
    issuer TEXT NOT NULL COLLATE NOCASE,
    assigned_id TEXT NOT NULL COLLATE NOCASE,
    live INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS identities_live ON identities(tenant_id, issuer, assigned_id) WHERE live = 1;
CREATE INDEX IF NOT EXISTS identities_by_assigned_id ON identities(assigned_id);
CREATE INDEX IF NOT EXISTS identities_user ON identities(user_id);
CREATE TABLE IF NOT EXISTS extension_properties (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (tenant_id, name)
);
"""


class Database:
    """One SQLite connection, used from one thread at a time (the lock makes the
    in-process emulator safe when a client drives it from several threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        if self.path != ":memory:":
            Path(self.path).chmod(0o600)  # it holds client secrets

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()
