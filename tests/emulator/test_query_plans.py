"""Every query the emulator runs for a request that names customers (by id, UPN, mail,
sign-in name, among live or deleted users, with and without replication lag) is an index
search: SQLite is asked for the plan of each statement the request ran (EXPLAIN QUERY PLAN
with the statement's own parameters, which decide whether a partial index applies).

A full scan of a table, or a walk of a whole tenant through an index whose only
constraints are the tenant and the state (what `Store.mail_holder` and `Store.user` did:
110-139 ms a request at 100,000 customers), fails the test. Pages of an unfiltered list
or of a delta round may walk the listing and change indexes: their LIMIT bounds the walk.
Without ANALYZE (the emulator never runs it) the plan does not depend on the number of
rows, so a small directory shows the plans of a large one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from emulator.helpers import DOMAIN, FakeClock, Graph, build_graph, customer, unique_email

from batch.emulator import EmulatorSettings, Store
from batch.emulator.directory import Directory


class Recorder:
    """Stands in for the store's connection and notes every statement with its parameters."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements.append((sql, tuple(params)))
        return self.db.execute(sql, params)

    def executemany(self, sql: str, seq: Any) -> sqlite3.Cursor:
        rows = list(seq)
        if rows:
            self.statements.append((sql, tuple(rows[0])))
        return self.db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.fixture
def recording(store: Store) -> Iterator[Recorder]:
    real = store._db
    recorder = Recorder(real)
    yield recorder
    store._db = real


_PLANNED = re.compile(r"\s*(SELECT|WITH|UPDATE|DELETE|INSERT)", re.IGNORECASE)
# Index constraints that do not narrow a lookup to a key: the whole tenant, one state, a page.
_WALK_TERMS = re.compile(r"(tenant_id|state)=\?|(seq|rowid|change_seq)[<>]=?\?")
_WALKABLE_INDEXES = ("users_listing", "users_changes", "users_deleted")


def problems(db: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]], *, page: bool) -> list[str]:
    """What is wrong with the plans of `statements`: full scans, and walks of a tenant's users."""
    found = []
    for sql, params in statements:
        if not _PLANNED.match(sql):
            continue
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
        for detail in plan:
            scan = re.match(r"SCAN (\w+)", detail)
            if scan and scan.group(1) != "CONSTANT" and "VIRTUAL TABLE" not in detail:
                found.append(f"full scan: {detail}\n    {sql}\n    {plan}")
            walk = re.match(r"SEARCH \w+ USING (?:COVERING )?INDEX (\w+) \((.*)\)", detail)
            if not walk or walk.group(1) not in _WALKABLE_INDEXES:
                continue
            keyed = [term for term in walk.group(2).split(" AND ") if not _WALK_TERMS.fullmatch(term)]
            # One entry at the end of the index; a count that stops at a bound (the size class).
            bounded = re.search(r"\bMAX\(change_seq\)|^SELECT COUNT\(\*\) AS n FROM \(SELECT 1 .* LIMIT \?\)$", sql)
            if not keyed and not bounded and not (page and walk.group(1) in ("users_listing", "users_changes")):
                found.append(f"walks the tenant: {detail}\n    {sql}\n    {plan}")
    return found


def identity_filter(value: str) -> str:
    return quote(f"identities/any(c:c/issuerAssignedId eq '{value}' and c/issuer eq '{DOMAIN}')", safe="")


DELETED = "/v1.0/directory/deletedItems"
EVENTUAL = {"headers": {"ConsistencyLevel": "eventual"}}


