"""The users of every tenant, as the store keeps them: who holds a UPN, an identity or a mail
address, pages in insertion order, counts, and the change sequence behind `users/delta`.

The store knows tables, not Graph: the rules about what may be written live in
`directory.py`.

Reads take `as_of`: None reads the true state (the directory's master, what uniqueness is
checked against); a moment reads what a replica shows then (`replication.py`). A write given
a `Visibility` first keeps the version readers see in `pending_users`, and reads as of a
moment replace each user that has a pending version by it: one SQL branch for users without
one, one for the pending versions, both under the same conditions, so that `$filter`,
`$search`, paging and counts hold for what is visible. The `identities` a filter looks up
are shadowed by a CTE that takes a pending version's identities from `pending_identities`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any

from .database import Database
from .records import IdentityRow, UserRow
from .replication import Visibility

_COLUMNS = "seq, id, tenant_id, state, upn, display_name, mail, account_enabled, created, deleted, change_seq, data"
_IDENTITY_COLUMNS = "user_id, tenant_id, sign_in_type, issuer, assigned_id, live"

# Statements that read as of a moment start with this (two parameters, the moment twice): a
# user's identities are its pending version's while it has one.
_VISIBLE_IDENTITIES = (
    f"WITH identities AS NOT MATERIALIZED (SELECT {_IDENTITY_COLUMNS} FROM main.identities AS i WHERE NOT EXISTS"
    " (SELECT 1 FROM pending_users AS p WHERE p.id = i.user_id AND p.visible_at > ?)"
    " UNION ALL SELECT pi.user_id, pi.tenant_id, pi.sign_in_type, pi.issuer, pi.assigned_id, pi.live"
    " FROM pending_identities AS pi JOIN pending_users AS p ON p.id = pi.user_id WHERE p.visible_at > ?) "
)


def _visible(where: str, params: Sequence[Any], as_of: float) -> tuple[str, list[Any]]:
    """The users matching `where` as readers see them at `as_of`, as a UNION ALL to select
    from or order: the rows of users without a pending version, then the pending versions
    (a user still `absent` is in neither). Parameters follow `_VISIBLE_IDENTITIES`'."""
    true_rows = (f"SELECT {_COLUMNS} FROM main.users AS users WHERE {where} AND NOT EXISTS"
                 " (SELECT 1 FROM pending_users AS p WHERE p.id = users.id AND p.visible_at > ?)")
    held_rows = _held(_COLUMNS, f"{where} AND users.visible_at > ? AND users.state != 'absent'")
    return f"{true_rows} UNION ALL {held_rows}", [as_of, as_of, *params, as_of, *params, as_of]


def _held(columns: str, where: str) -> str:
    """The pending versions matching `where`, under the name `users` for the whole of it: a
    rowid subquery of `where` (`SELECT seq FROM users WHERE upn IN ...`, odata.py) then
    searches the pending versions by their own index, not the directory's rows."""
    return (f"SELECT {columns} FROM (WITH users AS NOT MATERIALIZED (SELECT * FROM pending_users)"
            f" SELECT * FROM users WHERE {where})")


