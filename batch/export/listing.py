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

Order. Each partition's pages are spooled to a temporary file beside the output and
copied to the output in partition order (`!`, `#`, `'`, `-`, `.`, `0`…`9`, `^`, `_`,
`a`…`z`, `~`) as soon as every partition before it is complete. So a partitioned export
lists customers grouped by the first character of their UPN, and in Graph's order within
each group: the same directory always gives the same file. Memory holds one page per
partition being fetched; the spool holds at most the export's size on disk.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import string
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batch.errors import first_failure
from batch.graph import GraphClient

PAGE_SIZE = 999
PARTITION_PREFIXES: tuple[str, ...] = tuple(sorted("!#'-." + string.digits + "^_" + string.ascii_lowercase + "~"))
EVENTUAL = {"ConsistencyLevel": "eventual"}

Page = list[dict[str, Any]]


@dataclass(frozen=True)
class Listing:
    """One collection request: its first URL and the headers every page is sent with."""

    url: str
    headers: dict[str, str]


def users_listing(select: Sequence[str], flt: str | None, *, advanced: bool, top: int = PAGE_SIZE) -> Listing:
    query = [f"$select={','.join(select)}", f"$top={top}"]
    if flt:
        query.append(f"$filter={quote(flt, safe='')}")
    if advanced:
        query.append("$count=true")
    return Listing("/users?" + "&".join(query), dict(EVENTUAL) if advanced else {})


def deleted_listing(select: Sequence[str], flt: str | None, *, advanced: bool = False, top: int = PAGE_SIZE) -> Listing:
    query = [f"$select={','.join(select)}", f"$top={top}"]
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


async def pages(client: GraphClient, listing: Listing) -> AsyncIterator[dict[str, Any]]:
    """The listing's page bodies, in order (`GraphClient.pages`: retried, paced)."""
    async for body in client.pages(listing.url, listing.headers):
        yield body


async def partitioned(client: GraphClient, listings: Sequence[Listing], *, concurrency: int, spool_dir: Path,
                      convert: Callable[[Page], list[list[str]]], on_page: Callable[[int], None],
                      sink: Callable[[list[list[str]]], None]) -> None:
    """Fetch `listings` (one per partition) with at most `concurrency` at a time and hand
    their converted rows to `sink` in partition order, a batch at a time (module docstring).
    `convert` turns a page's users into rows; `on_page` hears of each page as it arrives.
    The first failure (a page that could not be fetched) stops every partition and is raised."""
    spool = Path(tempfile.mkdtemp(prefix=".export-spool-", dir=spool_dir))
    files = [spool / f"{index:02d}.jsonl" for index in range(len(listings))]
    done = [asyncio.Event() for _ in listings]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def fetch(index: int) -> None:
        async with gate:
            with files[index].open("w", encoding="utf-8") as handle:
                async for body in pages(client, listings[index]):
                    rows = convert(body.get("value") or [])
                    handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
                    on_page(len(rows))
        done[index].set()

    async def merge() -> None:
        for index, path in enumerate(files):
            await done[index].wait()
            with path.open(encoding="utf-8") as handle:
                batch: list[list[str]] = []
                for line in handle:
                    batch.append(json.loads(line))
                    if len(batch) >= PAGE_SIZE:
                        sink(batch)
                        batch = []
                        await asyncio.sleep(0)  # let the fetches go on while a big partition is copied
                if batch:
                    sink(batch)
            path.unlink()

    try:
        async with asyncio.TaskGroup() as group:
            for index in range(len(listings)):
                group.create_task(fetch(index))
            group.create_task(merge())
    except BaseExceptionGroup as failures:
        raise first_failure(failures) from None
    finally:
        shutil.rmtree(spool, ignore_errors=True)


__all__ = ["EVENTUAL", "Listing", "PAGE_SIZE", "PARTITION_PREFIXES", "delta_listing", "deleted_listing", "pages",
           "partition_filter", "partitioned", "users_listing"]