def requests(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(kind, method, url, keyword arguments): `a` is live, then deleted, restored, deleted
    and purged; `b` stays live. kind `page` lets the plan walk a page of the listing."""
    a_id, a_upn, a_mail, b_id = a["id"], a["userPrincipalName"], a["mail"], b["id"]
    b_upn, b_mail = b["userPrincipalName"], b["mail"]
    return [
        ("key", "POST", "/v1.0/users", {"json": customer(unique_email(), user_name=f"n{a_id[:8]}")}),
        ("key", "POST", "/v1.0/users", {"json": customer(a_mail)}),  # conflicts: mail and identity taken
        ("key", "GET", f"/v1.0/users/{a_id}", {}),
        ("key", "GET", f"/v1.0/users/{quote(a_upn, safe='@')}", {}),
        ("key", "GET", f"/v1.0/users?$filter={identity_filter(a_mail)}", {}),
        ("key", "GET", f"/v1.0/users?$filter={quote(f'mail eq {a_mail!r}', safe='')}", {}),
        ("key", "GET", f"/v1.0/users?$filter={quote(f'userPrincipalName eq {a_upn!r}', safe='')}", {}),
        ("key", "GET", f"/v1.0/users?$filter={quote(f'id eq {a_id!r}', safe='')}", {}),
        ("key", "GET", f"/v1.0/users?$filter={quote(f'id in ({a_id!r}, {b_id!r})', safe='')}", {}),
        ("key", "GET", f"/v1.0/users?$filter={quote(f'userPrincipalName in ({a_upn!r}, {b_upn!r})', safe='')}", {}),
        ("key", "GET", f"/v1.0/users?$filter={quote(f'mail in ({a_mail!r}, {b_mail!r})', safe='')}", {}),
        ("key", "GET", f"/v1.0/users?$count=true&$filter={quote(f'mail eq {a_mail!r}', safe='')}", EVENTUAL),
        ("key", "GET", f"/v1.0/users/$count?$filter={quote(f'userPrincipalName in ({a_upn!r}, {b_upn!r})', safe='')}",
         EVENTUAL),
        ("key", "GET", f"/v1.0/users/delta?$filter={quote(f'id eq {a_id!r}', safe='')}", {}),
        ("key", "PATCH", f"/v1.0/users/{a_id}", {"json": {"accountEnabled": False, "mail": unique_email()}}),
        ("key", "PATCH", f"/v1.0/users/{a_id}", {"json": {"mail": b_mail}}),  # conflicts
        ("key", "DELETE", f"/v1.0/users/{quote(a_upn, safe='@')}", {}),
        ("key", "GET", f"{DELETED}/{a_id}", {}),
        ("key", "GET", f"{DELETED}/microsoft.graph.user?$filter={identity_filter(a_mail)}", {}),
        ("key", "GET", f"{DELETED}/microsoft.graph.user?$filter={quote(f'userPrincipalName eq {a_upn!r}', safe='')}",
         {}),
        ("key", "GET", f"{DELETED}/microsoft.graph.user?$filter={quote(f'id eq {a_id!r}', safe='')}", {}),
        ("key", "POST", f"{DELETED}/{a_id}/restore", {"json": {"autoReconcileProxyConflict": True}}),
        ("key", "DELETE", f"/v1.0/users/{a_id}", {}),
        ("key", "DELETE", f"{DELETED}/{a_id}", {}),
        ("page", "GET", "/v1.0/users?$top=3", {}),
        ("page", "GET", f"{DELETED}/microsoft.graph.user?$top=3", {}),
        ("page", "GET", "/v1.0/users/delta", {}),
    ]


async def plans_of_every_request(graph: Graph, store: Store, recorder: Recorder, clock: FakeClock) -> list[str]:
    made = [await graph.create(customer(unique_email(), user_name=f"user{i}")) for i in range(6)]
    a, b = made[1], made[4]
    await graph.token()
    real = store._db
    store._db = recorder  # type: ignore[assignment]
    found: list[str] = []
    for kind, method, url, kwargs in requests(a, b):
        clock.advance(5)  # past any replication lag: each request sees the one before
        recorder.statements.clear()
        response = await graph.request(method, url, **kwargs)
        assert response.status_code < 500, response.text
        found += [f"{method} {url}: {p}" for p in problems(real, recorder.statements, page=kind == "page")]
        assert recorder.statements, f"{method} {url} ran no statement"
    store._db = real
    return found


@pytest.mark.parametrize("lag_ms", [0, 2000])
async def test_every_request_that_names_customers_searches_an_index(store, recording, clock, lag_ms):
    graph = build_graph(store, EmulatorSettings(replication_lag_ms=lag_ms), clock)
    try:
        found = await plans_of_every_request(graph, store, recording, clock)
    finally:
        await graph.client.aclose()
    assert not found, "\n".join(found)


def test_the_check_sees_a_walk_and_a_scan(store):
    """The rule above can fail: the old shape of `Store.user` and a filter on a JSON property."""
    walk = ("SELECT * FROM users WHERE tenant_id = ? AND state IN (?) AND (id = ? OR upn = ?)", ("t", "live", "x", "y"))
    scan = ("SELECT seq FROM users WHERE json_extract(data, '$.city') = ?", ("Oslo",))
    assert problems(store._db, [walk], page=False)[0].startswith("walks the tenant")
    assert problems(store._db, [scan], page=False)[0].startswith("full scan")


def test_store_lookups_use_an_index(store, clock):
    """The per-write lookups themselves, called directly: the uniqueness checks and `user`
    in each state, as the directory calls them."""
    directory = Directory(store, clock)
    tenant = store.tenants()[0]
    doc = directory.create(tenant, customer("ada@example.com"))
    directory.delete(tenant, doc["id"])
    recorder = Recorder(store._db)
    store._db = recorder  # type: ignore[assignment]
    try:
        assert store.mail_holder(tenant.id, "nobody@example.com") is None
        assert store.upn_holder(tenant.id, doc["userPrincipalName"]) is None
        assert store.identity_holder(tenant.id, DOMAIN, "ada@example.com") is None
        deleted = store.user(tenant.id, doc["id"], ("deleted",))
        assert deleted is not None and deleted.id == doc["id"]
        assert store.user(tenant.id, doc["userPrincipalName"], ("deleted",)) is not None
        assert store.user(tenant.id, doc["id"]) is None
        assert store.user(tenant.id, doc["id"], ("live", "deleted"), as_of=clock()) is not None
    finally:
        store._db = recorder.db
    assert len(recorder.statements) == 7
    assert problems(recorder.db, recorder.statements, page=False) == []


def _previous_version_file(path: Path) -> str:
    """A directory file as the previous version left it: the partial index on live mails,
    none of the indexes added since; one customer in it."""
    store = Store(path)
    tenant = store.tenants()[0]
    user_id = Directory(store, FakeClock()).create(tenant, customer("grace@example.com"))["id"]
    with store.transaction() as db:
        db.execute("DROP INDEX users_by_upn")
        db.execute("DROP INDEX users_by_mail")
        db.execute("CREATE INDEX users_mail ON users(tenant_id, mail) WHERE state = 'live'")
    store.close()
    return user_id


def test_a_directory_of_the_previous_version_opens_with_the_new_indexes(tmp_path):
    path = tmp_path / "emulator.db"
    user_id = _previous_version_file(path)
    store = Store(path)
    try:
        indexes = {row["name"] for row in store._all("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"users_by_upn", "users_by_mail"} <= indexes
        assert "users_mail" not in indexes
        tenant = store.tenants()[0]
        assert store.mail_holder(tenant.id, "grace@example.com") == user_id
        plan = [row[3] for row in store._all("EXPLAIN QUERY PLAN SELECT id FROM users WHERE tenant_id = ?"
                                             " AND state = 'live' AND mail = ?", (tenant.id, "grace@example.com"))]
        assert len(plan) == 1 and "INDEX users_by_mail (mail=? AND tenant_id=? AND state=?)" in plan[0], plan
    finally:
        store.close()
