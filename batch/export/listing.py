"""Where an export's customers come from: the Graph requests and the order of the pages.

- `/users`, sequentially (`@odata.nextLink` after `@odata.nextLink`), or split into
  `startswith(userPrincipalName, …)` partitions fetched concurrently;
- `/directory/deletedItems/microsoft.graph.user` for soft-deleted customers;
- `/users/delta` for what changed since a delta link.

Partitions. An External ID tenant gives each customer a UPN that starts with its object id
(`<object id>@contoso.onmicrosoft.com`), so the first character of UPNs is spread evenly
over 16 hex digits. A UPN may only start with `A-Z a-z 0-9 ' . _ ! # ^ ~ -` (rules.py, and
Graph compares case-insensitively), so one partition per such character is a complete,
disjoint cover of the directory, whatever UPNs a migration chose: no customer is missed
or listed twice. The partitions that hold nobody cost one request each.

Order. Each partition's pages are spooled (a page a line) to a temporary file beside the output and
copied to the output in partition order (`!`, `#`, `'`, `-`, `.`, `0`…`9`, `^`, `_`,
`a`…`z`, `~`) as soon as every partition before it is complete. So a partitioned export
lists customers grouped by the first character of their UPN, and in Graph's order within
each group: the same directory always gives the same file. Memory holds two pages per
partition being fetched (below); the spool holds at most the export's size on disk.

Page ahead. Every listing asks for page n+1 as soon as the event loop is free after page n
has arrived (`ahead`). A sequential or delta listing converts and writes page n in a worker
thread (`modes.write_page`), so page n+1 is on its way meanwhile: at 300 ms a page, waiting
for the writer before asking again cost 0.42-0.45 s a page. Partitions convert on the event
loop; there the other partitions' requests are in flight meanwhile. Memory holds at most two
pages per listing (the one being written and the one arriving). Order is kept (the next link
is only known from the page before), and a page that fails is raised after the pages before
it are written.

Expired page tokens. Graph may refuse a next link's `$skiptoken` as expired (400
Directory_ExpiredPageToken), typically after a long pause (a throttling storm). The listing
then starts again from its first URL, at most `MAX_RESTARTS` times, and no customer is
written twice or lost:
- a partition has written nothing to the output yet (it is copied once complete), so its
  spool file is emptied and the partition read again;
- a sequential or delta listing has written its customers already, so it remembers the id
  of every customer it handed out in `SeenIds`, a one-table SQLite file beside the output,
  so that memory stays bounded whatever the size. Until a restart, ids (16 bytes each) are
  only appended, unindexed: measured for a million customers, 4 s in all and 24 MB of disk.
  The first restart indexes them (2 s, 52 MB); after it, a customer whose id is there is
  skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import string
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from batch.errors import first_failure
from batch.graph import GraphClient
from batch.graph.paging import PageTokenExpired

PAGE_SIZE = 999
MAX_RESTARTS = 3  # listings started again after expired page tokens, before the export gives up
PARTITION_PREFIXES: tuple[str, ...] = tuple(sorted("!#'-." + string.digits + "^_" + string.ascii_lowercase + "~"))
EVENTUAL = {"ConsistencyLevel": "eventual"}

Page = list[dict[str, Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class Listing:
    """One collection request: its first URL and the headers every page is sent with."""

    url: str
    headers: dict[str, str]


def users_listing(select: Sequence[str], flt: str | None, *, advanced: bool, top: int | None = None) -> Listing:
    query = [f"$select={','.join(select)}", f"$top={top or PAGE_SIZE}"]
    if flt:
        query.append(f"$filter={quote(flt, safe='')}")
    if advanced:
        query.append("$count=true")
    return Listing("/users?" + "&".join(query), dict(EVENTUAL) if advanced else {})


def deleted_listing(select: Sequence[str], flt: str | None, *, advanced: bool = False,
                    top: int | None = None) -> Listing:
    query = [f"$select={','.join(select)}", f"$top={top or PAGE_SIZE}"]
    if flt:
        query.append(f"$filter={quote(flt, safe='')}")
    if advanced:
        query.append("$count=true")
    return Listing("/directory/deletedItems/microsoft.graph.user?" + "&".join(query),
                   dict(EVENTUAL) if advanced else {})


def delta_listing(select: Sequence[str], delta_link: str | None) -> Listing:
    """The first round of a delta query, or the round that follows `delta_link`. The page
    size is asked with `Prefer: odata.maxpagesize` (delta takes no `$top`)."""
    prefer = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
    if delta_link:
        return Listing(delta_link, prefer)
    return Listing(f"/users/delta?$select={','.join(select)}", prefer)


def partition_filter(prefix: str, flt: str | None) -> str:
    quoted = prefix.replace("'", "''")
    clause = f"startswith(userPrincipalName,'{quoted}')"
    return f"{clause} and ({flt})" if flt else clause


async def pages(client: GraphClient, listing: Listing) -> AsyncGenerator[dict[str, Any], None]:
    """The listing's page bodies, in order (`GraphClient.pages`: retried, paced), each next
    page asked for while the caller handles this one (`ahead`)."""
    async for body in ahead(client.pages(listing.url, listing.headers)):
        yield body


async def ahead(source: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """`source`'s items in order, the next one fetched (in a task) while the caller handles
    the one just given: one item ahead, never more. A failure of `source` is raised where
    its item would have come; a caller that stops early (an error of its own, a cancel)
    cancels the fetch under way and closes `source`."""
    fetching: asyncio.Task[T] | None = asyncio.ensure_future(_next(source))
    try:
        while fetching is not None:
            try:
                item = await fetching
            except StopAsyncIteration:
                fetching = None
                return
            fetching = asyncio.ensure_future(_next(source))
            yield item
    finally:
        if fetching is not None:
            fetching.cancel()
            await asyncio.wait([fetching])
            if not fetching.cancelled():
                fetching.exception()  # retrieved: the failure raised is the caller's own
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def _next(source: AsyncIterator[T]) -> Coroutine[Any, Any, T]:
    return source.__anext__()  # type: ignore[return-value]  # an async generator's __anext__ is a coroutine


class SeenIds:
    """The ids of the customers a listing handed out, in a SQLite file (module docstring:
    bounded memory for a million customers). Until the listing restarts, ids are only
    recorded; after, each is checked too."""

    def __init__(self, folder: Path) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=".export-seen-", dir=folder))
        self._db = sqlite3.connect(self._dir / "seen.db", isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE seen (id BLOB);")
        self.restarted = False
        self._indexed = False
        self.skipped = 0

    def fresh(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`users` less those already handed out; records the rest."""
        keys = [_id_key(user) for user in users]
        if not self.restarted:  # appended, unindexed: the cost of a listing that never restarts
            with self._transaction():
                self._db.executemany("INSERT INTO seen VALUES (?)", [(k,) for k in keys])
            return users
        if not self._indexed:  # one sort, at the first restart
            self._db.execute("CREATE INDEX seen_id ON seen(id)")
            self._indexed = True
        kept = []
        with self._transaction():
            for user, key in zip(users, keys, strict=True):
                if self._db.execute("SELECT 1 FROM seen WHERE id = ?", (key,)).fetchone() is None:
                    self._db.execute("INSERT INTO seen VALUES (?)", (key,))
                    kept.append(user)
        self.skipped += len(users) - len(kept)
        return kept

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class PartitionIds:
    """Which partition listed each customer first, in a SQLite file (bounded memory). The
    partitions are read one after another, not at one instant: a customer whose UPN changes
    meanwhile (from one partition to another) can be listed by both, and goes to the file
    once. A partition read again after an expired page token keeps its own customers."""

    def __init__(self, folder: Path) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=".export-ids-", dir=folder))
        self._db = sqlite3.connect(self._dir / "ids.db", isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                               " CREATE TABLE owner (id BLOB PRIMARY KEY, part INTEGER) WITHOUT ROWID;")
        self.skipped = 0

    def fresh(self, part: int, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`users` of partition `part` less those another partition listed first; records
        the rest as `part`'s."""
        keys = [_id_key(user) for user in users]
        owners: dict[bytes, int] = {}
        for first in range(0, len(keys), 500):  # SQLite's bound on the parameters of one statement
            part_keys = keys[first:first + 500]
            owners.update(self._db.execute(f"SELECT id, part FROM owner WHERE id IN ({','.join('?' * len(part_keys))})",
                                           part_keys))
        kept = [user for user, key in zip(users, keys, strict=True) if owners.get(key, part) == part]
        self.skipped += len(users) - len(kept)
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO owner VALUES (?, ?)", [(key, part) for key in keys if key not in owners])
        self._db.execute("COMMIT")
        return kept

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _id_key(user: dict[str, Any]) -> bytes:
    """A customer's object id in 16 bytes (any other text id as it is). Graph's ids are
    canonical UUIDs, read here without `uuid.UUID` (a third of SeenIds' cost); any other
    spelling `uuid.UUID` accepts gives the same 16 bytes through it."""
    text = str(user.get("id") or "")
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        try:
            key = bytes.fromhex(text[:8] + text[9:13] + text[14:18] + text[19:23] + text[24:])
        except ValueError:
            key = b""
        if len(key) == 16:
            return key
    try:
        return uuid.UUID(text).bytes
    except ValueError:
        return text.encode()


async def restartable(client: GraphClient, source: Listing, seen: SeenIds) -> AsyncGenerator[dict[str, Any], None]:
    """The listing's page bodies, their `value` cut to the customers not handed out before:
    when a page token expires, the listing starts again from its first URL (module
    docstring), at most `MAX_RESTARTS` times."""
    restarts = 0
    while True:
        try:
            async with contextlib.aclosing(pages(client, source)) as bodies:
                async for body in bodies:
                    yield {**body, "value": seen.fresh(body.get("value") or [])}
            return
        except PageTokenExpired as expired:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise gave_up(expired) from None
            seen.restarted = True


def gave_up(expired: PageTokenExpired) -> PageTokenExpired:
    return PageTokenExpired(expired.what, status=expired.status, code=expired.code, detail=expired.detail,
                            then=f"The listing was started again {MAX_RESTARTS} times and its page tokens expired "
                                 "each time: the export is paused too long between pages (throttling?). Run it "
                                 "again with --concurrency 1, or when the tenant is quieter.")


async def partitioned(client: GraphClient, listings: Sequence[Listing], *, concurrency: int, spool_dir: Path,
                      convert: Callable[[Page], list[list[str]]], on_page: Callable[[int, int], None],
                      sink: Callable[[list[list[str]]], None]) -> None:
    """Fetch `listings` (one per partition) with at most `concurrency` at a time and hand
    their converted rows to `sink` in partition order, a batch at a time (module docstring).
    `convert` turns a page's users into rows; `on_page` hears of each page as it arrives
    (customers, pages), and of a partition read again with the negative of what it had
    reported (so progress counts each customer once). The first failure (a page that could not be fetched) stops every partition and is raised."""
    spool = Path(tempfile.mkdtemp(prefix=".export-spool-", dir=spool_dir))
    files = [spool / f"{index:02d}.jsonl" for index in range(len(listings))]
    owners = PartitionIds(spool)
    done = [asyncio.Event() for _ in listings]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def fetch(index: int) -> None:
        async with gate:
            for restart in range(MAX_RESTARTS + 1):
                try:
                    await spool_partition(index)
                    break
                except PageTokenExpired as expired:  # nothing of it is in the output yet: read it again
                    if restart == MAX_RESTARTS:
                        raise gave_up(expired) from None
        done[index].set()

    async def spool_partition(index: int) -> None:
        reported = [0, 0]  # customers and pages this reading of the partition told on_page
        try:
            with files[index].open("w", encoding="utf-8") as handle:
                async with contextlib.aclosing(pages(client, listings[index])) as bodies:
                    async for body in bodies:
                        rows = convert(owners.fresh(index, body.get("value") or []))
                        if rows:  # a page a line: a third of the cost of a row a line
                            handle.write(json.dumps(rows, ensure_ascii=False) + "\n")
                        on_page(len(rows), 1)
                        reported[0] += len(rows)
                        reported[1] += 1
        except PageTokenExpired:
            on_page(-reported[0], -reported[1])  # read again from the start: counted again
            raise

    async def merge() -> None:
        for index, path in enumerate(files):
            await done[index].wait()
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    sink(json.loads(line))
                    await asyncio.sleep(0)  # let the fetches go on while a big partition is copied
            path.unlink()

    try:
        async with asyncio.TaskGroup() as group:
            for index in range(len(listings)):
                group.create_task(fetch(index))
            group.create_task(merge())
    except BaseExceptionGroup as failures:
        raise first_failure(failures) from None
    finally:
        owners.close()
        shutil.rmtree(spool, ignore_errors=True)


__all__ = ["EVENTUAL", "MAX_RESTARTS", "PAGE_SIZE", "PARTITION_PREFIXES", "Listing", "PartitionIds", "SeenIds", "delta_listing",
           "deleted_listing", "gave_up", "pages", "partition_filter", "partitioned", "restartable", "users_listing"]
