"""The emulator's directory, kept in SQLite so that state survives a restart of the server
and is shared by the in-process emulator and `entra-batch emulator` on the same file.

The store knows tables, not Graph: which user holds a UPN, an identity or a mail address,
rows in insertion order, change sequence numbers for delta. The rules about what may be
written live in `directory.py`.

Every user row carries the whole Graph object as JSON (`data`) plus the few columns that
need an index. `change_seq` grows per tenant on every write and drives `users/delta`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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

# Every user permission an app can hold (GRAPH.md §10), plus what reads the tenant itself.
ALL_USER_PERMISSIONS = (
    "User.ReadWrite.All",
    "User.Read.All",
    "User.Create",
    "User.ReadUpdate.All",
    "User.EnableDisableAccount.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.DeleteRestore.All",
    "User.ManageIdentities.All",
    "User-Mail.ReadWrite.All",
    "User-Phone.ReadWrite.All",
    "Organization.Read.All",
    # Lists the custom attributes (the extensions app's extensionProperties) for `export`.
    "Application.Read.All",
)

DEFAULT_DOMAIN = "contoso.onmicrosoft.com"


@dataclass(frozen=True)
class Tenant:
    id: str
    default_domain: str
    display_name: str
    kind: str  # "external" (External ID customer tenant) or "b2c"
    size_class: str  # "auto", "S", "M" or "L"
    extensions_app_id: str

    @property
    def extensions_app_hex(self) -> str:
        return self.extensions_app_id.replace("-", "").lower()


@dataclass(frozen=True)
class App:
    client_id: str
    tenant_id: str
    display_name: str
    secret: str | None
    certificate: str | None
    roles: tuple[str, ...]


@dataclass(frozen=True)
class IdentityRow:
    sign_in_type: str
    issuer: str
    assigned_id: str


@dataclass(frozen=True)
class UserRow:
    seq: int
    id: str
    state: str
    change_seq: int
    deleted: float | None
    data: dict[str, Any]


class Store:
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
        self._seed()

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
            return self._db.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ---- meta, tenants, apps -------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _seed(self) -> None:
        """A new store starts with one customer tenant and one app holding every user
        permission (PRODUCT.md, Targets), and the key that signs the emulator's tokens."""
        with self.transaction() as db:
            if db.execute("SELECT value FROM meta WHERE key = 'signing_key'").fetchone() is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                db.execute("INSERT INTO meta(key, value) VALUES ('signing_key', ?)", (pem,))
                db.execute("INSERT INTO meta(key, value) VALUES ('signing_kid', ?)", (secrets.token_hex(8),))
        if self.meta("default_client_id") is None:
            tenant = self.add_tenant(DEFAULT_DOMAIN, display_name="Contoso customers")
            app = self.add_app(tenant.id, ALL_USER_PERMISSIONS, display_name="entra-batch")
            self.set_meta("default_client_id", app.client_id)
            self.set_meta("default_app_upgraded", "1")
        elif self.meta("default_app_upgraded") is None:
            # A directory made by an older version: its app gains what was added since, once.
            older = self.app(self.meta("default_client_id") or "")
            if older is not None:
                roles = list(dict.fromkeys([*older.roles, *ALL_USER_PERMISSIONS]))
                with self.transaction() as db:
                    db.execute("UPDATE apps SET roles = ? WHERE client_id = ?", (json.dumps(roles), older.client_id))
            self.set_meta("default_app_upgraded", "1")

    def add_tenant(
        self,
        default_domain: str,
        *,
        display_name: str | None = None,
        kind: str = "external",
        size_class: str = "auto",
        tenant_id: str | None = None,
    ) -> Tenant:
        if kind not in ("external", "b2c"):
            raise ValueError("kind is 'external' or 'b2c'")
        if size_class not in ("auto", "S", "M", "L"):
            raise ValueError("size_class is auto, S, M or L")
        tenant = Tenant(
            id=tenant_id or str(uuid.uuid4()),
            default_domain=default_domain.lower(),
            display_name=display_name or default_domain.split(".")[0],
            kind=kind,
            size_class=size_class,
            extensions_app_id=str(uuid.uuid4()),
        )
        with self.transaction() as db:
            db.execute(
                "INSERT INTO tenants(id, default_domain, display_name, kind, size_class, extensions_app_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (tenant.id, tenant.default_domain, tenant.display_name, tenant.kind, tenant.size_class,
                 tenant.extensions_app_id),
            )
        return tenant

    def tenant(self, key: str) -> Tenant | None:
        """By tenant id or by default domain, as the token endpoint accepts either."""
        row = self._one("SELECT * FROM tenants WHERE id = ? OR default_domain = ?", (key.lower(), key))
        return Tenant(**dict(row)) if row else None

    def tenants(self) -> list[Tenant]:
        return [Tenant(**dict(r)) for r in self._all("SELECT * FROM tenants ORDER BY rowid")]

    def add_app(
        self,
        tenant_id: str,
        roles: Iterable[str],
        *,
        display_name: str = "app",
        secret: str | None = None,
        certificate_pem: str | None = None,
        client_id: str | None = None,
    ) -> App:
        app = App(
            client_id=client_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            display_name=display_name,
            secret=secret if secret is not None else (None if certificate_pem else _new_secret()),
            certificate=certificate_pem,
            roles=tuple(roles),
        )
        with self.transaction() as db:
            db.execute(
                "INSERT INTO apps(client_id, tenant_id, display_name, secret, certificate, roles) VALUES (?, ?, ?, ?, ?, ?)",
                (app.client_id, app.tenant_id, app.display_name, app.secret, app.certificate, json.dumps(app.roles)),
            )
        return app

    def app(self, client_id: str) -> App | None:
        row = self._one("SELECT * FROM apps WHERE client_id = ?", (client_id.lower(),))
        if row is None:
            return None
        values = dict(row)
        values["roles"] = tuple(json.loads(values["roles"]))
        return App(**values)

    def default_app(self) -> App:
        app = self.app(self.meta("default_client_id") or "")
        assert app is not None, "the store was seeded with a default app"
        return app

    def signing_key(self) -> tuple[str, str]:
        return self.meta("signing_key") or "", self.meta("signing_kid") or ""

    # ---- users ---------------------------------------------------------------------------

    def user(self, tenant_id: str, key: str, states: tuple[str, ...] = ("live",)) -> UserRow | None:
        """By object id or userPrincipalName."""
        marks = ",".join("?" * len(states))
        row = self._one(
            f"SELECT * FROM users WHERE tenant_id = ? AND state IN ({marks}) AND (id = ? OR upn = ?)"
            " ORDER BY state = 'live' DESC, seq DESC LIMIT 1",
            (tenant_id, *states, key.lower(), key),
        )
        return _user_row(row) if row else None

    def upn_holder(self, tenant_id: str, upn: str) -> str | None:
        row = self._one("SELECT id FROM users WHERE tenant_id = ? AND state = 'live' AND upn = ?", (tenant_id, upn))
        return row["id"] if row else None

    def mail_holder(self, tenant_id: str, mail: str) -> str | None:
        row = self._one("SELECT id FROM users WHERE tenant_id = ? AND state = 'live' AND mail = ?", (tenant_id, mail))
        return row["id"] if row else None

    def identity_holder(self, tenant_id: str, issuer: str, assigned_id: str) -> str | None:
        row = self._one(
            "SELECT user_id FROM identities WHERE tenant_id = ? AND live = 1 AND issuer = ? AND assigned_id = ?",
            (tenant_id, issuer, assigned_id),
        )
        return row["user_id"] if row else None

    def live_user_count(self, tenant_id: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND state = 'live'", (tenant_id,))
        return int(row["n"]) if row else 0

    def _next_change(self, db: sqlite3.Connection, tenant_id: str) -> int:
        row = db.execute("SELECT COALESCE(MAX(change_seq), 0) + 1 FROM users WHERE tenant_id = ?", (tenant_id,)).fetchone()
        return int(row[0])

    def max_change(self, tenant_id: str) -> int:
        row = self._one("SELECT COALESCE(MAX(change_seq), 0) AS n FROM users WHERE tenant_id = ?", (tenant_id,))
        return int(row["n"]) if row else 0

    def write_user(
        self,
        db: sqlite3.Connection,
        tenant_id: str,
        data: dict[str, Any],
        identities: list[IdentityRow] | None,
        *,
        state: str = "live",
        deleted: float | None = None,
    ) -> None:
        """Insert or replace a user inside the caller's transaction. `identities` None keeps
        the stored ones (only their liveness follows `state`)."""
        change = self._next_change(db, tenant_id)
        user_id = data["id"]
        existing = db.execute("SELECT seq FROM users WHERE id = ?", (user_id,)).fetchone()
        values = (
            state,
            data.get("userPrincipalName"),
            data.get("displayName"),
            data.get("mail"),
            None if data.get("accountEnabled") is None else int(bool(data["accountEnabled"])),
            deleted,
            change,
            json.dumps(data, separators=(",", ":")),
        )
        if existing:
            db.execute(
                "UPDATE users SET state=?, upn=?, display_name=?, mail=?, account_enabled=?, deleted=?, change_seq=?, data=?"
                " WHERE id = ?",
                (*values, user_id),
            )
        else:
            db.execute(
                "INSERT INTO users(state, upn, display_name, mail, account_enabled, deleted, change_seq, data, id, tenant_id, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, user_id, tenant_id, data.get("createdDateTime") or ""),
            )
        extensions = [name for name in data if name.startswith("extension_")]
        if extensions:  # declared on first use (docs/emulator.md)
            db.executemany("INSERT OR IGNORE INTO extension_properties(tenant_id, name) VALUES (?, ?)",
                           [(tenant_id, name) for name in extensions])
        live = 1 if state == "live" else 0
        if identities is not None:
            db.execute("DELETE FROM identities WHERE user_id = ?", (user_id,))
            db.executemany(
                "INSERT INTO identities(user_id, tenant_id, sign_in_type, issuer, assigned_id, live) VALUES (?, ?, ?, ?, ?, ?)",
                [(user_id, tenant_id, i.sign_in_type, i.issuer, i.assigned_id, live) for i in identities],
            )
        else:
            db.execute("UPDATE identities SET live = ? WHERE user_id = ?", (live, user_id))

    def extension_properties(self, tenant_id: str) -> list[str]:
        """The custom attributes the tenant's users have been given, by full name."""
        return [row["name"] for row in self._all(
            "SELECT name FROM extension_properties WHERE tenant_id = ? ORDER BY name", (tenant_id,))]

    def purge_user(self, db: sqlite3.Connection, tenant_id: str, user_id: str) -> None:
        """Permanent deletion leaves a tombstone so that delta can report `reason: deleted`."""
        change = self._next_change(db, tenant_id)
        db.execute("DELETE FROM identities WHERE user_id = ?", (user_id,))
        db.execute(
            "UPDATE users SET state='purged', upn=NULL, display_name=NULL, mail=NULL, change_seq=?, data=? WHERE id = ?",
            (change, json.dumps({"id": user_id}), user_id),
        )

    def expired_deleted(self, tenant_id: str, cutoff: float) -> list[str]:
        rows = self._all(
            "SELECT id FROM users WHERE tenant_id = ? AND state = 'deleted' AND deleted < ?", (tenant_id, cutoff)
        )
        return [r["id"] for r in rows]

    def select_users(
        self,
        tenant_id: str,
        state: str,
        where: str = "",
        params: Sequence[Any] = (),
        *,
        after_seq: int = 0,
        order: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[UserRow]:
        """One page. Without `order` pages are keyed by insertion order (`after_seq`),
        which stays stable while users are added; with `order` by offset."""
        clause = f" AND ({where})" if where else ""
        if order:
            sql = (f"SELECT * FROM users WHERE tenant_id = ? AND state = ?{clause}"
                   f" ORDER BY {order}, seq LIMIT ? OFFSET ?")
            rows = self._all(sql, (tenant_id, state, *params, limit, offset))
        else:
            sql = (f"SELECT * FROM users WHERE tenant_id = ? AND state = ? AND seq > ?{clause}"
                   " ORDER BY seq LIMIT ?")
            rows = self._all(sql, (tenant_id, state, after_seq, *params, limit))
        return [_user_row(r) for r in rows]

    def count_users(self, tenant_id: str, state: str, where: str = "", params: Sequence[Any] = ()) -> int:
        clause = f" AND ({where})" if where else ""
        row = self._one(f"SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND state = ?{clause}",
                        (tenant_id, state, *params))
        return int(row["n"]) if row else 0

    def changes(self, tenant_id: str, after_change: int, upto: int, where: str, params: Sequence[Any], limit: int) -> list[UserRow]:
        clause = f" AND ({where})" if where else ""
        rows = self._all(
            f"SELECT * FROM users WHERE tenant_id = ? AND change_seq > ? AND change_seq <= ?{clause}"
            " ORDER BY change_seq LIMIT ?",
            (tenant_id, after_change, upto, *params, limit),
        )
        return [_user_row(r) for r in rows]


def _user_row(row: sqlite3.Row) -> UserRow:
    return UserRow(
        seq=row["seq"],
        id=row["id"],
        state=row["state"],
        change_seq=row["change_seq"],
        deleted=row["deleted"],
        data=json.loads(row["data"]),
    )


def _new_secret() -> str:
    # Shaped like an Entra client secret: ~40 characters with a `~` in it.
    return secrets.token_urlsafe(24)[:3] + "8Q~" + secrets.token_urlsafe(27)
