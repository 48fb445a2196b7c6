"""The three ways an export lists its customers, and the two questions asked before:

- sequential: one listing, page after page (`--sequential`, and always for `--deleted`);
- partitioned: one listing per first character of the UPN, fetched concurrently and written
  in partition order (`batch.export.listing`);
- delta: the changes since the state file's delta link (`--since`), returning the next state.

Before a full listing, `probe` asks for one customer (so that a filter Graph refuses stops the
export before anything is written) and `count` asks how many to expect, for progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batch.errors import ConfigError, GraphRequestFailed
from batch.export import listing
from batch.export.fields import Columns
from batch.export.rows import Convert
from batch.export.state import DeltaState
from batch.graph import GraphCall, GraphClient
from batch.graph.paging import PageTokenExpired

Sink = Callable[[list[list[str]]], None]
OnPage = Callable[[int, int], None]


AGAIN = "Run the export again once Graph answers."


@dataclass(frozen=True)
class Query:
    """What a full (not delta) export lists: live or deleted customers, these properties, this
    `$filter`, in Graph's advanced query mode or not."""

    select: list[str]
    filter: str | None
    advanced: bool
    deleted: bool

    def listing(self, advanced: bool, top: int) -> listing.Listing:
        if self.deleted:
            return listing.deleted_listing(self.select, self.filter, advanced=advanced, top=top)
        return listing.users_listing(self.select, self.filter, advanced=advanced, top=top)


@dataclass(frozen=True)
class RowFlow:
    """Where listed users go: `convert` makes rows of a page's users, `sink` takes rows in
    file order, `on_page` hears of each page as it arrives (its number of rows, and 1 page; a
    partition read again takes back what it had reported with negative numbers)."""

    convert: Convert
    sink: Sink
    on_page: OnPage


async def probe(client: GraphClient, query: Query) -> bool:
    """Ask for one customer first, so that a filter Graph refuses stops the export with
    Graph's reason (exit 2) before anything is written or any partition starts. A filter
    that needs Graph's advanced query mode is sent again in that mode. Returns whether the
    mode is used."""
    advanced = query.advanced
    first = await client.request(_first_page(query.listing(advanced, 1)))
    if first.status == 400 and not advanced:
        retry = await client.request(_first_page(query.listing(True, 1)))
        if retry.status == 200:
            return True
    if first.status == 400:
        raise ConfigError(refused_query(first.error_message or first.error_code, advanced_tried=not advanced))
    if not first.ok:
        raise GraphRequestFailed("GET the first customer", status=first.status, code=first.error_code,
                                 detail=first.error_message, then=AGAIN)
    return advanced


def refused_query(graph_says: str | None, *, advanced_tried: bool) -> str:
    """One line for a filter Graph refuses: Graph's words, then what to do about it."""
    tried = (" It was also sent as an advanced query (ConsistencyLevel: eventual and $count=true), and refused there"
             " too." if advanced_tried else "")
    return (f"Graph refused the export's query: {graph_says}{tried} Each property supports its own operators, some"
            " only in advanced queries, which Azure AD B2C tenants do not have: see"
            " https://aka.ms/graph-aad-query-advanced, then change --filter.")


def _first_page(source: listing.Listing) -> GraphCall:
    return GraphCall("GET", source.url, headers=source.headers)


async def count(client: GraphClient, flt: str | None) -> int | None:
    """How many customers to expect, for progress (`/users/$count`, eventually consistent;
    None when Graph will not say)."""
    url = "/users/$count" + (f"?$filter={quote(flt, safe='')}" if flt else "")
    result = await client.request(GraphCall("GET", url, headers=listing.EVENTUAL))
    if result.status != 200:
        return None
    try:
        return int(str(result.body).strip())
    except ValueError:
        return None


async def sequential(client: GraphClient, query: Query, flow: RowFlow, *, spool_dir: Path) -> str:
    """Page after page of one listing, started again if a page token expires (no customer
    twice: `listing.restartable`); returns the mode's name for the summary."""
    seen = listing.SeenIds(spool_dir)
    source = listing.restartable(client, query.listing(query.advanced, listing.PAGE_SIZE), seen)
    try:
        async with contextlib.aclosing(source):
            async for body in source:
                flow.on_page(await write_page(flow, body.get("value") or []), 1)
    finally:
        seen.close()
    return "sequential"


