"""One SQLite database (a file, or memory) with the emulator's schema, and the lock and
transactions that let the in-process emulator serve several threads and `entra-batch
emulator` share the file with it.

Every user row carries the whole Graph object as JSON (`data`) plus the few columns that
need an index. `change_seq` grows per tenant on every write and drives `users/delta`.

With replication lag (`replication.py`), `pending_users` holds, for each user written in the
last moments, the version readers still see (its row as it was, or state `absent` for a user
not created yet) and when the newer one becomes visible; `pending_identities` holds that
version's identities. Rows whose moment has passed are dead and removed on later writes.

Every query a request runs searches an index by its key (id, UPN, mail, identity, rowid;
tests/emulator/test_query_plans.py asks SQLite for each plan): only pages walk the listing
and change indexes, a page at a time. A file made by an earlier version gains the indexes
added since when it is opened (`CREATE INDEX IF NOT EXISTS`, then `MIGRATIONS`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
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
CREATE INDEX IF NOT EXISTS users_deleted ON users(tenant_id, state, deleted);
-- Lookups by UPN or mail among live or deleted users (Store.user, mail_holder, $filter on
-- /users and on the deleted items): with `state` among the key, SQLite never prefers
-- users_deleted's (tenant_id, state) prefix and walks every user of the tenant. The value
-- comes first so that a rowid subquery (`upn IN (...)`, odata.py) can search by it alone.
CREATE INDEX IF NOT EXISTS users_by_upn ON users(upn, tenant_id, state);
CREATE INDEX IF NOT EXISTS users_by_mail ON users(mail, tenant_id, state);
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
CREATE TABLE IF NOT EXISTS pending_users (
    seq INTEGER NOT NULL,
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    state TEXT NOT NULL,
    upn TEXT COLLATE NOCASE,
    display_name TEXT COLLATE NOCASE,
    mail TEXT COLLATE NOCASE,
    account_enabled INTEGER,
    created TEXT NOT NULL,
    deleted REAL,
    change_seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    visible_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_users_due ON pending_users(tenant_id, visible_at);
CREATE INDEX IF NOT EXISTS pending_users_listing ON pending_users(tenant_id, state, seq);
CREATE INDEX IF NOT EXISTS pending_users_upn ON pending_users(tenant_id, upn);
CREATE INDEX IF NOT EXISTS pending_users_by_upn ON pending_users(upn);
CREATE INDEX IF NOT EXISTS pending_users_by_mail ON pending_users(mail);
CREATE TABLE IF NOT EXISTS pending_identities (
    user_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    sign_in_type TEXT NOT NULL,
    issuer TEXT NOT NULL COLLATE NOCASE,
    assigned_id TEXT NOT NULL COLLATE NOCASE,
    live INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_identities_user ON pending_identities(user_id);
CREATE INDEX IF NOT EXISTS pending_identities_by_assigned_id ON pending_identities(assigned_id);
-- With --keep-password-digests (tests, the soak): a salted digest of each user's current
-- password, never the password, so a test can ask "does this customer have the password that
-- passwords.csv holds?" (userstore.password_is).
CREATE TABLE IF NOT EXISTS password_digests (user_id TEXT PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS extension_properties (
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (tenant_id, name)
);
-- The identity platform's side (idstore.py): administrators (member users with directory
-- roles, kept apart from the customers in `users`), device codes waiting for approval,
-- refresh tokens (a digest, never the token), federated credentials and the external issuers
-- they trust. An access token itself is never stored.
CREATE TABLE IF NOT EXISTS admins (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    upn TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    password_digest TEXT
);
CREATE INDEX IF NOT EXISTS admins_tenant ON admins(tenant_id);
CREATE TABLE IF NOT EXISTS device_codes (
    digest TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires REAL NOT NULL,
    state TEXT NOT NULL,
    admin_id TEXT
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    digest TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    admin_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_admin ON refresh_tokens(admin_id);
CREATE TABLE IF NOT EXISTS federated_credentials (
    client_id TEXT NOT NULL COLLATE NOCASE,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    audience TEXT NOT NULL,
    PRIMARY KEY (client_id, issuer, subject)
);
CREATE TABLE IF NOT EXISTS trusted_issuers (issuer TEXT PRIMARY KEY, jwks TEXT NOT NULL);
"""

