"""Reading the directory's keys while a create dry run goes on (issue 16): one listing of
`/users` (`$select=id,userPrincipalName,identities`, pages of 999, one resource unit each)
fills a `DirectoryKeys` (batch/verbs/absence.py); once it is complete, the dry run asks Graph
only about the keys some customer may hold.

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

from batch.errors import RunError
from batch.export.listing import pages, users_listing
from batch.graph import GraphClient
from batch.verbs.absence import DirectoryKeys

SELECT = ("id", "userPrincipalName", "identities")


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


async def read_directory_keys(client: GraphClient, index: DirectoryKeys,
                              clock: Callable[[], float] = time.monotonic) -> None:
    """List the directory into `index`, then mark it ready; on a failure, mark it unused and
    say why (never raised: the dry run goes on with lookups)."""
    began = clock()
    try:
        listing = users_listing(SELECT, None, advanced=False)
        async with contextlib.aclosing(pages(client, listing)) as bodies:
            async for body in bodies:
                users = [u for u in body.get("value") or () if isinstance(u, dict)]
                if not index.add(len(users), page_keys(users)):
                    return
    except RunError as exc:
        index.abandon(_why(exc))
        return
    except Exception as exc:  # noqa: BLE001  # a listing of ours must never stop the dry run
        index.abandon(f"{type(exc).__name__}: {exc}")
        return
    index.complete(clock() - began)


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