async def write_page(flow: RowFlow, users: list[dict[str, Any]]) -> int:
    """Convert and write one page in a worker thread, so that the event loop fetches the next
    page meanwhile (`listing.ahead` asked for it); the number of rows written. Cancelled, it
    still waits for the thread to finish its page: the file is closed only after."""
    def work() -> int:
        rows = flow.convert(users)
        flow.sink(rows)
        return len(rows)

    writing = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(writing)
    except asyncio.CancelledError:
        await asyncio.wait([writing])
        raise


async def partitioned(client: GraphClient, query: Query, flow: RowFlow, *, concurrency: int, spool_dir: Path) -> str:
    """One listing per UPN partition, `concurrency` at a time, spooled beside the output;
    returns the mode's name for the summary."""
    listings = [listing.users_listing(query.select, listing.partition_filter(prefix, query.filter),
                                      advanced=query.advanced)
                for prefix in listing.PARTITION_PREFIXES]
    await listing.partitioned(client, listings, concurrency=concurrency, spool_dir=spool_dir,
                              convert=flow.convert, on_page=flow.on_page, sink=flow.sink)
    return f"partitioned ({len(listing.PARTITION_PREFIXES)} partitions, {concurrency} at a time)"


async def delta(client: GraphClient, columns: Columns, select: list[str], state: DeltaState | None,
                flow: RowFlow, *, spool_dir: Path) -> DeltaState:
    """One delta round; returns the state to keep (the new delta link and when this round
    started on Graph's clock: next round, a customer created later is `added`, an earlier
    one `changed`, which Graph's delta does not tell apart).

    The round's rows wait in a spool beside the output until its last page brings the delta
    link, and only then are written. A round whose next link expires is read again from its
    start (the same delta link, or the first listing): that pass lists every change since
    again, each customer as it is now, so the pass cut short is dropped whole. (Written as it
    came, and the new pass's customers skipped when already written, a customer written as
    `changed` and deleted meanwhile was never reported removed, and a first round kept
    customers deleted meanwhile as `added` for good.)"""
    source = listing.delta_listing(select, state.delta_link if state else None)
    spool = Path(tempfile.mkdtemp(prefix=".export-delta-", dir=spool_dir))
    try:
        for restart in range(listing.MAX_RESTARTS + 1):
            try:
                started, delta_link = await _delta_pass(client, source, flow, spool / "round.jsonl")
                break
            except PageTokenExpired as expired:
                if restart == listing.MAX_RESTARTS:
                    raise listing.gave_up(expired) from None
        with (spool / "round.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                flow.sink(json.loads(line))
                await asyncio.sleep(0)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    if delta_link is None or started is None:
        raise GraphRequestFailed("GET /users/delta", status=200, code="NoDeltaLink",
                                 detail="the last page carried no @odata.deltaLink; nothing was saved", then=AGAIN)
    return DeltaState.after_round(state, delta_link, columns.names, columns.extensions, started)


async def _delta_pass(client: GraphClient, source: listing.Listing, flow: RowFlow,
                      path: Path) -> tuple[float | None, str | None]:
    """One reading of a delta round into `path` (a page's rows a line): when it began on
    Graph's clock, and its delta link. An expired next link takes back the progress it told."""
    sent = time.time()
    started: float | None = None
    delta_link = None
    reported = [0, 0]  # rows and pages this pass told `on_page`
    try:
        with path.open("w", encoding="utf-8") as handle:
            async with contextlib.aclosing(listing.pages(client, source)) as bodies:
                async for body in bodies:
                    if started is None:  # the first answer's Date header gives Graph's clock
                        started = sent + (client.server_clock_offset or 0.0)
                    rows = await asyncio.to_thread(_spool_page, handle, flow.convert, body.get("value") or [])
                    flow.on_page(rows, 1)
                    reported[0] += rows
                    reported[1] += 1
                    link = body.get("@odata.deltaLink")
                    if isinstance(link, str):
                        delta_link = link
    except PageTokenExpired:
        flow.on_page(-reported[0], -reported[1])  # read again from its start: counted again
        raise
    return started, delta_link


def _spool_page(handle: Any, convert: Convert, users: list[dict[str, Any]]) -> int:
    """A page's rows, converted and spooled in a worker thread (the next page is fetched
    meanwhile: `listing.ahead`); how many."""
    rows = convert(users)
    if rows:
        handle.write(json.dumps(rows, ensure_ascii=False) + "\n")
    return len(rows)


__all__ = ["OnPage", "Query", "RowFlow", "Sink", "count", "delta", "partitioned", "probe", "refused_query",
           "sequential"]
