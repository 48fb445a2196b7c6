"""A Graph with replication lag, for the verbs' tests, until the emulator has its own.

The model (the one the emulator's lag is built to, issue 11): every committed write of a
user becomes visible to reads only `lag` seconds later (exactly `lag`, or a seeded uniform
draw up to it). Until then reads (GET by id or UPN, `$filter` lookups, listings, deleted
items) see the user as it was before the write: a customer just created is absent, one just
deleted still live and not in deleted items, one just restored still deleted. Writes that
name a user by key (PATCH, DELETE, restore, purge) find the key through the same lagging
view, and answer 404 `Request_ResourceNotFound` when it does not show the user (or shows it
in the wrong state). Uniqueness (400 ObjectConflict on UPN, identities, mail) is checked on
the true directory.

Built from two emulator directories: the *master* takes every write and is the truth; the
*replica*, a copy of it made at the start, answers every read, and a user's rows are copied
from master to replica once their write is visible. `write_lag` (seconds, 0 by default) goes
beyond that model: writes by key then see a user only that much after reads do, as when the
read and the PATCH land on different replicas (msgraph-sdk-java-core#353).

`$batch` requests are unpacked and each inner call served on its own, in order. Time is
`clock()`, the fake clock the test also gives the Graph client and the verbs' session.

`Answers` wraps any Graph transport (this one, or the emulator with its own lag once merged)
to lose answers on purpose (the write is applied, the connection drops) and to remember the
last password each customer was given, so that tests can hold passwords.csv against it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from batch.emulator import EmulatorSettings, Store
from batch.emulator.app import create_app
from batch.emulator.inprocess import EmulatorTransport
from batch.emulator.settings import Quotas

from .fakes import FakeClock

BASE = "http://emulator/v1.0"


class VirtualTime:
    """A FakeClock whose `graph_clock` is the real time plus the virtual time slept so far.

    The Graph client learns Graph's clock offset from the `Date` header against the real
    `time.time()`; a directory running on `real + slept` keeps that offset equal to the
    virtual time, so the verbs' send times and Graph's createdDateTime stay comparable."""

    def __init__(self) -> None:
        self.fake = FakeClock(start=0.0)

    def graph_clock(self) -> float:
        return time.time() + self.fake.now

    @property
    def sleep(self) -> Callable[[float], Any]:
        return self.fake.sleep

    @property
    def clock(self) -> Callable[[], float]:
        return self.fake.clock


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


class LaggingGraph(httpx.AsyncBaseTransport):
    """Graph (two emulator directories) whose reads lag its writes by `lag` seconds."""

    def __init__(self, folder: Path, clock: Callable[[], float], *, lag: float, fixed: bool = True, seed: int = 0,
                 write_lag: float = 0.0) -> None:
        self.clock = clock
        self.lag = lag
        self.fixed = fixed
        self.write_lag = write_lag
        self.rng = random.Random(seed)
        self.master = Store(folder / "master.db")
        with sqlite3.connect(folder / "master.db") as source, sqlite3.connect(folder / "replica.db") as copy:
            source.backup(copy)
        self.replica = Store(folder / "replica.db")
        with self.replica.transaction() as db:  # the replica only copies: the master keeps keys unique
            db.execute("DROP INDEX IF EXISTS users_live_upn")
            db.execute("DROP INDEX IF EXISTS identities_live")
        self.tenant = self.master.tenants()[0]
        settings = EmulatorSettings(quotas=Quotas(enabled=False))
        self.writes = EmulatorTransport(create_app(self.master, settings, clock=clock))
        self.reads = EmulatorTransport(create_app(self.replica, settings, clock=clock))
        self.visible_at: dict[str, float] = {}  # user id → when its last write shows to reads
        self.pending: set[str] = set()  # users whose last write the replica has not copied yet

    def close(self) -> None:
        self.master.close()
        self.replica.close()

    # ---- serving ---------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        if request.method == "POST" and request.url.path.endswith("/$batch"):
            return await self._batch(request, content)
        return await self._one(request.method, str(request.url), dict(request.headers), content)

    async def _batch(self, request: httpx.Request, content: bytes) -> httpx.Response:
        outer = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "client-request-id")}
        answers = []
        for inner in (_json(content) or {}).get("requests", []):
            headers = {**outer, **(inner.get("headers") or {})}
            body = b"" if inner.get("body") is None else json.dumps(inner["body"]).encode()
            if body:
                headers["content-type"] = "application/json"
            response = await self._one(inner["method"], BASE + inner["url"], headers, body)
            answers.append({"id": inner["id"], "status": response.status_code,
                            "headers": {k: v for k, v in response.headers.items() if k.lower() in
                                        ("content-type", "retry-after", "location")},
                            "body": _json(response.content)})
        return httpx.Response(200, json={"responses": answers}, headers={"date": _http_date(self.clock())})

    async def _one(self, method: str, url: str, headers: dict[str, str], content: bytes) -> httpx.Response:
        self._replicate()
        segments = [unquote(s) for s in httpx.URL(url).path.split("/") if s]
        graph = segments[1:] if segments[:1] == ["v1.0"] else None
        target = self._written_object(method, graph) if graph is not None else None
        if graph is None or method == "GET":
            return await self._send(self.reads if graph is not None else self.writes, method, url, headers, content)
        if target is not None:
            key, states = target
            user = self.replica.user(self.tenant.id, key, states)
            if user is None or self.clock() < self.visible_at.get(user.id, 0.0) + self.write_lag:
                return _not_found(key, self.clock())
        response = await self._send(self.writes, method, url, headers, content)
        if response.status_code < 300:
            changed = user.id if target is not None else (_json(response.content) or {}).get("id")
            if changed:
                self._wrote(str(changed))
        return response

    @staticmethod
    def _written_object(method: str, graph: list[str]) -> tuple[str, tuple[str, ...]] | None:
        """The key a write names, and the states the user must show in for it."""
        if method in ("PATCH", "DELETE") and len(graph) == 2 and graph[0] == "users":
            return graph[1], ("live",)
        if len(graph) >= 3 and graph[:2] == ["directory", "deletedItems"] and (
                method == "DELETE" and len(graph) == 3 or method == "POST" and graph[3:] == ["restore"]):
            return graph[2], ("deleted",)
        return None

    async def _send(self, transport: EmulatorTransport, method: str, url: str, headers: dict[str, str],
                    content: bytes) -> httpx.Response:
        response = await transport.handle_async_request(httpx.Request(method, url, headers=headers, content=content))
        await response.aread()
        return response

    # ---- replication -----------------------------------------------------------------------

    def _wrote(self, user_id: str) -> None:
        delay = self.lag if self.fixed else self.rng.uniform(0.0, self.lag)
        self.visible_at[user_id] = max(self.visible_at.get(user_id, 0.0), self.clock() + delay)
        self.pending.add(user_id)

    def _replicate(self) -> None:
        now = self.clock()
        for user_id in sorted(u for u in self.pending if self.visible_at[u] <= now):
            self.pending.discard(user_id)
            with self.master.transaction() as master:
                users = master.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchall()
                identities = master.execute("SELECT * FROM identities WHERE user_id = ?", (user_id,)).fetchall()
            with self.replica.transaction() as replica:
                replica.execute("DELETE FROM users WHERE id = ?", (user_id,))
                replica.execute("DELETE FROM identities WHERE user_id = ?", (user_id,))
                for table, rows in (("users", users), ("identities", identities)):
                    for row in rows:
                        names = row.keys()
                        replica.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                                        f"({', '.join('?' * len(names))})", tuple(row))

    # ---- what the tests read ---------------------------------------------------------------

    def customers_with(self, sign_in_name: str) -> list[str]:
        """Ids of the live customers (true state) holding this sign-in name."""
        holder = self.master.identity_holder(self.tenant.id, self.tenant.default_domain, sign_in_name)
        return [holder] if holder else []


def _http_date(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _not_found(key: str, now: float) -> httpx.Response:
    """Graph's 404 for a key a replica does not show (GRAPH.md §15.1, GET of an unknown id)."""
    request_id = str(uuid.uuid4())
    return httpx.Response(404, headers={"date": _http_date(now)}, json={"error": {
        "code": "Request_ResourceNotFound",
        "message": f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
        "innerError": {"date": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                       "request-id": request_id, "client-request-id": request_id}}})


