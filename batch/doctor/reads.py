"""The reads `doctor` makes, sent at once (each is independent), with what they cost: every
answer keeps its headers, so that the service checks can read the throttle headers seen, and
the latency is the median of a few timed reads of one customer page.

Nothing here writes: every request is a GET, and the identity filter on deleted items looks
for a sign-in name no customer has (`PROBE_NAME`), exactly as the verbs' lookups do
(batch/verbs/lookups.py), so that a tenant that refuses it refuses a run's lookups too.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field

from batch.graph import GraphCall, GraphClient, GraphResult
from batch.verbs.lookups import UserKey, lookup_call

EXTENSIONS_APP_PREFIX = "b2c-extensions-app"
PROBE_NAME = "entra-batch-doctor-probe"  # + @<domain>: a sign-in name looked up, never created
EVENTUAL = {"ConsistencyLevel": "eventual"}
LATENCY_SAMPLES = 3


@dataclass
class Reads:
    """The answers doctor works from (None: not asked)."""

    organization: GraphResult
    domains: GraphResult
    applications: GraphResult
    listeners: GraphResult
    count: GraphResult
    deleted_by_identity: GraphResult | None
    latencies_ms: list[float] = field(default_factory=list)
    extension_properties: GraphResult | None = None

    def all(self) -> list[GraphResult]:
        return [r for r in (self.organization, self.domains, self.applications, self.listeners, self.count,
                            self.deleted_by_identity, self.extension_properties) if r is not None]

    @property
    def latency_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None


async def _timed(client: GraphClient, samples: int) -> list[float]:
    """The time of `samples` reads of one customer page, one after the other."""
    times = []
    for _ in range(samples):
        start = time.monotonic()
        result = await client.request(GraphCall("GET", "/users?$top=1&$select=id"))
        if result.status == 0:
            break
        times.append((time.monotonic() - start) * 1000)
    return times


async def read_tenant(client: GraphClient, *, samples: int = LATENCY_SAMPLES) -> Reads:
    """Every read that needs nothing from another one, at once."""
    get = client.request
    organization, domains, applications, listeners, count, latencies = await asyncio.gather(
        get(GraphCall("GET", "/organization?$select=id,displayName,tenantType,verifiedDomains")),
        get(GraphCall("GET", "/domains")),
        get(GraphCall("GET", f"/applications?$filter=startswith(displayName,'{EXTENSIONS_APP_PREFIX}')"
                             "&$select=id,appId,displayName")),
        get(GraphCall("GET", "/identity/authenticationEventListeners")),
        get(GraphCall("GET", "/users/$count", headers=EVENTUAL)),
        _timed(client, samples),
    )
    return Reads(organization, domains, applications, listeners, count, None, latencies)


async def read_dependent(client: GraphClient, reads: Reads, *, domain: str | None,
                         extensions_app: str | None) -> None:
    """The reads that need an earlier answer, at once: the identity filter on deleted items
    (in the domain sign-in names are issued in) and the extensions app's attributes (by its
    object id)."""
    async def deleted() -> None:
        if domain:
            key = UserKey("signin", f"{PROBE_NAME}@{domain}")
            reads.deleted_by_identity = await client.request(lookup_call(key, domain, deleted=True))

    async def attributes() -> None:
        if extensions_app:
            reads.extension_properties = await client.request(
                GraphCall("GET", f"/applications/{extensions_app}/extensionProperties?$select=name,dataType"))

    await asyncio.gather(deleted(), attributes())


__all__ = ["EXTENSIONS_APP_PREFIX", "PROBE_NAME", "Reads", "read_dependent", "read_tenant"]
