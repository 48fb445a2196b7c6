"""Several app registrations of one tenant as one pacing pool: each request goes to the app
whose pacer can serve it first, and all of them draw on one `TenantBudget` (the tenant-wide
write quota)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from batch.graph.pacing import Clock, Pacer, PacerStats, Sleep, TenantBudget
from batch.graph.quotas import (
    DEFAULT_PACING,
    DOCUMENTED_RESOURCE_UNITS,
    DOCUMENTED_TENANT_WRITES,
    DOCUMENTED_WRITES,
    PacingSettings,
    Quota,
)
from batch.graph.transport import TokenProvider


@dataclass
class PoolMember:
    """One app registration of a pool: its pacer and its credentials (a `TokenProvider`)."""

    pacer: Pacer
    token_provider: TokenProvider | None = None
    name: str = ""


class AppPool:
    """Several app registrations of one tenant: each request goes to the app whose pacer can
    serve it first; all of them draw on one `TenantBudget`."""

    def __init__(self, members: Sequence[PoolMember], budget: TenantBudget | None = None) -> None:
        if not members:
            raise ValueError("an app pool needs at least one app")
        self.members = list(members)
        self.budget = budget if budget is not None else self.members[0].pacer.budget
        if self.budget is None:
            self.budget = TenantBudget(clock=self.members[0].pacer.clock)
        for member in self.members:
            if member.pacer.budget is None:
                member.pacer.budget = self.budget
            elif member.pacer.budget is not self.budget:
                raise ValueError("every pacer of an app pool must share the pool's tenant budget")
        self._next = 0

    @classmethod
    def of(cls, token_providers: Sequence[TokenProvider], *, writes: Quota = DOCUMENTED_WRITES,
           resource_units: Quota = DOCUMENTED_RESOURCE_UNITS, tenant_writes: Quota = DOCUMENTED_TENANT_WRITES,
           settings: PacingSettings = DEFAULT_PACING, clock: Clock = time.monotonic,
           sleep: Sleep = asyncio.sleep) -> AppPool:
        """A pool with one pacer per token provider, all seeded from the same quotas."""
        budget = TenantBudget(tenant_writes, settings=settings, clock=clock)
        members = [PoolMember(Pacer(writes, resource_units, budget=budget, settings=settings, clock=clock,
                                    sleep=sleep, name=f"app{i + 1}"), provider, f"app{i + 1}")
                   for i, provider in enumerate(token_providers)]
        return cls(members, budget)

    async def acquire(self, writes: int, resource_units: int) -> PoolMember:
        """Wait for the app with the earliest availability; return it (its pacer has granted)."""
        count = len(self.members)
        order = [self.members[(self._next + i) % count] for i in range(count)]
        self._next = (self._next + 1) % count
        member = min(order, key=lambda m: m.pacer.ready_in(writes, resource_units))
        await member.pacer.acquire(writes, resource_units)
        return member

    @property
    def stats(self) -> PacerStats:
        total = PacerStats()
        for member in self.members:
            s = member.pacer.stats
            total.throttled += s.throttled
            total.pauses += s.pauses
            total.warnings += s.warnings
            total.cuts += s.cuts
            total.waits += s.waits
            total.total_wait += s.total_wait
        return total


__all__ = ["AppPool", "PoolMember"]