class Answers(httpx.AsyncBaseTransport):
    """Any Graph transport, with answers lost on purpose and customers' passwords remembered."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lose: dict[str, int] = {}  # method → how many more answers to lose after applying the write
        self.passwords: dict[str, str] = {}  # object id → the last password Graph accepted for it

    def lose_answers(self, method: str, count: int = 1) -> None:
        self.lose[method] = self.lose.get(method, 0) + count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        calls = self._calls(request, content, response)
        for method, url, body, status, answer in calls:
            self._remember(method, url, body, status, answer)
        for method in {m for m, *_ in calls}:
            if self.lose.get(method, 0) > 0:
                self.lose[method] -= 1
                raise httpx.RemoteProtocolError("Server disconnected without sending a complete response.",
                                                request=request)
        return response

    @staticmethod
    def _calls(request: httpx.Request, content: bytes,
               response: httpx.Response) -> list[tuple[str, str, Any, int, Any]]:
        if not request.url.path.startswith("/v1.0/"):
            return []  # the token endpoint: its answers are never lost here
        if not request.url.path.endswith("/$batch"):
            return [(request.method, request.url.path, _json(content), response.status_code, _json(response.content))]
        answers = {a["id"]: a for a in (_json(response.content) or {}).get("responses", [])}
        return [(r["method"], r["url"], r.get("body"), answers.get(r["id"], {}).get("status", 0),
                 answers.get(r["id"], {}).get("body")) for r in (_json(content) or {}).get("requests", [])]

    def _remember(self, method: str, url: str, body: Any, status: int, answer: Any) -> None:
        password = ((body or {}).get("passwordProfile") or {}).get("password") if isinstance(body, dict) else None
        if password is None:
            return
        path = url.split("?", 1)[0].rstrip("/")
        if method == "POST" and status == 201 and isinstance(answer, dict):
            self.passwords[str(answer.get("id"))] = password
        elif method == "PATCH" and status == 204:
            self.passwords[path.rsplit("/", 1)[-1]] = password
