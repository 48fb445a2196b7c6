"""The users of every tenant, as the store keeps them: who holds a UPN, an identity or a mail
address, pages in insertion order, counts, and the change sequence behind `users/delta`.

The store knows tables, not Graph: the rules about what may be written live in
`directory.py`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .database import Database
from .records import IdentityRow, UserRow


class UserStore(Database):
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