class UserStore(Database):
    def user(self, tenant_id: str, key: str, states: tuple[str, ...] = ("live",), *,
             as_of: float | None = None) -> UserRow | None:
        """By object id or userPrincipalName: one index search for each (`id = ? OR upn = ?`
        in one WHERE made SQLite walk every user of the tenant, 139 ms at 100,000)."""
        marks = ",".join("?" * len(states))
        by_id = f"tenant_id = ? AND state IN ({marks}) AND id = ?"
        by_upn = f"tenant_id = ? AND state IN ({marks}) AND upn = ?"
        id_params, upn_params = (tenant_id, *states, key.lower()), (tenant_id, *states, key)
        order = " ORDER BY state = 'live' DESC, seq DESC LIMIT 1"
        if as_of is None:
            row = self._one(f"SELECT * FROM (SELECT * FROM users WHERE {by_id} UNION ALL"
                            f" SELECT * FROM users WHERE {by_upn}){order}", (*id_params, *upn_params))
        else:
            ids, id_values = _visible(by_id, id_params, as_of)
            upns, upn_values = _visible(by_upn, upn_params, as_of)
            # One `_VISIBLE_IDENTITIES` for both: the second branch drops its two parameters.
            row = self._one(f"{_VISIBLE_IDENTITIES}SELECT * FROM ({ids} UNION ALL {upns}){order}",
                            [*id_values, *upn_values[2:]])
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

    def live_user_count(self, tenant_id: str, at_most: int | None = None) -> int:
        """How many live users the tenant has; with `at_most`, counting stops there (the
        size class needs no more, and a count walks every user: 5 ms at 100,000)."""
        if at_most is None:
            row = self._one("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ? AND state = 'live'", (tenant_id,))
        else:
            row = self._one("SELECT COUNT(*) AS n FROM (SELECT 1 FROM users WHERE tenant_id = ? AND state = 'live'"
                            " LIMIT ?)", (tenant_id, at_most))
        return int(row["n"]) if row else 0

    def _next_change(self, db: sqlite3.Connection, tenant_id: str) -> int:
        row = db.execute("SELECT COALESCE(MAX(change_seq), 0) + 1 FROM users WHERE tenant_id = ?", (tenant_id,)).fetchone()
        return int(row[0])

    def max_change(self, tenant_id: str) -> int:
        row = self._one("SELECT COALESCE(MAX(change_seq), 0) AS n FROM users WHERE tenant_id = ?", (tenant_id,))
        return int(row["n"]) if row else 0

    def change_watermark(self, tenant_id: str, as_of: float | None = None) -> int:
        """The last change a delta round may cover: every change up to it is visible at
        `as_of`. It stops below the oldest write still pending, so that a delta link issued
        now reports that write once it shows, even if later writes showed first."""
        newest = self.max_change(tenant_id)
        if as_of is None:
            return newest
        row = self._one("SELECT MIN(u.change_seq) AS n FROM pending_users AS p JOIN users AS u ON u.id = p.id"
                        " WHERE p.tenant_id = ? AND p.visible_at > ?", (tenant_id, as_of))
        if row is None or row["n"] is None:
            return newest
        return min(newest, int(row["n"]) - 1)

    def keep_password(self, db: sqlite3.Connection, user_id: str, password: str) -> None:
        """Remember a salted digest of the user's new password, inside the caller's transaction.
        Graph keeps its own hash and never returns it; nor does the emulator (only
        `password_is` reads this, for tests and the soak)."""
        db.execute("INSERT OR REPLACE INTO password_digests(user_id, digest) VALUES (?, ?)",
                   (user_id, self._password_digest(db, user_id, password)))

    def password_is(self, user_id: str, password: str) -> bool | None:
        """Whether `password` is the user's current one (None: no password was ever set)."""
        with self.transaction() as db:
            row = db.execute("SELECT digest FROM password_digests WHERE user_id = ?", (user_id,)).fetchone()
            if row is None:
                return None
            return hmac.compare_digest(row[0], self._password_digest(db, user_id, password))

    @staticmethod
    def _password_digest(db: sqlite3.Connection, user_id: str, password: str) -> str:
        row = db.execute("SELECT value FROM meta WHERE key = 'password_salt'").fetchone()
        if row is None:
            salt = secrets.token_hex(16)
            db.execute("INSERT INTO meta(key, value) VALUES ('password_salt', ?)", (salt,))
        else:
            salt = row[0]
        return hashlib.sha256(f"{salt}\0{user_id}\0{password}".encode()).hexdigest()

    def write_user(
        self,
        db: sqlite3.Connection,
        tenant_id: str,
        data: dict[str, Any],
        identities: list[IdentityRow] | None,
        *,
        state: str = "live",
        deleted: float | None = None,
        visible: Visibility | None = None,
    ) -> None:
        """Insert or replace a user inside the caller's transaction. `identities` None keeps
        the stored ones (only their liveness follows `state`). With `visible`, readers keep
        seeing the user as it was until `visible.at`."""
        change = self._next_change(db, tenant_id)
        user_id = data["id"]
        if visible is not None:
            self._hold_prior(db, tenant_id, user_id, visible)
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
        """The custom attributes declared on the tenant's extensions app, by full name (an
        attribute is declared before it is written: `Store.add_extension_property`)."""
        return [row["name"] for row in self._all(
            "SELECT name FROM extension_properties WHERE tenant_id = ? ORDER BY name", (tenant_id,))]

    def purge_user(self, db: sqlite3.Connection, tenant_id: str, user_id: str,
                   visible: Visibility | None = None) -> None:
        """Permanent deletion leaves a tombstone so that delta can report `reason: deleted`."""
        change = self._next_change(db, tenant_id)
        if visible is not None:
            self._hold_prior(db, tenant_id, user_id, visible)
        db.execute("DELETE FROM identities WHERE user_id = ?", (user_id,))
        db.execute("DELETE FROM password_digests WHERE user_id = ?", (user_id,))
        db.execute(
            "UPDATE users SET state='purged', upn=NULL, display_name=NULL, mail=NULL, change_seq=?, data=? WHERE id = ?",
            (change, json.dumps({"id": user_id}), user_id),
        )

    def _hold_prior(self, db: sqlite3.Connection, tenant_id: str, user_id: str, visible: Visibility) -> None:
        """Before a write: keep the version of the user that readers see until `visible.at`.
        A user already pending keeps its older version and takes the later moment (readers
        never see a write early); one not created yet is held as `absent`. Pending versions
        whose moment has passed are dropped here, by the index on (tenant, visible_at)."""
        db.execute("DELETE FROM pending_identities WHERE user_id IN"
                   " (SELECT id FROM pending_users WHERE tenant_id = ? AND visible_at <= ?)", (tenant_id, visible.now))
        db.execute("DELETE FROM pending_users WHERE tenant_id = ? AND visible_at <= ?", (tenant_id, visible.now))
        if db.execute("UPDATE pending_users SET visible_at = MAX(visible_at, ?) WHERE id = ?",
                      (visible.at, user_id)).rowcount:
            return
        copied = db.execute(f"INSERT INTO pending_users({_COLUMNS}, visible_at) SELECT {_COLUMNS}, ? FROM users"
                            " WHERE id = ?", (visible.at, user_id)).rowcount
        if copied:
            db.execute(f"INSERT INTO pending_identities({_IDENTITY_COLUMNS}) SELECT {_IDENTITY_COLUMNS}"
                       " FROM identities WHERE user_id = ?", (user_id,))
        else:
            db.execute("INSERT INTO pending_users(seq, id, tenant_id, state, created, change_seq, data, visible_at)"
                       " VALUES (0, ?, ?, 'absent', '', 0, '{}', ?)", (user_id, tenant_id, visible.at))

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
        as_of: float | None = None,
    ) -> list[UserRow]:
        """One page. Without `order` pages are keyed by insertion order (`after_seq`),
        which stays stable while users are added; with `order` by offset."""
        clause = f" AND ({where})" if where else ""
        if order:
            condition, values = f"tenant_id = ? AND state = ?{clause}", (tenant_id, state, *params)
            if as_of is None:
                sql, all_values = f"SELECT * FROM users WHERE {condition}", list(values)
            else:
                union, all_values = _visible(condition, values, as_of)
                sql = f"{_VISIBLE_IDENTITIES}SELECT * FROM ({union}) AS users"
            rows = self._all(f"{sql} ORDER BY {order}, seq LIMIT ? OFFSET ?", (*all_values, limit, offset))
        else:
            condition = f"tenant_id = ? AND state = ? AND seq > ?{clause}"
            rows = self._ordered(condition, (tenant_id, state, after_seq, *params), "seq", limit, as_of)
        return [_user_row(r) for r in rows]

    def count_users(self, tenant_id: str, state: str, where: str = "", params: Sequence[Any] = (), *,
                    as_of: float | None = None) -> int:
        """How many match. As of a moment: the true count, less the users whose pending
        version readers see instead, plus the pending versions that match."""
        clause = f" AND ({where})" if where else ""
        condition, values = f"users.tenant_id = ? AND users.state = ?{clause}", (tenant_id, state, *params)
        count = self._count(f"SELECT COUNT(*) AS n FROM users WHERE {condition}", values)
        if as_of is None:
            return count
        # Walked from the pending versions (few) to their users, not the other way round.
        count -= self._count("SELECT COUNT(*) AS n FROM pending_users AS p CROSS JOIN main.users AS users"
                             f" ON users.id = p.id WHERE p.tenant_id = ? AND p.visible_at > ? AND {condition}",
                             (tenant_id, as_of, *values))
        held = _held("COUNT(*) AS n", f"{condition} AND users.visible_at > ?")
        return count + self._count(f"{_VISIBLE_IDENTITIES}{held}", (as_of, as_of, *values, as_of))

    def changes(self, tenant_id: str, after_change: int, upto: int, where: str, params: Sequence[Any], limit: int,
                *, as_of: float | None = None) -> list[UserRow]:
        clause = f" AND ({where})" if where else ""
        condition = f"tenant_id = ? AND change_seq > ? AND change_seq <= ?{clause}"
        rows = self._ordered(condition, (tenant_id, after_change, upto, *params), "change_seq", limit, as_of)
        return [_user_row(r) for r in rows]

    def _ordered(self, condition: str, values: Sequence[Any], key: str, limit: int,
                 as_of: float | None) -> list[sqlite3.Row]:
        """The first `limit` users matching `condition` by `key` (seq or change_seq). As of a
        moment, the two branches are merged in key order (SQLite walks each by its index)."""
        if as_of is None:
            return self._all(f"SELECT * FROM users WHERE {condition} ORDER BY {key} LIMIT ?", (*values, limit))
        union, all_values = _visible(condition, values, as_of)
        return self._all(f"{_VISIBLE_IDENTITIES}{union} ORDER BY {key} LIMIT ?", (*all_values, limit))

    def _count(self, sql: str, values: Sequence[Any]) -> int:
        row = self._one(sql, values)
        return int(row["n"]) if row else 0


def _user_row(row: sqlite3.Row) -> UserRow:
    return UserRow(
        seq=row["seq"],
        id=row["id"],
        state=row["state"],
        change_seq=row["change_seq"],
        deleted=row["deleted"],
        data=json.loads(row["data"]),
    )

