"""The reads `doctor` makes, sent at once (each is independent), with what they cost: every
answer keeps its headers, so that the service checks can read the throttle headers seen; each read is timed (the latency is their
median) and its `Date` gives an estimate of the clock offset.

Nothing here writes: every request is a GET, and the identity filter on deleted items looks
for a sign-in name no customer has (`PROBE_NAME`), exactly as the verbs' lookups do
(batch/verbs/lookups.py), so that a tenant that refuses it refuses a run's lookups too.
"""

from __future__ import annotations

import asyncio
import email.utils
import statistics
import time
from dataclasses import dataclass, field

from batch.graph import GraphCall, GraphClient, GraphResult
from batch.run.attributes import FIND_APP
from batch.verbs.lookups import UserKey, lookup_call

PROBE_NAME = "entra-batch-doctor-probe"  # + @<domain>: a sign-in name looked up, never created
EVENTUAL = {"ConsistencyLevel": "eventual"}


@dataclass
class Reads:
    """The answers doctor works from (None: not asked), and what timing them told."""

    organization: GraphResult
    domains: GraphResult
    applications: GraphResult
    listeners: GraphResult
    count: GraphResult
    deleted_by_identity: GraphResult | None = None
    extension_properties: GraphResult | None = None
    latencies_ms: list[float] = field(default_factory=list)
    clock_offsets: list[float] = field(default_factory=list)  # seconds Graph's clock is ahead, one per dated answer

    def all(self) -> list[GraphResult]:
        return [r for r in (self.organization, self.domains, self.applications, self.listeners, self.count,
                            self.deleted_by_identity, self.extension_properties) if r is not None]

    @property
    def latency_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def clock_offset(self) -> float | None:
        return statistics.median(self.clock_offsets) if self.clock_offsets else None


class Timer:
    """Times each read, and estimates the clock offset from each answer's `Date`: Date has
    whole seconds (RFC 9110 §5.6.7), so Graph's clock read somewhere in [Date, Date + 1) while
    the request was out; the estimate takes the middle of both."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client
        self.latencies_ms: list[float] = []
        self.clock_offsets: list[float] = []

    async def get(self, call: GraphCall) -> GraphResult:
        sent, wall = time.monotonic(), time.time()
        result = await self.client.request(call)
        took = time.monotonic() - sent
        if result.status and result.attempts == 1:
            self.latencies_ms.append(took * 1000)
            stamp = result.headers.get("date")
            if stamp:
                try:
                    graph = email.utils.parsedate_to_datetime(stamp).timestamp()
                except (TypeError, ValueError, IndexError):
                    return result
                self.clock_offsets.append(graph + 0.5 - (wall + took / 2))
        return result


async def read_tenant(client: GraphClient) -> tuple[Reads, Timer]:
    """Every read that needs nothing from another one, at once, each timed."""
    timer = Timer(client)
    get = timer.get
    organization, domains, applications, listeners, count = await asyncio.gather(
        get(GraphCall("GET", "/organization?$select=id,displayName,tenantType,verifiedDomains")),
        get(GraphCall("GET", "/domains")),
        get(GraphCall("GET", FIND_APP)),  # as runs find the extensions app (batch/run/attributes.py)
        get(GraphCall("GET", "/identity/authenticationEventListeners")),
        get(GraphCall("GET", "/users/$count", headers=EVENTUAL)),
    )
    reads = Reads(organization, domains, applications, listeners, count, latencies_ms=timer.latencies_ms,
                  clock_offsets=timer.clock_offsets)
    return reads, timer


async def read_dependent(timer: Timer, reads: Reads, *, domain: str | None,
                         extensions_app: str | None) -> None:
    """The reads that need an earlier answer, at once: the identity filter on deleted items
    (in the domain sign-in names are issued in) and the extensions app's attributes (by its
    object id)."""
    async def deleted() -> None:
        if domain:
            key = UserKey("signin", f"{PROBE_NAME}@{domain}")
            reads.deleted_by_identity = await timer.get(lookup_call(key, domain, deleted=True))

    async def attributes() -> None:
        if extensions_app:
            reads.extension_properties = await timer.get(
                GraphCall("GET", f"/applications/{extensions_app}/extensionProperties?$select=name,dataType"))

    await asyncio.gather(deleted(), attributes())


__all__ = ["PROBE_NAME", "Reads", "Timer", "read_dependent", "read_tenant"]