# Columns added to a table after it first shipped: a file made by an earlier version gains
# them when it is opened (ALTER TABLE ... ADD COLUMN with the default every older row takes).
ADDED_COLUMNS = (
    ("apps", "public_client", "INTEGER NOT NULL DEFAULT 0"),
    ("apps", "delegated_scopes", "TEXT NOT NULL DEFAULT '[]'"),
    ("apps", "multi_tenant", "INTEGER NOT NULL DEFAULT 0"),
)

# A directory file made by an earlier version opens with the schema above (every index is
# created if missing); these statements then drop what it replaced. The partial index on
# (tenant_id, mail) of live users was never chosen for `mail_holder` (SQLite preferred
# users_deleted's prefix and walked the tenant); users_by_mail serves live and deleted.
MIGRATIONS = """
DROP INDEX IF EXISTS users_mail;
"""


class DatabaseUnavailable(Exception):
    """The emulator's directory file cannot be used: a directory, a link, another user's file,
    not SQLite. The message says which and names the path."""


def prepare_private_file(path: Path, *, create: bool) -> None:
    """Make `path` a regular file of ours with mode 0600 before SQLite opens it.

    A new file is created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, then fchmod-ed to
    exactly 0600 (the umask can only take bits away): its content never exists under another
    mode. An existing one is opened with O_NOFOLLOW and checked and tightened through that
    descriptor, never through the path. SQLite gives the -wal and -shm files it creates the
    mode of the main file (os_unix.c, findCreateFileMode and robust_open's fchmod), so a
    private main file makes them private too. A umask set around `connect` instead would
    change the mode of every file the whole process creates in the meantime (the umask is
    per process, not per thread), and would still leave the -wal file with the main file's
    mode."""
    cloexec = getattr(os, "O_CLOEXEC", 0)
    created = False
    try:
        if not create:
            raise FileExistsError
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | cloexec, 0o600)
        created = True
    except FileExistsError:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | cloexec)
        except FileNotFoundError:
            if create:
                raise DatabaseUnavailable(f"{path} disappeared while being opened; try again") from None
            return
        except OSError as exc:
            reason = "is a symbolic link" if os.path.islink(path) else f"cannot be opened ({exc.strerror or exc})"
            raise DatabaseUnavailable(f"{path} {reason}; the emulator keeps its directory in a regular file") from None
    except IsADirectoryError:
        raise DatabaseUnavailable(f"{path} is a directory; --db takes the path of a file") from None
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DatabaseUnavailable(f"{path} is a directory; --db takes the path of a file")
        if not stat.S_ISREG(info.st_mode):
            raise DatabaseUnavailable(f"{path} is not a regular file")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise DatabaseUnavailable(f"{path} belongs to another user; the emulator's directory holds client "
                                      "secrets and must be your own file")
        if created or stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Database:
    """One SQLite connection, used from one thread at a time (the lock makes the
    in-process emulator safe when a client drives it from several threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            # It holds client secrets and the token-signing key: private before SQLite opens it.
            file = Path(self.path)
            try:
                file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(f"cannot create the folder of {file}: {exc.strerror or exc}") from None
            prepare_private_file(file, create=True)
            for suffix in ("-wal", "-shm", "-journal"):
                prepare_private_file(Path(self.path + suffix), create=False)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            for statement in (SCHEMA + MIGRATIONS).split(";"):
                if statement.strip():
                    self._db.execute(statement)
            for table, column, declaration in ADDED_COLUMNS:
                present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    try:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                    except sqlite3.OperationalError as exc:
                        if "duplicate column" not in str(exc):  # another process added it first
                            raise
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open the emulator's directory {self.path}: {exc}") from None

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
