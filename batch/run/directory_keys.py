"""Reading the directory's keys while a create dry run goes on (issue 16): one listing of
`/users` (`$select=id,userPrincipalName,identities`, pages of 999, one resource unit each)
fills a `DirectoryKeys` (batch/verbs/absence.py); once it is complete, the dry run asks Graph
only about the keys some customer may hold.

A directory of more than one page is read in UPN partitions, PARTITIONS_AT_ONCE at a time
(batch/export/listing.py explains why they cover every customer once): at ~300 ms a page, a
million customers take ~5 minutes one page after another, well under a minute so. Where
Graph can count customers (`/users/$count`, an advanced query; not in Azure AD B2C) the
partitions must have listed as many, or the index is not used: a customer missed would make
its key "absent", and its row a wrong `create`.

Until then the dry run looks every key up, as without the index: a file that finishes before
the listing is not slowed, and the listing is then cancelled. A listing that fails (no
User.Read.All, a 5xx past its retries, an expired page token) leaves the dry run as it was,
and says so once in the run's notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from batch.errors import GraphRequestFailed, RunError, first_failure
from batch.export.listing import PARTITION_PREFIXES, pages, partition_filter, users_listing
from batch.export.modes import count
from batch.graph import GraphCall, GraphClient
from batch.verbs.absence import DirectoryKeys

SELECT = ("id", "userPrincipalName", "identities")
PARTITIONS_AT_ONCE = 8


def page_keys(users: list[dict[str, Any]]) -> list[str]:
    """The keys a create dry run may look up among these customers: each UPN and each
    identity's issuerAssignedId (sign-in names and federated ids alike; the issuer is left
    out, which only merges more), but not the userPrincipalName identity that repeats the UPN."""
    keys: list[str] = []
    for user in users:
        upn = user.get("userPrincipalName")
        if isinstance(upn, str) and upn:
            keys.append(upn)
        for identity in user.get("identities") or ():
            if not isinstance(identity, dict):
                continue
            assigned = identity.get("issuerAssignedId")
            if isinstance(assigned, str) and assigned and \
                    (identity.get("signInType") != "userPrincipalName" or assigned != upn):
                keys.append(assigned)
    return keys


class _Stop(Exception):
    """The index passed its key limit: stop every partition."""


async def read_directory_keys(client: GraphClient, index: DirectoryKeys, *, concurrency: int = PARTITIONS_AT_ONCE,
                              clock: Callable[[], float] = time.monotonic) -> None:
    """List the directory into `index`, then mark it ready; on a failure, mark it unused and
    say why (never raised: the dry run goes on with lookups). A directory of one page is
    read as such; a larger one in UPN partitions, `concurrency` at a time (module docstring)."""
    began = clock()
    try:
        first = await client.request(GraphCall("GET", users_listing(SELECT, None, advanced=False).url))
        if not first.ok or not isinstance(first.body, dict):
            raise GraphRequestFailed("Listing the directory", status=first.status, code=first.error_code,
                                     detail=first.error_message)
        if not first.body.get("@odata.nextLink"):
            users = _users(first.body)
            if not index.add(len(users), page_keys(users)):
                return
        else:
            await _partitions(client, index, concurrency)
            counted = await count(client, None)  # None where Graph cannot count (Azure AD B2C)
            if counted is not None and counted > index.customers:
                index.abandon(f"its {len(PARTITION_PREFIXES)} UPN partitions listed {index.customers:,} customers "
                              f"but Graph counts {counted:,}")
                return
    except _Stop:
        return
    except RunError as exc:
        index.abandon(_why(exc))
        return
    except Exception as exc:  # noqa: BLE001  # a listing of ours must never stop the dry run
        index.abandon(f"{type(exc).__name__}: {exc}")
        return
    index.complete(clock() - began)


async def _partitions(client: GraphClient, index: DirectoryKeys, concurrency: int) -> None:
    """Every customer once, by the first character of its UPN (batch/export/listing.py: a
    complete, disjoint cover), `concurrency` partitions at a time."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def partition(prefix: str) -> None:
        async with gate:
            listing = users_listing(SELECT, partition_filter(prefix, None), advanced=False)
            async with contextlib.aclosing(pages(client, listing)) as bodies:
                async for body in bodies:
                    users = _users(body)
                    if not index.add(len(users), page_keys(users)):
                        raise _Stop

    try:
        async with asyncio.TaskGroup() as group:
            for prefix in PARTITION_PREFIXES:
                group.create_task(partition(prefix))
    except BaseExceptionGroup as failures:
        raise first_failure(failures) from None


def _users(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [u for u in body.get("value") or () if isinstance(u, dict)]


def _why(exc: RunError) -> str:
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if status in (401, 403):
        return f"HTTP {status}{f' {code}' if code else ''}: the app may lack User.Read.All"
    if status:
        return f"HTTP {status}{f' {code}' if code else ''}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextlib.asynccontextmanager
async def directory_keys(client: GraphClient, *, max_keys: int | None = None) -> AsyncIterator[DirectoryKeys]:
    """A `DirectoryKeys` being filled in a background task for the time of the block; the
    task is cancelled (and awaited) when the block ends, whether or not the listing is done."""
    index = DirectoryKeys() if max_keys is None else DirectoryKeys(max_keys)
    task = asyncio.create_task(read_directory_keys(client, index), name="directory-keys")
    try:
        yield index
    finally:
        task.cancel()
        # Waited, not awaited: a cancel of the run itself still reaches the run.
        await asyncio.wait([task])


__all__ = ["SELECT", "directory_keys", "page_keys", "read_directory_keys"]
